package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxRaces bounds the rounds of a get-or-create or a key take-over that
// keeps losing to other writers; in practice the second round wins.
const maxRaces = 8

// convFields are the record fields of a Conversation, in the order in
// which parseConv reads them; rlock and rto follow in readConv.
var convFields = []string{"bot", "visitor", "created", "updated", "last", "rlock", "rto"}

// parseConv reads a conversation from the values of convFields (the
// first five), as HMGET and the scripts answer them.
func parseConv(id string, v []any) (Conversation, error) {
	if isNil(v, 0) {
		return Conversation{}, errNoConversation(id)
	}
	created, err1 := strconv.ParseInt(str(v, 2), 10, 64)
	updated, err2 := strconv.ParseInt(str(v, 3), 10, 64)
	last, err3 := strconv.ParseUint(str(v, 4), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Conversation{}, fmt.Errorf("conversation %s: corrupt record in redis: %w", id, err)
	}
	return Conversation{ID: id, Bot: str(v, 0), Visitor: str(v, 1), Created: fromMS(created), Updated: fromMS(updated), Last: last}, nil
}

// readConv reads conversation id, and the key a Rebind in progress moves
// it to (moving false when none is).
func (s *Redis) readConv(ctx context.Context, id string) (c Conversation, to string, moving bool, err error) {
	v, err := s.rdb.HMGet(ctx, s.keys(id).conv, convFields...).Result()
	if err != nil {
		return Conversation{}, "", false, err
	}
	c, err = parseConv(id, v)
	return c, str(v, 6), !isNil(v, 5), err
}

// cad deletes key if it still holds value.
func (s *Redis) cad(ctx context.Context, key, value string) error {
	_, err := s.run(ctx, scriptCAD, []string{key}, value)
	return err
}

// lookup returns the conversation that key finds for bot, with found
// false when there is none.
func (s *Redis) lookup(ctx context.Context, bot, key string) (Conversation, bool, error) {
	id, err := s.rdb.Get(ctx, s.visitorKey(bot, key)).Result()
	if errors.Is(err, redis.Nil) {
		return Conversation{}, false, nil
	}
	if err != nil {
		return Conversation{}, false, err
	}
	return s.confirm(ctx, bot, key, id)
}

// confirm returns conversation id if the visitor key (bot, key), which
// holds id, really finds it: the record exists and names the key back, as its
// visitor or as the target of a Rebind in progress. Otherwise the key is
// left over (a crash, a Prune, a move) and confirm deletes it, unless it has
// changed meanwhile.
func (s *Redis) confirm(ctx context.Context, bot, key, id string) (Conversation, bool, error) {
	if validID(id) {
		c, to, moving, err := s.readConv(ctx, id)
		if err == nil && c.Bot == bot && (c.Visitor == key || moving && key != "" && to == key) {
			c.Visitor = key
			return c, true, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Conversation{}, false, err
		}
	}
	return Conversation{}, false, s.cad(ctx, s.visitorKey(bot, key), id)
}

// Conversation implements Store.
func (s *Redis) Conversation(ctx context.Context, bot, visitor string) (Conversation, bool, error) {
	if err := s.enter(); err != nil {
		return Conversation{}, false, err
	}
	defer s.mu.RUnlock()
	for range maxRaces {
		c, found, err := s.lookup(ctx, bot, visitor)
		if err != nil || found {
			return c, false, fail("conversation of "+bot+"/"+visitor, err)
		}
		c, created, err := s.create(ctx, bot, visitor)
		if err != nil || created {
			return c, created, fail("creating the conversation of "+bot+"/"+visitor, err)
		}
	}
	return Conversation{}, false, fmt.Errorf("store: redis: conversation of %s/%s: still racing other writers after %d rounds; call again", bot, visitor, maxRaces)
}

