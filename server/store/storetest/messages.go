package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
)

func testAppendSeq(t *testing.T, s store.Store) {
	c := conv(t, s, "bot", "v")
	ids := map[string]bool{}
	for i := uint64(1); i <= 5; i++ {
		in := store.Message{Conversation: c.ID, From: store.FromBot, Body: text(fmt.Sprint(i))}
		m := add(t, s, in)
		if m.Seq != i || m.Conversation != c.ID || m.ID == "" || ids[m.ID] {
			t.Errorf("append %d: seq %d, conversation %s, id %q", i, m.Seq, m.Conversation, m.ID)
		}
		if m.At.IsZero() || !m.At.Equal(m.At.Truncate(time.Millisecond)) || m.At.Location() != time.UTC {
			t.Errorf("append %d: At %v is not UTC milliseconds", i, m.At)
		}
		if !bytes.Equal(m.Body, in.Body) || m.From != store.FromBot {
			t.Errorf("append %d: %+v", i, m)
		}
		ids[m.ID] = true
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 6789012, time.FixedZone("x", 3600))
	m := add(t, s, store.Message{Conversation: c.ID, ID: "given", At: at, From: store.FromUser})
	if m.Seq != 6 || m.ID != "given" || !m.At.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("given ID and At: %+v", m)
	}
	msgs := read(t, s, c.ID, 0, 100)
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Errorf("Read[%d].Seq = %d", i, m.Seq)
		}
	}
	if len(msgs) != 6 {
		t.Errorf("Read returned %d messages, want 6", len(msgs))
	}
}

func testAppendIdempotent(t *testing.T, s store.Store) {
	c := conv(t, s, "bot", "v")
	first := add(t, s, store.Message{Conversation: c.ID, ClientID: "a", From: store.FromUser, Body: text("one"), State: store.Pending})
	again, dup, err := s.Append(t.Context(), store.Message{Conversation: c.ID, ClientID: "a", From: store.FromUser, Body: text("two")})
	if err != nil || !dup {
		t.Fatalf("duplicate Append: dup %v, err %v", dup, err)
	}
	sameMessage(t, again, first)
	if m := add(t, s, store.Message{Conversation: c.ID, From: store.FromBot}); m.Seq != 2 {
		t.Errorf("seq after a duplicate = %d, want 2", m.Seq)
	}
	for range 2 { // an empty ClientID never deduplicates
		add(t, s, store.Message{Conversation: c.ID, From: store.FromBot, Body: text("same")})
	}
	if msgs := read(t, s, c.ID, 0, 100); len(msgs) != 4 || !bytes.Equal(msgs[0].Body, text("one")) {
		t.Errorf("Read after duplicates: %d messages, first %s", len(msgs), msgs[0].Body)
	}
	if got := outbox(t, s, 10); len(got) != 1 || got[0] != key(first) {
		t.Errorf("Outbox = %v, want [%s]", got, key(first))
	}
	other := conv(t, s, "bot", "w")
	if m := add(t, s, store.Message{Conversation: other.ID, ClientID: "a"}); m.Seq != 1 {
		t.Errorf("same ClientID in another conversation: seq %d, want 1", m.Seq)
	}
}

func testAppendNotFound(t *testing.T, s store.Store) {
	for _, id := range []string{noID, "nope", ""} {
		_, _, err := s.Append(t.Context(), store.Message{Conversation: id, From: store.FromUser, ClientID: "x"})
		isNotFound(t, fmt.Sprintf("Append to %q", id), err)
	}
	if got := outbox(t, s, 10); len(got) != 0 {
		t.Errorf("Outbox = %v after failed appends", got)
	}
}

func testRead(t *testing.T, s store.Store) {
	c := conv(t, s, "bot", "v")
	var all []store.Message
	for i := range 10 {
		all = append(all, add(t, s, store.Message{
			Conversation: c.ID, ClientID: fmt.Sprint("c", i), From: store.FromUser,
			Body: text(fmt.Sprint(i)), Payload: fmt.Sprint("p", i), State: store.Failed, Reason: "r",
		}))
	}
	check := func(after uint64, limit int, want []store.Message) {
		t.Helper()
		got := read(t, s, c.ID, after, limit)
		if len(got) != len(want) {
			t.Fatalf("Read(after %d, limit %d) returned %d messages, want %d", after, limit, len(got), len(want))
		}
		for i := range got {
			sameMessage(t, got[i], want[i])
		}
	}
	check(0, 100, all)
	check(0, 10, all)
	check(3, 4, all[3:7])
	check(8, 5, all[8:])
	check(10, 5, nil)
	check(1000, 5, nil)
	check(0, 0, nil)
	_, err := s.Read(t.Context(), noID, 0, 10)
	isNotFound(t, "Read of an unknown conversation", err)
}

