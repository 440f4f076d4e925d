package chataibot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
	"github.com/porthole-chat/porthole/widget"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/<name>, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is right)\n got: %s\nwant: %s", path, got, want)
	}
}

func normalized(bodies []widget.Body, skipped int) []byte {
	if bodies == nil {
		bodies = []widget.Body{}
	}
	b, _ := json.MarshalIndent(struct {
		Bodies  []widget.Body `json:"bodies"`
		Skipped int           `json:"skipped"`
	}{bodies, skipped}, "", "  ")
	return append(b, '\n')
}

// TestNormalizeGolden normalizes every sample callback in
// testdata/replies, through the webhook, and compares what reached the
// sink with its golden file.
func TestNormalizeGolden(t *testing.T) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "replies", "*.json"))
	if len(inputs) == 0 {
		t.Fatal("no samples")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var cb chataibot.Callback
			if err := json.Unmarshal(raw, &cb); err != nil {
				t.Fatal(err)
			}
			bodies, skipped := chataibot.Normalize(cb.All())
			for i, b := range bodies {
				if err := b.Validate(); err != nil {
					t.Errorf("body %d does not validate: %v", i, err)
				}
			}
			golden(t, filepath.Join("replies", name+".golden"), normalized(bodies, skipped))

			// The webhook delivers exactly that.
			r := newRig(t, rigOptions{linker: &fakeLinker{links: map[string]string{"CONV1": convA}}})
			status, _ := r.post(string(raw), bearer(hookSecret))
			if status != 200 {
				t.Fatalf("webhook answered %d", status)
			}
			var got []widget.Body
			for _, d := range r.sink.All() {
				got = append(got, d.Body)
			}
			if !reflect.DeepEqual(got, bodies) {
				t.Errorf("webhook delivered %+v, want %+v", got, bodies)
			}
		})
	}
}

// TestEmulatorMessagesNormalize checks that everything the emulated bot
// says is understood, nothing skipped, one neutral kind per keyword.
func TestEmulatorMessagesNormalize(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.mustSend(text(convA, "c0", "all"))
	r.idle()
	var all []widget.Body
	for _, d := range r.sink.All() {
		all = append(all, d.Body)
	}
	golden(t, "emulator-all.golden", normalized(all, 0))
	var kinds []string
	for _, b := range all {
		k := b.Kind
		if b.Kind == widget.KindMedia {
			k += "/" + b.Media
		}
		if len(b.QuickReplies) > 0 {
			k += "+quick"
		}
		kinds = append(kinds, k)
	}
	want := []string{"text", "text", "text+quick", "buttons", "carousel", "media/image", "media/video", "media/audio", "media/file"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %q, want %q", kinds, want)
	}
	if strings.Contains(r.logs.String(), "skipped") {
		t.Errorf("messages were skipped:\n%s", r.logs)
	}
}

