package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
	"go.opentelemetry.io/otel/trace"
)

// RetryPolicy says how the service retries a temporary upstream failure.
type RetryPolicy struct {
	// Quick is the number of attempts after which the visitor is told
	// the message failed; retries go on in the background after that.
	Quick int
	// Base is the first backoff; each attempt doubles it, up to Max,
	// with jitter so that many visitors do not retry in step.
	Base, Max time.Duration
	// GiveUp stops background retries this long after the first attempt.
	GiveUp time.Duration
	// Greet bounds the retries of a conversation's start, the call that
	// makes the platform greet (Chatlayer's introMessage): it is given
	// up, and logged, this long after its first attempt, or as soon as
	// the next attempt would come later (a long Retry-After). A greeting
	// is no visitor's message: when the platform refuses it with 429 or
	// 5xx it is overloaded, and retrying every greeting for GiveUp would
	// spend what capacity it has left on them, not on visitors waiting
	// for an answer. At most GiveUp; 0 means GiveUp.
	Greet time.Duration
	// Timeout bounds one upstream call.
	Timeout time.Duration
}

// DefaultGreetRetry is how long a greeting is retried: a few attempts
// with the default backoff (0.5 s doubling), over at most 30 s, by when
// the visitor who opened the chat has seen the widget's own greeting and
// may be writing.
const DefaultGreetRetry = 30 * time.Second

// DefaultRetry is the production retry policy.
var DefaultRetry = RetryPolicy{Quick: 3, Base: 500 * time.Millisecond, Max: 30 * time.Second, GiveUp: 10 * time.Minute, Greet: DefaultGreetRetry, Timeout: 15 * time.Second}

// greetFor is how long the seq-0 item of a conversation is retried.
func (p RetryPolicy) greetFor() time.Duration {
	if p.Greet <= 0 {
		return p.GiveUp
	}
	return min(p.Greet, p.GiveUp)
}

// backoff returns the wait before attempt n+1 (n >= 1): exponential with
// jitter in [d/2, d], at least what the platform asked for.
func (p RetryPolicy) backoff(n int, asked time.Duration) time.Duration {
	d := p.Base << min(n-1, 20)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, asked)
}

// SharedDispatch lets several processes over one store (Redis) share
// the dispatch of the outbox and still hand each conversation's
// messages upstream in seq order, one at a time: a process dispatches a
// conversation only while it holds the conversation's claim in the store
// (Store.Claim), and then dispatches every pending message the store
// holds for it, whichever process stored it (Store.Pending).
//
// Why nothing waits forever: a process that fails to claim leaves the
// work to the holder, and the holder, when it runs out of work, gives the
// claim back (Unclaim) and then looks at the store once more. A message
// stored before another process's failed claim is therefore seen by the
// holder's last look, since that failed claim came before the Unclaim.
// A holder that dies stops renewing: its claims run out after Lease, and
// every process polls the store for pending work without a valid claim
// (Store.Unclaimed) every Poll. So a dead process's messages go upstream
// again within Lease + Poll of its last renewal.
type SharedDispatch struct {
	// Owner names this process among those sharing the store; it must be
	// unique (NewOwner).
	Owner string
	// Lease is how long a claim lasts unless renewed. The holder renews it
	// before every upstream call, for a full lease, so it must be longer
	// than one call (RetryPolicy.Timeout); a shorter one is raised to
	// Timeout + 1 s. 0 means DefaultLease.
	Lease time.Duration
	// Poll is how often a process looks for pending work nobody holds.
	// 0 means DefaultPoll.
	Poll time.Duration
}

// DefaultLease and DefaultPoll bound the takeover of a dead process's
// conversations: a message it held goes upstream again within Lease +
// Poll of its last renewal. The lease must outlast an upstream call, so
// with the default 15 s upstream timeout it is 16 s, and the takeover
// takes at most 17 s.
const (
	DefaultLease = 10 * time.Second
	DefaultPoll  = time.Second
)

// NewOwner returns a claim owner unique to this process: host, pid and
// random bytes, so that a restarted process with the same pid is another
// owner, and a restarted process never mistakes a claim of its
// predecessor for its own.
func NewOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomHex(4))
}

