package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// Config is the whole server configuration: one YAML file, one entry per
// bot, secrets by ${ENV} reference. The zero Config plus Defaults is the
// built-in demo setup that `porthole serve` runs without a file.
type Config struct {
	// Listen is the address to serve on, such as ":8080".
	Listen string `yaml:"listen"`
	// PublicURL is the origin visitors reach this server at, used in links
	// and as the "self" origin. Empty: "self" is only a loopback origin on
	// the port the server listens on (http://localhost:8080 for `make
	// run`), never the request's Host, which a DNS-rebinding page writes;
	// set it whenever visitors reach the server by a name.
	PublicURL string `yaml:"public_url"`
	// SessionKeys sign and encrypt visitor tokens and session cookies.
	// The first key signs; all keys verify, so rotation means putting a
	// new key in front and dropping the oldest later. Each at least 32
	// characters. Empty: a key generated once and kept in the data
	// directory.
	SessionKeys []Secret `yaml:"session_keys"`
	// TLS makes the server speak HTTPS itself, with certificate files
	// or certificates obtained by ACME; nil: plain HTTP (see TLSConfig).
	TLS *TLSConfig `yaml:"tls"`
	// Store says where conversations are kept.
	Store StoreConfig `yaml:"store"`
	// Retention is how long a conversation is kept after its last
	// message, such as "30d" or "720h". Default 30 days.
	Retention Duration `yaml:"retention"`
	// Limits bound what one visitor or one IP address may do.
	Limits Limits `yaml:"limits"`
	// TrustedProxies are the reverse proxies in front of this server,
	// each an address ("10.0.0.5") or a CIDR ("10.0.0.0/8"). Only a
	// request whose direct peer is one of them has its forwarded header
	// read, and then the client is the rightmost address in it that is
	// not a trusted proxy: the one the nearest proxy appended. What a
	// client writes in the header itself stays to the left and is never
	// the address, so it cannot escape the per-address limits. Empty
	// (the default): forwarded headers are ignored and every request
	// counts by its TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader is the header the trusted proxies append the
	// client to: "X-Forwarded-For" (default; nginx, Caddy, HAProxy,
	// most load balancers) or "Forwarded" (RFC 7239). Only one is read:
	// the other one reaches us as the client wrote it.
	ForwardedHeader string `yaml:"forwarded_header"`
	// Upstream says how long calls to the bot platforms may take and how
	// long a message the platform did not take is retried.
	Upstream UpstreamConfig `yaml:"upstream"`
	// Admin is the operators' listener (/metrics), off by default.
	Admin AdminConfig `yaml:"admin"`
	// AdminToken is the bearer token the admin API on the admin listener
	// requires (off without one); write it as "${ADMIN_TOKEN}".
	AdminToken Secret `yaml:"admin_token"`
	// Tracing exports OpenTelemetry traces of each message's path; off
	// unless tracing.endpoint is set.
	Tracing TracingConfig `yaml:"tracing"`
	// Bots are the chat bots this server fronts.
	Bots []BotConfig `yaml:"bots"`
}

// StoreConfig selects the store driver.
type StoreConfig struct {
	// Driver is "bolt" (default: one file, embedded, one process),
	// "redis" (any number of processes over one Redis, its bus too) or
	// "memory" (lost on restart, for tests and trials).
	Driver string `yaml:"driver"`
	// Path is the bolt file. Default: porthole.db in the data directory.
	Path string `yaml:"path"`
	// URL is the Redis to use with driver redis: redis://host:6379/0 or
	// rediss:// (TLS); ?addr=host:port for each other node of a Redis
	// Cluster; ?master_name=NAME&addr=… for Sentinel. It may hold a
	// password: write it as "${REDIS_URL}" and keep it in the environment.
	URL Secret `yaml:"url"`
	// Replicas, with driver redis, makes an ack wait until that many
	// Redis replicas have the message (WAIT), so that it survives the
	// loss of the primary. 0 (default) acks once the primary has it.
	Replicas int `yaml:"replicas"`
	// ReplicaTimeout bounds that wait; a message not confirmed in time
	// is not acknowledged, and the widget sends it again. Default 1s.
	ReplicaTimeout Duration `yaml:"replica_timeout"`
}