func TestNormalizeLimits(t *testing.T) {
	long := strings.Repeat("é", widget.MaxText+10)
	var qrs []chataibot.Choice
	var buttons []chataibot.BotButton
	var cards []chataibot.BotCard
	for i := range 20 {
		qrs = append(qrs, chataibot.Choice{Title: fmt.Sprint("q", i)})
		buttons = append(buttons, chataibot.BotButton{Type: "postback", Title: fmt.Sprint("b", i), Payload: strings.Repeat("p", 10)})
		cards = append(cards, chataibot.BotCard{Title: fmt.Sprint("c", i)})
	}
	bodies, skipped := chataibot.Normalize([]chataibot.BotMessage{
		{Type: "text", Data: chataibot.BotData{Body: long, QuickReplies: qrs}},
		{Type: "buttons", Data: chataibot.BotData{Body: "b", Buttons: buttons}},
		{Type: "carousel", Data: chataibot.BotData{Cards: cards}},
		{Type: "image", Data: chataibot.BotData{URL: "https://example.com/x.png", Caption: long}},
		{Type: "buttons", Data: chataibot.BotData{Buttons: []chataibot.BotButton{{Title: strings.Repeat("t", 300), Payload: strings.Repeat("p", widget.MaxPayload+1)}}}},
	})
	if skipped != 1 || len(bodies) != 4 {
		t.Fatalf("skipped %d, bodies %d", skipped, len(bodies))
	}
	if n := len([]rune(bodies[0].Text)); n != widget.MaxText || !strings.HasSuffix(bodies[0].Text, "…") || len(bodies[0].QuickReplies) != widget.MaxQuickReplies {
		t.Errorf("text: %d characters, %d quick replies", n, len(bodies[0].QuickReplies))
	}
	if len(bodies[1].Buttons) != widget.MaxButtons || len(bodies[2].Cards) != widget.MaxCards || len([]rune(bodies[3].Alt)) != widget.MaxTitle {
		t.Errorf("buttons %d, cards %d, alt %d", len(bodies[1].Buttons), len(bodies[2].Cards), len([]rune(bodies[3].Alt)))
	}
	for i, b := range bodies {
		if err := b.Validate(); err != nil {
			t.Errorf("body %d: %v", i, err)
		}
	}
	var m chataibot.BotMessages
	if err := json.Unmarshal([]byte(`42`), &m); err == nil {
		t.Error("a number was taken as bot messages")
	}
}

func TestWebhookAuth(t *testing.T) {
	body := `{"conversation_id":"CONV1","message_id":"M1","messages":[{"type":"text","data":{"body":"hi"}}]}`
	for _, tt := range []struct {
		name   string
		cfg    func(*chataibot.Config)
		header http.Header
		want   int
	}{
		{"missing", nil, http.Header{}, 401},
		{"wrong secret", nil, bearer("wrong-secret-0123456789abcd"), 401},
		{"prefix of the secret", nil, bearer(hookSecret[:10]), 401},
		{"secret plus more", nil, bearer(hookSecret + "x"), 401},
		{"wrong scheme", nil, http.Header{"Authorization": {"Basic " + hookSecret}}, 401},
		{"bare secret", nil, http.Header{"Authorization": {hookSecret}}, 401},
		{"empty bearer", nil, http.Header{"Authorization": {"Bearer "}}, 401},
		{"in the header mode's header", nil, http.Header{"X-Porthole-Secret": {hookSecret}}, 401},
		{"right", nil, bearer(hookSecret), 200},
		{"lower-case scheme", nil, http.Header{"Authorization": {"bearer " + hookSecret}}, 200},
		{"header mode: bearer refused", func(c *chataibot.Config) { c.WebhookAuth = "header" }, bearer(hookSecret), 401},
		{"header mode: wrong", func(c *chataibot.Config) { c.WebhookAuth = "header" }, http.Header{"X-Porthole-Secret": {"nope"}}, 401},
		{"header mode: right", func(c *chataibot.Config) { c.WebhookAuth = "header" }, http.Header{"X-Porthole-Secret": {hookSecret}}, 200},
		{"custom header", func(c *chataibot.Config) { c.WebhookAuth = "header"; c.WebhookHeader = "X-Hook" }, http.Header{"X-Hook": {hookSecret}}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOptions{cfg: tt.cfg, linker: &fakeLinker{links: map[string]string{"CONV1": convA}}})
			status, answer := r.post(body, tt.header)
			if status != tt.want {
				t.Fatalf("got %d %s, want %d", status, answer, tt.want)
			}
			stored := len(r.sink.All())
			if tt.want == 401 && (stored != 0 || answer != `{"error":"unauthorized","ok":false}`) {
				t.Errorf("refused callback: %d stored, answer %s", stored, answer)
			}
			if tt.want == 200 && stored != 1 {
				t.Errorf("%d stored", stored)
			}
			if strings.Contains(answer, hookSecret) || strings.Contains(r.logs.String(), hookSecret) {
				t.Error("the secret was echoed")
			}
		})
	}
}

