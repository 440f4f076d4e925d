package chatlayer

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
	"github.com/porthole-chat/porthole/widget"
)

const clickJSON = `{"title":"go to button title","caption":"go to button title","type":"button","originalTitle":"go to button title","nextDialogstateId":"eedeb3df","parameters":[{"order":0,"key":"location","value":"meulebeke","__typename":"Parameter"}]}`

// TestAdapterV1RequestsAccepted sends every kind of message in mode v1
// and checks that the emulator accepted each, in the documented shape.
func TestAdapterV1RequestsAccepted(t *testing.T) {
	r := newRig(t, ModeV1, nil)
	visitor := provider.Visitor{ID: "v1", Locale: "nl-BE"}
	r.send(provider.Message{Kind: provider.Start, Visitor: visitor})
	r.send(provider.Message{Kind: provider.Text, Text: "hello", Visitor: visitor, Session: []byte(`{"plan":"pro","address.zipCode":"2000"}`)})
	r.send(provider.Message{Kind: provider.Postback, Text: "go to button title", Payload: clickJSON, Visitor: visitor})
	r.send(provider.Message{Kind: provider.Postback, Text: "Dutch", Payload: `{"params":[{"key":"userLangSelected","value":"en-en"}],"nextDialogstateId":"3050","type":"button","caption":"Dutch"}`})
	r.send(provider.Message{Kind: provider.Postback, Text: "Carousel", Payload: "emu-qr-carousel"})
	r.send(provider.Message{Kind: provider.Postback, Payload: "opaque-without-title"})
	r.send(provider.Message{Kind: provider.Text, Text: "session is not an object", Session: []byte(`[1]`)})

	reqs := r.emu.Requests()
	if len(reqs) != 7 {
		t.Fatalf("emulator got %d requests, want 7", len(reqs))
	}
	for i, q := range reqs {
		if q.Status != http.StatusOK || q.Mode != "v1" || q.UserID != convA {
			t.Errorf("request %d: %s %d %q user %q", i, q.Mode, q.Status, q.Error, q.UserID)
		}
	}
	if got := r.emu.Accepted(convA); got != 7 {
		t.Errorf("accepted %d messages for the conversation, want 7", got)
	}
	body := func(i int) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(reqs[i].Body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := []string{
		`{"user":{"id":"` + convA + `","preferredLanguage":"nl"},"message":{"introMessage":{}}}`,
		`{"user":{"id":"` + convA + `","preferredLanguage":"nl"},"message":{"textMessage":{"text":"hello"}},"sessionData":{"plan":"pro","address.zipCode":"2000"}}`,
		`{"user":{"id":"` + convA + `","preferredLanguage":"nl"},"message":{"postbackMessage":{"title":"go to button title","nextDialogstateId":"eedeb3df","sessionDataToSet":[{"key":"location","value":"meulebeke"}]}}}`,
		`{"user":{"id":"` + convA + `"},"message":{"postbackMessage":{"title":"Dutch","nextDialogstateId":"3050","sessionDataToSet":[{"key":"userLangSelected","value":"en-en"}]}}}`,
		`{"user":{"id":"` + convA + `"},"message":{"postbackMessage":{"title":"Carousel","payload":"emu-qr-carousel"}}}`,
		`{"user":{"id":"` + convA + `"},"message":{"postbackMessage":{"title":"opaque-without-title","payload":"opaque-without-title"}}}`,
		`{"user":{"id":"` + convA + `"},"message":{"textMessage":{"text":"session is not an object"}}}`,
	}
	for i, w := range want {
		var wm map[string]any
		if err := json.Unmarshal([]byte(w), &wm); err != nil {
			t.Fatal(err)
		}
		if got := body(i); !reflect.DeepEqual(got, wm) {
			t.Errorf("request %d body:\n got %s\nwant %s", i, reqs[i].Body, w)
		}
	}
}

// TestAdapterLegacyRequestsAccepted does the same in mode legacy.
func TestAdapterLegacyRequestsAccepted(t *testing.T) {
	r := newRig(t, ModeLegacy, nil)
	r.send(provider.Message{Kind: provider.Start, Visitor: provider.Visitor{Locale: "fr"}})
	if n := len(r.emu.Requests()); n != 0 {
		t.Fatalf("a start sent %d requests in mode legacy, want none", n)
	}
	r.send(provider.Message{Kind: provider.Text, Text: "hi", Visitor: provider.Visitor{Locale: "fr-FR"}, Session: []byte(`{"plan":"pro"}`)})
	r.send(provider.Message{Kind: provider.Postback, Text: "go to button title", Payload: clickJSON})
	r.send(provider.Message{Kind: provider.Postback, Text: "Carousel", Payload: "emu-qr-carousel"})
	reqs := r.emu.Requests()
	if len(reqs) != 3 {
		t.Fatalf("emulator got %d requests, want 3", len(reqs))
	}
	wantText := []string{"hi", clickJSON, "emu-qr-carousel"}
	for i, q := range reqs {
		if q.Status != http.StatusOK || q.Mode != "legacy" || q.UserID != convA {
			t.Errorf("request %d: %s %d %q user %q", i, q.Mode, q.Status, q.Error, q.UserID)
		}
		var b legacyRequest
		if err := json.Unmarshal(q.Body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Text != wantText[i] {
			t.Errorf("request %d text %q, want the payload unchanged: %q", i, b.Text, wantText[i])
		}
		if b.Sender.ID != convA || len(b.Sender.ID) < 32 || b.VerifyToken != testVerify {
			t.Errorf("request %d: sender %q, verify token set %v", i, b.Sender.ID, b.VerifyToken == testVerify)
		}
		if i == 0 && b.Locale != "fr" {
			t.Errorf("locale %q, want fr", b.Locale)
		}
		if strings.Contains(string(q.Body), "sessionData") || strings.Contains(string(q.Body), "pro") {
			t.Errorf("legacy request carries session data: %s", q.Body)
		}
	}
}

// TestFixtureRequestsAccepted posts the documented request samples to
// the emulator: it must take what the documentation shows.
func TestFixtureRequestsAccepted(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{VerifyToken: "8wMsLZkdDPT64nqh"})
	defer emu.Close()
	files, _ := filepath.Glob("testdata/fixtures/*-request.json")
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		var url string
		header := http.Header{"Content-Type": {"application/json"}}
		switch {
		case strings.HasPrefix(name, "v1-"):
			url = emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
			header.Set("Authorization", "Bearer "+chatlayertest.DefaultToken)
		case strings.HasPrefix(name, "legacy-webhookmessage"):
			url = emu.URL + "/api/webhookMessage/" + chatlayertest.DefaultBotID
		default:
			continue // webview requests are bot-side actions, normalized in TestGolden
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: emulator answered %d", name, resp.StatusCode)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("posted %d request samples, want 5", n)
	}
}

func TestAdapterErrorsClassified(t *testing.T) {
	t.Run("wrong token", func(t *testing.T) {
		r := newRig(t, ModeV1, func(c *Config, _ *chatlayertest.Options) { c.Token = "tokid-LEAKCHECK-1:wrong" })
		err := r.adapter.Send(context.Background(), provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"})
		reason, temporary, _ := provider.Classify(err)
		if reason != provider.ReasonAuth || temporary {
			t.Fatalf("wrong token: %v classified %s temporary=%v, want %s, permanent", err, reason, temporary, provider.ReasonAuth)
		}
		if r.emu.Accepted(convA) != 0 {
			t.Fatal("the emulator accepted a message with a wrong token")
		}
	})
	t.Run("wrong legacy verify token", func(t *testing.T) {
		r := newRig(t, ModeLegacy, func(_ *Config, o *chatlayertest.Options) { o.VerifyToken = "another-verify" })
		err := r.adapter.Send(context.Background(), provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"})
		if reason, _, _ := provider.Classify(err); reason != provider.ReasonAuth {
			t.Fatalf("wrong verify token: %v classified %s, want %s", err, reason, provider.ReasonAuth)
		}
	})

	now := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name      string
		status    int
		header    http.Header
		reason    string
		temporary bool
		after     time.Duration
	}{
		{"429 Retry-After", 429, http.Header{"Retry-After": {"2"}}, provider.ReasonRateLimited, true, 2 * time.Second},
		{"429 reset in ms", 429, http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(now.Add(3*time.Second).UnixMilli(), 10)}}, provider.ReasonRateLimited, true, 3 * time.Second},
		{"429 reset in s", 429, http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(now.Add(4*time.Second).Unix(), 10)}}, provider.ReasonRateLimited, true, 4 * time.Second},
		{"503", 503, nil, provider.ReasonUnavailable, true, 0},
		{"500", 500, nil, provider.ReasonUnavailable, true, 0},
		{"400", 400, nil, provider.ReasonRejected, false, 0},
		{"403", 403, nil, provider.ReasonAuth, false, 0},
	}
	for _, mode := range []string{ModeV1, ModeLegacy} {
		for _, tc := range cases {
			t.Run(mode+" "+tc.name, func(t *testing.T) {
				r := newRig(t, mode, nil)
				r.adapter.up.Now = func() time.Time { return now }
				r.emu.FailNext(1, tc.status, tc.header)
				m := provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"}
				err := r.adapter.Send(context.Background(), m)
				reason, temporary, after := provider.Classify(err)
				if reason != tc.reason || temporary != tc.temporary || after != tc.after {
					t.Fatalf("got %s temporary=%v after=%s (%v); want %s %v %s", reason, temporary, after, err, tc.reason, tc.temporary, tc.after)
				}
				// The service retries: the next attempt goes through, and
				// the bot answers once.
				if err := r.adapter.Send(context.Background(), m); err != nil {
					t.Fatal("retry after the fault:", err)
				}
				r.idle()
				if got := r.emu.Accepted(convA); got != 1 {
					t.Fatalf("accepted %d, want 1", got)
				}
				eventually(t, "the reply", 5*time.Second, func() bool { return len(r.sink.Deliveries(convA)) == 1 })
			})
		}
	}
	t.Run("timeout", func(t *testing.T) {
		r := newRig(t, ModeV1, nil)
		r.emu.Slow(500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := r.adapter.Send(ctx, provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"})
		if reason, temporary, _ := provider.Classify(err); reason != provider.ReasonUnavailable || !temporary {
			t.Fatalf("slow upstream: %v, want unavailable and temporary", err)
		}
	})
	t.Run("bad conversation id", func(t *testing.T) {
		r := newRig(t, ModeLegacy, nil)
		err := r.adapter.Send(context.Background(), provider.Message{Conversation: "short", Kind: provider.Text, Text: "hi"})
		if reason, temporary, _ := provider.Classify(err); reason != provider.ReasonRejected || temporary {
			t.Fatalf("bad conversation id: %v", err)
		}
		if len(r.emu.Requests()) != 0 {
			t.Fatal("a bad conversation id reached the emulator")
		}
	})
}

func TestAdapterGreetAndTyping(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		r := newRig(t, ModeV1, func(_ *Config, o *chatlayertest.Options) { o.ReplyDelay = 100 * time.Millisecond })
		r.send(provider.Message{Kind: provider.Start})
		if got := r.sink.Typings(); len(got) != 1 || got[0] != convA+":on" {
			t.Fatalf("typing after an accepted start: %v", got)
		}
		r.idle()
		if got := r.sink.Texts(convA); len(got) != 1 || !strings.HasPrefix(got[0], "Hi! I am the emulated Chatlayer bot") {
			t.Fatalf("greeting: %q", got)
		}
	})
	t.Run("greet and typing off", func(t *testing.T) {
		off := false
		r := newRig(t, ModeV1, func(c *Config, _ *chatlayertest.Options) { c.Greet, c.ReplyTyping = &off, &off })
		r.send(provider.Message{Kind: provider.Start})
		if len(r.emu.Requests()) != 0 {
			t.Fatal("greet: false still sent an introMessage")
		}
		r.send(provider.Message{Kind: provider.Text, Text: "hi"})
		if got := r.sink.Typings(); len(got) != 0 {
			t.Fatalf("reply_typing: false still showed typing: %v", got)
		}
	})
	t.Run("no typing when the reply came first", func(t *testing.T) {
		// An upstream that calls the webhook back before it answers: the
		// reply is stored before Send returns, so typing must stay off.
		sink := providertest.NewSink(t, convA)
		var a *Adapter
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if code, _ := post(a, callback(t, map[string]any{"senderId": convA, "verifyToken": testVerify, "message": textMsg("quick"), "messageCounter": 1})); code != 200 {
				t.Errorf("callback: %d", code)
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer up.Close()
		var err error
		a, err = New(Config{ChannelID: "c", Token: testToken, VerifyToken: testVerify, BaseURL: up.URL}, "acme", sink, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Send(context.Background(), provider.Message{Conversation: convA, Kind: provider.Text, Text: "hi"}); err != nil {
			t.Fatal(err)
		}
		if got := sink.Typings(); len(got) != 0 {
			t.Fatalf("typing %v after the reply was already stored", got)
		}
		if len(sink.Deliveries(convA)) != 1 {
			t.Fatal("reply not stored")
		}
	})
}

// TestFullLoop runs adapter → emulator → callback → adapter webhook →
// sink, in both modes, through every message kind the bot sends.
func TestFullLoop(t *testing.T) {
	for _, mode := range []string{ModeV1, ModeLegacy} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, nil)
			r.send(provider.Message{Kind: provider.Start})
			r.send(provider.Message{Kind: provider.Text, Text: "all"})
			r.idle()
			var kinds []string
			for _, d := range r.sink.Deliveries(convA) {
				kinds = append(kinds, d.Body.Kind)
				if d.Body.Kind == widget.KindMedia {
					kinds[len(kinds)-1] += ":" + d.Body.Media
				}
			}
			want := []string{"text", "text", "buttons", "carousel", "carousel", "buttons", "media:image", "media:video", "media:audio", "media:file"}
			if mode == ModeV1 {
				want = append([]string{"text"}, want...) // the greeting
			}
			if strings.Join(kinds, " ") != strings.Join(want, " ") {
				t.Fatalf("stored kinds %v, want %v", kinds, want)
			}
			// "all" is 10 messages (the list template makes 2 bodies, the
			// event none), plus the greeting in mode v1.
			produced := uint64(10)
			if mode == ModeV1 {
				produced++
			}
			if got := r.emu.Produced(convA); got != produced {
				t.Errorf("the bot produced %d messages, want %d (every kind and an event)", got, produced)
			}
			if v, _ := r.sink.Attr(context.Background(), convA, AttrCounter); epochLast(v) != "0:"+strconv.FormatUint(r.emu.Produced(convA), 10) {
				t.Errorf("stored counter %q, want %d", v, r.emu.Produced(convA))
			}

			// Click the carousel's JSON postback, exactly as the widget
			// would hand it over.
			var click widget.Button
			for _, d := range r.sink.Deliveries(convA) {
				if d.Body.Kind == widget.KindCarousel && len(d.Body.Cards[0].Buttons) > 0 {
					click = d.Body.Cards[0].Buttons[0]
					break
				}
			}
			if click.Type != widget.ButtonPostback {
				t.Fatalf("no postback button on the carousel: %+v", click)
			}
			before := len(r.sink.Deliveries(convA))
			r.send(provider.Message{Kind: provider.Postback, Text: click.Title, Payload: click.Payload})
			r.idle()
			got := r.sink.Texts(convA)[before:]
			if len(got) < 1 || got[0] != "You clicked "+click.Title+"." {
				t.Fatalf("after the click: %q", got)
			}
		})
	}
}

