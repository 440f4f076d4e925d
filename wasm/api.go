//go:build js && wasm

package main

import (
	"syscall/js"

	"github.com/porthole-chat/porthole/widget"
)

// api returns the implementation behind window.Porthole: one function
// dispatch(name, args) that the loader wraps into methods (one Go func
// and a switch cost far less wasm than a JS object of closures). The
// loader keeps on, off and the event plumbing; everything else lands
// here, including the calls queued before this program ran.
func (w *widgetUI) api() js.Value {
	f := js.FuncOf(func(_ js.Value, a []js.Value) any {
		if len(a) < 2 {
			return nil
		}
		args := a[1]
		arg := js.Undefined()
		if args.Length() > 0 {
			arg = args.Index(0)
		}
		switch a[0].String() {
		case "open":
			w.setOpen(true)
		case "close":
			w.setOpen(false)
		case "toggle":
			w.setOpen(!w.open)
		case "isOpen":
			return w.open
		case "init":
			w.apply(w.client.SetLook(w.pageLook()))
		case "sendMessage":
			if arg.Type() == js.TypeString && arg.String() != "" {
				_, u := w.client.SendText(arg.String())
				w.apply(u)
			}
		case "setSessionData", "setContext":
			if arg.Type() != js.TypeObject || arg.IsNull() {
				w.emit("error", map[string]any{"code": widget.CodeBadRequest, "message": a[0].String() + " takes an object"})
				return nil
			}
			data := widget.RawJSON(global.Get("JSON").Call("stringify", arg).String())
			if a[0].String() == "setContext" {
				w.apply(w.client.SetContext(data))
			} else {
				w.apply(w.client.SetSession(data))
			}
		case "setLanguage":
			if arg.Type() == js.TypeString {
				w.apply(w.client.SetLanguage(arg.String()))
			}
		case "render":
			w.renderInline(arg)
		case "destroy":
			w.destroy()
		case "login", "logout":
			// login(userId, signature, {name, email, phone}); logout().
			l := widget.Login{}
			if a[0].String() == "login" {
				l.User, l.Signature = jsString(args, 0), jsString(args, 1)
				if args.Length() > 2 && args.Index(2).Type() == js.TypeObject {
					o := args.Index(2)
					l.Name, l.Email, l.Phone = jsString(o, "name"), jsString(o, "email"), jsString(o, "phone")
				}
			}
			w.apply(w.client.Login(l))
		}
		return nil
	})
	return f.Value
}

// renderInline moves the chat into a page element (Porthole.render(el))
// and hides the launcher. The element lives outside the shadow root, so
// it gets a shadow root of its own that loads the same stylesheet.
func (w *widgetUI) renderInline(target js.Value) {
	if target.Type() == js.TypeString {
		target = document.Call("querySelector", target)
	}
	if !target.Truthy() || w.inline {
		return
	}
	root := target.Get("shadowRoot")
	if !root.Truthy() {
		root = target.Call("attachShadow", map[string]any{"mode": "open"})
	}
	css := w.root.Call("querySelectorAll", "link[rel=stylesheet]")
	for i := 0; i < css.Length(); i++ {
		root.Call("appendChild", css.Index(i).Call("cloneNode", true))
	}
	w.inline = true
	w.panel.Get("classList").Call("add", "inline")
	root.Call("appendChild", w.panel)
	w.launcher.Set("hidden", true)
	w.open = false
	w.setOpen(true)
}

// destroy removes the widget from the page and stops everything.
func (w *widgetUI) destroy() {
	if w.destroyed {
		return
	}
	w.apply(w.client.Stop())
	w.destroyed = true
	w.markTitle(true)
	if w.stopWake != nil {
		w.stopWake()
	}
	if w.stopDay != nil {
		w.stopDay()
	}
	w.panel.Call("remove")
	w.host.Call("remove")
	for _, f := range w.funcs {
		f.Release()
	}
	w.funcs = nil // the API dispatcher stays: calls after destroy do nothing
}

// jsString reads args[key] (an index or a property name) as a string, or
// "" when it is not one.
func jsString(v js.Value, key any) string {
	var x js.Value
	switch k := key.(type) {
	case int:
		if k >= v.Length() {
			return ""
		}
		x = v.Index(k)
	case string:
		x = v.Get(k)
	}
	if x.Type() != js.TypeString {
		return ""
	}
	return x.String()
}
