package widget

import "unicode/utf8"

// Small string helpers standing in for the strings package's functions
// that link the unicode tables (TrimSpace, IndexRune, Split and friends
// reach unicode.IsSpace or generic code): widget.wasm stays smaller.

// TrimSpace removes leading and trailing white space, Unicode's as
// unicode.IsSpace defines it.
func TrimSpace(s string) string {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if !space(r) {
			break
		}
		s = s[n:]
	}
	for len(s) > 0 {
		r, n := utf8.DecodeLastRuneInString(s)
		if !space(r) {
			break
		}
		s = s[:len(s)-n]
	}
	return s
}

func space(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return r >= 0x80 && isSpace(r)
}

// indexRune returns the index of r in s, or -1.
func indexRune(s string, r rune) int {
	for i, c := range s {
		if c == r {
			return i
		}
	}
	return -1
}

// indexAny returns the index of the first byte of s that is in set (ASCII), or -1.
func indexAny(s, set string) int {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(set); j++ {
			if s[i] == set[j] {
				return i
			}
		}
	}
	return -1
}

// splitByte splits s around each c.
func splitByte(s string, c byte) []string {
	var out []string
	for {
		i := 0
		for i < len(s) && s[i] != c {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			return out
		}
		s = s[i+1:]
	}
}

// trimRightBytes removes trailing bytes found in set (ASCII).
func trimRightBytes(s, set string) string {
	for len(s) > 0 && indexAny(s[len(s)-1:], set) == 0 {
		s = s[:len(s)-1]
	}
	return s
}

// The helpers below replace the rest of the strings package, so that
// neither widget nor the browser program imports it: importing strings
// links the unicode package's init and tables into widget.wasm.

// HasPrefix reports whether s begins with prefix.
func HasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

// IndexByte returns the index of the first c in s, or -1.
func IndexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Cut slices s around the first sep.
func Cut(s, sep string) (before, after string, found bool) {
	if i := index(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// index returns the index of the first sep in s, or -1; the strings
// here are short, so the naive search is fine.
func index(s, sep string) int {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return i
		}
	}
	return -1
}

// noCompare makes a struct incomparable. The compiler then emits no
// equality function for it, which widget.wasm would carry (about 500
// bytes raw each) although nothing compares these values.
type noCompare [0]func()
