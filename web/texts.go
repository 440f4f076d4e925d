package web

import (
	"maps"
	"slices"
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

// pageTexts are the page's own texts, by language of widget.Languages,
// then by key. "earlier" is written for n = MaxEntries: its plural form
// is that number's (a test checks the category).
var pageTexts = map[string]map[string]string{
	"en": {
		TextConversation: "Conversation",
		TextCheckReplies: "Check for replies",
		TextWaiting:      "Waiting for a reply. This page refreshes by itself.",
		TextStopRefresh:  "Stop refreshing",
		TextEmpty:        "Type a message first.",
		TextExpired:      "This page had expired, so your message was not sent. It is still below: send it again.",
		TextTooFast:      "You're sending messages too quickly. Wait a moment, then send this one again.",
		TextBusy:         "Too many new conversations are starting from your network right now, so your message was not sent. It is still below: wait a minute, then send it again.",
		TextEarlier:      "Only the latest {n} messages are shown.",
	},
	"nl": {
		TextConversation: "Gesprek",
		TextCheckReplies: "Nieuwe antwoorden ophalen",
		TextWaiting:      "Wachten op een antwoord. Deze pagina ververst vanzelf.",
		TextStopRefresh:  "Niet meer verversen",
		TextEmpty:        "Typ eerst een bericht.",
		TextExpired:      "Deze pagina was verlopen, dus je bericht is niet verstuurd. Het staat hieronder: verstuur het opnieuw.",
		TextTooFast:      "Je verstuurt berichten te snel. Wacht even en verstuur dit bericht dan opnieuw.",
		TextBusy:         "Er starten nu te veel nieuwe gesprekken vanaf jouw netwerk, dus je bericht is niet verstuurd. Het staat hieronder: wacht een minuut en verstuur het dan opnieuw.",
		TextEarlier:      "Alleen de laatste {n} berichten worden getoond.",
	},
	"fr": {
		TextConversation: "Conversation",
		TextCheckReplies: "Voir les nouvelles réponses",
		TextWaiting:      "En attente d’une réponse. Cette page s’actualise toute seule.",
		TextStopRefresh:  "Arrêter l’actualisation",
		TextEmpty:        "Écrivez d’abord un message.",
		TextExpired:      "Cette page avait expiré : votre message n’a pas été envoyé. Il est encore ci-dessous : renvoyez-le.",
		TextTooFast:      "Vous envoyez des messages trop rapidement. Patientez un instant, puis renvoyez celui-ci.",
		TextBusy:         "Trop de nouvelles conversations démarrent depuis votre réseau en ce moment : votre message n’a pas été envoyé. Il est encore ci-dessous : patientez une minute, puis renvoyez-le.",
		TextEarlier:      "Seuls les {n} derniers messages sont affichés.",
	},
	"de": {
		TextConversation: "Unterhaltung",
		TextCheckReplies: "Nach Antworten sehen",
		TextWaiting:      "Warten auf eine Antwort. Diese Seite aktualisiert sich von selbst.",
		TextStopRefresh:  "Nicht mehr aktualisieren",
		TextEmpty:        "Bitte zuerst eine Nachricht eingeben.",
		TextExpired:      "Diese Seite war abgelaufen, daher wurde Ihre Nachricht nicht gesendet. Sie steht noch unten: Bitte erneut senden.",
		TextTooFast:      "Sie senden zu viele Nachrichten in kurzer Zeit. Warten Sie einen Moment und senden Sie diese dann erneut.",
		TextBusy:         "Von Ihrem Netzwerk aus beginnen gerade zu viele neue Unterhaltungen, daher wurde Ihre Nachricht nicht gesendet. Sie steht noch unten: Warten Sie eine Minute und senden Sie sie dann erneut.",
		TextEarlier:      "Nur die letzten {n} Nachrichten werden angezeigt.",
	},
	"es": {
		TextConversation: "Conversación",
		TextCheckReplies: "Ver si hay respuestas",
		TextWaiting:      "Esperando una respuesta. Esta página se actualiza sola.",
		TextStopRefresh:  "Dejar de actualizar",
		TextEmpty:        "Escribe primero un mensaje.",
		TextExpired:      "Esta página había caducado, así que tu mensaje no se ha enviado. Sigue abajo: vuelve a enviarlo.",
		TextTooFast:      "Estás enviando mensajes demasiado rápido. Espera un momento y vuelve a enviar este.",
		TextBusy:         "Ahora mismo se están iniciando demasiadas conversaciones nuevas desde tu red, así que tu mensaje no se ha enviado. Sigue abajo: espera un minuto y vuelve a enviarlo.",
		TextEarlier:      "Solo se muestran los últimos {n} mensajes.",
	},
	"it": {
		TextConversation: "Conversazione",
		TextCheckReplies: "Controlla le risposte",
		TextWaiting:      "In attesa di una risposta. Questa pagina si aggiorna da sola.",
		TextStopRefresh:  "Interrompi l’aggiornamento",
		TextEmpty:        "Scrivi prima un messaggio.",
		TextExpired:      "Questa pagina era scaduta, quindi il tuo messaggio non è stato inviato. È ancora qui sotto: invialo di nuovo.",
		TextTooFast:      "Stai inviando messaggi troppo in fretta. Attendi un momento, poi invia di nuovo questo.",
		TextBusy:         "In questo momento dalla tua rete stanno iniziando troppe nuove conversazioni, quindi il tuo messaggio non è stato inviato. È ancora qui sotto: attendi un minuto, poi invialo di nuovo.",
		TextEarlier:      "Vengono mostrati solo gli ultimi {n} messaggi.",
	},
	"pt": {
		TextConversation: "Conversa",
		TextCheckReplies: "Ver se há respostas",
		TextWaiting:      "Aguardando uma resposta. Esta página se atualiza sozinha.",
		TextStopRefresh:  "Parar de atualizar",
		TextEmpty:        "Escreva uma mensagem primeiro.",
		TextExpired:      "Esta página tinha expirado, por isso a sua mensagem não foi enviada. Ela ainda está abaixo: envie-a novamente.",
		TextTooFast:      "Você está enviando mensagens rápido demais. Aguarde um momento e envie esta novamente.",
		TextBusy:         "Muitas conversas novas estão começando na sua rede agora, por isso a sua mensagem não foi enviada. Ela ainda está abaixo: aguarde um minuto e envie-a novamente.",
		TextEarlier:      "Somente as últimas {n} mensagens são exibidas.",
	},
	"pl": {
		TextConversation: "Rozmowa",
		TextCheckReplies: "Sprawdź odpowiedzi",
		TextWaiting:      "Czekamy na odpowiedź. Ta strona odświeża się sama.",
		TextStopRefresh:  "Zatrzymaj odświeżanie",
		TextEmpty:        "Najpierw wpisz wiadomość.",
		TextExpired:      "Ta strona wygasła, więc Twoja wiadomość nie została wysłana. Nadal jest poniżej: wyślij ją ponownie.",
		TextTooFast:      "Wysyłasz wiadomości zbyt szybko. Poczekaj chwilę, a potem wyślij tę ponownie.",
		TextBusy:         "Z Twojej sieci rozpoczyna się teraz zbyt wiele nowych rozmów, więc Twoja wiadomość nie została wysłana. Nadal jest poniżej: poczekaj minutę, a potem wyślij ją ponownie.",
		TextEarlier:      "Pokazano tylko {n} ostatnich wiadomości.",
	},
	"sv": {
		TextConversation: "Konversation",
		TextCheckReplies: "Se efter svar",
		TextWaiting:      "Väntar på svar. Sidan uppdateras av sig själv.",
		TextStopRefresh:  "Sluta uppdatera",
		TextEmpty:        "Skriv ett meddelande först.",
		TextExpired:      "Sidan hade gått ut, så ditt meddelande skickades inte. Det finns kvar nedan: skicka det igen.",
		TextTooFast:      "Du skickar meddelanden för snabbt. Vänta en stund och skicka sedan det här igen.",
		TextBusy:         "Just nu startar för många nya konversationer från ditt nätverk, så ditt meddelande skickades inte. Det finns kvar nedan: vänta en minut och skicka det sedan igen.",
		TextEarlier:      "Bara de senaste {n} meddelandena visas.",
	},
	"da": {
		TextConversation: "Samtale",
		TextCheckReplies: "Se efter svar",
		TextWaiting:      "Venter på svar. Siden opdaterer sig selv.",
		TextStopRefresh:  "Stop opdateringen",
		TextEmpty:        "Skriv først en besked.",
		TextExpired:      "Siden var udløbet, så din besked blev ikke sendt. Den står stadig nedenfor: send den igen.",
		TextTooFast:      "Du sender beskeder for hurtigt. Vent et øjeblik, og send så denne igen.",
		TextBusy:         "Der startes lige nu for mange nye samtaler fra dit netværk, så din besked blev ikke sendt. Den står stadig nedenfor: vent et minut, og send den så igen.",
		TextEarlier:      "Kun de seneste {n} beskeder vises.",
	},
	"tr": {
		TextConversation: "Konuşma",
		TextCheckReplies: "Yanıtları kontrol et",
		TextWaiting:      "Yanıt bekleniyor. Bu sayfa kendiliğinden yenilenir.",
		TextStopRefresh:  "Yenilemeyi durdur",
		TextEmpty:        "Önce bir mesaj yazın.",
		TextExpired:      "Bu sayfanın süresi dolmuştu, bu yüzden mesajınız gönderilmedi. Mesajınız hâlâ aşağıda: yeniden gönderin.",
		TextTooFast:      "Çok hızlı mesaj gönderiyorsunuz. Biraz bekleyin, sonra bu mesajı yeniden gönderin.",
		TextBusy:         "Şu anda ağınızdan çok fazla yeni konuşma başlatılıyor, bu yüzden mesajınız gönderilmedi. Mesajınız hâlâ aşağıda: bir dakika bekleyin, sonra yeniden gönderin.",
		TextEarlier:      "Yalnızca son {n} mesaj gösteriliyor.",
	},
	"ar": {
		TextConversation: "المحادثة",
		TextCheckReplies: "التحقق من الردود",
		TextWaiting:      "في انتظار الرد. تُحدَّث هذه الصفحة تلقائيًا.",
		TextStopRefresh:  "إيقاف التحديث",
		TextEmpty:        "اكتب رسالة أولًا.",
		TextExpired:      "انتهت صلاحية هذه الصفحة، لذلك لم تُرسل رسالتك. لا تزال أدناه: أرسلها مرة أخرى.",
		TextTooFast:      "أنت ترسل الرسائل بسرعة كبيرة. انتظر لحظة، ثم أرسل هذه الرسالة مرة أخرى.",
		TextBusy:         "تبدأ الآن محادثات جديدة كثيرة جدًا من شبكتك، لذلك لم تُرسل رسالتك. لا تزال أدناه: انتظر دقيقة، ثم أرسلها مرة أخرى.",
		TextEarlier:      "تُعرض آخر {n} رسالة فقط.",
	},
	"he": {
		TextConversation: "שיחה",
		TextCheckReplies: "בדיקת תשובות",
		TextWaiting:      "ממתינים לתשובה. הדף מתרענן מעצמו.",
		TextStopRefresh:  "הפסקת הרענון",
		TextEmpty:        "יש להקליד הודעה קודם.",
		TextExpired:      "תוקף הדף פג, ולכן ההודעה שלך לא נשלחה. היא עדיין למטה: אפשר לשלוח אותה שוב.",
		TextTooFast:      "ההודעות נשלחות מהר מדי. יש להמתין רגע ואז לשלוח את ההודעה הזו שוב.",
		TextBusy:         "יותר מדי שיחות חדשות מתחילות כרגע מהרשת שלך, ולכן ההודעה שלך לא נשלחה. היא עדיין למטה: יש להמתין דקה ואז לשלוח אותה שוב.",
		TextEarlier:      "מוצגות רק {n} ההודעות האחרונות.",
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
	_, ok := pageTexts["en"][key]
	return ok
}

// PageTextKeys returns the page's own text keys, sorted.
func PageTextKeys() []string {
	return slices.Sorted(maps.Keys(pageTexts["en"]))
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
	text, ok := pageTexts[t.Lang()][key]
	if !ok {
		if text, ok = pageTexts["en"][key]; !ok {
			return t.Texts.Get(key)
		}
	}
	if v := t.overrides[t.Lang()+"."+key]; v != "" {
		return v
	}
	if v := t.overrides[key]; v != "" {
		return v
	}
	return text
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
