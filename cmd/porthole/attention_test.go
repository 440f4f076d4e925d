package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
)

// hidePage makes the page report itself hidden (or visible again) and
// fires visibilitychange, as a switch to another tab does. Headless
// Chromium keeps a lone tab visible, so the test stands in for the tab
// switch; the widget reads the same document.visibilityState.
func hidePage(t testing.TB, ctx context.Context, hidden bool) {
	t.Helper()
	state := "visible"
	if hidden {
		state = "hidden"
	}
	evalJS[bool](t, ctx, `(function(){window.__vis = `+jsString(state)+`;
Object.defineProperty(document, "visibilityState", {configurable: true, get: function(){ return window.__vis }});
document.dispatchEvent(new Event("visibilitychange")); return true})()`)
}

// slowReplies makes the demo bot type for 1.2 s before a reply: time
// for a test to close the panel first.
func slowReplies(cfg string) string {
	return strings.Replace(cfg, "typing_delay: 60ms", "typing_delay: 1200ms", 1)
}

// TestWidgetAttention: with the panel closed, a bot reply shows its
// first line in a preview beside the launcher (in a polite live region,
// with a dismiss button), counts in the title of a hidden page (and the
// page's own title survives), plays the opt-in chime, and all of it
// clears when the panel opens; axe-core finds nothing wrong with the
// preview; dismissing it keeps the panel closed.
func TestWidgetAttention(t *testing.T) {
	s := newSiteConfig(t, slowReplies)
	ctx := browser(t, 1280, 860)
	reqs := recordRequests(t, ctx)
	openChat(t, ctx, s.host.URL+"/")
	if n := count(t, ctx, ".preview", ""); n != 0 {
		t.Fatal("a preview showed while the panel was open")
	}
	evalJS[bool](t, ctx, `Porthole.init({sound: true}), true`)
	typeMessage(t, ctx, "hello")
	click(t, ctx, ".launcher") // closed before the reply
	hidePage(t, ctx, true)
	waitJS(t, ctx, "the preview", in(".preview .tt")+` && `+in(".preview .tt")+`.textContent.length > 0`)
	waitJS(t, ctx, "the title count", `document.title == "(1) Acme Shipping"`)
	line := evalJS[string](t, ctx, `Array.from(`+in(".preview .tt")+`.childNodes).filter(function(n){return n.nodeType == 3}).map(function(n){return n.textContent}).join("")`)
	if strings.Contains(line, "\n") || line == "" {
		t.Errorf("preview line %q", line)
	}
	if live := evalJS[string](t, ctx, in(".preview")+`.parentNode.getAttribute("aria-live")`); live != "polite" {
		t.Errorf("the preview's region is aria-live=%q, want polite", live)
	}
	if name := evalJS[string](t, ctx, in(".preview .tx")+`.getAttribute("aria-label")`); name != "Dismiss" {
		t.Errorf("dismiss button named %q", name)
	}
	if sr := evalJS[string](t, ctx, in(".preview .tt .sr")+`.textContent`); sr != "New message from Acme Shipping: " {
		t.Errorf("the preview's spoken prefix is %q", sr)
	}
	for _, v := range runAxe(t, ctx, axeSource(t), `document.querySelector("[data-porthole]")`) {
		t.Errorf("axe, with the preview: %s", v)
	}
	waitFor(t, "the chime", 5*time.Second, func() bool { return len(reqs.matching("/static/chime.wav")) == 1 })
	if resp, err := http.Get(s.url + "/static/chime.wav"); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("GET /static/chime.wav: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	// The page changes its own title meanwhile: back on the page, that
	// title stays, without the count.
	evalJS[bool](t, ctx, `document.title = "Acme Shipping — tracking", true`)
	hidePage(t, ctx, false)
	if title := evalJS[string](t, ctx, `document.title`); title != "Acme Shipping — tracking" {
		t.Errorf("title after the page came back: %q", title)
	}
	evalJS[bool](t, ctx, `document.title = "Acme Shipping", true`)
	hidePage(t, ctx, true)
	waitJS(t, ctx, "the title count again", `document.title == "(1) Acme Shipping"`)
	hidePage(t, ctx, false)
	waitJS(t, ctx, "the title restored", `document.title == "Acme Shipping"`)

	click(t, ctx, ".preview .tt")
	waitJS(t, ctx, "the panel open, the preview gone", `!`+in(".panel")+`.hidden && !`+in(".preview")+` && `+in(".badge")+`.hidden`)
	if last := evalJS[string](t, ctx, `Array.from(`+shadow+`.querySelectorAll(".msg.bot")).pop().textContent`); !strings.Contains(last, line) {
		t.Errorf("the preview %q is not the newest bot message %q", line, last)
	}

	// Dismissed, the preview goes and the panel stays closed.
	typeMessage(t, ctx, "hello again")
	click(t, ctx, ".launcher")
	waitJS(t, ctx, "a new preview", in(".preview .tx"))
	click(t, ctx, ".preview .tx")
	waitJS(t, ctx, "the preview dismissed", `!`+in(".preview"))
	if evalJS[bool](t, ctx, `!`+in(".panel")+`.hidden`) {
		t.Error("dismissing the preview opened the panel")
	}
	if title := evalJS[string](t, ctx, `document.title`); title != "Acme Shipping" {
		t.Errorf("a visible page's title changed: %q", title)
	}
}

// TestWidgetNoSoundByDefault: without data-sound or init({sound}), a
// reply to a closed panel fetches no sound.
func TestWidgetNoSoundByDefault(t *testing.T) {
	s := newSiteConfig(t, slowReplies)
	ctx := browser(t, 1280, 860)
	reqs := recordRequests(t, ctx)
	openChat(t, ctx, s.host.URL+"/")
	typeMessage(t, ctx, "hello")
	click(t, ctx, ".launcher")
	waitJS(t, ctx, "the preview", in(".preview .tt"))
	time.Sleep(300 * time.Millisecond)
	if n := len(reqs.matching("chime")); n != 0 {
		t.Fatalf("the chime was fetched without sound on: %d", n)
	}
}

// TestChatlayerPageContext: on a single-page site, a pushState to
// /pricing after the chat opened and Porthole.setContext({plan: "pro"})
// reach Chatlayer as session data (page.url, page.title, page.plan) with
// the visitor's next message; an identity key in setContext does not.
func TestChatlayerPageContext(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	addr := freeAddr(t)
	proxy := "http://" + addr
	emu.SetCallback(proxy + "/hooks/chatlayer/acme")
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme</title>
<script>window.Porthole = window.Porthole || []; Porthole.push(["on", "ready", function () { window.phReady = true; }]);</script></head>
<body><main><h1>Acme</h1></main><script async src="%s/widget.js" data-bot="acme"></script></body></html>`, proxy)
	}))
	t.Cleanup(host.Close)
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`bots:
  - id: acme
    provider: chatlayer
    origins: [%q]
    chatlayer:
      base_url: %q
      channel_id: %q
      token: "${CHATLAYER_TOKEN}"
      verify_token: "${CHATLAYER_VERIFY}"
      reorder_wait: 300ms
`, host.URL, emu.URL, chatlayertest.DefaultChannelID)), 0o600)
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	launch(t, addr, data, "--config", cfg)

	ctx := browser(t, 1280, 860)
	navigate(t, ctx, host.URL+"/")
	waitJS(t, ctx, "the launcher", launcherStyled)
	click(t, ctx, ".launcher")
	waitJS(t, ctx, "the widget", `window.phReady`)
	evalJS[bool](t, ctx, `history.pushState({}, "", "/pricing"), document.title = "Pricing", true`)
	evalJS[bool](t, ctx, `Porthole.setContext({plan: "pro", email: "forged@example.com"}), true`)
	time.Sleep(900 * time.Millisecond) // the page change settles (500 ms)
	typeMessage(t, ctx, "how much?")
	sd := emu.SessionData(firstTextUser(t, emu))
	if u := string(sd["page.url"]); !strings.HasSuffix(u, `/pricing"`) {
		t.Errorf("page.url %s, want the pricing page; session data %s", u, fmt.Sprint(sd))
	}
	if got := string(sd["page.title"]); got != `"Pricing"` {
		t.Errorf("page.title %s", got)
	}
	if got := string(sd["page.plan"]); got != `"pro"` {
		t.Errorf("page.plan %s", got)
	}
	for k := range sd {
		if strings.Contains(k, "email") {
			t.Errorf("an identity key from setContext reached Chatlayer: %s", k)
		}
	}
}