func testLastUpdated(t *testing.T, s store.Store) {
	c := conv(t, s, "bot", "v")
	prev := c
	for i := uint64(1); i <= 3; i++ {
		time.Sleep(3 * time.Millisecond)
		m := add(t, s, store.Message{Conversation: c.ID, From: store.FromBot})
		got, err := s.Get(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Last != i || !got.Updated.After(prev.Updated) || got.Updated.Before(m.At) || !got.Created.Equal(c.Created) {
			t.Errorf("after append %d: %+v (before %+v, message at %v)", i, got, prev, m.At)
		}
		prev = got
	}
}

func testStateOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	user := add(t, s, store.Message{Conversation: c.ID, From: store.FromUser, Body: text("hi"), State: store.Pending})
	add(t, s, store.Message{Conversation: c.ID, From: store.FromBot, Body: text("hello")})
	add(t, s, store.Message{Conversation: c.ID, From: store.FromUser, State: store.Failed, Reason: "late"})
	want := []string{key(user)}
	if got := outbox(t, s, 10); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Outbox = %v, want %v", got, want)
	}
	set := func(state store.State, reason string, inOutbox bool) {
		t.Helper()
		m, err := s.SetState(ctx, c.ID, user.Seq, state, reason)
		if err != nil {
			t.Fatalf("SetState(%s): %v", state, err)
		}
		want := user
		want.State, want.Reason = state, reason
		sameMessage(t, m, want)
		sameMessage(t, read(t, s, c.ID, 0, 1)[0], want)
		if got := outbox(t, s, 10); (len(got) == 1) != inOutbox {
			t.Errorf("after SetState(%s): Outbox = %v", state, got)
		}
	}
	set(store.Delivered, "", false)
	set(store.Pending, "", true)
	set(store.Pending, "", true)
	set(store.Failed, "timeout", false)
	set(store.Pending, "", true)
	set(store.Pending, "timeout", true) // failed for the visitor, still retried: its reason is kept
	set(store.Pending, "", true)
	set(store.Failed, "refused", false)

	_, err := s.SetState(ctx, c.ID, 99, store.Delivered, "")
	isNotFound(t, "SetState of an unknown seq", err)
	_, err = s.SetState(ctx, c.ID, 0, store.Delivered, "")
	isNotFound(t, "SetState of seq 0", err)
	_, err = s.SetState(ctx, noID, 1, store.Delivered, "")
	isNotFound(t, "SetState in an unknown conversation", err)
	if _, err := s.SetState(ctx, c.ID, user.Seq, "bogus", ""); err == nil {
		t.Error("SetState to an invalid state succeeded")
	}
}

func testOutboxOrder(t *testing.T, s store.Store) {
	a, b := conv(t, s, "bot", "a"), conv(t, s, "bot", "b")
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var want []string
	for i, c := range []store.Conversation{a, b, a, b, b, a} {
		m := add(t, s, store.Message{Conversation: c.ID, From: store.FromUser, At: base.Add(time.Duration(i) * time.Second), State: store.Pending})
		want = append(want, key(m))
	}
	add(t, s, store.Message{Conversation: a.ID, From: store.FromBot})
	if got := outbox(t, s, 100); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Outbox =\n%v, want\n%v", got, want)
	}
	if got := outbox(t, s, 2); fmt.Sprint(got) != fmt.Sprint(want[:2]) {
		t.Errorf("Outbox(2) = %v, want %v", got, want[:2])
	}
	if got := outbox(t, s, 0); len(got) != 0 {
		t.Errorf("Outbox(0) = %v", got)
	}
}

