package chatlayer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
)

// MaxCallback bounds a callback body. A bot message is a few kilobytes;
// a carousel of ten cards stays far below this.
//
// The verify token is Chatlayer's only credential and it is inside the
// JSON body, in no fixed position (no header, no query parameter), so
// the body is read, up to this bound, before the token can be checked:
// reading a small prefix first would refuse real callbacks whose token
// comes after a long message. What bounds a forger instead is this size,
// the server's body deadline (limits.body_timeout) and the listener's
// connection caps.
const MaxCallback = 256 << 10

// AttrCounter is the Sink attribute holding the highest messageCounter
// delivered in a conversation, so that ordering survives a restart and
// holds across the processes sharing a store. It only ever moves forward
// (see advance).
const AttrCounter = "chatlayer.counter"

// deliverTimeout bounds one store write for a callback. It does not
// follow the request's context: a write Chatlayer stopped waiting for is
// still finished, so a retry finds it done.
const deliverTimeout = 10 * time.Second

// ServeWebhook takes one Chatlayer callback (POST /hooks/chatlayer/{bot}):
// it checks the verify token in constant time (401 otherwise), routes on
// senderId, recipient.id or sender.id, skips event messages, normalizes
// the message and stores it under a deduplication key, in messageCounter
// order, before answering 200. A callback that cannot be stored answers
// 500 so that Chatlayer retries it; one that names no conversation of
// ours answers 200 so that Chatlayer stops retrying; one that names a
// conversation of another bot is refused with 403 and stores nothing.
//
// Most callbacks are answered as soon as they are stored. Only one that
// arrives ahead of its turn is answered later, once the missing ones came
// or ReorderWait passed: keeping the request open until it is stored
// means an acknowledged callback is never lost, even by a crash.
func (a *Adapter) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallback))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(w, http.StatusRequestEntityTooLarge, "callback body too large")
			return
		}
		answer(w, http.StatusBadRequest, "unreadable body")
		return
	}
	var cb map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cb); err != nil || cb == nil {
		answer(w, http.StatusBadRequest, "the body must be a JSON object")
		return
	}
	if !a.verified(cb["verifyToken"]) {
		a.log.Warn("chatlayer callback refused: missing or wrong verify token", "remote", r.RemoteAddr)
		answer(w, http.StatusUnauthorized, "missing or wrong verifyToken")
		return
	}
	if a.ctx.Err() != nil {
		answer(w, http.StatusServiceUnavailable, "shutting down; retry later")
		return
	}
	id, field := routeID(cb)
	conv, ok := conversationOf(id)
	if !ok {
		a.log.Warn("chatlayer callback for no conversation of ours; dropped", "field", field, "id", clip(id))
		answer(w, http.StatusOK, "ignored: unknown recipient")
		return
	}

	msg := cb["message"]
	shown, err := Normalize(msg)
	if err != nil {
		// Nothing displayable: the callback still takes its turn, so the
		// messages after it are not held for it.
		a.log.Warn("chatlayer message has nothing to show; skipped", "conversation", conv, "err", err)
	}
	counter, counted := counterOf(cb["messageCounter"])
	key := dedupKey(conv, counter, counted, raw)

	deliver := func() error {
		if len(shown) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), deliverTimeout)
		defer cancel()
		if err := a.sink.Deliver(ctx, conv, key, shown...); err != nil {
			return err
		}
		a.noteReply(conv)
		return nil
	}

	var status int
	if counted {
		status = a.inOrder(r.Context(), conv, counter, deliver)
	} else {
		status = a.unordered(r.Context(), conv, deliver)
	}
	switch status {
	case http.StatusOK:
		answer(w, status, "ok")
	case http.StatusForbidden:
		answer(w, status, "not this bot's conversation")
	case http.StatusServiceUnavailable:
		answer(w, status, "not stored; retry later")
	default:
		answer(w, status, "not stored; retry")
	}
}

