package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/porthole-chat/porthole/widget"
)

// Styles serves the eager stylesheet, GET /widget.css?bot=ID: the fixed
// frame CSS followed by one bot's look (widget.FrameStyle). Its body
// depends on the bot, the visitor's language and the page's brand colour,
// so it is made per request and compressed once per distinct body; it
// may be cached for 5 minutes and revalidated with its ETag, like
// widget.js, so a config change reaches visitors as fast as a release.
type Styles struct {
	frame []byte

	mu    sync.Mutex
	cache map[[32]byte]*style
}

// style is one body and its compressed copies.
type style struct {
	raw, br, gz []byte
	etag        string
}

// maxStyles bounds the compressed bodies kept: a few per bot and
// language, and pages that pass colours of their own. Past it the cache
// starts afresh; a miss costs one compression.
const maxStyles = 512

// NewStyles serves frame (Frame's result) followed by each request's look.
func NewStyles(frame []byte) *Styles {
	return &Styles{frame: frame, cache: map[[32]byte]*style{}}
}

// Serve writes the stylesheet for look in the best encoding the request
// accepts, or 304 when the client holds it already.
func (s *Styles) Serve(w http.ResponseWriter, r *http.Request, look widget.FrameLook) {
	if !getOrHead(w, r) {
		return
	}
	body := widget.FrameStyle(s.frame, look)
	st := s.get(body)
	h := w.Header()
	h.Set("Cache-Control", cacheShort)
	h.Set("Vary", "Accept-Encoding")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Content-Type", "text/css; charset=utf-8")
	data, tag := st.raw, st.etag
	switch negotiate(r.Header.Values("Accept-Encoding"), true, true) {
	case "br":
		data, tag = st.br, st.etag+"-br"
		h.Set("Content-Encoding", "br")
	case "gzip":
		data, tag = st.gz, st.etag+"-gz"
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", `"`+tag+`"`)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// Warm compresses the stylesheet for look ahead of its first request, so
// that no visitor waits for a brotli compression.
func (s *Styles) Warm(look widget.FrameLook) { s.get(widget.FrameStyle(s.frame, look)) }

func (s *Styles) get(body []byte) *style {
	sum := sha256.Sum256(body)
	s.mu.Lock()
	st := s.cache[sum]
	s.mu.Unlock()
	if st != nil {
		return st
	}
	st = &style{raw: body, br: brotliBytes(body), gz: gzipBytes(body), etag: hex.EncodeToString(sum[:5])}
	s.mu.Lock()
	if len(s.cache) >= maxStyles {
		clear(s.cache)
	}
	s.cache[sum] = st
	s.mu.Unlock()
	return st
}

// brotliBytes compresses b with the settings web/build uses for the
// static assets (quality 11, window 24), so that the bytes served are
// the bytes `make size` counts for the sample stylesheet.
func brotliBytes(b []byte) []byte {
	var out bytes.Buffer
	w := brotli.NewWriterOptions(&out, brotli.WriterOptions{Quality: 11, LGWin: 24})
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}
