package chatlayertest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider/providertest"
)

const user = "0123456789abcdef0123456789abcdef"

// call posts body to the emulator and returns the status, the answer and
// its headers.
func call(t *testing.T, url string, header http.Header, body string) (int, string, http.Header) {
	t.Helper()
	return do(t, http.MethodPost, url, header, body)
}

// do makes one request and returns the status, body and headers.
func do(t *testing.T, method, url string, header http.Header, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func jsonHeader(bearer string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return h
}

func TestEmulatorRejectsMalformedAndUnauthenticated(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	defer emu.Close()
	v1 := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	legacy := emu.URL + "/api/webhookMessage/" + chatlayertest.DefaultBotID
	good := jsonHeader(chatlayertest.DefaultToken)
	vt := chatlayertest.DefaultVerifyToken
	cases := []struct {
		name   string
		url    string
		header http.Header
		body   string
		status int
		field  string // named in the error message
	}{
		{"v1 no auth", v1, jsonHeader(""), `{"user":{"id":"u"},"message":{"textMessage":{"text":"hi"}}}`, 401, "bearer"},
		{"v1 wrong token", v1, jsonHeader("x:y"), `{"user":{"id":"u"},"message":{"textMessage":{"text":"hi"}}}`, 401, "bearer"},
		{"v1 token without Bearer", v1, http.Header{"Content-Type": {"application/json"}, "Authorization": {chatlayertest.DefaultToken}}, `{}`, 401, "bearer"},
		{"v1 wrong channel", emu.URL + "/v1/channels/webhook/other/messages", good, `{"user":{"id":"u"},"message":{"textMessage":{"text":"hi"}}}`, 404, "channel"},
		{"v1 not JSON content", v1, http.Header{"Authorization": {"Bearer " + chatlayertest.DefaultToken}, "Content-Type": {"text/plain"}}, `{}`, 415, "Content-Type"},
		{"v1 not JSON", v1, good, `hello`, 400, "JSON object"},
		{"v1 no user", v1, good, `{"message":{"textMessage":{"text":"hi"}}}`, 400, "user.id or conversationId"},
		{"v1 user without id", v1, good, `{"user":{"firstName":"Ann"},"message":{"textMessage":{"text":"hi"}}}`, 400, "user.id"},
		{"v1 user id not a string", v1, good, `{"user":{"id":5},"message":{"textMessage":{"text":"hi"}}}`, 400, "user.id"},
		{"v1 bad preferredLanguage", v1, good, `{"user":{"id":"u","preferredLanguage":1},"message":{"textMessage":{"text":"hi"}}}`, 400, "user.preferredLanguage"},
		{"v1 empty conversationId", v1, good, `{"conversationId":"","message":{"textMessage":{"text":"hi"}}}`, 400, "conversationId"},
		{"v1 no message", v1, good, `{"user":{"id":"u"}}`, 400, "message"},
		{"v1 no message kind", v1, good, `{"user":{"id":"u"},"message":{}}`, 400, "exactly one of"},
		{"v1 two message kinds", v1, good, `{"user":{"id":"u"},"message":{"textMessage":{"text":"hi"},"introMessage":{}}}`, 400, "exactly one of"},
		{"v1 empty text", v1, good, `{"user":{"id":"u"},"message":{"textMessage":{"text":" "}}}`, 400, "message.textMessage.text"},
		{"v1 postback without title", v1, good, `{"user":{"id":"u"},"message":{"postbackMessage":{"nextDialogstateId":"1"}}}`, 400, "message.postbackMessage.title"},
		{"v1 postback bad sessionDataToSet", v1, good, `{"user":{"id":"u"},"message":{"postbackMessage":{"title":"t","sessionDataToSet":[{"value":1}]}}}`, 400, "sessionDataToSet[0].key"},
		{"v1 intro not an object", v1, good, `{"user":{"id":"u"},"message":{"introMessage":true}}`, 400, "message.introMessage"},
		{"v1 sessionData not an object", v1, good, `{"user":{"id":"u"},"message":{"textMessage":{"text":"hi"}},"sessionData":[1]}`, 400, "sessionData"},
		{"v1 ok with user", v1, good, `{"user":{"id":"u","firstName":"Ann","extra":true},"message":{"textMessage":{"text":"hi"}},"unknown":1}`, 200, ""},
		{"v1 ok with conversationId", v1, good, `{"conversationId":"c","message":{"postbackMessage":{"title":"Dutch","nextDialogstateId":"3050","sessionDataToSet":[{"key":"k","value":"v"}]}}}`, 200, ""},
		{"legacy wrong bot", emu.URL + "/api/webhookMessage/other", jsonHeader(""), `{}`, 404, "bot"},
		{"legacy no verify token", legacy, jsonHeader(""), `{"text":"hi","sender":{"id":"` + user + `"}}`, 401, "verifyToken"},
		{"legacy wrong verify token", legacy, jsonHeader(""), `{"text":"hi","sender":{"id":"` + user + `"},"verifyToken":"nope"}`, 401, "verifyToken"},
		{"legacy short sender", legacy, jsonHeader(""), `{"text":"hi","sender":{"id":"a7355930"},"verifyToken":"` + vt + `"}`, 400, "at least 32"},
		{"legacy no sender", legacy, jsonHeader(""), `{"text":"hi","verifyToken":"` + vt + `"}`, 400, "sender.id"},
		{"legacy no text", legacy, jsonHeader(""), `{"sender":{"id":"` + user + `"},"verifyToken":"` + vt + `"}`, 400, "text"},
		{"legacy bad locale", legacy, jsonHeader(""), `{"text":"hi","sender":{"id":"` + user + `"},"verifyToken":"` + vt + `","locale":1}`, 400, "locale"},
		{"unknown path", emu.URL + "/v2/whatever", good, `{}`, 404, "endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := call(t, tc.url, tc.header, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			if tc.field != "" && !strings.Contains(body, tc.field) {
				t.Errorf("answer %q does not name %q", body, tc.field)
			}
			if strings.Contains(body, chatlayertest.DefaultToken) || strings.Contains(body, vt) {
				t.Errorf("answer shows a secret: %s", body)
			}
			if tc.url != emu.URL+"/v2/whatever" && (hdr.Get("X-Ratelimit-Limit") == "" || hdr.Get("X-Ratelimit-Remaining") == "" || hdr.Get("X-Ratelimit-Reset") == "") {
				t.Errorf("rate-limit headers missing: %v", hdr)
			}
		})
	}
	status, body, hdr := call(t, legacy, jsonHeader(""), `{"text":"hi","sender":{"id":"`+user+`"},"verifyToken":"`+vt+`","locale":"fr"}`)
	if status != 200 || body != "EVENT_RECEIVED" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("legacy ok: %d %q %s", status, body, hdr.Get("Content-Type"))
	}
	if emu.Accepted("u") != 1 || emu.Accepted("c") != 1 || emu.Accepted(user) != 1 {
		t.Fatalf("accepted counts: u=%d c=%d legacy=%d", emu.Accepted("u"), emu.Accepted("c"), emu.Accepted(user))
	}
	reqs := emu.Requests()
	if len(reqs) != len(cases)-1+1 { // the unknown path is not an API request
		t.Fatalf("recorded %d requests", len(reqs))
	}
}

