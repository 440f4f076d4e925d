// Package redisbus is the bus.Bus of several server processes over one
// Redis or one Redis Cluster: an event published on one node reaches the
// subscribers of its conversation on every node.
//
// # Design
//
// Redis pub/sub, one channel per conversation, named Prefix +
// "{" + conversation + "}". A node subscribes to a conversation's channel
// only while one of its sockets watches it (the Fanout's first and last
// hooks), so a node receives the events of its own conversations and no
// others: the traffic of a node grows with what it serves, not with the
// whole deployment.
//
// Pub/sub is at-most-once: an event published while a node is
// reconnecting is lost to it. That is right here, because the store is
// the truth and an event only says what to fetch: a socket also checks
// the store on each heartbeat, so a lost event costs latency, never a
// message. What the bus must not do is hold its callers or stay deaf:
// Publish is bounded by its context and Options.PublishTimeout, Subscribe
// and Close by Options.SubscribeTimeout; a node resubscribes by itself
// after its connection drops (go-redis redials and resubscribes), and
// replaces a connection that stops answering its pings (a peer gone
// without a word, which TCP may take many minutes to notice).
//
// Every event travels through Redis, also to the publisher's own node: one
// path for all subscribers keeps one publisher's events in order on every
// node, and a subscriber on the publishing node hears an event once, not
// once from memory and once from Redis.
//
// On a single Redis (a *redis.Client) the node holds one PubSub
// connection and uses plain SUBSCRIBE and PUBLISH. On a Redis Cluster (a
// *redis.ClusterClient) it uses sharded pub/sub (Redis 7: SSUBSCRIBE and
// SPUBLISH): the braces make a conversation's channel a hash slot, and
// SPUBLISH carries a message within the shard that owns that slot only,
// where plain PUBLISH would copy every message to every node of the
// cluster. The price is one PubSub connection per primary the node has
// conversations on, since a shard channel can be subscribed to on its own
// shard only, and the work of following the slots when they move:
//
//   - Redis unsubscribes a node when the slot of its channel moves (an
//     SUNSUBSCRIBE we did not send), and answers MOVED to a subscription
//     sent to the wrong primary; go-redis resubscribes a connection's
//     channels in one SSUBSCRIBE after a reconnect, which Redis refuses
//     (CROSSSLOT) when they are in several slots. Each of these makes the
//     node reload the cluster's slots and subscribe each conversation of
//     that connection again, one by one, at its current owner.
//   - When a conversation moves to another primary, the node subscribes
//     there before it unsubscribes from the old one: an event may arrive
//     twice while it moves (harmless: events say what to fetch), rather
//     than not at all.
//
// Subscriptions are made by one goroutine per node (the worker), never
// under the Fanout's lock: the first and last hooks only queue the
// conversation. Subscribe waits, up to Options.SubscribeTimeout, for
// Redis to confirm the subscription of a conversation the node was not
// watching yet, so that an event published by another node after
// Subscribe returns is heard; it does not wait while Redis is
// unreachable, since the subscription is made on the reconnect anyway.
// One reader goroutine per PubSub connection receives the events and
// hands them to the Fanout.
package redisbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/redis/go-redis/v9"
)

// Options configure a Bus. The zero value is usable.
type Options struct {
	// Prefix starts every channel name; by default "porthole:bus:". Nodes
	// that should hear each other must use the same prefix; deployments
	// that share a Redis use different ones. It must not contain a brace,
	// which would change the channels' hash slots.
	Prefix string
	// Logger receives the bus's warnings (Redis unreachable, subscriptions
	// not confirmed); nil discards them.
	Logger *slog.Logger
	// PublishTimeout bounds a Publish, even when its context has no
	// deadline and Redis does not answer; by default 2s.
	PublishTimeout time.Duration
	// SubscribeTimeout bounds how long Subscribe waits for Redis to
	// confirm a new conversation's subscription, each subscribe or
	// unsubscribe command of the node, and how long Close waits for the
	// node's connections to close; by default 5s.
	SubscribeTimeout time.Duration
}

