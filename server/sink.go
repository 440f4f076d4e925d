package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/markdown"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// MarkRead records that the visitor has seen messages up to seq. The
// marker is written with the others every readFlush, and at Close.
func (s *Service) MarkRead(_ context.Context, conv string, seq uint64) error {
	s.mu.Lock()
	if seq > s.reads[conv] {
		s.reads[conv] = seq
	}
	s.mu.Unlock()
	return nil
}

// flushReads writes the read markers that moved, every interval and once
// more when the service closes.
func (s *Service) flushReads(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.writeReads()
		case <-s.ctx.Done():
			s.writeReads()
			return
		}
	}
}

// writeReads writes the pending read markers; one that cannot be written
// waits for the next round unless a newer one took its place.
func (s *Service) writeReads() {
	s.mu.Lock()
	pending := s.reads
	s.reads = map[string]uint64{}
	s.mu.Unlock()
	ctx := context.WithoutCancel(s.ctx)
	for conv, seq := range pending {
		err := s.store.SetAttr(ctx, conv, attrRead, fmt.Sprint(seq))
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrClosed) {
			continue
		}
		s.log.Warn("cannot record read marker; trying again", "conversation", conv, "error", err)
		s.mu.Lock()
		if seq > s.reads[conv] {
			s.reads[conv] = seq
		}
		s.mu.Unlock()
	}
}

// Deliver stores bot replies and notifies the visitor (provider.Sink).
// Each body gets the idempotency key key+"/"+index, so a retried callback
// stores nothing twice. A body that fails validation is replaced by its
// plain-text summary, or dropped with a warning when it has none.
func (s *Service) Deliver(ctx context.Context, conv, key string, bodies ...widget.Body) error {
	_, _, err := s.deliver(ctx, conv, key, bodies...)
	return err
}

// deliver is Deliver, reporting how many bodies it stored and how many
// were stored before (dups), for the metrics.
func (s *Service) deliver(ctx context.Context, conv, key string, bodies ...widget.Body) (stored, dups int, err error) {
	for i, b := range bodies {
		if err := b.Validate(); err != nil {
			s.log.Warn("bot message does not validate", "conversation", conv, "error", err)
			b = widget.Text(b.Summary())
			if b.Validate() != nil {
				continue
			}
		}
		m := store.Message{Conversation: conv, From: store.FromBot, Body: b.AppendJSON(nil)}
		if key != "" {
			m.ClientID = fmt.Sprintf("%s/%d", key, i)
		}
		start := time.Now()
		actx, span := traceAppend(ctx, conv)
		saved, dup, err := s.store.Append(actx, m)
		s.metrics.storeWrite(storeAppend, start)
		endAppend(span, saved.Seq, dup, err)
		if err != nil {
			return stored, dups, err
		}
		if dup {
			dups++
			continue
		}
		stored++
		s.publish(ctx, bus.Event{Conversation: conv, Seq: saved.Seq})
	}
	return stored, dups, nil
}

// attrTyping is the conversation attribute that says the bot is typing:
// since when, in Unix milliseconds; absent when it is not. It is in the
// store, not in a process's memory, because with several instances the
// callback (or the Send) that turns the indicator on is served by one
// and the chat page that asks is served by another.
const attrTyping = "typing"

// typingWrite bounds the store write of one typing change. A provider
// may turn the indicator on from its Send, on the dispatcher's path: a
// store in trouble must not hold a conversation's messages longer than
// this for a hint.
const typingWrite = time.Second

// Typing shows or hides the bot's typing indicator (provider.Sink): one
// attribute write per change, then a bus event for the sockets. A write
// that fails costs the no-JS chat page its "waiting" state only (the
// sockets still get the event); it is logged, not returned, since
// nothing a provider could do about it would help.
func (s *Service) Typing(conv string, on bool) {
	v := ""
	if on {
		v = strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), typingWrite)
	err := s.store.SetAttr(ctx, conv, attrTyping, v)
	cancel()
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrClosed) {
		s.log.Warn("cannot record the typing indicator", "conversation", conv, "error", err)
	}
	ev := bus.Event{Conversation: conv, Typing: bus.TypingOff}
	if on {
		ev.Typing = bus.TypingOn
	}
	s.publish(context.Background(), ev)
}

// typingFor bounds how long a typing indicator counts as a reply on its
// way, for a provider that never turns it off. It also absorbs the clock
// difference between the instance that wrote the indicator and the one
// that reads it, a few seconds at worst.
const typingFor = time.Minute

// IsTyping reports whether the bot is typing in conv: it turned the
// indicator on less than a minute ago, on whichever instance, and
// nothing was stored in the conversation since (a reply ends it, as it
// does in the widget, without a write of its own). The fallback page
// keeps refreshing while it is. A store that cannot answer reads as not
// typing: the page then stops refreshing a little early, which the
// visitor's reload mends.
func (s *Service) IsTyping(ctx context.Context, conv string) bool {
	l, err := s.store.Load(ctx, conv, 0, attrTyping)
	if err != nil || l.Attrs[attrTyping] == "" {
		return false
	}
	ms, err := strconv.ParseInt(l.Attrs[attrTyping], 10, 64)
	if err != nil {
		return false
	}
	since := time.UnixMilli(ms)
	return time.Since(since) <= typingFor && !l.Conversation.Updated.After(since)
}

