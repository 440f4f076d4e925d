package widget

// The built-in texts of every language. They are not part of
// widget.wasm: the browser program calls nothing in this file, so the
// linker leaves it out (TestWasmHasNoBuiltinTexts in package web checks
// the built wasm), and fetches its language from the server instead, as
// a static asset that web/build writes with BuiltinJSON. The server uses
// them for the eager stylesheet's frame texts (FrameStyle) and the chat
// pages.
//
// To add a language: a block below with every key of English (a test
// checks that each language has every key, the same placeholders, and
// exactly the plural categories its rule uses), its code in Languages,
// its rule in PluralCategory if it is not English's, and its direction
// in Dir; web/texts.go has the chat pages' own texts.

// textPair is one text of a language.
type textPair struct{ key, text string }

// builtinTexts are the texts of each language, in Languages order.
var builtinTexts = [...]struct {
	lang  string
	texts []textPair
}{
	{"en", textsEN}, {"nl", textsNL}, {"fr", textsFR}, {"de", textsDE}, {"es", textsES}, {"it", textsIT},
	{"pt", textsPT}, {"pl", textsPL}, {"sv", textsSV}, {"da", textsDA}, {"tr", textsTR}, {"ar", textsAR},
	{"he", textsHE},
}

// Builtin returns the built-in texts of lang, a language of Languages,
// by key, with its plural rule (TextPlural); nil for another language.
func Builtin(lang string) map[string]string {
	v, ok := ParseTexts(BuiltinJSON(lang))
	if !ok {
		return nil
	}
	m := make(map[string]string, len(v.Fields))
	for _, f := range v.Fields {
		m[f.Key] = f.Value.Str
	}
	return m
}

// BuiltinJSON returns the built-in texts of lang as the server serves
// them to the widget (ParseTexts reads them): one JSON object, by key,
// in a fixed order, with the plural rule (TextPlural) last; nil for a
// language not in Languages.
func BuiltinJSON(lang string) []byte {
	for _, l := range builtinTexts {
		if l.lang != lang {
			continue
		}
		w := jsonWriter{b: make([]byte, 0, 4096)}
		w.open()
		for _, p := range l.texts {
			w.str(p.key, p.text, false)
		}
		w.str(TextPlural, pluralRule(lang), false)
		w.close()
		return w.b
	}
	return nil
}

// NewTexts returns the built-in texts of lang (any tag; unsupported
// means English) with overrides by key, as in Look.Texts.
func NewTexts(lang string, overrides map[string]string) Texts {
	l := PickLanguage(lang, "")
	builtin, _ := ParseTexts(BuiltinJSON(l))
	return TextsOf(l, builtin, overrides)
}

// TextKeys returns every text key, sorted: the keys a config may
// override. The plural keys of the unread count are all there, whichever
// languages use them.
func TextKeys() []string {
	seen := map[string]bool{}
	var keys []string
	for _, l := range builtinTexts {
		for _, p := range l.texts {
			if !seen[p.key] {
				seen[p.key] = true
				keys = append(keys, p.key)
			}
		}
	}
	sortStrings(keys)
	return keys
}

// IsTextKey reports whether key may be overridden: a text key, or a
// language of Languages, a dot and a text key ("nl.send").
func IsTextKey(key string) bool {
	if lang, k, ok := Cut(key, "."); ok {
		if lang == "" || supported(lang) != lang {
			return false
		}
		key = k
	}
	for _, k := range TextKeys() {
		if k == key {
			return true
		}
	}
	return false
}

// PluralCategory returns CLDR's plural category ("zero", "one", "two",
// "few", "many" or "other") of the whole number n in lang, for the
// languages of Languages. Categories that only large round numbers reach
// (Spanish, Italian, French and Portuguese "many", for a million) are
// left out: a count of unread messages never gets there.
func PluralCategory(lang string, n int) string {
	if n < 0 {
		n = -n
	}
	switch lang {
	case "fr", "pt":
		if n <= 1 {
			return "one"
		}
	case "ar":
		switch m := n % 100; {
		case n == 0:
			return "zero"
		case n == 1:
			return "one"
		case n == 2:
			return "two"
		case m >= 3 && m <= 10:
			return "few"
		case m >= 11:
			return "many"
		}
	case "he":
		switch n {
		case 1:
			return "one"
		case 2:
			return "two"
		}
	case "pl":
		if n == 1 {
			return "one"
		}
		if m := n % 10; m >= 2 && m <= 4 && (n%100 < 12 || n%100 > 14) {
			return "few"
		}
		return "many"
	default:
		if n == 1 {
			return "one"
		}
	}
	return "other"
}

// pluralRule returns TextPlural of lang: PluralCategory's letters for 0,
// 1 and 2, then for 100 to 199 (n%100 for n ≥ 3).
func pluralRule(lang string) string {
	b := make([]byte, 0, 103)
	for _, n := range [...]int{0, 1, 2} {
		b = append(b, pluralLetter(PluralCategory(lang, n)))
	}
	for n := 100; n < 200; n++ {
		b = append(b, pluralLetter(PluralCategory(lang, n)))
	}
	return string(b)
}

func pluralLetter(category string) byte {
	if category == "other" {
		return 'x'
	}
	return category[0]
}