// UpstreamConfig bounds the calls to a bot platform. A temporary failure
// (network, timeout, 5xx, 429) is retried with exponential backoff and
// jitter; the visitor sees "failed" after three attempts while retries
// go on in the background.
type UpstreamConfig struct {
	// Timeout bounds one call. Default 15s.
	Timeout Duration `yaml:"timeout"`
	// MaxBackoff is the longest wait between two retries, unless the
	// platform asks for longer (Retry-After). Default 30s.
	MaxBackoff Duration `yaml:"max_backoff"`
	// RetryFor is how long after its first attempt a visitor's message
	// is still retried. Default 10m. A conversation's greeting is retried
	// for at most DefaultGreetRetry (30s), or RetryFor if shorter.
	RetryFor Duration `yaml:"retry_for"`
}

// Retry returns the service's retry policy for this configuration.
func (u UpstreamConfig) Retry() RetryPolicy {
	p := DefaultRetry
	p.Timeout, p.Max, p.GiveUp = time.Duration(u.Timeout), time.Duration(u.MaxBackoff), time.Duration(u.RetryFor)
	p.Base = min(p.Base, p.Max)
	return p
}

// Limits bound the work one visitor or address can cause.
type Limits struct {
	// MessagesPerMinute is the sustained rate of messages (send,
	// postback, session) per visitor. Default 30.
	MessagesPerMinute int `yaml:"messages_per_minute"`
	// Burst is how many messages a visitor may send at once before the
	// rate applies. Default 10.
	Burst int `yaml:"burst"`
	// IPMessagesPerMinute is the sustained message rate of all visitors
	// behind one IP address. Default 300.
	IPMessagesPerMinute int `yaml:"ip_messages_per_minute"`
	// ConnectionsPerIP caps concurrent sockets from one address, an
	// IPv6 address counting by its /64 (see limitKey). Default 64.
	ConnectionsPerIP int `yaml:"connections_per_ip"`
	// MaxConnections caps the concurrent sockets of the whole server;
	// beyond it a new socket gets 503 with Retry-After. It keeps the
	// sockets of many addresses together from exhausting the process's
	// file descriptors and memory, so that /healthz, the platforms'
	// callbacks and the chat pages keep answering. Default 10,000: an
	// idle socket costs about 20 KB of memory (docs/PERFORMANCE.md), so
	// 200 MB at the ceiling, and one file descriptor each, well within
	// the usual limit of a service (65,536 or more) with room for
	// everything else; one instance's worth of a busy site's open chats.
	// Raise it with the descriptor limit (ulimit -n) for more.
	MaxConnections int `yaml:"max_connections"`
	// TCPConnectionsPerIP caps the TCP connections one address holds
	// at once, sockets, page requests and idle keep-alives together
	// (see Server.LimitListener); a trusted proxy is not capped. Default
	// connections_per_ip + 64: an address's sockets plus the page,
	// asset and form requests of a few browsers beside them.
	TCPConnectionsPerIP int `yaml:"tcp_connections_per_ip"`
	// MaxTCPConnections caps the TCP connections of the whole server.
	// Default max_connections + 1,000: the sockets plus room for the
	// chat pages, the platforms' callbacks and health checks, so that
	// sockets at their ceiling leave those answering.
	MaxTCPConnections int `yaml:"max_tcp_connections"`
	// HeaderTimeout bounds how long a client may take to send a
	// request's line and headers. Default 10s: a browser or a platform
	// sends them at once; a client that trickles them would otherwise
	// hold its connection and file descriptor for as long as it likes.
	HeaderTimeout Duration `yaml:"header_timeout"`
	// BodyTimeout bounds how long a client may take to send a request
	// body (the platforms' callbacks, the chat page's form posts),
	// counted from when the handler starts reading it. Default 30s:
	// ample for a form or a callback of at most a few hundred KiB on a
	// slow mobile link, while a client trickling a byte every few
	// seconds is cut off.
	BodyTimeout Duration `yaml:"body_timeout"`
	// StartsPerMinute is how many new conversations one address may
	// start a minute, sustained, and StartBurst how many at once. Every
	// new conversation makes the bot platform open one (and greet), which
	// the bot's owner pays for; finding an existing conversation costs
	// nothing and is not counted. A real visitor starts one conversation
	// per browser, and only when they open the chat or write. An office
	// or a school behind one NAT address has many visitors, but they do
	// not all open the chat in the same minute. Defaults 6 and 20: twenty
	// colleagues at once, then one every ten seconds, while a script on
	// one address gets about 380 conversations an hour instead of
	// thousands a minute. IPv6 addresses count by their /64 (see
	// limitKey), since one host can use any address of its /64.
	StartsPerMinute int `yaml:"starts_per_minute"`
	StartBurst      int `yaml:"start_burst"`
	// BotStartsPerMinute caps the new conversations of one bot from all
	// addresses together, with a burst of one minute's worth: the ceiling
	// on what scripts spread over many addresses can cost. Default 300
	// (18,000 an hour), above what the visitors of a busy site start;
	// set it from your own peak and your platform plan.
	BotStartsPerMinute int `yaml:"bot_starts_per_minute"`
	// TrustForwardedFor is the retired switch that believed the leftmost
	// X-Forwarded-For entry, which the client writes. It is still read
	// only so that Validate can say what to write instead
	// (trusted_proxies) rather than call it an unknown key.
	TrustForwardedFor *bool `yaml:"trust_forwarded_for"`
}

