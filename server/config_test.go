package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/demo"
)

const (
	testSessionKey = "s3cr3t-session-key-0123456789abcdef-XYZ"
	oldSessionKey  = "old-key-$-0123456789abcdef0123456789" // after $$ unescaping
)

// testEnv is the fake environment ParseConfig expands ${VAR} from.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"SESSION_KEY": testSessionKey,
		"PUBLIC_URL":  "https://chat.acme.com",
		"EMPTY":       "",
	}[name]
	return v, ok
}

// oneBot is a valid bots section, for cases about other fields.
const oneBot = `
bots:
  - id: support
    provider: demo
    origins: [self]
`

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every one must be in the error
	}{
		{"empty file", "", []string{"empty"}},
		{"only a comment", "# nothing here\n", []string{"empty"}},
		{"invalid YAML", "bots: [\n", []string{"not valid YAML", "line 1"}},
		{"invalid YAML tab", "bots:\n\t- id: a\n", []string{"not valid YAML"}},

		{"no bots", "listen: :8080\n", []string{"bots: is empty"}},
		{"empty bots", "bots: []\n", []string{"bots: is empty"}},

		{"listen", "listen: 8080\n" + oneBot, []string{"listen:", `"8080"`, ":8080"}},
		{"public_url with path", "public_url: https://chat.acme.com/widget\n" + oneBot, []string{"public_url:", "no path"}},
		{"public_url not http", "public_url: chat.acme.com\n" + oneBot, []string{"public_url:", `"chat.acme.com"`}},

		{"short session key", "session_keys: [short]\n" + oneBot, []string{"session_keys[0]:", "5 characters", "at least 32"}},
		{"second session key short", "session_keys: [\"${SESSION_KEY}\", tiny]\n" + oneBot, []string{"session_keys[1]:", "4 characters"}},
		{"empty env session key", "session_keys: [\"${EMPTY}\"]\n" + oneBot, []string{"session_keys[0]:", "0 characters"}},

		{"store.driver", "store:\n  driver: sqlite\n" + oneBot, []string{"store.driver:", `"sqlite"`, "bolt", "memory"}},

		{"retention too short", "retention: 30m\n" + oneBot, []string{"retention:", "too short"}},
		{"retention negative", "retention: -5h\n" + oneBot, []string{"retention:", "too short"}},
		{"retention malformed", "retention: soon\n" + oneBot, []string{"retention (line 1):", `"soon" is not a duration`, "30d"}},
		{"retention negative days", "retention: -1d\n" + oneBot, []string{"retention (line 1):", "not a duration"}},
		{"retention list", "retention: [1h]\n" + oneBot, []string{"retention (line 1):", "duration"}},
		{"typing_delay malformed", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    demo:\n      typing_delay: fast\n",
			[]string{"bots[0].demo.typing_delay (line 6):", `"fast"`}},
		{"typing_delay negative", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    demo:\n      typing_delay: -1s\n",
			[]string{"bots[0].demo.typing_delay:", "negative"}},

		{"limits.burst negative", "limits:\n  burst: -1\n" + oneBot, []string{"limits.burst:", "-1", "positive"}},
		{"limits.connections_per_ip negative", "limits:\n  connections_per_ip: -3\n" + oneBot, []string{"limits.connections_per_ip:", "-3"}},
		{"limits.max_connections negative", "limits:\n  max_connections: -1\n" + oneBot, []string{"limits.max_connections:", "-1", "positive"}},
		{"limits.tcp_connections_per_ip below connections_per_ip", "limits:\n  connections_per_ip: 10\n  tcp_connections_per_ip: 5\n" + oneBot,
			[]string{"limits.tcp_connections_per_ip:", "below limits.connections_per_ip (10)", "at least 10"}},
		{"limits.max_tcp_connections below max_connections", "limits:\n  max_connections: 100\n  max_tcp_connections: 50\n" + oneBot,
			[]string{"limits.max_tcp_connections:", "below limits.max_connections (100)", "at least 100"}},
		{"limits.trust_forwarded_for retired", "limits:\n  trust_forwarded_for: true\n" + oneBot,
			[]string{"limits.trust_forwarded_for:", "no longer supported", "leftmost", "trusted_proxies: [", "CIDR"}},
		{"limits.trust_forwarded_for false retired", "limits:\n  trust_forwarded_for: false\n" + oneBot,
			[]string{"limits.trust_forwarded_for:", "remove it", "trusted_proxies"}},
		{"trusted_proxies malformed", "trusted_proxies: [10.0.0.5, proxy.internal, 10.0.0.0/33]\n" + oneBot,
			[]string{`trusted_proxies[1]: "proxy.internal" is not an address or CIDR`, `trusted_proxies[2]: "10.0.0.0/33"`, "10.0.0.0/8"}},
		{"forwarded_header unknown", "forwarded_header: X-Real-IP\n" + oneBot,
			[]string{"forwarded_header:", `"X-Real-IP"`, "X-Forwarded-For", "Forwarded"}},
		{"limits.starts_per_minute negative", "limits:\n  starts_per_minute: -6\n" + oneBot, []string{"limits.starts_per_minute:", "-6", "positive", "leave it out for the default"}},
		{"limits.start_burst negative", "limits:\n  start_burst: -1\n" + oneBot, []string{"limits.start_burst:", "-1", "positive"}},
		{"limits.bot_starts_per_minute negative", "limits:\n  bot_starts_per_minute: -300\n" + oneBot, []string{"limits.bot_starts_per_minute:", "-300", "positive"}},
		{"limits.start_burst not a number", "limits:\n  start_burst: many\n" + oneBot, []string{"limits.start_burst (line 2):", "many"}},
		{"limits.burst not a number", "limits:\n  burst: lots\n" + oneBot, []string{"limits.burst (line 2):", "lots"}},
		{"limits not a mapping", "limits: 5\n" + oneBot, []string{"limits (line 1):"}},

		{"upstream.timeout too short", "upstream:\n  timeout: 5ms\n" + oneBot, []string{"upstream.timeout:", "5ms", "between 100ms and 5m"}},
		{"upstream.max_backoff negative", "upstream:\n  max_backoff: -1s\n" + oneBot, []string{"upstream.max_backoff:", "-1s", "out of range"}},
		{"upstream.retry_for below timeout", "upstream:\n  timeout: 30s\n  retry_for: 10s\n" + oneBot, []string{"upstream.retry_for:", "at least upstream.timeout (30s)"}},
		{"upstream unknown key", "upstream:\n  retries: 3\n" + oneBot, []string{"upstream.retries (line 2):", "not a known setting"}},

		{"unknown top-level key", "colour: red\n" + oneBot, []string{"colour (line 1):", `"colour" is not a known setting`}},
		{"unknown bot key", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    colour: red\n",
			[]string{"bots[0].colour (line 5):", `"colour"`, "is not a known setting"}},
		{"unknown widget key", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget: {title: Hi, colour: red}\n",
			[]string{"bots[0].widget.colour (line 5):", "is not a known setting"}},
		// Comments, blank lines and flow style must not shift the line
		// reported: it is the line in the user's file.
		{"unknown key line in commented file", "# Porthole\n\n# the bots\nbots:\n\n  # first\n  - id: a\n    provider: demo\n\n    origins: [self]\n    colour: red # typo\n",
			[]string{"bots[0].colour (line 11):", "is not a known setting"}},
		{"duplicate key", "bots:\n  - id: a\n    provider: demo\n    id: b\n    origins: [self]\n", []string{"bots[0].id (line 4):", "twice", "line 2"}},
		{"bots not a list", "bots: 5\n", []string{"bots (line 1):"}},
		{"widget a list", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget: [x]\n", []string{"bots[0].widget (line 5):"}},

		{"unset env", "session_keys: [\"${NO_SUCH_KEY}\"]\n" + oneBot, []string{"session_keys[0]:", "NO_SUCH_KEY", "not set"}},
		{"unset env nested", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      title: ${TITLE}\n",
			[]string{"bots[0].widget.title:", "TITLE", "not set"}},
		{"unset env in origin", "bots:\n  - id: a\n    provider: demo\n    origins: [self, \"https://${HOST}\"]\n",
			[]string{"bots[0].origins[1]:", "HOST"}},
		{"malformed env reference", "public_url: \"${1X}\"\n" + oneBot, []string{"public_url:", `"${1X}"`, "not a valid environment reference"}},
		{"empty env reference", "public_url: \"${}\"\n" + oneBot, []string{"public_url:", `"${}"`, "not a valid environment reference"}},
		{"env reference with dash", "public_url: \"${PUBLIC-URL}\"\n" + oneBot, []string{"public_url:", "not a valid environment reference"}},

		{"star origin", "bots:\n  - id: a\n    provider: demo\n    origins: [self, \"*\"]\n", []string{"bots[0].origins[1]:", `"*"`, "any site"}},
		{"origin with path", "bots:\n  - id: a\n    provider: demo\n    origins: [self, https://www.acme.com/shop]\n",
			[]string{"bots[0].origins[1]:", `"https://www.acme.com/shop"`, "no path"}},
		{"origin with trailing slash", "bots:\n  - id: a\n    provider: demo\n    origins: [https://www.acme.com/]\n", []string{"bots[0].origins[0]:"}},
		{"origin without scheme", "bots:\n  - id: a\n    provider: demo\n    origins: [www.acme.com]\n", []string{"bots[0].origins[0]:", "scheme"}},
		{"origin not http", "bots:\n  - id: a\n    provider: demo\n    origins: [ftp://www.acme.com]\n", []string{"bots[0].origins[0]:"}},
		{"no origins", "bots:\n  - id: a\n    provider: demo\n", []string{"bots[0].origins:", "is empty"}},

		{"duplicate bot ids", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n  - id: a\n    provider: demo\n    origins: [self]\n",
			[]string{"bots[1].id:", `"a"`, "another bot"}},
		{"bad bot id", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n  - id: Bad ID\n    provider: demo\n    origins: [self]\n",
			[]string{"bots[1].id:", `"Bad ID"`, "lowercase"}},
		{"missing bot id", "bots:\n  - provider: demo\n    origins: [self]\n", []string{"bots[0].id:", "missing"}},

		{"unknown provider", "bots:\n  - id: a\n    provider: openai\n    origins: [self]\n", []string{"bots[0].provider:", `"openai"`, "demo"}},
		{"missing provider", "bots:\n  - id: a\n    origins: [self]\n", []string{"bots[0].provider:", "missing"}},
		{"chatlayer without its settings", "bots:\n  - id: a\n    provider: chatlayer\n    origins: [self]\n", []string{"bots[0].chatlayer.channel_id", "bots[0].chatlayer.token"}},
		{"chataibot without its settings", "bots:\n  - id: a\n    provider: chataibot\n    origins: [self]\n", []string{"bots[0].chataibot.token", "bots[0].chataibot.bot_key"}},

		{"brand_color", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      brand_color: red\n",
			[]string{"bots[0].widget.brand_color:", `"red"`, "#007171"}},
		{"brand_color no hash", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      brand_color: \"007171\"\n",
			[]string{"bots[0].widget.brand_color:"}},
		{"position", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      position: middle\n",
			[]string{"bots[0].widget.position:", `"middle"`, "left or right"}},
		{"locale", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      locale: es\n",
			[]string{"bots[0].widget.locale:", `"es"`, "en, nl, fr or de"}},
		{"icon", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      icon: /icon.png\n",
			[]string{"bots[0].widget.icon:", `"/icon.png"`}},
		{"connect", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      connect: eager\n",
			[]string{"bots[0].widget.connect:", `"eager"`, "idle or open"}},
		{"teaser path", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      teaser: {text: Hi, paths: [pricing]}\n",
			[]string{"bots[0].widget.teaser.paths[0]:", `"pricing"`, "/pricing"}},
		{"teaser delay", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      teaser: {text: Hi, delay: 2h}\n",
			[]string{"bots[0].widget.teaser.delay:", "between 0s and 1h"}},
		{"teaser text", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      teaser: {text: \"" + strings.Repeat("long ", 40) + "\"}\n",
			[]string{"bots[0].widget.teaser.text:", "200 characters", "140"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml), testEnv)
			if err == nil {
				t.Fatalf("ParseConfig succeeded (%+v), want an error containing %q", c, tt.want)
			}
			if c != nil {
				t.Errorf("ParseConfig returned a config along with the error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestParseConfigReportsEveryProblem checks that the problems of a file
// are listed together, not one per run.
func TestParseConfigReportsEveryProblem(t *testing.T) {
	t.Run("validation", func(t *testing.T) {
		const y = `
listen: nowhere
store:
  driver: sqlite
session_keys: [short]
bots:
  - id: a
    provider: demo
    origins: ["*", https://ok.acme.com]
    widget:
      brand_color: red
      position: top
  - id: a
    provider: nope
    origins: [self]
`
		_, err := ParseConfig([]byte(y), testEnv)
		want := []string{"listen:", "store.driver:", "session_keys[0]:", "bots[0].origins[0]:",
			"bots[0].widget.brand_color:", "bots[0].widget.position:", "bots[1].id:", "bots[1].provider:"}
		checkJoined(t, err, len(want), want)
	})
	t.Run("environment", func(t *testing.T) {
		const y = `
public_url: ${NO_URL}
session_keys: ["${NO_KEY}", "${9LIVES}"]
bots:
  - id: a
    provider: demo
    origins: [self]
`
		_, err := ParseConfig([]byte(y), testEnv)
		checkJoined(t, err, 3, []string{"public_url:", "NO_URL", "session_keys[0]:", "NO_KEY", "session_keys[1]:", "${9LIVES}"})
	})
	t.Run("decoding", func(t *testing.T) {
		const y = `
retention: soon
limits:
  burst: lots
bots:
  - id: a
    provider: demo
    origins: [self]
    colour: red
    widget:
      sizee: 3
`
		_, err := ParseConfig([]byte(y), testEnv)
		checkJoined(t, err, 4, []string{"retention (line 2):", "limits.burst (line 4):", "bots[0].colour (line 9):", "bots[0].widget.sizee (line 11):"})
	})
}

// checkJoined checks that err joins n problems, one a line, that
// together mention every string of want.
func checkJoined(t *testing.T, err error, n int, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("ParseConfig succeeded, want several problems")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error is %T, not a joined list of problems: %v", err, err)
	}
	if got := len(joined.Unwrap()); got != n {
		t.Errorf("got %d problems, want %d:\n%v", got, n, err)
	}
	lines := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	if len(lines) != len(joined.Unwrap()) {
		t.Errorf("want one line per problem, got %d lines for %d problems", len(lines), len(joined.Unwrap()))
	}
}

func TestParseConfigFull(t *testing.T) {
	const y = `
# A complete configuration.
listen: 127.0.0.1:9000
public_url: ${PUBLIC_URL}
session_keys:
  - ${SESSION_KEY}
  - "old-key-$$-0123456789abcdef0123456789"
store:
  driver: memory
  path: /var/lib/porthole/porthole.db
retention: 12h
trusted_proxies: ["10.0.0.5", "fd00::/64", "192.168.0.0/16"]
forwarded_header: forwarded
limits:
  messages_per_minute: 20
  burst: 5
  ip_messages_per_minute: 100
  connections_per_ip: 8
  max_connections: 500
  starts_per_minute: 3
  start_burst: 4
  bot_starts_per_minute: 50
upstream:
  timeout: 5s
  retry_for: 1h
bots:
  - id: support
    provider: demo
    origins:
      - https://www.acme.com
      - https://*.acme.com
      - http://localhost:3000
      - self
      - loopback
    demo:
      script: support.yaml
      typing_delay: 1s
    widget:
      title: Acme support
      subtitle: We answer in minutes
      icon: https://cdn.acme.com/icon.png
      position: left
      brand_color: "#007171"
      greeting: Price is $$5, literally
      locale: nl
      texts:
        send: Verstuur
  - id: sales-2
    provider: demo
    origins: ["https://shop.acme.com:8443"]
    widget:
      brand_color: "#abc"
`
	c, err := ParseConfig([]byte(y), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:          "127.0.0.1:9000",
		PublicURL:       "https://chat.acme.com",
		SessionKeys:     []Secret{testSessionKey, oldSessionKey},
		Store:           StoreConfig{Driver: "memory", Path: "/var/lib/porthole/porthole.db"},
		Retention:       Duration(12 * time.Hour),
		TrustedProxies:  []string{"10.0.0.5", "fd00::/64", "192.168.0.0/16"},
		ForwardedHeader: "Forwarded",
		Limits: Limits{MessagesPerMinute: 20, Burst: 5, IPMessagesPerMinute: 100, ConnectionsPerIP: 8, MaxConnections: 500, TCPConnectionsPerIP: 72, MaxTCPConnections: 1500, HeaderTimeout: Duration(DefaultHeaderTimeout), BodyTimeout: Duration(DefaultBodyTimeout),
			StartsPerMinute: 3, StartBurst: 4, BotStartsPerMinute: 50},
		Upstream: UpstreamConfig{Timeout: Duration(5 * time.Second), MaxBackoff: Duration(30 * time.Second), RetryFor: Duration(time.Hour)},
		Bots: []BotConfig{{
			ID:       "support",
			Provider: "demo",
			Origins:  []string{"https://www.acme.com", "https://*.acme.com", "http://localhost:3000", "self", "loopback"},
			Settings: &demo.Settings{Script: "support.yaml", TypingDelay: Duration(time.Second)},
			Widget: WidgetConfig{
				Title: "Acme support", Subtitle: "We answer in minutes", Icon: "https://cdn.acme.com/icon.png",
				Position: "left", BrandColor: "#007171", Greeting: "Price is $5, literally", Locale: "nl",
				Texts: map[string]string{"send": "Verstuur"},
			},
		}, {
			ID:       "sales-2",
			Provider: "demo",
			Origins:  []string{"https://shop.acme.com:8443"},
			Settings: &demo.Settings{TypingDelay: Duration(600 * time.Millisecond)},
			Widget:   WidgetConfig{Position: "right", BrandColor: "#abc"},
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("ParseConfig:\n got %#v\nwant %#v", dump(c), dump(want))
	}
	if got := c.SessionKeys[0].Reveal(); got != testSessionKey {
		t.Errorf("session_keys[0] = %q, want the expanded ${SESSION_KEY}", got)
	}
	if got := c.SessionKeys[1].Reveal(); got != oldSessionKey {
		t.Errorf("session_keys[1] = %q, want $$ to stay a literal $: %q", got, oldSessionKey)
	}
	look := c.Bots[0].Widget.Look()
	if look.Title != "Acme support" || look.Position != "left" || look.Locale != "nl" || look.Texts["send"] != "Verstuur" {
		t.Errorf("Look() = %+v", look)
	}
}

// dump shows a Config with its secrets, for failure messages only.
func dump(c *Config) string {
	keys := make([]string, len(c.SessionKeys))
	for i, k := range c.SessionKeys {
		keys[i] = k.Reveal()
	}
	b, _ := json.Marshal(c)
	return fmt.Sprintf("%s keys=%q", b, keys)
}

func TestParseConfigExpansion(t *testing.T) {
	tests := []struct {
		value, want string
	}{
		{"plain", "plain"},
		{"${PUBLIC_URL}", "https://chat.acme.com"},
		{"a ${PUBLIC_URL} b", "a https://chat.acme.com b"},
		{"$$", "$"},
		{"$${PUBLIC_URL}", "${PUBLIC_URL}"},
		{"$$$${X}", "$${X}"},
		{"$5 and $NAME", "$5 and $NAME"}, // only ${...} and $$ are special
		{"${EMPTY}x", "x"},
		{"yes", "yes"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			y := fmt.Sprintf("bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      greeting: %q\n", tt.value)
			c, err := ParseConfig([]byte(y), testEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Bots[0].Widget.Greeting; got != tt.want {
				t.Errorf("greeting %q expanded to %q, want %q", tt.value, got, tt.want)
			}
		})
	}
	// An expanded value that looks like YAML stays a string.
	t.Run("value looks like YAML", func(t *testing.T) {
		env := func(string) (string, bool) { return "true # [not: yaml]", true }
		c, err := ParseConfig([]byte("bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      title: ${T}\n"), env)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Bots[0].Widget.Title; got != "true # [not: yaml]" {
			t.Errorf("title = %q", got)
		}
	})
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(oneBot), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" {
		t.Errorf("listen = %q, want :8080", c.Listen)
	}
	if c.Store.Driver != "bolt" {
		t.Errorf("store.driver = %q, want bolt", c.Store.Driver)
	}
	if c.Store.Path != "" {
		t.Errorf("store.path = %q, want empty (the data directory decides)", c.Store.Path)
	}
	if time.Duration(c.Retention) != 30*24*time.Hour {
		t.Errorf("retention = %v, want 30 days", time.Duration(c.Retention))
	}
	if want := (Limits{MessagesPerMinute: 30, Burst: 10, IPMessagesPerMinute: 300, ConnectionsPerIP: 64, MaxConnections: 10000, TCPConnectionsPerIP: 128, MaxTCPConnections: 11000, HeaderTimeout: Duration(DefaultHeaderTimeout), BodyTimeout: Duration(DefaultBodyTimeout),
		StartsPerMinute: 6, StartBurst: 20, BotStartsPerMinute: 300}); c.Limits != want {
		t.Errorf("limits = %+v, want %+v", c.Limits, want)
	}
	if len(c.SessionKeys) != 0 || c.PublicURL != "" {
		t.Errorf("session_keys/public_url should stay empty, got %d keys, %q", len(c.SessionKeys), c.PublicURL)
	}
	b := c.Bots[0]
	if b.Widget.Position != "right" {
		t.Errorf("widget.position = %q, want right", b.Widget.Position)
	}
	if d := time.Duration(b.Settings.(*demo.Settings).TypingDelay); d != 600*time.Millisecond {
		t.Errorf("demo.typing_delay = %v, want 600ms", d)
	}

	// An explicit null is the same as leaving a setting out.
	c, err = ParseConfig([]byte("listen:\nretention:\nlimits:\n"+oneBot), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || time.Duration(c.Retention) != DefaultRetention || c.Limits.Burst != 10 {
		t.Errorf("null settings did not get defaults: %+v", c)
	}
}

func TestParseConfigDurations(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"30d", 30 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"12h", 12 * time.Hour},
		{"720h", 720 * time.Hour},
		{"1h30m", 90 * time.Minute},
	} {
		c, err := ParseConfig([]byte("retention: "+tt.in+"\n"+oneBot), testEnv)
		if err != nil {
			t.Errorf("retention %s: %v", tt.in, err)
			continue
		}
		if got := time.Duration(c.Retention); got != tt.want {
			t.Errorf("retention %s = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "d", "xd", "-1d", "30", "soon", "1w"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("Duration %q parsed as %v, want an error", bad, time.Duration(d))
		}
	}
	if b, _ := Duration(90 * time.Second).MarshalText(); string(b) != "1m30s" {
		t.Errorf("MarshalText = %q", b)
	}
}

func TestParseConfigOrigins(t *testing.T) {
	for _, o := range []string{
		"self", "loopback",
		"https://www.acme.com", "https://*.acme.com", "http://*.acme.com:8080",
		"http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:8080", "https://acme.com:8443",
	} {
		y := fmt.Sprintf("bots:\n  - id: a\n    provider: demo\n    origins: [%q]\n", o)
		if _, err := ParseConfig([]byte(y), testEnv); err != nil {
			t.Errorf("origin %q refused: %v", o, err)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig does not validate: %v", err)
	}
	if len(c.Bots) != 1 || c.Bots[0].ID != DemoBotID || c.Bots[0].Provider != "demo" {
		t.Fatalf("DefaultConfig bots = %+v, want the demo bot", c.Bots)
	}
	if !reflect.DeepEqual(c.Bots[0].Origins, []string{"self", "loopback"}) {
		t.Errorf("demo origins = %q", c.Bots[0].Origins)
	}
	if c.Listen != DefaultListen || c.Store.Driver != "bolt" || time.Duration(c.Retention) != DefaultRetention ||
		c.Bots[0].Widget.Position != "right" || c.Bots[0].Settings.(*demo.Settings).TypingDelay == 0 || c.Limits.Burst == 0 {
		t.Errorf("DefaultConfig lacks defaults: %+v", c)
	}
	// Each call is a fresh copy.
	DefaultConfig().Bots[0].Origins[0] = "changed"
	if DefaultConfig().Bots[0].Origins[0] != "self" {
		t.Error("DefaultConfig shares state between calls")
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := DefaultConfig()
	c.SessionKeys = []Secret{testSessionKey}
	c.PublicURL = "https://chat.acme.com"

	var outputs []string
	for _, format := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%d", "%10.3s"} {
		outputs = append(outputs,
			fmt.Sprintf(format, c), fmt.Sprintf(format, *c),
			fmt.Sprintf(format, c.SessionKeys), fmt.Sprintf(format, c.SessionKeys[0]))
	}
	outputs = append(outputs, fmt.Sprint(c), fmt.Sprintln(*c), c.SessionKeys[0].String(), c.SessionKeys[0].GoString())

	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("config", "config", c, "value", *c, "keys", c.SessionKeys, "key", c.SessionKeys[0])
		log.Info("attrs", slog.Any("key", c.SessionKeys[0]), slog.Group("g", "key", c.SessionKeys[0]))
		outputs = append(outputs, buf.String())
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j), slog.AnyValue(c.SessionKeys[0]).Resolve().String())

	for _, out := range outputs {
		if strings.Contains(out, testSessionKey) || strings.Contains(out, "s3cr3t") {
			t.Errorf("the session key leaked: %s", out)
		}
	}
	if !strings.Contains(outputs[0], "[redacted]") {
		t.Errorf("%%v of a Config does not show the placeholder: %s", outputs[0])
	}
	if c.SessionKeys[0].Reveal() != testSessionKey {
		t.Error("Reveal does not return the key")
	}
}

func TestParseOrigin(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "" means an error
	}{
		{"https://www.acme.com", "https://www.acme.com"},
		{"https://www.acme.com/", "https://www.acme.com"},
		{"https://WWW.Acme.COM", "https://www.acme.com"},
		{"HTTPS://www.acme.com", "https://www.acme.com"},
		{"https://x.com:443", "https://x.com"},
		{"http://x.com:80", "http://x.com"},
		{"http://x.com:443", "http://x.com:443"},
		{"https://x.com:80", "https://x.com:80"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"https://x.com/path", ""},
		{"https://x.com?q=1", ""},
		{"https://x.com#top", ""},
		{"https://user@x.com", ""},
		{"ftp://x.com", ""},
		{"x.com", ""},
		{"null", ""},
		{"", ""},
		{"https://", ""},
		{"https://x.com:bad", ""},
	} {
		got, err := parseOrigin(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseOrigin(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMatchOrigin(t *testing.T) {
	for _, tt := range []struct {
		pattern, origin string
		want            bool
	}{
		{"https://*.acme.com", "https://www.acme.com", true},
		{"https://*.acme.com", "https://a.b.acme.com", true},
		{"https://*.acme.com", "https://WWW.ACME.COM", true},
		{"https://*.acme.com", "https://acme.com", false},
		{"https://*.acme.com", "http://www.acme.com", false},
		{"https://*.acme.com", "https://evilacme.com", false},
		{"https://*.acme.com", "https://www.evilacme.com", false},
		{"https://*.acme.com", "https://www.acme.com.evil.com", false},
		{"https://*.acme.com", "https://www.acme.com:8443", false},
		{"https://*.acme.com", "https://www.acme.com:443", true},
		{"https://*.acme.com:8443", "https://www.acme.com:8443", true},
		{"https://*.acme.com:8443", "https://www.acme.com", false},
		{"http://*.acme.com:80", "http://www.acme.com", true},
		{"https://www.acme.com", "https://www.acme.com", true},
		{"https://www.acme.com", "https://www.acme.com:443", true},
		{"https://x.com:443", "https://x.com", true},
		{"https://x.com", "https://x.com:443", true},
		{"http://x.com", "http://x.com:80", true},
		{"https://x.com", "http://x.com", false},
		{"https://x.com", "https://x.com:8443", false},
		{"https://www.acme.com", "https://acme.com", false},
		{"https://www.acme.com", "https://www.acme.com.evil.com", false},
		{"https://acme.com", "https://www.acme.com", false},
	} {
		// The server normalises the Origin header before matching.
		o, err := parseOrigin(tt.origin)
		if err != nil {
			t.Fatalf("parseOrigin(%q): %v", tt.origin, err)
		}
		if got := matchOrigin(tt.pattern, o); got != tt.want {
			t.Errorf("matchOrigin(%q, %q) = %v, want %v", tt.pattern, o, got, tt.want)
		}
	}
}

func TestIsLoopbackOrigin(t *testing.T) {
	for _, tt := range []struct {
		origin string
		want   bool
	}{
		{"http://localhost:3000", true},
		{"http://localhost", true},
		{"https://localhost", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.0.0.5:1", true},
		{"http://[::1]:8080", true},
		{"http://[::1]", true},
		{"http://app.localhost", true},
		{"http://app.localhost:5173", true},
		{"http://localhost.evil.com", false},
		{"http://evillocalhost", false},
		{"http://10.0.0.1", false},
		{"http://192.168.1.10:3000", false},
		{"https://www.acme.com", false},
		{"http://[::2]:8080", false},
	} {
		o, err := parseOrigin(tt.origin)
		if err != nil {
			t.Fatalf("parseOrigin(%q): %v", tt.origin, err)
		}
		if got := isLoopbackOrigin(o); got != tt.want {
			t.Errorf("isLoopbackOrigin(%q) = %v, want %v", o, got, tt.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	if _, err := LoadConfig(t.TempDir() + "/missing.yaml"); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("LoadConfig of a missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "porthole.yaml")
	if err := os.WriteFile(path, []byte("store:\n  driver: sqlite\n"+oneBot), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "store.driver:") {
		t.Errorf("LoadConfig error should name the file and the field: %v", err)
	}
	if err := os.WriteFile(path, []byte(oneBot), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(path); err != nil || c.Bots[0].ID != "support" {
		t.Errorf("LoadConfig = %+v, %v", c, err)
	}
}

// TestExamplesAreValid keeps examples/ true: every file there parses and
// validates with its ${VARS} set.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	env := func(name string) (string, bool) { return strings.Repeat("k", 40), true }
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseConfig(data, env); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestUpstreamRetryPolicy checks that the upstream section becomes the
// service's retry policy, with the defaults where it is silent.
func TestUpstreamRetryPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.yaml")
	os.WriteFile(path, []byte("upstream: {timeout: 2s, max_backoff: 250ms}\nbots:\n  - {id: a, provider: demo, origins: [self]}\n"), 0o600)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Upstream.Retry()
	want := RetryPolicy{Quick: 3, Base: 250 * time.Millisecond, Max: 250 * time.Millisecond, GiveUp: 10 * time.Minute, Greet: DefaultGreetRetry, Timeout: 2 * time.Second}
	if got != want {
		t.Fatalf("policy = %+v, want %+v", got, want)
	}
	if d := DefaultConfig().Upstream.Retry(); d != DefaultRetry {
		t.Fatalf("default policy = %+v, want %+v", d, DefaultRetry)
	}
}
