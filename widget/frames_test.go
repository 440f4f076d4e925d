package widget

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// sampleBodies covers every body kind and every optional member.
var sampleBodies = []Body{
	Text("hello <b>&</b> \u2028 \"quoted\" \\ \t tab é 😀"),
	{Kind: KindText, Text: "Pick one", QuickReplies: []QuickReply{{Title: "Dutch", Payload: `{"nextDialogstateId":"3050"}`}, {Title: "French", Payload: "opaque-id-7"}}},
	{Kind: KindButtons, Text: "Choose", Buttons: []Button{
		{Type: ButtonPostback, Title: "Go", Payload: "p1"},
		{Type: ButtonURL, Title: "Site", URL: "https://example.com/a?b=c&d=%3Ce%3E"},
		{Type: ButtonPhone, Title: "Call", Phone: "+32 477 99 00 22"},
	}},
	{Kind: KindCarousel, Cards: []Card{
		{Title: "One", Subtitle: "first", Image: "https://example.com/1.jpg", URL: "https://example.com/1", Buttons: []Button{{Type: ButtonPostback, Title: "Buy", Payload: "buy-1"}}},
		{Title: "Two"},
	}},
	{Kind: KindText, Text: "Hi bold\n\n1. a\n   • b\n\ncode", Blocks: []Block{
		{P: []Run{{Text: "Hi "}, {Text: "bold", Style: "b"}, {Text: " <see> ", Style: "bisc"}, {Text: "here", URL: "https://example.com/?a=1&b=2"}}},
		{OL: [][]Block{{{P: []Run{{Text: "a\nb"}}}, {UL: [][]Block{{{P: []Run{{Text: "b", Style: "c"}}}}}}}, {{Pre: "x"}}}, Start: 3},
		{UL: [][]Block{{{P: []Run{{Text: "mail", URL: "mailto:a@example.com"}}}}}},
		{Pre: "fmt.Println(\"<hi>\")\n\tdone"},
	}},
	{Kind: KindButtons, Text: "Pick", Blocks: []Block{{P: []Run{{Text: "Pick", Style: "i"}}}}, Buttons: []Button{{Type: ButtonPostback, Title: "Go", Payload: "p1"}}},
	{Kind: KindMedia, Media: MediaImage, URL: "https://example.com/rose.jpeg?w=500", Alt: "a rose"},
	{Kind: KindMedia, Media: MediaFile, URL: "http://example.com/terms.pdf"},
}

func sampleFrames() []Frame {
	frames := []Frame{
		&Hello{Bot: "acme", Visitor: "tok", After: 41, Locale: "en-GB", TZ: "Europe/Brussels",
			Page: Page{URL: "https://www.acme.com/x", Referrer: "https://google.example/", Title: "Acme <home>"},
			Caps: []string{"text", "quick_replies", "buttons", "carousel", "media"}},
		&Hello{Bot: "demo"},
		&Send{ID: "c-1", Text: "hello\nworld"},
		&Postback{ID: "c-2", Title: "Dutch", Payload: `{"params":[{"key":"lang","value":"nl"}]}`},
		&Session{ID: "c-3", Data: RawJSON(`{"plan":"pro","n":1.5,"nested":{"a":[true,null]}}`)},
		&Read{Seq: 42},
		&Login{ID: "c-4", User: "user-77", Signature: strings.Repeat("ab", 32), Name: "Ann Lee", Email: "ann@example.com", Phone: "+32 477 99 00 22"},
		&Login{ID: "c-5"},
		&Start{ID: "c-6"},
		&Read{},
		&Welcome{Visitor: "v", Conversation: "c", Last: 42, Widget: Look{Title: "Acme", Position: "right", BrandColor: "#007171", Texts: map[string]string{"send": "Send", "close": "Close", "a": "b"}}},
		&Welcome{Conversation: "c"},
		&Welcome{Visitor: "v"}, // no conversation yet
		&Ack{ID: "c-1", Seq: 43},
		&Status{ID: "c-1", State: StateFailed, Error: "upstream_unavailable"},
		&Status{ID: "c-1", State: StateDelivered},
		&Typing{On: true},
		&Typing{},
		&ErrorFrame{Code: CodeRateLimited, Message: "slow down", ID: "c-9", RetryMS: 1500},
		&ErrorFrame{Code: CodeBadRequest, Message: "bad"},
	}
	for i, b := range sampleBodies {
		frames = append(frames, &Msg{Seq: uint64(i + 1), ID: "m1", ClientID: "c-1", From: "bot", At: "2026-11-21T12:00:00.123Z", Body: b})
	}
	return frames
}

