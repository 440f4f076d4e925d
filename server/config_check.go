package server

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

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
		if p, ok := provider.Lookup(b.Provider); ok && b.Settings == nil {
			b.Settings = p.Settings() // no block: the platform's defaults
		}
		if d, ok := b.Settings.(provider.SettingsDefaults); ok {
			d.ApplyDefaults()
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
	errs = append(errs, c.checkAdmin()...)
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
		if c.Store.Replicas != 0 {
			bad("store.replicas", "only applies to driver redis; remove it, or use driver redis")
		}
	case "redis":
		if c.Store.URL.Reveal() == "" {
			bad("store.url", "is empty; with driver redis, set it to your Redis, e.g. redis://localhost:6379/0")
		} else if _, err := redisURL(c.Store.URL.Reveal()); err != nil {
			bad("store.url", "%v", err)
		}
		if c.Store.Replicas < 0 {
			bad("store.replicas", "%d is negative; use 0 (ack once the primary has a message) or the number of replicas to wait for", c.Store.Replicas)
		}
		if c.Store.ReplicaTimeout < 0 {
			bad("store.replica_timeout", "%s is negative; use e.g. 1s", time.Duration(c.Store.ReplicaTimeout))
		}
	default:
		bad("store.driver", "%q is not a store; use bolt (default), redis or memory", c.Store.Driver)
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
	errs = append(errs, c.TLS.validate(c.Listen)...)
	errs = append(errs, c.Tracing.check()...)
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
		names := strings.Join(provider.Names(), ", ")
		switch _, known := provider.Lookup(b.Provider); {
		case b.Provider == "":
			bad(p+".provider", "is missing; set it to one of %s", names)
		case !known:
			bad(p+".provider", "%q is not a provider; use one of %s", b.Provider, names)
		case b.Settings != nil:
			errs = append(errs, b.Settings.Validate(p+"."+b.Provider)...)
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
		switch b.TextFormat {
		case "", provider.FormatMarkdown, provider.FormatPlain:
		default:
			bad(p+".text_format", "%q must be markdown or plain; leave it out for the platform's default (%s)", b.TextFormat, b.Format())
		}
		w := b.Widget
		if w.Position != "left" && w.Position != "right" {
			bad(p+".widget.position", "%q must be left or right", w.Position)
		}
		if w.BrandColor != "" && !hexColor.MatchString(w.BrandColor) {
			bad(p+".widget.brand_color", "%q is not a colour; write it like #007171", w.BrandColor)
		}
		if err := widget.CheckColorScheme(p+".widget.color_scheme", w.ColorScheme); err != nil {
			bad(p+".widget.color_scheme", "%q must be auto, light or dark", w.ColorScheme)
		}
		if err := widget.CheckFont(p+".widget.font", w.Font); err != nil {
			bad(p+".widget.font", "%q is not a font-family list: %s; write it like \"Source Sans 3\", sans-serif", w.Font, err.(*widget.Error).Message)
		}
		if w.Icon != "" {
			if err := widget.CheckURL("icon", w.Icon, false); err != nil {
				bad(p+".widget.icon", "%q is not an image URL; use an absolute https URL", w.Icon)
			}
		}
		if w.Locale != "" && !slices.Contains(widget.Languages[:], w.Locale) {
			bad(p+".widget.locale", "%q is not a built-in language; use one of %s, or leave it out to follow the page",
				w.Locale, strings.Join(widget.Languages[:], ", "))
		}
		for _, k := range slices.Sorted(maps.Keys(w.Texts)) {
			if !widget.IsTextKey(k) && !web.IsPageTextKey(k) {
				bad(p+".widget.texts."+k, "is not a text key; use a key listed in the README (\"send\"), optionally after a built-in language (\"nl.send\")")
			}
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
