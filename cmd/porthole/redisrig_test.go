package main

// The multi-instance rig of the fault suite: three `porthole serve`
// processes sharing one real Redis, in front of the same platform
// emulator, with the platform's callbacks spread over them by a
// round-robin load balancer and the visitors spread over them too. The
// scenarios are in faults_redis_test.go; they end with the fault suite's
// audit (faultRig.audit), across every instance.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/redistest"
)

// redisConfig is faultConfig on a shared Redis, with a session key all
// instances share, so that a visitor token made by one is good on the
// others. The first %s is the Redis URL. Three servers, Redis and the
// emulator share the test machine, which stalls for a second or more
// when it is busy: an upstream call that the emulator took but answered
// after the timeout would be handed over again (ChatAIBot has no
// idempotency key), so calls get 5 s here, as in faultUpstream (no
// scenario here times calls out on purpose). That keeps the dispatch lease at its
// default, 10 s (it is at least the timeout and a second), so the
// SIGKILL scenario sees the takeover bound a deployment has.
const redisConfig = `store: {driver: redis, url: %q}
session_keys: ["multi-instance-fault-suite-session-key-0123456789"]
upstream: {timeout: 5s, max_backoff: 1s, retry_for: 5m}
%s
bots:
%s`

// instances is how many server processes a redisRig runs.
const instances = 3

// redisRig is a faultRig of several server processes on one Redis. Its
// faultRig's p and addr are a live instance, which the audit reads the
// transcripts from; procs holds them all.
type redisRig struct {
	*faultRig
	redis *redistest.Server
	inst  []*instance
	lb    *balancer
	// moved counts widget reconnects away from a killed instance.
	moved atomic.Int32
	vs    []*visitor // every visitor started
}

// instance is one server process of the rig, on an address of its own.
type instance struct {
	addr string
	p    *proc
	dead atomic.Bool // killed: the load balancer's health check knows
}

// newRedisRig starts a ChatAIBot emulator, Redis (with redisArgs on its
// command line) and three server processes on it.
func newRedisRig(t *testing.T, opts chataibottest.Options, redisArgs ...string) *redisRig {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	if opts.Parallel == 0 {
		opts.Parallel = 64
	}
	emu := chataibottest.New(opts)
	r := newRedisRigOn(t, aiPlatform{emu}, redisArgs...)
	r.emu, emu.URL = emu, "http://"+r.emuAddr
	return r
}

// newRedisRigOn starts Redis, the load balancer and the three server
// processes in front of plat, which it serves on an address of its own.
func newRedisRigOn(t *testing.T, plat platform, redisArgs ...string) *redisRig {
	t.Helper()
	r := &redisRig{faultRig: &faultRig{t: t, plat: plat}}
	r.redis = redistest.Start(t, redisArgs...)
	r.emuAddr = freeAddr(t)
	r.upstreamUp()
	t.Cleanup(func() {
		r.upstreamDown()
		plat.Close()
	})
	for range instances {
		r.inst = append(r.inst, &instance{addr: freeAddr(t)})
	}
	r.lb = newBalancer(t, r.inst)
	plat.setHook(r.lb.url)
	r.cfg = filepath.Join(t.TempDir(), "porthole.yaml")
	cfg := fmt.Sprintf(redisConfig, r.redis.URL, faultLimits, plat.bot("http://"+r.emuAddr))
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, in := range r.inst {
		in.p = launch(t, in.addr, t.TempDir(), "--config", r.cfg)
		r.procs = append(r.procs, in.p)
	}
	r.p, r.addr = r.inst[0].p, r.inst[0].addr
	return r
}

// kill stops instance i with SIGKILL and leaves it down: the load
// balancer and the reconnecting widgets go to the others, and the audit
// reads the transcripts from a live one.
func (r *redisRig) kill(i int) {
	r.t.Helper()
	in := r.inst[i]
	in.dead.Store(true)
	in.p.kill()
	for _, o := range r.inst {
		if !o.dead.Load() {
			r.p, r.addr = o.p, o.addr
			return
		}
	}
	r.t.Fatal("no instance left alive")
}

