package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/widget"
)

func TestOriginChecks(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		bot, origin string
		status      int
	}{
		{"acme", "https://www.acme.com", http.StatusSwitchingProtocols},
		{"acme", "https://shop.acme.org", http.StatusSwitchingProtocols},
		{"acme", "https://evil.example", http.StatusForbidden},
		{"acme", "http://www.acme.com", http.StatusForbidden},
		{"acme", "http://localhost:3000", http.StatusForbidden},
		{"demo", "http://localhost:3000", http.StatusSwitchingProtocols},
		{"demo", "http://127.0.0.1:9", http.StatusSwitchingProtocols},
		{"demo", h.hs.URL, http.StatusSwitchingProtocols}, // self
		{"demo", "https://evil.example", http.StatusForbidden},
		{"nosuchbot", "", http.StatusNotFound},
	} {
		_, resp, err := h.dial(tc.bot, tc.origin)
		got := 0
		if resp != nil {
			got = resp.StatusCode
		}
		if got != tc.status {
			t.Errorf("bot %s origin %q: status %d (%v), want %d", tc.bot, tc.origin, got, err, tc.status)
		}
	}
}

func TestMissingSubprotocolIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, h.wsURL("acme"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusPolicyViolation {
		t.Fatalf("close = %v, want policy violation", err)
	}
}

func TestMalformedFramesGetErrorsAndSocketStaysOpen(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	// Before hello: errors, and hello still works afterwards.
	c.sendRaw([]byte(`{"type":"send","id":"x","text":"too early"}`))
	if e := c.waitFor("error", isType(widget.TypeError)).(*widget.ErrorFrame); !strings.Contains(e.Message, "hello") {
		t.Fatalf("error = %+v", e)
	}
	c.hello("", 0)
	for _, bad := range []string{
		`{not json`,
		`{"type":"dance"}`,
		`{"type":"send","id":"x"}`,
		`{"type":"send","id":"has space","text":"x"}`,
		`{"type":"ack","id":"x","seq":1}`,
	} {
		c.sendRaw([]byte(bad))
		e := c.waitFor("error for "+bad, isType(widget.TypeError)).(*widget.ErrorFrame)
		if e.Code != widget.CodeBadRequest || e.Message == "" {
			t.Errorf("%s: error = %+v", bad, e)
		}
	}
	c.send(&widget.Send{ID: "ok-1", Text: "still here"})
	c.ack("ok-1")
}

