package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// accepted wraps a provider and counts the calls it accepted, by
// conversation and seq: what the platform holds, not what was tried.
type accepted struct {
	provider.Provider
	mu sync.Mutex
	n  map[string]map[uint64]int
}

func (a *accepted) Send(ctx context.Context, m provider.Message) error {
	err := a.Provider.Send(ctx, m)
	if err == nil {
		a.mu.Lock()
		if a.n[m.Conversation] == nil {
			a.n[m.Conversation] = map[uint64]int{}
		}
		a.n[m.Conversation][m.Seq]++
		a.mu.Unlock()
	}
	return err
}

func (a *accepted) count(conv string, seq uint64) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[conv][seq]
}

// generation is one server process of a restart test: a harness over the
// bolt file at path, its provider counted.
type generation struct {
	*harness
	acc  *accepted
	bolt *store.Bolt
}

// startGeneration starts a server over the bolt file at path, with retry
// and, shared, its own dispatch owner (a restarted process is another
// owner). setup, when given, runs on its fake provider before the server
// recovers the outbox.
func startGeneration(t *testing.T, path, name string, retry RetryPolicy, setup func(*fakeProvider)) *generation {
	t.Helper()
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := &generation{bolt: st}
	h := newHarness(t, func(_ *Config, o *Options) {
		o.Store = st
		o.Retry = &retry
		if o.Shared != nil {
			o.Shared.Owner += "/" + name
		}
		fp := o.Providers["acme"].(*fakeProvider)
		if setup != nil {
			setup(fp)
		}
		g.acc = &accepted{Provider: fp, n: map[string]map[uint64]int{}}
		o.Providers = map[string]provider.Provider{"demo": g.acc, "acme": g.acc}
	})
	g.harness = h
	t.Cleanup(func() { st.Close() })
	return g
}

// stop shuts the generation's server down, which closes its store, as a
// process that stops; the widgets in gone have left first, so that the
// shutdown waits for no close handshake.
func (g *generation) stop(gone ...*client) {
	g.t.Helper()
	for _, c := range gone {
		c.c.CloseNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		g.t.Fatalf("shutdown: %v", err)
	}
	if _, err := g.bolt.Get(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, store.ErrClosed) {
		g.t.Fatalf("the store is still open after the shutdown: %v", err)
	}
}

// durableRetry keeps retrying long enough for a restart in between.
var durableRetry = RetryPolicy{Quick: 3, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond, GiveUp: time.Minute, Greet: time.Minute, Timeout: time.Second}

var unavailable = &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: 503}

// TestGreetingSurvivesRestart: a conversation whose start (the greeting)
// the platform refused until the server stopped is started by the next
// server over the same store, once.
func TestGreetingSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	g1 := startGeneration(t, path, "1", durableRetry, func(fp *fakeProvider) {
		fp.setFail(func(m provider.Message, _ int) error {
			if m.Kind == provider.Start {
				return unavailable
			}
			return nil
		})
	})
	c := g1.connect("acme")
	w := c.open("", 0)
	waitUntil(t, "the start to be tried twice", func() bool { return g1.startCalls()[w.Conversation] >= 2 })
	g1.stop(c)
	if n := g1.acc.count(w.Conversation, 0); n != 0 {
		t.Fatalf("the failing platform accepted the start %d times", n)
	}

	g2 := startGeneration(t, path, "2", durableRetry, nil)
	waitUntil(t, "the greeting after the restart", func() bool { return g2.acc.count(w.Conversation, 0) > 0 })
	waitUntil(t, "the start to be recorded", func() bool {
		v, err := g2.bolt.Attr(context.Background(), w.Conversation, attrStart)
		return err == nil && v == "sent"
	})
	time.Sleep(100 * time.Millisecond) // let a wrong second start happen
	if n := g2.acc.count(w.Conversation, 0); n != 1 {
		t.Fatalf("after the restart the platform took the start %d times, want once", n)
	}
}

// TestNothingRepeatedAfterRestart: in the normal path, what went out
// before a restart, the greeting and a message, does not go out again.
func TestNothingRepeatedAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	g1 := startGeneration(t, path, "1", durableRetry, nil)
	c := g1.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "n1", Text: "hello"})
	c.ack("n1")
	if s := c.status("n1"); s.State != widget.StateDelivered {
		t.Fatalf("status = %+v", s)
	}
	waitUntil(t, "the greeting", func() bool { return g1.acc.count(w.Conversation, 0) == 1 })
	g1.stop(c)

	g2 := startGeneration(t, path, "2", durableRetry, nil)
	time.Sleep(300 * time.Millisecond) // what Recover queued has gone by now
	if n := g2.startCalls()[w.Conversation]; n != 0 {
		t.Fatalf("the start went out again %d times after the restart", n)
	}
	if n := g2.fp.callsFor("n1"); n != 0 {
		t.Fatalf("the delivered message went out again %d times after the restart", n)
	}
	if n := g1.acc.count(w.Conversation, 0) + g1.fp.callsFor("n1"); n != 2 {
		t.Fatalf("before the restart: %d calls, want the greeting and the message once each", n)
	}
}

