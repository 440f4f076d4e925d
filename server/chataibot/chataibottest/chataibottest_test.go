package chataibottest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
)

// The fixtures are copied verbatim from ../shared/fixtures/chataibot,
// samples of ChatAIBot's documentation. The start request's bot_key is
// the placeholder "<bot_key>".
const fixtureBotKey = "<bot_key>"

func fixture(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// call posts body (JSON-encoded unless []byte) to the emulator with the
// given token and returns the status, headers and decoded answer.
func call(t *testing.T, s *chataibottest.Server, token, path string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("POST %s answered %d with a body that is not a JSON object: %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, v
}

func newServer(t *testing.T, opts chataibottest.Options) *chataibottest.Server {
	t.Helper()
	s := chataibottest.NewServer(opts)
	t.Cleanup(s.Close)
	return s
}

// start starts a conversation with the fixture and returns its id.
func start(t *testing.T, s *chataibottest.Server, mutate func(map[string]any)) string {
	t.Helper()
	req := fixture(t, "start-conversation-request.json")
	req["bot_key"] = chataibottest.DefaultBotKey
	if mutate != nil {
		mutate(req)
	}
	status, _, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", req)
	if status != 200 || ans["ok"] != true {
		t.Fatalf("start answered %d %v", status, ans)
	}
	return ans["conversation"].(map[string]any)["id"].(string)
}

func TestFixtureRequestsAreAccepted(t *testing.T) {
	s := newServer(t, chataibottest.Options{BotKey: fixtureBotKey})
	status, _, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", fixture(t, "start-conversation-request.json"))
	if status != 200 || ans["ok"] != true {
		t.Fatalf("start fixture: %d %v", status, ans)
	}
	id := ans["conversation"].(map[string]any)["id"].(string)
	status, _, ans = call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", fixture(t, "send-message-request.json"))
	if status != 200 || ans["ok"] != true {
		t.Fatalf("send fixture: %d %v", status, ans)
	}
	c, ok := s.Conversation(id)
	if !ok || c.Visitor != "<visitor_id>" || !reflect.DeepEqual(c.Messages, []string{"Hello", "Hello"}) {
		t.Errorf("conversation = %+v", c)
	}
	if got := c.Variables["conversation"]; !reflect.DeepEqual(got, map[string]any{"variable": "value"}) {
		t.Errorf("variables.conversation = %v", got)
	}
}

// shape describes a JSON value's structure: object keys and value types,
// without the values.
func shape(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = shape(x)
		}
		return out
	case []any:
		if len(v) == 0 {
			return "array"
		}
		return []any{shape(v[0])}
	case string:
		return "string"
	case bool:
		return "bool"
	case float64, json.Number:
		return "number"
	case nil:
		return "null"
	}
	return "?"
}

func TestAnswersHaveTheFixturesShape(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	status, _, startAns := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", func() map[string]any {
		req := fixture(t, "start-conversation-request.json")
		req["bot_key"] = chataibottest.DefaultBotKey
		return req
	}())
	if status != 200 {
		t.Fatal(status, startAns)
	}
	if got, want := shape(startAns), shape(fixture(t, "start-conversation-response.json")); !reflect.DeepEqual(got, want) {
		t.Errorf("start answer shape\n got %v\nwant %v", got, want)
	}
	conv := startAns["conversation"].(map[string]any)
	if _, err := time.Parse("2006-01-02 15:04:05.000000", conv["created_at"].(string)); err != nil {
		t.Errorf("created_at %q is not like the fixture's: %v", conv["created_at"], err)
	}
	contact := startAns["contact"].(map[string]any)
	if contact["name"] != "User Name" || !strings.HasPrefix(contact["visitor_key"].(string), "<visitor_id>_") {
		t.Errorf("contact = %v", contact)
	}
	_, _, sendAns := call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+conv["id"].(string)+"/messages", fixture(t, "send-message-request.json"))
	if got, want := shape(sendAns), shape(fixture(t, "send-message-response.json")); !reflect.DeepEqual(got, want) {
		t.Errorf("send answer shape\n got %v\nwant %v", got, want)
	}
	if id := sendAns["message_id"].(string); len(id) != 32 {
		t.Errorf("message_id %q is not 32 characters like the fixture's", id)
	}
}

