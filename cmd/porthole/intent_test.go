package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/web"
)

// conversationsIn stops the proxy of s and counts the conversations its
// store holds (Prune of everything returns how many there were).
func conversationsIn(t testing.TB, s *site) int {
	t.Helper()
	s.proxy.kill()
	st, err := store.OpenBolt(filepath.Join(s.data, "porthole.db"), store.BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.Prune(context.Background(), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// handedUpstreamAny counts the calls the proxy made to the bot (the demo
// bot here), greetings included.
func handedUpstreamAny(p *proc) int { return strings.Count(p.log(), `msg="handed upstream"`) }

// storage returns what the host page keeps in localStorage and
// sessionStorage.
func storage(t testing.TB, ctx context.Context) string {
	return evalJS[string](t, ctx, `JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)])`)
}

// TestWidgetNothingBeforeIntent: a page view of a new visitor costs the
// loader and its stylesheet only, for as long as the visitor shows no
// intent; a hover fetches and compiles the widget and still creates
// nothing; the first open creates one conversation and one greeting, a
// reload and a second open none.
func TestWidgetNothingBeforeIntent(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	reqs := recordRequests(t, ctx)
	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	time.Sleep(10 * time.Second) // the load event, idle time, any timer

	eager := reqs.matching(s.url)
	for _, u := range eager {
		if !strings.HasSuffix(u, "/widget.js") && !strings.Contains(u, "/widget.css?bot=demo") {
			t.Errorf("requested from the proxy before intent: %s", u)
		}
	}
	if len(eager) != 2 {
		t.Errorf("%d requests to the proxy before intent, want 2 (widget.js and its stylesheet): %q", len(eager), eager)
	}
	if n := reqs.socketCount(); n != 0 {
		t.Errorf("%d WebSockets before intent", n)
	}
	if got := storage(t, ctx); got != `[[],[]]` {
		t.Errorf("storage before intent: %s", got)
	}
	if n := handedUpstreamAny(s.proxy); n != 0 {
		t.Errorf("%d calls to the bot before intent", n)
	}

	// Intent: the pointer over the launcher.
	box := evalJS[map[string]float64](t, ctx, `(function(){var r = `+in(".launcher")+`.getBoundingClientRect(); return {x: r.x + r.width/2, y: r.y + r.height/2}})()`)
	if _, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: box["x"], Y: box["y"]}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(reqs.matching(".wasm")) == 0 || len(reqs.matching("wasm_exec")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a hover fetched no widget: %q", reqs.matching(s.url))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // compiled by now; nothing may follow
	if n := reqs.socketCount(); n != 0 {
		t.Errorf("%d WebSockets after a hover", n)
	}
	if got := storage(t, ctx); got != `[[],[]]` {
		t.Errorf("storage after a hover: %s", got)
	}
	if n := handedUpstreamAny(s.proxy); n != 0 {
		t.Errorf("%d calls to the bot after a hover", n)
	}
	if evalJS[bool](t, ctx, `!!window.__porthole_boot`) {
		t.Error("a hover started the widget")
	}

	// The first open starts the conversation and the greeting.
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	click(t, ctx, ".close")
	click(t, ctx, ".launcher")
	typeMessage(t, ctx, "hello")
	botSays(t, ctx, "Hello, there!")
	if n := count(t, ctx, ".msg.bot", "Where shall we start?"); n != 1 {
		t.Errorf("the greeting shows %d times", n)
	}
	if n := len(greetingsUpstream.FindAllString(s.proxy.log(), -1)); n != 1 {
		t.Errorf("%d greetings asked of the bot, want 1", n)
	}
	if n := conversationsIn(t, s); n != 1 {
		t.Errorf("%d conversations after two opens and a reload, want 1", n)
	}
}

// TestWidgetPanelAtOnce: on a slow phone network, a first-time visitor's
// click shows the panel with a focused composer in the next frame, drawn
// by the loader before the widget has loaded; a message sent then
// reaches the bot once and shows once when the widget takes over.
func TestWidgetPanelAtOnce(t *testing.T) {
	s, emu := chatlayerSite(t)
	ctx := browser(t, 1280, 860)
	// Lighthouse's slow 4G: 562.5 ms round trips, 1.4 Mbit/s down.
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{Latency: 562.5, DownloadThroughput: 1.4e6 / 8, UploadThroughput: 0.7e6 / 8}},
	}); err != nil {
		t.Fatal(err)
	}
	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	// What the page sees in the first frame after the click.
	evalJS[bool](t, ctx, `(function(){
		window.seen = null; window.ready = false;
		Porthole.on("ready", function(){ window.ready = true; });
		`+in(".launcher")+`.addEventListener("click", function(){
			requestAnimationFrame(function(){
				var p = `+in(".panel")+`;
				window.seen = {panel: !!p && !p.hidden && p.getBoundingClientRect().height > 100,
					focused: !!p && `+shadow+`.activeElement === `+in("textarea")+`,
					title: p ? `+in(".title")+`.textContent : "", ready: window.ready};
			});
		});
		return true})()`)
	click(t, ctx, ".launcher")
	waitJS(t, ctx, "the first frame after the click", `window.seen`)
	seen := evalJS[map[string]any](t, ctx, `window.seen`)
	if seen["panel"] != true || seen["focused"] != true || seen["title"] != "Acme Shipping" || seen["ready"] != false {
		t.Errorf("the frame after the click: %v; want the panel with its title and a focused composer, before the widget ran", seen)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.JSPath(in("textarea")), "parcel 42")); err != nil {
		t.Fatal(err)
	}
	pressEnter(t, ctx)
	if evalJS[bool](t, ctx, `window.ready`) {
		t.Fatal("the widget loaded before the message was sent: the network emulation did not hold it back")
	}
	if n := count(t, ctx, ".msg.user", "parcel 42"); n != 1 {
		t.Errorf("the message sent before the widget loaded shows %d times", n)
	}
	// A half-typed draft, and where the frame is, before the take-over.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.JSPath(in("textarea")), "half a thou")); err != nil {
		t.Fatal(err)
	}
	frame := `(function(){var p = ` + in(".panel") + `.getBoundingClientRect(), h = ` + in(".header") + `.getBoundingClientRect(),
		c = ` + in(".composer") + `.getBoundingClientRect();
		return [p.left, p.top, p.width, p.height, h.height, c.top, c.height, ` + in(".title") + `.textContent].join(" ")})()`
	// The panel rises for 0.2 s as it opens: measure where it ends up.
	waitJS(t, ctx, "the panel's opening animation to end", in(".panel")+`.getAnimations().length == 0`)
	before := evalJS[string](t, ctx, frame)
	if evalJS[bool](t, ctx, `window.ready`) {
		t.Fatal("the widget loaded before the draft was typed")
	}
	waitJS(t, ctx, "the widget", `window.ready`)
	if after := evalJS[string](t, ctx, frame); after != before {
		t.Errorf("the frame moved when the widget took over: %s, then %s", before, after)
	}
	if v := evalJS[string](t, ctx, in("textarea")+`.value`); v != "half a thou" {
		t.Errorf("the draft is %q after the take-over", v)
	}
	if !evalJS[bool](t, ctx, shadow+`.activeElement === `+in("textarea")) {
		t.Error("the composer lost focus when the widget took over")
	}
	botSays(t, ctx, "You said: parcel 42")
	time.Sleep(500 * time.Millisecond)
	if n := count(t, ctx, ".msg.user", "parcel 42"); n != 1 {
		t.Errorf("the message shows %d times after the widget took over", n)
	}
	if n := count(t, ctx, ".msg.bot", "You said: parcel 42"); n != 1 {
		t.Errorf("the bot answered %d times", n)
	}
	// Stored once, and received by the platform once.
	token := evalJS[string](t, ctx, `localStorage.getItem("porthole:demo:visitor")`)
	_, msgs := replay(t, s.proxy, token, 0)
	users := 0
	for _, m := range msgs {
		if m.From == "user" && m.Body.Text == "parcel 42" {
			users++
		}
	}
	if users != 1 {
		t.Errorf("stored %d times, want once", users)
	}
	if got := chatlayerRequests(emu, "text", `"parcel 42"`); len(got) != 1 {
		t.Errorf("Chatlayer received the message %d times, want once", len(got))
	}
}