// Share makes the service dispatch as one of several processes over its
// store (SharedDispatch). Call it before Recover.
func (s *Service) Share(d SharedDispatch) {
	if d.Lease <= 0 {
		d.Lease = DefaultLease
	}
	d.Lease = max(d.Lease, s.retry.Timeout+time.Second)
	if d.Poll <= 0 {
		d.Poll = DefaultPoll
	}
	s.shared = &d
}

// Recover queues every message that was acknowledged but not yet accepted
// upstream when the server last stopped. Shared, it queues the
// conversations nobody holds, and then goes on looking for them every
// Poll: their holder may have died.
func (s *Service) Recover(ctx context.Context) (int, error) {
	n, err := s.recoverStarts(ctx)
	if err != nil {
		return n, err
	}
	s.wg.Add(1)
	go s.reconcileRecent()
	if s.shared != nil {
		m, err := s.pollUnclaimed(ctx)
		if err != nil {
			return n + m, err
		}
		s.wg.Add(1)
		go s.polling()
		return n + m, nil
	}
	for {
		pending, err := s.store.Outbox(ctx, 1000)
		if err != nil {
			return n, err
		}
		fresh := 0
		for _, m := range pending {
			if s.enqueue(m.Conversation, m.Seq, false) {
				fresh++
			}
		}
		n += fresh
		if len(pending) < 1000 || fresh == 0 {
			return n, nil
		}
	}
}

// recoverStarts queues the start (seq 0, the greeting) of every
// conversation created within RetryPolicy.greetFor whose start was
// neither handed upstream nor given up (attrStart is unset): the process
// that created it stopped first. The conversation itself is the durable
// record of its pending start, so a crash right after its creation loses
// nothing, and the normal path costs one attribute write, when the start
// is done. A start older than greetFor would be given up anyway, so the
// scan stops at the conversations updated before then (List's order).
// The session pushes still due (attrPush) of the conversations updated
// within greetFor are queued again too. It reports how many starts and
// pushes it queued.
func (s *Service) recoverStarts(ctx context.Context) (int, error) {
	cutoff := time.Now().Add(-s.retry.greetFor())
	n := 0
	for bot := range *s.providers.Load() {
		var cur store.Cursor
		for more := true; more; {
			page, err := s.store.List(ctx, bot, cur, 200)
			if err != nil {
				return n, err
			}
			more = len(page) == 200
			for _, c := range page {
				cur = store.Cursor{Updated: c.Updated, ID: c.ID}
				if c.Updated.Before(cutoff) {
					more = false
					break
				}
				if s.pushes(bot) {
					due, err := s.store.Attr(ctx, c.ID, attrPush)
					if err != nil {
						return n, err
					}
					if due != "" {
						s.enqueuePush(c.ID, 0)
						n++
					}
				}
				if c.Created.Before(cutoff) {
					continue
				}
				done, err := s.store.Attr(ctx, c.ID, attrStart)
				if err != nil {
					return n, err
				}
				if done == "" && s.enqueueFrom(c.ID, 0, c.Created) {
					n++
				}
			}
		}
	}
	return n, nil
}

// reconcileFor is how far back from a start the conversations whose
// platform can recover lost replies (provider.Reconciler) are
// reconciled: those updated within it may have had replies whose
// callbacks failed while no process was up, and a platform gives up a
// callback after a few tries.
const reconcileFor = time.Hour

// reconcileMax bounds how many conversations of a bot are reconciled
// after a start, newest first: a platform's history budget (Chatlayer's
// history_per_minute, 60 by default) makes a thousand take about 17
// minutes, and the conversations further back matter less.
const reconcileMax = 1000

// reconcileRecent asks each bot's provider that can (provider.Reconciler)
// to reconcile the conversations updated within reconcileFor, newest
// first, in the background: the replies the platform answered while
// this process was down reach the visitor without waiting for a new
// message. The provider paces its calls to the platform.
func (s *Service) reconcileRecent() {
	defer s.wg.Done()
	cutoff := time.Now().Add(-reconcileFor)
	for bot, p := range *s.providers.Load() {
		r, ok := p.(provider.Reconciler)
		if !ok {
			continue
		}
		var cur store.Cursor
		done := 0
		for more := true; more; {
			page, err := s.store.List(s.ctx, bot, cur, 200)
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("conversations to reconcile not listed", "bot", bot, "error", err)
				}
				return
			}
			more = len(page) == 200
			for _, c := range page {
				cur = store.Cursor{Updated: c.Updated, ID: c.ID}
				if c.Updated.Before(cutoff) || done == reconcileMax {
					more = false
					break
				}
				if err := r.Reconcile(s.ctx, c.ID); err != nil {
					if s.ctx.Err() != nil {
						return
					}
					s.log.Warn("conversation not reconciled with its platform", "bot", bot, "conversation", c.ID, "error", err)
				}
				done++
			}
		}
		if done > 0 {
			s.log.Info("conversations reconciled with their platform after the start", "bot", bot, "conversations", done)
		}
	}
}