// Attr returns provider state (provider.Sink).
func (s *Service) Attr(ctx context.Context, conv, key string) (string, error) {
	return s.store.Attr(ctx, conv, "p:"+key)
}

// SetAttr stores provider state (provider.Sink).
func (s *Service) SetAttr(ctx context.Context, conv, key, value string) error {
	return s.store.SetAttr(ctx, conv, "p:"+key, value)
}

// CompareAndSetAttr sets provider state only if it is still old
// (provider.Sink), over the store's compare-and-set.
func (s *Service) CompareAndSetAttr(ctx context.Context, conv, key, old, value string) (bool, error) {
	return s.store.CompareAndSetAttr(ctx, conv, "p:"+key, old, value)
}

// publish tells the conversation's sockets, wherever they are. A failure
// costs them latency only: what changed is stored, and each socket
// checks the store on its heartbeat.
func (s *Service) publish(ctx context.Context, ev bus.Event) {
	pctx, span := tracePublish(ctx, ev.Conversation)
	err := s.bus.Publish(context.WithoutCancel(pctx), ev)
	endSpan(span, "bus_error", err)
	if err != nil {
		s.log.Warn("cannot publish an event; sockets catch up on their heartbeat", "conversation", ev.Conversation, "error", err)
	}
}

// botSink is the provider.Sink of one bot: the service, refusing with
// provider.ErrOtherBot every conversation that is not the bot's. A
// provider's callbacks are authenticated per bot (a verify token, a
// secret), but name a conversation the caller chose; this keeps a
// caller with one bot's secret out of every other bot's conversations,
// whatever the adapter routes on.
type botSink struct {
	*Service
	bot string
	// markdown reports whether the bot writes Markdown, from the running
	// configuration (a reload may change it).
	markdown func() bool
}

func (s *Server) botSink(bot string) botSink {
	return botSink{s.service, bot, func() bool {
		b := s.bot(bot)
		return b != nil && b.Config.Format() == provider.FormatMarkdown
	}}
}

// owned checks that conversation conv is the bot's.
func (b botSink) owned(ctx context.Context, conv string) error {
	c, err := b.store.Get(ctx, conv)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", provider.ErrUnknownConversation, err)
	}
	if err != nil {
		return err
	}
	if c.Bot != b.bot {
		return provider.ErrOtherBot
	}
	return nil
}

// Deliver stores bot replies in one of the bot's conversations. A bot
// that writes Markdown has its replies formatted here, for every
// platform alike (markdown.Body: Text becomes the plain rendering, Blocks
// the formatted text).
func (b botSink) Deliver(ctx context.Context, conv, key string, bodies ...widget.Body) error {
	if err := b.owned(ctx, conv); err != nil {
		return err
	}
	if b.markdown != nil && b.markdown() {
		formatted := make([]widget.Body, len(bodies))
		for i, body := range bodies {
			formatted[i] = markdown.Body(body)
		}
		bodies = formatted
	}
	stored, dups, err := b.deliver(ctx, conv, key, bodies...)
	b.metrics.messagesOutAdd(b.bot, stored)
	noteDelivered(ctx, stored, dups)
	return err
}

// Attr returns provider state of one of the bot's conversations.
func (b botSink) Attr(ctx context.Context, conv, key string) (string, error) {
	if err := b.owned(ctx, conv); err != nil {
		return "", err
	}
	return b.Service.Attr(ctx, conv, key)
}

// SetAttr stores provider state of one of the bot's conversations.
func (b botSink) SetAttr(ctx context.Context, conv, key, value string) error {
	if err := b.owned(ctx, conv); err != nil {
		return err
	}
	return b.Service.SetAttr(ctx, conv, key, value)
}

// CompareAndSetAttr sets provider state of one of the bot's
// conversations only if it is still old.
func (b botSink) CompareAndSetAttr(ctx context.Context, conv, key, old, value string) (bool, error) {
	if err := b.owned(ctx, conv); err != nil {
		return false, err
	}
	return b.Service.CompareAndSetAttr(ctx, conv, key, old, value)
}

// storeLinker maps a platform's conversation ids to ours in the store,
// for adapters whose callbacks name only the platform's id.
type storeLinker struct {
	st  store.Store
	bot string
}

func (l storeLinker) Link(ctx context.Context, ref, conv string) error {
	return l.st.Link(ctx, l.bot, ref, conv)
}

func (l storeLinker) Resolve(ctx context.Context, ref string) (string, error) {
	conv, err := l.st.Resolve(ctx, l.bot, ref)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %w", provider.ErrUnknownConversation, err)
	}
	return conv, err
}
