package chatlayer

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the normalizer's output")

// historyRow is a legacy history row with its normalized bodies, the
// golden form of legacy-history-response.json.
type historyRow struct {
	ID      string        `json:"id"`
	Actor   string        `json:"actor"`
	IsIntro bool          `json:"isIntro"`
	Bodies  []widget.Body `json:"bodies"`
}

// TestGolden normalizes every message found in the documented samples
// (callbacks, legacy history rows, legacy webview messages) and compares
// the neutral output with testdata/golden; -update rewrites the files.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures", err)
	}
	covered := 0
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		switch {
		case strings.HasPrefix(name, "callback-"):
			var cb struct{ Message json.RawMessage }
			mustUnmarshal(t, name, data, &cb)
			got = mustNormalize(t, name, cb.Message)
		case name == "legacy-history-response":
			var h struct {
				Rows []struct {
					ID      string          `json:"id"`
					Actor   string          `json:"actor"`
					IsIntro bool            `json:"isIntro"`
					Message json.RawMessage `json:"message"`
				} `json:"rows"`
				Count int `json:"count"`
			}
			mustUnmarshal(t, name, data, &h)
			if len(h.Rows) == 0 || h.Count != len(h.Rows) {
				t.Fatalf("%s: %d rows, count %d", name, len(h.Rows), h.Count)
			}
			var rows []historyRow
			for i, r := range h.Rows {
				rows = append(rows, historyRow{r.ID, r.Actor, r.IsIntro, mustNormalize(t, name+"/rows/"+string(rune('0'+i)), r.Message)})
			}
			got = rows
		case strings.HasPrefix(name, "legacy-webview"):
			var wv struct{ Messages []json.RawMessage }
			mustUnmarshal(t, name, data, &wv)
			var all [][]widget.Body
			for _, m := range wv.Messages {
				all = append(all, mustNormalize(t, name, m))
			}
			got = all
		default:
			continue // requests and the NLP answer: see TestFixturesParse and the emulator tests
		}
		covered++
		checkGolden(t, name, got)
	}
	if covered < 9 {
		t.Fatalf("only %d fixtures had golden files", covered)
	}
}

func mustUnmarshal(t *testing.T, name string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func mustNormalize(t *testing.T, name string, msg json.RawMessage) []widget.Body {
	t.Helper()
	bodies, err := Normalize(msg)
	if err != nil {
		t.Fatalf("%s: Normalize: %v", name, err)
	}
	for i, b := range bodies {
		if err := b.Validate(); err != nil {
			t.Fatalf("%s: body %d does not validate: %v", name, i, err)
		}
	}
	return bodies
}

func checkGolden(t *testing.T, name string, got any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep URLs readable in the golden files
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (run go test -run TestGolden -update)", name, err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("%s: normalized output differs from %s (run with -update if intended)\ngot:\n%s", name, path, out)
	}
}

// TestFixturesParse checks that the samples without a golden file parse
// into what the adapter and the emulator expect of them.
func TestFixturesParse(t *testing.T) {
	var nlp struct {
		Data struct {
			Extract struct {
				Intent  string  `json:"intent"`
				Score   float64 `json:"score"`
				Intents []struct {
					Intent string  `json:"intent"`
					Score  float64 `json:"score"`
				} `json:"intents"`
			} `json:"extract"`
		} `json:"data"`
	}
	data, err := os.ReadFile("testdata/fixtures/legacy-nlp-extract-response.json")
	if err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, "nlp", data, &nlp)
	if nlp.Data.Extract.Intent != "book train ticket" || len(nlp.Data.Extract.Intents) != 3 {
		t.Fatalf("nlp sample parsed as %+v", nlp)
	}
}

// TestFixturesMatchShared keeps the copies in testdata identical to the
// shared samples, when the shared folder is present.
func TestFixturesMatchShared(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "fixtures", "chatlayer")
	files, _ := filepath.Glob(filepath.Join(shared, "*.json"))
	if len(files) == 0 {
		t.Skip("no shared fixtures next to the repository")
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join("testdata", "fixtures", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/fixtures/%s is missing or differs from the shared sample", filepath.Base(f))
		}
	}
}

