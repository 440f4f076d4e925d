package main

import (
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromium finds Debian's Chromium. Without it the browser tests skip on
// a developer machine and fail in CI, where .ci/run installs it.
func chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI needs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed: apt-get install chromium")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab context sized width×height (a phone when width < 480).
func browser(t testing.TB, width, height int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(width, height),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if width < 480 {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateMobile, chromedp.EmulateTouch)); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

// requests records the URLs a tab fetches, and the WebSockets it opens.
type requests struct {
	mu      sync.Mutex
	urls    []string
	sockets []string
}

func recordRequests(t testing.TB, ctx context.Context) *requests {
	r := &requests{}
	err := chromedp.Listen(ctx, func(ev any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			r.urls = append(r.urls, e.Request.URL)
		case *network.EventWebSocketCreated:
			r.sockets = append(r.sockets, e.URL)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// socketCount returns how many WebSockets the tab opened.
func (r *requests) socketCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sockets)
}

func (r *requests) matching(part string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.urls {
		if strings.Contains(u, part) {
			out = append(out, u)
		}
	}
	return out
}

// hostSite is a customer's web site on its own origin (127.0.0.1) that
// embeds the widget from the proxy (localhost): two origins, as in real
// life.
type hostSite struct {
	*httptest.Server
	proxy string // http://localhost:PORT
	// hold delays /slow.png, and with it the page's load event, until
	// release closes it; rearm makes a new one for the next page load.
	mu   sync.Mutex
	hold chan struct{}
	once *sync.Once
}

const hostPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Shipping</title>%s</head>
<body><main><h1>Acme Shipping</h1><p>We move boxes across the sea.</p>%s</main>
<script async src="%s/widget.js" data-bot="demo"%s></script>
</body></html>`

func newHostSite(t testing.TB, proxy string) *hostSite {
	t.Helper()
	h := &hostSite{proxy: proxy}
	h.rearm()
	mux := http.NewServeMux()
	page := func(head, body, attrs string) string { return fmt.Sprintf(hostPage, head, body, proxy, attrs) }
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("", "", ""))
	})
	// /slow holds back the load event with an image that the test
	// releases, to see what the loader does before load.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("", `<img src="/slow.png" alt="">`, ""))
	})
	mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		hold := h.hold
		h.mu.Unlock()
		<-hold
		w.Header().Set("Content-Type", "image/gif")
		w.Write([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"))
	})
	// /strict allows nothing but the proxy's origin and wasm compilation.
	mux.HandleFunc("/strict", func(w http.ResponseWriter, r *http.Request) {
		ws := "ws" + strings.TrimPrefix(proxy, "http")
		w.Header().Set("Content-Security-Policy", "default-src "+proxy+" "+ws+"; script-src "+proxy+" 'wasm-unsafe-eval'")
		fmt.Fprint(w, page("", "", ""))
	})
	// /themed is /strict with the site's own stylesheet, which sets the
	// widget's custom properties, and a dark colour scheme.
	mux.HandleFunc("/themed", func(w http.ResponseWriter, r *http.Request) {
		ws := "ws" + strings.TrimPrefix(proxy, "http")
		w.Header().Set("Content-Security-Policy", "default-src "+proxy+" "+ws+"; script-src "+proxy+" 'wasm-unsafe-eval'; style-src 'self' "+proxy)
		fmt.Fprint(w, page(`<link rel="stylesheet" href="/theme.css">`, "", ` data-color-scheme="dark"`))
	})
	// /dark fixes the widget's colour scheme dark, whatever the system's.
	mux.HandleFunc("/dark", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("", "", ` data-color-scheme="dark"`))
	})
	mux.HandleFunc("/theme.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, `[data-porthole] { --ph-brand: rgb(1, 2, 3); --ph-on-brand: #fff; --ph-radius: 4px; }`)
	})
	// /nowasm forbids compiling WebAssembly: the loader must fall back.
	mux.HandleFunc("/nowasm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src "+proxy+"; script-src "+proxy)
		fmt.Fprint(w, page("", "", ""))
	})
	// /api calls the JS API before the widget has loaded: through the
	// array queue before the loader runs, and through Porthole.* after it
	// ran (the load event) but before the wasm did.
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page(`<script>
window.events = [];
window.Porthole = window.Porthole || [];
Porthole.push(["setSessionData", {plan: "pro"}]);
Porthole.push(["on", "open", function () { events.push("open"); }]);
Porthole.push(["on", "message", function (m) { events.push("message:" + m.text); }]);
Porthole.push(["on", "error", function (e) { events.push("error:" + e.code); }]);
Porthole.push(["login", "user-1", "`+strings.Repeat("0", 64)+`", {name: "Ann"}]);
addEventListener("load", function () {
  Porthole.open();
  Porthole.sendMessage("pricing");
});
</script>`, "", ""))
	})
	// /account is a signed-in page of the host site: its backend signed
	// the user in the query (a test stands in for the backend's HMAC).
	mux.HandleFunc("/account", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		fmt.Fprint(w, page(`<script>
window.Porthole = window.Porthole || [];
Porthole.push(["login", `+jsString(user)+`, `+jsString(sign(user))+`, {name: `+jsString(user)+`}]);
</script>`, "<p>Signed in as "+html.EscapeString(user)+"</p>", ""))
	})
	h.Server = httptest.NewServer(mux)
	t.Cleanup(h.Server.Close)
	t.Cleanup(h.release) // runs first: Close waits for a held request
	return h
}

