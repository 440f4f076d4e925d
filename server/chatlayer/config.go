package chatlayer

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
)

// Modes of the adapter.
const (
	// ModeV1 speaks the current Webhook channel API:
	// POST {base}/v1/channels/webhook/{channel_id}/messages with a bearer
	// token. It is the default.
	ModeV1 = "v1"
	// ModeLegacy speaks the deprecated but documented
	// POST {base}/api/webhookMessage/{bot_id}, authenticated by the
	// verify token in the body.
	ModeLegacy = "legacy"
)

// regions are Chatlayer's API hosts by region, from PROVIDERS.md, so an
// operator writes "region: us" instead of copying a host name.
var regions = map[string]string{
	"eu":      "https://api.chatlayer.ai",
	"us":      "https://api.prod.us-east4.gcp.chatlayer.ai",
	"asia":    "https://api.prod.asia-south1.gcp.chatlayer.ai",
	"staging": "https://api.staging.europe-west1.gc.chatlayer.ai",
}

// DefaultRegion is the region used when neither region nor base_url is set.
const DefaultRegion = "eu"

// DefaultReorderWait is how long a callback that arrives ahead of its
// turn waits for the missing ones before it is shown anyway.
const DefaultReorderWait = time.Second

// maxReorderWait bounds reorder_wait: a held callback keeps Chatlayer's
// HTTP request open, so the wait must stay well under its timeout.
const maxReorderWait = 10 * time.Second

// DefaultRetryWindow is how long after a conversation's counter last
// moved a callback numbered at or below it is still taken for a copy (a
// retry or a late one) rather than for a new Chatlayer session.
const DefaultRetryWindow = 10 * time.Minute

// maxRetryWindow bounds retry_window below Chatlayer's default session
// expiry (30 days): past that, no new session would ever be seen.
const maxRetryWindow = 7 * 24 * time.Hour

// Config is one bot's Chatlayer settings, the `chatlayer:` block of a bot
// in the server configuration. Secrets are provider.Secret, so printing
// or logging a Config never shows them.
type Config struct {
	// Mode is the API generation to speak: "v1" (default, the Webhook
	// channel API with a bearer token) or "legacy" (the older
	// /api/webhookMessage endpoint, for bots without a V1 channel).
	Mode string `yaml:"mode"`
	// Region picks Chatlayer's API host: "eu" (default,
	// https://api.chatlayer.ai), "us", "asia" or "staging". Ignored when
	// BaseURL is set.
	Region string `yaml:"region"`
	// BaseURL is the API host to call, such as https://api.chatlayer.ai
	// or an emulator's URL; it overrides Region. No trailing path is
	// needed; one is kept if given (for a forwarding proxy).
	BaseURL string `yaml:"base_url"`
	// ChannelID is the id of the bot's Webhook channel in Chatlayer.
	// Required in mode v1.
	ChannelID string `yaml:"channel_id"`
	// BotID is the Chatlayer bot id. Required in mode legacy, where it is
	// part of the message URL.
	BotID string `yaml:"bot_id"`
	// Token is the V1 API token, written <tokenId>:<tokenSecret> and sent
	// as "Authorization: Bearer <token>". Required in mode v1. Write it as
	// "${CHATLAYER_TOKEN}" and keep the value in the environment.
	Token provider.Secret `yaml:"token"`
	// VerifyToken is the verify token set on the Webhook channel in
	// Chatlayer. Every callback must carry it (compared in constant time);
	// mode legacy also sends it with each message. Required.
	VerifyToken provider.Secret `yaml:"verify_token"`
	// Greet sends Chatlayer's introMessage when a conversation starts, so
	// the bot's welcome flow greets the visitor first. Default true. Mode
	// legacy has no intro message and never greets.
	Greet *bool `yaml:"greet"`
	// ReplyTyping shows the bot's typing indicator once Chatlayer accepted
	// a visitor message, until the first reply arrives (the widget hides
	// it on a bot message, or after 30 seconds without one). Default true.
	ReplyTyping *bool `yaml:"reply_typing"`
	// ReorderWait is how long a callback whose messageCounter is ahead of
	// the next expected one waits for the missing ones before it is shown
	// anyway, such as "1s" (default). At most 10s.
	ReorderWait time.Duration `yaml:"reorder_wait"`
	// RetryWindow is how long Chatlayer may still send a callback after
	// the ones numbered after it arrived (its retries and delays), such
	// as "10m" (default). A callback numbered at or below the last one
	// shown that comes later than this after it means Chatlayer started
	// a new session (the old one expired, 30 days by default) and
	// restarted its messageCounter, so its replies are shown as new
	// instead of being dropped as copies. Keep it well below the bot's
	// session expiry in Chatlayer and above reorder_wait.
	RetryWindow time.Duration `yaml:"retry_window"`
	// History turns on reconciliation from Chatlayer's conversation
	// history: bot replies whose callbacks never arrived (Porthole was
	// down or unreachable longer than Chatlayer retries, or a callback
	// was lost) are fetched from the history and shown, in order and
	// once. It needs bot_id, and token (mode v1's bearer token; in mode
	// legacy the API token, sent as access_token). Default: on when both
	// are set.
	History *bool `yaml:"history"`
	// HistoryPerMinute bounds the history calls this bot makes, such as
	// 60 (default), to stay under Chatlayer's rate limits. At most 600.
	HistoryPerMinute int `yaml:"history_per_minute"`
	// SessionDialogstate, when set, sends a page's session data
	// (Porthole.setSessionData) to Chatlayer at once, through its
	// asynchronous endpoint (POST /api/webview), rather than with the
	// visitor's next message. Chatlayer takes such a call only with a
	// message or a dialog state to go to: this is the id of a dialog
	// state the bot owner made for it (one that only takes the data,
	// says nothing and waits). It needs bot_id and token.
	SessionDialogstate string `yaml:"session_dialogstate"`
}

