package main

// The fault suite: the real binary, the ChatAIBot emulator as its
// upstream, and simulated widgets over real WebSockets, under every fault
// the promise to a website owner has to survive. Each scenario ends with
// the same audit (faultRig.audit): every acknowledged visitor message is
// stored once and reached the platform once, every callback the server
// accepted reached the visitor once, and every transcript's seq runs
// from 1 without a hole, in the store and in what each widget received.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/widget"
)

const faultSecret = "fault-suite-webhook-secret-0123"

// faultRig is a porthole server process fronting a platform emulator
// that listens on an address of the test's own, so the test can take the
// platform down and bring it back on the same address.
type faultRig struct {
	t    *testing.T
	plat platform
	emu  *chataibottest.Server // the platform, when it is ChatAIBot
	addr string                // the porthole server
	data string
	cfg  string
	p    *proc

	emuAddr string
	emuMu   sync.Mutex
	emuSrv  *http.Server // nil while the platform is down
}

// faultConfig is the server config of the fault suite: bolt store, limits
// that a burst does not hit, and short upstream timeouts so that retries
// happen within seconds. extra is appended at the top level, then the
// platform's bot entry.
const faultConfig = `store: {driver: bolt}
upstream: {timeout: 500ms, max_backoff: 1s, retry_for: 5m}
%s
bots:
%s`

// faultLimits are the fault suite's limits unless extra sets its own.
const faultLimits = "limits: {messages_per_minute: 6000, burst: 200, ip_messages_per_minute: 1000000, connections_per_ip: 10000}\n"

// platform is what the fault suite needs of a platform emulator.
type platform interface {
	Handler() http.Handler
	Close()
	// bot is the YAML entry of bot "shop" on this platform at base.
	bot(base string) string
	// setHook points the platform's callbacks at the proxy.
	setHook(proxy string)
	// accepted counts the visitor texts the platform took, by text.
	accepted() map[string]int
	// replies returns the bot messages of every callback the proxy
	// answered with a 2xx, once each however often it was posted.
	replies(t *testing.T) []reply
	// idle returns once no callback is queued or in flight.
	idle(ctx context.Context) error
}

// reply is a bot message the proxy accepted. conv is our conversation id
// when the platform's callback names it (Chatlayer), else empty; order
// is the platform's messageCounter, 0 when it has none.
type reply struct {
	conv, text string
	order      uint64
}

// newFaultRig starts a ChatAIBot emulator and the server. data is the
// server's data directory ("" for a new temporary one).
func newFaultRig(t *testing.T, opts chataibottest.Options, data, extra string) *faultRig {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	if opts.Parallel == 0 {
		opts.Parallel = 64
	}
	emu := chataibottest.New(opts)
	r := newRigOn(t, aiPlatform{emu}, data, extra)
	r.emu = emu
	return r
}

// newRigOn starts the server in front of plat, which it serves on an
// address of its own.
func newRigOn(t *testing.T, plat platform, data, extra string) *faultRig {
	t.Helper()
	r := &faultRig{t: t, plat: plat, addr: freeAddr(t), data: data}
	if r.data == "" {
		r.data = t.TempDir()
	}
	r.emuAddr = freeAddr(t)
	r.upstreamUp()
	t.Cleanup(func() {
		r.upstreamDown()
		plat.Close()
	})
	plat.setHook("http://" + r.addr)
	r.cfg = filepath.Join(t.TempDir(), "porthole.yaml")
	if !strings.Contains(extra, "limits:") {
		extra = faultLimits + extra
	}
	cfg := fmt.Sprintf(faultConfig, extra, plat.bot("http://"+r.emuAddr))
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.p = launch(t, r.addr, r.data, "--config", r.cfg)
	return r
}

// aiPlatform is the ChatAIBot emulator as a platform.
type aiPlatform struct{ *chataibottest.Server }

func (p aiPlatform) bot(base string) string {
	p.URL = base
	return fmt.Sprintf(`  - id: shop
    provider: chataibot
    origins: ["self"]
    chataibot: {base_url: %q, token: %q, bot_key: %q, webhook_secret: %q}
`, base, chataibottest.DefaultToken, chataibottest.DefaultBotKey, faultSecret)
}

func (p aiPlatform) setHook(proxy string) { p.SetCallback(proxy+"/hooks/chataibot/shop", faultSecret) }

