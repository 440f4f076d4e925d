package chataibot_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
)

const (
	hookSecret = "hook-secret-0123456789abcdef"
	convA      = "0123456789abcdef0123456789abcdef"
	convB      = "fedcba9876543210fedcba9876543210"
)

// fakeLinker is the store's Link/Resolve for one bot.
type fakeLinker struct {
	mu       sync.Mutex
	links    map[string]string
	failLink int // the next Links fail, as a store in trouble would
	resolved int // Resolve calls
}

func (l *fakeLinker) Link(_ context.Context, ref, conv string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failLink > 0 {
		l.failLink--
		return providertest.ErrInjected
	}
	if l.links == nil {
		l.links = map[string]string{}
	}
	l.links[ref] = conv
	return nil
}

func (l *fakeLinker) Resolve(_ context.Context, ref string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resolved++
	if c, ok := l.links[ref]; ok {
		return c, nil
	}
	return "", provider.ErrUnknownConversation
}

// rig is an adapter in front of an emulator, with its webhook served.
type rig struct {
	t    *testing.T
	emu  *chataibottest.Server
	ad   *chataibot.Adapter
	sink *providertest.Sink
	hook *httptest.Server
	logs *providertest.LogBuffer
	cfg  chataibot.Config
}

type rigOptions struct {
	emu    chataibottest.Options
	cfg    func(*chataibot.Config)
	linker provider.Links
	// front wraps the emulator's API, e.g. to delay its answers.
	front func(http.Handler) http.Handler
	// hook wraps the webhook's handler.
	hook func(http.Handler) http.Handler
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, sink: providertest.NewSink(t), logs: &providertest.LogBuffer{}}
	r.emu = chataibottest.NewServer(o.emu)
	t.Cleanup(r.emu.Close)
	base := r.emu.URL
	if o.front != nil {
		fs := httptest.NewServer(o.front(r.emu.Handler()))
		t.Cleanup(fs.Close)
		base = fs.URL
	}
	r.cfg = chataibot.Config{
		BaseURL: base, Token: chataibottest.DefaultToken, BotKey: chataibottest.DefaultBotKey,
		WebhookSecret: hookSecret,
	}
	if o.cfg != nil {
		o.cfg(&r.cfg)
	}
	var links provider.Links
	if o.linker != nil {
		links = o.linker
	}
	ad, err := chataibot.New(r.cfg, "shop", r.sink, &provider.Upstream{Client: &http.Client{Timeout: 5 * time.Second}}, r.logs.Logger(), links)
	if err != nil {
		t.Fatal(err)
	}
	r.ad = ad
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/chataibot/shop", ad.ServeWebhook)
	var h http.Handler = mux
	if o.hook != nil {
		h = o.hook(h)
	}
	r.hook = httptest.NewServer(h)
	t.Cleanup(r.hook.Close)
	r.emu.SetCallback(r.hook.URL+"/hooks/chataibot/shop", hookSecret)
	return r
}

// visitor is what a hello told the server.
var visitor = provider.Visitor{ID: "v-42", Locale: "en-GB", TZ: "Europe/Brussels", PageURL: "https://shop.example/pricing", Referrer: "https://www.google.com/"}

func text(conv, id, s string) provider.Message {
	return provider.Message{Bot: "shop", Conversation: conv, Seq: 1, ClientID: id, Kind: provider.Text, Text: s, Visitor: visitor}
}

func (r *rig) send(m provider.Message) error {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.ad.Send(ctx, m)
}

func (r *rig) mustSend(m provider.Message) {
	r.t.Helper()
	if err := r.send(m); err != nil {
		r.t.Fatalf("Send(%q): %v", m.Text, err)
	}
}

// post sends a callback body to the webhook with the given headers and
// returns the status and answer.
func (r *rig) post(body string, header http.Header) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.hook.URL+"/hooks/chataibot/shop", strings.NewReader(body))
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bearer(secret string) http.Header {
	return http.Header{"Authorization": {"Bearer " + secret}, "Content-Type": {"application/json"}}
}

// idle waits for the emulator's callbacks to be done.
func (r *rig) idle() {
	r.t.Helper()
	providertest.Idle(r.t, r.emu)
}

// ref returns the ChatAIBot conversation id the adapter keeps for conv.
func (r *rig) ref(conv string) string {
	v, _ := r.sink.Attr(context.Background(), conv, chataibot.AttrConversation)
	return v
}