// pollUnclaimed starts a worker for each conversation with pending
// messages and no valid claim, and returns how many it started.
func (s *Service) pollUnclaimed(ctx context.Context) (int, error) {
	ids, err := s.store.Unclaimed(ctx, time.Now(), 1000)
	n := 0
	for _, id := range ids {
		if s.kick(id) {
			n++
		}
	}
	return n, err
}

// polling runs pollUnclaimed every Poll until the service closes.
func (s *Service) polling() {
	defer s.wg.Done()
	t := time.NewTicker(s.shared.Poll)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.pollUnclaimed(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("cannot look for unclaimed outbox work; trying again", "error", err)
		} else if n > 0 {
			s.log.Info("taking over pending messages nobody dispatches", "conversations", n)
		}
	}
}

// queue holds one conversation's messages waiting for the bot, by seq.
type queue struct {
	items []*item
	wake  chan struct{}
}

type item struct {
	seq       uint64 // 0 is the conversation start (greeting)
	attempts  int
	first     time.Time
	notBefore time.Time
	shown     bool // the visitor was told it failed; it no longer holds back later messages
	// taken: the platform accepted the message but recording that
	// failed (the store is full or down). Later attempts only record it;
	// sending it again would hand the bot the message twice.
	taken bool
	// gen counts the visitor's retries: an attempt that was in flight
	// when the visitor pressed retry must not record its stale outcome.
	gen int
	// link is the span of the send that queued it (tracing): the
	// upstream span links to it.
	link trace.SpanContext
	// again: a process before this one may have handed it upstream
	// (recovered at a start), so provider.Message.Again is set.
	again bool
	// push: not a message but the session data, changed after message
	// seq (SetSession), for a provider that takes it at once
	// (provider.SessionPusher). It goes after message seq and before
	// the messages stored after the change.
	push bool
}

// enqueue adds seq to the conversation's queue, starting its worker if
// needed. reset restarts the retry schedule of an item already queued.
// It reports whether the item is new. from, when given, is the span of
// the send that stored it (tracing).
func (s *Service) enqueue(conv string, seq uint64, reset bool, from ...trace.SpanContext) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueLocked(conv)
	added := q.add(seq, reset, time.Now())
	q.link(seq, from)
	q.nudge()
	return added
}

// enqueueFrom queues seq as enqueue does, counting its retry bound
// (RetryPolicy.GiveUp, greetFor) from first, an attempt made before a
// restart. It reports whether the item is new.
func (s *Service) enqueueFrom(conv string, seq uint64, first time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueLocked(conv)
	added := q.add(seq, false, time.Now())
	if added {
		for _, it := range q.items {
			if it.seq == seq && !it.push {
				it.first, it.again = first, true
			}
		}
	}
	q.nudge()
	return added
}

// kick starts a worker for conv with nothing queued in memory: shared,
// it claims the conversation and finds its work in the store. It reports
// whether a worker was started.
func (s *Service) kick(conv string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, running := s.queues[conv]; running {
		return false
	}
	s.queueLocked(conv)
	return true
}

// queueLocked returns conv's queue, making it and starting its worker
// when there is none. s.mu must be held.
func (s *Service) queueLocked(conv string) *queue {
	q, running := s.queues[conv]
	if !running {
		q = &queue{wake: make(chan struct{}, 1)}
		s.queues[conv] = q
		s.wg.Add(1)
		go s.work(conv, q)
	}
	return q
}

