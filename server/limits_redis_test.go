package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/porthole-chat/porthole/server/redistest"
)

// redisProcesses opens n Redis limiters with l, each over a client of its
// own, as n `porthole serve` processes on one Redis would.
type redisProcesses func(t *testing.T, n int, l Limits, heartbeat time.Duration) []*redisLimiter

func newRedisLimiters(newClient func(t *testing.T) redis.UniversalClient) redisProcesses {
	return func(t *testing.T, n int, l Limits, heartbeat time.Duration) []*redisLimiter {
		t.Helper()
		var ls []*redisLimiter
		for range n {
			rl := NewRedisLimiter(newClient(t), l, RedisLimiterOptions{Prefix: "test:" + t.Name() + ":", Heartbeat: heartbeat}).(*redisLimiter)
			t.Cleanup(func() {
				rl.Close()
				rl.mu.Lock()
				defer rl.mu.Unlock()
				if !rl.down.IsZero() {
					t.Error("a check failed on Redis and was counted in the process instead")
				}
			})
			ls = append(ls, rl)
		}
		return ls
	}
}

// limiterBackends are a single Redis and a Redis Cluster, each giving a
// new client per call.
func limiterBackends(t *testing.T) map[string]redisProcesses {
	r := redistest.Start(t)
	c := redistest.StartCluster(t)
	return map[string]redisProcesses{
		"single": newRedisLimiters(func(t *testing.T) redis.UniversalClient { return r.Client(t) }),
		"cluster": newRedisLimiters(func(t *testing.T) redis.UniversalClient {
			cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
			t.Cleanup(func() { cc.Close() })
			return cc
		}),
	}
}

// TestRedisLimits runs the Redis limiter's checks against a single Redis
// and against a three-node Redis Cluster, where the two buckets of a
// check are in different slots.
func TestRedisLimits(t *testing.T) {
	for name, open := range limiterBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("VisitorBudgetShared", func(t *testing.T) { testRedisVisitorBudgetShared(t, open) })
			t.Run("BothBucketsOrNeither", func(t *testing.T) { testRedisBothBucketsOrNeither(t, open) })
			t.Run("StartsAndRefunds", func(t *testing.T) { testRedisStartsAndRefunds(t, open) })
			t.Run("ConnectionsShared", func(t *testing.T) { testRedisConnectionsShared(t, open) })
			t.Run("HeartbeatRestoresCounts", func(t *testing.T) { testRedisHeartbeatRestoresCounts(t, open) })
		})
	}
}

// testRedisVisitorBudgetShared: a visitor's messages spread over two
// processes share one burst; another visitor has a budget of its own,
// and a refusal says how long to wait: one interval of the sustained
// rate at most.
func testRedisVisitorBudgetShared(t *testing.T, open redisProcesses) {
	ls := open(t, 2, Limits{MessagesPerMinute: 1, Burst: 4, IPMessagesPerMinute: 6000}, 0)
	ctx := t.Context()
	allowed := 0
	var wait time.Duration
	for i := range 10 {
		// A different address each time: only the visitor's bucket
		// can refuse.
		ok, w := ls[i%2].Allow(ctx, "visitor-1", fmt.Sprintf("192.0.2.%d", i+1))
		if ok {
			allowed++
		} else {
			wait = w
		}
	}
	if allowed != 4 {
		t.Fatalf("two processes allowed the visitor %d messages at once, want the one burst of 4", allowed)
	}
	if wait <= 0 || wait > time.Minute {
		t.Fatalf("a refusal said to wait %v, want up to the one minute of messages_per_minute: 1", wait)
	}
	if ok, _ := ls[1].Allow(ctx, "visitor-2", "192.0.2.1"); !ok {
		t.Fatal("another visitor was refused: the budget is the visitor's, not everyone's")
	}
}

