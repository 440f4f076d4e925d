package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
)

// TestSlowBodiesAreCut is finding 4 of issue 12 against the real binary:
// 2,000 connections from eight loopback addresses each send a request's
// headers at once and then its body a byte every 2 s, half to the
// unauthenticated Chatlayer hook and half to the chat page's form post,
// and a few more trickle their headers. The server must close every one
// of them within its deadline (plus slack), seen from the client, and
// keep answering /healthz from another address all along.
func TestSlowBodiesAreCut(t *testing.T) {
	const (
		conns       = 2000
		headerConns = 40
		bodyTimeout = 3 * time.Second
		hdrTimeout  = 2 * time.Second
		slack       = 4 * time.Second
		trickle     = 2 * time.Second
	)
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`limits: {tcp_connections_per_ip: 1000, header_timeout: %s, body_timeout: %s}
bots:
  - id: acme
    provider: chatlayer
    origins: ["self"]
    chatlayer:
      base_url: %q
      channel_id: %q
      token: "${CHATLAYER_TOKEN}"
      verify_token: "${CHATLAYER_VERIFY}"
`, hdrTimeout, bodyTimeout, emu.URL, chatlayertest.DefaultChannelID)), 0o600)
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	p := start(t, data, "--config", cfg)

	// Open them all first, a few hundred at a time, headers sent.
	type slow struct {
		c    net.Conn
		sent time.Time
		cut  time.Duration // the deadline this connection is held to
	}
	all := make([]slow, conns+headerConns)
	var wg sync.WaitGroup
	errc := make(chan error, len(all))
	sem := make(chan struct{}, 200)
	for i := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			from := fmt.Sprintf("127.0.0.%d", 10+i%8)
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", p.addr)
			if err != nil {
				errc <- fmt.Errorf("connect %d from %s: %w", i, from, err)
				return
			}
			var head string
			cut := bodyTimeout
			switch {
			case i >= conns:
				head, cut = "POST /hooks/chatlayer/acme HTTP/1.1\r\n", hdrTimeout
			case i%2 == 0:
				head = "POST /hooks/chatlayer/acme HTTP/1.1\r\nHost: " + p.addr + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
			default:
				head = "POST /chat/acme HTTP/1.1\r\nHost: " + p.addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntext="
			}
			if _, err := c.Write([]byte(head)); err != nil {
				c.Close()
				errc <- fmt.Errorf("write %d: %w", i, err)
				return
			}
			all[i] = slow{c: c, sent: time.Now(), cut: cut}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range all {
			s.c.Close()
		}
	})

	// Each connection trickles a byte every 2 s and reads until the
	// server closes it; a read that outlasts deadline + slack fails.
	stop := make(chan struct{})
	late := make(chan string, len(all))
	for i, s := range all {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 30 { // 60 s at most; the server cuts it long before
				select {
				case <-stop:
					return
				case <-time.After(trickle):
				}
				if _, err := s.c.Write([]byte("a")); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			limit := s.sent.Add(s.cut + slack)
			s.c.SetReadDeadline(limit)
			buf := make([]byte, 4096)
			for range 1000 {
				_, err := s.c.Read(buf)
				if err == nil {
					continue // the server's answer (400 or 408) before it hangs up
				}
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					late <- fmt.Sprintf("connection %d still open %s after its request began (deadline %s)", i, s.cut+slack, s.cut)
				}
				return
			}
		}()
	}

	// /healthz answers from another address while they trickle.
	healthErr := make(chan error, 1)
	go func() {
		defer close(healthErr)
		end := time.Now().Add(bodyTimeout + slack)
		for time.Now().Before(end) {
			if err := healthzFrom("127.0.0.2", p.addr); err != nil {
				healthErr <- err
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	if err := <-healthErr; err != nil {
		t.Errorf("/healthz from 127.0.0.2 during the slow bodies: %v", err)
	}
	close(stop)
	wg.Wait()
	close(late)
	n := 0
	for msg := range late {
		if n++; n <= 5 {
			t.Error(msg)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d slow connections were not cut within their deadline + %s", n, len(all), slack)
	}
}