var textsEN = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Chat with {bot}"},
	{TextLauncherOpen, "Open chat"},
	{TextLauncherClose, "Close chat"},
	{TextClose, "Close"},
	{TextMinimise, "Minimise"},
	{TextPlaceholder, "Type your message…"},
	{TextComposer, "Message"},
	{TextSend, "Send"},
	{TextSending, "Sending…"},
	{TextSent, "Sent"},
	{TextDelivered, "Delivered"},
	{TextFailed, "Not delivered"},
	{TextRetry, "Retry"},
	{TextReconnecting, "Reconnecting…"},
	{TextConnecting, "Connecting…"},
	{TextOffline, "You're offline; we'll send your messages when you're back."},
	{TextTyping, "{bot} is typing…"},
	{TextTypingAnon, "Typing…"},
	{TextUnreadOne, "{n} unread message"},
	{TextUnreadOther, "{n} unread messages"},
	{TextNewMessages, "New messages"},
	{TextPrevious, "Previous"},
	{TextNext, "Next"},
	{TextCardOf, "Card {n} of {total}"},
	{TextQuickReplies, "Suggested replies"},
	{TextYou, "You"},
	{TextSave, "Save conversation"},
	{TextToday, "Today"},
	{TextYesterday, "Yesterday"},
	{TextImage, "Image"},
	{TextOpenFile, "Open file"},
	{TextOpenVideo, "Open video"},
	{TextOpenAudio, "Open audio"},
	{TextVideoUnsupported, "Your browser cannot play this video."},
	{TextAudioUnsupported, "Your browser cannot play this audio."},
	{TextNewTab, "(opens in a new tab)"},
	{TextUnsupported, "This message can't be shown here."},
	{TextErrorRateLimited, "You're sending messages too quickly. We'll send this one in a moment."},
	{TextErrorTooLarge, "This message is too long to send. Please shorten it."},
	{TextErrorBadRequest, "This message couldn't be sent."},
	{TextErrorOutboxFull, "Too many messages are waiting to be sent. Please wait until you're back online."},
	{TextErrorUnavailable, "The assistant can't be reached right now. We'll keep trying."},
	{TextErrorNotStored, "Not saved yet. We'll keep trying."},
	{TextErrorGeneric, "Something went wrong. Please try again."},
	{TextPreview, "New message from {bot}"},
	{TextDismiss, "Dismiss"},
}

var textsNL = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Chat met {bot}"},
	{TextLauncherOpen, "Chat openen"},
	{TextLauncherClose, "Chat sluiten"},
	{TextClose, "Sluiten"},
	{TextMinimise, "Minimaliseren"},
	{TextPlaceholder, "Typ je bericht…"},
	{TextComposer, "Bericht"},
	{TextSend, "Versturen"},
	{TextSending, "Versturen…"},
	{TextSent, "Verstuurd"},
	{TextDelivered, "Afgeleverd"},
	{TextFailed, "Niet afgeleverd"},
	{TextRetry, "Opnieuw proberen"},
	{TextReconnecting, "Opnieuw verbinden…"},
	{TextConnecting, "Verbinden…"},
	{TextOffline, "Je bent offline. We versturen je berichten zodra je weer online bent."},
	{TextTyping, "{bot} is aan het typen…"},
	{TextTypingAnon, "Aan het typen…"},
	{TextUnreadOne, "{n} ongelezen bericht"},
	{TextUnreadOther, "{n} ongelezen berichten"},
	{TextNewMessages, "Nieuwe berichten"},
	{TextPrevious, "Vorige"},
	{TextNext, "Volgende"},
	{TextCardOf, "Kaart {n} van {total}"},
	{TextQuickReplies, "Voorgestelde antwoorden"},
	{TextYou, "Jij"},
	{TextSave, "Gesprek opslaan"},
	{TextToday, "Vandaag"},
	{TextYesterday, "Gisteren"},
	{TextImage, "Afbeelding"},
	{TextOpenFile, "Bestand openen"},
	{TextOpenVideo, "Video openen"},
	{TextOpenAudio, "Audio openen"},
	{TextVideoUnsupported, "Je browser kan deze video niet afspelen."},
	{TextAudioUnsupported, "Je browser kan dit geluidsfragment niet afspelen."},
	{TextNewTab, "(opent in een nieuw tabblad)"},
	{TextUnsupported, "Dit bericht kan hier niet worden weergegeven."},
	{TextErrorRateLimited, "Je verstuurt berichten te snel. We versturen dit bericht zo meteen."},
	{TextErrorTooLarge, "Dit bericht is te lang om te versturen. Maak het wat korter."},
	{TextErrorBadRequest, "Dit bericht kon niet worden verstuurd."},
	{TextErrorOutboxFull, "Er wachten te veel berichten om verstuurd te worden. Wacht tot je weer online bent."},
	{TextErrorUnavailable, "De assistent is nu niet bereikbaar. We blijven het proberen."},
	{TextErrorNotStored, "Nog niet opgeslagen. We blijven het proberen."},
	{TextErrorGeneric, "Er ging iets mis. Probeer het opnieuw."},
	{TextPreview, "Nieuw bericht van {bot}"},
	{TextDismiss, "Verbergen"},
}

