package web

import (
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/porthole-chat/porthole/widget"
)

// render renders p as the server would and parses it.
func render(t *testing.T, p *ChatPage) *goquery.Document {
	t.Helper()
	if p.Texts.Lang() == "" {
		p.Texts = NewChatTexts("en", nil)
	}
	rec := httptest.NewRecorder()
	p.Render(rec, httptest.NewRequest("GET", "/chat/"+p.Bot, nil), 200)
	doc, err := goquery.NewDocumentFromReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func page(entries ...ChatEntry) *ChatPage {
	return &ChatPage{
		Bot: "acme", Look: widget.Look{Title: "Acme", BrandColor: "#ffcc00"},
		Texts: NewChatTexts("en", nil), Query: url.Values{}, CSRF: "tok", Form: "f", Nonce: "n0nce",
		Entries: entries,
	}
}

func bot(seq uint64, b widget.Body) ChatEntry { return ChatEntry{Seq: seq, Body: b} }

func text(s string) widget.Body { return widget.Text(s) }

func TestChatText(t *testing.T) {
	doc := render(t, page(
		bot(1, text("See https://example.com/a_(b). Or call\nus.")),
		ChatEntry{Seq: 2, Mine: true, Body: text("<b>not bold</b>"), State: widget.StateDelivered, ShowState: true},
	))
	li := doc.Find(".log > li")
	if li.Length() != 2 || !li.Eq(0).HasClass("bot") || !li.Eq(1).HasClass("user") {
		t.Fatalf("entries: %d", li.Length())
	}
	a := li.Eq(0).Find(".bubble a")
	if a.AttrOr("href", "") != "https://example.com/a_(b)" || a.AttrOr("target", "") != "_blank" || a.AttrOr("rel", "") != "noopener noreferrer" {
		t.Errorf("link = %v", a.Nodes[0].Attr)
	}
	if got := a.Find(".sr").Text(); got != " (opens in a new tab)" {
		t.Errorf("link's new-tab note = %q", got)
	}
	if got := li.Eq(0).Find(".sr").First().Text(); got != "Acme: " {
		t.Errorf("bot prefix = %q", got)
	}
	// The text keeps its own white space and gets none from the markup.
	if got, want := li.Eq(0).Find(".bubble").Text(), "Acme: See https://example.com/a_(b) (opens in a new tab). Or call\nus."; got != want {
		t.Errorf("bubble text = %q\nwant %q", got, want)
	}
	// Visitors' text is text, never markup.
	if li.Eq(1).Find("b").Length() != 0 || !strings.Contains(li.Eq(1).Find(".bubble").Text(), "<b>not bold</b>") {
		t.Errorf("user text was not escaped: %s", li.Eq(1).Find(".bubble").Text())
	}
	if got := li.Eq(1).Find(".state").Text(); got != "Delivered" {
		t.Errorf("state = %q", got)
	}
}

// TestChatFormatted: a bot's formatted text (Body.Blocks) renders as
// elements, with no white space of the markup's own; a link to a
// refused address, which the server never stores, renders as text; a
// visitor's message never renders blocks.
func TestChatFormatted(t *testing.T) {
	blocks := []widget.Block{
		{P: []widget.Run{{Text: "Hi "}, {Text: "bold", Style: "b"}, {Text: " <img src=x onerror=alert(1)> "}, {Text: "all", Style: "bisc"},
			{Text: " see "}, {Text: "prices", Style: "i", URL: "https://example.com/p"}, {Text: " bad", URL: "javascript:alert(1)"}, {Text: "\nnext"}}},
		{OL: [][]widget.Block{{{P: []widget.Run{{Text: "one"}}}, {UL: [][]widget.Block{{{P: []widget.Run{{Text: "a"}}}}}}}, {{P: []widget.Run{{Text: "two"}}}}}, Start: 3},
		{Pre: "x := \"<y>\"\n\tz"},
	}
	body := widget.Body{Kind: widget.KindText, Text: "plain", Blocks: blocks}
	doc := render(t, page(bot(1, body), ChatEntry{Seq: 2, Mine: true, Body: body}, bot(3, widget.Body{Kind: widget.KindButtons, Text: "Pick", Blocks: []widget.Block{{P: []widget.Run{{Text: "Pick", Style: "i"}}}},
		Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "Go", Payload: "g"}}})))
	li := doc.Find(".log > li")
	rich := li.Eq(0).Find("div.bubble.rich")
	if rich.Length() != 1 {
		t.Fatalf("no formatted bubble: %s", li.Eq(0).Text())
	}
	p := rich.Children().Eq(1)
	if goquery.NodeName(p) != "p" || p.Find("strong").First().Text() != "bold" || p.Find("strong > em > del > code").Text() != "all" {
		t.Errorf("paragraph: %s", must(p.Html()))
	}
	a := p.Find("a")
	if a.Length() != 1 || a.AttrOr("href", "") != "https://example.com/p" || a.AttrOr("rel", "") != "noopener noreferrer" || a.AttrOr("target", "") != "_blank" || a.Find("em").Text() != "prices" {
		t.Errorf("links: %s", must(p.Html()))
	}
	if doc.Find("img").Length() != 0 || doc.Find("[onerror]").Length() != 0 || strings.Contains(must(doc.Html()), "javascript:") {
		t.Errorf("hostile text became markup: %s", must(rich.Html()))
	}
	if got, want := p.Text(), "Hi bold <img src=x onerror=alert(1)> all see prices (opens in a new tab) bad\nnext"; got != want {
		t.Errorf("paragraph text = %q\nwant %q", got, want)
	}
	ol := rich.Children().Eq(2)
	if goquery.NodeName(ol) != "ol" || ol.AttrOr("start", "") != "3" || ol.Children().Length() != 2 || ol.Find("li > ul > li > p").Text() != "a" {
		t.Errorf("list: %s", must(ol.Html()))
	}
	if got := rich.Find("pre > code").Text(); got != "x := \"<y>\"\n\tz" {
		t.Errorf("code = %q", got)
	}
	if got := rich.Find(".sr").First().Text(); got != "Acme: " {
		t.Errorf("bot prefix = %q", got)
	}
	// The visitor's message shows its text only.
	if li.Eq(1).Find(".rich").Length() != 0 || li.Eq(1).Find(".bubble").Text() != "You: plain" {
		t.Errorf("visitor's message: %s", must(li.Eq(1).Html()))
	}
	// A buttons message's text is formatted too; its buttons stay.
	if li.Eq(2).Find(".rich em").Text() != "Pick" || li.Eq(2).Find("form.buttons button").Text() != "Go" {
		t.Errorf("buttons message: %s", must(li.Eq(2).Html()))
	}
}

