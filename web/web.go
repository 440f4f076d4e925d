// Package web holds what the server sends to browsers: the templ pages
// (the demo page and the no-JavaScript chat pages), the loader, the
// stylesheets and the demo assets, all embedded in the binary.
// static.go serves the files; web/build produces the widget's share of
// them under static/dist.
package web

//go:generate go tool templ generate

import (
	"net/http"

	"github.com/a-h/templ"
)

// DemoPage serves the demo page for bot at /, under DemoPageCSP: the
// page has no inline script or style, so it can show a customer that the
// widget runs under a strict policy, and a bot message cannot turn into
// script on our own origin.
func DemoPage(bot string) http.Handler {
	page := templ.Handler(demoPage(bot))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", DemoPageCSP)
		w.Header().Set("Referrer-Policy", "same-origin")
		page.ServeHTTP(w, r)
	})
}

// DemoPageCSP is the demo page's Content-Security-Policy: scripts, styles
// and sockets from this server only (WebAssembly compiled, nothing
// evaluated), images and media from anywhere as in the chat pages (bot
// messages link them), no plugins, no <base>, forms to us only, and no
// framing, since the page stands for a whole site.
const DemoPageCSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src * data:; media-src *; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
