package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// The admin API: a site owner's view of what Porthole holds, and a
// visitor's data rights (GDPR art. 15, access and export; art. 17,
// erasure). It is served only on the admin listener (admin.listen),
// behind admin_token, never on the public port.

// AdminConversation is a conversation as the admin API lists it.
type AdminConversation struct {
	ID string `json:"id"`
	// Key finds the conversation: a visitor id, "user-…" for a signed-in
	// user (a hash of the user id), or "" once unbound by a logout.
	Key     string    `json:"key"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Last    uint64    `json:"last"`
}

// AdminMessage is one transcript message in an export.
type AdminMessage struct {
	Seq      uint64      `json:"seq"`
	ID       string      `json:"id"`
	ClientID string      `json:"client_id,omitempty"`
	From     string      `json:"from"`
	At       time.Time   `json:"at"`
	Body     widget.Body `json:"body"`
	State    string      `json:"state,omitempty"`
	Reason   string      `json:"reason,omitempty"`
}

// AdminTranscript is everything held about one conversation.
type AdminTranscript struct {
	Conversation AdminConversation `json:"conversation"`
	Messages     []AdminMessage    `json:"messages"`
	// Attributes are the per-conversation values kept for the platform:
	// what the widget said about the visitor, session data, the contact
	// of a signed-in user, the platform's ids. JSON values stay JSON.
	Attributes map[string]json.RawMessage `json:"attributes"`
}

// AdminExport is the answer to a visitor's request for their data.
type AdminExport struct {
	Bot           string            `json:"bot"`
	Subject       map[string]string `json:"subject"`
	ExportedAt    time.Time         `json:"exported_at"`
	Conversations []AdminTranscript `json:"conversations"`
	Note          string            `json:"note"`
}

// platformCopyNote says what an export or erasure cannot cover.
const platformCopyNote = "Porthole holds only what is listed here. The bot platform (Chatlayer, ChatAIBot) keeps its own copy of the conversation under its own retention; ask the platform for it."

func adminConversation(c store.Conversation) AdminConversation {
	return AdminConversation{ID: c.ID, Key: c.Visitor, Created: c.Created, Updated: c.Updated, Last: c.Last}
}

// Conversations lists bot's conversations, the most recently updated
// first, after the cursor.
func (s *Service) Conversations(ctx context.Context, bot string, after store.Cursor, limit int) ([]AdminConversation, error) {
	cs, err := s.store.List(ctx, bot, after, limit)
	out := make([]AdminConversation, len(cs))
	for i, c := range cs {
		out[i] = adminConversation(c)
	}
	return out, err
}

// Dump returns everything held about conversation id.
func (s *Service) Dump(ctx context.Context, id string) (AdminTranscript, error) {
	c, err := s.store.Get(ctx, id)
	if err != nil {
		return AdminTranscript{}, err
	}
	t := AdminTranscript{Conversation: adminConversation(c), Messages: []AdminMessage{}, Attributes: map[string]json.RawMessage{}}
	for after := uint64(0); ; {
		ms, err := s.store.Read(ctx, id, after, 500)
		if err != nil {
			return t, err
		}
		for _, m := range ms {
			e := entryOf(m)
			am := AdminMessage{Seq: m.Seq, ID: m.ID, From: string(m.From), At: m.At, Body: e.Body}
			if e.Mine {
				am.ClientID, am.State, am.Reason = m.ClientID, string(m.State), m.Reason
			}
			t.Messages = append(t.Messages, am)
			after = m.Seq
		}
		if len(ms) < 500 {
			break
		}
	}
	attrs, err := s.store.Attrs(ctx, id)
	for k, v := range attrs {
		if json.Valid([]byte(v)) {
			t.Attributes[k] = json.RawMessage(v)
		} else {
			t.Attributes[k], _ = json.Marshal(v)
		}
	}
	return t, err
}

// Subject names whose data an export or erasure is about: a visitor id,
// or a signed-in user's id (their conversation follows UserKey).
type Subject struct {
	Visitor string
	User    string
}

// keys returns the store keys that find the subject's conversations.
func (sub Subject) keys() []string {
	var ks []string
	if sub.Visitor != "" {
		ks = append(ks, sub.Visitor)
	}
	if sub.User != "" {
		ks = append(ks, UserKey(sub.User))
	}
	return ks
}

// subjectConversations returns the ids of the conversations of bot that
// sub's keys find.
func (s *Service) subjectConversations(ctx context.Context, bot string, sub Subject) ([]string, error) {
	var ids []string
	for _, k := range sub.keys() {
		c, err := s.store.Find(ctx, bot, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// Export returns everything held about sub with bot.
func (s *Service) Export(ctx context.Context, bot string, sub Subject) (AdminExport, error) {
	ex := AdminExport{Bot: bot, Subject: map[string]string{}, ExportedAt: time.Now().UTC(), Conversations: []AdminTranscript{}, Note: platformCopyNote}
	if sub.Visitor != "" {
		ex.Subject["visitor"] = sub.Visitor
	}
	if sub.User != "" {
		ex.Subject["user"] = sub.User
	}
	ids, err := s.subjectConversations(ctx, bot, sub)
	if err != nil {
		return ex, err
	}
	for _, id := range ids {
		t, err := s.Dump(ctx, id)
		if err != nil {
			return ex, err
		}
		ex.Conversations = append(ex.Conversations, t)
	}
	return ex, nil
}

// Erase deletes everything held about sub with bot and returns the ids
// of the conversations it deleted. A visitor token copied before then
// finds nothing: the widget that says hello with it is welcomed without
// a conversation, and starts afresh.
func (s *Service) Erase(ctx context.Context, bot string, sub Subject) ([]string, error) {
	ids, err := s.subjectConversations(ctx, bot, sub)
	if err != nil {
		return nil, err
	}
	erased := []string{}
	for _, id := range ids {
		if err := s.EraseConversation(ctx, id); err != nil {
			return erased, err
		}
		erased = append(erased, id)
	}
	return erased, nil
}

// EraseConversation deletes one conversation with everything of it, and
// drops what this process still had queued for it.
func (s *Service) EraseConversation(ctx context.Context, id string) error {
	if err := s.store.Erase(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.reads, id)
	if q := s.queues[id]; q != nil {
		q.items = nil // the worker finds nothing left and stops
		q.nudge()
	}
	s.mu.Unlock()
	s.log.Info("conversation erased by the admin API", "conversation", id)
	return nil
}

// AdminAPI returns the admin API's handler alone: every path under
// /admin/v1/, each checked against token (a bearer token, compared in
// constant time). An empty token serves nothing but 404s: the API is
// off. The admin listener mounts the same routes (adminRoutes).
func (s *Server) AdminAPI(token string) http.Handler {
	mux := http.NewServeMux()
	s.adminAPIRoutes(token, func(pattern string, h http.Handler) { mux.Handle(pattern, h) })
	return mux
}

// adminAPIRoutes hands each route of the admin API to handle; none
// without a token.
func (s *Server) adminAPIRoutes(token string, handle func(pattern string, h http.Handler)) {
	if token == "" {
		return
	}
	auth := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="porthole admin"`)
				httpError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <admin_token>")
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			h(w, r)
		})
	}
	handle("GET /admin/v1/bots/{bot}/conversations", auth(s.adminList))
	handle("GET /admin/v1/conversations/{id}", auth(s.adminDump))
	handle("GET /admin/v1/bots/{bot}/export", auth(s.adminExport))
	handle("POST /admin/v1/bots/{bot}/erase", auth(s.adminErase))
}

