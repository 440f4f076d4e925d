package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/widget"
)

// collector is an OTLP/HTTP receiver: it takes POST /v1/traces with
// protobuf bodies (gzip or not), as a real collector does, and keeps the
// spans and the raw bodies.
type collector struct {
	*httptest.Server
	t        testing.TB
	mu       sync.Mutex
	requests int
	bodies   [][]byte
	service  []string // each request's service.name
	spans    []*tracepb.Span
}

func newCollector(t testing.TB) *collector {
	c := &collector{t: t}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		c.t.Errorf("collector got %s %s, want POST /v1/traces", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		c.t.Errorf("collector got Content-Type %q, want application/x-protobuf", ct)
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		c.t.Errorf("collector: undecodable export request: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, raw)
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.service = append(c.service, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// named returns the received spans called name.
func (c *collector) named(name string) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range c.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// attr returns span attribute key as text ("" when absent).
func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return anyText(a.Value)
		}
	}
	return ""
}

func anyText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return v.String()
}

func describe(s *tracepb.Span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s trace=%x span=%x parent=%x status=%v", s.Name, s.TraceId, s.SpanId, s.ParentSpanId, s.GetStatus().GetCode())
	for _, a := range s.Attributes {
		fmt.Fprintf(&b, " %s=%s", a.Key, anyText(a.Value))
	}
	for _, l := range s.Links {
		fmt.Fprintf(&b, " link=%x/%x", l.TraceId, l.SpanId)
	}
	return b.String()
}

// stopGracefully sends SIGTERM and waits for the process to exit: the
// exit path flushes the batched spans.
func stopGracefully(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exited with %v\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop\n%s", p.log())
	}
}

