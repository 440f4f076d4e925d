package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// AttrKey is the Sink attribute under which the bot keeps each
// conversation's state (the block awaiting input, the variables), so a
// restarted server carries on where it stopped.
const AttrKey = "demo"

// maxVar bounds a stored variable or session value, in characters, so
// that a rendered message stays within the model's limits.
const maxVar = 100

// Options tunes a Bot. The zero value is ready for `make run`.
type Options struct {
	// TypingDelay is how long the typing indicator shows before each
	// reply, so the demo feels like a bot thinking rather than a form
	// posting back. Zero means 600ms; tests use a millisecond.
	TypingDelay time.Duration
	// BaseURL is the server's public URL. Script URLs that start with "/"
	// are appended to it, so the built-in script can show assets the
	// server serves itself. Empty means http://localhost:8080.
	BaseURL string
	// Log receives failures to deliver a reply, which nobody waits for.
	// Nil means slog.Default().
	Log *slog.Logger
}

// Bot runs a Script for any number of conversations. It implements
// provider.Provider.
type Bot struct {
	script *Script
	sink   provider.Sink
	delay  time.Duration
	base   string
	log    *slog.Logger

	ctx    context.Context // cancelled by Close: ends typing pauses
	cancel context.CancelFunc
	wg     sync.WaitGroup // reply goroutines

	mu     sync.Mutex // guards closed, convs and every conv's refs, queue and running
	closed bool
	convs  map[string]*conv
}

var _ provider.Provider = (*Bot)(nil)

// conv serializes one conversation: Send's state update under sendMu, and
// its replies through one goroutine draining queue in order.
type conv struct {
	sendMu  sync.Mutex
	refs    int // Sends holding or waiting for sendMu
	queue   []reply
	running bool // a goroutine drains queue
}

type reply struct {
	key  string
	body widget.Body
}

// state is what the bot remembers of a conversation, stored as JSON.
type state struct {
	Await string            `json:"await,omitempty"` // block whose collect awaits the next typed text
	Vars  map[string]string `json:"vars,omitempty"`
	// Last is the id of the last visitor message handled and Prev the
	// state before it, so a redelivered message replays to the same
	// replies instead of being answered from the state it produced.
	Last string `json:"last,omitempty"`
	Prev *state `json:"prev,omitempty"`
}

// New returns a Bot that plays s and replies through sink. It panics if
// opts.BaseURL is set but not an absolute http(s) URL: that is a
// configuration mistake better caught at startup.
func New(s *Script, sink provider.Sink, opts Options) *Bot {
	if opts.TypingDelay <= 0 {
		opts.TypingDelay = 600 * time.Millisecond
	}
	if opts.BaseURL == "" {
		opts.BaseURL = "http://localhost:8080"
	}
	if err := widget.CheckURL("BaseURL", opts.BaseURL, false); err != nil {
		panic("demo: Options." + err.Error())
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bot{
		script: s, sink: sink, delay: opts.TypingDelay,
		base: strings.TrimSuffix(opts.BaseURL, "/"), log: opts.Log,
		ctx: ctx, cancel: cancel, convs: map[string]*conv{},
	}
}

// errClosed is returned by Send after Close. It is temporary: the service
// retries, and a restarted server answers.
var errClosed = &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Err: errors.New("demo bot closed")}

// Send works out the replies to m, records the conversation's new state,
// and returns; the replies follow through the Sink, in order per
// conversation, each after a typing pause. Handing the latest message again
// (same ClientID) produces the same replies under the same keys.
func (b *Bot) Send(ctx context.Context, m provider.Message) error {
	switch m.Kind {
	case provider.Start, provider.Text, provider.Postback:
	default:
		return &provider.Error{Reason: provider.ReasonRejected, Err: fmt.Errorf("demo: unknown message kind %q", m.Kind)}
	}
	if m.Conversation == "" {
		return &provider.Error{Reason: provider.ReasonRejected, Err: errors.New("demo: message without a conversation")}
	}
	c, err := b.acquire(m.Conversation)
	if err != nil {
		return err
	}
	defer b.release(m.Conversation, c)

	raw, err := b.sink.Attr(ctx, m.Conversation, AttrKey)
	if err != nil {
		return err
	}
	var st state
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			b.log.Warn("demo: unreadable conversation state; starting over", "conversation", m.Conversation, "err", err)
			st = state{}
		}
	}
	id := messageID(m)
	if st.Last == id && st.Prev != nil {
		st = *st.Prev // redelivery: answer from the state it was first answered from
	}
	prev := st
	prev.Last, prev.Prev = "", nil
	next, bodies := b.answer(st, m)
	next.Last, next.Prev = id, &prev
	data, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := b.sink.SetAttr(ctx, m.Conversation, AttrKey, string(data)); err != nil {
		return err
	}

	replies := make([]reply, len(bodies))
	for i, body := range bodies {
		replies[i] = reply{key: "demo/" + id + "/" + strconv.Itoa(i), body: body}
	}
	// After Close the replies cannot go out: fail, so the service hands
	// the message again after the restart and it is replayed from Prev.
	return b.enqueue(m.Conversation, c, replies)
}

// messageID names m for reply keys. The widget's ClientID is stable across
// retries; Start carries none and happens once per conversation.
func messageID(m provider.Message) string {
	switch {
	case m.ClientID != "":
		return m.ClientID
	case m.Kind == provider.Start:
		return "start"
	}
	return "seq" + strconv.FormatUint(m.Seq, 10)
}

