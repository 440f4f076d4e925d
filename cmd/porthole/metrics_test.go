package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/porthole-chat/porthole/widget"
)

// hexID matches a visitor or conversation id.
var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// scrape reads the admin listener's /metrics and parses it.
func scrape(t testing.TB, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping the admin listener: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on the admin listener: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

// series finds the one series of family name whose labels include want
// ("k=v" pairs), and fails when there is none or more than one.
func series(t testing.TB, fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric family %s", name)
	}
	var found []*dto.Metric
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if labels[k] != v {
				ok = false
			}
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(found))
	}
	return found[0]
}

// value is the value of a counter or gauge series, or the sample count
// of a histogram.
func value(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := series(t, fams, name, labels...)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v has no value", name, labels)
	return 0
}

// expect checks a series' value.
func expect(t testing.TB, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	if got := value(t, fams, name, labels...); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// TestMetrics runs a scripted conversation against the real binary and
// the ChatAIBot emulator, with an upstream 429, a duplicate and a forged
// callback, a refused conversation start and two open sockets, and
// checks every metric family on the admin listener against what
// happened. The public port serves none of it.
func TestMetrics(t *testing.T) {
	admin := freeAddr(t)
	const adminToken = "metrics-admin-token-0123456789abcdef"
	t.Setenv("ADMIN_TOKEN", adminToken)
	p, emu := chataibotBinary(t, fmt.Sprintf(`limits: {starts_per_minute: 1, start_burst: 1}
admin:
  listen: %q
admin_token: "${ADMIN_TOKEN}"
`, admin))

	// The public port serves no /metrics and no admin path.
	for _, path := range []string{"/metrics", "/metrics/", "/admin", "/admin/", "/debug/pprof/", "/debug/vars"} {
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	// And the admin listener serves no public route.
	for _, path := range []string{"/readyz", "/widget.js", "/v1/ws?bot=shop", "/chat/shop"} {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("admin GET %s = %d, want 404", path, resp.StatusCode)
		}
	}

	// Visitor A: a conversation, with a message sent twice.
	a, _, err := dialBot(t, p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	wa := a.hello("", 0)
	a.send(&widget.Send{ID: "m1", Text: "hello"})
	seq1 := a.ack("m1")
	if s := a.status("m1"); s.State != widget.StateDelivered {
		t.Fatalf("m1: %+v", s)
	}
	a.botSaid("Your first message was: hello")
	a.send(&widget.Send{ID: "m1", Text: "hello"}) // the widget's retry: stored once
	if again := a.ack("m1"); again != seq1 {
		t.Fatalf("the repeated m1 was acked %d, first %d", again, seq1)
	}

	// A forged callback is refused.
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/hooks/chataibot/shop",
		strings.NewReader(`{"conversation_id":"x","message_id":"forged","messages":[{"type":"text","data":{"body":"forged"}}]}`))
	req.Header.Set("Authorization", "Bearer wrong-secret")
	refused(t, req)

	// A callback delivered twice is one duplicate.
	emu.DuplicateCallbacks(1)
	a.send(&widget.Send{ID: "m2", Text: "twice?"})
	a.ack("m2")
	if s := a.status("m2"); s.State != widget.StateDelivered {
		t.Fatalf("m2: %+v", s)
	}
	a.botSaid("You said: twice?")

	// A 429: the message waits on the outbox, then goes on the retry.
	emu.FailNext(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}})
	a.send(&widget.Send{ID: "m3", Text: "after a 429"})
	a.ack("m3")
	fams := scrape(t, admin) // the first scrape: the outbox is read now
	expect(t, fams, 1, "porthole_outbox_messages")
	if age := value(t, fams, "porthole_outbox_oldest_age_seconds"); age <= 0 || age > 10 {
		t.Errorf("porthole_outbox_oldest_age_seconds = %v, want the age of m3 (0 < age <= 10)", age)
	}
	if s := a.status("m3"); s.State != widget.StateDelivered {
		t.Fatalf("m3 after the 429: %+v", s)
	}
	a.botSaid("You said: after a 429")

	// Visitor B: a second socket, whose start is refused (start_burst 1
	// for the address).
	b, _, err := dialBot(t, p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	b.hello("", 0)
	b.send(&widget.Start{ID: "st"})
	if e := b.until("the refused start", func(f widget.Frame) bool { return f.Type() == widget.TypeError }).(*widget.ErrorFrame); e.Code != widget.CodeRateLimited {
		t.Fatalf("visitor B's start: %+v, want rate_limited", e)
	}

	// Everything the emulator will post is posted, and answered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := emu.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	// The proxy's answers to the emulator's callbacks, by class; the
	// forged one is a refusal the emulator did not send.
	answered, dupSent, refusals, failures := 0, 0, 1, 0
	for _, cb := range emu.Callbacks() {
		switch {
		case cb.Status >= 200 && cb.Status < 300:
			answered++
		case cb.Status >= 500:
			failures++
		case cb.Status >= 300:
			refusals++
		}
		if cb.Duplicate {
			dupSent++
		}
	}
	if dupSent != 1 {
		t.Fatalf("the emulator sent %d duplicate callbacks, want 1", dupSent)
	}
	// What the bot said, from the transcript (a third socket, closed
	// before the last scrape).
	_, msgs := replayBot(t, p, "shop", wa.Visitor, 0)
	botMsgs := 0
	for _, m := range msgs {
		if m.From == "bot" {
			botMsgs++
		}
	}

	// The last scrape, once the outbox gauges are read afresh and the
	// replay socket is gone.
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams = scrape(t, admin)
		if value(t, fams, "porthole_outbox_messages") == 0 && value(t, fams, "porthole_sockets_open", "bot=shop") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %v, sockets %v: want 0 and 2", value(t, fams, "porthole_outbox_messages"), value(t, fams, "porthole_sockets_open", "bot=shop"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	shop := []string{"bot=shop"}
	up := []string{"bot=shop", "provider=chataibot"}
	expect(t, fams, 2, "porthole_sockets_open", shop...)
	expect(t, fams, 2, "porthole_visitors_started_total", shop...)
	expect(t, fams, 1, "porthole_conversations_started_total", shop...)
	expect(t, fams, 3, "porthole_messages_in_total", shop...)
	expect(t, fams, float64(botMsgs), "porthole_messages_out_total", shop...)
	if botMsgs < 3 {
		t.Errorf("the bot said %d things, want at least the 3 replies", botMsgs)
	}
	// The platform took the start and m1, m2, m3 (on its retry); it
	// refused m3 once with 429.
	expect(t, fams, 4, "porthole_upstream_calls_total", append(up, "outcome=ok")...)
	expect(t, fams, 1, "porthole_upstream_calls_total", append(up, "outcome=429")...)
	for _, o := range []string{"4xx", "5xx", "timeout", "network"} {
		expect(t, fams, 0, "porthole_upstream_calls_total", append(up, "outcome="+o)...)
	}
	expect(t, fams, 5, "porthole_upstream_call_duration_seconds", up...)
	if sum := series(t, fams, "porthole_upstream_call_duration_seconds", up...).Histogram.GetSampleSum(); sum <= 0 {
		t.Errorf("upstream call time sum = %v, want > 0", sum)
	}
	expect(t, fams, 1, "porthole_upstream_retries_total", up...)
	expect(t, fams, float64(answered-1), "porthole_callbacks_total", append(up, "result=accepted")...)
	expect(t, fams, 1, "porthole_callbacks_total", append(up, "result=duplicate")...)
	expect(t, fams, float64(refusals), "porthole_callbacks_total", append(up, "result=refused")...)
	expect(t, fams, float64(failures), "porthole_callbacks_total", append(up, "result=error")...)
	// Four visitor appends (m1 twice), each bot message, and the
	// duplicate's messages again.
	if n := value(t, fams, "porthole_store_write_seconds", "op=append"); n < float64(4+botMsgs+1) {
		t.Errorf("store appends timed: %v, want at least %d", n, 4+botMsgs+1)
	}
	if n := value(t, fams, "porthole_store_write_seconds", "op=create"); n < 1 {
		t.Errorf("conversation creations timed: %v, want at least 1", n)
	}
	expect(t, fams, 1, "porthole_limited_total", "kind=starts")
	for _, k := range []string{"messages", "connections_per_ip", "max_connections", "tcp_connections_per_ip", "max_tcp_connections"} {
		expect(t, fams, 0, "porthole_limited_total", "kind="+k)
	}
	expect(t, fams, 1, "porthole_build_info", "version=dev", "goversion="+runtime.Version())
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_start_time_seconds", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	// Labels stay bounded: no visitor or conversation id anywhere.
	var names []string
	for name, f := range fams {
		names = append(names, name)
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if v := l.GetValue(); strings.Contains(v, wa.Visitor) || hexID.MatchString(v) {
					t.Errorf("%s has the label %s=%q, an id", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	sort.Strings(names)
	t.Logf("metric families: %s", strings.Join(names, " "))
	// The admin token is in no log line and no metric.
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(raw), adminToken) || strings.Contains(p.log(), adminToken) {
		t.Fatal("the admin token leaked into /metrics or the log")
	}

	// SIGTERM stops the admin listener with the public one, cleanly.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if c, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
		c.Close()
		t.Fatal("the admin listener still accepts connections after shutdown")
	}
}

// TestAdminListenClash: admin.listen on the public address is refused
// before anything listens, naming admin.listen, also when --listen makes
// the clash.
func TestAdminListenClash(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "porthole.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("admin: {listen: %q}\nbots:\n  - id: demo\n    provider: demo\n    origins: [self]\n", addr)), 0o600)
	out, err := exec.Command(binary, "serve", "--config", cfg, "--data", dir, "--listen", addr).CombinedOutput()
	if err == nil {
		t.Fatal("the server started with --listen on admin.listen")
	}
	if !strings.Contains(string(out), "admin.listen") || !strings.Contains(string(out), "public") {
		t.Errorf("the error does not name admin.listen and why:\n%s", out)
	}
	same := filepath.Join(dir, "same.yaml")
	os.WriteFile(same, []byte(fmt.Sprintf("listen: %q\nadmin: {listen: %q}\nbots:\n  - id: demo\n    provider: demo\n    origins: [self]\n", addr, addr)), 0o600)
	out, err = exec.Command(binary, "serve", "--config", same, "--data", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "admin.listen") {
		t.Fatalf("admin.listen = listen in the file: err %v, output:\n%s", err, out)
	}
}
