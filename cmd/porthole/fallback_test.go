package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The no-JavaScript chat page in a real browser: with scripting off, in
// the loader's panel on a page that forbids WebAssembly, framed by a site
// that may not, and under axe-core.

// docRoot finds the node of the document a test looks at: the tab's
// (mainDoc) or that of the chat frame the loader opened (chatFrame).
type docRoot func(ctx context.Context) (cdp.NodeID, error)

// mainDoc is the tab's document.
func mainDoc(ctx context.Context) (cdp.NodeID, error) {
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{})
	if err != nil {
		return 0, err
	}
	return doc.Root.NodeID, nil
}

// chatFrame is the document inside the first iframe of the page, shadow
// roots included. It is reachable only when the frame runs in the page's
// process: see browserOneProcess.
func chatFrame(ctx context.Context) (cdp.NodeID, error) {
	depth, pierce := int64(-1), true
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{Depth: &depth, Pierce: &pierce})
	if err != nil {
		return 0, err
	}
	var find func(n *cdp.Node) *cdp.Node
	find = func(n *cdp.Node) *cdp.Node {
		if n.NodeName == "IFRAME" && n.ContentDocument != nil {
			return n.ContentDocument
		}
		for _, kids := range [][]*cdp.Node{n.ShadowRoots, n.Children} {
			for _, c := range kids {
				if f := find(c); f != nil {
					return f
				}
			}
		}
		return nil
	}
	if f := find(doc.Root); f != nil {
		return f.NodeID, nil
	}
	return 0, fmt.Errorf("no frame with a document yet")
}

// pageDOM returns a document as parsed HTML, read through the DevTools
// DOM domain, which works with JavaScript disabled.
func pageDOM(ctx context.Context, root docRoot) (*goquery.Document, error) {
	id, err := root(ctx)
	if err != nil {
		return nil, err
	}
	html, err := chromedp.Call(ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{NodeID: id})
	if err != nil {
		return nil, err
	}
	return goquery.NewDocumentFromReader(strings.NewReader(html.OuterHTML))
}