// TestFramesSentWithTheHandshakeAreRead: a client may send its first
// frames right behind the upgrade request, so that net/http has read them
// already when the socket takes the connection over; none may be lost,
// even more than the socket's read buffer holds.
func TestFramesSentWithTheHandshakeAreRead(t *testing.T) {
	h := newHarness(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Client frames are masked; a zero key leaves the payload as it is.
	frame := func(payload []byte) []byte {
		b := []byte{0x81}
		if n := len(payload); n < 126 {
			b = append(b, 0x80|byte(n))
		} else {
			b = append(b, 0x80|126, byte(n>>8), byte(n))
		}
		return append(append(b, 0, 0, 0, 0), payload...)
	}
	text := strings.Repeat("early ", 2*readBuffer/6)
	var req bytes.Buffer
	req.WriteString("GET /v1/ws?bot=acme HTTP/1.1\r\nHost: " + h.hs.Listener.Addr().String() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13" +
		"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: " + widget.Protocol + "\r\n\r\n")
	req.Write(frame(widget.Encode(&widget.Hello{Bot: "acme"})))
	req.Write(frame(widget.Encode(&widget.Send{ID: "early-1", Text: text})))
	if _, err := conn.Write(req.Bytes()); err != nil { // one write: request and frames together
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// Server frames are not masked.
	next := func() widget.Frame {
		t.Helper()
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		if hdr[0] != 0x81 {
			t.Fatalf("frame header %x, want a text frame", hdr)
		}
		n := int(hdr[1] & 0x7f)
		if n == 126 {
			var ext [2]byte
			io.ReadFull(br, ext[:])
			n = int(ext[0])<<8 | int(ext[1])
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		f, err := widget.Decode(payload)
		if err != nil {
			t.Fatalf("server sent %s: %v", payload, err)
		}
		return f
	}
	if f := next(); f.Type() != widget.TypeWelcome {
		t.Fatalf("first frame %s, want welcome", widget.Encode(f))
	}
	for {
		switch f := next().(type) {
		case *widget.Ack:
			if f.ID != "early-1" {
				t.Fatalf("ack %+v", f)
			}
			return
		case *widget.ErrorFrame:
			t.Fatalf("error %+v", f)
		}
	}
}

func TestOversizeFrameClosesWith1009(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	c.hello("", 0)
	c.sendRaw([]byte(`{"type":"send","id":"big","text":"` + strings.Repeat("a", widget.MaxFrame) + `"}`))
	if code := c.closeStatus(); code != websocket.StatusMessageTooBig {
		t.Fatalf("close code = %d, want 1009", code)
	}
}

func TestHelloTimeout(t *testing.T) {
	h := newHarness(t, func(_ *Config, o *Options) { o.HelloTimeout = 100 * time.Millisecond })
	c := h.connect("acme")
	if code := c.closeStatus(); code != websocket.StatusPolicyViolation {
		t.Fatalf("close code = %d, want 1008", code)
	}
}

func TestTamperedTokenGetsFreshVisitor(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	w := c.open("", 0)
	for _, tok := range []string{w.Visitor[:len(w.Visitor)-4] + "AAAA", "garbage", strings.Repeat("x", 900)} {
		c2 := h.connect("acme")
		w2 := c2.open(tok, 0)
		if w2.Conversation == w.Conversation || w2.Visitor == "" {
			t.Fatalf("token %q reached the conversation", tok)
		}
	}
	// A token minted for another bot starts a fresh visitor there too.
	c3 := h.connect("demo")
	w3 := c3.open(w.Visitor, 0)
	if w3.Conversation == w.Conversation {
		t.Fatal("acme token opened a demo conversation of the same id")
	}
	if v, _ := h.srv.keys.Visitor("demo", w3.Visitor); v == "" {
		t.Fatal("fresh token does not decode")
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.Limits.Burst = 3; c.Limits.MessagesPerMinute = 6 })
	c := h.connect("acme")
	c.hello("", 0)
	for i := 0; i < 3; i++ {
		id := "r" + string(rune('0'+i))
		c.send(&widget.Send{ID: id, Text: "hi"})
		c.ack(id)
	}
	c.send(&widget.Send{ID: "r9", Text: "one too many"})
	e := c.waitFor("rate error", isType(widget.TypeError)).(*widget.ErrorFrame)
	if e.Code != widget.CodeRateLimited || e.ID != "r9" || e.RetryMS < 1000 {
		t.Fatalf("error = %+v", e)
	}
	if n := h.fp.callsFor("r9"); n != 0 {
		t.Fatal("a refused message went upstream")
	}
}

func TestSlowClientIsDroppedWithoutHoldingOthers(t *testing.T) {
	// Long enough that a loaded test machine never stalls the reading
	// client that long, short enough to keep the test quick.
	h := newHarness(t, func(_ *Config, o *Options) { o.WriteTimeout = 2 * time.Second })
	slow := h.connect("acme")
	w := slow.open("", 0)
	fast := h.connect("acme")
	fast.hello(w.Visitor, 0) // same conversation, reads everything

	var got atomic.Int64
	var fastErr atomic.Value
	go func() {
		for {
			f, err := fast.read(10 * time.Second)
			if err != nil {
				fastErr.Store(err)
				return
			}
			if f.Type() == widget.TypeMsg {
				got.Add(1)
			}
		}
	}()
	// Large bot messages and typing bursts: the slow client never reads,
	// so its TCP buffers fill, its writer blocks and it must be dropped.
	big := widget.Text(strings.Repeat("lorem ipsum ", 330))
	svc := h.srv.service
	sent := int64(0)
	deadline := time.Now().Add(30 * time.Second)
	for h.socketCount() == 2 && time.Now().Before(deadline) {
		bodies := []widget.Body{big, big, big, big, big, big, big, big}
		if err := svc.Deliver(context.Background(), w.Conversation, "", bodies...); err != nil {
			t.Fatal(err)
		}
		sent += int64(len(bodies))
		for j := 0; j < 100; j++ {
			svc.Typing(w.Conversation, j%2 == 0)
		}
	}
	if n := h.socketCount(); n != 1 {
		t.Fatalf("%d sockets after %d messages, want the slow one dropped", n, sent)
	}
	if err := fastErr.Load(); err != nil {
		t.Fatalf("the reading client was dropped instead: %v", err)
	}
	// The reading client got every message, typing bursts did not drop it.
	// It gets its own time to catch up: filling the slow client's buffers
	// may have used most of the first deadline on a loaded machine.
	deadline = time.Now().Add(30 * time.Second)
	for got.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got.Load() != sent {
		t.Fatalf("fast client got %d of %d messages", got.Load(), sent)
	}
}

func TestConnectionsPerIPAreCapped(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.Limits.ConnectionsPerIP = 2 })
	a, b := h.connect("acme"), h.connect("acme")
	a.hello("", 0)
	b.hello("", 0)
	if _, resp, err := h.dial("acme", ""); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket: %v %v, want 429", err, resp)
	}
	a.c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, _, err := h.dial("acme", "")
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

func TestHeartbeatDropsADeadClient(t *testing.T) {
	h := newHarness(t, func(_ *Config, o *Options) { o.PingInterval = 50 * time.Millisecond })
	c := h.connect("acme")
	c.hello("", 0)
	// A client that reads nothing never answers pings (coder/websocket
	// answers them from inside Read), like a laptop gone to sleep.
	deadline := time.Now().Add(5 * time.Second)
	for h.socketCount() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("silent client still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
