package chatlayer

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/porthole-chat/porthole/server/provider/providertest"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if c.Mode != ModeV1 || c.Region != "eu" || c.Greet == nil || !*c.Greet || c.ReplyTyping == nil || !*c.ReplyTyping || c.ReorderWait != time.Second || c.RetryWindow != 10*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Endpoint() != "https://api.chatlayer.ai" {
		t.Fatalf("default endpoint %q", c.Endpoint())
	}
	off := false
	c = Config{Greet: &off, ReplyTyping: &off, BaseURL: "http://127.0.0.1:9/"}
	c.ApplyDefaults()
	if *c.Greet || *c.ReplyTyping || c.Region != "" || c.Endpoint() != "http://127.0.0.1:9" {
		t.Fatalf("explicit values overridden: %+v endpoint %q", c, c.Endpoint())
	}
	for region, host := range map[string]string{
		"eu": "https://api.chatlayer.ai", "us": "https://api.prod.us-east4.gcp.chatlayer.ai",
		"asia": "https://api.prod.asia-south1.gcp.chatlayer.ai", "staging": "https://api.staging.europe-west1.gc.chatlayer.ai",
	} {
		if got := (Config{Region: region}).Endpoint(); got != host {
			t.Errorf("region %s: %s, want %s", region, got, host)
		}
	}
	if got := (Config{Region: "us", BaseURL: "https://proxy.example/chatlayer/"}).Endpoint(); got != "https://proxy.example/chatlayer" {
		t.Errorf("base_url does not override region: %s", got)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
mode: legacy
region: asia
base_url: https://api.example
channel_id: ch-1
bot_id: "1234"
token: "id:secret"
verify_token: vt
greet: false
reply_typing: false
reorder_wait: 250ms
`
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Mode != "legacy" || c.Region != "asia" || c.BaseURL != "https://api.example" || c.ChannelID != "ch-1" || c.BotID != "1234" ||
		c.Token.Reveal() != "id:secret" || c.VerifyToken.Reveal() != "vt" || *c.Greet || *c.ReplyTyping || c.ReorderWait != 250*time.Millisecond {
		t.Fatalf("decoded %+v", c)
	}
	if errs := c.Validate("x"); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{ChannelID: "ch", Token: "tokid-LEAKCHECK-1:toksecret-LEAKCHECK-2", VerifyToken: "verify-LEAKCHECK-3"}
	if errs := valid.Validate("bots[0].chatlayer"); len(errs) != 0 {
		t.Fatalf("valid v1 config: %v", errs)
	}
	legacy := Config{Mode: ModeLegacy, BotID: "1234", VerifyToken: "verify-LEAKCHECK-3"}
	if errs := legacy.Validate("bots[0].chatlayer"); len(errs) != 0 {
		t.Fatalf("valid legacy config: %v", errs)
	}
	if legacy.HistoryOn() || valid.HistoryOn() {
		t.Fatal("history on without a token or without a bot id")
	}
	full := valid
	full.BotID, full.SessionDialogstate = "1234", "ds"
	if errs := full.Validate("bots[0].chatlayer"); len(errs) != 0 || !full.HistoryOn() {
		t.Fatalf("v1 config with history and session push: %v, history on %v", errs, full.HistoryOn())
	}
	cases := []struct {
		name  string
		edit  func(*Config)
		field string // full path expected in an error
		fix   string // part of the fix expected in that error
	}{
		{"bad mode", func(c *Config) { c.Mode = "v2" }, "bots[0].chatlayer.mode", "use v1"},
		{"bad region", func(c *Config) { c.Region = "mars" }, "bots[0].chatlayer.region", "use eu"},
		{"bad base_url", func(c *Config) { c.BaseURL = "api.chatlayer.ai" }, "bots[0].chatlayer.base_url", "https://api.chatlayer.ai"},
		{"base_url with query", func(c *Config) { c.BaseURL = "https://api.chatlayer.ai/?access_token=x" }, "bots[0].chatlayer.base_url", "no query"},
		{"no channel", func(c *Config) { c.ChannelID = "" }, "bots[0].chatlayer.channel_id", "Webhook channel"},
		{"channel with slash", func(c *Config) { c.ChannelID = "a/b" }, "bots[0].chatlayer.channel_id", "only the channel id"},
		{"no token", func(c *Config) { c.Token = "" }, "bots[0].chatlayer.token", "${CHATLAYER_TOKEN}"},
		{"token with newline", func(c *Config) { c.Token = "tokid-LEAKCHECK-1:toksecret-LEAKCHECK-2\n" }, "bots[0].chatlayer.token", "copy the token exactly"},
		{"no verify token", func(c *Config) { c.VerifyToken = "" }, "bots[0].chatlayer.verify_token", "verify token of the bot's Webhook channel"},
		{"legacy without bot id", func(c *Config) { c.Mode = ModeLegacy }, "bots[0].chatlayer.bot_id", "bot id"},
		{"negative wait", func(c *Config) { c.ReorderWait = -time.Second }, "bots[0].chatlayer.reorder_wait", "between 1ms and 10s"},
		{"long wait", func(c *Config) { c.ReorderWait = time.Minute }, "bots[0].chatlayer.reorder_wait", "between 1ms and 10s"},
		{"negative retry window", func(c *Config) { c.RetryWindow = -time.Minute }, "bots[0].chatlayer.retry_window", "below the bot's session expiry"},
		{"retry window of a month", func(c *Config) { c.RetryWindow = 30 * 24 * time.Hour }, "bots[0].chatlayer.retry_window", "168h"},
		{"retry window under the wait", func(c *Config) { c.ReorderWait = 2 * time.Second; c.RetryWindow = time.Second }, "bots[0].chatlayer.retry_window", "longer than reorder_wait"},
		{"history without bot id", func(c *Config) { t := true; c.History = &t }, "bots[0].chatlayer.bot_id", "history: true"},
		{"legacy history without token", func(c *Config) { t := true; c.Mode, c.BotID, c.Token, c.History = ModeLegacy, "b", "", &t }, "bots[0].chatlayer.token", "${CHATLAYER_TOKEN}"},
		{"session push without bot id", func(c *Config) { c.SessionDialogstate = "ds" }, "bots[0].chatlayer.bot_id", "session_dialogstate"},
		{"bot id with slash", func(c *Config) { c.BotID = "a/b" }, "bots[0].chatlayer.bot_id", "only the bot id"},
		{"history budget too high", func(c *Config) { c.HistoryPerMinute = 10000 }, "bots[0].chatlayer.history_per_minute", "between 1 and 600"},
	}
	for _, tc := range cases {
		c := valid
		tc.edit(&c)
		errs := c.Validate("bots[0].chatlayer")
		found := false
		for _, err := range errs {
			msg := err.Error()
			if strings.Contains(msg, "LEAKCHECK") {
				t.Errorf("%s: an error shows a secret: %s", tc.name, msg)
			}
			if strings.HasPrefix(msg, tc.field+": ") && strings.Contains(msg, tc.fix) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want an error on %s mentioning %q, got %v", tc.name, tc.field, tc.fix, errs)
		}
	}
	// History and the session push missing the same bot id: one error
	// that names both; in mode legacy the mode's own error says it.
	both, yes := valid, true
	both.History, both.SessionDialogstate = &yes, "ds"
	if got := botIDErrors(both.Validate("")); len(got) != 1 || !strings.Contains(got[0], "history: true") || !strings.Contains(got[0], "session_dialogstate") {
		t.Errorf("history and session push without bot_id: %q, want one error naming both", got)
	}
	both.Mode, both.Token = ModeLegacy, "t"
	if got := botIDErrors(both.Validate("")); len(got) != 1 || !strings.Contains(got[0], "required in mode legacy") {
		t.Errorf("legacy, history and session push without bot_id: %q, want the mode's one error", got)
	}
	errs := (Config{}).Validate("")
	if len(errs) != 3 || !strings.HasPrefix(errs[0].Error(), "channel_id: ") {
		t.Errorf("empty config without prefix: %v; want channel_id, token and verify_token", errs)
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	c := Config{ChannelID: "ch", Token: testToken, VerifyToken: testVerify}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v %s", c, c, c, c.Token)
	out, _ := yaml.Marshal(c)
	buf.Write(out)
	logs := &providertest.LogBuffer{}
	logs.Logger().Info("config", "cfg", c, "token", c.Token)
	buf.WriteString(logs.String())
	if strings.Contains(buf.String(), "LEAKCHECK") {
		t.Fatalf("a secret shows in a printed config: %s", buf.String())
	}
}

// botIDErrors are the errors of errs about bot_id.
func botIDErrors(errs []error) (out []string) {
	for _, err := range errs {
		if strings.HasPrefix(err.Error(), "bot_id: ") {
			out = append(out, err.Error())
		}
	}
	return out
}
