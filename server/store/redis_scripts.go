package store

import "github.com/redis/go-redis/v9"

// The Lua scripts of the Redis store. Each runs on one hash slot: the
// per-conversation scripts name only keys tagged {<conversation id>}, the
// index scripts only keys tagged {outbox}, and cad a single key. Every key a
// script touches is passed in KEYS, as Redis Cluster requires. Scripts
// answer a table led by a status ("ok", "nf" for no conversation, ...) or
// an integer, never a Redis error, so that Go tells "not found" from a
// failure without parsing messages.
//
// A message record is a row of netstrings ("<length>:<bytes>"), so that
// both Lua and Go cut it without escaping: version ("1"), At in unix
// milliseconds, state, reason, id, client id, from, payload, body. The
// scripts rewrite only the first four; Go encodes the rest (msgTail).

// luaPrelude holds the helpers every script may use.
const luaPrelude = `
local function int(n) return string.format('%d', n) end
local function ns(s) return #s .. ':' .. s end
local function field(rec, pos)
  local c = string.find(rec, ':', pos, true)
  local n = tonumber(string.sub(rec, pos, c - 1))
  return string.sub(rec, c + 1, c + n), c + n + 1
end
-- member is a seq as the member of a pending set: zero-padded, so that
-- equal scores order by seq.
local function member(seq) return string.format('%020d', seq) end
-- outboxState is the conversation's outbox version and the score of its
-- oldest pending message ('' when none): what the outbox index must say.
local function outboxState(conv, pending)
  local p = redis.call('ZRANGE', pending, 0, 0, 'WITHSCORES')
  return redis.call('HGET', conv, 'ov') or '0', p[2] or ''
end
`

func newScript(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// scriptCreate makes the record of a new conversation.
// KEYS conv; ARGV bot, visitor, created (ms). 1 when made, 0 when the id
// is taken (never, with 128 random bits).
var scriptCreate = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'bot', ARGV[1], 'visitor', ARGV[2], 'created', ARGV[3], 'updated', ARGV[3], 'last', '0')
return 1
`)

// scriptAppend stores the next message: seq, idempotency on the client
// id, the record, the pending set and the conversation's Last and Updated,
// in one step. KEYS conv, msg, client, pending; ARGV client id, At ("" to
// stamp it), now (ms), state, msgTail.
// {'ok', seq, at, ov, oldest} | {'dup', seq, record, ov, oldest} | {'nf'}
var scriptAppend = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'nf'} end
if ARGV[1] ~= '' then
  local seq = redis.call('HGET', KEYS[3], ARGV[1])
  if seq then
    local ov, oldest = outboxState(KEYS[1], KEYS[4])
    return {'dup', seq, redis.call('HGET', KEYS[2], seq), ov, oldest}
  end
end
local f = redis.call('HMGET', KEYS[1], 'updated', 'last')
local updated, seq = tonumber(f[1]), tonumber(f[2]) + 1
local at = tonumber(ARGV[2])
if not at then at = math.max(tonumber(ARGV[3]), updated) end
redis.call('HSET', KEYS[2], int(seq), '1:1' .. ns(int(at)) .. ns(ARGV[4]) .. ARGV[5])
if ARGV[1] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], int(seq)) end
redis.call('HSET', KEYS[1], 'last', int(seq), 'updated', int(math.max(at, updated)))
if ARGV[4] == 'pending' then
  redis.call('ZADD', KEYS[4], int(at), member(seq))
  redis.call('HINCRBY', KEYS[1], 'ov', 1)
end
local ov, oldest = outboxState(KEYS[1], KEYS[4])
return {'ok', int(seq), int(at), ov, oldest}
`)

// scriptSetState changes a message's state and reason and keeps the
// pending set in step. KEYS conv, msg, pending; ARGV seq, state, reason.
// {'ok', record, ov, oldest, changed} | {'nm', ov, oldest} | {'nf'}
var scriptSetState = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'nf'} end
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if not rec then
  local ov, oldest = outboxState(KEYS[1], KEYS[3])
  return {'nm', ov, oldest}
end
local ver, pos = field(rec, 1)
local at
at, pos = field(rec, pos)
local _
_, pos = field(rec, pos)
_, pos = field(rec, pos)
rec = ns(ver) .. ns(at) .. ns(ARGV[2]) .. ns(ARGV[3]) .. string.sub(rec, pos)
redis.call('HSET', KEYS[2], ARGV[1], rec)
local m, changed = member(tonumber(ARGV[1]))
if ARGV[2] == 'pending' then
  changed = redis.call('ZADD', KEYS[3], at, m)
else
  changed = redis.call('ZREM', KEYS[3], m)
