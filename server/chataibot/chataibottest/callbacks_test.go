package chataibottest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// callback is the reply webhook body the README assumes ("Assumed reply
// webhook"; in_reply_to is optional), written from that contract rather
// than taken from the adapter, so that these tests hold the emulator to
// the contract and not to whatever the adapter reads.
type callback struct {
	ConversationID string       `json:"conversation_id"`
	MessageID      string       `json:"message_id"`
	InReplyTo      string       `json:"in_reply_to"`
	Messages       []botMessage `json:"messages"`
}

// botMessage is one message of a callback: a type and its data.
type botMessage struct {
	Type string `json:"type"`
	Data struct {
		Body         string   `json:"body"`
		QuickReplies []choice `json:"quick_replies"`
		Buttons      []button `json:"buttons"`
		Cards        []card   `json:"cards"`
		URL          string   `json:"url"`
		Caption      string   `json:"caption"`
		Name         string   `json:"name"`
	} `json:"data"`
}

type choice struct {
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

type button struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload"`
	URL     string `json:"url"`
	Phone   string `json:"phone"`
}

type card struct {
	Title    string   `json:"title"`
	Subtitle string   `json:"subtitle"`
	ImageURL string   `json:"image_url"`
	URL      string   `json:"url"`
	Buttons  []button `json:"buttons"`
}

// decodeCallback reads a callback body, refusing any field the contract
// does not name.
func decodeCallback(b []byte) (callback, error) {
	var cb callback
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&cb)
	return cb, err
}

// hook is a callback receiver that records what it gets and answers with
// the statuses queued in fail (then 200).
type hook struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []callback
	header []http.Header
	fail   []int
}

func newHook(t *testing.T) *hook {
	h := &hook{t: t}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		cb, err := decodeCallback(b)
		if err != nil {
			t.Errorf("callback body does not follow the assumed reply contract: %v: %s", err, b)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.fail) > 0 {
			w.WriteHeader(h.fail[0])
			h.fail = h.fail[1:]
			return
		}
		h.bodies = append(h.bodies, cb)
		h.header = append(h.header, r.Header.Clone())
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() []callback {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]callback(nil), h.bodies...)
}

func texts(cb callback) []string {
	var out []string
	for _, m := range cb.Messages {
		out = append(out, m.Data.Body)
	}
	return out
}

func TestBotAnswersByCallback(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	h := newHook(t)
	s.SetCallback(h.srv.URL+"/hooks/chataibot/shop", "hook-secret-0123456789")
	id := start(t, s, func(m map[string]any) {
		m["message"].(map[string]any)["data"].(map[string]any)["body"] = "Hi there"
		m["variables"].(map[string]any)["conversation"] = map[string]any{"plan": "pro"}
	})
	call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", []byte(`{"message":{"type":"text","data":{"body":"count"}},"user":{"type":"VISITOR"}}`))
	call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", []byte(`{"message":{"type":"text","data":{"body":"first"}},"user":{"type":"VISITOR"}}`))
	providertest.Idle(t, s)
	got := h.got()
	if len(got) != 3 {
		t.Fatalf("got %d callbacks, want 3", len(got))
	}
	want := [][]string{
		{"Welcome! Your first message was: Hi there. Your plan: pro", "You said: Hi there (message 1)"},
		{"Messages so far: 2"},
		{"Your first message was: Hi there"},
	}
	for i, cb := range got {
		if cb.ConversationID != id || cb.MessageID == "" || cb.InReplyTo == "" {
			t.Errorf("callback %d = %+v", i, cb)
		}
		if !reflect.DeepEqual(texts(cb), want[i]) {
			t.Errorf("callback %d says %q, want %q", i, texts(cb), want[i])
		}
		if a := h.header[i].Get("Authorization"); a != "Bearer hook-secret-0123456789" {
			t.Errorf("callback %d Authorization = %q", i, a)
		}
	}

	// Every kind, in one batch.
	call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", []byte(`{"message":{"type":"text","data":{"body":"ALL"}},"user":{"type":"VISITOR"}}`))
	providertest.Idle(t, s)
	all := h.got()[3].Messages
	var types []string
	for _, m := range all {
		types = append(types, m.Type)
	}
	if want := []string{"text", "text", "buttons", "carousel", "image", "video", "audio", "file"}; !reflect.DeepEqual(types, want) {
		t.Errorf("all: types %q, want %q", types, want)
	}
}

