package store_test

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/server/store/storetest"
)

// openRedis opens a store over client with the given key prefix and
// closes it when the test ends; the test owns the client.
func openRedis(t testing.TB, client redis.UniversalClient, prefix string) *store.Redis {
	t.Helper()
	s, err := store.OpenRedis(client, store.RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRedis runs the conformance suite and the Redis store's own tests on
// one redis-server. The suite's stores use the default prefix on a
// flushed server.
func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client(t)
	t.Run("Suite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			if err := client.FlushAll(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			return openRedis(t, client, "")
		})
	})
	testRedis(t, func(t testing.TB) redis.UniversalClient { return srv.Client(t) })
}

// TestRedisCluster runs the conformance suite and the Redis store's own
// tests on a three-node Redis Cluster, where a conversation's keys and the
// indexes sit in different slots of different nodes. Each store has a key
// prefix of its own, which also shows that prefixes keep stores apart.
func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	waitClusterOK(t, c)
	client := c.Client(t)
	var n atomic.Int64
	t.Run("Suite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			return openRedis(t, client, fmt.Sprintf("suite%d:", n.Add(1)))
		})
	})
	testRedis(t, func(t testing.TB) redis.UniversalClient { return c.Client(t) })
}

// waitClusterOK waits until every node of c says cluster_state:ok.
// StartCluster asks one node only, and another may still answer
// CLUSTERDOWN for a moment.
func waitClusterOK(t *testing.T, c *redistest.Cluster) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range c.Nodes {
		nc := n.Client(t)
		for {
			info, err := nc.ClusterInfo(t.Context()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: the cluster is not ok: %v\n%s", n.Addr, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// testRedis runs the tests of what the suite does not cover. newClient
// returns a new client of the same Redis: a store over a client of its own
// stands for another Porthole process.
func testRedis(t *testing.T, newClient func(testing.TB) redis.UniversalClient) {
	var n atomic.Int64
	// processes opens k stores over one Redis, each with its own client,
	// sharing a fresh prefix.
	processes := func(t *testing.T, k int) []*store.Redis {
		prefix := fmt.Sprintf("own%d:", n.Add(1))
		var ss []*store.Redis
		for range k {
			ss = append(ss, openRedis(t, newClient(t), prefix))
		}
		return ss
	}
	t.Run("AppendProcesses", func(t *testing.T) { testRedisAppendProcesses(t, processes(t, 4)) })
	t.Run("ConversationRace", func(t *testing.T) { testRedisConversationRace(t, processes(t, 4)) })
	t.Run("RebindRace", func(t *testing.T) { testRedisRebindRace(t, processes(t, 4)) })
	t.Run("OutboxRace", func(t *testing.T) { testRedisOutboxRace(t, processes(t, 2)) })
	t.Run("Close", func(t *testing.T) { testRedisClose(t, newClient, fmt.Sprintf("close%d:", n.Add(1))) })
}

// testRedisAppendProcesses: goroutines of several processes append to one
// conversation, each message with a client id of its own; the seqs are
// 1..N with no hole and no repeat, and the outbox has every pending one.
func testRedisAppendProcesses(t *testing.T, ss []*store.Redis) {
	const perProcess, each = 3, 20
	ctx := t.Context()
	c, _, err := ss[0].Conversation(ctx, "bot", "v")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seqs := map[uint64]string{}
	var wg sync.WaitGroup
	for p, s := range ss {
		for g := range perProcess {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("p%d-g%d-%d", p, g, i)
					state := store.Pending
					if i%2 == 1 {
						state = store.Delivered
					}
					m, dup, err := s.Append(ctx, store.Message{Conversation: c.ID, ClientID: id, From: store.FromUser, State: state, Body: []byte(`{"text":"` + id + `"}`)})
					if err != nil || dup {
						t.Errorf("Append %s: dup %v, err %v", id, dup, err)
						return
					}
					mu.Lock()
					if other, ok := seqs[m.Seq]; ok {
						t.Errorf("seq %d given to %s and %s", m.Seq, other, id)
					}
					seqs[m.Seq] = id
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	const n = 4 * perProcess * each
	for seq := uint64(1); seq <= n; seq++ {
		if _, ok := seqs[seq]; !ok {
			t.Errorf("no message has seq %d", seq)
		}
	}
	msgs, err := ss[1].Read(ctx, c.ID, 0, 2*n)
	if err != nil || len(msgs) != n {
		t.Fatalf("Read = %d messages, %v; want %d", len(msgs), err, n)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || m.ClientID != seqs[m.Seq] {
			t.Errorf("Read[%d] = seq %d client id %s; want seq %d client id %s", i, m.Seq, m.ClientID, i+1, seqs[uint64(i+1)])
		}
	}
	if got, err := ss[2].Get(ctx, c.ID); err != nil || got.Last != n {
		t.Errorf("Get = %+v, %v; want Last %d", got, err, n)
	}
	out, err := ss[3].Outbox(ctx, 2*n)
	if err != nil || len(out) != n/2 {
		t.Fatalf("Outbox = %d messages, %v; want %d", len(out), err, n/2)
	}
	for i := 1; i < len(out); i++ {
		if out[i].At.Before(out[i-1].At) || out[i].At.Equal(out[i-1].At) && out[i].Seq < out[i-1].Seq {
			t.Errorf("Outbox out of order at %d: %d at %v after %d at %v", i, out[i].Seq, out[i].At, out[i-1].Seq, out[i-1].At)
		}
	}
}

// testRedisConversationRace: processes racing to open the conversation of
// one key make exactly one, round after round.
func testRedisConversationRace(t *testing.T, ss []*store.Redis) {
	const rounds, per = 20, 2
	for r := range rounds {
		key := fmt.Sprint("racer", r)
		var wg sync.WaitGroup
		start := make(chan struct{})
		var mu sync.Mutex
		ids := map[string]bool{}
		made := 0
		for _, s := range ss {
			for range per {
				wg.Go(func() {
					<-start
					c, created, err := s.Conversation(t.Context(), "bot", key)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					ids[c.ID] = true
					if created {
						made++
					}
				})
			}
		}
		close(start)
		wg.Wait()
		if len(ids) != 1 || made != 1 {
			t.Fatalf("round %d: racing Conversation calls returned ids %v, %d of them created; want one id, created once", r, ids, made)
		}
		for id := range ids {
			if c, err := ss[0].Find(t.Context(), "bot", key); err != nil || c.ID != id {
				t.Fatalf("round %d: Find = %+v, %v; want %s", r, c, err, id)
			}
		}
	}
}

// testRedisRebindRace: processes rebinding one conversation to different
// keys at once are served one at a time: every call moves it, and at the
// end exactly the key its record names finds it.
func testRedisRebindRace(t *testing.T, ss []*store.Redis) {
	ctx := t.Context()
	c, _, err := ss[0].Conversation(ctx, "bot", "visitor")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var keys []string
	for i, s := range ss {
		for j := range 2 {
			key := fmt.Sprintf("user%d-%d", i, j)
			keys = append(keys, key)
			wg.Go(func() {
				got, moved, err := s.Rebind(ctx, c.ID, key)
				if err != nil || !moved || got.ID != c.ID || got.Visitor != key {
					t.Errorf("Rebind to %s = %+v, moved %v, err %v", key, got, moved, err)
				}
			})
		}
	}
	wg.Wait()
	final, err := ss[1].Get(ctx, c.ID)
	if err != nil || !slices.Contains(keys, final.Visitor) {
		t.Fatalf("Get after the race = %+v, %v; want one of %v", final, err, keys)
	}
	for _, key := range append(keys, "visitor") {
		f, err := ss[2].Find(ctx, "bot", key)
		switch {
		case key == final.Visitor && (err != nil || f.ID != c.ID):
			t.Errorf("Find(%s), the final key = %+v, %v; want %s", key, f, err, c.ID)
		case key != final.Visitor && !errors.Is(err, store.ErrNotFound):
			t.Errorf("Find(%s), not the final key %s = %+v, %v; want ErrNotFound", key, final.Visitor, f, err)
		}
	}
}

// testRedisOutboxRace: one process delivers the previous message while
// another appends the next, round after round; the outbox never loses the
// conversation while it has a pending message.
func testRedisOutboxRace(t *testing.T, ss []*store.Redis) {
	ctx := t.Context()
	c, _, err := ss[0].Conversation(ctx, "bot", "v")
	if err != nil {
		t.Fatal(err)
	}
	prev, _, err := ss[0].Append(ctx, store.Message{Conversation: c.ID, From: store.FromUser, State: store.Pending})
	if err != nil {
		t.Fatal(err)
	}
	for r := range 50 {
		var next store.Message
		var wg sync.WaitGroup
		wg.Go(func() {
			var err error
			if next, _, err = ss[0].Append(ctx, store.Message{Conversation: c.ID, From: store.FromUser, State: store.Pending}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := ss[1].SetState(ctx, c.ID, prev.Seq, store.Delivered, ""); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if t.Failed() {
			return
		}
		ids, err := ss[1].Unclaimed(ctx, time.Now(), 10)
		if err != nil || !slices.Equal(ids, []string{c.ID}) {
			t.Fatalf("round %d: Unclaimed = %v, %v; want [%s] (message %d is pending)", r, ids, err, c.ID, next.Seq)
		}
		out, err := ss[0].Outbox(ctx, 10)
		if err != nil || len(out) != 1 || out[0].Seq != next.Seq {
			t.Fatalf("round %d: Outbox = %v, %v; want message %d only", r, out, err, next.Seq)
		}
		prev = next
	}
	if _, err := ss[1].SetState(ctx, c.ID, prev.Seq, store.Failed, "r"); err != nil {
		t.Fatal(err)
	}
	if ids, err := ss[0].Unclaimed(ctx, time.Now(), 10); err != nil || len(ids) != 0 {
		t.Fatalf("Unclaimed with nothing pending = %v, %v", ids, err)
	}
}

// testRedisClose: a store closes without closing the client its caller
// owns, and another store of that client goes on; with CloseClient it
// closes the client, after the calls in flight; calls racing Close either
// work or fail with ErrClosed.
func testRedisClose(t *testing.T, newClient func(testing.TB) redis.UniversalClient, prefix string) {
	ctx := t.Context()
	shared := newClient(t)
	a, b := openRedis(t, shared, prefix), openRedis(t, shared, prefix)
	c, _, err := a.Conversation(ctx, "bot", "v")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, err := a.Get(ctx, c.ID); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := shared.Ping(ctx).Err(); err != nil {
		t.Errorf("the caller's client after Close: %v", err)
	}
	if got, err := b.Get(ctx, c.ID); err != nil || got.ID != c.ID {
		t.Errorf("another store of the client after Close: %+v, %v", got, err)
	}

	owned := newClient(t)
	s, err := store.OpenRedis(owned, store.RedisOptions{Prefix: prefix, CloseClient: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var worked atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				_, _, err := s.Append(ctx, store.Message{Conversation: c.ID, From: store.FromUser, State: store.Pending})
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append racing Close: %v, want success or ErrClosed", err)
					return
				}
				worked.Add(1)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); worked.Load() < 10 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close with CloseClient: %v", err)
	}
	wg.Wait()
	if err := owned.Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Ping of a handed-over client after Close = %v, want redis.ErrClosed", err)
	}
	got, err := b.Get(ctx, c.ID)
	if err != nil || got.Last != uint64(worked.Load()) {
		t.Errorf("after Close: Last = %d, %v; want the %d appends that worked", got.Last, err, worked.Load())
	}
}

// TestOpenRedisErrors: OpenRedis refuses a prefix with a brace and says
// why when the server does not answer.
func TestOpenRedisErrors(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := store.OpenRedis(srv.Client(t), store.RedisOptions{Prefix: "a{b}:"}); err == nil {
		t.Error("OpenRedis accepted a prefix with braces")
	}
	if _, err := store.OpenRedis(nil, store.RedisOptions{}); err == nil {
		t.Error("OpenRedis accepted a nil client")
	}
	dead := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer dead.Close()
	srv.Stop()
	if _, err := store.OpenRedis(dead, store.RedisOptions{Timeout: time.Second}); err == nil {
		t.Error("OpenRedis of a stopped server succeeded")
	}
}

// TestRedisWaitsForReplicas: with Replicas set, Append returns once a
// real replica has the message, and fails with ErrNotReplicated when the
// replica is gone; the message is then on the primary, unacknowledged,
// and the resend with the same client id finds it once a replica is
// back.
func TestRedisWaitsForReplicas(t *testing.T) {
	primary := redistest.Start(t, "--repl-diskless-sync-delay", "0") // a replica syncs at once
	host, port, _ := net.SplitHostPort(primary.Addr)
	replica := redistest.Start(t, "--replicaof", host, port)
	client := primary.Client(t)
	waitReplicas := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, _ := client.Info(t.Context(), "replication").Result()
			if strings.Contains(info, fmt.Sprintf("connected_slaves:%d\r", n)) && (n == 0 || strings.Contains(info, "state=online")) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the primary does not see %d replicas:\n%s", n, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReplicas(1)
	s, err := store.OpenRedis(client, store.RedisOptions{Replicas: 1, ReplicaTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	c, _, err := s.Conversation(ctx, "bot", "v")
	if err != nil {
		t.Fatal(err)
	}
	msg := func(id string) store.Message {
		return store.Message{Conversation: c.ID, ClientID: id, From: store.FromUser, Body: []byte(`{"text":"` + id + `"}`), State: store.Pending}
	}
	if m, _, err := s.Append(ctx, msg("one")); err != nil || m.Seq != 1 {
		t.Fatalf("Append with a replica online = seq %d, %v", m.Seq, err)
	}
	if got, err := replica.Client(t).HGet(ctx, "porthole:{"+c.ID+"}:msg", "1").Result(); err != nil || got == "" {
		t.Fatalf("the replica does not hold the acknowledged message: %q, %v", got, err)
	}

	replica.Stop()
	waitReplicas(0)
	if _, _, err := s.Append(ctx, msg("two")); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("Append with no replica = %v, want ErrNotReplicated", err)
	}
	redistest.Start(t, "--replicaof", host, port)
	waitReplicas(1)
	m, dup, err := s.Append(ctx, msg("two"))
	if err != nil || !dup || m.Seq != 2 {
		t.Fatalf("the resend once a replica is back = seq %d, dup %v, %v; want the stored seq 2", m.Seq, dup, err)
	}
}