func must(s string, err error) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func TestChatQuickRepliesOnlyOnTheLatest(t *testing.T) {
	qr := widget.Body{Kind: widget.KindText, Text: "Pick", QuickReplies: []widget.QuickReply{{Title: "One", Payload: "p1"}, {Title: "Two", Payload: "p2"}}}
	doc := render(t, page(bot(1, qr), bot(2, qr)))
	btns := doc.Find("form.quick button[type=submit][name=pb]")
	if btns.Length() != 2 || btns.Eq(1).AttrOr("value", "") != "2.q.1" || btns.Eq(1).Text() != "Two" {
		t.Fatalf("quick replies: %d, second %q=%q", btns.Length(), btns.Eq(1).AttrOr("value", ""), btns.Eq(1).Text())
	}
	if doc.Find("form.quick").AttrOr("aria-label", "") != "Suggested replies" {
		t.Error("quick replies have no accessible name")
	}
	// The payload itself never goes into the page.
	if h, _ := doc.Html(); strings.Contains(h, "p1") {
		t.Error("a postback payload is in the page")
	}
	doc = render(t, page(bot(1, qr), ChatEntry{Seq: 2, Mine: true, Body: text("One")}))
	if doc.Find("form.quick").Length() != 0 {
		t.Error("quick replies of an answered message are still offered")
	}
}