// adminBot returns the bot the path names, answering 404 when there is
// none.
func (s *Server) adminBot(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("bot")
	if s.bot(id) == nil {
		httpError(w, http.StatusNotFound, "unknown_bot", "no bot "+strconv.Quote(id)+" in the config")
		return "", false
	}
	return id, true
}

// adminList answers GET /admin/v1/bots/{bot}/conversations?limit=&after=:
// a page of conversations and the cursor of the next, "" at the end.
func (s *Server) adminList(w http.ResponseWriter, r *http.Request) {
	bot, ok := s.adminBot(w, r)
	if !ok {
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpError(w, http.StatusBadRequest, "bad_limit", "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	after, err := decodeCursor(r.URL.Query().Get("after"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad_cursor", "after must be the next cursor of an earlier page")
		return
	}
	cs, err := s.service.Conversations(r.Context(), bot, after, limit)
	if err != nil {
		s.adminFailed(w, err)
		return
	}
	next := ""
	if len(cs) == limit {
		last := cs[len(cs)-1]
		next = encodeCursor(store.Cursor{Updated: last.Updated, ID: last.ID})
	}
	writeJSON(w, map[string]any{"conversations": cs, "next": next})
}

// adminDump answers GET /admin/v1/conversations/{id}.
func (s *Server) adminDump(w http.ResponseWriter, r *http.Request) {
	t, err := s.service.Dump(r.Context(), r.PathValue("id"))
	if err != nil {
		s.adminFailed(w, err)
		return
	}
	writeJSON(w, t)
}