func TestWebhookAnswers(t *testing.T) {
	r := newRig(t, rigOptions{linker: &fakeLinker{links: map[string]string{"CONV1": convA}}})
	h := bearer(hookSecret)
	one := `{"conversation_id":"CONV1","message_id":"M1","messages":[{"type":"text","data":{"body":"hi"}}]}`

	// A retried callback is stored once.
	for range 3 {
		if status, answer := r.post(one, h); status != 200 || answer != `{"ok":true}` {
			t.Fatalf("got %d %s", status, answer)
		}
	}
	if got := r.sink.All(); len(got) != 1 || got[0].Key != "chataibot/CONV1/M1" || got[0].Conv != convA {
		t.Fatalf("stored %+v", got)
	}
	// Without message_id, the body's hash is the key.
	noID := `{"conversation_id":"CONV1","messages":[{"type":"text","data":{"body":"no id"}}]}`
	r.post(noID, h)
	r.post(noID, h)
	if got := r.sink.All(); len(got) != 2 || !strings.HasPrefix(got[1].Key, "chataibot/CONV1/sha256-") {
		t.Fatalf("stored %+v", got)
	}
	// Unknown conversation, with durable links: its route may still be
	// on its way (a start on another process), so after the wait it is
	// 503, for ChatAIBot to retry; nothing stored, logged.
	chataibot.SetStartWait(r.ad, 100*time.Millisecond)
	if status, _ := r.post(`{"conversation_id":"NOPE","message_id":"M9","messages":[{"type":"text","data":{"body":"x"}}]}`, h); status != http.StatusServiceUnavailable {
		t.Errorf("unknown conversation: %d, want 503", status)
	}
	if len(r.sink.All()) != 2 || !strings.Contains(r.logs.String(), "not known (yet)") {
		t.Errorf("unknown conversation stored or not logged:\n%s", r.logs)
	}
	// Nothing to show: 200.
	if status, _ := r.post(`{"conversation_id":"CONV1","message_id":"M2","messages":[]}`, h); status != 200 {
		t.Errorf("empty batch: %d", status)
	}
	// Unreadable bodies: 400, retrying cannot help.
	for _, bad := range []string{`{`, `[]`, `{"messages":[]}`, `{"conversation_id":"CONV1","messages":7}`} {
		if status, _ := r.post(bad, h); status != 400 {
			t.Errorf("%s: %d, want 400", bad, status)
		}
	}
	// Too large.
	big := `{"conversation_id":"CONV1","messages":[{"type":"text","data":{"body":"` + strings.Repeat("x", 2<<20) + `"}}]}`
	if status, _ := r.post(big, h); status != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MB body: %d", status)
	}
	// A store failure: 500, so that ChatAIBot retries; the retry stores.
	r.sink.FailDeliver(1)
	two := `{"conversation_id":"CONV1","message_id":"M3","messages":[{"type":"text","data":{"body":"again"}}]}`
	if status, _ := r.post(two, h); status != 500 {
		t.Errorf("store failure: %d", status)
	}
	if status, _ := r.post(two, h); status != 200 || len(r.sink.All()) != 3 {
		t.Errorf("retry: %d, %d stored", status, len(r.sink.All()))
	}
}

// failingLinker fails Resolve, as a store in trouble would.
type failingLinker struct{ *fakeLinker }

func (failingLinker) Resolve(context.Context, string) (string, error) {
	return "", fmt.Errorf("bolt: database not open")
}