// answer returns the state after m and the replies to it. It depends only
// on st and m, which is what makes redelivery safe.
func (b *Bot) answer(st state, m provider.Message) (state, []widget.Body) {
	s := b.script
	vars := make(map[string]string, len(st.Vars)+1)
	for k, v := range st.Vars {
		vars[k] = v
	}
	awaiting := st.Await
	st = state{Vars: vars}

	var target string
	switch m.Kind {
	case provider.Start:
		target = s.start
	case provider.Postback:
		name, ok := strings.CutPrefix(m.Payload, payloadPrefix)
		if target = s.fallback; ok && s.blocks[name] != nil {
			target = name
		}
	case provider.Text:
		if blk := s.blocks[awaiting]; blk != nil && blk.Collect != "" {
			if v := clean(m.Text); v != "" {
				vars[blk.Collect] = v
			} else {
				delete(vars, blk.Collect)
			}
			target = blk.Next
		} else if target = s.match(m.Text); target == "" {
			target = s.fallback
		}
	}

	var session map[string]any
	if len(m.Session) > 0 {
		_ = json.Unmarshal(m.Session, &session) // not an object: no session values
	}
	look := func(name string) string {
		if key, ok := strings.CutPrefix(name, "session."); ok {
			return sessionValue(session, key)
		}
		return vars[name]
	}

	var bodies []widget.Body
	for range maxChain {
		blk := s.blocks[target]
		if blk == nil {
			break
		}
		for i := range blk.Messages {
			msg := &blk.Messages[i]
			body := msg.render(look, b.base)
			if body.Validate() != nil {
				// A long name pushed a field over its limit: the
				// defaults passed Parse, so they are safe.
				body = msg.render(noVars, b.base)
			}
			bodies = append(bodies, body)
		}
		if blk.Collect != "" {
			st.Await = target
			break
		}
		if target = blk.Next; target == "" {
			break
		}
	}
	if len(st.Vars) == 0 {
		st.Vars = nil
	}
	return st, bodies
}

// sessionValue reads a dotted key path from the session object, as text.
func sessionValue(session map[string]any, key string) string {
	var v any = session
	for k := range strings.SplitSeq(key, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = obj[k]
	}
	switch v := v.(type) {
	case string:
		return clean(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// clean trims a visitor-supplied value and bounds its length.
func clean(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	if utf8.RuneCountInString(s) > maxVar {
		s = strings.TrimSpace(string([]rune(s)[:maxVar])) + "…"
	}
	return s
}

// acquire locks conversation id for one Send.
func (b *Bot) acquire(id string) (*conv, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed
	}
	c := b.convs[id]
	if c == nil {
		c = &conv{}
		b.convs[id] = c
	}
	c.refs++
	b.mu.Unlock()
	c.sendMu.Lock()
	return c, nil
}

// release undoes acquire and forgets the conversation once idle.
func (b *Bot) release(id string, c *conv) {
	c.sendMu.Unlock()
	b.mu.Lock()
	c.refs--
	b.forget(id, c)
	b.mu.Unlock()
}

// forget drops an idle conversation; b.mu must be held.
func (b *Bot) forget(id string, c *conv) {
	if c.refs == 0 && !c.running && len(c.queue) == 0 {
		delete(b.convs, id)
	}
}

// enqueue adds replies to the conversation's queue and starts its drainer
// if none runs. It is called with c.sendMu held, so queues fill in the
// order Sends were answered.
func (b *Bot) enqueue(id string, c *conv, replies []reply) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	if len(replies) == 0 {
		return nil
	}
	c.queue = append(c.queue, replies...)
	if !c.running {
		c.running = true
		b.wg.Add(1)
		go b.drain(id, c)
	}
	return nil
}

// drain delivers a conversation's queued replies one by one, each after a
// typing pause, until the queue is empty or the bot closes.
func (b *Bot) drain(id string, c *conv) {
	defer b.wg.Done()
	timer := time.NewTimer(0)
	<-timer.C
	for {
		b.mu.Lock()
		if len(c.queue) == 0 || b.ctx.Err() != nil {
			b.mu.Unlock()
			// Hide the indicator before deciding to stop, so a drainer
			// started after us never has its indicator hidden by us.
			b.sink.Typing(id, false)
			b.mu.Lock()
			if len(c.queue) == 0 || b.ctx.Err() != nil {
				c.queue, c.running = nil, false
				b.forget(id, c)
				b.mu.Unlock()
				return
			}
		}
		r := c.queue[0]
		c.queue = c.queue[1:]
		b.mu.Unlock()

		b.sink.Typing(id, true)
		timer.Reset(b.delay)
		select {
		case <-timer.C:
		case <-b.ctx.Done():
			timer.Stop()
			continue
		}
		b.deliver(id, r)
	}
}

// deliver hands one reply to the sink, retrying briefly: the sink is our
// own store, so a failure is rare and short. An attempt already started
// is not cut short by Close, so shutdown never leaves half a write.
func (b *Bot) deliver(id string, r reply) {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-b.ctx.Done():
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
		err = b.sink.Deliver(ctx, id, r.key, r.body)
		cancel()
		if err == nil {
			return
		}
	}
	b.log.Error("demo: reply lost", "conversation", id, "key", r.key, "err", err)
}

// Close stops the bot: later Sends fail as temporarily unavailable,
// replies still waiting for their typing pause are dropped, and Close
// returns once every reply goroutine has finished, so the Sink can be
// closed right after.
func (b *Bot) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	return nil
}