func TestFullLoopSessionData(t *testing.T) {
	r := newRig(t, ModeV1, nil)
	r.send(provider.Message{Kind: provider.Text, Text: "hi there", Session: []byte(`{"plan":"pro"}`)})
	r.idle()
	if got := r.sink.Texts(convA); len(got) != 2 || got[0] != "You said: hi there" || got[1] != "Your plan is pro." {
		t.Fatalf("replies %q", got)
	}
}

func TestFullLoopCallbackFaults(t *testing.T) {
	t.Run("reversed batch", func(t *testing.T) {
		r := newRig(t, ModeV1, func(c *Config, _ *chatlayertest.Options) { c.ReorderWait = 2 * time.Second })
		r.emu.ReorderCallbacks(1)
		r.send(provider.Message{Kind: provider.Text, Text: "media"})
		r.idle()
		var got []string
		for _, d := range r.sink.Deliveries(convA) {
			got = append(got, d.Body.Media)
		}
		if strings.Join(got, " ") != "image video audio file" {
			t.Fatalf("delivered %v, want them in counter order", got)
		}
		sent := r.emu.Callbacks() // recorded as answered; At is when each was sent
		slices.SortFunc(sent, func(a, b providertest.Callback) int { return a.At.Compare(b.At) })
		if len(sent) != 4 || sent[0].Seq != 4 || sent[3].Seq != 1 {
			t.Fatalf("the emulator did not send in reverse: %d callbacks, first %d", len(sent), sent[0].Seq)
		}
	})
	t.Run("duplicates", func(t *testing.T) {
		r := newRig(t, ModeV1, nil)
		r.emu.DuplicateCallbacks(10)
		r.send(provider.Message{Kind: provider.Text, Text: "media"})
		r.idle()
		if got := len(r.sink.Deliveries(convA)); got != 4 {
			t.Fatalf("stored %d, want 4: duplicates stored once", got)
		}
		if got := len(r.emu.Callbacks()); got != 8 {
			t.Fatalf("the emulator sent %d callbacks, want 8", got)
		}
	})
	// A lost callback: skipped after reorder_wait with the history off,
	// recovered with one history call in either mode with it on.
	for _, tc := range []struct {
		name, mode, want string
		history          bool
	}{
		{"dropped, history off", ModeV1, "video audio file", false},
		{"dropped, recovered from the v1 history", ModeV1, "image video audio file", true},
		{"dropped, recovered from the legacy history", ModeLegacy, "image video audio file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.mode, func(c *Config, _ *chatlayertest.Options) {
				c.ReorderWait = 100 * time.Millisecond
				c.History = &tc.history
			})
			r.emu.DropCallbacks(1)
			r.send(provider.Message{Kind: provider.Text, Text: "media"})
			r.idle()
			var got []string
			for _, d := range r.sink.Deliveries(convA) {
				got = append(got, d.Body.Media)
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("delivered %v after a lost callback, want %s", got, tc.want)
			}
			n := 0
			for _, q := range r.emu.Requests() {
				if q.Kind == "history" {
					n++
				}
			}
			if want := map[bool]int{false: 0, true: 1}[tc.history]; n != want {
				t.Fatalf("%d history calls for one gap, want %d", n, want)
			}
		})
	}
	t.Run("store fails once", func(t *testing.T) {
		r := newRig(t, ModeV1, nil)
		r.sink.FailDeliver(1)
		r.send(provider.Message{Kind: provider.Text, Text: "text"})
		r.idle()
		if got := r.sink.Texts(convA); len(got) != 1 {
			t.Fatalf("stored %q, want the reply once after Chatlayer's retry", got)
		}
		cbs := r.emu.Callbacks()
		if len(cbs) != 2 || cbs[0].Status != 500 || cbs[1].Status != 200 {
			t.Fatalf("callback attempts %+v, want 500 then 200", cbs)
		}
	})
	t.Run("delayed", func(t *testing.T) {
		r := newRig(t, ModeV1, nil)
		r.emu.DelayCallbacks(30 * time.Millisecond)
		start := time.Now()
		r.send(provider.Message{Kind: provider.Text, Text: "text"})
		r.idle()
		if time.Since(start) < 30*time.Millisecond || len(r.sink.Deliveries(convA)) != 1 {
			t.Fatal("delayed callback not delivered after its delay")
		}
	})
	t.Run("routing variants", func(t *testing.T) {
		for _, field := range []string{"senderId", "recipient", "sender"} {
			r := newRig(t, ModeV1, func(_ *Config, o *chatlayertest.Options) { o.RouteField = field })
			r.send(provider.Message{Kind: provider.Text, Text: "text"})
			r.idle()
			if len(r.sink.Deliveries(convA)) != 1 {
				t.Fatalf("callbacks routed by %s not delivered", field)
			}
		}
	})
	t.Run("wrong callback verify token", func(t *testing.T) {
		r := newRig(t, ModeV1, func(_ *Config, o *chatlayertest.Options) { o.CallbackVerifyToken = "forged" })
		r.send(provider.Message{Kind: provider.Text, Text: "text"})
		r.idle()
		if len(r.sink.Deliveries(convA)) != 0 {
			t.Fatal("a callback with a wrong verify token was stored")
		}
		cbs := r.emu.Callbacks()
		if len(cbs) != 1+chatlayertest.MaxRetries || cbs[0].Status != http.StatusUnauthorized {
			t.Fatalf("callback attempts %+v, want %d answered 401", cbs, 1+chatlayertest.MaxRetries)
		}
	})
}

