//go:build js && wasm

package main

import (
	"strconv"
	"syscall/js"

	"github.com/porthole-chat/porthole/widget"
)

// build takes over the launcher and the panel's frame that the loader
// drew (web/loader/widget.js), finding them by their classes: the same
// elements, so focus, a half-typed draft and the scroll position stay.
func (w *widgetUI) build() {
	w.built = true
	q := func(sel string) js.Value { return w.root.Call("querySelector", sel) }
	w.launcher, w.badge = q(".launcher"), q(".badge")
	w.panel, w.header, w.icon = q(".panel"), q(".header"), q(".avatar")
	w.title, w.subtitle, w.closeBtn = q(".title"), q(".subtitle"), q(".close")
	w.banner, w.log, w.live = q(".banner"), q(".log"), q(".sr")
	w.textarea, w.send = q("textarea"), q(".send")
	w.open = !w.panel.Get("hidden").Bool()
	w.listen(w.launcher, "click", func(js.Value) { w.setOpen(!w.open) })
	w.listen(w.panel, "keydown", func(ev js.Value) {
		if ev.Get("key").String() == "Escape" && !w.inline {
			ev.Call("stopPropagation")
			w.setOpen(false)
		}
	})
	w.listen(w.closeBtn, "click", func(js.Value) { w.setOpen(false) })
	// Save conversation: a plain-text copy through a Blob URL.
	w.saveBtn = el("button", "save", js.Null())
	attr(w.saveBtn, "type", "button")
	icon("", "M12 4v11m-5-5 5 5 5-5M5 20h14", w.saveBtn)
	w.header.Call("insertBefore", w.saveBtn, w.closeBtn)
	w.listen(w.saveBtn, "click", func(js.Value) { w.download() })
	w.listen(q(".composer"), "submit", func(ev js.Value) {
		ev.Call("preventDefault")
		w.submit()
	})
	w.listen(w.textarea, "keydown", func(ev js.Value) {
		if ev.Get("key").String() == "Enter" && !ev.Get("shiftKey").Bool() && !ev.Get("isComposing").Bool() {
			ev.Call("preventDefault")
			w.submit()
		}
	})
	w.listen(w.textarea, "input", func(js.Value) { w.grow() })
	// Images and video grow the log when they load, after the render that
	// scrolled it: keep following the newest message while the visitor is
	// at the end. Media events do not bubble: listen in the capture phase.
	// Only the visitor scrolling up leaves the end: a scroll event from our
	// own pinning can arrive after media grew the log, when the position
	// is no longer near the (new) end but still where we put it.
	w.listen(w.log, "scroll", func(js.Value) {
		w.atEnd = w.nearEnd() || w.log.Get("scrollTop").Int() >= w.pinned-2
	})
	follow := w.fn(func() {
		if w.atEnd {
			w.scrollToEnd()
		}
	})
	w.log.Call("addEventListener", "load", follow, true)           // images
	w.log.Call("addEventListener", "loadedmetadata", follow, true) // video and audio
	w.log.Call("addEventListener", "resize", follow, true)         // video size known

	if w.greeting = q(".greeting"); !w.greeting.Truthy() {
		w.greeting = el("p", "greeting", js.Null())
	}
	w.divider = el("div", "greeting", js.Null())
	w.typing = el("div", "typing", js.Null())
	for i := 0; i < 3; i++ {
		el("i", "", w.typing)
	}
	w.quick = el("div", "quick", js.Null())
	attr(w.quick, "role", "group")
}

// submit sends the composer's text.
func (w *widgetUI) submit() {
	text := widget.TrimSpace(w.textarea.Get("value").String())
	if text == "" {
		return
	}
	_, u := w.client.SendText(text)
	if u.Notice == nil || u.Notice.ID != "" {
		w.textarea.Set("value", "")
		w.grow()
	}
	w.apply(u)
	w.scrollToEnd()
}