// add puts seq in the queue in seq order; reset restarts the retry
// schedule of an item already there. It reports whether seq is new.
// s.mu must be held.
func (q *queue) add(seq uint64, reset bool, now time.Time) bool {
	pos := len(q.items)
	for i, it := range q.items {
		if it.seq == seq && !it.push {
			if reset {
				it.attempts, it.first, it.notBefore, it.shown = 0, now, now, false
				it.gen++
			}
			return false
		}
		if it.seq > seq || it.seq == seq && it.push {
			pos = i
			break
		}
	}
	q.items = append(q.items, nil)
	copy(q.items[pos+1:], q.items[pos:])
	q.items[pos] = &item{seq: seq, first: now, notBefore: now}
	return true
}

// addPush puts a session push after message seq, unless one is queued
// already: it sends the session data as it is when it goes, and it
// goes again when the data changed during its call (attemptPush). It
// reports whether it added one. s.mu must be held.
func (q *queue) addPush(seq uint64, now time.Time) bool {
	pos := len(q.items)
	for i, it := range q.items {
		if it.push {
			return false
		}
		if it.seq > seq && pos == len(q.items) {
			pos = i
		}
	}
	q.items = append(q.items, nil)
	copy(q.items[pos+1:], q.items[pos:])
	q.items[pos] = &item{seq: seq, push: true, first: now, notBefore: now}
	return true
}

// nudge wakes the queue's worker.
func (q *queue) nudge() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next picks the item to try now, or how long to wait. Items go in seq
// order; one that already failed visibly no longer holds back the rest.
func (q *queue) next(now time.Time) (*item, time.Duration) {
	wait := time.Duration(-1)
	for _, it := range q.items {
		if !it.notBefore.After(now) {
			return it, 0
		}
		if d := it.notBefore.Sub(now); wait < 0 || d < wait {
			wait = d
		}
		if !it.shown {
			break
		}
	}
	return nil, wait
}

func (q *queue) remove(target *item) {
	for i, it := range q.items {
		if it == target {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return
		}
	}
}

// onlyInMemory reports whether the queue holds work the store does not
// list as pending, which another process could not take over: the
// greeting (seq 0), or a session push. s.mu must be held.
func (q *queue) onlyInMemory() bool {
	for _, it := range q.items {
		if it.push {
			return true
		}
	}
	return len(q.items) > 0 && q.items[0].seq == 0
}

// work hands one conversation's queue upstream until it is empty.
func (s *Service) work(conv string, q *queue) {
	defer s.wg.Done()
	for {
		switch held, err := s.hold(conv, q); {
		case err != nil:
			if s.ctx.Err() == nil {
				s.log.Error("store error while claiming a conversation for dispatch; trying again", "conversation", conv, "error", err)
			}
			if !s.pause(q, s.retry.backoff(1, 0)) {
				s.abandon(conv, q)
				return
			}
			continue
		case !held:
			// Another process dispatches conv, and with it every pending
			// message stored here. Only the greeting waits for the claim.
			s.mu.Lock()
			if len(q.items) > 0 && q.items[0].seq == 0 && !q.items[0].push && time.Since(q.items[0].first) > s.retry.greetFor() {
				s.log.Warn("conversation start given up: another process held the conversation too long", "conversation", conv)
				q.items = q.items[1:]
			}
			for _, it := range q.items {
				if it.push && time.Since(it.first) > s.retry.GiveUp {
					s.log.Warn("session data not pushed: another process held the conversation too long; it goes with the next message", "conversation", conv)
					q.remove(it)
					break
				}
			}
			wait := q.onlyInMemory()
			if !wait {
				delete(s.queues, conv)
			}
			s.mu.Unlock()
			if !wait {
				return
			}
			if !s.pause(q, s.shared.Lease/4) {
				s.abandon(conv, q)
				return
			}
			continue
		}
		s.mu.Lock()
		if len(q.items) == 0 {
			s.mu.Unlock()
			if more, err := s.release(conv); err != nil || more {
				continue // look again, claiming first
			}
			s.mu.Lock()
			if len(q.items) == 0 {
				delete(s.queues, conv)
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			continue
		}
		it, wait := q.next(time.Now())
		s.mu.Unlock()
		if it == nil {
			if s.shared != nil {
				wait = min(wait, s.shared.Lease/3) // renew the claim meanwhile
			}
			if !s.pause(q, wait) {
				s.abandon(conv, q)
				return
			}
			continue
		}
		done := s.attempt(conv, it)
		s.mu.Lock()
		if done {
			q.remove(it)
		}
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			s.abandon(conv, q)
			return
		}
	}
}

