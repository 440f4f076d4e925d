package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBenchCommand runs `porthole bench` briefly, as `docs` quotes it at
// full size: it starts a real server and the emulators, and fails on any
// lost or duplicated reply. The figures are not judged here (the machine
// is noisy); their presence and format are.
func TestBenchCommand(t *testing.T) {
	for _, store := range []string{"memory", "bolt"} {
		out, err := exec.Command(binary, "bench", "--idle", "50", "--visitors", "10", "--rate", "100", "--duration", "1s", "--store", store).CombinedOutput()
		if err != nil {
			t.Fatalf("bench --store %s: %v\n%s", store, err, out)
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`50 idle connections: server RSS [0-9.]+ → [0-9.]+ MB, -?[0-9.]+ KB per connection`),
			regexp.MustCompile(`through the proxy +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +0 +0\n`),
			regexp.MustCompile(`emulator directly +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +0 +0\n`),
			regexp.MustCompile(`proxy / direct: p50 [0-9.]+×, p99 [-+][0-9.]+ ms`),
		} {
			if !want.Match(out) {
				t.Errorf("bench --store %s output lacks %s:\n%s", store, want, out)
			}
		}
		if strings.Contains(string(out), "token") {
			t.Errorf("bench output mentions a token:\n%s", out)
		}
	}
}

// TestBenchRedisInstances runs `porthole bench --store redis --instances
// 2` briefly: the bench starts its own redis-server, two servers on it,
// and spreads the widgets and the emulator's webhook calls over both, so
// that most replies are stored by the instance that does not hold the
// visitor's socket. Every message must be answered once (the bench fails
// otherwise), on both instances, and the Redis commands it counts must be
// there: INFO commandstats' total, and MONITOR's split into commands the
// servers sent and commands their scripts ran, which must add up to about
// the same (the two are read over nearly the same window). In CI a
// missing redis-server fails the test.
func TestBenchRedisInstances(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed: apt-get install redis-server (CI needs it)")
		}
		t.Skip("redis-server is not installed: apt-get install redis-server")
	}
	out, err := exec.Command(binary, "bench", "--store", "redis", "--instances", "2", "--redis-monitor",
		"--idle", "20", "--visitors", "6", "--rate", "60", "--duration", "1s").CombinedOutput()
	if err != nil {
		t.Fatalf("bench --store redis --instances 2: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`store redis on 2 instances`),
		regexp.MustCompile(`20 idle connections: 2 servers' summed RSS [0-9.]+ → [0-9.]+ MB, -?[0-9.]+ KB per connection`),
		regexp.MustCompile(`Redis used_memory [0-9.]+ → [0-9.]+ MB, -?[0-9.]+ KB per idle connection\n`),
		regexp.MustCompile(`through the proxy +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +0 +0\n`),
	} {
		if !want.Match(out) {
			t.Errorf("bench output lacks %s:\n%s", want, out)
		}
	}
	number := func(re string) float64 {
		t.Helper()
		m := regexp.MustCompile(re).FindSubmatch(out)
		if m == nil {
			t.Fatalf("bench output lacks %s:\n%s", re, out)
		}
		f, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	total := number(`Redis commands per message: ([0-9.]+) \(\w+ [0-9.]+`)
	sent := number(`MONITOR: ([0-9.]+) commands per message sent by the servers \(\w+ [0-9.]+`)
	scripted := number(`MONITOR: ([0-9.]+) commands per message run inside scripts`)
	if total <= 0 || sent <= 0 || math.Abs(sent+scripted-total) > total/10 {
		t.Errorf("Redis commands per message: %.2f by INFO commandstats, %.2f sent + %.2f in scripts by MONITOR; want a positive total that both agree on\n%s",
			total, sent, scripted, out)
	}
	for i := 1; i <= 2; i++ {
		m := regexp.MustCompile(fmt.Sprintf(`instance %d \(pid [0-9]+\): ([0-9]+) visitors, ([0-9]+) answered on its sockets, ([0-9]+) webhook calls taken`, i)).FindSubmatch(out)
		if m == nil {
			t.Fatalf("bench output lacks instance %d's line:\n%s", i, out)
		}
		for _, n := range m[1:] {
			if string(n) == "0" {
				t.Errorf("instance %d had nothing to do: %s", i, m[0])
			}
		}
	}
}
