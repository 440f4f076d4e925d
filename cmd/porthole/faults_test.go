package main

// The fault suite: the real binary, a platform emulator (ChatAIBot, or
// Chatlayer) as its upstream, and simulated widgets over real
// WebSockets, under every fault the promise to a website owner has to
// survive. Each scenario ends with the same audit (faultRig.audit, in
// faultrig_test.go): every acknowledged visitor message is stored once
// and reached the platform once, every callback the server accepted
// reached the visitor once, and every transcript's seq runs from 1
// without a hole, in the store and in what each widget received.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/widget"
)

// TestFaultUpstreamErrors: 500s, 503s and 429s, some with Retry-After or
// x-ratelimit-reset headers, and the platform's own rate limit, while
// visitors send in a burst.
func TestFaultUpstreamErrors(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{RateLimit: 20, RateWindow: time.Second}, "", "")
	r.emu.FailNext(6, http.StatusInternalServerError, nil)
	vs := visitors("err", 6, 8, 30*time.Millisecond) // 48 messages in 0.25 s, over the 20/s limit
	wait := startAll(t, r.addr, vs, time.Minute)
	time.Sleep(100 * time.Millisecond)
	r.emu.FailNext(4, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	time.Sleep(100 * time.Millisecond)
	reset := time.Now().Add(700 * time.Millisecond).UnixMilli() // the 13-digit form
	r.emu.FailNext(3, http.StatusServiceUnavailable, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {fmt.Sprint(reset)}})
	wait()
	r.settle(vs, time.Minute)
	st := r.emu.Stats()
	if st.Faults != 13 || st.RateLimited == 0 {
		t.Fatalf("faults answered %d (want 13), rate-limited %d (want some)", st.Faults, st.RateLimited)
	}
	r.audit(vs, nil)
}

// TestFaultUpstreamTimeouts: for two seconds the platform answers after
// 3 s, past the 1 s call timeout; calls are abandoned (the emulator then
// does not take the message) and retried. The timeout leaves a loaded
// machine a second for the calls after that, which the platform takes:
// one that timed out after the platform took it would be a repeat.
func TestFaultUpstreamTimeouts(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "upstream: {timeout: 1s, max_backoff: 1s, retry_for: 5m}\n")
	r.emu.Slow(3 * time.Second)
	vs := visitors("slow", 4, 5, 100*time.Millisecond)
	wait := startAll(t, r.addr, vs, time.Minute)
	time.Sleep(2 * time.Second)
	r.emu.Slow(0)
	wait()
	r.settle(vs, time.Minute)
	abandoned := 0
	for _, q := range r.emu.Requests() {
		if q.Status == 0 {
			abandoned++
		}
	}
	if abandoned == 0 {
		t.Fatal("no call timed out")
	}
	t.Logf("%d calls timed out and were retried", abandoned)
	r.audit(vs, nil)
}

