package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchRedis is the Redis a bench runs its instances on: one it started
// (redis-server in a temporary folder, stopped at the end) or the one
// --redis-url names. The bench reads its INFO to count the commands each
// message costs.
type benchRedis struct {
	URL    string
	client *redis.Client
	cmd    *exec.Cmd // nil when the Redis is not ours
}

// startRedis runs Debian's redis-server on a free loopback port with its
// data in dir. appendfsync is its AOF policy (always, everysec, no), or
// off for no persistence at all; bolt fsyncs every commit, so the fair
// comparison is always, and everysec is what most deployments run.
func startRedis(dir, appendfsync string) (*benchRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("bench: --store redis needs redis-server (apt-get install redis-server), or a Redis of your own with --redis-url")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--protected-mode", "no"}
	switch appendfsync {
	case "off":
		args = append(args, "--appendonly", "no")
	case "always", "everysec", "no":
		args = append(args, "--appendonly", "yes", "--appendfsync", appendfsync)
	default:
		return nil, fmt.Errorf("bench: --redis-appendfsync %q: use always, everysec, no or off", appendfsync)
	}
	cmd := exec.Command(bin, args...)
	log, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting redis-server: %w", err)
	}
	r := &benchRedis{URL: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0", cmd: cmd}
	r.client = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := r.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Close()
			out, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, fmt.Errorf("bench: redis-server did not start: %w\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openRedis uses a Redis of the caller's. The bench counts commands on
// that one server, so it takes a plain redis:// URL, not a cluster's or
// Sentinel's; other clients' commands count too, so it should be a Redis
// of the bench's own. The bench leaves its conversations there.
func openRedis(raw string) (*benchRedis, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("bench: --redis-url must be a redis:// or rediss:// URL")
	}
	if q := u.Query(); q.Has("addr") || q.Has("master_name") {
		return nil, errors.New("bench: --redis-url must name one Redis server: the bench counts the commands on it")
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("bench: --redis-url: %w", err)
	}
	r := &benchRedis{URL: raw, client: redis.NewClient(o)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.client.Close()
		return nil, fmt.Errorf("bench: the Redis at --redis-url does not answer: %w", err)
	}
	return r, nil
}

// Close stops the Redis if the bench started it.
func (r *benchRedis) Close() {
	r.client.Close()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

// cmdStat is one command's counters from INFO commandstats.
type cmdStat struct {
	calls, usec int64
}

// commandStats reads INFO commandstats and cpu: calls and CPU
// microseconds per command since the Redis started, and under the name
// "" the CPU time of the whole redis-server process (user and system),
// in microseconds. The commands a Lua script runs are counted under
// their own names as well as the script's EVALSHA, and their time is in
// both, so the process's CPU time is the one to add up.
func (r *benchRedis) commandStats(ctx context.Context) (map[string]cmdStat, error) {
	info, err := r.client.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		return nil, fmt.Errorf("bench: INFO commandstats: %w", err)
	}
	stats := map[string]cmdStat{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_user" || name == "used_cpu_sys") {
			sec, _ := strconv.ParseFloat(rest, 64)
			cpu := stats[""]
			cpu.usec += int64(sec * 1e6)
			stats[""] = cpu
			continue
		}
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var s cmdStat
		for field := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "calls":
				s.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				s.usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		stats[name] = s
	}
	return stats, nil
}

