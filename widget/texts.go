package widget

import (
	"strconv"
)

// Built-in UI texts in English, Dutch, French and German. A bot's config
// (widget.texts) and the page's Porthole.init({texts}) override them by
// key: "send" for every language, "nl.send" for Dutch only. Placeholders
// in braces ({bot}, {n}, {total}) are filled in by the methods of Texts.

// Languages with built-in texts; the first is the fallback.
var Languages = [...]string{"en", "nl", "fr", "de"}

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
	TextUnreadOne        = "unread_one"   // "{n} unread message"
	TextUnreadOther      = "unread_other" // "{n} unread messages"
	TextNewMessages      = "new_messages" // divider above the first unread message
	TextPrevious         = "previous"     // carousel
	TextNext             = "next"
	TextCardOf           = "card_of" // "Card {n} of {total}"
	TextQuickReplies     = "quick_replies"
	TextYou              = "you" // screen-reader prefix of the visitor's messages
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
)

// builtinTexts holds each key in Languages order: en, nl, fr, de. An
// array, not a map: it is static data in widget.wasm, where a map
// literal would be code that builds it at start-up.
var builtinTexts = [...]struct {
	key  string
	text [4]string
}{
	{TextChat, [4]string{"Chat", "Chat", "Chat", "Chat"}},
	{TextDialog, [4]string{"Chat with {bot}", "Chat met {bot}", "Discussion avec {bot}", "Chat mit {bot}"}},
	{TextLauncherOpen, [4]string{"Open chat", "Chat openen", "Ouvrir le chat", "Chat öffnen"}},
	{TextLauncherClose, [4]string{"Close chat", "Chat sluiten", "Fermer le chat", "Chat schließen"}},
	{TextClose, [4]string{"Close", "Sluiten", "Fermer", "Schließen"}},
	{TextMinimise, [4]string{"Minimise", "Minimaliseren", "Réduire", "Minimieren"}},
	{TextPlaceholder, [4]string{"Type your message…", "Typ je bericht…", "Écrivez votre message…", "Nachricht schreiben…"}},
	{TextComposer, [4]string{"Message", "Bericht", "Message", "Nachricht"}},
	{TextSend, [4]string{"Send", "Versturen", "Envoyer", "Senden"}},
	{TextSending, [4]string{"Sending…", "Versturen…", "Envoi en cours…", "Wird gesendet…"}},
	{TextSent, [4]string{"Sent", "Verstuurd", "Envoyé", "Gesendet"}},
	{TextDelivered, [4]string{"Delivered", "Afgeleverd", "Distribué", "Zugestellt"}},
	{TextFailed, [4]string{"Not delivered", "Niet afgeleverd", "Non distribué", "Nicht zugestellt"}},
	{TextRetry, [4]string{"Retry", "Opnieuw proberen", "Réessayer", "Erneut versuchen"}},
	{TextReconnecting, [4]string{"Reconnecting…", "Opnieuw verbinden…", "Reconnexion…", "Verbindung wird wiederhergestellt…"}},
	{TextConnecting, [4]string{"Connecting…", "Verbinden…", "Connexion…", "Verbindung wird hergestellt…"}},
	{TextOffline, [4]string{
		"You're offline; we'll send your messages when you're back.",
		"Je bent offline. We versturen je berichten zodra je weer online bent.",
		"Vous êtes hors ligne. Vos messages seront envoyés dès votre retour.",
		"Sie sind offline. Ihre Nachrichten werden gesendet, sobald Sie wieder online sind.",
	}},
	{TextTyping, [4]string{"{bot} is typing…", "{bot} is aan het typen…", "{bot} est en train d’écrire…", "{bot} schreibt…"}},
	{TextTypingAnon, [4]string{"Typing…", "Aan het typen…", "En train d’écrire…", "Schreibt…"}},
	{TextUnreadOne, [4]string{"{n} unread message", "{n} ongelezen bericht", "{n} message non lu", "{n} ungelesene Nachricht"}},
	{TextUnreadOther, [4]string{"{n} unread messages", "{n} ongelezen berichten", "{n} messages non lus", "{n} ungelesene Nachrichten"}},
	{TextNewMessages, [4]string{"New messages", "Nieuwe berichten", "Nouveaux messages", "Neue Nachrichten"}},
	{TextPrevious, [4]string{"Previous", "Vorige", "Précédent", "Zurück"}},
	{TextNext, [4]string{"Next", "Volgende", "Suivant", "Weiter"}},
	{TextCardOf, [4]string{"Card {n} of {total}", "Kaart {n} van {total}", "Carte {n} sur {total}", "Karte {n} von {total}"}},
	{TextQuickReplies, [4]string{"Suggested replies", "Voorgestelde antwoorden", "Réponses suggérées", "Antwortvorschläge"}},
	{TextYou, [4]string{"You", "Jij", "Vous", "Sie"}},
	{TextImage, [4]string{"Image", "Afbeelding", "Image", "Bild"}},
	{TextOpenFile, [4]string{"Open file", "Bestand openen", "Ouvrir le fichier", "Datei öffnen"}},
	{TextOpenVideo, [4]string{"Open video", "Video openen", "Ouvrir la vidéo", "Video öffnen"}},
	{TextOpenAudio, [4]string{"Open audio", "Audio openen", "Ouvrir le fichier audio", "Audio öffnen"}},
	{TextVideoUnsupported, [4]string{
		"Your browser cannot play this video.",
		"Je browser kan deze video niet afspelen.",
		"Votre navigateur ne peut pas lire cette vidéo.",
		"Ihr Browser kann dieses Video nicht abspielen.",
	}},
	{TextAudioUnsupported, [4]string{
		"Your browser cannot play this audio.",
		"Je browser kan dit geluidsfragment niet afspelen.",
		"Votre navigateur ne peut pas lire ce fichier audio.",
		"Ihr Browser kann diese Audiodatei nicht abspielen.",
	}},
	{TextNewTab, [4]string{"(opens in a new tab)", "(opent in een nieuw tabblad)", "(s’ouvre dans un nouvel onglet)", "(öffnet in einem neuen Tab)"}},
	{TextUnsupported, [4]string{
		"This message can't be shown here.",
		"Dit bericht kan hier niet worden weergegeven.",
		"Ce message ne peut pas être affiché ici.",
		"Diese Nachricht kann hier nicht angezeigt werden.",
	}},
	{TextErrorRateLimited, [4]string{
		"You're sending messages too quickly. We'll send this one in a moment.",
		"Je verstuurt berichten te snel. We versturen dit bericht zo meteen.",
		"Vous envoyez des messages trop rapidement. Celui-ci partira dans un instant.",
		"Sie senden zu viele Nachrichten in kurzer Zeit. Diese wird gleich gesendet.",
	}},
	{TextErrorTooLarge, [4]string{
		"This message is too long to send. Please shorten it.",
		"Dit bericht is te lang om te versturen. Maak het wat korter.",
		"Ce message est trop long pour être envoyé. Veuillez le raccourcir.",
		"Diese Nachricht ist zu lang. Bitte kürzen Sie sie.",
	}},
	{TextErrorBadRequest, [4]string{
		"This message couldn't be sent.",
		"Dit bericht kon niet worden verstuurd.",
		"Ce message n’a pas pu être envoyé.",
		"Diese Nachricht konnte nicht gesendet werden.",
	}},
	{TextErrorOutboxFull, [4]string{
		"Too many messages are waiting to be sent. Please wait until you're back online.",
		"Er wachten te veel berichten om verstuurd te worden. Wacht tot je weer online bent.",
		"Trop de messages sont en attente d’envoi. Veuillez attendre le retour de la connexion.",
		"Zu viele Nachrichten warten auf den Versand. Bitte warten Sie, bis Sie wieder online sind.",
	}},
	{TextErrorUnavailable, [4]string{
		"The assistant can't be reached right now. We'll keep trying.",
		"De assistent is nu niet bereikbaar. We blijven het proberen.",
		"L’assistant est momentanément injoignable. Nous continuons d’essayer.",
		"Der Assistent ist gerade nicht erreichbar. Wir versuchen es weiter.",
	}},
	{TextErrorNotStored, [4]string{
		"Not saved yet. We'll keep trying.",
		"Nog niet opgeslagen. We blijven het proberen.",
		"Pas encore enregistré. Nous continuons d’essayer.",
		"Noch nicht gespeichert. Wir versuchen es weiter.",
	}},
	{TextErrorGeneric, [4]string{
		"Something went wrong. Please try again.",
		"Er ging iets mis. Probeer het opnieuw.",
		"Une erreur s’est produite. Veuillez réessayer.",
		"Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.",
	}},
}

