package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions tunes OpenRedis; the zero value is the production setting.
type RedisOptions struct {
	// Prefix starts every key, so that several stores (a test's, another
	// deployment's) share one Redis. Empty means "porthole:". It must not
	// contain { or }: the store's hash tags must be the first in a key.
	Prefix string
	// CloseClient hands the client over to the store: Close closes it once
	// the calls in flight have returned. When false the caller owns the
	// client, and Close leaves it open for its other users.
	CloseClient bool
	// Timeout bounds the checks of OpenRedis. Zero means five seconds.
	Timeout time.Duration
	// Replicas, when above zero, makes every Append wait (WAIT) until that
	// many replicas of the primary have the message before it returns,
	// so that an ack survives the loss of the primary: a failover to a
	// replica keeps it. When fewer replicas confirm within
	// ReplicaTimeout, Append fails with ErrNotReplicated: the message is
	// on the primary, but not acknowledged, and the widget's resend (same
	// client id) finds it and waits again.
	Replicas int
	// ReplicaTimeout bounds that wait. Zero means one second.
	ReplicaTimeout time.Duration
}

// ErrNotReplicated is what Append returns when fewer replicas than
// RedisOptions.Replicas confirmed the write in time.
var ErrNotReplicated = errors.New("store: not confirmed by enough Redis replicas")

// Redis is the Store that several Porthole processes share: everything
// lives in one Redis (a single server or a Redis Cluster), so that any
// process serves any conversation and the outbox survives any of them.
//
// # Key layout
//
// Every key starts with RedisOptions.Prefix, "porthole:" by default, as
// shown. A conversation's own keys share the hash tag {id} (its 32 hex
// digits), so that on a cluster they sit in one slot and one Lua script
// changes them atomically:
//
//	porthole:{id}:conv     hash: bot, visitor, created, updated (unix ms),
//	                       last (seq); ov, the outbox version (counts the
//	                       changes of the pending set); cowner, cuntil: the
//	                       dispatch claim; rlock, runtil, rto: a Rebind in
//	                       progress (token, lock end, the key it moves to)
//	porthole:{id}:msg      hash: seq -> message record (netstrings, see
//	                       redis_scripts.go)
//	porthole:{id}:client   hash: ClientID -> seq, for Append's idempotency
//	porthole:{id}:attr     hash: attribute name -> value
//	porthole:{id}:pending  sorted set: the seqs of Pending messages
//	                       (zero-padded, so that ties order by seq), scored
//	                       by At (unix ms)
//	porthole:{id}:links    set: the link keys that were set to this
//	                       conversation, for Prune
//
// The indexes that find conversations from outside live in other slots
// (the {outbox} ones together, in the slot of their tag):
//
//	porthole:visitor:<len(bot)>:<bot>:<key>  string: the conversation the
//	                                         visitor or user key finds
//	porthole:link:<len(bot)>:<bot>:<ref>     string: the conversation an
//	                                         upstream ref is linked to
//	porthole:updated        sorted set: conversation ids scored by a lower
//	                        bound of their Updated (unix ms), for Prune
//	porthole:{outbox}       sorted set: the conversations that may have
//	                        Pending messages, scored by a lower bound of
//	                        their oldest pending At
//	porthole:{outbox}:v     hash: id -> the outbox version the entry reflects
//	porthole:{outbox}:pin:<id>  hash with a TTL: token -> 1 for each write
//	                        that may add a pending message and has not
//	                        updated the index yet
//
// # What is atomic
//
// One Lua script (EVALSHA) in the conversation's slot does each of: Append
// (seq, idempotency, record, pending set, Last and Updated), SetState,
// Claim, Unclaim, SetAttr, CompareAndSetAttr, Attr, Read, Load, and the
// deletion of one conversation by Prune. The indexes are updated by
// separate commands before or after that script, and each is a hint that
// is checked against the conversation's keys before it is believed:
//
//   - Conversation adds the new id to porthole:updated, creates the record (visitor
//     set) and then takes the visitor key with SET NX, so that of two racing
//     calls one wins and the other deletes its record. The record comes
//     first so that a key never names a record still to be written (which
//     a lookup could not tell from a deleted one). A crash in between leaves
//     a record that no key finds; Prune deletes it like any unbound
//     conversation.
//   - A lookup (Find, Conversation) believes a visitor key only when the
//     record it names exists and names that key back (visitor, or rto of a
//     Rebind in progress); otherwise it deletes the key (compare-and-delete)
//     and reports not found. So a key left by a crash, or by Prune, never
//     finds a conversation that is gone or has moved.
//   - Rebind takes a short lock on the record (serialising Rebinds of one
//     conversation), takes the new key with SET NX, drops the old key, then
//     sets the visitor and releases the lock. A crash leaves the old key,
//     the new key or both finding the conversation (the record's rto names
//     the new key, so lookups believe it) until the next Rebind of it, which
//     takes over the lock once it has run out. A logout (empty key) drops
//     the old key before it changes the record, so that the key finds
//     nothing from then on, even if the process dies.
//   - Link records the link key on the conversation, then sets it; Resolve
//     checks that the conversation exists and drops a link that names a
//     deleted one.
//   - porthole:updated is written when a conversation is created and raised by
//     Prune, which re-checks Updated inside its script: an entry lower than
//     the truth only makes Prune look at a conversation it then keeps.
//     Appends do not touch it, which saves them a round trip.
//   - The outbox index: a write that may add a pending message (Append in
//     state Pending, SetState to Pending) pins the entry and adds it with a
//     lower bound of its score before its script, and sets it afterwards from
//     what the script saw, with the conversation's outbox version so that a
//     late update never undoes a newer one; a removal waits while a pin
//     lives. A crash before the script leaves an extra entry; after it, an
//     entry whose score may be low. Outbox and Unclaimed read each entry's
//     truth (PEEK), order by it and repair the entry; Claim decides who
//     dispatches. A pending message is missed only if a writer stalls for
//     longer than the pin's TTL (a minute) between its script and the index
//     update and then dies.
//   - Prune deletes one conversation per script, then its visitor key, links
//     and index entries with compare-and-delete; a crash in between leaves
//     keys that name a deleted conversation, which the checks above ignore
//     and remove.
//
// Times (Created, Updated, At) come from the caller's clock, like the other
// stores; the validity of a claim and of the rebind lock is judged by the
// Redis server's clock (TIME), which all processes share.
//
// It is safe for concurrent use, also by several processes over one Redis.
type Redis struct {
	rdb         redis.UniversalClient
	prefix      string
	closeClient bool
	replicas    int
	replicaWait time.Duration

	// mu is held shared by every call and exclusively by Close, so that
	// Close waits for the calls in flight and later calls see closed.
	mu     sync.RWMutex
	closed bool
}

