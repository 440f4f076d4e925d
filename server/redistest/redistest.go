// Package redistest runs a real redis-server (Debian's redis-server
// package) for tests: the Redis store and bus are tested against the
// real thing, never a stand-in. In CI (CI=true) a missing redis-server
// fails the test; elsewhere it skips it, saying what to install.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process of a test.
type Server struct {
	// URL is the redis:// URL to connect to.
	URL  string
	Addr string
	// Dir is the server's working directory, where an append-only file
	// or a dump is written; Restart starts the new process on it.
	Dir  string
	bin  string
	args []string // the whole command line but the binary
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *lockedBuffer
}

// Start runs a redis-server on a free loopback port with its data in a
// temporary folder, without persistence, and stops it when the test
// ends. args are added to its command line (e.g. "--appendonly", "yes").
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed: apt-get install redis-server (CI needs it)")
		}
		t.Skip("redis-server is not installed: apt-get install redis-server")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, bin: bin, out: &lockedBuffer{}}
	s.URL = "redis://" + s.Addr + "/0"
	// Later options override earlier ones: args can turn persistence on.
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no"}, args...)
	t.Cleanup(s.Stop)
	if err := s.run(); err != nil {
		t.Fatalf("redis-server did not start: %v\n%s", err, s.out.String())
	}
	return s
}

// run starts the process and waits until it answers.
func (s *Server) run() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return s.waitReady(10 * time.Second)
}

// Restart starts the server again after Stop (or stops it first, with
// SIGKILL, if it is running), on the same port, directory and options:
// what it persisted (an append-only file, with "--appendonly", "yes") is
// loaded again, which is how a test crashes Redis under a running client.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.run(); err != nil {
		t.Fatalf("redis-server did not start again: %v\n%s", err, s.out.String())
	}
}

// Client returns a go-redis client of the server, closed when the test
// ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop kills the server (SIGKILL: nothing is saved but what it already
// wrote to its append-only file, if it keeps one) and waits for its exit.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// Log returns what the server printed.
func (s *Server) Log() string { return s.out.String() }

func (s *Server) waitReady(within time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the server's output from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Cluster is a local Redis Cluster of a test: three primaries, no
// replicas, every hash slot assigned.
type Cluster struct {
	// Addrs are the nodes' addresses, for redis.NewClusterClient; URL is
	// a redis:// URL naming all of them (?addr=…), as go-redis's
	// ParseClusterURL reads it.
	Addrs []string
	URL   string
	Nodes []*Server
}

// StartCluster runs a three-node Redis Cluster on free loopback ports
// and waits until every slot is served. It needs redis-cli (Debian's
// redis-tools, which redis-server depends on) to join the nodes.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-cli is not installed: apt-get install redis-tools (CI needs it)")
		}
		t.Skip("redis-cli is not installed: apt-get install redis-tools")
	}
	c := &Cluster{}
	for range 3 {
		n := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.URL = "redis://" + c.Addrs[0] + "?addr=" + c.Addrs[1] + "&addr=" + c.Addrs[2]
	// Every node must see the whole cluster, not just one: a node that
	// has not yet heard of the others answers CLUSTERDOWN.
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range c.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: n.Addr})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := nc.ClusterInfo(ctx).Result()
			cancel()
			if err == nil && bytes.Contains([]byte(info), []byte("cluster_state:ok")) && bytes.Contains([]byte(info), []byte("cluster_slots_ok:16384")) {
				break
			}
			if time.Now().After(deadline) {
				nc.Close()
				t.Fatalf("cluster node %s did not become ready: %v\n%s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		nc.Close()
	}
	return c
}

// Client returns a go-redis cluster client of the cluster, closed when
// the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { cc.Close() })
	return cc
}
