package widget

// FrameLook is what the loader needs to draw the launcher, the teaser and
// the panel's frame before the widget has loaded: the bot's look, with
// the built-in texts already in the visitor's language. The server sends
// it inside the eager stylesheet (FrameStyle), so that a page view costs
// no request beyond the loader and that stylesheet. The browser program
// never builds one: the linker leaves this file out of widget.wasm.
type FrameLook struct {
	Look Look
	// Lang is the language of the texts, as PickLanguage returns it.
	Lang string
	// Connect is "open" when even a returning visitor's widget waits for
	// the panel to open; "" or "idle" starts it once the page is idle.
	Connect string
	// Teaser is the bubble shown beside the launcher; nil for none.
	Teaser *Teaser
}

// Teaser is a short message beside the launcher, drawn by the loader.
type Teaser struct {
	Text    string
	DelayMS int64
	// Paths limits it to pages whose path starts with one of them; none
	// means every page.
	Paths []string
}

// NewFrameLook resolves look for one visitor, with the texts in the
// language the widget itself picks (Client.Language): the page's
// data-language (pageOption), else the bot's locale, else the page's
// language.
func NewFrameLook(look Look, pageOption, pageLang string) FrameLook {
	configured := pageOption
	if configured == "" {
		configured = look.Locale
	}
	return FrameLook{Look: look, Lang: PickLanguage(configured, pageLang)}
}

// FrameStyle returns the eager stylesheet: frame (the minified
// web/loader/frame.css) followed by the bot's colours and its FrameLook
// in the custom property --ph-look, which the loader reads with
// getComputedStyle. The look is JSON with one-letter keys (every byte
// counts against the eager budget) in a single-quoted CSS string, where
// only ', \, % and control characters are escaped, as %XX: browsers keep
// a custom property's text as written, and the loader undoes the escapes
// with decodeURIComponent.
func FrameStyle(frame []byte, l FrameLook) []byte {
	t := NewTexts(l.Lang, l.Look.Texts)
	w := jsonWriter{b: make([]byte, 0, 512)}
	w.open()
	w.str("t", l.Look.Title, true)
	w.str("s", l.Look.Subtitle, true)
	if l.Look.Icon != "" && CheckURL("icon", l.Look.Icon, false) == nil {
		w.str("i", l.Look.Icon, true)
	}
	w.str("g", l.Look.Greeting, true)
	if l.Look.Position == "left" {
		w.str("p", "left", true)
	}
	if l.Connect == "open" {
		w.str("k", "open", true)
	}
	if z := l.Teaser; z != nil && z.Text != "" {
		w.key("z")
		w.open()
		w.str("t", z.Text, false)
		w.uint("d", uint64(max(z.DelayMS, 0)), true)
		w.strings("p", z.Paths)
		w.close()
	}
	w.key("x")
	w.open()
	w.str("o", t.Get(TextLauncherOpen), false)
	w.str("c", t.Get(TextClose), false)
	w.str("h", t.Get(TextPlaceholder), false)
	w.str("m", t.Get(TextComposer), false)
	w.str("s", t.Get(TextSend), false)
	w.str("n", t.Get(TextConnecting), false)
	w.str("d", t.Dialog(l.Look.Title), false)
	w.str("w", t.State(StateSending), false)
	w.str("l", t.Lang(), false)
	w.str("r", t.Dir(), false)
	w.close()
	w.close()

	brand := BrandColor(l.Look.BrandColor)
	out := make([]byte, 0, len(frame)+len(w.b)+96)
	out = append(out, frame...)
	out = append(out, ":host{--ph-brand:"...)
	out = append(out, brand...)
	out = append(out, ";--ph-on-brand:"...)
	out = append(out, TextOn(brand)...)
	if l.Look.Font != "" && CheckFont("font", l.Look.Font) == nil {
		out = append(out, ";--ph-font:"...)
		out = append(out, l.Look.Font...)
	}
	if l.Look.ColorScheme == "dark" {
		out = append(out, ";"+darkVars...)
	}
	out = append(out, ";--ph-look:'"...)
	for _, c := range w.b {
		if c == '\'' || c == '\\' || c == '%' || c < 0x20 || c == 0x7f {
			out = append(out, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			continue
		}
		out = append(out, c)
	}
	out = append(out, "'}\n"...)
	if l.Look.ColorScheme == "light" {
		out = append(out, "@media (prefers-color-scheme:dark){:host{"+lightVars+"}}\n"...)
	}
	return out
}

// lightVars and darkVars are frame.css's colours of each scheme, for a
// bot whose colour scheme is fixed (widget.color_scheme); widget.css
// has them too, for the page's colorScheme option.
const (
	lightVars = "--ph-bg:#fff;--ph-fg:#111827;--ph-muted:#5b6472;--ph-line:#e3e6eb;color-scheme:light"
	darkVars  = "--ph-bg:#16191f;--ph-fg:#eef0f3;--ph-muted:#a3abb8;--ph-line:#323844;color-scheme:dark"
)