func TestCallbackHeaderMode(t *testing.T) {
	s := newServer(t, chataibottest.Options{CallbackHeader: "X-Porthole-Secret"})
	h := newHook(t)
	s.SetCallback(h.srv.URL, "hook-secret-0123456789")
	start(t, s, nil)
	providertest.Idle(t, s)
	if got := h.got(); len(got) != 1 || h.header[0].Get("X-Porthole-Secret") != "hook-secret-0123456789" || h.header[0].Get("Authorization") != "" {
		t.Fatalf("got %d callbacks, headers %v", len(got), h.header)
	}
}

func TestCallbackRetries(t *testing.T) {
	s := newServer(t, chataibottest.Options{RetryDelay: time.Millisecond})
	h := newHook(t)
	s.SetCallback(h.srv.URL, "hook-secret-0123456789")
	h.fail = []int{500, 503, 401}
	start(t, s, nil)
	providertest.Idle(t, s)
	if n := len(h.got()); n != 1 {
		t.Errorf("delivered %d, want 1 after 3 failures", n)
	}
	if st := s.Stats(); st.CallbackAttempts != 4 || st.CallbacksDelivered != 1 || st.CallbacksFailed != 0 {
		t.Errorf("stats = %+v", st)
	}
	// Four failures: given up.
	h.fail = []int{500, 500, 500, 500}
	start(t, s, nil)
	providertest.Idle(t, s)
	if st := s.Stats(); st.CallbackAttempts != 8 || st.CallbacksDelivered != 1 || st.CallbacksFailed != 1 {
		t.Errorf("stats = %+v", st)
	}
	var attempts []int
	for _, a := range s.Callbacks() {
		attempts = append(attempts, a.Attempt)
	}
	if want := []int{1, 2, 3, 4, 1, 2, 3, 4}; !reflect.DeepEqual(attempts, want) {
		t.Errorf("attempts = %v", attempts)
	}
	// A receiver that is down: network errors are retried too.
	s.SetCallback("http://127.0.0.1:1/hooks", "x")
	start(t, s, nil)
	providertest.Idle(t, s)
	if st := s.Stats(); st.CallbackAttempts != 12 || st.CallbacksFailed != 2 {
		t.Errorf("stats = %+v", st)
	}
	if last := s.Callbacks()[11]; last.Status != 0 || last.Err == "" {
		t.Errorf("last attempt = %+v", last)
	}
}

func TestCallbackFaults(t *testing.T) {
	s := newServer(t, chataibottest.Options{})
	h := newHook(t)
	s.SetCallback(h.srv.URL, "hook-secret-0123456789")
	id := start(t, s, nil) // batch 1
	providertest.Idle(t, s)
	sendText := func(text string) {
		call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", []byte(`{"message":{"type":"text","data":{"body":"`+text+`"}},"user":{"type":"VISITOR"}}`))
	}
	s.DropCallbacks(1)
	sendText("dropped")
	s.DuplicateCallbacks(1)
	sendText("twice")
	providertest.Idle(t, s)
	s.ReorderCallbacks(1)
	sendText("late")
	sendText("early")
	providertest.Idle(t, s)
	var said []string
	for _, cb := range h.got() {
		said = append(said, texts(cb)[len(texts(cb))-1])
	}
	want := []string{
		"You said: Hello (message 1)",
		"You said: twice (message 3)", "You said: twice (message 3)",
		"You said: early (message 5)", "You said: late (message 4)",
	}
	if !reflect.DeepEqual(said, want) {
		t.Errorf("callbacks said\n%q\nwant\n%q", said, want)
	}
	if st := s.Stats(); st.CallbacksDropped != 1 || st.CallbacksDuplicated != 1 || st.Replies != 5 {
		t.Errorf("stats = %+v", st)
	}

	// A held batch goes on its own after ReorderWait.
	s2 := newServer(t, chataibottest.Options{ReorderWait: 20 * time.Millisecond})
	s2.SetCallback(h.srv.URL, "x")
	s2.ReorderCallbacks(1)
	start(t, s2, nil)
	providertest.Idle(t, s2)
	if st := s2.Stats(); st.CallbacksDelivered != 1 {
		t.Errorf("held batch: %+v", st)
	}

	// Delay.
	s.DelayCallbacks(100 * time.Millisecond)
	t0 := time.Now()
	sendText("slow")
	providertest.Idle(t, s)
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Errorf("delayed callback came after %v", d)
	}
}