func TestWebhookRouting(t *testing.T) {
	cb := func(ref string) string {
		return `{"conversation_id":"` + ref + `","message_id":"M1","messages":[{"type":"text","data":{"body":"hi"}}]}`
	}
	// A store that cannot answer: 500, ChatAIBot retries later.
	r := newRig(t, rigOptions{linker: failingLinker{&fakeLinker{}}})
	if status, _ := r.post(cb("CONV1"), bearer(hookSecret)); status != 500 {
		t.Errorf("store trouble: %d", status)
	}

	// With a Linker, routing survives a restart (a new adapter).
	links := &fakeLinker{}
	r = newRig(t, rigOptions{linker: links})
	r.mustSend(text(convA, "c1", "Hello"))
	r.idle()
	ref := r.ref(convA)
	if links.links[ref] != convA {
		t.Fatalf("not linked: %v", links.links)
	}
	restarted, _ := chataibot.New(r.cfg, "shop", r.sink, nil, nil, links)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/hooks/chataibot/shop", strings.NewReader(cb(ref)))
	req.Header = bearer(hookSecret)
	restarted.ServeWebhook(rec, req)
	if rec.Code != 200 || len(r.sink.All()) != 3 {
		t.Errorf("after restart: %d, %d stored", rec.Code, len(r.sink.All()))
	}

	// Without one, a restarted adapter knows the conversation again from
	// the visitor's next message.
	r = newRig(t, rigOptions{})
	r.mustSend(text(convA, "c1", "Hello"))
	r.idle()
	ref = r.ref(convA)
	restarted, _ = chataibot.New(r.cfg, "shop", r.sink, nil, r.logs.Logger(), nil)
	post := func() int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/hooks/chataibot/shop", strings.NewReader(cb(ref)))
		req.Header = bearer(hookSecret)
		restarted.ServeWebhook(rec, req)
		return rec.Code
	}
	if post(); len(r.sink.All()) != 2 {
		t.Errorf("routed without a Linker after restart: %d stored", len(r.sink.All()))
	}
	if err := restarted.Send(t.Context(), text(convA, "c2", "back")); err != nil {
		t.Fatal(err)
	}
	r.idle() // its reply goes to the first adapter's webhook
	before := len(r.sink.All())
	if post(); len(r.sink.All()) != before+1 {
		t.Errorf("not routed after the next message: %d stored, want %d", len(r.sink.All()), before+1)
	}
}

// TestReplyOvertakesStartAnswer holds the start call's answer back until
// the bot's first reply has reached the webhook: the webhook must wait
// for the start to finish rather than drop the reply.
func TestReplyOvertakesStartAnswer(t *testing.T) {
	hooked := make(chan struct{}, 10)
	r := newRig(t, rigOptions{linker: &fakeLinker{}, hook: func(h http.Handler) http.Handler {
		// Tell the front when the webhook is entered.
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			hooked <- struct{}{}
			h.ServeHTTP(w, req)
		})
	}, front: func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if req.URL.Path == "/api/v1/conversations" {
				select {
				case <-hooked: // the callback is in the webhook
				case <-time.After(2 * time.Second):
					t.Error("the callback did not come while the start answer was held")
				}
				time.Sleep(50 * time.Millisecond)
			}
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}})
	r.mustSend(text(convA, "c1", "Hello"))
	got := r.sink.Await(t, 2)
	if got[0].Conv != convA || !strings.HasPrefix(got[0].Body.Text, "Welcome!") {
		t.Errorf("stored %+v", got)
	}
	r.idle()
	if st := r.emu.Stats(); st.CallbackAttempts != 1 {
		t.Errorf("%d callback attempts, want the first to succeed", st.CallbackAttempts)
	}
}

