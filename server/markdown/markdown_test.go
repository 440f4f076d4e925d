package markdown

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/widget"
)

// para is a paragraph of runs.
func para(runs ...widget.Run) widget.Block { return widget.Block{P: runs} }

// txt is a run of plain text, sty one in style, lnk a link.
func txt(text string) widget.Run        { return widget.Run{Text: text} }
func sty(text, style string) widget.Run { return widget.Run{Text: text, Style: style} }
func lnk(text, url string) widget.Run   { return widget.Run{Text: text, URL: url} }

func item(bs ...widget.Block) []widget.Block { return bs }

func TestConvert(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []widget.Block
		plain    string
	}{
		{"styles", "Here is **bold**, *italic*, ~~gone~~, `code` and ***both***.",
			[]widget.Block{para(txt("Here is "), sty("bold", "b"), txt(", "), sty("italic", "i"), txt(", "), sty("gone", "s"), txt(", "), sty("code", "c"), txt(" and "), sty("both", "bi"), txt("."))},
			"Here is bold, italic, gone, code and both."},
		{"nested styles", "**bold `code` and _it_**",
			[]widget.Block{para(sty("bold ", "b"), sty("code", "bc"), sty(" and ", "b"), sty("it", "bi"))},
			"bold code and it"},
		{"links", "See [our prices](https://example.com/p?a=1&b=2), <https://example.com/auto>, <ann@example.com>, [call](tel:+3247799) and www.example.com.",
			[]widget.Block{para(txt("See "), lnk("our prices", "https://example.com/p?a=1&b=2"), txt(", "), lnk("https://example.com/auto", "https://example.com/auto"), txt(", "),
				lnk("ann@example.com", "mailto:ann@example.com"), txt(", "), lnk("call", "tel:+3247799"), txt(" and "), lnk("www.example.com", "https://www.example.com"), txt("."))},
			"See our prices (https://example.com/p?a=1&b=2), https://example.com/auto, ann@example.com, call (tel:+3247799) and www.example.com."},
		{"styled link", "[**Prices** page](https://example.com/p)",
			[]widget.Block{para(widget.Run{Text: "Prices", Style: "b", URL: "https://example.com/p"}, lnk(" page", "https://example.com/p"))},
			"Prices page (https://example.com/p)"},
		{"lists", "Steps:\n\n1. First\n2. Second\n   - a\n   - b **c**\n3. Third\n\n- x\n\n5. five\n6. six",
			[]widget.Block{
				para(txt("Steps:")),
				{OL: [][]widget.Block{item(para(txt("First"))), item(para(txt("Second")), widget.Block{UL: [][]widget.Block{item(para(txt("a"))), item(para(txt("b "), sty("c", "b")))}}), item(para(txt("Third")))}},
				{UL: [][]widget.Block{item(para(txt("x")))}},
				{OL: [][]widget.Block{item(para(txt("five"))), item(para(txt("six")))}, Start: 5},
			},
			"Steps:\n\n1. First\n2. Second\n   • a\n   • b c\n3. Third\n\n• x\n\n5. five\n6. six"},
		{"code block", "Run:\n\n```sh\necho \"<hi>\" && ls\n  indented\n```\n\n    four spaces",
			[]widget.Block{para(txt("Run:")), {Pre: "echo \"<hi>\" && ls\n  indented"}, {Pre: "four spaces"}},
			"Run:\n\necho \"<hi>\" && ls\n  indented\n\nfour spaces"},
		{"breaks", "one\ntwo  \nthree\\\nfour<br>five<BR />six",
			[]widget.Block{para(txt("one\ntwo\nthree\nfour\nfive\nsix"))},
			"one\ntwo\nthree\nfour\nfive\nsix"},
		{"heading and quote", "# Title\n\n> quoted *text*\n\n---\n\nend",
			[]widget.Block{para(sty("Title", "b")), para(txt("quoted "), sty("text", "i")), para(txt("end"))},
			"Title\n\nquoted text\n\nend"},
		{"escapes and entities", `\*not\* &amp; &lt;b&gt; &#65; \&amp; 5 * 3`,
			[]widget.Block{para(txt("*not* & <b> A &amp; 5 * 3"))},
			"*not* & <b> A &amp; 5 * 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, plain := Convert(c.in)
			if !reflect.DeepEqual(got, c.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(c.want)
				t.Errorf("blocks\n got %s\nwant %s", g, w)
			}
			if plain != c.plain {
				t.Errorf("plain\n got %q\nwant %q", plain, c.plain)
			}
			if b := Body(widget.Text(c.in)); b.Validate() != nil {
				t.Errorf("Body does not validate: %v", b.Validate())
			}
		})
	}
}

