package web

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/porthole-chat/porthole/widget"
)

const (
	fakeWASM     = "widget.0123456789.wasm"
	fakeExec     = "wasm_exec.abcdefabcd.js"
	fakeCSS      = "widget.5555555555.css"
	fakeFrame    = "frame.6666666666.css"
	fakeFallback = "fallback.7777777777.js"
)

// fakeStatic is a static folder as web/build leaves it, with small
// bodies that say which copy was served. The CSS has no .br copy, to
// check that negotiation falls back to gzip.
func fakeStatic() fstest.MapFS {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	fsys := fstest.MapFS{
		"site.css":         file("body{}"),
		"demo/harbour.svg": file("<svg/>"),
		"dist/manifest.json": file(`{"go":"go1.26.0","assets":{` + fakeTextsManifest() +
			`"widget.wasm":{"file":"` + fakeWASM + `","hash":"0123456789","raw":4,"gzip":3,"brotli":2},` +
			`"wasm_exec.js":{"file":"` + fakeExec + `","hash":"abcdefabcd","raw":4,"gzip":3,"brotli":2},` +
			`"widget.css":{"file":"` + fakeCSS + `","hash":"5555555555","raw":4,"gzip":3,"brotli":2},` +
			`"frame.css":{"file":"` + fakeFrame + `","hash":"6666666666","raw":4,"gzip":3,"brotli":2},` +
			`"fallback.js":{"file":"` + fakeFallback + `","hash":"7777777777","raw":4,"gzip":3,"brotli":2},` +
			`"widget.js":{"file":"widget.js","hash":"feedfacecafe","raw":4,"gzip":3,"brotli":2}},` +
			`"floor":{"raw":10,"gzip":8,"brotli":6}}`),
	}
	names := []string{fakeWASM, fakeExec, fakeCSS, fakeFrame, fakeFallback, "widget.js"}
	for _, lang := range widget.Languages {
		names = append(names, fakeTexts(lang))
	}
	for _, name := range names {
		fsys["dist/"+name] = file("raw " + name)
		fsys["dist/"+name+".gz"] = file("gz " + name)
		if name != fakeCSS {
			fsys["dist/"+name+".br"] = file("br " + name)
		}
	}
	return fsys
}

// fakeTexts is the file of the built-in texts of lang.
func fakeTexts(lang string) string { return "texts." + lang + ".8888888888.json" }

func fakeTextsManifest() string {
	var b strings.Builder
	for _, lang := range widget.Languages {
		b.WriteString(`"` + TextsAsset(lang) + `":{"file":"` + fakeTexts(lang) + `","hash":"99999999` + lang + `","raw":4,"gzip":3,"brotli":2},`)
	}
	return b.String()
}

func get(t *testing.T, h http.Handler, method, target string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	res.Request = req // for wantHeader's messages
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func wantHeader(t *testing.T, res *http.Response, key, want string) {
	t.Helper()
	if got := res.Header.Get(key); got != want {
		t.Errorf("%s: %s = %q, want %q", res.Request.URL.Path, key, got, want)
	}
}

func TestHashedAssetsAreImmutableTypedAndCrossOrigin(t *testing.T) {
	static := NewAssets(fakeStatic()).Static()
	for _, tc := range []struct{ name, ctype string }{
		{fakeWASM, "application/wasm"},
		{fakeExec, "text/javascript; charset=utf-8"},
		{fakeCSS, "text/css; charset=utf-8"},
		{fakeTexts("ar"), "application/json"},
	} {
		res, _ := get(t, static, "GET", "/static/dist/"+tc.name, "Accept-Encoding", "gzip")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", tc.name, res.StatusCode)
		}
		wantHeader(t, res, "Content-Type", tc.ctype)
		wantHeader(t, res, "Cache-Control", "public, max-age=31536000, immutable")
		wantHeader(t, res, "Access-Control-Allow-Origin", "*")
		wantHeader(t, res, "Cross-Origin-Resource-Policy", "cross-origin")
		wantHeader(t, res, "Vary", "Accept-Encoding")
	}
}