func TestRejectsMalformedStarts(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	del := func(path string) func(map[string]any) {
		return func(m map[string]any) {
			keys := strings.Split(path, ".")
			for _, k := range keys[:len(keys)-1] {
				m = m[k].(map[string]any)
			}
			delete(m, keys[len(keys)-1])
		}
	}
	set := func(path string, v any) func(map[string]any) {
		return func(m map[string]any) {
			keys := strings.Split(path, ".")
			for _, k := range keys[:len(keys)-1] {
				m = m[k].(map[string]any)
			}
			m[keys[len(keys)-1]] = v
		}
	}
	for _, tt := range []struct {
		name   string
		mutate func(map[string]any)
		field  string
	}{
		{"no channel", del("channel"), "channel"},
		{"wrong channel", set("channel", "WEB"), "channel"},
		{"no message", del("message"), "message.type"},
		{"no message type", del("message.type"), "message.type"},
		{"wrong message type", set("message.type", "image"), "message.type"},
		{"no body", del("message.data.body"), "message.data.body"},
		{"empty body", set("message.data.body", " "), "message.data.body"},
		{"body not a string", set("message.data.body", 42), "message.data.body"},
		{"no bot key", del("bot_key"), "bot_key"},
		{"wrong bot key", set("bot_key", "nope"), "bot_key"},
		{"no from", del("from"), "from.user_external_id"},
		{"no external id", del("from.user_external_id"), "from.user_external_id"},
		{"no from type", del("from.type"), "from.type"},
		{"wrong from type", set("from.type", "BOT"), "from.type"},
		{"variables not an object", set("variables", "x"), "variables"},
		{"system not an object", set("variables.system", []any{}), "variables.system"},
		{"contact name not a string", set("variables.contact.name", 1), "variables.contact.name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := fixture(t, "start-conversation-request.json")
			req["bot_key"] = chataibottest.DefaultBotKey
			tt.mutate(req)
			status, _, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", req)
			if status != 400 || ans["ok"] != false || !strings.HasPrefix(ans["error"].(string), tt.field+" ") {
				t.Errorf("got %d %v, want 400 naming %s", status, ans, tt.field)
			}
		})
	}
	if n := len(s.Conversations()); n != 0 {
		t.Errorf("%d conversations started by malformed requests", n)
	}
	// Unknown fields and an absent variables are fine.
	start(t, s, func(m map[string]any) { m["extra"] = map[string]any{"x": 1}; delete(m, "variables") })
	// Not JSON.
	if status, _, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", []byte("{")); status != 400 || ans["ok"] != false {
		t.Errorf("bad JSON: %d %v", status, ans)
	}
	if status, _, _ := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", []byte("[]")); status != 400 {
		t.Errorf("array body: %d", status)
	}
}

func TestRejectsMalformedSends(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	id := start(t, s, nil)
	path := "/api/v1/conversation/" + id + "/messages"
	for _, tt := range []struct {
		name  string
		body  string
		field string
	}{
		{"no message", `{"user":{"type":"VISITOR"}}`, "message.type"},
		{"no body", `{"message":{"type":"text","data":{}},"user":{"type":"VISITOR"}}`, "message.data.body"},
		{"wrong type", `{"message":{"type":"file","data":{"body":"x"}},"user":{"type":"VISITOR"}}`, "message.type"},
		{"no user", `{"message":{"type":"text","data":{"body":"x"}}}`, "user.type"},
		{"wrong user", `{"message":{"type":"text","data":{"body":"x"}},"user":{"type":"AGENT"}}`, "user.type"},
	} {
		status, _, ans := call(t, s, chataibottest.DefaultToken, path, []byte(tt.body))
		if status != 400 || ans["ok"] != false || !strings.HasPrefix(ans["error"].(string), tt.field+" ") {
			t.Errorf("%s: got %d %v, want 400 naming %s", tt.name, status, ans, tt.field)
		}
	}
	status, _, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/nosuch/messages", fixture(t, "send-message-request.json"))
	if status != 404 || ans["ok"] != false {
		t.Errorf("unknown conversation: %d %v", status, ans)
	}
	// Unknown fields are fine.
	status, _, _ = call(t, s, chataibottest.DefaultToken, path, []byte(`{"message":{"type":"text","data":{"body":"x","extra":1}},"user":{"type":"VISITOR","id":"u"},"meta":{}}`))
	if status != 200 {
		t.Errorf("unknown fields: %d", status)
	}
	if c, _ := s.Conversation(id); len(c.Messages) != 2 {
		t.Errorf("messages = %q, want the start's and the valid send's", c.Messages)
	}
}