// stdEnvelope encodes f with encoding/json, with "type" first, as the
// server's own JSON layer or a browser's JSON.stringify would see it.
func stdEnvelope(t *testing.T, f Frame) []byte {
	t.Helper()
	inner, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte(`{"type":"` + f.Type() + `"`)
	if len(inner) > 2 {
		out = append(out, ',')
		out = append(out, inner[1:]...)
	} else {
		out = append(out, '}')
	}
	return out
}

func TestEncodingMatchesEncodingJSON(t *testing.T) {
	for _, f := range sampleFrames() {
		got := Encode(f)
		want := stdEnvelope(t, f)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", f.Type(), got, want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: invalid JSON %s", f.Type(), got)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		// Our encoding, decoded by us.
		back, err := Decode(Encode(f))
		if err != nil {
			t.Fatalf("%s: decode own encoding: %v", f.Type(), err)
		}
		if !reflect.DeepEqual(back, f) {
			t.Errorf("%s: round trip\n got %#v\nwant %#v", f.Type(), back, f)
		}
		// encoding/json's encoding, decoded by us.
		back, err = Decode(stdEnvelope(t, f))
		if err != nil {
			t.Fatalf("%s: decode encoding/json output: %v", f.Type(), err)
		}
		if !reflect.DeepEqual(back, f) {
			t.Errorf("%s: std round trip\n got %#v\nwant %#v", f.Type(), back, f)
		}
		// Our encoding, decoded by encoding/json into the same type.
		fresh := reflect.New(reflect.TypeOf(f).Elem()).Interface()
		if err := json.Unmarshal(Encode(f), fresh); err != nil {
			t.Fatalf("%s: encoding/json cannot read our encoding: %v", f.Type(), err)
		}
		if !reflect.DeepEqual(fresh, f) {
			t.Errorf("%s: encoding/json read\n got %#v\nwant %#v", f.Type(), fresh, f)
		}
	}
}

