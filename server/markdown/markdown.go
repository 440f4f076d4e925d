// Package markdown turns a bot's Markdown into the neutral model's
// formatted text (widget.Block): paragraphs of styled runs, links, lists
// and code blocks, never markup. It is the one place that parses
// Markdown, on the server, with github.com/yuin/goldmark; the widget and
// the chat page only render the structure, so no parser reaches
// widget.wasm and no bot text ever reaches a page as HTML.
//
// What is kept: bold, italic, strikethrough and code spans; links to
// http, https, mailto and tel addresses (any other address, javascript:
// and data: among them, leaves the link's text as text); bulleted and
// numbered lists nested up to widget.MaxListDepth (deeper ones become
// paragraphs with their markers); code blocks; line breaks. Headings
// become bold paragraphs, quotes their content. Raw HTML is shown as
// the text it is (a <br> is a line break); an image becomes a link to
// it with its description as the text, never an image.
package markdown

import (
	"bufio"
	"bytes"
	stdhtml "html"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

	"github.com/porthole-chat/porthole/widget"
)

// parser reads CommonMark with GitHub's strikethrough. Tables, task
// lists and bare-URL linking are left out: a table stays its text, and
// bare URLs are linked by widget.Linkify, the same rules as plain text.
var parser = goldmark.New(goldmark.WithExtensions(extension.Strikethrough)).Parser()

// Body returns b with its text read as Markdown: Text becomes the text's
// plain rendering (what notifications and transcripts show) and Blocks
// its formatted form. b comes back as it is when it is neither a text
// nor a buttons message, already has Blocks, holds no formatting (its
// plain rendering is its text), or would not validate formatted (too
// long, say): it is then shown as plain text, as without Markdown.
func Body(b widget.Body) widget.Body {
	if b.Kind != widget.KindText && b.Kind != widget.KindButtons || b.Blocks != nil || b.Text == "" {
		return b
	}
	blocks, plain := Convert(b.Text)
	if blocks == nil || plain == b.Text && !formatted(blocks) {
		return b
	}
	f := b
	f.Text, f.Blocks = plain, blocks
	if f.Validate() != nil {
		return b
	}
	return f
}

// formatted reports whether blocks hold anything that plain text with
// its links detected does not show the same: a list, code, a style, or a
// link whose text is not its address.
func formatted(blocks []widget.Block) bool {
	for _, bl := range blocks {
		if len(bl.P) == 0 {
			return true
		}
		for _, r := range bl.P {
			if r.Style != "" || r.URL != "" && !bare(r) {
				return true
			}
		}
	}
	return false
}

// bare reports whether a link run shows its own address, as a detected
// link does, so that its plain rendering need not add it.
func bare(r widget.Run) bool {
	return r.URL == r.Text || r.URL == "https://"+r.Text || r.URL == "mailto:"+r.Text || r.URL == "tel:"+r.Text
}

// Convert reads Markdown and returns its formatted blocks and their
// plain rendering. Text longer than widget.MaxText characters, and text
// that would make more than widget.MaxBlockRuns blocks and runs, is not
// formatted: Convert returns no blocks.
func Convert(src string) (blocks []widget.Block, plain string) {
	if len(src) > 4*widget.MaxText || utf8.RuneCountInString(src) > widget.MaxText {
		return nil, src
	}
	source := []byte(src)
	c := &converter{src: source}
	c.w = bufio.NewWriter(&c.buf)
	doc := parser.Parse(text.NewReader(source))
	blocks = c.blocks(doc, 0)
	if c.count > widget.MaxBlockRuns || len(blocks) == 0 {
		return nil, src
	}
	return blocks, Plain(blocks)
}

// converter walks goldmark's tree.
type converter struct {
	src   []byte
	count int // blocks and runs made
	// buf and w decode a text's escapes and entities (see unescape).
	buf bytes.Buffer
	w   *bufio.Writer
}

