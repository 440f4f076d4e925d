package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// platformLog is one platform behind several processes: it records every
// call with the process that made it, and fails the test when two calls
// of one conversation overlap or a conversation's messages arrive out of
// seq order.
type platformLog struct {
	t     *testing.T
	delay time.Duration
	// hang, when set for a process, holds that process's calls until the
	// channel closes, ignoring their deadline: a process that froze.
	hang map[string]chan struct{}
	// down, when set, refuses every visitor message with a 503.
	down bool

	mu       sync.Mutex
	inFlight map[string]string   // conversation -> process calling
	seqs     map[string][]uint64 // conversation -> seqs accepted, in order
	by       map[uint64]string   // seq -> process that handed it over (one conversation)
}

func newPlatformLog(t *testing.T, delay time.Duration) *platformLog {
	return &platformLog{t: t, delay: delay, hang: map[string]chan struct{}{}, inFlight: map[string]string{}, seqs: map[string][]uint64{}, by: map[uint64]string{}}
}

// as is the platform as process name sees it.
func (p *platformLog) as(name string) provider.Provider {
	return providerFunc(func(ctx context.Context, m provider.Message) error {
		if m.Kind == provider.Start {
			return nil
		}
		p.mu.Lock()
		if other, busy := p.inFlight[m.Conversation]; busy && p.hang[other] == nil {
			p.t.Errorf("conversation %s: %s calls with seq %d while %s's call is in flight", m.Conversation, name, m.Seq, other)
		}
		p.inFlight[m.Conversation] = name
		hang, down := p.hang[name], p.down
		p.mu.Unlock()
		if hang != nil {
			<-hang
		}
		time.Sleep(p.delay)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.inFlight[m.Conversation] == name {
			delete(p.inFlight, m.Conversation)
		}
		if down {
			return &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: 503}
		}
		got := p.seqs[m.Conversation]
		if n := len(got); n > 0 && got[n-1] >= m.Seq && hang == nil {
			p.t.Errorf("conversation %s: seq %d handed over by %s after seq %d", m.Conversation, m.Seq, name, got[n-1])
		}
		p.seqs[m.Conversation] = append(got, m.Seq)
		p.by[m.Seq] = name
		return nil
	})
}

func (p *platformLog) accepted(conv string) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint64(nil), p.seqs[conv]...)
}

func (p *platformLog) handedBy(seq uint64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.by[seq]
}

type providerFunc func(context.Context, provider.Message) error

func (f providerFunc) Send(ctx context.Context, m provider.Message) error { return f(ctx, m) }

// sharedPair starts two server processes over one store, dispatching
// shared with lease and poll, in front of one platform.
func sharedPair(t *testing.T, plat *platformLog, lease time.Duration) (st store.Store, a, b *harness) {
	st = store.NewMemory()
	t.Cleanup(func() { st.Close() })
	mk := func(name string) *harness {
		return newHarness(t, func(c *Config, o *Options) {
			// One deployment: the same keys, so that a visitor token of
			// one process opens the conversation on the other.
			c.SessionKeys = []Secret{"shared-dispatch-test-session-key-0123456789"}
			c.Limits.MessagesPerMinute, c.Limits.Burst = 6000, 100
			// Retried for a minute, and failing visibly only after many tries.
			o.Retry = &RetryPolicy{Quick: 100, Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, GiveUp: time.Minute, Timeout: time.Second}
			o.Store = keepOpen{st} // the test closes it, after both
			o.Shared = &SharedDispatch{Owner: name, Lease: lease, Poll: 20 * time.Millisecond}
			p := plat.as(name)
			o.Providers = map[string]provider.Provider{"demo": p, "acme": p}
		})
	}
	return st, mk("a"), mk("b")
}

