package demo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// fakeSink records every Deliver attempt and typing change, and stores
// deliveries deduplicated by key like the real conversation service.
type fakeSink struct {
	mu       sync.Mutex
	attrs    map[string]string
	seen     map[string]bool
	stored   []delivery // after dedup
	attempts []delivery // every call
	events   []string   // "on", "off", "deliver <key>" per conversation, in order
	gate     chan struct{}
	entered  chan struct{}
}

type delivery struct {
	conv, key string
	body      widget.Body
}

func newSink() *fakeSink {
	return &fakeSink{attrs: map[string]string{}, seen: map[string]bool{}}
}

func (f *fakeSink) Deliver(ctx context.Context, convID, key string, bodies ...widget.Body) error {
	if f.gate != nil {
		f.entered <- struct{}{}
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range bodies {
		if err := b.Validate(); err != nil {
			panic("invalid body delivered: " + err.Error())
		}
		d := delivery{convID, key, b}
		f.attempts = append(f.attempts, d)
		f.events = append(f.events, convID+" deliver "+key)
		if key != "" && f.seen[convID+key] {
			continue
		}
		f.seen[convID+key] = true
		f.stored = append(f.stored, d)
	}
	return nil
}

func (f *fakeSink) Typing(convID string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.events = append(f.events, convID+" on")
	} else {
		f.events = append(f.events, convID+" off")
	}
}

func (f *fakeSink) Attr(ctx context.Context, convID, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attrs[convID+"/"+key], nil
}

func (f *fakeSink) SetAttr(ctx context.Context, convID, key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attrs[convID+"/"+key] = value
	return nil
}

// replies waits until conversation convID has n stored replies in all and
// returns them.
func (f *fakeSink) replies(t *testing.T, convID string, n int) []delivery {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		var got []delivery
		for _, d := range f.stored {
			if d.conv == convID {
				got = append(got, d)
			}
		}
		f.mu.Unlock()
		if len(got) >= n {
			if len(got) > n {
				t.Fatalf("conversation %s: got %d replies, want %d: %v", convID, len(got), n, texts(got))
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversation %s: got %d replies, want %d: %v", convID, len(got), n, texts(got))
		}
		time.Sleep(time.Millisecond)
	}
}

// settle waits for the bot to go quiet: every queued reply sent.
func settle(t *testing.T, b *Bot) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.convs)
		b.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("bot did not go quiet")
		}
		time.Sleep(time.Millisecond)
	}
}

func texts(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.body.Summary())
	}
	return out
}

const convID = "0123456789abcdef0123456789abcdef"

var msgN atomic.Int64

// msg builds a visitor message with a fresh ClientID.
func msg(kind provider.Kind, text, payload string) provider.Message {
	id := "c" + strconv.FormatInt(msgN.Add(1), 10)
	return provider.Message{Bot: "demo", Conversation: convID, ClientID: id, Kind: kind, Text: text, Payload: payload}
}

func newBot(t *testing.T, s *Script) (*Bot, *fakeSink) {
	t.Helper()
	sink := newSink()
	b := New(s, sink, Options{TypingDelay: time.Millisecond, BaseURL: "https://chat.example.com/"})
	t.Cleanup(func() { b.Close() })
	return b, sink
}

// say sends m and waits for n more replies in its conversation, returning them.
func say(t *testing.T, b *Bot, sink *fakeSink, m provider.Message, n int) []delivery {
	t.Helper()
	sink.mu.Lock()
	before := 0
	for _, d := range sink.stored {
		if d.conv == m.Conversation {
			before++
		}
	}
	sink.mu.Unlock()
	if err := b.Send(context.Background(), m); err != nil {
		t.Fatalf("Send(%+v): %v", m, err)
	}
	got := sink.replies(t, m.Conversation, before+n)[before:]
	settle(t, b)
	return got
}

