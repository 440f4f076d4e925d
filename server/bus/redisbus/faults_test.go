package redisbus_test

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/bus/redisbus"
	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/redis/go-redis/v9"
)

// TestReconnect: when Redis drops a node's PubSub connection, the node
// resubscribes by itself, and an event published after that arrives.
func TestReconnect(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.Client(t), redisbus.Options{})
	b := open(t, srv.Client(t), redisbus.Options{})
	var c1 inbox
	defer b.Subscribe("c1", c1.add)()
	publishUntil(t, a, "c1", &c1, 5*time.Second)

	n, err := srv.Client(t).ClientKillByFilter(cmdCtx(t), "TYPE", "pubsub").Result()
	if err != nil || n < 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub = %d, %v: the node had no PubSub connection to drop", n, err)
	}
	publishUntil(t, a, "c1", &c1, 10*time.Second)
	// And a conversation subscribed to after the reconnect.
	var c2 inbox
	defer b.Subscribe("c2", c2.add)()
	publishUntil(t, a, "c2", &c2, 5*time.Second)
}

// TestRedisDown: with Redis stopped, Publish fails within its timeout
// and Subscribe does not wait for Redis; once Redis is back, the
// conversations watched before and during the outage both hear events.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.Client(t), redisbus.Options{PublishTimeout: time.Second})
	b := open(t, srv.Client(t), redisbus.Options{SubscribeTimeout: 4 * time.Second})
	var before, during inbox
	defer b.Subscribe("before", before.add)()
	publishUntil(t, a, "before", &before, 5*time.Second)

	srv.Stop()
	start := time.Now()
	if err := a.Publish(t.Context(), bus.Event{Conversation: "before", Seq: 1}); err == nil {
		t.Fatal("Publish with Redis stopped did not fail")
	} else {
		t.Logf("Publish with Redis stopped: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Publish with Redis stopped took %v, with a PublishTimeout of 1s", took)
	}
	start = time.Now()
	defer b.Subscribe("during", during.add)()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Subscribe with Redis stopped took %v: it waited for a confirmation that cannot come", took)
	}

	restart(t, srv.Addr)
	publishUntil(t, a, "before", &before, 10*time.Second)
	publishUntil(t, a, "during", &during, 10*time.Second)
}

// TestRedisFrozen: a Redis that accepts connections and never answers
// (SIGSTOP) holds Publish no longer than PublishTimeout or its context,
// Subscribe no longer than SubscribeTimeout, and Close not at all; once
// it runs again, events flow.
func TestRedisFrozen(t *testing.T) {
	srv := redistest.Start(t)
	info, err := srv.Client(t).Info(cmdCtx(t), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`process_id:(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("no process_id in INFO server:\n%s", info)
	}
	pid, _ := strconv.Atoi(m[1])
	a := open(t, srv.Client(t), redisbus.Options{PublishTimeout: 500 * time.Millisecond, SubscribeTimeout: time.Second})
	b := open(t, srv.Client(t), redisbus.Options{})
	var c1 inbox
	defer b.Subscribe("c1", c1.add)()
	publishUntil(t, a, "c1", &c1, 5*time.Second)

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)

	start := time.Now()
	if err := a.Publish(t.Context(), bus.Event{Conversation: "c1", Seq: 1}); err == nil {
		t.Fatal("Publish to a frozen Redis did not fail")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Publish to a frozen Redis took %v, with a PublishTimeout of 500ms", took)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := a.Publish(ctx, bus.Event{Conversation: "c1", Seq: 1}); err == nil {
		t.Fatal("Publish to a frozen Redis did not fail")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Publish to a frozen Redis took %v, with a context of 100ms", took)
	}
	start = time.Now()
	defer a.Subscribe("c2", func(bus.Event) {})()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Subscribe to a frozen Redis took %v, with a SubscribeTimeout of 1s", took)
	}
	start = time.Now()
	a.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close with a frozen Redis took %v", took)
	}

	resume()
	c := open(t, srv.Client(t), redisbus.Options{})
	publishUntil(t, c, "c1", &c1, 10*time.Second)
}

// TestDeadLinkReplaced: a PubSub connection that stops answering its
// pings is replaced, and the node hears its conversations through the
// new one once Redis answers again.
func TestDeadLinkReplaced(t *testing.T) {
	redisbus.SetIdlePing(t, 100*time.Millisecond)
	srv := redistest.Start(t)
	a := open(t, srv.Client(t), redisbus.Options{})
	b := open(t, srv.Client(t), redisbus.Options{})
	var c1 inbox
	defer b.Subscribe("c1", c1.add)()
	publishUntil(t, a, "c1", &c1, 5*time.Second)
	admin := srv.Client(t)
	ids := pubsubClients(t, admin)
	if len(ids) != 1 {
		t.Fatalf("%d PubSub connections, want 1", len(ids))
	}

	// A connection whose peer is gone without a word, as after a network
	// partition: Redis stops answering on it but does not close it.
	// CLIENT PAUSE holds every client's commands, pings included.
	if err := admin.ClientPause(cmdCtx(t), 2*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the silent connection replaced", 10*time.Second, func() (bool, error) {
		now := pubsubClients(t, admin)
		return len(now) == 1 && now[0] != ids[0], nil
	})
	publishUntil(t, a, "c1", &c1, 10*time.Second)
}

// pubsubClients returns the ids of Redis's PubSub connections.
func pubsubClients(t *testing.T, admin *redis.Client) []string {
	t.Helper()
	list, err := admin.ClientList(cmdCtx(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range regexp.MustCompile(`(?m)^id=(\d+) .*\bflags=P\b`).FindAllStringSubmatch(list, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// restart runs a redis-server again on the address of one that stopped,
// as an operator restarting Redis would, and waits until it answers.
func restart(t *testing.T, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", "--port", port, "--bind", host, "--dir", t.TempDir(),
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("restarting redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	waitFor(t, "Redis back", 10*time.Second, func() (bool, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		err := c.Ping(ctx).Err()
		return err == nil, err
	})
}