func TestEmulatorFaultsAndRateLimit(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{RateLimit: 3})
	defer emu.Close()
	url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	msg := `{"user":{"id":"u"},"message":{"textMessage":{"text":"hi"}}}`
	h := jsonHeader(chatlayertest.DefaultToken)

	emu.FailNext(1, 429, http.Header{"Retry-After": {"7"}})
	status, _, hdr := call(t, url, h, msg)
	if status != 429 || hdr.Get("Retry-After") != "7" {
		t.Fatalf("injected 429: %d Retry-After %q", status, hdr.Get("Retry-After"))
	}
	if status, _, _ = call(t, url, h, msg); status != 200 {
		t.Fatalf("after the fault: %d", status)
	}
	status, _, hdr = call(t, url, h, msg)
	if status != 200 || hdr.Get("X-Ratelimit-Limit") != "3" || hdr.Get("X-Ratelimit-Remaining") != "0" {
		t.Fatalf("third request: %d limit %s remaining %s", status, hdr.Get("X-Ratelimit-Limit"), hdr.Get("X-Ratelimit-Remaining"))
	}
	reset := hdr.Get("X-Ratelimit-Reset")
	if len(reset) != 13 {
		t.Errorf("x-ratelimit-reset %q, want epoch milliseconds", reset)
	}
	if status, _, _ = call(t, url, h, msg); status != 429 {
		t.Fatalf("over the rate limit: %d, want 429", status)
	}

	emu2 := chatlayertest.NewServer(chatlayertest.Options{})
	defer emu2.Close()
	url2 := emu2.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	emu2.FailNext(2, 503, nil)
	for i := range 2 {
		if status, _, _ := call(t, url2, h, msg); status != 503 {
			t.Fatalf("injected 503 #%d: %d", i, status)
		}
	}
	emu2.Slow(80 * time.Millisecond)
	start := time.Now()
	if status, _, _ := call(t, url2, h, msg); status != 200 || time.Since(start) < 80*time.Millisecond {
		t.Fatalf("slow: %d after %s", status, time.Since(start))
	}
}

