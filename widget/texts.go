package widget

import "strconv"

// UI texts. The built-in texts of each language (texts_builtin.go) are
// not part of widget.wasm: the server draws the frame with them, renders
// the chat pages with them, and serves each language as a static asset
// that the browser program fetches (Client.TextsLoaded). What stays here
// is what the widget needs to pick a language and fill in texts. A bot's
// config (widget.texts) and the page's Porthole.init({texts}) override
// them by key: "send" for every language, "nl.send" for Dutch only.
// Placeholders in braces ({bot}, {n}, {total}) are filled in by the
// methods of Texts.

// Languages with built-in texts; the first is the fallback.
var Languages = [...]string{"en", "nl", "fr", "de", "es", "it", "pt", "pl", "sv", "da", "tr", "ar", "he"}

// Dir returns the writing direction of a language of Languages: "rtl"
// for Arabic and Hebrew, else "ltr".
func Dir(lang string) string {
	if lang == "ar" || lang == "he" {
		return "rtl"
	}
	return "ltr"
}

// Text keys.
const (
	TextChat             = "chat"           // "Chat": dialog label when the bot has no title
	TextDialog           = "dialog"         // "Chat with {bot}": the panel's accessible name
	TextLauncherOpen     = "launcher_open"  // launcher button, panel closed
	TextLauncherClose    = "launcher_close" // launcher button, panel open
	TextClose            = "close"
	TextMinimise         = "minimise"
	TextPlaceholder      = "placeholder" // composer placeholder
	TextComposer         = "composer"    // composer's accessible name
	TextSend             = "send"
	TextSending          = "sending"
	TextSent             = "sent"
	TextDelivered        = "delivered"
	TextFailed           = "failed"
	TextRetry            = "retry"
	TextReconnecting     = "reconnecting" // connection banner
	TextConnecting       = "connecting"   // the loader's line while the widget loads
	TextOffline          = "offline"      // connection banner when the browser is offline
	TextTyping           = "typing"       // "{bot} is typing…"
	TextTypingAnon       = "typing_anon"  // when the bot has no title
	TextNewMessages      = "new_messages" // divider above the first unread message
	TextPrevious         = "previous"     // carousel
	TextNext             = "next"
	TextCardOf           = "card_of" // "Card {n} of {total}"
	TextQuickReplies     = "quick_replies"
	TextYou              = "you"       // screen-reader prefix of the visitor's messages
	TextSave             = "save"      // the action that downloads the transcript as text
	TextToday            = "today"     // the day above today's first message
	TextYesterday        = "yesterday" // the day above yesterday's first message
	TextImage            = "image"
	TextOpenFile         = "open_file"
	TextOpenVideo        = "open_video"
	TextOpenAudio        = "open_audio"
	TextVideoUnsupported = "video_unsupported"
	TextAudioUnsupported = "audio_unsupported"
	TextNewTab           = "new_tab" // appended to links' accessible names
	TextUnsupported      = "unsupported"
	TextErrorRateLimited = "error_rate_limited"
	TextErrorTooLarge    = "error_too_large"
	TextErrorBadRequest  = "error_bad_request"
	TextErrorOutboxFull  = "error_outbox_full"
	TextErrorUnavailable = "error_unavailable"
	TextErrorNotStored   = "error_not_stored" // the server could not store it yet and asked for a retry
	TextErrorGeneric     = "error_generic"
	TextPreview          = "preview" // "New message from {bot}": the preview beside the closed launcher
	TextDismiss          = "dismiss" // the preview's close button
)

// The unread badge's accessible text, "{n} unread messages", has one key
// per plural category of CLDR's rules for integers: a language has the
// categories its rule picks (PluralCategory), and "other" always.
const (
	TextUnreadZero  = "unread_zero"  // Arabic: 0
	TextUnreadOne   = "unread_one"   // "{n} unread message"
	TextUnreadTwo   = "unread_two"   // Arabic, Hebrew: 2
	TextUnreadFew   = "unread_few"   // Arabic: 3–10; Polish: 2–4, 22–24, …
	TextUnreadMany  = "unread_many"  // Arabic: 11–99; Polish: 5–21, 25–31, …
	TextUnreadOther = "unread_other" // "{n} unread messages"
)

// TextPlural is no text but the language's plural rule, sent with its
// built-in texts so that the widget has no rules of its own: the
// category letter (z, o, t, f, m, or x for other) of n = 0, 1 and 2, then
// of each n%100 for n ≥ 3, which decides it in every built-in language.
const TextPlural = "plural"

// PickLanguage returns the first of the candidates with built-in texts,
// matched by primary subtag ("nl-BE" and "nl_be" are nl), or "en".
// configured is an explicit choice (Porthole.setLanguage, the init
// option, the bot's locale); pageLang is <html lang>; browserLangs are
// navigator.languages.
func PickLanguage(configured, pageLang string, browserLangs ...string) string {
	if l := supported(configured); l != "" {
		return l
	}
	if l := supported(pageLang); l != "" {
		return l
	}
	for _, b := range browserLangs {
		if l := supported(b); l != "" {
			return l
		}
	}
	return Languages[0]
}

func supported(tag string) string {
	tag = TrimSpace(tag)
	if i := indexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	for _, l := range Languages {
		if len(tag) == 2 && tag[0]|0x20 == l[0] && tag[1]|0x20 == l[1] {
			return l
		}
	}
	return ""
}

// Texts are the UI texts of one language with overrides.
type Texts struct {
	lang      string
	builtin   JSONValue // an object of strings, by key (ParseTexts)
	overrides map[string]string
}

// TextsOf returns the texts of lang, a language of Languages: builtin
// are its built-in texts as the server sends them (ParseTexts), overrides
// are by key, as in Look.Texts.
func TextsOf(lang string, builtin JSONValue, overrides map[string]string) Texts {
	return Texts{lang: lang, builtin: builtin, overrides: overrides}
}

// Lang returns the language code, for the panel's lang attribute.
func (t Texts) Lang() string {
	if t.lang == "" {
		return Languages[0]
	}
	return t.lang
}

// Dir returns the writing direction of the texts, for the dir attribute.
func (t Texts) Dir() string { return Dir(t.Lang()) }

// Get returns the text of key: an override for this language, an
// override for every language, the built-in text, or, when something
// went wrong and the built-in texts are missing, the key itself.
func (t Texts) Get(key string) string {
	v, _ := t.lookup(key)
	return v
}

func (t Texts) lookup(key string) (string, bool) {
	if v, ok := t.overrides[t.Lang()+"."+key]; ok && v != "" {
		return v, true
	}
	if v, ok := t.overrides[key]; ok && v != "" {
		return v, true
	}
	if v, ok := t.builtin.Get(key); ok && v.Kind == JSONString && v.Str != "" {
		return v.Str, true
	}
	return key, false
}

// Format returns the text of key with {name} placeholders filled from
// name, value pairs.
func (t Texts) Format(key string, pairs ...string) string {
	s := t.Get(key)
	for i := 0; i+1 < len(pairs); i += 2 {
		s = replaceAll(s, "{"+pairs[i]+"}", pairs[i+1])
	}
	return s
}

// Unread returns the unread badge's accessible text for n messages, in
// the plural form the language uses for n; a category without a text
// (an override may set only "unread_other") falls back to "other".
func (t Texts) Unread(n int) string {
	key := TextUnreadOther
	i := n
	if i > 2 {
		i = 3 + i%100
	}
	if r, _ := t.builtin.Get(TextPlural); i >= 0 && i < len(r.Str) {
		switch r.Str[i] {
		case 'z':
			key = TextUnreadZero
		case 'o':
			key = TextUnreadOne
		case 't':
			key = TextUnreadTwo
		case 'f':
			key = TextUnreadFew
		case 'm':
			key = TextUnreadMany
		}
	}
	if _, ok := t.lookup(key); !ok {
		key = TextUnreadOther
	}
	return t.Format(key, "n", strconv.Itoa(n))
}

// Typing returns the typing indicator's text for a bot titled bot.
func (t Texts) Typing(bot string) string {
	if TrimSpace(bot) == "" {
		return t.Get(TextTypingAnon)
	}
	return t.Format(TextTyping, "bot", bot)
}

// Dialog returns the panel's accessible name for a bot titled bot.
func (t Texts) Dialog(bot string) string {
	if TrimSpace(bot) == "" {
		return t.Get(TextChat)
	}
	return t.Format(TextDialog, "bot", bot)
}

// CardOf returns "Card n of total", counting from 1.
func (t Texts) CardOf(n, total int) string {
	return t.Format(TextCardOf, "n", strconv.Itoa(n), "total", strconv.Itoa(total))
}

// State returns the label of an entry state.
func (t Texts) State(state string) string {
	switch state {
	case StateSending:
		return t.Get(TextSending)
	case StateSent:
		return t.Get(TextSent)
	case StateDelivered:
		return t.Get(TextDelivered)
	case StateFailed:
		return t.Get(TextFailed)
	}
	return ""
}

// Error returns the text for an error or failure code: a Notice's code
// or a failed entry's Error.
func (t Texts) Error(code string) string {
	switch code {
	case CodeRateLimited:
		return t.Get(TextErrorRateLimited)
	case CodeTooLarge:
		return t.Get(TextErrorTooLarge)
	case CodeBadRequest:
		return t.Get(TextErrorBadRequest)
	case CodeOutboxFull:
		return t.Get(TextErrorOutboxFull)
	case CodeUpstreamUnavailable:
		return t.Get(TextErrorUnavailable)
	case CodeInternal:
		return t.Get(TextErrorNotStored)
	}
	return t.Get(TextErrorGeneric)
}

// ParseTexts reads a language's built-in texts as the server serves
// them (BuiltinJSON): one JSON object of strings, by key. ok is false
// for anything but a non-empty object (an error page, say); a member
// that is no string is never used.
func ParseTexts(data []byte) (texts JSONValue, ok bool) {
	v, err := ParseJSON(data)
	return v, err == nil && v.Kind == JSONObject && len(v.Fields) > 0
}

// replaceAll is strings.ReplaceAll without its generic machinery, which
// costs widget.wasm several kilobytes for the few replacements here.
func replaceAll(s, old, new string) string {
	if old == "" {
		return s
	}
	var b []byte
	for {
		i := index(s, old)
		if i < 0 {
			break
		}
		b = append(b, s[:i]...)
		b = append(b, new...)
		s = s[i+len(old):]
	}
	if b == nil {
		return s
	}
	return string(append(b, s...))
}
