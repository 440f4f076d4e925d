package chatlayer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
)

// MaxCallback bounds a callback body. A bot message is a few kilobytes;
// a carousel of ten cards stays far below this.
//
// The verify token is Chatlayer's only credential and it is inside the
// JSON body, in no fixed position (no header, no query parameter), so
// the body is read, up to this bound, before the token can be checked:
// reading a small prefix first would refuse real callbacks whose token
// comes after a long message. What bounds a forger instead is this size,
// the server's body deadline (limits.body_timeout) and the listener's
// connection caps.
const MaxCallback = 256 << 10

// AttrCounter is the Sink attribute holding a conversation's ordering
// state: its counter epoch (the Chatlayer session it is in, see
// epochOf), the highest messageCounter delivered in that epoch and when
// that counter last moved, written "<epoch>:<counter>:<unix ms>" (see
// ParseCounter, which also reads the plain "<counter>" of older
// versions as epoch 0). Ordering survives a restart and holds across the
// processes sharing a store. It only ever moves forward: to a higher
// counter in its epoch (advance), or to the next epoch (epochOf).
const AttrCounter = "chatlayer.counter"

// deliverTimeout bounds one store write for a callback. It does not
// follow the request's context: a write Chatlayer stopped waiting for is
// still finished, so a retry finds it done.
const deliverTimeout = 10 * time.Second

// ServeWebhook takes one Chatlayer callback (POST /hooks/chatlayer/{bot}):
// it checks the verify token in constant time (401 otherwise), routes on
// senderId, recipient.id or sender.id, skips event messages, normalizes
// the message and stores it under a deduplication key, in messageCounter
// order, before answering 200. A callback that cannot be stored answers
// 500 so that Chatlayer retries it; one that names no conversation of
// ours answers 200 so that Chatlayer stops retrying; one that names a
// conversation of another bot is refused with 403 and stores nothing.
//
// Most callbacks are answered as soon as they are stored. Only one that
// arrives ahead of its turn is answered later, once the missing ones came
// or ReorderWait passed: keeping the request open until it is stored
// means an acknowledged callback is never lost, even by a crash.
func (a *Adapter) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallback))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(w, http.StatusRequestEntityTooLarge, "callback body too large")
			return
		}
		answer(w, http.StatusBadRequest, "unreadable body")
		return
	}
	var cb map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cb); err != nil || cb == nil {
		answer(w, http.StatusBadRequest, "the body must be a JSON object")
		return
	}
	if !a.verified(cb["verifyToken"]) {
		a.log.Warn("chatlayer callback refused: missing or wrong verify token", "remote", r.RemoteAddr)
		answer(w, http.StatusUnauthorized, "missing or wrong verifyToken")
		return
	}
	if a.ctx.Err() != nil {
		answer(w, http.StatusServiceUnavailable, "shutting down; retry later")
		return
	}
	id, field := routeID(cb)
	conv, ok := conversationOf(id)
	if !ok {
		a.log.Warn("chatlayer callback for no conversation of ours; dropped", "field", field, "id", clip(id))
		answer(w, http.StatusOK, "ignored: unknown recipient")
		return
	}

	msg := cb["message"]
	shown, err := Normalize(msg)
	if err != nil {
		// Nothing displayable: the callback still takes its turn, so the
		// messages after it are not held for it.
		a.log.Warn("chatlayer message has nothing to show; skipped", "conversation", conv, "err", err)
	}
	counter, counted := counterOf(cb["messageCounter"])

	deliver := func(epoch uint64) error {
		if len(shown) == 0 {
			return nil
		}
		key := dedupKey(conv, epoch, counter, counted, raw)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), deliverTimeout)
		defer cancel()
		if err := a.sink.Deliver(ctx, conv, key, shown...); err != nil {
			return err
		}
		a.replies.Replied(conv)
		return nil
	}

	var status int
	if counted {
		status = a.inOrder(r.Context(), conv, counter, deliver)
	} else {
		status = a.unordered(r.Context(), conv, deliver)
	}
	switch status {
	case http.StatusOK:
		answer(w, status, "ok")
	case http.StatusForbidden:
		answer(w, status, "not this bot's conversation")
	case http.StatusServiceUnavailable:
		answer(w, status, "not stored; retry later")
	default:
		answer(w, status, "not stored; retry")
	}
}