var _ Store = (*Redis)(nil)

// The lifetimes of the store's short leases.
const (
	// rebindLock bounds how long a Rebind may hold its conversation: a
	// process that dies in a Rebind blocks others of that conversation for
	// this long at most.
	rebindLock = 10 * time.Second
	// pinTTL bounds how long an outbox pin protects its index entry from
	// removal; see scriptPin.
	pinTTL = time.Minute
)

// OpenRedis returns the store over client (a *redis.Client, or a
// *redis.ClusterClient for a Redis Cluster). It checks that the server
// answers and is Redis 6.2 or later, and loads the scripts. The caller owns
// client unless opts.CloseClient hands it over; when OpenRedis fails, the
// client stays the caller's either way.
//
// go-redis sends a command again when its connection failed after sending
// it (Options.MaxRetries, three by default), so a write may run twice. The
// store's writes are idempotent or detect their own first try, except
// two: an Append without a ClientID may be stored twice (the service gives
// every message one), and a CompareAndSetAttr that was applied may report
// false (the caller reads again and finds its value). MaxRetries -1 trades
// that for an error.
func OpenRedis(client redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("store: OpenRedis needs a client: pass redis.NewClient or redis.NewClusterClient")
	}
	if opts.Prefix == "" {
		opts.Prefix = "porthole:"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("store: redis key prefix %q contains a brace; the store's keys carry hash tags of their own, choose a prefix without { and }", opts.Prefix)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("store: redis does not answer (%w); check the address and that redis-server runs", err)
	}
	// Some hosted Redis refuse INFO; then the first ZADD LT tells.
	info, _ := client.Info(ctx, "server").Result()
	if v, ok := redisVersion(info); ok && versionBefore(v, 6, 2) {
		return nil, fmt.Errorf("store: redis %s is too old: the Redis store needs 6.2 or later (ZADD LT/GT); upgrade the server", v)
	}
	for _, sc := range allScripts {
		if err := sc.Load(ctx, client).Err(); err != nil {
			return nil, fmt.Errorf("store: loading the Redis store's scripts: %w", err)
		}
	}
	if opts.Replicas < 0 {
		return nil, fmt.Errorf("store: %d replicas to wait for; use 0 (do not wait) or more", opts.Replicas)
	}
	if opts.ReplicaTimeout <= 0 {
		opts.ReplicaTimeout = time.Second
	}
	return &Redis{rdb: client, prefix: opts.Prefix, closeClient: opts.CloseClient, replicas: opts.Replicas, replicaWait: opts.ReplicaTimeout}, nil
}

// redisVersion finds redis_version in the answer to INFO server.
func redisVersion(info string) (string, bool) {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// versionBefore reports whether version v is before major.minor; a version
// it cannot read is not.
func versionBefore(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || ma == major && mi < minor
}

// Close implements Store. It waits for the calls in flight; it closes the
// client only if RedisOptions.CloseClient handed it over.
func (s *Redis) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if s.closeClient {
		if err := s.rdb.Close(); err != nil {
			return fmt.Errorf("store: closing the redis client: %w", err)
		}
	}
	return nil
}

