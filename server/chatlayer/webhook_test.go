package chatlayer

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider/providertest"
)

func TestWebhookVerifyToken(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, time.Second)
	for name, vt := range map[string]any{
		"missing":     nil,
		"empty":       "",
		"wrong":       "verify-LEAKCHECK-4",
		"prefix":      testVerify[:len(testVerify)-1],
		"longer":      testVerify + "x",
		"not string":  42,
		"wrong case":  strings.ToUpper(testVerify),
		"with spaces": " " + testVerify + " ",
	} {
		fields := map[string]any{"senderId": convA, "message": textMsg("hi"), "messageCounter": 1}
		if vt != nil {
			fields["verifyToken"] = vt
		}
		code, body := post(a, callback(t, fields))
		if code != http.StatusUnauthorized {
			t.Errorf("%s verify token: status %d, want 401", name, code)
		}
		if strings.Contains(body, testVerify) || strings.Contains(body, "LEAKCHECK") {
			t.Errorf("%s verify token: the answer shows a token: %q", name, body)
		}
	}
	if got := sink.Deliveries(convA); len(got) != 0 {
		t.Fatalf("refused callbacks stored %d bodies", len(got))
	}
	if sink.Calls() != 0 {
		t.Fatalf("refused callbacks reached Deliver %d times", sink.Calls())
	}
	code, _ := post(a, callback(t, map[string]any{"senderId": convA, "message": textMsg("hi"), "messageCounter": 1, "verifyToken": testVerify}))
	if code != http.StatusOK || len(sink.Deliveries(convA)) != 1 {
		t.Fatalf("the right verify token: status %d, %d stored; want 200 and 1", code, len(sink.Deliveries(convA)))
	}
}

func TestWebhookBadRequests(t *testing.T) {
	a := newHookAdapter(t, providertest.NewSink(t, convA), nil, time.Second)
	if code, _ := post(a, []byte(`not json`)); code != http.StatusBadRequest {
		t.Errorf("invalid JSON: %d, want 400", code)
	}
	if code, _ := post(a, []byte(`[1,2]`)); code != http.StatusBadRequest {
		t.Errorf("JSON array: %d, want 400", code)
	}
	big := callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg(strings.Repeat("x", MaxCallback))})
	if code, _ := post(a, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", code)
	}
	rec := httptest.NewRecorder()
	a.ServeWebhook(rec, httptest.NewRequest(http.MethodGet, "/hooks/chatlayer/acme", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", rec.Code)
	}
}

func TestWebhookRouting(t *testing.T) {
	cases := []struct {
		name   string
		fields map[string]any
		want   string // conversation expected to receive it; "" for none
	}{
		{"senderId", map[string]any{"senderId": convA}, convA},
		{"recipient.id", map[string]any{"recipient": map[string]any{"id": convA}}, convA},
		{"sender.id", map[string]any{"sender": map[string]any{"id": convA}}, convA},
		{"senderId wins over recipient.id", map[string]any{"senderId": convA, "recipient": map[string]any{"id": convB}}, convA},
		{"recipient.id wins over sender.id", map[string]any{"recipient": map[string]any{"id": convB}, "sender": map[string]any{"id": convA}}, convB},
		{"empty senderId falls through", map[string]any{"senderId": "", "sender": map[string]any{"id": convB}}, convB},
		{"prefixed id", map[string]any{"recipient": map[string]any{"id": "default-" + convA}}, convA},
		{"unknown conversation", map[string]any{"senderId": "00000000000000000000000000000000"}, ""},
		{"malformed id", map[string]any{"senderId": "a7355930-fa92-11e7-8308-2f056e75d1ee"}, ""},
		{"upper-case hex", map[string]any{"senderId": strings.ToUpper(convA)}, ""},
		{"no id at all", map[string]any{}, ""},
		{"recipient not an object", map[string]any{"recipient": "x"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, counted := range []bool{true, false} {
				sink := providertest.NewSink(t, convA, convB)
				a := newHookAdapter(t, sink, nil, time.Second)
				tc.fields["verifyToken"] = testVerify
				tc.fields["message"] = textMsg("routed")
				if counted {
					tc.fields["messageCounter"] = 1
				} else {
					delete(tc.fields, "messageCounter")
				}
				code, _ := post(a, callback(t, tc.fields))
				if code != http.StatusOK {
					t.Fatalf("status %d, want 200 (counted %v)", code, counted)
				}
				for _, c := range []string{convA, convB} {
					n := len(sink.Deliveries(c))
					if want := map[bool]int{true: 1, false: 0}[c == tc.want]; n != want {
						t.Errorf("conversation %s got %d bodies, want %d (counted %v)", c[:4], n, want, counted)
					}
				}
			}
		})
	}
}

