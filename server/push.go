package server

// Session data pushed at once: for a provider that takes it
// (provider.SessionPusher), a change of the visitor's session data
// (Porthole.setSessionData) goes upstream on its own, through the
// conversation's dispatch queue, so it is ordered with the messages.

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
)

// attrPush is set while a session push is due: a token that changes
// with each change of the session data. It is the durable record of the
// push (recoverStarts queues it again after a restart), and the push
// clears it only if no change came during its call.
const attrPush = "session.push"

// pushes reports whether bot's provider takes session data at once.
func (s *Service) pushes(bot string) bool {
	p, ok := s.provider(bot).(provider.SessionPusher)
	return ok && p.PushesSession()
}

// queuePush records that conv's session data is due upstream and queues
// the push after the conversation's newest message.
func (s *Service) queuePush(ctx context.Context, c store.Conversation) error {
	if err := s.store.SetAttr(ctx, c.ID, attrPush, strconv.FormatInt(time.Now().UnixNano(), 36)); err != nil {
		return err
	}
	s.enqueuePush(c.ID, c.Last)
	return nil
}

// enqueuePush queues a session push of conv after message seq.
func (s *Service) enqueuePush(conv string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueLocked(conv)
	q.addPush(seq, time.Now())
	q.nudge()
}

// attemptPush hands conv's session data upstream as a provider.Session
// message and reports whether the push is finished. A change that came
// during the call pushes again; a temporary failure is retried with the
// messages' backoff for RetryPolicy.GiveUp; after that, or on a
// permanent failure, the data goes with the visitor's next message, as
// it does for every provider.
func (s *Service) attemptPush(conv string, it *item) bool {
	ctx := s.ctx
	l, err := s.store.Load(ctx, conv, 0, attrVisitor, attrSession, attrContact, attrPush)
	if err != nil {
		return errors.Is(err, store.ErrNotFound) || s.storeTrouble(conv, it, "pushing session data", err)
	}
	due := l.Attrs[attrPush]
	if due == "" {
		return true // pushed already, by this process or another
	}
	bot := l.Conversation.Bot
	p := s.provider(bot)
	if p == nil || !s.pushes(bot) {
		return true // no longer pushed (a reload): the next message carries it
	}
	pm := upstreamMessage(l, 0, provider.Session)
	s.mu.Lock()
	attempts, link := it.attempts, it.link
	s.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.retry.Timeout)
	start := time.Now()
	callCtx, span := traceUpstream(callCtx, bot, conv, 0, pm.Kind, attempts+1, link)
	err = p.Send(callCtx, pm)
	endUpstream(span, err)
	cancel()
	<-s.sem
	s.metrics.upstream(bot, attempts > 0, time.Since(start), err)

	if err == nil {
		cleared, err := s.store.CompareAndSetAttr(ctx, conv, attrPush, due, "")
		if err != nil {
			return s.storeTrouble(conv, it, "recording a session push", err)
		}
		if !cleared {
			s.mu.Lock()
			it.attempts, it.notBefore = 0, time.Now() // changed meanwhile: push the new data
			s.mu.Unlock()
			return false
		}
		s.log.Debug("session data pushed", "bot", bot, "conversation", conv)
		return true
	}
	reason, temporary, after := provider.Classify(err)
	s.mu.Lock()
	it.attempts++
	attempts, first := it.attempts, it.first
	s.mu.Unlock()
	if !temporary || time.Since(first) > s.retry.GiveUp {
		s.log.Warn("session data not pushed; it goes with the next message", "bot", bot, "conversation", conv, "reason", reason, "error", err)
		if _, err := s.store.CompareAndSetAttr(ctx, conv, attrPush, due, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("session push not cleared", "conversation", conv, "error", err)
		}
		return true
	}
	s.mu.Lock()
	it.notBefore = time.Now().Add(s.retry.backoff(attempts, after))
	s.mu.Unlock()
	return false
}
