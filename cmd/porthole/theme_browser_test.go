package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

// TestWidgetThemeStrictCSP: under a strict CSP (no inline styles), the
// host page's own stylesheet restyles the widget through its custom
// properties, before and after the widget loads; data-color-scheme
// fixes the panel dark; and "save conversation" hands over a plain-text
// transcript of the visitor's conversation; messages carry their times
// under a day divider.
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
	// Times: on each stored message, in the page's language (en), and
	// today's divider above the first (TestWidgetDayDividers has more).
	if got := evalJS[[]string](t, ctx, `Array.from(`+shadow+`.querySelectorAll(".log > .day")).map(function (d) { return d.textContent })`); len(got) != 1 || got[0] != "Today" {
		t.Errorf("day dividers = %q, want [Today]", got)
	}
	if got := evalJS[string](t, ctx, in(".msg.user time.at")+`.textContent`); !strings.Contains(got, ":") || !(strings.HasSuffix(got, "AM") || strings.HasSuffix(got, "PM")) {
		t.Errorf("time of the visitor's message = %q, want an English time like 7:05 PM", got)
	}
	if text := download(t, ctx, func() { click(t, ctx, `.header button[aria-label="Save conversation"]`) }); !strings.Contains(text, "You: hello\n") || !strings.Contains(text, "Hello, there!") || !strings.Contains(text, " UTC] You: hello") {
		t.Errorf("saved transcript:\n%s", text)
	}
	if v := evalJS[[]string](t, ctx, `window.violations`); len(v) > 0 {
		t.Fatalf("CSP violations: %v", v)
	}
}

