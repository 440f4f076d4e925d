package web

import (
	"strconv"
	"strings"

	"github.com/porthole-chat/porthole/widget"
)

// Texts of the no-JavaScript chat page that the widget does not have. A
// bot's widget.texts override them like the widget's ("waiting",
// "nl.waiting"); the page uses the widget's texts for everything else.
const (
	TextConversation = "conversation"  // the transcript's accessible name
	TextCheckReplies = "check_replies" // link that reloads the page
	TextWaiting      = "waiting"       // while a reply is expected
	TextStopRefresh  = "stop_refresh"  // turns the automatic refresh off
	TextEmpty        = "empty_message" // submit without text
	TextExpired      = "expired"       // form token no longer valid
	TextTooFast      = "too_fast"      // rate limited; the text stays in the composer
	TextBusy         = "busy"          // no new conversation now (start limits); the text stays
	TextEarlier      = "earlier"       // older messages are not shown
)

// pageTexts are in widget.Languages order: en, nl, fr, de.
var pageTexts = map[string][4]string{
	TextConversation: {"Conversation", "Gesprek", "Conversation", "Unterhaltung"},
	TextCheckReplies: {"Check for replies", "Nieuwe antwoorden ophalen", "Voir les nouvelles réponses", "Nach Antworten sehen"},
	TextWaiting: {
		"Waiting for a reply. This page refreshes by itself.",
		"Wachten op een antwoord. Deze pagina ververst vanzelf.",
		"En attente d’une réponse. Cette page s’actualise toute seule.",
		"Warten auf eine Antwort. Diese Seite aktualisiert sich von selbst.",
	},
	TextStopRefresh: {"Stop refreshing", "Niet meer verversen", "Arrêter l’actualisation", "Nicht mehr aktualisieren"},
	TextEmpty: {
		"Type a message first.",
		"Typ eerst een bericht.",
		"Écrivez d’abord un message.",
		"Bitte zuerst eine Nachricht eingeben.",
	},
	TextExpired: {
		"This page had expired, so your message was not sent. It is still below: send it again.",
		"Deze pagina was verlopen, dus je bericht is niet verstuurd. Het staat hieronder: verstuur het opnieuw.",
		"Cette page avait expiré : votre message n’a pas été envoyé. Il est encore ci-dessous : renvoyez-le.",
		"Diese Seite war abgelaufen, daher wurde Ihre Nachricht nicht gesendet. Sie steht noch unten: Bitte erneut senden.",
	},
	TextTooFast: {
		"You're sending messages too quickly. Wait a moment, then send this one again.",
		"Je verstuurt berichten te snel. Wacht even en verstuur dit bericht dan opnieuw.",
		"Vous envoyez des messages trop rapidement. Patientez un instant, puis renvoyez celui-ci.",
		"Sie senden zu viele Nachrichten in kurzer Zeit. Warten Sie einen Moment und senden Sie diese dann erneut.",
	},
	TextBusy: {
		"Too many new conversations are starting from your network right now, so your message was not sent. It is still below: wait a minute, then send it again.",
		"Er starten nu te veel nieuwe gesprekken vanaf jouw netwerk, dus je bericht is niet verstuurd. Het staat hieronder: wacht een minuut en verstuur het dan opnieuw.",
		"Trop de nouvelles conversations démarrent depuis votre réseau en ce moment : votre message n’a pas été envoyé. Il est encore ci-dessous : patientez une minute, puis renvoyez-le.",
		"Von Ihrem Netzwerk aus beginnen gerade zu viele neue Unterhaltungen, daher wurde Ihre Nachricht nicht gesendet. Sie steht noch unten: Warten Sie eine Minute und senden Sie sie dann erneut.",
	},
	TextEarlier: {
		"Only the latest {n} messages are shown.",
		"Alleen de laatste {n} berichten worden getoond.",
		"Seuls les {n} derniers messages sont affichés.",
		"Nur die letzten {n} Nachrichten werden angezeigt.",
	},
}

// IsPageTextKey reports whether key names a page text, alone or after a
// language ("nl.waiting"), so that the configuration accepts it.
func IsPageTextKey(key string) bool {
	if lang, k, ok := strings.Cut(key, "."); ok {
		if !isLanguage(lang) {
			return false
		}
		key = k
	}
	_, ok := pageTexts[key]
	return ok
}

// PageTextKeys returns the page's own text keys.
func PageTextKeys() []string {
	keys := make([]string, 0, len(pageTexts))
	for k := range pageTexts {
		keys = append(keys, k)
	}
	return keys
}

func isLanguage(l string) bool {
	for _, x := range widget.Languages {
		if x == l {
			return true
		}
	}
	return false
}

// ChatTexts are the page's texts in one language: the widget's, and the
// page's own.
type ChatTexts struct {
	widget.Texts
	overrides map[string]string
}

// NewChatTexts returns the texts of lang with a bot's overrides.
func NewChatTexts(lang string, overrides map[string]string) ChatTexts {
	return ChatTexts{Texts: widget.NewTexts(lang, overrides), overrides: overrides}
}

// Get returns the text of a page or widget key, with overrides.
func (t ChatTexts) Get(key string) string {
	texts, ok := pageTexts[key]
	if !ok {
		return t.Texts.Get(key)
	}
	if v := t.overrides[t.Lang()+"."+key]; v != "" {
		return v
	}
	if v := t.overrides[key]; v != "" {
		return v
	}
	for i, l := range widget.Languages {
		if l == t.Lang() {
			return texts[i]
		}
	}
	return texts[0]
}

// Earlier says that only the latest n messages are shown.
func (t ChatTexts) Earlier(n int) string {
	return strings.ReplaceAll(t.Get(TextEarlier), "{n}", strconv.Itoa(n))
}

// PickLanguage returns the language of the page: an explicit choice (the
// loader passes the widget's), else the bot's locale, else the best of
// the browser's Accept-Language that has built-in texts, else English.
func PickLanguage(explicit, botLocale, acceptLanguage string) string {
	return widget.PickLanguage(explicit, botLocale, acceptLanguages(acceptLanguage)...)
}

// Language returns the language with built-in texts that tag names
// ("nl-BE" is nl), or "" when there is none.
func Language(tag string) string {
	l := widget.PickLanguage(tag, "")
	if l == widget.Languages[0] && !strings.EqualFold(strings.SplitN(strings.ReplaceAll(tag, "_", "-"), "-", 2)[0], l) {
		return ""
	}
	return l
}

// acceptLanguages returns the tags of an Accept-Language header, most
// wanted first; tags with q=0 are left out, equal weights keep their
// order.
func acceptLanguages(h string) []string {
	type tag struct {
		name string
		q    float64
	}
	var tags []tag
	for part := range strings.SplitSeq(h, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.TrimSpace(name)
		if name == "" || name == "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(p, "=")
			if strings.TrimSpace(k) == "q" {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		if q > 0 {
			tags = append(tags, tag{name, q})
		}
	}
	// A stable insertion sort: headers are short.
	for i := 1; i < len(tags); i++ {
		for j := i; j > 0 && tags[j].q > tags[j-1].q; j-- {
			tags[j], tags[j-1] = tags[j-1], tags[j]
		}
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.name
	}
	return out
}
