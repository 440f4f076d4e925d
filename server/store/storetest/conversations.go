package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
)

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
