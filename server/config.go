package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chatlayer"
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
	// Bots are the chat bots this server fronts.
	Bots []BotConfig `yaml:"bots"`
}

// StoreConfig selects the store driver.
type StoreConfig struct {
	// Driver is "bolt" (default: one file, embedded) or "memory" (lost on
	// restart, for tests and trials).
	Driver string `yaml:"driver"`
	// Path is the bolt file. Default: porthole.db in the data directory.
	Path string `yaml:"path"`
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
	// Provider is "demo", "chatlayer" or "chataibot".
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
	// Demo configures the built-in scripted bot (provider: demo).
	Demo DemoConfig `yaml:"demo"`
	// Chatlayer configures a Chatlayer bot through its Webhook channel
	// (provider: chatlayer); see the README for where each value comes from.
	Chatlayer chatlayer.Config `yaml:"chatlayer"`
	// ChatAIBot configures a ChatAIBot "API as a channel" bot
	// (provider: chataibot); see the README for where each value comes from.
	ChatAIBot chataibot.Config `yaml:"chataibot"`
	// Widget is the look the widget gets in its welcome frame.
	Widget WidgetConfig `yaml:"widget"`
}

// DemoConfig configures the built-in scripted bot.
type DemoConfig struct {
	// Script is a YAML script file; empty means the built-in script.
	Script string `yaml:"script"`
	// TypingDelay is how long the typing indicator shows before each
	// reply. Default 600ms.
	TypingDelay Duration `yaml:"typing_delay"`
}

// WidgetConfig is a bot's widget appearance and texts.
type WidgetConfig struct {
	Title      string `yaml:"title"`
	Subtitle   string `yaml:"subtitle"`
	Icon       string `yaml:"icon"`        // header icon URL
	Position   string `yaml:"position"`    // "right" (default) or "left"
	BrandColor string `yaml:"brand_color"` // "#rrggbb"
	Greeting   string `yaml:"greeting"`    // shown before the first message
	Locale     string `yaml:"locale"`      // en, nl, fr or de; empty: the page's language
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
		BrandColor: w.BrandColor, Greeting: w.Greeting, Locale: w.Locale, Texts: w.Texts}
}

// Secret is a configuration value that must never be shown; see
// provider.Secret, where the adapters can use it too.
type Secret = provider.Secret

// Duration is a time.Duration in YAML that also accepts days ("30d").
type Duration time.Duration

// DefaultHeaderTimeout and DefaultBodyTimeout are the read deadlines of
// a request's headers and of its body (limits.header_timeout and
// limits.body_timeout): generous for real clients, short enough that a
// client trickling its request cannot hold a connection for long.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 30 * time.Second
)

// UnmarshalText parses "90s", "12h" or "30d".
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a duration; write it like 30d, 12h or 90s", s)
		}
		*d = Duration(n * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 30d, 12h or 90s", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a duration as UnmarshalText does, but reports a
// bad value as a type error, so that it is listed with the other problems
// of the file and with its field, instead of ending the decoding.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into a duration; write it like 30d, 12h or 90s", n.Line, n.ShortTag())}}
	}
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	return nil
}

// MarshalText writes the duration the way Go prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

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
		c.applyDefaults()
		return nil, joinFlat(decodeError(err, expanded, root.Content[0]), c.Validate())
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// joinFlat joins errors like errors.Join, unpacking joined ones, so each
// problem stays one entry (and one line) of the result.
func joinFlat(errs ...error) error {
	var flat []error
	for _, err := range errs {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			flat = append(flat, j.Unwrap()...)
		} else if err != nil {
			flat = append(flat, err)
		}
	}
	return errors.Join(flat...)
}

var envRef = regexp.MustCompile(`\$\$|\$\{([^}]*)\}`)