// grow fits the composer to its text, up to its CSS max-height.
func (w *widgetUI) grow() {
	style := w.textarea.Get("style")
	style.Set("height", "auto")
	style.Set("height", strconv.Itoa(w.textarea.Get("scrollHeight").Int())+"px")
}

// render updates what changed.
func (w *widgetUI) render(ch widget.Change) {
	if ch&widget.ChangeLook != 0 {
		w.renderLook()
	}
	if ch&(widget.ChangeTranscript|widget.ChangeTyping|widget.ChangeLook) != 0 {
		w.renderTranscript()
	}
	if ch&(widget.ChangeConnection|widget.ChangeLook) != 0 {
		b := w.client.Banner()
		if b != "" {
			b = w.texts.Get(b)
		}
		setText(w.banner, b)
		w.banner.Set("hidden", b == "")
	}
	if ch&(widget.ChangeUnread|widget.ChangeLook) != 0 {
		n := w.client.Unread()
		setText(w.badge, strconv.Itoa(n))
		w.badge.Set("hidden", n == 0)
		w.labelLauncher()
		w.markTitle(false)
		if ch&widget.ChangeUnread != 0 {
			w.emit("unread", n)
		}
	}
}

func (w *widgetUI) labelLauncher() {
	label := w.texts.Get(widget.TextLauncherOpen)
	if w.open {
		label = w.texts.Get(widget.TextLauncherClose)
	}
	if n := w.client.Unread(); n > 0 && !w.open {
		label += ", " + w.texts.Unread(n)
	}
	attr(w.launcher, "aria-label", label)
}

// renderLook applies the bot's look and texts.
func (w *widgetUI) renderLook() {
	look := w.client.Look()
	w.texts = w.client.Texts()
	t := w.texts
	style := w.host.Get("style")
	// The eager stylesheet has the bot's brand colour: set it here only
	// for the page's option, so that a host page's --ph-brand wins.
	if c := w.opts.Get("brandColor"); c.Type() == js.TypeString {
		brand := widget.BrandColor(look.BrandColor)
		style.Call("setProperty", "--ph-brand", brand)
		style.Call("setProperty", "--ph-on-brand", widget.TextOn(brand))
	}
	if look.Font != "" { // one value: CSSOM ignores anything but a font list
		style.Call("setProperty", "--ph-font", look.Font)
	}
	attr(w.host, "data-scheme", look.ColorScheme)
	side := "right"
	if look.Position == "left" {
		side = "left"
	}
	for _, e := range []js.Value{w.launcher, w.panel} {
		cl := e.Get("classList")
		cl.Call("toggle", "left", side == "left")
		cl.Call("toggle", "right", side == "right")
	}
	name := w.botName()
	setText(w.title, name)
	setText(w.subtitle, look.Subtitle)
	w.subtitle.Set("hidden", look.Subtitle == "")
	if look.Icon != "" && widget.CheckURL("icon", look.Icon, false) == nil {
		attr(w.icon, "src", look.Icon)
		w.icon.Set("hidden", false)
	} else {
		w.icon.Set("hidden", true)
	}
	attr(w.panel, "aria-label", t.Dialog(look.Title))
	attr(w.panel, "lang", t.Lang())
	attr(w.panel, "dir", t.Dir())
	attr(w.launcher, "lang", t.Lang())
	attr(w.closeBtn, "aria-label", t.Get(widget.TextClose))
	attr(w.saveBtn, "aria-label", t.Get(widget.TextSave))
	attr(w.saveBtn, "title", t.Get(widget.TextSave))
	attr(w.textarea, "placeholder", t.Get(widget.TextPlaceholder))
	attr(w.textarea, "aria-label", t.Get(widget.TextComposer))
	attr(w.send, "aria-label", t.Get(widget.TextSend))
	attr(w.log, "aria-label", t.Dialog(look.Title))
	attr(w.quick, "aria-label", t.Get(widget.TextQuickReplies))
	setText(w.greeting, look.Greeting)
	setText(w.divider, t.Get(widget.TextNewMessages))
	w.typing.Set("title", t.Typing(look.Title))
	attr(w.typing, "aria-label", t.Typing(look.Title))
	attr(w.typing, "role", "img")
	w.labelLauncher()
	// Times and dates in the new language.
	w.timeFmt = dateFormat(t.Lang(), `{"hour":"numeric","minute":"2-digit"}`)
	w.dayFmt = dateFormat(t.Lang(), `{"dateStyle":"medium"}`)
	// Texts inside messages (states, retry, carousel) change too.
	w.nodes = map[string]*msgNode{}
}

