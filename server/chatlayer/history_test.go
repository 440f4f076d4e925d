package chatlayer

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
)

// historyCalls counts the history requests the emulator answered.
func historyCalls(r *rig) int {
	n := 0
	for _, q := range r.emu.Requests() {
		if q.Kind == "history" {
			n++
		}
	}
	return n
}

// introCalls counts the introMessages the emulator accepted for conv.
func introCalls(r *rig, conv string) int {
	n := 0
	for _, q := range r.emu.Requests() {
		if q.Kind == "intro" && q.UserID == conv && q.Status == 200 {
			n++
		}
	}
	return n
}

// summaries are the stored bodies' summaries of conv, in order.
func summaries(r *rig, conv string) []string {
	var out []string
	for _, d := range r.sink.Deliveries(conv) {
		out = append(out, d.Body.Summary())
	}
	return out
}

// produced is what the bot produced for conv in its current session, in
// order, as the adapter shows it.
func produced(t *testing.T, r *rig, conv string) []string {
	t.Helper()
	var out []string
	for _, m := range r.emu.History(conv) {
		bodies, _ := Normalize(m)
		for _, b := range bodies {
			out = append(out, b.Summary())
		}
	}
	return out
}

// TestReconcileRecoversWhatCallbacksLost: Porthole is unreachable while
// the bot answers (every callback fails, Chatlayer gives up). One
// reconciliation stores every reply in order; a second finds nothing new
// and calls nothing twice; a late copy of a callback is a duplicate.
func TestReconcileRecoversWhatCallbacksLost(t *testing.T) {
	for _, mode := range []string{ModeV1, ModeLegacy} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, nil)
			r.emu.SetCallback("http://127.0.0.1:1/hooks/chatlayer/acme") // nobody there
			r.send(provider.Message{Kind: provider.Text, Text: "hi"})
			r.send(provider.Message{Kind: provider.Text, Text: "media"})
			r.send(provider.Message{Kind: provider.Text, Text: "event"})
			r.idle()
			if n := len(r.sink.Deliveries(convA)); n != 0 {
				t.Fatalf("%d replies stored with every callback failing", n)
			}
			want := produced(t, r, convA)
			if err := r.adapter.Reconcile(context.Background(), convA); err != nil {
				t.Fatal(err)
			}
			got := summaries(r, convA)
			if strings.Join(got, "|") != strings.Join(want, "|") || len(got) < 6 {
				t.Fatalf("reconciled %q, the bot said %q", got, want)
			}
			if s := storedState(t, r.sink, convA); s != "0:"+strconv.FormatUint(r.emu.Produced(convA), 10) {
				t.Fatalf("counter %s after the reconciliation, want 0:%d", s, r.emu.Produced(convA))
			}
			// Again: nothing new, nothing stored twice.
			if err := r.adapter.Reconcile(context.Background(), convA); err != nil {
				t.Fatal(err)
			}
			if n := len(r.sink.Deliveries(convA)); n != len(want) {
				t.Fatalf("a second reconciliation stored %d more", n-len(want))
			}
			// A callback that comes after all (a late retry) stores nothing.
			code, _ := post(r.adapter, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "messageCounter": 1, "message": textMsg("You said: hi")}))
			if code != 200 || len(r.sink.Deliveries(convA)) != len(want) {
				t.Fatalf("late callback: %d, %d stored", code, len(r.sink.Deliveries(convA)))
			}
			// The next reply goes on after the reconciled ones.
			r.emu.SetCallback(r.hook.URL + "/hooks/chatlayer/acme")
			r.send(provider.Message{Kind: provider.Text, Text: "after"})
			r.idle()
			if got := summaries(r, convA); got[len(got)-1] != "You said: after" || len(got) != len(want)+1 {
				t.Fatalf("after the reconciliation: %q", got)
			}
		})
	}
}

