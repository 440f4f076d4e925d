package chatlayertest

import (
	"encoding/json"
	"strings"
)

// incoming is an accepted user message, as the scripted bot sees it.
type incoming struct {
	kind    string // "intro", "text" or "postback"
	text    string // typed text
	title   string // the clicked button's title
	next    string // nextDialogstateId of a click
	payload string // opaque payload of a click
	session map[string]json.RawMessage
}

// Commands the scripted bot understands, typed or clicked. Each answers
// with the message kind it names; "all" answers with every kind.
var commands = []string{"text", "quick", "buttons", "carousel", "list", "media", "image", "video", "audio", "file", "event", "plugin", "all"}

// opaque maps the opaque payloads the bot puts on buttons to their
// titles, so that a legacy click (which sends the payload as text) is
// still recognised as a click.
var opaque = map[string]string{
	"emu-qr-carousel": "Carousel",
	"emu-card-2":      "Choose second",
	"emu-more":        "View more",
	"emu-yes":         "Yes",
}

// legacyIncoming reads a legacy message's text: a stringified JSON click
// payload or one of our opaque payloads is a click, anything else typed.
func legacyIncoming(text string) incoming {
	if t, ok := opaque[text]; ok {
		return incoming{kind: "postback", title: t, payload: text}
	}
	if strings.HasPrefix(strings.TrimSpace(text), "{") {
		var p struct {
			Title, Caption, OriginalTitle string
			NextDialogstateID             string `json:"nextDialogstateId"`
		}
		if json.Unmarshal([]byte(text), &p) == nil {
			if title := firstOf(p.Caption, p.Title, p.OriginalTitle); title != "" {
				return incoming{kind: "postback", title: title, next: p.NextDialogstateID}
			}
		}
	}
	return incoming{kind: "text", text: text}
}

// mediaSet is the URLs of the bot's media.
type mediaSet struct{ image, video, audio, file string }

// script returns the bot's replies to in, one Messenger-style (or, for
// "plugin", API-plugin-style) message each, linking to the media in m.
func script(in incoming, m mediaSet) []json.RawMessage {
	var out []any
	switch in.kind {
	case "intro":
		out = greeting()
	case "postback":
		out = append(out, text("You clicked "+in.title+"."))
		var topic string
		if t, ok := strings.CutPrefix(in.next, "emu-"); ok {
			topic = t
		}
		if t, ok := strings.CutPrefix(in.payload, "emu-qr-"); ok {
			topic = t
		}
		if topic == "" {
			topic = strings.ToLower(in.title)
		}
		out = append(out, kind(topic, m)...)
	case "text":
		cmd := strings.ToLower(strings.TrimSpace(in.text))
		if msgs := kind(cmd, m); msgs != nil {
			out = msgs
		} else if cmd == "hi" || cmd == "hello" || cmd == "start" {
			out = greeting()
		} else {
			out = append(out, text("You said: "+in.text))
		}
	}
	if raw, ok := in.session["plan"]; ok {
		plan := string(raw)
		if s, isStr := str(raw); isStr {
			plan = s
		}
		out = append(out, text("Your plan is "+plan+"."))
	}
	msgs := make([]json.RawMessage, 0, len(out))
	for _, msg := range out {
		b, _ := json.Marshal(msg)
		msgs = append(msgs, b)
	}
	return msgs
}

// kind returns the messages of one command, or nil for an unknown one.
func kind(cmd string, m mediaSet) []any {
	switch cmd {
	case "text":
		return []any{text("This is a text message from the emulated Chatlayer bot.")}
	case "quick", "quick replies":
		return []any{quickReplies(m)}
	case "buttons":
		return []any{buttonTemplate()}
	case "carousel":
		return []any{genericTemplate(m)}
	case "list":
		return []any{listTemplate(m)}
	case "media":
		return []any{mediaMsg("image", m), mediaMsg("video", m), mediaMsg("audio", m), mediaMsg("file", m)}
	case "image", "video", "audio", "file":
		return []any{mediaMsg(cmd, m)}
	case "event":
		return []any{event(), text("An event went by before this message; it is not shown.")}
	case "plugin":
		return pluginMessages(m)
	case "all":
		return []any{
			text("Every kind of message follows."), quickReplies(m), buttonTemplate(), genericTemplate(m),
			listTemplate(m), mediaMsg("image", m), mediaMsg("video", m), mediaMsg("audio", m),
			mediaMsg("file", m), event(),
		}
	}
	return nil
}

type obj = map[string]any

func text(s string) obj { return obj{"text": s} }

// click is the JSON kind of postback payload Chatlayer's flows put on
// buttons and quick replies; nextDialogstateId names the topic it opens.
func click(title, topic, typ string) string {
	b, _ := json.Marshal(obj{
		"title": title, "caption": title, "type": typ, "originalTitle": title,
		"nextDialogstateId": "emu-" + topic,
		"parameters":        []obj{{"order": 0, "key": "topic", "value": topic, "__typename": "Parameter"}},
	})
	return string(b)
}

