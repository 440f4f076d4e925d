// Package storetest is the conformance suite of store.Store: every
// implementation runs it from its own tests, so that the service behaves
// the same on each of them.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
)

// Run runs the conformance suite against the stores made by open. Each
// subtest calls open once and expects an empty store; open should close it
// in t.Cleanup (a second Close returning store.ErrClosed is fine).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Conversation", testConversation},
		{"ConversationRace", testConversationRace},
		{"GetNotFound", testGetNotFound},
		{"Find", testFind},
		{"Rebind", testRebind},
		{"RebindPrune", testRebindPrune},
		{"AppendSeq", testAppendSeq},
		{"AppendIdempotent", testAppendIdempotent},
		{"AppendNotFound", testAppendNotFound},
		{"Read", testRead},
		{"LastUpdated", testLastUpdated},
		{"StateOutbox", testStateOutbox},
		{"OutboxOrder", testOutboxOrder},
		{"Attr", testAttr},
		{"Load", testLoad},
		{"Link", testLink},
		{"Prune", testPrune},
		{"Close", testClose},
		{"AppendRace", testAppendRace},
		{"Claim", testClaim},
		{"ClaimExpiry", testClaimExpiry},
		{"ClaimRace", testClaimRace},
		{"Unclaimed", testUnclaimed},
		{"PruneClaims", testPruneClaims},
		{"CompareAndSetAttr", testCompareAndSetAttr},
		{"CompareAndSetAttrRace", testCompareAndSetAttrRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

var idFormat = regexp.MustCompile(`^[0-9a-f]{32}$`)

// noID is well formed but names no conversation.
const noID = "0123456789abcdef0123456789abcdef"

func conv(t *testing.T, s store.Store, bot, visitor string) store.Conversation {
	t.Helper()
	c, _, err := s.Conversation(t.Context(), bot, visitor)
	if err != nil {
		t.Fatalf("Conversation(%q, %q): %v", bot, visitor, err)
	}
	return c
}

func add(t *testing.T, s store.Store, m store.Message) store.Message {
	t.Helper()
	got, dup, err := s.Append(t.Context(), m)
	if err != nil || dup {
		t.Fatalf("Append(%+v) = dup %v, err %v", m, dup, err)
	}
	return got
}

func text(s string) []byte { return []byte(`{"text":"` + s + `"}`) }

func read(t *testing.T, s store.Store, conversation string, after uint64, limit int) []store.Message {
	t.Helper()
	msgs, err := s.Read(t.Context(), conversation, after, limit)
	if err != nil {
		t.Fatalf("Read(%s, %d, %d): %v", conversation, after, limit, err)
	}
	return msgs
}

// outbox returns the Outbox as "conversation/seq" strings.
func outbox(t *testing.T, s store.Store, limit int) []string {
	t.Helper()
	msgs, err := s.Outbox(t.Context(), limit)
	if err != nil {
		t.Fatalf("Outbox(%d): %v", limit, err)
	}
	var keys []string
	for _, m := range msgs {
		if m.State != store.Pending {
			t.Errorf("Outbox has %s/%d in state %q", m.Conversation, m.Seq, m.State)
		}
		keys = append(keys, key(m))
	}
	return keys
}

func key(m store.Message) string { return fmt.Sprintf("%s/%d", m.Conversation, m.Seq) }

func isNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

// sameMessage reports the fields of got that differ from want.
func sameMessage(t *testing.T, got, want store.Message) {
	t.Helper()
	if got.Conversation != want.Conversation || got.Seq != want.Seq || got.ID != want.ID ||
		got.ClientID != want.ClientID || got.From != want.From || !got.At.Equal(want.At) ||
		!bytes.Equal(got.Body, want.Body) || got.Payload != want.Payload ||
		got.State != want.State || got.Reason != want.Reason {
		t.Errorf("message\n got %+v\nwant %+v", got, want)
	}
}

func testConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	c, created, err := s.Conversation(ctx, "bot", "v1")
	if err != nil || !created {
		t.Fatalf("first Conversation: created %v, err %v", created, err)
	}
	if !idFormat.MatchString(c.ID) {
		t.Errorf("ID %q is not 32 lowercase hex characters", c.ID)
	}
	if c.Bot != "bot" || c.Visitor != "v1" || c.Last != 0 || c.Created.IsZero() || c.Updated.Before(c.Created) {
		t.Errorf("new conversation %+v", c)
	}
	again, created, err := s.Conversation(ctx, "bot", "v1")
	if err != nil || created || again.ID != c.ID || !again.Created.Equal(c.Created) {
		t.Errorf("second Conversation = %+v, created %v, err %v; want %s not created", again, created, err, c.ID)
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil || got.ID != c.ID || got.Bot != "bot" || got.Visitor != "v1" || !got.Created.Equal(c.Created) {
		t.Errorf("Get = %+v, %v; want %+v", got, err, c)
	}
	ids := map[string]bool{c.ID: true}
	for _, bv := range [][2]string{{"bot", "v2"}, {"other", "v1"}, {"bo", "tv1"}, {"", ""}} {
		c, created, err := s.Conversation(ctx, bv[0], bv[1])
		if err != nil || !created || ids[c.ID] {
			t.Errorf("Conversation(%q, %q) = %s, created %v, err %v; want a new id", bv[0], bv[1], c.ID, created, err)
		}
		ids[c.ID] = true
	}
}

func testConversationRace(t *testing.T, s store.Store) {
	const n = 16
	var wg sync.WaitGroup
	ids := make([]string, n)
	created := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			c, made, err := s.Conversation(t.Context(), "bot", "racer")
			if err != nil {
				t.Error(err)
			}
			ids[i], created[i] = c.ID, made
		})
	}
	wg.Wait()
	made := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Errorf("racing Conversation returned ids %s and %s", ids[0], ids[i])
		}
		if created[i] {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d racing calls reported created, want 1", made)
	}
}

