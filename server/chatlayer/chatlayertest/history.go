package chatlayertest

// The conversation history and the asynchronous actions: the legacy
// GET /api/bots/{botId}/history/{senderId}, the V1 GET
// /v1/bots/{botId}/conversations/{sessionId}/messages and the legacy
// POST /api/webview, as PROVIDERS.md gives them. The bot writes every
// message it produces into the history, whether or not its callback
// reaches the proxy, as Chatlayer keeps every message.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// historyRow is one message of a user's session, in the legacy shape
// (PROVIDERS.md, fixtures/chatlayer/legacy-history-response.json).
type historyRow struct {
	IsIntro   bool            `json:"isIntro"`
	Message   json.RawMessage `json:"message"`
	ID        string          `json:"id"`
	Actor     string          `json:"actor"` // "user" or "bot"
	CreatedAt string          `json:"createdAt"`

	at time.Time // createdAt; the row shows from then on
}

// DefaultHistoryLimit is how many rows the legacy history answers when
// the request gives no limit, and MaxHistoryLimit the most it answers
// at once. Neither is documented: they only make the client page.
const (
	DefaultHistoryLimit = 20
	MaxHistoryLimit     = 100
)

// rowID makes a message id of the shape the samples show (24 hex
// characters, a MongoDB object id).
func rowID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// record appends a row to user's current session's history. s.mu is held.
func (s *Server) record(user, actor string, intro bool, message json.RawMessage, at time.Time) {
	if message == nil {
		message = json.RawMessage(`{}`)
	}
	s.history[user] = append(s.history[user], historyRow{
		IsIntro: intro, Message: message, ID: rowID(), Actor: actor,
		CreatedAt: at.UTC().Format("2006-01-02T15:04:05.000Z"), at: at,
	})
}

// userMessage is the history's form of an accepted user message.
func userMessage(in incoming) json.RawMessage {
	var m any
	switch in.kind {
	case "intro":
		m = obj{}
	case "postback":
		m = obj{"text": in.title}
	default:
		m = obj{"text": in.text}
	}
	b, _ := json.Marshal(m)
	return b
}

// visible returns user's history rows that exist at now: a bot message
// is written when the bot sends it, after Options.ReplyDelay. s.mu is
// held.
func (s *Server) visible(user string, now time.Time) []historyRow {
	var out []historyRow
	for _, r := range s.history[user] {
		if !r.at.After(now) {
			out = append(out, r)
		}
	}
	return out
}

// History returns the bot messages of user's current session that the
// history serves now, in order, as the raw messages: what a proxy
// reconciling from the history can recover.
func (s *Server) History(user string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []json.RawMessage
	for _, r := range s.visible(user, time.Now()) {
		if r.Actor == "bot" {
			out = append(out, r.Message)
		}
	}
	return out
}

// legacyToken checks the access_token query parameter of the legacy
// /api endpoints against the API token.
func (s *Server) legacyToken(r *http.Request) *reply {
	if !sameSecret(r.URL.Query().Get("access_token"), s.opts.Token) {
		rp := refuse(http.StatusUnauthorized, "missing or invalid access_token")
		return &rp
	}
	return nil
}

// legacyHistory is GET /api/bots/{botId}/history/{senderId}
// ?access_token=&offset=&limit=: {"rows":[…],"count":n}, count being
// every row of the session, rows the page asked for, oldest first.
func (s *Server) legacyHistory(r *http.Request, _ []byte, rec *Request) reply {
	if bad := s.legacyToken(r); bad != nil {
		return *bad
	}
	if r.PathValue("botId") != s.opts.BotID {
		return refuse(http.StatusNotFound, "no such bot")
	}
	q := r.URL.Query()
	offset, limit := 0, DefaultHistoryLimit
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return refuse(http.StatusBadRequest, "offset must be a number, 0 or more")
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return refuse(http.StatusBadRequest, "limit must be a number, 1 or more")
		}
		limit = min(n, MaxHistoryLimit)
	}
	user := r.PathValue("senderId")
	rec.UserID, rec.Kind = user, "history"
	s.mu.Lock()
	rows := s.visible(user, time.Now())
	s.mu.Unlock()
	page := []historyRow{}
	if offset < len(rows) {
		page = rows[offset:min(offset+limit, len(rows))]
	}
	return jsonReply(http.StatusOK, map[string]any{"rows": page, "count": len(rows)})
}