// blocks converts the block children of parent; depth is how many lists
// enclose them.
func (c *converter) blocks(parent ast.Node, depth int) []widget.Block {
	var out []widget.Block
	add := func(bl widget.Block) {
		c.count++
		out = append(out, bl)
	}
	for n := parent.FirstChild(); n != nil; n = n.NextSibling() {
		switch n := n.(type) {
		case *ast.Paragraph, *ast.TextBlock:
			if runs := c.paragraph(n, ""); len(runs) > 0 {
				add(widget.Block{P: runs})
			}
		case *ast.Heading:
			if runs := c.paragraph(n, "b"); len(runs) > 0 {
				add(widget.Block{P: runs})
			}
		case *ast.List:
			if depth >= widget.MaxListDepth {
				out = append(out, c.flatList(n, depth)...)
				continue
			}
			var items [][]widget.Block
			for li := n.FirstChild(); li != nil; li = li.NextSibling() {
				if item := c.blocks(li, depth+1); len(item) > 0 {
					items = append(items, item)
				}
			}
			if len(items) == 0 {
				continue
			}
			if n.IsOrdered() {
				bl := widget.Block{OL: items}
				if n.Start > 1 {
					bl.Start = n.Start
				}
				add(bl)
			} else {
				add(widget.Block{UL: items})
			}
		case *ast.FencedCodeBlock, *ast.CodeBlock:
			if code := strings.TrimRight(c.lines(n.Lines()), "\n"); strings.TrimSpace(code) != "" {
				add(widget.Block{Pre: code})
			}
		case *ast.HTMLBlock:
			// Shown as the text it is, never as HTML.
			s := c.lines(n.Lines())
			if n.HasClosure() {
				s += string(n.ClosureLine.Value(c.src))
			}
			if s = strings.TrimRight(s, "\n"); strings.TrimSpace(s) != "" {
				add(widget.Block{P: c.linkify([]widget.Run{{Text: s}})})
			}
		case *ast.ThematicBreak:
		default: // quotes, and anything else with blocks inside
			out = append(out, c.blocks(n, depth)...)
		}
	}
	return out
}

