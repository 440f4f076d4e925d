// Package demo is Porthole's built-in scripted bot: the embedded default
// that makes `make run` useful without any bot platform account.
//
// It answers through the same asynchronous path as the real platforms:
// Send only records the conversation's new position and returns, and the
// replies go out later through provider.Sink, each after a short typing
// pause, so the widget, the store and the bus are exercised exactly as a
// Chatlayer or ChatAIBot callback would exercise them.
//
// # Script format
//
// A script is a YAML file of named blocks. A block sends its messages in
// order, then either stops, continues to another block (next), or waits
// for the visitor's next typed text, stores it in a variable (collect)
// and then runs next:
//
//	name: Acme helper             # shown nowhere by the bot; for humans and the server
//	start: welcome                # run when a conversation opens (provider.Start)
//	fallback: sorry               # run when nothing else matches
//	intents:                      # typed text, case-insensitive whole words, first match wins
//	  - match: hello|hi|hey
//	    next: welcome
//	  - match: opening hours      # a keyword may be several words
//	    next: hours
//	blocks:
//	  welcome:
//	    messages:
//	      - text: "Hi {{name|there}}! You're on the {{session.plan|free}} plan."
//	        quick_replies:                   # text with suggested answers
//	          - {title: Our products, next: products}
//	          - {title: Tell you my name, next: ask-name}
//	  ask-name:
//	    messages:
//	      - text: What's your name?
//	    collect: name                        # the next typed text becomes {{name}}
//	    next: welcome                        # runs after the answer
//	  products:
//	    messages:
//	      - text: Pick one.                  # buttons, with optional text
//	        buttons:
//	          - {title: Opening hours, next: hours}    # postback to a block
//	          - {title: Website, url: https://acme.example}
//	          - {title: Call us, phone: "+1 202 555 0143"}
//	      - cards:                           # a carousel
//	          - title: Harbour
//	            subtitle: Where chats dock
//	            image: /static/demo/harbour.svg  # "/..." is appended to Options.BaseURL
//	            url: https://acme.example/harbour
//	            buttons: [{title: Choose, next: hours}]
//	      - image: /static/demo/porthole.svg     # or video:, audio:, file:
//	        alt: A porthole
//	    next: hours                          # continue without waiting
//	  hours:
//	    messages:
//	      - text: We're open 9 to 5.
//	  sorry:
//	    messages:
//	      - text: Sorry, I didn't get that.
//	        quick_replies: [{title: Start over, next: welcome}]
//
// A message is exactly one of: text (optionally with quick_replies),
// buttons (optionally with text), cards, or one of image, video, audio and
// file (optionally with alt). A button does exactly one thing: next (a
// postback to a block), url, or phone.
//
// Text fields (text, titles, subtitles, alt) may use {{var}} for a
// collected variable, {{session.key}} (or {{session.a.b}}) for the session
// data the host page set, and {{var|default}} for a fallback when the value
// is unset. URLs are used literally.
//
// Parse checks everything once: every next names a block, start and
// fallback exist, automatic continuations do not loop, and every message,
// rendered with no variables set, passes widget.Body.Validate. Errors name
// the field by its path in the file, such as
// blocks.menu.messages[2].buttons[0].next.
package demo

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// payloadPrefix starts every postback payload the demo bot sends; the rest
// is the target block's name.
const payloadPrefix = "demo:"

// maxChain bounds how many blocks one visitor message may run, as a second
// guard behind Parse's loop check.
const maxChain = 32

// Script is a parsed and validated bot script. It is immutable, so one
// Script may serve any number of Bots.
type Script struct {
	name     string
	start    string
	fallback string
	intents  []intent
	blocks   map[string]*block
}

type intent struct {
	keywords [][]string // each keyword as lowercase words
	next     string
}

// The YAML shapes. Field names match the JSON names of the neutral model
// so that widget validation paths translate directly.
type scriptFile struct {
	Name     string            `yaml:"name"`
	Start    string            `yaml:"start"`
	Fallback string            `yaml:"fallback"`
	Intents  []intentSpec      `yaml:"intents"`
	Blocks   map[string]*block `yaml:"blocks"`
}

type intentSpec struct {
	Match string `yaml:"match"`
	Next  string `yaml:"next"`
}

type block struct {
	Messages []message `yaml:"messages"`
	Next     string    `yaml:"next"`
	Collect  string    `yaml:"collect"`
}

type message struct {
	Text         string       `yaml:"text"`
	QuickReplies []quickReply `yaml:"quick_replies"`
	Buttons      []button     `yaml:"buttons"`
	Cards        []card       `yaml:"cards"`
	Image        string       `yaml:"image"`
	Video        string       `yaml:"video"`
	Audio        string       `yaml:"audio"`
	File         string       `yaml:"file"`
	Alt          string       `yaml:"alt"`
}

type quickReply struct {
	Title string `yaml:"title"`
	Next  string `yaml:"next"`
}

type button struct {
	Title string `yaml:"title"`
	Next  string `yaml:"next"`
	URL   string `yaml:"url"`
	Phone string `yaml:"phone"`
}

type card struct {
	Title    string   `yaml:"title"`
	Subtitle string   `yaml:"subtitle"`
	Image    string   `yaml:"image"`
	URL      string   `yaml:"url"`
	Buttons  []button `yaml:"buttons"`
}

// unknownField rewrites yaml.v3's message for a misspelt key, which names
// Go types the script's author never sees.
var unknownField = regexp.MustCompile(`field (\S+) not found in type demo\.\w+`)

