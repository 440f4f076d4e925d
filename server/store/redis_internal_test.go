package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/porthole-chat/porthole/server/redistest"
)

// These tests write what a process that died between two steps leaves
// behind, straight into Redis, and check that the store ignores and
// repairs it as redis.go says.

const ghostID = "0123456789abcdef0123456789abcdef"

func newRedisForTest(t *testing.T) (*Redis, *redis.Client) {
	t.Helper()
	client := redistest.Start(t).Client(t)
	s, err := OpenRedis(client, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, client
}

func mustConv(t *testing.T, s *Redis, bot, key string) Conversation {
	t.Helper()
	c, _, err := s.Conversation(t.Context(), bot, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func exists(t *testing.T, rdb *redis.Client, key string) bool {
	t.Helper()
	n, err := rdb.Exists(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestRedisLeftOverVisitorKeys: a key naming a deleted conversation, or one
// whose record names another key, finds nothing and is deleted.
func TestRedisLeftOverVisitorKeys(t *testing.T) {
	s, rdb := newRedisForTest(t)
	ctx := t.Context()
	rdb.Set(ctx, s.visitorKey("bot", "ghost"), ghostID, 0)
	_, err := s.Find(ctx, "bot", "ghost")
	mustNotFound(t, "Find of a key naming a deleted conversation", err)
	if exists(t, rdb, s.visitorKey("bot", "ghost")) {
		t.Error("the left-over key was not deleted")
	}
	if c, created, err := s.Conversation(ctx, "bot", "ghost"); err != nil || !created || c.ID == ghostID {
		t.Errorf("Conversation after a left-over key = %+v, %v, %v", c, created, err)
	}

	a := mustConv(t, s, "bot", "a")
	rdb.Set(ctx, s.visitorKey("bot", "moved-away"), a.ID, 0)
	rdb.Set(ctx, s.visitorKey("other", "a"), a.ID, 0)
	for _, k := range [][2]string{{"bot", "moved-away"}, {"other", "a"}} {
		_, err = s.Find(ctx, k[0], k[1])
		mustNotFound(t, fmt.Sprintf("Find(%s/%s), a key the record does not name", k[0], k[1]), err)
	}
	if f, err := s.Find(ctx, "bot", "a"); err != nil || f.ID != a.ID {
		t.Errorf("Find(a) = %+v, %v", f, err)
	}
}

// TestRedisCrashedRebind: a Rebind that died after taking the new key
// leaves both keys finding the conversation until the next Rebind, which
// waits for a live lock and takes over one that ran out.
func TestRedisCrashedRebind(t *testing.T) {
	s, rdb := newRedisForTest(t)
	ctx := t.Context()
	c := mustConv(t, s, "bot", "visitor")
	k := s.keys(c.ID)
	past := ms(time.Now().Add(-time.Second))
	rdb.HSet(ctx, k.conv, "rlock", "dead", "runtil", past, "rto", "user")
	rdb.Set(ctx, s.visitorKey("bot", "user"), c.ID, 0)
	for _, key := range []string{"visitor", "user"} {
		if f, err := s.Find(ctx, "bot", key); err != nil || f.ID != c.ID || f.Visitor != key {
			t.Fatalf("Find(%s) after a crashed Rebind = %+v, %v", key, f, err)
		}
	}

	// A live lock of another Rebind holds this one up.
	rdb.HSet(ctx, k.conv, "rlock", "live", "runtil", ms(time.Now().Add(time.Hour)))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.Rebind(short, c.ID, "other"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Rebind while another holds the lock = %v, want it to wait until the deadline", err)
	}
	rdb.HSet(ctx, k.conv, "runtil", past) // that one died too

	got, moved, err := s.Rebind(ctx, c.ID, "final")
	if err != nil || !moved || got.Visitor != "final" {
		t.Fatalf("Rebind after crashed ones = %+v, %v, %v", got, moved, err)
	}
	for _, key := range []string{"visitor", "user", "other"} {
		_, err := s.Find(ctx, "bot", key)
		mustNotFound(t, "Find("+key+") after the Rebind", err)
	}
	if f, err := s.Find(ctx, "bot", "final"); err != nil || f.ID != c.ID {
		t.Fatalf("Find(final) = %+v, %v", f, err)
	}
	if v, err := rdb.HMGet(ctx, k.conv, "rlock", "runtil", "rto").Result(); err != nil || slices.ContainsFunc(v, func(x any) bool { return x != nil }) {
		t.Errorf("lock fields after Rebind = %v, %v; want none", v, err)
	}
}

// TestRedisLeftOverLink: a link naming a deleted conversation resolves to
// nothing and is deleted.
func TestRedisLeftOverLink(t *testing.T) {
	s, rdb := newRedisForTest(t)
	ctx := t.Context()
	rdb.Set(ctx, s.linkKey("bot", "ref"), ghostID, 0)
	_, err := s.Resolve(ctx, "bot", "ref")
	mustNotFound(t, "Resolve of a link to a deleted conversation", err)
	if exists(t, rdb, s.linkKey("bot", "ref")) {
		t.Error("the left-over link was not deleted")
	}
}

// TestRedisLeftOverOutbox: index entries without pending messages, or
// without a conversation, are never listed and are removed, unless a pin
// says a write is under way; a low score is raised to the truth.
func TestRedisLeftOverOutbox(t *testing.T) {
	s, rdb := newRedisForTest(t)
	ctx := t.Context()
	idle, busy := mustConv(t, s, "bot", "idle"), mustConv(t, s, "bot", "busy")
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := s.Append(ctx, Message{Conversation: busy.ID, From: FromUser, State: Pending, At: at}); err != nil {
		t.Fatal(err)
	}
	rdb.ZAdd(ctx, s.outboxKey(), redis.Z{Member: idle.ID}, redis.Z{Member: ghostID}, redis.Z{Member: busy.ID})
	rdb.HSet(ctx, s.pinKey(idle.ID), "writer", "1")
	for range 2 { // the second time, after the repairs
		if ids, err := s.Unclaimed(ctx, time.Now(), 10); err != nil || !slices.Equal(ids, []string{busy.ID}) {
			t.Fatalf("Unclaimed = %v, %v; want [%s]", ids, err, busy.ID)
		}
	}
	if exists(t, rdb, s.outboxKey()) && rdb.ZScore(ctx, s.outboxKey(), ghostID).Err() == nil {
		t.Error("the entry of a deleted conversation was not removed")
	}
	if err := rdb.ZScore(ctx, s.outboxKey(), idle.ID).Err(); err != nil {
		t.Errorf("a pinned entry was removed: %v", err)
	}
	if score, err := rdb.ZScore(ctx, s.outboxKey(), busy.ID).Result(); err != nil || int64(score) != ms(at) {
		t.Errorf("score of the busy entry = %v, %v; want %d", score, err, ms(at))
	}
	rdb.Del(ctx, s.pinKey(idle.ID)) // the pin runs out
	if out, err := s.Outbox(ctx, 10); err != nil || len(out) != 1 || out[0].Conversation != busy.ID {
		t.Fatalf("Outbox = %v, %v", out, err)
	}
	if err := rdb.ZScore(ctx, s.outboxKey(), idle.ID).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("the idle entry after its pin ran out: %v, want it removed", err)
	}
}

// TestRedisOutboxPages: Outbox and Unclaimed read past their first page of
// the index, also through a long run of equal scores.
func TestRedisOutboxPages(t *testing.T) {
	s, _ := newRedisForTest(t)
	ctx := t.Context()
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 40 {
		c := mustConv(t, s, "bot", fmt.Sprint("v", i))
		ids = append(ids, c.ID)
		for j := range 2 {
			if _, _, err := s.Append(ctx, Message{Conversation: c.ID, From: FromUser, State: Pending, At: base.Add(time.Duration(j) * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(ids) // equal scores: by id
	for _, id := range ids[:20] {
		if ok, err := s.Claim(ctx, id, "x", time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if got, err := s.Unclaimed(ctx, time.Now(), 5); err != nil || !slices.Equal(got, ids[20:25]) {
		t.Errorf("Unclaimed(5) =\n%v, %v; want\n%v", got, err, ids[20:25])
	}
	if got, err := s.Unclaimed(ctx, time.Now(), 100); err != nil || !slices.Equal(got, ids[20:]) {
		t.Errorf("Unclaimed(100) = %d ids, %v; want the 20 unclaimed", len(got), err)
	}
	out, err := s.Outbox(ctx, 50)
	if err != nil || len(out) != 50 {
		t.Fatalf("Outbox(50) = %d messages, %v", len(out), err)
	}
	for i, m := range out {
		want, at := ids[i%40], base
		if i >= 40 {
			at = base.Add(time.Hour)
		}
		if m.Conversation != want || !m.At.Equal(at) {
			t.Errorf("Outbox[%d] = %s at %v; want %s at %v", i, m.Conversation, m.At, want, at)
		}
	}
}

// TestRedisLeftOverUpdated: Prune raises an index score below the truth
// and keeps the conversation, and drops an entry without a record once it
// is old enough not to be a creation in progress.
func TestRedisLeftOverUpdated(t *testing.T) {
	s, rdb := newRedisForTest(t)
	ctx := t.Context()
	c := mustConv(t, s, "bot", "v")
	rdb.ZAdd(ctx, s.updatedKey(), redis.Z{Score: 1000, Member: c.ID}, redis.Z{Score: 1000, Member: ghostID})
	young := "fedcba9876543210fedcba9876543210"
	rdb.ZAdd(ctx, s.updatedKey(), redis.Z{Score: float64(ms(time.Now())), Member: young})
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 (c)", n, err)
	}
	if ids, err := rdb.ZRange(ctx, s.updatedKey(), 0, -1).Result(); err != nil || !slices.Equal(ids, []string{young}) {
		t.Errorf("updated index after Prune = %v, %v; want only the young entry", ids, err)
	}

	d := mustConv(t, s, "bot", "w")
	rdb.ZAdd(ctx, s.updatedKey(), redis.Z{Score: 1000, Member: d.ID})
	if n, err := s.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Prune of a live conversation = %d, %v", n, err)
	}
	if score, err := rdb.ZScore(ctx, s.updatedKey(), d.ID).Result(); err != nil || int64(score) != ms(d.Updated) {
		t.Errorf("score after Prune kept it = %v, %v; want %d", score, err, ms(d.Updated))
	}
}

// TestRedisPruneLeavesNothing: Prune deletes every key of a conversation,
// its index entries, and the keys of other slots that name it.
func TestRedisPruneLeavesNothing(t *testing.T) {
	s, rdb := newRedisForTest(t)
	ctx := t.Context()
	c := mustConv(t, s, "bot", "v")
	if _, _, err := s.Append(ctx, Message{Conversation: c.ID, ClientID: "x", From: FromUser, State: Pending}); err != nil {
		t.Fatal(err)
	}
	s.SetAttr(ctx, c.ID, "k", "v")
	s.Link(ctx, "bot", "ref", c.ID)
	s.Claim(ctx, c.ID, "owner", time.Now().Add(time.Hour))
	rdb.HSet(ctx, s.keys(c.ID).conv, "rlock", "dead", "runtil", 0, "rto", "user")
	rdb.Set(ctx, s.visitorKey("bot", "user"), c.ID, 0)
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if keys, err := rdb.Keys(ctx, "*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("keys after Prune: %v, %v; want none", keys, err)
	}
}

// TestRedisScriptCacheLost: after the server forgot the scripts (a
// restart, SCRIPT FLUSH), single and pipelined calls load them again.
func TestRedisScriptCacheLost(t *testing.T) {
	s, rdb := newRedisForTest(t)
	ctx := t.Context()
	c := mustConv(t, s, "bot", "v")
	rdb.ScriptFlush(ctx)
	if _, _, err := s.Append(ctx, Message{Conversation: c.ID, From: FromUser, State: Pending}); err != nil {
		t.Fatal(err)
	}
	rdb.ScriptFlush(ctx)
	if ids, err := s.Unclaimed(ctx, time.Now(), 10); err != nil || !slices.Equal(ids, []string{c.ID}) {
		t.Fatalf("Unclaimed after SCRIPT FLUSH = %v, %v", ids, err)
	}
}

// TestRedisRecordBytes: message fields with the record's separators,
// digits and bytes that are not UTF-8 come back as they went in.
func TestRedisRecordBytes(t *testing.T) {
	s, _ := newRedisForTest(t)
	ctx := t.Context()
	c := mustConv(t, s, "bot{x}", "v:1:")
	in := Message{Conversation: c.ID, ID: "3:abc", ClientID: "1:", From: FromUser, Body: []byte("12:\x00\xff{}:"), Payload: "0:", State: Failed, Reason: ":9"}
	m, _, err := s.Append(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(ctx, c.ID, 0, 1)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	g := got[0]
	if g.ID != in.ID || g.ClientID != in.ClientID || string(g.Body) != string(in.Body) || g.Payload != in.Payload || g.Reason != in.Reason || !g.At.Equal(m.At) {
		t.Errorf("Read = %+v, want %+v", g, in)
	}
	if set, err := s.SetState(ctx, c.ID, 1, Pending, ""); err != nil || string(set.Body) != string(in.Body) || set.ID != in.ID {
		t.Errorf("SetState = %+v, %v", set, err)
	}
	if f, err := s.Find(ctx, "bot{x}", "v:1:"); err != nil || f.ID != c.ID {
		t.Errorf("Find with braces and colons = %+v, %v", f, err)
	}
}