func (p aiPlatform) idle(ctx context.Context) error { return p.Wait(ctx) }

func (p aiPlatform) accepted() map[string]int {
	n := map[string]int{}
	for _, c := range p.Conversations() {
		for _, m := range c.Messages {
			n[m]++
		}
	}
	return n
}

// replies: a batch posted twice is one batch (its message_id).
func (p aiPlatform) replies(t *testing.T) []reply {
	seen := map[string]bool{}
	var out []reply
	for _, a := range p.Callbacks() {
		if a.Status < 200 || a.Status > 299 {
			continue
		}
		var cb chataibot.Callback
		if err := json.Unmarshal(a.Body, &cb); err != nil {
			t.Fatalf("callback body: %v", err)
		}
		if seen[cb.MessageID] {
			continue
		}
		seen[cb.MessageID] = true
		for _, m := range cb.Messages {
			out = append(out, reply{text: m.Data.Body})
		}
	}
	return out
}

// clPlatform is the Chatlayer emulator as a platform.
type clPlatform struct{ *chatlayertest.Server }

func (p clPlatform) bot(base string) string {
	return fmt.Sprintf(`  - id: shop
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %q, channel_id: %q, token: %q, verify_token: %q, reorder_wait: 500ms}
`, base, chatlayertest.DefaultChannelID, chatlayertest.DefaultToken, chatlayertest.DefaultVerifyToken)
}

func (p clPlatform) setHook(proxy string) { p.SetCallback(proxy + "/hooks/chatlayer/shop") }

func (p clPlatform) idle(ctx context.Context) error { return p.WaitIdle(ctx) }

func (p clPlatform) accepted() map[string]int {
	n := map[string]int{}
	for _, q := range p.Requests() {
		if q.Status < 200 || q.Status > 299 || q.Kind != "text" {
			continue
		}
		var body struct {
			Message struct {
				TextMessage struct{ Text string } `json:"textMessage"`
			} `json:"message"`
		}
		json.Unmarshal(q.Body, &body)
		n[body.Message.TextMessage.Text]++
	}
	return n
}

// replies: a message posted twice is one message (its user and counter).
func (p clPlatform) replies(t *testing.T) []reply {
	type key struct {
		user    string
		counter uint64
	}
	seen := map[key]bool{}
	var out []reply
	for _, c := range p.Callbacks() {
		k := key{c.UserID, c.Counter}
		if c.Status < 200 || c.Status > 299 || seen[k] {
			continue
		}
		seen[k] = true
		var m struct{ Text string }
		if err := json.Unmarshal(c.Message, &m); err != nil {
			t.Fatalf("callback message: %v", err)
		}
		out = append(out, reply{conv: c.UserID, text: m.Text, order: c.Counter})
	}
	return out
}

// upstreamUp serves the emulator on its address (again).
func (r *faultRig) upstreamUp() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the address can take a moment to be free again
		if ln, err = net.Listen("tcp", r.emuAddr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("platform back on %s: %v", r.emuAddr, err)
	}
	srv := &http.Server{Handler: r.plat.Handler()}
	go srv.Serve(ln)
	r.emuMu.Lock()
	r.emuSrv = srv
	r.emuMu.Unlock()
}