var textsFR = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Discussion avec {bot}"},
	{TextLauncherOpen, "Ouvrir le chat"},
	{TextLauncherClose, "Fermer le chat"},
	{TextClose, "Fermer"},
	{TextMinimise, "Réduire"},
	{TextPlaceholder, "Écrivez votre message…"},
	{TextComposer, "Message"},
	{TextSend, "Envoyer"},
	{TextSending, "Envoi en cours…"},
	{TextSent, "Envoyé"},
	{TextDelivered, "Distribué"},
	{TextFailed, "Non distribué"},
	{TextRetry, "Réessayer"},
	{TextReconnecting, "Reconnexion…"},
	{TextConnecting, "Connexion…"},
	{TextOffline, "Vous êtes hors ligne. Vos messages seront envoyés dès votre retour."},
	{TextTyping, "{bot} est en train d’écrire…"},
	{TextTypingAnon, "En train d’écrire…"},
	{TextUnreadOne, "{n} message non lu"},
	{TextUnreadOther, "{n} messages non lus"},
	{TextNewMessages, "Nouveaux messages"},
	{TextPrevious, "Précédent"},
	{TextNext, "Suivant"},
	{TextCardOf, "Carte {n} sur {total}"},
	{TextQuickReplies, "Réponses suggérées"},
	{TextYou, "Vous"},
	{TextSave, "Enregistrer la conversation"},
	{TextToday, "Aujourd’hui"},
	{TextYesterday, "Hier"},
	{TextImage, "Image"},
	{TextOpenFile, "Ouvrir le fichier"},
	{TextOpenVideo, "Ouvrir la vidéo"},
	{TextOpenAudio, "Ouvrir le fichier audio"},
	{TextVideoUnsupported, "Votre navigateur ne peut pas lire cette vidéo."},
	{TextAudioUnsupported, "Votre navigateur ne peut pas lire ce fichier audio."},
	{TextNewTab, "(s’ouvre dans un nouvel onglet)"},
	{TextUnsupported, "Ce message ne peut pas être affiché ici."},
	{TextErrorRateLimited, "Vous envoyez des messages trop rapidement. Celui-ci partira dans un instant."},
	{TextErrorTooLarge, "Ce message est trop long pour être envoyé. Veuillez le raccourcir."},
	{TextErrorBadRequest, "Ce message n’a pas pu être envoyé."},
	{TextErrorOutboxFull, "Trop de messages sont en attente d’envoi. Veuillez attendre le retour de la connexion."},
	{TextErrorUnavailable, "L’assistant est momentanément injoignable. Nous continuons d’essayer."},
	{TextErrorNotStored, "Pas encore enregistré. Nous continuons d’essayer."},
	{TextErrorGeneric, "Une erreur s’est produite. Veuillez réessayer."},
	{TextPreview, "Nouveau message de {bot}"},
	{TextDismiss, "Masquer"},
}

var textsDE = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Chat mit {bot}"},
	{TextLauncherOpen, "Chat öffnen"},
	{TextLauncherClose, "Chat schließen"},
	{TextClose, "Schließen"},
	{TextMinimise, "Minimieren"},
	{TextPlaceholder, "Nachricht schreiben…"},
	{TextComposer, "Nachricht"},
	{TextSend, "Senden"},
	{TextSending, "Wird gesendet…"},
	{TextSent, "Gesendet"},
	{TextDelivered, "Zugestellt"},
	{TextFailed, "Nicht zugestellt"},
	{TextRetry, "Erneut versuchen"},
	{TextReconnecting, "Verbindung wird wiederhergestellt…"},
	{TextConnecting, "Verbindung wird hergestellt…"},
	{TextOffline, "Sie sind offline. Ihre Nachrichten werden gesendet, sobald Sie wieder online sind."},
	{TextTyping, "{bot} schreibt…"},
	{TextTypingAnon, "Schreibt…"},
	{TextUnreadOne, "{n} ungelesene Nachricht"},
	{TextUnreadOther, "{n} ungelesene Nachrichten"},
	{TextNewMessages, "Neue Nachrichten"},
	{TextPrevious, "Zurück"},
	{TextNext, "Weiter"},
	{TextCardOf, "Karte {n} von {total}"},
	{TextQuickReplies, "Antwortvorschläge"},
	{TextYou, "Sie"},
	{TextSave, "Unterhaltung speichern"},
	{TextToday, "Heute"},
	{TextYesterday, "Gestern"},
	{TextImage, "Bild"},
	{TextOpenFile, "Datei öffnen"},
	{TextOpenVideo, "Video öffnen"},
	{TextOpenAudio, "Audio öffnen"},
	{TextVideoUnsupported, "Ihr Browser kann dieses Video nicht abspielen."},
	{TextAudioUnsupported, "Ihr Browser kann diese Audiodatei nicht abspielen."},
	{TextNewTab, "(öffnet in einem neuen Tab)"},
	{TextUnsupported, "Diese Nachricht kann hier nicht angezeigt werden."},
	{TextErrorRateLimited, "Sie senden zu viele Nachrichten in kurzer Zeit. Diese wird gleich gesendet."},
	{TextErrorTooLarge, "Diese Nachricht ist zu lang. Bitte kürzen Sie sie."},
	{TextErrorBadRequest, "Diese Nachricht konnte nicht gesendet werden."},
	{TextErrorOutboxFull, "Zu viele Nachrichten warten auf den Versand. Bitte warten Sie, bis Sie wieder online sind."},
	{TextErrorUnavailable, "Der Assistent ist gerade nicht erreichbar. Wir versuchen es weiter."},
	{TextErrorNotStored, "Noch nicht gespeichert. Wir versuchen es weiter."},
	{TextErrorGeneric, "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut."},
	{TextPreview, "Neue Nachricht von {bot}"},
	{TextDismiss, "Ausblenden"},
}

