package main

import (
	"net"
	"net/http"
	"testing"

	"github.com/porthole-chat/porthole/widget"
)

// upgradeStatus sends a WebSocket upgrade for bot to p with the given
// Host and Origin headers and returns the status it gets.
func upgradeStatus(t *testing.T, p *proc, bot, host, origin string) int {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+p.addr+"/v1/ws?bot="+bot, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Origin", origin)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Protocol", widget.Protocol)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSelfNotFromHost: without public_url, "self" is not taken from the
// request's Host. A DNS-rebinding page (its name pointed at the server)
// sends the same name as Host and Origin; on the default config its
// upgrade is refused with 403, with or without the port, while a page
// at http://localhost:<port> still gets its socket.
func TestSelfNotFromHost(t *testing.T) {
	p := start(t, t.TempDir())
	_, port, _ := net.SplitHostPort(p.addr)
	for _, c := range []struct{ host, origin string }{
		{"evil.example", "http://evil.example"},
		{"evil.example:" + port, "http://evil.example:" + port},
	} {
		if got := upgradeStatus(t, p, "demo", c.host, c.origin); got != http.StatusForbidden {
			t.Errorf("Host %s, Origin %s: status %d, want 403", c.host, c.origin, got)
		}
	}
	if got := upgradeStatus(t, p, "demo", "localhost:"+port, "http://localhost:"+port); got != http.StatusSwitchingProtocols {
		t.Errorf("Origin http://localhost:%s: status %d, want 101", port, got)
	}
}

// TestSelfOnlyLocalWithoutPublicURL: a bot whose only origin is "self",
// on a server without public_url, is reachable from a loopback page on
// the server's port (a developer's machine) and from no name a page
// sends as Host, nor from a loopback page on another port.
func TestSelfOnlyLocalWithoutPublicURL(t *testing.T) {
	p, _ := chatlayerBinary(t)
	_, port, _ := net.SplitHostPort(p.addr)
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{"localhost:" + port, "http://localhost:" + port, http.StatusSwitchingProtocols},
		{p.addr, "http://" + p.addr, http.StatusSwitchingProtocols},
		{"evil.example:" + port, "http://evil.example:" + port, http.StatusForbidden},
		{"evil.example", "http://evil.example", http.StatusForbidden},
		{"localhost:1", "http://localhost:1", http.StatusForbidden},
	} {
		if got := upgradeStatus(t, p, "acme", c.host, c.origin); got != c.want {
			t.Errorf("Host %s, Origin %s: status %d, want %d", c.host, c.origin, got, c.want)
		}
	}
}
