package redisbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/bus/bustest"
	"github.com/porthole-chat/porthole/server/bus/redisbus"
	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/redis/go-redis/v9"
)

// TestSingle: two nodes, each with its own client, on one Redis.
func TestSingle(t *testing.T) {
	srv := redistest.Start(t)
	bustest.Run(t, func(t *testing.T) (bus.Bus, bus.Bus) {
		return open(t, srv.Client(t), redisbus.Options{}), open(t, srv.Client(t), redisbus.Options{})
	})
}

// TestNew: New says what is wrong with what it was given.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		opts   redisbus.Options
		want   string
	}{
		{"no client", nil, redisbus.Options{}, "no Redis client"},
		{"ring", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}), redisbus.Options{}, "cannot carry the bus"},
		{"brace in prefix", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), redisbus.Options{Prefix: "x{y}:"}, "brace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.client != nil {
				defer tc.client.Close()
			}
			b, err := redisbus.New(tc.client, tc.opts)
			if err == nil {
				b.Close()
				t.Fatal("New took it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestPublishChecks: an event without a conversation is refused before
// Redis, and Publish after Close is bus.ErrClosed, with Redis or without.
func TestPublishChecks(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing listens
	defer c.Close()
	b, err := redisbus.New(c, redisbus.Options{PublishTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), bus.Event{Seq: 1}); err == nil || !strings.Contains(err.Error(), "no conversation") {
		t.Fatalf("Publish without a conversation: %v", err)
	}
	if err := b.Publish(t.Context(), bus.Event{Conversation: "c1", Seq: 1}); err == nil {
		t.Fatal("Publish to a Redis that is not there did not fail")
	}
	b.Close()
	b.Close() // twice is fine
	if err := b.Publish(t.Context(), bus.Event{Conversation: "c1", Seq: 1}); err != bus.ErrClosed {
		t.Fatalf("Publish after Close = %v, want bus.ErrClosed", err)
	}
}

// open returns a node on client, closed when the test ends, with a prefix
// of the test's own so that tests on one Redis do not hear each other.
func open(t *testing.T, client redis.UniversalClient, opts redisbus.Options) *redisbus.Bus {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "test:" + t.Name() + ":"
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	b, err := redisbus.New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testLogger writes the bus's logs, debug included, to the test's log,
// until the test's cleanups ran: a goroutine that Close gave up waiting
// for may log after the test, where t.Log panics.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// inbox collects what a subscriber gets.
type inbox struct {
	mu  sync.Mutex
	evs []bus.Event
}

func (in *inbox) add(ev bus.Event) {
	in.mu.Lock()
	in.evs = append(in.evs, ev)
	in.mu.Unlock()
}

// has reports whether an event with this seq arrived.
func (in *inbox) has(seq uint64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, ev := range in.evs {
		if ev.Seq == seq {
			return true
		}
	}
	return false
}

// nextSeq numbers the events of publishUntil, so that each call waits
// for its own.
var nextSeq atomic.Uint64

// publishUntil publishes events of the conversation from b, with rising
// seqs, until in got one of them: pub/sub is at-most-once, so an event
// published while a node reconnects may be lost, but one published after
// must arrive. It fails after within.
func publishUntil(t *testing.T, b *redisbus.Bus, conversation string, in *inbox, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var sent []uint64
	var lastErr error
	for {
		seq := nextSeq.Add(1)
		if err := b.Publish(t.Context(), bus.Event{Conversation: conversation, Seq: seq}); err != nil {
			lastErr = err
		} else {
			sent = append(sent, seq)
		}
		for range 10 {
			for _, s := range sent {
				if in.has(s) {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event of %s arrived within %v (%d published; last error: %v)", conversation, within, len(sent), lastErr)
		}
	}
}

// waitFor polls cond until it holds, or fails after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last error: %v)", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdCtx is a context for a test's own Redis commands.
func cmdCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// channel is the channel of a conversation under opts.Prefix, as the
// package documents it.
func channel(prefix, conversation string) string {
	return fmt.Sprintf("%s{%s}", prefix, conversation)
}
