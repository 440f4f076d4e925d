package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/widget"
)

// visitor is a simulated widget: it sends its messages at a pace, keeps
// the unacknowledged ones in an outbox and sends them again with the
// same ids after each reconnect, and asks for what it missed with the
// last seq it holds, as widget.Client does. Welcomed without a
// conversation, it sends start first (after its session data), as an
// open widget does, and again after a rate_limited refusal.
type visitor struct {
	name  string
	texts []string
	gap   time.Duration
	dial  func(ctx context.Context) (net.Conn, error) // nil: a plain TCP dial
	// plan, when set, goes to the bot as session data on every
	// connection, before the outbox.
	plan string
	// stay keeps the widget connected after its last message, as an open
	// widget is, until run's context ends.
	stay bool
	// reroute, when set, is where the widget reconnects after its
	// connection to addr failed: another instance, as a load balancer
	// would send it. nil reconnects to the same address.
	reroute func(addr string) string

	mu       sync.Mutex
	token    string
	sent     int               // texts handed to the outbox
	outbox   []string          // client ids sent, not yet acknowledged
	byID     map[string]string // client id -> text
	acks     map[string]uint64 // client id -> seq
	msgs     map[uint64]*widget.Msg
	last     uint64 // every seq up to here has been received
	statuses map[string][]string
	closes   map[websocket.StatusCode]int
	codes    map[string]int       // error frames by code
	seenAt   map[string]time.Time // bot message text -> when it first arrived
	noRetry  int                  // error frames for a message without retry_ms
}

func newVisitor(name string, n int, gap time.Duration) *visitor {
	v := &visitor{name: name, gap: gap, byID: map[string]string{}, acks: map[string]uint64{},
		msgs: map[uint64]*widget.Msg{}, statuses: map[string][]string{}, closes: map[websocket.StatusCode]int{}, codes: map[string]int{},
		seenAt: map[string]time.Time{}}
	for i := range n {
		v.texts = append(v.texts, fmt.Sprintf("%s-m%d", name, i+1))
	}
	return v
}

func (v *visitor) ackSeq(id string) (uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.acks[id]
	return s, ok
}

func (v *visitor) ackedIDs() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var ids []string
	for id := range v.acks {
		ids = append(ids, id)
	}
	return ids
}

func (v *visitor) ackedTexts() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var texts []string
	for id := range v.acks {
		texts = append(texts, v.byID[id])
	}
	return texts
}

// done reports whether every message was sent and acknowledged.
func (v *visitor) done() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sent == len(v.texts) && len(v.outbox) == 0
}

// received returns the messages received, by seq, up to the first hole.
func (v *visitor) received() []*widget.Msg {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []*widget.Msg
	for s := uint64(1); v.msgs[s] != nil; s++ {
		out = append(out, v.msgs[s])
	}
	return out
}

// run keeps the visitor connected until its messages are all
// acknowledged or ctx ends, reconnecting after any failure.
func (v *visitor) run(ctx context.Context, addr string) {
	for ctx.Err() == nil && (v.stay || !v.done()) {
		if err := v.session(ctx, addr, false); err != nil {
			if v.reroute != nil {
				addr = v.reroute(addr)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(30+rand.IntN(120)) * time.Millisecond):
			}
		}
	}
}

// catchUp connects once more and reads until it holds the whole
// transcript, as a widget does on its next page view.
func (v *visitor) catchUp(r *faultRig) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		err := v.session(ctx, r.addr, true)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			r.t.Fatalf("%s cannot catch up: %v", v.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// session is one connection: hello, the outbox again, new messages at
// the visitor's pace. With sync it returns once the replay reached the
// welcome's last seq and nothing is left to send.
func (v *visitor) session(ctx context.Context, addr string, sync bool) error {
	opts := &websocket.DialOptions{Subprotocols: []string{widget.Protocol}}
	if v.dial != nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return v.dial(ctx) },
		}}
	}
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	c, _, err := websocket.Dial(dctx, "ws://"+addr+"/v1/ws?bot=shop", opts)
	dcancel()
	if err != nil {
		return err
	}
	defer c.CloseNow()
	c.SetReadLimit(widget.MaxFrame)
	v.mu.Lock()
	hello := &widget.Hello{Bot: "shop", Visitor: v.token, After: v.last, Locale: "en", TZ: "UTC"}
	resend := append([]string(nil), v.outbox...)
	v.mu.Unlock()
	if err := write(ctx, c, hello); err != nil {
		return err
	}
	welcome := make(chan *widget.Welcome, 1)
	caught := make(chan struct{})
	readErr := make(chan error, 1)
	retry := make(chan string, 16)
	go func() { readErr <- v.read(ctx, c, welcome, caught, retry) }()
	var w *widget.Welcome
	select {
	case w = <-welcome:
	case err := <-readErr:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("no welcome")
	}
	last := w.Last
	if v.plan != "" {
		if err := write(ctx, c, &widget.Session{ID: v.name + "-session", Data: widget.RawJSON(`{"plan":"` + v.plan + `"}`)}); err != nil {
			return err
		}
	}
	if w.Conversation == "" {
		if err := v.sendID(ctx, c, v.startID()); err != nil {
			return err
		}
	}
	for _, id := range resend {
		if err := v.sendID(ctx, c, id); err != nil {
			return err
		}
	}
	tick := time.NewTicker(max(v.gap, time.Millisecond))
	defer tick.Stop()
	for {
		if sync && v.done() && v.holds(last) {
			c.Close(websocket.StatusNormalClosure, "")
			return nil
		}
		if !sync && !v.stay && v.done() {
			c.Close(websocket.StatusNormalClosure, "")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return err
		case <-caught:
		case id := <-retry:
			if err := v.sendID(ctx, c, id); err != nil {
				return err
			}
		case <-tick.C:
			v.mu.Lock()
			id := ""
			if v.sent < len(v.texts) {
				id = fmt.Sprintf("%s-c%d", v.name, v.sent+1)
				v.byID[id] = v.texts[v.sent]
				v.outbox = append(v.outbox, id)
				v.sent++
			}
			v.mu.Unlock()
			if id != "" {
				if err := v.sendID(ctx, c, id); err != nil {
					return err
				}
			}
		}
	}
}