// TestAdapterSendsTheSignedInUser: a Porthole.login contact goes upstream
// as user names and session data, overriding any identity key the page's
// session data holds (issue 12).
func TestAdapterSendsTheSignedInUser(t *testing.T) {
	r := newRig(t, ModeV1, nil)
	r.send(provider.Message{Kind: provider.Text, Text: "hi", Session: []byte(`{"email":"page@example.com","EXTERNALID":"admin","user.email":"x@y","plan":"pro"}`),
		Contact: &provider.Contact{User: "user-42", Name: "Ann Marie Lee", Email: "ann@example.com", Phone: "+32 477 99 00 22"}})
	reqs := r.emu.Requests()
	if len(reqs) != 1 || reqs[0].Status != http.StatusOK {
		t.Fatalf("requests = %+v", reqs)
	}
	var b struct {
		User        map[string]string `json:"user"`
		SessionData map[string]string `json:"sessionData"`
	}
	if err := json.Unmarshal(reqs[0].Body, &b); err != nil {
		t.Fatal(err)
	}
	if b.User["firstName"] != "Ann" || b.User["lastName"] != "Marie Lee" || b.User["id"] != convA {
		t.Errorf("user = %v", b.User)
	}
	want := map[string]string{"externalId": "user-42", "email": "ann@example.com", "phone": "+32 477 99 00 22", "plan": "pro"}
	for k, v := range want {
		if b.SessionData[k] != v {
			t.Errorf("sessionData[%s] = %q, want %q", k, b.SessionData[k], v)
		}
	}
	if len(b.SessionData) != len(want) {
		t.Errorf("sessionData = %v, want exactly %v", b.SessionData, want)
	}
}

// TestAdapterDropsIdentityFromClicks: a click's parameters never set an
// identity key in sessionDataToSet; the rest go as the bot gave them.
func TestAdapterDropsIdentityFromClicks(t *testing.T) {
	pm := v1Postback("Go", `{"nextDialogstateId":"7","parameters":[{"key":"Email","value":"a@b"},{"key":"topic","value":"x"},{"key":"user.externalId","value":"admin"}]}`)
	if len(pm.SessionDataToSet) != 1 || pm.SessionDataToSet[0].Key != "topic" || pm.NextDialogstateID != "7" {
		t.Fatalf("postbackMessage = %+v, want only topic set", pm)
	}
}