// renderTranscript brings the log in line with the client's entries,
// creating or replacing only the entries whose content changed, and
// moving nodes only where the order differs.
func (w *widgetUI) renderTranscript() {
	// Follow the conversation unless the visitor scrolled away from its
	// end; media that grew the log since do not count as scrolling away.
	stick := w.atEnd || w.nearEnd()
	entries := w.client.Entries()
	qrEntry, qrs := w.client.QuickReplies()
	divider := w.client.Divider()

	want := make([]js.Value, 0, len(entries)+4)
	if w.client.Look().Greeting != "" {
		want = append(want, w.greeting)
	}
	seen := make(map[string]bool, len(entries))
	// A day's first message has the day above it: today, yesterday, or
	// the date. Days are told apart by their date in the visitor's
	// language, and yesterday is found from its noon (setHours(-12) on
	// today), which every time zone has.
	var lastDay, today, yesterday string
	for _, e := range entries {
		key, sig := entryKey(e), w.signature(e)
		seen[key] = true
		n := w.nodes[key]
		if n == nil || n.sig != sig {
			n2 := &msgNode{sig: sig}
			n2.el, n2.day = w.renderEntry(e)
			if n != nil && n.el.Get("parentNode").Truthy() {
				n.el.Get("parentNode").Call("replaceChild", n2.el, n.el)
			}
			n = n2
			w.nodes[key] = n
		}
		if n.day != "" && n.day != lastDay {
			lastDay = n.day
			if today == "" {
				today = w.dayFmt.Call("format").String()
				yesterday = w.dayFmt.Call("format", global.Get("Date").New().Call("setHours", -12)).String()
				if w.stopDay == nil {
					// Relabel just after the next local midnight, so that
					// a panel left open overnight does not keep "Today"
					// on yesterday's messages.
					next := global.Get("Date").New().Call("setHours", 24, 0, 1).Int() - global.Get("Date").Call("now").Int()
					w.stopDay = after(next, func() {
						w.stopDay = nil
						w.renderTranscript()
					})
				}
			}
			if !n.dayEl.Truthy() {
				n.dayEl = el("div", "day", js.Null())
			}
			label := n.day
			if label == today {
				label = w.texts.Get(widget.TextToday)
			} else if label == yesterday {
				label = w.texts.Get(widget.TextYesterday)
			}
			setText(n.dayEl, label)
			want = append(want, n.dayEl)
		}
		if divider != 0 && e.Seq == divider {
			want = append(want, w.divider)
		}
		want = append(want, n.el)
	}
	for k := range w.nodes {
		if !seen[k] {
			delete(w.nodes, k)
		}
	}
	if qrEntry != nil {
		clear(w.quick)
		for _, q := range qrs {
			q := q
			b := el("button", "chip", w.quick)
			attr(b, "type", "button")
			setText(b, q.Title)
			w.onClick(b, func() { w.postback(q.Title, q.Payload) })
		}
		want = append(want, w.quick)
	}
	if w.client.Typing() {
		want = append(want, w.typing)
	}

	children := w.log.Get("children")
	for i, n := range want {
		if cur := children.Index(i); !cur.Equal(n) {
			if cur.Truthy() {
				w.log.Call("insertBefore", n, cur)
			} else {
				w.log.Call("appendChild", n)
			}
		}
	}
	for children.Length() > len(want) {
		w.log.Call("removeChild", w.log.Get("lastElementChild"))
	}
	if stick {
		w.scrollToEnd()
	}
}

