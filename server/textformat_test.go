package server

import (
	"reflect"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// TestTextFormat: a bot whose text_format is markdown has its replies
// formatted where every platform's replies arrive (the sink), a plain bot
// has them stored as written, a visitor's Markdown always stays plain
// text, and a reload that changes the format applies to the next reply.
func TestTextFormat(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) {
		for i := range c.Bots {
			if c.Bots[i].ID == "acme" {
				c.Bots[i].TextFormat = provider.FormatMarkdown
			}
		}
	})
	ctx := t.Context()
	conv, _, err := h.st.Conversation(ctx, "acme", "v1")
	if err != nil {
		t.Fatal(err)
	}
	plainConv, _, err := h.st.Conversation(ctx, "demo", "v1")
	if err != nil {
		t.Fatal(err)
	}
	reply := "**Hi** [there](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n- a `b`"
	last := func(conv string) Entry {
		t.Helper()
		es := mustTranscript(t, h, conv)
		if len(es) == 0 {
			t.Fatal("empty transcript")
		}
		return es[len(es)-1]
	}

	if err := h.srv.botSink("acme").Deliver(ctx, conv.ID, "k1", widget.Text(reply)); err != nil {
		t.Fatal(err)
	}
	got := last(conv.ID).Body
	want := widget.Body{Kind: widget.KindText, Text: "Hi there <img src=x onerror=alert(1)>\n\n• a b", Blocks: []widget.Block{
		{P: []widget.Run{{Text: "Hi", Style: "b"}, {Text: " there <img src=x onerror=alert(1)>"}}},
		{UL: [][]widget.Block{{{P: []widget.Run{{Text: "a "}, {Text: "b", Style: "c"}}}}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("markdown bot's reply stored as\n%+v\nwant\n%+v", got, want)
	}

	// The demo platform's default is plain.
	if err := h.srv.botSink("demo").Deliver(ctx, plainConv.ID, "k1", widget.Text(reply)); err != nil {
		t.Fatal(err)
	}
	if got := last(plainConv.ID).Body; !reflect.DeepEqual(got, widget.Text(reply)) {
		t.Fatalf("plain bot's reply stored as %+v", got)
	}

	// A visitor's text is never formatted.
	if _, err := h.srv.service.Post(ctx, conv.ID, Inbound{Bot: "acme", ClientID: "c-md", Text: "**mine**"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range mustTranscript(t, h, conv.ID) {
		if e.Mine && (e.Body.Blocks != nil || e.Body.Text != "**mine**") {
			t.Fatalf("visitor's message stored as %+v", e.Body)
		}
	}

	// A reload to plain applies to the next reply.
	cfg := *h.srv.config()
	cfg.Bots = append([]BotConfig(nil), cfg.Bots...)
	for i := range cfg.Bots {
		if cfg.Bots[i].ID == "acme" {
			cfg.Bots[i].TextFormat = provider.FormatPlain
		}
	}
	if err := h.srv.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.botSink("acme").Deliver(ctx, conv.ID, "k2", widget.Text("**now plain**")); err != nil {
		t.Fatal(err)
	}
	if got := last(conv.ID).Body; !reflect.DeepEqual(got, widget.Text("**now plain**")) {
		t.Fatalf("after the reload to plain: %+v", got)
	}
}

func mustTranscript(t *testing.T, h *harness, conv string) []Entry {
	t.Helper()
	es, err := h.srv.service.Transcript(t.Context(), conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestTextFormatConfig(t *testing.T) {
	base := `
bots:
  - id: acme
    provider: demo
    origins: ["https://www.acme.com"]
`
	c, err := ParseConfig([]byte(base+"    text_format: markdown\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Bots[0].Format(); f != provider.FormatMarkdown {
		t.Errorf("text_format: markdown reads as %q", f)
	}
	_, err = ParseConfig([]byte(base+"    text_format: html\n"), testEnv)
	if err == nil || !strings.Contains(err.Error(), "bots[0].text_format") || !strings.Contains(err.Error(), "markdown or plain") {
		t.Errorf("text_format: html: %v", err)
	}
	// Without the setting: the platform's default, plain for an unknown
	// one.
	for p, want := range map[string]string{"chatlayer": provider.FormatMarkdown, "chataibot": provider.FormatMarkdown, "demo": provider.FormatPlain, "no-such-platform": provider.FormatPlain} {
		if f := (BotConfig{Provider: p}).Format(); f != want {
			t.Errorf("default of %s: %q, want %q", p, f, want)
		}
	}
}