// testRedisBothBucketsOrNeither: a message the address's bucket refuses
// takes nothing from the visitor's, and one the visitor's refuses
// takes nothing from the address's.
func testRedisBothBucketsOrNeither(t *testing.T, open redisProcesses) {
	// Burst 2 per visitor; the address's burst is 5 times that: 10.
	ls := open(t, 2, Limits{MessagesPerMinute: 1, Burst: 2, IPMessagesPerMinute: 1}, 0)
	ctx := t.Context()
	const full, other = "198.51.100.7", "198.51.100.8"
	for i := range 5 {
		for range 2 {
			if ok, _ := ls[i%2].Allow(ctx, fmt.Sprintf("filler-%d", i), full); !ok {
				t.Fatalf("filler %d refused before the address's burst of 10 was spent", i)
			}
		}
	}
	for range 3 {
		if ok, _ := ls[0].Allow(ctx, "late", full); ok {
			t.Fatal("the address's 11th message was allowed")
		}
	}
	// The refusals took nothing from "late": its burst of 2 is whole.
	for i := range 2 {
		if ok, _ := ls[1].Allow(ctx, "late", other); !ok {
			t.Fatalf("message %d of a visitor whose refusals took from its bucket anyway", i+1)
		}
	}
	if ok, _ := ls[1].Allow(ctx, "late", other); ok {
		t.Fatal("the visitor got more than its burst")
	}
	// And the visitor's refusal took nothing from the other address:
	// of its burst of 10, late's 2 are taken and the refused third is
	// not, so other visitors get exactly 8 more.
	n := 0
	for i := range 20 {
		if ok, _ := ls[i%2].Allow(ctx, fmt.Sprintf("other-%d", i), other); ok {
			n++
		}
	}
	if n != 8 {
		t.Fatalf("the other address took %d more messages, want 8 (its burst of 10 less the visitor's 2)", n)
	}
}

// testRedisStartsAndRefunds: starts from one address over two processes
// share start_burst; a refund, from either process, gives exactly one
// back however often it is called; the bot's bucket is shared by every
// address, and a start it refuses takes nothing from the address.
func testRedisStartsAndRefunds(t *testing.T, open redisProcesses) {
	ls := open(t, 2, Limits{StartsPerMinute: 1, StartBurst: 2, BotStartsPerMinute: 3}, 0)
	ctx := t.Context()
	const ip = "203.0.113.5"
	ok1, _, _ := ls[0].ReserveStart(ctx, ip, "bot-a")
	ok2, _, refund2 := ls[1].ReserveStart(ctx, ip, "bot-a")
	if !ok1 || !ok2 {
		t.Fatalf("the start burst of 2 refused a start: %v %v", ok1, ok2)
	}
	if ok, wait, _ := ls[0].ReserveStart(ctx, ip, "bot-a"); ok || wait <= 0 {
		t.Fatalf("a third start of the address over two processes: ok %v, wait %v; want refused with a wait", ok, wait)
	}
	refund2()
	refund2()
	if ok, _, _ := ls[0].ReserveStart(ctx, ip, "bot-a"); !ok {
		t.Fatal("a refunded start was not given back")
	}
	if ok, _, _ := ls[1].ReserveStart(ctx, ip, "bot-a"); ok {
		t.Fatal("a refund called twice gave back two starts")
	}
	// bot-b allows 3 a minute, from all addresses together.
	for i := range 3 {
		if ok, _, _ := ls[i%2].ReserveStart(ctx, fmt.Sprintf("203.0.113.%d", 10+i), "bot-b"); !ok {
			t.Fatalf("start %d of bot-b refused within its burst", i+1)
		}
	}
	if ok, _, _ := ls[1].ReserveStart(ctx, "203.0.113.20", "bot-b"); ok {
		t.Fatal("bot-b's fourth start, from a fresh address on the other process, was allowed")
	}
	// The refusal took nothing from 203.0.113.20: its 2 are whole.
	for i := range 2 {
		if ok, _, _ := ls[i%2].ReserveStart(ctx, "203.0.113.20", "bot-c"); !ok {
			t.Fatalf("start %d of an address a bot refused was refused: the bot's refusal took from the address", i+1)
		}
	}
}

