package server

import (
	"net/netip"
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

// limiter holds token buckets per visitor, per IP, and for conversation
// starts per address and per bot. A bucket that has filled up again is
// forgotten, since a new one is the same, so memory stays bounded by the
// buckets in use.
type limiter struct {
	visitorRate, ipRate rate.Limit
	burst, ipBurst      int
	// startRate and startBurst meter new conversations per address,
	// botStartRate and botStartBurst per bot (Limits says why).
	startRate, botStartRate   rate.Limit
	startBurst, botStartBurst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

func newLimiter(l Limits) *limiter {
	return &limiter{
		visitorRate: rate.Limit(float64(l.MessagesPerMinute) / 60), burst: l.Burst,
		ipRate: rate.Limit(float64(l.IPMessagesPerMinute) / 60), ipBurst: max(l.Burst*5, l.IPMessagesPerMinute/6),
		startRate: rate.Limit(float64(l.StartsPerMinute) / 60), startBurst: max(l.StartBurst, 1),
		botStartRate: rate.Limit(float64(l.BotStartsPerMinute) / 60), botStartBurst: max(l.BotStartsPerMinute, 1),
		buckets: map[string]*rate.Limiter{}, swept: time.Now(),
	}
}

// allow takes one message from the visitor's bucket and from the bucket
// of the address ip (by limitKey, so a whole IPv6 /64 shares one). When
// either is empty it returns how long until the next message is allowed.
func (l *limiter) allow(visitor, ip string) (bool, time.Duration) {
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

// reserveStart takes one conversation start from the bucket of the
// address ip (by limitKey) and from the bot's. When either is empty it
// takes nothing and returns how long until a start is allowed.
// Otherwise refund gives the start back, for a start that found a
// conversation instead of creating one: only a created conversation
// counts.
func (l *limiter) reserveStart(ip, bot string) (ok bool, wait time.Duration, refund func()) {
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

// get returns the bucket of key, made with r and burst when new. Now and
// then it forgets the buckets that are full again. The caller holds l.mu.
func (l *limiter) get(key string, r rate.Limit, burst int, now time.Time) *rate.Limiter {
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
