package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/widget"
)

// binary is the porthole executable built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "porthole-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "porthole")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building porthole: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `porthole serve`.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// start runs the binary on a free port with data in dataDir and waits
// until /readyz answers 200.
func start(t testing.TB, dataDir string, args ...string) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return launch(t, addr, dataDir, args...)
}

// launch runs `porthole serve` on addr with data in dataDir and extra
// args, and waits until /readyz answers 200. The process is killed when
// the test ends; its log is shown if the test failed.
func launch(t testing.TB, addr, dataDir string, args ...string) *proc {
	t.Helper()
	p := startProc(t, addr, dataDir, args...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v\n%s", err, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startProc starts `porthole serve` on addr and dataDir, killed (and its
// log shown on failure) when the test ends; it does not wait for it.
func startProc(t testing.TB, addr, dataDir string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, addr: addr}
	p.cmd = exec.Command(binary, append([]string{"serve", "--listen", addr, "--data", dataDir, "--log-level", "debug"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", p.log())
		}
	})
	return p
}

// kill stops the server with SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// wsc is a porthole.v1 client over a real WebSocket.
type wsc struct {
	t    testing.TB
	c    *websocket.Conn
	bot  string
	held []widget.Frame
	// raw keeps every frame the server sent, for the secret scans.
	frames []string
}

func dial(t testing.TB, p *proc, origin string) (*wsc, *http.Response, error) {
	return dialBot(t, p, "demo", origin)
}

// dialBot opens a porthole.v1 socket to bot with the given Origin ("" for none).
func dialBot(t testing.TB, p *proc, bot, origin string) (*wsc, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+p.addr+"/v1/ws?bot="+bot, &websocket.DialOptions{
		Subprotocols: []string{widget.Protocol}, HTTPHeader: hdr,
	})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsc{t: t, c: c, bot: bot}, resp, nil
}

func (w *wsc) send(f widget.Frame) { w.raw(widget.Encode(f)) }

