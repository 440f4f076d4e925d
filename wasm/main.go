//go:build js && wasm

// Command wasm is the Porthole widget running in the visitor's browser.
//
// The loader (web/loader/widget.js) draws the launcher in a shadow root,
// then fetches and starts this program on intent. It takes over through
// the boot object the loader leaves in globalThis.__porthole_boot and
// hands back its API implementation with boot.ready(impl).
//
// This layer is thin on purpose: every decision (connection, outbox,
// replay, unread count, texts) lives in widget.Client, tested natively;
// here are only the DOM, the browser's WebSocket, localStorage and one
// timer, wired as the Client's doc comment describes.
package main

import (
	"strconv"
	"syscall/js"

	"github.com/porthole-chat/porthole/widget"
)

func main() {
	boot := global.Get("__porthole_boot")
	if !boot.Truthy() {
		return
	}
	w := newUI(boot)
	// The language's built-in texts come from the server (fetchTexts).
	// Meanwhile the socket connects, and the loader's frame keeps
	// working: the widget takes it over once they are here.
	u := w.client.SetLook(w.pageLook())
	w.start()
	if u.Texts != "" {
		w.fetchTexts(u.Texts)
	} else {
		w.takeOver()
	}
	select {}
}

// takeOver takes the launcher and the panel over from the loader and
// shows what the client holds.
func (w *widgetUI) takeOver() {
	w.build()
	w.renderLook() // first: every later render (times, days, texts) uses it
	w.boot.Call("ready", w.api())
	w.apply(w.client.Sync()) // adopts what the visitor sent through the frame meanwhile
	if w.open {
		w.viewport()
	}
	u := w.client.SetOpen(w.open, visible())
	u.Change = ^widget.Change(0)
	u.New = append(w.held.New, u.New...)
	if u.Notice == nil {
		u.Notice = w.held.Notice
	}
	w.held = widget.Update{}
	w.apply(u)
}

// textsVersion is the hash in the names of the built-in texts' assets,
// /static/dist/texts.<lang>.<version>.json; web/build sets it with
// -ldflags -X. Without it every fetch fails, and the widget shows the
// keys of its texts.
var textsVersion string

// fetchTexts fetches the built-in texts of lang for the client with
// XMLHttpRequest: one listener, where fetch's promises need two (and
// more wasm). The first answer, failure or 5 s timeout lets the widget
// take over; until then the loader's frame works on its own.
func (w *widgetUI) fetchTexts(lang string) {
	x := global.Get("XMLHttpRequest").New()
	w.listen(x, "loadend", func(js.Value) {
		var data []byte
		if x.Get("status").Int() == 200 {
			data = []byte(x.Get("responseText").String())
		}
		u := w.client.TextsLoaded(lang, data)
		if !w.built {
			w.takeOver()
		}
		w.apply(u)
	})
	x.Call("open", "GET", w.base+"/static/dist/texts."+lang+"."+textsVersion+".json")
	x.Set("timeout", 5000)
	x.Call("send")
}

// widgetUI is one widget on the page.
type widgetUI struct {
	boot   js.Value
	root   js.Value // the shadow root
	host   js.Value // its host element in the page
	bot    string
	wsURL  string
	base   string
	opts   js.Value
	client *widget.Client

	sock     *socket
	sockGen  int
	stopWake func()
	// stopDay cancels the timer that relabels the day dividers at the
	// next local midnight (today becomes yesterday).
	stopDay func()
	funcs   []js.Func

	launcher, badge                      js.Value
	panel, header, title, subtitle, icon js.Value
	closeBtn, saveBtn                    js.Value
	timeFmt, dayFmt                      js.Value // Intl time and date formats of the texts' language
	banner, log, live                    js.Value
	textarea, send                       js.Value
	greeting, divider, quick, typing     js.Value
	nodes                                map[string]*msgNode
	preview                              js.Value // attention
	mark                                 string   // markTitle's "(n) "

	built     bool          // the frame is taken over
	held      widget.Update // New and Notice before the take-over
	open      bool
	atEnd     bool // the log is scrolled to its newest message
	pinned    int  // the log's scrollTop when we last scrolled it to the end
	inline    bool
	destroyed bool
	texts     widget.Texts
}

// msgNode is the DOM of one transcript entry and the signature of what
// it shows; an entry is re-rendered only when its signature changes, so
// focus and scroll positions inside other messages survive updates.
type msgNode struct {
	el  js.Value
	sig string
	// day is the message's local date in the visitor's language ("" for
	// one not stored yet), and dayEl the divider above it while it is
	// its day's first message.
	day   string
	dayEl js.Value
}

