package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/widget"
)

// scriptedStart is one scripted socket: hello without a token, start,
// and the answer to the start. It reports whether a conversation was
// started, or the error frame that refused it.
func scriptedStart(ctx context.Context, addr string, n int) (started bool, refusal *widget.ErrorFrame, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws?bot=acme", &websocket.DialOptions{Subprotocols: []string{widget.Protocol}})
	if err != nil {
		return false, nil, err
	}
	defer c.CloseNow()
	for _, f := range []widget.Frame{&widget.Hello{Bot: "acme"}, &widget.Start{ID: fmt.Sprintf("script-%d", n)}} {
		if err := c.Write(ctx, websocket.MessageText, widget.Encode(f)); err != nil {
			return false, nil, err
		}
	}
	welcomes := 0
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return false, nil, err
		}
		f, err := widget.Decode(data)
		if err != nil {
			return false, nil, err
		}
		switch f := f.(type) {
		case *widget.Welcome:
			welcomes++
			if welcomes == 1 && f.Conversation != "" {
				return false, nil, errors.New("a hello without a token came back with a conversation")
			}
			if f.Conversation != "" {
				c.Close(websocket.StatusNormalClosure, "")
				return true, nil, nil
			}
		case *widget.ErrorFrame:
			c.Close(websocket.StatusNormalClosure, "")
			return false, f, nil
		}
	}
}

// TestScriptedStartsAreMetered: a script opening 1,000 tokenless sockets
// from one address, each saying hello and start, gets at most the start
// limits' worth of platform conversations (counted in the platform's own
// record of introMessages), while a real visitor of the same bot on
// another address is greeted and answered meanwhile.
func TestScriptedStartsAreMetered(t *testing.T) {
	const (
		sockets    = 1000
		wave       = 30 // well below connections_per_ip, closes included
		perMinute  = 6
		burst      = 5
		waveGap    = 150 * time.Millisecond
		realVisit  = "127.0.0.2"
		maxRefused = 2 // log lines for the refusals: sampled
	)
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	addr := freeAddr(t)
	emu.SetCallback("http://" + addr + "/hooks/chatlayer/acme")
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`limits: {starts_per_minute: %d, start_burst: %d, bot_starts_per_minute: 600, connections_per_ip: 64}
bots:
  - id: acme
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %q, channel_id: %q, token: %q, verify_token: %q}
`, perMinute, burst, emu.URL, chatlayertest.DefaultChannelID, chatlayertest.DefaultToken, chatlayertest.DefaultVerifyToken)), 0o600)
	p := launch(t, addr, data, "--config", cfg)

	// The script, in waves that stay within connections_per_ip.
	var started, refused, done atomic.Int64
	var failure atomic.Value
	began := time.Now()
	finished := make(chan time.Time, 1)
	go func() {
		defer func() { finished <- time.Now() }()
		for n := 0; n < sockets; n += wave {
			var wg sync.WaitGroup
			for i := n; i < min(n+wave, sockets); i++ {
				wg.Go(func() {
					ok, e, err := scriptedStart(context.Background(), addr, i)
					switch {
					case err != nil:
						failure.CompareAndSwap(nil, fmt.Errorf("socket %d: %w", i, err))
					case ok:
						started.Add(1)
					case e.Code != widget.CodeRateLimited || e.ID != fmt.Sprintf("script-%d", i) || e.RetryMS < 1000:
						failure.CompareAndSwap(nil, fmt.Errorf("socket %d refused with %+v, want rate_limited with retry_ms", i, e))
					default:
						refused.Add(1)
					}
					done.Add(1)
				})
			}
			wg.Wait()
			time.Sleep(waveGap)
		}
	}()

	// A real visitor on another address, while the script runs.
	waitFor(t, "the script under way", 30*time.Second, func() bool { return done.Load() >= 3*wave })
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(realVisit)}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws?bot=acme", &websocket.DialOptions{
		Subprotocols: []string{widget.Protocol},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		t.Fatalf("the real visitor cannot connect from %s: %v", realVisit, err)
	}
	t.Cleanup(func() { rc.CloseNow() })
	real := &wsc{t: t, c: rc, bot: "acme"}
	real.hello("", 0)
	rw := real.start("real-start")
	real.until("the greeting", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot"
	})
	real.send(&widget.Send{ID: "real-1", Text: "is anyone there?"})
	real.ack("real-1")
	real.botSaid("You said: is anyone there?")
	answeredAt := time.Now()

	var ended time.Time
	select {
	case ended = <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the script did not finish: %d of %d sockets done", done.Load(), sockets)
	}
	if err, _ := failure.Load().(error); err != nil {
		t.Fatal(err)
	}
	if !answeredAt.Before(ended) {
		t.Fatalf("the real visitor was answered only after the script ended (%s after it)", answeredAt.Sub(ended))
	}
	elapsed := ended.Sub(began)
	allowed := int64(burst + math.Ceil(perMinute*elapsed.Minutes()))
	if n := started.Load(); n < burst || n > allowed || n+refused.Load() != sockets {
		t.Fatalf("the script started %d conversations and was refused %d times in %s; want %d to %d started, the rest refused",
			n, refused.Load(), elapsed.Round(time.Millisecond), burst, allowed)
	}

	// The platform's own record: one introMessage per conversation
	// started, the real visitor's included, and no more.
	want := int(started.Load()) + 1
	intros := func() (n int, real bool) {
		for _, q := range emu.Requests() {
			if q.Kind == "intro" {
				n++
				real = real || q.UserID == rw.Conversation
			}
		}
		return n, real
	}
	waitFor(t, "the introMessages of the started conversations", 10*time.Second, func() bool { n, _ := intros(); return n >= want })
	time.Sleep(300 * time.Millisecond) // room for a wrong extra one
	if n, hasReal := intros(); n != want || !hasReal {
		t.Fatalf("the platform got %d introMessages (the real visitor's among them: %v); want %d", n, hasReal, want)
	}
	if lines := strings.Count(p.log(), "conversation start refused"); lines < 1 || lines > maxRefused {
		t.Fatalf("%d log lines for %d refusals, want them sampled to at most %d", lines, refused.Load(), maxRefused)
	}
	t.Logf("%d sockets in %s: %d conversations started, %d refused; the real visitor answered %s after the script began",
		sockets, elapsed.Round(time.Millisecond), started.Load(), refused.Load(), answeredAt.Sub(began).Round(time.Millisecond))
}
