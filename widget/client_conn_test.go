package widget

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestTypingExpires(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.started = true
	tb := newTab(t, "tab", srv, nil, 21).online()
	srv.typing(true)
	tb.pump()
	if !tb.c.Typing() || tb.wake != TypingTimeout {
		t.Fatalf("typing %v, wake %v", tb.c.Typing(), tb.wake)
	}
	clock.Advance(10 * Second)
	srv.typing(true) // news: the timeout starts again
	tb.pump()
	clock.Advance(25 * Second)
	if u := tb.apply(tb.c.Tick()); !tb.c.Typing() || u.Change&ChangeTyping != 0 {
		t.Fatal("typing expired early")
	}
	u := tb.sleep()
	if tb.c.Typing() || u.Change&ChangeTyping == 0 {
		t.Fatal("typing did not expire")
	}
	srv.typing(true)
	tb.pump()
	srv.typing(false)
	tb.pump()
	if tb.c.Typing() || tb.wake != 0 {
		t.Fatal("typing off ignored")
	}
	srv.typing(true)
	tb.pump()
	tb.lose(CloseAbnormal)
	if tb.c.Typing() {
		t.Fatal("typing survives a lost connection")
	}
}

func TestHandshakeTimeoutAndBanner(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 22)
	tb.apply(tb.c.Start())
	if tb.c.Banner() != "" {
		t.Fatal("banner at once")
	}
	// The dial hangs: the banner shows after FirstBannerDelay, the
	// socket is hung up after HandshakeTimeout.
	tb.sleep()
	if clock.Now().Sub(newClock().Now()) != FirstBannerDelay || tb.c.Banner() != TextReconnecting || tb.changes&ChangeConnection == 0 {
		t.Fatalf("banner %q at %v", tb.c.Banner(), clock.Now())
	}
	u := tb.sleep()
	if !u.Hangup {
		t.Fatal("no hangup after the handshake timeout")
	}
	tb.dialing, tb.hungUp = false, false
	tb.lose(CloseNormal)
	tb.sleepUntilDial()
	tb.connect()
	if tb.c.Banner() != "" {
		t.Fatal("banner while online")
	}
	// Open socket, no welcome: hung up too.
	tb.lose(CloseAbnormal)
	if tb.c.Banner() != "" {
		t.Fatal("banner flashes on a quick reconnect")
	}
	tb.sleepUntilDial()
	tb.dialing = false
	tb.conn = &fakeConn{srv: srv, open: true}
	tb.apply(tb.c.Opened(Page{}))
	tb.conn.inbox = nil
	for !tb.hungUp {
		tb.sleep()
	}
	if tb.c.Banner() != TextReconnecting {
		t.Fatalf("banner %q", tb.c.Banner())
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := 0; attempt < 12; attempt++ {
		ceil := min(BackoffBase<<attempt, BackoffCap)
		for _, r := range []uint64{0, 1, math.MaxUint64, math.MaxUint64 / 3, 123456789} {
			if d := Backoff(attempt, CloseAbnormal, r); d < 0 || d >= ceil {
				t.Fatalf("attempt %d: %v outside [0, %v)", attempt, d, ceil)
			}
			pc := min(PolicyBackoff<<attempt, BackoffCap)
			if d := Backoff(attempt, ClosePolicy, r); d < pc/2 || d >= pc {
				t.Fatalf("policy attempt %d: %v outside [%v, %v)", attempt, d, pc/2, pc)
			}
		}
	}
	if d := Backoff(0, CloseServiceRestart, math.MaxUint64); d < 100*Millisecond || d >= Second {
		t.Fatalf("restart: %v", d)
	}
	if Backoff(3, CloseServiceRestart, 7) != Backoff(3, CloseAbnormal, 7) {
		t.Fatal("repeated restarts should back off normally")
	}
	if Backoff(-1, 0, 5) != Backoff(0, 0, 5) {
		t.Fatal("negative attempt")
	}
}

func TestBackoffJitterDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	for _, attempt := range []int{0, 3, 10} {
		ceil := min(BackoffBase<<attempt, BackoffCap)
		var buckets [10]int
		var sum float64
		for i := 0; i < n; i++ {
			d := Backoff(attempt, CloseAbnormal, rng.Uint64())
			buckets[int(d*10/ceil)]++
			sum += float64(d)
		}
		mean := sum / n / float64(ceil)
		if math.Abs(mean-0.5) > 0.02 {
			t.Fatalf("attempt %d: mean %.3f of the ceiling, want 0.5", attempt, mean)
		}
		for i, b := range buckets {
			if b < n/10*85/100 || b > n/10*115/100 {
				t.Fatalf("attempt %d: bucket %d holds %d of %d: not uniform", attempt, i, b, n)
			}
		}
	}
}

func TestBackoffGrowsAndResets(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 23)
	tb.apply(tb.c.Start())
	var waits []Span
	for i := 0; i < 8; i++ {
		tb.dialing = false
		tb.lose(CloseAbnormal)
		waits = append(waits, tb.redialIn())
		tb.sleepUntilDial()
	}
	for i, w := range waits {
		if w >= min(BackoffBase<<i, BackoffCap) {
			t.Fatalf("waits %v", waits)
		}
	}
	if tb.c.attempt != 8 {
		t.Fatalf("attempt %d", tb.c.attempt)
	}
	// A short-lived connection does not reset the attempts; a stable one does.
	tb.connect()
	clock.Advance(Second)
	if tb.lose(CloseAbnormal); tb.c.attempt != 9 {
		t.Fatalf("unstable connection reset the backoff: attempt %d", tb.c.attempt)
	}
	tb.sleepUntilDial()
	tb.connect()
	clock.Advance(StableAfter)
	if tb.lose(CloseAbnormal); tb.redialIn() >= BackoffBase || tb.c.attempt != 1 {
		t.Fatalf("stable connection did not reset the backoff: %v", tb.redialIn())
	}
	// Visibility and opening the panel dial at once.
	tb.apply(tb.c.SetOpen(false, false))
	if u := tb.apply(tb.c.SetOpen(false, true)); !u.Dial {
		t.Fatal("tab shown: no dial")
	}
	tb.dialing = false
	tb.lose(CloseAbnormal)
	if u := tb.apply(tb.c.SetOpen(true, true)); !u.Dial {
		t.Fatal("panel opened: no dial")
	}
	// Stop hangs up and never redials.
	tb.connect()
	if u := tb.apply(tb.c.Stop()); !u.Hangup || u.Wake != 0 {
		t.Fatalf("stop: %+v", u)
	}
	if u := tb.lose(CloseNormal); u.Dial || u.Wake != 0 {
		t.Fatal("redial after stop")
	}
}

func TestReceiveUnsupportedAndJunk(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 24).online()
	for _, junk := range []string{"", "nope", `{"type":"later_frame"}`, `{"type":"msg","seq":0}`, `[]`} {
		if u := tb.apply(tb.c.Receive([]byte(junk))); u.Change != 0 || len(u.Send) != 0 {
			t.Fatalf("%q changed something", junk)
		}
	}
	tb.apply(tb.c.Receive([]byte(`{"type":"msg","seq":1,"id":"m1","from":"bot","at":"2026-11-21T12:00:00.000Z","body":{"kind":"poll","question":"?"}}`)))
	tb.apply(tb.c.Receive([]byte(`{"type":"msg","seq":2,"id":"m2","from":"bot","at":"2026-11-21T12:00:01.000Z","body":{"kind":"text","text":"next"}}`)))
	es := tb.c.Entries()
	if len(es) != 2 || es[0].Body.Kind != KindUnsupported || es[1].Body.Text != "next" {
		t.Fatalf("entries %+v", es)
	}
	if n := len(srv.sentFrames(TypeHello)); n != 1 {
		t.Fatal("an unreadable message caused a resync")
	}
	if es[1].Stamp != "2026-11-21T12:00:01.000Z" {
		t.Fatalf("at %v", es[1].At)
	}
}