func builtin(key string) (*[4]string, bool) {
	for i := range builtinTexts {
		if builtinTexts[i].key == key {
			return &builtinTexts[i].text, true
		}
	}
	return nil, false
}

// TextKeys returns every text key, sorted: the keys a config may override.
func TextKeys() []string {
	keys := make([]string, 0, len(builtinTexts))
	for _, t := range builtinTexts {
		keys = append(keys, t.key)
	}
	sortStrings(keys)
	return keys
}

// IsTextKey reports whether key may be overridden: a text key, or a
// language of Languages, a dot and a text key ("nl.send").
func IsTextKey(key string) bool {
	if lang, k, ok := Cut(key, "."); ok {
		if langIndex(lang) < 0 {
			return false
		}
		key = k
	}
	_, ok := builtin(key)
	return ok
}

func langIndex(lang string) int {
	for i, l := range Languages {
		if l == lang {
			return i
		}
	}
	return -1
}

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
	idx       int
	overrides map[string]string
}

// NewTexts returns the texts of lang (any tag; unsupported means English)
// with overrides by key, as in Look.Texts.
func NewTexts(lang string, overrides map[string]string) Texts {
	l := PickLanguage(lang, "")
	return Texts{lang: l, idx: langIndex(l), overrides: overrides}
}

// Lang returns the language code, for the panel's lang attribute.
func (t Texts) Lang() string {
	if t.lang == "" {
		return Languages[0]
	}
	return t.lang
}

// Get returns the text of key: an override for this language, an
// override for every language, the built-in text, the English one, or
// the key itself.
func (t Texts) Get(key string) string {
	if v, ok := t.overrides[t.Lang()+"."+key]; ok && v != "" {
		return v
	}
	if v, ok := t.overrides[key]; ok && v != "" {
		return v
	}
	if v, ok := builtin(key); ok {
		return v[t.idx]
	}
	return key
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

// Unread returns the unread badge's accessible text for n messages,
// with the language's plural rule.
func (t Texts) Unread(n int) string {
	key := TextUnreadOther
	if pluralOne(t.Lang(), n) {
		key = TextUnreadOne
	}
	return t.Format(key, "n", strconv.Itoa(n))
}

// pluralOne is CLDR's "one" category for integers: n = 1, and in French
// also 0.
func pluralOne(lang string, n int) bool {
	if lang == "fr" {
		return n == 0 || n == 1
	}
	return n == 1
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
		b = append(append(b, s[:i]...), new...)
		s = s[i+len(old):]
	}
	if b == nil {
		return s
	}
	return string(append(b, s...))
}