// proxy is a fake webhook endpoint that records callbacks and can fail.
type proxy struct {
	mu    sync.Mutex
	got   []map[string]json.RawMessage
	fails int // next requests to answer 500
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m map[string]json.RawMessage
	json.NewDecoder(r.Body).Decode(&m)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fails > 0 {
		p.fails--
		w.WriteHeader(500)
		return
	}
	p.got = append(p.got, m)
}

func (p *proxy) messages() []map[string]json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]json.RawMessage(nil), p.got...)
}

func TestEmulatorCallbacks(t *testing.T) {
	p := &proxy{}
	hook := httptest.NewServer(p)
	defer hook.Close()
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL, RetryDelay: time.Millisecond})
	defer emu.Close()
	url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	h := jsonHeader(chatlayertest.DefaultToken)
	send := func(msg string) {
		t.Helper()
		if status, body, _ := call(t, url, h, `{"user":{"id":"`+user+`"},"message":`+msg+`}`); status != 200 {
			t.Fatalf("send %s: %d %s", msg, status, body)
		}
		providertest.Idle(t, emu)
	}

	send(`{"introMessage":{}}`)
	send(`{"textMessage":{"text":"all"}}`)
	send(`{"postbackMessage":{"title":"Carousel","payload":"emu-qr-carousel"}}`)
	if status, _, _ := call(t, url, h, `{"user":{"id":"`+user+`"},"message":{"textMessage":{"text":"hey"}},"sessionData":{"plan":"pro"}}`); status != 200 {
		t.Fatal("session send refused")
	}
	providertest.Idle(t, emu)

	got := p.messages()
	var texts []string
	kinds := map[string]bool{}
	for i, cb := range got {
		var counter uint64
		json.Unmarshal(cb["messageCounter"], &counter)
		if counter != uint64(i+1) {
			t.Errorf("callback %d has messageCounter %d", i, counter)
		}
		var sender, vt string
		json.Unmarshal(cb["senderId"], &sender)
		json.Unmarshal(cb["verifyToken"], &vt)
		if sender != user || vt != chatlayertest.DefaultVerifyToken {
			t.Errorf("callback %d: senderId %q, verify token right: %v", i, sender, vt == chatlayertest.DefaultVerifyToken)
		}
		kinds[kindOf(cb["message"])] = true
		if text := textOf(cb["message"]); text != "" {
			texts = append(texts, text)
		}
	}
	for _, k := range []string{"text", "quick_replies", "template:button", "template:generic", "template:list", "image", "video", "audio", "file", "event"} {
		if !kinds[k] {
			t.Errorf("the bot never sent a %s message (sent %v)", k, kinds)
		}
	}
	if !strings.HasPrefix(texts[0], "Hi! I am the emulated Chatlayer bot") {
		t.Errorf("greeting %q", texts[0])
	}
	joined := strings.Join(texts, "|")
	for _, want := range []string{"You clicked Carousel.", "You said: hey", "Your plan is pro."} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q among the replies %q", want, texts)
		}
	}
	if emu.Accepted(user) != 4 || emu.Produced(user) != uint64(len(got)) {
		t.Errorf("accepted %d, produced %d, delivered %d", emu.Accepted(user), emu.Produced(user), len(got))
	}

	// Every media URL the bot sends is served by the emulator.
	for _, name := range []string{"rose.png", "clip.mp4", "tone.wav", "readme.txt"} {
		resp, err := http.Get(emu.URL + "/assets/" + name)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("asset %s: %v %v", name, err, resp)
		}
		resp.Body.Close()
	}
}