// DefaultHistoryPerMinute is the history calls a bot makes per minute
// at most when history_per_minute is not set.
const DefaultHistoryPerMinute = 60

// maxHistoryPerMinute bounds history_per_minute: the emulated limit of
// Chatlayer's API is 600 calls a minute, and the messages need their
// share.
const maxHistoryPerMinute = 600

// HistoryOn reports whether reconciliation from the history is on: not
// turned off, with the bot id and the token it needs.
func (c Config) HistoryOn() bool {
	return (c.History == nil || *c.History) && c.BotID != "" && c.Token != ""
}

// ApplyDefaults fills the settings left empty, so that a Config read from
// YAML can be validated and used as it is.
func (c *Config) ApplyDefaults() {
	if c.Mode == "" {
		c.Mode = ModeV1
	}
	if c.Region == "" && c.BaseURL == "" {
		c.Region = DefaultRegion
	}
	if c.Greet == nil {
		t := true
		c.Greet = &t
	}
	if c.ReplyTyping == nil {
		t := true
		c.ReplyTyping = &t
	}
	if c.ReorderWait == 0 {
		c.ReorderWait = DefaultReorderWait
	}
	if c.RetryWindow == 0 {
		c.RetryWindow = DefaultRetryWindow
	}
	if c.HistoryPerMinute == 0 {
		c.HistoryPerMinute = DefaultHistoryPerMinute
	}
}

// Endpoint returns the API base URL to call, without a trailing slash:
// BaseURL when set, else the Region's host (the EU host by default).
func (c Config) Endpoint() string {
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/")
	}
	if u, ok := regions[c.Region]; ok {
		return u
	}
	return regions[DefaultRegion]
}

