package chataibottest

// The API: the start and send endpoints, strict about the contract of
// PROVIDERS.md, behind the checks every call goes through.

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// api wraps the routes with what every call goes through: recording,
// slowness, the bearer check, the rate limit, injected faults and the
// content type.
func (s *Server) api(routes http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		s.count(&s.stats.Requests)
		defer func() {
			s.mu.Lock()
			s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: rec.status})
			s.mu.Unlock()
		}()
		if !s.kit.Stall(r) {
			rec.status = 0 // the caller gave up
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
			s.count(&s.stats.Unauthorized)
			fail(rec, http.StatusUnauthorized, "Unauthorized: invalid or missing token")
			return
		}
		now := time.Now()
		limited, remaining, reset := s.rate.Take(now)
		h := rec.Header()
		if s.opts.RateLimit > 0 {
			h.Set("X-Ratelimit-Limit", strconv.Itoa(s.opts.RateLimit))
			h.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
			h.Set("X-Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		}
		if limited {
			s.count(&s.stats.RateLimited)
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(reset.Sub(now).Seconds()))))
			fail(rec, http.StatusTooManyRequests, "Too many requests")
			return
		}
		if f, ok := s.kit.TakeFault(); ok {
			s.count(&s.stats.Faults)
			for k, vs := range f.Header {
				h[k] = vs
			}
			fail(rec, f.Status, cmp.Or(f.Message, http.StatusText(f.Status)))
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			s.count(&s.stats.Invalid)
			fail(rec, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		routes.ServeHTTP(rec, r)
	})
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) count(n *int) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

// fail answers {"ok":false,"error":msg}, ChatAIBot's error shape.
func fail(w http.ResponseWriter, status int, msg string) {
	write(w, status, map[string]any{"ok": false, "error": msg})
}

func write(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// object is a decoded JSON object with typed, path-named access, so that
// every 400 names the offending field.
type object map[string]any

func decode(w http.ResponseWriter, r *http.Request) (object, bool) {
	var v any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		fail(w, http.StatusBadRequest, "The body must be a JSON object")
		return nil, false
	}
	return obj, true
}

// get returns the value at a dotted path and whether each step was an
// object.
func (o object) get(path string) (any, bool) {
	var v any = map[string]any(o)
	for key := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// str checks that path holds a non-empty string (equal to want, if want
// is set) and returns it, or the 400 message naming the field.
func (o object) str(path, want string) (string, string) {
	v, ok := o.get(path)
	if !ok || v == nil {
		return "", path + " is required"
	}
	s, ok := v.(string)
	if !ok {
		return "", path + " must be a string"
	}
	if strings.TrimSpace(s) == "" {
		return "", path + " must not be empty"
	}
	if want != "" && s != want {
		return "", path + ` must be "` + want + `"`
	}
	return s, ""
}

// optObject checks that path, when present, is an object.
func (o object) optObject(path string) (map[string]any, string) {
	v, ok := o.get(path)
	if !ok || v == nil {
		return nil, ""
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, path + " must be an object"
	}
	return m, ""
}

// start is POST /api/v1/conversations.
func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	req, ok := decode(w, r)
	if !ok {
		s.count(&s.stats.Invalid)
		return
	}
	invalid := func(msg string) {
		s.count(&s.stats.Invalid)
		fail(w, http.StatusBadRequest, msg)
	}
	var vals [5]string
	for i, c := range []struct{ path, want string }{
		{"channel", "API"},
		{"message.type", "text"},
		{"message.data.body", ""},
		{"bot_key", ""},
		{"from.user_external_id", ""},
	} {
		v, msg := req.str(c.path, c.want)
		if msg != "" {
			invalid(msg)
			return
		}
		vals[i] = v
	}
	if _, msg := req.str("from.type", "VISITOR"); msg != "" {
		invalid(msg)
		return
	}
	body, key, visitor := vals[2], vals[3], vals[4]
	if key != s.opts.BotKey {
		invalid("bot_key does not match a bot of this account")
		return
	}
	vars := map[string]any{}
	for _, part := range []string{"variables", "variables.system", "variables.contact", "variables.conversation"} {
		m, msg := req.optObject(part)
		if msg != "" {
			invalid(msg)
			return
		}
		if part == "variables" && m != nil {
			vars = m
		}
	}
	contact, _ := req.optObject("variables.contact")
	text := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	for _, k := range []string{"name", "email", "phone"} {
		if v, ok := contact[k]; ok && v != nil {
			if _, ok := v.(string); !ok {
				invalid("variables.contact." + k + " must be a string")
				return
			}
		}
	}

	now := time.Now().UTC()
	c := &conversation{Conversation: Conversation{ID: newID(), Visitor: visitor, Variables: vars}}
	if conv, _ := req.optObject("variables.conversation"); conv != nil {
		if v, ok := conv["plan"]; ok && v != nil {
			c.plan = stringify(v)
		}
	}
	s.mu.Lock()
	s.convs[c.ID] = c
	s.stats.Started++
	msgs := s.hear(c, body, newID())
	s.mu.Unlock()

	resp := map[string]any{
		"ok": true,
		"conversation": map[string]any{
			"id":         c.ID,
			"created_at": now.Format("2006-01-02 15:04:05.000000"),
			"assignee":   map[string]any{"id": "bot_" + s.opts.AccountID, "to": "bot+" + s.opts.AccountID + "@chataibot.test"},
		},
		"contact": map[string]any{
			"name": text(contact, "name"), "email": text(contact, "email"), "phone": text(contact, "phone"),
			"visitor_key": visitor + "_" + s.opts.AccountID,
		},
	}
	if msgs != nil {
		resp["messages"] = msgs
	}
	write(w, http.StatusOK, resp)
}

// send is POST /api/v1/conversation/{id}/messages.
func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	c := s.convs[id]
	s.mu.Unlock()
	if c == nil {
		s.count(&s.stats.Invalid)
		fail(w, http.StatusNotFound, "Conversation not found")
		return
	}
	req, ok := decode(w, r)
	if !ok {
		s.count(&s.stats.Invalid)
		return
	}
	var body string
	for _, check := range []struct{ path, want string }{{"message.type", "text"}, {"message.data.body", ""}, {"user.type", "VISITOR"}} {
		v, msg := req.str(check.path, check.want)
		if msg != "" {
			s.count(&s.stats.Invalid)
			fail(w, http.StatusBadRequest, msg)
			return
		}
		if check.path == "message.data.body" {
			body = v
		}
	}
	msgID := newID()
	s.mu.Lock()
	msgs := s.hear(c, body, msgID)
	s.mu.Unlock()
	resp := map[string]any{"ok": true, "message_id": msgID}
	if msgs != nil {
		resp["messages"] = msgs
	}
	write(w, http.StatusOK, resp)
}

// newID returns a 32-character id of letters and digits, like the
// message_id in ChatAIBot's documentation.
func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// stringify renders a JSON value as the bot would say it.
func stringify(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