// expandNode replaces ${VAR} in every scalar value and records unset or
// malformed references with the path of the field that holds them.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), problems *[]error) {
	switch n.Kind {
	case yaml.MappingNode:
		// Block style puts every node of the re-marshaled document on a
		// line of its own, so that decodeError can tell which it means.
		n.Style &^= yaml.FlowStyle
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			expandNode(n.Content[i+1], p, lookup, problems)
		}
	case yaml.SequenceNode:
		n.Style &^= yaml.FlowStyle
		for i, item := range n.Content {
			expandNode(item, path+"["+strconv.Itoa(i)+"]", lookup, problems)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			name := m[2 : len(m)-1]
			if !validEnvName(name) {
				*problems = append(*problems, fmt.Errorf("%s: %q is not a valid environment reference; write ${NAME} with letters, digits and _, or $$ for a literal $", path, m))
				return m
			}
			v, ok := lookup(name)
			if !ok {
				*problems = append(*problems, fmt.Errorf("%s: environment variable %s is not set; export it or put the value in the file", path, name))
				return ""
			}
			return v
		})
		// An expanded value is a string, whatever it looks like.
		n.Tag = "!!str"
		n.Style = yaml.DoubleQuotedStyle
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// yamlError reports a file that is not YAML at all.
func yamlError(err error) error {
	return fmt.Errorf("not valid YAML: %w", err)
}

// nodeRef is a node of the re-marshaled document: its field path, and
// its line in the user's file.
type nodeRef struct {
	kind yaml.Kind
	key  bool
	path string
	line int
}

// indexLines maps each line of the re-marshaled document to the nodes
// that start on it, walking it alongside the user's tree (same shape).
func indexLines(exp, orig *yaml.Node, path string, idx map[int][]nodeRef) {
	idx[exp.Line] = append(idx[exp.Line], nodeRef{exp.Kind, false, path, orig.Line})
	switch exp.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(exp.Content) && i+1 < len(orig.Content); i += 2 {
			k := exp.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			idx[k.Line] = append(idx[k.Line], nodeRef{k.Kind, true, p, orig.Content[i].Line})
			indexLines(exp.Content[i+1], orig.Content[i+1], p, idx)
		}
	case yaml.SequenceNode:
		for i := 0; i < len(exp.Content) && i < len(orig.Content); i++ {
			indexLines(exp.Content[i], orig.Content[i], path+"["+strconv.Itoa(i)+"]", idx)
		}
	}
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeError rewrites yaml.v3's decoding errors, whose line numbers are
// those of the re-marshaled document, to name the field and its line in
// the user's file, and to say what to do.
func decodeError(err error, expanded []byte, orig *yaml.Node) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	idx := map[int][]nodeRef{}
	var exp yaml.Node
	if yaml.Unmarshal(expanded, &exp) == nil && len(exp.Content) > 0 {
		indexLines(exp.Content[0], orig, "", idx)
	}
	find := func(line int, kind yaml.Kind, key bool) (nodeRef, bool) {
		refs := idx[line]
		for i := len(refs) - 1; i >= 0; i-- { // innermost first
			if refs[i].kind == kind && refs[i].key == key {
				return refs[i], true
			}
		}
		return nodeRef{}, false
	}
	var out []error
	for _, e := range te.Errors {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			out = append(out, errors.New(e))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		kind, key := yaml.ScalarNode, false
		switch {
		case strings.HasPrefix(msg, "field "):
			key = true
			name, _, _ := strings.Cut(strings.TrimPrefix(msg, "field "), " not found in type ")
			msg = fmt.Sprintf("%q is not a known setting; check the spelling against the README", name)
		case strings.HasPrefix(msg, "mapping key "):
			key = true
			msg = "is set twice; keep one"
			if at := strings.LastIndex(m[2], " at line "); at >= 0 {
				first, _ := strconv.Atoi(m[2][at+len(" at line "):])
				if r, ok := find(first, yaml.ScalarNode, true); ok {
					msg = fmt.Sprintf("is set twice (first at line %d); keep one", r.line)
				}
			}
		case strings.HasPrefix(msg, "cannot unmarshal !!seq"):
			kind = yaml.SequenceNode
		case strings.HasPrefix(msg, "cannot unmarshal !!map"):
			kind = yaml.MappingNode
		}
		r, ok := find(line, kind, key)
		switch {
		case ok && r.path != "":
			out = append(out, fmt.Errorf("%s (line %d): %s", r.path, r.line, msg))
		case ok:
			out = append(out, fmt.Errorf("line %d: %s", r.line, msg))
		default:
			out = append(out, errors.New(msg))
		}
	}
	return errors.Join(out...)
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Store.Driver == "" {
		c.Store.Driver = "bolt"
	}
	if c.Retention == 0 {
		c.Retention = Duration(DefaultRetention)
	}
	l := &c.Limits
	if l.MessagesPerMinute == 0 {
		l.MessagesPerMinute = 30
	}
	if l.Burst == 0 {
		l.Burst = 10
	}
	if l.IPMessagesPerMinute == 0 {
		l.IPMessagesPerMinute = 300
	}
	if l.ConnectionsPerIP == 0 {
		l.ConnectionsPerIP = 64
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.TCPConnectionsPerIP == 0 {
		l.TCPConnectionsPerIP = l.ConnectionsPerIP + 64
	}
	if l.MaxTCPConnections == 0 {
		l.MaxTCPConnections = l.MaxConnections + 1000
	}
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = Duration(DefaultHeaderTimeout)
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = Duration(DefaultBodyTimeout)
	}
	switch {
	case c.ForwardedHeader == "", strings.EqualFold(c.ForwardedHeader, HeaderXForwardedFor):
		c.ForwardedHeader = HeaderXForwardedFor
	case strings.EqualFold(c.ForwardedHeader, HeaderForwarded):
		c.ForwardedHeader = HeaderForwarded
	}
	if l.StartsPerMinute == 0 {
		l.StartsPerMinute = DefaultStartsPerMinute
	}
	if l.StartBurst == 0 {
		l.StartBurst = DefaultStartBurst
	}
	if l.BotStartsPerMinute == 0 {
		l.BotStartsPerMinute = DefaultBotStartsPerMinute
	}
	u := &c.Upstream
	if u.Timeout == 0 {
		u.Timeout = Duration(DefaultRetry.Timeout)
	}
	if u.MaxBackoff == 0 {
		u.MaxBackoff = Duration(DefaultRetry.Max)
	}
	if u.RetryFor == 0 {
		u.RetryFor = Duration(DefaultRetry.GiveUp)
	}
	for i := range c.Bots {
		b := &c.Bots[i]
		if b.Widget.Position == "" {
			b.Widget.Position = "right"
		}
		if b.Provider == "demo" && b.Demo.TypingDelay == 0 {
			b.Demo.TypingDelay = Duration(600 * time.Millisecond)
		}
	}
}