// TestReconcileSeesANewSession: the session expired, the visitor wrote
// again, and the new session's callbacks were all lost. The history is
// of the new session: its replies are stored in a new counter epoch,
// not taken for copies of the old session's first ones.
func TestReconcileSeesANewSession(t *testing.T) {
	const expiry = 300 * time.Millisecond
	r := newRig(t, ModeV1, func(c *Config, o *chatlayertest.Options) {
		c.ReorderWait, c.RetryWindow = 20*time.Millisecond, 100*time.Millisecond
		o.SessionExpiry = expiry
	})
	r.send(provider.Message{Kind: provider.Text, Text: "one"})
	r.send(provider.Message{Kind: provider.Text, Text: "two"})
	r.idle()
	before := len(r.sink.Deliveries(convA))
	time.Sleep(expiry + 100*time.Millisecond)
	r.emu.SetCallback("http://127.0.0.1:1/none")
	r.send(provider.Message{Kind: provider.Text, Text: "three"})
	r.send(provider.Message{Kind: provider.Text, Text: "four"})
	r.idle()
	if r.emu.Sessions(convA) != 2 || len(r.sink.Deliveries(convA)) != before {
		t.Fatalf("%d sessions, %d stored; want 2 sessions and nothing new", r.emu.Sessions(convA), len(r.sink.Deliveries(convA)))
	}
	if err := r.adapter.Reconcile(context.Background(), convA); err != nil {
		t.Fatal(err)
	}
	got := summaries(r, convA)
	if strings.Join(got, "|") != "You said: one|You said: two|You said: three|You said: four" {
		t.Fatalf("stored %q", got)
	}
	if s := storedState(t, r.sink, convA); s != "1:2" {
		t.Fatalf("counter %s, want epoch 1 at 2", s)
	}
}

// TestReconcileHistoryBehindChangesNothing: a history that has fewer bot
// messages than the callbacks delivered, none of them late, is behind
// the callbacks (or of a session that is not ours): nothing is stored
// and the counter stays.
func TestReconcileHistoryBehindChangesNothing(t *testing.T) {
	r := newRig(t, ModeV1, nil)
	r.send(provider.Message{Kind: provider.Text, Text: "hi"})
	r.idle()
	for c := 2; c <= 4; c++ { // callbacks the history does not have
		post(r.adapter, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "messageCounter": c, "message": textMsg("extra " + strconv.Itoa(c))}))
	}
	if err := r.adapter.Reconcile(context.Background(), convA); err != nil {
		t.Fatal(err)
	}
	if got := summaries(r, convA); len(got) != 4 {
		t.Fatalf("stored %q", got)
	}
	if s := storedState(t, r.sink, convA); s != "0:4" {
		t.Fatalf("counter %s, want 0:4", s)
	}
}

// TestRepeatedStartNotSentTwice: a start that may have reached Chatlayer
// before (provider.Message.Again: a process died between the hand-over
// and its record) is not sent again when the history shows the
// conversation; its greeting, whose callbacks went to the dead process,
// is recovered. One that never reached it is sent.
func TestRepeatedStartNotSentTwice(t *testing.T) {
	r := newRig(t, ModeV1, nil)
	r.emu.SetCallback("http://127.0.0.1:1/none") // the process that sent it is gone
	r.send(provider.Message{Kind: provider.Start})
	r.idle()
	r.emu.SetCallback(r.hook.URL + "/hooks/chatlayer/acme")
	r.send(provider.Message{Kind: provider.Start, Again: true})
	r.idle()
	if n := introCalls(r, convA); n != 1 {
		t.Fatalf("%d introMessages accepted, want 1", n)
	}
	if got, want := summaries(r, convA), produced(t, r, convA); len(got) == 0 || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("greeting stored %q, the bot said %q", got, want)
	}
	r.send(provider.Message{Conversation: convB, Kind: provider.Start, Again: true})
	r.idle()
	if n := introCalls(r, convB); n != 1 || len(r.sink.Deliveries(convB)) == 0 {
		t.Fatalf("a start that never reached Chatlayer: %d introMessages, %d stored", n, len(r.sink.Deliveries(convB)))
	}
}

