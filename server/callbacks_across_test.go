package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/porthole-chat/porthole/widget"
)

// TestChatlayerCallbacksAcrossInstances: two servers over one real Redis,
// as two `porthole serve` processes behind a load balancer, and the
// Chatlayer callbacks of one conversation posted out of order to each in
// turn, some twice (Chatlayer's retries) on the other instance. The
// transcript holds each once, in messageCounter order, and the stored
// counter is the last.
func TestChatlayerCallbacksAcrossInstances(t *testing.T) {
	r := redistest.Start(t)
	const verify = "verify-across-instances"
	var hs [2]*harness
	for i := range hs {
		be, err := OpenBackend(&Config{Store: StoreConfig{Driver: "redis", URL: Secret(r.URL)}}, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = newHarness(t, func(cfg *Config, o *Options) {
			o.Store, o.Bus, o.Limits = be.Store, be.Bus, be.Limits
			cfg.Bots = append(cfg.Bots, BotConfig{ID: "cl", Provider: "chatlayer", Origins: []string{"https://www.acme.com"},
				Settings: &chatlayer.Config{ChannelID: "c", Token: "tokid:toksecret", VerifyToken: verify, ReorderWait: 10 * time.Second, BaseURL: "http://127.0.0.1:1"}})
		})
	}
	ctx := t.Context()
	sc, _, err := hs[0].st.Conversation(ctx, "cl", "visitor-across")
	if err != nil {
		t.Fatal(err)
	}
	post := func(h *harness, n int) {
		body := fmt.Sprintf(`{"senderId":%q,"verifyToken":%q,"messageCounter":%d,"message":{"text":"m%d"}}`, sc.ID, verify, n, n)
		resp, err := http.Post(h.hs.URL+"/hooks/chatlayer/cl", "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("callback %d: %d", n, resp.StatusCode)
		}
	}
	order := []int{3, 1, 6, 2, 5, 4, 8, 7}
	var wg sync.WaitGroup
	for i, n := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 10 * time.Millisecond)
			post(hs[i%2], n)
			if n%3 == 0 {
				post(hs[(i+1)%2], n) // retried, on the other instance
			}
		}()
	}
	wg.Wait()

	ms, err := hs[1].st.Read(ctx, sc.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		var b widget.Body
		if err := json.Unmarshal(m.Body, &b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Summary())
	}
	if want := "m1,m2,m3,m4,m5,m6,m7,m8"; strings.Join(got, ",") != want {
		t.Errorf("transcript %s, want %s", strings.Join(got, ","), want)
	}
	v, _ := hs[0].st.Attr(ctx, sc.ID, "p:"+chatlayer.AttrCounter)
	if c, ok := chatlayer.ParseCounter(v); !ok || c.Epoch != 0 || c.Last != uint64(len(order)) {
		t.Errorf("stored counter %q, want epoch 0 at %d", v, len(order))
	}
}

// TestBotSinkCompareAndSetAttr: a bot's Sink compares and sets provider
// state in its own conversations only, under the provider's namespace.
func TestBotSinkCompareAndSetAttr(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	mine, _, err := h.st.Conversation(ctx, "acme", "v1")
	if err != nil {
		t.Fatal(err)
	}
	theirs, _, err := h.st.Conversation(ctx, "demo", "v1")
	if err != nil {
		t.Fatal(err)
	}
	sink := h.srv.botSink("acme")
	if ok, err := sink.CompareAndSetAttr(ctx, mine.ID, "k", "", "1"); !ok || err != nil {
		t.Fatalf("CAS from absent: %v, %v", ok, err)
	}
	if ok, err := sink.CompareAndSetAttr(ctx, mine.ID, "k", "", "2"); ok || err != nil {
		t.Errorf("CAS from a stale value: %v, %v", ok, err)
	}
	if v, _ := h.st.Attr(ctx, mine.ID, "p:k"); v != "1" {
		t.Errorf("stored %q under p:k, want 1", v)
	}
	if _, err := sink.CompareAndSetAttr(ctx, theirs.ID, "k", "", "1"); !errors.Is(err, provider.ErrOtherBot) {
		t.Errorf("CAS in another bot's conversation: %v, want ErrOtherBot", err)
	}
	if _, err := sink.CompareAndSetAttr(ctx, "no-such-conversation", "k", "", "1"); !errors.Is(err, provider.ErrUnknownConversation) {
		t.Errorf("CAS in an unknown conversation: %v", err)
	}
	if v, _ := h.st.Attr(ctx, theirs.ID, "p:k"); v != "" {
		t.Errorf("another bot's conversation got %q", v)
	}
}
