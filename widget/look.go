package widget

// The look: the bot's configured appearance and texts with the page's
// options on top, and the language of the texts.

// SetLook sets the page's look options (Porthole.init); they override
// the bot's configured look field by field, texts key by key.
func (c *Client) SetLook(page Look) Update {
	c.pageLook = page
	return c.finish(Update{Change: ChangeLook})
}

// SetLanguage picks the texts' language and the locale sent in the next
// hello (Porthole.setLanguage); "" returns to the automatic choice.
func (c *Client) SetLanguage(lang string) Update {
	c.lang = lang
	return c.finish(Update{Change: ChangeLook})
}

// Look returns the bot's look with the page's options on top.
func (c *Client) Look() Look { return MergeLook(c.serverLook, c.pageLook) }

// Language returns the language the texts should be in: SetLanguage's,
// else the look's locale (the page's option, else the bot's), else the
// frame's (the server's choice for this page, FrameLang), else the
// page's and the browser's languages, else en.
func (c *Client) Language() string {
	configured := c.lang
	if configured == "" {
		configured = c.Look().Locale
	}
	return PickLanguage(configured, c.frameLang, c.langs...)
}

// Texts returns the UI texts with the look's overrides: the built-in
// texts of the language last fetched, which stay until those of a new
// Language are here, so that the panel never mixes two languages. Before
// the first are here (the widget waits for them) there are only the
// overrides, and the keys.
func (c *Client) Texts() Texts {
	lang := c.shown
	if lang == "" {
		lang = c.Language()
	}
	return TextsOf(lang, c.builtin, c.Look().Texts)
}

// TextsLoaded takes the built-in texts of lang that Update.Texts asked
// for: data is the server's texts asset, nil when the fetch failed. A
// failed language is asked for again after the next welcome.
func (c *Client) TextsLoaded(lang string, data []byte) Update {
	var u Update
	if c.asked == lang {
		c.asked = ""
	}
	if v, ok := ParseTexts(data); !ok {
		c.failed = lang
	} else if lang == c.Language() {
		c.shown, c.builtin = lang, v
		u.Change |= ChangeLook
	}
	return c.finish(u)
}

// wantTexts asks for the built-in texts of Language when they are not
// the ones shown.
func (c *Client) wantTexts(u *Update) {
	if want := c.Language(); want != c.shown && want != c.asked && want != c.failed {
		c.asked = want
		u.Texts = want
	}
}

// MergeLook returns base with every non-empty field of over on top;
// texts are merged key by key.
func MergeLook(base, over Look) Look {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	out := Look{
		Title: pick(base.Title, over.Title), Subtitle: pick(base.Subtitle, over.Subtitle),
		Icon: pick(base.Icon, over.Icon), Position: pick(base.Position, over.Position),
		BrandColor: pick(base.BrandColor, over.BrandColor), Greeting: pick(base.Greeting, over.Greeting),
		Locale: pick(base.Locale, over.Locale), Texts: base.Texts,
		ColorScheme: pick(base.ColorScheme, over.ColorScheme), Font: pick(base.Font, over.Font),
	}
	if len(over.Texts) > 0 {
		out.Texts = make(map[string]string, len(base.Texts)+len(over.Texts))
		for k, v := range base.Texts {
			out.Texts[k] = v
		}
		for k, v := range over.Texts {
			out.Texts[k] = v
		}
	}
	return out
}

// CheckColorScheme says what is wrong with a colour scheme at path: ""
// or "auto" (the visitor's system), "light" or "dark".
func CheckColorScheme(path, s string) error {
	switch s {
	case "", "auto", "light", "dark":
		return nil
	}
	return invalid(path, "must be auto, light or dark")
}

// CheckFont says what is wrong with a CSS font-family list at path, like
// `"Source Sans 3", Arial, sans-serif`: only letters, digits, spaces,
// commas, hyphens and balanced straight quotes, at most 200 bytes, so
// that it cannot end the declaration it is written into or load
// anything.
func CheckFont(path, s string) error {
	if len(s) > 200 {
		return invalid(path, "is longer than 200 bytes")
	}
	quotes := [2]int{}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ' ', c == ',', c == '-':
		case c == '"':
			quotes[0]++
		case c == '\'':
			quotes[1]++
		default:
			return invalid(path, "may hold only font names, quotes, commas, spaces and hyphens")
		}
	}
	if quotes[0]%2 != 0 || quotes[1]%2 != 0 {
		return invalid(path, "has a quote that is not closed")
	}
	return nil
}