// create makes a conversation for (bot, visitor): first its entry in the
// updated index and its record, then the visitor key with SET NX. created
// is false when another call took the key first; create then deletes its
// own record and the caller looks the winner up.
func (s *Redis) create(ctx context.Context, bot, visitor string) (c Conversation, created bool, err error) {
	t := now()
	c = Conversation{ID: newConversationID(), Bot: bot, Visitor: visitor, Created: t, Updated: t}
	k := s.keys(c.ID)
	if err := s.rdb.ZAdd(ctx, s.updatedKey(), redis.Z{Score: float64(ms(t)), Member: c.ID}).Err(); err != nil {
		return Conversation{}, false, err
	}
	res, err := s.run(ctx, scriptCreate, []string{k.conv}, bot, visitor, ms(t))
	if err != nil || str(res, 0) != "1" {
		return Conversation{}, false, err // "0": the id is taken; go round again
	}
	vk := s.visitorKey(bot, visitor)
	won, err := s.rdb.SetNX(ctx, vk, c.ID, 0).Result()
	if err != nil || won {
		return c, won, err
	}
	// A SET NX that go-redis sent again after a lost answer finds its own
	// first try: this call won, and its record may be in use already.
	if cur, err := s.rdb.Get(ctx, vk).Result(); err == nil && cur == c.ID {
		return c, true, nil
	}
	// Best effort: a record left here is found by no key and pruned in time.
	s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, k.conv)
		p.ZRem(ctx, s.updatedKey(), c.ID)
		return nil
	})
	return Conversation{}, false, nil
}

// Find implements Store.
func (s *Redis) Find(ctx context.Context, bot, visitor string) (Conversation, error) {
	if err := s.enter(); err != nil {
		return Conversation{}, err
	}
	defer s.mu.RUnlock()
	c, found, err := s.lookup(ctx, bot, visitor)
	if err == nil && !found {
		err = fmt.Errorf("conversation of %s/%s: %w", bot, visitor, ErrNotFound)
	}
	return c, fail("find "+bot+"/"+visitor, err)
}

// Get implements Store.
func (s *Redis) Get(ctx context.Context, id string) (Conversation, error) {
	if err := s.enter(); err != nil {
		return Conversation{}, err
	}
	defer s.mu.RUnlock()
	if !validID(id) {
		return Conversation{}, errNoConversation(id)
	}
	c, _, _, err := s.readConv(ctx, id)
	return c, fail("get conversation "+id, err)
}

// Rebind implements Store; see the type's comment for its steps.
func (s *Redis) Rebind(ctx context.Context, id, key string) (Conversation, bool, error) {
	if err := s.enter(); err != nil {
		return Conversation{}, false, err
	}
	defer s.mu.RUnlock()
	if !validID(id) {
		return Conversation{}, false, errNoConversation(id)
	}
	c, moved, err := s.rebind(ctx, id, key)
	return c, moved, fail("rebind of conversation "+id, err)
}

func (s *Redis) rebind(ctx context.Context, id, key string) (Conversation, bool, error) {
	k := s.keys(id)
	token := newToken()
	var bot, old string
	for locked := false; !locked; {
		res, err := s.run(ctx, scriptRebindBegin, []string{k.conv}, key, token, rebindLock.Milliseconds())
		if err != nil {
			return Conversation{}, false, err
		}
		switch str(res, 0) {
		case "nf":
			return Conversation{}, false, errNoConversation(id)
		case "same":
			c, _, _, err := s.readConv(ctx, id)
			return c, err == nil, err
		case "busy": // another Rebind of this conversation: wait for it
			if err := pause(ctx, 5*time.Millisecond+rand.N(10*time.Millisecond)); err != nil {
				return Conversation{}, false, err
			}
		default:
			bot, old, locked = str(res, 1), str(res, 2), true
		}
	}
	// The lock is released even when the caller has gone: a lock left
	// behind would hold up the next Rebind until it runs out.
	release := func(commit bool) ([]any, error) {
		flag := "0"
		if commit {
			flag = "1"
		}
		return s.run(context.WithoutCancel(ctx), scriptRebindEnd, []string{k.conv}, token, key, flag)
	}
	if key != "" {
		other, err := s.takeKey(ctx, bot, key, id)
		if err != nil || other != nil {
			release(false)
			if other != nil {
				return *other, false, nil
			}
			return Conversation{}, false, err
		}
	}
	// Drop the old key first: from here on it finds nothing, also if this
	// process dies before the record says so.
	if err := s.cad(ctx, s.visitorKey(bot, old), id); err != nil {
		release(false)
		return Conversation{}, false, err
	}
	res, err := release(true)
	if err != nil {
		return Conversation{}, false, err
	}
	switch str(res, 0) {
	case "nf": // pruned meanwhile
		if key != "" {
			s.cad(ctx, s.visitorKey(bot, key), id)
		}
		return Conversation{}, false, errNoConversation(id)
	case "lost":
		return Conversation{}, false, fmt.Errorf("store: rebind took longer than its %v lock and another Rebind took over; call Rebind again", rebindLock)
	}
	c, err := parseConv(id, res[1:])
	return c, err == nil, err
}

