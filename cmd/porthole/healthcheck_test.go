package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runHealthcheck runs `porthole healthcheck args...` and returns its
// exit code, stdout and stderr.
func runHealthcheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"healthcheck", "--timeout", "5s"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	default:
		t.Fatalf("running healthcheck: %v", err)
		return -1, "", ""
	}
}

// TestHealthcheck: the container health check answers 0 for a real
// server found by --listen (also as :port, every interface), or by the
// listen address in its config, and 1 with the reason once the server is
// gone or answers /readyz with anything but 200.
func TestHealthcheck(t *testing.T) {
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	p := launch(t, addr, t.TempDir())

	for _, listen := range []string{addr, ":" + port, "0.0.0.0:" + port} {
		code, out, errs := runHealthcheck(t, "--listen", listen)
		if code != 0 || strings.TrimSpace(out) != "ready" {
			t.Errorf("healthcheck --listen %s: exit %d, stdout %q, stderr %q; want 0 and ready", listen, code, out, errs)
		}
	}

	cfg := filepath.Join(t.TempDir(), "porthole.yaml")
	yaml := "listen: \"" + addr + "\"\nbots:\n  - id: demo\n    provider: demo\n    origins: [loopback]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runHealthcheck(t, "--config", cfg); code != 0 {
		t.Errorf("healthcheck --config: exit %d, stdout %q, stderr %q; want 0", code, out, errs)
	}

	p.kill()
	code, out, errs := runHealthcheck(t, "--listen", addr)
	if code != 1 || out != "" || !strings.Contains(errs, "not ready") || !strings.Contains(errs, addr) {
		t.Errorf("healthcheck with the server gone: exit %d, stdout %q, stderr %q; want 1 and an error naming %s", code, out, errs, addr)
	}

	draining := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			t.Errorf("healthcheck asked for %s, want /readyz", r.URL.Path)
		}
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	defer draining.Close()
	code, out, errs = runHealthcheck(t, "--listen", draining.Listener.Addr().String())
	if code != 1 || out != "" || !strings.Contains(errs, "503") || !strings.Contains(errs, "draining") {
		t.Errorf("healthcheck on a draining server: exit %d, stdout %q, stderr %q; want 1 naming 503 draining", code, out, errs)
	}

	code, _, errs = runHealthcheck(t, "--listen", "8080")
	if code != 1 || !strings.Contains(errs, `listen address "8080"`) || !strings.Contains(errs, ":8080") {
		t.Errorf("healthcheck --listen 8080: exit %d, stderr %q; want 1 and the fix", code, errs)
	}
}

// TestDialAddr: a server listening on every interface is reached on the
// loopback address of the same family; a named host is kept.
func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		":8080":          "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "[::1]:8080",
		"127.0.0.2:9000": "127.0.0.2:9000",
		"localhost:8080": "localhost:8080",
	} {
		if got, err := dialAddr(in); err != nil || got != want {
			t.Errorf("dialAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
