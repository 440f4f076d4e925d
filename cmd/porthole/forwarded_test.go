package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/widget"
)

// forwardedConfig is the server's side of TestSpoofedForwardedFor: it
// trusts the test's proxy on 127.0.0.1, allows two conversation starts
// and three sockets per address.
const forwardedConfig = `trusted_proxies: ["127.0.0.1/32"]
limits: {starts_per_minute: 1, start_burst: 2, connections_per_ip: 3}
bots:
  - id: acme
    provider: demo
    origins: ["self"]
`

// appendingProxy runs a reverse proxy on 127.0.0.1 in front of the
// server at addr, the way nginx's $proxy_add_x_forwarded_for works:
// httputil.ReverseProxy appends the client's address to whatever
// X-Forwarded-For the client sent. It returns the proxy's address.
func appendingProxy(t *testing.T, addr string) string {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
	rp.Transport = &http.Transport{DialContext: dialer.DialContext}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: rp}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// dialFrom opens a socket to acme through the proxy at proxy, from the
// loopback address from, with the X-Forwarded-For header the client
// writes itself.
func dialFrom(t *testing.T, proxy, from, spoof string) (*wsc, *http.Response, error) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+proxy+"/v1/ws?bot=acme", &websocket.DialOptions{
		Subprotocols: []string{widget.Protocol},
		HTTPHeader:   http.Header{"X-Forwarded-For": {spoof}},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsc{t: t, c: c, bot: "acme"}, resp, nil
}

// startThrough says hello and start on w and reports whether a
// conversation was started (false: refused with rate_limited).
func startThrough(t *testing.T, w *wsc, id string) bool {
	t.Helper()
	w.hello("", 0)
	w.send(&widget.Start{ID: id})
	f := w.until("the answer to "+id, func(f widget.Frame) bool {
		wl, ok := f.(*widget.Welcome)
		e, isErr := f.(*widget.ErrorFrame)
		return ok && wl.Conversation != "" || isErr && e.ID == id
	})
	if e, ok := f.(*widget.ErrorFrame); ok {
		if e.Code != widget.CodeRateLimited {
			t.Fatalf("%s refused with %+v, want rate_limited", id, e)
		}
		return false
	}
	return true
}

// TestSpoofedForwardedFor: behind a trusted proxy that appends to
// X-Forwarded-For, a client that writes its own X-Forwarded-For (a new
// made-up address per socket, or the proxy's own address) is still
// counted by the address the proxy appended: its conversation starts and
// its sockets hit the per-address limits, while a visitor on another
// address behind the same proxy has limits of its own. (With the old
// trust_forwarded_for, each made-up address had buckets of its own.)
func TestSpoofedForwardedFor(t *testing.T) {
	const attacker, visitor = "127.0.0.3", "127.0.0.2"
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	if err := os.WriteFile(cfg, []byte(forwardedConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, data, "--config", cfg)
	proxy := appendingProxy(t, p.addr)

	// Conversation starts: start_burst is 2, whatever the header says.
	spoofs := []string{"1.2.3.4", "1.2.3.5", "127.0.0.1", "2001:db8::1", "1.2.3.6, 127.0.0.1", "junk", "1.2.3.7"}
	started := 0
	for i, spoof := range spoofs {
		w, _, err := dialFrom(t, proxy, attacker, spoof)
		if err != nil {
			t.Fatalf("socket %d (X-Forwarded-For: %s): %v", i, spoof, err)
		}
		if startThrough(t, w, fmt.Sprintf("spoof-%d", i)) {
			started++
		}
		w.c.Close(websocket.StatusNormalClosure, "")
	}
	if started != 2 {
		t.Fatalf("the client on %s started %d conversations with %d spoofed X-Forwarded-For values, want 2 (its start_burst)", attacker, started, len(spoofs))
	}
	// Another client behind the same proxy is not charged for them.
	w, _, err := dialFrom(t, proxy, visitor, attacker)
	if err != nil {
		t.Fatal(err)
	}
	if !startThrough(t, w, "visitor") {
		t.Fatalf("the visitor on %s (who wrote X-Forwarded-For: %s) was refused a start", visitor, attacker)
	}
	w.c.Close(websocket.StatusNormalClosure, "")

	// Sockets: connections_per_ip is 3. The closed sockets above may take
	// a moment to be released.
	var open []*wsc
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; len(open) < 3; i++ {
		w, _, err := dialFrom(t, proxy, attacker, fmt.Sprintf("198.51.100.%d", i+1))
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("socket %d: %v", len(open), err)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		w.hello("", 0)
		open = append(open, w)
	}
	for i, spoof := range []string{"198.51.100.50", "203.0.113.9", "127.0.0.1"} {
		if _, resp, err := dialFrom(t, proxy, attacker, spoof); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("socket %d over connections_per_ip (X-Forwarded-For: %s): %v %v, want 429", 4+i, spoof, err, resp)
		}
	}
	w, _, err = dialFrom(t, proxy, visitor, "198.51.100.1")
	if err != nil {
		t.Fatalf("the visitor on %s cannot open a socket while %s is at its cap: %v", visitor, attacker, err)
	}
	w.hello("", 0)
}

// TestTrustForwardedForIsRetired: a config that still says
// trust_forwarded_for stops the server with what to write instead.
func TestTrustForwardedForIsRetired(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "porthole.yaml")
	os.WriteFile(cfg, []byte("limits: {trust_forwarded_for: true}\nbots:\n  - id: acme\n    provider: demo\n    origins: [self]\n"), 0o600)
	out, err := exec.Command(binary, "serve", "--config", cfg, "--data", t.TempDir()).CombinedOutput()
	if err == nil {
		t.Fatal("server started with trust_forwarded_for")
	}
	for _, want := range []string{"limits.trust_forwarded_for", "trusted_proxies: [", "CIDR"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