var textsES = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Chat con {bot}"},
	{TextLauncherOpen, "Abrir el chat"},
	{TextLauncherClose, "Cerrar el chat"},
	{TextClose, "Cerrar"},
	{TextMinimise, "Minimizar"},
	{TextPlaceholder, "Escribe tu mensaje…"},
	{TextComposer, "Mensaje"},
	{TextSend, "Enviar"},
	{TextSending, "Enviando…"},
	{TextSent, "Enviado"},
	{TextDelivered, "Entregado"},
	{TextFailed, "No entregado"},
	{TextRetry, "Reintentar"},
	{TextReconnecting, "Reconectando…"},
	{TextConnecting, "Conectando…"},
	{TextOffline, "No tienes conexión. Enviaremos tus mensajes cuando vuelvas a estar en línea."},
	{TextTyping, "{bot} está escribiendo…"},
	{TextTypingAnon, "Escribiendo…"},
	{TextUnreadOne, "{n} mensaje no leído"},
	{TextUnreadOther, "{n} mensajes no leídos"},
	{TextNewMessages, "Mensajes nuevos"},
	{TextPrevious, "Anterior"},
	{TextNext, "Siguiente"},
	{TextCardOf, "Tarjeta {n} de {total}"},
	{TextQuickReplies, "Respuestas sugeridas"},
	{TextYou, "Tú"},
	{TextSave, "Guardar conversación"},
	{TextToday, "Hoy"},
	{TextYesterday, "Ayer"},
	{TextImage, "Imagen"},
	{TextOpenFile, "Abrir el archivo"},
	{TextOpenVideo, "Abrir el vídeo"},
	{TextOpenAudio, "Abrir el audio"},
	{TextVideoUnsupported, "Tu navegador no puede reproducir este vídeo."},
	{TextAudioUnsupported, "Tu navegador no puede reproducir este audio."},
	{TextNewTab, "(se abre en una pestaña nueva)"},
	{TextUnsupported, "Este mensaje no se puede mostrar aquí."},
	{TextErrorRateLimited, "Estás enviando mensajes demasiado rápido. Enviaremos este en un momento."},
	{TextErrorTooLarge, "Este mensaje es demasiado largo para enviarlo. Acórtalo, por favor."},
	{TextErrorBadRequest, "No se ha podido enviar este mensaje."},
	{TextErrorOutboxFull, "Hay demasiados mensajes esperando a enviarse. Espera a volver a estar en línea."},
	{TextErrorUnavailable, "Ahora mismo no se puede contactar con el asistente. Seguiremos intentándolo."},
	{TextErrorNotStored, "Aún no se ha guardado. Seguiremos intentándolo."},
	{TextErrorGeneric, "Algo ha salido mal. Inténtalo de nuevo."},
	{TextPreview, "Nuevo mensaje de {bot}"},
	{TextDismiss, "Ocultar"},
}

var textsIT = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Chat con {bot}"},
	{TextLauncherOpen, "Apri la chat"},
	{TextLauncherClose, "Chiudi la chat"},
	{TextClose, "Chiudi"},
	{TextMinimise, "Riduci a icona"},
	{TextPlaceholder, "Scrivi il tuo messaggio…"},
	{TextComposer, "Messaggio"},
	{TextSend, "Invia"},
	{TextSending, "Invio in corso…"},
	{TextSent, "Inviato"},
	{TextDelivered, "Consegnato"},
	{TextFailed, "Non consegnato"},
	{TextRetry, "Riprova"},
	{TextReconnecting, "Riconnessione in corso…"},
	{TextConnecting, "Connessione in corso…"},
	{TextOffline, "Sei offline. Invieremo i tuoi messaggi appena sarai di nuovo online."},
	{TextTyping, "{bot} sta scrivendo…"},
	{TextTypingAnon, "Sta scrivendo…"},
	{TextUnreadOne, "{n} messaggio non letto"},
	{TextUnreadOther, "{n} messaggi non letti"},
	{TextNewMessages, "Nuovi messaggi"},
	{TextPrevious, "Precedente"},
	{TextNext, "Successivo"},
	{TextCardOf, "Scheda {n} di {total}"},
	{TextQuickReplies, "Risposte suggerite"},
	{TextYou, "Tu"},
	{TextSave, "Salva conversazione"},
	{TextToday, "Oggi"},
	{TextYesterday, "Ieri"},
	{TextImage, "Immagine"},
	{TextOpenFile, "Apri il file"},
	{TextOpenVideo, "Apri il video"},
	{TextOpenAudio, "Apri l’audio"},
	{TextVideoUnsupported, "Il tuo browser non può riprodurre questo video."},
	{TextAudioUnsupported, "Il tuo browser non può riprodurre questo audio."},
	{TextNewTab, "(si apre in una nuova scheda)"},
	{TextUnsupported, "Questo messaggio non può essere visualizzato qui."},
	{TextErrorRateLimited, "Stai inviando messaggi troppo in fretta. Invieremo questo tra un momento."},
	{TextErrorTooLarge, "Questo messaggio è troppo lungo per essere inviato. Accorcialo, per favore."},
	{TextErrorBadRequest, "Non è stato possibile inviare questo messaggio."},
	{TextErrorOutboxFull, "Troppi messaggi sono in attesa di invio. Attendi di essere di nuovo online."},
	{TextErrorUnavailable, "L’assistente non è raggiungibile al momento. Continueremo a provare."},
	{TextErrorNotStored, "Non ancora salvato. Continueremo a provare."},
	{TextErrorGeneric, "Si è verificato un errore. Riprova."},
	{TextPreview, "Nuovo messaggio da {bot}"},
	{TextDismiss, "Nascondi"},
}

