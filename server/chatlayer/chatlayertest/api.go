package chatlayertest

// The API: the V1 and legacy message endpoints, strict about the
// contract of PROVIDERS.md.

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// reply is what an endpoint handler answers.
type reply struct {
	status int
	ctype  string
	body   []byte
	err    string // the refusal reason, recorded with the request
}

func jsonReply(status int, v any) reply {
	b, _ := json.Marshal(v)
	return reply{status: status, ctype: "application/json", body: b}
}

// refuse is an error answer shaped like Chatlayer's API errors.
func refuse(status int, msg string) reply {
	r := jsonReply(status, map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg})
	r.err = msg
	return r
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	r := refuse(status, msg)
	w.Header().Set("Content-Type", r.ctype)
	w.WriteHeader(status)
	w.Write(r.body)
}

// api wraps an endpoint with what every answer gets: the rate limit and
// its headers, injected faults (before any other check), slowness, and
// the record of the request.
func (s *Server) api(mode string, h func(r *http.Request, body []byte, rec *Request) reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := Request{Mode: mode, Method: r.Method, Path: r.URL.Path, At: time.Now()}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		rec.Body = json.RawMessage(body)

		limited, remaining, reset := s.rate.Take(time.Now())
		fault, injected := s.kit.TakeFault()
		if !s.kit.Stall(r) {
			return // the client gave up
		}
		hdr := w.Header()
		hdr.Set("X-Ratelimit-Limit", strconv.Itoa(s.opts.RateLimit))
		hdr.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
		hdr.Set("X-Ratelimit-Reset", strconv.FormatInt(reset.UnixMilli(), 10)) // milliseconds, as the docs show

		var rp reply
		switch {
		case injected:
			rp = refuse(fault.Status, cmp.Or(fault.Message, "injected fault"))
			for k, vs := range fault.Header {
				hdr[k] = vs
			}
		case limited:
			rp = refuse(http.StatusTooManyRequests, "rate limit exceeded")
		case err != nil:
			rp = refuse(http.StatusRequestEntityTooLarge, "body too large")
		default:
			rp = h(r, body, &rec)
		}
		rec.Status, rec.Error = rp.status, rp.err
		if s.opts.OnAccept != nil && rp.status/100 == 2 && rec.Kind != "" && rec.Kind != "history" {
			s.opts.OnAccept(rec)
		}
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		if rp.err != "" {
			s.log.Info("chatlayer emulator refused a request", "mode", mode, "status", rp.status, "reason", rp.err)
		}
		hdr.Set("Content-Type", rp.ctype)
		w.WriteHeader(rp.status)
		w.Write(rp.body)
	}
}

// sameSecret compares a presented secret with the configured one in
// constant time, as the real service should.
func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return got != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// jsonBody checks the content type and decodes a JSON object, keeping
// each field raw so that presence and types can be checked one by one.
func jsonBody(r *http.Request, body []byte) (map[string]json.RawMessage, *reply) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		rp := refuse(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return nil, &rp
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		rp := refuse(http.StatusBadRequest, "the body must be a JSON object")
		return nil, &rp
	}
	return m, nil
}