func testGetNotFound(t *testing.T, s store.Store) {
	for _, id := range []string{noID, "nope", "", "0123456789ABCDEF0123456789ABCDEF"} {
		_, err := s.Get(t.Context(), id)
		isNotFound(t, fmt.Sprintf("Get(%q)", id), err)
	}
	c := conv(t, s, "bot", "v")
	_, err := s.Get(t.Context(), c.ID[:31]+"x")
	isNotFound(t, "Get(mangled id)", err)
}

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

func testAttr(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := conv(t, s, "bot", "a"), conv(t, s, "bot", "b")
	get := func(c, k, want string) {
		t.Helper()
		if v, err := s.Attr(ctx, c, k); err != nil || v != want {
			t.Errorf("Attr(%s, %q) = %q, %v; want %q", c, k, v, err, want)
		}
	}
	setAttr := func(c, k, v string) {
		t.Helper()
		if err := s.SetAttr(ctx, c, k, v); err != nil {
			t.Fatalf("SetAttr(%s, %q, %q): %v", c, k, v, err)
		}
	}
	get(a.ID, "upstream", "")
	setAttr(a.ID, "upstream", "u-1")
	setAttr(a.ID, "session", `{"k":1}`)
	get(a.ID, "upstream", "u-1")
	get(a.ID, "session", `{"k":1}`)
	get(b.ID, "upstream", "")
	setAttr(a.ID, "upstream", "u-2")
	get(a.ID, "upstream", "u-2")
	setAttr(a.ID, "upstream", "")
	get(a.ID, "upstream", "")
	get(a.ID, "session", `{"k":1}`)
	setAttr(a.ID, "never-set", "")

	isNotFound(t, "SetAttr in an unknown conversation", s.SetAttr(ctx, noID, "k", "v"))
	_, err := s.Attr(ctx, noID, "k")
	isNotFound(t, "Attr in an unknown conversation", err)
}

