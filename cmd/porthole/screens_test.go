package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

var updateScreens = flag.Bool("update-screenshots", false, "write the README's screenshots to docs/")

// screenshot captures the tab of ctx as name: into docs/ with
// -update-screenshots, else into a temporary directory (the capture
// itself still has to work).
func screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if *updateScreens {
		dir = filepath.Join("..", "..", "docs")
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWidgetLayout opens the widget on a desktop and on a phone and checks
// where the panel sits: anchored bottom-right on the desktop, the whole
// screen on a phone with the composer inside the viewport. With
// -update-screenshots it writes the images the README shows.
func TestWidgetLayout(t *testing.T) {
	s := newSite(t)
	for _, tc := range []struct {
		name          string
		width, height int
	}{
		{"desktop", 1280, 800},
		{"phone", 390, 780},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t, tc.width, tc.height)
			openChat(t, ctx, s.host.URL+"/")
			clickText(t, ctx, "Show the menu")
			botSays(t, ctx, "everything I can show you")
			if !evalJS[bool](t, ctx, in(".badge")+".hidden") {
				t.Error("the unread badge shows while the panel is open")
			}

			rect := evalJS[map[string]float64](t, ctx, `(function(){var r = `+in(".panel")+`.getBoundingClientRect(), c = `+in(".composer")+`.getBoundingClientRect();
				return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, composerBottom: c.bottom, vw: innerWidth, vh: innerHeight}})()`)
			if tc.width < 480 {
				if rect["left"] != 0 || rect["top"] != 0 || rect["right"] != rect["vw"] || rect["bottom"] < rect["vh"]-1 {
					t.Errorf("phone panel %v does not fill the screen", rect)
				}
			} else if rect["right"] > rect["vw"]-10 || rect["bottom"] > rect["vh"]-60 || rect["right"]-rect["left"] > 420 {
				t.Errorf("desktop panel %v is not a floating panel above the launcher", rect)
			}
			if rect["composerBottom"] > rect["vh"] {
				t.Errorf("composer bottom %v is below the viewport (%v)", rect["composerBottom"], rect["vh"])
			}
			screenshot(t, ctx, "widget-"+tc.name+".png")
		})
	}
}

// TestWidgetDarkLayout opens a panel fixed dark (data-color-scheme) on a
// system in light mode: the panel and the bot's bubbles take the dark
// colours, and axe-core finds no contrast or other WCAG violation. With
// -update-screenshots it writes the image the README shows.
func TestWidgetDarkLayout(t *testing.T) {
	axe := axeSource(t)
	s := newSite(t)
	ctx := browser(t, 1280, 800)
	navigate(t, ctx, s.host.URL+"/dark")
	if evalJS[bool](t, ctx, `matchMedia("(prefers-color-scheme: dark)").matches`) {
		t.Fatal("the browser is in dark mode already; the test needs a light system")
	}
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	clickText(t, ctx, "Show the menu")
	botSays(t, ctx, "everything I can show you")
	for sel, want := range map[string]string{".panel": "rgb(22, 25, 31)", ".msg.bot .bubble": "rgb(38, 43, 51)"} {
		if got := evalJS[string](t, ctx, `getComputedStyle(`+in(sel)+`).backgroundColor`); got != want {
			t.Errorf("%s background = %s, want the dark scheme's %s", sel, got, want)
		}
	}
	for _, v := range runAxe(t, ctx, axe, `document.querySelector("[data-porthole]")`) {
		t.Errorf("axe: %s", v)
	}
	screenshot(t, ctx, "widget-dark.png")
}