func TestChatButtons(t *testing.T) {
	doc := render(t, page(bot(4, widget.Body{Kind: widget.KindButtons, Text: "Choose", Buttons: []widget.Button{
		{Type: widget.ButtonPostback, Title: "Yes", Payload: "secret-payload"},
		{Type: widget.ButtonURL, Title: "Docs", URL: "https://example.com/docs"},
		{Type: widget.ButtonPhone, Title: "Call", Phone: "+32 (0)2 123"},
		{Type: widget.ButtonURL, Title: "Evil", URL: "javascript:alert(1)"},
	}})))
	form := doc.Find("li form.buttons[method=post]")
	if form.Find("input[name=csrf]").AttrOr("value", "") != "tok" || form.Find("input[name=form]").AttrOr("value", "") != "f" {
		t.Error("button form lacks its hidden fields")
	}
	if b := form.Find("button[name=pb]"); b.AttrOr("value", "") != "4.b.0" || b.Text() != "Yes" {
		t.Errorf("postback button = %q %q", b.AttrOr("value", ""), b.Text())
	}
	links := form.Find(".btn a")
	if links.Length() != 2 {
		t.Fatalf("%d link buttons, want 2 (the javascript: one dropped)", links.Length())
	}
	if links.Eq(0).AttrOr("href", "") != "https://example.com/docs" || links.Eq(0).AttrOr("target", "") != "_blank" {
		t.Errorf("url button: %v", links.Eq(0).Nodes[0].Attr)
	}
	if links.Eq(1).AttrOr("href", "") != "tel:+3202123" || links.Eq(1).AttrOr("target", "") != "" {
		t.Errorf("phone button: %v", links.Eq(1).Nodes[0].Attr)
	}
	if h, _ := doc.Html(); strings.Contains(h, "javascript:") || strings.Contains(h, "secret-payload") {
		t.Error("page holds a javascript: URL or a payload")
	}
}

func TestChatCarousel(t *testing.T) {
	doc := render(t, page(bot(7, widget.Body{Kind: widget.KindCarousel, Cards: []widget.Card{
		{Title: "Boat", Subtitle: "Fast", Image: "https://img.example/boat.jpg", URL: "https://example.com/boat",
			Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "Book", Payload: "b"}}},
		{Title: "Ship", Buttons: []widget.Button{{Type: widget.ButtonURL, Title: "More", URL: "https://example.com/ship"}, {Type: widget.ButtonPostback, Title: "Book", Payload: "s"}}},
	}})))
	li := doc.Find(".log > li")
	if !li.HasClass("wide") {
		t.Error("carousel entry is not wide")
	}
	cards := li.Find("ul.cards > li.card")
	if cards.Length() != 2 {
		t.Fatalf("%d cards", cards.Length())
	}
	first := cards.Eq(0)
	if img := first.Find("img"); img.AttrOr("src", "") != "https://img.example/boat.jpg" || img.AttrOr("alt", "x") != "" {
		t.Errorf("card image: %v", img.Nodes)
	}
	if a := first.Find("h2 a"); a.AttrOr("href", "") != "https://example.com/boat" || !strings.HasPrefix(a.Text(), "Boat") {
		t.Errorf("card title link: %q", a.Text())
	}
	if first.Find("p").Text() != "Fast" {
		t.Errorf("subtitle = %q", first.Find("p").Text())
	}
	if v := cards.Eq(1).Find("button[name=pb]").AttrOr("value", ""); v != "7.c.1.1" {
		t.Errorf("second card's postback ref = %q, want 7.c.1.1", v)
	}
	if cards.Eq(1).Find("h2").Text() != "Ship" || cards.Eq(1).Find("img").Length() != 0 {
		t.Error("second card: title or a missing image")
	}
}

func TestChatMedia(t *testing.T) {
	doc := render(t, page(
		bot(1, widget.Body{Kind: widget.KindMedia, Media: widget.MediaImage, URL: "https://m.example/a.png", Alt: "A map"}),
		bot(2, widget.Body{Kind: widget.KindMedia, Media: widget.MediaImage, URL: "https://m.example/b.png"}),
		bot(3, widget.Body{Kind: widget.KindMedia, Media: widget.MediaVideo, URL: "https://m.example/v.mp4", Alt: "Tour"}),
		bot(4, widget.Body{Kind: widget.KindMedia, Media: widget.MediaAudio, URL: "https://m.example/a.mp3"}),
		bot(5, widget.Body{Kind: widget.KindMedia, Media: widget.MediaFile, URL: "https://m.example/f.pdf", Alt: "Price list"}),
		bot(6, widget.Body{Kind: widget.KindMedia, Media: widget.MediaImage, URL: "data:text/html,x", Alt: "unsafe"}),
	))
	li := doc.Find(".log > li")
	if img := li.Eq(0).Find("img"); img.AttrOr("alt", "") != "A map" {
		t.Errorf("image alt = %q", img.AttrOr("alt", ""))
	}
	if img := li.Eq(1).Find("img"); img.AttrOr("alt", "") != "Image" {
		t.Errorf("image without alt gets %q, want the generic text", img.AttrOr("alt", ""))
	}
	v := li.Eq(2).Find("video[controls]")
	if v.AttrOr("src", "") != "https://m.example/v.mp4" || v.AttrOr("aria-label", "") != "Tour" || !strings.Contains(v.Text(), "cannot play") {
		t.Errorf("video: %v %q", v.Nodes, v.Text())
	}
	if a := li.Eq(2).Find("p.media > a"); a.AttrOr("href", "") != "https://m.example/v.mp4" {
		t.Error("video has no link for browsers that cannot play it")
	}
	if a := li.Eq(3).Find("audio[controls]"); a.AttrOr("aria-label", "") != "Open audio" {
		t.Errorf("audio label = %q", a.AttrOr("aria-label", ""))
	}
	if a := li.Eq(4).Find("p.file a"); a.AttrOr("href", "") != "https://m.example/f.pdf" || !strings.HasPrefix(a.Text(), "Price list") {
		t.Errorf("file link %q", a.Text())
	}
	if li.Eq(5).Find("img").Length() != 0 || strings.TrimSpace(li.Eq(5).Find(".bubble").Text()) != "unsafe" {
		t.Error("an unsafe media URL was rendered")
	}
}