end
if changed == 1 then redis.call('HINCRBY', KEYS[1], 'ov', 1) end
local ov, oldest = outboxState(KEYS[1], KEYS[3])
return {'ok', rec, ov, oldest, changed}
`)

// scriptRead returns the records of up to limit messages after a seq.
// KEYS conv, msg; ARGV after, limit. {'ok', record...} | {'nf'}
var scriptRead = newScript(`
local last = redis.call('HGET', KEYS[1], 'last')
if not last then return {'nf'} end
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
last = tonumber(last)
local out = {'ok'}
if limit <= 0 or after >= last then return out end
local n = math.min(limit, last - after)
for first = 1, n, 500 do
  local fields = {}
  for i = first, math.min(n, first + 499) do fields[#fields + 1] = int(after + i) end
  local recs = redis.call('HMGET', KEYS[2], unpack(fields))
  for i = 1, #fields do out[#out + 1] = recs[i] end
end
return out
`)

// scriptLoad reads what an upstream call needs in one step.
// KEYS conv, msg, attr; ARGV seq, attribute names...
// {'ok', bot, visitor, created, updated, last, record|nil, values...} | {'nf'}
var scriptLoad = newScript(`
local f = redis.call('HMGET', KEYS[1], 'bot', 'visitor', 'created', 'updated', 'last')
if not f[1] then return {'nf'} end
local rec = false
local seq = tonumber(ARGV[1])
if seq > 0 and seq <= tonumber(f[5]) then rec = redis.call('HGET', KEYS[2], ARGV[1]) end
local out = {'ok', f[1], f[2], f[3], f[4], f[5], rec}
if #ARGV > 1 then
  local values = redis.call('HMGET', KEYS[3], unpack(ARGV, 2))
  for i = 1, #ARGV - 1 do out[7 + i] = values[i] end
end
return out
`)

// scriptGetAttr reads one attribute. KEYS conv, attr; ARGV name.
// {'ok', value|nil} | {'nf'}
var scriptGetAttr = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'nf'} end
return {'ok', redis.call('HGET', KEYS[2], ARGV[1])}
`)

// scriptSetAttr sets (or, when empty, deletes) an attribute, and with a
// fourth argument only when its value is ARGV[2] ("" for absent).
// KEYS conv, attr; ARGV name, old, value, compare ('1' or '0').
// 1 set, 0 refused, -1 no conversation.
var scriptSetAttr = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[4] == '1' and (redis.call('HGET', KEYS[2], ARGV[1]) or '') ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 1
`)

// scriptClaim takes or renews the dispatch claim, judging the current
// claim by the Redis server's clock (TIME), the one clock all processes
// share. KEYS conv; ARGV owner, until (ms). 1 won, 0 held, -1 no
// conversation.
var scriptClaim = newScript(`
local f = redis.call('HMGET', KEYS[1], 'bot', 'cowner', 'cuntil')
if not f[1] then return -1 end
if f[2] and f[2] ~= ARGV[1] then
  local t = redis.call('TIME')
  if tonumber(f[3]) * 1000 > tonumber(t[1]) * 1000000 + tonumber(t[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'cowner', ARGV[1], 'cuntil', ARGV[2])
return 1
`)

// scriptUnclaim drops the claim if owner holds it. KEYS conv; ARGV owner.
var scriptUnclaim = newScript(`
if redis.call('HGET', KEYS[1], 'cowner') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'cowner', 'cuntil')
end
return 0
`)

// scriptLink records on the conversation a link key that names it, for
// Prune. KEYS conv, links; ARGV link key. 1, or 0 for no conversation.
var scriptLink = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`)

// scriptPrune deletes a conversation with all its keys if it was last
// updated before ARGV[1] (ms), and returns what names it from other slots.
// KEYS conv, msg, client, attr, pending, links.
// {'deleted', bot, visitor, rebind target, had outbox ('1'/'0'), link keys...}
// | {'kept', updated} | {'gone'}
var scriptPrune = newScript(`
local f = redis.call('HMGET', KEYS[1], 'bot', 'visitor', 'updated', 'rlock', 'rto', 'ov')
if not f[1] then return {'gone'} end
if tonumber(f[3]) >= tonumber(ARGV[1]) then return {'kept', f[3]} end
local to = ''
if f[4] and f[5] then to = f[5] end
local out = {'deleted', f[1], f[2], to, f[6] and '1' or '0'}
for _, l in ipairs(redis.call('SMEMBERS', KEYS[6])) do out[#out + 1] = l end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return out
`)

// scriptRebindBegin takes the conversation's rebind lock for a token and
// records the key it moves to (rto), which lookups of that key accept from
// then on. The lock is judged by the server's clock. KEYS conv; ARGV key,
// token, lock time (ms). {'ok', bot, visitor} | {'same'} | {'busy'} | {'nf'}
var scriptRebindBegin = newScript(`
local f = redis.call('HMGET', KEYS[1], 'bot', 'visitor', 'rlock', 'runtil')
if not f[1] then return {'nf'} end
if f[2] == ARGV[1] then return {'same'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if f[3] and f[3] ~= ARGV[2] and tonumber(f[4]) > now then return {'busy'} end
redis.call('HSET', KEYS[1], 'rlock', ARGV[2], 'runtil', int(now + tonumber(ARGV[3])), 'rto', ARGV[1])
return {'ok', f[1], f[2]}
`)