func TestPrecompressedNegotiation(t *testing.T) {
	static := NewAssets(fakeStatic()).Static()
	for _, tc := range []struct {
		name, accept, encoding, body string
	}{
		{fakeWASM, "gzip, deflate, br, zstd", "br", "br " + fakeWASM},
		{fakeWASM, "gzip", "gzip", "gz " + fakeWASM},
		{fakeWASM, "", "", "raw " + fakeWASM},
		{fakeWASM, "identity", "", "raw " + fakeWASM},
		{fakeWASM, "br;q=0, gzip", "gzip", "gz " + fakeWASM},
		{fakeWASM, "br;q=0.5, gzip;q=0.8", "gzip", "gz " + fakeWASM},
		{fakeWASM, "BR;Q=1, gzip;q=1", "br", "br " + fakeWASM},
		{fakeWASM, "*", "br", "br " + fakeWASM},
		{fakeWASM, "*;q=0", "", "raw " + fakeWASM},
		{fakeWASM, "gzip;q=0, br;q=0", "", "raw " + fakeWASM},
		{fakeWASM, "br;q=nonsense", "", "raw " + fakeWASM},
		{fakeCSS, "br, gzip", "gzip", "gz " + fakeCSS}, // no .br copy
		{fakeCSS, "br", "", "raw " + fakeCSS},
	} {
		res, body := get(t, static, "GET", "/static/dist/"+tc.name, "Accept-Encoding", tc.accept)
		if got := res.Header.Get("Content-Encoding"); got != tc.encoding || body != tc.body {
			t.Errorf("%s with Accept-Encoding %q: got encoding %q body %q, want %q %q", tc.name, tc.accept, got, body, tc.encoding, tc.body)
		}
		wantHeader(t, res, "Vary", "Accept-Encoding")
		wantHeader(t, res, "Content-Length", strconv.Itoa(len(tc.body)))
	}
}

func TestHeadSendsHeadersOnly(t *testing.T) {
	a := NewAssets(fakeStatic())
	res, body := get(t, a.Static(), "HEAD", "/static/dist/"+fakeWASM, "Accept-Encoding", "br")
	if res.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD: status %d body %q", res.StatusCode, body)
	}
	wantHeader(t, res, "Content-Length", strconv.Itoa(len("br "+fakeWASM)))
	wantHeader(t, res, "Content-Encoding", "br")
	wantHeader(t, res, "Content-Type", "application/wasm")
	res, body = get(t, a.Loader(), "HEAD", "/widget.js")
	if res.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD /widget.js: status %d body %q", res.StatusCode, body)
	}
}

func TestRangeOfACopy(t *testing.T) {
	res, body := get(t, NewAssets(fakeStatic()).Static(), "GET", "/static/dist/"+fakeWASM, "Accept-Encoding", "br", "Range", "bytes=0-1")
	if res.StatusCode != http.StatusPartialContent || body != "br" {
		t.Fatalf("status %d body %q, want 206 \"br\"", res.StatusCode, body)
	}
	wantHeader(t, res, "Content-Length", "2")
	wantHeader(t, res, "Content-Encoding", "br")
}

func TestLoaderShortCacheAndETag(t *testing.T) {
	loader := NewAssets(fakeStatic()).Loader()
	res, body := get(t, loader, "GET", "/widget.js", "Accept-Encoding", "gzip, br")
	if res.StatusCode != http.StatusOK || body != "br widget.js" {
		t.Fatalf("status %d body %q", res.StatusCode, body)
	}
	wantHeader(t, res, "Cache-Control", "public, max-age=300")
	wantHeader(t, res, "Content-Type", "text/javascript; charset=utf-8")
	wantHeader(t, res, "Access-Control-Allow-Origin", "*")
	wantHeader(t, res, "Cross-Origin-Resource-Policy", "cross-origin")
	wantHeader(t, res, "Vary", "Accept-Encoding")
	etag := res.Header.Get("ETag")
	if etag != `"feedfacecafe-br"` {
		t.Fatalf("ETag = %q", etag)
	}

	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		res, body = get(t, loader, "GET", "/widget.js", "Accept-Encoding", "br", "If-None-Match", inm)
		if res.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("If-None-Match %s: status %d body %q, want 304", inm, res.StatusCode, body)
		}
		wantHeader(t, res, "ETag", etag)
		wantHeader(t, res, "Cache-Control", "public, max-age=300")
	}
	// The gzip copy is another representation with its own tag.
	res, body = get(t, loader, "GET", "/widget.js", "Accept-Encoding", "gzip", "If-None-Match", etag)
	if res.StatusCode != http.StatusOK || body != "gz widget.js" {
		t.Errorf("gzip with the brotli ETag: status %d body %q, want 200 with the gzip copy", res.StatusCode, body)
	}
	wantHeader(t, res, "ETag", `"feedfacecafe-gz"`)
	res, _ = get(t, loader, "GET", "/widget.js", "If-None-Match", `"feedfacecafe"`)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("identity revalidation: status %d, want 304", res.StatusCode)
	}
}