// v1History is GET /v1/bots/{botId}/conversations/{sessionId}/messages
// ?version=LIVE: {"data":[{actor, timestamp, message}]}, oldest first.
// The session id is the user id the messages were sent with.
func (s *Server) v1History(r *http.Request, _ []byte, rec *Request) reply {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !sameSecret(token, s.opts.Token) {
		return refuse(http.StatusUnauthorized, "missing or invalid bearer token")
	}
	if r.PathValue("botId") != s.opts.BotID {
		return refuse(http.StatusNotFound, "no such bot")
	}
	switch r.URL.Query().Get("version") {
	case "LIVE", "DRAFT":
	default:
		return refuse(http.StatusBadRequest, "version is required: LIVE or DRAFT")
	}
	user := r.PathValue("sessionId")
	rec.UserID, rec.Kind = user, "history"
	s.mu.Lock()
	rows := s.visible(user, time.Now())
	s.mu.Unlock()
	type entry struct {
		Actor     string          `json:"actor"`
		Timestamp string          `json:"timestamp"`
		Message   json.RawMessage `json:"message"`
	}
	data := make([]entry, 0, len(rows))
	for _, row := range rows {
		data = append(data, entry{Actor: row.Actor, Timestamp: row.CreatedAt, Message: row.Message})
	}
	return jsonReply(http.StatusOK, map[string]any{"data": data})
}

// webview is POST /api/webview?access_token=: session data saved, a
// dialog state triggered or bot messages sent for a conversation
// without a user message. It needs at least one message or an action,
// and answers 200 with an empty body.
func (s *Server) webview(r *http.Request, body []byte, rec *Request) reply {
	if bad := s.legacyToken(r); bad != nil {
		return *bad
	}
	m, bad := jsonBody(r, body)
	if bad != nil {
		return *bad
	}
	if bot, ok := str(m["botId"]); !ok || bot != s.opts.BotID {
		return refuse(http.StatusBadRequest, "botId is required and must name this bot")
	}
	user, ok := str(m["senderId"])
	if !ok || user == "" {
		return refuse(http.StatusBadRequest, "senderId is required (a non-empty string)")
	}
	var data map[string]json.RawMessage
	if raw, present := m["session"]; present {
		sess := object(raw)
		if sess == nil {
			return refuse(http.StatusBadRequest, "session must be an object")
		}
		if v, present := sess["namespace"]; present {
			if _, ok := str(v); !ok {
				return refuse(http.StatusBadRequest, "session.namespace must be a string")
			}
		}
		if data = object(sess["data"]); data == nil {
			return refuse(http.StatusBadRequest, "session.data is required (an object)")
		}
	}
	var next string
	if raw, present := m["action"]; present {
		act := object(raw)
		if act == nil {
			return refuse(http.StatusBadRequest, "action must be an object")
		}
		if next, ok = str(act["nextDialogstate"]); !ok || next == "" {
			return refuse(http.StatusBadRequest, "action.nextDialogstate is required (a non-empty string)")
		}
	}
	var msgs []json.RawMessage
	if raw, present := m["messages"]; present {
		if json.Unmarshal(raw, &msgs) != nil {
			return refuse(http.StatusBadRequest, "messages must be an array")
		}
		for i, msg := range msgs {
			if object(msg) == nil {
				return refuse(http.StatusBadRequest, "messages["+strconv.Itoa(i)+"] must be an object")
			}
		}
	}
	if len(msgs) == 0 && next == "" {
		return refuse(http.StatusBadRequest, "at least one message or an action is required")
	}
	rec.UserID, rec.Kind = user, "webview"
	s.mu.Lock()
	se := s.touch(user)
	for k, v := range data {
		se.data[k] = v
	}
	se.dialogstates = append(se.dialogstates, next)
	s.mu.Unlock()
	if len(msgs) > 0 {
		s.queue(user, msgs)
	}
	return reply{status: http.StatusOK, ctype: "text/plain; charset=utf-8"}
}

// SessionData returns the session data Chatlayer holds for user's
// current session: what messages' sessionData and webview calls saved.
func (s *Server) SessionData(user string) map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]json.RawMessage{}
	if se := s.sessions[user]; se != nil {
		for k, v := range se.data {
			out[k] = v
		}
	}
	return out
}

// Dialogstates returns the dialog states webview calls triggered for
// user's current session, in order ("" for a call without an action).
func (s *Server) Dialogstates(user string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se := s.sessions[user]; se != nil {
		return append([]string(nil), se.dialogstates...)
	}
	return nil
}