// failVisibly starts a server whose platform refuses visitor messages,
// sends one and waits until the visitor is told it failed; the message
// stays pending, with its reason and the time of its first attempt, for
// the background retries. It returns the server, the conversation and
// the message's seq.
func failVisibly(t *testing.T, path string, retry RetryPolicy) (*generation, *client, string, uint64) {
	t.Helper()
	g := startGeneration(t, path, "1", retry, nil)
	g.fp.down()
	c := g.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "r1", Text: "are you there?"})
	seq := c.ack("r1").Seq
	if s := c.status("r1"); s.State != widget.StateFailed || s.Error != provider.ReasonUnavailable {
		t.Fatalf("status = %+v", s)
	}
	l, err := g.bolt.Load(context.Background(), w.Conversation, seq, attrRetry(seq))
	if err != nil || !retrying(l.Message) || entryOf(l.Message).State != widget.StateFailed {
		t.Fatalf("stored = %+v, %v; want it pending with its failure reason, shown failed", l.Message, err)
	}
	first, err := strconv.ParseInt(l.Attrs[attrRetry(seq)], 10, 64)
	if err != nil || time.Since(time.UnixMilli(first)) > 5*time.Second || time.UnixMilli(first).After(time.Now()) {
		t.Fatalf("first attempt recorded as %q, %v", l.Attrs[attrRetry(seq)], err)
	}
	return g, c, w.Conversation, seq
}

// TestBackgroundRetrySurvivesRestart: a message that failed visibly and
// was still retried in the background when the server stopped goes out,
// once, from the next server over the same store, and ends delivered.
func TestBackgroundRetrySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	g1, c, conv, seq := failVisibly(t, path, durableRetry)
	g1.stop(c)
	if n := g1.acc.count(conv, seq); n != 0 {
		t.Fatalf("the failing platform accepted the message %d times", n)
	}

	g2 := startGeneration(t, path, "2", durableRetry, nil)
	waitUntil(t, "the background retry after the restart", func() bool {
		ms, err := g2.bolt.Read(context.Background(), conv, seq-1, 1)
		return err == nil && len(ms) == 1 && ms[0].State == store.Delivered
	})
	time.Sleep(100 * time.Millisecond) // let a wrong second call happen
	if n := g2.acc.count(conv, seq); n != 1 {
		t.Fatalf("after the restart the platform took the message %d times, want once", n)
	}
	if v, err := g2.bolt.Attr(context.Background(), conv, attrRetry(seq)); err != nil || v != "" {
		t.Fatalf("retry start left behind: %q, %v", v, err)
	}
}

// TestExpiredRetryNotResumed: a message whose background retries ran out
// (upstream.retry_for, counted from its first attempt) while the server
// was down is not handed upstream after the restart: it ends failed.
func TestExpiredRetryNotResumed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	retry := durableRetry
	retry.GiveUp = 700 * time.Millisecond
	g1, c, conv, seq := failVisibly(t, path, retry)
	g1.stop(c)
	time.Sleep(retry.GiveUp) // retry_for runs out while no server runs

	g2 := startGeneration(t, path, "2", retry, nil)
	waitUntil(t, "the message to be given up", func() bool {
		ms, err := g2.bolt.Read(context.Background(), conv, seq-1, 1)
		return err == nil && len(ms) == 1 && ms[0].State == store.Failed && ms[0].Reason == provider.ReasonUnavailable
	})
	time.Sleep(100 * time.Millisecond)
	if n := g2.fp.callsFor("r1"); n != 0 {
		t.Fatalf("the expired message was tried %d times after the restart", n)
	}
	if out, err := g2.bolt.Outbox(context.Background(), 10); err != nil || len(out) != 0 {
		t.Fatalf("outbox = %+v, %v; want it empty", out, err)
	}
}

// TestSharedDispatchTakesOverBackgroundRetries: a process that stops
// while it retries a visibly failed message in the background (frozen in
// a call; a SIGKILL is the same to the others) leaves it on the outbox:
// another process takes it over once the lease runs out and hands it
// over, once, still within upstream.retry_for of its first attempt.
func TestSharedDispatchTakesOverBackgroundRetries(t *testing.T) {
	plat := newPlatformLog(t, 0)
	plat.down = true
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	mk := func(name string) *harness {
		return newHarness(t, func(c *Config, o *Options) {
			c.SessionKeys = []Secret{"shared-dispatch-test-session-key-0123456789"}
			o.Retry = &RetryPolicy{Quick: 2, Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, GiveUp: time.Minute, Timeout: time.Second}
			o.Store = keepOpen{st}
			o.Shared = &SharedDispatch{Owner: name, Lease: 2 * time.Second, Poll: 20 * time.Millisecond}
			p := plat.as(name)
			o.Providers = map[string]provider.Provider{"demo": p, "acme": p}
		})
	}
	a, _ := mk("a"), mk("b")
	frozen := make(chan struct{})
	t.Cleanup(func() { close(frozen) }) // let a's call end before its shutdown
	ca := a.connect("acme")
	w := ca.open("", 0)
	ca.send(&widget.Send{ID: "bg", Text: "still retried"})
	seq := ca.ack("bg").Seq
	if s := ca.status("bg"); s.State != widget.StateFailed {
		t.Fatalf("status = %+v", s)
	}
	plat.mu.Lock()
	plat.hang["a"] = frozen // a's next background retry never ends
	plat.down = false
	plat.mu.Unlock()
	waitUntil(t, "b to take the background retry over", func() bool { return len(plat.accepted(w.Conversation)) > 0 })
	if got := plat.accepted(w.Conversation); fmt.Sprint(got) != fmt.Sprint([]uint64{seq}) || plat.handedBy(seq) != "b" {
		t.Fatalf("accepted %v (seq %d by %q), want seq %d once, by b", got, seq, plat.handedBy(seq), seq)
	}
	waitUntil(t, "the delivery to be recorded", func() bool {
		ms, err := st.Read(context.Background(), w.Conversation, seq-1, 1)
		return err == nil && len(ms) == 1 && ms[0].State == store.Delivered && ms[0].Reason == ""
	})
}