// verified compares the callback's verifyToken with ours in constant
// time. Both sides are hashed first so that not even the length of the
// configured token leaks through timing.
func (a *Adapter) verified(raw json.RawMessage) bool {
	var got string
	if json.Unmarshal(raw, &got) != nil || got == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	want := sha256.Sum256([]byte(a.cfg.VerifyToken.Reveal()))
	return subtle.ConstantTimeCompare(g[:], want[:]) == 1
}

// routeID returns the id a callback routes on and the field it came
// from: senderId, else recipient.id, else sender.id (PROVIDERS.md).
func routeID(cb map[string]json.RawMessage) (id, field string) {
	if s := scalar(cb["senderId"]); s != "" {
		return s, "senderId"
	}
	for _, f := range []string{"recipient", "sender"} {
		var obj map[string]json.RawMessage
		if json.Unmarshal(cb[f], &obj) == nil {
			if s := scalar(obj["id"]); s != "" {
				return s, f + ".id"
			}
		}
	}
	return "", "none"
}

// scalar reads a JSON string or number as text, and anything else as "".
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// counterOf reads messageCounter: a non-negative integer, or one written
// as a string. Anything else counts as absent.
func counterOf(raw json.RawMessage) (uint64, bool) {
	s := scalar(raw)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f == math.Trunc(f) && f < 1<<53 {
		return uint64(f), true
	}
	return 0, false
}

// dedupKey names a callback for the Sink's idempotency: its
// messageCounter when present, else a hash of the whole body (a retried
// callback repeats it byte for byte).
func dedupKey(conv string, counter uint64, counted bool, body []byte) string {
	if counted {
		return "chatlayer/" + conv + "/" + strconv.FormatUint(counter, 10)
	}
	sum := sha256.Sum256(body)
	return "chatlayer/" + conv + "/" + hex.EncodeToString(sum[:])[:16]
}

// unordered delivers a callback without messageCounter right away.
func (a *Adapter) unordered(ctx context.Context, conv string, deliver func() error) int {
	if _, err := a.sink.Attr(ctx, conv, AttrCounter); err != nil {
		return a.lookupFailed(conv, err)
	}
	if err := deliver(); err != nil {
		return a.deliverFailed(conv, err)
	}
	return http.StatusOK
}

// deliverFailed turns a failed store write into the answer: 403 for a
// conversation of another bot (see refused), 500 otherwise, so that
// Chatlayer retries.
func (a *Adapter) deliverFailed(conv string, err error) int {
	if errors.Is(err, provider.ErrOtherBot) {
		return a.refused(conv)
	}
	a.log.Error("chatlayer reply not stored; Chatlayer will retry", "conversation", conv, "err", err)
	return http.StatusInternalServerError
}

// refused answers a callback that names a conversation of another bot:
// its verify token is this bot's, so it is either a forgery or a
// platform misconfiguration, and it must store nothing either way.
func (a *Adapter) refused(conv string) int {
	a.log.Warn("chatlayer callback for a conversation of another bot refused", "bot", a.bot, "conversation", conv)
	return http.StatusForbidden
}

// lookupFailed turns a failed conversation lookup into the answer:
// 200 for a conversation we do not have (retrying cannot help), 500
// otherwise.
func (a *Adapter) lookupFailed(conv string, err error) int {
	if errors.Is(err, provider.ErrUnknownConversation) {
		a.log.Warn("chatlayer callback for an unknown conversation; dropped", "conversation", conv)
		return http.StatusOK
	}
	if errors.Is(err, provider.ErrOtherBot) {
		return a.refused(conv)
	}
	a.log.Error("chatlayer callback: conversation lookup failed", "conversation", conv, "err", err)
	return http.StatusInternalServerError
}