func TestWebhookDuplicateStoredOnce(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, time.Second)
	counted := callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("once"), "messageCounter": 1})
	plain := callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("no counter")})
	for range 3 {
		for _, b := range [][]byte{counted, plain} {
			if code, _ := post(a, b); code != http.StatusOK {
				t.Fatalf("duplicate answered %d, want 200", code)
			}
		}
	}
	got := sink.Texts(convA)
	if len(got) != 2 || got[0] != "once" || got[1] != "no counter" {
		t.Fatalf("stored %q, want each message once", got)
	}
	keys := []string{sink.Deliveries(convA)[0].Key, sink.Deliveries(convA)[1].Key}
	if keys[0] != "chatlayer/"+convA+"/1" {
		t.Errorf("key of a counted callback = %q", keys[0])
	}
	if !strings.HasPrefix(keys[1], "chatlayer/"+convA+"/") || len(keys[1]) != len("chatlayer/"+convA+"/")+16 {
		t.Errorf("key of an uncounted callback = %q, want the conversation and 16 hex characters of a hash", keys[1])
	}
}

func TestWebhookReorders(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, 2*time.Second)
	var wg sync.WaitGroup
	start := time.Now()
	for i, n := range []int{4, 3, 2, 1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 15 * time.Millisecond) // arrive 4, 3, 2, 1
			b := callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg(string(rune('0' + n))), "messageCounter": n})
			if code, _ := post(a, b); code != http.StatusOK {
				t.Errorf("callback %d: %d", n, code)
			}
		}()
	}
	wg.Wait()
	if got := strings.Join(sink.Texts(convA), ""); got != "1234" {
		t.Fatalf("delivered %q, want 1234", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("reordering took %s: the held callbacks should go as soon as the gap fills", d)
	}
	if v, _ := sink.Attr(t.Context(), convA, AttrCounter); epochLast(v) != "0:4" {
		t.Errorf("stored counter %q, want 4", v)
	}
}

func TestWebhookGapIsSkippedAfterTheWait(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	wait := 150 * time.Millisecond
	a := newHookAdapter(t, sink, nil, wait)
	// 1 arrives; 2 is lost; 4 then 3 arrive: they wait for 2, then go in
	// order; 2 shows up late and is still delivered.
	post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("1"), "messageCounter": 1}))
	var wg sync.WaitGroup
	start := time.Now()
	for i, n := range []int{4, 3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg(string(rune('0' + n))), "messageCounter": n}))
		}()
	}
	wg.Wait()
	if d := time.Since(start); d < wait {
		t.Errorf("held callbacks went after %s, before the %s wait", d, wait)
	}
	if got := strings.Join(sink.Texts(convA), ""); got != "134" {
		t.Fatalf("delivered %q, want 134", got)
	}
	post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("2"), "messageCounter": 2}))
	if got := strings.Join(sink.Texts(convA), ""); got != "1342" {
		t.Fatalf("late callback: delivered %q, want 1342 (never lost)", got)
	}
	if v, _ := sink.Attr(t.Context(), convA, AttrCounter); epochLast(v) != "0:4" {
		t.Errorf("stored counter %q, want 4: a late callback must not lower it", v)
	}
}

func TestWebhookCounterSurvivesRestart(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, 5*time.Second)
	for n := 1; n <= 3; n++ {
		post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("m"), "messageCounter": n}))
	}
	a.Close()
	b := newHookAdapter(t, sink, nil, 5*time.Second) // a restarted server, same store
	start := time.Now()
	code, _ := post(b, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("after restart"), "messageCounter": 4}))
	if code != http.StatusOK || time.Since(start) > time.Second {
		t.Fatalf("counter 4 after a restart: %d after %s; want 200 at once (3 was stored)", code, time.Since(start))
	}
	if got := sink.Texts(convA); len(got) != 4 || got[3] != "after restart" {
		t.Fatalf("delivered %q", got)
	}
}

func TestWebhookEventSkipped(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, 5*time.Second)
	event := map[string]any{"type": "event", "name": "something", "data": map[string]any{"x": 1}}
	code, _ := post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": event, "messageCounter": 1}))
	if code != http.StatusOK {
		t.Fatalf("event: %d, want 200", code)
	}
	if got := sink.Deliveries(convA); len(got) != 0 {
		t.Fatalf("event stored %v", got)
	}
	// The event took its turn: counter 2 is not held waiting for it.
	start := time.Now()
	post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("after the event"), "messageCounter": 2}))
	if time.Since(start) > time.Second || len(sink.Deliveries(convA)) != 1 {
		t.Fatalf("the message after an event waited %s or was not stored", time.Since(start))
	}
	// An event without a counter is skipped too.
	code, _ = post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": event}))
	if code != http.StatusOK || len(sink.Deliveries(convA)) != 1 {
		t.Fatalf("uncounted event: %d, %d stored", code, len(sink.Deliveries(convA)))
	}
}