// next is the live instance after addr, round the ring: where a widget
// whose connection to addr failed reconnects, as through a load balancer
// whose health checks have taken a dead instance out.
func (r *redisRig) next(addr string) string {
	at := 0
	for i, in := range r.inst {
		if in.addr == addr {
			at = i
			if in.dead.Load() {
				r.moved.Add(1)
			}
		}
	}
	for k := 1; k <= len(r.inst); k++ {
		if in := r.inst[(at+k)%len(r.inst)]; !in.dead.Load() {
			return in.addr
		}
	}
	return addr
}

// start runs the visitors in the background, visitor i on instance
// i%3, each moving to the next live instance whenever its connection
// fails; wait blocks until each has every message acknowledged.
func (r *redisRig) start(vs []*visitor, within time.Duration) (wait func()) {
	r.t.Helper()
	for _, v := range vs {
		v.reroute = r.next
	}
	r.vs = append(r.vs, vs...)
	return startEach(r.t, func(i int) string { return r.inst[i%len(r.inst)].addr }, vs, within)
}

// underway waits until the visitors have had n messages acknowledged:
// the burst is on, conversations started on every instance, so that a
// fault now strikes in its middle.
func (r *redisRig) underway(n int) {
	r.t.Helper()
	began := time.Now()
	acked := func() int {
		a := 0
		for _, v := range r.vs {
			a += len(v.ackedIDs())
		}
		return a
	}
	waitFor(r.t, fmt.Sprintf("%d messages acknowledged", n), 30*time.Second, func() bool { return acked() >= n })
	r.t.Logf("underway after %s: %d messages acknowledged, %d with the platform", time.Since(began).Round(time.Millisecond), acked(), sumCounts(r.plat.accepted()))
}

// spread checks that the load balancer handed callbacks to every
// instance that was alive throughout, and logs how many each took.
func (r *redisRig) spread() {
	r.t.Helper()
	hits := r.lb.counts()
	r.t.Logf("callbacks taken by instance: %v", hits)
	for i, in := range r.inst {
		if !in.dead.Load() && hits[i] == 0 {
			r.t.Fatalf("instance %d took no callback: the platform's callbacks were not spread (%v)", i, hits)
		}
	}
}

// balancer is the load balancer in front of the instances' webhooks: it
// hands each callback to the next instance in turn, skipping one whose
// connection is refused (as a load balancer's health check would take a
// dead instance out), so that a conversation's callbacks land on other
// instances than its visitor's socket. An instance that fails in the
// middle of a callback gets the platform a 502, which it retries.
type balancer struct {
	url    string
	inst   []*instance
	client *http.Client
	turn   atomic.Uint64
	mu     sync.Mutex
	hits   []int // answered callbacks, by instance
}

func newBalancer(t *testing.T, inst []*instance) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{url: "http://" + ln.Addr().String(), inst: inst, hits: make([]int, len(inst)),
		client: &http.Client{Timeout: 30 * time.Second}}
	srv := &http.Server{Handler: b}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "load balancer: unreadable request", http.StatusBadRequest)
		return
	}
	first := int(b.turn.Add(1))
	for k := range len(b.inst) {
		i := (first + k) % len(b.inst)
		out, err := http.NewRequestWithContext(req.Context(), req.Method, "http://"+b.inst[i].addr+req.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out.Header = req.Header.Clone()
		resp, err := b.client.Do(out)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue // down: the next one
		}
		if err != nil {
			http.Error(w, "load balancer: "+err.Error(), http.StatusBadGateway)
			return
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		b.mu.Lock()
		b.hits[i]++
		b.mu.Unlock()
		return
	}
	http.Error(w, "load balancer: no instance is up", http.StatusServiceUnavailable)
}

func (b *balancer) counts() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.hits...)
}