// TestFaultUpstreamDeadForAMinute: the platform refuses connections for a
// minute. Visitors' messages are acknowledged (they are stored), show
// failed after three attempts, and are delivered once, exactly once, when
// the platform is back.
func TestFaultUpstreamDeadForAMinute(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "")
	vs := visitors("dead", 3, 4, 200*time.Millisecond)
	r.upstreamDown()
	// One widget leaves once its messages are acknowledged and comes
	// back later: it must learn what failed while it was away.
	away := newVisitor("deadaway", 3, 50*time.Millisecond)
	runAll(t, r.addr, []*visitor{away}, 30*time.Second)
	vs = append(vs, away)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	waitFor(t, "its three messages to fail while it is away", 30*time.Second, func() bool {
		return r.failedSince(away) >= 3
	})
	for _, v := range vs {
		v.stay = true // an open widget, there to see what becomes of its messages
		wg.Go(func() { v.run(ctx, r.addr) })
	}
	waitFor(t, "every message acknowledged and shown failed", 30*time.Second, func() bool {
		for _, v := range vs {
			v.mu.Lock()
			sent, acked := v.sent, len(v.acks)
			failed := 0
			for id := range v.acks {
				if st := v.statuses[id]; len(st) > 0 && st[len(st)-1] == widget.StateFailed {
					failed++
				}
			}
			v.mu.Unlock()
			if sent < len(v.texts) || acked < sent || failed < acked {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Minute)
	r.upstreamUp()
	waitFor(t, "every message delivered once the platform is back", 30*time.Second, func() bool {
		for _, v := range vs {
			if !v.allDelivered() {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	r.settle(vs, 30*time.Second)
	r.audit(vs, nil)
}

// TestFaultCallbacksDuplicatedReorderedLate: the platform posts some reply
// batches twice, swaps others, and posts the last ones after the visitors
// have left; each reply is shown once, and the late ones on the visitor's
// next visit.
func TestFaultCallbacksDuplicatedReorderedLate(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{Parallel: 1, ReorderWait: 300 * time.Millisecond}, "", "")
	r.emu.DuplicateCallbacks(6)
	r.emu.ReorderCallbacks(4)
	vs := visitors("cb", 3, 8, 60*time.Millisecond)
	runAll(t, r.addr, vs, time.Minute)
	r.emu.DelayCallbacks(time.Second)
	late := visitors("late", 2, 2, 10*time.Millisecond)
	runAll(t, r.addr, late, time.Minute) // they leave once acknowledged
	all := append(vs, late...)
	r.settle(all, time.Minute)
	if st := r.emu.Stats(); st.CallbacksDuplicated != 6 {
		t.Fatalf("duplicated %d batches, want 6", st.CallbacksDuplicated)
	}
	r.audit(all, nil)
}

// cutConn is a client connection that breaks after a number of bytes
// written: the socket is cut in the middle of whatever the widget was
// sending, a frame, a hello or the handshake.
type cutConn struct {
	net.Conn
	mu   sync.Mutex
	left int
	cuts *atomic.Int32
}

func (c *cutConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left <= 0 {
		return 0, net.ErrClosed
	}
	if len(b) < c.left {
		c.left -= len(b)
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:c.left])
	c.left = 0
	c.cuts.Add(1)
	c.Conn.Close()
	return n, errors.New("cut")
}

// TestFaultSocketCutWhileSending: every connection of every visitor is cut
// after a random number of bytes; the widgets reconnect and send their
// outbox again with the same ids.
func TestFaultSocketCutWhileSending(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 1))
	var cuts atomic.Int32
	vs := visitors("cut", 5, 12, 15*time.Millisecond)
	for _, v := range vs {
		v.dial = func(ctx context.Context) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			// The handshake is about 250 bytes, a hello 100, a send 60.
			return &cutConn{Conn: c, left: 150 + rng.IntN(700), cuts: &cuts}, nil
		}
	}
	runAll(t, r.addr, vs, 2*time.Minute)
	r.settle(vs, time.Minute)
	if n := cuts.Load(); n < 10 {
		t.Fatalf("only %d cuts", n)
	}
	t.Logf("%d connections cut", cuts.Load())
	r.audit(vs, nil)
}

// TestFaultKilledMidBurst: the server is killed with SIGKILL at a random
// moment of a burst and started again on the same data. A message the
// platform took just before the kill, whose delivery the server had not
// yet recorded, is handed over again after the restart: neither platform
// has an idempotency key, so that is the one repeat possible, at most one
// per conversation (each conversation has one call in flight at a time).
func TestFaultKilledMidBurst(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{RetryDelay: 400 * time.Millisecond}, "", "")
	vs := visitors("kill", 10, 30, 20*time.Millisecond) // 500 messages a second for 0.6 s
	wait := startAll(t, r.addr, vs, 2*time.Minute)
	time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
	r.p.kill()
	time.Sleep(100 * time.Millisecond) // calls already with the platform finish there
	before := r.plat.accepted()
	r.relaunch()
	wait()
	r.settle(vs, time.Minute)
	repeats := auditKill(t, r, vs, before)
	t.Logf("killed with %d messages with the platform; %d conversations had their in-flight message handed over again", sumCounts(before), repeats)
}

