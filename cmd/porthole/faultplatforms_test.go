package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
)

// platform is what the fault suite needs of a platform emulator.
type platform interface {
	Handler() http.Handler
	Close()
	// bot is the YAML entry of bot "shop" on this platform at base.
	bot(base string) string
	// setHook points the platform's callbacks at the proxy.
	setHook(proxy string)
	// accepted counts the visitor texts the platform took, by text.
	accepted() map[string]int
	// replies returns the bot messages of every callback the proxy
	// answered with a 2xx, once each however often it was posted.
	// replies lists the reply batches the server accepted, once each,
	// leaving out those for platform conversations in dropped.
	replies(t *testing.T, dropped map[string]bool) []reply
	// idle returns once no callback is queued or in flight.
	idle(ctx context.Context) error
}

// reply is a bot message the proxy accepted. conv is our conversation id
// when the platform's callback names it (Chatlayer), else empty; order
// is the platform's messageCounter, 0 when it has none.
type reply struct {
	conv, text string
	order      uint64
}

// aiPlatform is the ChatAIBot emulator as a platform.
type aiPlatform struct{ *chataibottest.Server }

func (p aiPlatform) bot(base string) string {
	return fmt.Sprintf(`  - id: shop
    provider: chataibot
    origins: ["self"]
    chataibot: {base_url: %q, token: %q, bot_key: %q, webhook_secret: %q}
`, base, chataibottest.DefaultToken, chataibottest.DefaultBotKey, faultSecret)
}

func (p aiPlatform) setHook(proxy string) { p.SetCallback(proxy+"/hooks/chataibot/shop", faultSecret) }

func (p aiPlatform) idle(ctx context.Context) error { return p.WaitIdle(ctx) }

func (p aiPlatform) accepted() map[string]int {
	n := map[string]int{}
	for _, c := range p.Conversations() {
		for _, m := range c.Messages {
			n[m]++
		}
	}
	return n
}

// replies: a batch posted twice is one batch (its message_id).
func (p aiPlatform) replies(t *testing.T, dropped map[string]bool) []reply {
	seen := map[string]bool{}
	var out []reply
	for _, a := range p.Callbacks() {
		if a.Status < 200 || a.Status > 299 {
			continue
		}
		var cb chataibot.Callback
		if err := json.Unmarshal(a.Body, &cb); err != nil {
			t.Fatalf("callback body: %v", err)
		}
		if seen[cb.MessageID] || dropped[cb.Ref()] {
			continue
		}
		seen[cb.MessageID] = true
		for _, m := range cb.Messages {
			out = append(out, reply{text: m.Data.Body})
		}
	}
	return out
}

// clPlatform is the Chatlayer emulator as a platform.
type clPlatform struct {
	*chatlayertest.Server
	// reorderWait is the bot's reorder_wait; "" is 500ms. Several
	// instances get longer: a held callback there waits for a store
	// write on another process, slower on a loaded machine.
	reorderWait string
}

// bot: when the emulator's sessions expire, the bot's retry_window is a
// third of the expiry, well below it as a deployment's must be.
func (p clPlatform) bot(base string) string {
	window, wait := "", p.reorderWait
	if wait == "" {
		wait = "500ms"
	}
	if e := p.SessionExpiry(); e > 0 {
		window = ", retry_window: " + (e / 3).String()
	}
	return fmt.Sprintf(`  - id: shop
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %q, channel_id: %q, bot_id: %q, token: %q, verify_token: %q, reorder_wait: %s%s}
`, base, chatlayertest.DefaultChannelID, chatlayertest.DefaultBotID, chatlayertest.DefaultToken, chatlayertest.DefaultVerifyToken, wait, window)
}

func (p clPlatform) setHook(proxy string) { p.SetCallback(proxy + "/hooks/chatlayer/shop") }

func (p clPlatform) idle(ctx context.Context) error { return p.WaitIdle(ctx) }

func (p clPlatform) accepted() map[string]int {
	n := map[string]int{}
	for _, q := range p.Requests() {
		if q.Status < 200 || q.Status > 299 || q.Kind != "text" {
			continue
		}
		var body struct {
			Message struct {
				TextMessage struct{ Text string } `json:"textMessage"`
			} `json:"message"`
		}
		json.Unmarshal(q.Body, &body)
		n[body.Message.TextMessage.Text]++
	}
	return n
}

// replies are every bot message Chatlayer produced, whether its
// callback arrived, failed or was dropped: the bot has a bot_id, so the
// server reconciles from the history what the callbacks lost. A message
// posted twice is one message (its user, session and counter). The order
// is the session, then the counter: a new session (after an expiry)
// numbers its messages from 1 again.
func (p clPlatform) replies(t *testing.T, _ map[string]bool) []reply {
	type key struct {
		user             string
		session, counter uint64
	}
	seen := map[key]bool{}
	var out []reply
	for _, c := range p.Callbacks() {
		k := key{c.Conversation, c.Epoch, c.Seq}
		if seen[k] {
			continue
		}
		seen[k] = true
		var cb struct{ Message struct{ Text string } }
		if err := json.Unmarshal(c.Body, &cb); err != nil {
			t.Fatalf("callback message: %v", err)
		}
		out = append(out, reply{conv: c.Conversation, text: cb.Message.Text, order: c.Epoch<<32 | c.Seq})
	}
	return out
}