// TestHostile: what would be markup, script or a dangerous address in
// HTML comes out as text or not at all; nothing links anywhere but http,
// https, mailto and tel; nothing becomes an image.
func TestHostile(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []widget.Block
	}{
		{"script block", "<script>alert(1)</script>",
			[]widget.Block{para(txt("<script>alert(1)</script>"))}},
		{"inline img", "Hi <img src=x onerror=alert(1)> there",
			[]widget.Block{para(txt("Hi <img src=x onerror=alert(1)> there"))}},
		{"html block", "<div onclick=\"alert(1)\">\n*x*\n</div>",
			[]widget.Block{para(txt("<div onclick=\"alert(1)\">\n*x*\n</div>"))}},
		{"javascript link", "[x](javascript:alert(1))",
			[]widget.Block{para(txt("x"))}},
		{"obfuscated javascript links", "[a](JaVaScRiPt:alert(1)) [b](jav&#x61;script:alert(1)) [c](<javascript:alert(1)>) [d]( javascript:alert(1)) [e](java\tscript:x)",
			[]widget.Block{para(txt("a b c d [e](java\tscript:x)"))}},
		{"javascript autolink", "<javascript:alert(1)>",
			[]widget.Block{para(txt("javascript:alert(1)"))}},
		{"data and vbscript links", "[a](data:text/html;base64,PHNjcmlwdD4=) [b](vbscript:msgbox) [c](file:///etc/passwd) [d](/relative) [e](//evil.example)",
			[]widget.Block{para(txt("a b c d e"))}},
		{"image", "![a cat](http://example.com/cat.png \"title\")",
			[]widget.Block{para(lnk("a cat", "http://example.com/cat.png"))}},
		{"image without alt", "![](https://example.com/cat.png)",
			[]widget.Block{para(lnk("https://example.com/cat.png", "https://example.com/cat.png"))}},
		{"data image", "![x](data:image/svg+xml,<svg onload=alert(1)>) ![](data:image/png;base64,AAAA) ok",
			[]widget.Block{para(txt("![x](data:image/svg+xml,<svg onload=alert(1)>)  ok"))}},
		{"image in link", "[![pic](javascript:x)](https://example.com/)",
			[]widget.Block{para(lnk("pic", "https://example.com/"))}},
		{"link in link text", "[a [b](https://b.example/) c](https://a.example/)",
			[]widget.Block{para(txt("[a "), lnk("b", "https://b.example/"), txt(" c]("), lnk("https://a.example/", "https://a.example/"), txt(")"))}},
		{"quote in address", `[x](https://example.com/"onmouseover=alert(1))`,
			[]widget.Block{para(lnk("x", "https://example.com/%22onmouseover=alert(1)"))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _ := Convert(c.in)
			if !reflect.DeepEqual(got, c.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(c.want)
				t.Errorf("blocks\n got %s\nwant %s", g, w)
			}
			checkSafe(t, Body(widget.Text(c.in)))
		})
	}
}

// checkSafe fails unless b validates and links only to the addresses a
// visitor may open.
func checkSafe(t *testing.T, b widget.Body) {
	t.Helper()
	if err := b.Validate(); err != nil {
		t.Fatalf("does not validate: %v", err)
	}
	var walk func([]widget.Block)
	walk = func(bs []widget.Block) {
		for _, bl := range bs {
			for _, r := range bl.P {
				if r.URL == "" {
					continue
				}
				scheme, _, _ := strings.Cut(strings.ToLower(r.URL), ":")
				if scheme != "http" && scheme != "https" && scheme != "mailto" && scheme != "tel" {
					t.Fatalf("links to %q", r.URL)
				}
			}
			for _, it := range append(bl.UL, bl.OL...) {
				walk(it)
			}
		}
	}
	walk(b.Blocks)
}

func TestDeepLists(t *testing.T) {
	// 40 levels: the first MaxListDepth are lists, the rest paragraphs
	// with their markers, in the innermost item.
	var b strings.Builder
	for i := 0; i < 40; i++ {
		b.WriteString(strings.Repeat("  ", i) + "- level\n")
	}
	got, plain := Convert(b.String())
	depth, bl := 0, got
	for len(bl) > 0 && len(bl[len(bl)-1].UL) > 0 {
		depth++
		bl = bl[len(bl)-1].UL[0]
	}
	if depth != widget.MaxListDepth {
		t.Fatalf("lists nest %d deep, want %d", depth, widget.MaxListDepth)
	}
	if n := strings.Count(plain, "level"); n != 40 {
		t.Fatalf("plain text keeps %d of 40 items: %q", n, plain)
	}
	checkSafe(t, Body(widget.Text(b.String())))
	if Body(widget.Text(b.String())).Blocks == nil {
		t.Fatal("deep lists not formatted")
	}
	// Quotes nested as deep as the text allows do not break anything.
	deep := strings.Repeat(">", widget.MaxText-1) + "x"
	checkSafe(t, Body(widget.Text(deep)))
}

