package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/widget"
)

// static holds site.css, the demo media and, when `make wasm` ran before
// the binary was built, the widget assets under static/dist. On a fresh
// clone dist does not exist; the pattern still matches the folder, so
// `go build ./...` works and the loader answers 503 until it is built.
//
//go:embed static
var static embed.FS

// Logical names of the widget assets: the keys of BuildManifest.Assets.
// Only the loader keeps its name when served (it is the URL customers
// paste); the others are served under content-hashed names.
const (
	AssetWASM   = "widget.wasm"
	AssetExec   = "wasm_exec.js"
	AssetCSS    = "widget.css"
	AssetLoader = "widget.js"
	// AssetFrame is the eager stylesheet's fixed part; it reaches pages as
	// GET /widget.css?bot=ID, with the bot's look after it (Styles).
	AssetFrame = "frame.css"
	// AssetFallback is the no-WebAssembly fallback, loaded only where the
	// Go program cannot run.
	AssetFallback = "fallback.js"
)

// TextsAsset is the logical name of the built-in texts of lang, one of
// widget.Languages: the JSON the widget fetches for its language, served
// as texts.<lang>.<version>.json.
func TextsAsset(lang string) string { return "texts." + lang + ".json" }

// EagerBudget is the most a page view may download from Porthole before
// the visitor shows intent, brotli bytes: widget.js and the eager
// stylesheet. web/build enforces it for a sample bot (`make size`) and a
// test of the real binary for the demo bot as served; EagerGoal is where
// it is meant to get (see docs/PERFORMANCE.md).
const (
	EagerBudget = 4096
	EagerGoal   = 3072
)

// ErrNotBuilt is what Manifest reports, and what GET /widget.js answers
// with status 503, when the binary was built before the widget assets.
var ErrNotBuilt = errors.New("widget assets not built; run make wasm")

// Cache lifetimes. Hashed names change with their content, so browsers
// and CDNs may keep them forever; widget.js and the other static files
// keep their names, so a new release reaches visitors within 5 minutes.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheShort     = "public, max-age=300"
)

// BuildManifest is static/dist/manifest.json as web/build writes it:
// which file holds each widget asset, and the sizes the budget check
// (`make size`) reads back. web/build keeps its own copy of this format
// and a test there checks that both agree.
type BuildManifest struct {
	// Go is the `go version` line of the toolchain that built the assets.
	Go string `json:"go"`
	// Assets are keyed by logical name (AssetWASM, AssetExec, ...).
	Assets map[string]Asset `json:"assets"`
	// Floor measures the smallest Go browser program, built in the same
	// run with the same toolchain and flags; it is not shipped.
	Floor Sizes `json:"floor"`
	// Style measures a typical bot's eager stylesheet (frame.css and its
	// look), for the eager budget; the server makes the real ones.
	Style Sizes `json:"style"`
}

// File is the name under /static/dist/ of the asset with the given
// logical name ("widget.wasm" → "widget.3f2a1b9c0d.wasm"), or "" when
// the manifest has none.
func (m BuildManifest) File(logical string) string {
	return m.Assets[logical].File
}

// Asset is one built file.
type Asset struct {
	// File is the name in static/dist: content-hashed, except widget.js.
	File string `json:"file"`
	// Hash is the first 10 hex digits of the SHA-256 of the raw content;
	// it is also the file's ETag.
	Hash string `json:"hash"`
	Sizes
}

// Sizes are byte counts of a file as stored and as precompressed.
type Sizes struct {
	Raw    int64 `json:"raw"`
	Gzip   int64 `json:"gzip"`
	Brotli int64 `json:"brotli"`
}

// Assets serves one tree of static files: the widget assets listed in
// its dist/manifest.json and the plain files beside them. Static, Loader
// and Manifest use the tree embedded in the binary; tests build one from
// any fs.FS with NewAssets.
type Assets struct {
	fsys     fs.FS
	manifest BuildManifest
	err      error                  // nil when the widget assets are usable
	hashed   map[string]*servedFile // by name under /static/dist/
	loader   *servedFile
}

// servedFile is a widget asset and the precompressed copies beside it.
type servedFile struct {
	path   string // in the tree, "dist/widget.3f2a1b9c0d.wasm"
	ctype  string
	hash   string
	cache  string
	br, gz bool
}