// testAppendRace appends from many goroutines into one conversation, each
// ClientID twice from two goroutines at about the same time.
func testAppendRace(t *testing.T, s store.Store) {
	const workers, each = 8, 50
	c := conv(t, s, "bot", "v")
	type result struct {
		m   store.Message
		dup bool
	}
	results := make([][]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Own message i, then the neighbour's message i.
				for _, owner := range []int{w, (w + 1) % workers} {
					id := fmt.Sprintf("c%d-%d", owner, i)
					m, dup, err := s.Append(t.Context(), store.Message{Conversation: c.ID, ClientID: id, From: store.FromUser, Body: text(id), State: store.Pending})
					if err != nil {
						t.Error(err)
						return
					}
					results[w] = append(results[w], result{m, dup})
				}
			}
		})
	}
	wg.Wait()

	const n = workers * each
	first := map[string]store.Message{} // by ClientID, the non-duplicate result
	seqs := map[uint64]bool{}
	dups := 0
	for _, rs := range results {
		for _, r := range rs {
			if r.dup {
				dups++
				continue
			}
			if _, ok := first[r.m.ClientID]; ok {
				t.Errorf("ClientID %s stored twice", r.m.ClientID)
			}
			if seqs[r.m.Seq] || r.m.Seq < 1 || r.m.Seq > n {
				t.Errorf("seq %d repeated or out of 1..%d", r.m.Seq, n)
			}
			first[r.m.ClientID], seqs[r.m.Seq] = r.m, true
		}
	}
	if len(first) != n || dups != n {
		t.Errorf("%d stored and %d duplicates, want %d of each", len(first), dups, n)
	}
	for _, rs := range results {
		for _, r := range rs {
			if f := first[r.m.ClientID]; r.dup && (f.Seq != r.m.Seq || f.ID != r.m.ID) {
				t.Errorf("duplicate of %s returned seq %d id %s, stored as seq %d id %s", r.m.ClientID, r.m.Seq, r.m.ID, f.Seq, f.ID)
			}
		}
	}
	msgs := read(t, s, c.ID, 0, 2*n)
	if len(msgs) != n {
		t.Fatalf("Read returned %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || m.ID != first[m.ClientID].ID {
			t.Errorf("Read[%d] = seq %d, ClientID %s", i, m.Seq, m.ClientID)
		}
	}
	if got, err := s.Get(t.Context(), c.ID); err != nil || got.Last != n {
		t.Errorf("Get after the race = %+v, %v; want Last %d", got, err, n)
	}
	if got := outbox(t, s, 2*n); len(got) != n {
		t.Errorf("Outbox has %d messages, want %d", len(got), n)
	}
}

// testPending: Pending lists one conversation's pending seqs, lowest
// first, and follows SetState; the clock plays no part (a message stored
// by a process whose clock is behind still comes in seq order).
func testPending(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	other := conv(t, s, "bot", "w")
	now := time.Now()
	for i, at := range []time.Time{now, now.Add(-time.Hour), now.Add(time.Minute), now.Add(-time.Minute)} {
		add(t, s, store.Message{Conversation: c.ID, From: store.FromUser, Body: text(fmt.Sprint(i)), At: at, State: store.Pending})
	}
	add(t, s, store.Message{Conversation: c.ID, From: store.FromBot, Body: text("bot")})
	add(t, s, store.Message{Conversation: other.ID, From: store.FromUser, Body: text("else"), State: store.Pending})
	pending := func(limit int) string {
		t.Helper()
		seqs, err := s.Pending(ctx, c.ID, limit)
		if err != nil {
			t.Fatalf("Pending(%d): %v", limit, err)
		}
		return fmt.Sprint(seqs)
	}
	if got := pending(10); got != "[1 2 3 4]" {
		t.Errorf("Pending = %s, want [1 2 3 4]", got)
	}
	if got := pending(2); got != "[1 2]" {
		t.Errorf("Pending(2) = %s, want [1 2]", got)
	}
	if _, err := s.SetState(ctx, c.ID, 1, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetState(ctx, c.ID, 3, store.Failed, "refused"); err != nil {
		t.Fatal(err)
	}
	if got := pending(10); got != "[2 4]" {
		t.Errorf("after delivering 1 and failing 3: Pending = %s, want [2 4]", got)
	}
	if _, err := s.SetState(ctx, c.ID, 3, store.Pending, ""); err != nil {
		t.Fatal(err)
	}
	if got := pending(10); got != "[2 3 4]" {
		t.Errorf("after retrying 3: Pending = %s, want [2 3 4]", got)
	}
	if got := pending(0); got != "[]" {
		t.Errorf("Pending(0) = %s, want []", got)
	}
	_, err := s.Pending(ctx, noID, 10)
	isNotFound(t, "Pending of an unknown conversation", err)
}
