package redisbus_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/bus/bustest"
	"github.com/porthole-chat/porthole/server/bus/redisbus"
	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/redis/go-redis/v9"
)

// TestCluster: two nodes on a three-primary Redis Cluster, with sharded
// pub/sub: the suite (its conversations fall on every primary), then how
// the nodes follow the cluster. One cluster for all, as starting one takes
// seconds; the slot move comes last, as it changes the cluster.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	t.Run("Suite", func(t *testing.T) {
		bustest.Run(t, func(t *testing.T) (bus.Bus, bus.Bus) {
			return open(t, c.Client(t), redisbus.Options{}), open(t, c.Client(t), redisbus.Options{})
		})
	})
	t.Run("Sharded", func(t *testing.T) { testClusterSharded(t, c) })
	t.Run("Reconnect", func(t *testing.T) { testClusterReconnect(t, c) })
	t.Run("SlotMoves", func(t *testing.T) { testClusterSlotMoves(t, c) })
}

// testClusterSharded: on a cluster a node subscribes to each conversation
// with sharded pub/sub on the primary of its slot only, never with plain
// pub/sub (which every node of the cluster would carry), and unsubscribes
// when its last subscriber leaves.
func testClusterSharded(t *testing.T, c *redistest.Cluster) {
	cc := c.Client(t)
	b := open(t, c.Client(t), redisbus.Options{})
	prefix := "test:" + t.Name() + ":"
	nodes := nodeClients(t, c)
	owners := map[string]string{} // channel → its primary
	var cancels []func()
	for i := range 12 {
		conv := fmt.Sprint("s", i)
		cancels = append(cancels, b.Subscribe(conv, func(bus.Event) {}))
		ch := channel(prefix, conv)
		owners[ch] = owner(t, cc, ch)
	}
	if spread := distinct(owners); spread < 2 {
		t.Fatalf("the conversations fell on %d primary: pick others", spread)
	}
	for ch, own := range owners {
		for addr, n := range nodes {
			shard, err := n.PubSubShardNumSub(cmdCtx(t), ch).Result()
			if err != nil {
				t.Fatalf("PUBSUB SHARDNUMSUB on %s: %v", addr, err)
			}
			plain, err := n.PubSubNumSub(cmdCtx(t), ch).Result()
			if err != nil {
				t.Fatalf("PUBSUB NUMSUB on %s: %v", addr, err)
			}
			want := int64(0)
			if addr == own {
				want = 1
			}
			if shard[ch] != want || plain[ch] != 0 {
				t.Fatalf("%s on %s (its primary: %s): %d sharded and %d plain subscriptions, want %d and 0",
					ch, addr, own, shard[ch], plain[ch], want)
			}
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
	waitFor(t, "every subscription gone", 10*time.Second, func() (bool, error) {
		for ch, own := range owners {
			n, err := nodes[own].PubSubShardNumSub(cmdCtx(t), ch).Result()
			if err != nil || n[ch] != 0 {
				return false, err
			}
		}
		return true, nil
	})
}

// testClusterReconnect: when every primary drops the node's PubSub
// connections, the node subscribes again to each conversation (go-redis's
// own resubscription, one SSUBSCRIBE for channels of several slots, is
// refused with CROSSSLOT).
func testClusterReconnect(t *testing.T, c *redistest.Cluster) {
	a := open(t, c.Client(t), redisbus.Options{})
	b := open(t, c.Client(t), redisbus.Options{})
	nodes := nodeClients(t, c)
	const n = 9 // three or so per primary, in different slots
	in := make([]inbox, n)
	for i := range n {
		defer b.Subscribe(fmt.Sprint("r", i), in[i].add)()
	}
	for i := range n {
		publishUntil(t, a, fmt.Sprint("r", i), &in[i], 5*time.Second)
	}
	for addr, node := range nodes {
		if _, err := node.ClientKillByFilter(cmdCtx(t), "TYPE", "pubsub").Result(); err != nil {
			t.Fatalf("CLIENT KILL on %s: %v", addr, err)
		}
	}
	for i := range n {
		publishUntil(t, a, fmt.Sprint("r", i), &in[i], 10*time.Second)
	}
}

// testClusterSlotMoves: when the slot of a watched conversation moves to
// another primary, Redis unsubscribes the node there, and the node
// subscribes at the new primary by itself; a conversation that stays is
// not disturbed.
func testClusterSlotMoves(t *testing.T, c *redistest.Cluster) {
	cc := c.Client(t)
	a := open(t, c.Client(t), redisbus.Options{})
	b := open(t, c.Client(t), redisbus.Options{})
	prefix := "test:" + t.Name() + ":"
	nodes := nodeClients(t, c)

	moving := channel(prefix, "moving")
	src := owner(t, cc, moving)
	stay := ""
	for i := 0; stay == ""; i++ { // a conversation that stays on src
		if conv := fmt.Sprint("stay", i); owner(t, cc, channel(prefix, conv)) == src {
			stay = conv
		}
	}
	var dst string
	for addr := range nodes {
		if addr != src {
			dst = addr
			break
		}
	}
	var movedIn, stayIn inbox
	defer b.Subscribe("moving", movedIn.add)()
	defer b.Subscribe(stay, stayIn.add)()
	publishUntil(t, a, "moving", &movedIn, 5*time.Second)
	publishUntil(t, a, stay, &stayIn, 5*time.Second)

	slot, err := cc.ClusterKeySlot(cmdCtx(t), moving).Result()
	if err != nil {
		t.Fatal(err)
	}
	moveSlot(t, nodes, int(slot), src, dst)

	publishUntil(t, a, "moving", &movedIn, 10*time.Second)
	publishUntil(t, a, stay, &stayIn, 5*time.Second)
	waitFor(t, "the subscription on the new primary only", 10*time.Second, func() (bool, error) {
		there, err := nodes[dst].PubSubShardNumSub(cmdCtx(t), moving).Result()
		if err != nil {
			return false, err
		}
		before, err := nodes[src].PubSubShardNumSub(cmdCtx(t), moving).Result()
		if err != nil {
			return false, err
		}
		return there[moving] == 1 && before[moving] == 0, nil
	})
}

// moveSlot moves an empty slot from src to dst as redis-cli --cluster
// reshard does (IMPORTING, MIGRATING, then NODE on every node: the new
// owner first, which bumps its config epoch so that gossip cannot give
// the slot back), and waits until every node agrees.
func moveSlot(t *testing.T, nodes map[string]*redis.Client, slot int, src, dst string) {
	t.Helper()
	id := func(addr string) string {
		id, err := nodes[addr].ClusterMyID(cmdCtx(t)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	srcID, dstID := id(src), id(dst)
	setslot := func(addr string, args ...any) {
		if err := nodes[addr].Do(cmdCtx(t), append([]any{"cluster", "setslot", slot}, args...)...).Err(); err != nil {
			t.Fatalf("CLUSTER SETSLOT %d %v on %s: %v", slot, args, addr, err)
		}
	}
	setslot(dst, "importing", srcID)
	setslot(src, "migrating", dstID)
	setslot(dst, "node", dstID)
	setslot(src, "node", dstID)
	for addr := range nodes {
		if addr != src && addr != dst {
			setslot(addr, "node", dstID)
		}
	}
	waitFor(t, "every node agreeing on the slot's new owner", 10*time.Second, func() (bool, error) {
		for _, n := range nodes {
			slots, err := n.ClusterSlots(cmdCtx(t)).Result()
			if err != nil {
				return false, err
			}
			for _, r := range slots {
				if r.Start <= slot && slot <= r.End && (len(r.Nodes) == 0 || r.Nodes[0].Addr != dst) {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

// nodeClients returns a client of each node of the cluster, by address.
func nodeClients(t *testing.T, c *redistest.Cluster) map[string]*redis.Client {
	nodes := map[string]*redis.Client{}
	for _, addr := range c.Addrs {
		n := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { n.Close() })
		nodes[addr] = n
	}
	return nodes
}

// owner returns the address of the primary that serves a channel's slot.
func owner(t *testing.T, cc *redis.ClusterClient, ch string) string {
	t.Helper()
	n, err := cc.MasterForKey(cmdCtx(t), ch)
	if err != nil {
		t.Fatal(err)
	}
	return n.Options().Addr
}

func distinct(m map[string]string) int {
	seen := map[string]bool{}
	for _, v := range m {
		seen[v] = true
	}
	return len(seen)
}