func TestBodyRoundTrip(t *testing.T) {
	for _, b := range sampleBodies {
		enc := b.AppendJSON(nil)
		std, _ := json.Marshal(b)
		if !bytes.Equal(enc, std) {
			t.Errorf("body %s:\n got %s\nwant %s", b.Kind, enc, std)
		}
		back, err := DecodeBody(enc)
		if err != nil {
			t.Fatalf("body %s: %v", b.Kind, err)
		}
		if !reflect.DeepEqual(back, b) {
			t.Errorf("body round trip\n got %#v\nwant %#v", back, b)
		}
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	long := strings.Repeat("x", MaxText+1)
	cases := []struct {
		in, code, field string
	}{
		{`not json`, CodeBadRequest, ""},
		{`[1,2]`, CodeBadRequest, ""},
		{`{"type":"hello"} x`, CodeBadRequest, ""},
		{`{}`, CodeBadRequest, "type"},
		{`{"type":7}`, CodeBadRequest, "type"},
		{`{"type":"dance"}`, CodeBadRequest, "type"},
		{`{"type":"hello"}`, CodeBadRequest, "bot"},
		{`{"type":"hello","bot":"Acme!"}`, CodeBadRequest, "bot"},
		{`{"type":"hello","bot":"acme","after":-1}`, CodeBadRequest, "after"},
		{`{"type":"hello","bot":"acme","after":1.5}`, CodeBadRequest, "after"},
		{`{"type":"hello","bot":"acme","page":"x"}`, CodeBadRequest, "page"},
		{`{"type":"hello","bot":"acme","page":{"title":5}}`, CodeBadRequest, "page.title"},
		{`{"type":"send","text":"hi"}`, CodeBadRequest, "id"},
		{`{"type":"send","id":"a b","text":"hi"}`, CodeBadRequest, "id"},
		{`{"type":"send","id":"c1","text":"   "}`, CodeBadRequest, "text"},
		{`{"type":"send","id":"c1","text":"` + long + `"}`, CodeBadRequest, "text"},
		{`{"type":"postback","id":"c1","title":"x"}`, CodeBadRequest, "payload"},
		{`{"type":"start"}`, CodeBadRequest, "id"},
		{`{"type":"start","id":"a/b"}`, CodeBadRequest, "id"},
		{`{"type":"session","id":"c1","data":[1]}`, CodeBadRequest, "data"},
		{`{"type":"session","id":"c1"}`, CodeBadRequest, "data"},
		{`{"type":"login","id":"c1","user":"u1"}`, CodeBadRequest, "signature"},
		{`{"type":"login","id":"c1","user":"u1","signature":"xyz"}`, CodeBadRequest, "signature"},
		{`{"type":"login","id":"c1","signature":"` + strings.Repeat("a", 64) + `"}`, CodeBadRequest, "signature"},
		{`{"type":"login","id":"c1","user":"u1","signature":"` + strings.Repeat("a", 64) + `","email":"nope"}`, CodeBadRequest, "email"},
		{`{"type":"msg","seq":1,"id":"m","from":"bot","at":"x","body":{"kind":"buttons","text":"t","buttons":[{"type":"url","title":"x","url":"javascript:alert(1)"}]}}`, CodeBadRequest, "body.buttons[0].url"},
		{`{"type":"msg","seq":1,"id":"m","from":"bot","at":"x","body":{"kind":"media","media":"image","url":"data:image/png;base64,AAAA"}}`, CodeBadRequest, "body.url"},
		{`{"type":"msg","seq":1,"id":"m","from":"bot","at":"x","body":{"kind":"carousel","cards":[{"title":"a","buttons":[{"type":"phone","title":"t","phone":"call me"}]}]}}`, CodeBadRequest, "body.cards[0].buttons[0].phone"},
		{`{"type":"msg","seq":1,"id":"m","from":"bot","at":"x","body":{"kind":"text","text":"x","quick_replies":[{"title":"","payload":"p"}]}}`, CodeBadRequest, "body.quick_replies[0].title"},
		{`{"type":"msg","seq":1,"id":"m","from":"bot","at":"x","body":{"kind":"gif"}}`, CodeBadRequest, "body.kind"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[{"text":"x","url":"javascript:alert(1)"}]}]}`), CodeBadRequest, "body.blocks[0].p[0].url"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[{"text":"x","url":"data:text/html,<script>"}]}]}`), CodeBadRequest, "body.blocks[0].p[0].url"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"ul":[[{"p":[{"text":"x"}]}],[{"p":[{"text":"x","url":"vbscript:x"}]}]]}]}`), CodeBadRequest, "body.blocks[0].ul[1][0].p[0].url"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[{"text":"x","style":"ib"}]}]}`), CodeBadRequest, "body.blocks[0].p[0].style"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[{"text":"x","style":"h"}]}]}`), CodeBadRequest, "body.blocks[0].p[0].style"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[{"text":""}]}]}`), CodeBadRequest, "body.blocks[0].p[0].text"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[{"text":"x"}],"pre":"y"}]}`), CodeBadRequest, "body.blocks[0]"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{}]}`), CodeBadRequest, "body.blocks[0]"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"ul":[[]]}]}`), CodeBadRequest, "body.blocks[0].ul[0]"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"pre":"x","start":2}]}`), CodeBadRequest, "body.blocks[0].start"},
		{msgBody(`{"kind":"text","text":"x","blocks":{"p":[]}}`), CodeBadRequest, "body.blocks"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[{"text":7}]}]}`), CodeBadRequest, "body.blocks[0].p[0].text"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"ol":[[{"p":[{"text":"x"}]}]],"start":-1}]}`), CodeBadRequest, "body.blocks[0].start"},
		{msgBody(`{"kind":"text","blocks":[{"p":[{"text":"x"}]}]}`), CodeBadRequest, "body.text"},
		{msgBody(`{"kind":"media","media":"image","url":"https://example.com/a.png","blocks":[{"p":[{"text":"x"}]}]}`), CodeBadRequest, "body.blocks"},
		{msgBody(`{"kind":"text","text":"x","blocks":[` + nestedList(MaxListDepth+1) + `]}`), CodeBadRequest, "body.blocks" + strings.Repeat("[0].ul[0]", MaxListDepth) + "[0].ul"},
		{msgBody(`{"kind":"text","text":"x","blocks":[{"p":[` + strings.Repeat(`{"text":"a","style":"b"},{"text":"a"},`, MaxBlockRuns/2) + `{"text":"a"}]}]}`), CodeBadRequest, "body.blocks"},
		// Text and blocks fit alone, not together: \u003c is six bytes.
		{msgBody(`{"kind":"text","text":"` + strings.Repeat("<", MaxText) + `","blocks":[{"pre":"` + strings.Repeat("<", MaxText) + `"}]}`), CodeBadRequest, "body.blocks"},
		{`{"type":"send","id":"c1","text":"` + strings.Repeat("x", MaxFrame) + `"}`, CodeTooLarge, ""},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), CodeBadRequest, ""},
	}
	for _, c := range cases {
		_, err := Decode([]byte(c.in))
		e, ok := err.(*Error)
		if !ok {
			t.Errorf("%.60s: got %v (%T), want *Error", strings.TrimPrefix(c.in, msgBody("")[:len(msgBody(""))-1]), err, err)
			continue
		}
		if e.Code != c.code || e.Field != c.field {
			t.Errorf("%.60s: got code %q field %q (%v), want %q %q", c.in, e.Code, e.Field, e, c.code, c.field)
		}
		if e.Error() == "" {
			t.Errorf("%.60s: empty message", c.in)
		}
	}
}

