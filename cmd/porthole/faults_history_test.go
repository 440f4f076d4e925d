package main

// The fault scenarios of Chatlayer's history: replies whose callbacks
// Chatlayer gave up on, or that were lost on the way, reach the visitor
// from the history, in order and once. Each ends in the fault suite's
// audit, which for Chatlayer counts every message the bot produced,
// whether its callback arrived or not.

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
)

// TestFaultChatlayerDownLongerThanRetries: the server stops for a minute
// right after Chatlayer took a visitor's three messages. The bot answers
// them meanwhile: every callback fails and Chatlayer gives up after its
// retries, while the answers go into its history. The restarted server
// reconciles the conversations active before it stopped, and the
// visitor's widget, which reconnected by itself, shows the three replies
// in order and once.
func TestFaultChatlayerDownLongerThanRetries(t *testing.T) {
	t.Parallel()
	const down = time.Minute
	emu := chatlayertest.New(chatlayertest.Options{ReplyDelay: 500 * time.Millisecond})
	r := newRigOn(t, clPlatform{Server: emu}, "", "")
	emu.URL = "http://" + r.emuAddr
	v := newVisitor("cldown", 3, 50*time.Millisecond)
	v.stay = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { v.run(ctx, r.addr) })
	defer wg.Wait()
	defer cancel()

	waitFor(t, "Chatlayer took the three messages", 30*time.Second, func() bool {
		up := r.plat.accepted()
		return up["cldown-m1"] == 1 && up["cldown-m2"] == 1 && up["cldown-m3"] == 1
	})
	r.p.cmd.Process.Signal(os.Interrupt)
	if err := r.p.cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, r.p.log())
	}
	stopped := time.Now()
	if err := r.plat.idle(ctx); err != nil {
		t.Fatal("Chatlayer kept posting")
	}
	var failed int
	for _, c := range emu.Callbacks() {
		if c.Attempt == 1+chatlayertest.MaxRetries && c.Status == 0 {
			failed++
		}
	}
	if failed < 3 {
		t.Fatalf("%d callbacks given up while the server was down, want at least the three replies", failed)
	}
	for _, text := range []string{"You said: cldown-m1", "You said: cldown-m2", "You said: cldown-m3"} {
		v.mu.Lock()
		_, shown := v.seenAt[text]
		v.mu.Unlock()
		if shown {
			t.Fatalf("%q reached the visitor before the stop; the scenario needs it lost", text)
		}
	}
	time.Sleep(down - time.Since(stopped))
	r.relaunch()
	back := time.Now()

	want := []string{"You said: cldown-m1", "You said: cldown-m2", "You said: cldown-m3"}
	waitFor(t, "the three replies on the visitor's screen", 30*time.Second, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, text := range want {
			if _, ok := v.seenAt[text]; !ok {
				return false
			}
		}
		return true
	})
	var order []string
	for _, m := range v.received() {
		if strings.HasPrefix(m.Body.Text, "You said: ") {
			order = append(order, m.Body.Text)
		}
	}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Fatalf("the visitor holds %q, want %q once each, in order", order, want)
	}
	v.mu.Lock()
	shownAfter := v.seenAt[want[2]].Sub(back)
	v.mu.Unlock()
	cancel()
	wg.Wait()
	r.settle([]*visitor{v}, time.Minute)
	r.audit([]*visitor{v}, nil)
	t.Logf("down %s; %d callbacks given up; the replies were on the visitor's screen %s after the restart",
		down, failed, shownAfter.Round(time.Millisecond))
}