// BotConfig is one bot: which platform answers it, where it may be
// embedded, and how its widget looks.
type BotConfig struct {
	// ID names the bot in the embed snippet (data-bot) and URLs.
	ID string `yaml:"id"`
	// Provider names the platform that answers the bot: one registered
	// with provider.Register ("demo", "chatlayer", "chataibot").
	Provider string `yaml:"provider"`
	// IdentitySecret lets the host site sign in its users
	// (Porthole.login): its backend signs the user id with
	// HMAC-SHA256 under this secret. Empty: login is refused.
	IdentitySecret Secret `yaml:"identity_secret"`
	// Origins are the sites allowed to embed the bot, such as
	// "https://www.acme.com" or "https://*.acme.com"; "self" is this
	// server's own origin, "loopback" any http(s) origin on localhost,
	// 127.0.0.0/8 or [::1], for development.
	Origins []string `yaml:"origins"`
	// Widget is the look the widget gets in its welcome frame.
	Widget WidgetConfig `yaml:"widget"`
	// TextFormat is how the bot's replies are written: "markdown" (bold,
	// lists, links and code, formatted by the server into structure the
	// widget and the chat page render, never HTML) or "plain" (shown as
	// written, links detected). Empty: the platform's default (Format).
	TextFormat string `yaml:"text_format"`
	// Blocks holds the keys of the bot's block that are not settings of
	// its own: the platforms' blocks (`chatlayer:`), each decoded into
	// its platform's settings by decodeBlocks, and any misspelt key,
	// which is reported.
	Blocks map[string]yaml.Node `yaml:",inline"`
	// Settings is the block of the bot's platform, decoded, with its
	// defaults (an empty block when the configuration has none).
	Settings provider.Settings `yaml:"-"`
}

// Format is the bot's text format: TextFormat, or its platform's
// default (provider.Platform.TextFormat), or plain.
func (b BotConfig) Format() string {
	if b.TextFormat != "" {
		return b.TextFormat
	}
	if p, ok := provider.Lookup(b.Provider); ok && p.TextFormat != "" {
		return p.TextFormat
	}
	return provider.FormatPlain
}

// WidgetConfig is a bot's widget appearance and texts.
type WidgetConfig struct {
	Title      string `yaml:"title"`
	Subtitle   string `yaml:"subtitle"`
	Icon       string `yaml:"icon"`        // header icon URL
	Position   string `yaml:"position"`    // "right" (default) or "left"
	BrandColor string `yaml:"brand_color"` // "#rrggbb"
	Greeting   string `yaml:"greeting"`    // shown before the first message
	Locale     string `yaml:"locale"`      // a language of widget.Languages; empty: the page's language
	// ColorScheme fixes the widget's and the chat page's colours: "auto"
	// (default) follows the visitor's system, "light" or "dark" do not.
	ColorScheme string `yaml:"color_scheme"`
	// Font is a CSS font-family list, like `"Source Sans 3", sans-serif`;
	// the font must be one the visitor's system or the host page has.
	Font string `yaml:"font"`
	// Texts override built-in widget texts by key.
	Texts map[string]string `yaml:"texts"`
	// Connect says when a returning visitor's widget loads and connects:
	// "idle" (default) once the page has loaded and is idle, so that
	// replies that came while away show on the launcher's badge; "open"
	// only when the visitor opens the panel, so a page view costs nothing
	// but the loader. A first-time visitor's widget always waits for the
	// panel. A page overrides it with data-connect.
	Connect string `yaml:"connect"`
	// Teaser is a short bubble beside the launcher, drawn by the loader
	// without loading the widget; off when its text is empty.
	Teaser TeaserConfig `yaml:"teaser"`
}

