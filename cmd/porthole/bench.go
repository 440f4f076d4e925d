package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/widget"
)

// bench measures a real porthole server under load. It starts two
// ChatAIBot emulators in this process, a porthole server as a child
// process whose bot talks to the first, and then:
//
//  1. opens --idle widget connections and reports the server's resident
//     memory per idle connection;
//  2. sends --rate messages a second for --duration from --visitors
//     widgets over real WebSockets, and times each send to the bot's
//     reply on the socket;
//  3. sends the same load straight to the second emulator through the
//     same adapter code, without the proxy: the baseline. The proxy's
//     own cost is the ratio of the two.
//
// Every message must be acknowledged once and answered once; lost and
// duplicated replies are counted and make the command fail.
func bench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	idle := fs.Int("idle", 1000, "idle widget `connections` for the memory figure")
	visitors := fs.Int("visitors", 200, "widgets that send during the load")
	rateFlag := fs.Float64("rate", 1000, "messages a `second`, all visitors together")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	storeDriver := fs.String("store", "bolt", "the server's store: bolt or memory")
	think := fs.Duration("reply-delay", 0, "how long the emulated bot `thinks` before each reply, as a real platform does (both emulators)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *visitors < 1 || *rateFlag <= 0 || *duration <= 0 || *idle < 0 || *think < 0 {
		return errors.New("bench: --visitors, --rate and --duration must be positive, --idle and --reply-delay not negative")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }

	proxyPort, err := freePort()
	if err != nil {
		return err
	}
	proxyURL := "http://127.0.0.1:" + strconv.Itoa(proxyPort)
	emu, emuURL, err := startEmulator(*think)
	if err != nil {
		return err
	}
	defer emu.Close()
	const secret = "porthole-bench-webhook-secret"
	emu.SetCallback(proxyURL+"/hooks/chataibot/bench", secret)

	dir, err := os.MkdirTemp("", "porthole-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
store: {driver: %s}
limits: {messages_per_minute: 6000, burst: 100, ip_messages_per_minute: 1000000, connections_per_ip: 1000000, max_connections: 1000000,
         starts_per_minute: 1000000, start_burst: 1000000, bot_starts_per_minute: 1000000}
bots:
  - id: bench
    provider: chataibot
    origins: [loopback]
    chataibot:
      base_url: %q
      token: %q
      bot_key: %q
      webhook_secret: %q
`, proxyPort, *storeDriver, emuURL, chataibottest.DefaultToken, chataibottest.DefaultBotKey, secret)
	cfgPath := filepath.Join(dir, "porthole.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	srv := exec.CommandContext(ctx, exe, "serve", "--config", cfgPath, "--data", dir, "--log-level", "warn")
	srv.Stderr = stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() {
		srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
		}
	}()
	if err := waitReady(proxyURL, 15*time.Second); err != nil {
		return err
	}
	pid := srv.Process.Pid
	logf("server pid %d on %s, store %s; emulator on %s", pid, proxyURL, *storeDriver, emuURL)

	// 1. Idle connections.
	var idleFig string
	if *idle > 0 {
		time.Sleep(500 * time.Millisecond)
		before, err := rss(pid)
		if err != nil {
			return err
		}
		conns, err := openIdle(ctx, proxyURL, *idle)
		defer func() {
			for _, c := range conns {
				c.CloseNow()
			}
		}()
		if err != nil {
			return fmt.Errorf("idle connections: %w", err)
		}
		time.Sleep(2 * time.Second) // let the handshakes' garbage go
		after, err := rss(pid)
		if err != nil {
			return err
		}
		per := float64(after-before) / float64(*idle)
		idleFig = fmt.Sprintf("%d idle connections: server RSS %.1f → %.1f MB, %.1f KB per connection", *idle, mb(before), mb(after), per/1024)
		logf("%s", idleFig)
	}

	// 2. Through the proxy.
	logf("load through the proxy: %d visitors, %.0f messages/s for %s", *visitors, *rateFlag, *duration)
	proxied, err := loadProxy(ctx, proxyURL, *visitors, *rateFlag, *duration)
	if err != nil {
		return err
	}

	// 3. Straight to an emulator of its own, through the same adapter.
	logf("baseline: the same load straight to the emulator")
	direct, err := loadDirect(ctx, *visitors, *rateFlag, *duration, *think)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "porthole bench: %d visitors, %.0f messages/s for %s, store %s, bot thinks %s\n", *visitors, *rateFlag, *duration, *storeDriver, *think)
	if idleFig != "" {
		fmt.Fprintln(stdout, idleFig)
	}
	fmt.Fprintf(stdout, "%-22s %8s %8s %8s %8s %10s %6s %6s\n", "send → bot reply", "p50 ms", "p95 ms", "p99 ms", "max ms", "msgs/s", "lost", "dup")
	for _, r := range []struct {
		name string
		res  *loadResult
	}{{"through the proxy", proxied}, {"emulator directly", direct}} {
		fmt.Fprintf(stdout, "%-22s %8.2f %8.2f %8.2f %8.2f %10.0f %6d %6d\n", r.name,
			ms(r.res.pct(50)), ms(r.res.pct(95)), ms(r.res.pct(99)), ms(r.res.pct(100)), r.res.throughput(), r.res.lost, r.res.dup)
	}
	fmt.Fprintf(stdout, "proxy / direct: p50 %.2f×, p99 %+.2f ms\n",
		float64(proxied.pct(50))/float64(max(direct.pct(50), 1)), ms(proxied.pct(99)-direct.pct(99)))
	if proxied.lost+proxied.dup+proxied.errors+direct.lost+direct.dup > 0 {
		return fmt.Errorf("bench: %d lost, %d duplicated, %d errors through the proxy; %d lost, %d duplicated directly",
			proxied.lost, proxied.dup, proxied.errors, direct.lost, direct.dup)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b int64) float64         { return float64(b) / (1 << 20) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startEmulator serves a ChatAIBot emulator without rate limits on a
// local port.
func startEmulator(think time.Duration) (*chataibottest.Server, string, error) {
	e := chataibottest.New(chataibottest.Options{RateLimit: -1, Parallel: 256, ReplyDelay: think})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	hs := &http.Server{Handler: e.Handler()}
	go hs.Serve(ln)
	e.URL = "http://" + ln.Addr().String()
	return e, e.URL, nil
}

func waitReady(base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("bench: the server at %s was not ready within %s", base, within)
}

// rss reads a process's resident set size from /proc.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: reading the server's memory needs Linux /proc: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("bench: no VmRSS in /proc status")
}

// dialWidget opens a socket as an open widget does: hello, then start,
// and waits for the welcome that names its conversation. Every widget
// of the bench is a visitor with a conversation, as every one was before
// a hello stopped creating them, so the figures stay comparable.
func dialWidget(ctx context.Context, base string) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/ws?bot=bench"
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{Subprotocols: []string{widget.Protocol}, HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(widget.MaxFrame)
	if err := c.Write(dctx, websocket.MessageText, widget.Encode(&widget.Hello{Bot: "bench"})); err != nil {
		c.CloseNow()
		return nil, err
	}
	for {
		_, data, err := c.Read(dctx)
		if err != nil {
			c.CloseNow()
			return nil, err
		}
		f, err := widget.Decode(data)
		if err != nil {
			continue
		}
		switch f := f.(type) {
		case *widget.Welcome:
			if f.Conversation != "" {
				return c, nil
			}
			if err := c.Write(dctx, websocket.MessageText, widget.Encode(&widget.Start{ID: "bench-start"})); err != nil {
				c.CloseNow()
				return nil, err
			}
		case *widget.ErrorFrame:
			c.CloseNow()
			return nil, fmt.Errorf("bench: the server refused the widget: %s: %s", f.Code, f.Message)
		}
	}
}

// openIdle opens n widget connections that then only answer pings.
func openIdle(ctx context.Context, base string, n int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialWidget(ctx, base)
			if err != nil {
				failed.Store(err)
				return
			}
			conns[i] = c
			// Reading answers the server's pings; frames are dropped.
			go func() {
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return slices.DeleteFunc(conns, func(c *websocket.Conn) bool { return c == nil }), err
	}
	return conns, nil
}