// usedMemory reads the Redis's used_memory (its data and buffers, not
// its RSS).
func (r *benchRedis) usedMemory(ctx context.Context) (int64, error) {
	info, err := r.client.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("bench: INFO memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("bench: no used_memory in INFO memory")
}

// cmdCount is one command's share of a load phase.
type cmdCount struct {
	name        string
	calls, usec int64
}

// commandDelta is what each command was called between two readings,
// most called first, and the CPU time redis-server spent. The bench's own
// INFO calls are left out.
func commandDelta(before, after map[string]cmdStat) (cmds []cmdCount, cpu time.Duration) {
	var d []cmdCount
	for name, a := range after {
		b := before[name]
		if name == "" {
			cpu = time.Duration(a.usec-b.usec) * time.Microsecond
			continue
		}
		if name == "info" || a.calls == b.calls {
			continue
		}
		d = append(d, cmdCount{name, a.calls - b.calls, a.usec - b.usec})
	}
	slices.SortFunc(d, func(x, y cmdCount) int {
		return cmp.Or(cmp.Compare(y.calls, x.calls), strings.Compare(x.name, y.name))
	})
	return d, cpu
}

// roundRobin is the platform's side of a load balancer: it hands each
// webhook call to the next instance in turn, so that a reply is mostly
// stored and announced by another instance than the one holding the
// visitor's socket, as behind any balancer without sticky sessions. It
// counts the calls each instance answered with a 2xx.
type roundRobin struct {
	proxies []*httputil.ReverseProxy
	next    atomic.Uint64
	ok      []atomic.Int64
	srv     *http.Server
	URL     string
}

func startRoundRobin(bases []string) (*roundRobin, error) {
	rr := &roundRobin{ok: make([]atomic.Int64, len(bases))}
	// The emulator posts up to 256 callbacks at once; keep as many
	// connections to each instance open.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	for i, b := range bases {
		target, err := url.Parse(b)
		if err != nil {
			return nil, err
		}
		p := &httputil.ReverseProxy{
			Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
			Transport: tr,
			ModifyResponse: func(resp *http.Response) error {
				if resp.StatusCode/100 == 2 {
					rr.ok[i].Add(1)
				}
				return nil
			},
		}
		rr.proxies = append(rr.proxies, p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rr.URL = "http://" + ln.Addr().String()
	rr.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := (rr.next.Add(1) - 1) % uint64(len(rr.proxies))
		rr.proxies[i].ServeHTTP(w, r)
	})}
	go rr.srv.Serve(ln)
	return rr, nil
}

func (rr *roundRobin) Close() { rr.srv.Close() }

// monitor counts, through Redis's MONITOR, the commands the servers send
// and those their Lua scripts run, which INFO commandstats adds up
// together. MONITOR makes Redis format every command for it, which
// slows Redis: the round trips of a run with it are not the figures.
type monitor struct {
	conn net.Conn
	done chan struct{}
	// sent and scripted count by command while the monitor runs.
	sent, scripted map[string]int64
}

// startMonitor opens a connection of its own to the Redis at raw (a
// redis:// URL; AUTH from its user and password) and starts MONITOR.
func startMonitor(raw string) (*monitor, error) {
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if o.TLSConfig != nil {
		return nil, errors.New("bench: --redis-monitor needs a redis:// URL, not rediss://")
	}
	conn, err := net.DialTimeout("tcp", o.Addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("bench: MONITOR connection: %w", err)
	}
	resp := func(args ...string) string {
		s := "*" + strconv.Itoa(len(args)) + "\r\n"
		for _, a := range args {
			s += "$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n"
		}
		return s
	}
	req := ""
	if o.Password != "" {
		if o.Username != "" {
			req += resp("AUTH", o.Username, o.Password)
		} else {
			req += resp("AUTH", o.Password)
		}
	}
	req += resp("MONITOR")
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	m := &monitor{conn: conn, done: make(chan struct{}), sent: map[string]int64{}, scripted: map[string]int64{}}
	rd := bufio.NewReaderSize(conn, 64<<10)
	// The answers to AUTH and MONITOR come first.
	for range strings.Count(req, "*") {
		line, err := rd.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+OK") {
			conn.Close()
			return nil, fmt.Errorf("bench: MONITOR refused: %q %v", strings.TrimSpace(line), err)
		}
	}
	go func() {
		defer close(m.done)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			// +1796222060.946146 [0 127.0.0.1:56404] "evalsha" "…" …
			// +1796222060.946160 [0 lua] "HMGET" "…" …
			_, rest, ok := strings.Cut(line, " [")
			if !ok {
				continue
			}
			from, rest, _ := strings.Cut(rest, "] \"")
			name, _, _ := strings.Cut(rest, "\"")
			name = strings.ToLower(name)
			if strings.HasSuffix(from, " lua") {
				m.scripted[name]++
			} else if name != "info" {
				m.sent[name]++
			}
		}
	}()
	return m, nil
}

// stop ends the monitor and returns its counts, most called first.
func (m *monitor) stop() (sent, scripted []cmdCount) {
	m.conn.Close()
	<-m.done
	list := func(counts map[string]int64) []cmdCount {
		var l []cmdCount
		for name, n := range counts {
			l = append(l, cmdCount{name: name, calls: n})
		}
		slices.SortFunc(l, func(x, y cmdCount) int {
			return cmp.Or(cmp.Compare(y.calls, x.calls), strings.Compare(x.name, y.name))
		})
		return l
	}
	return list(m.sent), list(m.scripted)
}
