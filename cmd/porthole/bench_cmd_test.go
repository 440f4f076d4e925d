package main

import (
	"os/exec"
	"regexp"
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