func TestWebhookNothingToShowStillTakesItsTurn(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, 5*time.Second)
	bad := map[string]any{"attachment": map[string]any{"type": "image", "payload": map[string]any{"url": "javascript:alert(1)"}}}
	if code, _ := post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": bad, "messageCounter": 1})); code != http.StatusOK {
		t.Fatalf("undisplayable message: %d, want 200 (retrying cannot help)", code)
	}
	start := time.Now()
	post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("next"), "messageCounter": 2}))
	if time.Since(start) > time.Second || len(sink.Deliveries(convA)) != 1 {
		t.Fatalf("the message after an undisplayable one waited %s or was lost", time.Since(start))
	}
}

func TestWebhookStoreFailureAnswers500ThenRetrySucceeds(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, time.Second)
	for _, counted := range []bool{true, false} {
		fields := map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("retry me")}
		if counted {
			fields["messageCounter"] = 1
		} else {
			fields["message"] = textMsg("retry me too")
		}
		sink.FailDeliver(1)
		b := callback(t, fields)
		if code, body := post(a, b); code != http.StatusInternalServerError || strings.Contains(body, providertest.ErrInjected.Error()) {
			t.Fatalf("failed store: %d %q, want 500 without internals", code, body)
		}
		if code, _ := post(a, b); code != http.StatusOK {
			t.Fatalf("retry: %d, want 200", code)
		}
	}
	if got := sink.Texts(convA); len(got) != 2 {
		t.Fatalf("stored %q, want both once", got)
	}
}

func TestWebhookCloseReleasesHeldCallbacks(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, 10*time.Second)
	done := make(chan int)
	go func() {
		code, _ := post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("held"), "messageCounter": 5}))
		done <- code
	}()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Fatalf("held callback at Close: %d, want 503 so that Chatlayer retries", code)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not release the held callback")
	}
	if code, _ := post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("late")})); code != http.StatusServiceUnavailable {
		t.Fatalf("callback after Close: %d, want 503", code)
	}
}

func TestWebhookClientGoneWhileHeld(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, 10*time.Second)
	req := httptest.NewRequest(http.MethodPost, "/hooks/chatlayer/acme", bytes.NewReader(callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("held"), "messageCounter": 3})))
	ctx, cancel := context.WithCancel(context.Background())
	req = req.WithContext(ctx)
	rec := httptest.NewRecorder()
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	a.ServeWebhook(rec, req)
	if rec.Code != http.StatusServiceUnavailable || len(sink.Deliveries(convA)) != 0 {
		t.Fatalf("abandoned held callback: %d, %d stored; want 503 and nothing (Chatlayer retries)", rec.Code, len(sink.Deliveries(convA)))
	}
	// The lane is free again: 1 goes through at once.
	start := time.Now()
	post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("one"), "messageCounter": 1}))
	if time.Since(start) > time.Second || len(sink.Deliveries(convA)) != 1 {
		t.Fatal("a callback after an abandoned one was held or lost")
	}
}

// TestWebhookHeldCallbackNotStuckBehindAFailure: once the wait is over,
// a held callback goes even when the one before it fails to be stored.
func TestWebhookHeldCallbackNotStuckBehindAFailure(t *testing.T) {
	sink := providertest.NewSink(t, convA)
	a := newHookAdapter(t, sink, nil, 100*time.Millisecond)
	sink.FailDeliver(1)
	codes := make(chan int, 2)
	go func() {
		code, _ := post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("3"), "messageCounter": 3}))
		codes <- code
	}()
	time.Sleep(20 * time.Millisecond)
	go func() {
		code, _ := post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("2"), "messageCounter": 2}))
		codes <- code
	}()
	got := map[int]int{}
	for range 2 {
		select {
		case c := <-codes:
			got[c]++
		case <-time.After(3 * time.Second):
			t.Fatal("a held callback is stuck behind a failed one")
		}
	}
	if got[500] != 1 || got[200] != 1 {
		t.Fatalf("answers %v, want one 500 (the failed store) and one 200", got)
	}
	if texts := sink.Texts(convA); len(texts) != 1 || texts[0] != "3" {
		t.Fatalf("stored %q", texts)
	}
}
