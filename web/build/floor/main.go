//go:build js && wasm

// Command floor is the smallest Go browser program: a main that touches
// the DOM through syscall/js and nothing else. It is never shipped; web/build
// compiles it with the widget's toolchain and flags, and the widget's
// size budget is a multiple of its brotli size, so the budget follows
// whatever the Go runtime itself costs in that release.
package main

import "syscall/js"

func main() {
	doc := js.Global().Get("document")
	doc.Get("body").Call("appendChild", doc.Call("createTextNode", "Porthole"))
}