// TestFaultGracefulRestartMidBurst: SIGTERM in the middle of a burst. The
// widgets are told 1012, reconnect to the new process and send what was
// not acknowledged; calls in flight finish before the exit, so every
// message reaches the platform exactly once.
func TestFaultGracefulRestartMidBurst(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{RetryDelay: 400 * time.Millisecond}, "", "")
	vs := visitors("term", 10, 30, 20*time.Millisecond)
	wait := startAll(t, r.addr, vs, 2*time.Minute)
	time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
	r.restart()
	wait()
	r.settle(vs, time.Minute)
	restarts := 0
	for _, v := range vs {
		v.mu.Lock()
		restarts += v.closes[websocket.StatusServiceRestart]
		v.mu.Unlock()
	}
	if restarts == 0 {
		t.Fatal("no widget was told 1012 (service restart)")
	}
	r.audit(vs, nil)
}

// TestFaultClientNeverReads: a widget that sends and never reads (its
// receive buffer is tiny) stalls only itself: the server stops reading
// from it once its replies back up, drops it after the write timeout, and
// the other visitors' conversations go on meanwhile.
func TestFaultClientNeverReads(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "")
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+r.addr+"/v1/ws?bot=shop", &websocket.DialOptions{
		Subprotocols: []string{widget.Protocol},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: d.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	stuck := newVisitor("stuck", 0, 0)
	if err := write(ctx, c, &widget.Hello{Bot: "shop"}); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(ctx) // the welcome, the last frame it reads
	if err != nil {
		t.Fatal(err)
	}
	f, err := widget.Decode(data)
	if err != nil || f.Type() != widget.TypeWelcome {
		t.Fatalf("first frame %s: %v", data, err)
	}
	stuck.token = f.(*widget.Welcome).Visitor

	// Each message is echoed and answered with its 3 KB text: the replies
	// fill the socket buffers within a few hundred messages.
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		pad := strings.Repeat("x", 3000)
		for {
			// A write blocks once the server stops reading; it fails when
			// the server drops the connection. (A write given up by its
			// context would close the socket from this side.)
			if err := c.Write(ctx, websocket.MessageText, widget.Encode(&widget.Send{ID: fmt.Sprintf("stuck-c%d", n+1), Text: fmt.Sprintf("stuck-m%d %s", n+1, pad)})); err != nil {
				return
			}
			n++
			time.Sleep(10 * time.Millisecond) // within the per-visitor rate
		}
	}()
	readers := visitors("reader", 3, 12, 500*time.Millisecond)
	runAll(t, r.addr, readers, 2*time.Minute)
	waitFor(t, "the server drops the client that never reads", time.Minute, func() bool {
		return strings.Contains(r.p.log(), "dropping slow client")
	})
	t.Logf("the stuck client sent %d messages before the server stopped reading and dropped it", <-sent)
	all := append(readers, stuck)
	r.settle(readers, time.Minute)
	r.audit(all, nil)
}

// TestFaultChatlayerCallbacks: Chatlayer posts one callback per bot
// message, numbered by messageCounter; here some come twice, the batches
// of others in reverse order, and the last ones after the visitors left.
// Each message is shown once, in counter order.
func TestFaultChatlayerCallbacks(t *testing.T) {
	t.Parallel()
	emu := chatlayertest.New(chatlayertest.Options{})
	r := newRigOn(t, clPlatform{Server: emu}, "", "")
	emu.URL = "http://" + r.emuAddr
	emu.DuplicateCallbacks(6)
	emu.ReorderCallbacks(8)
	vs := visitors("cl", 4, 6, 60*time.Millisecond)
	for _, v := range vs {
		v.plan = "plan-" + v.name // each reply is a batch of two: "You said" and "Your plan is"
	}
	runAll(t, r.addr, vs, time.Minute)
	emu.DelayCallbacks(time.Second)
	late := visitors("cllate", 2, 2, 10*time.Millisecond)
	runAll(t, r.addr, late, time.Minute)
	all := append(vs, late...)
	r.settle(all, time.Minute)
	r.audit(all, nil)
}

