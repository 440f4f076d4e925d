package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/server/provider"
)

// hookProvider is a fake platform adapter that takes callbacks.
type hookProvider struct {
	fakeProvider
	hits int
}

func (h *hookProvider) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	h.hits++
	w.WriteHeader(http.StatusNoContent)
}

func TestHooksReachTheBotsProvider(t *testing.T) {
	hp := &hookProvider{}
	h := newHarness(t, func(_ *Config, o *Options) { o.Providers["acme"] = hp })
	post := func(path string) int {
		resp, err := http.Post(h.hs.URL+path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The acme bot is configured with provider demo in the harness.
	if got := post("/hooks/demo/acme"); got != http.StatusNoContent || hp.hits != 1 {
		t.Fatalf("POST /hooks/demo/acme = %d (hits %d), want 204 from the provider", got, hp.hits)
	}
	for _, path := range []string{"/hooks/chatlayer/acme", "/hooks/demo/nosuchbot"} {
		if got := post(path); got != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", path, got)
		}
	}
	// A provider without callbacks: 404 too.
	if got := post("/hooks/demo/demo"); got != http.StatusNotFound {
		t.Errorf("POST /hooks/demo/demo = %d, want 404 for a provider without callbacks", got)
	}
	var _ provider.Webhook = hp
}
