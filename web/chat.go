package web

import (
	"context"
	_ "embed"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/porthole-chat/porthole/widget"
)

// ChatPage is everything the no-JavaScript chat page shows: the server
// fills it from the store and renders it with Render. The page works with
// plain HTML forms only; its one optional script tells a loader that
// framed it which visitor it is (see Host).
type ChatPage struct {
	// Bot is the bot's id, as in /chat/{bot}.
	Bot string
	// Look is the bot's configured appearance.
	Look widget.Look
	// Texts are the page's texts in the visitor's language.
	Texts ChatTexts
	// Embed is set when the loader shows the page in its panel (an
	// iframe): the page fills the frame and links open new tabs.
	Embed bool
	// Query is what every link and form of the page carries over to the
	// next page, such as embed=1, lang=nl, and, in the loader's panel,
	// host=<the host page's origin> and v=<visitor token> when no session
	// cookie identifies the visitor (the server takes a link's token only
	// there, never at the top level).
	Query url.Values
	// Visitor is the signed visitor token, carried in every form so that
	// the page works where the session cookie is blocked (a third-party
	// frame); empty before the first message.
	Visitor string
	// Host, in an embedded page, is the origin of the host page that
	// framed it, as the loader said and the server checked against the
	// bot's origins. When set, the page hands Visitor to the loader with
	// postMessage addressed to Host only (never "*", which would hand it
	// to whatever page framed it), so the next page of the host site
	// finds the same conversation. Without JavaScript nothing happens and
	// nothing is lost.
	Host string
	// Zone is the visitor's time zone (the tz parameter the loader's
	// fallback passes); nil shows times in UTC.
	Zone *time.Location
	// Now is the time the page is made at, for "today" (zero: now).
	Now time.Time
	// CSRF is the form token tied to the visitor (or to the session
	// cookie before the first message).
	CSRF string
	// Form is a fresh random value per rendering: a message's id is made
	// of it and the message's content, so a form submitted twice stores
	// its message once.
	Form string
	// Nonce allows the page's inline style and script under its CSP.
	Nonce string
	// Entries are the transcript, oldest first.
	Entries []ChatEntry
	// Earlier is set when older messages exist than Entries shows.
	Earlier bool
	// Waiting is set while a reply is expected: the server makes the page
	// refresh itself (Refresh header) and the page says so.
	Waiting bool
	// Refreshing is set when Waiting and the visitor has not turned
	// automatic refreshing off.
	Refreshing bool
	// Error is a problem with the visitor's last submit; Draft is the
	// text they typed, put back into the composer so nothing is lost.
	Error, Draft string
}

// ChatEntry is one transcript message.
type ChatEntry struct {
	Seq  uint64
	Mine bool // written by the visitor
	At   time.Time
	Body widget.Body
	// State is the delivery state of a visitor's message: one of
	// widget.StateSent (stored, the bot platform has not taken it yet),
	// StateDelivered or StateFailed, with Reason the error code of a
	// failure. ShowState says whether the page shows it: always for
	// failed and unsent messages, else only for the visitor's latest.
	State, Reason string
	ShowState     bool
}

// MaxEntries is how many of the latest messages the page shows.
const MaxEntries = 200

// Render writes the page.
func (p *ChatPage) Render(w http.ResponseWriter, r *http.Request, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = chatPage(p).Render(r.Context(), w)
	}
}

// Title is the bot's title, or the generic "Chat".
func (p *ChatPage) Title() string {
	if p.Look.Title != "" {
		return p.Look.Title
	}
	return p.Texts.Get(widget.TextChat)
}