// pause waits d, or until the queue is nudged; false means the service is
// closing.
func (s *Service) pause(q *queue, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-q.wake:
	case <-s.ctx.Done():
		return false
	}
	return true
}

// hold makes sure this process may dispatch conv now. Alone on its store
// it always may. Shared, it claims (or renews) the conversation for a
// full lease, which outlasts the next upstream call, and queues the
// pending messages the store holds for it: whichever process stored
// them, and again when the visitor retried one that failed here.
func (s *Service) hold(conv string, q *queue) (bool, error) {
	if s.shared == nil {
		return true, nil
	}
	now := time.Now()
	won, err := s.store.Claim(s.ctx, conv, s.shared.Owner, now.Add(s.shared.Lease))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // pruned: nothing to dispatch
	}
	if err != nil || !won {
		return false, err
	}
	seqs, err := s.store.Pending(s.ctx, conv, 100)
	if err != nil {
		return true, nil // what is queued can go; the next look finds the rest
	}
	s.mu.Lock()
	var shown []uint64
	for _, seq := range seqs {
		if q.add(seq, false, now) {
			continue
		}
		for _, it := range q.items {
			if it.seq == seq && !it.push && it.shown {
				shown = append(shown, seq)
			}
		}
	}
	s.mu.Unlock()
	// A message that failed here stays pending while it is retried in the
	// background; without its failure reason, the visitor retried it
	// through another process, and that retry starts afresh.
	for _, seq := range shown {
		l, err := s.store.Load(s.ctx, conv, seq)
		if err != nil || !l.HasMessage || retrying(l.Message) || l.Message.State != store.Pending {
			continue
		}
		s.mu.Lock()
		for _, it := range q.items {
			if it.seq == seq && !it.push && it.shown {
				it.attempts, it.first, it.notBefore, it.shown = 0, now, now, false
				it.gen++
			}
		}
		s.mu.Unlock()
	}
	return true, nil
}

// release gives conv's claim back once its queue is empty, then looks at
// the store once more: a message another process stored after it failed
// to claim is there (SharedDispatch says why). more reports that there is
// work after all.
func (s *Service) release(conv string) (more bool, err error) {
	if s.shared == nil {
		return false, nil
	}
	if err := s.store.Unclaim(s.ctx, conv, s.shared.Owner); err != nil {
		return false, err
	}
	seqs, err := s.store.Pending(s.ctx, conv, 1)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return len(seqs) > 0, err
}

// abandon drops a conversation's queue on shutdown; pending messages stay
// on the store's outbox for the next start. Shared, it gives the claim
// back at once, so that another process takes the conversation over now
// instead of after the lease.
func (s *Service) abandon(conv string, q *queue) {
	s.mu.Lock()
	if s.queues[conv] == q {
		delete(s.queues, conv)
	}
	s.mu.Unlock()
	if s.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.store.Unclaim(ctx, conv, s.shared.Owner); err != nil {
			s.log.Warn("claim not given back on shutdown; another process takes the conversation after the lease", "conversation", conv, "error", err)
		}
	}
}