// NewAssets reads fsys, the contents of a static folder: plain files,
// and the widget assets in dist/ as web/build writes them. A missing or
// unusable dist/ is not an error here; Manifest reports it, the loader
// answers 503 and /static/dist/ answers 404, so a server built before
// the widget still runs.
func NewAssets(fsys fs.FS) *Assets {
	a := &Assets{fsys: fsys}
	if err := a.load(); err != nil {
		a.err = err
		a.hashed, a.loader, a.manifest = nil, nil, BuildManifest{}
	}
	return a
}

func (a *Assets) load() error {
	data, err := fs.ReadFile(a.fsys, "dist/manifest.json")
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotBuilt
	}
	if err != nil {
		return fmt.Errorf("widget assets: %w", err)
	}
	if err := json.Unmarshal(data, &a.manifest); err != nil {
		return fmt.Errorf("widget assets: dist/manifest.json: %w; run make wasm", err)
	}
	a.hashed = make(map[string]*servedFile)
	required := []string{AssetWASM, AssetExec, AssetCSS, AssetLoader, AssetFrame, AssetFallback}
	for _, lang := range widget.Languages {
		required = append(required, TextsAsset(lang))
	}
	for _, logical := range required {
		asset, ok := a.manifest.Assets[logical]
		if !ok || asset.Hash == "" || asset.File == "" || strings.Contains(asset.File, "/") || !fs.ValidPath(asset.File) {
			return fmt.Errorf("widget assets: dist/manifest.json has no usable entry for %s; run make wasm", logical)
		}
		f := &servedFile{path: "dist/" + asset.File, ctype: contentType(asset.File), hash: asset.Hash}
		if !isFile(a.fsys, f.path) {
			return fmt.Errorf("widget assets: %s is missing; run make wasm", f.path)
		}
		f.br, f.gz = isFile(a.fsys, f.path+".br"), isFile(a.fsys, f.path+".gz")
		if logical == AssetLoader {
			f.cache = cacheShort
			a.loader = f
		} else {
			f.cache = cacheImmutable
			a.hashed[asset.File] = f
		}
	}
	return nil
}

// Frame returns the fixed part of the eager stylesheet (AssetFrame), or
// an error when the widget assets cannot be served.
func (a *Assets) Frame() ([]byte, error) {
	if a.err != nil {
		return nil, a.err
	}
	return fs.ReadFile(a.fsys, "dist/"+a.manifest.File(AssetFrame))
}

// Manifest returns the manifest of the widget assets, or an error (one
// matching ErrNotBuilt when they were never built) when they cannot be
// served.
func (a *Assets) Manifest() (BuildManifest, error) {
	if a.err != nil {
		return BuildManifest{}, a.err
	}
	m := a.manifest
	m.Assets = maps.Clone(m.Assets)
	return m, nil
}

// Static serves GET /static/: the hashed widget assets under
// /static/dist/ (cached for a year, precompressed, readable from any
// origin) and the other files, which may be cached for 5 minutes. It
// never lists a directory; any name it does not know is a 404.
func (a *Assets) Static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/static/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name, ok := strings.CutPrefix(rest, "dist/"); ok || rest == "dist" {
			if f := a.hashed[name]; f != nil {
				a.serve(w, r, f)
				return
			}
			http.NotFound(w, r)
			return
		}
		if !fs.ValidPath(rest) || rest == "." {
			http.NotFound(w, r)
			return
		}
		if info, err := fs.Stat(a.fsys, rest); err != nil || !info.Mode().IsRegular() || path.Base(rest) == "index.html" {
			// index.html would be redirected to its folder by ServeFileFS.
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", cacheShort)
		http.ServeFileFS(w, r, a.fsys, rest)
	})
}

// Loader serves the loader script, meant for GET /widget.js: the one URL
// customers embed, so it keeps its name and is cached for 5 minutes only,
// revalidated with its ETag. Before `make wasm` it answers 503.
func (a *Assets) Loader() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		if a.loader == nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, ErrNotBuilt.Error(), http.StatusServiceUnavailable)
			return
		}
		a.serve(w, r, a.loader)
	})
}

