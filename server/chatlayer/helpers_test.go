package chatlayer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// Secrets used by the tests: distinctive, so that a scan finds any leak.
const (
	testToken  = "tokid-LEAKCHECK-1:toksecret-LEAKCHECK-2"
	testVerify = "verify-LEAKCHECK-3"
)

// Conversation ids of the tests: 32 lowercase hex characters, like ours.
const (
	convA = "0123456789abcdef0123456789abcdef"
	convB = "fedcba9876543210fedcba9876543210"
)

// delivery is one body the fake sink stored.
type delivery struct {
	conv, key string
	body      widget.Body
}

// fakeSink is a provider.Sink that behaves like the conversation
// service on the points the adapter relies on: idempotent Deliver by
// key, ErrNotFound for an unknown conversation, durable attributes.
type fakeSink struct {
	mu       sync.Mutex
	convs    map[string]bool
	attrs    map[string]string // conv + "\x00" + key
	keys     map[string]bool
	got      []delivery
	typing   []string // "conv:on" / "conv:off"
	failNext int      // Deliver calls left to fail
	calls    int      // Deliver calls
}

func newSink(convs ...string) *fakeSink {
	s := &fakeSink{convs: map[string]bool{}, attrs: map[string]string{}, keys: map[string]bool{}}
	for _, c := range convs {
		s.convs[c] = true
	}
	return s
}

func (s *fakeSink) Deliver(_ context.Context, conv, key string, bodies ...widget.Body) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if !s.convs[conv] {
		return fmt.Errorf("conversation %s: %w", conv, store.ErrNotFound)
	}
	if s.failNext > 0 {
		s.failNext--
		return errors.New("disk full")
	}
	for i, b := range bodies {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("invalid body delivered: %w", err)
		}
		k := fmt.Sprintf("%s/%d", key, i)
		if key != "" && s.keys[k] {
			continue
		}
		s.keys[k] = true
		s.got = append(s.got, delivery{conv, key, b})
	}
	return nil
}

func (s *fakeSink) Typing(conv string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "off"
	if on {
		state = "on"
	}
	s.typing = append(s.typing, conv+":"+state)
}

func (s *fakeSink) Attr(_ context.Context, conv, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.convs[conv] {
		return "", fmt.Errorf("conversation %s: %w", conv, store.ErrNotFound)
	}
	return s.attrs[conv+"\x00"+key], nil
}

func (s *fakeSink) SetAttr(_ context.Context, conv, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.convs[conv] {
		return fmt.Errorf("conversation %s: %w", conv, store.ErrNotFound)
	}
	s.attrs[conv+"\x00"+key] = value
	return nil
}

// deliveries returns what was stored for conv, in order.
func (s *fakeSink) deliveries(conv string) []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []delivery
	for _, d := range s.got {
		if d.conv == conv {
			out = append(out, d)
		}
	}
	return out
}

// texts returns the summaries of what was stored for conv.
func (s *fakeSink) texts(conv string) []string {
	var out []string
	for _, d := range s.deliveries(conv) {
		out = append(out, d.body.Summary())
	}
	return out
}

func (s *fakeSink) typings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.typing...)
}

// eventually fails the test unless cond holds within the timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logBuffer is a goroutine-safe buffer for a captured slog output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// rig is an adapter wired to an emulator and a fake sink, with the
// adapter's webhook served over HTTP as the emulator's callback URL.
type rig struct {
	t       *testing.T
	emu     *chatlayertest.Server
	adapter *Adapter
	sink    *fakeSink
	hook    *httptest.Server
	logs    *logBuffer
}

// newRig starts an emulator and an adapter in mode. edit may change the
// adapter's config and the emulator's options before they start.
func newRig(t *testing.T, mode string, edit func(*Config, *chatlayertest.Options)) *rig {
	t.Helper()
	opts := chatlayertest.Options{Token: testToken, VerifyToken: testVerify, RetryBackoff: 5 * time.Millisecond, ReorderGap: 5 * time.Millisecond}
	cfg := Config{Mode: mode, ChannelID: chatlayertest.DefaultChannelID, BotID: chatlayertest.DefaultBotID,
		Token: testToken, VerifyToken: testVerify, ReorderWait: 300 * time.Millisecond}
	if edit != nil {
		edit(&cfg, &opts)
	}
	r := &rig{t: t, sink: newSink(convA, convB), logs: &logBuffer{}}
	opts.Log = newLogger(r.logs)
	r.emu = chatlayertest.NewServer(opts)
	cfg.BaseURL = r.emu.URL
	a, err := New(cfg, "acme", r.sink, &provider.Upstream{Client: &http.Client{Timeout: 5 * time.Second}}, newLogger(r.logs))
	if err != nil {
		t.Fatal(err)
	}
	r.adapter = a
	r.hook = httptest.NewServer(http.HandlerFunc(a.ServeWebhook))
	r.emu.SetCallback(r.hook.URL + "/hooks/chatlayer/acme")
	t.Cleanup(func() {
		r.emu.Close()
		r.hook.Close()
		a.Close()
	})
	return r
}

// send hands a message to the adapter and fails the test on an error.
func (r *rig) send(m provider.Message) {
	r.t.Helper()
	if m.Conversation == "" {
		m.Conversation = convA
	}
	if err := r.adapter.Send(context.Background(), m); err != nil {
		r.t.Fatalf("Send(%s %q): %v", m.Kind, m.Text, err)
	}
}

// idle waits for the emulator's callbacks to be done.
func (r *rig) idle() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.emu.WaitIdle(ctx); err != nil {
		r.t.Fatal("emulator callbacks still running:", err)
	}
}

// callback builds a callback body for ServeWebhook tests.
func callback(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post serves one callback body to the adapter and returns the status
// and answer body.
func post(a *Adapter, body []byte) (int, string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/hooks/chatlayer/acme", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	a.ServeWebhook(rec, req)
	return rec.Code, rec.Body.String()
}

// newHookAdapter returns an adapter for webhook tests, with no upstream.
func newHookAdapter(t *testing.T, sink *fakeSink, logs *logBuffer, wait time.Duration) *Adapter {
	t.Helper()
	if logs == nil {
		logs = &logBuffer{}
	}
	a, err := New(Config{ChannelID: "c", Token: testToken, VerifyToken: testVerify, ReorderWait: wait, BaseURL: "http://127.0.0.1:1"}, "acme", sink, nil, newLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func textMsg(s string) map[string]any { return map[string]any{"text": s} }

func contains(haystack []string, needle string) bool {
	for _, h := range haystack {
		if strings.Contains(h, needle) {
			return true
		}
	}
	return false
}
