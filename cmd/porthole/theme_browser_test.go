package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestWidgetThemeStrictCSP: under a strict CSP (no inline styles), the
// host page's own stylesheet restyles the widget through its custom
// properties, before and after the widget loads; data-color-scheme
// fixes the panel dark; and "save conversation" hands over a plain-text
// transcript of the visitor's conversation; messages carry their times.
func TestWidgetThemeStrictCSP(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/themed")
	evalJS[any](t, ctx, `window.violations = [], document.addEventListener("securitypolicyviolation", function (e) { violations.push(e.violatedDirective + " " + e.blockedURI) }), null`)
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	brand := `getComputedStyle(` + in(".launcher") + `).backgroundColor`
	if got := evalJS[string](t, ctx, brand); got != "rgb(1, 2, 3)" {
		t.Fatalf("launcher before the widget loads = %s, want the host page's --ph-brand rgb(1, 2, 3)", got)
	}
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	typeMessage(t, ctx, "hello")
	botSays(t, ctx, "Hello, there!")
	if got := evalJS[string](t, ctx, `document.querySelector("[data-porthole]").getAttribute("data-scheme")`); got != "dark" {
		t.Errorf("host data-scheme = %q, want dark", got)
	}
	if got := evalJS[string](t, ctx, `getComputedStyle(`+in(".panel")+`).backgroundColor`); got != "rgb(22, 25, 31)" {
		t.Errorf("panel background = %s, want the dark scheme's rgb(22, 25, 31)", got)
	}
	if got := evalJS[string](t, ctx, brand); got != "rgb(1, 2, 3)" {
		t.Errorf("launcher with the widget loaded = %s, want rgb(1, 2, 3)", got)
	}
	if got := evalJS[string](t, ctx, `getComputedStyle(`+in(".msg.user .bubble")+`).borderTopLeftRadius`); got != "4px" {
		t.Errorf("bubble radius = %s, want the host page's --ph-radius 4px", got)
	}
	// Times: on each stored message, in the page's language (en). (The
	// widget has no day dividers yet: they did not fit the wasm budget;
	// the chat page has them.)
	if got := evalJS[string](t, ctx, in(".msg.user time.at")+`.textContent`); !strings.Contains(got, ":") || !(strings.HasSuffix(got, "AM") || strings.HasSuffix(got, "PM")) {
		t.Errorf("time of the visitor's message = %q, want an English time like 7:05 PM", got)
	}
	// Save conversation: catch the Blob the widget hands to the download.
	evalJS[any](t, ctx, `(function(){var o = URL.createObjectURL; URL.createObjectURL = function (b) { window.saved = b; return o.call(URL, b) }})(), null`)
	click(t, ctx, `.header button[aria-label="Save conversation"]`)
	waitJS(t, ctx, "the saved transcript", `!!window.saved`)
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.saved.text()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "You: hello\n") || !strings.Contains(text, "Hello, there!") || !strings.Contains(text, " UTC] You: hello") {
		t.Errorf("saved transcript:\n%s", text)
	}
	if v := evalJS[[]string](t, ctx, `window.violations`); len(v) > 0 {
		t.Fatalf("CSP violations: %v", v)
	}
}
