package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis limiter's timings.
const (
	// redisLimitTimeout bounds one limit check on Redis; past it the
	// check is made in this process instead (see redisLimiter).
	redisLimitTimeout = time.Second
	// redisLimitPause is how long after Redis failed a check the next
	// ones go straight to this process's counts, so that an outage
	// costs each message no wait for a dead Redis, and the log one line
	// a second rather than one per message.
	redisLimitPause = time.Second
	// defaultConnHeartbeat is how often a process says, for every
	// address it holds sockets of, how many it holds. A process's count
	// stops counting connHeartbeatTTL heartbeats after it was last said.
	defaultConnHeartbeat = 10 * time.Second
	connHeartbeatTTL     = 3
)

// RedisLimiterOptions tune NewRedisLimiter.
type RedisLimiterOptions struct {
	// Prefix starts every key. Default "porthole:limit:".
	Prefix string
	// Heartbeat is how often the process refreshes its socket counts
	// (default 10 s). The sockets of a process that died stop counting
	// within 3 heartbeats: 30 s by default.
	Heartbeat time.Duration
	// Logger hears when Redis does not answer and limits are counted in
	// this process meanwhile; nil discards.
	Logger *slog.Logger
}

// redisLimiter is the Limiter of several processes over one Redis (or
// one Redis Cluster): every count is in Redis, so three processes behind
// a load balancer give a visitor or an address its budget once, not
// three times.
//
// Buckets use GCRA, the generic cell rate algorithm, as
// github.com/go-redis/redis_rate does after rwz/redis-gcra (credit to
// them for the approach; the scripts here are our own): a bucket is one key holding its
// theoretical arrival time (TAT) in microseconds of Redis's clock (TIME
// in the script, never a process's clock, so that processes whose clocks
// disagree still share one budget). A message at now is allowed when
// max(TAT, now) + interval - interval*burst <= now, and moves TAT on by
// one interval. The key expires when the bucket is full again (TAT <=
// now), so an idle visitor or address leaves nothing behind. This gives
// exactly x/time/rate's token bucket: burst at once, then one per
// interval.
//
// Two buckets at once (allow: the visitor's and the address's; a start:
// the address's and the bot's) are taken by one script, from both or
// from neither, on a single Redis or Sentinel. On a Redis Cluster the
// two keys are in different hash slots, usually on different nodes, and
// no script may span them; hash-tagging them into one slot would need
// one tag for every visitor, address and bot (a bot's bucket is shared
// by all addresses, an address's by all visitors), which puts every
// limit on one node. So on a Cluster each bucket is taken by its own
// script, the visitor's (or the address's) first, and when the second
// refuses, the first is given back by a script of its own. No message
// or start is ever allowed that either bucket refuses; the only
// difference from one script is that, for the round trip between the
// take and the give-back, the first bucket holds one token less, so a
// concurrent check of the same visitor or address may be refused a
// little early (and told to wait one interval). That errs on the strict
// side, by one token, for one round trip.
//
// Sockets per address are a Redis hash per address (limitKey): one field
// per process, its socket count and a deadline. Connecting adds one to
// the process's field if the live fields sum to less than the cap;
// closing takes one off. Every Heartbeat the process writes each of its
// counts afresh with a new deadline (now + 3 heartbeats), which also
// mends a count that a lost release or a Redis outage left wrong. A
// process that dies stops refreshing, and its fields stop counting when
// their deadline passes: within 3 heartbeats (30 s by default) of its
// last heartbeat, so of its death (every write of a field, a connect's
// or a heartbeat's, sets its deadline to Redis's now + 3 heartbeats, and
// a dead process writes none). A live process's fields lapse only if 3
// heartbeats in a row fail, and come back with the next that succeeds.
// A process that shuts down gives its counts back at once (Close). A
// heartbeat that races a connect or a close of the same address may
// leave its count one off, until the next heartbeat.
//
// When Redis does not answer within redisLimitTimeout, a check is made
// against this process's own buckets and socket counts (memLimiter), as
// on one process, and so are the checks of the next redisLimitPause; a
// warning is logged. A check does not end with its caller's context (a
// socket going away mid-check would count as Redis failing);
// redisLimitTimeout bounds it. That is neither open nor
// closed: a visitor within the limits is never refused because of the
// outage, and a script is still limited (by each process, so to N times
// the limit over N processes, until Redis answers). Failing closed would
// refuse every message while the store, perhaps on another Cluster
// node, could still take it; failing open would drop the limits. No
// message is lost either way: a refused message gets rate_limited and
// stays on the widget's outbox, and a message the store cannot write
// while Redis is down gets no ack and also stays there.
type redisLimiter struct {
	rdb     redis.UniversalClient
	cluster bool
	prefix  string
	id      string // this process, in the socket counts
	log     *slog.Logger
	mem     *memLimiter // the fallback, and nothing else

	// rates holds the buckets and the socket cap; a reload replaces it
	// (SetLimits).
	rates     atomic.Pointer[redisRates]
	heartbeat time.Duration

	mu     sync.Mutex
	conns  map[string]int // this process's open sockets by limitKey
	closed bool
	// down is when Redis last failed a check; until redisLimitPause
	// after it, checks are made in this process.
	down time.Time

	stopBeat chan struct{}
	beatDone chan struct{}
	stopOnce sync.Once
}

