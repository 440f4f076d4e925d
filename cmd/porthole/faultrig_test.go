package main

// The fault suite's rig: the real binary in front of a platform
// emulator on an address the test controls, simulated widgets, and the
// audit every scenario ends with. The scenarios are in faults_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
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
	// logs are the logs of the server processes before p.
	logs []string

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
	// replies lists the reply batches the server accepted, once each,
	// leaving out those for platform conversations in dropped.
	replies(t *testing.T, dropped map[string]bool) []reply
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
	r.emu, emu.URL = emu, "http://"+r.emuAddr
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
	return fmt.Sprintf(`  - id: shop
    provider: chataibot
    origins: ["self"]
    chataibot: {base_url: %q, token: %q, bot_key: %q, webhook_secret: %q}
`, base, chataibottest.DefaultToken, chataibottest.DefaultBotKey, faultSecret)
}

func (p aiPlatform) setHook(proxy string) { p.SetCallback(proxy+"/hooks/chataibot/shop", faultSecret) }

func (p aiPlatform) idle(ctx context.Context) error { return p.WaitIdle(ctx) }

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
func (p aiPlatform) replies(t *testing.T, dropped map[string]bool) []reply {
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
		if seen[cb.MessageID] || dropped[cb.Ref()] {
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
func (p clPlatform) replies(t *testing.T, _ map[string]bool) []reply {
	type key struct {
		user    string
		counter uint64
	}
	seen := map[key]bool{}
	var out []reply
	for _, c := range p.Callbacks() {
		k := key{c.Conversation, c.Seq}
		if c.Status < 200 || c.Status > 299 || seen[k] {
			continue
		}
		seen[k] = true
		var cb struct{ Message struct{ Text string } }
		if err := json.Unmarshal(c.Body, &cb); err != nil {
			t.Fatalf("callback message: %v", err)
		}
		out = append(out, reply{conv: c.Conversation, text: cb.Message.Text, order: c.Seq})
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

// restart stops the server with SIGINT, waits for its exit and starts it
// again on the same address and data.
func (r *faultRig) restart() {
	r.t.Helper()
	r.p.cmd.Process.Signal(os.Interrupt)
	if err := r.p.cmd.Wait(); err != nil {
		r.t.Fatalf("graceful stop: %v\n%s", err, r.p.log())
	}
	r.relaunch()
}

// relaunch starts the server again on the same address and data, after a
// stop.
func (r *faultRig) relaunch() {
	if r.p != nil {
		r.logs = append(r.logs, r.p.log())
	}
	r.p = launch(r.t, r.addr, r.data, "--config", r.cfg)
}

// droppedRefs are the platform conversations whose replies the server
// accepted and dropped, having no conversation of its own for them: one
// that a killed process started upstream just before it could record it
// (the message in flight is then handed over again after the restart,
// in a new platform conversation, which the visitor sees answered).
func (r *faultRig) droppedRefs() map[string]bool {
	out := map[string]bool{}
	for _, log := range append(r.logs, r.p.log()) {
		for _, m := range droppedCallback.FindAllStringSubmatch(log, -1) {
			out[m[1]] = true
		}
	}
	return out
}

var droppedCallback = regexp.MustCompile(`callback for an unknown conversation; dropped" bot=\S+ ref=(\S+)`)

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
		up := r.plat.accepted()
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
	up := r.plat.accepted()
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
	// Only a kill (mayRepeat) may leave a platform conversation that the
	// server never recorded, one per message it hands over again.
	dropped := map[string]bool{}
	if mayRepeat != nil {
		dropped = r.droppedRefs()
		repeated := 0
		for _, n := range up {
			if n == 2 {
				repeated++
			}
		}
		if len(dropped) > repeated {
			t.Fatalf("replies of %d unknown platform conversations dropped, with %d messages handed over twice", len(dropped), repeated)
		}
	} else if d := r.droppedRefs(); len(d) > 0 {
		t.Fatalf("replies of platform conversations the server does not know were dropped: %v", d)
	}
	replies := r.plat.replies(t, dropped)
	numbered := map[string][]reply{} // by conversation
	accepted := map[string]int{}     // unnumbered reply text -> callbacks accepted
	for _, rp := range replies {
		if rp.conv != "" {
			numbered[rp.conv] = append(numbered[rp.conv], rp)
		} else {
			accepted[rp.text]++
		}
	}
	// Each accepted callback shows once. Two with the same text are the
	// platform answering a message that reached it twice (the one repeat a
	// SIGKILL may cause, allowed above): each answer is its own.
	for text, n := range accepted {
		if botSaid[text] != n {
			if ai, ok := r.plat.(aiPlatform); ok {
				for _, a := range ai.Callbacks() {
					if strings.Contains(string(a.Body), text) {
						t.Logf("callback %d: %s", a.Status, a.Body)
					}
				}
			}
			t.Fatalf("accepted bot reply %q is in the transcripts %d times, the platform sent it %d times", text, botSaid[text], n)
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

// failedSince connects with v's token, as v's next page would, and
// counts the messages the server says failed among those v holds: a
// reconnecting widget is told each one in a status frame right after
// its welcome. A second hello's welcome marks the end of them.
func (r *faultRig) failedSince(v *visitor) int {
	r.t.Helper()
	v.mu.Lock()
	hello := &widget.Hello{Bot: "shop", Visitor: v.token, After: v.last}
	v.mu.Unlock()
	c, _, err := dialBot(r.t, r.p, "shop", "")
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.c.CloseNow()
	c.send(hello)
	c.until("the welcome", func(f widget.Frame) bool { return f.Type() == widget.TypeWelcome })
	c.send(hello)
	failed := 0
	c.until("the second welcome", func(f widget.Frame) bool {
		if s, ok := f.(*widget.Status); ok && s.State == widget.StateFailed {
			failed++
		}
		return f.Type() == widget.TypeWelcome
	})
	return failed
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