// Portuguese as written in Brazil, where most speakers are.
var textsPT = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Chat com {bot}"},
	{TextLauncherOpen, "Abrir o chat"},
	{TextLauncherClose, "Fechar o chat"},
	{TextClose, "Fechar"},
	{TextMinimise, "Minimizar"},
	{TextPlaceholder, "Escreva a sua mensagem…"},
	{TextComposer, "Mensagem"},
	{TextSend, "Enviar"},
	{TextSending, "Enviando…"},
	{TextSent, "Enviada"},
	{TextDelivered, "Entregue"},
	{TextFailed, "Não entregue"},
	{TextRetry, "Tentar novamente"},
	{TextReconnecting, "Reconectando…"},
	{TextConnecting, "Conectando…"},
	{TextOffline, "Você está sem conexão. Enviaremos as suas mensagens quando a conexão voltar."},
	{TextTyping, "{bot} está digitando…"},
	{TextTypingAnon, "Digitando…"},
	{TextUnreadOne, "{n} mensagem não lida"},
	{TextUnreadOther, "{n} mensagens não lidas"},
	{TextNewMessages, "Novas mensagens"},
	{TextPrevious, "Anterior"},
	{TextNext, "Próximo"},
	{TextCardOf, "Cartão {n} de {total}"},
	{TextQuickReplies, "Respostas sugeridas"},
	{TextYou, "Você"},
	{TextSave, "Salvar conversa"},
	{TextToday, "Hoje"},
	{TextYesterday, "Ontem"},
	{TextImage, "Imagem"},
	{TextOpenFile, "Abrir o arquivo"},
	{TextOpenVideo, "Abrir o vídeo"},
	{TextOpenAudio, "Abrir o áudio"},
	{TextVideoUnsupported, "O seu navegador não consegue reproduzir este vídeo."},
	{TextAudioUnsupported, "O seu navegador não consegue reproduzir este áudio."},
	{TextNewTab, "(abre em uma nova aba)"},
	{TextUnsupported, "Esta mensagem não pode ser exibida aqui."},
	{TextErrorRateLimited, "Você está enviando mensagens rápido demais. Enviaremos esta em instantes."},
	{TextErrorTooLarge, "Esta mensagem é longa demais para ser enviada. Encurte-a, por favor."},
	{TextErrorBadRequest, "Não foi possível enviar esta mensagem."},
	{TextErrorOutboxFull, "Há mensagens demais aguardando envio. Aguarde até a conexão voltar."},
	{TextErrorUnavailable, "O assistente não está disponível no momento. Continuaremos tentando."},
	{TextErrorNotStored, "Ainda não foi salva. Continuaremos tentando."},
	{TextErrorGeneric, "Algo deu errado. Tente novamente."},
	{TextPreview, "Nova mensagem de {bot}"},
	{TextDismiss, "Ocultar"},
}

var textsPL = []textPair{
	{TextChat, "Czat"},
	{TextDialog, "Czat z {bot}"},
	{TextLauncherOpen, "Otwórz czat"},
	{TextLauncherClose, "Zamknij czat"},
	{TextClose, "Zamknij"},
	{TextMinimise, "Minimalizuj"},
	{TextPlaceholder, "Napisz wiadomość…"},
	{TextComposer, "Wiadomość"},
	{TextSend, "Wyślij"},
	{TextSending, "Wysyłanie…"},
	{TextSent, "Wysłano"},
	{TextDelivered, "Dostarczono"},
	{TextFailed, "Nie dostarczono"},
	{TextRetry, "Spróbuj ponownie"},
	{TextReconnecting, "Ponowne łączenie…"},
	{TextConnecting, "Łączenie…"},
	{TextOffline, "Jesteś offline. Wyślemy Twoje wiadomości, gdy znów będziesz online."},
	{TextTyping, "{bot} pisze…"},
	{TextTypingAnon, "Pisze…"},
	{TextUnreadOne, "{n} nieprzeczytana wiadomość"},
	{TextUnreadFew, "{n} nieprzeczytane wiadomości"},
	{TextUnreadMany, "{n} nieprzeczytanych wiadomości"},
	{TextUnreadOther, "{n} nieprzeczytanej wiadomości"}, // fractions only
	{TextNewMessages, "Nowe wiadomości"},
	{TextPrevious, "Poprzednia"},
	{TextNext, "Następna"},
	{TextCardOf, "Karta {n} z {total}"},
	{TextQuickReplies, "Sugerowane odpowiedzi"},
	{TextYou, "Ty"},
	{TextSave, "Zapisz rozmowę"},
	{TextToday, "Dzisiaj"},
	{TextYesterday, "Wczoraj"},
	{TextImage, "Obraz"},
	{TextOpenFile, "Otwórz plik"},
	{TextOpenVideo, "Otwórz wideo"},
	{TextOpenAudio, "Otwórz plik audio"},
	{TextVideoUnsupported, "Twoja przeglądarka nie może odtworzyć tego wideo."},
	{TextAudioUnsupported, "Twoja przeglądarka nie może odtworzyć tego pliku audio."},
	{TextNewTab, "(otwiera się w nowej karcie)"},
	{TextUnsupported, "Tej wiadomości nie można tu wyświetlić."},
	{TextErrorRateLimited, "Wysyłasz wiadomości zbyt szybko. Wyślemy tę za chwilę."},
	{TextErrorTooLarge, "Ta wiadomość jest za długa, aby ją wysłać. Skróć ją, proszę."},
	{TextErrorBadRequest, "Nie udało się wysłać tej wiadomości."},
	{TextErrorOutboxFull, "Zbyt wiele wiadomości czeka na wysłanie. Poczekaj, aż znów będziesz online."},
	{TextErrorUnavailable, "Asystent jest w tej chwili niedostępny. Będziemy próbować dalej."},
	{TextErrorNotStored, "Jeszcze nie zapisano. Będziemy próbować dalej."},
	{TextErrorGeneric, "Coś poszło nie tak. Spróbuj ponownie."},
	{TextPreview, "Nowa wiadomość od {bot}"},
	{TextDismiss, "Ukryj"},
}

