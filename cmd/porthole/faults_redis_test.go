package main

// The fault suite across instances: three `porthole serve` processes on
// one real Redis (redisrig_test.go), visitors spread over them, the
// platform's callbacks spread over them by a round-robin load balancer,
// so that a conversation's socket, its callbacks and its dispatch are on
// different processes. Each scenario ends with the fault suite's audit.
//
// They do not run in parallel, with each other or with the rest of the
// suite: each runs five processes of its own (three servers, Redis and
// the test with its emulator), and a busy machine stalls calls past the
// upstream call timeout, which hands a message over twice. Go runs them
// one after the other, before the parallel tests start.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/widget"
)

// TestRedisThreeInstances: a burst from visitors on all three instances,
// ChatAIBot's callbacks spread over them; nothing may repeat.
func TestRedisThreeInstances(t *testing.T) {
	r := newRedisRig(t, chataibottest.Options{})
	vs := visitors("multi", 9, 20, 20*time.Millisecond)
	r.start(vs, time.Minute)()
	r.settle(vs, time.Minute)
	r.spread()
	r.audit(vs, nil)
	sentInOrder(t, r.emu)
}

// TestRedisThreeInstancesChatlayer: Chatlayer numbers its messages; with
// some callbacks posted twice and the batches of others in reverse, each
// landing on another instance than the one before, every conversation's
// bot messages are stored once each, in the platform's order.
func TestRedisThreeInstancesChatlayer(t *testing.T) {
	emu := chatlayertest.New(chatlayertest.Options{})
	r := newRedisRigOn(t, clPlatform{Server: emu, reorderWait: "2s"})
	emu.URL = "http://" + r.emuAddr
	emu.DuplicateCallbacks(6)
	emu.ReorderCallbacks(8)
	vs := visitors("mcl", 6, 6, 60*time.Millisecond)
	for _, v := range vs {
		v.plan = "plan-" + v.name // each reply is a batch of two: "You said" and "Your plan is"
	}
	r.start(vs, time.Minute)()
	emu.DelayCallbacks(time.Second)
	late := visitors("mcllate", 3, 2, 10*time.Millisecond)
	r.start(late, time.Minute)() // they leave once acknowledged
	all := append(vs, late...)
	r.settle(all, time.Minute)
	r.spread()
	r.audit(all, nil)
}