func TestChatFailedEntry(t *testing.T) {
	doc := render(t, page(
		ChatEntry{Seq: 3, Mine: true, Body: text("lost?"), State: widget.StateFailed, Reason: widget.CodeUpstreamUnavailable, ShowState: true},
		ChatEntry{Seq: 4, Mine: true, Body: text("sent"), State: widget.StateSent, ShowState: true},
	))
	f := doc.Find("li.failed")
	if f.Length() != 1 {
		t.Fatal("no failed entry")
	}
	if s := f.Find(".state p").Text(); !strings.HasPrefix(s, "Not delivered · The assistant can't be reached") {
		t.Errorf("failed state = %q", s)
	}
	if b := f.Find(".state form[method=post] button[name=retry]"); b.AttrOr("value", "") != "3" || b.Text() != "Retry" {
		t.Errorf("retry button value %q text %q", b.AttrOr("value", ""), b.Text())
	}
	if s := doc.Find("#m4 .state").Text(); s != "Sent" {
		t.Errorf("unsent state = %q", s)
	}
}

func TestChatComposerAndPolling(t *testing.T) {
	p := page()
	p.Query.Set("embed", "1")
	p.Query.Set("v", "T/1+")
	p.Visitor, p.Host, p.Embed = "T/1+", "https://www.acme.example", true
	p.Waiting, p.Refreshing = true, true
	p.Error, p.Draft = "Too fast", "keep me"
	doc := render(t, p)
	c := doc.Find("form.composer[method=post]")
	if c.AttrOr("action", "") != "acme?embed=1&v=T%2F1%2B" {
		t.Errorf("composer action = %q", c.AttrOr("action", ""))
	}
	if c.Find("input[name=v]").AttrOr("value", "") != "T/1+" {
		t.Error("the form does not carry the visitor token")
	}
	if c.Find("textarea").Text() != "keep me" || c.Find("#composer-error[role=alert]").Text() != "Too fast" {
		t.Error("draft or error missing")
	}
	if l := doc.Find("label[for=composer-text]"); l.Text() != "Message" {
		t.Errorf("composer label = %q", l.Text())
	}
	if doc.Find(".poll [role=status]").Length() != 1 {
		t.Error("no waiting status")
	}
	links := doc.Find(".poll a")
	if links.Length() != 2 || links.Eq(1).AttrOr("href", "") != "acme?embed=1&poll=f&refresh=off&v=T%2F1%2B#end" || links.Eq(0).AttrOr("href", "") != "acme?embed=1&poll=f&v=T%2F1%2B#end" {
		t.Errorf("poll links: %d, stop = %q", links.Length(), links.Eq(1).AttrOr("href", ""))
	}
	html := doc.Find("html")
	if html.AttrOr("data-visitor", "") != "T/1+" || html.AttrOr("data-bot", "") != "acme" || html.AttrOr("data-host", "") != "https://www.acme.example" || !doc.Find("body").HasClass("embed") {
		t.Error("embedded page lacks its hand-over data")
	}
	if s := doc.Find("script"); s.AttrOr("nonce", "") != "n0nce" || !strings.Contains(s.Text(), "postMessage") || strings.Contains(s.Text(), `"*"`) {
		t.Error("hand-over script missing or without nonce")
	}
	if s := doc.Find("style"); s.AttrOr("nonce", "") != "n0nce" || !strings.Contains(s.Text(), "--brand:#ffcc00") || !strings.Contains(s.Text(), "--on-brand:#111827") {
		t.Errorf("style: nonce %q", s.AttrOr("nonce", ""))
	}
	// A page without the hand-over has no script at all.
	doc = render(t, page())
	if doc.Find("script").Length() != 0 || doc.Find(".poll a").Length() != 1 {
		t.Error("a plain page has a script or a stop link")
	}
}

