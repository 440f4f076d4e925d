package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
)

// TestEngineNoIntent: a page view without intent costs the host page the
// loader and nothing else, and the bot owner nothing at all (DESIGN.md,
// "Nothing before intent"). In each engine the host page is viewed for
// 10 s with no pointer, focus, touch or API call; then no wasm or
// wasm_exec was requested, no socket opened, nothing stored in the page's
// localStorage or sessionStorage, no conversation exists on the server
// and nothing went upstream. Each observer is then shown to see intent
// (a click and a message), so that none of them passes by being blind.
func TestEngineNoIntent(t *testing.T) {
	widgetCode := regexp.MustCompile(`\.wasm$|wasm_exec`)
	socket := regexp.MustCompile(` /v1/ws$`)
	storage := `({local: Object.keys(localStorage), session: Object.keys(sessionStorage)})`
	for _, e := range engineSpecs {
		t.Run(e.name, func(t *testing.T) {
			// Mostly waiting: the engines wait side by side.
			t.Parallel()
			s := newEngineSite(t)
			p := openEngine(t, e)
			p.navigate(s.host.URL + "/")
			p.waitFor("the launcher", engineLauncher)
			if got := s.tap.requests(regexp.MustCompile(`/widget\.js$`)); len(got) != 1 {
				t.Fatalf("the loader was requested %d times: %v", len(got), got)
			}
			time.Sleep(10 * time.Second)

			if got := s.tap.requests(widgetCode); len(got) > 0 {
				t.Errorf("the widget's code was requested without intent: %v", got)
			}
			if got := s.tap.requests(socket); len(got) > 0 {
				t.Errorf("a WebSocket was opened without intent: %v", got)
			}
			kept := evalEngine[map[string][]string](p, storage)
			if len(kept["local"])+len(kept["session"]) > 0 {
				t.Errorf("the page's storage was written without intent: localStorage %v, sessionStorage %v", kept["local"], kept["session"])
			}
			if n := len(handedUpstream.FindAllString(s.proxy.log(), -1)); n > 0 {
				t.Errorf("the server made %d upstream call(s) without intent", n)
			}
			if n := s.conversations(t); n > 0 {
				t.Errorf("the server holds %d conversation(s) after a page view without intent", n)
			}
			if t.Failed() {
				t.Logf("requests the proxy saw: %v", s.tap.requests(regexp.MustCompile(`.`)))
			}

			// The control: a click and a message are intent, and every
			// observer above sees them.
			s.launch(t)
			p.click("the launcher", engineLauncher)
			p.waitFor("the composer's focus", shadow+`.activeElement == `+engineComposer)
			p.keys("hello", true)
			p.waitFor("the bot's answer", engineMessages("bot", "Hello, there!")+` == 1`)
			if got := s.tap.requests(widgetCode); len(got) < 2 {
				t.Errorf("control: the widget's code was not seen loading after a click: %v", got)
			}
			if got := s.tap.requests(socket); len(got) == 0 {
				t.Error("control: no WebSocket was seen after a click")
			}
			if kept := evalEngine[map[string][]string](p, storage); !strings.Contains(strings.Join(kept["local"], " "), "porthole:demo:visitor") {
				t.Errorf("control: the visitor was not kept in localStorage: %v", kept)
			}
			if n := len(handedUpstream.FindAllString(s.proxy.log(), -1)); n == 0 {
				t.Error("control: no upstream call was seen after a message")
			}
			if n := s.conversations(t); n != 1 {
				t.Errorf("control: the server holds %d conversations after a message, want 1", n)
			}
		})
	}
}

// conversations stops the server and counts the conversations in its
// store (in a copy, so that the file stays as the server left it); the
// caller starts it again with launch when it needs it.
func (s *engineSite) conversations(t *testing.T) int {
	t.Helper()
	s.proxy.kill()
	b, err := os.ReadFile(filepath.Join(s.data, "porthole.db"))
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(cp, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Prune deletes, and counts, every conversation updated before then.
	n, err := st.Prune(context.Background(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
