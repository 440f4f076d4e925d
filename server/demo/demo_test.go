package demo

import (
	"context"
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

func (f *fakeSink) CompareAndSetAttr(ctx context.Context, convID, key, old, value string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attrs[convID+"/"+key] != old {
		return false, nil
	}
	f.attrs[convID+"/"+key] = value
	return true, nil
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
