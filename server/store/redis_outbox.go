package store

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds the outbox of the Redis store: the dispatch claims, kept
// in the conversation's record, and the outbox index porthole:{outbox}
// that Outbox and Unclaimed walk. The index is a hint: every entry is
// checked against its conversation (scriptPeek) before it counts, and
// repaired when wrong.

// Claim implements Store. The claim's validity is judged by the Redis
// server's clock, which all processes share.
func (s *Redis) Claim(ctx context.Context, conversation, owner string, until time.Time) (bool, error) {
	if err := checkOwner(conversation, owner); err != nil {
		return false, err
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return false, errNoConversation(conversation)
	}
	res, err := s.run(ctx, scriptClaim, []string{s.keys(conversation).conv}, owner, ms(until))
	if err != nil {
		return false, fail("claim of conversation "+conversation, err)
	}
	switch str(res, 0) {
	case "-1":
		return false, errNoConversation(conversation)
	case "1":
		return true, nil
	}
	return false, nil
}

// Pending implements Store. The pending set is scored by time, so its
// members are read whole and sorted by seq: a conversation has a few
// pending messages at most (the visitor's rate limit sees to that).
func (s *Redis) Pending(ctx context.Context, conversation string, limit int) ([]uint64, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return nil, errNoConversation(conversation)
	}
	k := s.keys(conversation)
	res, err := s.run(ctx, scriptPending, []string{k.conv, k.pending})
	if err != nil {
		return nil, fail("pending of conversation "+conversation, err)
	}
	if str(res, 0) == "gone" {
		return nil, errNoConversation(conversation)
	}
	out := make([]uint64, 0, len(res)-1)
	for i := 1; i < len(res); i++ {
		seq, err := strconv.ParseUint(str(res, i), 10, 64)
		if err != nil {
			return nil, fail("pending of conversation "+conversation, err)
		}
		out = append(out, seq)
	}
	slices.Sort(out)
	return out[:min(len(out), max(limit, 0))], nil
}

// Unclaim implements Store.
func (s *Redis) Unclaim(ctx context.Context, conversation, owner string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return nil // names no conversation, so no claim either
	}
	_, err := s.run(ctx, scriptUnclaim, []string{s.keys(conversation).conv}, owner)
	return fail("unclaim of conversation "+conversation, err)
}

// pin announces a write that may add a pending message to conversation id
// (scriptPin), with lower a lower bound of its At in unix ms.
func (s *Redis) pin(ctx context.Context, id, token string, lower int64) error {
	_, err := s.run(ctx, scriptPin, []string{s.outboxKey(), s.pinKey(id)}, id, token, lower, pinTTL.Milliseconds())
	return err
}

// indexCall is the scriptIndex call that sets conversation id's index
// entry from what a script saw at an outbox version.
func (s *Redis) indexCall(id, token, version, score string) *call {
	return &call{
		script: scriptIndex,
		keys:   []string{s.outboxKey(), s.outboxVersionsKey(), s.pinKey(id)},
		args:   []any{id, token, version, score},
	}
}

// index runs an indexCall after a write. It runs even when the caller's
// context has ended, since the write is done; its failure is not the
// write's: the entry is then an extra or low-scored hint, which the pin's
// expiry and the readers' repairs put right.
func (s *Redis) index(ctx context.Context, id, token, version, score string) {
	s.runAll(context.WithoutCancel(ctx), []*call{s.indexCall(id, token, version, score)})
}

// peek is what scriptPeek read of a conversation of the outbox index.
type peek struct {
	id      string
	gone    bool
	version string
	owner   string
	until   int64  // unix ms
	oldest  string // score of the oldest pending message, "" for none
	msgs    []Message
}

func parsePeek(id string, res []any) (peek, error) {
	p := peek{id: id}
	if str(res, 0) == "gone" {
		p.gone = true
		return p, nil
	}
	p.version, p.owner, p.oldest = str(res, 1), str(res, 2), str(res, 4)
	until, err := num(res, 3)
	if err != nil {
		return p, err
	}
	p.until = until
	for i := 5; i+1 < len(res); i += 2 {
		seq, err := strconv.ParseUint(str(res, i), 10, 64)
		if err != nil {
			return p, err
		}
		m, err := decodeMsg(id, seq, str(res, i+1))
		if err != nil {
			return p, err
		}
		p.msgs = append(p.msgs, m)
	}
	return p, nil
}