// lane orders one conversation's counted callbacks in this process. Its
// mutex is held while a callback is stored, so deliveries of a
// conversation never overlap here; a callback ahead of its turn waits on
// changed, unlocked.
//
// Several processes may share the store, and Chatlayer's callbacks of one
// conversation may land on any of them, so the lane's next is only a
// cache of the stored counter (AttrCounter): it is reloaded when a lane
// starts and whenever a callback is ahead of it (the gap may have been
// filled elsewhere), re-read every counterPoll while a callback waits,
// and the stored counter is only ever moved forward, by compare-and-set
// (advance). A callback is delivered before the counter moves past it,
// so a process that sees the counter at n knows 1..n are stored.
type lane struct {
	refs int // callbacks using the lane; guarded by Adapter.mu

	mu      sync.Mutex
	loaded  bool
	next    uint64         // the counter expected next, as far as this process knows
	stored  string         // the stored counter as last read or written: advance's first guess
	waiting map[uint64]int // counters held ahead of next, with how many copies
	changed chan struct{}  // closed and replaced whenever next moves
}

// counterPoll is how often a callback held for a gap re-reads the stored
// counter, to see the gap filled by another process (in this one,
// changed wakes it at once). Chatlayer sends a turn's callbacks within
// milliseconds of each other, so a gap is usually filled almost at once,
// elsewhere: 50 ms keeps the delay this adds to a reordered message below
// what a reader notices in a chat, and costs one small store read (one
// Redis HGET) per held callback per poll, at most ReorderWait/counterPoll
// reads (20 with the default 1 s wait), for the few callbacks that
// arrive out of order.
const counterPoll = 50 * time.Millisecond

// inOrder delivers the callback numbered counter in messageCounter order:
// one ahead of the next expected counter waits up to ReorderWait for the
// missing ones, then the gap is skipped (never lost: a late callback is
// delivered when it comes). One behind is delivered at once; its key
// makes a duplicate a no-op. The highest counter delivered is stored
// (advance), so a restart, or another process, resumes the order.
//
// The skip after ReorderWait is decided by each process alone, from the
// callbacks it holds. The residual case: a gap (a lost or slow callback)
// with the two callbacks after it held on two different processes, the
// later one having arrived first. Each process skips to its own lowest
// held counter when its wait ends, so the later one can be stored before
// the earlier one, and the two are shown swapped. Nothing is lost or
// stored twice, and the stored counter still only moves forward; it
// costs the order of two messages, only when a callback is missing for
// ReorderWait and the platform also swapped the two after it. (When the
// earlier one arrived first its wait ends first, it is stored and its
// counter written, and the other process sees that on its next poll.)
func (a *Adapter) inOrder(ctx context.Context, conv string, counter uint64, deliver func() error) int {
	l := a.acquire(conv)
	defer a.release(conv, l)
	l.mu.Lock()
	defer l.mu.Unlock()

	if !l.loaded || counter > l.next {
		// A new lane, or a callback ahead of the cached next: another
		// process may have moved the counter since it was read.
		v, err := a.sink.Attr(ctx, conv, AttrCounter)
		if err != nil {
			return a.lookupFailed(conv, err)
		}
		if !l.loaded {
			l.next, l.loaded = firstCounter, true
		}
		l.observe(v)
	}

	if counter > l.next {
		l.waiting[counter]++
		timer := time.NewTimer(a.cfg.ReorderWait)
		defer timer.Stop()
		poll := time.NewTicker(counterPoll)
		defer poll.Stop()
		expired := false
		for counter > l.next {
			if expired {
				// Skip the gap up to the lowest held counter: it goes
				// next, and the others follow it in order.
				if low := l.lowestWaiting(); low > l.next {
					l.next = low
					l.broadcast()
				}
				if counter <= l.next {
					break
				}
			}
			ch := l.changed
			l.mu.Unlock()
			var gone, reread bool
			select {
			case <-ch:
			case <-poll.C:
				reread = true
			case <-timer.C:
				// One last look before skipping: the gap may have
				// been filled elsewhere since the last poll.
				expired, reread = true, true
			case <-ctx.Done():
				gone = true
			case <-a.ctx.Done():
				gone = true
			}
			var v string
			var err error
			if reread {
				v, err = a.sink.Attr(ctx, conv, AttrCounter) // unlocked: the lane's deliveries go on meanwhile
			}
			l.mu.Lock()
			if gone {
				l.unwait(counter)
				l.broadcast() // the others re-check the lowest held counter
				return http.StatusServiceUnavailable
			}
			if reread && err == nil {
				l.observe(v)
			}
			// A failed read is not fatal: the local wake-ups and the
			// wait's end still move this callback on.
		}
		l.unwait(counter)
	}

	if err := deliver(); err != nil {
		l.broadcast() // held callbacks whose wait is over must not wait for this one's retry
		if errors.Is(err, provider.ErrOtherBot) {
			return a.refused(conv)
		}
		a.log.Error("chatlayer reply not stored; Chatlayer will retry", "conversation", conv, "counter", counter, "err", err)
		return http.StatusInternalServerError
	}
	if counter >= l.next {
		if err := a.advance(ctx, l, conv, counter); err != nil {
			a.log.Error("chatlayer message counter not stored; Chatlayer will retry", "conversation", conv, "err", err)
			l.broadcast()
			return http.StatusInternalServerError
		}
		if counter+1 > l.next {
			l.next = counter + 1
		}
		l.broadcast()
	}
	return http.StatusOK
}