// msgBody is a bot's msg frame with body.
func msgBody(body string) string {
	return `{"type":"msg","seq":1,"id":"m","from":"bot","at":"x","body":` + body + `}`
}

// nestedList is a block of depth lists, each in the first item of the
// one around it.
func nestedList(depth int) string {
	s := `{"p":[{"text":"x"}]}`
	for i := 0; i < depth; i++ {
		s = `{"ul":[[` + s + `]]}`
	}
	return s
}

func TestBlocksWithinLimits(t *testing.T) {
	ok := Body{Kind: KindText, Text: "x"}
	v, err := ParseJSON([]byte(`[` + nestedList(MaxListDepth) + `]`))
	if err != nil {
		t.Fatal(err)
	}
	r := reader{v: JSONValue{Kind: JSONObject, Fields: []JSONField{{Key: "blocks", Value: v}}}}
	ok.Blocks = r.blocks("blocks")
	if r.err != nil || ok.Validate() != nil {
		t.Fatalf("lists %d deep: %v %v", MaxListDepth, r.err, ok.Validate())
	}
	// The deepest body fits the parser's depth limit inside a msg frame.
	if _, err := Decode(Encode(&Msg{Seq: 1, ID: "m", From: "bot", At: "x", Body: ok})); err != nil {
		t.Fatalf("a msg frame with lists %d deep: %v", MaxListDepth, err)
	}
}

func TestDecodeAcceptsUnknownMembersAndNulls(t *testing.T) {
	f, err := Decode([]byte(`{"type":"send","id":"c1","text":"hi","future":{"x":[1,2]},"visitor":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if s := f.(*Send); s.ID != "c1" || s.Text != "hi" {
		t.Fatalf("got %#v", s)
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		link bool
		ok   bool
	}{
		{"https://example.com", false, true},
		{"HTTP://example.com/x", false, true},
		{"mailto:a@example.com", true, true},
		{"tel:+3247799", true, true},
		{"mailto:a@example.com", false, false},
		{"javascript:alert(1)", true, false},
		{"JavaScript:alert(1)", true, false},
		{"data:text/html,<script>", true, false},
		{"//example.com", true, false},
		{"https:///path", true, false},
		{"https://exa mple.com", true, false},
		{"https://example.com/\"onmouseover", true, false},
		{"", true, false},
	} {
		err := CheckURL("u", c.url, c.link)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, link=%v) = %v, want ok=%v", c.url, c.link, err, c.ok)
		}
	}
}

// FuzzParseJSON holds the parser to encoding/json: the same documents are
// valid, and what we re-encode means the same thing.
func FuzzParseJSON(f *testing.F) {
	for _, fr := range sampleFrames() {
		f.Add(Encode(fr))
	}
	f.Add([]byte(`"\ud83d\ude00 \ud800 \udc00 \u0000"`))
	f.Add([]byte("\"\xff\xfe\""))
	f.Add([]byte(`[1e5,-0.5,0,{"a":{"b":null}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseJSON(data)
		if (err == nil) != json.Valid(data) {
			if err != nil && strings.Contains(err.Error(), "nested too deeply") {
				return
			}
			t.Fatalf("ParseJSON err=%v, json.Valid=%v for %q", err, json.Valid(data), data)
		}
		if err != nil {
			return
		}
		std, again := useNumber(t, data), useNumber(t, AppendJSONValue(nil, v))
		if !reflect.DeepEqual(std, again) {
			t.Fatalf("re-encoding changed the value: %#v vs %#v", std, again)
		}
	})
}

func useNumber(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	if runtime.GOOS != "js" {
		// In the browser ParseJSON keeps a number's value, not its
		// spelling (json_parse_js.go): compare numbers as float64 there.
		d.UseNumber()
	}
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return v
}
