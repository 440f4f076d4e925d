// Package storetest is the conformance suite of store.Store: every
// implementation runs it from its own tests, so that the service behaves
// the same on each of them.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
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
		{"Pending", testPending},
		{"List", testList},
		{"Attrs", testAttrs},
		{"Erase", testErase},
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
