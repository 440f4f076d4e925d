package chataibot_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// quiet drops the logs of tests that do not look at them.
var quiet = slog.New(slog.DiscardHandler)

func TestConfigValidate(t *testing.T) {
	good := chataibot.Config{Token: "tok", BotKey: "key", WebhookSecret: hookSecret}
	if errs := good.Validate("bots[0].chataibot"); len(errs) != 0 {
		t.Fatalf("minimal config: %v", errs)
	}
	for _, tt := range []struct {
		name   string
		mutate func(*chataibot.Config)
		want   []string // each error's start
	}{
		{"https base", func(c *chataibot.Config) { c.BaseURL = "https://eu.chataibot.io/" }, nil},
		{"loopback http", func(c *chataibot.Config) { c.BaseURL = "http://127.0.0.1:9000" }, nil},
		{"localhost http", func(c *chataibot.Config) { c.BaseURL = "http://localhost:9000" }, nil},
		{"remote http", func(c *chataibot.Config) { c.BaseURL = "http://app.chataibot.io" }, []string{"bots[0].chataibot.base_url: \"http://app.chataibot.io\" uses http"}},
		{"not a URL", func(c *chataibot.Config) { c.BaseURL = "app.chataibot.io" }, []string{"bots[0].chataibot.base_url: "}},
		{"query", func(c *chataibot.Config) { c.BaseURL = "https://x.io/?token=1" }, []string{"bots[0].chataibot.base_url: "}},
		{"ftp", func(c *chataibot.Config) { c.BaseURL = "ftp://x.io" }, []string{"bots[0].chataibot.base_url: "}},
		{"everything missing", func(c *chataibot.Config) { *c = chataibot.Config{} }, []string{
			"bots[0].chataibot.token: is missing", "bots[0].chataibot.bot_key: is missing", "bots[0].chataibot.webhook_secret: is missing"}},
		{"spaces", func(c *chataibot.Config) { c.Token = "a b"; c.BotKey = "k\n" }, []string{
			"bots[0].chataibot.token: contains white space", "bots[0].chataibot.bot_key: contains white space"}},
		{"short secret", func(c *chataibot.Config) { c.WebhookSecret = "short" }, []string{"bots[0].chataibot.webhook_secret: is 5 characters"}},
		{"bad auth", func(c *chataibot.Config) { c.WebhookAuth = "hmac" }, []string{"bots[0].chataibot.webhook_auth: \"hmac\""}},
		{"header", func(c *chataibot.Config) { c.WebhookAuth = "header"; c.WebhookHeader = "X-Hook-Token" }, nil},
		{"header default", func(c *chataibot.Config) { c.WebhookAuth = "header" }, nil},
		{"bad header", func(c *chataibot.Config) { c.WebhookAuth = "header"; c.WebhookHeader = "X Hook" }, []string{"bots[0].chataibot.webhook_header: \"X Hook\""}},
		{"header without mode", func(c *chataibot.Config) { c.WebhookHeader = "X-Hook" }, []string{"bots[0].chataibot.webhook_header: is only used"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			errs := c.Validate("bots[0].chataibot")
			if len(errs) != len(tt.want) {
				t.Fatalf("got %v, want %d errors", errs, len(tt.want))
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want it to start with %q", i, err, tt.want[i])
				}
				if strings.Contains(err.Error(), hookSecret) {
					t.Errorf("error shows the secret: %v", err)
				}
			}
		})
	}
	if errs := (chataibot.Config{}).Validate(""); !strings.HasPrefix(errs[0].Error(), "token: ") {
		t.Errorf("no prefix: %v", errs[0])
	}
}

