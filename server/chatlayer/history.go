package chatlayer

// Reconciliation from Chatlayer's conversation history: the safety net
// under the callbacks. Chatlayer keeps every message of a session, and
// gives up a callback after 3 tries; what it gave up on, or what was
// lost on the way, is fetched back from the history and stored under
// the same key its callback would have had, so that whichever comes
// first is shown and the other is a duplicate.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/porthole-chat/porthole/server/provider"
)

// AttrHistory is the Sink attribute that remembers a skipped gap: when a
// callback held for its turn was shown without the ones before it
// (the history could not be read in time), "<epoch>:<n>" says that the
// bot messages after n of that counter epoch may be missing, so the next
// reconciliation starts after n. Absent, nothing was skipped since the
// last reconciliation, and it starts after the stored counter: the
// messages up to it are stored.
const AttrHistory = "chatlayer.history"

// historyTimeout bounds one reconciliation's calls to the history. A
// reconciliation for a gap runs while Chatlayer's callback waits for its
// answer, after ReorderWait.
const historyTimeout = 5 * time.Second

// historyPage is how many rows a legacy history call asks for, and
// maxHistoryPages how many pages one reconciliation reads at most.
const (
	historyPage     = 100
	maxHistoryPages = 50
)

// historyMessage is one message of a conversation's history.
type historyMessage struct {
	bot     bool // said by the bot (assumption 9)
	at      time.Time
	message json.RawMessage
}

// Wire shapes of the two history endpoints (PROVIDERS.md).
type (
	legacyHistory struct {
		Rows []struct {
			IsIntro   bool            `json:"isIntro"`
			Message   json.RawMessage `json:"message"`
			ID        string          `json:"id"`
			Actor     string          `json:"actor"`
			CreatedAt string          `json:"createdAt"`
		} `json:"rows"`
		Count int `json:"count"`
	}
	v1History struct {
		Data []struct {
			Actor     string          `json:"actor"`
			Timestamp string          `json:"timestamp"`
			Message   json.RawMessage `json:"message"`
		} `json:"data"`
	}
)

// newHistoryLimit is the bot's budget of history calls
// (history_per_minute), with a burst of a sixth of it: ten gaps at once
// with the default.
func newHistoryLimit(perMinute int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(1, perMinute/6))
}

// gapWait is how long a gap's reconciliation waits for the bot's history
// budget: its callback's request is open, so not long.
const gapWait = 2 * time.Second

// history fetches conversation conv's history in the bot's mode: V1's
// messages of the session, or the legacy history page by page. Each
// call takes one of the bot's history tokens, waiting at most within for
// one (0: as long as ctx lasts, for a background reconciliation; a gap's
// callback, whose request is open, waits gapWait).
func (a *Adapter) history(ctx context.Context, conv string, within time.Duration) ([]historyMessage, error) {
	var out []historyMessage
	for page := 0; page < maxHistoryPages; page++ {
		if err := a.historyToken(ctx, within); err != nil {
			return nil, err
		}
		if a.cfg.Mode != ModeLegacy {
			resp, err := a.up.Do(ctx, provider.Request{
				Method: http.MethodGet,
				URL:    a.base + "/v1/bots/" + url.PathEscape(a.cfg.BotID) + "/conversations/" + url.PathEscape(conv) + "/messages?version=LIVE",
				Header: http.Header{"Authorization": {"Bearer " + a.cfg.Token.Reveal()}},
			})
			if err != nil {
				return nil, a.historyFailed(err)
			}
			var h v1History
			if err := json.Unmarshal(resp.Body, &h); err != nil {
				return nil, fmt.Errorf("chatlayer history: not the documented shape: %w", err)
			}
			for _, d := range h.Data {
				out = append(out, historyMessage{bot: isBot(d.Actor), at: historyTime(d.Timestamp), message: d.Message})
			}
			return ordered(out), nil
		}
		offset := len(out)
		resp, err := a.up.Do(ctx, provider.Request{
			Method: http.MethodGet,
			URL: a.base + "/api/bots/" + url.PathEscape(a.cfg.BotID) + "/history/" + url.PathEscape(conv) +
				"?access_token=" + url.QueryEscape(a.cfg.Token.Reveal()) + // assumption 11; Upstream's errors never show the query
				"&offset=" + strconv.Itoa(offset) + "&limit=" + strconv.Itoa(historyPage),
		})
		if err != nil {
			return nil, a.historyFailed(err)
		}
		var h legacyHistory
		if err := json.Unmarshal(resp.Body, &h); err != nil {
			return nil, fmt.Errorf("chatlayer history: not the documented shape: %w", err)
		}
		for _, r := range h.Rows {
			out = append(out, historyMessage{bot: isBot(r.Actor), at: historyTime(r.CreatedAt), message: r.Message})
		}
		if len(h.Rows) == 0 || len(out) >= h.Count {
			return ordered(out), nil
		}
	}
	return nil, errors.New("chatlayer history: more pages than a reconciliation reads")
}

