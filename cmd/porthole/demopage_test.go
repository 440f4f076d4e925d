package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestDemoPageOnlyWithDemoBot: GET / is the demo page, under its strict
// CSP, when the config has a demo bot (the default), and 404 on a config
// without one, rather than a page for whichever bot comes first.
func TestDemoPageOnlyWithDemoBot(t *testing.T) {
	p := start(t, t.TempDir())
	resp, err := http.Get("http://" + p.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET / on the default config: %d, want 200", resp.StatusCode)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("the demo page's CSP lacks %s: %q", want, csp)
		}
	}

	cl, _ := chatlayerBinary(t)
	resp, err = http.Get("http://" + cl.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / on a Chatlayer-only config: %d, want 404", resp.StatusCode)
	}
}