func entryKey(e *widget.Entry) string {
	if e.ClientID != "" {
		return "c" + e.ClientID
	}
	return "s" + strconv.FormatUint(e.Seq, 10)
}

// signature is what a rendered entry depends on besides its body.
func (w *widgetUI) signature(e *widget.Entry) string {
	if !e.Mine() {
		return e.Body.Kind
	}
	sig := e.State + "|" + e.Error
	if w.client.ShowState(e) {
		sig += "|shown"
	}
	return sig
}

func (w *widgetUI) nearEnd() bool {
	return w.log.Get("scrollHeight").Int()-w.log.Get("scrollTop").Int()-w.log.Get("clientHeight").Int() < 80
}

func (w *widgetUI) scrollToEnd() {
	w.log.Set("scrollTop", w.log.Get("scrollHeight"))
	w.pinned = w.log.Get("scrollTop").Int()
	w.atEnd = true
}

func (w *widgetUI) postback(title, payload string) {
	_, u := w.client.Postback(title, payload)
	w.apply(u)
	w.scrollToEnd()
}

// onClick registers a click handler on an element that lives as long as
// its message; the func is released with the widget.
func (w *widgetUI) onClick(e js.Value, fn func()) {
	w.listen(e, "click", func(js.Value) { fn() })
}

// renderEntry builds the DOM of one message, and gives its local date.
// Text goes in as text nodes; URLs were checked by the server and are
// checked again here.
func (w *widgetUI) renderEntry(e *widget.Entry) (m js.Value, day string) {
	t := w.texts
	cls := "msg bot"
	if e.Mine() {
		cls = "msg user"
	}
	if e.Body.Kind == widget.KindCarousel {
		cls += " wide"
	}
	if e.State == widget.StateFailed {
		cls += " failed"
	}
	m = el("div", cls, js.Null())
	b := e.Body
	switch b.Kind {
	case widget.KindText:
		w.bubble(m, e, b.Text, b.Blocks)
	case widget.KindButtons:
		if b.Text != "" {
			w.bubble(m, e, b.Text, b.Blocks)
		}
		w.buttons(m, b.Buttons)
	case widget.KindCarousel:
		w.carousel(m, b.Cards)
	case widget.KindMedia:
		w.media(m, b)
	default:
		w.bubble(m, e, t.Get(widget.TextUnsupported), nil)
	}
	if e.Stamp != "" {
		at := el("time", "at", m)
		attr(at, "datetime", e.Stamp)
		d := global.Get("Date").New(e.Stamp)
		at.Set("textContent", w.timeFmt.Call("format", d))
		day = w.dayFmt.Call("format", d).String()
	}
	if w.client.ShowState(e) {
		meta := el("div", "meta", m)
		st := el("span", "", meta)
		setText(st, t.State(e.State))
		if e.State == widget.StateSending && e.Error != "" { // refused for now, retried
			setText(st, t.State(e.State)+" · "+t.Error(e.Error))
		}
		if e.State == widget.StateFailed {
			st.Set("className", "failed")
			if msg := t.Error(e.Error); e.Detail != "" || !e.CanRetry() {
				setText(st, t.State(e.State)+" · "+msg)
			}
			if e.CanRetry() {
				r := el("button", "retry", meta)
				attr(r, "type", "button")
				setText(r, t.Get(widget.TextRetry))
				id := e.ClientID
				w.onClick(r, func() { w.apply(w.client.Retry(id)) })
			}
		}
	}
	return m, day
}

