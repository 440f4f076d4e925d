package web

import (
	"strconv"
	"strings"
	"time"
)

// mediumDate is how a language writes a date in Intl.DateTimeFormat's
// "medium" style (CLDR): layout has {d} (the day), {dd} (the day in two
// digits), {m} (the month's abbreviation), {mm} (the month in two digits)
// and {y} (the year).
type mediumDate struct {
	layout string
	months [12]string
}

// mediumDates are the medium dates of the built-in languages, as ICU
// writes them, so that the chat page shows an older day as the widget
// does (there from the browser's Intl). TestMediumDatesAsIntl checks the
// table against Node's Intl, month by month.
var mediumDates = map[string]mediumDate{
	"en": {"{m} {d}, {y}", [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}},
	"nl": {"{d} {m} {y}", [12]string{"jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"}},
	"fr": {"{d} {m} {y}", [12]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."}},
	"de": {"{dd}.{mm}.{y}", [12]string{}},
	"es": {"{d} {m} {y}", [12]string{"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"}},
	"it": {"{d} {m} {y}", [12]string{"gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"}},
	"pt": {"{d} de {m} de {y}", [12]string{"jan.", "fev.", "mar.", "abr.", "mai.", "jun.", "jul.", "ago.", "set.", "out.", "nov.", "dez."}},
	"pl": {"{d} {m} {y}", [12]string{"sty", "lut", "mar", "kwi", "maj", "cze", "lip", "sie", "wrz", "paź", "lis", "gru"}},
	"sv": {"{d} {m} {y}", [12]string{"jan.", "feb.", "mars", "apr.", "maj", "juni", "juli", "aug.", "sep.", "okt.", "nov.", "dec."}},
	"da": {"{d}. {m} {y}", [12]string{"jan.", "feb.", "mar.", "apr.", "maj", "jun.", "jul.", "aug.", "sep.", "okt.", "nov.", "dec."}},
	"tr": {"{d} {m} {y}", [12]string{"Oca", "Şub", "Mar", "Nis", "May", "Haz", "Tem", "Ağu", "Eyl", "Eki", "Kas", "Ara"}},
	"ar": {"{dd}\u200f/{mm}\u200f/{y}", [12]string{}},
	"he": {"{d} ב{m} {y}", [12]string{"ינו׳", "פבר׳", "מרץ", "אפר׳", "מאי", "יוני", "יולי", "אוג׳", "ספט׳", "אוק׳", "נוב׳", "דצמ׳"}},
}

// MediumDate writes the date of t (in t's location) in lang's medium
// style, "Nov 29, 2026" or "29.11.2026"; ISO 8601 for a language
// without one.
func MediumDate(lang string, t time.Time) string {
	f, ok := mediumDates[lang]
	if !ok {
		return t.Format(time.DateOnly)
	}
	two := func(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }
	return strings.NewReplacer(
		"{dd}", two(t.Day()), "{d}", strconv.Itoa(t.Day()),
		"{mm}", two(int(t.Month())), "{m}", f.months[t.Month()-1],
		"{y}", strconv.Itoa(t.Year()),
	).Replace(f.layout)
}