func TestOtherStaticFilesKeepShortCache(t *testing.T) {
	static := NewAssets(fakeStatic()).Static()
	res, body := get(t, static, "GET", "/static/site.css")
	if res.StatusCode != http.StatusOK || body != "body{}" {
		t.Fatalf("site.css: status %d body %q", res.StatusCode, body)
	}
	wantHeader(t, res, "Cache-Control", "public, max-age=300")
	wantHeader(t, res, "Content-Type", "text/css; charset=utf-8")
	res, _ = get(t, static, "GET", "/static/demo/harbour.svg")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("demo/harbour.svg: status %d", res.StatusCode)
	}
	wantHeader(t, res, "Content-Type", "image/svg+xml")
}

func TestUnknownNamesAndFoldersAre404(t *testing.T) {
	static := NewAssets(fakeStatic()).Static()
	for _, target := range []string{
		"/static/dist/widget.ffffffffff.wasm", // an earlier build's name
		"/static/dist/" + fakeWASM + ".br",    // copies only by negotiation
		"/static/dist/widget.js",              // the loader lives at /widget.js
		"/static/dist/manifest.json",
		"/static/dist/",
		"/static/dist",
		"/static/",
		"/static/demo/",
		"/static/demo",
		"/static/nothing.css",
		"/static/../web.go",
		"/elsewhere/site.css",
	} {
		res, body := get(t, static, "GET", target)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, res.StatusCode)
		}
		if strings.Contains(body, "<a href") {
			t.Errorf("GET %s lists a folder: %q", target, body)
		}
	}
	res, _ := get(t, static, "POST", "/static/dist/"+fakeWASM)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", res.StatusCode)
	}
}

func TestNotBuilt(t *testing.T) {
	fsys := fakeStatic()
	for name := range fsys {
		if strings.HasPrefix(name, "dist/") {
			delete(fsys, name)
		}
	}
	a := NewAssets(fsys)
	res, body := get(t, a.Loader(), "GET", "/widget.js")
	if res.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(body) != "widget assets not built; run make wasm" {
		t.Fatalf("loader before make wasm: status %d body %q", res.StatusCode, body)
	}
	wantHeader(t, res, "Content-Type", "text/plain; charset=utf-8")
	wantHeader(t, res, "Cache-Control", "no-store")
	if res, _ := get(t, a.Static(), "GET", "/static/dist/"+fakeWASM); res.StatusCode != http.StatusNotFound {
		t.Errorf("dist before make wasm: status %d, want 404", res.StatusCode)
	}
	if res, _ := get(t, a.Static(), "GET", "/static/site.css"); res.StatusCode != http.StatusOK {
		t.Errorf("site.css before make wasm: status %d, want 200", res.StatusCode)
	}
	if _, err := a.Manifest(); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Manifest() error = %v, want ErrNotBuilt", err)
	}
}

func TestBrokenDistIsNotServed(t *testing.T) {
	for name, breakIt := range map[string]func(fstest.MapFS){
		"missing wasm": func(f fstest.MapFS) { delete(f, "dist/"+fakeWASM) },
		"bad json":     func(f fstest.MapFS) { f["dist/manifest.json"] = &fstest.MapFile{Data: []byte("{")} },
		"no css entry": func(f fstest.MapFS) {
			f["dist/manifest.json"] = &fstest.MapFile{Data: []byte(`{"assets":{}}`)}
		},
	} {
		fsys := fakeStatic()
		breakIt(fsys)
		a := NewAssets(fsys)
		if _, err := a.Manifest(); err == nil || errors.Is(err, ErrNotBuilt) {
			t.Errorf("%s: Manifest() error = %v, want the reason", name, err)
		}
		if res, _ := get(t, a.Loader(), "GET", "/widget.js"); res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: loader status %d, want 503", name, res.StatusCode)
		}
	}
}

