package demo

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/porthole-chat/porthole/widget"
)

// pathError is a problem at path, relative to a message (".buttons[0].url",
// or "" for the message itself), so that it appends to the message's path.
type pathError struct{ path, msg string }

func (e *pathError) Error() string { return e.path + ": " + e.msg }

const shapeHelp = "a message is one of: text (with optional quick_replies), buttons (with optional text), cards, or one of image/video/audio/file (with optional alt)"

// checkMessage validates m's shape, targets and templates, then renders it
// with no variables and runs the widget's own validation on the result.
func checkMessage(m *message, blocks map[string]*block) error {
	if _, err := m.shape(); err != nil {
		return err
	}
	target := func(path, name string) error {
		if name == "" {
			return &pathError{path, "is missing; name the block this leads to"}
		}
		if blocks[name] == nil {
			return &pathError{path, fmt.Sprintf("block %q does not exist; define it under blocks: or point to an existing one", name)}
		}
		return nil
	}
	checkButtons := func(path string, bs []button) error {
		for i, b := range bs {
			p := path + "[" + strconv.Itoa(i) + "]"
			var set []string
			for _, f := range []struct{ name, v string }{{"next", b.Next}, {"url", b.URL}, {"phone", b.Phone}} {
				if f.v != "" {
					set = append(set, f.name)
				}
			}
			switch len(set) {
			case 0:
				return &pathError{p, "needs one of next (a postback to a block), url or phone"}
			case 1:
			default:
				return &pathError{p, "sets both " + set[0] + " and " + set[1] + "; a button does one thing: next, url or phone"}
			}
			if b.Next != "" {
				if err := target(p+".next", b.Next); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i, q := range m.QuickReplies {
		if err := target(".quick_replies["+strconv.Itoa(i)+"].next", q.Next); err != nil {
			return err
		}
	}
	if err := checkButtons(".buttons", m.Buttons); err != nil {
		return err
	}
	for i, c := range m.Cards {
		if err := checkButtons(".cards["+strconv.Itoa(i)+"].buttons", c.Buttons); err != nil {
			return err
		}
	}

	// Templates: every text field must parse.
	var terr error
	m.eachText(func(path, s string) {
		if _, err := expand(s, noVars); err != nil && terr == nil {
			terr = &pathError{path, err.Error()}
		}
	})
	if terr != nil {
		return terr
	}

	body := m.render(noVars, "http://localhost")
	if err := body.Validate(); err != nil {
		var we *widget.Error
		if !errors.As(err, &we) {
			return &pathError{"", err.Error()}
		}
		return &pathError{m.fieldPath(we.Field), we.Message + fixHint(we.Field, we.Message)}
	}
	return nil
}

// fixHint adds the how-to-fix part to a widget validation message.
func fixHint(field, msg string) string {
	switch {
	case strings.HasSuffix(field, "url"), strings.HasSuffix(field, "image"):
		return `; use an absolute http(s) URL, or a path starting with "/" served by Porthole`
	case msg == "is empty":
		return "; write some text, or give every {{variable}} a default like {{name|friend}}"
	}
	return ""
}

// fieldPath turns a widget validation path (body.buttons[0].payload) into
// the script's (.buttons[0].next).
func (m *message) fieldPath(field string) string {
	f := strings.TrimPrefix(field, "body")
	switch {
	case f == ".url":
		k, _ := m.shape()
		return "." + k.key
	case strings.HasSuffix(f, ".payload"):
		return strings.TrimSuffix(f, ".payload") + ".next"
	}
	return f
}

// shape is what kind of neutral body a script message becomes.
type shape struct {
	kind  string // widget.Kind*
	media string // widget.Media* for media
	key   string // the YAML key holding the media URL
	url   string
}

// shape works out m's kind from the fields it sets, and refuses mixtures
// the neutral model cannot express.
func (m *message) shape() (shape, error) {
	fields := []struct {
		name string
		set  bool
	}{
		{"text", m.Text != ""}, {"quick_replies", len(m.QuickReplies) > 0},
		{"buttons", len(m.Buttons) > 0}, {"cards", len(m.Cards) > 0},
		{"image", m.Image != ""}, {"video", m.Video != ""}, {"audio", m.Audio != ""}, {"file", m.File != ""},
		{"alt", m.Alt != ""},
	}
	var s shape
	var allowed []string
	switch {
	case m.Image != "":
		s, allowed = shape{widget.KindMedia, widget.MediaImage, "image", m.Image}, []string{"image", "alt"}
	case m.Video != "":
		s, allowed = shape{widget.KindMedia, widget.MediaVideo, "video", m.Video}, []string{"video", "alt"}
	case m.Audio != "":
		s, allowed = shape{widget.KindMedia, widget.MediaAudio, "audio", m.Audio}, []string{"audio", "alt"}
	case m.File != "":
		s, allowed = shape{widget.KindMedia, widget.MediaFile, "file", m.File}, []string{"file", "alt"}
	case len(m.Cards) > 0:
		s, allowed = shape{kind: widget.KindCarousel, key: "cards"}, []string{"cards"}
	case len(m.Buttons) > 0:
		s, allowed = shape{kind: widget.KindButtons, key: "buttons"}, []string{"buttons", "text"}
	case m.Text != "" || len(m.QuickReplies) > 0:
		s, allowed = shape{kind: widget.KindText, key: "text"}, []string{"text", "quick_replies"}
	default:
		return s, &pathError{"", "is empty; " + shapeHelp}
	}
	for _, f := range fields {
		if f.set && !slices.Contains(allowed, f.name) {
			return s, &pathError{"", f.name + " cannot be combined with " + s.key + "; " + shapeHelp}
		}
	}
	return s, nil
}

// eachText calls fn with every templated field of m and its path.
func (m *message) eachText(fn func(path, s string)) {
	fn(".text", m.Text)
	fn(".alt", m.Alt)
	for i, q := range m.QuickReplies {
		fn(".quick_replies["+strconv.Itoa(i)+"].title", q.Title)
	}
	buttons := func(p string, bs []button) {
		for i, b := range bs {
			fn(p+"["+strconv.Itoa(i)+"].title", b.Title)
		}
	}
	buttons(".buttons", m.Buttons)
	for i, c := range m.Cards {
		p := ".cards[" + strconv.Itoa(i) + "]"
		fn(p+".title", c.Title)
		fn(p+".subtitle", c.Subtitle)
		buttons(p+".buttons", c.Buttons)
	}
}

// render builds the neutral body of m, filling templates from look and
// appending URLs that start with "/" to base.
func (m *message) render(look func(string) string, base string) widget.Body {
	ex := func(s string) string {
		out, _ := expand(s, look)
		return out
	}
	u := func(s string) string {
		if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
			return strings.TrimSuffix(base, "/") + s
		}
		return s
	}
	buttons := func(bs []button) []widget.Button {
		var out []widget.Button
		for _, b := range bs {
			wb := widget.Button{Title: ex(b.Title)}
			switch {
			case b.Next != "":
				wb.Type, wb.Payload = widget.ButtonPostback, payloadPrefix+b.Next
			case b.URL != "":
				wb.Type, wb.URL = widget.ButtonURL, u(b.URL)
			default:
				wb.Type, wb.Phone = widget.ButtonPhone, b.Phone
			}
			out = append(out, wb)
		}
		return out
	}
	s, _ := m.shape()
	body := widget.Body{Kind: s.kind}
	switch s.kind {
	case widget.KindText:
		body.Text = ex(m.Text)
		for _, q := range m.QuickReplies {
			body.QuickReplies = append(body.QuickReplies, widget.QuickReply{Title: ex(q.Title), Payload: payloadPrefix + q.Next})
		}
	case widget.KindButtons:
		body.Text = ex(m.Text)
		body.Buttons = buttons(m.Buttons)
	case widget.KindCarousel:
		for _, c := range m.Cards {
			body.Cards = append(body.Cards, widget.Card{
				Title: ex(c.Title), Subtitle: ex(c.Subtitle),
				Image: u(c.Image), URL: u(c.URL), Buttons: buttons(c.Buttons),
			})
		}
	case widget.KindMedia:
		body.Media, body.URL, body.Alt = s.media, u(s.url), ex(m.Alt)
	}
	return body
}

// noVars is the lookup of a conversation that has no variables at all.
func noVars(string) string { return "" }

// expand replaces {{name}}, {{name|default}} and {{session.key}} in s.
// Spaces around the name and the default are ignored.
func expand(s string, look func(name string) string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	var b strings.Builder
	for {
		before, rest, ok := strings.Cut(s, "{{")
		b.WriteString(before)
		if !ok {
			return b.String(), nil
		}
		expr, after, ok := strings.Cut(rest, "}}")
		if !ok {
			return "", errors.New(`has "{{" without a closing "}}"; write {{name}} or {{name|default}}`)
		}
		name, def, _ := strings.Cut(expr, "|")
		name = strings.TrimSpace(name)
		if !validRef(name) {
			return "", fmt.Errorf("{{%s}}: %q is not a variable; write {{name}}, {{name|default}} or {{session.key}}", expr, name)
		}
		v := look(name)
		if v == "" {
			v = strings.TrimSpace(def)
		}
		b.WriteString(v)
		s = after
	}
}

// validVar reports whether s can name a collected variable.
func validVar(s string) bool {
	if s == "" || s == "session" || unicode.IsDigit(rune(s[0])) {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c < 0x80 && (unicode.IsLetter(c) || unicode.IsDigit(c))) {
			return false
		}
	}
	return true
}

// validRef reports whether s can appear in a template: a variable, or
// session. followed by dot-separated keys.
func validRef(s string) bool {
	keys, ok := strings.CutPrefix(s, "session.")
	if !ok {
		return validVar(s)
	}
	for k := range strings.SplitSeq(keys, ".") {
		if k == "" || strings.ContainsFunc(k, func(c rune) bool {
			return !(c == '_' || c == '-' || unicode.IsLetter(c) || unicode.IsDigit(c))
		}) {
			return false
		}
	}
	return true
}

// validBlockName keeps block names readable in payloads and error paths.
func validBlockName(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c == '_' || c == '-' || c == '.' || c < 0x80 && (unicode.IsLetter(c) || unicode.IsDigit(c)))
	})
}
