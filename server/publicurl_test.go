package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestWarnSelfWithoutPublicURL: a bot that lists "self" on a server
// listening beyond loopback with no public_url gets a start-up warning
// naming public_url and the fix; the demo setup of `make run`, a
// loopback listener and a set public_url start quietly.
func TestWarnSelfWithoutPublicURL(t *testing.T) {
	self := BotConfig{ID: "acme", Provider: "demo", Origins: []string{"self"}}
	for _, c := range []struct {
		name, listen, publicURL, provider string
		warn                              bool
	}{
		{"public name, no public_url", ":8080", "", "chataibot", true},
		{"make run", ":8080", "", "demo", false},
		{"loopback", "127.0.0.1:8080", "", "chataibot", false},
		{"public_url set", ":8080", "https://chat.example.com", "chataibot", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.PublicURL = c.listen, c.publicURL
			cfg.Bots = []BotConfig{self}
			cfg.Bots[0].Provider = c.provider
			var logs bytes.Buffer
			s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
			s.cur.Store(newSnapshot(cfg))
			s.warnSelfWithoutPublicURL()
			got := strings.Contains(logs.String(), "public_url is not set")
			if got != c.warn {
				t.Errorf("warned %v, want %v: %q", got, c.warn, logs.String())
			}
			if c.warn && !strings.Contains(logs.String(), "set public_url to the origin") {
				t.Errorf("the warning does not say the fix: %q", logs.String())
			}
		})
	}
}