// TestReconcileAfterOutage: Chatlayer becomes unreachable after it took
// a message whose replies' callbacks then fail; the first message that
// goes through after the outage reconciles, in the background, the
// conversations active before it.
func TestReconcileAfterOutage(t *testing.T) {
	r := newRig(t, ModeV1, nil)
	r.emu.SetCallback("http://127.0.0.1:1/none")
	r.send(provider.Message{Kind: provider.Text, Text: "media"})
	r.idle()
	r.emu.SetCallback(r.hook.URL + "/hooks/chatlayer/acme")
	r.emu.FailNext(1, http.StatusServiceUnavailable, nil)
	if err := r.adapter.Send(context.Background(), provider.Message{Conversation: convB, Kind: provider.Text, Text: "hi"}); err == nil {
		t.Fatal("the injected 503 did not fail the send")
	}
	if len(r.sink.Deliveries(convA)) != 0 || historyCalls(r) != 0 {
		t.Fatal("something was reconciled during the outage")
	}
	r.send(provider.Message{Conversation: convB, Kind: provider.Text, Text: "hi"})
	want := produced(t, r, convA)
	eventually(t, "the replies lost in the outage", 5*time.Second, func() bool { return len(r.sink.Deliveries(convA)) == len(want) })
	if got := summaries(r, convA); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("reconciled %q, the bot said %q", got, want)
	}
}

// TestHistoryBudget: a gap's reconciliation never waits for the bot's
// history budget (the callback's request is open): with the budget used
// up, the gap is skipped as without a history, and a later
// reconciliation recovers it. A 429 from the history pauses its calls
// for as long as Chatlayer asked.
func TestHistoryBudget(t *testing.T) {
	r := newRig(t, ModeV1, func(c *Config, _ *chatlayertest.Options) {
		c.ReorderWait = 50 * time.Millisecond
		c.HistoryPerMinute = 1
	})
	r.adapter.histLimit.Allow() // the one call of the burst
	r.emu.DropCallbacks(1)
	start := time.Now()
	r.send(provider.Message{Kind: provider.Text, Text: "media"})
	r.idle()
	if got := len(r.sink.Deliveries(convA)); got != 3 || historyCalls(r) != 0 {
		t.Fatalf("stored %d with the budget used up (%d history calls), want the gap skipped", got, historyCalls(r))
	}
	if waited := time.Since(start); waited > gapWait {
		t.Fatalf("the held callbacks waited %s for a budget that comes in a minute", waited)
	}
	if !strings.Contains(r.logs.String(), "history_per_minute") {
		t.Fatal("the skipped reconciliation was not logged with its reason")
	}
	if v, _ := r.sink.Attr(context.Background(), convA, AttrHistory); v != "0:0" {
		t.Fatalf("skipped gap remembered as %q, want 0:0", v)
	}
	// The next reconciliation (the one queued for later waits a minute
	// for its token) shows the lost message, after the others.
	r.adapter.histLimit.SetLimit(rate.Inf)
	if err := r.adapter.Reconcile(context.Background(), convA); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range r.sink.Deliveries(convA) {
		got = append(got, d.Body.Media)
	}
	if strings.Join(got, " ") != "video audio file image" {
		t.Fatalf("stored %v", got)
	}
	eventually(t, "the mark cleared", 5*time.Second, func() bool {
		v, _ := r.sink.Attr(context.Background(), convA, AttrHistory)
		return v == ""
	})

	r2 := newRig(t, ModeLegacy, nil)
	r2.emu.SetCallback("http://127.0.0.1:1/none")
	r2.send(provider.Message{Kind: provider.Text, Text: "hi"})
	r2.idle()
	r2.emu.FailNext(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	if err := r2.adapter.Reconcile(context.Background(), convA); err == nil {
		t.Fatal("the 429 did not fail the reconciliation")
	}
	start = time.Now()
	if err := r2.adapter.Reconcile(context.Background(), convA); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 800*time.Millisecond {
		t.Fatalf("the next history call went after %s, Chatlayer asked for 1s", waited)
	}
	if len(r2.sink.Deliveries(convA)) == 0 {
		t.Fatal("nothing reconciled after the pause")
	}
}

// TestHistoryOff: with history: false, or without the bot id it needs,
// nothing calls the history.
func TestHistoryOff(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"history false": func(c *Config) { c.History = new(bool) },
		"no bot id":     func(c *Config) { c.BotID = "" },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, ModeV1, func(c *Config, _ *chatlayertest.Options) { edit(c); c.ReorderWait = 20 * time.Millisecond })
			r.emu.DropCallbacks(1)
			r.send(provider.Message{Kind: provider.Text, Text: "media"})
			r.send(provider.Message{Kind: provider.Start, Again: true})
			r.idle()
			if err := r.adapter.Reconcile(context.Background(), convA); err != nil {
				t.Fatal(err)
			}
			if n := historyCalls(r); n != 0 {
				t.Fatalf("%d history calls", n)
			}
		})
	}
}