// waitDOM polls a document until pred holds, across navigations.
func waitDOM(t testing.TB, ctx context.Context, root docRoot, what string, pred func(*goquery.Document) bool) *goquery.Document {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for {
		doc, err := pageDOM(ctx, root)
		if err == nil {
			if pred(doc) {
				return doc
			}
			last, _ = doc.Find("body").Html()
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s (last error %v); page body:\n%.4000s", what, err, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// messages returns the transcript's bubbles as text, author prefix and
// all, in order.
func messages(doc *goquery.Document) []string {
	var out []string
	doc.Find(".log > li:not(.day)").Each(func(_ int, li *goquery.Selection) {
		c := li.Clone()
		c.Find(".state, .at").Remove()
		out = append(out, strings.Join(strings.Fields(c.Text()), " "))
	})
	return out
}

func has(list []string, part string) bool {
	for _, s := range list {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}

// navigations counts the main frame's navigations in a tab.
type navigations struct {
	mu   sync.Mutex
	urls []string
}

func countNavigations(t testing.TB, ctx context.Context) *navigations {
	n := &navigations{}
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventFrameNavigated); ok && e.Frame.ParentID == "" {
			n.mu.Lock()
			n.urls = append(n.urls, e.Frame.URL)
			n.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *navigations) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.urls)
}

// noScript turns JavaScript off in the tab, as a visitor's browser
// setting would.
func noScript(t testing.TB, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
}

// The helpers below drive the page through the DevTools DOM and Input
// domains only: chromedp's element queries check visibility with
// JavaScript, which is off here.

// nodeAt returns the node of the n-th element matching sel.
func nodeAt(ctx context.Context, root docRoot, sel string, n int) (cdp.NodeID, error) {
	doc, err := root(ctx)
	if err != nil {
		return 0, err
	}
	res, err := chromedp.Call(ctx, dom.QuerySelectorAll, dom.QuerySelectorAllParams{NodeID: doc, Selector: sel})
	if err != nil {
		return 0, err
	}
	if n >= len(res.NodeIDs) {
		return 0, fmt.Errorf("%d elements match %s, want more than %d", len(res.NodeIDs), sel, n)
	}
	return res.NodeIDs[n], nil
}

// clickNode scrolls the node to the middle of the view, clear of the
// page's sticky composer, and clicks its middle.
func clickNode(ctx context.Context, id cdp.NodeID) error {
	obj, err := chromedp.Call(ctx, dom.ResolveNode, dom.ResolveNodeParams{NodeID: id})
	if err != nil {
		return err
	}
	if _, err := chromedp.Call(ctx, runtime.CallFunctionOn, runtime.CallFunctionOnParams{
		FunctionDeclaration: `function () { this.scrollIntoView({block: "center"}) }`, ObjectID: obj.Object.ObjectID}); err != nil {
		return err
	}
	box, err := chromedp.Call(ctx, dom.GetBoxModel, dom.GetBoxModelParams{NodeID: id})
	if err != nil {
		return err
	}
	q := box.Model.Content
	x, y := (q[0]+q[2]+q[4]+q[6])/4, (q[1]+q[3]+q[5]+q[7])/4
	return chromedp.Do(ctx, chromedp.MouseClickXY(x, y))
}

// clickButton clicks the first button whose text is label.
func clickButton(t testing.TB, ctx context.Context, root docRoot, label string) {
	t.Helper()
	retryDOM(t, "click "+label, func() error {
		doc, err := pageDOM(ctx, root)
		if err != nil {
			return err
		}
		idx := -1
		doc.Find("button").EachWithBreak(func(i int, s *goquery.Selection) bool {
			if strings.TrimSpace(s.Text()) == label {
				idx = i
			}
			return idx < 0
		})
		if idx < 0 {
			return fmt.Errorf("no button %q yet", label)
		}
		id, err := nodeAt(ctx, root, "button", idx)
		if err != nil {
			return err
		}
		return clickNode(ctx, id)
	})
}

// typeInto focuses the element sel matches and types text into it.
func typeInto(t testing.TB, ctx context.Context, root docRoot, sel, text string) {
	t.Helper()
	retryDOM(t, "type into "+sel, func() error {
		id, err := nodeAt(ctx, root, sel, 0)
		if err != nil {
			return err
		}
		if _, err := chromedp.Call(ctx, dom.Focus, dom.FocusParams{NodeID: id}); err != nil {
			return err
		}
		_, err = chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// retryDOM retries an action on a document that may still be loading or
// be replaced under it (a refresh), for up to 15 seconds.
func retryDOM(t testing.TB, what string, action func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := action()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFallbackWithoutJavaScript: Chromium with JavaScript off holds a
// conversation with the demo bot on the chat page: it types and sends,
// clicks a quick reply, and sees the replies come in by the page's own
// refresh, with nobody reloading it.
func TestFallbackWithoutJavaScript(t *testing.T) {
	data := t.TempDir()
	// A slow typist, so that the page the post lands on cannot have the
	// reply yet: it has to come by the automatic refresh.
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(`bots:
  - id: demo
    provider: demo
    origins: [self]
    demo: {typing_delay: 1500ms}
    widget: {title: "Harbour help", brand_color: "#0b6e6e", greeting: "Ask us anything."}
`), 0o600)
	p := start(t, data, "--config", cfg)
	ctx := browser(t, 1280, 860)
	noScript(t, ctx)
	navs := countNavigations(t, ctx)
	navigate(t, ctx, "http://"+p.addr+"/chat/demo")
	doc := waitDOM(t, ctx, mainDoc, "the composer", func(d *goquery.Document) bool { return d.Find("form.composer textarea").Length() == 1 })
	if doc.Find(".greeting").Text() != "Ask us anything." || len(messages(doc)) != 0 {
		t.Fatalf("first visit: greeting %q, %d messages", doc.Find(".greeting").Text(), len(messages(doc)))
	}
	typeInto(t, ctx, mainDoc, "textarea", "hello from a browser without scripts")
	clickButton(t, ctx, mainDoc, "Send")
	doc = waitDOM(t, ctx, mainDoc, "the sent message", func(d *goquery.Document) bool { return has(messages(d), "hello from a browser without scripts") })
	if has(messages(doc), "What would you like to see?") {
		t.Fatal("the reply was already on the page the post landed on; this test cannot tell that the page refreshes itself")
	}
	before := navs.count()
	doc = waitDOM(t, ctx, mainDoc, "the bot's reply, by the page's own refresh", func(d *goquery.Document) bool {
		return has(messages(d), "Hello, there! What would you like to see?")
	})
	if navs.count() <= before {
		t.Fatal("the reply showed without a navigation")
	}
	got := messages(doc)
	if !strings.HasPrefix(got[0], "You: hello from a browser without scripts") {
		t.Errorf("first entry = %q", got[0])
	}

	clickButton(t, ctx, mainDoc, "Take the tour")
	doc = waitDOM(t, ctx, mainDoc, "the tour", func(d *goquery.Document) bool {
		return has(messages(d), "Quick replies are suggested answers")
	})
	if !has(messages(doc), "You: Take the tour") {
		t.Errorf("the click is not in the transcript: %q", messages(doc))
	}
	// When the turn is over the page stops refreshing.
	waitDOM(t, ctx, mainDoc, "the refresh to stop", func(d *goquery.Document) bool { return d.Find(".poll [role=status]").Length() == 0 })
	settled := navs.count()
	time.Sleep(4 * time.Second)
	if n := navs.count(); n != settled {
		t.Errorf("the page went on refreshing with nothing pending: %d more loads", n-settled)
	}
}

// browserOneProcess is a browser that keeps cross-site frames in their
// page's process, so that a test can read the chat frame's DOM through
// the page's DevTools session. Nothing else about the page changes.
func browserOneProcess(t testing.TB, width, height int) context.Context {
	t.Helper()
	return browser(t, width, height, chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.Flag("disable-features", "IsolateOrigins,site-per-process"))
}

// TestFallbackHandOver: on a host page whose CSP forbids WebAssembly, the
// loader shows the chat page in its panel, and the conversation the
// visitor started in the widget is there and goes on. A visitor whose
// first chat is in the panel keeps it on the site's next page too.
func TestFallbackHandOver(t *testing.T) {
	s := newSite(t)
	ctx := browserOneProcess(t, 1280, 860)
	reqs := recordRequests(t, ctx)
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	typeMessage(t, ctx, "hello")
	botSays(t, ctx, "Hello, there!")

	navigate(t, ctx, s.host.URL+"/nowasm")
	waitJS(t, ctx, "the loader to give up on WebAssembly", in(".panel.fallback iframe"))
	click(t, ctx, ".launcher")
	waitJS(t, ctx, "the panel", in(".panel.fallback")+`.hidden === false`)
	doc := waitDOM(t, ctx, chatFrame, "the earlier conversation in the panel", func(d *goquery.Document) bool {
		return has(messages(d), "You: hello") && has(messages(d), "Hello, there!")
	})
	if !doc.Find("body").HasClass("embed") || doc.Find("h1").Text() != "Acme Shipping" {
		t.Errorf("the panel's page is not the embedded chat of the bot")
	}
	frames := reqs.matching("/chat/demo?")
	if len(frames) == 0 || !strings.Contains(frames[0], "embed=1") || !strings.Contains(frames[0], "v=") || !strings.Contains(frames[0], "lang=en") {
		t.Errorf("frame requests: %q; want embed=1, the visitor token and the page's language", frames)
	}
	typeInto(t, ctx, chatFrame, "textarea", "menu")
	clickButton(t, ctx, chatFrame, "Send")
	waitDOM(t, ctx, chatFrame, "the reply in the panel", func(d *goquery.Document) bool {
		return has(messages(d), "Here's everything I can show you.")
	})
	// The widget, back on a page that allows it, sees what was said in
	// the panel: one conversation.
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Here's everything I can show you.")
	if n := count(t, ctx, ".msg.user", "menu"); n != 1 {
		t.Errorf("the panel's message shows %d times in the widget", n)
	}

	// A new visitor who starts in the panel keeps the conversation on
	// the next page: the page hands its visitor to the loader. A new
	// visitor's loader tries WebAssembly only when the panel opens.
	fresh := browserOneProcess(t, 1280, 860)
	navigate(t, fresh, s.host.URL+"/nowasm")
	click(t, fresh, ".launcher")
	waitJS(t, fresh, "the fallback panel", in(".panel.fallback iframe"))
	typeInto(t, fresh, chatFrame, "textarea", "first words in the panel")
	clickButton(t, fresh, chatFrame, "Send")
	waitDOM(t, fresh, chatFrame, "the message", func(d *goquery.Document) bool { return has(messages(d), "first words in the panel") })
	waitJS(t, fresh, "the hand-over", `localStorage.getItem("porthole:demo:visitor")`)
	navigate(t, fresh, s.host.URL+"/nowasm")
	waitJS(t, fresh, "the fallback panel", in(".panel.fallback iframe"))
	waitDOM(t, fresh, chatFrame, "the conversation on the next page", func(d *goquery.Document) bool {
		return has(messages(d), "You: first words in the panel")
	})
}

// TestFallbackRefusesForeignSites: a site not in the bot's origins cannot
// frame the chat page (CSP frame-ancestors), and its cross-site form post
// is refused; the bot's own site frames it fine.
func TestFallbackRefusesForeignSites(t *testing.T) {
	s := newSite(t)
	frame := `<!doctype html><html lang="en"><head><title>Framer</title></head><body>
<iframe title="chat" src="` + s.url + `/chat/demo?embed=1"></iframe>
<form method="post" action="` + s.url + `/chat/demo"><input name="text" value="forged"><input name="csrf" value="x"><button>Go</button></form>
</body></html>`
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(frame))
	}))
	t.Cleanup(foreign.Close)
	s.host.Config.Handler.(*http.ServeMux).HandleFunc("/framer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(frame))
	})

	ctx := browserOneProcess(t, 1280, 860)
	// The bot's own site: the frame shows the chat.
	navigate(t, ctx, s.host.URL+"/framer")
	waitDOM(t, ctx, chatFrame, "the chat in an allowed frame", func(d *goquery.Document) bool { return d.Find("form.composer").Length() == 1 })

	// Another origin (same host, other port): the browser refuses.
	var refused sync.WaitGroup
	refused.Add(1)
	var once sync.Once
	chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventFrameNavigated); ok && e.Frame.ParentID != "" && strings.HasPrefix(e.Frame.URL, "chrome-error:") {
			once.Do(refused.Done)
		}
	})
	navigate(t, ctx, foreign.URL+"/")
	done := make(chan struct{})
	go func() { refused.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the foreign site's frame did not end on an error page")
	}
	if doc, err := pageDOM(ctx, chatFrame); err == nil && doc.Find("form.composer").Length() > 0 {
		t.Fatal("a site not in the bot's origins framed the chat")
	}
	if !strings.Contains(s.proxy.log(), "path=/chat/demo status=200") {
		t.Fatal("the proxy never served the page: the refusal proves nothing")
	}

	// Its cross-site form post is refused, and nothing is stored.
	evalJS[any](t, ctx, `document.forms[0].submit(), null`)
	waitDOM(t, ctx, mainDoc, "the refusal", func(d *goquery.Document) bool {
		return strings.Contains(d.Text(), "sent from another site, so it was refused")
	})
	if !strings.Contains(s.proxy.log(), "cross-site chat form refused") {
		t.Error("no refusal in the log")
	}
	if strings.Contains(s.proxy.log(), "handed upstream") {
		t.Error("the forged post reached the bot")
	}
}

