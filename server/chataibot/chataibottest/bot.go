package chataibottest

import (
	"strconv"
	"strings"
)

// The scripted bot. Each visitor message gets one reply batch. The first
// message of a conversation is greeted, echoing it and the conversation
// variable "plan" when the start call set one. Then the message itself is
// answered: a keyword below (the whole message, any case) gets that kind
// of message; "all" gets one of every kind; "plan", "first" and "count"
// report the conversation's state; anything else is echoed with the
// conversation's message counter.
//
// The messages are built as literal JSON of the assumed reply shape the
// README documents ({"type", "data"}), not from the adapter's types: an
// adapter that stops reading that shape must fail its tests.

// Kinds are the keywords that each get one kind of bot message, in the
// order "all" answers them.
var Kinds = []string{"text", "quick", "buttons", "carousel", "image", "video", "audio", "file"}

// answer returns the bot's reply batch to text. s.mu must be held.
func (s *Server) answer(c *conversation, text string) []obj {
	c.Counter++
	var out []obj
	if c.Counter == 1 {
		greet := "Welcome! Your first message was: " + c.Messages[0]
		if c.plan != "" {
			greet += ". Your plan: " + c.plan
		}
		out = append(out, say(greet))
	}
	switch kw := strings.ToLower(strings.TrimSpace(text)); kw {
	case "all":
		for _, k := range Kinds {
			out = append(out, s.kind(k))
		}
	case "plan":
		if c.plan == "" {
			out = append(out, say("You have no plan set."))
		} else {
			out = append(out, say("Your plan: "+c.plan))
		}
	case "first":
		out = append(out, say("Your first message was: "+c.Messages[0]))
	case "count":
		out = append(out, say("Messages so far: "+strconv.Itoa(c.Counter)))
	default:
		if m, ok := s.kindOK(kw); ok {
			out = append(out, m)
		} else {
			out = append(out, say("You said: "+text+" (message "+strconv.Itoa(c.Counter)+")"))
		}
	}
	return out
}

// obj is a JSON object, as the bot's messages and callbacks are written.
type obj = map[string]any

// message is a bot message of type typ with data.
func message(typ string, data obj) obj { return obj{"type": typ, "data": data} }

func say(text string) obj { return message("text", obj{"body": text}) }

func (s *Server) kind(k string) obj {
	m, _ := s.kindOK(k)
	return m
}

// kindOK returns the sample message of kind k.
func (s *Server) kindOK(k string) (obj, bool) {
	media := s.opts.MediaBase
	postback := func(title, payload string) obj {
		return obj{"type": "postback", "title": title, "payload": payload}
	}
	switch k {
	case "text":
		return say("This is a text message.\nIt has two lines and a link: https://chataibot.io"), true
	case "quick":
		return message("text", obj{
			"body":          "Pick a quick reply:",
			"quick_replies": []obj{{"title": "Yes", "payload": "yes"}, {"title": "No", "payload": "no"}, {"title": "Maybe"}},
		}), true
	case "buttons":
		return message("buttons", obj{
			"body": "Buttons of every type:",
			"buttons": []obj{
				postback("Plans", "plans"),
				{"type": "url", "title": "Website", "url": "https://chataibot.io"},
				{"type": "phone", "title": "Call us", "phone": "+32 477 99 00 22"},
			},
		}), true
	case "carousel":
		return message("carousel", obj{"cards": []obj{
			{"title": "Basic", "subtitle": "For one site", "image_url": media + "/basic.png", "url": "https://chataibot.io/basic",
				"buttons": []obj{postback("Choose Basic", "basic")}},
			{"title": "Pro", "subtitle": "For many sites", "image_url": media + "/pro.png",
				"buttons": []obj{postback("Choose Pro", "pro"), {"type": "url", "title": "Details", "url": "https://chataibot.io/pro"}}},
		}}), true
	case "image":
		return message("image", obj{"url": media + "/diagram.png", "caption": "A diagram"}), true
	case "video":
		return message("video", obj{"url": media + "/intro.mp4", "caption": "Intro video"}), true
	case "audio":
		return message("audio", obj{"url": media + "/hello.mp3"}), true
	case "file":
		return message("file", obj{"url": media + "/price-list.pdf", "name": "price-list.pdf"}), true
	}
	return nil, false
}