// subject reads ?visitor=ID, ?token=VISITOR-TOKEN (as the widget keeps it,
// decoded with the session keys) or ?user=ID.
func (s *Server) subject(w http.ResponseWriter, r *http.Request, bot string) (Subject, bool) {
	q := r.URL.Query()
	sub := Subject{Visitor: q.Get("visitor"), User: q.Get("user")}
	if tok := q.Get("token"); tok != "" {
		v, ok := s.keys.Visitor(bot, tok)
		if !ok {
			httpError(w, http.StatusBadRequest, "bad_token", "token is not a valid visitor token of this bot (expired, or signed with other session_keys)")
			return sub, false
		}
		sub.Visitor = v
	}
	if sub.Visitor != "" && !validVisitorID(sub.Visitor) {
		httpError(w, http.StatusBadRequest, "bad_visitor", "visitor must be a visitor id: 32 lowercase hex characters")
		return sub, false
	}
	if sub.Visitor == "" && sub.User == "" {
		httpError(w, http.StatusBadRequest, "no_subject", "name whose data: ?visitor=ID, ?token=VISITOR-TOKEN or ?user=USER-ID")
		return sub, false
	}
	return sub, true
}

// adminSubject reads the bot of the path and whose data the query names,
// answering the request itself when either is wrong.
func (s *Server) adminSubject(w http.ResponseWriter, r *http.Request) (string, Subject, bool) {
	bot, ok := s.adminBot(w, r)
	if !ok {
		return "", Subject{}, false
	}
	sub, ok := s.subject(w, r, bot)
	return bot, sub, ok
}

// adminExport answers GET /admin/v1/bots/{bot}/export?visitor=|token=|user=.
func (s *Server) adminExport(w http.ResponseWriter, r *http.Request) {
	bot, sub, ok := s.adminSubject(w, r)
	if !ok {
		return
	}
	ex, err := s.service.Export(r.Context(), bot, sub)
	if err != nil {
		s.adminFailed(w, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="porthole-export.json"`)
	writeJSON(w, ex)
}

// adminErase answers POST /admin/v1/bots/{bot}/erase?visitor=|token=|user=.
func (s *Server) adminErase(w http.ResponseWriter, r *http.Request) {
	bot, sub, ok := s.adminSubject(w, r)
	if !ok {
		return
	}
	ids, err := s.service.Erase(r.Context(), bot, sub)
	if err != nil {
		s.adminFailed(w, err)
		return
	}
	writeJSON(w, map[string]any{"erased": ids, "note": platformCopyNote})
}

// adminFailed answers a store error: 404 for what does not exist, 503
// otherwise (the store is down: try again).
func (s *Server) adminFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		httpError(w, http.StatusNotFound, "not_found", "no such conversation")
		return
	}
	s.log.Error("admin API: store error", "error", err)
	httpError(w, http.StatusServiceUnavailable, "store_unavailable", "the store cannot answer now; try again")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// encodeCursor and decodeCursor make List's cursor an opaque string.
func encodeCursor(c store.Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Updated.UnixMilli(), 10) + "." + c.ID))
}

func decodeCursor(s string) (store.Cursor, error) {
	if s == "" {
		return store.Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.Cursor{}, err
	}
	ms, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return store.Cursor{}, errors.New("bad cursor")
	}
	return store.Cursor{Updated: time.UnixMilli(n).UTC(), ID: id}, nil
}