// TestSharedDispatchKeepsOrderAcrossProcesses: a visitor whose messages
// reach two processes in turn (a load balancer without sticky sessions,
// a reconnect) has them handed upstream once each, in seq order, never
// two at a time, whichever process stored them.
func TestSharedDispatchKeepsOrderAcrossProcesses(t *testing.T) {
	plat := newPlatformLog(t, 5*time.Millisecond)
	_, a, b := sharedPair(t, plat, 2*time.Second)
	ca := a.connect("acme")
	w := ca.open("", 0)
	cb := b.connect("acme")
	cb.hello(w.Visitor, 0)
	// In bursts, so that one process holds the conversation while the
	// other stores, and between them the claim changes hands.
	const n = 40
	for i := range n {
		c := ca
		if (i/2+i/8)%2 == 1 { // each burst starts on the other process

			c = cb
		}
		id := fmt.Sprintf("m%d", i)
		c.send(&widget.Send{ID: id, Text: id})
		c.ack(id)
		if i%8 == 7 {
			waitUntil(t, "the burst with the platform", func() bool { return len(plat.accepted(w.Conversation)) > i })
		}
	}
	waitUntil(t, "every message with the platform", func() bool { return len(plat.accepted(w.Conversation)) >= n })
	got := plat.accepted(w.Conversation)
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("the platform got seqs %v, want 1 to %d once each in order", got, n)
		}
	}
	handed := map[string]int{}
	for seq := range uint64(n) {
		handed[plat.handedBy(seq+1)]++
	}
	if handed["a"] == 0 || handed["b"] == 0 {
		t.Fatalf("handed over by process: %v; want both to have dispatched", handed)
	}
	t.Logf("handed over by process: %v", handed)
}

// TestSharedDispatchTakesOverAFrozenProcess: a process that stops
// (frozen in a call; a SIGKILL is the same to the others) stops renewing
// its claim; another process takes the conversation over once the lease
// runs out, and hands over what it held and what came after.
func TestSharedDispatchTakesOverAFrozenProcess(t *testing.T) {
	plat := newPlatformLog(t, 0)
	frozen := make(chan struct{})
	plat.hang["a"] = frozen
	_, a, b := sharedPair(t, plat, 2*time.Second)
	t.Cleanup(func() { close(frozen) }) // let a's call end before its shutdown
	ca := a.connect("acme")
	w := ca.open("", 0)
	ca.send(&widget.Send{ID: "held", Text: "held"})
	ca.ack("held")
	cb := b.connect("acme")
	cb.hello(w.Visitor, 0)
	cb.send(&widget.Send{ID: "after", Text: "after"})
	cb.ack("after")
	waitUntil(t, "b to take the conversation over", func() bool { return len(plat.accepted(w.Conversation)) >= 2 })
	if got := plat.accepted(w.Conversation); fmt.Sprint(got) != "[1 2]" || plat.handedBy(1) != "b" || plat.handedBy(2) != "b" {
		t.Fatalf("accepted %v (seq 1 by %q, seq 2 by %q), want [1 2] both by b", got, plat.handedBy(1), plat.handedBy(2))
	}
	if s := cb.status("after"); s.State != widget.StateDelivered {
		t.Fatalf("status of the later message: %+v", s)
	}
}

// TestSharedDispatchHandsBackOnShutdown: a process that shuts down while
// it holds a conversation (the platform is down, the message waits for
// its next try) gives the claim back at once: another process hands the
// message over as soon as the platform is back, long before the lease
// would have run out.
func TestSharedDispatchHandsBackOnShutdown(t *testing.T) {
	plat := newPlatformLog(t, 0)
	plat.down = true
	_, a, b := sharedPair(t, plat, time.Hour)
	ca := a.connect("acme")
	w := ca.open("", 0)
	ca.send(&widget.Send{ID: "m", Text: "m"})
	ca.ack("m")
	time.Sleep(50 * time.Millisecond) // a tries and holds the conversation
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca.c.CloseNow() // the widget has gone: Shutdown waits for no close handshake
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	plat.mu.Lock()
	plat.down = false
	plat.mu.Unlock()
	cb := b.connect("acme")
	cb.hello(w.Visitor, 0)
	waitUntil(t, "b to hand the message over", func() bool { return plat.handedBy(1) == "b" })
}

// keepOpen is a store that one process of several closes: Close leaves
// it open for the others.
type keepOpen struct{ store.Store }

func (keepOpen) Close() error { return nil }
