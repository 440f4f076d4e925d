package main

import (
	"context"
	"fmt"
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
	"github.com/chromedp/chromedp"
)

// The no-JavaScript chat page in a real browser: with scripting off, in
// the loader's panel on a page that forbids WebAssembly, framed by a site
// that may not, and under axe-core.

// pageDOM returns the tab's document as parsed HTML, read through the
// DevTools DOM domain, which works with JavaScript disabled.
func pageDOM(ctx context.Context) (*goquery.Document, error) {
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{})
	if err != nil {
		return nil, err
	}
	html, err := chromedp.Call(ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{NodeID: doc.Root.NodeID})
	if err != nil {
		return nil, err
	}
	return goquery.NewDocumentFromReader(strings.NewReader(html.OuterHTML))
}

// waitDOM polls the document until pred holds, across navigations.
func waitDOM(t testing.TB, ctx context.Context, what string, pred func(*goquery.Document) bool) *goquery.Document {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for {
		doc, err := pageDOM(ctx)
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
	doc.Find(".log > li").Each(func(_ int, li *goquery.Selection) {
		c := li.Clone()
		c.Find(".state").Remove()
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
func nodeAt(ctx context.Context, sel string, n int) (cdp.NodeID, error) {
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{})
	if err != nil {
		return 0, err
	}
	res, err := chromedp.Call(ctx, dom.QuerySelectorAll, dom.QuerySelectorAllParams{NodeID: doc.Root.NodeID, Selector: sel})
	if err != nil {
		return 0, err
	}
	if n >= len(res.NodeIDs) {
		return 0, fmt.Errorf("%d elements match %s, want more than %d", len(res.NodeIDs), sel, n)
	}
	return res.NodeIDs[n], nil
}

// clickNode scrolls the node into view and clicks its middle.
func clickNode(ctx context.Context, id cdp.NodeID) error {
	if _, err := chromedp.Call(ctx, dom.ScrollIntoViewIfNeeded, dom.ScrollIntoViewIfNeededParams{NodeID: id}); err != nil {
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
func clickButton(t testing.TB, ctx context.Context, label string) {
	t.Helper()
	doc := waitDOM(t, ctx, "a button "+label, func(d *goquery.Document) bool {
		return d.Find("button").FilterFunction(func(_ int, s *goquery.Selection) bool { return strings.TrimSpace(s.Text()) == label }).Length() > 0
	})
	idx := 0
	doc.Find("button").EachWithBreak(func(i int, s *goquery.Selection) bool {
		idx = i
		return strings.TrimSpace(s.Text()) != label
	})
	id, err := nodeAt(ctx, "button", idx)
	if err == nil {
		err = clickNode(ctx, id)
	}
	if err != nil {
		t.Fatalf("click %q: %v", label, err)
	}
}

// typeInto focuses the element sel matches and types text into it.
func typeInto(t testing.TB, ctx context.Context, sel, text string) {
	t.Helper()
	id, err := nodeAt(ctx, sel, 0)
	if err == nil {
		_, err = chromedp.Call(ctx, dom.Focus, dom.FocusParams{NodeID: id})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
	}
	if err != nil {
		t.Fatalf("type into %s: %v", sel, err)
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
	doc := waitDOM(t, ctx, "the composer", func(d *goquery.Document) bool { return d.Find("form.composer textarea").Length() == 1 })
	if doc.Find(".greeting").Text() != "Ask us anything." || len(messages(doc)) != 0 {
		t.Fatalf("first visit: greeting %q, %d messages", doc.Find(".greeting").Text(), len(messages(doc)))
	}
	typeInto(t, ctx, "textarea", "hello from a browser without scripts")
	clickButton(t, ctx, "Send")
	doc = waitDOM(t, ctx, "the sent message", func(d *goquery.Document) bool { return has(messages(d), "hello from a browser without scripts") })
	if has(messages(doc), "What would you like to see?") {
		t.Fatal("the reply was already on the page the post landed on; this test cannot tell that the page refreshes itself")
	}
	before := navs.count()
	doc = waitDOM(t, ctx, "the bot's reply, by the page's own refresh", func(d *goquery.Document) bool {
		return has(messages(d), "Hello, there! What would you like to see?")
	})
	if navs.count() <= before {
		t.Fatal("the reply showed without a navigation")
	}
	got := messages(doc)
	if !strings.HasPrefix(got[0], "You: hello from a browser without scripts") {
		t.Errorf("first entry = %q", got[0])
	}

	clickButton(t, ctx, "Take the tour")
	doc = waitDOM(t, ctx, "the tour", func(d *goquery.Document) bool {
		return has(messages(d), "Quick replies are suggested answers")
	})
	if !has(messages(doc), "You: Take the tour") {
		t.Errorf("the click is not in the transcript: %q", messages(doc))
	}
	// When the turn is over the page stops refreshing.
	waitDOM(t, ctx, "the refresh to stop", func(d *goquery.Document) bool { return d.Find(".poll [role=status]").Length() == 0 })
	settled := navs.count()
	time.Sleep(4 * time.Second)
	if n := navs.count(); n != settled {
		t.Errorf("the page went on refreshing with nothing pending: %d more loads", n-settled)
	}
}