// TestWidgetRightToLeftLayout opens the widget on an Arabic page: the
// panel stays where the site put it (bottom right), and its inside is
// mirrored: the close button and the send button on the left, the
// visitor's messages on the left, the bot's on the right. With
// -update-screenshots it writes the image the README shows.
func TestWidgetRightToLeftLayout(t *testing.T) {
	s := newLangSite(t)
	ctx := browser(t, 1280, 800)
	navigate(t, ctx, s.host.URL+"/ar")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	botSays(t, ctx, "أهلًا بك")
	clickText(t, ctx, "تتبّع شحنة")
	botSays(t, ctx, "أرسل لنا رقم الشحنة")
	panel, log := rect(t, ctx, ".panel"), rect(t, ctx, ".log")
	if panel["right"] < panel["vw"]-40 || panel["right"]-panel["left"] > 420 {
		t.Errorf("the panel %v is not anchored bottom right", panel)
	}
	for _, c := range []struct{ left, right, what string }{
		{".close", ".titles", "the close button left of the title"},
		{".send", "textarea", "the send button left of the composer"},
	} {
		if l, r := rect(t, ctx, c.left), rect(t, ctx, c.right); l["right"] > r["left"]+1 {
			t.Errorf("%s: %v, %v", c.what, l, r)
		}
	}
	if user, bot := rect(t, ctx, ".msg.user .bubble"), rect(t, ctx, ".msg.bot .bubble"); user["left"]-log["left"] > 30 || log["right"]-bot["right"] > 30 {
		t.Errorf("messages not mirrored: visitor's %v, bot's %v in %v", user, bot, log)
	}
	screenshot(t, ctx, "widget-rtl.png")
}

// TestChatPageLayout lays the no-JavaScript chat page out on a desktop
// and a phone, with a carousel and media in it: nothing wider than the
// screen, the composer on screen at the end of the conversation. With
// -update-screenshots it writes the images the README shows.
func TestChatPageLayout(t *testing.T) {
	p := start(t, t.TempDir())
	for _, tc := range []struct {
		name          string
		width, height int
	}{
		{"desktop", 1280, 800},
		{"phone", 390, 780},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t, tc.width, tc.height)
			navigate(t, ctx, "http://"+p.addr+"/chat/demo")
			typeInto(t, ctx, mainDoc, "textarea", "hello")
			clickButton(t, ctx, mainDoc, "Send")
			for _, b := range []string{"Take the tour", "Next: buttons", "Show me a carousel"} {
				clickButton(t, ctx, mainDoc, b)
			}
			waitDOM(t, ctx, mainDoc, "the carousel", func(d *goquery.Document) bool { return d.Find(".card").Length() == 3 })
			waitJS(t, ctx, "the card images", `Array.from(document.images).every(function(i){return i.complete && i.naturalWidth > 0})`)
			m := evalJS[map[string]float64](t, ctx, `(function(){var c = document.querySelector(".composer").getBoundingClientRect();
				return {scrollW: document.documentElement.scrollWidth, vw: innerWidth, vh: innerHeight, top: c.top, bottom: c.bottom}})()`)
			if m["scrollW"] > m["vw"] {
				t.Errorf("the page is %v px wide on a %v px screen", m["scrollW"], m["vw"])
			}
			if m["bottom"] > m["vh"] || m["top"] < 0 {
				t.Errorf("composer at %v–%v is off the %v px screen", m["top"], m["bottom"], m["vh"])
			}
			screenshot(t, ctx, "chat-page-"+tc.name+".png")
		})
	}
}

// TestWidgetPreviewLayout: the preview of a reply to a closed panel sits
// above the launcher, on its side and inside the viewport, without
// covering it. With -update-screenshots it writes the image the README
// shows.
func TestWidgetPreviewLayout(t *testing.T) {
	s := newSiteConfig(t, func(cfg string) string { return strings.Replace(cfg, "typing_delay: 60ms", "typing_delay: 1200ms", 1) })
	ctx := browser(t, 1280, 800)
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	typeMessage(t, ctx, "hello")
	click(t, ctx, ".launcher")
	waitJS(t, ctx, "the preview", in(".preview .tt"))
	// The pointer leaves the launcher (its hover grows it) and the
	// preview's rise ends.
	if _, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: 20, Y: 20}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	p, l := rect(t, ctx, ".preview"), rect(t, ctx, ".launcher")
	if p["bottom"] > l["top"] || p["right"] > p["vw"] || p["left"] < 0 || p["right"] < l["left"] {
		t.Errorf("the preview %v is not above the launcher %v on its side", p, l)
	}
	screenshot(t, ctx, "widget-preview.png")
}