func TestManifestNamesHashedFiles(t *testing.T) {
	m, err := NewAssets(fakeStatic()).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.File(AssetWASM) != fakeWASM || m.File(AssetExec) != fakeExec || m.File(AssetCSS) != fakeCSS || m.File(AssetLoader) != "widget.js" {
		t.Errorf("manifest files: %+v", m.Assets)
	}
	if m.Floor.Brotli != 6 || m.Assets[AssetWASM].Brotli != 2 {
		t.Errorf("manifest sizes: %+v", m)
	}
}

// TestEmbedded checks the real embedded tree in whichever state it is:
// before `make wasm` the loader answers 503, after it every asset the
// manifest names is served.
func TestEmbedded(t *testing.T) {
	if res, _ := get(t, Static(), "GET", "/static/site.css"); res.StatusCode != http.StatusOK {
		t.Fatalf("site.css: status %d", res.StatusCode)
	}
	m, err := Manifest()
	res, _ := get(t, Loader(), "GET", "/widget.js", "Accept-Encoding", "br")
	if errors.Is(err, ErrNotBuilt) {
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("not built, but /widget.js status %d", res.StatusCode)
		}
		t.Skip("widget assets not built; run make wasm to check them")
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "br" {
		t.Fatalf("/widget.js: status %d encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	for _, logical := range []string{AssetWASM, AssetExec, AssetCSS} {
		res, _ := get(t, Static(), "GET", "/static/dist/"+m.File(logical), "Accept-Encoding", "gzip")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: status %d encoding %q", m.File(logical), res.StatusCode, res.Header.Get("Content-Encoding"))
		}
	}
	wantHeader(t, res, "Content-Type", "text/javascript; charset=utf-8")
	// Each language's texts, as the widget fetches them.
	for _, lang := range widget.Languages {
		file := m.File(TextsAsset(lang))
		res, body := get(t, Static(), "GET", "/static/dist/"+file)
		if res.StatusCode != http.StatusOK || body != string(widget.BuiltinJSON(lang)) || !strings.HasPrefix(file, "texts."+lang+".") {
			t.Errorf("%s: status %d, %d bytes, not the built-in texts of %s", file, res.StatusCode, len(body), lang)
		}
	}
}

// TestWasmHasNoBuiltinTexts: the built wasm carries none of the built-in
// texts; it fetches its language from the server.
func TestWasmHasNoBuiltinTexts(t *testing.T) {
	m, err := Manifest()
	if errors.Is(err, ErrNotBuilt) {
		if os.Getenv("CI") == "true" {
			t.Fatal("widget assets not built; CI runs make wasm before the tests")
		}
		t.Skip("widget assets not built; run make wasm to check them")
	}
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := fs.ReadFile(static, "static/dist/"+m.File(AssetWASM))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, lang := range widget.Languages {
		for key, text := range widget.Builtin(lang) {
			if len(text) < 12 || !strings.ContainsAny(text, " …") {
				continue // short words ("Chat", "Send") may be in the wasm for other reasons
			}
			checked++
			if bytes.Contains(wasm, []byte(text)) {
				t.Errorf("widget.wasm holds the %s text %s: %q", lang, key, text)
			}
		}
	}
	if checked < 300 {
		t.Fatalf("only %d texts checked", checked)
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		accept      []string
		haveBr, gz  bool
		want        string
		description string
	}{
		{[]string{"gzip", "br"}, true, true, "br", "values over several header lines"},
		{[]string{"x-gzip"}, true, true, "gzip", "x-gzip is gzip"},
		{[]string{"br"}, false, true, "", "br asked but no copy"},
		{[]string{"*;q=0.1, br;q=0"}, true, true, "gzip", "star covers gzip only"},
		{[]string{" gzip ; q=0.3 , br ; q=0.2 "}, true, true, "gzip", "spaces and weights"},
	} {
		if got := negotiate(tc.accept, tc.haveBr, tc.gz); got != tc.want {
			t.Errorf("%s: negotiate(%q) = %q, want %q", tc.description, tc.accept, got, tc.want)
		}
	}
}