// bubble renders text with its links as real, safe links, or a bot's
// formatted text (blocks) when it has some.
func (w *widgetUI) bubble(m js.Value, e *widget.Entry, s string, blocks []widget.Block) {
	b := el("div", "bubble", m)
	if e.Mine() {
		you := el("span", "sr", b)
		setText(you, w.texts.Get(widget.TextYou)+" ")
	} else if blocks != nil {
		b.Set("className", "bubble rich")
		w.blocks(b, blocks)
		return
	}
	for _, seg := range widget.Linkify(s) {
		if seg.URL == "" {
			text(b, seg.Text)
			continue
		}
		setText(w.link(b, "", seg.URL), seg.Text)
	}
}

// blocks renders formatted text with DOM nodes: p, ul, ol, li, pre,
// and per run strong, em, del and code, inside a link when it has one;
// every text goes in as a text node, and link makes every anchor.
func (w *widgetUI) blocks(parent js.Value, bs []widget.Block) {
	for _, b := range bs {
		switch {
		case b.P != nil:
			p := el("p", "", parent)
			for _, r := range b.P {
				n := p
				if r.URL != "" {
					n = w.link(n, "", r.URL)
				}
				for i := 0; i < len(r.Style); i++ {
					if k := widget.IndexByte(widget.Styles, r.Style[i]); k >= 0 {
						n = el(styleTags[k], "", n)
					}
				}
				text(n, r.Text)
			}
		case b.Pre != "":
			setText(el("code", "", el("pre", "", parent)), b.Pre)
		default:
			tag, items := "ul", b.UL
			if b.OL != nil {
				tag, items = "ol", b.OL
			}
			l := el(tag, "", parent)
			if b.Start > 1 {
				attr(l, "start", strconv.Itoa(b.Start))
			}
			for _, item := range items {
				w.blocks(el("li", "", l), item)
			}
		}
	}
}

// styleTags are the elements of widget.Styles' letters.
var styleTags = [...]string{"strong", "em", "del", "code"}

// link makes an anchor that opens in a new tab without handing the page
// a reference to the opener or the referrer.
func (w *widgetUI) link(parent js.Value, class, href string) js.Value {
	a := el("a", class, parent)
	if widget.CheckURL("href", href, true) == nil {
		attr(a, "href", href)
	}
	if !widget.HasPrefix(href, "tel:") && !widget.HasPrefix(href, "mailto:") {
		attr(a, "target", "_blank")
	}
	attr(a, "rel", "noopener noreferrer")
	return a
}

func (w *widgetUI) buttons(parent js.Value, bs []widget.Button) {
	if len(bs) == 0 {
		return
	}
	box := el("div", "buttons", parent)
	for _, bt := range bs {
		bt := bt
		switch bt.Type {
		case widget.ButtonPostback:
			b := el("button", "btn", box)
			attr(b, "type", "button")
			setText(b, bt.Title)
			w.onClick(b, func() { w.postback(bt.Title, bt.Payload) })
		case widget.ButtonURL:
			setText(w.link(box, "btn", bt.URL), bt.Title)
		case widget.ButtonPhone:
			setText(w.link(box, "btn", "tel:"+phoneDigits(bt.Phone)), bt.Title)
		}
	}
}

func phoneDigits(p string) string {
	var b []byte
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '+' || c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	return string(b)
}

