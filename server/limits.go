package server

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limitKey is the key an address's limits count by. An IPv4 address,
// or an IPv4 address mapped into IPv6, is itself. An IPv6 address counts
// by its /64: a subscriber line or a host gets a whole /64 (often more)
// and can send from any address in it, so counting IPv6 addresses one by
// one would give a script 2^64 buckets. A string that is not an address
// (a forwarded header holding junk) is its own key.
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// Limiter meters what visitors and addresses may do: messages per
// visitor and per address, conversation starts per address and per bot,
// and open sockets per address (limits.connections_per_ip). It is a seam
// because the counts must be shared by every process that serves the
// same visitors: one process on bolt or memory keeps them in memory
// (NewMemoryLimiter); several processes on one Redis keep them in Redis
// (NewRedisLimiter), which OpenBackend picks with the Redis store. ip is
// the client address as clientIP gives it; every address count goes by
// limitKey, so that an IPv6 /64 is one address.
type Limiter interface {
	// Allow takes one message from the visitor's bucket and from the
	// address's, from both or from neither. When either is empty it
	// returns false and how long until the next message is allowed.
	Allow(ctx context.Context, visitor, ip string) (bool, time.Duration)
	// ReserveStart takes one conversation start from the address's
	// bucket and from the bot's, from both or from neither. When either
	// is empty it returns false and how long until a start is allowed.
	// Otherwise refund gives the start back, for a start that found a
	// conversation instead of creating one: only a created conversation
	// counts.
	ReserveStart(ctx context.Context, ip, bot string) (ok bool, wait time.Duration, refund func())
	// Connect takes one of the address's socket slots. When the address
	// holds limits.connections_per_ip sockets already it returns false;
	// otherwise release gives the slot back when the socket closes
	// (release may be called more than once; only the first counts).
	Connect(ctx context.Context, ip string) (ok bool, release func())
	// SetLimits changes the rates, bursts and caps to those of l (a
	// config reload): what was taken so far stays taken, and counts
	// against the new limits from the next check on.
	SetLimits(l Limits)
	// Close lets go of what the limiter holds; slots still taken are
	// given back.
	Close() error
}

// memLimiter is the Limiter of one process: token buckets in memory per
// visitor, per IP, and for conversation starts per address and per bot,
// and a count of open sockets per address. A bucket that has filled up
// again is forgotten, since a new one is the same, so memory stays
// bounded by the buckets in use.
type memLimiter struct {
	visitorRate, ipRate rate.Limit
	burst, ipBurst      int
	// startRate and startBurst meter new conversations per address,
	// botStartRate and botStartBurst per bot (Limits says why).
	startRate, botStartRate   rate.Limit
	startBurst, botStartBurst int
	connsPerIP                int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
	conns   map[string]int // open sockets by limitKey
}

// NewMemoryLimiter returns the Limiter of a single process, with the
// buckets and caps of l.
func NewMemoryLimiter(l Limits) Limiter { return newLimiter(l) }

func newLimiter(l Limits) *memLimiter {
	m := &memLimiter{buckets: map[string]*rate.Limiter{}, swept: time.Now(), conns: map[string]int{}}
	m.setRates(l)
	return m
}

// setRates sets the rates, bursts and caps of l. The caller holds l.mu,
// or is the only one with m.
func (m *memLimiter) setRates(l Limits) {
	m.visitorRate, m.burst = rate.Limit(float64(l.MessagesPerMinute)/60), l.Burst
	m.ipRate, m.ipBurst = rate.Limit(float64(l.IPMessagesPerMinute)/60), ipBurst(l)
	m.startRate, m.startBurst = rate.Limit(float64(l.StartsPerMinute)/60), max(l.StartBurst, 1)
	m.botStartRate, m.botStartBurst = rate.Limit(float64(l.BotStartsPerMinute)/60), max(l.BotStartsPerMinute, 1)
	m.connsPerIP = l.ConnectionsPerIP
}

// SetLimits is Limiter.SetLimits: new buckets get the new rates, and
// the buckets in use change theirs in place, keeping their tokens (up
// to the new burst), so that a reload gives nobody a fresh burst.
func (m *memLimiter) SetLimits(l Limits) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setRates(l)
	for key, b := range m.buckets {
		kind, _, _ := strings.Cut(key, ":")
		r, burst := m.visitorRate, m.burst
		switch kind {
		case "ip":
			r, burst = m.ipRate, m.ipBurst
		case "s":
			r, burst = m.startRate, m.startBurst
		case "b":
			r, burst = m.botStartRate, m.botStartBurst
		}
		b.SetLimitAt(now, r)
		b.SetBurstAt(now, burst)
	}
}

// ipBurst is the burst of an address's message bucket: five visitors'
// bursts, or ten seconds of its rate, whichever is more.
func ipBurst(l Limits) int { return max(l.Burst*5, l.IPMessagesPerMinute/6) }

// Allow is Limiter.Allow.
func (l *memLimiter) Allow(_ context.Context, visitor, ip string) (bool, time.Duration) {
	return l.allow(visitor, ip)
}

func (l *memLimiter) allow(visitor, ip string) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	rv := l.get("v:"+visitor, l.visitorRate, l.burst, now).ReserveN(now, 1)
	ri := l.get("ip:"+limitKey(ip), l.ipRate, l.ipBurst, now).ReserveN(now, 1)
	if wait := max(rv.DelayFrom(now), ri.DelayFrom(now)); wait > 0 {
		rv.CancelAt(now)
		ri.CancelAt(now)
		return false, wait
	}
	return true, 0
}

// ReserveStart is Limiter.ReserveStart.
func (l *memLimiter) ReserveStart(_ context.Context, ip, bot string) (ok bool, wait time.Duration, refund func()) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ra := l.get("s:"+limitKey(ip), l.startRate, l.startBurst, now).ReserveN(now, 1)
	rb := l.get("b:"+bot, l.botStartRate, l.botStartBurst, now).ReserveN(now, 1)
	// CancelAt only restores tokens for a time no later than the
	// reservation's, so both cancel at now.
	cancel := func() {
		ra.CancelAt(now)
		rb.CancelAt(now)
	}
	if wait := max(ra.DelayFrom(now), rb.DelayFrom(now)); wait > 0 {
		cancel()
		return false, wait, nil
	}
	return true, 0, cancel
}

// Connect is Limiter.Connect.
func (l *memLimiter) Connect(_ context.Context, ip string) (bool, func()) {
	key := limitKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[key] >= l.connsPerIP {
		return false, nil
	}
	l.conns[key]++
	var once sync.Once
	return true, func() {
		once.Do(func() {
			l.mu.Lock()
			if l.conns[key]--; l.conns[key] <= 0 {
				delete(l.conns, key)
			}
			l.mu.Unlock()
		})
	}
}

// Close is Limiter.Close: memory needs no closing.
func (l *memLimiter) Close() error { return nil }

// get returns the bucket of key, made with r and burst when new. Now and
// then it forgets the buckets that are full again. The caller holds l.mu.
func (l *memLimiter) get(key string, r rate.Limit, burst int, now time.Time) *rate.Limiter {
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(b.Burst()) {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = rate.NewLimiter(r, burst)
		l.buckets[key] = b
	}
	return b
}