// TestFullLoop runs adapter → emulator → callback → webhook → sink, with
// the emulator's callback faults.
func TestFullLoop(t *testing.T) {
	r := newRig(t, rigOptions{linker: &fakeLinker{}, emu: chataibottest.Options{RetryDelay: time.Millisecond}})
	hello := text(convA, "c1", "Hello")
	hello.Session = []byte(`{"plan":"pro"}`)
	r.mustSend(hello)
	got := r.sink.Await(t, 2)
	if got[0].Body.Text != "Welcome! Your first message was: Hello. Your plan: pro" || got[1].Body.Text != "You said: Hello (message 1)" {
		t.Errorf("greeting %q, %q", got[0].Body.Text, got[1].Body.Text)
	}

	seq := uint64(1)
	say := func(s string) {
		seq++
		m := text(convA, fmt.Sprint("c", seq), s)
		m.Seq = seq
		r.mustSend(m)
	}
	say("carousel")
	r.sink.Await(t, 3)

	// A duplicated callback is stored once.
	r.emu.DuplicateCallbacks(1)
	say("buttons")
	r.idle()
	// A webhook failing twice: ChatAIBot's retries get it through, once.
	r.sink.FailDeliver(2)
	say("image")
	r.idle()
	// Reordered callbacks both arrive.
	r.emu.ReorderCallbacks(1)
	say("video")
	say("audio")
	r.idle()
	// A dropped one never does, and nothing breaks.
	r.emu.DropCallbacks(1)
	say("file")
	say("count")
	r.idle()

	var kinds []string
	for _, d := range r.sink.All() {
		if d.Conv != convA {
			t.Errorf("delivered to %s", d.Conv)
		}
		k := d.Body.Kind
		if k == widget.KindMedia {
			k = d.Body.Media
		}
		if k == widget.KindText {
			k = d.Body.Text
		}
		kinds = append(kinds, k)
	}
	want := []string{
		"Welcome! Your first message was: Hello. Your plan: pro", "You said: Hello (message 1)",
		"carousel", "buttons", "image", "audio", "video", "Messages so far: 8",
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("delivered\n%q\nwant\n%q", kinds, want)
	}
	st := r.emu.Stats()
	if st.Started != 1 || st.Messages != 8 || st.CallbacksDuplicated != 1 || st.CallbacksDropped != 1 || st.CallbacksFailed != 0 {
		t.Errorf("emulator stats %+v", st)
	}
	if r.sink.Calls() < 9 {
		t.Errorf("%d Deliver calls: duplicate and retries not seen", r.sink.Calls())
	}
}

// TestNoSecretLeaks runs failures of every sort and scans every error,
// log line and webhook answer for the token and the webhook secret.
func TestNoSecretLeaks(t *testing.T) {
	const token = "acct-token-SECRET-9f8e7d6c5b4a"
	r := newRig(t, rigOptions{emu: chataibottest.Options{Token: token}, cfg: func(c *chataibot.Config) { c.Token = token }})
	var seen []string
	keep := func(err error) {
		if err != nil {
			seen = append(seen, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
	}
	// The platform echoes our token and secret in its error.
	r.emu.NotOKNext(1, "invalid token "+token+" or secret "+hookSecret)
	keep(r.send(text(convA, "c1", "Hello")))
	r.emu.FailNext(1, 429, http.Header{"Retry-After": {"1"}})
	keep(r.send(text(convA, "c1", "Hello")))
	r.emu.FailNext(1, 500, nil)
	keep(r.send(text(convA, "c1", "Hello")))
	r.mustSend(text(convA, "c1", "Hello"))
	r.idle()

	bad := newRig(t, rigOptions{cfg: func(c *chataibot.Config) { c.Token = token }}) // the emulator expects another token
	bad.ad = mustNew(t, bad.cfg, bad.sink, r.logs)
	keep(bad.send(text(convA, "c1", "Hello")))

	for _, h := range []http.Header{{}, bearer("wrong-secret-0123456789abcd"), bearer(hookSecret)} {
		for _, body := range []string{`{`, `{"conversation_id":"NOPE","messages":[]}`, `{"conversation_id":"` + r.ref(convA) + `","messages":[{"type":"text","data":{"body":"x"}}]}`} {
			_, answer := r.post(body, h)
			seen = append(seen, answer)
		}
	}
	seen = append(seen, r.logs.String(), fmt.Sprintf("%+v %#v", r.cfg, r.cfg))
	if len(seen) < 10 || !strings.Contains(r.logs.String(), "wrong or missing secret") {
		t.Fatalf("the scenario did not run: %d outputs, logs:\n%s", len(seen), r.logs)
	}
	for _, s := range seen {
		for _, secret := range []string{token, hookSecret} {
			if strings.Contains(s, secret) {
				t.Errorf("a secret leaked: %s", s)
			}
		}
	}
}

func mustNew(t *testing.T, cfg chataibot.Config, sink provider.Sink, logs *providertest.LogBuffer) *chataibot.Adapter {
	t.Helper()
	ad, err := chataibot.New(cfg, "shop", sink, nil, logs.Logger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ad
}
