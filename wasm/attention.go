//go:build js && wasm

package main

import (
	"strconv"
	"syscall/js"

	"github.com/porthole-chat/porthole/widget"
)

// Attention cues and page context. Both run only in this program, that
// is after the visitor's intent (or a returning visitor's idle start):
// the eager loader knows nothing of them.

// attention tells the visitor of new bot messages while the panel is
// closed: a preview of the newest beside the launcher (announced
// politely), a sound when the page asked for one, and, elsewhere, the
// "(n) " in the title (markTitle). Once the panel opens it all stops.
func (w *widgetUI) attention(e *widget.Entry) {
	if w.open || w.inline {
		return
	}
	line := e.Body.Summary()
	if i := widget.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if w.preview.IsUndefined() {
		// One live region for the widget's lifetime, with no look of its
		// own: a region that exists before its text changes is what
		// screen readers announce. The bubble in it looks like the
		// teaser (frame.css), which it replaces.
		w.preview = el("div", "", w.root)
		attr(w.preview, "aria-live", "polite")
		w.listen(w.preview, "click", func(ev js.Value) {
			if !ev.Get("target").Call("closest", ".tx").Truthy() {
				w.setOpen(true)
			}
			clear(w.preview)
		})
	}
	if old := w.root.Call("querySelector", ".teaser"); old.Truthy() {
		old.Call("remove")
	}
	side := "right"
	if w.client.Look().Position == "left" {
		side = "left"
	}
	b := el("div", "teaser preview "+side, js.Null())
	t := el("button", "tt", b)
	attr(t, "type", "button")
	setText(el("span", "sr", t), w.texts.Format(widget.TextPreview, "bot", w.botName())+": ")
	text(t, line)
	x := el("button", "tx", b)
	attr(x, "type", "button")
	attr(x, "aria-label", w.texts.Get(widget.TextDismiss))
	setText(x, "×")
	clear(w.preview)
	w.preview.Call("appendChild", b)
	if v := w.opts.Get("sound"); v.Truthy() || v.Type() == js.TypeString && v.String() == "" {
		w.beep()
	}
}

// beep plays the short chime /static/chime.wav, fetched only now. A
// browser that blocks audio before a gesture stays silent.
func (w *widgetUI) beep() {
	global.Get("Audio").New(w.base+"/static/chime.wav").Call("play").Call("catch", global.Get("Boolean"))
}

// markTitle puts "(n) " before the page's title while the page is hidden
// and n bot messages are unread, and takes it off again: off the title
// as it is then, so that the page's own title changes meanwhile stay.
func (w *widgetUI) markTitle(off bool) {
	cur := document.Get("title").String()
	if w.mark != "" && widget.HasPrefix(cur, w.mark) {
		cur = cur[len(w.mark):]
	}
	w.mark = ""
	if n := w.client.Unread(); n > 0 && !visible() && !off {
		w.mark = "(" + strconv.Itoa(n) + ") "
	}
	document.Set("title", w.mark+cur)
}

// watchPage follows the visitor through a single-page site: half a
// second after history.pushState or replaceState, popstate or
// hashchange, the bot learns the URL and title (Client.SetPage sends
// them when either changed, so a burst of moves sends what settled).
func (w *widgetUI) watchPage() {
	changed := func() {
		after(500, func() {
			if !w.destroyed {
				w.apply(w.client.SetPage(pageInfo()))
			}
		})
	}
	h := global.Get("history")
	for _, m := range [...]string{"pushState", "replaceState"} {
		orig := h.Get(m)
		// Never released: a page may keep a reference to it after
		// destroy, and then it only passes the call on.
		h.Set(m, js.FuncOf(func(this js.Value, a []js.Value) any {
			args := make([]any, len(a))
			for i, v := range a {
				args[i] = v
			}
			r := orig.Call("apply", this, args)
			if !w.destroyed {
				changed()
			}
			return r
		}))
	}
	w.listen(global, "popstate", func(js.Value) { changed() })
	w.listen(global, "hashchange", func(js.Value) { changed() })
}
