package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
)

// testList: List pages through one bot's conversations, newest update
// first, each once, whatever their order of creation.
func testList(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []string // newest first
	for i := range 7 {
		c := conv(t, s, "bot", fmt.Sprint("v", i))
		want = append([]string{c.ID}, want...)
		time.Sleep(2 * time.Millisecond) // distinct Updated, in whole milliseconds
	}
	conv(t, s, "other", "v0")
	// Writing to the oldest makes it the newest.
	oldest := want[len(want)-1]
	time.Sleep(2 * time.Millisecond)
	add(t, s, store.Message{Conversation: oldest, From: store.FromBot, Body: text("hi")})
	want = append([]string{oldest}, want[:len(want)-1]...)

	var got []string
	var after store.Cursor
	for page := 0; ; page++ {
		cs, err := s.List(ctx, "bot", after, 3)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, c := range cs {
			if c.Bot != "bot" {
				t.Fatalf("List(bot) returned a conversation of %q", c.Bot)
			}
			got = append(got, c.ID)
		}
		if len(cs) < 3 {
			break
		}
		last := cs[len(cs)-1]
		after = store.Cursor{Updated: last.Updated, ID: last.ID}
		if page > 5 {
			t.Fatal("List does not come to an end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List pages = %v, want %v", got, want)
	}
	if cs, err := s.List(ctx, "nobody", store.Cursor{}, 10); err != nil || len(cs) != 0 {
		t.Errorf("List of a bot without conversations = %v, %v", cs, err)
	}
}

// testAttrs: Attrs returns every attribute, and nothing deleted.
func testAttrs(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	for k, v := range map[string]string{"a": "1", "b": "two", "gone": "x"} {
		if err := s.SetAttr(ctx, c.ID, k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAttr(ctx, c.ID, "gone", ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.Attrs(ctx, c.ID)
	if err != nil || len(got) != 2 || got["a"] != "1" || got["b"] != "two" {
		t.Errorf("Attrs = %v, %v; want a=1 b=two", got, err)
	}
	_, err = s.Attrs(ctx, noID)
	isNotFound(t, "Attrs of an unknown conversation", err)
}

// testErase: Erase deletes one conversation with everything of it, at
// once, and nothing of another.
func testErase(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := conv(t, s, "bot", "v")
	keep := conv(t, s, "bot", "w")
	for _, id := range []string{c.ID, keep.ID} {
		add(t, s, store.Message{Conversation: id, ClientID: "m1", From: store.FromUser, Body: text("secret"), State: store.Pending})
		if err := s.SetAttr(ctx, id, "session", `{"plan":"pro"}`); err != nil {
			t.Fatal(err)
		}
		if err := s.Link(ctx, "bot", "ref-"+id, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Claim(ctx, id, "owner", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Erase(ctx, c.ID); err != nil {
		t.Fatalf("Erase: %v", err)
	}
	_, err := s.Get(ctx, c.ID)
	isNotFound(t, "Get after Erase", err)
	_, err = s.Find(ctx, "bot", "v")
	isNotFound(t, "Find of the erased conversation's key", err)
	_, err = s.Resolve(ctx, "bot", "ref-"+c.ID)
	isNotFound(t, "Resolve of the erased conversation's link", err)
	if ms, err := s.Read(ctx, c.ID, 0, 10); err == nil && len(ms) > 0 {
		t.Errorf("Read after Erase = %v", ms)
	}
	for _, m := range outbox(t, s, 10) {
		if m == key(store.Message{Conversation: c.ID, Seq: 1}) {
			t.Error("the erased conversation's message is still on the outbox")
		}
	}
	if ids, err := s.Unclaimed(ctx, time.Now().Add(time.Hour), 10); err != nil || len(ids) != 1 || ids[0] != keep.ID {
		t.Errorf("Unclaimed after Erase = %v, %v; want only %s", ids, err, keep.ID)
	}
	err = s.Erase(ctx, c.ID)
	isNotFound(t, "a second Erase", err)
	// The key starts afresh; the other conversation is whole.
	again, created, err := s.Conversation(ctx, "bot", "v")
	if err != nil || !created || again.ID == c.ID {
		t.Errorf("Conversation for the erased key = %+v, created %v, %v; want a new one", again, created, err)
	}
	if ms := read(t, s, keep.ID, 0, 10); len(ms) != 1 {
		t.Errorf("the other conversation lost messages: %v", ms)
	}
	if v, err := s.Attr(ctx, keep.ID, "session"); err != nil || v == "" {
		t.Errorf("the other conversation lost its attribute: %q, %v", v, err)
	}
	if id, err := s.Resolve(ctx, "bot", "ref-"+keep.ID); err != nil || id != keep.ID {
		t.Errorf("the other conversation lost its link: %q, %v", id, err)
	}
}