// TestEngineAttention: the preview and the title count of
// TestWidgetAttention in each engine (engines_test.go): Chromium,
// Firefox ESR and WebKitGTK.
func TestEngineAttention(t *testing.T) {
	for _, e := range engineSpecs {
		t.Run(e.name, func(t *testing.T) {
			s := newEngineSiteWith(t, func(t testing.TB, data string, port int, origins ...string) {
				writeProxyConfig(t, data, port, origins...)
				cfg := filepath.Join(data, "porthole.yaml")
				text, _ := os.ReadFile(cfg)
				os.WriteFile(cfg, []byte(slowReplies(string(text))), 0o600)
			})
			p := openEngine(t, e)

			p.navigate(s.host.URL + "/")
			p.click("the launcher", engineLauncher)
			p.waitFor("focus in the composer", shadow+`.activeElement && `+shadow+`.activeElement == `+engineComposer)
			p.keys("hello", true)
			p.waitFor("the visitor's message", engineMessages("user", "hello")+` == 1`)
			p.click("the launcher, to close", engineLauncher)
			evalEngine[any](p, `(function(){Object.defineProperty(document, "visibilityState", {configurable: true, get: function(){ return "hidden" }});
document.dispatchEvent(new Event("visibilitychange")); return null})()`)
			p.waitFor("the preview", in(".preview .tt")+` && `+in(".preview .tt")+`.textContent.indexOf("Hello, there!") >= 0`)
			p.waitFor("the title count", `/^\([1-9]\) Acme Shipping$/.test(document.title)`)
			evalEngine[any](p, `(function(){Object.defineProperty(document, "visibilityState", {configurable: true, get: function(){ return "visible" }});
document.dispatchEvent(new Event("visibilitychange")); return null})()`)
			p.waitFor("the title restored", `document.title == "Acme Shipping"`)
			p.click("the preview", in(".preview .tt"))
			p.waitFor("the open panel without the preview", engineDialog+` && !`+in(".preview"))
		})
	}
}