// pressEnter presses Enter as a keyboard does. chromedp's kb.Enter also
// sends a separate "char" event, which inserts a newline even when the
// page prevented the keydown's default, as no real keyboard does.
func pressEnter(t testing.TB, ctx context.Context) {
	t.Helper()
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWidgetReturningVisitorBadge: a returning visitor's widget connects
// once the page is idle (connect: idle, the default), so that a reply
// that came while away shows on the badge without a click.
func TestWidgetReturningVisitorBadge(t *testing.T) {
	s := newSiteConfig(t, func(cfg string) string { return strings.Replace(cfg, "typing_delay: 60ms", "typing_delay: 1500ms", 1) })
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	// The bot takes 1.5 s to answer: leave before it does.
	typeMessage(t, ctx, "hello")
	waitJS(t, ctx, "the message stored", `localStorage.getItem("porthole:demo:outbox") == null && `+in(".msg.user"))
	navigate(t, ctx, "about:blank")
	time.Sleep(3 * time.Second)

	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the unread badge", `!`+in(".badge")+`.hidden && `+in(".badge")+`.textContent == "1"`)
	if evalJS[bool](t, ctx, `!`+in(".panel")+`.hidden`) {
		t.Error("the panel opened by itself")
	}
	if label := evalJS[string](t, ctx, in(".launcher")+`.getAttribute("aria-label")`); !strings.Contains(label, "1 unread") {
		t.Errorf("launcher label %q does not tell the unread count", label)
	}
}

// TestWidgetTeaser: the bot's teaser shows beside the launcher with no
// widget loaded, opens the panel when clicked, and shows once a day.
func TestWidgetTeaser(t *testing.T) {
	s := newSiteConfig(t, func(cfg string) string {
		return cfg + "      teaser: {text: \"Questions about shipping? Ask us!\", delay: 300ms, paths: [\"/\"]}\n"
	})
	ctx := browser(t, 1280, 860)
	reqs := recordRequests(t, ctx)
	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the teaser", in(".teaser .tt")+`.textContent == "Questions about shipping? Ask us!"`)
	if n := len(reqs.matching(".wasm")); n != 0 {
		t.Error("the teaser loaded the widget")
	}
	click(t, ctx, ".teaser .tt")
	waitJS(t, ctx, "the panel", `!`+in(".panel")+`.hidden && !`+in(".teaser"))
	botSays(t, ctx, "Where shall we start?")
	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	time.Sleep(time.Second)
	if evalJS[bool](t, ctx, `!!`+in(".teaser")) {
		t.Error("the teaser showed twice on one day")
	}
}

// newSiteConfig is newSite with its config rewritten by edit.
func newSiteConfig(t testing.TB, edit func(string) string) *site {
	t.Helper()
	s := newSite(t)
	s.proxy.kill()
	cfg := filepath.Join(s.data, "porthole.yaml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(edit(string(data))), 0o600); err != nil {
		t.Fatal(err)
	}
	s.proxy, _ = startProxyOn(t, s.data, s.port)
	return s
}

// greetingsUpstream finds the proxy's log lines for greetings (seq 0)
// handed to the bot.
var greetingsUpstream = regexp.MustCompile(`msg="handed upstream"[^\n]* seq=0 `)

// TestEagerBytesAsServed: what a page view downloads from the real
// binary before intent, widget.js and the demo bot's stylesheet as the
// loader asks for it, brotli, is within the eager budget.
func TestEagerBytesAsServed(t *testing.T) {
	p := start(t, t.TempDir())
	total := 0
	for _, path := range []string{"/widget.js", "/widget.css?bot=demo&lang=&page=en&color="} {
		req, _ := http.NewRequest("GET", "http://"+p.addr+path, nil)
		req.Header.Set("Accept-Encoding", "br")
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "br" || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public") {
			t.Fatalf("%s: %d, %v", path, res.StatusCode, res.Header)
		}
		t.Logf("%s: %d bytes brotli", path, len(body))
		total += len(body)
	}
	if total > web.EagerBudget {
		t.Errorf("a page view downloads %d bytes brotli before intent, over the budget of %d", total, web.EagerBudget)
	}
	t.Logf("eager total %d bytes brotli (budget %d, goal %d)", total, web.EagerBudget, web.EagerGoal)
}