func TestNormalize(t *testing.T) {
	jsonPayload := `{"title":"Go","caption":"Go","type":"button","nextDialogstateId":"x","parameters":[]}`
	longText := strings.Repeat("é", widget.MaxText+10)
	cards11 := make([]map[string]any, 11)
	for i := range cards11 {
		cards11[i] = map[string]any{"title": "card"}
	}
	qrs14 := make([]map[string]any, 14)
	for i := range qrs14 {
		qrs14[i] = map[string]any{"content_type": "text", "title": "q", "payload": "p"}
	}
	btnTemplate := func(buttons ...map[string]any) map[string]any {
		return map[string]any{"attachment": map[string]any{"type": "template", "payload": map[string]any{"template_type": "button", "text": "pick", "buttons": buttons}}}
	}
	cases := []struct {
		name string
		msg  any
		want []widget.Body
	}{
		{"text", map[string]any{"text": "hi"}, []widget.Body{widget.Text("hi")}},
		{"bare string", "hi", []widget.Body{widget.Text("hi")}},
		{"long text is cut", map[string]any{"text": longText},
			[]widget.Body{widget.Text(strings.Repeat("é", widget.MaxText-1) + "…")}},
		{"postback payloads untouched", btnTemplate(
			map[string]any{"type": "postback", "title": "json", "payload": jsonPayload},
			map[string]any{"type": "postback", "title": "opaque", "payload": "  opaque id 7 "},
			map[string]any{"type": "postback", "title": "object", "payload": map[string]any{"a": 1}},
			map[string]any{"type": "postback", "title": "none"},
		), []widget.Body{{Kind: widget.KindButtons, Text: "pick", Buttons: []widget.Button{
			{Type: widget.ButtonPostback, Title: "json", Payload: jsonPayload},
			{Type: widget.ButtonPostback, Title: "opaque", Payload: "  opaque id 7 "},
			{Type: widget.ButtonPostback, Title: "object", Payload: `{"a":1}`},
			{Type: widget.ButtonPostback, Title: "none", Payload: "none"},
		}}}},
		{"button kinds", btnTemplate(
			map[string]any{"type": "web_url", "title": "site", "url": "https://example.com/a"},
			map[string]any{"type": "web_url", "title": "evil", "url": "javascript:alert(1)"},
			map[string]any{"type": "phone_number", "title": "call", "payload": "+32 477 99 00 22"},
			map[string]any{"type": "phone_number", "title": "bad phone", "payload": "call me"},
			map[string]any{"type": "element_share"},
			map[string]any{"type": "account_link", "title": "login", "url": "https://example.com"},
			map[string]any{"type": "postback", "title": "", "payload": "no title"},
		), []widget.Body{{Kind: widget.KindButtons, Text: "pick", Buttons: []widget.Button{
			{Type: widget.ButtonURL, Title: "site", URL: "https://example.com/a"},
			{Type: widget.ButtonPhone, Title: "call", Phone: "+32 477 99 00 22"},
		}}}},
		{"button template without a valid button is its text",
			btnTemplate(map[string]any{"type": "element_share"}), []widget.Body{widget.Text("pick")}},
		{"quick replies", map[string]any{"text": "q?", "quick_replies": []map[string]any{
			{"content_type": "text", "title": "A", "payload": "pa", "image_url": "https://example.com/i.png"},
			{"content_type": "user_email"},
			{"content_type": "location"},
			{"title": "B"},
			{"content_type": "text", "title": "", "payload": "x"},
		}}, []widget.Body{{Kind: widget.KindText, Text: "q?", QuickReplies: []widget.QuickReply{{Title: "A", Payload: "pa"}, {Title: "B", Payload: "B"}}}}},
		{"too many quick replies", map[string]any{"text": "q?", "quick_replies": qrs14}, func() []widget.Body {
			b := widget.Body{Kind: widget.KindText, Text: "q?"}
			for range widget.MaxQuickReplies {
				b.QuickReplies = append(b.QuickReplies, widget.QuickReply{Title: "q", Payload: "p"})
			}
			return []widget.Body{b}
		}()},
		{"quick replies without text become buttons", map[string]any{"quick_replies": []map[string]any{{"content_type": "text", "title": "A", "payload": "pa"}}},
			[]widget.Body{{Kind: widget.KindButtons, Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "A", Payload: "pa"}}}}},
		{"generic template", map[string]any{"attachment": map[string]any{"type": "template", "payload": map[string]any{"template_type": "generic", "elements": []map[string]any{
			{"title": "one", "subtitle": "s", "image_url": "https://example.com/1.png", "item_url": "https://example.com/1"},
			{"title": "two", "image_url": "data:image/png;base64,AAAA", "default_action": map[string]any{"type": "web_url", "url": "https://example.com/2"},
				"buttons": []map[string]any{{"type": "element_share"}, {"type": "postback", "title": "p", "payload": "pp"}}},
			{"subtitle": "no title: dropped"},
			{"title": "bad link", "item_url": "ftp://example.com"},
		}}}}, []widget.Body{{Kind: widget.KindCarousel, Cards: []widget.Card{
			{Title: "one", Subtitle: "s", Image: "https://example.com/1.png", URL: "https://example.com/1"},
			{Title: "two", URL: "https://example.com/2", Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "p", Payload: "pp"}}},
			{Title: "bad link"},
		}}}},
		{"too many cards", map[string]any{"attachment": map[string]any{"type": "template", "payload": map[string]any{"template_type": "generic", "elements": cards11}}},
			func() []widget.Body {
				b := widget.Body{Kind: widget.KindCarousel}
				for range widget.MaxCards {
					b.Cards = append(b.Cards, widget.Card{Title: "card"})
				}
				return []widget.Body{b}
			}()},
		{"list template", map[string]any{"attachment": map[string]any{"type": "template", "payload": map[string]any{"template_type": "list",
			"elements": []map[string]any{{"title": "a", "subtitle": "sa"}, {"title": "b"}},
			"buttons":  []map[string]any{{"type": "postback", "title": "more", "payload": "m"}},
		}}}, []widget.Body{
			{Kind: widget.KindCarousel, Cards: []widget.Card{{Title: "a", Subtitle: "sa"}, {Title: "b"}}},
			{Kind: widget.KindButtons, Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "more", Payload: "m"}}},
		}},
		{"media kinds", []any{
			map[string]any{"attachment": map[string]any{"type": "video", "payload": map[string]any{"url": "https://example.com/v.mp4"}}},
			map[string]any{"attachment": map[string]any{"type": "audio", "payload": map[string]any{"url": "https://example.com/a.mp3"}}},
			map[string]any{"attachment": map[string]any{"type": "file", "payload": map[string]any{"url": "https://example.com/f.pdf", "title": "Terms"}}},
			map[string]any{"attachment": map[string]any{"type": "image", "payload": map[string]any{"url": "javascript:x"}}},
			map[string]any{"attachment": map[string]any{"type": "fallback", "payload": map[string]any{"url": "https://example.com"}}},
		}, []widget.Body{
			{Kind: widget.KindMedia, Media: widget.MediaVideo, URL: "https://example.com/v.mp4"},
			{Kind: widget.KindMedia, Media: widget.MediaAudio, URL: "https://example.com/a.mp3"},
			{Kind: widget.KindMedia, Media: widget.MediaFile, URL: "https://example.com/f.pdf", Alt: "Terms"},
		}},
		{"text and attachment", map[string]any{"text": "look", "attachment": map[string]any{"type": "image", "payload": map[string]any{"url": "https://example.com/i.png"}}},
			[]widget.Body{widget.Text("look"), {Kind: widget.KindMedia, Media: widget.MediaImage, URL: "https://example.com/i.png"}}},
		{"plugin text", map[string]any{"type": "text", "config": map[string]any{"textMessages": []any{map[string]any{"text": "one"}, map[string]any{"text": " "}, "two"}}},
			[]widget.Body{widget.Text("one"), widget.Text("two")}},
		{"plugin buttons", map[string]any{"type": "buttons", "config": map[string]any{"text": "b?", "buttons": []map[string]any{
			{"type": "postback", "title": "yes", "payload": "y"}, {"type": "web_url", "title": "w", "url": "https://example.com"}}}},
			[]widget.Body{{Kind: widget.KindButtons, Text: "b?", Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "yes", Payload: "y"}, {Type: widget.ButtonURL, Title: "w", URL: "https://example.com"}}}}},
		{"plugin quick replies", map[string]any{"type": "quickReplies", "config": map[string]any{"textMessages": []map[string]any{{"text": "q?"}}, "quickReplies": []map[string]any{{"title": "yes", "payload": "y"}}}},
			[]widget.Body{{Kind: widget.KindText, Text: "q?", QuickReplies: []widget.QuickReply{{Title: "yes", Payload: "y"}}}}},
		{"plugin carousel", map[string]any{"type": "carousel", "config": map[string]any{"elements": []map[string]any{
			{"title": "t", "subTitle": "s", "imageUrl": "https://example.com/i.png", "webUrl": "https://example.com"}}}},
			[]widget.Body{{Kind: widget.KindCarousel, Cards: []widget.Card{{Title: "t", Subtitle: "s", Image: "https://example.com/i.png", URL: "https://example.com"}}}}},
		{"plugin media", map[string]any{"type": "media", "config": map[string]any{"media": map[string]any{"type": "audio", "url": "https://example.com/a.mp3"}}},
			[]widget.Body{{Kind: widget.KindMedia, Media: widget.MediaAudio, URL: "https://example.com/a.mp3"}}},
		{"event", map[string]any{"type": "event", "name": "x"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tc.msg)
			got, err := Normalize(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Fatalf("got  %s\nwant %s", g, w)
			}
			for i, b := range got {
				if err := b.Validate(); err != nil {
					t.Errorf("body %d: %v", i, err)
				}
			}
		})
	}
}

