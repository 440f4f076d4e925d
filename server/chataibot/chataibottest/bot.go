package chataibottest

import (
	"strconv"
	"strings"

	"github.com/porthole-chat/porthole/server/chataibot"
)

// The scripted bot. Each visitor message gets one reply batch. The first
// message of a conversation is greeted, echoing it and the conversation
// variable "plan" when the start call set one. Then the message itself is
// answered: a keyword below (the whole message, any case) gets that kind
// of message; "all" gets one of every kind; "plan", "first" and "count"
// report the conversation's state; anything else is echoed with the
// conversation's message counter.

// Kinds are the keywords that each get one kind of bot message, in the
// order "all" answers them.
var Kinds = []string{"text", "quick", "buttons", "carousel", "image", "video", "audio", "file"}

// answer returns the bot's reply batch to text. s.mu must be held.
func (s *Server) answer(c *conversation, text string) []chataibot.BotMessage {
	c.Counter++
	var out []chataibot.BotMessage
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

func say(text string) chataibot.BotMessage {
	return chataibot.BotMessage{Type: "text", Data: chataibot.BotData{Body: text}}
}

func (s *Server) kind(k string) chataibot.BotMessage {
	m, _ := s.kindOK(k)
	return m
}

// kindOK returns the sample message of kind k.
func (s *Server) kindOK(k string) (chataibot.BotMessage, bool) {
	media := s.opts.MediaBase
	postback := func(title, payload string) chataibot.BotButton {
		return chataibot.BotButton{Type: "postback", Title: title, Payload: payload}
	}
	switch k {
	case "text":
		return say("This is a text message.\nIt has two lines and a link: https://chataibot.io"), true
	case "quick":
		return chataibot.BotMessage{Type: "text", Data: chataibot.BotData{
			Body:         "Pick a quick reply:",
			QuickReplies: []chataibot.Choice{{Title: "Yes", Payload: "yes"}, {Title: "No", Payload: "no"}, {Title: "Maybe"}},
		}}, true
	case "buttons":
		return chataibot.BotMessage{Type: "buttons", Data: chataibot.BotData{
			Body: "Buttons of every type:",
			Buttons: []chataibot.BotButton{
				postback("Plans", "plans"),
				{Type: "url", Title: "Website", URL: "https://chataibot.io"},
				{Type: "phone", Title: "Call us", Phone: "+32 477 99 00 22"},
			},
		}}, true
	case "carousel":
		return chataibot.BotMessage{Type: "carousel", Data: chataibot.BotData{Cards: []chataibot.BotCard{
			{Title: "Basic", Subtitle: "For one site", ImageURL: media + "/basic.png", URL: "https://chataibot.io/basic",
				Buttons: []chataibot.BotButton{postback("Choose Basic", "basic")}},
			{Title: "Pro", Subtitle: "For many sites", ImageURL: media + "/pro.png",
				Buttons: []chataibot.BotButton{postback("Choose Pro", "pro"), {Type: "url", Title: "Details", URL: "https://chataibot.io/pro"}}},
		}}}, true
	case "image":
		return chataibot.BotMessage{Type: "image", Data: chataibot.BotData{URL: media + "/diagram.png", Caption: "A diagram"}}, true
	case "video":
		return chataibot.BotMessage{Type: "video", Data: chataibot.BotData{URL: media + "/intro.mp4", Caption: "Intro video"}}, true
	case "audio":
		return chataibot.BotMessage{Type: "audio", Data: chataibot.BotData{URL: media + "/hello.mp3"}}, true
	case "file":
		return chataibot.BotMessage{Type: "file", Data: chataibot.BotData{URL: media + "/price-list.pdf", Name: "price-list.pdf"}}, true
	}
	return chataibot.BotMessage{}, false
}