// TestWidgetDayDividers: the widget puts the day above a day's first
// message, "Today", "Yesterday" or the date, in the visitor's language
// and time zone (Tokyo here, the machine's is another), one divider for
// a run of messages of the same day; a language switch relabels them.
// The dates are the chat page's too (web.MediumDate).
func TestWidgetDayDividers(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
		t.Fatal(err)
	}
	openChat(t, ctx, s.host.URL+"/")

	// Earlier days' messages go into the store while the proxy is down,
	// at noon Tokyo time, after the greeting of today.
	s.proxy.kill()
	st, err := store.OpenBolt(filepath.Join(s.data, "porthole.db"), store.BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	convs, err := st.List(context.Background(), "demo", store.Cursor{}, 10)
	if err != nil || len(convs) != 1 {
		t.Fatalf("conversations: %v, %v", convs, err)
	}
	tokyo := time.FixedZone("JST", 9*3600) // Japan has kept +9 without DST since 1951
	y, m, d := time.Now().In(tokyo).Date()
	noon := func(daysAgo int) time.Time { return time.Date(y, m, d-daysAgo, 12, 0, 0, 0, tokyo) }
	for _, msg := range []struct {
		at   time.Time
		text string
	}{
		{noon(3), "Three days ago, first"}, {noon(3).Add(time.Hour), "Three days ago, second"},
		{noon(1), "Yesterday's"}, {time.Now(), "Today's"},
	} {
		body := widget.Body{Kind: widget.KindText, Text: msg.text}
		if _, _, err := st.Append(context.Background(), store.Message{Conversation: convs[0].ID, From: store.FromBot, At: msg.at, Body: body.AppendJSON(nil), State: store.Delivered}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	s.proxy, _ = startProxyOn(t, s.data, s.port)

	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	if evalJS[bool](t, ctx, `!`+in(".panel")+` || `+in(".panel")+`.hidden`) {
		click(t, ctx, ".launcher")
	}
	botSays(t, ctx, "Today's")
	days := `Array.from(` + shadow + `.querySelectorAll(".log > .day")).map(function (d) { return d.textContent }).join(" | ")`
	want := "Today | " + web.MediumDate("en", noon(3)) + " | Yesterday | Today"
	if got := evalJS[string](t, ctx, days); got != want {
		t.Errorf("day dividers = %q, want %q (the greeting, three days ago, yesterday, today)", got, want)
	}
	// Each divider is above its day's first message (with "New messages"
	// between them when that message is the first unread).
	order := `Array.from(` + shadow + `.querySelectorAll(".log > .day")).map(function (d) {
		var n = d.nextElementSibling; while (!n.classList.contains("msg")) n = n.nextElementSibling
		return n.querySelector(".bubble").textContent }).join(" | ")`
	if got := evalJS[string](t, ctx, order); !strings.HasSuffix(got, " | Three days ago, first | Yesterday's | Today's") || strings.Count(got, " | ") != 3 {
		t.Errorf("messages under the dividers = %q", got)
	}
	evalJS[any](t, ctx, `Porthole.setLanguage("de"), null`)
	want = "Heute | " + web.MediumDate("de", noon(3)) + " | Gestern | Heute"
	waitJS(t, ctx, "German day dividers", days+` === `+jsString(want))
}

// TestWidgetDayDividersAtMidnight: a panel left open over midnight
// relabels its days by itself: today's messages become "Yesterday". The
// page's clock is set to 12 s before midnight in Tokyo (Date and the
// date formats' default "now" are shifted; timers run in real time).
func TestWidgetDayDividersAtMidnight(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
		t.Fatal(err)
	}
	const lateClock = `(function () {
		var D = Date, off = new D().setHours(24, 0, 0, 0) - 12000 - D.now()
		function Shifted() {
			var a = Array.prototype.slice.call(arguments)
			if (!new.target) return new D(D.now() + off).toString()
			return a.length ? new (Function.prototype.bind.apply(D, [null].concat(a)))() : new D(D.now() + off)
		}
		Shifted.prototype = D.prototype
		Shifted.now = function () { return D.now() + off }
		Shifted.UTC = D.UTC; Shifted.parse = D.parse
		window.Date = Shifted
		var fmt = Object.getOwnPropertyDescriptor(Intl.DateTimeFormat.prototype, "format").get
		Object.defineProperty(Intl.DateTimeFormat.prototype, "format", { configurable: true, get: function () {
			var f = fmt.call(this)
			return function (d) { return f(d === undefined ? Shifted.now() : d) }
		} })
	})()`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: lateClock}); err != nil {
		t.Fatal(err)
	}
	openChat(t, ctx, s.host.URL+"/")
	days := `Array.from(` + shadow + `.querySelectorAll(".log > .day")).map(function (d) { return d.textContent }).join(" | ")`
	clock := `new Date().toTimeString().slice(0, 8)`
	if got := evalJS[string](t, ctx, days); got != "Today" {
		t.Fatalf("before midnight (%s in the page) the day divider = %q, want Today", evalJS[string](t, ctx, clock), got)
	}
	waitJS(t, ctx, "the divider relabelled after midnight", days+` === "Yesterday"`)
	t.Logf("relabelled at %s in the page", evalJS[string](t, ctx, clock))
}