// historyToken takes one of the bot's history calls (history_per_minute),
// none while Chatlayer asked to wait (a 429 or 503 with a reset),
// waiting at most within (0: as long as ctx lasts).
func (a *Adapter) historyToken(ctx context.Context, within time.Duration) error {
	if within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, within)
		defer cancel()
	}
	a.mu.Lock()
	pause := time.Until(a.histPause)
	a.mu.Unlock()
	if pause > 0 {
		if d, ok := ctx.Deadline(); ok && time.Until(d) < pause {
			return errHistoryBudget
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if within == 0 {
		// In the background: take a token only when one is free, never
		// reserving ahead, so that a gap's callback (which waits at
		// most gapWait) always finds the next one.
		for !a.histLimit.Allow() {
			select {
			case <-time.After(backgroundPoll):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	if err := a.histLimit.Wait(ctx); err != nil {
		return errHistoryBudget // rate's Wait says at once when the deadline comes first
	}
	return nil
}

// backgroundPoll is how often a background reconciliation looks for a
// free history token.
const backgroundPoll = 250 * time.Millisecond

var errHistoryBudget = errors.New("chatlayer history: the bot's history calls are used up for now (history_per_minute)")

// historyFailed notes how long Chatlayer asked the history calls to
// wait, when it did, and returns err.
func (a *Adapter) historyFailed(err error) error {
	if _, _, after := provider.Classify(err); after > 0 {
		a.mu.Lock()
		a.histPause = time.Now().Add(after)
		a.mu.Unlock()
	}
	return err
}

// isBot reports whether a history actor is the bot (assumption 9).
func isBot(actor string) bool { return strings.EqualFold(strings.TrimSpace(actor), "bot") }

// historyTime reads a history timestamp (RFC 3339, as the sample's
// createdAt), or the zero time.
func historyTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return t
}

// ordered returns the history oldest first (assumption 9): a history
// that starts later than it ends is turned round, and one whose every
// time is known is sorted by it, keeping the platform's order among
// equal times.
func ordered(h []historyMessage) []historyMessage {
	if len(h) < 2 {
		return h
	}
	if h[0].at.After(h[len(h)-1].at) && !h[len(h)-1].at.IsZero() {
		for i, j := 0, len(h)-1; i < j; i, j = i+1, j-1 {
			h[i], h[j] = h[j], h[i]
		}
	}
	for _, m := range h {
		if m.at.IsZero() {
			return h
		}
	}
	sort.SliceStable(h, func(i, j int) bool { return h[i].at.Before(h[j].at) })
	return h
}

// Reconcile fetches conversation conv's history and stores the bot
// messages that never arrived by callback, in order and once (see
// reconcile). It waits for the bot's history budget; the service calls
// it in the background after a restart, for the conversations active
// shortly before.
func (a *Adapter) Reconcile(ctx context.Context, conv string) error {
	if !a.cfg.HistoryOn() {
		return nil
	}
	if !isConversationID(conv) {
		return fmt.Errorf("chatlayer: %q is not a conversation id", conv)
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout+time.Minute) // the budget's wait, then the calls
	defer cancel()
	h, err := a.history(ctx, conv, 0)
	if err != nil {
		return err
	}
	return a.reconcileLocked(ctx, conv, h)
}

// reconcileLocked is reconcile under the conversation's lane lock, for a
// caller that does not hold it: callbacks wait meanwhile.
func (a *Adapter) reconcileLocked(ctx context.Context, conv string, h []historyMessage) error {
	l := a.acquire(conv)
	defer a.release(conv, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := a.reconcile(ctx, l, conv, h)
	return err
}

// reconcile stores what h, the conversation's history, has and the
// store does not, and reports how many bot messages it looked at.
//
// The k-th bot message of the history is the callback numbered k in the
// conversation's current counter epoch (assumption 9), so each is
// stored under the key its callback has (dedupKey): a message that
// already arrived is a duplicate and stores nothing, one still on its
// way will be. Only the messages after AttrHistory's mark are looked
// at, and the mark and the counter then move to the history's last, so
// the callbacks held for a gap go on.
//
// The history is of Chatlayer's current session (assumption 9). When
// its message numbered like our last counter was written well after we
// stored that counter (more than RetryWindow, assumption 10), the
// session is a new one that no callback told us of yet: a new epoch
// begins, as a restarted counter would begin it. A history with fewer
// bot messages than our counter and none that late is behind the
// callbacks: nothing is done. l.mu is held.
func (a *Adapter) reconcile(ctx context.Context, l *lane, conv string, h []historyMessage) (int, error) {
	var bots []historyMessage
	for _, m := range h {
		if m.bot {
			bots = append(bots, m)
		}
	}
	v, err := a.sink.Attr(ctx, conv, AttrCounter)
	if err != nil {
		return 0, err
	}
	l.observe(v)
	s, _ := ParseCounter(v)
	n := uint64(len(bots))
	epoch := s.Epoch
	if s.Last >= firstCounter && n >= firstCounter {
		probe := bots[min(n, s.Last)-1]
		switch {
		case !s.At.IsZero() && !probe.at.IsZero() && probe.at.After(s.At.Add(a.cfg.RetryWindow)):
			begun := Counter{Epoch: s.Epoch + 1, At: time.Now()}.String()
			ok, err := a.sink.CompareAndSetAttr(ctx, conv, AttrCounter, v, begun)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, errors.New("chatlayer: the message counter moved during a reconciliation; the next one sees it")
			}
			a.log.Info("chatlayer history is of a new session; new counter epoch", "conversation", conv, "epoch", s.Epoch+1, "previous", s.Last)
			l.observe(begun)
			epoch = s.Epoch + 1
		case n < s.Last:
			return 0, nil // the history is behind the callbacks
		}
	}
	from := s.Last
	if epoch != s.Epoch {
		from = 0
	}
	mark, err := a.sink.Attr(ctx, conv, AttrHistory)
	if err != nil {
		return 0, err
	}
	if e, k, ok := parseMark(mark); ok && e == epoch {
		from = min(from, k)
	}
	if n <= from {
		return 0, nil
	}
	recovered := 0
	for k := from + 1; k <= n; k++ {
		shown, err := Normalize(bots[k-1].message)
		if len(shown) == 0 {
			if err != nil {
				a.log.Warn("chatlayer history message has nothing to show; skipped", "conversation", conv, "counter", k, "err", err)
			}
			continue // an event, or nothing displayable: it still takes its number
		}
		if err := a.sink.Deliver(ctx, conv, dedupKey(conv, epoch, k, true, nil), shown...); err != nil {
			return 0, err
		}
		recovered++
	}
	a.replies.Replied(conv)
	if err := a.advance(ctx, l, conv, epoch, n); err != nil {
		return 0, err
	}
	if l.epoch == epoch && n+1 > l.next {
		l.next = n + 1
		l.broadcast()
	}
	if mark != "" {
		// The skipped gap is filled. A gap skipped meanwhile (another
		// process) changed the mark, and keeps it.
		if _, err := a.sink.CompareAndSetAttr(ctx, conv, AttrHistory, mark, ""); err != nil {
			return 0, err
		}
	}
	a.log.Info("chatlayer history reconciled", "conversation", conv, "epoch", epoch, "from", from+1, "to", n, "shown", recovered)
	return int(n - from), nil
}

// parseMark reads an AttrHistory value.
func parseMark(v string) (epoch, n uint64, ok bool) {
	e, k, found := strings.Cut(v, ":")
	if !found {
		return 0, 0, false
	}
	ev, err1 := strconv.ParseUint(e, 10, 64)
	kv, err2 := strconv.ParseUint(k, 10, 64)
	return ev, kv, err1 == nil && err2 == nil
}

// startedBefore reports whether Chatlayer already has conversation conv,
// for a start that may have reached it before (provider.Message.Again):
// any message in its history means the introMessage was accepted
// (assumption 12), and the history's replies are then reconciled, since
// their callbacks may have gone to a process that is gone. It reports
// false when the history cannot be read: a greeting twice is better
// than none.
func (a *Adapter) startedBefore(ctx context.Context, conv string) bool {
	h, err := a.history(ctx, conv, 0)
	if err != nil {
		a.log.Warn("chatlayer history not read before a repeated start; sending it", "conversation", conv, "err", err)
		return false
	}
	if len(h) == 0 {
		return false
	}
	if err := a.reconcileLocked(ctx, conv, h); err != nil {
		a.log.Warn("chatlayer history not reconciled after a repeated start", "conversation", conv, "err", err)
	}
	return true
}

// recentFor is how long after its last accepted message a conversation
// is reconciled when Chatlayer comes back from an outage, and
// maxRecent bounds how many such conversations are remembered.
const (
	recentFor = time.Hour
	maxRecent = 10000
)

// sent notes the outcome of a Send of conv. An unavailable platform
// (network error, timeout, 5xx) starts an outage; the first Send that
// goes through after one reconciles, in the background, the
// conversations active from RetryWindow before the outage on: their
// replies' callbacks may have failed meanwhile, and Chatlayer gives up
// after 3 tries.
func (a *Adapter) sent(conv string, err error) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if reason, _, _ := provider.Classify(err); reason == provider.ReasonUnavailable && a.downSince.IsZero() {
			a.downSince = now
		}
		return
	}
	if !a.downSince.IsZero() && a.cfg.HistoryOn() && a.ctx.Err() == nil {
		from := a.downSince.Add(-a.cfg.RetryWindow)
		var convs []string
		for c, at := range a.recent {
			if at.After(from) {
				convs = append(convs, c)
			}
		}
		if len(convs) > 0 {
			a.log.Info("chatlayer reachable again; reconciling the conversations active before the outage", "conversations", len(convs), "down_for", now.Sub(a.downSince).Round(time.Millisecond).String())
			a.wg.Add(1)
			go a.reconcileAll(convs)
		}
	}
	a.downSince = time.Time{}
	a.recent[conv] = now
	if len(a.recent) > maxRecent {
		for c, at := range a.recent {
			if now.Sub(at) > recentFor || len(a.recent) > maxRecent {
				delete(a.recent, c)
			}
		}
	}
}

// reconcileAll reconciles convs one after the other, within the bot's
// history budget, until the adapter closes.
func (a *Adapter) reconcileAll(convs []string) {
	defer a.wg.Done()
	for _, c := range convs {
		if a.ctx.Err() != nil {
			return
		}
		if err := a.Reconcile(a.ctx, c); err != nil && a.ctx.Err() == nil {
			a.log.Warn("chatlayer history not reconciled", "conversation", c, "err", err)
		}
	}
}

// fillGap reconciles conv for a callback numbered counter that waited
// ReorderWait for the ones before it, within the bot's history budget
// and without waiting for it (the callback's request is open). Whatever
// goes wrong, the callback goes on as before: the gap is skipped, and
// the next reconciliation (the next gap, a restart, an outage's end)
// looks again. l.mu is held.
func (a *Adapter) fillGap(ctx context.Context, l *lane, conv string, counter uint64) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), historyTimeout)
	defer cancel()
	l.mu.Unlock() // the history call is slow; the lane's other callbacks go on meanwhile
	h, err := a.history(hctx, conv, gapWait)
	l.mu.Lock()
	if err == nil {
		_, err = a.reconcile(hctx, l, conv, h)
	}
	if err != nil {
		a.log.Warn("chatlayer gap not filled from the history; skipped, to be reconciled later", "conversation", conv, "counter", counter, "err", err)
		a.later(conv)
	}
}

// later reconciles conv in the background, within the bot's history
// budget: a skipped gap is then shown late (after what came since), but
// shown.
func (a *Adapter) later(conv string) {
	if a.ctx.Err() != nil {
		return
	}
	a.wg.Add(1)
	go a.reconcileAll([]string{conv})
}

// skipped remembers in AttrHistory that the bot messages of epoch after
// n may be missing: a callback held for its turn is shown without them.
// It only ever lowers a mark of the same epoch (compare-and-set), so the
// next reconciliation looks from the lowest gap skipped. l.mu is held.
func (a *Adapter) skipped(ctx context.Context, conv string, epoch, n uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverTimeout)
	defer cancel()
	want := strconv.FormatUint(epoch, 10) + ":" + strconv.FormatUint(n, 10)
	for range maxAdvance {
		old, err := a.sink.Attr(ctx, conv, AttrHistory)
		if err != nil {
			a.log.Warn("chatlayer skipped gap not remembered", "conversation", conv, "err", err)
			return
		}
		if e, k, ok := parseMark(old); ok && (e > epoch || e == epoch && k <= n) {
			return
		}
		if ok, err := a.sink.CompareAndSetAttr(ctx, conv, AttrHistory, old, want); err != nil || ok {
			return
		}
	}
}
