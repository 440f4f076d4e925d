package server

import (
	"strings"
	"testing"
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

		{"color_scheme", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      color_scheme: night\n",
			[]string{"bots[0].widget.color_scheme:", `"night"`, "auto, light or dark"}},
		{"font", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      font: \"Arial; } body { color: red\"\n",
			[]string{"bots[0].widget.font:", "font names, quotes, commas", "sans-serif"}},
		{"brand_color", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      brand_color: red\n",
			[]string{"bots[0].widget.brand_color:", `"red"`, "#007171"}},
		{"brand_color no hash", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      brand_color: \"007171\"\n",
			[]string{"bots[0].widget.brand_color:"}},
		{"position", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      position: middle\n",
			[]string{"bots[0].widget.position:", `"middle"`, "left or right"}},
		{"locale", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      locale: ja\n",
			[]string{"bots[0].widget.locale:", `"ja"`, "en, nl, fr, de, es, it, pt, pl, sv, da, tr, ar, he"}},
		{"locale tag", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      locale: ar-EG\n",
			[]string{"bots[0].widget.locale:", `"ar-EG"`}},
		{"text key", "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n    widget:\n      texts: {send: Go, es.sned: Ir, waiting: Wait}\n",
			[]string{"bots[0].widget.texts.es.sned:", "not a text key", `"nl.send"`}},
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
