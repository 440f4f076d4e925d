package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
)

// This file tests what several processes sharing one store rely on: the
// outbox claims (Claim, Unclaim, Unclaimed) and CompareAndSetAttr.

// claimer returns a function that claims c for owner until a time and
// checks the answer.
func claimer(t *testing.T, s store.Store, c string) func(owner string, until time.Time, want bool) {
	return func(owner string, until time.Time, want bool) {
		t.Helper()
		got, err := s.Claim(t.Context(), c, owner, until)
		if err != nil || got != want {
			t.Fatalf("Claim(%s, %q, %v) = %v, %v; want %v", c, owner, until, got, err, want)
		}
	}
}

func unclaim(t *testing.T, s store.Store, c, owner string) {
	t.Helper()
	if err := s.Unclaim(t.Context(), c, owner); err != nil {
		t.Fatalf("Unclaim(%s, %q): %v", c, owner, err)
	}
}

func unclaimed(t *testing.T, s store.Store, now time.Time, limit int) []string {
	t.Helper()
	ids, err := s.Unclaimed(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("Unclaimed(%v, %d): %v", now, limit, err)
	}
	return ids
}

// pending appends a Pending user message at the given time.
func pending(t *testing.T, s store.Store, c string, at time.Time) store.Message {
	t.Helper()
	return add(t, s, store.Message{Conversation: c, From: store.FromUser, At: at, State: store.Pending})
}

// testClaim: one owner at a time, renewal by the same owner (longer or
// shorter), Unclaim by the owner only, and the errors.
func testClaim(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	pending(t, s, c.ID, time.Time{})
	claim := claimer(t, s, c.ID)
	// Whole milliseconds, the precision of stored times.
	now := time.Now().Truncate(time.Millisecond)
	hour := now.Add(time.Hour)

	claim("a", hour, true)
	claim("b", hour, false)
	claim("b", hour.Add(time.Hour), false)
	claim("a", hour, true) // renewed, the same until

	// Renewal extends the lease...
	claim("a", now.Add(2*time.Hour), true)
	if ids := unclaimed(t, s, now.Add(90*time.Minute), 10); len(ids) != 0 {
		t.Errorf("Unclaimed after the lease was extended past it = %v, want none", ids)
	}
	// ...and shortens it.
	claim("a", now.Add(30*time.Minute), true)
	if ids := unclaimed(t, s, now.Add(45*time.Minute), 10); !slices.Equal(ids, []string{c.ID}) {
		t.Errorf("Unclaimed after the lease was shortened before it = %v, want [%s]", ids, c.ID)
	}
	claim("b", hour, false)

	unclaim(t, s, c.ID, "b") // not b's: a no-op
	claim("b", hour, false)
	unclaim(t, s, c.ID, "a") // handed back at once
	claim("b", hour, true)
	claim("a", hour, false)

	// Another conversation is claimed on its own.
	d := conv(t, s, "bot", "w")
	claimer(t, s, d.ID)("a", hour, true)
	claim("a", hour, false)

	for _, id := range []string{noID, "nope", ""} {
		_, err := s.Claim(ctx, id, "a", hour)
		isNotFound(t, fmt.Sprintf("Claim(%q)", id), err)
		if err := s.Unclaim(ctx, id, "a"); err != nil {
			t.Errorf("Unclaim(%q) of an unknown conversation: %v, want a no-op", id, err)
		}
	}
	if ok, err := s.Claim(ctx, d.ID, "", hour); err == nil || ok {
		t.Errorf("Claim with an empty owner = %v, %v; want an error", ok, err)
	}
}

// testClaimExpiry: a claim that has run out (its until is not after now)
// is no claim: another owner takes the conversation, and Unclaimed lists
// it, which is how a dead process's work is found.
func testClaimExpiry(t *testing.T, s store.Store) {
	c := conv(t, s, "bot", "v")
	pending(t, s, c.ID, time.Time{})
	claim := claimer(t, s, c.ID)
	now := time.Now().Truncate(time.Millisecond)

	claim("a", now.Add(-time.Minute), true) // taken, and run out already
	claim("b", now.Add(time.Hour), true)
	claim("a", now.Add(time.Hour), false)

	until := now.Add(time.Hour)
	claim("b", until, true)
	for _, tc := range []struct {
		at   time.Time
		want []string
	}{
		{now, nil},
		{until.Add(-time.Millisecond), nil},
		{until, []string{c.ID}}, // valid only while until is after now
		{until.Add(time.Hour), []string{c.ID}},
	} {
		if ids := unclaimed(t, s, tc.at, 10); !slices.Equal(ids, tc.want) {
			t.Errorf("Unclaimed(%v) with a claim until %v = %v, want %v", tc.at, until, ids, tc.want)
		}
	}

	// The owner hands a lease back by shortening it into the past.
	claim("b", now.Add(-time.Millisecond), true)
	claim("a", now.Add(time.Hour), true)
}