func testLink(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := conv(t, s, "bot", "a"), conv(t, s, "bot", "b")
	resolve := func(bot, ref, want string) {
		t.Helper()
		got, err := s.Resolve(ctx, bot, ref)
		if want == "" {
			isNotFound(t, fmt.Sprintf("Resolve(%q, %q)", bot, ref), err)
		} else if err != nil || got != want {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %s", bot, ref, got, err, want)
		}
	}
	resolve("bot", "r1", "")
	for _, l := range [][3]string{{"bot", "r1", a.ID}, {"other", "r1", b.ID}, {"bot", "r2", a.ID}} {
		if err := s.Link(ctx, l[0], l[1], l[2]); err != nil {
			t.Fatalf("Link%v: %v", l, err)
		}
	}
	resolve("bot", "r1", a.ID)
	resolve("other", "r1", b.ID)
	resolve("bot", "r2", a.ID)
	resolve("bo", "tr1", "")
	if err := s.Link(ctx, "bot", "r1", b.ID); err != nil {
		t.Fatal(err)
	}
	resolve("bot", "r1", b.ID)
	isNotFound(t, "Link to an unknown conversation", s.Link(ctx, "bot", "r3", noID))
	resolve("bot", "r3", "")
}

func testPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := conv(t, s, "bot", "old")
	add(t, s, store.Message{Conversation: old.ID, ClientID: "c1", From: store.FromUser, State: store.Pending})
	add(t, s, store.Message{Conversation: old.ID, From: store.FromBot})
	empty := conv(t, s, "bot", "empty")
	for _, l := range [][2]string{{"old-ref", old.ID}, {"moved-ref", old.ID}, {"empty-ref", empty.ID}} {
		if err := s.Link(ctx, "bot", l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAttr(ctx, old.ID, "k", "v"); err != nil {
		t.Fatal(err)
	}
	busy := conv(t, s, "bot", "busy")
	add(t, s, store.Message{Conversation: busy.ID, From: store.FromBot})

	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)

	// An append after the cutoff keeps a conversation created before it.
	add(t, s, store.Message{Conversation: busy.ID, From: store.FromBot})

	keep := conv(t, s, "bot", "keep")
	kept := add(t, s, store.Message{Conversation: keep.ID, ClientID: "c1", From: store.FromUser, State: store.Pending})
	if err := s.SetAttr(ctx, keep.ID, "k", "kv"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"keep-ref", "moved-ref"} {
		if err := s.Link(ctx, "bot", ref, keep.ID); err != nil {
			t.Fatal(err)
		}
	}

	n, err := s.Prune(ctx, cutoff)
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2 (old and empty)", n, err)
	}
	for _, id := range []string{old.ID, empty.ID} {
		_, err = s.Get(ctx, id)
		isNotFound(t, "Get of a pruned conversation", err)
		_, err = s.Read(ctx, id, 0, 10)
		isNotFound(t, "Read of a pruned conversation", err)
		_, err = s.Attr(ctx, id, "k")
		isNotFound(t, "Attr of a pruned conversation", err)
		_, _, err = s.Append(ctx, store.Message{Conversation: id, From: store.FromBot})
		isNotFound(t, "Append to a pruned conversation", err)
	}
	for _, ref := range []string{"old-ref", "empty-ref"} {
		_, err = s.Resolve(ctx, "bot", ref)
		isNotFound(t, "Resolve of a pruned link "+ref, err)
	}
	if got := outbox(t, s, 10); len(got) != 1 || got[0] != key(kept) {
		t.Errorf("Outbox after Prune = %v, want [%s]", got, key(kept))
	}

	again, created, err := s.Conversation(ctx, "bot", "old")
	if err != nil || !created || again.ID == old.ID {
		t.Errorf("Conversation of a pruned visitor = %s, created %v, err %v; want a new one", again.ID, created, err)
	}
	if m := add(t, s, store.Message{Conversation: again.ID, ClientID: "c1"}); m.Seq != 1 {
		t.Errorf("first append to the new conversation: seq %d", m.Seq)
	}

	if msgs := read(t, s, keep.ID, 0, 10); len(msgs) != 1 {
		t.Errorf("kept conversation has %d messages", len(msgs))
	}
	if msgs := read(t, s, busy.ID, 0, 10); len(msgs) != 2 {
		t.Errorf("busy conversation has %d messages", len(msgs))
	}
	if v, err := s.Attr(ctx, keep.ID, "k"); err != nil || v != "kv" {
		t.Errorf("kept attr = %q, %v", v, err)
	}
	for _, ref := range []string{"keep-ref", "moved-ref"} {
		if id, err := s.Resolve(ctx, "bot", ref); err != nil || id != keep.ID {
			t.Errorf("kept link %s = %q, %v", ref, id, err)
		}
	}
	if c, created, err := s.Conversation(ctx, "bot", "keep"); err != nil || created || c.ID != keep.ID {
		t.Errorf("kept visitor got %s, created %v, err %v", c.ID, created, err)
	}
	if n, err := s.Prune(ctx, cutoff); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0", n, err)
	}
}

func testClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	add(t, s, store.Message{Conversation: c.ID, From: store.FromUser, State: store.Pending})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", what, err)
		}
	}
	_, _, err := s.Conversation(ctx, "bot", "v")
	closed("Conversation", err)
	_, err = s.Get(ctx, c.ID)
	closed("Get", err)
	_, _, err = s.Append(ctx, store.Message{Conversation: c.ID})
	closed("Append", err)
	_, err = s.Read(ctx, c.ID, 0, 10)
	closed("Read", err)
	_, err = s.SetState(ctx, c.ID, 1, store.Delivered, "")
	closed("SetState", err)
	_, err = s.Outbox(ctx, 10)
	closed("Outbox", err)
	closed("SetAttr", s.SetAttr(ctx, c.ID, "k", "v"))
	_, err = s.Attr(ctx, c.ID, "k")
	closed("Attr", err)
	_, err = s.CompareAndSetAttr(ctx, c.ID, "k", "", "v")
	closed("CompareAndSetAttr", err)
	_, err = s.Claim(ctx, c.ID, "owner", time.Now().Add(time.Hour))
	closed("Claim", err)
	closed("Unclaim", s.Unclaim(ctx, c.ID, "owner"))
	_, err = s.Unclaimed(ctx, time.Now(), 10)
	closed("Unclaimed", err)
	_, err = s.Load(ctx, c.ID, 1, "k")
	closed("Load", err)
	closed("Link", s.Link(ctx, "bot", "r", c.ID))
	_, err = s.Resolve(ctx, "bot", "r")
	closed("Resolve", err)
	_, err = s.Prune(ctx, time.Now())
	closed("Prune", err)
	closed("Close", s.Close())
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

func testFind(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Find(ctx, "bot", "v"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Find before Conversation: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Find(ctx, "bot", "v"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Find created the conversation: err = %v", err)
	}
	c := conv(t, s, "bot", "v")
	got, err := s.Find(ctx, "bot", "v")
	if err != nil || got.ID != c.ID || got.Bot != "bot" || got.Visitor != "v" {
		t.Fatalf("Find = %+v, %v; want %+v", got, err, c)
	}
	if _, err := s.Find(ctx, "other", "v"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Find for another bot: err = %v, want ErrNotFound", err)
	}
	if _, created, _ := s.Conversation(ctx, "bot", "v"); created {
		t.Fatal("Conversation after Find created a second conversation")
	}
}

// testRebind: a conversation moves from a visitor's key to a user's, is
// then found by the user's key only, refuses a key that finds another
// conversation, and can be unbound so that no key finds it.
func testRebind(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "visitor")
	add(t, s, store.Message{Conversation: c.ID, From: store.FromBot})
	got, moved, err := s.Rebind(ctx, c.ID, "user")
	if err != nil || !moved || got.ID != c.ID || got.Visitor != "user" || got.Last != 1 {
		t.Fatalf("Rebind to a free key = %+v, %v, %v; want it moved", got, moved, err)
	}
	if g, err := s.Get(ctx, c.ID); err != nil || g.Visitor != "user" {
		t.Fatalf("Get after Rebind = %+v, %v; want Visitor user", g, err)
	}
	if f, err := s.Find(ctx, "bot", "user"); err != nil || f.ID != c.ID {
		t.Fatalf("Find(user) = %+v, %v; want %s", f, err, c.ID)
	}
	_, err = s.Find(ctx, "bot", "visitor")
	isNotFound(t, "Find of the key a conversation moved away from", err)
	if again, created, err := s.Conversation(ctx, "bot", "visitor"); err != nil || !created || again.ID == c.ID {
		t.Fatalf("Conversation(visitor) after the move = %+v, %v, %v; want a new one", again, created, err)
	}
	if _, err := s.Find(ctx, "other", "user"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Rebind bound a key of another bot: %v", err)
	}

	// A key that finds another conversation stays with it.
	d := conv(t, s, "bot", "second")
	got, moved, err = s.Rebind(ctx, d.ID, "user")
	if err != nil || moved || got.ID != c.ID {
		t.Fatalf("Rebind to a taken key = %+v, %v, %v; want %s, not moved", got, moved, err, c.ID)
	}
	if f, err := s.Find(ctx, "bot", "second"); err != nil || f.ID != d.ID {
		t.Fatalf("a refused Rebind unbound its conversation: %+v, %v", f, err)
	}
	// Rebinding to the key it has is a no-op that reports moved.
	if got, moved, err := s.Rebind(ctx, c.ID, "user"); err != nil || !moved || got.ID != c.ID {
		t.Fatalf("Rebind to its own key = %+v, %v, %v", got, moved, err)
	}

	// Unbound, nobody finds it; it keeps its messages and can be bound again.
	if got, moved, err := s.Rebind(ctx, c.ID, ""); err != nil || !moved || got.Visitor != "" {
		t.Fatalf("Rebind to no key = %+v, %v, %v", got, moved, err)
	}
	_, err = s.Find(ctx, "bot", "user")
	isNotFound(t, "Find of an unbound conversation's old key", err)
	if g, err := s.Get(ctx, c.ID); err != nil || g.Last != 1 || g.Visitor != "" {
		t.Fatalf("Get of an unbound conversation = %+v, %v", g, err)
	}
	if got, moved, err := s.Rebind(ctx, c.ID, "user2"); err != nil || !moved || got.Visitor != "user2" {
		t.Fatalf("Rebind of an unbound conversation = %+v, %v, %v", got, moved, err)
	}
	_, _, err = s.Rebind(ctx, noID, "user")
	isNotFound(t, "Rebind of an unknown conversation", err)
}