func TestChatTextsInDutch(t *testing.T) {
	p := page(ChatEntry{Seq: 1, Mine: true, Body: text("hoi"), State: widget.StateDelivered, ShowState: true})
	p.Texts = NewChatTexts("nl", map[string]string{"nl.check_replies": "Kijk of er antwoord is"})
	doc := render(t, p)
	if doc.Find("html").AttrOr("lang", "") != "nl" || doc.Find(".send").Text() != "Versturen" || doc.Find(".state").Text() != "Afgeleverd" {
		t.Error("widget texts not in Dutch")
	}
	if got := doc.Find(".poll a").Text(); got != "Kijk of er antwoord is" {
		t.Errorf("override = %q", got)
	}
	if got := doc.Find("title").Text(); got != "Chat met Acme" {
		t.Errorf("title = %q", got)
	}
}

// TestPageTextsComplete: every built-in language has each of the page's
// own texts, with English's placeholders; "earlier", written for
// MaxEntries, is in that number's plural form (a plural "other", or
// Polish "many"); no page key shadows a widget key.
func TestPageTextsComplete(t *testing.T) {
	if len(pageTexts) != len(widget.Languages) {
		t.Errorf("page texts in %d languages, widget.Languages has %d", len(pageTexts), len(widget.Languages))
	}
	ph := regexp.MustCompile(`\{[a-z]+\}`)
	for _, lang := range widget.Languages {
		texts := pageTexts[lang]
		for key, en := range pageTexts["en"] {
			s := texts[key]
			if strings.TrimSpace(s) == "" {
				t.Errorf("%s has no %s text", key, lang)
			}
			if got, want := ph.FindAllString(s, -1), ph.FindAllString(en, -1); !slices.Equal(got, want) {
				t.Errorf("%s %s has placeholders %q, want %q", lang, key, got, want)
			}
		}
		if len(texts) != len(pageTexts["en"]) {
			t.Errorf("%s has %d page texts, English %d", lang, len(texts), len(pageTexts["en"]))
		}
		if cat := widget.PluralCategory(lang, MaxEntries); cat != "other" && !(lang == "pl" && cat == "many") {
			t.Errorf("%q in %s is written for a plural other, but %d is %s", TextEarlier, lang, MaxEntries, cat)
		}
		if got := NewChatTexts(lang, nil).Get(TextWaiting); got != texts[TextWaiting] {
			t.Errorf("%s waiting = %q", lang, got)
		}
	}
	for _, key := range PageTextKeys() {
		if !IsPageTextKey(key) || !IsPageTextKey("de."+key) || !IsPageTextKey("he."+key) || IsPageTextKey("xx."+key) {
			t.Errorf("IsPageTextKey(%q) is wrong", key)
		}
		if widget.IsTextKey(key) {
			t.Errorf("page key %q shadows a widget key", key)
		}
	}
}

// TestChatPageDirection: Arabic and Hebrew pages are right to left,
// the others left to right, each with its own language's texts.
func TestChatPageDirection(t *testing.T) {
	for lang, want := range map[string][3]string{
		"ar": {"rtl", "إرسال", "الدردشة مع Acme"},
		"he": {"rtl", "שליחה", "צ׳אט עם Acme"},
		"es": {"ltr", "Enviar", "Chat con Acme"},
		"en": {"ltr", "Send", "Chat with Acme"},
	} {
		p := page()
		p.Texts = NewChatTexts(lang, nil)
		doc := render(t, p)
		html := doc.Find("html")
		if html.AttrOr("lang", "") != lang || html.AttrOr("dir", "") != want[0] {
			t.Errorf("%s: <html lang=%q dir=%q>, want dir %s", lang, html.AttrOr("lang", ""), html.AttrOr("dir", ""), want[0])
		}
		if got := doc.Find(".send").Text(); got != want[1] {
			t.Errorf("%s: send button %q, want %q", lang, got, want[1])
		}
		if got := doc.Find("title").Text(); got != want[2] {
			t.Errorf("%s: title %q, want %q", lang, got, want[2])
		}
	}
}