// redisRates are the limits of a redisLimiter, never changed once
// stored.
type redisRates struct {
	msgs, ip, start, bot gcraBucket
	connsPerIP           int
}

func redisRatesOf(l Limits) *redisRates {
	return &redisRates{
		msgs: bucketOf(l.MessagesPerMinute, l.Burst), ip: bucketOf(l.IPMessagesPerMinute, ipBurst(l)),
		start: bucketOf(l.StartsPerMinute, max(l.StartBurst, 1)), bot: bucketOf(l.BotStartsPerMinute, max(l.BotStartsPerMinute, 1)),
		connsPerIP: l.ConnectionsPerIP,
	}
}

// SetLimits is Limiter.SetLimits, on Redis: the buckets in Redis keep
// their state (a GCRA bucket is its theoretical arrival time), taken
// with the new interval and burst from the next check on.
func (l *redisLimiter) SetLimits(lim Limits) {
	l.rates.Store(redisRatesOf(lim))
	l.mem.SetLimits(lim)
}

// gcraBucket is a bucket's interval between tokens, in microseconds, and
// its burst.
type gcraBucket struct{ interval, burst int64 }

func bucketOf(perMinute, burst int) gcraBucket {
	if perMinute <= 0 {
		// No sustained rate: the burst only, as x/time/rate with rate 0.
		return gcraBucket{interval: 1e15, burst: int64(burst)}
	}
	// At least 1 µs: a bucket whose TAT never moved would never expire.
	return gcraBucket{interval: max(int64(math.Round(60e6/float64(perMinute))), 1), burst: int64(burst)}
}

// NewRedisLimiter returns the Limiter of every process over client, with
// the buckets and caps of l. It starts the heartbeat of its socket
// counts; Close stops it and gives the counts back.
func NewRedisLimiter(client redis.UniversalClient, l Limits, opts RedisLimiterOptions) Limiter {
	if opts.Prefix == "" {
		opts.Prefix = "porthole:limit:"
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = defaultConnHeartbeat
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	id := make([]byte, 8)
	rand.Read(id)
	_, cluster := client.(*redis.ClusterClient)
	rl := &redisLimiter{
		rdb: client, cluster: cluster, prefix: opts.Prefix, id: hex.EncodeToString(id), log: opts.Logger,
		mem: newLimiter(l), heartbeat: opts.Heartbeat,
		conns: map[string]int{}, stopBeat: make(chan struct{}), beatDone: make(chan struct{}),
	}
	rl.rates.Store(redisRatesOf(l))
	go rl.beatLoop()
	return rl
}

// gcraTake takes one token from every bucket of KEYS, or from none.
// ARGV holds each bucket's interval (µs) and burst. It returns 0 when
// taken, otherwise how many µs until all of them would have one.
var gcraTake = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2*i-1])
  local burst = tonumber(ARGV[2*i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  tats[i] = tat + interval
  local over = tats[i] - interval * burst - now
  if over > wait then wait = over end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
end
return 0
`)

// gcraGive gives one token back to every bucket of KEYS; ARGV holds
// their intervals (µs). A bucket that is full again is deleted.
var gcraGive = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key))
  if tat then
    tat = tat - tonumber(ARGV[i])
    if tat <= now then
      redis.call('DEL', key)
    else
      redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
    end
  end
end
return 0
`)

// connTake adds one socket to this process's field (ARGV[1]) of the
// address's hash KEYS[1] when the live fields sum to less than the cap
// ARGV[2], and returns 1; otherwise 0. A field is "count:deadline" (ms
// of Redis's clock); ARGV[3] is the TTL of a count. Fields past their
// deadline, of processes that stopped saying their counts, are deleted.
var connTake = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local kv = redis.call('HGETALL', KEYS[1])
local sum, mine = 0, 0
for i = 1, #kv, 2 do
  local n, dl = string.match(kv[i+1], '^(%d+):(%d+)$')
  n, dl = tonumber(n), tonumber(dl)
  if not n or not dl or dl <= now then
    redis.call('HDEL', KEYS[1], kv[i])
  else
    sum = sum + n
    if kv[i] == ARGV[1] then mine = n end
  end
end
if sum >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], (mine + 1) .. ':' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// connGive takes one socket off this process's field ARGV[1] of KEYS[1].
var connGive = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local n, dl = string.match(v, '^(%d+):(%d+)$')
n = tonumber(n)
if not n or n <= 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], (n - 1) .. ':' .. dl)
end
return 1
`)

// connSay writes this process's count ARGV[2] in its field ARGV[1] of
// KEYS[1] with a new deadline, now + ARGV[3] ms; a count of 0 deletes
// the field.
var connSay = redis.NewScript(`
local n = tonumber(ARGV[2])
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], n .. ':' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// take takes one token from each bucket of keys, all or none (see
// redisLimiter for the Cluster). It returns how long until they would
// have one, 0 when taken.
func (l *redisLimiter) take(ctx context.Context, keys []string, buckets []gcraBucket) (time.Duration, error) {
	if !l.cluster {
		args := make([]any, 0, 2*len(buckets))
		for _, b := range buckets {
			args = append(args, b.interval, b.burst)
		}
		wait, err := gcraTake.Run(ctx, l.rdb, keys, args...).Int64()
		return time.Duration(wait) * time.Microsecond, err
	}
	for i, key := range keys {
		wait, err := gcraTake.Run(ctx, l.rdb, []string{key}, buckets[i].interval, buckets[i].burst).Int64()
		if err != nil || wait > 0 {
			if gerr := l.give(ctx, keys[:i], buckets[:i]); err == nil {
				err = gerr
			}
			return time.Duration(wait) * time.Microsecond, err
		}
	}
	return 0, nil
}