// testRebindPrune: pruning a conversation that was unbound, or moved,
// never deletes the key of the conversation that has it now.
func testRebindPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := conv(t, s, "bot", "v")
	if _, _, err := s.Rebind(ctx, old.ID, ""); err != nil {
		t.Fatal(err)
	}
	moved := conv(t, s, "bot", "w")
	if _, _, err := s.Rebind(ctx, moved.ID, "u"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	fresh := conv(t, s, "bot", "v") // the same visitor key, a new conversation
	if n, err := s.Prune(ctx, cutoff); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	if f, err := s.Find(ctx, "bot", "v"); err != nil || f.ID != fresh.ID {
		t.Fatalf("Prune of an unbound conversation took the key of a live one: %+v, %v", f, err)
	}
	_, err := s.Find(ctx, "bot", "u")
	isNotFound(t, "Find of a pruned user key", err)
	if c, created, err := s.Conversation(ctx, "bot", "w"); err != nil || !created || c.ID == moved.ID {
		t.Fatalf("Conversation(w) = %+v, %v, %v; want a new one", c, created, err)
	}
}

// testLoad: Load reads the conversation, one message and the attributes
// asked for, as the separate reads would.
func testLoad(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	m := add(t, s, store.Message{Conversation: c.ID, ClientID: "c1", From: store.FromUser, Body: text("hi"), Payload: "p", State: store.Pending})
	add(t, s, store.Message{Conversation: c.ID, From: store.FromBot, Body: text("hello")})
	for k, v := range map[string]string{"a": "1", "b": "2"} {
		if err := s.SetAttr(ctx, c.ID, k, v); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Load(ctx, c.ID, 1, "a", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if l.Conversation.ID != c.ID || l.Conversation.Last != 2 || !l.HasMessage {
		t.Fatalf("Load = %+v", l)
	}
	sameMessage(t, l.Message, m)
	if len(l.Attrs) != 1 || l.Attrs["a"] != "1" {
		t.Fatalf("Load attrs = %v, want only a", l.Attrs)
	}
	for _, seq := range []uint64{0, 3} {
		l, err := s.Load(ctx, c.ID, seq)
		if err != nil || l.HasMessage || l.Conversation.ID != c.ID {
			t.Fatalf("Load(seq %d) = %+v, %v; want the conversation without a message", seq, l, err)
		}
	}
	_, err = s.Load(ctx, noID, 1)
	isNotFound(t, "Load of an unknown conversation", err)
}