// verified compares the callback's verifyToken with ours in constant
// time. Both sides are hashed first so that not even the length of the
// configured token leaks through timing.
func (a *Adapter) verified(raw json.RawMessage) bool {
	var got string
	if json.Unmarshal(raw, &got) != nil || got == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	want := sha256.Sum256([]byte(a.cfg.VerifyToken.Reveal()))
	return subtle.ConstantTimeCompare(g[:], want[:]) == 1
}

// routeID returns the id a callback routes on and the field it came
// from: senderId, else recipient.id, else sender.id (PROVIDERS.md).
func routeID(cb map[string]json.RawMessage) (id, field string) {
	if s := scalar(cb["senderId"]); s != "" {
		return s, "senderId"
	}
	for _, f := range []string{"recipient", "sender"} {
		var obj map[string]json.RawMessage
		if json.Unmarshal(cb[f], &obj) == nil {
			if s := scalar(obj["id"]); s != "" {
				return s, f + ".id"
			}
		}
	}
	return "", "none"
}

// scalar reads a JSON string or number as text, and anything else as "".
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// counterOf reads messageCounter: a non-negative integer, or one written
// as a string. Anything else counts as absent.
func counterOf(raw json.RawMessage) (uint64, bool) {
	s := scalar(raw)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f == math.Trunc(f) && f < 1<<53 {
		return uint64(f), true
	}
	return 0, false
}

// dedupKey names a callback for the Sink's idempotency: its counter
// epoch and messageCounter when present, else a hash of the whole body
// (a retried callback repeats it byte for byte). Epoch 0 keeps the key
// of the versions before epochs, "chatlayer/<conv>/<counter>", so that a
// callback retried across an upgrade is still known; a later epoch adds
// "e<epoch>/", so that a new Chatlayer session's counter 1 is not taken
// for the old session's.
func dedupKey(conv string, epoch, counter uint64, counted bool, body []byte) string {
	prefix := "chatlayer/" + conv + "/"
	if epoch > 0 {
		prefix += "e" + strconv.FormatUint(epoch, 10) + "/"
	}
	if counted {
		return prefix + strconv.FormatUint(counter, 10)
	}
	sum := sha256.Sum256(body)
	return prefix + hex.EncodeToString(sum[:])[:16]
}

// unordered delivers a callback without messageCounter right away, in
// the conversation's current epoch.
func (a *Adapter) unordered(ctx context.Context, conv string, deliver func(epoch uint64) error) int {
	v, err := a.sink.Attr(ctx, conv, AttrCounter)
	if err != nil {
		return a.lookupFailed(conv, err)
	}
	s, _ := ParseCounter(v)
	if err := deliver(s.Epoch); err != nil {
		return a.deliverFailed(conv, err)
	}
	return http.StatusOK
}

// deliverFailed turns a failed store write into the answer: 403 for a
// conversation of another bot (see refused), 500 otherwise, so that
// Chatlayer retries.
func (a *Adapter) deliverFailed(conv string, err error) int {
	if errors.Is(err, provider.ErrOtherBot) {
		return a.refused(conv)
	}
	a.log.Error("chatlayer reply not stored; Chatlayer will retry", "conversation", conv, "err", err)
	return http.StatusInternalServerError
}

// refused answers a callback that names a conversation of another bot:
// its verify token is this bot's, so it is either a forgery or a
// platform misconfiguration, and it must store nothing either way.
func (a *Adapter) refused(conv string) int {
	a.log.Warn("chatlayer callback for a conversation of another bot refused", "bot", a.bot, "conversation", conv)
	return http.StatusForbidden
}

// lookupFailed turns a failed conversation lookup into the answer:
// 200 for a conversation we do not have (retrying cannot help), 500
// otherwise.
func (a *Adapter) lookupFailed(conv string, err error) int {
	if errors.Is(err, provider.ErrUnknownConversation) {
		a.log.Warn("chatlayer callback for an unknown conversation; dropped", "conversation", conv)
		return http.StatusOK
	}
	if errors.Is(err, provider.ErrOtherBot) {
		return a.refused(conv)
	}
	a.log.Error("chatlayer callback: conversation lookup failed", "conversation", conv, "err", err)
	return http.StatusInternalServerError
}