// maxAdvance bounds advance's compare-and-set rounds. Each lost round
// means another process moved the counter forward meanwhile, which can
// happen only a few times before it passes ours; the bound is against a
// writer that does not follow the protocol.
const maxAdvance = 100

// advance moves the stored counter forward to counter, never back: a
// compare-and-set from the value last seen, re-read when another process
// changed it meanwhile, and nothing written when it is already at or
// past counter. l.mu is held.
func (a *Adapter) advance(ctx context.Context, l *lane, conv string, counter uint64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverTimeout)
	defer cancel()
	want := strconv.FormatUint(counter, 10)
	old := l.stored
	for range maxAdvance {
		if last, err := strconv.ParseUint(old, 10, 64); err == nil && last >= counter {
			l.observe(old)
			return nil
		}
		ok, err := a.sink.CompareAndSetAttr(ctx, conv, AttrCounter, old, want)
		if err != nil {
			return err
		}
		if ok {
			l.stored = want
			return nil
		}
		if old, err = a.sink.Attr(ctx, conv, AttrCounter); err != nil {
			return err
		}
	}
	return errors.New("chatlayer: the stored message counter keeps changing")
}

// observe takes a stored counter read from the Sink: next moves up to
// follow it (never down: a skip may have put it ahead), and waiters are
// woken when it moved. l.mu is held.
func (l *lane) observe(v string) {
	l.stored = v
	last, err := strconv.ParseUint(v, 10, 64)
	if err != nil || last+1 <= l.next {
		return
	}
	l.next = last + 1
	l.broadcast()
}

func (l *lane) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lane) unwait(counter uint64) {
	if l.waiting[counter]--; l.waiting[counter] <= 0 {
		delete(l.waiting, counter)
	}
}

// lowestWaiting returns the lowest held counter, or 0 when none is held.
func (l *lane) lowestWaiting() uint64 {
	var low uint64
	for c := range l.waiting {
		if low == 0 || c < low {
			low = c
		}
	}
	return low
}

// acquire returns conversation conv's lane, creating it if needed.
func (a *Adapter) acquire(conv string) *lane {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lanes[conv]
	if l == nil {
		l = &lane{waiting: map[uint64]int{}, changed: make(chan struct{})}
		a.lanes[conv] = l
	}
	l.refs++
	return l
}

// release undoes acquire and forgets an idle lane: its state is in the
// Sink, and reloading it costs one Attr read.
func (a *Adapter) release(conv string, l *lane) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(a.lanes, conv)
	}
}

// answer writes a short plain-text answer. It never echoes the request.
func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// clip bounds an untrusted id for a log line.
func clip(s string) string {
	if len(s) > 80 {
		return strings.ToValidUTF8(s[:80], "") + "…"
	}
	return s
}