func TestStartGreets(t *testing.T) {
	b, sink := newBot(t, Default())
	m := provider.Message{Conversation: convID, Kind: provider.Start}
	got := say(t, b, sink, m, 2)
	if !strings.HasPrefix(got[0].body.Text, "Hi there!") {
		t.Errorf("greeting = %q", got[0].body.Text)
	}
	if len(got[1].body.QuickReplies) == 0 {
		t.Errorf("second greeting message has no quick replies: %+v", got[1].body)
	}
	if got[0].key != "demo/start/0" || got[1].key != "demo/start/1" {
		t.Errorf("keys = %q, %q", got[0].key, got[1].key)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	want := []string{convID + " on", convID + " deliver demo/start/0", convID + " on", convID + " deliver demo/start/1", convID + " off"}
	if !reflect.DeepEqual(sink.events, want) {
		t.Errorf("events =\n%q\nwant\n%q", sink.events, want)
	}
}

// TestDefaultScript checks every message of the built-in script renders
// to a valid body, and that every asset it names exists under web/static.
func TestDefaultScript(t *testing.T) {
	s := Default()
	for name, blk := range s.blocks {
		for i := range blk.Messages {
			body := blk.Messages[i].render(noVars, "https://chat.example.com")
			if err := body.Validate(); err != nil {
				t.Errorf("blocks.%s.messages[%d]: %v", name, i, err)
			}
			for _, u := range urls(body) {
				if p, ok := strings.CutPrefix(u, "https://chat.example.com/static/"); ok {
					if _, err := os.Stat(filepath.Join("..", "..", "web", "static", p)); err != nil {
						t.Errorf("blocks.%s.messages[%d]: asset %s: %v", name, i, u, err)
					}
				}
			}
		}
	}
	if s.Name() != "Porthole demo bot" {
		t.Errorf("Name() = %q", s.Name())
	}
}

func urls(b widget.Body) []string {
	out := []string{b.URL}
	for _, c := range b.Cards {
		out = append(out, c.Image, c.URL)
	}
	return out
}

func TestPostbacks(t *testing.T) {
	b, sink := newBot(t, Default())
	say(t, b, sink, provider.Message{Conversation: convID, Kind: provider.Start}, 2)

	// A quick reply of the greeting leads to its block, which continues
	// automatically to the next one.
	greeting := sink.stored[1].body
	qr := greeting.QuickReplies[0]
	if qr.Payload != "demo:tour-text" {
		t.Fatalf("first quick reply payload = %q", qr.Payload)
	}
	got := say(t, b, sink, msg(provider.Postback, qr.Title, qr.Payload), 2)
	if !strings.Contains(got[0].body.Text, "https://example.com") || !strings.HasPrefix(got[1].body.Text, "Quick replies") {
		t.Fatalf("tour-text then tour-quick, got %q", texts(got))
	}

	// A postback button.
	got = say(t, b, sink, msg(provider.Postback, "Buttons", "demo:tour-buttons"), 1)
	bs := got[0].body.Buttons
	if got[0].body.Kind != widget.KindButtons || len(bs) != 3 {
		t.Fatalf("tour-buttons = %+v", got[0].body)
	}
	if bs[0].Type != widget.ButtonPostback || bs[1].Type != widget.ButtonURL || bs[2].Type != widget.ButtonPhone {
		t.Errorf("button types = %s, %s, %s", bs[0].Type, bs[1].Type, bs[2].Type)
	}
	got = say(t, b, sink, msg(provider.Postback, bs[0].Title, bs[0].Payload), 2)
	cards := got[1].body.Cards
	if len(cards) != 3 || cards[0].Image != "https://chat.example.com/static/demo/harbour.svg" {
		t.Fatalf("carousel = %+v", got[1].body)
	}

	// A card's button, then automatic continuation into the media.
	got = say(t, b, sink, msg(provider.Postback, cards[1].Buttons[0].Title, cards[1].Buttons[0].Payload), 6)
	if !strings.Contains(got[0].body.Text, "lighthouse") {
		t.Errorf("pick-lighthouse = %q", got[0].body.Text)
	}
	if got[2].body.Media != widget.MediaImage || got[4].body.Media != widget.MediaVideo {
		t.Errorf("media = %+v, %+v", got[2].body, got[4].body)
	}
	got = say(t, b, sink, msg(provider.Postback, "Yes", got[5].body.QuickReplies[0].Payload), 3)
	if got[0].body.Media != widget.MediaAudio || got[1].body.Media != widget.MediaFile || got[1].body.Alt == "" {
		t.Errorf("tour-files = %+v", texts(got))
	}
}

func TestIntents(t *testing.T) {
	b, sink := newBot(t, Default())
	for _, tc := range []struct{ text, want string }{
		{"Hello there!", "Hello, there!"},
		{"HEY", "Hello, there!"},
		{"I need help.", "Here's everything"},
		{"What's the PRICE?", "Porthole is open source"},
		{"ok bye", "Goodbye"},
		{"call me later", "What should I call you?"},
		{"hithere", "Sorry"},  // whole words only
		{"shipping", "Sorry"}, // "hi" inside a word
		{"byebye", "Sorry"},
	} {
		got := say(t, b, sink, msg(provider.Text, tc.text, ""), 1)
		if !strings.HasPrefix(got[0].body.Text, tc.want) {
			t.Errorf("%q -> %q, want prefix %q", tc.text, got[0].body.Text, tc.want)
		}
		if tc.want == "What should I call you?" {
			say(t, b, sink, msg(provider.Postback, "Menu", "demo:menu"), 1) // leave the question
		}
	}
}

func TestCollectName(t *testing.T) {
	sink := newSink()
	b := New(Default(), sink, Options{TypingDelay: time.Millisecond})
	got := say(t, b, sink, msg(provider.Postback, "Tell you my name", "demo:ask-name"), 1)
	if got[0].body.Text != "What should I call you?" {
		t.Fatalf("ask-name = %q", got[0].body.Text)
	}
	// A restart between question and answer: the state is in the sink.
	b.Close()
	b = New(Default(), sink, Options{TypingDelay: time.Millisecond})
	defer b.Close()
	got = say(t, b, sink, msg(provider.Text, "  Ada  ", ""), 1)
	if want := "Nice to meet you, Ada!"; !strings.HasPrefix(got[0].body.Text, want) {
		t.Errorf("greet-name = %q, want prefix %q", got[0].body.Text, want)
	}
	// Typed text is now matched against intents again, and the name stays.
	got = say(t, b, sink, msg(provider.Text, "hi", ""), 1)
	if want := "Hello, Ada!"; !strings.HasPrefix(got[0].body.Text, want) {
		t.Errorf("hello = %q, want prefix %q", got[0].body.Text, want)
	}
	got = say(t, b, sink, provider.Message{Conversation: convID, Kind: provider.Start, ClientID: "again"}, 2)
	if !strings.HasPrefix(got[0].body.Text, "Hi Ada!") {
		t.Errorf("start = %q", got[0].body.Text)
	}
}

const testScript = `
name: test
start: a
fallback: sorry
blocks:
  a:
    messages:
      - text: "plan {{session.plan|none}}, seats {{ session.billing.seats | ? }}, pro {{session.pro|?}}, me {{who|you}}"
  sorry:
    messages:
      - text: sorry
`

func TestSessionTemplates(t *testing.T) {
	s, err := Parse([]byte(testScript))
	if err != nil {
		t.Fatal(err)
	}
	b, sink := newBot(t, s)
	for _, tc := range []struct{ session, want string }{
		{``, "plan none, seats ?, pro ?, me you"},
		{`{"plan":"pro","billing":{"seats":12},"pro":true}`, "plan pro, seats 12, pro true, me you"},
		{`{"plan":"  ","billing":[1]}`, "plan none, seats ?, pro ?, me you"},
		{`[1,2]`, "plan none, seats ?, pro ?, me you"},
	} {
		m := msg(provider.Start, "", "")
		m.Session = []byte(tc.session)
		got := say(t, b, sink, m, 1)
		if got[0].body.Text != tc.want {
			t.Errorf("session %s: %q, want %q", tc.session, got[0].body.Text, tc.want)
		}
	}
}

func TestFallback(t *testing.T) {
	b, sink := newBot(t, Default())
	for _, m := range []provider.Message{
		msg(provider.Text, "what is the airspeed of a swallow", ""),
		msg(provider.Postback, "Old button", "demo:no-such-block"),
		msg(provider.Postback, "Foreign", "chatlayer:menu"),
		msg(provider.Postback, "Empty", ""),
	} {
		got := say(t, b, sink, m, 1)
		if !strings.HasPrefix(got[0].body.Text, "Sorry") || len(got[0].body.QuickReplies) == 0 {
			t.Errorf("%s %q %q -> %q, want the fallback with its menu", m.Kind, m.Text, m.Payload, got[0].body.Text)
		}
	}
}

// TestRedelivery hands the same messages twice, as the service does after
// a crash: the replies must carry the same keys and the same content, even
// though the first delivery already moved the conversation on.
func TestRedelivery(t *testing.T) {
	b, sink := newBot(t, Default())
	ask := msg(provider.Postback, "Tell you my name", "demo:ask-name")
	name := msg(provider.Text, "Grace", "")
	say(t, b, sink, ask, 1)
	say(t, b, sink, name, 1)

	sink.mu.Lock()
	first := append([]delivery(nil), sink.attempts...)
	sink.mu.Unlock()

	for range 2 {
		if err := b.Send(context.Background(), name); err != nil {
			t.Fatal(err)
		}
		settle(t, b)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	again := sink.attempts[len(first):]
	if len(again) != 2 {
		t.Fatalf("redelivery attempts = %d, want 2", len(again))
	}
	for _, d := range again {
		if !reflect.DeepEqual(d, first[1]) {
			t.Errorf("redelivered %q %q, first time %q %q", d.key, d.body.Text, first[1].key, first[1].body.Text)
		}
	}
	if len(sink.stored) != 2 {
		t.Errorf("stored %d replies, want 2: %v", len(sink.stored), texts(sink.stored))
	}
}

// TestOrder sends two messages without waiting: all replies to the first
// come before any reply to the second, with a typing pause before each.
func TestOrder(t *testing.T) {
	b, sink := newBot(t, Default())
	other := "ffffffffffffffffffffffffffffffff"
	ms := []provider.Message{
		msg(provider.Postback, "Media", "demo:tour-media"), // 5 replies
		msg(provider.Text, "bye", ""),                      // 1 reply
	}
	var wg sync.WaitGroup
	wg.Go(func() { // another conversation at the same time
		for i := range 3 {
			m := msg(provider.Text, "hello", "")
			m.Conversation, m.ClientID = other, "o"+strconv.Itoa(i)
			if err := b.Send(context.Background(), m); err != nil {
				t.Error(err)
			}
		}
	})
	for _, m := range ms {
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	got := sink.replies(t, convID, 6)
	sink.replies(t, other, 3)
	var keys []string
	for _, d := range got {
		keys = append(keys, d.key)
	}
	want := []string{"demo/" + ms[0].ClientID + "/0", "demo/" + ms[0].ClientID + "/1", "demo/" + ms[0].ClientID + "/2",
		"demo/" + ms[0].ClientID + "/3", "demo/" + ms[0].ClientID + "/4", "demo/" + ms[1].ClientID + "/0"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	settle(t, b)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var prev string
	var events []string
	for _, e := range sink.events {
		if !strings.HasPrefix(e, convID) {
			continue
		}
		e = strings.TrimPrefix(e, convID+" ")
		if strings.HasPrefix(e, "deliver") && prev != "on" {
			t.Errorf("%s without a typing pause before it", e)
		}
		prev = e
		events = append(events, e)
	}
	if prev != "off" {
		t.Errorf("typing not hidden at the end: %q", events)
	}
}

func TestRejects(t *testing.T) {
	b, _ := newBot(t, Default())
	err := b.Send(context.Background(), provider.Message{Conversation: convID, Kind: "sticker"})
	if reason, temporary, _ := provider.Classify(err); reason != provider.ReasonRejected || temporary {
		t.Errorf("unknown kind: %v (%s, temporary %v)", err, reason, temporary)
	}
}

func TestCloseWaits(t *testing.T) {
	sink := newSink()
	sink.gate, sink.entered = make(chan struct{}), make(chan struct{})
	b := New(Default(), sink, Options{TypingDelay: time.Millisecond})
	if err := b.Send(context.Background(), provider.Message{Conversation: convID, Kind: provider.Start}); err != nil {
		t.Fatal(err)
	}
	<-sink.entered // the first reply is being delivered

	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a reply was being delivered")
	case <-time.After(50 * time.Millisecond):
	}
	close(sink.gate)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}

	sink.mu.Lock()
	n, last := len(sink.attempts), sink.events[len(sink.events)-1]
	sink.mu.Unlock()
	if n != 1 {
		t.Errorf("%d replies delivered, want 1: the second was still waiting to be typed", n)
	}
	if last != convID+" off" {
		t.Errorf("last event %q, want typing off", last)
	}
	err := b.Send(context.Background(), msg(provider.Text, "hello", ""))
	if _, temporary, _ := provider.Classify(err); err == nil || !temporary {
		t.Errorf("Send after Close = %v, want a temporary error", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "start: a\nfallback: a\nblocks:\n  a:\n    messages:\n      - text: hi\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"empty file", "", "the file is empty"},
		{"unknown field", head + "  b:\n    messages:\n      - txt: hi\n", "unknown field txt; check its spelling"},
		{"missing start", "fallback: a\nblocks:\n  a:\n    messages: [{text: hi}]\n", "start: is missing"},
		{"unknown fallback", "start: a\nfallback: nope\nblocks:\n  a:\n    messages: [{text: hi}]\n", `fallback: block "nope" does not exist; define it under blocks:`},
		{"button target", head + "      - buttons: [{title: Go, next: pricing}]\n", `blocks.a.messages[1].buttons[0].next: block "pricing" does not exist; define it under blocks: or point to an existing one`},
		{"quick reply target", head + "      - {text: pick, quick_replies: [{title: X}]}\n", "blocks.a.messages[1].quick_replies[0].next: is missing"},
		{"card button target", head + "      - cards: [{title: C, buttons: [{title: B, next: zz}]}]\n", `blocks.a.messages[1].cards[0].buttons[0].next: block "zz"`},
		{"button does two things", head + "      - buttons: [{title: B, url: 'https://x.example', phone: '123'}]\n", "blocks.a.messages[1].buttons[0]: sets both url and phone"},
		{"button does nothing", head + "      - buttons: [{title: B}]\n", "blocks.a.messages[1].buttons[0]: needs one of next"},
		{"mixed message", head + "      - {text: hi, cards: [{title: C}]}\n", "blocks.a.messages[1]: text cannot be combined with cards"},
		{"two media", head + "      - {image: /a.png, video: /b.webm}\n", "blocks.a.messages[1]: video cannot be combined with image"},
		{"empty message", head + "      - {}\n", "blocks.a.messages[1]: is empty"},
		{"bad media url", head + "      - {image: 'javascript:alert(1)'}\n", "blocks.a.messages[1].image: must use https or http"},
		{"bad card image", head + "      - cards: [{title: C, image: 'ftp://x.example/a.png'}]\n", "blocks.a.messages[1].cards[0].image: must use https or http"},
		{"bad link", head + "      - buttons: [{title: B, url: 'data:text/html,hi'}]\n", "blocks.a.messages[1].buttons[0].url: must use https, http, mailto or tel"},
		{"bad phone", head + "      - buttons: [{title: B, phone: call-me}]\n", "blocks.a.messages[1].buttons[0].phone: must be a phone number"},
		{"empty after template", head + "      - text: '{{name}}'\n", "blocks.a.messages[1].text: is empty; write some text, or give every {{variable}} a default"},
		{"unclosed template", head + "      - text: 'hi {{name'\n", `blocks.a.messages[1].text: has "{{" without a closing "}}"`},
		{"bad template name", head + "      - buttons: [{title: '{{session}}', next: a}]\n", `blocks.a.messages[1].buttons[0].title: {{session}}: "session" is not a variable`},
		{"title too long", head + "      - quick_replies: [{title: '" + strings.Repeat("x", 300) + "', next: a}]\n        text: t\n", "blocks.a.messages[1].quick_replies[0].title: is longer than 256"},
		{"collect without next", head + "    collect: name\n", "blocks.a.next: is missing; name the block that runs after the visitor answers"},
		{"bad variable", head + "    collect: session\n    next: a\n", `blocks.a.collect: "session" is not a variable name`},
		{"auto next target", head + "    next: b\n", `blocks.a.next: block "b" does not exist`},
		{"loop", head + "    next: b\n  b:\n    next: c\n  c:\n    next: a\n", "blocks.a.next: continuing automatically loops forever (a → b → c → a)"},
		{"nothing to do", head + "  b: {}\n", "blocks.b: has no messages and no next"},
		{"null block", head + "  b:\n", "blocks.b: is empty"},
		{"bad block name", head + "  'two words':\n    messages: [{text: hi}]\n", "blocks.two words: block names may only use"},
		{"intent target", head + "intents:\n  - {match: hi, next: nope}\n", `intents[0].next: block "nope" does not exist`},
		{"intent keyword", head + "intents:\n  - {match: 'hi||hey', next: a}\n", `intents[0].match: keyword "" has no letters or digits`},
		{"intent missing match", head + "intents:\n  - {next: a}\n", "intents[0].match: is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s", err, tc.want)
			}
		})
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	_, err := Parse([]byte("start: x\nfallback: y\nblocks:\n  a:\n    messages: [{text: hi}]\n"))
	if err == nil || !strings.Contains(err.Error(), "start: block \"x\"") || !strings.Contains(err.Error(), "fallback: block \"y\"") {
		t.Errorf("error = %v, want both start and fallback named", err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.yaml")
	if err := os.WriteFile(path, []byte(testScript), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
	if err := os.WriteFile(path, []byte("start: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("Load(broken) = %v, want the path first", err)
	}
}

// TestDocExample parses the example in the package documentation, so that
// it stays a working script.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("script.go")
	if err != nil {
		t.Fatal(err)
	}
	var yaml strings.Builder
	for line := range strings.Lines(string(src)) {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			yaml.WriteString(rest)
		}
		if strings.HasPrefix(line, "package ") {
			break
		}
	}
	s, err := Parse([]byte(yaml.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml.String())
	}
	b, sink := newBot(t, s)
	m := msg(provider.Start, "", "")
	m.Session = []byte(`{"plan":"gold"}`)
	got := say(t, b, sink, m, 1)
	if got[0].body.Text != "Hi there! You're on the gold plan." {
		t.Errorf("start = %q", got[0].body.Text)
	}
	got = say(t, b, sink, msg(provider.Text, "What are your opening hours?", ""), 1)
	if got[0].body.Text != "We're open 9 to 5." {
		t.Errorf("intent = %q", got[0].body.Text)
	}
}

// TestLongValues checks that a huge answer is cut, and that a message it
// would push over a limit falls back to its defaults instead of failing.
func TestLongValues(t *testing.T) {
	s, err := Parse([]byte(`
start: ask
fallback: ask
blocks:
  ask:
    messages: [{text: "Name?"}]
    collect: n
    next: show
  show:
    messages:
      - text: "Hello {{n}}"
      - buttons: [{title: "{{n|a}} {{n|b}} {{n|c}}", next: ask}]
`))
	if err != nil {
		t.Fatal(err)
	}
	b, sink := newBot(t, s)
	say(t, b, sink, msg(provider.Start, "", ""), 1)
	got := say(t, b, sink, msg(provider.Text, strings.Repeat("é", 500), ""), 2)
	if want := "Hello " + strings.Repeat("é", maxVar) + "…"; got[0].body.Text != want {
		t.Errorf("text = %q, want the name cut to %d characters", got[0].body.Text, maxVar)
	}
	if title := got[1].body.Buttons[0].Title; title != "a b c" {
		t.Errorf("title = %q, want the defaults", title)
	}
}

// flakySink fails the first Deliver, as a store might during a hiccup.
type flakySink struct {
	*fakeSink
	failed atomic.Bool
}

func (f *flakySink) Deliver(ctx context.Context, convID, key string, bodies ...widget.Body) error {
	if !f.failed.Swap(true) {
		return errors.New("disk hiccup")
	}
	return f.fakeSink.Deliver(ctx, convID, key, bodies...)
}

func TestDeliverRetries(t *testing.T) {
	sink := &flakySink{fakeSink: newSink()}
	b := New(Default(), sink, Options{TypingDelay: time.Millisecond})
	defer b.Close()
	if err := b.Send(context.Background(), provider.Message{Conversation: convID, Kind: provider.Start}); err != nil {
		t.Fatal(err)
	}
	got := sink.replies(t, convID, 2)
	if got[0].key != "demo/start/0" {
		t.Errorf("first key = %q", got[0].key)
	}
}
