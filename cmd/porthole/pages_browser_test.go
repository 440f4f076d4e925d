package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestWidgetAPIBeforeLoad: calls made before the widget has loaded (the
// array queue and Porthole.* on DOMContentLoaded) take effect once it runs.
func TestWidgetAPIBeforeLoad(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/api")
	waitJS(t, ctx, "the panel opened by Porthole.open()", in(".panel")+` && !`+in(".panel")+`.hidden`)
	waitJS(t, ctx, "the visitor's message from sendMessage", `Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("pricing") >= 0})`)
	// The pricing block shows the session data set before load.
	botSays(t, ctx, "your plan is: pro")
	events := evalJS[[]string](t, ctx, `window.events`)
	joined := strings.Join(events, "|")
	if !strings.Contains(joined, "open") || !strings.Contains(joined, "message:") {
		t.Fatalf("events = %v, want open and message", events)
	}
	// This bot has no identity_secret: the queued login is refused.
	waitJS(t, ctx, "the refused login", `window.events.indexOf("error:unauthorized") >= 0`)
	if !evalJS[bool](t, ctx, `Porthole.isOpen()`) {
		t.Fatal("Porthole.isOpen() is false with the panel open")
	}
	evalJS[any](t, ctx, `Porthole.close(), null`)
	waitJS(t, ctx, "the panel to close", in(".panel")+`.hidden`)
}

// TestWidgetStrictCSP: on a host page whose CSP allows nothing but the
// proxy's origin and 'wasm-unsafe-eval', the widget loads, styles itself
// and holds a conversation, without a single CSP violation.
func TestWidgetStrictCSP(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/strict")
	evalJS[any](t, ctx, `window.violations = [], document.addEventListener("securitypolicyviolation", function (e) { violations.push(e.violatedDirective + " " + e.blockedURI) }), null`)
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	typeMessage(t, ctx, "hello")
	botSays(t, ctx, "Hello, there!")
	clickText(t, ctx, "Take the tour")
	botSays(t, ctx, "This is a plain text message")
	if v := evalJS[[]string](t, ctx, `window.violations`); len(v) > 0 {
		t.Fatalf("CSP violations: %v", v)
	}
}

// TestWidgetAccessibility runs axe-core (npm) against the page with the
// panel open, on a desktop and on a phone, with WCAG 2.2 AA rules.
func TestWidgetAccessibility(t *testing.T) {
	axe := axeSource(t)
	s := newSite(t)
	for _, tc := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 860}, {"phone", 390, 780}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t, tc.width, tc.height)
			navigate(t, ctx, s.host.URL+"/")
			click(t, ctx, ".launcher")
			botSays(t, ctx, "Where shall we start?")
			clickText(t, ctx, "Take the tour")
			clickText(t, ctx, "Next: buttons")
			clickText(t, ctx, "Show me a carousel")
			waitJS(t, ctx, "the carousel", shadow+`.querySelectorAll(".card").length == 3`)
			report := runAxe(t, ctx, axe, `document.querySelector("[data-porthole]")`)
			for _, v := range report {
				t.Errorf("axe: %s", v)
			}
		})
	}
}

// axeSource reads axe-core, which `npm ci` installs.
func axeSource(t testing.TB) string {
	t.Helper()
	axe, err := os.ReadFile(filepath.Join("..", "..", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("axe-core is missing (npm ci installs it): %v", err)
		}
		t.Skipf("axe-core is not installed (run npm ci): %v", err)
	}
	return string(axe)
}

// runAxe runs axe-core's WCAG 2.2 AA rules on the element the JavaScript
// expression context gives and returns the violations, one line each.
func runAxe(t testing.TB, ctx context.Context, axe, context string) []string {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axe+";true")); err != nil {
		t.Fatal(err)
	}
	report, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(`+context+`, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}
	}).then(function (r) {
		return r.violations.map(function (v) {
			return v.id + ": " + v.help + " — " + v.nodes.map(function (n) { return n.target.join(" ") + " " + n.failureSummary }).join("; ")
		})
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// TestDemoPage: `make run`'s page at / embeds the widget like a customer
// site and talks to the built-in demo bot, with the page's session data.
func TestDemoPage(t *testing.T) {
	p := start(t, t.TempDir())
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, "http://"+p.addr+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	clickText(t, ctx, "Pricing")
	botSays(t, ctx, "your plan is: Pro (demo)")
}