var textsSV = []textPair{
	{TextChat, "Chatt"},
	{TextDialog, "Chatt med {bot}"},
	{TextLauncherOpen, "Öppna chatten"},
	{TextLauncherClose, "Stäng chatten"},
	{TextClose, "Stäng"},
	{TextMinimise, "Minimera"},
	{TextPlaceholder, "Skriv ditt meddelande…"},
	{TextComposer, "Meddelande"},
	{TextSend, "Skicka"},
	{TextSending, "Skickar…"},
	{TextSent, "Skickat"},
	{TextDelivered, "Levererat"},
	{TextFailed, "Inte levererat"},
	{TextRetry, "Försök igen"},
	{TextReconnecting, "Återansluter…"},
	{TextConnecting, "Ansluter…"},
	{TextOffline, "Du är offline. Vi skickar dina meddelanden när du är tillbaka."},
	{TextTyping, "{bot} skriver…"},
	{TextTypingAnon, "Skriver…"},
	{TextUnreadOne, "{n} oläst meddelande"},
	{TextUnreadOther, "{n} olästa meddelanden"},
	{TextNewMessages, "Nya meddelanden"},
	{TextPrevious, "Föregående"},
	{TextNext, "Nästa"},
	{TextCardOf, "Kort {n} av {total}"},
	{TextQuickReplies, "Föreslagna svar"},
	{TextYou, "Du"},
	{TextSave, "Spara konversationen"},
	{TextToday, "I dag"},
	{TextYesterday, "I går"},
	{TextImage, "Bild"},
	{TextOpenFile, "Öppna filen"},
	{TextOpenVideo, "Öppna videon"},
	{TextOpenAudio, "Öppna ljudfilen"},
	{TextVideoUnsupported, "Din webbläsare kan inte spela upp den här videon."},
	{TextAudioUnsupported, "Din webbläsare kan inte spela upp den här ljudfilen."},
	{TextNewTab, "(öppnas i en ny flik)"},
	{TextUnsupported, "Det här meddelandet kan inte visas här."},
	{TextErrorRateLimited, "Du skickar meddelanden för snabbt. Vi skickar det här om en liten stund."},
	{TextErrorTooLarge, "Meddelandet är för långt för att skickas. Korta ner det."},
	{TextErrorBadRequest, "Meddelandet kunde inte skickas."},
	{TextErrorOutboxFull, "För många meddelanden väntar på att skickas. Vänta tills du är online igen."},
	{TextErrorUnavailable, "Assistenten kan inte nås just nu. Vi fortsätter att försöka."},
	{TextErrorNotStored, "Inte sparat än. Vi fortsätter att försöka."},
	{TextErrorGeneric, "Något gick fel. Försök igen."},
	{TextPreview, "Nytt meddelande från {bot}"},
	{TextDismiss, "Dölj"},
}

var textsDA = []textPair{
	{TextChat, "Chat"},
	{TextDialog, "Chat med {bot}"},
	{TextLauncherOpen, "Åbn chatten"},
	{TextLauncherClose, "Luk chatten"},
	{TextClose, "Luk"},
	{TextMinimise, "Minimer"},
	{TextPlaceholder, "Skriv din besked…"},
	{TextComposer, "Besked"},
	{TextSend, "Send"},
	{TextSending, "Sender…"},
	{TextSent, "Sendt"},
	{TextDelivered, "Leveret"},
	{TextFailed, "Ikke leveret"},
	{TextRetry, "Prøv igen"},
	{TextReconnecting, "Genopretter forbindelsen…"},
	{TextConnecting, "Opretter forbindelse…"},
	{TextOffline, "Du er offline. Vi sender dine beskeder, når du er online igen."},
	{TextTyping, "{bot} skriver…"},
	{TextTypingAnon, "Skriver…"},
	{TextUnreadOne, "{n} ulæst besked"},
	{TextUnreadOther, "{n} ulæste beskeder"},
	{TextNewMessages, "Nye beskeder"},
	{TextPrevious, "Forrige"},
	{TextNext, "Næste"},
	{TextCardOf, "Kort {n} af {total}"},
	{TextQuickReplies, "Foreslåede svar"},
	{TextYou, "Du"},
	{TextSave, "Gem samtalen"},
	{TextToday, "I dag"},
	{TextYesterday, "I går"},
	{TextImage, "Billede"},
	{TextOpenFile, "Åbn filen"},
	{TextOpenVideo, "Åbn videoen"},
	{TextOpenAudio, "Åbn lydfilen"},
	{TextVideoUnsupported, "Din browser kan ikke afspille denne video."},
	{TextAudioUnsupported, "Din browser kan ikke afspille denne lydfil."},
	{TextNewTab, "(åbner i en ny fane)"},
	{TextUnsupported, "Denne besked kan ikke vises her."},
	{TextErrorRateLimited, "Du sender beskeder for hurtigt. Vi sender denne om et øjeblik."},
	{TextErrorTooLarge, "Denne besked er for lang til at blive sendt. Gør den kortere."},
	{TextErrorBadRequest, "Denne besked kunne ikke sendes."},
	{TextErrorOutboxFull, "For mange beskeder venter på at blive sendt. Vent, til du er online igen."},
	{TextErrorUnavailable, "Assistenten kan ikke kontaktes lige nu. Vi bliver ved med at prøve."},
	{TextErrorNotStored, "Ikke gemt endnu. Vi bliver ved med at prøve."},
	{TextErrorGeneric, "Noget gik galt. Prøv igen."},
	{TextPreview, "Ny besked fra {bot}"},
	{TextDismiss, "Skjul"},
}