// takeKey makes the visitor key (bot, key) find conversation id, unless it
// finds another conversation already: then it returns that one.
func (s *Redis) takeKey(ctx context.Context, bot, key, id string) (*Conversation, error) {
	vk := s.visitorKey(bot, key)
	for range maxRaces {
		won, err := s.rdb.SetNX(ctx, vk, id, 0).Result()
		if err != nil || won {
			return nil, err
		}
		other, err := s.rdb.Get(ctx, vk).Result()
		switch {
		case errors.Is(err, redis.Nil): // deleted meanwhile: try again
			continue
		case err != nil:
			return nil, err
		case other == id: // left by an earlier Rebind to the same key
			return nil, nil
		}
		c, found, err := s.confirm(ctx, bot, key, other) // deletes a left-over key
		if err != nil || found {
			return &c, err
		}
	}
	return nil, fmt.Errorf("store: redis: visitor key %s/%s: still racing other writers after %d rounds; call again", bot, key, maxRaces)
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Link implements Store. The conversation's script records the link key
// first, so that Prune finds it; a Prune racing in between can leave the
// link naming a deleted conversation, which Resolve drops.
func (s *Redis) Link(ctx context.Context, bot, ref, conversation string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return errNoConversation(conversation)
	}
	k, lk := s.keys(conversation), s.linkKey(bot, ref)
	res, err := s.run(ctx, scriptLink, []string{k.conv, k.links}, lk)
	if err == nil && str(res, 0) != "1" {
		return errNoConversation(conversation)
	}
	if err == nil {
		err = s.rdb.Set(ctx, lk, conversation, 0).Err()
	}
	return fail("link "+bot+"/"+ref, err)
}

// Resolve implements Store. It checks that the conversation exists, since
// a link may outlive it (see Link).
func (s *Redis) Resolve(ctx context.Context, bot, ref string) (string, error) {
	if err := s.enter(); err != nil {
		return "", err
	}
	defer s.mu.RUnlock()
	lk := s.linkKey(bot, ref)
	id, err := s.rdb.Get(ctx, lk).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("link %s/%s: %w", bot, ref, ErrNotFound)
	}
	if err != nil {
		return "", fail("resolve "+bot+"/"+ref, err)
	}
	n := int64(0)
	if validID(id) {
		if n, err = s.rdb.Exists(ctx, s.keys(id).conv).Result(); err != nil {
			return "", fail("resolve "+bot+"/"+ref, err)
		}
	}
	if n == 0 {
		if err := s.cad(ctx, lk, id); err != nil {
			return "", fail("resolve "+bot+"/"+ref, err)
		}
		return "", fmt.Errorf("link %s/%s: %w", bot, ref, ErrNotFound)
	}
	return id, nil
}

// prunePage is how many conversations Prune takes from the updated index
// at a time (one pipeline of scripts).
const prunePage = 200

// Prune implements Store. It walks the updated index below the cut-off;
// each conversation's script re-checks Updated and deletes it with all
// its keys, or answers the true Updated, which Prune writes back to the
// index. Then it drops the keys of other slots that still name a deleted
// conversation. An index entry without a record is dropped once it is a
// minute old (younger, it may be a creation in progress).
func (s *Redis) Prune(ctx context.Context, before time.Time) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	cut := before.UnixMilli()
	if fromMS(cut).Before(before) {
		cut++ // Updated < before, in whole milliseconds
	}
	n, skip := 0, int64(0)
	for {
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: s.updatedKey(), Start: "-inf", Stop: "(" + strconv.FormatInt(cut, 10),
			ByScore: true, Offset: skip, Count: prunePage,
		}).Result()
		if err != nil {
			return n, fail("prune", err)
		}
		calls := make([]*call, len(zs))
		for i, z := range zs {
			k := s.keys(z.Member.(string))
			calls[i] = &call{script: scriptPrune, keys: []string{k.conv, k.msg, k.client, k.attr, k.pending, k.links}, args: []any{cut}}
		}
		s.runAll(ctx, calls)
		var cleanup []*call
		var drop []any
		var raise []redis.Z
		young := float64(ms(now().Add(-time.Minute)))
		for i, c := range calls {
			id := zs[i].Member.(string)
			if c.err != nil {
				return n, fail("prune conversation "+id, c.err)
			}
			switch str(c.res, 0) {
			case "deleted":
				n++
				drop = append(drop, id)
				cleanup = append(cleanup, s.pruneCleanup(id, c.res)...)
			case "kept":
				updated, err := num(c.res, 1)
				if err != nil {
					return n, fail("prune conversation "+id, err)
				}
				raise = append(raise, redis.Z{Score: float64(updated), Member: id})
			default: // "gone"
				if zs[i].Score < young {
					drop = append(drop, id)
				} else {
					skip++
				}
			}
		}
		s.runAll(ctx, cleanup)
		for _, c := range cleanup {
			if c.err != nil {
				return n, fail("prune", c.err)
			}
		}
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			if len(drop) > 0 {
				p.ZRem(ctx, s.updatedKey(), drop...)
			}
			if len(raise) > 0 {
				p.ZAddArgs(ctx, s.updatedKey(), redis.ZAddArgs{XX: true, GT: true, Members: raise})
			}
			return nil
		})
		if err != nil {
			return n, fail("prune", err)
		}
		if len(zs) < prunePage {
			return n, nil
		}
	}
}