// TestRedisThreeInstancesSIGKILL: one instance is killed with SIGKILL in
// the middle of a burst and stays down. Its visitors reconnect to the
// others and send their unacknowledged messages again; the survivors
// take over its outbox once its dispatch claims expire. As in
// TestFaultKilledMidBurst, the one repeat allowed is the message in
// flight at the kill, at most one per conversation.
func TestRedisThreeInstancesSIGKILL(t *testing.T) {
	r := newRedisRig(t, chataibottest.Options{RetryDelay: 400 * time.Millisecond})
	vs := visitors("mkill", 9, 30, 20*time.Millisecond) // 450 messages a second for 0.6 s
	wait := r.start(vs, 2*time.Minute)
	r.underway(60)
	time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
	r.kill(1)
	killed := time.Now()
	time.Sleep(100 * time.Millisecond) // calls already with the platform finish there
	before := r.plat.accepted()
	wait()
	if r.moved.Load() == 0 {
		t.Fatal("no widget was connected to the killed instance: it was not killed in the middle of the burst")
	}
	// Its outbox is taken over within the claims' lease and a poll (10 s
	// and 1 s, server/dispatch.go); 30 s is far beyond that.
	waitFor(t, "the dead instance's outbox taken over: every acknowledged message with the platform", 30*time.Second, func() bool {
		up := r.plat.accepted()
		for _, v := range vs {
			for _, text := range v.ackedTexts() {
				if up[text] == 0 {
					return false
				}
			}
		}
		return true
	})
	t.Logf("every acknowledged message with the platform %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	r.settle(vs, 30*time.Second)
	t.Logf("the platform's callbacks settled %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	r.spread()
	repeats := auditKill(t, r.faultRig, vs, before)
	sentInOrder(t, r.emu)
	t.Logf("killed instance 1 with %d messages with the platform; its widgets reconnected elsewhere %d times; %d conversations had their in-flight message handed over again",
		sumCounts(before), r.moved.Load(), repeats)
}

// TestRedisThreeInstancesRedisRestart: Redis, with appendfsync always,
// is killed in the middle of a burst and started again on its data a
// moment later. While it is down no instance acknowledges anything and
// /readyz answers 503; the widgets keep what was not acknowledged and
// send it again; afterwards nothing acknowledged is lost and nothing
// reached the platform twice.
func TestRedisThreeInstancesRedisRestart(t *testing.T) {
	r := newRedisRig(t, chataibottest.Options{RetryDelay: 400 * time.Millisecond},
		"--appendonly", "yes", "--appendfsync", "always")

	// The probe is a widget with a conversation, connected to instance
	// 2, that sends a message once Redis is down.
	probe := newVisitor("probe", 1, 10*time.Millisecond)
	c, _, err := dialBot(t, r.inst[2].p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	probe.token = c.start(probe.startID()).Visitor

	vs := visitors("mredis", 9, 40, 40*time.Millisecond) // 225 messages a second for 1.6 s
	wait := r.start(vs, 2*time.Minute)
	r.underway(60)
	time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
	r.redis.Stop()
	down := time.Now()

	probe.mu.Lock()
	probe.byID["probe-c1"], probe.outbox, probe.sent = probe.texts[0], []string{"probe-c1"}, 1
	probe.mu.Unlock()
	c.send(&widget.Send{ID: "probe-c1", Text: probe.texts[0]})
	for _, in := range r.inst {
		waitFor(t, "/readyz of "+in.addr+" answering 503 while Redis is down", 10*time.Second, func() bool {
			resp, err := http.Get("http://" + in.addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusServiceUnavailable
		})
	}
	// Whatever comes on the probe's socket until Redis is back, it is
	// not an ack of what was sent while Redis was down. Redis stays down
	// until the server has said it could not store it.
	refused := ""
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	for refused == "" {
		_, data, err := c.c.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				refused = "socket closed: " + err.Error()
			}
			break
		}
		f, err := widget.Decode(data)
		if err != nil {
			t.Fatalf("invalid frame %s: %v", data, err)
		}
		switch f := f.(type) {
		case *widget.Ack:
			if f.ID == "probe-c1" {
				t.Fatalf("probe-c1, sent while Redis was down, acknowledged as seq %d", f.Seq)
			}
		case *widget.ErrorFrame:
			if f.ID == "probe-c1" && refused == "" {
				refused = "error frame " + f.Code + ": " + f.Message
			}
		}
	}
	cancel()
	c.c.CloseNow()
	if refused == "" {
		t.Fatal("probe-c1, sent while Redis was down, got neither an error frame nor a closed socket")
	}
	t.Logf("while Redis was down, the probe's message got, after %s: %s", time.Since(down).Round(time.Millisecond), refused)
	r.redis.Restart(t)
	t.Logf("Redis was down for %s", time.Since(down).Round(time.Millisecond))

	// The probe's widget reconnects and sends its outbox again.
	all := append(vs, probe)
	wait2 := r.start([]*visitor{probe}, time.Minute)
	wait()
	wait2()
	for _, in := range r.inst {
		waitFor(t, "/readyz of "+in.addr+" answering 200 with Redis back", 10*time.Second, func() bool {
			resp, err := http.Get("http://" + in.addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	refusals := 0
	for _, v := range vs {
		v.mu.Lock()
		refusals += v.codes[widget.CodeInternal] + v.closes[websocket.StatusInternalError]
		v.mu.Unlock()
	}
	t.Logf("%d sends or connections of the burst refused while Redis was down", refusals)
	r.settle(all, time.Minute)
	r.spread()
	r.audit(all, nil)
}

// sentInOrder checks that ChatAIBot got each conversation's visitor
// messages in the order the visitor sent them, whichever instance
// handed each over: one dispatcher per conversation at a time. A message
// handed over twice (the repeat a kill allows) comes again right after
// itself.
func sentInOrder(t *testing.T, emu *chataibottest.Server) {
	t.Helper()
	for _, c := range emu.Conversations() {
		last := 0
		for _, m := range c.Messages {
			var name string
			var n int
			if i := strings.LastIndex(m, "-m"); i < 0 {
				t.Fatalf("platform conversation %s: message %q is no visitor's", c.ID, m)
			} else if _, err := fmt.Sscanf(m[i+2:], "%d", &n); err != nil {
				t.Fatalf("platform conversation %s: message %q is no visitor's", c.ID, m)
			} else {
				name = m[:i]
			}
			if n < last {
				t.Fatalf("platform conversation %s of %s got its messages out of order: %q", c.ID, name, c.Messages)
			}
			last = n
		}
	}
}