// serve writes f in the best encoding the request accepts. The CORS and
// CORP headers let a host page on another origin fetch it (the loader
// uses fetch for the wasm, which is a CORS request).
func (a *Assets) serve(w http.ResponseWriter, r *http.Request, f *servedFile) {
	h := w.Header()
	h.Set("Cache-Control", f.cache)
	h.Set("Vary", "Accept-Encoding")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Content-Type", f.ctype)
	name, tag := f.path, f.hash
	switch negotiate(r.Header.Values("Accept-Encoding"), f.br, f.gz) {
	case "br":
		name, tag = name+".br", tag+"-br"
		h.Set("Content-Encoding", "br")
	case "gzip":
		name, tag = name+".gz", tag+"-gz"
		h.Set("Content-Encoding", "gzip")
	}
	// Each encoding is its own representation, so its own strong ETag.
	h.Set("ETag", `"`+tag+`"`)
	file, err := a.fsys.Open(name)
	if err != nil {
		failServe(w, err)
		return
	}
	defer file.Close()
	content, ok := file.(io.ReadSeeker)
	if !ok {
		data, err := io.ReadAll(file)
		if err != nil {
			failServe(w, err)
			return
		}
		content = bytes.NewReader(data)
	}
	// ServeContent leaves Content-Length out when Content-Encoding is set
	// (for handlers that compress on the fly); these copies are whole
	// files, so it is known. ServeContent still corrects it for a Range
	// and drops it from a 304.
	size, err := content.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = content.Seek(0, io.SeekStart)
	}
	if err != nil {
		failServe(w, err)
		return
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	// ServeContent answers If-None-Match with 304, HEAD without a body.
	http.ServeContent(w, r, "", time.Time{}, content)
}

func failServe(w http.ResponseWriter, err error) {
	for _, k := range []string{"Cache-Control", "Content-Encoding", "ETag"} {
		w.Header().Del(k)
	}
	http.Error(w, "reading static file: "+err.Error(), http.StatusInternalServerError)
}

// negotiate picks the encoding to send: brotli when the client accepts
// it and the file has a .br copy, else gzip likewise, else "" for the
// file as is. A higher q-value for gzip wins over brotli; q=0 refuses.
func negotiate(acceptEncoding []string, haveBr, haveGz bool) string {
	qBr, qGz, qAny := -1.0, -1.0, 0.0
	for _, field := range acceptEncoding {
		for part := range strings.SplitSeq(field, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for param := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(param, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					var err error
					if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || q < 0 || q > 1 {
						q = 0 // an unreadable weight does not make a coding acceptable
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "br":
				qBr = q
			case "gzip", "x-gzip":
				qGz = max(qGz, q)
			case "*":
				qAny = q
			}
		}
	}
	if qBr < 0 {
		qBr = qAny
	}
	if qGz < 0 {
		qGz = qAny
	}
	if !haveGz {
		qGz = 0
	}
	switch {
	case haveBr && qBr > 0 && qBr >= qGz:
		return "br"
	case qGz > 0:
		return "gzip"
	}
	return ""
}

// contentType names the types browsers insist on: instantiateStreaming
// refuses wasm served as anything but application/wasm.
func contentType(name string) string {
	switch ext := path.Ext(name); ext {
	case ".wasm":
		return "application/wasm"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	default:
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
		return "application/octet-stream"
	}
}

func isFile(fsys fs.FS, name string) bool {
	info, err := fs.Stat(fsys, name)
	return err == nil && info.Mode().IsRegular()
}

// getOrHead refuses other methods, for a handler mounted without one.
func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// embedded is the Assets of the static folder embedded in the binary,
// read once on first use.
var embedded = sync.OnceValue(func() *Assets {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return NewAssets(sub)
})

// Static serves the embedded files under /static/; see Assets.Static.
func Static() http.Handler { return embedded().Static() }

// Loader serves the embedded loader, to be mounted at GET /widget.js;
// see Assets.Loader.
func Loader() http.Handler { return embedded().Loader() }

// Manifest describes the embedded widget assets: their hashed names and
// sizes. The error matches ErrNotBuilt when the binary was built before
// `make wasm`.
func Manifest() (BuildManifest, error) { return embedded().Manifest() }

// Frame returns the embedded eager stylesheet's fixed part; see
// Assets.Frame.
func Frame() ([]byte, error) { return embedded().Frame() }