// upstreamDown stops the platform: connections are refused.
func (r *faultRig) upstreamDown() {
	r.emuMu.Lock()
	srv := r.emuSrv
	r.emuSrv = nil
	r.emuMu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart stops the server (SIGKILL when kill, else SIGTERM and a wait
// for its exit) and starts it again on the same address and data.
func (r *faultRig) restart(kill bool) {
	r.t.Helper()
	if kill {
		r.p.kill()
	} else {
		r.p.cmd.Process.Signal(os.Interrupt)
		if err := r.p.cmd.Wait(); err != nil {
			r.t.Fatalf("graceful stop: %v\n%s", err, r.p.log())
		}
	}
	r.p = launch(r.t, r.addr, r.data, "--config", r.cfg)
}

// settle waits until the platform has nothing left to post and no stored
// message is waiting for it: every visitor message is with the platform
// and every reply batch has been delivered or given up.
func (r *faultRig) settle(vs []*visitor, within time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if err := r.plat.idle(ctx); err != nil {
			r.t.Fatalf("the platform still has callbacks to post after %s", within)
		}
		up := r.upstreamTexts()
		missing := ""
		for _, v := range vs {
			for _, text := range v.ackedTexts() {
				if up[text] == 0 {
					missing = text
				}
			}
		}
		if missing == "" {
			// Once more: a reply produced while we looked is posted too.
			if err := r.plat.idle(ctx); err == nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("acknowledged message %q never reached the platform within %s", missing, within)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// upstreamTexts counts the visitor messages the platform accepted, by text.
func (r *faultRig) upstreamTexts() map[string]int { return r.plat.accepted() }

// audit checks the promise for every visitor. mayRepeat names visitor
// messages the platform may have received twice (a crash between the
// platform's 2xx and our record of it); every other message must reach
// it exactly once.
func (r *faultRig) audit(vs []*visitor, mayRepeat func(text string) bool) {
	t := r.t
	t.Helper()
	stored := map[string]int{}    // user message text -> times stored
	botSaid := map[string]int{}   // bot message text -> times stored
	botIn := map[string]int{}     // conversation + "\x00" + bot message text -> times stored
	storedIDs := map[string]int{} // client id -> times stored
	transcripts := map[string][]*widget.Msg{}
	for _, v := range vs {
		w, msgs := replayBot(t, r.p, "shop", v.token, 0)
		transcripts[w.Conversation] = msgs
		for i, m := range msgs {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s: transcript seq %d at position %d: a hole or a repeat", v.name, m.Seq, i+1)
			}
			switch m.From {
			case "user":
				stored[m.Body.Text]++
				storedIDs[m.ClientID]++
				if seq, ok := v.ackSeq(m.ClientID); ok && seq != m.Seq {
					t.Fatalf("%s: %s acknowledged as seq %d, stored as %d", v.name, m.ClientID, seq, m.Seq)
				}
			case "bot":
				botSaid[m.Body.Text]++
				botIn[w.Conversation+"\x00"+m.Body.Text]++
			}
		}
		if uint64(len(msgs)) != w.Last {
			t.Fatalf("%s: replayed %d messages, last seq %d", v.name, len(msgs), w.Last)
		}
		// What the widget received, live and after its reconnects, is the
		// transcript: every seq once, in order, nothing else.
		v.catchUp(r)
		got := v.received()
		if len(got) != len(msgs) {
			t.Fatalf("%s received %d messages, the transcript has %d", v.name, len(got), len(msgs))
		}
		for i, m := range msgs {
			if got[i].ID != m.ID {
				t.Fatalf("%s: seq %d received as message %s, stored as %s", v.name, m.Seq, got[i].ID, m.ID)
			}
		}
		for _, id := range v.ackedIDs() {
			if storedIDs[id] != 1 {
				t.Fatalf("%s: acknowledged message %s stored %d times", v.name, id, storedIDs[id])
			}
		}
	}
	for id, n := range storedIDs {
		if n != 1 {
			t.Fatalf("client message %s stored %d times", id, n)
		}
	}
	up := r.upstreamTexts()
	for text, n := range stored {
		if n != 1 {
			t.Fatalf("visitor message %q stored %d times", text, n)
		}
		if up[text] != 1 && !(up[text] == 2 && mayRepeat != nil && mayRepeat(text)) {
			t.Fatalf("visitor message %q reached the platform %d times, want once", text, up[text])
		}
	}
	for text := range up {
		if stored[text] == 0 {
			t.Fatalf("the platform got %q, which no transcript holds", text)
		}
	}
	replies := r.plat.replies(t)
	numbered := map[string][]reply{} // by conversation
	for _, rp := range replies {
		if rp.conv != "" {
			numbered[rp.conv] = append(numbered[rp.conv], rp)
		} else if botSaid[rp.text] != 1 {
			t.Fatalf("accepted bot reply %q is in the transcripts %d times, want once", rp.text, botSaid[rp.text])
		}
	}
	// Where the platform numbers its messages and names our conversation,
	// the transcript's bot messages are exactly the accepted ones in the
	// platform's order, however the callbacks arrived.
	for conv, rs := range numbered {
		sort.Slice(rs, func(i, j int) bool { return rs[i].order < rs[j].order })
		var got []string
		for _, m := range transcripts[conv] {
			if m.From == "bot" {
				got = append(got, m.Body.Text)
			}
		}
		for i, rp := range rs {
			if i >= len(got) || got[i] != rp.text {
				t.Fatalf("conversation %s: bot messages stored as %q, the platform numbered them %q", conv, got, texts(rs))
			}
		}
		if len(got) != len(rs) {
			t.Fatalf("conversation %s: %d bot messages stored, %d accepted", conv, len(got), len(rs))
		}
	}
	if len(replies) != sumCounts(botSaid) {
		t.Fatalf("%d bot messages stored, %d accepted from the platform", sumCounts(botSaid), len(replies))
	}
	t.Logf("audit: %d visitors, %d visitor messages stored and with the platform, %d bot replies accepted and shown once",
		len(vs), len(stored), len(replies))
}

func texts(rs []reply) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.text)
	}
	return out
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// visitor is a simulated widget: it sends its messages at a pace, keeps
// the unacknowledged ones in an outbox and sends them again with the
// same ids after each reconnect, and asks for what it missed with the
// last seq it holds, as widget.Client does.
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
	errors   int            // error frames
	codes    map[string]int // error frames by code
	noRetry  int            // error frames for a message without retry_ms
}