// carousel renders cards in a horizontally scrolling, snapping track
// with previous/next buttons; arrow keys move between cards.
func (w *widgetUI) carousel(m js.Value, cards []widget.Card) {
	t := w.texts
	box := el("div", "carousel", m)
	prev := el("button", "nav prev", box)
	attr(prev, "type", "button")
	attr(prev, "aria-label", t.Get(widget.TextPrevious))
	icon("", iconPrev, prev)
	track := el("div", "track", box)
	attr(track, "role", "list")
	next := el("button", "nav next", box)
	attr(next, "type", "button")
	attr(next, "aria-label", t.Get(widget.TextNext))
	icon("", iconNext, next)

	for i, c := range cards {
		card := el("div", "card", track)
		attr(card, "role", "listitem")
		attr(card, "aria-label", t.CardOf(i+1, len(cards))+": "+c.Title)
		if c.Image != "" && widget.CheckURL("image", c.Image, false) == nil {
			img := el("img", "", card)
			attr(img, "src", c.Image)
			attr(img, "alt", "")
			attr(img, "loading", "lazy")
		}
		body := el("div", "card-body", card)
		h := el("h3", "card-title", body)
		if c.URL != "" {
			setText(w.link(h, "", c.URL), c.Title)
		} else {
			setText(h, c.Title)
		}
		if c.Subtitle != "" {
			setText(el("p", "card-sub", body), c.Subtitle)
		}
		w.buttons(card, c.Buttons)
	}
	// Right to left, the track starts at the right: scrollLeft runs
	// from 0 down, and the next card is to the left.
	sign := 1
	if t.Dir() == "rtl" {
		sign = -1
	}
	step := func(dir int) {
		first := track.Get("firstElementChild")
		if !first.Truthy() {
			return
		}
		width := first.Get("offsetWidth").Int() + 10
		track.Call("scrollBy", map[string]any{"left": sign * dir * width, "behavior": "smooth"})
	}
	nav := func() {
		left := sign * track.Get("scrollLeft").Int()
		max := track.Get("scrollWidth").Int() - track.Get("clientWidth").Int()
		prev.Set("disabled", left <= 2)
		next.Set("disabled", left >= max-2)
	}
	w.onClick(prev, func() { step(-1) })
	w.onClick(next, func() { step(1) })
	w.listen(track, "scroll", func(js.Value) { nav() })
	after(0, nav)
}

// media renders images, video, audio and files, each with a text
// alternative.
func (w *widgetUI) media(m js.Value, b widget.Body) {
	t := w.texts
	if widget.CheckURL("url", b.URL, false) != nil {
		w.bubble(m, &widget.Entry{}, b.Alt, nil)
		return
	}
	switch b.Media {
	case widget.MediaImage:
		box := el("div", "media", m)
		img := el("img", "", box)
		attr(img, "src", b.URL)
		attr(img, "alt", b.Alt)
		attr(img, "loading", "lazy")
	case widget.MediaVideo, widget.MediaAudio:
		box := el("div", "media", m)
		tag, fallback, label := "video", widget.TextVideoUnsupported, widget.TextOpenVideo
		if b.Media == widget.MediaAudio {
			tag, fallback, label = "audio", widget.TextAudioUnsupported, widget.TextOpenAudio
		}
		v := el(tag, "", box)
		attr(v, "src", b.URL)
		attr(v, "controls", "")
		attr(v, "preload", "metadata")
		name := b.Alt
		if name == "" {
			name = t.Get(label)
		}
		attr(v, "aria-label", name)
		text(v, t.Get(fallback)+" ")
		setText(w.link(v, "", b.URL), t.Get(label))
	default:
		a := w.link(m, "file", b.URL)
		icon("", iconFile, a)
		name := b.Alt
		if name == "" {
			name = t.Get(widget.TextOpenFile)
		}
		setText(el("span", "", a), name)
	}
}

// download hands the visitor a plain-text copy of the conversation.
func (w *widgetUI) download() {
	blob := global.Get("Blob").New(global.Get("Array").New(w.client.PlainText(w.botName())), object(`{"type":"text/plain;charset=utf-8"}`))
	url := global.Get("URL").Call("createObjectURL", blob)
	a := el("a", "", js.Null())
	a.Set("href", url)
	a.Set("download", "conversation.txt")
	a.Call("click")
	global.Call("setTimeout", global.Get("URL").Get("revokeObjectURL").Call("bind", global.Get("URL"), url), 60000)
}

// dateFormat is an Intl.DateTimeFormat of a language with options (JSON).
func dateFormat(lang, options string) js.Value {
	return global.Get("Intl").Get("DateTimeFormat").New(lang, object(options))
}

// object is a JavaScript object from JSON: smaller in widget.wasm than
// a Go map handed to js.ValueOf.
func object(json string) js.Value { return global.Get("JSON").Call("parse", json) }
