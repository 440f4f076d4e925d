// Package web holds what the server sends to browsers: the templ pages
// (the demo page now, the no-JavaScript chat pages later), the loader,
// the stylesheets and the demo assets, all embedded in the binary.
package web

//go:generate go tool templ generate

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/a-h/templ"
)

//go:embed static
var static embed.FS

// Static serves the embedded files under /static/. They are not yet
// content-hashed, so browsers may cache them for five minutes only.
func Static() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

// DemoPage serves the demo page for bot at /.
func DemoPage(bot string) http.Handler {
	return templ.Handler(demoPage(bot))
}
