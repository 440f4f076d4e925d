package chataibot

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/porthole-chat/porthole/server/provider"
)

// Defaults of the configuration.
const (
	// DefaultBaseURL is ChatAIBot's API host.
	DefaultBaseURL = "https://app.chataibot.io"
	// DefaultWebhookHeader carries the secret when webhook_auth is header.
	DefaultWebhookHeader = "X-Porthole-Secret"
	// minSecret is the shortest webhook secret accepted: anything shorter
	// could be guessed by whoever finds the webhook URL.
	minSecret = 16
)

// Webhook authentication modes.
const (
	AuthBearer = "bearer" // Authorization: Bearer <secret>
	AuthHeader = "header" // <webhook_header>: <secret>
)

// Config is a bot's ChatAIBot settings, the `chataibot:` block of a bot
// in the server configuration. Secrets come by ${ENV} reference.
type Config struct {
	// BaseURL is the API host. Default https://app.chataibot.io; point it
	// at `porthole sim` to try things without an account. Must be https,
	// except on localhost, so the token never crosses a network in clear.
	BaseURL string `yaml:"base_url"`
	// Token is the account's API token, sent as a bearer token on every
	// call. Required.
	Token provider.Secret `yaml:"token"`
	// BotKey names the bot; ChatAIBot shows it on the bot's trigger
	// block. Required.
	BotKey string `yaml:"bot_key"`
	// WebhookSecret authenticates ChatAIBot's reply callbacks to
	// /hooks/chataibot/{bot}. Required, at least 16 characters; set the
	// same value on the ChatAIBot side.
	WebhookSecret provider.Secret `yaml:"webhook_secret"`
	// WebhookAuth says where callbacks carry the secret: "bearer"
	// (default, `Authorization: Bearer <secret>`) or "header" (the raw
	// secret in the header named by WebhookHeader).
	WebhookAuth string `yaml:"webhook_auth"`
	// WebhookHeader is the header that carries the secret when
	// WebhookAuth is "header". Default X-Porthole-Secret.
	WebhookHeader string `yaml:"webhook_header"`
	// ReplyTyping shows the bot's typing indicator once ChatAIBot accepted
	// a visitor message, until the first reply arrives (the widget hides
	// it on a bot message, or after 30 seconds without one). Default true.
	ReplyTyping *bool `yaml:"reply_typing"`
}

// withDefaults returns c with its empty optional fields filled in.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.WebhookAuth == "" {
		c.WebhookAuth = AuthBearer
	}
	if c.WebhookAuth == AuthHeader && c.WebhookHeader == "" {
		c.WebhookHeader = DefaultWebhookHeader
	}
	if c.ReplyTyping == nil {
		t := true
		c.ReplyTyping = &t
	}
	return c
}

// Validate reports every problem of c, each naming its field under
// prefix (such as "bots[1].chataibot") and saying how to fix it. Empty
// optional fields are fine: New fills in the defaults.
func (c Config) Validate(prefix string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		if prefix != "" {
			field = prefix + "." + field
		}
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.BaseURL != "" {
		if msg := checkBaseURL(c.BaseURL); msg != "" {
			bad("base_url", "%q %s", c.BaseURL, msg)
		}
	}
	if strings.TrimSpace(c.Token.Reveal()) == "" {
		bad("token", "is missing; set it to your ChatAIBot account's API token, by reference: token: ${CHATAIBOT_TOKEN}")
	} else if strings.ContainsAny(c.Token.Reveal(), " \t\r\n") {
		bad("token", "contains white space; check the value of the variable it comes from")
	}
	if strings.TrimSpace(c.BotKey) == "" {
		bad("bot_key", "is missing; copy the bot key from the bot's trigger block in ChatAIBot")
	} else if strings.ContainsAny(c.BotKey, " \t\r\n") {
		bad("bot_key", "contains white space; copy the bot key exactly as ChatAIBot shows it")
	}
	switch s := c.WebhookSecret.Reveal(); {
	case s == "":
		bad("webhook_secret", "is missing; set it to at least %d random characters (e.g. from `openssl rand -hex 32`), by reference: webhook_secret: ${CHATAIBOT_HOOK}, and give ChatAIBot the same value", minSecret)
	case len(s) < minSecret:
		bad("webhook_secret", "is %d characters; use at least %d random characters, e.g. from `openssl rand -hex 32`", len(s), minSecret)
	case strings.ContainsAny(s, " \t\r\n"):
		bad("webhook_secret", "contains white space; use random letters and digits, e.g. from `openssl rand -hex 32`")
	}
	switch c.WebhookAuth {
	case "", AuthBearer:
		if c.WebhookHeader != "" {
			bad("webhook_header", "is only used with webhook_auth: header; remove it, or set webhook_auth: header")
		}
	case AuthHeader:
		if c.WebhookHeader != "" && !validHeaderName(c.WebhookHeader) {
			bad("webhook_header", "%q is not a header name; use letters, digits and dashes, like %s", c.WebhookHeader, DefaultWebhookHeader)
		}
	default:
		bad("webhook_auth", "%q is not an authentication mode; use bearer (default) or header", c.WebhookAuth)
	}
	return errs
}

// checkBaseURL says what is wrong with a base URL, or "".
func checkBaseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "is not a URL; write it like " + DefaultBaseURL
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "must not carry credentials, a query or a fragment; write it like " + DefaultBaseURL
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "uses http, which would send the token in clear; use https (http is only for localhost)"
		}
	default:
		return "must be an https URL, like " + DefaultBaseURL
	}
	return ""
}

// validHeaderName reports whether s is an HTTP header name (a token).
func validHeaderName(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