// TeaserConfig is the bubble beside the launcher. It shows once a day per
// visitor (the loader keeps the day in the site's localStorage), not
// while the panel is open, and opens the panel when clicked.
type TeaserConfig struct {
	// Text is what it says, like "Questions about pricing? Ask us!"; a
	// page overrides it with data-teaser.
	Text string `yaml:"text"`
	// Delay is how long after the page loads it appears. Default 3s.
	Delay Duration `yaml:"delay"`
	// Paths limits it to pages whose path starts with one of these, like
	// "/pricing"; empty means every page.
	Paths []string `yaml:"paths"`
}

// FrameLook returns what the loader draws the frame with for a visitor:
// the look with the page's brand colour (when valid) and texts in the
// visitor's language (see widget.NewFrameLook).
func (w WidgetConfig) FrameLook(pageLang, pageLocale, color string) widget.FrameLook {
	look := w.Look()
	if hexColor.MatchString(color) {
		look.BrandColor = color
	}
	l := widget.NewFrameLook(look, pageLang, pageLocale)
	l.Connect = w.Connect
	if w.Teaser.Text != "" {
		delay := time.Duration(w.Teaser.Delay)
		if delay == 0 {
			delay = 3 * time.Second
		}
		l.Teaser = &widget.Teaser{Text: w.Teaser.Text, DelayMS: delay.Milliseconds(), Paths: w.Teaser.Paths}
	}
	return l
}

// Look returns the widget look for the welcome frame.
func (w WidgetConfig) Look() widget.Look {
	return widget.Look{Title: w.Title, Subtitle: w.Subtitle, Icon: w.Icon, Position: w.Position,
		BrandColor: w.BrandColor, Greeting: w.Greeting, Locale: w.Locale, Texts: w.Texts,
		ColorScheme: w.ColorScheme, Font: w.Font}
}

// Secret is a configuration value that must never be shown; see
// provider.Secret, where the adapters can use it too.
type Secret = provider.Secret

// Duration is a configuration duration (provider.Duration): Go's
// syntax, or whole and fractional days ("30d").
type Duration = provider.Duration

// DefaultHeaderTimeout and DefaultBodyTimeout are the read deadlines of
// a request's headers and of its body (limits.header_timeout and
// limits.body_timeout): generous for real clients, short enough that a
// client trickling its request cannot hold a connection for long.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 30 * time.Second
)

// Defaults of the configuration.
const (
	DefaultListen    = ":8080"
	DefaultRetention = 30 * 24 * time.Hour
	DemoBotID        = "demo"
	// The conversation start limits; Limits says why these.
	DefaultStartsPerMinute    = 6
	DefaultStartBurst         = 20
	DefaultBotStartsPerMinute = 300
	// DefaultMaxConnections is the server's socket ceiling; Limits
	// (MaxConnections) says why.
	DefaultMaxConnections = 10000
)

// DefaultConfig returns the configuration used when no file is given:
// the built-in demo bot, reachable from this server's own origin and, for
// local development, from any loopback origin.
func DefaultConfig() *Config {
	c := &Config{Bots: []BotConfig{{
		ID:       DemoBotID,
		Provider: "demo",
		Origins:  []string{"self", "loopback"},
		Widget: WidgetConfig{
			Title:      "Porthole demo",
			Subtitle:   "A scripted bot: try the buttons",
			BrandColor: "#0b6e6e",
			Greeting:   "Hi! Ask me anything, or pick a topic.",
		},
	}}}
	c.applyDefaults()
	return c
}

// LoadConfig reads, expands and validates a configuration file. Every
// problem is reported at once, each naming its field and the fix.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses YAML, expanding ${VAR} through lookup ($${VAR} stays
// literal), fills defaults and validates.
func ParseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("the file is empty; see examples/ for a starting point")
	}
	var problems []error
	expandNode(root.Content[0], "", lookup, &problems)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	// Decode the expanded tree strictly, so a misspelt key is an error
	// rather than a silently ignored setting.
	expanded, err := yaml.Marshal(root.Content[0])
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, decodeError(err, expanded, root.Content[0])
		}
		// yaml.v3 decodes what it can around a type error or an unknown
		// key, so the rest is still validated: every problem at once.
		blockErrs := c.decodeBlocks(root.Content[0])
		c.applyDefaults()
		return nil, joinFlat(append([]error{decodeError(err, expanded, root.Content[0])}, append(blockErrs, c.Validate())...)...)
	}
	blockErrs := c.decodeBlocks(root.Content[0])
	c.applyDefaults()
	if err := joinFlat(append(blockErrs, c.Validate())...); err != nil {
		return nil, err
	}
	return &c, nil
}