func newVisitor(name string, n int, gap time.Duration) *visitor {
	v := &visitor{name: name, gap: gap, byID: map[string]string{}, acks: map[string]uint64{},
		msgs: map[uint64]*widget.Msg{}, statuses: map[string][]string{}, closes: map[websocket.StatusCode]int{}, codes: map[string]int{}}
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
	welcome := make(chan uint64, 1)
	caught := make(chan struct{})
	readErr := make(chan error, 1)
	retry := make(chan string, 16)
	go func() { readErr <- v.read(ctx, c, welcome, caught, retry) }()
	var last uint64
	select {
	case last = <-welcome:
	case err := <-readErr:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("no welcome")
	}
	if v.plan != "" {
		if err := write(ctx, c, &widget.Session{ID: v.name + "-session", Data: widget.RawJSON(`{"plan":"` + v.plan + `"}`)}); err != nil {
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

func (v *visitor) sendID(ctx context.Context, c *websocket.Conn, id string) error {
	v.mu.Lock()
	text := v.byID[id]
	v.mu.Unlock()
	return write(ctx, c, &widget.Send{ID: id, Text: text})
}

// read takes the server's frames until the socket fails.
func (v *visitor) read(ctx context.Context, c *websocket.Conn, welcome chan<- uint64, caught chan<- struct{}, retry chan<- string) error {
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
			case welcome <- f.Last:
			default:
			}
		case *widget.Msg:
			if old := v.msgs[f.Seq]; old != nil && old.ID != f.ID {
				v.mu.Unlock()
				return fmt.Errorf("seq %d came as two messages, %s and %s", f.Seq, old.ID, f.ID)
			}
			v.msgs[f.Seq] = f
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
			v.errors++
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		var wg sync.WaitGroup
		for _, v := range vs {
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

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultUpstreamErrors: 500s, 503s and 429s, some with Retry-After or
// x-ratelimit-reset headers, and the platform's own rate limit, while
// visitors send in a burst.
func TestFaultUpstreamErrors(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{RateLimit: 20, RateWindow: time.Second}, "", "")
	r.emu.FailNext(6, http.StatusInternalServerError, nil)
	vs := visitors("err", 6, 8, 30*time.Millisecond) // 48 messages in 0.25 s, over the 20/s limit
	wait := startAll(t, r.addr, vs, time.Minute)
	time.Sleep(100 * time.Millisecond)
	r.emu.FailNext(4, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	time.Sleep(100 * time.Millisecond)
	reset := time.Now().Add(700 * time.Millisecond).UnixMilli() // the 13-digit form
	r.emu.FailNext(3, http.StatusServiceUnavailable, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {fmt.Sprint(reset)}})
	wait()
	r.settle(vs, time.Minute)
	st := r.emu.Stats()
	if st.Faults != 13 || st.RateLimited == 0 {
		t.Fatalf("faults answered %d (want 13), rate-limited %d (want some)", st.Faults, st.RateLimited)
	}
	r.audit(vs, nil)
}

// TestFaultUpstreamTimeouts: the platform answers after the 500 ms call
// timeout for two seconds; calls are abandoned (the emulator then does not
// take the message) and retried.
func TestFaultUpstreamTimeouts(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "")
	r.emu.Slow(3 * time.Second)
	vs := visitors("slow", 4, 5, 100*time.Millisecond)
	wait := startAll(t, r.addr, vs, time.Minute)
	time.Sleep(2 * time.Second)
	r.emu.Slow(0)
	wait()
	r.settle(vs, time.Minute)
	abandoned := 0
	for _, q := range r.emu.Requests() {
		if q.Status == 0 {
			abandoned++
		}
	}
	if abandoned == 0 {
		t.Fatal("no call timed out")
	}
	t.Logf("%d calls timed out and were retried", abandoned)
	r.audit(vs, nil)
}

// TestFaultUpstreamDeadForAMinute: the platform refuses connections for a
// minute. Visitors' messages are acknowledged (they are stored), show
// failed after three attempts, and are delivered once, exactly once, when
// the platform is back.
func TestFaultUpstreamDeadForAMinute(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "")
	vs := visitors("dead", 3, 4, 200*time.Millisecond)
	r.upstreamDown()
	// One widget leaves once its messages are acknowledged and comes
	// back later: it must learn what failed while it was away.
	away := newVisitor("deadaway", 3, 50*time.Millisecond)
	runAll(t, r.addr, []*visitor{away}, 30*time.Second)
	vs = append(vs, away)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	failedThrice := regexp.MustCompile(`upstream call failed.* seq=([1-9]\d*) attempt=3 `)
	waitFor(t, "its three messages to fail while it is away", 30*time.Second, func() bool {
		seqs := map[string]bool{}
		for _, m := range failedThrice.FindAllStringSubmatch(r.p.log(), -1) {
			seqs[m[1]] = true
		}
		return len(seqs) >= 3
	})
	for _, v := range vs {
		v.stay = true // an open widget, there to see what becomes of its messages
		wg.Go(func() { v.run(ctx, r.addr) })
	}
	waitFor(t, "every message acknowledged and shown failed", 30*time.Second, func() bool {
		for _, v := range vs {
			v.mu.Lock()
			sent, acked := v.sent, len(v.acks)
			failed := 0
			for id := range v.acks {
				if st := v.statuses[id]; len(st) > 0 && st[len(st)-1] == widget.StateFailed {
					failed++
				}
			}
			v.mu.Unlock()
			if sent < len(v.texts) || acked < sent || failed < acked {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Minute)
	r.upstreamUp()
	waitFor(t, "every message delivered once the platform is back", 30*time.Second, func() bool {
		for _, v := range vs {
			if !v.allDelivered() {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	r.settle(vs, 30*time.Second)
	r.audit(vs, nil)
}

// TestFaultCallbacksDuplicatedReorderedLate: the platform posts some reply
// batches twice, swaps others, and posts the last ones after the visitors
// have left; each reply is shown once, and the late ones on the visitor's
// next visit.
func TestFaultCallbacksDuplicatedReorderedLate(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{Parallel: 1, ReorderWait: 300 * time.Millisecond}, "", "")
	r.emu.DuplicateCallbacks(6)
	r.emu.ReorderCallbacks(4)
	vs := visitors("cb", 3, 8, 60*time.Millisecond)
	runAll(t, r.addr, vs, time.Minute)
	r.emu.DelayCallbacks(time.Second)
	late := visitors("late", 2, 2, 10*time.Millisecond)
	runAll(t, r.addr, late, time.Minute) // they leave once acknowledged
	all := append(vs, late...)
	r.settle(all, time.Minute)
	if st := r.emu.Stats(); st.CallbacksDuplicated != 6 {
		t.Fatalf("duplicated %d batches, want 6", st.CallbacksDuplicated)
	}
	r.audit(all, nil)
}

// cutConn is a client connection that breaks after a number of bytes
// written: the socket is cut in the middle of whatever the widget was
// sending, a frame, a hello or the handshake.
type cutConn struct {
	net.Conn
	mu   sync.Mutex
	left int
	cuts *atomic.Int32
}

func (c *cutConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left <= 0 {
		return 0, net.ErrClosed
	}
	if len(b) < c.left {
		c.left -= len(b)
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:c.left])
	c.left = 0
	c.cuts.Add(1)
	c.Conn.Close()
	return n, errors.New("cut")
}

// TestFaultSocketCutWhileSending: every connection of every visitor is cut
// after a random number of bytes; the widgets reconnect and send their
// outbox again with the same ids.
func TestFaultSocketCutWhileSending(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 1))
	var cuts atomic.Int32
	vs := visitors("cut", 5, 12, 15*time.Millisecond)
	for _, v := range vs {
		v.dial = func(ctx context.Context) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			// The handshake is about 250 bytes, a hello 100, a send 60.
			return &cutConn{Conn: c, left: 150 + rng.IntN(700), cuts: &cuts}, nil
		}
	}
	runAll(t, r.addr, vs, 2*time.Minute)
	r.settle(vs, time.Minute)
	if n := cuts.Load(); n < 10 {
		t.Fatalf("only %d cuts", n)
	}
	t.Logf("%d connections cut", cuts.Load())
	r.audit(vs, nil)
}

// TestFaultKilledMidBurst: the server is killed with SIGKILL at a random
// moment of a burst and started again on the same data. A message the
// platform took just before the kill, whose delivery the server had not
// yet recorded, is handed over again after the restart: neither platform
// has an idempotency key, so that is the one repeat possible, at most one
// per conversation (each conversation has one call in flight at a time).
func TestFaultKilledMidBurst(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{RetryDelay: 400 * time.Millisecond}, "", "")
	vs := visitors("kill", 10, 30, 20*time.Millisecond) // 500 messages a second for 0.6 s
	wait := startAll(t, r.addr, vs, 2*time.Minute)
	time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
	r.p.kill()
	time.Sleep(100 * time.Millisecond) // calls already with the platform finish there
	before := r.upstreamTexts()
	r.p = launch(t, r.addr, r.data, "--config", r.cfg)
	wait()
	r.settle(vs, time.Minute)
	repeats := map[string]int{} // visitor -> messages handed over twice
	r.audit(vs, func(text string) bool {
		if before[text] != 1 {
			return false
		}
		repeats[text[:strings.Index(text, "-m")]]++
		return true
	})
	for v, n := range repeats {
		if n > 1 {
			t.Fatalf("%s: %d messages reached the platform twice; at most the one in flight at the kill may", v, n)
		}
	}
	t.Logf("killed with %d messages with the platform; %d conversations had their in-flight message handed over again", sumCounts(before), len(repeats))
}

// TestFaultGracefulRestartMidBurst: SIGTERM in the middle of a burst. The
// widgets are told 1012, reconnect to the new process and send what was
// not acknowledged; calls in flight finish before the exit, so every
// message reaches the platform exactly once.
func TestFaultGracefulRestartMidBurst(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{RetryDelay: 400 * time.Millisecond}, "", "")
	vs := visitors("term", 10, 30, 20*time.Millisecond)
	wait := startAll(t, r.addr, vs, 2*time.Minute)
	time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
	r.restart(false)
	wait()
	r.settle(vs, time.Minute)
	restarts := 0
	for _, v := range vs {
		v.mu.Lock()
		restarts += v.closes[websocket.StatusServiceRestart]
		v.mu.Unlock()
	}
	if restarts == 0 {
		t.Fatal("no widget was told 1012 (service restart)")
	}
	r.audit(vs, nil)
}

// TestFaultClientNeverReads: a widget that sends and never reads (its
// receive buffer is tiny) stalls only itself: the server stops reading
// from it once its replies back up, drops it after the write timeout, and
// the other visitors' conversations go on meanwhile.
func TestFaultClientNeverReads(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "")
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+r.addr+"/v1/ws?bot=shop", &websocket.DialOptions{
		Subprotocols: []string{widget.Protocol},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: d.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	stuck := newVisitor("stuck", 0, 0)
	if err := write(ctx, c, &widget.Hello{Bot: "shop"}); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(ctx) // the welcome, the last frame it reads
	if err != nil {
		t.Fatal(err)
	}
	f, err := widget.Decode(data)
	if err != nil || f.Type() != widget.TypeWelcome {
		t.Fatalf("first frame %s: %v", data, err)
	}
	stuck.token = f.(*widget.Welcome).Visitor

	// Each message is echoed and answered with its 3 KB text: the replies
	// fill the socket buffers within a few hundred messages.
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		pad := strings.Repeat("x", 3000)
		for {
			// A write blocks once the server stops reading; it fails when
			// the server drops the connection. (A write given up by its
			// context would close the socket from this side.)
			if err := c.Write(ctx, websocket.MessageText, widget.Encode(&widget.Send{ID: fmt.Sprintf("stuck-c%d", n+1), Text: fmt.Sprintf("stuck-m%d %s", n+1, pad)})); err != nil {
				return
			}
			n++
			time.Sleep(10 * time.Millisecond) // within the per-visitor rate
		}
	}()
	readers := visitors("reader", 3, 12, 500*time.Millisecond)
	runAll(t, r.addr, readers, 2*time.Minute)
	waitFor(t, "the server drops the client that never reads", time.Minute, func() bool {
		return strings.Contains(r.p.log(), "dropping slow client")
	})
	t.Logf("the stuck client sent %d messages before the server stopped reading and dropped it", <-sent)
	all := append(readers, stuck)
	r.settle(readers, time.Minute)
	r.audit(all, nil)
}