// Default returns the built-in demo script, the one `porthole serve` runs
// when no bot is configured. Its relative URLs point at /static/demo/.
func Default() *Script {
	s, err := Parse(defaultYAML)
	if err != nil {
		panic("demo: built-in default.yaml is invalid: " + err.Error())
	}
	return s
}

// Load reads and parses a script file, so that a deployment can replace
// the built-in script with its own.
func Load(path string) (*Script, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates a script. Unknown fields are errors, so a
// typo fails at load instead of silently doing nothing. Problems are
// reported together, one per line (the first of each message).
func Parse(data []byte) (*Script, error) {
	var f scriptFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("demo script: the file is empty; see the package documentation for an example")
		}
		msg := unknownField.ReplaceAllString(err.Error(), "unknown field $1; check its spelling and where it is indented")
		return nil, errors.New("demo script: " + strings.TrimPrefix(msg, "yaml: "))
	}
	return compile(&f)
}

// Name returns the script's display name, for the server to title the
// widget after the bot.
func (s *Script) Name() string { return s.name }

// compile validates f and turns it into a Script.
func compile(f *scriptFile) (*Script, error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	target := func(path, name, what string) {
		switch {
		case name == "":
			fail(path, "is missing; name the block %s", what)
		case f.Blocks[name] == nil:
			fail(path, "block %q does not exist; define it under blocks: or point to an existing one", name)
		}
	}

	var empty []string
	for name, b := range f.Blocks {
		if b == nil {
			empty = append(empty, name)
			f.Blocks[name] = &block{}
		}
	}
	if len(f.Blocks) == 0 {
		fail("blocks", "is empty; define at least a start and a fallback block")
	}
	target("start", f.Start, "that greets the visitor when a conversation opens")
	target("fallback", f.Fallback, "that answers what the bot did not understand")

	s := &Script{name: f.Name, start: f.Start, fallback: f.Fallback, blocks: f.Blocks}
	for i, in := range f.Intents {
		p := "intents[" + strconv.Itoa(i) + "]"
		target(p+".next", in.Next, "this intent leads to")
		it := intent{next: in.Next}
		if strings.TrimSpace(in.Match) == "" {
			fail(p+".match", "is missing; write words separated by |, such as hello|hi|hey")
		}
		for kw := range strings.SplitSeq(in.Match, "|") {
			if w := words(kw); len(w) > 0 {
				it.keywords = append(it.keywords, w)
			} else if strings.TrimSpace(in.Match) != "" {
				fail(p+".match", "keyword %q has no letters or digits; write words separated by |, such as hello|hi|hey", kw)
			}
		}
		s.intents = append(s.intents, it)
	}

	names := make([]string, 0, len(f.Blocks))
	for name := range f.Blocks {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b := f.Blocks[name]
		p := "blocks." + name
		if !validBlockName(name) {
			fail(p, "block names may only use letters, digits, '-', '_' and '.'; rename it")
		}
		if slices.Contains(empty, name) {
			fail(p, "is empty; give it messages, next or collect")
			continue
		}
		if len(b.Messages) == 0 && b.Next == "" {
			fail(p, "has no messages and no next; give it messages, or next to continue elsewhere")
		}
		if b.Collect != "" {
			if !validVar(b.Collect) {
				fail(p+".collect", "%q is not a variable name; use letters, digits and _ (not starting with a digit, and not \"session\", which holds the page's session data)", b.Collect)
			}
			target(p+".next", b.Next, "that runs after the visitor answers")
		} else if b.Next != "" {
			target(p+".next", b.Next, "to continue to")
		}
		for i := range b.Messages {
			if err := checkMessage(&b.Messages[i], f.Blocks); err != nil {
				errs = append(errs, fmt.Errorf("%s.messages[%d]%w", p, i, err))
			}
		}
	}

	// Automatic continuations must end, or one visitor message would make
	// the bot talk forever.
	reported := map[string]bool{}
	for _, name := range names {
		var chain []string
		for n := name; !reported[name]; {
			b := f.Blocks[n]
			if b == nil || b.Collect != "" || b.Next == "" {
				break
			}
			if i := slices.Index(chain, n); i >= 0 {
				loop := append(chain[i:], n)
				for _, l := range loop {
					reported[l] = true
				}
				fail("blocks."+loop[0]+".next", "continuing automatically loops forever (%s); end the chain with a block without next, or one that collects input", strings.Join(loop, " → "))
				break
			}
			chain = append(chain, n)
			n = b.Next
		}
	}

	switch len(errs) {
	case 0:
		return s, nil
	case 1:
		return nil, fmt.Errorf("demo script: %w", errs[0])
	}
	return nil, fmt.Errorf("demo script: %d problems:\n%w", len(errs), errors.Join(errs...))
}

// words splits s into lowercase words of letters and digits, for intent
// matching that ignores case and punctuation.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(c rune) bool {
		return !unicode.IsLetter(c) && !unicode.IsDigit(c)
	})
}

// match returns the block of the first intent with a keyword among the
// words of text, in order, or "".
func (s *Script) match(text string) string {
	ws := words(text)
	for _, in := range s.intents {
		for _, kw := range in.keywords {
			for i := 0; i+len(kw) <= len(ws); i++ {
				if slices.Equal(ws[i:i+len(kw)], kw) {
					return in.next
				}
			}
		}
	}
	return ""
}