func TestTooMuchStaysPlain(t *testing.T) {
	for name, in := range map[string]string{
		"longer than MaxText":         strings.Repeat("**a** ", widget.MaxText/6+1),
		"more runs than MaxBlockRuns": strings.Repeat("*a*b", widget.MaxBlockRuns),
		"huge":                        strings.Repeat("- [x](https://example.com/) **y**\n", 100000),
	} {
		b := Body(widget.Text(in))
		if b.Blocks != nil || b.Text != in {
			t.Errorf("%s: formatted (%d blocks)", name, len(b.Blocks))
		}
	}
	// Within the limits, but larger than a frame holds with its plain
	// text: shown plain.
	in := "```\n" + strings.Repeat("<", widget.MaxText-10) + "\n```"
	if b := Body(widget.Text(in)); b.Blocks != nil || b.Text != in {
		t.Errorf("a body over widget.MaxBody was formatted")
	}
}

func TestBody(t *testing.T) {
	// Plain text stays as it is, without blocks: nothing to format.
	for _, in := range []string{"Hello there!\nSee https://example.com or ann@example.com.", "Paragraph one.\n\nParagraph two."} {
		if b := Body(widget.Text(in)); b.Blocks != nil || b.Text != in {
			t.Errorf("%q: %+v", in, b)
		}
	}
	// A buttons message's text is formatted; its buttons stay.
	bt := widget.Body{Kind: widget.KindButtons, Text: "Pick **one**", Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "*A*", Payload: "a"}}}
	got := Body(bt)
	want := bt
	want.Text, want.Blocks = "Pick one", []widget.Block{para(txt("Pick "), sty("one", "b"))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("buttons: %+v", got)
	}
	// Quick replies stay with a formatted text.
	qr := widget.Body{Kind: widget.KindText, Text: "_Pick_", QuickReplies: []widget.QuickReply{{Title: "**x**", Payload: "x"}}}
	if got := Body(qr); got.Text != "Pick" || len(got.QuickReplies) != 1 || got.QuickReplies[0].Title != "**x**" {
		t.Errorf("quick replies: %+v", got)
	}
	// Other kinds, and a body that has blocks already, are left alone.
	for _, b := range []widget.Body{
		{Kind: widget.KindCarousel, Cards: []widget.Card{{Title: "**x**", Subtitle: "*y*"}}},
		{Kind: widget.KindMedia, Media: widget.MediaImage, URL: "https://example.com/a.png", Alt: "**a**"},
		{Kind: widget.KindText, Text: "**x**", Blocks: []widget.Block{para(txt("**x**"))}},
		{Kind: widget.KindText, Text: "---"}, // nothing left: shown as written
	} {
		if got := Body(b); !reflect.DeepEqual(got, b) {
			t.Errorf("%s changed: %+v", b.Kind, got)
		}
	}
	// The result goes over the wire and back unchanged.
	f := Body(widget.Text("**Hi** [x](https://example.com)\n\n1. a\n   - `b`\n\n```\ncode\n```"))
	back, err := widget.DecodeBody(f.AppendJSON(nil))
	if err != nil || !reflect.DeepEqual(back, f) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, back, f)
	}
}

// TestConcurrent: the one parser serves every delivery at once (run
// with -race).
func TestConcurrent(t *testing.T) {
	in := "**a** [b](https://example.com)\n\n1. c\n   - `d`"
	want, _ := Convert(in)
	done := make(chan []widget.Block)
	for i := 0; i < 8; i++ {
		go func() {
			var got []widget.Block
			for j := 0; j < 50; j++ {
				got, _ = Convert(in)
			}
			done <- got
		}()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v", got)
		}
	}
}

// FuzzBody: whatever a bot writes, the body validates, links only where
// a visitor may go, and its plain text is never empty.
func FuzzBody(f *testing.F) {
	for _, s := range []string{"**a** _b_ `c` ~~d~~", "1. a\n   - b\n     - c", "<script>x</script>", "[x](javascript:y)", "![i](http://e.example/i.png)",
		"> - *a\n> ```\n> b", "[a]: https://example.com\n\n[x][a] ![y][a]", "&#0; &#x110000; \x00 \\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		b := widget.Text(in)
		if b.Validate() != nil {
			return
		}
		got := Body(b)
		checkSafe(t, got)
		if strings.TrimSpace(got.Text) == "" {
			t.Fatalf("empty text for %q", in)
		}
	})
}