// TestHistoryShapes: the history's order and times as assumption 9
// reads them.
func TestHistoryShapes(t *testing.T) {
	at := func(s string) historyMessage {
		return historyMessage{at: historyTime(s), message: json.RawMessage(`{"text":"` + s + `"}`)}
	}
	names := func(h []historyMessage) string {
		var out []string
		for _, m := range h {
			out = append(out, string(m.message))
		}
		return strings.Join(out, ",")
	}
	newestFirst := []historyMessage{at("2026-01-01T10:00:03Z"), at("2026-01-01T10:00:02.5Z"), at("2026-01-01T10:00:01Z")}
	if got := names(ordered(newestFirst)); !strings.HasPrefix(got, `{"text":"2026-01-01T10:00:01Z"}`) {
		t.Fatalf("newest first not turned round: %s", got)
	}
	unknown := []historyMessage{at("b"), at("a")}
	if got := names(ordered(unknown)); got != `{"text":"b"},{"text":"a"}` {
		t.Fatalf("times unknown: %s, want the platform's order", got)
	}
	if !isBot(" Bot") || isBot("user") {
		t.Fatal("actor")
	}
}

// TestPushSession: with session_dialogstate, a provider.Session message
// saves the session data (and the signed-in user's contact, never an
// identity key from the page) through POST /api/webview in both modes,
// triggering that dialog state and showing the visitor nothing; the
// bot's next answer knows it. Without the setting nothing is pushed.
func TestPushSession(t *testing.T) {
	for _, mode := range []string{ModeV1, ModeLegacy} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, func(c *Config, _ *chatlayertest.Options) { c.SessionDialogstate = "porthole-session" })
			if !r.adapter.PushesSession() {
				t.Fatal("PushesSession is false with session_dialogstate set")
			}
			r.send(provider.Message{Kind: provider.Session, Session: []byte(`{"plan":"gold","email":"forged@example.com"}`),
				Contact: &provider.Contact{User: "u-7", Email: "ann@example.com"}})
			r.idle()
			got := r.emu.SessionData(convA)
			if string(got["plan"]) != `"gold"` || string(got["email"]) != `"ann@example.com"` || string(got["externalId"]) != `"u-7"` {
				t.Fatalf("Chatlayer's session data %v", got)
			}
			if ds := r.emu.Dialogstates(convA); len(ds) != 1 || ds[0] != "porthole-session" {
				t.Fatalf("dialog states %v", ds)
			}
			if n := len(r.sink.Deliveries(convA)); n != 0 {
				t.Fatalf("the visitor was shown %d messages for a session update", n)
			}
			r.send(provider.Message{Kind: provider.Text, Text: "hi"})
			r.idle()
			if got := summaries(r, convA); !contains(got, "Your plan is gold.") {
				t.Fatalf("the bot's answer after the push: %q", got)
			}
		})
	}
	r := newRig(t, ModeV1, nil)
	if r.adapter.PushesSession() {
		t.Fatal("PushesSession without session_dialogstate")
	}
	if err := r.adapter.Send(context.Background(), provider.Message{Conversation: convA, Kind: provider.Session, Session: []byte(`{"a":1}`)}); err == nil {
		t.Fatal("a push without session_dialogstate was not refused")
	}
}