func TestRef(t *testing.T) {
	for _, r := range []Ref{{Seq: 1, Kind: 'q'}, {Seq: 12, Kind: 'b', Index: 3}, {Seq: 9, Kind: 'c', Card: 2, Index: 1}} {
		got, ok := ParseRef(r.String())
		if !ok || got != r {
			t.Errorf("ParseRef(%q) = %+v, %v", r.String(), got, ok)
		}
	}
	for _, bad := range []string{"", "1", "1.q", "0.q.0", "1.x.0", "1.q.-1", "1.q.01", "1.c.0", "1.b.0.0", "a.q.0", "1.q.0.", "1.qq.0"} {
		if _, ok := ParseRef(bad); ok {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
	b := widget.Body{Kind: widget.KindCarousel, Cards: []widget.Card{{Title: "c", Buttons: []widget.Button{
		{Type: widget.ButtonURL, Title: "u", URL: "https://x.example"}, {Type: widget.ButtonPostback, Title: "P", Payload: "pay"}}}}}
	if title, payload, ok := (Ref{Seq: 1, Kind: 'c', Card: 0, Index: 1}).Postback(b); !ok || title != "P" || payload != "pay" {
		t.Errorf("card postback = %q %q %v", title, payload, ok)
	}
	for _, r := range []Ref{{Kind: 'c', Index: 0}, {Kind: 'c', Card: 1}, {Kind: 'q'}, {Kind: 'b'}} {
		if _, _, ok := r.Postback(b); ok {
			t.Errorf("%+v resolved to a postback", r)
		}
	}
}

func TestAcceptLanguage(t *testing.T) {
	for h, want := range map[string]string{
		"":                             "en",
		"de-CH, fr;q=0.9":              "de",
		"ja, nl;q=0.5, fr;q=0.8":       "fr",
		"es, nl;q=0.5":                 "es",
		"zh;q=0.9, he-IL;q=0.8, ar":    "ar",
		"fr;q=0, nl":                   "nl",
		"*, de;q=0.1":                  "de",
		"en-GB;q=0.8, nl-BE;q=0.8, fr": "fr",
		"xx;q=oops, nl":                "nl",
	} {
		if got := PickLanguage("", "", h); got != want {
			t.Errorf("Accept-Language %q: %q, want %q", h, got, want)
		}
	}
	if got := PickLanguage("", "de", "nl"); got != "de" {
		t.Errorf("bot locale should beat Accept-Language: %q", got)
	}
	if got := PickLanguage("fr", "de", "nl"); got != "fr" {
		t.Errorf("explicit language should win: %q", got)
	}
}

func TestLanguage(t *testing.T) {
	for tag, want := range map[string]string{"nl-BE": "nl", "EN_gb": "en", "de": "de", "es": "es", "ar-EG": "ar", "ja": "", "": "", "english": ""} {
		if got := Language(tag); got != want {
			t.Errorf("Language(%q) = %q, want %q", tag, got, want)
		}
	}
}

// TestOffers: a click matches only a postback the body offers, with its
// exact title and payload; links and phone buttons are no postbacks.
func TestOffers(t *testing.T) {
	b := widget.Body{Kind: widget.KindCarousel, Text: "Pick",
		QuickReplies: []widget.QuickReply{{Title: "Fast", Payload: "qr-fast"}},
		Buttons:      []widget.Button{{Type: widget.ButtonPostback, Title: "Yes", Payload: "yes"}, {Type: widget.ButtonURL, Title: "Site", URL: "https://example.com"}},
		Cards:        []widget.Card{{Title: "A", Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "Pick A", Payload: `{"nextDialogstateId":"7"}`}}}},
	}
	for _, tc := range []struct {
		title, payload string
		want           bool
	}{
		{"Fast", "qr-fast", true},
		{"Yes", "yes", true},
		{"Pick A", `{"nextDialogstateId":"7"}`, true},
		{"Pick A", `{"nextDialogstateId":"8"}`, false},
		{"Yes", "qr-fast", false},
		{"Site", "", false},
		{"Site", "https://example.com", false},
		{"", "", false},
	} {
		if got := Offers(b, tc.title, tc.payload); got != tc.want {
			t.Errorf("Offers(%q, %q) = %v, want %v", tc.title, tc.payload, got, tc.want)
		}
	}
}
