package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/widget"
)

const testAdminToken = "admin-token-for-tests-0123456789"

// adminCall makes one admin API request and decodes its JSON answer.
func adminCall(t *testing.T, api http.Handler, method, path, token string, out any) int {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if out != nil && rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, rec.Body)
		}
	}
	if strings.Contains(rec.Body.String(), testAdminToken) {
		t.Fatalf("%s %s: the answer holds the admin token", method, path)
	}
	return rec.Code
}

// TestAdminExportAndErase: the export holds every message and what the
// service keeps about the visitor; after the erase the store holds
// nothing of theirs, their old token finds nothing (the widget starts
// afresh), and another visitor's conversation is whole.
func TestAdminExportAndErase(t *testing.T) {
	h := newHarness(t, nil)
	api := h.srv.AdminAPI(testAdminToken)
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"gold"}`)})
	c.ack("s1")
	for _, id := range []string{"a1", "a2"} {
		c.send(&widget.Send{ID: id, Text: "private " + id})
		c.ack(id)
		c.msgWith("the echo of "+id, func(m *widget.Msg) bool { return m.Body.Text == "echo: private "+id })
	}
	other := h.connect("acme")
	ow := other.open("", 0)
	other.send(&widget.Send{ID: "b1", Text: "someone else"})
	other.ack("b1")
	visitor, _ := h.srv.keys.Visitor("acme", w.Visitor)

	for _, tc := range []struct{ token, path string }{{"", "/admin/v1/bots/acme/conversations"}, {"wrong", "/admin/v1/bots/acme/export?visitor=" + visitor}} {
		if code := adminCall(t, api, "GET", tc.path, tc.token, nil); code != http.StatusUnauthorized {
			t.Fatalf("%s with token %q: %d, want 401", tc.path, tc.token, code)
		}
	}

	var list struct {
		Conversations []AdminConversation
		Next          string
	}
	if code := adminCall(t, api, "GET", "/admin/v1/bots/acme/conversations?limit=1", testAdminToken, &list); code != 200 || len(list.Conversations) != 1 || list.Next == "" {
		t.Fatalf("first page: %d %+v", code, list)
	}
	first := list.Conversations[0].ID
	if code := adminCall(t, api, "GET", "/admin/v1/bots/acme/conversations?limit=1&after="+list.Next, testAdminToken, &list); code != 200 || len(list.Conversations) != 1 || list.Conversations[0].ID == first {
		t.Fatalf("second page: %d %+v", code, list)
	}

	var ex AdminExport
	if code := adminCall(t, api, "GET", "/admin/v1/bots/acme/export?token="+w.Visitor, testAdminToken, &ex); code != 200 {
		t.Fatalf("export: %d", code)
	}
	if len(ex.Conversations) != 1 || ex.Conversations[0].Conversation.ID != w.Conversation {
		t.Fatalf("export holds %+v, want conversation %s", ex.Conversations, w.Conversation)
	}
	var texts []string
	for _, m := range ex.Conversations[0].Messages {
		texts = append(texts, m.Body.Text)
	}
	if got := strings.Join(texts, "|"); !strings.Contains(got, "private a1|echo: private a1|private a2|echo: private a2") {
		t.Fatalf("exported messages %q, want both messages and their answers", got)
	}
	var session bytes.Buffer
	if err := json.Compact(&session, ex.Conversations[0].Attributes["session"]); err != nil || session.String() != `{"plan":"gold"}` {
		t.Fatalf("exported session data %q, %v", session.String(), err)
	}
	if strings.Contains(mustJSON(t, ex), "someone else") {
		t.Fatal("the export holds another visitor's message")
	}

	var erased struct{ Erased []string }
	if code := adminCall(t, api, "POST", "/admin/v1/bots/acme/erase?visitor="+visitor, testAdminToken, &erased); code != 200 || len(erased.Erased) != 1 || erased.Erased[0] != w.Conversation {
		t.Fatalf("erase: %d %+v", code, erased)
	}
	if _, err := h.st.Get(t.Context(), w.Conversation); err == nil {
		t.Fatal("the erased conversation is still in the store")
	}
	if attrs, err := h.st.Attrs(t.Context(), w.Conversation); err == nil {
		t.Fatalf("the erased conversation's attributes are still there: %v", attrs)
	}
	if code := adminCall(t, api, "GET", "/admin/v1/conversations/"+w.Conversation, testAdminToken, nil); code != http.StatusNotFound {
		t.Fatalf("dump of the erased conversation: %d, want 404", code)
	}
	again := h.connect("acme")
	if aw := again.hello(w.Visitor, 2); aw.Conversation != "" || aw.Last != 0 {
		t.Fatalf("the old token after the erase: welcome %+v, want no conversation", aw)
	}
	var kept AdminTranscript
	if code := adminCall(t, api, "GET", "/admin/v1/conversations/"+ow.Conversation, testAdminToken, &kept); code != 200 || len(kept.Messages) == 0 {
		t.Fatalf("the other visitor's conversation after the erase: %d %+v", code, kept)
	}
}

// TestAdminAPIOffWithoutToken: with no admin_token the API answers
// nothing.
func TestAdminAPIOffWithoutToken(t *testing.T) {
	h := newHarness(t, nil)
	if code := adminCall(t, h.srv.AdminAPI(""), "GET", "/admin/v1/bots/acme/conversations", "", nil); code != http.StatusNotFound {
		t.Fatalf("admin API without a token: %d, want 404", code)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