// Turkish counts with the singular: "3 okunmamış mesaj".
var textsTR = []textPair{
	{TextChat, "Sohbet"},
	{TextDialog, "{bot} ile sohbet"},
	{TextLauncherOpen, "Sohbeti aç"},
	{TextLauncherClose, "Sohbeti kapat"},
	{TextClose, "Kapat"},
	{TextMinimise, "Küçült"},
	{TextPlaceholder, "Mesajınızı yazın…"},
	{TextComposer, "Mesaj"},
	{TextSend, "Gönder"},
	{TextSending, "Gönderiliyor…"},
	{TextSent, "Gönderildi"},
	{TextDelivered, "İletildi"},
	{TextFailed, "İletilemedi"},
	{TextRetry, "Tekrar dene"},
	{TextReconnecting, "Yeniden bağlanılıyor…"},
	{TextConnecting, "Bağlanılıyor…"},
	{TextOffline, "Çevrimdışısınız. Yeniden bağlandığınızda mesajlarınızı göndereceğiz."},
	{TextTyping, "{bot} yazıyor…"},
	{TextTypingAnon, "Yazıyor…"},
	{TextUnreadOne, "{n} okunmamış mesaj"},
	{TextUnreadOther, "{n} okunmamış mesaj"},
	{TextNewMessages, "Yeni mesajlar"},
	{TextPrevious, "Önceki"},
	{TextNext, "Sonraki"},
	{TextCardOf, "Kart {n}/{total}"},
	{TextQuickReplies, "Önerilen yanıtlar"},
	{TextYou, "Siz"},
	{TextSave, "Sohbeti kaydet"},
	{TextToday, "Bugün"},
	{TextYesterday, "Dün"},
	{TextImage, "Görsel"},
	{TextOpenFile, "Dosyayı aç"},
	{TextOpenVideo, "Videoyu aç"},
	{TextOpenAudio, "Ses dosyasını aç"},
	{TextVideoUnsupported, "Tarayıcınız bu videoyu oynatamıyor."},
	{TextAudioUnsupported, "Tarayıcınız bu ses dosyasını oynatamıyor."},
	{TextNewTab, "(yeni sekmede açılır)"},
	{TextUnsupported, "Bu mesaj burada gösterilemiyor."},
	{TextErrorRateLimited, "Çok hızlı mesaj gönderiyorsunuz. Bu mesajı birazdan göndereceğiz."},
	{TextErrorTooLarge, "Bu mesaj gönderilemeyecek kadar uzun. Lütfen kısaltın."},
	{TextErrorBadRequest, "Bu mesaj gönderilemedi."},
	{TextErrorOutboxFull, "Gönderilmeyi bekleyen çok fazla mesaj var. Lütfen yeniden çevrimiçi olana kadar bekleyin."},
	{TextErrorUnavailable, "Asistana şu anda ulaşılamıyor. Denemeye devam edeceğiz."},
	{TextErrorNotStored, "Henüz kaydedilmedi. Denemeye devam edeceğiz."},
	{TextErrorGeneric, "Bir sorun oluştu. Lütfen tekrar deneyin."},
	{TextPreview, "{bot}: yeni mesaj"},
	{TextDismiss, "Gizle"},
}

