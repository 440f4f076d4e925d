package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
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

// TestDemoPageFollowsReload: a reload that removes the demo bot takes
// the demo page at / away (404), and one that adds it back brings it
// back, without a restart.
func TestDemoPageFollowsReload(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	dir := t.TempDir()
	file := filepath.Join(dir, "porthole.yaml")
	acme := fmt.Sprintf(`  - id: acme
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %q, channel_id: %q, token: "${CHATLAYER_TOKEN}", verify_token: "${CHATLAYER_VERIFY}"}
`, emu.URL, chatlayertest.DefaultChannelID)
	demo := "  - id: try-it\n    provider: demo\n    origins: [\"self\"]\n"
	write := func(bots string) {
		t.Helper()
		if err := os.WriteFile(file, []byte("bots:\n"+bots), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(acme + demo)
	p := start(t, filepath.Join(dir, "data"), "--config", file)
	index := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := index(); code != 200 || !strings.Contains(body, `data-bot="try-it"`) {
		t.Fatalf("GET / with the demo bot try-it: %d %.300s", code, body)
	}
	reloads := 0
	for _, step := range []struct {
		bots string
		want int
	}{{acme, 404}, {acme + demo, 200}} {
		write(step.bots)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		reloads++
		waitFor(t, "the reload", 10*time.Second, func() bool { return strings.Count(p.log(), `msg="config reloaded"`) >= reloads })
		if code, _ := index(); code != step.want {
			t.Errorf("GET / after a reload to bots %q: %d, want %d", step.bots, code, step.want)
		}
	}
}