// enter starts a call: it fails with ErrClosed after Close, and otherwise
// holds off Close until the caller calls s.mu.RUnlock. A call must not
// enter twice (a waiting Close would deadlock it).
func (s *Redis) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// convKeys are the keys of one conversation, all in the slot of {id}.
type convKeys struct{ conv, msg, client, attr, pending, links string }

func (s *Redis) keys(id string) convKeys {
	p := s.prefix + "{" + id + "}:"
	return convKeys{p + "conv", p + "msg", p + "client", p + "attr", p + "pending", p + "links"}
}

// pairKey is an unambiguous key for (a, b): the length of a leads.
func pairKey(a, b string) string { return strconv.Itoa(len(a)) + ":" + a + ":" + b }

func (s *Redis) visitorKey(bot, key string) string { return s.prefix + "visitor:" + pairKey(bot, key) }
func (s *Redis) linkKey(bot, ref string) string    { return s.prefix + "link:" + pairKey(bot, ref) }
func (s *Redis) updatedKey() string                { return s.prefix + "updated" }
func (s *Redis) outboxKey() string                 { return s.prefix + "{outbox}" }
func (s *Redis) outboxVersionsKey() string         { return s.prefix + "{outbox}:v" }
func (s *Redis) pinKey(id string) string           { return s.prefix + "{outbox}:pin:" + id }

// validID reports whether id is 32 lowercase hex characters: anything
// else names no conversation, and must not reach a key name, where a brace
// would move it to another slot.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newToken returns a random token that names one call's pin or lock.
func newToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fail wraps a Redis error with what the store was doing.
func fail(what string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("store: redis: %s: %w", what, err)
}

// run runs one script and returns its answer as a table (an integer answer
// becomes a one-element table).
func (s *Redis) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) ([]any, error) {
	v, err := sc.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return nil, err
	}
	if t, ok := v.([]any); ok {
		return t, nil
	}
	return []any{v}, nil
}

// runReplicated is run for a write whose success is an ack: with
// RedisOptions.Replicas it runs the script on a connection of its own to
// the primary that holds key, then WAITs there, since WAIT counts the
// replicas that have the writes of its own connection. Replication is in
// order, so the writes before it (the conversation's creation) are
// there too.
func (s *Redis) runReplicated(ctx context.Context, key string, sc *redis.Script, keys []string, args ...any) ([]any, error) {
	if s.replicas == 0 {
		return s.run(ctx, sc, keys, args...)
	}
	var node *redis.Client
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		node = n
	case *redis.Client:
		node = c
	default:
		return nil, fmt.Errorf("waiting for replicas needs a single, Sentinel or cluster client, not %T", s.rdb)
	}
	conn := node.Conn()
	defer conn.Close()
	v, err := sc.Run(ctx, conn, keys, args...).Result()
	if err != nil {
		return nil, err
	}
	n, err := conn.Wait(ctx, s.replicas, s.replicaWait).Result()
	if err != nil {
		return nil, err
	}
	if n < int64(s.replicas) {
		return nil, fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, n, s.replicas, s.replicaWait)
	}
	if t, ok := v.([]any); ok {
		return t, nil
	}
	return []any{v}, nil
}

// call is one script call of a pipeline (runAll).
type call struct {
	script *redis.Script
	keys   []string
	args   []any
	res    []any
	err    error
}

// runAll runs the calls in one pipeline (on a cluster, one per node, in
// parallel) and sets each call's res or err. A call that met an empty
// script cache (a restarted server) is run again alone, with EVAL.
func (s *Redis) runAll(ctx context.Context, calls []*call) {
	if len(calls) == 0 {
		return
	}
	cmds := make([]*redis.Cmd, len(calls))
	s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	for i, c := range calls {
		cmd := cmds[i]
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			cmd = c.script.Run(ctx, s.rdb, c.keys, c.args...)
		}
		v, err := cmd.Result()
		c.err = err
		if t, ok := v.([]any); ok {
			c.res = t
		} else if err == nil {
			c.res = []any{v}
		}
	}
}

// str returns element i of a script's answer as a string ("" for nil).
func str(t []any, i int) string {
	if i >= len(t) {
		return ""
	}
	switch v := t[i].(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// isNil reports whether element i of a script's answer is nil (false in
// Lua) or missing.
func isNil(t []any, i int) bool { return i >= len(t) || t[i] == nil }

// num returns element i of a script's answer as an integer; a score such
// as "1.7e+12" is read too.
func num(t []any, i int) (int64, error) {
	if i < len(t) {
		if v, ok := t[i].(int64); ok {
			return v, nil
		}
	}
	s := str(t, i)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("store: redis: unexpected script answer %q", s)
	}
	return int64(f), nil
}

// ms is t in unix milliseconds, the stores' precision.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS is the time of unix milliseconds, in UTC.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }
