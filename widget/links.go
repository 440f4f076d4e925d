package widget

import (
	"unicode/utf8"
)

// Segment is a piece of a message's text: plain text, or a link when
// URL is set. The renderer puts Text into a text node (inside an <a
// href=URL rel="noopener noreferrer"> for a link), never into markup.
type Segment struct {
	_    noCompare
	Text string
	URL  string
}

// Linkify splits plain text into text and link segments. It finds
// http:// and https:// URLs, "www." addresses (linked as https://) and
// e-mail addresses (linked as mailto:), in the manner of GitHub's
// autolinks: trailing punctuation such as . , : ; ! ? * _ ~ and quotes
// stays outside the link, as does a closing bracket without its opening
// one, so "(see https://example.com/a_(b))." links
// https://example.com/a_(b). Every URL it returns passes CheckURL as a
// link; anything doubtful stays text. Text without links is one segment;
// empty text none.
func Linkify(text string) []Segment {
	var out []Segment
	start := 0 // of the pending plain text
	for i := 0; i < len(text); {
		n, href := matchLink(text, i)
		if n == 0 {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
			continue
		}
		if i > start {
			out = append(out, Segment{Text: text[start:i]})
		}
		out = append(out, Segment{Text: text[i : i+n], URL: href})
		i += n
		start = i
	}
	if start < len(text) {
		out = append(out, Segment{Text: text[start:]})
	}
	return out
}

// matchLink returns the length of a link starting at text[i] and its
// href, or 0.
func matchLink(text string, i int) (int, string) {
	rest := text[i:]
	switch c := rest[0]; {
	case (c == 'h' || c == 'H') && wordStart(text, i) && (hasPrefixFold(rest, "https://") || hasPrefixFold(rest, "http://")):
		u := trimLink(rest[:urlEnd(rest)])
		scheme := IndexByte(u, ':')
		if validHost(u[scheme+3:], false) && CheckURL("", u, true) == nil {
			return len(u), u
		}
		return 0, ""
	case (c == 'w' || c == 'W') && wordStart(text, i) && hasPrefixFold(rest, "www."):
		u := trimLink(rest[:urlEnd(rest)])
		href := "https://" + u
		if validHost(u, true) && CheckURL("", href, true) == nil {
			return len(u), href
		}
		return 0, ""
	case (c == 'm' || c == 'M') && wordStart(text, i) && hasPrefixFold(rest, "mailto:"):
		if n := emailLen(rest[len("mailto:"):]); n > 0 {
			addr := rest[len("mailto:") : len("mailto:")+n]
			return len("mailto:") + n, "mailto:" + addr
		}
	}
	if c := rest[0]; isLocalChar(c) && c != '.' && (i == 0 || !isLocalChar(text[i-1]) && text[i-1] != '/' && text[i-1] != '@') {
		if n := emailLen(rest); n > 0 {
			href := "mailto:" + rest[:n]
			if CheckURL("", href, true) == nil {
				return n, href
			}
		}
	}
	return 0, ""
}

// wordStart reports whether a link may start at text[i]: not in the
// middle of an ASCII word ("xhttp://" is not a link; "請https://" is).
func wordStart(text string, i int) bool {
	if i == 0 {
		return true
	}
	p := text[i-1]
	return !(p >= 'a' && p <= 'z' || p >= 'A' && p <= 'Z' || p >= '0' && p <= '9' || p == '_' || p == '.' || p == '-' || p == '/' || p == '@')
}

// hasPrefixFold reports whether s starts with the lowercase ASCII
// prefix, in any case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// urlEnd returns the length of the run of characters that may belong to
// a URL: up to a space, a control character, one of < > " \ ` or
// full-width punctuation (which ends a URL in CJK text).
func urlEnd(s string) int {
	for j := 0; j < len(s); {
		r, size := utf8.DecodeRuneInString(s[j:])
		if r < 0x21 || r == 0x7f || r == '<' || r == '>' || r == '"' || r == '\\' || r == '`' ||
			r == utf8.RuneError || r >= 0x80 && r < 0xa0 || isSpace(r) ||
			r >= 0x3000 && r <= 0x303f || r >= 0xff01 && r <= 0xff0f || r >= 0xff1a && r <= 0xff20 {
			return j
		}
		j += size
	}
	return len(s)
}

// isSpace is unicode.IsSpace for the non-ASCII range (the caller handles
// ASCII), without linking the unicode package's tables into widget.wasm.
func isSpace(r rune) bool {
	switch r {
	case 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// trailingPunct are characters that end a sentence rather than a URL.
const trailingPunct = ".,:;!?*_~'\"‘’“”«»‹›…。、，！？：；）】」』"

// trimLink drops trailing punctuation and closing brackets that have no
// opening one inside the link.
func trimLink(u string) string {
	const brackets = "()[]{}"
	var count [6]int
	for i := 0; i < len(u); i++ {
		if k := IndexByte(brackets, u[i]); k >= 0 {
			count[k]++
		}
	}
	for u != "" {
		r, size := utf8.DecodeLastRuneInString(u)
		if k := indexRune(brackets, r); k >= 0 {
			if k%2 == 0 || count[k-1] >= count[k] {
				return u // an opening bracket, or a balanced closing one
			}
			count[k]--
		} else if indexRune(trailingPunct, r) < 0 {
			return u
		}
		u = u[:len(u)-size]
	}
	return u
}

// validHost checks the host of s (what follows "scheme://", or a
// "www." address): at least one letter or digit, and for www. addresses
// a dot after "www." and a top-level domain of two or more letters.
func validHost(s string, www bool) bool {
	host := s
	if i := indexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := lastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if !www {
		for i := 0; i < len(host); i++ {
			if c := host[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= utf8.RuneSelf {
				return true
			}
		}
		return false
	}
	if i := IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	labels := splitByte(host, '.')
	if len(labels) < 3 {
		return false
	}
	for _, l := range labels {
		if l == "" {
			return false
		}
	}
	return isAlphaTLD(labels[len(labels)-1])
}

// isAlphaTLD accepts a top-level domain of two or more letters; any
// non-ASCII character counts as a letter (internationalised TLDs).
func isAlphaTLD(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; !(c >= 'a' && c <= 'z' || s[i] >= utf8.RuneSelf) {
			return false
		}
	}
	return true
}

func isLocalChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// emailLen returns the length of an e-mail address at the start of s,
// or 0: local@label.label… with a top-level domain of two or more
// letters; a trailing dot or hyphen is left out.
func emailLen(s string) int {
	at := 0
	for at < len(s) && isLocalChar(s[at]) {
		at++
	}
	if at == 0 || at >= len(s) || s[at] != '@' || s[0] == '.' || s[at-1] == '.' {
		return 0
	}
	end := at + 1
	for end < len(s) {
		c := s[end]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			end++
			continue
		}
		break
	}
	domain := trimRightBytes(s[at+1:end], ".-")
	labels := splitByte(domain, '.')
	if len(labels) < 2 {
		return 0
	}
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return 0
		}
	}
	if !isAlphaTLD(labels[len(labels)-1]) {
		return 0
	}
	return at + 1 + len(domain)
}
