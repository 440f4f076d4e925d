package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// SampleWarnings wraps h so that a warning or error repeated in a burst
// is logged once per interval instead of once per occurrence. Records are
// told apart by level, message and "bot" attribute: the first of each
// passes at once, later ones within interval of the last that passed are
// counted and dropped, and the first after the interval passes with a
// "repeated" attribute saying how many were dropped since. Records below
// warn pass untouched.
//
// Why: when a platform refuses calls (429, an outage), every
// conversation logs the same warning; 16,000 scripted sockets once made
// that 16,000 lines in 20 s, drowning what else the log said and the
// disk it was on. The conversation and the error of each are alike; the
// count and the first one are what an operator needs.
func SampleWarnings(h slog.Handler, interval time.Duration) slog.Handler {
	return &sampler{next: h, st: &sampleState{every: interval, seen: map[sampleKey]*sampleEntry{}}}
}

// maxSampled bounds the kinds of records a sampler tracks. Past it,
// kinds whose interval has run out are forgotten (reporting their
// dropped count), and when all are recent a new kind passes untracked.
const maxSampled = 4096

type sampleKey struct {
	level slog.Level
	msg   string
	bot   string
}

type sampleEntry struct {
	last    time.Time // when the last record passed
	dropped int       // records dropped since
	// next and addBot say how to report a count that no later record
	// carries: through the handler of the first record, with the bot
	// attribute when it came with the record rather than WithAttrs.
	next   slog.Handler
	addBot bool
}

type sampleState struct {
	every time.Duration
	mu    sync.Mutex
	seen  map[sampleKey]*sampleEntry
}

// sampler is the handler SampleWarnings returns; handlers derived by
// WithAttrs and WithGroup share its state, and remember a "bot" given
// to WithAttrs outside any group.
type sampler struct {
	next    slog.Handler
	st      *sampleState
	bot     string
	grouped bool
}

func (s *sampler) Enabled(ctx context.Context, l slog.Level) bool { return s.next.Enabled(ctx, l) }

func (s *sampler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *s
	c.next = s.next.WithAttrs(as)
	if !s.grouped {
		for _, a := range as {
			if a.Key == "bot" {
				c.bot = a.Value.String()
			}
		}
	}
	return &c
}

func (s *sampler) WithGroup(name string) slog.Handler {
	c := *s
	c.next = s.next.WithGroup(name)
	c.grouped = c.grouped || name != ""
	return &c
}

func (s *sampler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return s.next.Handle(ctx, r)
	}
	k := sampleKey{level: r.Level, msg: r.Message, bot: s.bot}
	fromRecord := false
	if !s.grouped {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "bot" {
				k.bot, fromRecord = a.Value.String(), true
				return false
			}
			return true
		})
	}
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	st := s.st
	st.mu.Lock()
	e := st.seen[k]
	switch {
	case e == nil:
		var flush []func()
		if len(st.seen) >= maxSampled {
			flush = st.forgetLocked(ctx, now)
		}
		if len(st.seen) < maxSampled {
			st.seen[k] = &sampleEntry{last: now, next: s.next, addBot: fromRecord}
		}
		st.mu.Unlock()
		for _, f := range flush {
			f()
		}
		return s.next.Handle(ctx, r)
	case now.Sub(e.last) < st.every:
		e.dropped++
		st.mu.Unlock()
		return nil
	}
	dropped := e.dropped
	e.last, e.dropped = now, 0
	st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", dropped))
	}
	return s.next.Handle(ctx, r)
}

// forgetLocked forgets the kinds whose interval has run out and returns
// the logging of a record for each that had records dropped, so that no
// count is lost; the caller runs them once it has let go of st.mu.
func (st *sampleState) forgetLocked(ctx context.Context, now time.Time) []func() {
	var out []func()
	for k, e := range st.seen {
		if now.Sub(e.last) < st.every {
			continue
		}
		if e.dropped > 0 {
			r := slog.NewRecord(now, k.level, k.msg, 0)
			if e.addBot {
				r.AddAttrs(slog.String("bot", k.bot))
			}
			r.AddAttrs(slog.Int("repeated", e.dropped))
			next := e.next
			out = append(out, func() { next.Handle(ctx, r) })
		}
		delete(st.seen, k)
	}
	return out
}