// scanOutbox walks the outbox index in score order, a page (about limit
// entries) at a time, reads each conversation's truth with up to n of its
// pending messages, and hands it to take. It stops when the index ends or enough says that
// no entry after (score, id), the last one read, can change the answer:
// scores are lower bounds of the truth and ties are ordered by id. On the
// way it repairs the entries whose score or presence is wrong.
func (s *Redis) scanOutbox(ctx context.Context, limit, n int, enough func(score float64, id string) bool, take func(peek)) error {
	page := int64(min(max(limit, 16), 500))
	from, skip := "-inf", int64(0)
	var repairs []*call
	defer func() { s.runAll(ctx, repairs) }()
	for {
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: s.outboxKey(), Start: from, Stop: "+inf", ByScore: true, Offset: skip, Count: page,
		}).Result()
		if err != nil || len(zs) == 0 {
			return err
		}
		calls := make([]*call, len(zs))
		for i, z := range zs {
			k := s.keys(z.Member.(string))
			calls[i] = &call{script: scriptPeek, keys: []string{k.conv, k.pending, k.msg}, args: []any{n}}
		}
		s.runAll(ctx, calls)
		for i, c := range calls {
			id := zs[i].Member.(string)
			if c.err != nil {
				return c.err
			}
			p, err := parsePeek(id, c.res)
			if err != nil {
				return err
			}
			switch {
			case p.gone:
				repairs = append(repairs, s.indexCall(id, "", "gone", ""))
			case !sameScore(p.oldest, zs[i].Score):
				repairs = append(repairs, s.indexCall(id, "", p.version, p.oldest))
			}
			if !p.gone && p.oldest != "" {
				take(p)
			}
		}
		last := zs[len(zs)-1]
		if int64(len(zs)) < page || enough(last.Score, last.Member.(string)) {
			return nil
		}
		// Go on from the last score, stepping over the entries of that
		// score already read.
		next := strconv.FormatFloat(last.Score, 'f', -1, 64)
		ties := int64(0)
		for _, z := range zs {
			if z.Score == last.Score {
				ties++
			}
		}
		if next == from {
			skip += ties
		} else {
			from, skip = next, ties
		}
	}
}

// sameScore reports whether the oldest pending score a peek read is the
// index's score; "" (nothing pending) is no score.
func sameScore(oldest string, score float64) bool {
	f, err := strconv.ParseFloat(oldest, 64)
	return err == nil && f == score
}

// Outbox implements Store. It merges the pending messages of the
// conversations at the head of the outbox index, read from each
// conversation, in the order of the Bolt outbox keys: At, conversation,
// seq.
func (s *Redis) Outbox(ctx context.Context, limit int) ([]Message, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if limit <= 0 {
		return nil, nil
	}
	var out []Message
	order := func(a, b Message) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Conversation, b.Conversation), cmp.Compare(a.Seq, b.Seq))
	}
	enough := func(score float64, id string) bool {
		if len(out) < limit {
			return false
		}
		slices.SortFunc(out, order)
		k := out[limit-1]
		at := float64(ms(k.At))
		return at < score || at == score && k.Conversation <= id
	}
	err := s.scanOutbox(ctx, limit, limit, enough, func(p peek) { out = append(out, p.msgs...) })
	if err != nil {
		return nil, fail("outbox", err)
	}
	slices.SortFunc(out, order)
	return out[:min(len(out), limit)], nil
}

// Unclaimed implements Store: the conversations at the head of the outbox
// index whose claim, read from the conversation, is not valid at now.
func (s *Redis) Unclaimed(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if limit <= 0 {
		return nil, nil
	}
	type head struct {
		id string
		at float64
	}
	var heads []head
	order := func(a, b head) int { return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.id, b.id)) }
	enough := func(score float64, id string) bool {
		if len(heads) < limit {
			return false
		}
		slices.SortFunc(heads, order)
		k := heads[limit-1]
		return k.at < score || k.at == score && k.id <= id
	}
	take := func(p peek) {
		if p.owner != "" && fromMS(p.until).After(now) {
			return
		}
		at, err := strconv.ParseFloat(p.oldest, 64)
		if err == nil {
			heads = append(heads, head{p.id, at})
		}
	}
	if err := s.scanOutbox(ctx, limit, 0, enough, take); err != nil {
		return nil, fail("unclaimed", err)
	}
	slices.SortFunc(heads, order)
	var out []string
	for _, h := range heads[:min(len(heads), limit)] {
		out = append(out, h.id)
	}
	return out, nil
}