// Validate checks the whole configuration and reports every problem,
// each naming its field and how to fix it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not a listen address; write it like :8080 or 127.0.0.1:8080", c.Listen)
	}
	if c.PublicURL != "" {
		if o, err := parseOrigin(c.PublicURL); err != nil || o != strings.TrimSuffix(c.PublicURL, "/") {
			bad("public_url", "%q is not an origin; write it like https://chat.example.com (scheme and host, no path)", c.PublicURL)
		}
	}
	for i, k := range c.SessionKeys {
		if len(k) < 32 {
			bad(fmt.Sprintf("session_keys[%d]", i), "is %d characters; use at least 32 random characters, e.g. from `openssl rand -hex 32`", len(k))
		}
	}
	switch c.Store.Driver {
	case "bolt", "memory":
	default:
		bad("store.driver", "%q is not a store; use bolt (default) or memory", c.Store.Driver)
	}
	if c.Retention < Duration(time.Hour) {
		bad("retention", "%s is too short; keep conversations at least 1h, e.g. 30d", time.Duration(c.Retention))
	}
	l := c.Limits
	for _, f := range []struct {
		name string
		v    int
	}{{"limits.messages_per_minute", l.MessagesPerMinute}, {"limits.burst", l.Burst}, {"limits.ip_messages_per_minute", l.IPMessagesPerMinute}, {"limits.connections_per_ip", l.ConnectionsPerIP}, {"limits.max_connections", l.MaxConnections},
		{"limits.tcp_connections_per_ip", l.TCPConnectionsPerIP}, {"limits.max_tcp_connections", l.MaxTCPConnections},
		{"limits.starts_per_minute", l.StartsPerMinute}, {"limits.start_burst", l.StartBurst}, {"limits.bot_starts_per_minute", l.BotStartsPerMinute}} {
		if f.v < 0 {
			bad(f.name, "is %d; use a positive number, or leave it out for the default", f.v)
		}
	}
	if l.TCPConnectionsPerIP > 0 && l.TCPConnectionsPerIP < l.ConnectionsPerIP {
		bad("limits.tcp_connections_per_ip", "is %d, below limits.connections_per_ip (%d), whose sockets are TCP connections too; raise it to at least %d, or leave it out for connections_per_ip + 64", l.TCPConnectionsPerIP, l.ConnectionsPerIP, l.ConnectionsPerIP)
	}
	if l.MaxTCPConnections > 0 && l.MaxTCPConnections < l.MaxConnections {
		bad("limits.max_tcp_connections", "is %d, below limits.max_connections (%d), whose sockets are TCP connections too; raise it to at least %d plus room for pages and callbacks, or leave it out for max_connections + 1000", l.MaxTCPConnections, l.MaxConnections, l.MaxConnections)
	}
	for _, f := range []struct {
		name string
		v    Duration
	}{{"limits.header_timeout", l.HeaderTimeout}, {"limits.body_timeout", l.BodyTimeout}} {
		if f.v != 0 && (f.v < Duration(100*time.Millisecond) || f.v > Duration(10*time.Minute)) {
			bad(f.name, "%s is out of range; use between 100ms and 10m, e.g. 10s for headers and 30s for a body", time.Duration(f.v))
		}
	}
	if t := l.TrustForwardedFor; t != nil && *t {
		bad("limits.trust_forwarded_for", "is no longer supported: it believed the leftmost X-Forwarded-For entry, which clients write themselves; remove it and list your reverse proxies instead, e.g. trusted_proxies: [\"10.0.0.5\"] (addresses or CIDRs; see the README, Behind a reverse proxy)")
	} else if t != nil {
		bad("limits.trust_forwarded_for", "is no longer supported; remove it (forwarded headers are ignored unless trusted_proxies lists your reverse proxies)")
	}
	_, badProxies := parseTrustedProxies(c.TrustedProxies)
	for _, m := range badProxies {
		errs = append(errs, errors.New(m))
	}
	if c.ForwardedHeader != HeaderXForwardedFor && c.ForwardedHeader != HeaderForwarded {
		bad("forwarded_header", "%q is not a forwarded header; use X-Forwarded-For (default) or Forwarded, whichever your proxy appends the client to", c.ForwardedHeader)
	}
	u := c.Upstream
	if u.Timeout < Duration(100*time.Millisecond) || u.Timeout > Duration(5*time.Minute) {
		bad("upstream.timeout", "%s is out of range; use between 100ms and 5m, e.g. 15s", time.Duration(u.Timeout))
	}
	if u.MaxBackoff < Duration(100*time.Millisecond) || u.MaxBackoff > Duration(time.Hour) {
		bad("upstream.max_backoff", "%s is out of range; use between 100ms and 1h, e.g. 30s", time.Duration(u.MaxBackoff))
	}
	if u.RetryFor < u.Timeout || u.RetryFor > Duration(7*24*time.Hour) {
		bad("upstream.retry_for", "%s is out of range; use at least upstream.timeout (%s) and at most 7d, e.g. 10m", time.Duration(u.RetryFor), time.Duration(u.Timeout))
	}
	if len(c.Bots) == 0 {
		bad("bots", "is empty; add at least one bot (see examples/)")
	}
	seen := map[string]bool{}
	for i, b := range c.Bots {
		p := fmt.Sprintf("bots[%d]", i)
		if err := widget.CheckBotID("id", b.ID); err != nil {
			bad(p+".id", "%q %s", b.ID, strings.TrimPrefix(err.Error(), "id "))
		} else if seen[b.ID] {
			bad(p+".id", "%q is used by another bot too; give each bot its own id", b.ID)
		}
		seen[b.ID] = true
		switch b.Provider {
		case "demo":
		case "chataibot":
			errs = append(errs, b.ChatAIBot.Validate(p+".chataibot")...)
		case "chatlayer":
			errs = append(errs, b.Chatlayer.Validate(p+".chatlayer")...)
		case "":
			bad(p+".provider", "is missing; set it to demo, chatlayer or chataibot")
		default:
			bad(p+".provider", "%q is not a provider; use demo, chatlayer or chataibot", b.Provider)
		}
		if s := b.IdentitySecret.Reveal(); s != "" && len(s) < 16 {
			bad(p+".identity_secret", "is %d characters; use at least 16 random characters, e.g. from `openssl rand -hex 32`", len(s))
		}
		if len(b.Origins) == 0 {
			bad(p+".origins", "is empty; list the sites that embed the bot, like https://www.example.com")
		}
		for j, o := range b.Origins {
			if err := checkOriginPattern(o); err != nil {
				bad(fmt.Sprintf("%s.origins[%d]", p, j), "%v", err)
			}
		}
		w := b.Widget
		if w.Position != "left" && w.Position != "right" {
			bad(p+".widget.position", "%q must be left or right", w.Position)
		}
		if w.BrandColor != "" && !hexColor.MatchString(w.BrandColor) {
			bad(p+".widget.brand_color", "%q is not a colour; write it like #007171", w.BrandColor)
		}
		if w.Icon != "" {
			if err := widget.CheckURL("icon", w.Icon, false); err != nil {
				bad(p+".widget.icon", "%q is not an image URL; use an absolute https URL", w.Icon)
			}
		}
		switch w.Locale {
		case "", "en", "nl", "fr", "de":
		default:
			bad(p+".widget.locale", "%q is not a built-in language; use en, nl, fr or de, or leave it out to follow the page", w.Locale)
		}
		switch w.Connect {
		case "", "idle", "open":
		default:
			bad(p+".widget.connect", "%q must be idle or open", w.Connect)
		}
		if n := len([]rune(w.Teaser.Text)); n > maxTeaser {
			bad(p+".widget.teaser.text", "is %d characters; a teaser is a short line, keep it within %d", n, maxTeaser)
		}
		if w.Teaser.Delay < 0 || time.Duration(w.Teaser.Delay) > time.Hour {
			bad(p+".widget.teaser.delay", "must be between 0s and 1h, like 5s")
		}
		for j, path := range w.Teaser.Paths {
			if !strings.HasPrefix(path, "/") {
				bad(fmt.Sprintf("%s.widget.teaser.paths[%d]", p, j), "%q is not a path; write it like /pricing", path)
			}
		}
		if b.Provider == "demo" && b.Demo.TypingDelay < 0 {
			bad(p+".demo.typing_delay", "must not be negative; e.g. 600ms")
		}
	}
	return errors.Join(errs...)
}

// maxTeaser bounds a teaser's text, in characters.
const maxTeaser = 140

var hexColor = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// checkOriginPattern accepts "self", "loopback", or scheme://host[:port]
// where the host may start with "*." to allow every subdomain.
func checkOriginPattern(p string) error {
	if p == "self" || p == "loopback" {
		return nil
	}
	if p == "*" {
		return fmt.Errorf(`"*" would let any site embed the bot; list the sites, like https://www.example.com or https://*.example.com`)
	}
	o, err := parseOrigin(strings.Replace(p, "://*.", "://wildcard.", 1))
	if err != nil || o != strings.Replace(p, "://*.", "://wildcard.", 1) {
		return fmt.Errorf("%q is not an origin; write it as scheme://host[:port] with no path, like https://www.example.com or https://*.example.com", p)
	}
	return nil
}

// parseOrigin normalises a URL to its origin: lowercase scheme://host[:port]
// with default ports dropped.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", errors.New("not an http(s) origin")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("an origin has no path")
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	return u.Scheme + "://" + host, nil
}