// release lets the held image load, firing the page's load event.
func (h *hostSite) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	hold := h.hold
	h.once.Do(func() { close(hold) })
}

// rearm holds the next page load back again.
func (h *hostSite) rearm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold, h.once = make(chan struct{}), new(sync.Once)
}

// startProxyOn runs porthole on port with the config in data (written
// by writeProxyConfig) and returns it with its origin.
func startProxyOn(t testing.TB, data string, port int) (*proc, string) {
	t.Helper()
	proxy := fmt.Sprintf("http://localhost:%d", port)
	cfg := filepath.Join(data, "porthole.yaml")
	if _, err := os.Stat(cfg); err != nil {
		t.Fatalf("write the config first: %v", err)
	}
	return launch(t, fmt.Sprintf("127.0.0.1:%d", port), data, "--config", cfg), proxy
}

func writeProxyConfig(t testing.TB, data string, port int, hostOrigins ...string) {
	t.Helper()
	origins := `"self"`
	for _, o := range hostOrigins {
		origins += `, "` + o + `"`
	}
	cfg := fmt.Sprintf(`public_url: "http://localhost:%d"
bots:
  - id: demo
    provider: demo
    origins: [%s]
    demo: {typing_delay: 60ms}
    widget:
      title: "Acme Shipping"
      subtitle: "We reply in seconds"
      brand_color: "#0b6e6e"
      greeting: "Ask us anything about your shipment."
`, port, origins)
	if err := os.WriteFile(filepath.Join(data, "porthole.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// site is a proxy plus a host site on another origin, ready for a browser.
type site struct {
	proxy *proc
	url   string // the proxy's origin
	host  *hostSite
	data  string
	port  int
}

func newSite(t testing.TB) *site {
	t.Helper()
	return newSiteIn(t, t.TempDir())
}

// newSiteIn is newSite with the proxy's data in data.
func newSiteIn(t testing.TB, data string) *site {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &site{data: data, port: port, url: fmt.Sprintf("http://localhost:%d", port)}
	s.host = newHostSite(t, s.url)
	writeProxyConfig(t, s.data, port, s.host.URL)
	s.proxy, _ = startProxyOn(t, s.data, port)
	return s
}

// restart kills the proxy and starts it again on the same port and data.
func (s *site) restart(t testing.TB, pause time.Duration) {
	t.Helper()
	s.proxy.kill()
	time.Sleep(pause)
	s.proxy, _ = startProxyOn(t, s.data, s.port)
}

// openChat loads the host page at url, opens the widget and waits for
// the demo bot's greeting.
func openChat(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	navigate(t, ctx, url)
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
}

// In the shadow root.
const shadow = `document.querySelector('[data-porthole]').shadowRoot`

func in(sel string) string { return shadow + `.querySelector(` + jsString(sel) + `)` }

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// waitJS polls a JavaScript expression until it is truthy. A poll does
// not survive a navigation, so one cut short by a new page starts again.
func waitJS(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		tctx, cancel := context.WithDeadline(ctx, deadline)
		_, err := chromedp.Run(tctx, chromedp.Poll[bool](`(function(){try{return !!(`+expr+`)}catch(e){return false}})()`, chromedp.WithPollingInterval(25*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		if msg := err.Error(); time.Now().Before(deadline) && (strings.Contains(msg, "context with specified id") ||
			strings.Contains(msg, "context was destroyed") || strings.Contains(msg, "navigated")) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		dump, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){try{return `+shadow+`.innerHTML.slice(0, 4000)}catch(e){return String(e)}})()`))
		t.Fatalf("waiting for %s: %v\nwidget DOM: %s", what, err, dump)
	}
}

func evalJS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// click clicks an element in the shadow root with real mouse events.
func click(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.JSPath(in(sel)), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// clickText clicks the first button or link in the shadow root whose text
// is exactly label.
func clickText(t testing.TB, ctx context.Context, label string) {
	t.Helper()
	path := `Array.from(` + shadow + `.querySelectorAll("button, a")).filter(function(e){return e.textContent.trim() == ` + jsString(label) + ` && e.offsetParent})[0]`
	waitJS(t, ctx, "a control labelled "+label, path)
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.JSPath(path)), chromedp.Click(chromedp.JSPath(path), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %q: %v", label, err)
	}
}

// typeMessage types text into the composer and presses Enter.
func typeMessage(t testing.TB, ctx context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.JSPath(in(".composer textarea")), text+kb.Enter)); err != nil {
		t.Fatalf("type %q: %v", text, err)
	}
}

// botSays waits for a bot message containing text.
func botSays(t testing.TB, ctx context.Context, text string) {
	t.Helper()
	waitJS(t, ctx, "the bot to say "+text, `Array.from(`+shadow+`.querySelectorAll(".msg.bot")).some(function(m){return m.textContent.indexOf(`+jsString(text)+`) >= 0})`)
}

// count returns how many elements in the shadow root match sel and
// contain text.
func count(t testing.TB, ctx context.Context, sel, text string) int {
	t.Helper()
	return evalJS[int](t, ctx, `Array.from(`+shadow+`.querySelectorAll(`+jsString(sel)+`)).filter(function(m){return m.textContent.indexOf(`+jsString(text)+`) >= 0}).length`)
}

func navigate(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

const launcherStyled = `getComputedStyle(` + shadow + `.querySelector(".launcher")).position == "fixed"`

// TestWidgetConversation: the launcher shows at once without the wasm,
// which loads on intent; then a whole conversation with the demo bot
// through every message kind, and a reload that restores it.
func TestWidgetConversation(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	reqs := recordRequests(t, ctx)

	// Before the page's load event (an image holds it back), the
	// launcher is visible and no wasm has been requested.
	go chromedp.Do(ctx, chromedp.Navigate(s.host.URL+"/slow"))
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	time.Sleep(300 * time.Millisecond)
	if got := reqs.matching(".wasm"); len(got) > 0 {
		t.Fatalf("wasm fetched before interaction or load: %v", got)
	}
	if got := reqs.matching("widget.js"); len(got) != 1 {
		t.Fatalf("loader fetched %d times", len(got))
	}
	// A click is intent: the wasm loads even though the page has not
	// finished loading, and the panel opens once it runs.
	click(t, ctx, ".launcher")
	s.host.release()
	waitJS(t, ctx, "the open panel", in(".panel")+` && !`+in(".panel")+`.hidden`)
	if got := reqs.matching(".wasm"); len(got) != 1 {
		t.Fatalf("wasm requests after the click: %v", got)
	}
	waitJS(t, ctx, "focus in the composer", shadow+`.activeElement == `+in(".composer textarea"))

	// The bot greets, with quick replies; its typing indicator shows
	// before each reply (an observer catches it however short it is).
	botSays(t, ctx, "Porthole demo bot")
	evalJS[any](t, ctx, `window.sawTyping = false, new MutationObserver(function () {
		if (`+in(".typing")+`) sawTyping = true
	}).observe(`+shadow+`, {subtree: true, childList: true}), null`)
	clickText(t, ctx, "Take the tour")
	botSays(t, ctx, "This is a plain text message")
	if !evalJS[bool](t, ctx, `window.sawTyping`) {
		t.Fatal("the typing indicator never showed")
	}
	// Links in text are real, safe links.
	waitJS(t, ctx, "a link in text", in(`.msg.bot .bubble a[href="https://example.com/"], .msg.bot .bubble a[href="https://example.com"]`))
	rel := evalJS[string](t, ctx, in(`.msg.bot .bubble a`)+`.rel`)
	if !strings.Contains(rel, "noopener") || !strings.Contains(rel, "noreferrer") {
		t.Fatalf("link rel = %q", rel)
	}
	// A quick reply, then a postback button, then a carousel button.
	clickText(t, ctx, "Next: buttons")
	botSays(t, ctx, "Buttons stay on the message")
	if n := count(t, ctx, ".msg.user", "Next: buttons"); n != 1 {
		t.Fatalf("the quick reply shows %d times as the visitor's message", n)
	}
	clickText(t, ctx, "Show me a carousel")
	botSays(t, ctx, "A carousel puts cards side by side")
	waitJS(t, ctx, "three carousel cards", shadow+`.querySelectorAll(".card").length == 3`)
	// The carousel works from the keyboard: focus the track, go right.
	clickText(t, ctx, "Pick the lighthouse")
	botSays(t, ctx, "The lighthouse it is")
	// Media: image with alt text, video, audio, file. Once the image has
	// loaded, the log still shows the newest message.
	waitJS(t, ctx, "the image", in(`.media img[alt="A round porthole looking out at the sea"]`))
	waitJS(t, ctx, "the video", in(`.media video`))
	waitJS(t, ctx, "the loaded image", in(`.media img`)+`.complete && `+in(`.media img`)+`.naturalWidth > 0`)
	atEnd := `(function(l){return l.scrollHeight - l.scrollTop - l.clientHeight < 2})(` + in(".log") + `)`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](atEnd, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		m := evalJS[map[string]float64](t, ctx, `(function(l){return {height: l.scrollHeight, top: l.scrollTop, client: l.clientHeight}})(`+in(".log")+`)`)
		t.Fatalf("the log does not end at the newest message: %v (%v)", m, err)
	}
	clickText(t, ctx, "Yes, please")
	waitJS(t, ctx, "the audio", in(`.media audio`))
	waitJS(t, ctx, "the file link", in(`a.file[href$=".pdf"]`))
	// Typed text and the collect-input step.
	clickText(t, ctx, "Sure")
	botSays(t, ctx, "What should I call you?")
	typeMessage(t, ctx, "Ada")
	botSays(t, ctx, "Nice to meet you, Ada!")

	// A reload restores the history and the conversation.
	before := evalJS[int](t, ctx, shadow+`.querySelectorAll(".msg").length`)
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	waitJS(t, ctx, "the restored transcript", shadow+`.querySelectorAll(".msg").length >= `+fmt.Sprint(before))
	if n := count(t, ctx, ".msg.user", "Ada"); n != 1 {
		t.Fatalf("after reload the visitor's message shows %d times", n)
	}
	typeMessage(t, ctx, "hello")
	botSays(t, ctx, "Hello, Ada!")
}

// TestWidgetSurvivesServerRestart: the server dies mid-conversation; the
// widget shows the reconnecting banner, keeps what the visitor types
// meanwhile, reconnects when the server is back and delivers that
// message exactly once.
func TestWidgetSurvivesServerRestart(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")

	s.proxy.kill()
	waitJS(t, ctx, "the reconnecting banner", in(".banner")+`.textContent == "Reconnecting…" && !`+in(".banner")+`.hidden`)
	typeMessage(t, ctx, "typed while you were away")
	waitJS(t, ctx, "the message shown as sending", in(".msg.user .meta")+` && `+in(".msg.user .meta")+`.textContent.length > 0`)

	s.proxy, _ = startProxyOn(t, s.data, s.port)
	waitJS(t, ctx, "the banner to go", in(".banner")+`.hidden`)
	// The demo bot does not understand it and says so: the message
	// reached the bot.
	botSays(t, ctx, "Sorry, I didn't get that")
	if n := count(t, ctx, ".msg.user", "typed while you were away"); n != 1 {
		t.Fatalf("the message shows %d times", n)
	}
	// The server holds it once, too.
	_, msgs := replayOf(t, s, ctx)
	n := 0
	for _, m := range msgs {
		if strings.Contains(m, "typed while you were away") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the server stored the message %d times", n)
	}
}

// replayOf reads the visitor's token from the page's localStorage and
// replays the conversation from the server with a plain client.
func replayOf(t testing.TB, s *site, ctx context.Context) (string, []string) {
	t.Helper()
	token := evalJS[string](t, ctx, `localStorage.getItem("porthole:demo:visitor")`)
	if token == "" {
		t.Fatal("no visitor token in localStorage")
	}
	_, msgs := replay(t, s.proxy, token, 0)
	var texts []string
	for _, m := range msgs {
		texts = append(texts, m.Body.Summary())
	}
	return token, texts
}