// attempt makes one upstream call for it and records the outcome. It
// reports whether the item is finished (delivered, failed for good, or
// gone).
func (s *Service) attempt(conv string, it *item) bool {
	ctx := s.ctx
	// The item is shared with enqueue (a retry resets it): read it, and
	// later record the outcome, under the lock only.
	s.mu.Lock()
	seq, attempts, first, shown, gen, again := it.seq, it.attempts, it.first, it.shown, it.gen, it.again
	link := it.link
	push := it.push
	s.mu.Unlock()
	if push {
		return s.attemptPush(conv, it)
	}
	if it.taken {
		return s.recordTaken(conv, it)
	}
	mark := attrStart
	if seq > 0 {
		mark = attrRetry(seq)
	}
	l, err := s.store.Load(ctx, conv, seq, attrVisitor, attrSession, attrContact, mark)
	if err != nil {
		return errors.Is(err, store.ErrNotFound) || s.storeTrouble(conv, it, "dispatching", err)
	}
	if seq == 0 && l.Attrs[attrStart] != "" {
		return true // started already, by this process or another
	}
	c := l.Conversation
	p := s.provider(c.Bot)
	if p == nil {
		s.log.Error("no provider for bot", "bot", c.Bot, "conversation", conv)
		return true
	}
	pm := upstreamMessage(l, seq, provider.Start)
	pm.Again = again || attempts > 0
	var msg store.Message
	if seq > 0 {
		if !l.HasMessage || l.Message.State == store.Delivered {
			return true
		}
		msg = l.Message
		if msg.State == store.Failed {
			return true // given up; a visitor's retry makes it pending again
		}
		if retrying(msg) && !shown {
			// It failed visibly before a restart, or in another process,
			// and is still retried in the background: from its first
			// attempt, not from now.
			first = msg.At
			if ms, err := strconv.ParseInt(l.Attrs[mark], 10, 64); err == nil {
				first = time.UnixMilli(ms)
			}
			s.mu.Lock()
			if it.gen == gen {
				it.first, it.shown, it.attempts = first, true, max(it.attempts, s.retry.Quick)
			}
			attempts, shown = max(attempts, s.retry.Quick), true
			s.mu.Unlock()
			if time.Since(first) > s.retry.GiveUp {
				s.giveUp(conv, seq, msg.Reason)
				return true
			}
		}
		body, err := widget.DecodeBody(msg.Body)
		if err != nil {
			s.log.Error("stored message does not decode", "conversation", conv, "seq", seq, "error", err)
			return true
		}
		pm.ClientID, pm.Text, pm.Kind = msg.ClientID, body.Text, provider.Text
		if msg.Payload != "" {
			pm.Kind, pm.Payload = provider.Postback, msg.Payload
		}
	}

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	// A call in flight is not cut short by a shutdown: the platform may
	// already have the message, and only its answer tells us so. Close
	// waits for it, so the message is recorded as delivered and never
	// handed over again after the restart.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.retry.Timeout)
	start := time.Now()
	callCtx, span := traceUpstream(callCtx, c.Bot, conv, seq, pm.Kind, attempts+1, link)
	err = p.Send(callCtx, pm)
	endUpstream(span, err)
	cancel()
	<-s.sem
	s.metrics.upstream(c.Bot, attempts > 0, time.Since(start), err)
	attempts++

	if err == nil {
		s.log.Debug("handed upstream", "bot", c.Bot, "conversation", conv, "seq", seq, "kind", string(pm.Kind), "attempt", attempts)
		s.mu.Lock()
		it.taken = true
		s.mu.Unlock()
		return s.recordTaken(conv, it)
	}
	if ctx.Err() != nil { // shutting down: leave it on the outbox
		return false
	}
	reason, temporary, after := provider.Classify(err)
	retry := temporary && time.Since(first) <= s.retry.GiveUp
	wait := s.retry.backoff(attempts, after)
	if seq == 0 && retry { // a greeting: briefly (RetryPolicy.Greet)
		retry = time.Since(first)+wait <= s.retry.greetFor()
	}
	markFailed := !shown && (!retry || attempts >= s.retry.Quick)
	s.log.Warn("upstream call failed", "bot", c.Bot, "conversation", conv, "seq", seq,
		"attempt", attempts, "reason", reason, "retry", retry, "error", err)
	if seq == 0 && !retry {
		s.log.Warn("conversation start given up: the bot does not greet first", "bot", c.Bot, "conversation", conv,
			"attempts", attempts, "reason", reason)
	}
	s.mu.Lock()
	if it.gen != gen { // the visitor retried meanwhile: that retry starts afresh
		s.mu.Unlock()
		return false
	}
	it.attempts = attempts
	it.shown = it.shown || markFailed
	if retry {
		it.notBefore = time.Now().Add(wait)
	}
	s.mu.Unlock()
	switch {
	case seq == 0 && !retry:
		if err := s.store.SetAttr(ctx, conv, attrStart, "given up"); err != nil {
			s.log.Error("cannot record that a conversation start was given up", "conversation", conv, "error", err)
		}
	case seq > 0 && !retry:
		s.giveUp(conv, seq, reason)
	case seq > 0 && markFailed:
		// Failed for the visitor, still retried: it stays on the outbox,
		// with its reason and the time of its first attempt, so that a
		// restart or another process goes on retrying it (attrRetry).
		if err := s.store.SetAttr(ctx, conv, attrRetry(seq), strconv.FormatInt(first.UnixMilli(), 10)); err != nil {
			s.log.Error("cannot record the start of background retries", "conversation", conv, "seq", seq, "error", err)
		}
		if _, err := s.store.SetState(ctx, conv, seq, store.Pending, reason); err != nil {
			s.log.Error("cannot record failure", "conversation", conv, "seq", seq, "error", err)
		}
	}
	if markFailed && seq > 0 {
		s.publishStatus(conv, msg.ClientID, widget.StateFailed, reason)
	}
	return !retry
}

