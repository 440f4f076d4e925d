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