// flatList turns a list nested too deep into paragraphs that start with
// the item's marker.
func (c *converter) flatList(list *ast.List, depth int) []widget.Block {
	var out []widget.Block
	num := list.Start
	for li := list.FirstChild(); li != nil; li = li.NextSibling() {
		marker := "• "
		if list.IsOrdered() {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		item := c.blocks(li, depth+1)
		c.count++
		if len(item) > 0 && len(item[0].P) > 0 {
			item[0].P = append([]widget.Run{{Text: marker}}, item[0].P...)
		} else {
			item = append([]widget.Block{{P: []widget.Run{{Text: strings.TrimSpace(marker)}}}}, item...)
		}
		out = append(out, item...)
	}
	return out
}

// lines returns the text of a block's lines as they are.
func (c *converter) lines(ls *text.Segments) string {
	var b strings.Builder
	for i := 0; i < ls.Len(); i++ {
		seg := ls.At(i)
		b.Write(seg.Value(c.src))
	}
	return b.String()
}

// paragraph converts the inline children of n to runs, each with style
// added, and links the addresses in their plain text.
func (c *converter) paragraph(n ast.Node, style string) []widget.Run {
	var runs []widget.Run
	c.inlines(n, style, "", &runs)
	// A paragraph's text ends with no line break.
	for len(runs) > 0 {
		last := &runs[len(runs)-1]
		last.Text = strings.TrimRight(last.Text, "\n")
		if last.Text != "" {
			break
		}
		runs = runs[:len(runs)-1]
	}
	return c.linkify(runs)
}

// inlines appends the runs of n's inline children, in style and linking
// to url (when not empty).
func (c *converter) inlines(n ast.Node, style, url string, runs *[]widget.Run) {
	for ch := n.FirstChild(); ch != nil; ch = ch.NextSibling() {
		switch ch := ch.(type) {
		case *ast.Text:
			s := string(ch.Segment.Value(c.src))
			if !ch.IsRaw() {
				s = c.unescape(ch.Segment.Value(c.src))
			}
			if ch.SoftLineBreak() || ch.HardLineBreak() {
				s += "\n"
			}
			c.add(runs, s, style, url)
		case *ast.String:
			c.add(runs, string(ch.Value), style, url)
		case *ast.CodeSpan:
			var b strings.Builder
			for t := ch.FirstChild(); t != nil; t = t.NextSibling() {
				if t, ok := t.(*ast.Text); ok {
					v := t.Segment.Value(c.src)
					if bytes.HasSuffix(v, []byte("\n")) {
						v = append(v[:len(v)-1:len(v)-1], ' ')
					}
					b.Write(v)
				}
			}
			c.add(runs, b.String(), style+"c", url)
		case *ast.Emphasis:
			s := "i"
			if ch.Level >= 2 {
				s = "b"
			}
			c.inlines(ch, style+s, url, runs)
		case *east.Strikethrough:
			c.inlines(ch, style+"s", url, runs)
		case *ast.Link:
			c.inlines(ch, style, c.link(url, util.URLEscape(ch.Destination, true)), runs)
		case *ast.AutoLink:
			label := string(ch.Label(c.src))
			c.add(runs, label, style, c.link(url, util.URLEscape(ch.URL(c.src), false)))
		case *ast.Image:
			// A link to the image, with its description as the text.
			href := util.URLEscape(ch.Destination, true)
			var alt []widget.Run
			c.inlines(ch, "", "", &alt)
			label := ""
			for _, r := range alt {
				label += r.Text
			}
			link := c.link(url, href)
			if label = strings.TrimSpace(label); label == "" && link != "" {
				label = link
			}
			c.add(runs, label, style, link)
		case *ast.RawHTML:
			raw := c.lines(ch.Segments)
			if isBreak(raw) {
				c.add(runs, "\n", style, url)
				continue
			}
			c.add(runs, raw, style, url)
		default:
			c.inlines(ch, style, url, runs)
		}
	}
}

// link returns the address a run links to: outer, when it is inside a
// link already (a link in a link is its text), else href when it is an
// address a visitor may open, else none.
func (c *converter) link(outer string, href []byte) string {
	if outer != "" {
		return outer
	}
	if widget.CheckURL("href", string(href), true) != nil {
		return ""
	}
	return string(href)
}

// add appends text in style linking to url, joined to the last run when
// that has the same style and link.
func (c *converter) add(runs *[]widget.Run, s, style, url string) {
	if s == "" {
		return
	}
	style = canonical(style)
	if n := len(*runs); n > 0 && (*runs)[n-1].Style == style && (*runs)[n-1].URL == url {
		(*runs)[n-1].Text += s
		return
	}
	c.count++
	*runs = append(*runs, widget.Run{Text: s, Style: style, URL: url})
}

// linkify links the addresses in the plain text of runs outside links
// and code, as widget.Linkify finds them in plain text.
func (c *converter) linkify(runs []widget.Run) []widget.Run {
	var out []widget.Run
	for _, r := range runs {
		if r.URL != "" || strings.Contains(r.Style, "c") {
			out = append(out, r)
			continue
		}
		segs := widget.Linkify(r.Text)
		c.count += len(segs) - 1
		for _, s := range segs {
			out = append(out, widget.Run{Text: s.Text, Style: r.Style, URL: s.URL})
		}
	}
	return out
}

// canonical returns the styles of s once each, in widget.Styles' order.
func canonical(s string) string {
	out := make([]byte, 0, len(widget.Styles))
	for i := 0; i < len(widget.Styles); i++ {
		if strings.IndexByte(s, widget.Styles[i]) >= 0 {
			out = append(out, widget.Styles[i])
		}
	}
	return string(out)
}

// unescape returns a text's characters: backslash escapes and entity
// references resolved as goldmark's HTML renderer resolves them (through
// the same writer, whose HTML escaping is then undone).
func (c *converter) unescape(v []byte) string {
	c.buf.Reset()
	html.DefaultWriter.Write(c.w, v)
	c.w.Flush()
	return stdhtml.UnescapeString(c.buf.String())
}

// isBreak reports whether raw HTML is a line break tag: <br>, <br/> or
// <br />, in any case.
func isBreak(raw string) bool {
	s := strings.ToLower(strings.Join(strings.Fields(raw), ""))
	return s == "<br>" || s == "<br/>"
}

// Plain renders blocks as plain text: paragraphs apart by a blank line,
// list items on lines of their own after "• " or their number, nested
// items indented, and a link whose text is not its address followed by
// the address in brackets, so that no information is lost where only
// text shows.
func Plain(blocks []widget.Block) string {
	return strings.Join(plainBlocks(blocks), "\n\n")
}

// plainBlocks renders each block; lines of a block are apart by "\n".
func plainBlocks(blocks []widget.Block) []string {
	out := make([]string, 0, len(blocks))
	for _, bl := range blocks {
		switch {
		case len(bl.P) > 0:
			out = append(out, plainRuns(bl.P))
		case bl.Pre != "":
			out = append(out, bl.Pre)
		default:
			items, num := bl.UL, 0
			if len(bl.OL) > 0 {
				items, num = bl.OL, bl.Start
				if num == 0 {
					num = 1
				}
			}
			lines := make([]string, 0, len(items))
			for _, item := range items {
				marker := "• "
				if num > 0 {
					marker = strconv.Itoa(num) + ". "
					num++
				}
				indent := strings.Repeat(" ", utf8.RuneCountInString(marker))
				body := strings.Join(plainBlocks(item), "\n")
				lines = append(lines, marker+strings.ReplaceAll(body, "\n", "\n"+indent))
			}
			out = append(out, strings.Join(lines, "\n"))
		}
	}
	return out
}

func plainRuns(runs []widget.Run) string {
	var b strings.Builder
	for i, r := range runs {
		b.WriteString(r.Text)
		// The address follows the link's last run.
		if r.URL != "" && !bare(r) && (i+1 == len(runs) || runs[i+1].URL != r.URL) {
			b.WriteString(" (" + r.URL + ")")
		}
	}
	return b.String()
}
