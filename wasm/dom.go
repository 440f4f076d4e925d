//go:build js && wasm

package main

import "syscall/js"

// The DOM helpers below are the only way the widget builds elements:
// content goes in as text nodes and attributes, never as markup, so a bot
// reply can never inject HTML or script into the page.

var (
	global   = js.Global()
	document = global.Get("document")
)

const svgNS = "http://www.w3.org/2000/svg"

// el creates an element with a class and appends it to parent (if valid).
func el(tag, class string, parent js.Value) js.Value {
	e := document.Call("createElement", tag)
	if class != "" {
		e.Set("className", class)
	}
	if parent.Truthy() {
		parent.Call("appendChild", e)
	}
	return e
}

// text appends a text node.
func text(parent js.Value, s string) js.Value {
	n := document.Call("createTextNode", s)
	parent.Call("appendChild", n)
	return n
}

// attr sets an attribute. Not inlined: it is called in many places,
// and each inlined copy of a js.Value call costs widget.wasm ~150 bytes.
//
//go:noinline
func attr(e js.Value, name, value string) { e.Call("setAttribute", name, value) }

// icon builds an inline SVG icon from one path, hidden from screen
// readers (the control around it carries the label).
func icon(class, path string, parent js.Value) js.Value {
	s := document.Call("createElementNS", svgNS, "svg")
	s.Call("setAttribute", "class", class)
	s.Call("setAttribute", "viewBox", "0 0 24 24")
	s.Call("setAttribute", "aria-hidden", "true")
	s.Call("setAttribute", "focusable", "false")
	p := document.Call("createElementNS", svgNS, "path")
	p.Call("setAttribute", "d", path)
	s.Call("appendChild", p)
	if parent.Truthy() {
		parent.Call("appendChild", s)
	}
	return s
}

// Icon paths (24×24).
const (
	iconPrev = "M15.4 7.4 14 6l-6 6 6 6 1.4-1.4L10.8 12z"
	iconNext = "M8.6 16.6 10 18l6-6-6-6-1.4 1.4 4.6 4.6z"
	iconFile = "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zm-1 7V3.5L18.5 9z"
)

// clear removes every child of e.
func clear(e js.Value) { setText(e, "") }

// listen adds an event listener for the widget's lifetime. The funcs are
// kept so destroy can release them.
func (w *widgetUI) listen(target js.Value, event string, fn func(ev js.Value)) {
	f := js.FuncOf(func(this js.Value, args []js.Value) any {
		var ev js.Value
		if len(args) > 0 {
			ev = args[0]
		}
		fn(ev)
		return nil
	})
	w.funcs = append(w.funcs, f)
	target.Call("addEventListener", event, f)
}

// fn wraps a Go func as a JavaScript function for the widget's lifetime.
func (w *widgetUI) fn(f func()) js.Func {
	jf := js.FuncOf(func(js.Value, []js.Value) any { f(); return nil })
	w.funcs = append(w.funcs, jf)
	return jf
}

// after runs fn once after ms milliseconds and returns a cancel function.
func after(ms int, fn func()) (cancel func()) {
	var f js.Func
	f = js.FuncOf(func(js.Value, []js.Value) any {
		f.Release()
		fn()
		return nil
	})
	id := global.Call("setTimeout", f, ms)
	return func() {
		global.Call("clearTimeout", id)
		f.Release()
	}
}

// setText replaces an element's content with text. Not inlined, like
// attr: one call here is smaller in widget.wasm than boxing the string
// for js.Value.Set at every place.
//
//go:noinline
func setText(e js.Value, s string) { e.Set("textContent", s) }