// TestFaultChatlayerSessionExpiry: visitors talk to a Chatlayer bot,
// stay away past the emulated session expiry, and come back to the same
// conversation. Chatlayer starts a new session for each and numbers its
// messages from 1 again, while callbacks are duplicated and the reply
// batches arrive last first. Every new reply is shown once, after the
// old ones, in the platform's order (the audit), and each conversation
// did have a second session.
func TestFaultChatlayerSessionExpiry(t *testing.T) {
	t.Parallel()
	const expiry = 3 * time.Second
	emu := chatlayertest.New(chatlayertest.Options{SessionExpiry: expiry})
	r := newRigOn(t, clPlatform{Server: emu}, "", "")
	emu.URL = "http://" + r.emuAddr
	vs := visitors("clexp", 3, 3, 30*time.Millisecond)
	for _, v := range vs {
		v.plan = "plan-" + v.name // each reply is a batch of two: "You said" and "Your plan is"
	}
	runAll(t, r.addr, vs, time.Minute)
	r.settle(vs, time.Minute)

	time.Sleep(expiry + 500*time.Millisecond)
	for _, v := range vs {
		v.mu.Lock()
		for range 3 {
			v.texts = append(v.texts, fmt.Sprintf("%s-m%d", v.name, len(v.texts)+1))
		}
		v.mu.Unlock()
	}
	emu.DuplicateCallbacks(4)
	emu.ReorderCallbacks(4)
	runAll(t, r.addr, vs, time.Minute)
	r.settle(vs, time.Minute)

	renewed := map[string]bool{}
	for _, c := range emu.Callbacks() {
		if c.Epoch == 1 {
			renewed[c.Conversation] = true
		}
	}
	if len(renewed) != len(vs) {
		t.Fatalf("%d of %d conversations had a second Chatlayer session; the expiry did not happen", len(renewed), len(vs))
	}
	r.audit(vs, nil)
}

// TestFaultRateLimitsUnderLoad: eight widgets on one address send far
// faster than their per-visitor and per-address limits. Each message over
// a limit gets a rate_limited error frame naming it, with retry_ms; the
// widgets wait that long and send again, and every message arrives once.
func TestFaultRateLimitsUnderLoad(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "limits: {messages_per_minute: 120, burst: 5, ip_messages_per_minute: 900, connections_per_ip: 100}\n")
	vs := visitors("rl", 8, 10, 20*time.Millisecond)
	runAll(t, r.addr, vs, 2*time.Minute)
	limited := 0
	for _, v := range vs {
		v.mu.Lock()
		for code, n := range v.codes {
			if code != widget.CodeRateLimited {
				t.Errorf("%s: %d error frames %q", v.name, n, code)
			}
		}
		if v.noRetry > 0 {
			t.Errorf("%s: %d rate-limit errors without retry_ms", v.name, v.noRetry)
		}
		limited += v.codes[widget.CodeRateLimited]
		v.mu.Unlock()
	}
	if limited == 0 {
		t.Fatal("no message was rate limited")
	}
	t.Logf("%d sends refused with rate_limited and sent again", limited)
	r.settle(vs, time.Minute)
	r.audit(vs, nil)
}

// auditKill runs r's audit allowing the one repeat a kill may cause: a
// message the platform held at the kill (before), at most one per
// visitor. It returns how many visitors had their in-flight message
// handed over again.
func auditKill(t *testing.T, r *faultRig, vs []*visitor, before map[string]int) int {
	t.Helper()
	repeats := map[string]int{} // visitor -> messages handed over twice
	r.audit(vs, func(text string) bool {
		if before[text] != 1 {
			return false
		}
		repeats[text[:strings.Index(text, "-m")]]++
		return true
	})
	for v, n := range repeats {
		if n > 1 {
			t.Fatalf("%s: %d messages reached the platform twice; at most the one in flight at the kill may", v, n)
		}
	}
	return len(repeats)
}