// TestWidgetHistoryBeforeTexts: when the conversation's stored messages
// arrive before the built-in texts (a slow texts request on a reload),
// the widget holds them until it takes over, then shows them with their
// times and days.
func TestWidgetHistoryBeforeTexts(t *testing.T) {
	s := newSite(t)
	ctx := browser(t, 1280, 860)
	openChat(t, ctx, s.host.URL+"/")
	typeMessage(t, ctx, "hello")
	botSays(t, ctx, "Hello, there!")

	// On the reload the texts' request waits 2.5 s (the widget's own
	// timeout is 5 s): the socket has the transcript long before.
	held := make(chan bool, 4)
	chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*fetch.EventRequestPaused); ok {
			held <- true
			go func() {
				time.Sleep(2500 * time.Millisecond)
				if _, err := chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID}); err != nil {
					t.Logf("continue %s: %v", e.Request.URL, err)
				}
			}()
		}
	})
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/static/dist/texts.*"}}}); err != nil {
		t.Fatal(err)
	}
	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	// The visitor opens the loader's frame and types into it while the
	// texts are held, so the take-over has a new message of theirs to
	// adopt beside the stored ones.
	time.Sleep(time.Second)
	click(t, ctx, ".launcher")
	typeMessage(t, ctx, "again")
	botSays(t, ctx, "Hello, there!")
	waitJS(t, ctx, "the message typed into the frame", `Array.from(`+shadow+`.querySelectorAll(".msg.user time.at")).length == 2`)
	if len(held) == 0 {
		t.Fatal("the texts' request was not held: the test proves nothing")
	}
	if got := evalJS[string](t, ctx, in(".msg.user time.at")+`.textContent`); !strings.Contains(got, ":") {
		t.Errorf("time of the visitor's message = %q, want a time", got)
	}
	if got := evalJS[string](t, ctx, in(".log > .day")+`.textContent`); got != "Today" {
		t.Errorf("day divider = %q, want Today", got)
	}
}

// TestTranscriptDownloadOwnOnly: two visitors, each in a browser of
// their own, save their conversation from the widget and from the chat
// page: each copy holds that visitor's messages and the bot's answers to
// them, and nothing of the other's.
func TestTranscriptDownloadOwnOnly(t *testing.T) {
	s := newSite(t)
	type visitor struct {
		ctx      context.Context
		says     string
		widget   string // the widget's saved copy
		chatPage string // the chat page's saved copy
	}
	vs := []*visitor{{ctx: browser(t, 1280, 860), says: "ann's question"}, {ctx: browser(t, 1280, 860), says: "bob's question"}}
	for _, v := range vs {
		openChat(t, v.ctx, s.host.URL+"/")
		typeMessage(t, v.ctx, v.says)
		botSays(t, v.ctx, "Sorry, I didn't get that.") // the demo bot's answer to anything it has no script for
	}
	for _, v := range vs {
		v.widget = download(t, v.ctx, func() { click(t, v.ctx, `.header button[aria-label="Save conversation"]`) })
		// The chat page without JavaScript: its own conversation, by cookie.
		navigate(t, v.ctx, s.url+"/chat/demo")
		typeInto(t, v.ctx, mainDoc, "textarea", v.says+" again")
		clickButton(t, v.ctx, mainDoc, "Send")
		waitDOM(t, v.ctx, mainDoc, "the bot's answer", func(d *goquery.Document) bool {
			return has(messages(d), "You: "+v.says+" again") && has(messages(d), "didn't get that")
		})
		v.chatPage = download(t, v.ctx, func() { evalJS[any](t, v.ctx, `document.querySelector("a.save[download]").click(), null`) })
	}
	for i, v := range vs {
		other := vs[1-i]
		for _, c := range []struct{ where, text, own string }{
			{"widget", v.widget, v.says}, {"chat page", v.chatPage, v.says + " again"},
		} {
			if i := strings.Index(c.text, "You: "+c.own+"\n"); i < 0 || !strings.Contains(c.text[i:], "Sorry, I didn't get that.") {
				t.Errorf("%s copy of %q lacks the visitor's message or its answer:\n%s", c.where, v.says, c.text)
			}
			if strings.Contains(c.text, other.says) {
				t.Errorf("%s copy of %q holds the other visitor's %q:\n%s", c.where, v.says, other.says, c.text)
			}
		}
	}
}

// download lets the browser of ctx save files, runs start (a click that
// downloads) and returns the file the browser saved: with allowAndName
// Chromium names it by the download's id once it is complete. (The
// download events do not reach chromedp's browser listener here.)
func download(t testing.TB, ctx context.Context, start func()) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	start()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if name := e.Name(); len(name) == 36 && !strings.Contains(name, ".") {
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err == nil && len(data) > 0 {
					return string(data)
				}
			}
		}
	}
	t.Fatal("no download completed within 10 s")
	return ""
}