// testRedisConnectionsShared: an address's sockets on two processes
// count against one connections_per_ip, an IPv6 /64 as one address; a
// closed socket frees its slot for the other process; a release called
// twice frees one.
func testRedisConnectionsShared(t *testing.T, open redisProcesses) {
	ls := open(t, 2, Limits{ConnectionsPerIP: 3}, 0)
	ctx := t.Context()
	ok1, rel1 := ls[0].Connect(ctx, "2001:db8:5:6::1")
	ok2, _ := ls[0].Connect(ctx, "2001:db8:5:6::2")
	ok3, _ := ls[1].Connect(ctx, "2001:db8:5:6::3")
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("sockets within the cap refused: %v %v %v", ok1, ok2, ok3)
	}
	for i, l := range ls {
		if ok, _ := l.Connect(ctx, "2001:db8:5:6::4"); ok {
			t.Fatalf("process %d took a fourth socket of the /64 while the two held three", i)
		}
	}
	if ok, _ := ls[1].Connect(ctx, "2001:db8:5:7::1"); !ok {
		t.Fatal("another /64 was refused")
	}
	rel1()
	rel1()
	if ok, _ := ls[1].Connect(ctx, "2001:db8:5:6::9"); !ok {
		t.Fatal("a socket closed on one process did not free its slot for the other")
	}
	if ok, _ := ls[1].Connect(ctx, "2001:db8:5:6::a"); ok {
		t.Fatal("a release called twice freed two slots")
	}
}

// TestRedisLimitsDeadProcess: the sockets of a process that stops
// (its heartbeat ends, nothing is released, as after SIGKILL) keep
// counting while their last heartbeat is fresh and stop counting within
// 3 heartbeats; a live process's sockets keep counting however long they
// stay open; a process that closes frees its slots at once.
func TestRedisLimitsDeadProcess(t *testing.T) {
	r := redistest.Start(t)
	open := newRedisLimiters(func(t *testing.T) redis.UniversalClient { return r.Client(t) })
	const beat = 400 * time.Millisecond
	ls := open(t, 3, Limits{ConnectionsPerIP: 2}, beat)
	ctx := t.Context()
	dead, live, closing := ls[0], ls[1], ls[2]
	for range 2 {
		if ok, _ := dead.Connect(ctx, "192.0.2.1"); !ok {
			t.Fatal("refused within the cap")
		}
		if ok, _ := live.Connect(ctx, "192.0.2.2"); !ok {
			t.Fatal("refused within the cap")
		}
		if ok, _ := closing.Connect(ctx, "192.0.2.3"); !ok {
			t.Fatal("refused within the cap")
		}
	}
	dead.halt()
	// Its last heartbeat, at most one beat ago, counts for 3 beats: its
	// sockets still count now.
	if ok, _ := live.Connect(ctx, "192.0.2.1"); ok {
		t.Fatal("a process's sockets stopped counting the moment its heartbeat did")
	}
	closing.Close()
	if ok, _ := live.Connect(ctx, "192.0.2.3"); !ok {
		t.Fatal("a process that closed still holds its sockets' slots")
	}
	// The bound is 3 beats; the slack is for a loaded machine.
	deadline := time.Now().Add(connHeartbeatTTL*beat + 5*time.Second)
	for {
		ok, _ := live.Connect(ctx, "192.0.2.1")
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead process's sockets still count %v after it stopped, want within %v", connHeartbeatTTL*beat+5*time.Second, connHeartbeatTTL*beat)
		}
		time.Sleep(beat / 4)
	}
	// The live process's sockets, held through many heartbeats' TTLs,
	// still count.
	time.Sleep(2 * connHeartbeatTTL * beat)
	if ok, _ := dead.Connect(ctx, "192.0.2.2"); ok {
		t.Fatal("a live process's sockets stopped counting although its heartbeat goes on")
	}
}

// testRedisHeartbeatRestoresCounts: when Redis loses the counts (it
// restarted without persistence, its scripts gone too), every live
// process writes its own back on its next heartbeat.
func testRedisHeartbeatRestoresCounts(t *testing.T, open redisProcesses) {
	const beat = 200 * time.Millisecond
	ls := open(t, 2, Limits{ConnectionsPerIP: 2}, beat)
	ctx := t.Context()
	for range 2 {
		if ok, _ := ls[0].Connect(ctx, "192.0.2.1"); !ok {
			t.Fatal("refused within the cap")
		}
	}
	rdb := ls[0].rdb
	key := ls[0].connKey("192.0.2.1")
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(beat + 5*time.Second)
	for {
		v, err := rdb.HGet(ctx, key, ls[0].id).Result()
		if err == nil && strings.HasPrefix(v, "2:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the count was not written back after it was lost: %q %v", v, err)
		}
		time.Sleep(beat / 4)
	}
	if ok, _ := ls[1].Connect(ctx, "192.0.2.1"); ok {
		t.Fatal("the other process took a third socket once the counts were back")
	}
}