func TestConfigFromYAML(t *testing.T) {
	var c chataibot.Config
	err := yaml.Unmarshal([]byte(`
base_url: https://app.chataibot.io
token: acct-token-1
bot_key: bk-1
webhook_secret: `+hookSecret+`
webhook_auth: header
webhook_header: X-Hook
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token.Reveal() != "acct-token-1" || c.WebhookSecret.Reveal() != hookSecret || c.WebhookHeader != "X-Hook" || len(c.Validate("")) != 0 {
		t.Errorf("decoded %+v", c)
	}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", c, c, c)} {
		if strings.Contains(s, "acct-token-1") || strings.Contains(s, hookSecret) {
			t.Errorf("printing the config shows a secret: %s", s)
		}
	}
	if _, err := chataibot.New(chataibot.Config{}, "shop", providertest.NewSink(t), nil, nil, nil); err == nil || !strings.Contains(err.Error(), "chataibot.token") {
		t.Errorf("New with an empty config: %v", err)
	}
}

func TestStartThenSend(t *testing.T) {
	r := newRig(t, rigOptions{})
	if err := r.send(provider.Message{Bot: "shop", Conversation: convA, Kind: provider.Start, Visitor: visitor}); err != nil {
		t.Fatal(err)
	}
	if n := len(r.emu.Requests()); n != 0 {
		t.Fatalf("Start made %d calls; ChatAIBot has no intro", n)
	}
	first := text(convA, "c1", "Hello")
	first.Session = []byte(`{"plan":"pro","n":2}`)
	first.Contact = &provider.Contact{User: "user-42", Name: "Ann Lee", Email: "ann@example.com"}
	r.mustSend(first)
	second := text(convA, "c2", "count")
	second.Seq = 2
	r.mustSend(second)
	click := provider.Message{Bot: "shop", Conversation: convA, Seq: 3, ClientID: "c3", Kind: provider.Postback, Text: "Choose Pro", Payload: "pro", Visitor: visitor}
	r.mustSend(click)

	reqs := r.emu.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d calls, want 3", len(reqs))
	}
	ref := r.ref(convA)
	if ref == "" {
		t.Fatal("the conversation id was not stored")
	}
	var start map[string]any
	json.Unmarshal(reqs[0].Body, &start)
	want := map[string]any{
		"channel": "API",
		"message": map[string]any{"data": map[string]any{"body": "Hello"}, "type": "text"},
		"bot_key": chataibottest.DefaultBotKey,
		"from":    map[string]any{"user_external_id": "v-42", "type": "VISITOR"},
		"variables": map[string]any{
			"system":       map[string]any{"timezone": "Europe/Brussels", "browserLanguage": "en-GB", "referrerUrl": "https://shop.example/pricing"},
			"contact":      map[string]any{"name": "Ann Lee", "email": "ann@example.com"},
			"conversation": map[string]any{"plan": "pro", "n": 2.0},
		},
	}
	if reqs[0].Path != "/api/v1/conversations" || !reflect.DeepEqual(start, want) {
		t.Errorf("start call %s\n got %v\nwant %v", reqs[0].Path, start, want)
	}
	for i, body := range []string{"count", "Choose Pro"} {
		rq := reqs[i+1]
		wantBody := `{"message":{"data":{"body":"` + body + `"},"type":"text"},"user":{"type":"VISITOR"}}`
		if rq.Path != "/api/v1/conversation/"+ref+"/messages" || string(rq.Body) != wantBody {
			t.Errorf("send call %d: %s %s, want %s", i, rq.Path, rq.Body, wantBody)
		}
	}
	for _, rq := range reqs {
		if rq.Header.Get("Authorization") != "Bearer "+chataibottest.DefaultToken || rq.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", rq.Header)
		}
	}
	c, _ := r.emu.Conversation(ref)
	if !reflect.DeepEqual(c.Messages, []string{"Hello", "count", "Choose Pro"}) || len(r.emu.Conversations()) != 1 {
		t.Errorf("upstream has %d conversations, messages %q", len(r.emu.Conversations()), c.Messages)
	}

	// A second conversation starts its own, without variables when the
	// hello said nothing.
	other := text(convB, "d1", "Hi")
	other.Visitor = provider.Visitor{ID: "v-43"}
	r.mustSend(other)
	var start2 map[string]any
	json.Unmarshal(r.emu.Requests()[3].Body, &start2)
	if _, ok := start2["variables"]; ok || r.ref(convB) == ref || r.ref(convB) == "" {
		t.Errorf("second start: %v, ref %q", start2, r.ref(convB))
	}
	// The page's referrer stands in when there is no page URL; a session
	// that is not an object is not sent.
	third := text("33333333333333333333333333333333", "e1", "Hi")
	third.Visitor = provider.Visitor{ID: "v-44", Referrer: "https://ref.example/"}
	third.Session = []byte(`[1]`)
	r.mustSend(third)
	var start3 map[string]any
	json.Unmarshal(r.emu.Requests()[4].Body, &start3)
	if got := fmt.Sprint(start3["variables"]); got != "map[system:map[referrerUrl:https://ref.example/]]" {
		t.Errorf("third start variables = %s", got)
	}
}

func TestSendRejectsWhatCannotGo(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, m := range []provider.Message{
		{Conversation: convA, Kind: "sticker", Text: "x", Visitor: visitor},
		{Kind: provider.Text, Text: "x", Visitor: visitor},
		{Conversation: convA, Kind: provider.Text, Text: "  ", Visitor: visitor},
		{Conversation: convA, Kind: provider.Text, Text: "x"}, // no visitor id
	} {
		if reason, temporary, _ := provider.Classify(r.send(m)); reason != provider.ReasonRejected || temporary {
			t.Errorf("%+v: got %s temporary=%v", m, reason, temporary)
		}
	}
	// A postback without a title sends its payload.
	r.mustSend(provider.Message{Conversation: convA, ClientID: "p", Kind: provider.Postback, Payload: "yes", Visitor: visitor})
	if c, _ := r.emu.Conversation(r.ref(convA)); !reflect.DeepEqual(c.Messages, []string{"yes"}) {
		t.Errorf("messages %q", c.Messages)
	}
}

func TestUpstreamFailures(t *testing.T) {
	r := newRig(t, rigOptions{})
	check := func(name string, err error, reason string, temporary bool, after time.Duration) {
		t.Helper()
		var e *provider.Error
		if !errors.As(err, &e) || e.Reason != reason || e.Temporary != temporary || e.After != after {
			t.Errorf("%s: got %v (%+v), want %s temporary=%v after=%v", name, err, e, reason, temporary, after)
		}
	}
	r.emu.NotOKNext(1, "Bot is paused")
	err := r.send(text(convA, "c1", "Hello"))
	check("ok:false", err, provider.ReasonRejected, false, 0)
	if err == nil || !strings.Contains(err.Error(), "ok:false: Bot is paused") {
		t.Errorf("ok:false error %v does not carry the platform's reason", err)
	}
	r.emu.FailNext(1, 429, http.Header{"Retry-After": {"7"}})
	check("429", r.send(text(convA, "c1", "Hello")), provider.ReasonRateLimited, true, 7*time.Second)
	r.emu.FailNext(1, 429, http.Header{"X-Ratelimit-Reset": {fmt.Sprint(time.Now().Add(time.Hour).UnixMilli())}})
	check("429 reset ms", r.send(text(convA, "c1", "Hello")), provider.ReasonRateLimited, true, 10*time.Minute)
	r.emu.FailNext(1, 503, nil)
	check("503", r.send(text(convA, "c1", "Hello")), provider.ReasonUnavailable, true, 0)
	if r.ref(convA) != "" || len(r.emu.Conversations()) != 0 {
		t.Fatal("a failed start left a conversation")
	}
	r.mustSend(text(convA, "c1", "Hello"))
	// Failures of a later send.
	r.emu.NotOKNext(1, "nope")
	check("send ok:false", r.send(text(convA, "c2", "again")), provider.ReasonRejected, false, 0)
	r.emu.FailNext(1, 502, nil)
	check("send 502", r.send(text(convA, "c2", "again")), provider.ReasonUnavailable, true, 0)
	r.mustSend(text(convA, "c2", "again"))
	if cs := r.emu.Conversations(); len(cs) != 1 || !reflect.DeepEqual(cs[0].Messages, []string{"Hello", "again"}) {
		t.Errorf("upstream: %+v", cs)
	}

	// A wrong token.
	bad := newRig(t, rigOptions{cfg: func(c *chataibot.Config) { c.Token = "wrong-token" }})
	check("401", bad.send(text(convA, "c1", "Hello")), provider.ReasonAuth, false, 0)
	// Slow upstream: the call's deadline ends it, temporarily.
	slow := newRig(t, rigOptions{})
	slow.emu.Slow(time.Second)
	ad, _ := chataibot.New(slow.cfg, "shop", slow.sink, &provider.Upstream{Client: &http.Client{Timeout: 50 * time.Millisecond}}, quiet, nil)
	err = ad.Send(t.Context(), text(convA, "c1", "Hello"))
	check("timeout", err, provider.ReasonUnavailable, true, 0)
	slow.emu.Slow(0)
}

func TestStartIsNotRepeatedWhenStoringItsIDFails(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sink.FailSetAttr(1)
	first := text(convA, "c1", "Hello")
	if err := r.send(first); err == nil {
		t.Fatal("Send succeeded although the conversation id could not be stored")
	} else if _, temporary, _ := provider.Classify(err); !temporary {
		t.Fatalf("store failure is not temporary: %v", err)
	}
	if r.ref(convA) != "" {
		t.Fatal("id stored although SetAttr failed")
	}
	// The service retries the same message: stored, nothing sent.
	r.mustSend(first)
	if len(r.emu.Requests()) != 1 || len(r.emu.Conversations()) != 1 || r.ref(convA) == "" {
		t.Fatalf("retry made %d calls, %d conversations", len(r.emu.Requests()), len(r.emu.Conversations()))
	}

	// The retry fails again and a later message goes first (the first was
	// shown as failed): it is stored and sent to the same conversation.
	r.sink.FailSetAttr(2)
	if err := r.send(text(convB, "d1", "one")); err == nil {
		t.Fatal("want an error")
	}
	if err := r.send(text(convB, "d1", "one")); err == nil {
		t.Fatal("want an error")
	}
	r.mustSend(text(convB, "d2", "two"))
	ref := r.ref(convB)
	c, _ := r.emu.Conversation(ref)
	if len(r.emu.Conversations()) != 2 || !reflect.DeepEqual(c.Messages, []string{"one", "two"}) {
		t.Errorf("upstream: %d conversations, %q", len(r.emu.Conversations()), c.Messages)
	}
	// Then the first is retried once more: it already went with the start.
	r.mustSend(text(convB, "d1", "one"))
	r.mustSend(text(convB, "d3", "three"))
	if c, _ = r.emu.Conversation(ref); !reflect.DeepEqual(c.Messages, []string{"one", "two", "three"}) {
		t.Errorf("messages %q", c.Messages)
	}
}

// TestStartIsNotRepeatedWhenAFailedSaveLanded: storing the id reported a
// failure but the write landed (a Redis reply that timed out). The retry
// of the message that went with the start call finds the id stored and
// still sends nothing.
func TestStartIsNotRepeatedWhenAFailedSaveLanded(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sink.FailSetAttr(1)
	first := text(convA, "c1", "Hello")
	if err := r.send(first); err == nil {
		t.Fatal("Send succeeded although the conversation id could not be stored")
	}
	convs := r.emu.Conversations()
	if len(convs) != 1 {
		t.Fatalf("%d conversations started", len(convs))
	}
	// The write that reported a failure had landed after all.
	if err := r.sink.SetAttr(t.Context(), convA, chataibot.AttrConversation, convs[0].ID); err != nil {
		t.Fatal(err)
	}
	r.mustSend(first)
	r.mustSend(text(convA, "c2", "again"))
	c, _ := r.emu.Conversation(convs[0].ID)
	if len(r.emu.Conversations()) != 1 || !reflect.DeepEqual(c.Messages, []string{"Hello", "again"}) {
		t.Fatalf("upstream: %d conversations, messages %q; want Hello once, then again", len(r.emu.Conversations()), c.Messages)
	}
}

func TestLostUpstreamConversationStartsANewOne(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sink.SetAttr(t.Context(), convA, chataibot.AttrConversation, "expired-id")
	r.mustSend(text(convA, "c5", "still there?"))
	ref := r.ref(convA)
	c, ok := r.emu.Conversation(ref)
	if !ok || ref == "expired-id" || !reflect.DeepEqual(c.Messages, []string{"still there?"}) {
		t.Errorf("ref %q, conversation %+v", ref, c)
	}
}

func TestRepliesInAPIAnswersAreDelivered(t *testing.T) {
	r := newRig(t, rigOptions{emu: chataibottest.Options{RepliesInResponse: true}})
	r.mustSend(text(convA, "c1", "Hello"))
	r.mustSend(text(convA, "c2", "buttons"))
	got := r.sink.All()
	if len(got) != 3 {
		t.Fatalf("stored %d bodies, want 3: %+v", len(got), got)
	}
	ref := r.ref(convA)
	if got[0].Key != "chataibot/"+ref+"/start" || !strings.HasPrefix(got[0].Body.Text, "Welcome!") {
		t.Errorf("first = %+v", got[0])
	}
	if got[2].Body.Kind != "buttons" || !strings.HasPrefix(got[2].Key, "chataibot/"+ref+"/reply/") {
		t.Errorf("third = %+v", got[2])
	}
}

func TestReplyFormsInAPIAnswers(t *testing.T) {
	for _, tt := range []struct {
		extra string
		want  []string
	}{
		{`"reply":"Hi there"`, []string{"Hi there"}},
		{`"reply":{"type":"text","data":{"body":"One"}}`, []string{"One"}},
		{`"messages":[{"type":"text","data":{"body":"A"}}],"reply":[{"type":"text","data":{"body":"B"}}]`, []string{"A", "B"}},
		{`"messages":42`, nil},
		{`"messages":null`, nil},
	} {
		sink := providertest.NewSink(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/conversations" {
				fmt.Fprint(w, `{"ok":true,"conversation":{"id":"X"},`+tt.extra+`}`)
				return
			}
			fmt.Fprint(w, `{"ok":true,"message_id":"M1",`+tt.extra+`}`)
		}))
		ad, err := chataibot.New(chataibot.Config{BaseURL: srv.URL, Token: "test-token-1", BotKey: "k", WebhookSecret: hookSecret}, "shop", sink, nil, quiet, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ad.Send(t.Context(), text(convA, "c1", "Hello")); err != nil {
			t.Fatal(err)
		}
		if err := ad.Send(t.Context(), text(convA, "c2", "again")); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range sink.All() {
			got = append(got, d.Body.Text)
		}
		want := append(append([]string(nil), tt.want...), tt.want...)
		if len(want) == 0 {
			want = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: delivered %q, want %q", tt.extra, got, want)
		}
		srv.Close()
	}
}

func TestUnreadableAnswers(t *testing.T) {
	body := "<html>maintenance</html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	defer srv.Close()
	sink := providertest.NewSink(t)
	ad, _ := chataibot.New(chataibot.Config{BaseURL: srv.URL, Token: "test-token-1", BotKey: "k", WebhookSecret: hookSecret}, "shop", sink, nil, quiet, nil)
	// A start answer must be read: temporary failure.
	if reason, temporary, _ := provider.Classify(ad.Send(t.Context(), text(convA, "c1", "Hello"))); reason != provider.ReasonUnavailable || !temporary {
		t.Errorf("start: %s %v", reason, temporary)
	}
	body = `{"ok":true}`
	if reason, temporary, _ := provider.Classify(ad.Send(t.Context(), text(convA, "c1", "Hello"))); reason != provider.ReasonRejected || temporary {
		t.Errorf("start without id: %s %v", reason, temporary)
	}
	// A send answer that is not JSON: the 2xx said it was taken.
	sink.SetAttr(t.Context(), convA, chataibot.AttrConversation, "X")
	body = "OK"
	if err := ad.Send(t.Context(), text(convA, "c2", "again")); err != nil {
		t.Errorf("send: %v", err)
	}
	body = `{"ok":false,"error":{"message":"Conversation closed"}}`
	if err := ad.Send(t.Context(), text(convA, "c2", "again")); err == nil || !strings.HasSuffix(err.Error(), "ok:false: Conversation closed") {
		t.Errorf("send: %v", err)
	}
}