// Counter is a conversation's ordering state, as stored in AttrCounter.
type Counter struct {
	// Epoch numbers the Chatlayer sessions of the conversation: 0 until
	// Chatlayer first restarts messageCounter (see epochOf).
	Epoch uint64
	// Last is the highest messageCounter delivered in Epoch; 0 when none.
	Last uint64
	// At is when Last last moved, or when Epoch began; zero when unknown
	// (a value written before epochs existed).
	At time.Time
}

// String is the stored form, "<epoch>:<counter>:<unix ms>".
func (c Counter) String() string {
	return strconv.FormatUint(c.Epoch, 10) + ":" + strconv.FormatUint(c.Last, 10) + ":" + strconv.FormatInt(c.At.UnixMilli(), 10)
}

// ParseCounter reads a stored AttrCounter value: "" (nothing stored
// yet) is epoch 0 at counter 0; the plain "<counter>" that versions
// before epochs wrote is epoch 0 with an unknown time. It reports false
// for anything else, which the next advance overwrites.
func ParseCounter(v string) (Counter, bool) {
	if v == "" {
		return Counter{}, true
	}
	parts := strings.Split(v, ":")
	if len(parts) == 1 {
		n, err := strconv.ParseUint(v, 10, 64)
		return Counter{Last: n}, err == nil
	}
	if len(parts) != 3 {
		return Counter{}, false
	}
	e, err1 := strconv.ParseUint(parts[0], 10, 64)
	n, err2 := strconv.ParseUint(parts[1], 10, 64)
	ms, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Counter{}, false
	}
	return Counter{Epoch: e, Last: n, At: time.UnixMilli(ms)}, true
}

// lane orders one conversation's counted callbacks in this process. Its
// mutex is held while a callback is stored, so deliveries of a
// conversation never overlap here; a callback ahead of its turn waits on
// changed, unlocked.
//
// Several processes may share the store, and Chatlayer's callbacks of one
// conversation may land on any of them, so the lane's epoch and next are
// only a cache of the stored state (AttrCounter): it is read for every
// callback (epochOf), re-read every counterPoll while a callback waits,
// and the stored state only ever moves forward, by compare-and-set
// (advance, epochOf). A callback is delivered before the counter moves
// past it, so a process that sees the counter at n in epoch e knows
// 1..n of e are stored.
type lane struct {
	refs int // callbacks using the lane; guarded by Adapter.mu

	mu      sync.Mutex
	loaded  bool
	epoch   uint64          // the epoch of next
	next    uint64          // the counter expected next, as far as this process knows
	stored  string          // the stored state as last read or written: the compare-and-sets' first guess
	waiting map[heldKey]int // callbacks held ahead of next, with how many copies
	changed chan struct{}   // closed and replaced whenever epoch or next moves
}

// heldKey names a callback held for its turn.
type heldKey struct{ epoch, counter uint64 }

// counterPoll is how often a callback held for a gap re-reads the stored
// counter, to see the gap filled by another process (in this one,
// changed wakes it at once). Chatlayer sends a turn's callbacks within
// milliseconds of each other, so a gap is usually filled almost at once,
// elsewhere: 50 ms keeps the delay this adds to a reordered message below
// what a reader notices in a chat, and costs one small store read (one
// Redis HGET) per held callback per poll, at most ReorderWait/counterPoll
// reads (20 with the default 1 s wait), for the few callbacks that
// arrive out of order.
const counterPoll = 50 * time.Millisecond