// textOf returns the text of a Messenger-style text message (with or
// without quick replies), "" for another kind.
func textOf(raw json.RawMessage) string {
	var m struct{ Text string }
	json.Unmarshal(raw, &m)
	return m.Text
}

// kindOf names the kind of a Messenger-style message.
func kindOf(raw json.RawMessage) string {
	var m struct {
		Type         string
		Text         string
		QuickReplies []any `json:"quick_replies"`
		Attachment   struct {
			Type    string
			Payload struct {
				TemplateType string `json:"template_type"`
			}
		}
	}
	json.Unmarshal(raw, &m)
	switch {
	case m.Type == "event":
		return "event"
	case len(m.QuickReplies) > 0:
		return "quick_replies"
	case m.Text != "":
		return "text"
	case m.Attachment.Type == "template":
		return "template:" + m.Attachment.Payload.TemplateType
	}
	return m.Attachment.Type
}

func TestEmulatorCallbackRetries(t *testing.T) {
	p := &proxy{fails: 2}
	hook := httptest.NewServer(p)
	defer hook.Close()
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL, RetryDelay: time.Millisecond})
	defer emu.Close()
	url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	call(t, url, jsonHeader(chatlayertest.DefaultToken), `{"user":{"id":"`+user+`"},"message":{"textMessage":{"text":"text"}}}`)
	providertest.Idle(t, emu)
	if n := len(p.messages()); n != 1 {
		t.Fatalf("delivered %d after two failures, want 1", n)
	}
	cbs := emu.Callbacks()
	if len(cbs) != 3 || cbs[0].Status != 500 || cbs[2].Status != 200 || cbs[2].Attempt != 3 {
		t.Fatalf("attempts %+v", cbs)
	}

	// A proxy that always fails gets 1 + MaxRetries attempts, no more.
	p2 := &proxy{fails: 100}
	hook2 := httptest.NewServer(p2)
	defer hook2.Close()
	emu.SetCallback(hook2.URL)
	call(t, url, jsonHeader(chatlayertest.DefaultToken), `{"user":{"id":"`+user+`"},"message":{"textMessage":{"text":"text"}}}`)
	providertest.Idle(t, emu)
	if got := len(emu.Callbacks()) - len(cbs); got != 1+chatlayertest.MaxRetries {
		t.Fatalf("%d attempts against a failing proxy, want %d", got, 1+chatlayertest.MaxRetries)
	}
}

func TestEmulatorCallbackFaults(t *testing.T) {
	p := &proxy{}
	hook := httptest.NewServer(p)
	defer hook.Close()
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL, RouteField: "recipient", CallbackVerifyToken: "forged"})
	defer emu.Close()
	url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	media := `{"user":{"id":"` + user + `"},"message":{"textMessage":{"text":"media"}}}`

	emu.DropCallbacks(1)
	emu.DuplicateCallbacks(1)
	call(t, url, jsonHeader(chatlayertest.DefaultToken), media)
	providertest.Idle(t, emu)
	var counters []string
	for _, cb := range p.messages() {
		counters = append(counters, string(cb["messageCounter"]))
		if _, ok := cb["senderId"]; ok || !strings.Contains(string(cb["recipient"]), user) {
			t.Errorf("callback not routed by recipient.id: %v", cb)
		}
		if string(cb["verifyToken"]) != `"forged"` {
			t.Errorf("callback verify token %s, want the configured override", cb["verifyToken"])
		}
	}
	if strings.Join(counters, ",") != "2,2,3,4" {
		t.Fatalf("counters %v, want 1 dropped and 2 duplicated", counters)
	}

	p.mu.Lock()
	p.got = nil
	p.mu.Unlock()
	emu.ReorderCallbacks(1)
	call(t, url, jsonHeader(chatlayertest.DefaultToken), media)
	providertest.Idle(t, emu)
	counters = nil
	for _, cb := range p.messages() {
		counters = append(counters, string(cb["messageCounter"]))
	}
	if strings.Join(counters, ",") != "8,7,6,5" {
		t.Fatalf("reversed batch arrived as %v", counters)
	}
}