// DefaultPrefix is the channel prefix when Options.Prefix is empty.
const DefaultPrefix = "porthole:bus:"

// Bus is one node of a bus over Redis. Make it with New; it is safe for
// concurrent use.
type Bus struct {
	fanout  *bus.Fanout
	client  redis.UniversalClient
	cluster *redis.ClusterClient // nil on a single Redis
	prefix  string
	log     *slog.Logger
	pubWait time.Duration
	subWait time.Duration
	idle    time.Duration // idlePing

	ctx  context.Context // cancelled by Close
	stop context.CancelFunc
	wake chan struct{} // tells the worker that pending or rechecks grew
	wg   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	convs    map[string]*watch // conversations with local subscribers
	pending  []string          // conversations whose watch changed, for the worker
	rechecks []recheck         // subscriptions the readers found in doubt

	w worker // the worker goroutine's own state
}

// watch is the state of a conversation that the Fanout reported watched.
type watch struct {
	want  bool   // it has local subscribers
	ready *ready // released once Redis confirmed the subscription
}

// ready is released once; Subscribe waits on it.
type ready struct {
	ch   chan struct{}
	once sync.Once
}

func newReady() *ready { return &ready{ch: make(chan struct{})} }

func (r *ready) release() { r.once.Do(func() { close(r.ch) }) }

var _ bus.Bus = (*Bus)(nil)

// New returns a node of the bus carried by client, a *redis.Client (a
// single Redis, or one that Sentinel fails over) or a *redis.ClusterClient
// (Redis 7 or newer: it needs sharded pub/sub). The caller owns the
// client: Close the Bus before it. New does no I/O: a node started while
// Redis is down works once Redis is up.
func New(client redis.UniversalClient, opts Options) (*Bus, error) {
	b := &Bus{
		client:  client,
		prefix:  opts.Prefix,
		log:     opts.Logger,
		pubWait: opts.PublishTimeout,
		subWait: opts.SubscribeTimeout,
		idle:    idlePing,
		wake:    make(chan struct{}, 1),
		convs:   map[string]*watch{},
	}
	switch c := client.(type) {
	case *redis.Client:
	case *redis.ClusterClient:
		b.cluster = c
	case nil:
		return nil, errors.New("redisbus: no Redis client: pass a *redis.Client or *redis.ClusterClient")
	default:
		return nil, fmt.Errorf("redisbus: a %T cannot carry the bus (its pub/sub is not shared by all nodes): pass a *redis.Client or *redis.ClusterClient", client)
	}
	if b.prefix == "" {
		b.prefix = DefaultPrefix
	}
	if strings.ContainsAny(b.prefix, "{}") {
		return nil, fmt.Errorf("redisbus: prefix %q contains a brace, which would decide the channels' hash slot: remove it", b.prefix)
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.pubWait <= 0 {
		b.pubWait = 2 * time.Second
	}
	if b.subWait <= 0 {
		b.subWait = 5 * time.Second
	}
	b.fanout = bus.NewFanout(b.first, b.last)
	b.ctx, b.stop = context.WithCancel(context.Background())
	b.w.init()
	b.wg.Add(1)
	go b.run()
	return b, nil
}

// channel is the Redis channel of a conversation.
func (b *Bus) channel(conversation string) string {
	return b.prefix + "{" + conversation + "}"
}

// conversation is the conversation of a channel that channel made, or ""
// for another channel.
func (b *Bus) conversation(channel string) string {
	rest, ok := strings.CutPrefix(channel, b.prefix+"{")
	if !ok || !strings.HasSuffix(rest, "}") {
		return ""
	}
	return rest[:len(rest)-1]
}

// Publish implements bus.Bus: it sends ev to every node that watches its
// conversation, this one included. It returns within Options.PublishTimeout
// even when Redis does not answer, whatever the client's timeouts.
func (b *Bus) Publish(ctx context.Context, ev bus.Event) error {
	if ev.Conversation == "" {
		return errors.New("redisbus: the event names no conversation: set Event.Conversation")
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return bus.ErrClosed
	}
	ch, msg := b.channel(ev.Conversation), ev.Encode()
	ctx, cancel := context.WithTimeout(ctx, b.pubWait)
	defer cancel()
	// go-redis bounds socket reads by its own ReadTimeout, not ctx, unless
	// the client enables ContextTimeoutEnabled: wait on ctx here, so that
	// a Redis that accepts and never answers cannot hold the caller.
	done := make(chan error, 1)
	go func() {
		if b.cluster != nil {
			done <- b.cluster.SPublish(ctx, ch, msg).Err()
		} else {
			done <- b.client.Publish(ctx, ch, msg).Err()
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("redisbus: publishing to %s failed (is Redis up?): %w", ch, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redisbus: publishing to %s: Redis did not answer in time (is it up and reachable?): %w", ch, ctx.Err())
	}
}

// Subscribe implements bus.Bus. When this node was not watching the
// conversation yet, it returns once Redis confirmed the subscription, or
// after Options.SubscribeTimeout, or at once when Redis is unreachable
// (the subscription is then made on the reconnect).
func (b *Bus) Subscribe(conversation string, fn func(bus.Event)) (cancel func()) {
	cancel = b.fanout.Subscribe(conversation, fn)
	b.mu.Lock()
	var r *ready
	if w := b.convs[conversation]; w != nil {
		r = w.ready
	}
	b.mu.Unlock()
	if r == nil {
		return cancel
	}
	t := time.NewTimer(b.subWait)
	defer t.Stop()
	select {
	case <-r.ch:
	case <-b.ctx.Done():
	case <-t.C:
		b.log.Warn("redisbus: Redis did not confirm a subscription in time; its events may arrive late until it does",
			"conversation", conversation, "timeout", b.subWait)
	}
	return cancel
}

// Watched reports how many conversations have subscribers on this node.
func (b *Bus) Watched() int { return b.fanout.Watched() }

// Close implements bus.Bus: it stops the worker and the readers and
// closes the PubSub connections (not the client, which the caller owns).
// Publish returns bus.ErrClosed from then on. It waits for them up to
// Options.SubscribeTimeout: go-redis bounds a connection's handshake by
// the client's ReadTimeout, not by a context, and a Redis that accepts
// and never answers must not hold a shutdown; they end on their own when
// that timeout strikes.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, w := range b.convs {
		w.ready.release()
	}
	b.mu.Unlock()
	b.stop()
	stopped := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(stopped)
	}()
	t := time.NewTimer(b.subWait)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		b.log.Warn("redisbus: closed without waiting for Redis, which does not answer; its connections close when the client's timeouts strike")
	}
	return nil
}

