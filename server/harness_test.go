package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// fakeProvider records what reaches "upstream" and can fail on demand.
// With echo set it answers every text through the sink, like a platform
// calling our webhook.
type fakeProvider struct {
	mu    sync.Mutex
	calls []provider.Message
	fail  func(m provider.Message, attempt int) error
	echo  bool
	sink  provider.Sink
}

func (f *fakeProvider) Send(ctx context.Context, m provider.Message) error {
	f.mu.Lock()
	attempt := 1
	for _, c := range f.calls {
		if c.Conversation == m.Conversation && c.Seq == m.Seq {
			attempt++
		}
	}
	f.calls = append(f.calls, m)
	fail, sink := f.fail, f.sink
	f.mu.Unlock()
	if sink == nil { // the harness has not wired the sink yet
		return &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true}
	}
	if fail != nil {
		if err := fail(m, attempt); err != nil {
			return err
		}
	}
	if f.echo && m.Kind != provider.Start {
		go sink.Deliver(context.Background(), m.Conversation, "echo/"+m.ClientID, widget.Text("echo: "+m.Text))
	}
	return nil
}

// callsFor counts the upstream calls for one client message id.
func (f *fakeProvider) callsFor(clientID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.ClientID == clientID {
			n++
		}
	}
	return n
}

func (f *fakeProvider) setFail(fn func(provider.Message, int) error) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

// down makes the platform answer 503 to every visitor message (the
// conversation start still goes through) until the returned up is called.
func (f *fakeProvider) down() (up func()) {
	var mu sync.Mutex
	down := true
	f.setFail(func(m provider.Message, attempt int) error {
		mu.Lock()
		defer mu.Unlock()
		if down && m.Kind != provider.Start {
			return &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: 503}
		}
		return nil
	})
	return func() {
		mu.Lock()
		down = false
		mu.Unlock()
	}
}

type harness struct {
	t   *testing.T
	srv *Server
	hs  *httptest.Server
	fp  *fakeProvider
	st  store.Store
	// made counts the conversations the store created, unless the
	// test's tweak put another store in its place.
	made *countingStore
}

// countingStore counts the conversations its Conversation created.
type countingStore struct {
	store.Store
	created atomic.Int64
}

func (s *countingStore) Conversation(ctx context.Context, bot, visitor string) (store.Conversation, bool, error) {
	c, created, err := s.Store.Conversation(ctx, bot, visitor)
	if created {
		s.created.Add(1)
	}
	return c, created, err
}

// created returns how many conversations the store created.
func (h *harness) created() int64 {
	h.t.Helper()
	if h.st != store.Store(h.made) {
		h.t.Fatal("created: the test replaced the harness's store")
	}
	return h.made.created.Load()
}

// startCalls returns the upstream calls that started a conversation
// (Kind Start: the greeting), by conversation.
func (h *harness) startCalls() map[string]int {
	h.fp.mu.Lock()
	defer h.fp.mu.Unlock()
	n := map[string]int{}
	for _, c := range h.fp.calls {
		if c.Kind == provider.Start {
			n[c.Conversation]++
		}
	}
	return n
}

// testShared runs the server tests with the dispatcher shared
// (SharedDispatch), as over Redis: PORTHOLE_TEST_SHARED=1.
var testShared = os.Getenv("PORTHOLE_TEST_SHARED") == "1"

// testRetry retries fast so failure paths finish in milliseconds.
var testRetry = RetryPolicy{Quick: 3, Base: time.Millisecond, Max: 5 * time.Millisecond, GiveUp: 200 * time.Millisecond, Timeout: time.Second}

func newHarness(t *testing.T, tweak func(*Config, *Options)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Bots = append(cfg.Bots, BotConfig{ID: "acme", Provider: "demo", Origins: []string{"https://www.acme.com", "https://*.acme.org"}, Widget: WidgetConfig{Title: "Acme", Position: "left"}})
	cfg.applyDefaults()
	fp := &fakeProvider{echo: true}
	st := &countingStore{Store: store.NewMemory()}
	retry := testRetry
	opts := Options{
		DataDir:   t.TempDir(),
		Logger:    slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:     st,
		Retry:     &retry,
		Providers: map[string]provider.Provider{"demo": fp, "acme": fp},
	}
	if testShared {
		opts.Shared = &SharedDispatch{Owner: "harness/" + t.Name(), Lease: 2 * time.Second, Poll: 50 * time.Millisecond}
	}
	if tweak != nil {
		tweak(cfg, &opts)
	}
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	fp.mu.Lock()
	fp.sink = srv.service
	fp.mu.Unlock()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &harness{t: t, srv: srv, hs: hs, fp: fp, st: opts.Store, made: st}
}

