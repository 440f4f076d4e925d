package redisbus

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/redis/go-redis/v9"
)

// idlePing is how long a reader waits for a message before it pings, so
// that a dead connection shows and proxies do not close an idle one; a
// link that stays silent for two of them is replaced. A variable for the
// tests, which New copies into the Bus (Bus.idle).
var idlePing = 15 * time.Second

// link is one PubSub connection of a node, with the reader goroutine that
// receives from it.
type link struct {
	addr    string // its primary on a cluster; "" on a single Redis
	ps      *redis.PubSub
	sharded bool          // SSUBSCRIBE rather than SUBSCRIBE
	done    chan struct{} // closed when the worker closes the link
	n       int           // conversations subscribed through it; the worker's
	started bool          // its reader runs; the worker's
}

func (b *Bus) newLink(addr string) *link {
	l := &link{addr: addr, sharded: b.cluster != nil, done: make(chan struct{})}
	// Neither call does I/O: the first subscription connects.
	if b.cluster != nil {
		l.ps = b.cluster.SSubscribe(b.ctx)
	} else {
		l.ps = b.client.Subscribe(b.ctx)
	}
	return l
}

func (l *link) subscribe(ctx context.Context, ch string) error {
	if l.sharded {
		return l.ps.SSubscribe(ctx, ch)
	}
	return l.ps.Subscribe(ctx, ch)
}

func (l *link) unsubscribe(ctx context.Context, ch string) error {
	if l.sharded {
		return l.ps.SUnsubscribe(ctx, ch)
	}
	return l.ps.Unsubscribe(ctx, ch)
}

// close stops the reader and closes the connection.
func (l *link) close() {
	select {
	case <-l.done:
		return
	default:
	}
	close(l.done)
	l.ps.Close()
}

func (l *link) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// read is a link's reader: it hands events to the Fanout, confirmations
// to the waiting Subscribes, and what puts a subscription in doubt to the
// worker. go-redis reconnects and resubscribes within Receive; read only
// paces the attempts.
func (b *Bus) read(l *link) {
	defer b.wg.Done()
	down, quiet := 0, 0 // failed receives in a row, idle periods unanswered
	replaced := false   // declared dead: the worker moves its conversations away
	for {
		msg, err := l.ps.ReceiveTimeout(context.Background(), b.idle)
		if l.closed() || errors.Is(err, redis.ErrClosed) {
			return
		}
		if err != nil {
			var refused redis.Error
			var nerr net.Error
			switch {
			case errors.As(err, &refused):
				b.refused(l, err)
			case errors.As(err, &nerr) && nerr.Timeout():
				if replaced {
					continue
				}
				if quiet++; quiet >= 2 {
					b.log.Warn("redisbus: a Redis connection stopped answering; replacing it", "addr", l.addr)
					b.doubted(recheck{link: l, dead: true})
					replaced = true
					continue
				}
				ctx, cancel := context.WithTimeout(b.ctx, b.subWait)
				l.ps.Ping(ctx, "porthole-bus") // an error makes go-redis reconnect
				cancel()
			default:
				down++
				if down == 1 {
					b.log.Warn("redisbus: lost a Redis connection; reconnecting (events meanwhile are caught up by the sockets' heartbeat)",
						"addr", l.addr, "err", err)
				}
				if b.cluster != nil {
					b.cluster.ReloadState(b.ctx) // a failover moves its primary
				}
				select {
				case <-l.done:
					return
				case <-time.After(min(50*time.Millisecond<<min(down-1, 6), 2*time.Second)):
				}
			}
			continue
		}
		if down > 0 {
			b.log.Info("redisbus: reconnected to Redis", "addr", l.addr)
		}
		down, quiet = 0, 0
		switch m := msg.(type) {
		case *redis.Message:
			b.deliver(m)
		case *redis.Subscription:
			c := b.conversation(m.Channel)
			switch m.Kind {
			case "subscribe", "ssubscribe":
				b.confirmed(c)
			case "sunsubscribe":
				// Either ours, or Redis's when the channel's slot moved to
				// another node: the worker tells them apart.
				b.doubted(recheck{link: l, conversation: c})
			}
		}
	}
}

// deliver hands a received event to this node's subscribers.
func (b *Bus) deliver(m *redis.Message) {
	ev, err := bus.Decode([]byte(m.Payload))
	if err == nil && b.channel(ev.Conversation) != m.Channel {
		err = errors.New("the event's conversation is not its channel's")
	}
	if err != nil {
		b.log.Warn("redisbus: dropped a message that is no event of its channel (does another program publish under the prefix?)",
			"channel", m.Channel, "err", err)
		return
	}
	b.fanout.Deliver(ev)
}

// refused handles an error that Redis answered on a link: on a cluster, a
// subscription sent to a node that no longer serves its slot (MOVED), or
// go-redis's resubscription of channels of several slots at once after a
// reconnect (CROSSSLOT). Either way the link's subscriptions are in doubt.
func (b *Bus) refused(l *link, err error) {
	if b.cluster == nil {
		b.log.Warn("redisbus: Redis refused a subscription command (does the user have pub/sub rights?)", "err", err)
		return
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ") || strings.HasPrefix(msg, "CROSSSLOT") {
		b.log.Debug("redisbus: resubscribing a connection's channels one by one", "addr", l.addr, "err", err)
	} else {
		b.log.Warn("redisbus: Redis refused a subscription command (sharded pub/sub needs Redis 7)", "addr", l.addr, "err", err)
	}
	b.doubted(recheck{link: l})
}

// doubted queues a recheck for the worker.
func (b *Bus) doubted(r recheck) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.rechecks = append(b.rechecks, r)
		b.signal()
	}
}