// Validate reports every problem of c, each naming its field under
// prefix (such as "bots[0].chatlayer") and saying how to fix it. It
// never shows a secret's value. Empty fields that have a default are
// fine: Validate reads c as ApplyDefaults would complete it.
func (c Config) Validate(prefix string) []error {
	c.ApplyDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		path := field
		if prefix != "" {
			path = prefix + "." + field
		}
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}

	switch c.Mode {
	case ModeV1, ModeLegacy:
	default:
		bad("mode", "%q is not a mode; use v1 (the Webhook channel API, default) or legacy", c.Mode)
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad("base_url", "%q is not an API base URL; write it like https://api.chatlayer.ai (scheme and host, no query), or remove it and set region", c.BaseURL)
		}
	} else if _, ok := regions[c.Region]; !ok {
		bad("region", "%q is not a region; use eu (default), us, asia or staging, or set base_url", c.Region)
	}

	idOK := func(s string) bool { return !strings.ContainsAny(s, "/?#%\\ \t\r\n") }
	switch c.Mode {
	case ModeV1:
		if c.ChannelID == "" {
			bad("channel_id", "is empty; copy the id of the bot's Webhook channel from Chatlayer (required in mode v1)")
		} else if !idOK(c.ChannelID) {
			bad("channel_id", "%q contains a slash, space or URL character; copy only the channel id", c.ChannelID)
		}
		if c.Token == "" {
			bad("token", "is empty; set it to the Chatlayer API token (<tokenId>:<tokenSecret>), e.g. token: \"${CHATLAYER_TOKEN}\" (required in mode v1)")
		} else if strings.ContainsAny(c.Token.Reveal(), " \t\r\n") {
			bad("token", "contains a space or line break; copy the token exactly, as <tokenId>:<tokenSecret>")
		}
	case ModeLegacy:
		if c.BotID == "" {
			bad("bot_id", "is empty; copy the Chatlayer bot id (required in mode legacy)")
		}
		if strings.ContainsAny(c.Token.Reveal(), " \t\r\n") {
			bad("token", "contains a space or line break; copy the API token exactly")
		}
	}
	if c.BotID != "" && !idOK(c.BotID) {
		bad("bot_id", "%q contains a slash, space or URL character; copy only the bot id", c.BotID)
	}
	// What the history and the asynchronous session endpoint need, said
	// once for both (mode legacy has said it of bot_id already).
	var needers []string
	if c.History != nil && *c.History {
		needers = append(needers, "history: true (reconciliation from Chatlayer's history)")
	}
	if c.SessionDialogstate != "" {
		needers = append(needers, "session_dialogstate (session data sent at once)")
		if strings.ContainsAny(c.SessionDialogstate, "\r\n") {
			bad("session_dialogstate", "contains a line break; copy only the dialog state id")
		}
	}
	if what := strings.Join(needers, " and "); what != "" {
		needs := "needs"
		if len(needers) > 1 {
			needs = "need"
		}
		if c.BotID == "" && c.Mode != ModeLegacy {
			bad("bot_id", "is empty; %s %s the Chatlayer bot id: copy it from the bot's URL in Chatlayer", what, needs)
		}
		if c.Token == "" {
			bad("token", "is empty; %s %s the Chatlayer API token, e.g. token: \"${CHATLAYER_TOKEN}\"", what, needs)
		}
	}
	if c.HistoryPerMinute < 0 || c.HistoryPerMinute > maxHistoryPerMinute {
		bad("history_per_minute", "%d is out of range; use a number between 1 and 600, such as 60 (default)", c.HistoryPerMinute)
	}
	if c.VerifyToken == "" {
		bad("verify_token", "is empty; set it to the verify token of the bot's Webhook channel in Chatlayer, e.g. verify_token: \"${CHATLAYER_VERIFY_TOKEN}\"; callbacks are refused without it")
	} else if strings.ContainsAny(c.VerifyToken.Reveal(), "\r\n") {
		bad("verify_token", "contains a line break; copy the verify token exactly")
	}
	if c.ReorderWait < 0 || c.ReorderWait > maxReorderWait {
		bad("reorder_wait", "%s is out of range; use a duration between 1ms and 10s, such as 1s (default)", c.ReorderWait)
	}
	switch {
	case c.RetryWindow < 0 || c.RetryWindow > maxRetryWindow:
		bad("retry_window", "%s is out of range; use a duration between reorder_wait and 168h, well below the bot's session expiry in Chatlayer, such as 10m (default)", c.RetryWindow)
	case c.RetryWindow <= c.ReorderWait:
		bad("retry_window", "%s is not longer than reorder_wait (%s); a callback held for its turn must not outlast it: use a longer duration, such as 10m (default)", c.RetryWindow, c.ReorderWait)
	}
	return errs
}