func (v *visitor) holds(seq uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last >= seq
}

// startID is the id of the visitor's start frames.
func (v *visitor) startID() string { return v.name + "-start" }

func (v *visitor) sendID(ctx context.Context, c *websocket.Conn, id string) error {
	if id == v.startID() {
		return write(ctx, c, &widget.Start{ID: id})
	}
	v.mu.Lock()
	text := v.byID[id]
	v.mu.Unlock()
	return write(ctx, c, &widget.Send{ID: id, Text: text})
}

// read takes the server's frames until the socket fails.
func (v *visitor) read(ctx context.Context, c *websocket.Conn, welcome chan<- *widget.Welcome, caught chan<- struct{}, retry chan<- string) error {
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				v.mu.Lock()
				v.closes[code]++
				v.mu.Unlock()
			}
			return err
		}
		f, err := widget.Decode(data)
		if err != nil {
			return fmt.Errorf("invalid frame %s: %w", data, err)
		}
		v.mu.Lock()
		switch f := f.(type) {
		case *widget.Welcome:
			v.token = f.Visitor
			select {
			case welcome <- f:
			default:
			}
		case *widget.Msg:
			if old := v.msgs[f.Seq]; old != nil && old.ID != f.ID {
				v.mu.Unlock()
				return fmt.Errorf("seq %d came as two messages, %s and %s", f.Seq, old.ID, f.ID)
			}
			v.msgs[f.Seq] = f
			if _, ok := v.seenAt[f.Body.Text]; !ok && f.From == "bot" {
				v.seenAt[f.Body.Text] = time.Now()
			}
			for v.msgs[v.last+1] != nil {
				v.last++
			}
			select {
			case caught <- struct{}{}:
			default:
			}
		case *widget.Ack:
			if f.ID == v.name+"-session" {
				break
			}
			if old, ok := v.acks[f.ID]; ok && old != f.Seq {
				v.mu.Unlock()
				return fmt.Errorf("%s acknowledged as seq %d, then %d", f.ID, old, f.Seq)
			}
			v.acks[f.ID] = f.Seq
			for i, id := range v.outbox {
				if id == f.ID {
					v.outbox = append(v.outbox[:i:i], v.outbox[i+1:]...)
					break
				}
			}
			select {
			case caught <- struct{}{}:
			default:
			}
		case *widget.Status:
			v.statuses[f.ID] = append(v.statuses[f.ID], f.State)
		case *widget.ErrorFrame:
			v.codes[f.Code]++
			if f.ID != "" && f.RetryMS <= 0 {
				v.noRetry++
			}
			if f.ID != "" {
				id, wait := f.ID, time.Duration(max(f.RetryMS, 50))*time.Millisecond
				time.AfterFunc(wait, func() {
					select {
					case retry <- id:
					default:
					}
				})
			}
		}
		v.mu.Unlock()
	}
}

func write(ctx context.Context, c *websocket.Conn, f widget.Frame) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, widget.Encode(f))
}

// visitors makes n visitors of m messages each, a message every gap.
func visitors(prefix string, n, m int, gap time.Duration) []*visitor {
	var vs []*visitor
	for i := range n {
		vs = append(vs, newVisitor(fmt.Sprintf("%s%d", prefix, i+1), m, gap))
	}
	return vs
}

// runAll runs the visitors until each has every message acknowledged,
// failing the test after within.
func runAll(t *testing.T, addr string, vs []*visitor, within time.Duration) {
	t.Helper()
	startAll(t, addr, vs, within)()
}

// startAll runs the visitors in the background; wait blocks until they
// are done, failing the test if one is not within its time.
func startAll(t *testing.T, addr string, vs []*visitor, within time.Duration) (wait func()) {
	t.Helper()
	return startEach(t, func(int) string { return addr }, vs, within)
}

// startEach is startAll with visitor i starting on addrOf(i).
func startEach(t *testing.T, addrOf func(i int) string, vs []*visitor, within time.Duration) (wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		var wg sync.WaitGroup
		for i, v := range vs {
			addr := addrOf(i)
			wg.Go(func() { v.run(ctx, addr) })
		}
		wg.Wait()
	}()
	return func() {
		t.Helper()
		<-done
		for _, v := range vs {
			if !v.done() {
				v.mu.Lock()
				t.Fatalf("%s: %d of %d sent, %d unacknowledged after %s", v.name, v.sent, len(v.texts), len(v.outbox), within)
			}
		}
	}
}

// allDelivered reports whether every message the visitor sent and had
// acknowledged shows delivered, as the last state it was told.
func (v *visitor) allDelivered() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id := range v.acks {
		st := v.statuses[id]
		if len(st) == 0 || st[len(st)-1] != widget.StateDelivered {
			return false
		}
	}
	return true
}