// mountTmpfs mounts a tmpfs of size bytes on dir (root only) and returns
// its unmount. Outside CI a test that cannot mount skips; in CI it fails.
func mountTmpfs(t *testing.T, dir string, size int, opts ...string) {
	t.Helper()
	args := []string{"-t", "tmpfs", "-o", strings.Join(append([]string{fmt.Sprintf("size=%d", size)}, opts...), ","), "tmpfs", dir}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
		}
		t.Fatalf("cannot mount a tmpfs (CI runs as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes a file into dir until the filesystem is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestFaultDataDirFull: the store's filesystem fills up during a burst.
// A message that could not be stored gets an error frame, never an ack;
// a reply the platform posts meanwhile gets a 500 and is posted again;
// once there is room, the widgets' retries store every message once.
func TestFaultDataDirFull(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mountTmpfs(t, data, 4<<20)
	r := newFaultRig(t, chataibottest.Options{RetryDelay: 700 * time.Millisecond}, data, "")
	before := visitors("room", 2, 3, 10*time.Millisecond)
	runAll(t, r.addr, before, 30*time.Second)
	filler := fill(t, data)

	pad := strings.Repeat("y", 3000) // each message needs new pages
	vs := visitors("full", 4, 10, 20*time.Millisecond)
	for _, v := range vs {
		for i := range v.texts {
			v.texts[i] += " " + pad
		}
	}
	wait := startAll(t, r.addr, vs, 2*time.Minute)
	waitFor(t, "error frames for messages that could not be stored", 30*time.Second, func() bool {
		n := 0
		for _, v := range vs {
			v.mu.Lock()
			n += v.errors
			v.mu.Unlock()
		}
		return n >= 5
	})
	unacked := 0
	for _, v := range vs {
		v.mu.Lock()
		unacked += len(v.outbox)
		v.mu.Unlock()
	}
	if unacked == 0 {
		t.Fatal("every message was acknowledged on a full disk")
	}
	time.Sleep(time.Second)
	os.Remove(filler)
	wait()
	r.settle(append(before, vs...), time.Minute)
	if !strings.Contains(r.p.log(), "no space left on device") {
		t.Fatal("the server never logged the full disk")
	}
	r.audit(append(before, vs...), nil)
}

// TestFaultDataDirReadOnly: a read-only data directory stops the server at
// start with a message naming the directory and what to do.
func TestFaultDataDirReadOnly(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mountTmpfs(t, data, 1<<20, "ro")
	out, err := exec.Command(binary, "serve", "--listen", freeAddr(t), "--data", data).CombinedOutput()
	if err == nil {
		t.Fatalf("the server started on a read-only data directory:\n%s", out)
	}
	for _, want := range []string{data, "read-only", "--data"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the error does not mention %q:\n%s", want, out)
		}
	}
	t.Logf("%s", out)
}