// testClaimRace: of many owners claiming one conversation at once, exactly
// one wins, and the claim is then that one's.
func testClaimRace(t *testing.T, s store.Store) {
	const n = 16
	c := conv(t, s, "bot", "v")
	until := time.Now().Add(time.Hour)
	won := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ok, err := s.Claim(t.Context(), c.ID, fmt.Sprint("owner", i), until)
			if err != nil {
				t.Error(err)
			}
			won[i] = ok
		})
	}
	wg.Wait()
	winner := slices.Index(won, true)
	if winner < 0 || slices.Index(won[winner+1:], true) >= 0 {
		t.Fatalf("racing claims won: %v; want exactly one", won)
	}
	claim := claimer(t, s, c.ID)
	for i := range n {
		claim(fmt.Sprint("owner", i), until, i == winner)
	}
}

// testUnclaimed: conversations with pending messages and no valid claim,
// ordered by their oldest pending message, up to the limit.
func testUnclaimed(t *testing.T, s store.Store) {
	ctx := t.Context()
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	a, b, c, d := conv(t, s, "bot", "a"), conv(t, s, "bot", "b"), conv(t, s, "bot", "c"), conv(t, s, "bot", "d")
	pending(t, s, c.ID, at(1))
	first := pending(t, s, a.ID, at(2))
	pending(t, s, b.ID, at(3))
	pending(t, s, a.ID, at(4)) // a is ordered by its oldest, at(2)
	pending(t, s, d.ID, at(5))
	pending(t, s, c.ID, at(6))
	// Conversations with nothing pending are never listed.
	idle := conv(t, s, "bot", "idle")
	add(t, s, store.Message{Conversation: idle.ID, From: store.FromBot, At: at(0)})
	add(t, s, store.Message{Conversation: idle.ID, From: store.FromUser, At: at(0), State: store.Failed, Reason: "r"})
	done := pending(t, s, idle.ID, at(0))
	if _, err := s.SetState(ctx, idle.ID, done.Seq, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	conv(t, s, "bot", "empty")

	now := time.Now()
	check := func(limit int, want ...store.Conversation) {
		t.Helper()
		var ids []string
		for _, c := range want {
			ids = append(ids, c.ID)
		}
		if got := unclaimed(t, s, now, limit); !slices.Equal(got, ids) {
			t.Errorf("Unclaimed(limit %d) =\n%v, want\n%v", limit, got, ids)
		}
	}
	check(100, c, a, b, d)
	check(2, c, a)
	check(0)

	claimer(t, s, a.ID)("x", now.Add(time.Hour), true)        // valid: skipped
	claimer(t, s, d.ID)("x", now.Add(-time.Second), true)     // run out: listed
	claimer(t, s, idle.ID)("y", now.Add(-time.Second), true)  // nothing pending
	claimer(t, s, c.ID)("y", now.Add(time.Millisecond), true) // valid at now
	check(100, b, d)
	check(1, b)

	// Delivering a's oldest message orders it by the next one.
	unclaim(t, s, a.ID, "x")
	check(100, a, b, d)
	if _, err := s.SetState(ctx, a.ID, first.Seq, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	check(100, b, a, d)
	// Nothing pending any more: no longer listed, claimed or not.
	if _, err := s.SetState(ctx, b.ID, 1, store.Failed, "r"); err != nil {
		t.Fatal(err)
	}
	check(100, a, d)
}

// testPruneClaims: Prune deletes a conversation with its claim, and keeps
// the claims of the conversations it keeps.
func testPruneClaims(t *testing.T, s store.Store) {
	ctx := t.Context()
	hour := time.Now().Add(time.Hour)
	old := conv(t, s, "bot", "old")
	pending(t, s, old.ID, time.Time{})
	claimer(t, s, old.ID)("a", hour, true)
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	keep := conv(t, s, "bot", "keep")
	pending(t, s, keep.ID, time.Time{})
	claimer(t, s, keep.ID)("a", hour, true)

	if n, err := s.Prune(ctx, cutoff); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	_, err := s.Claim(ctx, old.ID, "b", hour)
	isNotFound(t, "Claim of a pruned conversation", err)
	if err := s.Unclaim(ctx, old.ID, "a"); err != nil {
		t.Errorf("Unclaim of a pruned conversation: %v", err)
	}
	if ids := unclaimed(t, s, hour.Add(time.Hour), 10); !slices.Equal(ids, []string{keep.ID}) {
		t.Errorf("Unclaimed after Prune = %v, want [%s]", ids, keep.ID)
	}
	claimer(t, s, keep.ID)("b", hour, false)
}

// testCompareAndSetAttr: set when absent, refused when the value is not
// the expected one, replace, delete.
func testCompareAndSetAttr(t *testing.T, s store.Store) {
	ctx := t.Context()
	c, other := conv(t, s, "bot", "v"), conv(t, s, "bot", "w")
	cas := func(key, old, value string, want bool) {
		t.Helper()
		got, err := s.CompareAndSetAttr(ctx, c.ID, key, old, value)
		if err != nil || got != want {
			t.Fatalf("CompareAndSetAttr(%q, %q, %q) = %v, %v; want %v", key, old, value, got, err, want)
		}
	}
	get := func(key, want string) {
		t.Helper()
		if v, err := s.Attr(ctx, c.ID, key); err != nil || v != want {
			t.Fatalf("Attr(%q) = %q, %v; want %q", key, v, err, want)
		}
	}
	cas("k", "", "1", true) // absent
	get("k", "1")
	cas("k", "", "2", false) // not absent any more
	cas("k", "0", "2", false)
	get("k", "1")
	cas("k", "1", "2", true)
	get("k", "2")
	cas("k", "2", "2", true) // the same value
	cas("k", "2", "", true)  // deleted
	get("k", "")
	cas("k", "2", "3", false)
	cas("k", "", "", true) // absent, and stays so
	get("k", "")
	if err := s.SetAttr(ctx, c.ID, "set", "s"); err != nil {
		t.Fatal(err)
	}
	cas("set", "s", "t", true) // sees what SetAttr stored
	cas("k", "", "x", true)
	get("set", "t")
	if v, err := s.Attr(ctx, other.ID, "k"); err != nil || v != "" {
		t.Errorf("Attr of another conversation = %q, %v", v, err)
	}
	for _, id := range []string{noID, "nope"} {
		_, err := s.CompareAndSetAttr(ctx, id, "k", "", "v")
		isNotFound(t, fmt.Sprintf("CompareAndSetAttr(%q)", id), err)
	}
}

// testCompareAndSetAttrRace: of many writers setting an absent key at once
// exactly one wins; and a counter that writers increment by reading it and
// compare-and-setting loses no increment.
func testCompareAndSetAttrRace(t *testing.T, s store.Store) {
	const n = 8
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	won := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ok, err := s.CompareAndSetAttr(ctx, c.ID, "start", "", fmt.Sprint(i))
			if err != nil {
				t.Error(err)
			}
			won[i] = ok
		})
	}
	wg.Wait()
	winner := slices.Index(won, true)
	if winner < 0 || slices.Index(won[winner+1:], true) >= 0 {
		t.Fatalf("racing CompareAndSetAttr won: %v; want exactly one", won)
	}
	if v, err := s.Attr(ctx, c.ID, "start"); err != nil || v != fmt.Sprint(winner) {
		t.Errorf("Attr after the race = %q, %v; want the winner's %d", v, err, winner)
	}

	const each = 5
	for range n {
		wg.Go(func() {
			for range each {
				for {
					v, err := s.Attr(ctx, c.ID, "counter")
					if err != nil {
						t.Error(err)
						return
					}
					i, _ := strconv.Atoi(v) // "" is 0
					ok, err := s.CompareAndSetAttr(ctx, c.ID, "counter", v, strconv.Itoa(i+1))
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	if v, err := s.Attr(ctx, c.ID, "counter"); err != nil || v != strconv.Itoa(n*each) {
		t.Errorf("counter after %d increments = %q, %v", n*each, v, err)
	}
}