func TestEmulatorHandlerWithoutListener(t *testing.T) {
	emu := chatlayertest.New(chatlayertest.Options{})
	defer emu.Close()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/api/webhookMessage/"+chatlayertest.DefaultBotID,
		strings.NewReader(`{"text":"hi","sender":{"id":"`+user+`"},"verifyToken":"`+chatlayertest.DefaultVerifyToken+`"}`))
	req.Header.Set("Content-Type", "application/json")
	emu.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "EVENT_RECEIVED" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	providertest.Idle(t, emu) // no callback URL: the callback is recorded as failed, and retried
	cbs := emu.Callbacks()
	if len(cbs) != 1+chatlayertest.MaxRetries || cbs[0].Err == "" {
		t.Fatalf("callbacks without a URL: %+v", cbs)
	}
}

func TestEmulatorMediaBase(t *testing.T) {
	p := &proxy{}
	hook := httptest.NewServer(p)
	defer hook.Close()
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL, MediaBase: "http://127.0.0.1:8080/static/demo/"})
	defer emu.Close()
	call(t, emu.URL+"/v1/channels/webhook/"+chatlayertest.DefaultChannelID+"/messages", jsonHeader(chatlayertest.DefaultToken),
		`{"user":{"id":"`+user+`"},"message":{"textMessage":{"text":"media"}}}`)
	providertest.Idle(t, emu)
	var urls []string
	for _, cb := range p.messages() {
		var m struct {
			Attachment struct {
				Payload struct{ URL string }
			}
		}
		if err := json.Unmarshal(cb["message"], &m); err != nil || m.Attachment.Payload.URL == "" {
			t.Fatalf("%s: not a media message (%v)", cb["message"], err)
		}
		urls = append(urls, m.Attachment.Payload.URL)
	}
	want := "http://127.0.0.1:8080/static/demo/harbour.svg http://127.0.0.1:8080/static/demo/waves.webm http://127.0.0.1:8080/static/demo/bell.wav http://127.0.0.1:8080/static/demo/porthole-demo.pdf"
	if strings.Join(urls, " ") != want {
		t.Fatalf("media URLs %v", urls)
	}
}

// After SessionExpiry without a message, the next one starts a new
// session: messageCounter starts again at 1, and the callbacks record the
// session in Epoch. Within the expiry the session and its counter go on.
func TestEmulatorSessionExpiry(t *testing.T) {
	p := &proxy{}
	hook := httptest.NewServer(p)
	defer hook.Close()
	const expiry = 150 * time.Millisecond
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL, SessionExpiry: expiry})
	defer emu.Close()
	if emu.SessionExpiry() != expiry {
		t.Fatalf("SessionExpiry() = %s", emu.SessionExpiry())
	}
	url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	h := jsonHeader(chatlayertest.DefaultToken)
	send := func(text string) {
		t.Helper()
		if status, body, _ := call(t, url, h, `{"user":{"id":"`+user+`"},"message":{"textMessage":{"text":"`+text+`"}}}`); status != 200 {
			t.Fatalf("send %s: %d %s", text, status, body)
		}
		providertest.Idle(t, emu)
	}
	if n := emu.Sessions(user); n != 0 {
		t.Fatalf("%d sessions before the first message", n)
	}
	send("one")
	send("two") // at once: the same session
	if n, c := emu.Sessions(user), emu.Produced(user); n != 1 || c != 2 {
		t.Fatalf("after two messages at once: %d sessions, counter %d; want 1 session at 2", n, c)
	}
	time.Sleep(expiry + 50*time.Millisecond)
	send("three")
	send("four")
	if n, c := emu.Sessions(user), emu.Produced(user); n != 2 || c != 2 {
		t.Fatalf("after the expiry: %d sessions, counter %d; want 2 sessions, the new one at 2", n, c)
	}
	var got []string
	for _, cb := range p.messages() {
		var counter uint64
		json.Unmarshal(cb["messageCounter"], &counter)
		got = append(got, textOf(cb["message"])+"#"+strconv.FormatUint(counter, 10))
	}
	want := "You said: one#1,You said: two#2,You said: three#1,You said: four#2"
	if strings.Join(got, ",") != want {
		t.Fatalf("callbacks %q, want %s", got, want)
	}
	var epochs []uint64
	for _, cb := range emu.Callbacks() {
		epochs = append(epochs, cb.Epoch)
	}
	if len(epochs) != 4 || epochs[0] != 0 || epochs[1] != 0 || epochs[2] != 1 || epochs[3] != 1 {
		t.Fatalf("callback epochs %v, want [0 0 1 1]", epochs)
	}
}