// giveUp records that message seq failed for good: Failed, off the
// outbox, with no more background retries until the visitor retries it.
func (s *Service) giveUp(conv string, seq uint64, reason string) {
	ctx := context.WithoutCancel(s.ctx)
	if _, err := s.store.SetState(ctx, conv, seq, store.Failed, reason); err != nil {
		s.log.Error("cannot record failure", "conversation", conv, "seq", seq, "error", err)
	}
	if err := s.store.SetAttr(ctx, conv, attrRetry(seq), ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("cannot clear the start of background retries", "conversation", conv, "seq", seq, "error", err)
	}
}

// recordTaken records that the platform accepted it and tells the
// visitor. When the store cannot record it, the item stays queued and
// only the recording is tried again, so the message stays with the
// platform once. It reports whether the item is finished.
func (s *Service) recordTaken(conv string, it *item) bool {
	ctx := context.WithoutCancel(s.ctx)
	if it.seq == 0 {
		if err := s.store.SetAttr(ctx, conv, attrStart, "sent"); err != nil && !errors.Is(err, store.ErrNotFound) {
			return s.storeTrouble(conv, it, "recording a conversation start", err)
		}
		return true
	}
	m, err := s.store.SetState(ctx, conv, it.seq, store.Delivered, "")
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return true
		}
		return s.storeTrouble(conv, it, "recording a delivery", err)
	}
	s.publishStatus(conv, m.ClientID, widget.StateDelivered, "")
	s.mu.Lock()
	shown := it.shown
	s.mu.Unlock()
	if shown { // delivered by a background retry
		if err := s.store.SetAttr(ctx, conv, attrRetry(it.seq), ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("cannot clear the start of background retries", "conversation", conv, "seq", it.seq, "error", err)
		}
	}
	return true
}

// upstreamMessage is the provider.Message of kind for a conversation
// loaded with the visitor, session and contact attributes: what every
// upstream call carries besides the message itself.
func upstreamMessage(l store.Loaded, seq uint64, kind provider.Kind) provider.Message {
	c := l.Conversation
	pm := provider.Message{Bot: c.Bot, Conversation: c.ID, Seq: seq, Kind: kind}
	if raw := l.Attrs[attrVisitor]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &pm.Visitor)
	}
	if pm.Visitor.ID == "" {
		pm.Visitor.ID = c.Visitor
	}
	if raw := l.Attrs[attrSession]; raw != "" {
		pm.Session = []byte(raw)
	}
	if raw := l.Attrs[attrContact]; raw != "" {
		var ct provider.Contact
		if json.Unmarshal([]byte(raw), &ct) == nil {
			pm.Contact = &ct
		}
	}
	return pm
}

// storeTrouble logs a store error while doing what (dispatching, or
// recording a delivery) and schedules the item for a later try; it stays
// on the outbox meanwhile. It returns false: the item is not finished.
func (s *Service) storeTrouble(conv string, it *item, what string, err error) bool {
	if s.ctx.Err() == nil {
		s.log.Error("store error while "+what+"; trying again", "conversation", conv, "seq", it.seq, "error", err)
	}
	s.mu.Lock()
	it.notBefore = time.Now().Add(s.retry.backoff(max(it.attempts, 1), 0))
	s.mu.Unlock()
	return false
}

func (s *Service) publishStatus(conv, clientID, state, reason string) {
	if clientID == "" {
		return
	}
	s.publish(context.Background(), bus.Event{Conversation: conv, Status: bus.Status{ClientID: clientID, State: state, Reason: reason}})
}