// inOrder delivers the callback numbered counter in messageCounter order,
// within the conversation's epoch (epochOf, which starts a new one when
// Chatlayer restarted the counter): one ahead of the next expected
// counter waits up to ReorderWait for the missing ones, then the gap is
// skipped (never lost: a late callback is delivered when it comes). One
// behind is delivered at once; its key makes a duplicate a no-op. The
// highest counter delivered is stored (advance), so a restart, or
// another process, resumes the order.
//
// The skip after ReorderWait is decided by each process alone, from the
// callbacks it holds. The residual case: a gap (a lost or slow callback)
// with the two callbacks after it held on two different processes, the
// later one having arrived first. Each process skips to its own lowest
// held counter when its wait ends, so the later one can be stored before
// the earlier one, and the two are shown swapped. Nothing is lost or
// stored twice, and the stored counter still only moves forward; it
// costs the order of two messages, only when a callback is missing for
// ReorderWait and the platform also swapped the two after it. (When the
// earlier one arrived first its wait ends first, it is stored and its
// counter written, and the other process sees that on its next poll.)
func (a *Adapter) inOrder(ctx context.Context, conv string, counter uint64, deliver func(epoch uint64) error) int {
	l := a.acquire(conv)
	defer a.release(conv, l)
	l.mu.Lock()
	defer l.mu.Unlock()

	epoch, status := a.epochOf(ctx, l, conv, counter)
	if status != 0 {
		return status
	}

	if l.epoch == epoch && counter > l.next {
		me := heldKey{epoch, counter}
		l.waiting[me]++
		timer := time.NewTimer(a.cfg.ReorderWait)
		defer timer.Stop()
		poll := time.NewTicker(counterPoll)
		defer poll.Stop()
		expired, looked := false, false
		// A newer epoch ends the wait: the old session's order no longer
		// matters to what comes next.
		for l.epoch == epoch && counter > l.next {
			if expired && !looked && a.cfg.HistoryOn() {
				// The gap outlived the wait: the missing ones may be
				// lost. Chatlayer's history has them; once they are
				// stored, the counter moves past this one.
				looked = true
				a.fillGap(ctx, l, conv, counter)
				continue
			}
			if expired {
				// Skip the gap up to the lowest held counter: it goes
				// next, and the others follow it in order.
				if low := l.lowestWaiting(epoch); low > l.next {
					if a.cfg.HistoryOn() {
						a.skipped(ctx, conv, epoch, l.next-1)
					}
					l.next = low
					l.broadcast()
				}
				if counter <= l.next {
					break
				}
			}
			ch := l.changed
			l.mu.Unlock()
			var gone, reread bool
			select {
			case <-ch:
			case <-poll.C:
				reread = true
			case <-timer.C:
				// One last look before skipping: the gap may have
				// been filled elsewhere since the last poll.
				expired, reread = true, true
			case <-ctx.Done():
				gone = true
			case <-a.ctx.Done():
				gone = true
			}
			var v string
			var err error
			if reread {
				v, err = a.sink.Attr(ctx, conv, AttrCounter) // unlocked: the lane's deliveries go on meanwhile
			}
			l.mu.Lock()
			if gone {
				l.unwait(me)
				l.broadcast() // the others re-check the lowest held counter
				return http.StatusServiceUnavailable
			}
			if reread && err == nil {
				l.observe(v)
			}
			// A failed read is not fatal: the local wake-ups and the
			// wait's end still move this callback on.
		}
		l.unwait(me)
	}

	if err := deliver(epoch); err != nil {
		l.broadcast() // held callbacks whose wait is over must not wait for this one's retry
		if errors.Is(err, provider.ErrOtherBot) {
			return a.refused(conv)
		}
		a.log.Error("chatlayer reply not stored; Chatlayer will retry", "conversation", conv, "counter", counter, "err", err)
		return http.StatusInternalServerError
	}
	if l.epoch == epoch && counter >= l.next {
		if err := a.advance(ctx, l, conv, epoch, counter); err != nil {
			a.log.Error("chatlayer message counter not stored; Chatlayer will retry", "conversation", conv, "err", err)
			l.broadcast()
			return http.StatusInternalServerError
		}
		if l.epoch == epoch && counter+1 > l.next {
			l.next = counter + 1
		}
		l.broadcast()
	}
	return http.StatusOK
}

// epochOf returns the counter epoch a callback numbered counter belongs
// to, reading the stored state (always: another process may have begun
// an epoch since this lane last looked), and begins the next epoch when
// the callback shows that Chatlayer restarted messageCounter
// (restarted, assumption 8). The new epoch is written by compare-and-
// set from the state read, so when callbacks of the new session land on
// several processes at once exactly one begins it and the others see it
// on their next read. It returns a status other than 0 when the state
// cannot be read or written. l.mu is held.
func (a *Adapter) epochOf(ctx context.Context, l *lane, conv string, counter uint64) (uint64, int) {
	for range maxAdvance {
		v, err := a.sink.Attr(ctx, conv, AttrCounter)
		if err != nil {
			return 0, a.lookupFailed(conv, err)
		}
		l.observe(v)
		s, ok := ParseCounter(v)
		now := time.Now()
		if !ok || !restarted(s, counter, now, a.cfg.RetryWindow) {
			return l.epoch, 0
		}
		begun := Counter{Epoch: s.Epoch + 1, At: now}.String()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverTimeout)
		ok, err = a.sink.CompareAndSetAttr(wctx, conv, AttrCounter, v, begun)
		cancel()
		if err != nil {
			return 0, a.lookupFailed(conv, err)
		}
		if ok {
			a.log.Info("chatlayer restarted the message counter (a new session); new counter epoch",
				"conversation", conv, "epoch", s.Epoch+1, "counter", counter, "previous", s.Last)
			l.observe(begun)
			return l.epoch, 0
		}
		// Another process moved the state meanwhile: judge again on it.
	}
	a.log.Error("chatlayer callback: the stored message counter keeps changing", "conversation", conv)
	return 0, http.StatusInternalServerError
}

