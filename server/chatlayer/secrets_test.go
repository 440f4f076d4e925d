package chatlayer

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// TestNoSecretInLogsErrorsOrAnswers drives the adapter through its
// successes and every failure path with logging at debug level, and scans
// the logs, the errors and the webhook's answers for the token and the
// verify token (or any part of them).
func TestNoSecretInLogsErrorsOrAnswers(t *testing.T) {
	var seen []string // errors and answers
	note := func(err error) {
		if err != nil {
			seen = append(seen, err.Error())
		}
	}
	var logs []*providertest.LogBuffer

	for _, mode := range []string{ModeV1, ModeLegacy} {
		r := newRig(t, mode, nil)
		logs = append(logs, r.logs)
		ctx := context.Background()
		m := provider.Message{Conversation: convA, Kind: provider.Text, Text: "all", Session: []byte(`{"plan":"pro"}`)}
		note(r.adapter.Send(ctx, provider.Message{Conversation: convA, Kind: provider.Start}))
		note(r.adapter.Send(ctx, m))
		r.emu.FailNext(1, 429, http.Header{"Retry-After": {"1"}})
		note(r.adapter.Send(ctx, m))
		r.emu.FailNext(1, 503, nil)
		note(r.adapter.Send(ctx, m))
		r.emu.FailNext(1, 400, nil)
		note(r.adapter.Send(ctx, m))
		note(r.adapter.Send(ctx, provider.Message{Conversation: "bad", Kind: provider.Text, Text: "x"}))
		r.sink.FailDeliver(1)
		note(r.adapter.Send(ctx, provider.Message{Conversation: convA, Kind: provider.Text, Text: "text"}))
		r.idle()
		// The history: its failures, and a reconciliation (the legacy
		// one carries the token in its query).
		r.emu.FailNext(1, 500, nil)
		note(r.adapter.Reconcile(ctx, convA))
		r.emu.FailNext(1, 401, nil)
		note(r.adapter.Reconcile(ctx, convA))
		note(r.adapter.Reconcile(ctx, convA))

		for _, body := range [][]byte{
			callback(t, map[string]any{"senderId": convA, "verifyToken": "verify-LEAKCHECK-x", "message": textMsg("forged")}),
			callback(t, map[string]any{"senderId": convA, "message": textMsg("no token")}),
			callback(t, map[string]any{"senderId": "nobody", "verifyToken": testVerify, "message": textMsg("x")}),
			callback(t, map[string]any{"senderId": "00000000000000000000000000000000", "verifyToken": testVerify, "message": textMsg("x")}),
			callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": map[string]any{"attachment": "broken"}}),
			[]byte(`{"verifyToken":"` + testVerify + `",`),
		} {
			_, answer := post(r.adapter, body)
			seen = append(seen, answer)
		}
	}

	// Wrong credentials on the upstream side.
	bad := newRig(t, ModeV1, func(c *Config, _ *chatlayertest.Options) { c.Token = "tokid-LEAKCHECK-1:toksecret-LEAKCHECK-9" })
	logs = append(logs, bad.logs)
	note(bad.adapter.Send(context.Background(), provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"}))
	badLegacy := newRig(t, ModeLegacy, func(_ *Config, o *chatlayertest.Options) { o.VerifyToken = "verify-LEAKCHECK-other" })
	logs = append(logs, badLegacy.logs)
	note(badLegacy.adapter.Send(context.Background(), provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"}))
	// An unreachable upstream.
	down, err := New(Config{ChannelID: "c", Token: testToken, VerifyToken: testVerify, BaseURL: "http://127.0.0.1:1"}, "acme", providertest.NewSink(t, convA), &provider.Upstream{Client: &http.Client{Timeout: time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	note(down.Send(context.Background(), provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"}))
	downLegacy, err := New(Config{Mode: ModeLegacy, BotID: "b", Token: testToken, VerifyToken: testVerify, BaseURL: "http://127.0.0.1:1"}, "acme", providertest.NewSink(t, convA), &provider.Upstream{Client: &http.Client{Timeout: time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	note(downLegacy.Reconcile(context.Background(), convA))
	// Invalid configurations.
	_, err = New(Config{Mode: "v9", Token: testToken + "\n", VerifyToken: testVerify + "\n"}, "acme", providertest.NewSink(t), nil, nil)
	note(err)

	if len(seen) < 20 {
		t.Fatalf("only %d errors and answers collected", len(seen))
	}
	var all strings.Builder
	for _, s := range seen {
		all.WriteString(s + "\n")
	}
	for _, l := range logs {
		all.WriteString(l.String())
	}
	if !strings.Contains(all.String(), "verify token") || !strings.Contains(all.String(), "upstream") {
		t.Fatal("the scan did not see the failures it is meant to cover")
	}
	for _, secret := range []string{testToken, testVerify, "LEAKCHECK", "toksecret", "verify-LEAKCHECK"} {
		if i := strings.Index(all.String(), secret); i >= 0 {
			s := all.String()
			t.Fatalf("secret %q appears: ...%s...", secret, s[max(0, i-200):min(len(s), i+100)])
		}
	}
}