func greeting() []any {
	params, _ := json.Marshal(obj{
		"params": []obj{{"key": "topic", "value": "media"}}, "nextDialogstateId": "emu-media",
		"type": "quickreply", "caption": "Media",
	})
	return []any{obj{
		"text": "Hi! I am the emulated Chatlayer bot. Pick a topic, or type one of: " + strings.Join(commands, ", ") + ".",
		"quick_replies": []obj{
			{"content_type": "text", "title": "Buttons", "payload": click("Buttons", "buttons", "quickreply")},
			{"content_type": "text", "title": "Carousel", "payload": "emu-qr-carousel"},
			{"content_type": "text", "title": "Media", "payload": string(params)},
		},
	}}
}

func quickReplies(m mediaSet) obj {
	return obj{
		"text": "Pick a quick reply:",
		"quick_replies": []obj{
			{"content_type": "text", "title": "Buttons", "payload": click("Buttons", "buttons", "quickreply")},
			{"content_type": "text", "title": "Carousel", "payload": "emu-qr-carousel", "image_url": m.image},
			{"content_type": "user_email"}, // asks Messenger for the e-mail: not for a web widget
		},
	}
}

func buttonTemplate() obj {
	return attachment("template", obj{
		"template_type": "button",
		"text":          "Here are three buttons.",
		"buttons": []obj{
			{"type": "postback", "title": "Show media", "payload": click("Show media", "media", "button")},
			{"type": "web_url", "title": "Chatlayer", "url": "https://www.chatlayer.ai"},
			{"type": "phone_number", "title": "Call us", "payload": "+32 477 99 00 22"},
		},
	})
}

func genericTemplate(m mediaSet) obj {
	return attachment("template", obj{
		"template_type": "generic",
		"elements": []obj{
			{
				"title": "Blue rose", "subtitle": "A card with an image, a default action and buttons",
				"image_url":      m.image,
				"default_action": obj{"type": "web_url", "url": "https://www.chatlayer.ai"},
				"buttons": []obj{
					{"type": "postback", "title": "Buy the rose", "payload": click("Buy the rose", "buttons", "button")},
					{"type": "web_url", "title": "Read more", "url": "https://www.chatlayer.ai/blog"},
					{"type": "element_share"},
				},
			},
			{
				"title": "Second card", "subtitle": "With an item_url and an opaque postback",
				"image_url": m.image, "item_url": "https://www.chatlayer.ai/second",
				"buttons": []obj{{"type": "postback", "title": "Choose second", "payload": "emu-card-2"}},
			},
		},
	})
}

func listTemplate(m mediaSet) obj {
	return attachment("template", obj{
		"template_type": "list",
		"elements": []obj{
			{"title": "First item", "subtitle": "A list element", "image_url": m.image,
				"buttons": []obj{{"type": "web_url", "title": "Open", "url": "https://www.chatlayer.ai"}}},
			{"title": "Second item", "subtitle": "Another one"},
		},
		"buttons": []obj{{"type": "postback", "title": "View more", "payload": "emu-more"}},
	})
}

func mediaMsg(kind string, m mediaSet) obj {
	url := map[string]string{"image": m.image, "video": m.video, "audio": m.audio, "file": m.file}[kind]
	return attachment(kind, obj{"url": url, "is_reusable": false})
}

func attachment(typ string, payload obj) obj {
	return obj{"attachment": obj{"type": typ, "payload": payload}}
}

func event() obj {
	return obj{"type": "event", "name": "emulator.event", "data": obj{"note": "for integrations, not for display"}}
}

// pluginMessages are the older API-plugin shape {type, config}.
func pluginMessages(m mediaSet) []any {
	return []any{
		obj{"type": "text", "config": obj{"textMessages": []obj{{"text": "An API-plugin text message."}}}},
		obj{"type": "buttons", "config": obj{"text": "API-plugin buttons", "buttons": []obj{
			{"type": "postback", "title": "Yes", "payload": "emu-yes"},
			{"type": "web_url", "title": "Chatlayer", "url": "https://www.chatlayer.ai"},
		}}},
		obj{"type": "quickReplies", "config": obj{"text": "API-plugin quick replies", "quickReplies": []obj{
			{"title": "Yes", "payload": "emu-yes"},
		}}},
		obj{"type": "carousel", "config": obj{"elements": []obj{{
			"title": "Plugin card", "subTitle": "subtitle", "imageUrl": m.image,
			"webUrl":  "https://www.chatlayer.ai",
			"buttons": []obj{{"type": "web_url", "title": "Open", "url": "https://www.chatlayer.ai"}},
		}}}},
		obj{"type": "media", "config": obj{"media": obj{"type": "image", "url": m.image}}},
	}
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}