// TestFallbackAccessibility runs axe-core with WCAG 2.2 AA rules on the
// chat page holding every kind of message, full page and embedded on a
// phone.
func TestFallbackAccessibility(t *testing.T) {
	axe := axeSource(t)
	p := start(t, t.TempDir())
	for _, tc := range []struct {
		name          string
		query         string
		width, height int
	}{{"desktop", "", 1280, 860}, {"phone-embedded", "?embed=1", 390, 780}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t, tc.width, tc.height)
			navigate(t, ctx, "http://"+p.addr+"/chat/demo"+tc.query)
			typeInto(t, ctx, mainDoc, "textarea", "hello")
			clickButton(t, ctx, mainDoc, "Send")
			for _, b := range []string{"Take the tour", "Next: buttons", "Show me a carousel", "Pick the harbour"} {
				clickButton(t, ctx, mainDoc, b)
			}
			media := func(d *goquery.Document) bool {
				return d.Find("video").Length() == 1 && d.Find(".cards").Length() == 1 && d.Find("form.quick").Length() == 1
			}
			waitDOM(t, ctx, mainDoc, "the media", media)
			// The same page without its self-refresh (still waiting for
			// a reply moments after the last one), so that no reload
			// cuts axe's run short.
			sep := "?"
			if tc.query != "" {
				sep = "&"
			}
			navigate(t, ctx, "http://"+p.addr+"/chat/demo"+tc.query+sep+"refresh=off")
			waitDOM(t, ctx, mainDoc, "the media, not refreshing", media)
			for _, v := range runAxe(t, ctx, axe, "document") {
				t.Errorf("axe: %s", v)
			}
		})
	}
}
