package demo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/server/provider"
)

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
