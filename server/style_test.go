package server

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

func getStyle(t *testing.T, h *harness, query string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.hs.URL+"/widget.css?"+query, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r io.Reader = res.Body
	if res.Header.Get("Content-Encoding") == "br" {
		r = brotli.NewReader(res.Body)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// lookIn returns the unescaped --ph-look of an eager stylesheet.
func lookIn(t *testing.T, css string) string {
	t.Helper()
	i := strings.Index(css, "--ph-look:'")
	j := strings.LastIndex(css, "'}")
	if i < 0 || j < i {
		t.Fatalf("no --ph-look in %q", css)
	}
	s, err := url.PathUnescape(css[i+len("--ph-look:'") : j])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEagerStylesheet(t *testing.T) {
	h := newHarness(t, func(c *Config, o *Options) {
		o.Styles = web.NewStyles([]byte(".frame{}"))
		c.Bots[1].Widget.Teaser = TeaserConfig{Text: "Need help?", Paths: []string{"/pricing"}}
		c.Bots[1].Widget.Connect = "open"
		c.Bots[1].Widget.Locale = ""
	})
	res, css := getStyle(t, h, "bot=acme&lang=&page=nl-BE&color=", "Accept-Encoding", "br, gzip")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" ||
		res.Header.Get("Content-Encoding") != "br" || res.Header.Get("Cache-Control") != "public, max-age=300" ||
		res.Header.Get("ETag") == "" || res.Header.Get("Cross-Origin-Resource-Policy") != "cross-origin" {
		t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
	}
	if !strings.HasPrefix(css, ".frame{}:host{--ph-brand:") {
		t.Errorf("the frame's CSS does not come first: %q", css)
	}
	look := lookIn(t, css)
	for _, want := range []string{`"t":"Acme"`, `"p":"left"`, `"k":"open"`, `"z":{"t":"Need help?","d":3000,"p":["/pricing"]}`,
		`"o":"Chat openen"`, `"l":"nl"`} {
		if !strings.Contains(look, want) {
			t.Errorf("look %s lacks %s", look, want)
		}
	}

	// Revalidation: the same body has the same ETag, answered with 304.
	res2, _ := getStyle(t, h, "bot=acme&lang=&page=nl-BE&color=", "Accept-Encoding", "br", "If-None-Match", res.Header.Get("ETag"))
	if res2.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: status %d", res2.StatusCode)
	}

	// The page's data-language and brand colour win; a bad colour is ignored.
	_, css = getStyle(t, h, "bot=acme&lang=fr&page=nl&color=%23ffcc00")
	if !strings.Contains(css, "--ph-brand:#ffcc00;--ph-on-brand:#111827") || !strings.Contains(lookIn(t, css), `"l":"fr"`) {
		t.Errorf("page options not applied: %q", css)
	}
	_, css = getStyle(t, h, "bot=acme&color=red;}body{display:none")
	if strings.Contains(css, "display:none") || !strings.Contains(css, "--ph-brand:"+widget.DefaultBrandColor+";") {
		t.Errorf("a bad colour reached the stylesheet: %q", css)
	}

	if res, body := getStyle(t, h, "bot=nobody"); res.StatusCode != 404 || !strings.Contains(body, "unknown bot") {
		t.Errorf("unknown bot: %d %q", res.StatusCode, body)
	}
}
