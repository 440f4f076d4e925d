//go:build js && wasm

package main

import "syscall/js"

// socket is the browser's own WebSocket, driven through syscall/js: the
// Go WebSocket client would pull net/http and crypto/tls into the wasm
// (~600 KB brotli) for what the browser already does.
type socket struct {
	ws    js.Value
	funcs []js.Func
}

// dial opens url with the porthole.v1 subprotocol. The callbacks run on
// the browser's event loop and must not block.
func dial(url, protocol string, onOpen func(), onFrame func([]byte), onClose func(code int)) *socket {
	s := &socket{ws: global.Get("WebSocket").New(url, protocol)}
	handler := func(event string, fn func(ev js.Value)) {
		f := js.FuncOf(func(_ js.Value, args []js.Value) any {
			fn(args[0])
			return nil
		})
		s.funcs = append(s.funcs, f)
		s.ws.Set(event, f)
	}
	handler("onopen", func(js.Value) { onOpen() })
	handler("onmessage", func(ev js.Value) {
		if data := ev.Get("data"); data.Type() == js.TypeString {
			onFrame([]byte(data.String()))
		}
	})
	handler("onclose", func(ev js.Value) {
		s.release()
		onClose(ev.Get("code").Int())
	})
	return s
}

// send writes one text frame; it reports false when the socket is not open.
func (s *socket) send(b []byte) bool {
	if s == nil || s.ws.Get("readyState").Int() != 1 {
		return false
	}
	s.ws.Call("send", string(b))
	return true
}

// close closes the socket; onClose still runs.
func (s *socket) close() {
	if s != nil {
		s.ws.Call("close", 1000)
	}
}

func (s *socket) release() {
	for _, f := range s.funcs {
		f.Release()
	}
	s.funcs = nil
}