func newUI(boot js.Value) *widgetUI {
	w := &widgetUI{
		boot:  boot,
		root:  boot.Get("root"),
		host:  boot.Get("host"),
		bot:   boot.Get("bot").String(),
		base:  boot.Get("base").String(),
		opts:  boot.Get("options"),
		nodes: map[string]*msgNode{},
	}
	w.wsURL = "ws" + w.base[len("http"):] + "/v1/ws?bot=" + w.bot // http→ws, https→wss
	nav := global.Get("navigator")
	langs := []string{document.Get("documentElement").Get("lang").String()}
	if l := nav.Get("languages"); l.Truthy() {
		for i := 0; i < l.Length(); i++ {
			langs = append(langs, l.Index(i).String())
		}
	}
	frameLang := ""
	if x := boot.Get("look").Get("x"); x.Type() == js.TypeObject {
		frameLang = jsString(x, "l")
	}
	w.client = widget.NewClient(widget.ClientOptions{
		Bot:       w.bot,
		Storage:   localStorage(),
		Locale:    nav.Get("language").String(),
		TZ:        timeZone(),
		Languages: langs,
		FrameLang: frameLang,
		Random:    cryptoRandom,
		Now:       now,
	})
	return w
}

// start wires the page events and connects.
func (w *widgetUI) start() {
	w.listen(global, "online", func(js.Value) { w.network() })
	w.listen(global, "offline", func(js.Value) { w.network() })
	w.listen(document, "visibilitychange", func(js.Value) {
		w.apply(w.client.SetOpen(w.open, visible()))
		w.markTitle(false)
	})
	w.listen(global, "storage", func(ev js.Value) {
		if k := ev.Get("key"); k.Type() == js.TypeString && w.client.WatchesKey(k.String()) {
			w.apply(w.client.Sync())
		}
	})
	if vv := global.Get("visualViewport"); vv.Truthy() {
		w.listen(vv, "resize", func(js.Value) { w.viewport() })
		w.listen(vv, "scroll", func(js.Value) { w.viewport() })
	}
	// The loader may have opened the panel: the conversation starts then.
	panel := w.root.Call("querySelector", ".panel")
	w.open = panel.Truthy() && !panel.Get("hidden").Bool()
	w.client.SetOpen(w.open, visible())
	w.client.SetNetwork(global.Get("navigator").Get("onLine").Bool())
	w.apply(w.client.Start())
	w.watchPage()
}

func (w *widgetUI) network() {
	w.apply(w.client.SetNetwork(global.Get("navigator").Get("onLine").Bool()))
}

// apply carries out what the client asks for.
func (w *widgetUI) apply(u widget.Update) {
	if w.destroyed {
		return
	}
	for _, f := range u.Send {
		w.sock.send(widget.Encode(f))
	}
	if u.Hangup {
		w.sock.close()
	}
	if u.Dial {
		w.connect()
	}
	if w.stopWake != nil {
		w.stopWake()
		w.stopWake = nil
	}
	if u.Wake > 0 {
		w.stopWake = after(int(u.Wake.Milliseconds())+1, func() {
			w.stopWake = nil
			w.apply(w.client.Tick())
		})
	}
	if u.Texts != "" {
		w.fetchTexts(u.Texts)
	}
	if !w.built {
		// The loader still owns the DOM: the take-over renders everything
		// and announces what came meanwhile.
		w.held.New = append(w.held.New, u.New...)
		if u.Notice != nil {
			w.held.Notice = u.Notice
		}
		return
	}
	if u.Change != 0 {
		w.render(u.Change)
	}
	var last *widget.Entry
	for _, e := range u.New {
		if e.From == "user" {
			continue
		}
		last = e
		text := e.Body.Summary()
		setText(w.live, w.botName()+": "+text)
		w.emit("message", map[string]any{"text": text, "from": e.From, "seq": int(e.Seq), "kind": e.Body.Kind})
	}
	if last != nil {
		w.attention(last)
	}
	if n := u.Notice; n != nil {
		w.emit("error", map[string]any{"code": n.Code, "message": n.Message, "id": n.ID})
		if msg := w.texts.Error(n.Code); msg != "" && n.ID == "" {
			setText(w.live, msg)
		}
	}
}

// connect opens a new socket; events of older sockets are ignored.
func (w *widgetUI) connect() {
	w.sockGen++
	gen := w.sockGen
	current := func() bool { return gen == w.sockGen && !w.destroyed }
	defer func() {
		if recover() != nil { // new WebSocket threw (a CSP connect-src, say)
			after(0, func() {
				if current() {
					w.apply(w.client.Closed(widget.CloseAbnormal))
				}
			})
		}
	}()
	w.sock = dial(w.wsURL, widget.Protocol,
		func() {
			if current() {
				w.apply(w.client.Opened(pageInfo()))
			}
		},
		func(data []byte) {
			if current() {
				w.apply(w.client.Receive(data))
			}
		},
		func(code int) {
			if current() {
				w.apply(w.client.Closed(code))
			}
		})
}