// TestTracesOfAMessage runs the real binary with tracing on against an
// in-process OTLP/HTTP collector and the ChatAIBot emulator (which
// answers by callback), and checks the spans of one message's path: the
// send and its store append, the upstream call linked to the send, the
// callback with its store append and bus publish, the socket write of
// the reply; and that no span holds the message's text or a secret.
func TestTracesOfAMessage(t *testing.T) {
	col := newCollector(t)
	p, _ := chataibotBinary(t, fmt.Sprintf(`tracing:
  endpoint: %q
  sample_ratio: 1
  service_name: porthole-e2e
`, col.URL))
	if !strings.Contains(p.log(), "tracing on") {
		t.Fatalf("no 'tracing on' in the log:\n%s", p.log())
	}
	const canary = "canary-text-4d1f9"
	c, _, err := dialBot(t, p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	c.send(&widget.Send{ID: "m1", Text: "hello " + canary})
	seq := c.ack("m1")
	if s := c.status("m1"); s.State != widget.StateDelivered {
		t.Fatalf("status = %+v", s)
	}
	reply := c.botSaid("Your first message was: hello " + canary)
	w := c.hello("", 0) // the welcome names the conversation and the visitor
	conv := w.Conversation

	// A callback refused for its secret is traced too, with its status.
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/hooks/chataibot/shop", strings.NewReader(`{"conversation_id":"x","messages":[]}`))
	req.Header.Set("Authorization", "Bearer wrong-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged callback: %d, want 401", resp.StatusCode)
	}
	c.c.CloseNow()
	stopGracefully(t, p)

	col.mu.Lock()
	all := append([]*tracepb.Span(nil), col.spans...)
	col.mu.Unlock()
	dump := func() string {
		var b strings.Builder
		for _, s := range all {
			b.WriteString(describe(s) + "\n")
		}
		return b.String()
	}
	if len(all) == 0 {
		t.Fatalf("the collector got no spans (%d requests)", col.requests)
	}
	for _, name := range col.service {
		if name != "porthole-e2e" {
			t.Errorf("service.name = %q, want porthole-e2e", name)
		}
	}

	// The send: a root, with bot, conversation, seq and client id.
	var send *tracepb.Span
	for _, s := range col.named("porthole.send") {
		if attr(s, "porthole.client_id") == "m1" {
			send = s
		}
	}
	if send == nil {
		t.Fatalf("no porthole.send span for m1:\n%s", dump())
	}
	if len(send.ParentSpanId) != 0 || attr(send, "porthole.bot") != "shop" || attr(send, "porthole.conversation") != conv ||
		attr(send, "porthole.seq") != fmt.Sprint(seq) || attr(send, "porthole.kind") != "text" {
		t.Fatalf("send span = %s, want a root with bot shop, conversation %s, seq %d", describe(send), conv, seq)
	}
	if send.Kind != tracepb.Span_SPAN_KIND_SERVER || send.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Fatalf("send span = %s, want a server span, not failed", describe(send))
	}
	childOf := func(name string, parent *tracepb.Span) []*tracepb.Span {
		var out []*tracepb.Span
		for _, s := range col.named(name) {
			if bytes.Equal(s.TraceId, parent.TraceId) && bytes.Equal(s.ParentSpanId, parent.SpanId) {
				out = append(out, s)
			}
		}
		return out
	}
	if st := childOf("porthole.store.append", send); len(st) != 1 || attr(st[0], "porthole.seq") != fmt.Sprint(seq) || attr(st[0], "porthole.duplicate") != "false" {
		t.Fatalf("store append children of the send: %d, want 1 with seq %d:\n%s", len(st), seq, dump())
	}
	if pub := childOf("porthole.bus.publish", send); len(pub) != 1 {
		t.Fatalf("bus publish children of the send: %d, want 1:\n%s", len(pub), dump())
	}

	// The upstream call: its own trace, linked to the send.
	var up *tracepb.Span
	for _, s := range col.named("porthole.upstream") {
		if attr(s, "porthole.seq") == fmt.Sprint(seq) && attr(s, "porthole.conversation") == conv {
			up = s
		}
	}
	if up == nil {
		t.Fatalf("no porthole.upstream span for seq %d:\n%s", seq, dump())
	}
	if len(up.ParentSpanId) != 0 || bytes.Equal(up.TraceId, send.TraceId) || len(up.Links) != 1 ||
		!bytes.Equal(up.Links[0].TraceId, send.TraceId) || !bytes.Equal(up.Links[0].SpanId, send.SpanId) {
		t.Fatalf("upstream span = %s, want a root linked to the send %x/%x", describe(up), send.TraceId, send.SpanId)
	}
	if attr(up, "porthole.reason") != "ok" || attr(up, "porthole.bot") != "shop" || attr(up, "porthole.attempt") != "1" || up.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Fatalf("upstream span = %s, want a client span, bot shop, attempt 1, reason ok", describe(up))
	}

	// The callback that brought the reply: a root, 200, with the reply's
	// store append and bus publish as children.
	var cb *tracepb.Span
	var refused *tracepb.Span
	for _, s := range col.named("porthole.callback") {
		if attr(s, "porthole.bot") != "shop" || attr(s, "porthole.provider") != "chataibot" || len(s.ParentSpanId) != 0 {
			t.Fatalf("callback span = %s, want a root with bot shop, provider chataibot", describe(s))
		}
		switch attr(s, "http.response.status_code") {
		case "200":
			for _, a := range childOf("porthole.store.append", s) {
				if attr(a, "porthole.seq") == fmt.Sprint(reply.Seq) {
					cb = s
				}
			}
		case "401":
			refused = s
		}
	}
	if cb == nil {
		t.Fatalf("no porthole.callback span (200) with the store append of the reply (seq %d):\n%s", reply.Seq, dump())
	}
	if pub := childOf("porthole.bus.publish", cb); len(pub) == 0 {
		t.Fatalf("the callback span has no bus publish child:\n%s", dump())
	}
	if refused == nil || attr(refused, "porthole.reason") != "http_401" || len(childOf("porthole.store.append", refused)) != 0 {
		t.Fatalf("want a callback span with status 401, reason http_401 and no store append:\n%s", dump())
	}

	// The reply's write to the socket.
	wrote := false
	for _, s := range col.named("porthole.socket.write") {
		if attr(s, "porthole.seq") == fmt.Sprint(reply.Seq) && attr(s, "porthole.from") == "bot" && attr(s, "porthole.bot") != "" {
			wrote = true
		}
	}
	if !wrote {
		t.Fatalf("no porthole.socket.write span for the reply (seq %d):\n%s", reply.Seq, dump())
	}

	// Neither the text (the visitor's, nor the bot's echo of it), nor a
	// token or secret, is in anything exported.
	for _, raw := range col.bodies {
		for _, s := range []string{canary, w.Visitor, chataibottest.DefaultToken, chataibotHookSecret, identitySecret} {
			if bytes.Contains(raw, []byte(s)) {
				t.Fatalf("an export request holds %q", s)
			}
		}
	}
	for _, s := range all {
		for _, a := range s.Attributes {
			if strings.Contains(anyText(a.Value), canary) {
				t.Fatalf("span attribute %s of %s holds the message text", a.Key, s.Name)
			}
		}
	}
}

// TestTracingOff runs a conversation with the demo bot and no tracing
// block, with OTEL_EXPORTER_OTLP_ENDPOINT naming a collector: nothing is
// sent to it, not even at exit. Tracing is on only by the config.
func TestTracingOff(t *testing.T) {
	col := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte("bots:\n  - id: demo\n    provider: demo\n    origins: [\"self\"]\n"), 0o600)
	p := start(t, data, "--config", cfg)
	c, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	c.send(&widget.Send{ID: "m1", Text: "hello"})
	c.ack("m1")
	if len(c.botTurn()) == 0 {
		t.Fatal("the demo bot did not answer")
	}
	time.Sleep(300 * time.Millisecond) // six schedule delays, had a batcher been running
	c.c.CloseNow()
	stopGracefully(t, p)
	col.mu.Lock()
	n := col.requests
	col.mu.Unlock()
	if n != 0 {
		t.Fatalf("the collector got %d requests with tracing off", n)
	}
	if strings.Contains(p.log(), "tracing on") {
		t.Fatalf("the log says tracing on with no tracing block:\n%s", p.log())
	}
}