// pruneCleanup returns the calls that drop what names deleted conversation
// id from other slots, given scriptPrune's answer.
func (s *Redis) pruneCleanup(id string, res []any) []*call {
	bot, visitor, to := str(res, 1), str(res, 2), str(res, 3)
	cad := func(key string) *call { return &call{script: scriptCAD, keys: []string{key}, args: []any{id}} }
	calls := []*call{cad(s.visitorKey(bot, visitor))}
	if to != "" {
		calls = append(calls, cad(s.visitorKey(bot, to)))
	}
	for i := 5; i < len(res); i++ {
		calls = append(calls, cad(str(res, i)))
	}
	if str(res, 4) == "1" {
		calls = append(calls, s.indexCall(id, "", "gone", ""))
	}
	return calls
}

// List implements Store. porthole:updated holds every conversation id, so
// List reads them all, a page at a time, and each one's record: an
// administrator's listing, not a request path.
func (s *Redis) List(ctx context.Context, bot string, after Cursor, limit int) ([]Conversation, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []Conversation
	var cursor uint64
	for {
		ids, next, err := s.rdb.ZScan(ctx, s.updatedKey(), cursor, "", 500).Result()
		if err != nil {
			return nil, fail("list conversations", err)
		}
		cmds := make([]*redis.SliceCmd, 0, len(ids)/2)
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < len(ids); i += 2 { // member, score
				cmds = append(cmds, p.HMGet(ctx, s.keys(ids[i]).conv, convFields...))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fail("list conversations", err)
		}
		for i, cmd := range cmds {
			c, err := parseConv(ids[2*i], cmd.Val())
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile; the entry is a hint
			}
			if err != nil {
				return nil, fail("list conversations", err)
			}
			if c.Bot == bot && after.after(c) {
				out = append(out, c)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.SortFunc(out, listOrder)
	return out[:min(len(out), max(limit, 0))], nil
}

// Attrs implements Store.
func (s *Redis) Attrs(ctx context.Context, conversation string) (map[string]string, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return nil, errNoConversation(conversation)
	}
	k := s.keys(conversation)
	res, err := s.run(ctx, scriptAttrs, []string{k.conv, k.attr})
	if err != nil {
		return nil, fail("attributes of conversation "+conversation, err)
	}
	if str(res, 0) == "nf" {
		return nil, errNoConversation(conversation)
	}
	out := map[string]string{}
	for i := 1; i+1 < len(res); i += 2 {
		out[str(res, i)] = str(res, i+1)
	}
	return out, nil
}

// Erase implements Store: Prune's deletion of one conversation, whatever
// its age.
func (s *Redis) Erase(ctx context.Context, id string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if !validID(id) {
		return errNoConversation(id)
	}
	k := s.keys(id)
	res, err := s.run(ctx, scriptPrune, []string{k.conv, k.msg, k.client, k.attr, k.pending, k.links}, int64(1)<<53)
	if err != nil {
		return fail("erase conversation "+id, err)
	}
	if str(res, 0) != "deleted" {
		return errNoConversation(id)
	}
	cleanup := s.pruneCleanup(id, res)
	s.runAll(ctx, cleanup)
	for _, c := range cleanup {
		if c.err != nil {
			return fail("erase conversation "+id, c.err)
		}
	}
	return fail("erase conversation "+id, s.rdb.ZRem(ctx, s.updatedKey(), id).Err())
}
