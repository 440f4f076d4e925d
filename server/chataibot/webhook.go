package chataibot

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
)

// maxCallback bounds a callback body; a batch of bot messages is far
// smaller.
const maxCallback = 1 << 20

// deliverTimeout bounds storing a callback's messages. The store write is
// not cut short when ChatAIBot hangs up: a retried callback is
// deduplicated anyway.
const deliverTimeout = 10 * time.Second

// ServeWebhook takes ChatAIBot's reply callbacks (POST
// /hooks/chataibot/{bot}; the assumed shape is Callback). It checks the
// secret before reading anything (so that only ChatAIBot can make it
// wait for a route, see resolve), stores the messages through the Sink,
// and answers as soon as they are stored: 200 when stored (or nothing to
// store), 401 for a bad secret, 403 for a conversation of another bot,
// 400 for an unreadable body, 500 when storing failed and 503 when the
// conversation is not known (yet) with durable links, so that ChatAIBot
// retries.
func (a *Adapter) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	if !a.authentic(r) {
		a.log.Warn("chataibot: callback with a wrong or missing secret", "bot", a.bot, "remote", r.RemoteAddr)
		answer(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallback))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			answer(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		answer(w, http.StatusBadRequest, "body could not be read")
		return
	}
	var cb Callback
	if err := json.Unmarshal(raw, &cb); err != nil {
		a.log.Warn("chataibot: callback body is not the expected JSON", "bot", a.bot, "err", err)
		answer(w, http.StatusBadRequest, "body is not a reply callback")
		return
	}
	ref := cb.Ref()
	if ref == "" {
		a.log.Warn("chataibot: callback without conversation_id", "bot", a.bot)
		answer(w, http.StatusBadRequest, "conversation_id is missing")
		return
	}
	conv, err := a.resolve(r.Context(), ref)
	if err != nil {
		a.log.Error("chataibot: cannot route a callback", "bot", a.bot, "ref", ref, "err", err)
		answer(w, http.StatusInternalServerError, "temporarily unable to store")
		return
	}
	if conv == "" && a.links != nil {
		// Not 200: the route may still come (a start call's link whose
		// write is slow or failed and is retried by the service), and a
		// 200 would tell ChatAIBot the bot's reply was taken when it was
		// thrown away. ChatAIBot retries a failed callback (assumed as
		// Chatlayer: 3 times), so a late route still gets it; a ref that
		// never gets one costs those retries, each waiting startWait,
		// and then ChatAIBot gives up, as a drop would have.
		a.log.Warn("chataibot: callback for a conversation not known (yet); ChatAIBot should retry", "bot", a.bot, "ref", ref)
		answer(w, http.StatusServiceUnavailable, "unknown conversation; retry later")
		return
	}
	if conv == "" {
		// Routes are in memory only, and none is on its way here: no
		// retry would find one.
		a.log.Warn("chataibot: callback for an unknown conversation; dropped", "bot", a.bot, "ref", ref)
		answer(w, http.StatusOK, "")
		return
	}
	bodies, skipped := Normalize(cb.All())
	if skipped > 0 {
		a.log.Warn("chataibot: bot messages skipped", "bot", a.bot, "conversation", conv, "skipped", skipped)
	}
	if len(bodies) > 0 {
		id := cb.MessageID
		if id == "" {
			sum := sha256.Sum256(raw)
			id = "sha256-" + hex.EncodeToString(sum[:16])
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), deliverTimeout)
		err := a.sink.Deliver(ctx, conv, dedupKey(ref, id), bodies...)
		cancel()
		if errors.Is(err, provider.ErrOtherBot) {
			a.log.Warn("chataibot: callback for a conversation of another bot refused", "bot", a.bot, "conversation", conv)
			answer(w, http.StatusForbidden, "not this bot's conversation")
			return
		}
		if err != nil {
			a.log.Error("chataibot: cannot store a callback; ChatAIBot should retry", "bot", a.bot, "conversation", conv, "err", err)
			answer(w, http.StatusInternalServerError, "temporarily unable to store")
			return
		}
		a.replies.Replied(conv)
	}
	answer(w, http.StatusOK, "")
}

// authentic checks the callback's secret in constant time: the digests
// are compared, so not even the length leaks.
func (a *Adapter) authentic(r *http.Request) bool {
	var got string
	if a.cfg.WebhookAuth == AuthHeader {
		got = r.Header.Get(a.cfg.WebhookHeader)
	} else {
		h := r.Header.Get("Authorization")
		if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
			return false
		}
		got = strings.TrimSpace(h[7:])
	}
	want := sha256.Sum256([]byte(a.cfg.WebhookSecret.Reveal()))
	have := sha256.Sum256([]byte(got))
	return got != "" && subtle.ConstantTimeCompare(want[:], have[:]) == 1
}

// dedupKey is the Sink key of a batch: "chataibot/<conversation id>/<id>",
// hashed when the platform's ids make it unreasonably long.
func dedupKey(ref, id string) string {
	key := "chataibot/" + ref + "/" + id
	if len(key) > 200 {
		sum := sha256.Sum256([]byte(key))
		key = "chataibot/sha256-" + hex.EncodeToString(sum[:16])
	}
	return key
}

// answer writes the webhook's small JSON answer: {"ok":true}, or
// {"ok":false,"error":msg}. It never echoes anything from the request.
func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if status < 300 {
		io.WriteString(w, `{"ok":true}`)
		return
	}
	b, _ := json.Marshal(map[string]any{"ok": false, "error": msg})
	w.Write(b)
}