// Arabic: Modern Standard Arabic, written right to left. A count takes
// the plural for 3 to 10, the singular for 11 to 99 and for hundreds; one
// and two are said in words.
var textsAR = []textPair{
	{TextChat, "دردشة"},
	{TextDialog, "الدردشة مع {bot}"},
	{TextLauncherOpen, "فتح الدردشة"},
	{TextLauncherClose, "إغلاق الدردشة"},
	{TextClose, "إغلاق"},
	{TextMinimise, "تصغير"},
	{TextPlaceholder, "اكتب رسالتك…"},
	{TextComposer, "الرسالة"},
	{TextSend, "إرسال"},
	{TextSending, "جارٍ الإرسال…"},
	{TextSent, "أُرسلت"},
	{TextDelivered, "تم التسليم"},
	{TextFailed, "لم يتم التسليم"},
	{TextRetry, "إعادة المحاولة"},
	{TextReconnecting, "جارٍ إعادة الاتصال…"},
	{TextConnecting, "جارٍ الاتصال…"},
	{TextOffline, "أنت غير متصل بالإنترنت. سنرسل رسائلك عند عودة الاتصال."},
	{TextTyping, "{bot} يكتب…"},
	{TextTypingAnon, "يكتب…"},
	{TextUnreadZero, "لا توجد رسائل غير مقروءة"},
	{TextUnreadOne, "رسالة واحدة غير مقروءة"},
	{TextUnreadTwo, "رسالتان غير مقروءتين"},
	{TextUnreadFew, "{n} رسائل غير مقروءة"},
	{TextUnreadMany, "{n} رسالة غير مقروءة"},
	{TextUnreadOther, "{n} رسالة غير مقروءة"},
	{TextNewMessages, "رسائل جديدة"},
	{TextPrevious, "السابق"},
	{TextNext, "التالي"},
	{TextCardOf, "البطاقة {n} من {total}"},
	{TextQuickReplies, "ردود مقترحة"},
	{TextYou, "أنت"},
	{TextSave, "حفظ المحادثة"},
	{TextToday, "اليوم"},
	{TextYesterday, "أمس"},
	{TextImage, "صورة"},
	{TextOpenFile, "فتح الملف"},
	{TextOpenVideo, "فتح الفيديو"},
	{TextOpenAudio, "فتح الملف الصوتي"},
	{TextVideoUnsupported, "لا يستطيع متصفحك تشغيل هذا الفيديو."},
	{TextAudioUnsupported, "لا يستطيع متصفحك تشغيل هذا الملف الصوتي."},
	{TextNewTab, "(يُفتح في علامة تبويب جديدة)"},
	{TextUnsupported, "لا يمكن عرض هذه الرسالة هنا."},
	{TextErrorRateLimited, "أنت ترسل الرسائل بسرعة كبيرة. سنرسل هذه الرسالة بعد لحظات."},
	{TextErrorTooLarge, "هذه الرسالة أطول من أن تُرسل. يُرجى اختصارها."},
	{TextErrorBadRequest, "تعذّر إرسال هذه الرسالة."},
	{TextErrorOutboxFull, "هناك رسائل كثيرة جدًا في انتظار الإرسال. يُرجى الانتظار حتى يعود الاتصال."},
	{TextErrorUnavailable, "يتعذّر الوصول إلى المساعد الآن. سنواصل المحاولة."},
	{TextErrorNotStored, "لم يتم الحفظ بعد. سنواصل المحاولة."},
	{TextErrorGeneric, "حدث خطأ ما. يُرجى المحاولة مرة أخرى."},
	{TextPreview, "رسالة جديدة من {bot}"},
	{TextDismiss, "إخفاء"},
}

// Hebrew, written right to left; instructions use the gender-neutral
// forms common in Israeli interfaces. One and two are said in words.
var textsHE = []textPair{
	{TextChat, "צ׳אט"},
	{TextDialog, "צ׳אט עם {bot}"},
	{TextLauncherOpen, "פתיחת הצ׳אט"},
	{TextLauncherClose, "סגירת הצ׳אט"},
	{TextClose, "סגירה"},
	{TextMinimise, "מזעור"},
	{TextPlaceholder, "הקלידו הודעה…"},
	{TextComposer, "הודעה"},
	{TextSend, "שליחה"},
	{TextSending, "בשליחה…"},
	{TextSent, "נשלחה"},
	{TextDelivered, "נמסרה"},
	{TextFailed, "לא נמסרה"},
	{TextRetry, "ניסיון חוזר"},
	{TextReconnecting, "מתחברים מחדש…"},
	{TextConnecting, "מתחברים…"},
	{TextOffline, "אין חיבור לאינטרנט. ההודעות שלך יישלחו כשהחיבור יחזור."},
	{TextTyping, "{bot} מקליד…"},
	{TextTypingAnon, "מקליד…"},
	{TextUnreadOne, "הודעה אחת שלא נקראה"},
	{TextUnreadTwo, "שתי הודעות שלא נקראו"},
	{TextUnreadOther, "{n} הודעות שלא נקראו"},
	{TextNewMessages, "הודעות חדשות"},
	{TextPrevious, "הקודם"},
	{TextNext, "הבא"},
	{TextCardOf, "כרטיס {n} מתוך {total}"},
	{TextQuickReplies, "תשובות מוצעות"},
	{TextYou, "את/ה"},
	{TextSave, "שמירת השיחה"},
	{TextToday, "היום"},
	{TextYesterday, "אתמול"},
	{TextImage, "תמונה"},
	{TextOpenFile, "פתיחת הקובץ"},
	{TextOpenVideo, "פתיחת הסרטון"},
	{TextOpenAudio, "פתיחת קובץ השמע"},
	{TextVideoUnsupported, "הדפדפן שלך לא יכול להפעיל את הסרטון הזה."},
	{TextAudioUnsupported, "הדפדפן שלך לא יכול להפעיל את קובץ השמע הזה."},
	{TextNewTab, "(נפתח בכרטיסייה חדשה)"},
	{TextUnsupported, "לא ניתן להציג את ההודעה הזו כאן."},
	{TextErrorRateLimited, "ההודעות נשלחות מהר מדי. ההודעה הזו תישלח בעוד רגע."},
	{TextErrorTooLarge, "ההודעה ארוכה מדי לשליחה. כדאי לקצר אותה."},
	{TextErrorBadRequest, "לא ניתן היה לשלוח את ההודעה הזו."},
	{TextErrorOutboxFull, "יותר מדי הודעות ממתינות לשליחה. נא להמתין עד שהחיבור יחזור."},
	{TextErrorUnavailable, "אי אפשר להגיע לעוזר כרגע. נמשיך לנסות."},
	{TextErrorNotStored, "עדיין לא נשמרה. נמשיך לנסות."},
	{TextErrorGeneric, "משהו השתבש. נא לנסות שוב."},
	{TextPreview, "הודעה חדשה מ-{bot}"},
	{TextDismiss, "הסתרה"},
}