// give gives one token back to each bucket of keys.
func (l *redisLimiter) give(ctx context.Context, keys []string, buckets []gcraBucket) error {
	if len(keys) == 0 {
		return nil
	}
	if !l.cluster {
		args := make([]any, len(buckets))
		for i, b := range buckets {
			args[i] = b.interval
		}
		return gcraGive.Run(ctx, l.rdb, keys, args...).Err()
	}
	var errs error
	for i, key := range keys {
		if err := gcraGive.Run(ctx, l.rdb, []string{key}, buckets[i].interval).Err(); err != nil && errs == nil {
			errs = err
		}
	}
	return errs
}

// Allow is Limiter.Allow, on Redis.
func (l *redisLimiter) Allow(ctx context.Context, visitor, ip string) (bool, time.Duration) {
	if l.paused() {
		return l.mem.allow(visitor, ip)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisLimitTimeout)
	defer cancel()
	wait, err := l.take(ctx, []string{l.prefix + "v:" + visitor, l.prefix + "ip:" + limitKey(ip)}, []gcraBucket{l.rates.Load().msgs, l.rates.Load().ip})
	if err != nil {
		l.degraded("messages", err)
		return l.mem.allow(visitor, ip)
	}
	return wait == 0, wait
}

// ReserveStart is Limiter.ReserveStart, on Redis. The refund is a
// give-back script: atomic on each bucket, whichever process made the
// reservation.
func (l *redisLimiter) ReserveStart(ctx context.Context, ip, bot string) (bool, time.Duration, func()) {
	if l.paused() {
		return l.mem.ReserveStart(ctx, ip, bot)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisLimitTimeout)
	defer cancel()
	keys := []string{l.prefix + "s:" + limitKey(ip), l.prefix + "b:" + bot}
	r := l.rates.Load()
	buckets := []gcraBucket{r.start, r.bot}
	wait, err := l.take(ctx, keys, buckets)
	if err != nil {
		l.degraded("conversation starts", err)
		return l.mem.ReserveStart(ctx, ip, bot)
	}
	if wait > 0 {
		return false, wait, nil
	}
	var once sync.Once
	return true, 0, func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), redisLimitTimeout)
			defer cancel()
			if err := l.give(ctx, keys, buckets); err != nil {
				// The start stays taken: stricter by one start, for
				// one interval.
				l.degraded("a conversation start's refund", err)
			}
		})
	}
}