// scriptRebindEnd releases the rebind lock of a token, setting the
// visitor to ARGV[2] first when ARGV[3] is '1'. A commit whose lock is
// gone but whose key is the visitor already was done (by this call's first
// try, which go-redis sent again, or by another Rebind to the same key).
// KEYS conv; ARGV token, key, commit.
// {'ok', bot, visitor, created, updated, last} | {'lost'} | {'nf'}
var scriptRebindEnd = newScript(`
local f = redis.call('HMGET', KEYS[1], 'bot', 'rlock', 'visitor')
if not f[1] then return {'nf'} end
if f[2] ~= ARGV[1] then
  if ARGV[3] ~= '1' or f[3] ~= ARGV[2] then return {'lost'} end
else
  if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'visitor', ARGV[2]) end
  redis.call('HDEL', KEYS[1], 'rlock', 'runtil', 'rto')
end
local c = redis.call('HMGET', KEYS[1], 'bot', 'visitor', 'created', 'updated', 'last')
return {'ok', c[1], c[2], c[3], c[4], c[5]}
`)

// scriptAttrs reads every attribute. KEYS conv, attr.
// {'ok', name, value, ...} | {'nf'}
var scriptAttrs = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'nf'} end
local out = redis.call('HGETALL', KEYS[2])
table.insert(out, 1, 'ok')
return out
`)

// scriptPending reads a conversation's pending set. KEYS conv, pending.
// {'ok', member, ...} | {'gone'}
var scriptPending = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local out = redis.call('ZRANGE', KEYS[2], 0, -1)
table.insert(out, 1, 'ok')
return out
`)

// scriptPeek reads what the outbox index says about a conversation, from
// the truth: outbox version, claim, oldest pending score and up to n
// pending messages (seq, record) in (At, seq) order. KEYS conv, pending,
// msg; ARGV n. {'ok', ov, owner, until, oldest, seq, record, ...} | {'gone'}
var scriptPeek = newScript(`
local f = redis.call('HMGET', KEYS[1], 'bot', 'ov', 'cowner', 'cuntil')
if not f[1] then return {'gone'} end
local n = tonumber(ARGV[1])
local p = redis.call('ZRANGE', KEYS[2], 0, math.max(n, 1) - 1, 'WITHSCORES')
local out = {'ok', f[2] or '0', f[3] or '', f[4] or '0', p[2] or ''}
if n > 0 then
  for i = 1, #p, 2 do
    local seq = int(tonumber(p[i]))
    out[#out + 1] = seq
    out[#out + 1] = redis.call('HGET', KEYS[3], seq)
  end
end
return out
`)

// scriptPin announces an outbox write that may add a pending message:
// it pins the conversation's index entry (no removal while a pin lives)
// and adds the entry, or lowers its score, to a lower bound of the new
// message's At. Pins expire, so that a writer that died leaves none for
// long. KEYS index, pin; ARGV conversation, token, score, pin time (ms).
var scriptPin = newScript(`
redis.call('HSET', KEYS[2], ARGV[2], '1')
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[1], 'LT', ARGV[3], ARGV[1])
return 0
`)

// scriptIndex brings a conversation's outbox index entry in line with
// what a script saw at outbox version ARGV[3] (or 'gone': the conversation
// is deleted): the oldest pending score ARGV[4], "" when nothing is
// pending. It first drops the caller's pin ARGV[2] ("" for none). While
// another pin lives, it only lowers or adds the entry, never removes it;
// otherwise it sets the entry exactly unless the index already reflects a
// later version. KEYS index, versions, pin; ARGV conversation, token,
// version, score.
var scriptIndex = newScript(`
local conv, score = ARGV[1], ARGV[4]
if ARGV[2] ~= '' then redis.call('HDEL', KEYS[3], ARGV[2]) end
if ARGV[3] == 'gone' then
  redis.call('ZREM', KEYS[1], conv)
  redis.call('HDEL', KEYS[2], conv)
  redis.call('UNLINK', KEYS[3])
  return 1
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  if score ~= '' then redis.call('ZADD', KEYS[1], 'LT', score, conv) end
  return 0
end
local stored = redis.call('HGET', KEYS[2], conv)
if stored and tonumber(stored) > tonumber(ARGV[3]) then return 0 end
if score == '' then
  redis.call('ZREM', KEYS[1], conv)
  redis.call('HDEL', KEYS[2], conv)
else
  redis.call('ZADD', KEYS[1], score, conv)
  redis.call('HSET', KEYS[2], conv, ARGV[3])
end
return 1
`)

// scriptCAD deletes a key if it still holds ARGV[1]: the compare-and-
// delete by which a mapping or link is dropped only while it names the
// conversation that is going. KEYS key.
var scriptCAD = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// allScripts are loaded by OpenRedis, so that a script that does not
// compile fails there and the first calls need no EVAL fallback.
var allScripts = []*redis.Script{
	scriptCreate, scriptAppend, scriptSetState, scriptRead, scriptLoad,
	scriptGetAttr, scriptSetAttr, scriptClaim, scriptUnclaim, scriptLink,
	scriptPrune, scriptRebindBegin, scriptRebindEnd, scriptPeek, scriptPin,
	scriptIndex, scriptCAD, scriptPending, scriptAttrs,
}