// TestRedisLimitsWithoutRedis: while Redis does not answer, the limits
// are counted in the process (neither open nor closed): a visitor within
// them is allowed, a visitor over them refused, sockets capped per
// address.
func TestRedisLimitsWithoutRedis(t *testing.T) {
	r := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	l := NewRedisLimiter(client, Limits{MessagesPerMinute: 1, Burst: 3, IPMessagesPerMinute: 6000, ConnectionsPerIP: 2, StartsPerMinute: 1, StartBurst: 1, BotStartsPerMinute: 100}, RedisLimiterOptions{Prefix: "test:"})
	t.Cleanup(func() { l.Close() })
	ctx := t.Context()
	if ok, _ := l.Allow(ctx, "v", "192.0.2.1"); !ok {
		t.Fatal("refused on a live Redis")
	}
	r.Stop()
	for i := range 3 {
		if ok, _ := l.Allow(ctx, "v", "192.0.2.1"); !ok {
			t.Fatalf("message %d refused within the visitor's burst while Redis is down", i+1)
		}
	}
	if ok, wait := l.Allow(ctx, "v", "192.0.2.1"); ok || wait <= 0 {
		t.Fatalf("over the burst while Redis is down: ok %v, wait %v; want refused with a wait", ok, wait)
	}
	if ok, _, _ := l.ReserveStart(ctx, "192.0.2.1", "b"); !ok {
		t.Fatal("a start refused while Redis is down")
	}
	if ok, _, _ := l.ReserveStart(ctx, "192.0.2.1", "b"); ok {
		t.Fatal("a second start allowed over start_burst 1 while Redis is down")
	}
	ok1, _ := l.Connect(ctx, "192.0.2.1")
	ok2, rel := l.Connect(ctx, "192.0.2.1")
	ok3, _ := l.Connect(ctx, "192.0.2.1")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("sockets while Redis is down: %v %v %v, want the cap of 2 in this process", ok1, ok2, ok3)
	}
	rel()
	if ok, _ := l.Connect(ctx, "192.0.2.1"); !ok {
		t.Fatal("a released socket's slot was not freed while Redis is down")
	}
}

// TestRedisLimitKeysExpire: the keys of a bucket go when it is full
// again, so an idle visitor or address leaves nothing in Redis.
func TestRedisLimitKeysExpire(t *testing.T) {
	r := redistest.Start(t)
	rdb := r.Client(t)
	l := NewRedisLimiter(r.Client(t), Limits{MessagesPerMinute: 6, Burst: 5, IPMessagesPerMinute: 60}, RedisLimiterOptions{Prefix: "test:"})
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	if ok, _ := l.Allow(ctx, "v", "192.0.2.1"); !ok {
		t.Fatal("refused")
	}
	// One message of 6 a minute is full again in 10 s, one of 60 a
	// minute in 1 s: long enough to read on a loaded machine.
	for k, most := range map[string]time.Duration{"test:v:v": 10 * time.Second, "test:ip:192.0.2.1": time.Second} {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > most {
			t.Fatalf("%s has TTL %v, want the time until its bucket is full again (at most %v)", k, ttl, most)
		}
	}
}

// BenchmarkRedisLimitAllow measures one message check on a local Redis
// (one script, two buckets) against the in-memory limiter's.
func BenchmarkRedisLimitAllow(b *testing.B) {
	r := redistest.Start(b)
	lim := Limits{MessagesPerMinute: 1 << 30, Burst: 1 << 20, IPMessagesPerMinute: 1 << 30}
	for name, l := range map[string]Limiter{
		"redis":  NewRedisLimiter(r.Client(b), lim, RedisLimiterOptions{Prefix: "bench:"}),
		"memory": NewMemoryLimiter(lim),
	} {
		b.Run(name, func(b *testing.B) {
			defer l.Close()
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				if ok, _ := l.Allow(ctx, fmt.Sprintf("v%d", i%1000), "192.0.2.1"); !ok {
					b.Fatal("refused")
				}
			}
			if rl, ok := l.(*redisLimiter); ok && !rl.down.IsZero() {
				b.Fatal("a check failed on Redis and was counted in memory")
			}
		})
	}
}