func TestNormalizeNothingToShow(t *testing.T) {
	for _, msg := range []string{
		``, `null`, `{}`, `[]`, `42`, `not json`, `{"text":"   "}`,
		`{"attachment":{"type":"image","payload":{"url":"javascript:alert(1)"}}}`,
		`{"attachment":{"type":"template","payload":{"template_type":"generic","elements":[{"subtitle":"no title"}]}}}`,
		`{"type":"carousel","config":{"elements":[]}}`,
	} {
		bodies, err := Normalize(json.RawMessage(msg))
		if !errors.Is(err, ErrNothingToShow) || bodies != nil {
			t.Errorf("Normalize(%s) = %v, %v; want ErrNothingToShow", msg, bodies, err)
		}
	}
}

// TestNormalizesEveryEmulatorMessage reads what the emulator's scripted
// bot sends (the greeting, every kind, a click's answer, session data,
// the API-plugin shape, media under a MediaBase) straight from its
// callbacks, and normalizes each message: the emulator's own tests check
// its callbacks against the contract, this checks that the adapter
// understands all of them.
func TestNormalizesEveryEmulatorMessage(t *testing.T) {
	sent := func(r *rig) []json.RawMessage {
		r.idle()
		var out []json.RawMessage
		for _, cb := range r.emu.Callbacks() {
			var body struct{ Message json.RawMessage }
			if err := json.Unmarshal(cb.Body, &body); err != nil {
				t.Fatalf("callback body %s: %v", cb.Body, err)
			}
			out = append(out, body.Message)
		}
		return out
	}
	r := newRig(t, ModeV1, nil)
	r.send(provider.Message{Kind: provider.Start})
	r.send(provider.Message{Kind: provider.Text, Text: "all"})
	r.send(provider.Message{Kind: provider.Postback, Text: "Carousel", Payload: "emu-qr-carousel"})
	r.send(provider.Message{Kind: provider.Text, Text: "hey", Session: []byte(`{"plan":"pro"}`)})
	r.send(provider.Message{Kind: provider.Text, Text: "plugin"})
	msgs := sent(r)
	if len(msgs) < 20 {
		t.Fatalf("only %d bot messages", len(msgs))
	}
	for i, m := range msgs {
		if _, err := Normalize(m); err != nil {
			t.Errorf("bot message %d does not normalize: %v: %s", i, err, m)
		}
	}

	r = newRig(t, ModeV1, func(_ *Config, o *chatlayertest.Options) { o.MediaBase = "http://127.0.0.1:8080/static/demo/" })
	r.send(provider.Message{Kind: provider.Text, Text: "media"})
	var urls []string
	for _, m := range sent(r) {
		bodies, err := Normalize(m)
		if err != nil || len(bodies) != 1 {
			t.Fatalf("%s: %v", m, err)
		}
		urls = append(urls, bodies[0].URL)
	}
	want := "http://127.0.0.1:8080/static/demo/harbour.svg http://127.0.0.1:8080/static/demo/waves.webm http://127.0.0.1:8080/static/demo/bell.wav http://127.0.0.1:8080/static/demo/porthole-demo.pdf"
	if strings.Join(urls, " ") != want {
		t.Fatalf("media URLs %v", urls)
	}
}
