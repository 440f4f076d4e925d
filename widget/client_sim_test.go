package widget

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestSimulation drives tabs sharing one Storage through random
// interleavings of typing, bot replies, lost and duplicated frames, lost
// sockets, reloads and rate limits, then lets everything reconnect and
// checks that every message typed is stored exactly once and every tab
// shows the server's transcript exactly.
func TestSimulation(t *testing.T) {
	runs := 300
	if testing.Short() {
		runs = 30
	}
	simStats = struct{ afterHellos, sends, typed int }{}
	for run := 0; run < runs; run++ {
		simulate(t, uint64(run))
	}
	t.Logf("%d messages typed, %d send frames, %d hellos with after > 0", simStats.typed, simStats.sends, simStats.afterHellos)
	if simStats.sends <= simStats.typed || simStats.afterHellos == 0 {
		t.Fatal("the simulation never resent or resynced")
	}
}

var simStats struct{ afterHellos, sends, typed int }

func simulate(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	clock := newClock()
	srv := newServer(t, clock)
	srv.ackFirst = rng.IntN(2) == 0
	srv.limit = func(string) int64 {
		if rng.IntN(10) == 0 {
			return int64(100 + rng.IntN(3000))
		}
		return 0
	}
	srv.startLimit = func() int64 {
		if rng.IntN(4) == 0 {
			return int64(100 + rng.IntN(3000))
		}
		return 0
	}
	store := new(MemoryStorage)
	tabs := []*tab{newTab(t, "t0", srv, store, seed*10+1), newTab(t, "t1", srv, store, seed*10+2)}
	for _, tb := range tabs {
		tb.apply(tb.c.Start())
	}
	var typed []string // client ids of every message typed
	n := 0
	for step := 0; step < 80; step++ {
		i := rng.IntN(len(tabs))
		tb := tabs[i]
		switch a := rng.IntN(16); a {
		case 0, 1:
			if len(tb.c.queue) < OutboxCap-1 {
				n++
				e, u := tb.c.SendText("m" + strconv.Itoa(n))
				tb.apply(u)
				typed = append(typed, e.ClientID)
			}
		case 2:
			if len(tb.c.queue) < OutboxCap-1 {
				n++
				e, u := tb.c.Postback("p"+strconv.Itoa(n), "payload")
				tb.apply(u)
				typed = append(typed, e.ClientID)
			}
		case 3:
			srv.say("bot" + strconv.Itoa(step))
		case 4:
			if tb.conn != nil {
				tb.lose([]int{CloseAbnormal, CloseServiceRestart, ClosePolicy, CloseNormal}[rng.IntN(4)])
			}
		case 5:
			if tb.dialing {
				tb.connect()
			} else if tb.wake > 0 {
				clock.Advance(tb.wake)
				tb.apply(tb.c.Tick())
			}
		case 6:
			if tb.conn != nil && len(tb.conn.inbox) > 0 {
				data := tb.conn.inbox[0]
				tb.conn.inbox = tb.conn.inbox[1:]
				tb.apply(tb.c.Receive(data))
			}
		case 7:
			tb.pump()
		case 8: // reload
			if tb.conn != nil {
				tb.conn.open = false
			}
			tabs[i] = newTab(t, tb.name+"r", srv, store, rng.Uint64())
			tabs[i].apply(tabs[i].c.Start())
		case 9:
			tb.apply(tb.c.Sync())
		case 10: // this socket misses the next message
			if tb.conn != nil {
				tb.conn.drop[uint64(len(srv.msgs)+1)] = true
			}
		case 11: // a duplicate of a stored message
			if tb.conn != nil && tb.conn.welcomed && len(srv.msgs) > 0 {
				m := srv.msgs[rng.IntN(len(srv.msgs))]
				tb.conn.inbox = append(tb.conn.inbox, Encode(&m.msg))
			}
		case 12:
			clock.Advance(Span(rng.IntN(5000)) * Millisecond)
			tb.apply(tb.c.Tick())
		case 13: // the bot platform fails a stored message
			if len(srv.msgs) > 0 {
				if m := srv.msgs[rng.IntN(len(srv.msgs))]; m.msg.From == "user" {
					srv.status(m.msg.ClientID, StateFailed, "upstream_unavailable")
				}
			}
		case 14: // the visitor retries what shows as failed
			for _, e := range tb.c.Entries() {
				if e.CanRetry() {
					tb.apply(tb.c.Retry(e.ClientID))
				}
			}
		case 15: // the panel opens or closes
			tb.apply(tb.c.SetOpen(!tb.c.open, true))
		}
		for _, tb := range tabs {
			if tb.hungUp { // the browser closes it; onclose follows
				tb.hungUp, tb.dialing = false, false
				tb.lose(CloseNormal)
			}
		}
	}
	for _, f := range srv.received {
		switch f := f.(type) {
		case *Hello:
			if f.After > 0 {
				simStats.afterHellos++
			}
		case *Send, *Postback:
			simStats.sends++
		}
	}
	simStats.typed += len(typed)

	// Settle: no more limits; every tab reconnects on a clean socket,
	// adopts what is stored, and runs until quiet.
	srv.limit, srv.startLimit = nil, nil
	for round := 0; round < 3; round++ {
		for _, tb := range tabs {
			if st := tb.c.Conn(); tb.conn != nil || st == ConnConnecting || st == ConnHandshake {
				tb.lose(CloseAbnormal)
			}
			tb.dialing = false
			tb.apply(tb.c.Sync())
			for i := 0; !tb.dialing; i++ {
				if i > 20 {
					t.Fatalf("seed %d: %s never dials", seed, tb.name)
				}
				if tb.wake == 0 {
					tb.apply(tb.c.Tick())
					continue
				}
				clock.Advance(tb.wake)
				tb.apply(tb.c.Tick())
			}
			tb.connect()
		}
		for _, tb := range tabs {
			tb.pump()
		}
	}
	// Let timers run out (rate-limit waits, read markers, typing).
	for k := 0; k < 50; k++ {
		for _, tb := range tabs {
			if tb.wake > 0 {
				clock.Advance(tb.wake)
				tb.apply(tb.c.Tick())
			}
			if tb.dialing {
				tb.connect()
			}
			tb.pump()
		}
	}
	for _, id := range typed {
		if c := srv.count(id); c != 1 {
			t.Fatalf("seed %d: message %s stored %d times", seed, id, c)
		}
	}
	for _, tb := range tabs {
		es := tb.c.Entries()
		if len(es) != len(srv.msgs) {
			t.Fatalf("seed %d: %s shows %d entries, server has %d: %q", seed, tb.name, len(es), len(srv.msgs), tb.texts())
		}
		for k, e := range es {
			m := srv.msgs[k].msg
			if e.Seq != m.Seq || e.Body.Summary() != m.Body.Summary() || e.ClientID != m.ClientID {
				t.Fatalf("seed %d: %s entry %d = %d %q, server %d %q", seed, tb.name, k, e.Seq, e.Body.Summary(), m.Seq, m.Body.Summary())
			}
			if e.Mine() && e.State == StateSending {
				t.Fatalf("seed %d: %s entry %d still sending", seed, tb.name, k)
			}
		}
		if len(tb.c.queue) != 0 {
			t.Fatalf("seed %d: %s queue holds %d", seed, tb.name, len(tb.c.queue))
		}
	}
	if s, ok := store.Get("porthole:acme:outbox"); ok {
		t.Fatalf("seed %d: stored outbox left: %s", seed, s)
	}
}