func TestBearerCheck(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	for _, token := range []string{"", "wrong", strings.ToUpper(chataibottest.DefaultToken)} {
		status, _, ans := call(t, s, token, "/api/v1/conversations", fixture(t, "start-conversation-request.json"))
		if status != 401 || ans["ok"] != false {
			t.Errorf("token %q: %d %v", token, status, ans)
		}
	}
	// Wrong scheme.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/conversations", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Token "+chataibottest.DefaultToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Token scheme: %d", resp.StatusCode)
	}
	if st := s.Stats(); st.Unauthorized != 4 || st.Started != 0 {
		t.Errorf("stats = %+v", st)
	}
	// The content type is checked too.
	req, _ = http.NewRequest(http.MethodPost, s.URL+"/api/v1/conversations", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+chataibottest.DefaultToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("no Content-Type: %d", resp.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	s := newServer(t, chataibottest.Options{RateLimit: 2})
	id := start(t, s, nil)
	status, h, _ := call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", fixture(t, "send-message-request.json"))
	if status != 200 || h.Get("X-Ratelimit-Limit") != "2" || h.Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("second call: %d %v", status, h)
	}
	reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64)
	if err != nil || time.Until(time.Unix(reset, 0)) > time.Minute+time.Second {
		t.Errorf("x-ratelimit-reset %q", h.Get("X-Ratelimit-Reset"))
	}
	status, h, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", fixture(t, "send-message-request.json"))
	if status != 429 || ans["ok"] != false || h.Get("Retry-After") == "" {
		t.Errorf("third call: %d %v %v", status, h, ans)
	}
	if c, _ := s.Conversation(id); len(c.Messages) != 2 {
		t.Errorf("a throttled message was taken: %q", c.Messages)
	}
}

func TestInjectedFaults(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	s.FailNext(1, 429, http.Header{"Retry-After": {"3"}, "X-Ratelimit-Reset": {"1739218863913"}})
	s.FailNext(1, 503, nil)
	s.NotOKNext(1, "Bot is paused")
	req := fixture(t, "start-conversation-request.json")
	req["bot_key"] = chataibottest.DefaultBotKey
	status, h, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", req)
	if status != 429 || h.Get("Retry-After") != "3" || h.Get("X-Ratelimit-Reset") != "1739218863913" || ans["ok"] != false {
		t.Errorf("first: %d %v %v", status, h, ans)
	}
	if status, _, _ = call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", req); status != 503 {
		t.Errorf("second: %d", status)
	}
	status, _, ans = call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", req)
	if status != 200 || ans["ok"] != false || ans["error"] != "Bot is paused" {
		t.Errorf("third: %d %v", status, ans)
	}
	if len(s.Conversations()) != 0 {
		t.Errorf("a faulted call started a conversation")
	}
	start(t, s, nil)
	if st := s.Stats(); st.Faults != 3 || st.Started != 1 {
		t.Errorf("stats = %+v", st)
	}

	s.Slow(150 * time.Millisecond)
	t0 := time.Now()
	start(t, s, nil)
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Errorf("Slow: answered in %v", d)
	}
	s.Slow(0)
	// A client that gives up on a slow server leaves nothing behind.
	s.Slow(time.Second)
	client := &http.Client{Timeout: 50 * time.Millisecond}
	r, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/conversations", strings.NewReader(`{}`))
	if _, err := client.Do(r); err == nil {
		t.Error("slow server answered within the client's timeout")
	}
	s.Slow(0)
}

func TestRequestsAreRecorded(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	start(t, s, nil)
	call(t, s, "bad", "/api/v1/conversations", []byte(`{}`))
	rs := s.Requests()
	if len(rs) != 2 || rs[0].Status != 200 || rs[1].Status != 401 || rs[0].Path != "/api/v1/conversations" || rs[0].Header.Get("Authorization") == "" || len(rs[0].Body) == 0 {
		t.Errorf("requests = %+v", rs)
	}
}

func TestHandlerServesWithoutNewServer(t *testing.T) {
	s := chataibottest.New(chataibottest.Options{})
	defer s.Close()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	s.URL = hs.URL
	start(t, s, nil)
}

// TestParallelCallbacks: with Parallel set, one conversation's callback
// does not wait for another's (the hook holds A's until B's has come,
// which would never happen one at a time), and each conversation's