func (w *wsc) raw(b []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// until reads frames until pred holds, holding back the others.
func (w *wsc) until(what string, pred func(widget.Frame) bool) widget.Frame {
	w.t.Helper()
	for i, f := range w.held {
		if pred(f) {
			w.held = append(w.held[:i:i], w.held[i+1:]...)
			return f
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("waiting for %s: %v", what, err)
		}
		w.frames = append(w.frames, string(data))
		f, err := widget.Decode(data)
		if err != nil {
			w.t.Fatalf("server sent an invalid frame %s: %v", data, err)
		}
		if pred(f) {
			return f
		}
		w.held = append(w.held, f)
	}
}

// botTurn collects the bot messages of one turn: until typing goes off.
func (w *wsc) botTurn() []*widget.Msg {
	w.t.Helper()
	var msgs []*widget.Msg
	for {
		f := w.until("the bot's turn", func(f widget.Frame) bool {
			m, ok := f.(*widget.Msg)
			return ok && m.From == "bot" || f.Type() == widget.TypeTyping
		})
		if m, ok := f.(*widget.Msg); ok {
			msgs = append(msgs, m)
		} else if !f.(*widget.Typing).On && len(msgs) > 0 {
			return msgs
		}
	}
}

func (w *wsc) ack(id string) uint64 {
	w.t.Helper()
	return w.until("ack "+id, func(f widget.Frame) bool {
		a, ok := f.(*widget.Ack)
		return ok && a.ID == id
	}).(*widget.Ack).Seq
}

func (w *wsc) hello(token string, after uint64) *widget.Welcome {
	w.t.Helper()
	w.send(&widget.Hello{Bot: w.bot, Visitor: token, After: after, Locale: "en", TZ: "UTC"})
	return w.until("welcome", func(f widget.Frame) bool { return f.Type() == widget.TypeWelcome }).(*widget.Welcome)
}

// start sends a start frame, as a widget does when its panel opens or
// its first message goes, and returns the welcome that names the
// conversation.
func (w *wsc) start(id string) *widget.Welcome {
	w.t.Helper()
	w.send(&widget.Start{ID: id})
	return w.until("the welcome answering "+id, func(f widget.Frame) bool {
		wl, ok := f.(*widget.Welcome)
		return ok && wl.Conversation != ""
	}).(*widget.Welcome)
}

// replay opens a new socket with after and returns every replayed message
// up to the conversation's last seq.
func replay(t testing.TB, p *proc, token string, after uint64) (*widget.Welcome, []*widget.Msg) {
	t.Helper()
	return replayBot(t, p, "demo", token, after)
}

// replayBot is replay for the conversation with bot.
func replayBot(t testing.TB, p *proc, bot, token string, after uint64) (*widget.Welcome, []*widget.Msg) {
	t.Helper()
	c, _, err := dialBot(t, p, bot, "")
	if err != nil {
		t.Fatal(err)
	}
	w := c.hello(token, after)
	var msgs []*widget.Msg
	for w.Last > after && (len(msgs) == 0 || msgs[len(msgs)-1].Seq < w.Last) {
		msgs = append(msgs, c.until("replay", func(f widget.Frame) bool { return f.Type() == widget.TypeMsg }).(*widget.Msg))
	}
	c.c.Close(websocket.StatusNormalClosure, "")
	return w, msgs
}

var handedUpstream = regexp.MustCompile(`msg="handed upstream".* seq=(\d+)`)

// upstreamCalls counts the server's log lines for calls that reached the
// bot for seq in conversation.
func (p *proc) upstreamCalls(conversation string, seq uint64) int {
	n := 0
	for _, line := range strings.Split(p.log(), "\n") {
		if m := handedUpstream.FindStringSubmatch(line); m != nil && strings.Contains(line, conversation) && m[1] == fmt.Sprint(seq) {
			n++
		}
	}
	return n
}

func TestEndToEnd(t *testing.T) {
	data := t.TempDir()
	p := start(t, data)

	// hello gets a welcome with a visitor token and no conversation; the
	// start makes one, and the bot greets.
	c, _, err := dial(t, p, "http://"+p.addr)
	if err != nil {
		t.Fatal(err)
	}
	w := c.hello("", 0)
	if w.Visitor == "" || w.Conversation != "" || w.Last != 0 {
		t.Fatalf("welcome = %+v, want a visitor and no conversation", w)
	}
	w = c.start("e2e-start")
	if w.Visitor == "" || len(w.Conversation) != 32 {
		t.Fatalf("welcome to start = %+v", w)
	}
	greeting := c.botTurn()
	var menu *widget.QuickReply
	for _, m := range greeting {
		for i, q := range m.Body.QuickReplies {
			if q.Title == "Show the menu" {
				menu = &m.Body.QuickReplies[i]
			}
		}
	}
	if menu == nil {
		t.Fatalf("greeting has no 'Show the menu' quick reply: %+v", greeting)
	}

	// A send gets an ack with a seq and a bot reply.
	c.send(&widget.Send{ID: "e2e-1", Text: "hello"})
	seq := c.ack("e2e-1")
	if seq != uint64(len(greeting))+1 {
		t.Fatalf("ack seq = %d, want %d", seq, len(greeting)+1)
	}
	reply := c.botTurn()
	if !strings.Contains(reply[0].Body.Text, "Hello") {
		t.Fatalf("reply to hello = %q", reply[0].Body.Text)
	}

	// A postback on a demo button reaches the next block.
	c.send(&widget.Postback{ID: "e2e-2", Title: menu.Title, Payload: menu.Payload})
	c.ack("e2e-2")
	block := c.botTurn()
	if block[0].Body.Kind != widget.KindButtons || !strings.Contains(block[0].Body.Text, "everything I can show you") {
		t.Fatalf("postback reached %+v, want the menu block", block[0].Body)
	}

	// A repeated send with the same id gets the same ack, no second copy
	// and no second upstream call.
	c.send(&widget.Send{ID: "e2e-1", Text: "hello"})
	if again := c.ack("e2e-1"); again != seq {
		t.Fatalf("repeated ack seq = %d, want %d", again, seq)
	}
	time.Sleep(200 * time.Millisecond) // room for a wrong second dispatch
	if n := p.upstreamCalls(w.Conversation, seq); n != 1 {
		t.Fatalf("upstream calls for seq %d = %d, want 1", seq, n)
	}
	_, all := replay(t, p, w.Visitor, 0)
	copies := 0
	for _, m := range all {
		if m.ClientID == "e2e-1" {
			copies++
		}
	}
	if copies != 1 {
		t.Fatalf("%d stored copies of e2e-1", copies)
	}

	// A reconnect with after replays only later messages.
	w2, later := replay(t, p, w.Visitor, seq)
	if w2.Conversation != w.Conversation {
		t.Fatalf("reconnect opened conversation %s, want %s", w2.Conversation, w.Conversation)
	}
	if len(later) == 0 || later[0].Seq != seq+1 || uint64(len(later)) != w2.Last-seq {
		t.Fatalf("replay after %d: %d messages starting at %d (last %d)", seq, len(later), later[0].Seq, w2.Last)
	}

	// A foreign Origin is refused with 403 before the upgrade.
	if _, resp, err := dial(t, p, "https://evil.example"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v resp %v, want 403", err, resp)
	}

	// A malformed frame gets an error frame and the socket keeps working.
	c.raw([]byte(`{"type":"send","id":"oops"`))
	e := c.until("error", func(f widget.Frame) bool { return f.Type() == widget.TypeError }).(*widget.ErrorFrame)
	if e.Code != widget.CodeBadRequest {
		t.Fatalf("error = %+v", e)
	}
	c.send(&widget.Send{ID: "e2e-3", Text: "still there?"})
	c.ack("e2e-3")
	c.botTurn()

	// After kill -9 and a restart on the same data, the history is intact
	// and seq continues.
	before, history := replay(t, p, w.Visitor, 0)
	p.kill()
	p2 := start(t, data)
	after, restored := replay(t, p2, w.Visitor, 0)
	if after.Conversation != before.Conversation || after.Last != before.Last || len(restored) != len(history) {
		t.Fatalf("after restart: conversation %s last %d (%d msgs), want %s last %d (%d msgs)",
			after.Conversation, after.Last, len(restored), before.Conversation, before.Last, len(history))
	}
	for i := range history {
		if widget.Encode(history[i]) == nil || string(widget.Encode(history[i])) != string(widget.Encode(restored[i])) {
			t.Fatalf("message %d changed across the restart:\n%s\n%s", i, widget.Encode(history[i]), widget.Encode(restored[i]))
		}
	}
	c3, _, err := dial(t, p2, "")
	if err != nil {
		t.Fatal(err)
	}
	c3.hello(after.Visitor, after.Last)
	c3.send(&widget.Send{ID: "e2e-4", Text: "back again"})
	if s := c3.ack("e2e-4"); s != after.Last+1 {
		t.Fatalf("seq after restart = %d, want %d", s, after.Last+1)
	}
	c3.botTurn()

	// No secret reaches the log: the generated session key stays in its file.
	key, err := os.ReadFile(filepath.Join(data, "session.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{p.log(), p2.log()} {
		if strings.Contains(out, strings.TrimSpace(string(key))) || strings.Contains(out, w.Visitor) {
			t.Fatal("the log shows the session key or a visitor token")
		}
	}
}

// TestGracefulShutdown: SIGTERM closes sockets with 1012 and the process
// exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	p := start(t, t.TempDir())
	c, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	p.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.c.Read(ctx); err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusServiceRestart {
				t.Fatalf("close = %v, want 1012", err)
			}
			break
		}
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.log())
	}
}

// TestBadConfigNamesTheField: a wrong config stops the server before it
// listens, with the field and the fix in the message.
func TestBadConfigNamesTheField(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "porthole.yaml")
	os.WriteFile(cfg, []byte("bots:\n  - id: acme\n    provider: demo\n    origins: [\"https://acme.com/shop\"]\n    colour: red\n"), 0o600)
	out, err := exec.Command(binary, "serve", "--config", cfg, "--data", t.TempDir()).CombinedOutput()
	if err == nil {
		t.Fatal("server started with a bad config")
	}
	for _, want := range []string{"bots[0].origins[0]", "no path", "colour"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
