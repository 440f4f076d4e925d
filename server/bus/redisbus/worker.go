package redisbus

import (
	"context"
	"time"
)

// Retry delays of the rechecks: short enough to follow a moved slot
// within a second, growing while Redis keeps refusing, so that a
// misconfigured Redis costs a line of log every few seconds, not a loop.
const (
	minRetry   = 200 * time.Millisecond
	maxRetry   = 5 * time.Second
	quietRetry = 30 * time.Second // a recheck after this long starts over at minRetry
)

// worker is the state that only the worker goroutine (run) touches: the
// node's PubSub connections and which conversation goes through which.
type worker struct {
	links     map[string]*link // by primary address; "" on a single Redis
	on        map[string]*link // conversation → the link it is subscribed through
	retry     map[string]bool  // conversations to subscribe again at the next recheck
	retryAt   <-chan time.Time // nil when no recheck is due
	delay     time.Duration
	lastRetry time.Time
}

func (w *worker) init() {
	w.links, w.on, w.retry = map[string]*link{}, map[string]*link{}, map[string]bool{}
	w.delay = minRetry
}

// recheck is a reader's doubt about a subscription: Redis unsubscribed
// conversation (when its slot moved), or refused a command on link (then
// conversation is "": every conversation of the link is in doubt), or the
// link stopped answering (dead: replace it).
type recheck struct {
	link         *link
	conversation string
	dead         bool
}

// run is the worker: it makes the node's subscriptions match what its
// sockets watch, one command at a time, outside the Fanout's lock.
func (b *Bus) run() {
	defer b.wg.Done()
	defer func() {
		for _, l := range b.w.links {
			l.close()
		}
		for _, l := range b.w.on { // retired links still in use
			l.close()
		}
	}()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
		case <-b.w.retryAt:
			b.w.retryAt = nil
			b.retryNow()
		}
		b.mu.Lock()
		pending, rechecks := b.pending, b.rechecks
		b.pending, b.rechecks = nil, nil
		b.mu.Unlock()
		done := make(map[string]bool, len(pending))
		for _, c := range pending {
			if !done[c] { // sync reads the latest state: once is enough
				done[c] = true
				b.sync(c)
			}
		}
		for _, r := range rechecks {
			b.doubt(r)
		}
	}
}

// sync subscribes to or unsubscribes from a conversation whose watch
// changed.
func (b *Bus) sync(conversation string) {
	cur := b.w.on[conversation]
	switch {
	case b.wanted(conversation):
		// Subscribing again where it already is (a last and a first that
		// the worker saw as one) is harmless and gets Subscribe its
		// confirmation.
		b.subscribe(conversation, cur)
	case cur != nil:
		delete(b.w.on, conversation)
		b.drop(cur, b.channel(conversation))
	}
}

// subscribe subscribes to a conversation through the link of its Redis
// node, and, when it was subscribed through another link (cur), drops it
// there after, so that it is never unheard while it moves.
func (b *Bus) subscribe(conversation string, cur *link) {
	ch := b.channel(conversation)
	l, err := b.route(ch)
	if err != nil {
		b.log.Warn("redisbus: cannot tell which Redis node serves a conversation (is the cluster up?); retrying",
			"conversation", conversation, "err", err)
		b.giveUp(conversation)
		b.retryLater(conversation)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.subWait)
	err = l.subscribe(ctx, ch)
	cancel()
	if err != nil {
		// go-redis keeps the channel and subscribes to it when it
		// reconnects: nothing to retry, and nothing to wait for now.
		b.log.Debug("redisbus: subscribing failed; it will be made on the reconnect", "channel", ch, "err", err)
		b.giveUp(conversation)
	}
	if !l.started {
		// Only now: on a cluster, the first subscription is what
		// connects the link to the right node.
		l.started = true
		b.wg.Add(1)
		go b.read(l)
	}
	b.w.on[conversation] = l
	if cur != l {
		l.n++
		if cur != nil {
			b.drop(cur, ch)
		}
	}
}

// drop unsubscribes from a channel on a link and closes the link when it
// carries nothing more.
func (b *Bus) drop(l *link, ch string) {
	l.n--
	if l.n <= 0 {
		if b.w.links[l.addr] == l {
			delete(b.w.links, l.addr)
		}
		l.close() // the connection's subscriptions end with it
		return
	}
	if b.w.links[l.addr] != l {
		return // retired: it is closed once its last conversation moved
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.subWait)
	defer cancel()
	if err := l.unsubscribe(ctx, ch); err != nil {
		// go-redis forgot the channel already: the reconnect will not
		// bring it back.
		b.log.Debug("redisbus: unsubscribing failed", "channel", ch, "err", err)
	}
}

// route returns the link to subscribe to a channel through, making it
// when needed: the one link on a single Redis, the link of the channel's
// primary on a cluster.
func (b *Bus) route(ch string) (*link, error) {
	addr := ""
	if b.cluster != nil {
		ctx, cancel := context.WithTimeout(b.ctx, b.subWait)
		node, err := b.cluster.MasterForKey(ctx, ch)
		cancel()
		if err != nil {
			return nil, err
		}
		addr = node.Options().Addr
	}
	l := b.w.links[addr]
	if l == nil {
		l = b.newLink(addr)
		b.w.links[addr] = l
	}
	return l, nil
}

// doubt schedules the subscriptions a reader doubts for a recheck.
func (b *Bus) doubt(r recheck) {
	if r.dead && b.w.links[r.link.addr] == r.link {
		// Retire it: route makes a new link, the recheck moves every
		// conversation there, and the old one closes with the last.
		delete(b.w.links, r.link.addr)
	}
	doubted := false
	if r.conversation != "" {
		// Mostly the confirmation of our own unsubscribe: then the
		// conversation is elsewhere or gone, and there is nothing to do.
		if b.w.on[r.conversation] == r.link {
			b.retryLater(r.conversation)
			doubted = true
		}
	} else {
		for c, l := range b.w.on {
			if l == r.link {
				b.retryLater(c)
				doubted = true
			}
		}
	}
	if doubted && b.cluster != nil {
		// Learn where the slots went before the recheck (it is lazy).
		b.cluster.ReloadState(b.ctx)
	}
}

// retryLater schedules a conversation's subscription for the next
// recheck.
func (b *Bus) retryLater(conversation string) {
	b.w.retry[conversation] = true
	if b.w.retryAt != nil {
		return
	}
	if time.Since(b.w.lastRetry) > quietRetry {
		b.w.delay = minRetry
	}
	b.w.retryAt = time.After(b.w.delay)
	b.w.delay = min(2*b.w.delay, maxRetry)
}

// retryNow subscribes again to the conversations in doubt, at their
// current node.
func (b *Bus) retryNow() {
	b.w.lastRetry = time.Now()
	retry := b.w.retry
	b.w.retry = map[string]bool{}
	for c := range retry {
		if b.wanted(c) {
			b.subscribe(c, b.w.on[c])
		}
		// else: last queued it for sync, which unsubscribes.
	}
}