// TestFaultChatlayerCallbacks: Chatlayer posts one callback per bot
// message, numbered by messageCounter; here some come twice, the batches
// of others in reverse order, and the last ones after the visitors left.
// Each message is shown once, in counter order.
func TestFaultChatlayerCallbacks(t *testing.T) {
	t.Parallel()
	emu := chatlayertest.New(chatlayertest.Options{})
	r := newRigOn(t, clPlatform{emu}, "", "")
	emu.URL = "http://" + r.emuAddr
	emu.DuplicateCallbacks(6)
	emu.ReverseBatches(8)
	vs := visitors("cl", 4, 6, 60*time.Millisecond)
	for _, v := range vs {
		v.plan = "plan-" + v.name // each reply is a batch of two: "You said" and "Your plan is"
	}
	runAll(t, r.addr, vs, time.Minute)
	emu.DelayCallbacks(time.Second)
	late := visitors("cllate", 2, 2, 10*time.Millisecond)
	runAll(t, r.addr, late, time.Minute)
	all := append(vs, late...)
	r.settle(all, time.Minute)
	r.audit(all, nil)
}

// TestFaultRateLimitsUnderLoad: eight widgets on one address send far
// faster than their per-visitor and per-address limits. Each message over
// a limit gets a rate_limited error frame naming it, with retry_ms; the
// widgets wait that long and send again, and every message arrives once.
func TestFaultRateLimitsUnderLoad(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, chataibottest.Options{}, "", "limits: {messages_per_minute: 120, burst: 5, ip_messages_per_minute: 900, connections_per_ip: 100}\n")
	vs := visitors("rl", 8, 10, 20*time.Millisecond)
	runAll(t, r.addr, vs, 2*time.Minute)
	limited := 0
	for _, v := range vs {
		v.mu.Lock()
		for code, n := range v.codes {
			if code != widget.CodeRateLimited {
				t.Errorf("%s: %d error frames %q", v.name, n, code)
			}
		}
		if v.noRetry > 0 {
			t.Errorf("%s: %d rate-limit errors without retry_ms", v.name, v.noRetry)
		}
		limited += v.codes[widget.CodeRateLimited]
		v.mu.Unlock()
	}
	if limited == 0 {
		t.Fatal("no message was rate limited")
	}
	t.Logf("%d sends refused with rate_limited and sent again", limited)
	r.settle(vs, time.Minute)
	r.audit(vs, nil)
}

