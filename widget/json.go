package widget

import (
	"strconv"
	"unicode/utf8"
)

// This file is a small JSON reader and writer without reflection. The
// widget package is compiled into the browser program, where
// encoding/json would add ~250 KB (brotli) to widget.wasm; frames are few
// and flat, so a value tree plus hand-written field access is enough.
// The writer produces byte for byte what encoding/json produces for the
// same struct with the same tags (round-trip tests hold it to that).

// JSONKind is the kind of a parsed JSON value.
type JSONKind uint8

// The kinds of JSON values.
const (
	JSONNull JSONKind = iota
	JSONBool
	JSONNumber
	JSONString
	JSONArray
	JSONObject
)

// JSONValue is a parsed JSON value. For numbers, Str holds the literal so
// that integers of any size are read exactly.
type JSONValue struct {
	Kind   JSONKind
	Bool   bool
	Str    string
	Items  []JSONValue
	Fields []JSONField
}

// JSONField is one member of a JSON object, in document order.
type JSONField struct {
	Key   string
	Value JSONValue
}

// Get returns the value of the last member named key (as encoding/json
// does when a key repeats) and whether it was present.
func (v JSONValue) Get(key string) (JSONValue, bool) {
	for i := len(v.Fields) - 1; i >= 0; i-- {
		if v.Fields[i].Key == key {
			return v.Fields[i].Value, true
		}
	}
	return JSONValue{}, false
}

// maxDepth bounds nesting so that a hostile frame cannot exhaust the stack.
const maxDepth = 32

// jsonWriter appends JSON to a byte slice, matching encoding/json's
// output: HTML-safe escapes, U+2028/U+2029 escaped, invalid UTF-8 as U+FFFD.
type jsonWriter struct {
	b     []byte
	first bool // no member written yet in the current object
}

func (w *jsonWriter) open() {
	w.b = append(w.b, '{')
	w.first = true
}

func (w *jsonWriter) close() {
	w.b = append(w.b, '}')
	w.first = false
}

func (w *jsonWriter) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

// str writes a member; omitempty skips empty strings.
func (w *jsonWriter) str(k, v string, omitempty bool) {
	if omitempty && v == "" {
		return
	}
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *jsonWriter) uint(k string, v uint64, omitempty bool) {
	if omitempty && v == 0 {
		return
	}
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jsonWriter) bool(k string, v bool, omitempty bool) {
	if omitempty && !v {
		return
	}
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

// raw writes a member whose value is already JSON.
func (w *jsonWriter) raw(k string, v []byte) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, v...)
}

func (w *jsonWriter) strings(k string, v []string) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendString(w.b, s)
	}
	w.b = append(w.b, ']')
}

// list writes an array member of n elements, each written by item.
func (w *jsonWriter) list(k string, n int, item func(i int)) {
	if n == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		item(i)
	}
	w.b = append(w.b, ']')
	w.first = false
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal, escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONValue appends v in compact form, members in document order.
func AppendJSONValue(b []byte, v JSONValue) []byte {
	switch v.Kind {
	case JSONNull:
		return append(b, "null"...)
	case JSONBool:
		return strconv.AppendBool(b, v.Bool)
	case JSONNumber:
		return append(b, v.Str...)
	case JSONString:
		return appendString(b, v.Str)
	case JSONArray:
		b = append(b, '[')
		for i, item := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONValue(b, item)
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i, f := range v.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f.Key)
			b = append(b, ':')
			b = AppendJSONValue(b, f.Value)
		}
		return append(b, '}')
	}
}