// maxAdvance bounds advance's and epochOf's compare-and-set rounds. Each
// lost round means another process moved the state forward meanwhile,
// which can happen only a few times before it passes ours; the bound is
// against a writer that does not follow the protocol.
const maxAdvance = 100

// advance moves the stored counter of epoch forward to counter, never
// back: a compare-and-set from the value last seen, re-read when another
// process changed it meanwhile, and nothing written when it is already
// at or past counter, or in a later epoch. The time written with it is
// what restarted measures the retry window from. l.mu is held.
func (a *Adapter) advance(ctx context.Context, l *lane, conv string, epoch, counter uint64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverTimeout)
	defer cancel()
	want := Counter{Epoch: epoch, Last: counter, At: time.Now()}.String()
	old := l.stored
	for range maxAdvance {
		if s, ok := ParseCounter(old); ok && (s.Epoch > epoch || s.Epoch == epoch && s.Last >= counter) {
			l.observe(old)
			return nil
		}
		ok, err := a.sink.CompareAndSetAttr(ctx, conv, AttrCounter, old, want)
		if err != nil {
			return err
		}
		if ok {
			l.observe(want)
			return nil
		}
		if old, err = a.sink.Attr(ctx, conv, AttrCounter); err != nil {
			return err
		}
	}
	return errors.New("chatlayer: the stored message counter keeps changing")
}

// observe takes a stored state read from (or written to) the Sink. A
// later epoch replaces the lane's (next restarts from its counter, and
// the callbacks held for the old one stop waiting); in the same epoch
// next moves up to follow the counter (never down: a skip may have put
// it ahead). Waiters are woken when anything moved. An earlier epoch is
// a stale read and changes nothing. l.mu is held.
func (l *lane) observe(v string) {
	s, ok := ParseCounter(v)
	if !ok {
		l.stored = v // advance overwrites it
		return
	}
	if l.loaded && s.Epoch < l.epoch {
		return
	}
	l.stored = v
	if !l.loaded || s.Epoch > l.epoch {
		l.loaded, l.epoch, l.next = true, s.Epoch, max(s.Last+1, firstCounter)
		l.broadcast()
		return
	}
	if s.Last+1 > l.next {
		l.next = s.Last + 1
		l.broadcast()
	}
}

func (l *lane) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lane) unwait(h heldKey) {
	if l.waiting[h]--; l.waiting[h] <= 0 {
		delete(l.waiting, h)
	}
}

// lowestWaiting returns the lowest counter held in epoch, or 0 when none
// is held.
func (l *lane) lowestWaiting(epoch uint64) uint64 {
	var low uint64
	for h := range l.waiting {
		if h.epoch == epoch && (low == 0 || h.counter < low) {
			low = h.counter
		}
	}
	return low
}

// acquire returns conversation conv's lane, creating it if needed.
func (a *Adapter) acquire(conv string) *lane {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lanes[conv]
	if l == nil {
		l = &lane{waiting: map[heldKey]int{}, changed: make(chan struct{})}
		a.lanes[conv] = l
	}
	l.refs++
	return l
}

// release undoes acquire and forgets an idle lane: its state is in the
// Sink, and reloading it costs one Attr read.
func (a *Adapter) release(conv string, l *lane) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(a.lanes, conv)
	}
}

// answer writes a short plain-text answer. It never echoes the request.
func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// clip bounds an untrusted id for a log line.
func clip(s string) string {
	if len(s) > 80 {
		return strings.ToValidUTF8(s[:80], "") + "…"
	}
	return s
}