// TestWidgetDataDirFull: in a real browser, a message typed while the
// proxy's disk is full shows as still sending, with the reason; the
// widget sends it again by itself, and once there is room it is stored
// and answered once.
func TestWidgetDataDirFull(t *testing.T) {
	data := t.TempDir()
	mountTmpfs(t, data, 4<<20)
	s := newSiteIn(t, data)
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	filler := fill(t, data)

	// Long messages need new pages in the store; the first that cannot
	// be stored shows why it is still sending.
	notSaved := `Array.from(` + shadow + `.querySelectorAll(".msg.user .meta")).some(function(m){return m.textContent.indexOf("Not saved yet") >= 0})`
	pad := strings.Repeat("z", 3000)
	typed := 0
	for typed < 12 && !evalJS[bool](t, ctx, notSaved) {
		typed++
		js := in(".composer textarea") + `.value = ` + jsString(fmt.Sprintf("full disk %d %s", typed, pad)) + `;` +
			in(".composer textarea") + `.dispatchEvent(new Event("input"))`
		evalJS[any](t, ctx, js)
		typeMessage(t, ctx, "")
		time.Sleep(300 * time.Millisecond)
	}
	waitJS(t, ctx, "a message shown as not saved yet", notSaved)
	os.Remove(filler)
	waitJS(t, ctx, "every message stored once there is room",
		`!Array.from(`+shadow+`.querySelectorAll(".msg.user .meta")).some(function(m){return m.textContent.indexOf("Not saved yet") >= 0 || m.textContent.indexOf("Sending") >= 0})`)
	_, msgs := replayOf(t, s, ctx)
	for i := 1; i <= typed; i++ {
		text := fmt.Sprintf("full disk %d ", i)
		if n := count(t, ctx, ".msg.user", text); n != 1 {
			t.Fatalf("message %d shows %d times", i, n)
		}
		stored := 0
		for _, m := range msgs {
			if strings.Contains(m, text) {
				stored++
			}
		}
		if stored != 1 {
			t.Fatalf("message %d stored %d times", i, stored)
		}
	}
	t.Logf("%d messages typed on a full disk, each stored once after", typed)
}