// chatlayerSite is newSite with the bot "demo" on the Chatlayer emulator.
func chatlayerSite(t testing.TB) (*site, *chatlayertest.Server) {
	t.Helper()
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	s := newSiteConfig(t, func(cfg string) string { return onChatlayer(cfg, emu.URL) })
	emu.SetCallback(s.url + "/hooks/chatlayer/demo")
	return s, emu
}

// onChatlayer turns writeProxyConfig's demo bot into a Chatlayer bot on
// the emulator at emuURL, with the tokens from CHATLAYER_TOKEN and
// CHATLAYER_VERIFY.
func onChatlayer(cfg, emuURL string) string {
	return strings.Replace(strings.Replace(cfg, "    provider: demo\n", "    provider: chatlayer\n", 1),
		"    demo: {typing_delay: 60ms}\n", fmt.Sprintf("    chatlayer: {base_url: %q, channel_id: %q, token: \"${CHATLAYER_TOKEN}\", verify_token: \"${CHATLAYER_VERIFY}\"}\n",
			emuURL, chatlayertest.DefaultChannelID), 1)
}

// chatlayerRequests are the accepted requests of a kind ("intro",
// "text", "postback") whose body contains text.
func chatlayerRequests(emu *chatlayertest.Server, kind, text string) []chatlayertest.Request {
	var out []chatlayertest.Request
	for _, r := range emu.Requests() {
		if r.Kind == kind && strings.Contains(string(r.Body), text) {
			out = append(out, r)
		}
	}
	return out
}

// TestWidgetNothingBeforeIntentChatlayer: the same page view with the bot
// on the Chatlayer emulator, asserted on the platform's own record: no
// request reaches Chatlayer until the panel opens; the first open makes
// one introMessage, and a reload and a second open make none.
func TestWidgetNothingBeforeIntentChatlayer(t *testing.T) {
	s, emu := chatlayerSite(t)
	intros := func() int { return len(chatlayerRequests(emu, "intro", "")) }
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	time.Sleep(10 * time.Second)
	if got := emu.Requests(); len(got) != 0 {
		t.Errorf("%d requests reached Chatlayer before intent", len(got))
	}
	click(t, ctx, ".launcher")
	botSays(t, ctx, "emulated Chatlayer bot")
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "emulated Chatlayer bot")
	click(t, ctx, ".close")
	click(t, ctx, ".launcher")
	time.Sleep(time.Second)
	if n := intros(); n != 1 {
		t.Errorf("%d introMessages reached Chatlayer after an open, a reload and a second open, want 1", n)
	}
	if n := count(t, ctx, ".msg.bot", "emulated Chatlayer bot"); n != 1 {
		t.Errorf("the greeting shows %d times", n)
	}
}
