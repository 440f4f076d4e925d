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

// Language returns the language of the texts: SetLanguage's, else the
// look's locale, else the page's and the browser's languages, else en.
func (c *Client) Language() string {
	configured := c.lang
	if configured == "" {
		configured = c.Look().Locale
	}
	var page string
	var browser []string
	if len(c.langs) > 0 {
		page, browser = c.langs[0], c.langs[1:]
	}
	return PickLanguage(configured, page, browser...)
}

// Texts returns the UI texts in Language with the look's overrides.
func (c *Client) Texts() Texts { return NewTexts(c.Language(), c.Look().Texts) }

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
