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
// ChatAIBot emulators in this process, --instances porthole servers as
// child processes whose bot talks to the first, and then:
//
//  1. opens --idle widget connections and reports the servers' resident
//     memory per idle connection;
//  2. sends --rate messages a second for --duration from --visitors
//     widgets over real WebSockets, and times each send to the bot's
//     reply on the socket;
//  3. sends the same load straight to the second emulator through the
//     same adapter code, without the proxy: the baseline. The proxy's
//     own cost is the ratio of the two.
//
// With several instances (on --store redis, the only store they can
// share) the widgets, idle and sending, go round-robin over them, and
// the emulator's webhook calls go round-robin over them too, through a
// small proxy in this process: a reply is often stored by another
// instance than the one holding the visitor's socket, and reaches it
// over the Redis bus. On Redis the bench also counts the Redis commands
// each message costs (INFO commandstats before and after the load).
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
	storeDriver := fs.String("store", "bolt", "the servers' store: bolt, memory or redis")
	instances := fs.Int("instances", 1, "porthole serve `processes`, sharing one Redis (more than one needs --store redis); widgets and webhook calls go round-robin over them")
	redisURLFlag := fs.String("redis-url", "", "with --store redis: the Redis `URL` to use, one server of the bench's own; empty starts a redis-server on a free port in a temporary folder")
	appendfsync := fs.String("redis-appendfsync", "everysec", "the started redis-server's AOF fsync `policy`: always, everysec, no, or off (no AOF)")
	monitorFlag := fs.Bool("redis-monitor", false, "also count, through Redis's MONITOR, the commands the servers send apart from those their scripts run (MONITOR slows Redis: the timings of such a run are not comparable)")
	think := fs.Duration("reply-delay", 0, "how long the emulated bot `thinks` before each reply, as a real platform does (both emulators)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *visitors < 1 || *rateFlag <= 0 || *duration <= 0 || *idle < 0 || *think < 0 || *instances < 1 {
		return errors.New("bench: --visitors, --rate, --duration and --instances must be positive, --idle and --reply-delay not negative")
	}
	switch {
	case !slices.Contains([]string{"bolt", "memory", "redis"}, *storeDriver):
		return fmt.Errorf("bench: --store %q: use bolt, memory or redis", *storeDriver)
	case *instances > 1 && *storeDriver != "redis":
		return errors.New("bench: several --instances share one store: use --store redis")
	case (*redisURLFlag != "" || *monitorFlag) && *storeDriver != "redis":
		return errors.New("bench: --redis-url and --redis-monitor go with --store redis")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }

	dir, err := os.MkdirTemp("", "porthole-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var rdb *benchRedis
	if *storeDriver == "redis" {
		if *redisURLFlag != "" {
			rdb, err = openRedis(*redisURLFlag)
		} else {
			rdb, err = startRedis(dir, *appendfsync)
		}
		if err != nil {
			return err
		}
		defer rdb.Close()
	}

	bases := make([]string, *instances)
	for i := range bases {
		port, err := freePort()
		if err != nil {
			return err
		}
		bases[i] = "http://127.0.0.1:" + strconv.Itoa(port)
	}
	emu, emuURL, err := startEmulator(*think)
	if err != nil {
		return err
	}
	defer emu.Close()
	const secret = "porthole-bench-webhook-secret"
	hookBase := bases[0]
	var rr *roundRobin
	if *instances > 1 {
		if rr, err = startRoundRobin(bases); err != nil {
			return err
		}
		defer rr.Close()
		hookBase = rr.URL
	}
	emu.SetCallback(hookBase+"/hooks/chataibot/bench", secret)

	storeCfg := fmt.Sprintf("{driver: %s}", *storeDriver)
	if rdb != nil {
		// Every instance signs visitor tokens with the same key, as a
		// deployment behind a balancer must. Not a secret: it opens
		// nothing but this bench's servers.
		storeCfg = `{driver: redis, url: "${PORTHOLE_BENCH_REDIS_URL}"}
session_keys: ["porthole-bench-session-key-0123456789abcdef"]`
	}
	cfg := fmt.Sprintf(`store: %s
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
`, storeCfg, emuURL, chataibottest.DefaultToken, chataibottest.DefaultBotKey, secret)
	cfgPath := filepath.Join(dir, "porthole.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pids := make([]int, len(bases))
	for i, base := range bases {
		data := filepath.Join(dir, fmt.Sprintf("instance-%d", i+1))
		if err := os.Mkdir(data, 0o700); err != nil {
			return err
		}
		srv := exec.CommandContext(ctx, exe, "serve", "--config", cfgPath, "--data", data, "--log-level", "warn",
			"--listen", strings.TrimPrefix(base, "http://"))
		srv.Stderr = stderr
		if rdb != nil {
			// The URL goes by the environment, as the README advises: an
			// external Redis's password stays out of the config file.
			srv.Env = append(os.Environ(), "PORTHOLE_BENCH_REDIS_URL="+rdb.URL)
		}
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
		pids[i] = srv.Process.Pid
	}
	for _, base := range bases {
		if err := waitReady(base, 15*time.Second); err != nil {
			return err
		}
	}
	logf("%d server(s), pids %v on %s, store %s; emulator on %s, calling back %s", len(bases), pids, strings.Join(bases, " "), *storeDriver, emuURL, hookBase)

	// 1. Idle connections.
	var idleFigs []string
	if *idle > 0 {
		time.Sleep(500 * time.Millisecond)
		before, err := rssSum(pids)
		if err != nil {
			return err
		}
		var redisBefore int64
		if rdb != nil {
			if redisBefore, err = rdb.usedMemory(ctx); err != nil {
				return err
			}
		}
		conns, err := openIdle(ctx, bases, *idle)
		defer func() {
			for _, c := range conns {
				c.CloseNow()
			}
		}()
		if err != nil {
			return fmt.Errorf("idle connections: %w", err)
		}
		time.Sleep(2 * time.Second) // let the handshakes' garbage go
		after, err := rssSum(pids)
		if err != nil {
			return err
		}
		per := float64(after-before) / float64(*idle)
		servers := "server"
		if len(pids) > 1 {
			servers = fmt.Sprintf("%d servers' summed", len(pids))
		}
		idleFigs = append(idleFigs, fmt.Sprintf("%d idle connections: %s RSS %.1f → %.1f MB, %.1f KB per connection", *idle, servers, mb(before), mb(after), per/1024))
		if rdb != nil {
			used, err := rdb.usedMemory(ctx)
			if err != nil {
				return err
			}
			idleFigs = append(idleFigs, fmt.Sprintf("Redis used_memory %.1f → %.1f MB, %.1f KB per idle connection",
				mb(redisBefore), mb(used), float64(used-redisBefore)/float64(*idle)/1024))
		}
		for _, f := range idleFigs {
			logf("%s", f)
		}
	}

	// 2. Through the proxy.
	logf("load through the proxy: %d visitors, %.0f messages/s for %s", *visitors, *rateFlag, *duration)
	var statsBefore map[string]cmdStat
	var statsErr error
	var mon *monitor
	proxied, err := loadProxy(ctx, bases, *visitors, *rateFlag, *duration, func() {
		if rdb == nil {
			return
		}
		if *monitorFlag {
			if mon, statsErr = startMonitor(rdb.URL); statsErr != nil {
				return
			}
		}
		statsBefore, statsErr = rdb.commandStats(ctx)
	})
	var sent, scripted []cmdCount
	if mon != nil {
		sent, scripted = mon.stop()
	}
	if err != nil {
		return err
	}
	var perMsg []cmdCount
	var redisCPU time.Duration
	if rdb != nil {
		if statsErr != nil {
			return statsErr
		}
		after, err := rdb.commandStats(ctx)
		if err != nil {
			return err
		}
		perMsg, redisCPU = commandDelta(statsBefore, after)
	}

	// 3. Straight to an emulator of its own, through the same adapter.
	logf("baseline: the same load straight to the emulator")
	direct, err := loadDirect(ctx, *visitors, *rateFlag, *duration, *think)
	if err != nil {
		return err
	}

	on := ""
	if len(bases) > 1 {
		on = fmt.Sprintf(" on %d instances", len(bases))
	}
	fmt.Fprintf(stdout, "porthole bench: %d visitors, %.0f messages/s for %s, store %s%s, bot thinks %s\n", *visitors, *rateFlag, *duration, *storeDriver, on, *think)
	for _, f := range idleFigs {
		fmt.Fprintln(stdout, f)
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
	if rdb != nil {
		msgs := float64(len(proxied.sent))
		var calls int64
		var each []string
		for _, c := range perMsg {
			calls += c.calls
			each = append(each, fmt.Sprintf("%s %.2f", c.name, float64(c.calls)/msgs))
		}
		fmt.Fprintf(stdout, "Redis commands per message: %.2f (%s); redis-server CPU %.0f µs per message\n",
			float64(calls)/msgs, strings.Join(each, ", "), float64(redisCPU.Microseconds())/msgs)
		if mon != nil {
			for _, part := range []struct {
				what string
				cmds []cmdCount
			}{{"sent by the servers", sent}, {"run inside scripts", scripted}} {
				var n int64
				var each []string
				for _, c := range part.cmds {
					n += c.calls
					each = append(each, fmt.Sprintf("%s %.2f", c.name, float64(c.calls)/msgs))
				}
				fmt.Fprintf(stdout, "MONITOR: %.2f commands per message %s (%s)\n", float64(n)/msgs, part.what, strings.Join(each, ", "))
			}
		}
	}
	if len(bases) > 1 {
		for i, pid := range pids {
			fmt.Fprintf(stdout, "instance %d (pid %d): %d visitors, %d answered on its sockets, %d webhook calls taken\n",
				i+1, pid, proxied.visitorsOn[i], proxied.answeredOn[i], rr.ok[i].Load())
		}
	}
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

// rssSum adds up the servers' resident set sizes.
func rssSum(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		n, err := rss(pid)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
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

// openIdle opens n widget connections, round-robin over the servers at
// bases, that then only answer pings.
func openIdle(ctx context.Context, bases []string, n int) ([]*websocket.Conn, error) {
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
			c, err := dialWidget(ctx, bases[i%len(bases)])
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