// str returns a JSON string's value and whether raw is a string.
func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// object decodes a JSON object, or returns nil.
func object(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// v1 is POST /v1/channels/webhook/{channelId}/messages.
func (s *Server) v1(r *http.Request, body []byte, rec *Request) reply {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || !sameSecret(token, s.opts.Token) {
		return refuse(http.StatusUnauthorized, "missing or invalid bearer token")
	}
	if r.PathValue("channelId") != s.opts.ChannelID {
		return refuse(http.StatusNotFound, "no such channel")
	}
	m, bad := jsonBody(r, body)
	if bad != nil {
		return *bad
	}

	var user string
	if raw, ok := m["user"]; ok {
		u := object(raw)
		if u == nil {
			return refuse(http.StatusBadRequest, "user must be an object")
		}
		id, ok := str(u["id"])
		if !ok || id == "" {
			return refuse(http.StatusBadRequest, "user.id is required (a non-empty string)")
		}
		for _, f := range []string{"firstName", "lastName", "preferredLanguage"} {
			if v, present := u[f]; present {
				if _, ok := str(v); !ok {
					return refuse(http.StatusBadRequest, "user."+f+" must be a string")
				}
			}
		}
		user = id
	} else if raw, ok := m["conversationId"]; ok {
		id, ok := str(raw)
		if !ok || id == "" {
			return refuse(http.StatusBadRequest, "conversationId must be a non-empty string")
		}
		user = id
	} else {
		return refuse(http.StatusBadRequest, "user.id or conversationId is required")
	}

	msg := object(m["message"])
	if msg == nil {
		return refuse(http.StatusBadRequest, "message is required (an object)")
	}
	var kinds []string
	for _, k := range []string{"textMessage", "postbackMessage", "introMessage"} {
		if _, ok := msg[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return refuse(http.StatusBadRequest, "message must have exactly one of textMessage, postbackMessage, introMessage")
	}
	in := incoming{}
	switch kinds[0] {
	case "textMessage":
		tm := object(msg["textMessage"])
		text, ok := str(tm["text"])
		if !ok || strings.TrimSpace(text) == "" {
			return refuse(http.StatusBadRequest, "message.textMessage.text is required (a non-empty string)")
		}
		in.kind, in.text = "text", text
	case "postbackMessage":
		pm := object(msg["postbackMessage"])
		if pm == nil {
			return refuse(http.StatusBadRequest, "message.postbackMessage must be an object")
		}
		title, ok := str(pm["title"])
		if !ok || strings.TrimSpace(title) == "" {
			return refuse(http.StatusBadRequest, "message.postbackMessage.title is required (a non-empty string)")
		}
		for _, f := range []string{"nextDialogstateId", "payload"} {
			if v, present := pm[f]; present {
				if _, ok := str(v); !ok {
					return refuse(http.StatusBadRequest, "message.postbackMessage."+f+" must be a string")
				}
			}
		}
		if raw, present := pm["sessionDataToSet"]; present {
			var kvs []json.RawMessage
			if json.Unmarshal(raw, &kvs) != nil {
				return refuse(http.StatusBadRequest, "message.postbackMessage.sessionDataToSet must be an array")
			}
			for i, kv := range kvs {
				k, ok := str(object(kv)["key"])
				if !ok || k == "" {
					return refuse(http.StatusBadRequest, "message.postbackMessage.sessionDataToSet["+strconv.Itoa(i)+"].key is required (a non-empty string)")
				}
			}
		}
		in.kind, in.title = "postback", title
		in.next, _ = str(pm["nextDialogstateId"])
		in.payload, _ = str(pm["payload"])
	case "introMessage":
		if object(msg["introMessage"]) == nil {
			return refuse(http.StatusBadRequest, "message.introMessage must be an object ({})")
		}
		in.kind = "intro"
	}
	if raw, present := m["sessionData"]; present {
		sd := object(raw)
		if sd == nil {
			return refuse(http.StatusBadRequest, "sessionData must be an object")
		}
		in.session = sd
	}
	rec.UserID, rec.Kind = user, in.kind
	s.accept(user, in, baseURL(r))
	return jsonReply(http.StatusOK, map[string]any{})
}

// legacy is POST /api/webhookMessage/{botId}.
func (s *Server) legacy(r *http.Request, body []byte, rec *Request) reply {
	if r.PathValue("botId") != s.opts.BotID {
		return refuse(http.StatusNotFound, "no such bot")
	}
	m, bad := jsonBody(r, body)
	if bad != nil {
		return *bad
	}
	vt, _ := str(m["verifyToken"])
	if !sameSecret(vt, s.opts.VerifyToken) {
		return refuse(http.StatusUnauthorized, "missing or invalid verifyToken")
	}
	sender := object(m["sender"])
	id, ok := str(sender["id"])
	if !ok || id == "" {
		return refuse(http.StatusBadRequest, "sender.id is required (a string)")
	}
	if len(id) < 32 {
		return refuse(http.StatusBadRequest, "sender.id must have at least 32 characters")
	}
	text, ok := str(m["text"])
	if !ok || strings.TrimSpace(text) == "" {
		return refuse(http.StatusBadRequest, "text is required (a non-empty string)")
	}
	if v, present := m["locale"]; present {
		if _, ok := str(v); !ok {
			return refuse(http.StatusBadRequest, "locale must be a string")
		}
	}
	in := legacyIncoming(text)
	rec.UserID, rec.Kind = id, in.kind
	s.accept(id, in, baseURL(r))
	return reply{status: http.StatusOK, ctype: "text/plain; charset=utf-8", body: []byte("EVENT_RECEIVED")}
}

// baseURL is the emulator's own URL as the client reached it, for the
// media the bot links to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