// TestFaultChatlayerCallbackLostMidBurst: four visitors write in a
// burst, and in each conversation Chatlayer loses the callback of the
// bot's third message for good (dropped: no retry comes). The fourth
// arrives, waits reorder_wait for it, and the server fetches the gap
// from the history: every message is shown once, in the platform's
// order. The bound: reorder_wait plus one history call after the next
// callback of the conversation.
func TestFaultChatlayerCallbackLostMidBurst(t *testing.T) {
	t.Parallel()
	emu := chatlayertest.New(chatlayertest.Options{})
	r := newRigOn(t, clPlatform{Server: emu}, "", "")
	emu.URL = "http://" + r.emuAddr
	vs := visitors("cldrop", 4, 5, 60*time.Millisecond)
	for _, v := range vs {
		v.plan = "plan-" + v.name // each reply is a batch of two: "You said" and "Your plan is"
		v.stay = true             // open widgets: what they are shown, and when, is measured
	}
	emu.DropNumbered(3, len(vs))
	emu.DropNumbered(6, len(vs))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Go(func() { v.run(ctx, r.addr) })
	}
	defer wg.Wait()
	defer cancel()
	waitFor(t, "every message acknowledged", time.Minute, func() bool {
		for _, v := range vs {
			if !v.done() {
				return false
			}
		}
		return true
	})
	r.settle(vs, time.Minute)

	var worst time.Duration
	lost := 0
	for _, c := range emu.Callbacks() {
		if !c.Dropped {
			continue
		}
		lost++
		var cb struct{ Message struct{ Text string } }
		json.Unmarshal(c.Body, &cb)
		var v *visitor
		for _, x := range vs {
			if strings.Contains(cb.Message.Text, x.name+"-") || strings.HasSuffix(cb.Message.Text, "plan-"+x.name+".") {
				v = x
			}
		}
		if v == nil {
			continue // a greeting's message: the audit checks it
		}
		waitFor(t, "the lost "+cb.Message.Text, 20*time.Second, func() bool {
			v.mu.Lock()
			defer v.mu.Unlock()
			_, ok := v.seenAt[cb.Message.Text]
			return ok
		})
		v.mu.Lock()
		worst = max(worst, v.seenAt[cb.Message.Text].Sub(c.At))
		v.mu.Unlock()
	}
	if lost != 2*len(vs) {
		t.Fatalf("%d callbacks lost, want %d", lost, 2*len(vs))
	}
	// The stated bound: the next callback comes at once here, then
	// reorder_wait (500 ms) and one history call (at most 5 s).
	if bound := 500*time.Millisecond + 5*time.Second + 2*time.Second; worst > bound {
		t.Fatalf("a lost callback reached the visitor %s after it was lost; the bound is %s", worst, bound)
	}
	cancel()
	wg.Wait()
	r.audit(vs, nil)
	if n := strings.Count(r.p.log(), "chatlayer history reconciled"); n < len(vs) {
		t.Fatalf("%d reconciliations logged for %d conversations with gaps", n, len(vs))
	}
	t.Logf("%d callbacks lost, each recovered from the history at most %s after", lost, worst.Round(time.Millisecond))
}

// TestFaultChatlayerKilledAfterStartAccepted: the server is killed with
// SIGKILL the moment Chatlayer accepted a conversation's start
// (introMessage), before the server could record it. The restarted
// server finds the start unrecorded and would send it again; it looks in
// the history first, finds the conversation, sends nothing, and shows
// the greeting Chatlayer answered meanwhile (its callbacks went to the
// dead process). Each conversation had one introMessage.
func TestFaultChatlayerKilledAfterStartAccepted(t *testing.T) {
	t.Parallel()
	var rig *faultRig
	ready := make(chan struct{})
	killed := make(chan struct{})
	var once sync.Once
	emu := chatlayertest.New(chatlayertest.Options{
		ReplyDelay: 300 * time.Millisecond, // the greeting comes after the kill
		OnAccept: func(q chatlayertest.Request) {
			if q.Kind != "intro" {
				return
			}
			once.Do(func() {
				<-ready
				rig.p.kill()
				close(killed)
			})
		},
	})
	r := newRigOn(t, clPlatform{Server: emu}, "", "")
	rig = r
	close(ready)
	emu.URL = "http://" + r.emuAddr
	vs := visitors("clkill", 3, 3, 50*time.Millisecond)
	wait := startAll(t, r.addr, vs, 2*time.Minute)
	select {
	case <-killed:
	case <-time.After(time.Minute):
		t.Fatal("no start reached Chatlayer")
	}
	time.Sleep(100 * time.Millisecond) // calls already with Chatlayer finish there
	before := r.plat.accepted()
	r.relaunch()
	wait()
	r.settle(vs, time.Minute)

	intros := map[string]int{}
	for _, q := range emu.Requests() {
		if q.Kind == "intro" && q.Status == 200 {
			intros[q.UserID]++
		}
	}
	if len(intros) != len(vs) {
		t.Fatalf("%d conversations started upstream, want %d", len(intros), len(vs))
	}
	for conv, n := range intros {
		if n != 1 {
			t.Fatalf("conversation %s: %d introMessages accepted, want 1", conv, n)
		}
	}
	if !strings.Contains(r.p.log(), "its start is not sent again") {
		t.Fatal("the restarted server did not find the start in the history")
	}
	auditKill(t, r, vs, before)
}