// testWriter sends server logs to t.Log, shown only for failing tests.
// Goroutines of the server may still log after the test has ended, when
// t.Log would panic: from then on their lines are dropped.
type testWriter struct {
	t    *testing.T
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t *testing.T) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() {
		w.mu.Lock()
		*w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (h *harness) wsURL(bot string) string {
	return "ws" + strings.TrimPrefix(h.hs.URL, "http") + "/v1/ws?bot=" + bot
}

// dial opens a socket for bot with the given Origin header ("" for none).
func (h *harness) dial(bot, origin string) (*client, *http.Response, error) {
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	return h.dialWith(bot, hdr)
}

// from opens a socket for bot from the client address ip, as a proxy
// the server trusts names it (the config needs trusted_proxies to list
// 127.0.0.1, the harness's own address).
func (h *harness) from(bot, ip string) *client {
	h.t.Helper()
	c, _, err := h.dialWith(bot, http.Header{"X-Forwarded-For": {ip}})
	if err != nil {
		h.t.Fatalf("dial from %s: %v", ip, err)
	}
	return c
}

// dialWith opens a socket for bot with the given request headers.
func (h *harness) dialWith(bot string, hdr http.Header) (*client, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, h.wsURL(bot), &websocket.DialOptions{Subprotocols: []string{widget.Protocol}, HTTPHeader: hdr})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	cl := &client{t: h.t, c: c, bot: bot}
	h.t.Cleanup(func() { c.CloseNow() })
	return cl, resp, nil
}

func (h *harness) connect(bot string) *client {
	h.t.Helper()
	c, _, err := h.dial(bot, "")
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	return c
}

// client is a test WebSocket client speaking porthole.v1.
type client struct {
	t   *testing.T
	c   *websocket.Conn
	bot string
	// seen keeps frames read while waiting for another one.
	seen []widget.Frame
}

func (c *client) send(f widget.Frame) {
	c.t.Helper()
	c.sendRaw(widget.Encode(f))
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame or the read error.
func (c *client) read(timeout time.Duration) (widget.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, data, err := c.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	f, err := widget.Decode(data)
	if err != nil {
		c.t.Fatalf("server sent an invalid frame %s: %v", data, err)
	}
	return f, nil
}

// waitFor reads until a frame satisfies pred, keeping the others in seen.
func (c *client) waitFor(what string, pred func(widget.Frame) bool) widget.Frame {
	c.t.Helper()
	for i, f := range c.seen {
		if pred(f) {
			c.seen = append(c.seen[:i:i], c.seen[i+1:]...)
			return f
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := c.read(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for %s: %v (seen %s)", what, err, c.describe())
		}
		if pred(f) {
			return f
		}
		c.seen = append(c.seen, f)
	}
}

func (c *client) describe() string {
	var parts []string
	for _, f := range c.seen {
		parts = append(parts, string(widget.Encode(f)))
	}
	return strings.Join(parts, " ")
}

func (c *client) hello(token string, after uint64) *widget.Welcome {
	c.t.Helper()
	c.send(&widget.Hello{Bot: c.bot, Visitor: token, After: after, Locale: "en-GB", TZ: "Europe/Brussels"})
	return c.waitFor("welcome", isType(widget.TypeWelcome)).(*widget.Welcome)
}

// start sends a start frame and returns the welcome that answers it, the
// one that names the conversation.
func (c *client) start(id string) *widget.Welcome {
	c.t.Helper()
	c.send(&widget.Start{ID: id})
	return c.waitFor("the welcome answering "+id, func(f widget.Frame) bool {
		w, ok := f.(*widget.Welcome)
		return ok && w.Conversation != ""
	}).(*widget.Welcome)
}

// open says hello and starts the conversation, as a widget does when
// its panel opens, and returns the welcome that names the conversation.
func (c *client) open(token string, after uint64) *widget.Welcome {
	c.t.Helper()
	c.hello(token, after)
	return c.start("start-" + randomHex(4))
}

func (c *client) ack(id string) *widget.Ack {
	c.t.Helper()
	return c.waitFor("ack "+id, func(f widget.Frame) bool {
		a, ok := f.(*widget.Ack)
		return ok && a.ID == id
	}).(*widget.Ack)
}

func (c *client) msgWith(what string, pred func(*widget.Msg) bool) *widget.Msg {
	c.t.Helper()
	return c.waitFor(what, func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && pred(m)
	}).(*widget.Msg)
}

func (c *client) status(id string) *widget.Status {
	c.t.Helper()
	return c.waitFor("status "+id, func(f widget.Frame) bool {
		s, ok := f.(*widget.Status)
		return ok && s.ID == id
	}).(*widget.Status)
}

// closeStatus reads until the server closes the socket and returns the code.
func (c *client) closeStatus() websocket.StatusCode {
	c.t.Helper()
	for {
		_, err := c.read(10 * time.Second)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				c.t.Fatal("socket still open")
			}
			return websocket.CloseStatus(err)
		}
	}
}

func isType(typ string) func(widget.Frame) bool {
	return func(f widget.Frame) bool { return f.Type() == typ }
}
