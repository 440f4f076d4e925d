package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// rawConn opens a TCP connection to addr from the loopback address from
// and sends nothing, like a client that holds a connection idle or
// trickles its request.
func rawConn(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer says whether the server closed c within wait rather
// than keeping it open and waiting for a request.
func closedByServer(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// healthzFrom asks GET /healthz from the loopback address from.
func healthzFrom(from, addr string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	cl := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/healthz")
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// TestListenerCaps: idle connections from one address stop at
// tcp_connections_per_ip, closed as they are accepted, while another
// address is answered; and all addresses together stop at
// max_tcp_connections, with a freed slot given back.
func TestListenerCaps(t *testing.T) {
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(`limits: {connections_per_ip: 2, tcp_connections_per_ip: 4, max_connections: 5, max_tcp_connections: 8}
bots:
  - id: acme
    provider: demo
    origins: ["self"]
`), 0o600)
	p := start(t, data, "--config", cfg)
	const flood, other, third, late = "127.0.0.3", "127.0.0.2", "127.0.0.4", "127.0.0.5"
	var held []net.Conn
	for range 4 {
		held = append(held, rawConn(t, flood, p.addr))
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them
	for i := range 3 {
		if c := rawConn(t, flood, p.addr); !closedByServer(c, time.Second) {
			t.Fatalf("connection %d from %s, over tcp_connections_per_ip (4), was kept open", 5+i, flood)
		}
	}
	for _, c := range held {
		if closedByServer(c, 100*time.Millisecond) {
			t.Fatalf("a connection within the cap was closed")
		}
	}
	if err := healthzFrom(other, p.addr); err != nil {
		t.Fatalf("/healthz from %s while %s is at its cap: %v", other, flood, err)
	}

	// The total: 4 from flood, 4 more from third make 8.
	for range 4 {
		held = append(held, rawConn(t, third, p.addr))
	}
	time.Sleep(100 * time.Millisecond)
	if c := rawConn(t, late, p.addr); !closedByServer(c, time.Second) {
		t.Fatalf("a connection over max_tcp_connections (8) was kept open")
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := healthzFrom(late, p.addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed slot was not given back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
