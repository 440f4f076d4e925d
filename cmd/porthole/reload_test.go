package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/widget"
)

// TestCheckExamples: `porthole check` passes every file in examples/,
// with the environment they reference, and starts nothing: no data
// directory, no store file.
func TestCheckExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			abs, _ := filepath.Abs(f)
			cwd := t.TempDir()
			cmd := exec.Command(binary, "check", "--config", abs)
			cmd.Dir = cwd
			cmd.Env = append(os.Environ(), "PORTHOLE_SESSION_KEY="+strings.Repeat("s", 40))
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("check %s: %v\n%s", f, err, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "ok: "+abs+": ") || !strings.Contains(stdout.String(), "bot(s): ") {
				t.Errorf("check's summary: %q", stdout.String())
			}
			if entries, _ := os.ReadDir(cwd); len(entries) > 0 {
				t.Errorf("check created %s in its working directory", entries[0].Name())
			}
		})
	}
}

// TestCheckBroken: on a file with several problems `porthole check`
// exits with status 1 and lists every one on stderr, each naming its
// field, and writes nothing on stdout.
func TestCheckBroken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "broken.yaml")
	os.WriteFile(file, []byte(`
limits:
  burst: -3
store:
  driver: bolt
  path: `+filepath.Join(dir, "never.db")+`
bots:
  - id: acme
    provider: nosuch
    origins: ["ftp://x"]
    widget:
      brand_color: "red"
      titel: "typo"
  - id: acme
    provider: demo
    origins: ["self"]
`), 0o600)
	cmd := exec.Command(binary, "check", "--config", file)
	cmd.Dir = dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("check on a broken file: %v, want exit status 1\n%s", err, stderr.String())
	}
	for _, field := range []string{"limits.burst", "bots[0].provider", "bots[0].origins[0]", "bots[0].widget.brand_color", "bots[0].widget.titel", "bots[1].id"} {
		if !strings.Contains(stderr.String(), "- "+field) {
			t.Errorf("the problem with %s is not listed:\n%s", field, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "problem(s)") {
		t.Errorf("no count of the problems:\n%s", stderr.String())
	}
	if stdout.Len() > 0 {
		t.Errorf("check printed %q on stdout for a broken file", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "never.db")); err == nil {
		t.Error("check opened the store")
	}
}

// reloadConfig is a config with the demo bot at origins under title.
func reloadConfig(title string, origins ...string) string {
	return `
bots:
  - id: demo
    provider: demo
    origins: ["` + strings.Join(origins, `", "`) + `"]
    widget:
      title: "` + title + `"
`
}

// TestSIGHUPReload: SIGHUP with a new origin and a changed title keeps
// the open socket (it sends and gets acks), accepts the new origin, and
// the next welcome carries the new title; a broken file is refused with
// every problem logged and the running config kept; a reload that drops
// an origin closes that origin's socket with 1008 and a reason, and the
// others stay.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "porthole.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const siteA, siteB = "https://a.example", "https://b.example"
	write(reloadConfig("First title", siteA))
	p := start(t, filepath.Join(dir, "data"), "--config", file)
	hup := func(want string, n int) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the log line "+want, 10*time.Second, func() bool { return strings.Count(p.log(), want) >= n })
	}

	a, _, err := dialBot(t, p, "demo", siteA)
	if err != nil {
		t.Fatal(err)
	}
	if w := a.hello("", 0); w.Widget.Title != "First title" {
		t.Fatalf("welcome title %q", w.Widget.Title)
	}
	a.start("s1")
	a.send(&widget.Send{ID: "a-1", Text: "hello"})
	a.ack("a-1")
	if _, resp, err := dialBot(t, p, "demo", siteB); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("%s accepted before it is configured: %v", siteB, err)
	}

	// A new origin and a new title.
	write(reloadConfig("Second title", siteA, siteB))
	hup(`msg="config reloaded"`, 1)
	a.send(&widget.Send{ID: "a-2", Text: "still here?"})
	a.ack("a-2")
	b, _, err := dialBot(t, p, "demo", siteB)
	if err != nil {
		t.Fatalf("%s refused after the reload: %v", siteB, err)
	}
	if w := b.hello("", 0); w.Widget.Title != "Second title" {
		t.Errorf("the welcome after the reload has title %q", w.Widget.Title)
	}

	// A broken file: refused, every problem logged, the old config kept.
	write(reloadConfig("Third title", siteA, siteB) + `      brand_color: "red"
      titel: "typo"
`)
	hup("the running configuration is kept", 1)
	for _, field := range []string{"bots[0].widget.brand_color", "bots[0].widget.titel"} {
		if !strings.Contains(p.log(), `msg="config reload refused: `+field) {
			t.Errorf("the problem with %s is not logged", field)
		}
	}
	b2, _, err := dialBot(t, p, "demo", siteB)
	if err != nil {
		t.Fatalf("%s refused after a broken reload: %v", siteB, err)
	}
	if w := b2.hello("", 0); w.Widget.Title != "Second title" {
		t.Errorf("after a refused reload the welcome has title %q, want the running one", w.Widget.Title)
	}
	a.send(&widget.Send{ID: "a-3", Text: "and now?"})
	a.ack("a-3")

	// siteA dropped: its socket is closed with 1008, siteB's stays.
	write(reloadConfig("Second title", siteB))
	hup(`msg="config reloaded"`, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := a.c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("%s's socket not closed with a close frame: %v", siteA, err)
		}
		if ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "origin "+siteA+" is no longer allowed") {
			t.Errorf("%s's socket closed with %d %q, want 1008 naming the origin", siteA, ce.Code, ce.Reason)
		}
		break
	}
	b.start("s2")
	b.send(&widget.Send{ID: "b-1", Text: "hello from b"})
	b.ack("b-1")
	if _, resp, err := dialBot(t, p, "demo", siteA); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("%s still accepted after it was dropped: %v", siteA, err)
	}
}
