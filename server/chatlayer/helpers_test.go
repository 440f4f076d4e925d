package chatlayer

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
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

// rig is an adapter wired to an emulator and a fake sink, with the
// adapter's webhook served over HTTP as the emulator's callback URL.
type rig struct {
	t       *testing.T
	emu     *chatlayertest.Server
	adapter *Adapter
	sink    *providertest.Sink
	hook    *httptest.Server
	logs    *providertest.LogBuffer
}

// newRig starts an emulator and an adapter in mode. edit may change the
// adapter's config and the emulator's options before they start.
func newRig(t *testing.T, mode string, edit func(*Config, *chatlayertest.Options)) *rig {
	t.Helper()
	opts := chatlayertest.Options{Token: testToken, VerifyToken: testVerify, RetryDelay: 5 * time.Millisecond, ReorderGap: 5 * time.Millisecond}
	cfg := Config{Mode: mode, ChannelID: chatlayertest.DefaultChannelID, BotID: chatlayertest.DefaultBotID,
		Token: testToken, VerifyToken: testVerify, ReorderWait: 300 * time.Millisecond}
	if edit != nil {
		edit(&cfg, &opts)
	}
	r := &rig{t: t, sink: providertest.NewSink(t, convA, convB), logs: &providertest.LogBuffer{}}
	opts.Log = r.logs.Logger()
	r.emu = chatlayertest.NewServer(opts)
	cfg.BaseURL = r.emu.URL
	a, err := New(cfg, "acme", r.sink, &provider.Upstream{Client: &http.Client{Timeout: 5 * time.Second}}, r.logs.Logger())
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
	providertest.Idle(r.t, r.emu)
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
func newHookAdapter(t *testing.T, sink *providertest.Sink, logs *providertest.LogBuffer, wait time.Duration) *Adapter {
	t.Helper()
	if logs == nil {
		logs = &providertest.LogBuffer{}
	}
	a, err := New(Config{ChannelID: "c", Token: testToken, VerifyToken: testVerify, ReorderWait: wait, BaseURL: "http://127.0.0.1:1"}, "acme", sink, nil, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// epochLast shows a stored AttrCounter value as "<epoch>:<last>", for
// comparisons that leave out its time; "?" when it does not parse.
func epochLast(v string) string {
	c, ok := ParseCounter(v)
	if !ok {
		return "?" + v
	}
	return strconv.FormatUint(c.Epoch, 10) + ":" + strconv.FormatUint(c.Last, 10)
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
