package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/widget"
)

// TestCallbackScopedToBot: a Chatlayer callback authenticated with bot
// alpha's verify token that names a conversation of bot beta (same
// provider) is refused with 403 and stores nothing, counted or not; the
// same message through beta's own hook with beta's token is stored.
func TestCallbackScopedToBot(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	addr := freeAddr(t)
	emu.SetCallback("http://" + addr + "/hooks/chatlayer/beta")
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	const alphaVerify = "alpha-verify-token-0123456789"
	os.WriteFile(cfg, []byte(fmt.Sprintf(`bots:
  - id: alpha
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %[1]q, channel_id: %[2]q, token: "${CHATLAYER_TOKEN}", verify_token: %[3]q, reorder_wait: 300ms}
  - id: beta
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %[1]q, channel_id: %[2]q, token: "${CHATLAYER_TOKEN}", verify_token: "${CHATLAYER_VERIFY}", reorder_wait: 300ms}
`, emu.URL, chatlayertest.DefaultChannelID, alphaVerify)), 0o600)
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	p := launch(t, addr, data, "--config", cfg)

	// Beta's visitor starts a conversation and gets its greeting.
	c, _, err := dialBot(t, p, "beta", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	w := c.start("st-1")
	c.until("the greeting", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot"
	})
	c.c.CloseNow()

	hook := func(bot, verify, text string, counter int) int {
		t.Helper()
		body := fmt.Sprintf(`{"verifyToken":%q,"senderId":%q,"message":{"text":%q}`, verify, w.Conversation, text)
		if counter > 0 {
			body += fmt.Sprintf(`,"messageCounter":%d`, counter)
		}
		res, err := http.Post("http://"+p.addr+"/hooks/chatlayer/"+bot, "application/json", strings.NewReader(body+"}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// Alpha's token, beta's conversation: refused, counted or not.
	if code := hook("alpha", alphaVerify, "forged with a counter", 50); code != http.StatusForbidden {
		t.Errorf("counted cross-bot callback: %d, want 403", code)
	}
	if code := hook("alpha", alphaVerify, "forged without a counter", 0); code != http.StatusForbidden {
		t.Errorf("uncounted cross-bot callback: %d, want 403", code)
	}
	// Beta's own hook and token: stored (the forged ones would be too,
	// had they got through, so the check below sees them).
	if code := hook("beta", chatlayertest.DefaultVerifyToken, "genuine reply", 0); code != http.StatusOK {
		t.Fatalf("beta's own callback: %d, want 200", code)
	}
	_, ms := replayBot(t, p, "beta", w.Visitor, 0)
	var texts []string
	for _, m := range ms {
		texts = append(texts, m.Body.Text)
	}
	if !has(texts, "genuine reply") {
		t.Fatalf("beta's own callback was not stored: %q", texts)
	}
	if has(texts, "forged") {
		t.Fatalf("a callback with alpha's token wrote into beta's conversation: %q", texts)
	}
	if !strings.Contains(p.log(), "conversation of another bot refused") {
		t.Error("no refusal in the log")
	}
}