// Connect is Limiter.Connect, on Redis.
func (l *redisLimiter) Connect(ctx context.Context, ip string) (bool, func()) {
	key := limitKey(ip)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisLimitTimeout)
	defer cancel()
	// This process's count goes up before Redis's, so that a heartbeat
	// meanwhile errs by counting the socket early, not by forgetting it.
	l.mu.Lock()
	l.conns[key]++
	n := l.conns[key]
	l.mu.Unlock()
	ok, err, capped := 0, errPaused, l.rates.Load().connsPerIP
	if !l.paused() {
		ok, err = connTake.Run(ctx, l.rdb, []string{l.connKey(key)}, l.id, capped, l.ttl().Milliseconds()).Int()
	}
	if err != nil {
		if err != errPaused {
			l.degraded("connections", err)
		}
		ok = 0
		if n <= capped {
			ok = 1 // this process's own count, until Redis answers
		}
	}
	if ok == 0 {
		l.drop(key)
		return false, nil
	}
	var once sync.Once
	return true, func() {
		once.Do(func() {
			if l.drop(key) || l.paused() {
				return // the next heartbeat writes the right count
			}
			ctx, cancel := context.WithTimeout(context.Background(), redisLimitTimeout)
			defer cancel()
			if err := connGive.Run(ctx, l.rdb, []string{l.connKey(key)}, l.id).Err(); err != nil {
				// The next heartbeat writes the right count.
				l.degraded("a connection's release", err)
			}
		})
	}
}

// drop takes one socket off this process's count of key and reports
// whether the limiter is closed.
func (l *redisLimiter) drop(key string) (closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[key]--; l.conns[key] <= 0 {
		delete(l.conns, key)
	}
	return l.closed
}

func (l *redisLimiter) connKey(key string) string { return l.prefix + "conn:" + key }

// ttl is how long a count said by a heartbeat counts.
func (l *redisLimiter) ttl() time.Duration { return connHeartbeatTTL * l.heartbeat }

// beatLoop says this process's socket counts every heartbeat until
// stopBeat closes.
func (l *redisLimiter) beatLoop() {
	defer close(l.beatDone)
	t := time.NewTicker(l.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stopBeat:
			return
		case <-t.C:
		}
		l.mu.Lock()
		counts := make(map[string]int, len(l.conns))
		for k, n := range l.conns {
			counts[k] = n
		}
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), l.heartbeat)
		if err := l.say(ctx, counts); err != nil {
			l.degraded("the connection heartbeat", err)
		}
		cancel()
	}
}

// say writes counts as this process's, in one pipeline.
func (l *redisLimiter) say(ctx context.Context, counts map[string]int) error {
	if len(counts) == 0 {
		return nil
	}
	run := func() error {
		pipe := l.rdb.Pipeline()
		for k, n := range counts {
			connSay.EvalSha(ctx, pipe, []string{l.connKey(k)}, l.id, n, l.ttl().Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		// Redis restarted, or a node is new: load the script and again.
		if err = connSay.Load(ctx, l.rdb).Err(); err == nil {
			err = run()
		}
	}
	return err
}

// halt stops the heartbeat and nothing else: to Redis, the process is
// dead from now on (tests kill a process so).
func (l *redisLimiter) halt() {
	l.stopOnce.Do(func() { close(l.stopBeat) })
	<-l.beatDone
}

// Close is Limiter.Close: it stops the heartbeat and gives this
// process's socket counts back, so that a graceful shutdown frees its
// addresses' slots at once rather than after 3 heartbeats.
func (l *redisLimiter) Close() error {
	l.halt()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	zero := make(map[string]int, len(l.conns))
	for k := range l.conns {
		zero[k] = 0
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), redisLimitTimeout)
	defer cancel()
	if err := l.say(ctx, zero); err != nil {
		l.log.Warn("limits: could not give this process's connection counts back to Redis; they stop counting by themselves", "within", l.ttl().String(), "error", err)
	}
	return nil
}

// errPaused says a check was not sent to Redis (redisLimitPause).
var errPaused = errors.New("limits: Redis failed a moment ago")

// paused reports whether Redis failed a check less than
// redisLimitPause ago.
func (l *redisLimiter) paused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.down) < redisLimitPause
}

// degraded notes and logs that a check was made in this process because
// Redis did not answer.
func (l *redisLimiter) degraded(what string, err error) {
	l.mu.Lock()
	l.down = time.Now()
	l.mu.Unlock()
	l.log.Warn("limits: Redis did not answer; counting in this process only until it does", "limit", what, "error", err)
}
