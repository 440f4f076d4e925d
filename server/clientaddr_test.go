package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/widget"
)

// TestClientAddr: the client is the rightmost forwarded address that is
// not a trusted proxy, read only from a trusted peer; what the client
// writes further left, junk and the other header never become it.
func TestClientAddr(t *testing.T) {
	nets, bad := parseTrustedProxies([]string{"127.0.0.1", "10.0.0.0/8", "fd00::/64", "::ffff:192.168.1.1/128"})
	if len(bad) != 0 {
		t.Fatal(bad)
	}
	xff := proxies{nets: nets, header: HeaderXForwardedFor}
	fwd := proxies{nets: nets, header: HeaderForwarded}
	for _, tc := range []struct {
		name   string
		p      proxies
		remote string
		hdr    http.Header
		want   string
	}{
		{"no proxies: the peer, header ignored", proxies{header: HeaderXForwardedFor}, "198.51.100.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4"}}, "198.51.100.1"},
		{"untrusted peer: header ignored", xff, "198.51.100.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4"}}, "198.51.100.1"},
		{"trusted peer, no header: the peer", xff, "127.0.0.1:5000", nil, "127.0.0.1"},
		{"one hop", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"client's own entry left of the appended one", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4, 203.0.113.9"}}, "203.0.113.9"},
		{"two proxies walked over", xff, "10.1.1.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4, 203.0.113.9, 10.2.2.2"}}, "203.0.113.9"},
		{"several header lines are one list", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4", "203.0.113.9,10.2.2.2"}}, "203.0.113.9"},
		{"ports and brackets", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4, [2001:db8::7]:443"}}, "2001:db8::7"},
		{"ipv4 with port", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"203.0.113.9:1234"}}, "203.0.113.9"},
		{"mapped address unmapped", xff, "[::ffff:127.0.0.1]:5000",
			http.Header{"X-Forwarded-For": {"::ffff:203.0.113.9"}}, "203.0.113.9"},
		{"mapped trusted prefix", xff, "192.168.1.1:5000",
			http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"ipv6 trusted peer", xff, "[fd00::3]:5000",
			http.Header{"X-Forwarded-For": {"2001:db8:1:2::9"}}, "2001:db8:1:2::9"},
		{"junk at the end: the proxy that passed it", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4, not-an-ip"}}, "127.0.0.1"},
		{"junk behind a trusted hop: that hop", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4, unknown, 10.2.2.2"}}, "10.2.2.2"},
		{"empty entry", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4,"}}, "127.0.0.1"},
		{"zoned entry", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}, "127.0.0.1"},
		{"all trusted: the leftmost", xff, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"10.3.3.3, 10.2.2.2"}}, "10.3.3.3"},
		{"xff mode ignores Forwarded", xff, "127.0.0.1:5000",
			http.Header{"Forwarded": {"for=1.2.3.4"}}, "127.0.0.1"},
		{"forwarded mode ignores X-Forwarded-For", fwd, "127.0.0.1:5000",
			http.Header{"X-Forwarded-For": {"1.2.3.4"}}, "127.0.0.1"},
		{"forwarded", fwd, "127.0.0.1:5000",
			http.Header{"Forwarded": {`for=1.2.3.4, for=203.0.113.9;proto=https;by=127.0.0.1`}}, "203.0.113.9"},
		{"forwarded quoted ipv6 with port", fwd, "127.0.0.1:5000",
			http.Header{"Forwarded": {`For="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"forwarded quoted comma is not a split", fwd, "127.0.0.1:5000",
			http.Header{"Forwarded": {`for=203.0.113.9;host="a,for=1.2.3.4"`}}, "203.0.113.9"},
		{"forwarded unknown", fwd, "127.0.0.1:5000",
			http.Header{"Forwarded": {`for=1.2.3.4, for=unknown`}}, "127.0.0.1"},
		{"forwarded obfuscated", fwd, "127.0.0.1:5000",
			http.Header{"Forwarded": {`for=1.2.3.4, for=_hidden`}}, "127.0.0.1"},
		{"forwarded element without for", fwd, "127.0.0.1:5000",
			http.Header{"Forwarded": {`for=1.2.3.4, proto=https`}}, "127.0.0.1"},
		{"forwarded two for in one element", fwd, "127.0.0.1:5000",
			http.Header{"Forwarded": {`for=203.0.113.9;for=1.2.3.4`}}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.hdr {
				r.Header[k] = v
			}
			if got := tc.p.clientAddr(r).String(); got != tc.want {
				t.Errorf("client address %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	nets, bad := parseTrustedProxies([]string{"10.0.0.5", " 10.1.2.3/8 ", "2001:db8::/48", "::ffff:10.0.0.0/104"})
	if len(bad) != 0 {
		t.Fatal(bad)
	}
	if got := fmt.Sprint(nets); got != "[10.0.0.5/32 10.0.0.0/8 2001:db8::/48 10.0.0.0/8]" {
		t.Fatalf("parsed %s", got)
	}
	_, bad = parseTrustedProxies([]string{"proxy.local", "10.0.0.0/40", "fe80::1%eth0", ""})
	if len(bad) != 4 {
		t.Fatalf("%d refused, want 4: %q", len(bad), bad)
	}
}

// TestLimiterGroupsIPv6By64: eight addresses of one /64 share one message
// bucket; another /64 has its own.
func TestLimiterGroupsIPv6By64(t *testing.T) {
	l := newLimiter(Limits{MessagesPerMinute: 1000, Burst: 1000, IPMessagesPerMinute: 60})
	// ipBurst is max(Burst*5, ...): take it all from one /64, spread
	// over eight of its addresses.
	n := 0
	for i := 0; ; i++ {
		ok, _ := l.allow(fmt.Sprintf("v%d", i), fmt.Sprintf("2001:db8:1:2::%x", i%8+1))
		if !ok {
			break
		}
		n++
		if n > 10000 {
			t.Fatal("the /64 was never limited")
		}
	}
	if n != 5000 {
		t.Fatalf("the /64 got %d messages at once, want the burst of one address (5000)", n)
	}
	if ok, _ := l.allow("other", "2001:db8:1:3::1"); !ok {
		t.Fatal("the next /64 shares the bucket")
	}
}

// TestConnectionsPerIPGroupIPv6By64: sockets from eight addresses of one
// /64 count against one connections_per_ip, through the handler.
func TestConnectionsPerIPGroupIPv6By64(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.Limits.ConnectionsPerIP = 4
	})
	for i := range 8 {
		ip := fmt.Sprintf("2001:db8:1:2::%x", i+1)
		c, resp, err := h.dialWith("acme", http.Header{"X-Forwarded-For": {ip}})
		if i < 4 {
			if err != nil {
				t.Fatalf("socket %d from %s: %v", i, ip, err)
			}
			c.hello("", 0)
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("socket %d from %s of the same /64: %v %v, want 429", i, ip, err, resp)
		}
	}
	c := h.from("acme", "2001:db8:1:3::1")
	c.hello("", 0)
}

// TestIPMessagesGroupIPv6By64: visitors on eight addresses of one /64
// share ip_messages_per_minute.
func TestIPMessagesGroupIPv6By64(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.Limits.MessagesPerMinute, c.Limits.Burst = 60, 1
		c.Limits.IPMessagesPerMinute = 1 // ipBurst is then Burst*5 = 5
	})
	refused := 0
	for i := range 8 {
		c := h.from("acme", fmt.Sprintf("2001:db8:1:2::%x", i+1))
		c.open("", 0)
		id := fmt.Sprintf("m-%d", i)
		c.send(&widget.Send{ID: id, Text: "hi"})
		f := c.waitFor("the answer", func(f widget.Frame) bool {
			a, ok := f.(*widget.Ack)
			e, isErr := f.(*widget.ErrorFrame)
			return ok && a.ID == id || isErr && e.ID == id
		})
		if e, ok := f.(*widget.ErrorFrame); ok {
			if e.Code != widget.CodeRateLimited {
				t.Fatalf("message %d: %+v", i, e)
			}
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d of 8 visitors of one /64 refused, want 3 (the /64's burst is 5)", refused)
	}
}

// TestMaxConnections: beyond limits.max_connections a new socket gets 503
// with Retry-After, whatever its address; a freed slot is given back.
func TestMaxConnections(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.Limits.MaxConnections = 3
	})
	var first *client
	for i := range 3 {
		c := h.from("acme", fmt.Sprintf("192.0.2.%d", i+1))
		c.hello("", 0)
		if i == 0 {
			first = c
		}
	}
	_, resp, err := h.dialWith("acme", http.Header{"X-Forwarded-For": {"198.51.100.1"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth socket: %v %v, want 503 with Retry-After", err, resp)
	}
	first.c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, _, err := h.dialWith("acme", http.Header{"X-Forwarded-For": {"198.51.100.1"}})
		if err == nil {
			c.hello("", 0)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed slot was not given back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