func TestRepliesInResponse(t *testing.T) {
	s := newServer(t, chataibottest.Options{RepliesInResponse: true})
	h := newHook(t)
	s.SetCallback(h.srv.URL, "x")
	req := fixture(t, "start-conversation-request.json")
	req["bot_key"] = chataibottest.DefaultBotKey
	_, _, ans := call(t, s, chataibottest.DefaultToken, "/api/v1/conversations", req)
	if msgs, _ := ans["messages"].([]any); len(msgs) != 2 {
		t.Errorf("start answer messages = %v", ans["messages"])
	}
	id := ans["conversation"].(map[string]any)["id"].(string)
	_, _, ans = call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+id+"/messages", []byte(`{"message":{"type":"text","data":{"body":"image"}},"user":{"type":"VISITOR"}}`))
	if msgs, _ := ans["messages"].([]any); len(msgs) != 1 || msgs[0].(map[string]any)["type"] != "image" {
		t.Errorf("send answer messages = %v", ans["messages"])
	}
	providertest.Idle(t, s)
	if len(h.got()) != 0 {
		t.Error("replies were posted by callback too")
	}
}

// callbacks still come in order.
func TestParallelCallbacks(t *testing.T) {
	s := newServer(t, chataibottest.Options{Parallel: 4})
	var mu sync.Mutex
	order := map[string][]string{}
	bCame := make(chan struct{})
	var once sync.Once
	var a string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cb callback
		json.NewDecoder(r.Body).Decode(&cb)
		mu.Lock()
		order[cb.ConversationID] = append(order[cb.ConversationID], texts(cb)[len(texts(cb))-1])
		isA := cb.ConversationID == a
		mu.Unlock()
		if isA {
			select {
			case <-bCame:
			case <-time.After(5 * time.Second):
				http.Error(w, "B never came while A was held", http.StatusTeapot)
				return
			}
		} else {
			once.Do(func() { close(bCame) })
		}
	}))
	t.Cleanup(hs.Close)
	s.SetCallback(hs.URL, "hook-secret-0123456789")
	mu.Lock()
	a = start(t, s, nil)
	mu.Unlock()
	b := start(t, s, nil)
	for i := range 3 {
		call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+a+"/messages", []byte(`{"message":{"type":"text","data":{"body":"a`+strconv.Itoa(i)+`"}},"user":{"type":"VISITOR"}}`))
	}
	call(t, s, chataibottest.DefaultToken, "/api/v1/conversation/"+b+"/messages", []byte(`{"message":{"type":"text","data":{"body":"b"}},"user":{"type":"VISITOR"}}`))
	providertest.Idle(t, s)
	if st := s.Stats(); st.CallbacksFailed != 0 || st.CallbacksDelivered != 6 {
		t.Fatalf("stats %+v: a conversation's callback waited for another's", st)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"", "You said: a0 (message 2)", "You said: a1 (message 3)", "You said: a2 (message 4)"}
	got := order[a]
	if len(got) != 4 || !reflect.DeepEqual(got[1:], want[1:]) {
		t.Errorf("conversation A's callbacks came as %q", got)
	}
}
