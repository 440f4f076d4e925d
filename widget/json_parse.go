//go:build !js

package widget

import (
	"strconv"
	"unicode/utf8"
)

// The Go JSON reader, for the server and the tests. The browser program
// uses the engine's JSON.parse instead (json_parse_js.go).

// ParseJSON parses one JSON document. Trailing non-space bytes are an error.
func ParseJSON(data []byte) (JSONValue, error) {
	p := parser{data: data}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return JSONValue{}, err
	}
	p.space()
	if p.pos != len(p.data) {
		return JSONValue{}, p.fail("unexpected data after the JSON value")
	}
	return v, nil
}

type parser struct {
	data []byte
	pos  int
}

func (p *parser) fail(msg string) error {
	return &Error{Code: CodeBadRequest, Message: "invalid JSON at byte " + strconv.Itoa(p.pos) + ": " + msg}
}

func (p *parser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (JSONValue, error) {
	if depth > maxDepth {
		return JSONValue{}, p.fail("nested too deeply")
	}
	if p.pos >= len(p.data) {
		return JSONValue{}, p.fail("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		return JSONValue{Kind: JSONString, Str: s}, err
	case c == 't':
		return JSONValue{Kind: JSONBool, Bool: true}, p.literal("true")
	case c == 'f':
		return JSONValue{Kind: JSONBool}, p.literal("false")
	case c == 'n':
		return JSONValue{}, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return JSONValue{}, p.fail("unexpected character")
	}
}

func (p *parser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.fail("invalid literal")
	}
	p.pos += len(word)
	return nil
}

func (p *parser) object(depth int) (JSONValue, error) {
	v := JSONValue{Kind: JSONObject}
	p.pos++ // {
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return v, p.fail("expected a member name")
		}
		key, err := p.str()
		if err != nil {
			return v, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return v, p.fail("expected ':'")
		}
		p.pos++
		p.space()
		item, err := p.value(depth + 1)
		if err != nil {
			return v, err
		}
		v.Fields = append(v.Fields, JSONField{Key: key, Value: item})
		p.space()
		if p.pos >= len(p.data) {
			return v, p.fail("unexpected end in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return v, p.fail("expected ',' or '}'")
		}
	}
}

func (p *parser) array(depth int) (JSONValue, error) {
	v := JSONValue{Kind: JSONArray}
	p.pos++ // [
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		item, err := p.value(depth + 1)
		if err != nil {
			return v, err
		}
		v.Items = append(v.Items, item)
		p.space()
		if p.pos >= len(p.data) {
			return v, p.fail("unexpected end in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return v, p.fail("expected ',' or ']'")
		}
	}
}

func (p *parser) number() (JSONValue, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	intStart := p.pos
	if n := digits(); n == 0 || (n > 1 && p.data[intStart] == '0') {
		return JSONValue{}, p.fail("invalid number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return JSONValue{}, p.fail("invalid number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return JSONValue{}, p.fail("invalid number")
		}
	}
	return JSONValue{Kind: JSONNumber, Str: string(p.data[start:p.pos])}, nil
}

// str reads a string literal, decoding escapes. Invalid UTF-8 and lone
// surrogates become U+FFFD, as in encoding/json.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, valid UTF-8.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return string([]rune(string(s))), nil // replaces invalid bytes with U+FFFD
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.fail("control character in string")
		}
		p.pos++
	}
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return string([]rune(string(buf))), nil
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("invalid \\u escape")
			}
			if r >= 0xD800 && r < 0xDC00 {
				// A high surrogate wants a low one right after it.
				save := p.pos
				if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					p.pos += 2
					if r2, ok := p.hex4(); ok && r2 >= 0xDC00 && r2 < 0xE000 {
						r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
						buf = utf8.AppendRune(buf, r)
						continue
					}
				}
				p.pos = save
				r = utf8.RuneError
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.fail("invalid escape")
		}
	}
	return "", p.fail("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}