// TestEngineChatlayerPageContext: the SPA navigation of
// TestChatlayerPageContext in each engine (engines_test.go): after
// pushState and then a hashchange, the visitor's next message brings the
// page's new URL and title to the Chatlayer emulator as session data.
func TestEngineChatlayerPageContext(t *testing.T) {
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	for _, e := range engineSpecs {
		t.Run(e.name, func(t *testing.T) {
			emu := chatlayertest.NewServer(chatlayertest.Options{})
			t.Cleanup(emu.Close)
			s := newEngineSiteWith(t, func(t testing.TB, data string, port int, origins ...string) {
				writeProxyConfig(t, data, port, origins...)
				cfg := filepath.Join(data, "porthole.yaml")
				text, _ := os.ReadFile(cfg)
				os.WriteFile(cfg, []byte(onChatlayer(string(text), emu.URL)), 0o600)
			})
			emu.SetCallback(s.url + "/hooks/chatlayer/demo")
			p := openEngine(t, e)

			p.navigate(s.host.URL + "/")
			p.click("the launcher", engineLauncher)
			p.waitFor("the widget's greeting from Chatlayer", shadow+`.querySelector(".msg.bot")`)
			evalEngine[bool](p, `history.pushState({}, "", "/pricing"), document.title = "Pricing", true`)
			time.Sleep(900 * time.Millisecond) // the page change settles (500 ms)
			evalEngine[bool](p, `location.hash = "#plans", true`)
			time.Sleep(900 * time.Millisecond)
			evalEngine[bool](p, engineComposer+`.focus(), true`)
			p.keys("how much?", true)
			sd := emu.SessionData(firstTextUser(t, emu))
			if u := string(sd["page.url"]); !strings.HasSuffix(u, `/pricing#plans"`) {
				t.Errorf("%s: page.url %s, want the pricing page's plans; session data %s", e.name, u, fmt.Sprint(sd))
			}
			if got := string(sd["page.title"]); got != `"Pricing"` {
				t.Errorf("%s: page.title %s", e.name, got)
			}
		})
	}
}

// firstTextUser waits up to 20 s for the first text message to reach the
// Chatlayer emulator and returns its user id.
func firstTextUser(t *testing.T, emu *chatlayertest.Server) (user string) {
	t.Helper()
	waitFor(t, "the message with Chatlayer", 20*time.Second, func() bool {
		for _, r := range emu.Requests() {
			if r.Kind == "text" {
				user = r.UserID
				return true
			}
		}
		return false
	})
	return user
}