// emit fires a Porthole.on(name) event through the loader.
func (w *widgetUI) emit(name string, detail any) {
	w.boot.Call("emit", name, js.ValueOf(detail))
}

// setOpen opens or closes the panel, moving focus in and back out.
func (w *widgetUI) setOpen(open bool) {
	if w.open == open || w.destroyed {
		return
	}
	w.open = open
	w.panel.Set("hidden", !open)
	attr(w.launcher, "aria-expanded", strconv.FormatBool(open))
	w.launcher.Get("classList").Call("toggle", "open", open)
	w.labelLauncher()
	w.apply(w.client.SetOpen(open, visible()))
	if open {
		if w.preview.Truthy() {
			clear(w.preview)
		}
		w.viewport()
		w.scrollToEnd()
		w.textarea.Call("focus", map[string]any{"preventScroll": true})
		w.emit("open", nil)
		return
	}
	if w.root.Get("activeElement").Truthy() {
		w.launcher.Call("focus")
	}
	w.emit("close", nil)
}

// viewport keeps a phone's full-screen panel inside the visual viewport,
// so the on-screen keyboard never covers the composer.
func (w *widgetUI) viewport() {
	vv := global.Get("visualViewport")
	if !vv.Truthy() {
		return
	}
	style := w.host.Get("style")
	style.Call("setProperty", "--ph-vh", strconv.Itoa(vv.Get("height").Int())+"px")
	style.Call("setProperty", "--ph-vt", strconv.Itoa(vv.Get("offsetTop").Int())+"px")
}

// pageLook reads the page's options (data-* attributes and init()) over
// the look the loader drew the frame with, so that nothing changes
// between the frame and the first welcome.
func (w *widgetUI) pageLook() widget.Look {
	frame := w.boot.Get("look")
	s := func(k, short string) string {
		if v := w.opts.Get(k); v.Type() == js.TypeString {
			return v.String()
		}
		if v := frame.Get(short); short != "" && v.Type() == js.TypeString {
			return v.String()
		}
		return ""
	}
	l := widget.Look{Title: s("title", "t"), Subtitle: s("subtitle", "s"), Icon: s("icon", "i"), Position: s("position", "p"),
		BrandColor: s("brandColor", ""), Greeting: s("greeting", "g"), Locale: s("language", ""),
		ColorScheme: s("colorScheme", ""), Font: s("font", "")}
	if t := w.opts.Get("texts"); t.Type() == js.TypeObject {
		keys := global.Get("Object").Call("keys", t)
		l.Texts = map[string]string{}
		for i := 0; i < keys.Length(); i++ {
			k := keys.Index(i).String()
			if v := t.Get(k); v.Type() == js.TypeString {
				l.Texts[k] = v.String()
			}
		}
	}
	return l
}

func (w *widgetUI) botName() string {
	if t := w.client.Look().Title; t != "" {
		return t
	}
	return w.texts.Get(widget.TextChat)
}

// Browser facts.

func visible() bool { return document.Get("visibilityState").String() != "hidden" }

func pageInfo() widget.Page {
	return widget.Page{
		URL:      global.Get("location").Get("href").String(),
		Referrer: document.Get("referrer").String(),
		Title:    document.Get("title").String(),
	}
}

func timeZone() (tz string) {
	defer func() { recover() }()
	return global.Get("Intl").Call("DateTimeFormat").Call("resolvedOptions").Get("timeZone").String()
}

// now is the browser's clock, Date.now().
func now() widget.Instant { return widget.Instant(global.Get("Date").Call("now").Float()) }

// cryptoRandom draws 64 bits from crypto.getRandomValues.
func cryptoRandom() uint64 {
	a := global.Get("Uint32Array").New(2)
	global.Get("crypto").Call("getRandomValues", a)
	return uint64(a.Index(0).Int())<<32 | uint64(a.Index(1).Int())
}

// storage is localStorage; in private modes or sandboxed frames it
// throws, and the widget keeps its state in memory instead.
type storage struct{ ls js.Value }

func localStorage() widget.Storage {
	defer func() { recover() }()
	ls := global.Get("localStorage")
	if !ls.Truthy() {
		return nil
	}
	return storage{ls}
}

func (s storage) Get(key string) (v string, ok bool) {
	defer func() {
		if recover() != nil {
			v, ok = "", false
		}
	}()
	r := s.ls.Call("getItem", key)
	if r.IsNull() {
		return "", false
	}
	return r.String(), true
}

func (s storage) Set(key, value string) {
	defer func() { recover() }()
	s.ls.Call("setItem", key, value)
}

func (s storage) Remove(key string) {
	defer func() { recover() }()
	s.ls.Call("removeItem", key)
}
