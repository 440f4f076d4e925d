// Package web holds what the server sends to browsers: the templ pages
// (the demo page now, the no-JavaScript chat pages later), the loader,
// the stylesheets and the demo assets, all embedded in the binary.
// static.go serves the files; web/build produces the widget's share of
// them under static/dist.
package web

//go:generate go tool templ generate

import (
	"net/http"

	"github.com/a-h/templ"
)

// DemoPage serves the demo page for bot at /.
func DemoPage(bot string) http.Handler {
	return templ.Handler(demoPage(bot))
}