// first is the Fanout's hook for a conversation's first local subscriber.
// It runs under the Fanout's lock, so it only queues the conversation for
// the worker.
func (b *Bus) first(conversation string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.convs[conversation]
	if w == nil {
		w = &watch{}
		b.convs[conversation] = w
	}
	w.want, w.ready = true, newReady()
	if b.closed {
		w.ready.release()
		return
	}
	b.pending = append(b.pending, conversation)
	b.signal()
}

// last is the Fanout's hook for a conversation's last local subscriber
// leaving; like first, it only queues.
func (b *Bus) last(conversation string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.convs[conversation]
	if w == nil {
		return
	}
	w.want = false
	w.ready.release()
	if !b.closed {
		b.pending = append(b.pending, conversation)
		b.signal()
	}
}

// signal wakes the worker; b.mu is held.
func (b *Bus) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// confirmed releases the waiters of a conversation whose subscription
// Redis confirmed.
func (b *Bus) confirmed(conversation string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.convs[conversation]; w != nil && w.want {
		w.ready.release()
	}
}

// giveUp releases the waiters of a conversation that cannot be
// subscribed to now (Redis unreachable): Subscribe should not wait for an
// outage.
func (b *Bus) giveUp(conversation string) { b.confirmed(conversation) }

// wanted reports whether the conversation has local subscribers, and
// forgets it when it has none.
func (b *Bus) wanted(conversation string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.convs[conversation]
	if w != nil && !w.want {
		delete(b.convs, conversation)
	}
	return w != nil && w.want
}
