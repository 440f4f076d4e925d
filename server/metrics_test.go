package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

func TestOutcome(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{&provider.Error{Reason: provider.ReasonRateLimited, Temporary: true, Status: 429}, Outcome429},
		{&provider.Error{Reason: provider.ReasonRateLimited, Temporary: true}, Outcome429},
		{&provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: 503}, Outcome5xx},
		{&provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: 408}, OutcomeTimeout},
		{&provider.Error{Reason: provider.ReasonRejected, Status: 400}, Outcome4xx},
		{&provider.Error{Reason: provider.ReasonAuth, Status: 401}, Outcome4xx},
		{&provider.Error{Reason: provider.ReasonRejected, Status: 200}, Outcome4xx}, // ChatAIBot's ok:false
		{&provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Err: fmt.Errorf("POST /x: %w", provider.ErrTimeout)}, OutcomeTimeout},
		{&provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Err: errors.New("POST /x: network error")}, OutcomeNetwork},
		{fmt.Errorf("send: %w", context.DeadlineExceeded), OutcomeTimeout},
		{errors.New("something else"), OutcomeNetwork},
	} {
		if got := Outcome(tt.err); got != tt.want {
			t.Errorf("Outcome(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// TestUpstreamTimeoutIsAnOutcome: a call the Upstream client gives up on
// is a timeout, not a network error.
func TestUpstreamTimeoutIsAnOutcome(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer slow.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := (&provider.Upstream{}).Do(ctx, provider.Request{Method: "POST", URL: slow.URL + "/x", JSON: map[string]string{}})
	if got := Outcome(err); got != OutcomeTimeout {
		t.Fatalf("Outcome(%v) = %s, want timeout", err, got)
	}
	if strings.Contains(err.Error(), slow.URL) {
		t.Fatalf("the error names the URL: %v", err)
	}
}

func TestAdminListenValidation(t *testing.T) {
	for _, tt := range []struct {
		listen, admin, token string
		want                 string // "" for valid
	}{
		{":8080", "", "", ""},
		{":8080", "127.0.0.1:9090", "", ""},
		{"127.0.0.1:8080", "127.0.0.2:8080", "", ""},
		{":8080", ":8080", "", "admin.listen"},
		{"127.0.0.1:8080", "127.0.0.1:8080", "", "admin.listen"},
		{":8080", "127.0.0.1:8080", "", "admin.listen"},
		{"127.0.0.1:8080", "0.0.0.0:8080", "", "admin.listen"},
		{":8080", "localhost", "", "admin.listen"},
		{":8080", "127.0.0.1:9090", "short", "admin_token"},
		{":8080", "127.0.0.1:9090", "0123456789abcdef0123", ""},
	} {
		c := DefaultConfig()
		c.Listen, c.Admin.Listen, c.AdminToken = tt.listen, tt.admin, Secret(tt.token)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("listen %q admin %q: %v", tt.listen, tt.admin, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want+":")):
			t.Errorf("listen %q admin %q token %q: %v, want an error naming %s", tt.listen, tt.admin, tt.token, err, tt.want)
		case err != nil && tt.token != "" && strings.Contains(err.Error(), tt.token):
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

func TestAdminConfigParses(t *testing.T) {
	c, err := ParseConfig([]byte(`admin: {listen: "127.0.0.1:9090"}
admin_token: "${ADMIN_TOKEN}"
bots:
  - id: demo
    provider: demo
    origins: [self]
`), func(k string) (string, bool) {
		if k == "ADMIN_TOKEN" {
			return "env-admin-token-0123456789", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Listen != "127.0.0.1:9090" || c.AdminToken.Reveal() != "env-admin-token-0123456789" {
		t.Fatalf("admin = %+v", c.Admin)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", c, c), "env-admin-token") {
		t.Fatal("the admin token prints")
	}
}

// TestPublicPortServesNoAdminPath requests every admin endpoint's path
// from the public handler, and from the admin one.
func TestPublicPortServesNoAdminPath(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.AdminToken = testAdminToken })
	if len(h.srv.adminPatterns) == 0 {
		t.Fatal("no admin endpoints recorded")
	}
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	for _, pattern := range h.srv.adminPatterns {
		method, path, _ := strings.Cut(pattern, " ")
		path = wildcard.ReplaceAllString(path, "x")
		for _, m := range []string{method, "GET", "POST"} {
			rec := httptest.NewRecorder()
			h.srv.ServeHTTP(rec, httptest.NewRequest(m, path, nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("public %s %s = %d, want 404", m, path, rec.Code)
			}
		}
		rec := httptest.NewRecorder()
		h.srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code == http.StatusNotFound {
			t.Errorf("admin %s %s = 404", method, path)
		}
	}
}

// TestOutboxGauges: the outbox gauges read the store, at most once per
// outboxCache, and the age goes on growing from the cached oldest.
func TestOutboxGauges(t *testing.T) {
	st := &countingOutbox{Store: store.NewMemory()}
	ctx := context.Background()
	c, _, err := st.Conversation(ctx, "demo", "v1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := st.Append(ctx, store.Message{Conversation: c.ID, ClientID: fmt.Sprint("m", i), From: store.FromUser,
			Body: widget.Text("hi").AppendJSON(nil), State: store.Pending}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newOutboxCollector(st))
	time.Sleep(20 * time.Millisecond)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP porthole_outbox_messages Visitor messages stored and not yet accepted by the platform (the store's, shared by every process on it; counted up to 1000).
# TYPE porthole_outbox_messages gauge
porthole_outbox_messages 3
`), "porthole_outbox_messages"); err != nil {
		t.Fatal(err)
	}
	first := gaugeOf(t, reg, "porthole_outbox_oldest_age_seconds")
	if first < 0.02 || first > 5 {
		t.Fatalf("oldest age %v, want about 20ms", first)
	}
	time.Sleep(30 * time.Millisecond)
	if _, err := st.SetState(ctx, c.ID, 1, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	// Cached: still 3, the age grown by the wait, one store read in all.
	if got := gaugeOf(t, reg, "porthole_outbox_messages"); got != 3 {
		t.Fatalf("cached depth %v, want 3", got)
	}
	if again := gaugeOf(t, reg, "porthole_outbox_oldest_age_seconds"); again < first+0.03 {
		t.Fatalf("age %v after 30ms more, was %v", again, first)
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d outbox reads for 4 scrapes within %s, want 1", n, outboxCache)
	}
}

type countingOutbox struct {
	store.Store
	reads atomic.Int64
}

func (s *countingOutbox) Outbox(ctx context.Context, limit int) ([]store.Message, error) {
	s.reads.Add(1)
	if limit > outboxScan {
		return nil, fmt.Errorf("outbox read of %d, more than %d", limit, outboxScan)
	}
	return s.Store.Outbox(ctx, limit)
}

func gaugeOf(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.Metric) == 1 {
			return f.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestHarnessMetrics drives the server harness: messages in and out, a
// refused message, a temporary upstream failure and its retry, and the
// sockets gauge going back to 0 when the socket closes.
func TestHarnessMetrics(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.Limits.Burst, c.Limits.MessagesPerMinute = 3, 1 })
	m := h.srv.metrics
	h.fp.setFail(func(pm provider.Message, attempt int) error {
		if pm.Text == "flaky" && attempt == 1 {
			return &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: 502}
		}
		return nil
	})
	h.fp.mu.Lock()
	h.fp.sink = h.srv.botSink("acme") // the Sink providers get (Env.Sink), which counts bot messages
	h.fp.mu.Unlock()
	c := h.connect("acme")
	c.hello("", 0)
	c.send(&widget.Send{ID: "a", Text: "one"})
	c.ack("a")
	c.msgWith("echo one", func(m *widget.Msg) bool { return m.Body.Text == "echo: one" })
	c.send(&widget.Send{ID: "b", Text: "flaky"})
	c.ack("b")
	c.msgWith("echo flaky", func(m *widget.Msg) bool { return m.Body.Text == "echo: flaky" })
	c.send(&widget.Send{ID: "c", Text: "three"})
	c.ack("c")
	c.send(&widget.Send{ID: "d", Text: "too many"})
	c.waitFor("rate limited", func(f widget.Frame) bool {
		e, ok := f.(*widget.ErrorFrame)
		return ok && e.Code == widget.CodeRateLimited && e.ID == "d"
	})
	c.msgWith("echo three", func(m *widget.Msg) bool { return m.Body.Text == "echo: three" })

	check := func(name string, c prometheus.Collector, want float64) {
		t.Helper()
		if got := testutil.ToFloat64(c); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("messages in", m.messagesIn.WithLabelValues("acme"), 3)
	check("messages out", m.messagesOut.WithLabelValues("acme"), 3)
	check("conversations", m.conversations.WithLabelValues("acme"), 1)
	check("visitors", m.visitors.WithLabelValues("acme"), 1)
	check("limited messages", m.limited.WithLabelValues(LimitMessages), 1)
	check("5xx", m.upstreamCalls.WithLabelValues("acme", "demo", Outcome5xx), 1)
	check("ok", m.upstreamCalls.WithLabelValues("acme", "demo", OutcomeOK), 4) // the start, one, flaky's retry, three
	check("retries", m.retries.WithLabelValues("acme", "demo"), 1)
	if n := testutil.CollectAndCount(m.reg, "porthole_sockets_open"); n != 2 {
		t.Errorf("porthole_sockets_open has %d series, want one per bot (2)", n)
	}
	sockets := func() float64 {
		fams, _ := m.reg.Gather()
		for _, f := range fams {
			if f.GetName() == "porthole_sockets_open" {
				for _, s := range f.Metric {
					if s.Label[0].GetValue() == "acme" {
						return s.GetGauge().GetValue()
					}
				}
			}
		}
		return -1
	}
	if got := sockets(); got != 1 {
		t.Fatalf("sockets open = %v, want 1", got)
	}
	c.c.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for sockets() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sockets open = %v after the close, want 0", sockets())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDocsNameRealMetrics: every porthole_ metric the README's Metrics
// table and the Grafana dashboard name is one the server serves, and
// the README lists every one it serves.
func TestDocsNameRealMetrics(t *testing.T) {
	m := NewMetrics(map[string]string{"acme": "demo"}, "test", store.NewMemory(), nil)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "porthole_") {
			served[f.GetName()] = true
		}
	}
	name := regexp.MustCompile(`porthole_[a-z_]+[a-z]`)
	for _, doc := range []string{"../README.md", "../docs/grafana-dashboard.json"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		named := map[string]bool{}
		for _, n := range name.FindAllString(string(b), -1) {
			n = strings.TrimSuffix(n, "_bucket")
			named[n] = true
			if !served[n] {
				t.Errorf("%s names %s, which the server does not serve", doc, n)
			}
		}
		if doc == "../README.md" {
			for n := range served {
				if !named[n] {
					t.Errorf("the README's Metrics table lacks %s", n)
				}
			}
		}
	}
}