// URL returns the page's relative URL (it lives at /chat/{bot}) with the
// page's query and extra pairs ("key", "value", ...) that replace any
// earlier value of the same key; an empty value removes the key.
func (p *ChatPage) URL(pairs ...string) string {
	q := url.Values{}
	for k, v := range p.Query {
		q[k] = v
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			q.Del(pairs[i])
		} else {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	u := url.PathEscape(p.Bot)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Day returns the day above entry i when it is that day's first: today,
// yesterday or the date (MediumDate, as the widget writes it), in the
// page's language and time zone (Zone, else UTC); "" when it is not the
// day's first.
func (p *ChatPage) Day(i int) string {
	if p.Entries[i].At.IsZero() {
		return ""
	}
	zone := p.zone()
	day := p.Entries[i].At.In(zone).Format(time.DateOnly)
	if i > 0 && p.Entries[i-1].At.In(zone).Format(time.DateOnly) == day {
		return ""
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	switch day {
	case now.In(zone).Format(time.DateOnly):
		return p.Texts.Get(widget.TextToday)
	case now.In(zone).AddDate(0, 0, -1).Format(time.DateOnly):
		return p.Texts.Get(widget.TextYesterday)
	}
	return MediumDate(p.Texts.Lang(), p.Entries[i].At.In(zone))
}

// Clock is the time of entry e in the page's time zone, like 14:05, and
// "UTC" after it when the page has no zone.
func (p *ChatPage) Clock(e ChatEntry) string {
	if p.Zone == nil {
		return e.At.UTC().Format("15:04") + " UTC"
	}
	return e.At.In(p.Zone).Format("15:04")
}

func (p *ChatPage) zone() *time.Location {
	if p.Zone == nil {
		return time.UTC
	}
	return p.Zone
}

// SaveURL is the visitor's plain-text transcript (GET
// /chat/{bot}/transcript.txt), with the page's query, which names the
// visitor in the loader's panel where no cookie does.
func (p *ChatPage) SaveURL() string {
	return url.PathEscape(p.Bot) + "/transcript.txt?" + p.Query.Encode()
}

// PollURL is the URL that loads the page again: for the automatic refresh
// and the "check for replies" link. It differs from the page's own URL
// (poll is new in every rendering), because a browser treats a link or a
// refresh to the current URL with a #fragment as a scroll, not a load.
func (p *ChatPage) PollURL(pairs ...string) string {
	poll := p.Form
	if len(poll) > 8 {
		poll = poll[:8]
	}
	return p.URL(append([]string{"poll", poll}, pairs...)...) + "#end"
}

// QuickReplies returns the quick replies of the latest message, the only
// ones offered (as in the widget), and that message's seq.
func (p *ChatPage) QuickReplies() (uint64, []widget.QuickReply) {
	if n := len(p.Entries); n > 0 && !p.Entries[n-1].Mine {
		e := p.Entries[n-1]
		return e.Seq, e.Body.QuickReplies
	}
	return 0, nil
}

// chatCSS is the page's stylesheet, web/chat.css minified by
// `go run ./web/build -chatcss` (`make generate`); it is inlined into
// every page, and the bot's colours are added as custom properties by
// Style.
//
//go:embed chat.min.css
var chatCSS string

// Style returns the page's stylesheet with the bot's colours. The colours
// are normalised "#rrggbb" values, so nothing from the configuration
// reaches the stylesheet unchecked.
func (p *ChatPage) Style() string {
	brand := widget.BrandColor(p.Look.BrandColor)
	c := widget.MustColor(brand)
	light := widget.Readable(c, widget.MustColor("#ffffff"), 4.5)
	dark := widget.Readable(c, widget.MustColor("#16191f"), 4.5)
	text := ";--brand-text:" + light.String() + "}@media (prefers-color-scheme:dark){:root{--brand-text:" + dark.String() + "}}"
	switch p.Look.ColorScheme {
	case "light":
		text = ";--brand-text:" + light.String() + "}"
	case "dark":
		text = ";--brand-text:" + dark.String() + "}"
	}
	font := ""
	if p.Look.Font != "" && widget.CheckFont("font", p.Look.Font) == nil {
		font = "body{font-family:" + p.Look.Font + "}"
	}
	return ":root{--brand:" + brand + ";--on-brand:" + widget.TextOn(brand) + text + chatCSS + font
}

// handoverScript posts the page's visitor token to the loader that framed
// it; the loader keeps it as the widget would. It reads the token and the
// host page's origin from <html data-visitor data-host>, so the script
// itself never changes, and addresses the message to that origin only.
const handoverScript = `(function(){var d=document.documentElement.dataset;try{if(d.visitor&&d.host&&parent!==window)parent.postMessage({porthole:"visitor",bot:d.bot,visitor:d.visitor},d.host)}catch(e){}})()`

// headBlock writes the inline style and, when wanted, the hand-over
// script, each with the page's CSP nonce. Their contents are constants
// and normalised colours, so they are written as they are.
func (p *ChatPage) headBlock() templ.Component {
	s := `<style nonce="` + templ.EscapeString(p.Nonce) + `">` + p.Style() + `</style>`
	if p.Host != "" && p.Visitor != "" {
		s += `<script nonce="` + templ.EscapeString(p.Nonce) + `">` + handoverScript + `</script>`
	}
	return templ.Raw(s)
}

// Ref names one clickable element of a stored bot message, so that a
// form sends a reference ("12.q.0": quick reply 0 of message 12) and the
// server takes the title and payload from the store, never from the form.
type Ref struct {
	Seq   uint64
	Kind  byte // 'q' quick reply, 'b' button, 'c' a card's button
	Card  int  // for 'c'
	Index int
}

func (r Ref) String() string {
	s := strconv.FormatUint(r.Seq, 10) + "." + string(r.Kind) + "."
	if r.Kind == 'c' {
		s += strconv.Itoa(r.Card) + "."
	}
	return s + strconv.Itoa(r.Index)
}

// ParseRef reads a Ref written by Ref.String.
func ParseRef(s string) (Ref, bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 3 || len(parts[1]) != 1 {
		return Ref{}, false
	}
	r := Ref{Kind: parts[1][0]}
	var err error
	if r.Seq, err = strconv.ParseUint(parts[0], 10, 64); err != nil || r.Seq == 0 {
		return Ref{}, false
	}
	nums := parts[2:]
	want := 1
	if r.Kind == 'c' {
		want = 2
	} else if r.Kind != 'q' && r.Kind != 'b' {
		return Ref{}, false
	}
	if len(nums) != want {
		return Ref{}, false
	}
	idx := make([]int, want)
	for i, n := range nums {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 || strconv.Itoa(v) != n {
			return Ref{}, false
		}
		idx[i] = v
	}
	if r.Kind == 'c' {
		r.Card = idx[0]
	}
	r.Index = idx[want-1]
	return r, true
}

// Postback returns the title and payload of the postback r names in b,
// or false when b has no such postback.
func (r Ref) Postback(b widget.Body) (title, payload string, ok bool) {
	var bs []widget.Button
	switch r.Kind {
	case 'q':
		if r.Index < len(b.QuickReplies) {
			q := b.QuickReplies[r.Index]
			return q.Title, q.Payload, true
		}
		return "", "", false
	case 'b':
		bs = b.Buttons
	case 'c':
		if r.Card >= len(b.Cards) {
			return "", "", false
		}
		bs = b.Cards[r.Card].Buttons
	}
	if r.Index < len(bs) && bs[r.Index].Type == widget.ButtonPostback {
		return bs[r.Index].Title, bs[r.Index].Payload, true
	}
	return "", "", false
}

// Offers reports whether b offers a postback with exactly this title and
// payload: one of the elements a Ref can name (a quick reply, a postback
// button, a card's postback button). The chat page takes a click's title
// and payload from the store by its Ref; the socket, which gets them from
// the widget, checks them with Offers; so both accept exactly what the bot
// offered, and a forged click (a payload the bot never sent, which may
// jump to any Chatlayer dialog state) is refused.
func Offers(b widget.Body, title, payload string) bool {
	match := func(r Ref) bool {
		t, p, ok := r.Postback(b)
		return ok && t == title && p == payload
	}
	for i := range b.QuickReplies {
		if match(Ref{Kind: 'q', Index: i}) {
			return true
		}
	}
	for i := range b.Buttons {
		if match(Ref{Kind: 'b', Index: i}) {
			return true
		}
	}
	for c, card := range b.Cards {
		for i := range card.Buttons {
			if match(Ref{Kind: 'c', Card: c, Index: i}) {
				return true
			}
		}
	}
	return false
}

// linkURL returns u when it is safe as a link target, else "".
func linkURL(u string) string {
	if widget.CheckURL("href", u, true) != nil {
		return ""
	}
	return u
}

// mediaURL returns u when it is safe as an image or media source, else "".
func mediaURL(u string) string {
	if u == "" || widget.CheckURL("src", u, false) != nil {
		return ""
	}
	return u
}

// external says whether a link leaves for another site, and so opens in
// a new tab (tel: and mailto: links open their apps instead).
func external(u string) bool {
	return !strings.HasPrefix(u, "tel:") && !strings.HasPrefix(u, "mailto:")
}

func phoneHref(p string) string {
	var b []byte
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '+' || c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	return "tel:" + string(b)
}

func entryClass(e ChatEntry) string {
	c := "msg bot"
	if e.Mine {
		c = "msg user"
	}
	if e.Body.Kind == widget.KindCarousel {
		c += " wide"
	}
	if e.State == widget.StateFailed {
		c += " failed"
	}
	return c
}

// stateText is what the page says about a visitor's message.
func (p *ChatPage) stateText(e ChatEntry) string {
	s := p.Texts.State(e.State)
	if e.State == widget.StateFailed && e.Reason != "" {
		s += " · " + p.Texts.Error(e.Reason)
	}
	return s
}

func mediaName(b widget.Body, t ChatTexts, fallback string) string {
	if b.Alt != "" {
		return b.Alt
	}
	return t.Get(fallback)
}

// bubble shows text with its links, the author first for screen readers
// and text browsers. It is written by hand because the text keeps its
// white space (line breaks are the bot's), so no markup may add any.
func bubble(p *ChatPage, e ChatEntry, text string) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		author := p.Title()
		if e.Mine {
			author = p.Texts.Get(widget.TextYou)
		}
		var b strings.Builder
		b.WriteString(`<p class="bubble"><span class="sr">`)
		b.WriteString(templ.EscapeString(author + ": "))
		b.WriteString(`</span>`)
		for _, seg := range widget.Linkify(text) {
			if seg.URL == "" {
				b.WriteString(templ.EscapeString(seg.Text))
				continue
			}
			b.WriteString(`<a href="` + templ.EscapeString(seg.URL) + `"`)
			if external(seg.URL) {
				b.WriteString(` target="_blank"`)
			}
			b.WriteString(` rel="noopener noreferrer">` + templ.EscapeString(seg.Text))
			if external(seg.URL) {
				b.WriteString(`<span class="sr"> ` + templ.EscapeString(p.Texts.Get(widget.TextNewTab)) + `</span>`)
			}
			b.WriteString(`</a>`)
		}
		b.WriteString(`</p>`)
		_, err := io.WriteString(w, b.String())
		return err
	})
}

func withIndex(r Ref, i int) Ref {
	r.Index = i
	return r
}
