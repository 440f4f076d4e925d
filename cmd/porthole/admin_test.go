package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/server"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// runAdmin runs `porthole admin ARGS` against the admin listener at url
// with the token in the environment, and returns its stdout, stderr and
// whether it succeeded.
func runAdmin(t *testing.T, url, token string, args ...string) (string, string, bool) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"admin", "--url", url}, args...)...)
	cmd.Env = append(os.Environ(), "PORTHOLE_ADMIN_TOKEN="+token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if strings.Contains(out.String()+errb.String(), token) {
		t.Fatalf("porthole admin %v printed the admin token", args)
	}
	return out.String(), errb.String(), err == nil
}

// TestAdminExportAndEraseEndToEnd: against the real binary, through
// `porthole admin`: the export before the erase holds every message of
// the visitor's conversation; after the erase nothing of that visitor is
// in the store (read with the store itself once the server has stopped),
// their old token is welcomed as a fresh visitor, and another visitor's
// conversation is whole. The public port serves no admin path.
func TestAdminExportAndEraseEndToEnd(t *testing.T) {
	const token = "e2e-admin-token-0123456789abcdef"
	adminAddr, data := freeAddr(t), t.TempDir()
	cfg := filepath.Join(t.TempDir(), "porthole.yaml")
	if err := os.WriteFile(cfg, []byte(`admin: {listen: "`+adminAddr+`"}
admin_token: "${ADMIN_TOKEN}"
bots:
  - id: demo
    provider: demo
    origins: ["self"]
    demo: {typing_delay: 1ms}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ADMIN_TOKEN", token)
	p := launch(t, freeAddr(t), data, "--config", cfg)
	adminURL := "http://" + adminAddr

	c, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	w := c.start("st")
	for _, id := range []string{"x1", "x2"} {
		c.send(&widget.Send{ID: id, Text: "erase-me " + id})
		c.ack(id)
		c.botTurn()
	}
	o, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	o.hello("", 0)
	ow := o.start("st")
	o.send(&widget.Send{ID: "k1", Text: "keep-me"})
	o.ack("k1")
	o.botTurn()

	for _, path := range []string{"/admin/v1/bots/demo/conversations", "/admin/v1/bots/demo/export?visitor=" + strings.Repeat("a", 32)} {
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("the public port answers %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if _, stderr, ok := runAdmin(t, adminURL, "not-the-token", "conversations", "demo"); ok || !strings.Contains(stderr, "401") {
		t.Fatalf("a wrong admin token was not refused: %s", stderr)
	}

	out, stderr, ok := runAdmin(t, adminURL, token, "export", "demo", "--token", w.Visitor)
	if !ok {
		t.Fatalf("export: %s", stderr)
	}
	var ex server.AdminExport
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatal(err)
	}
	if len(ex.Conversations) != 1 || ex.Conversations[0].Conversation.ID != w.Conversation {
		t.Fatalf("export: %+v", ex.Conversations)
	}
	_, transcript := replayBot(t, p, "demo", w.Visitor, 0)
	got := ex.Conversations[0].Messages
	if len(got) != len(transcript) || len(got) < 4 {
		t.Fatalf("the export holds %d messages, the transcript %d", len(got), len(transcript))
	}
	for i, m := range transcript {
		if got[i].ID != m.ID || got[i].Body.Text != m.Body.Text {
			t.Fatalf("export message %d = %+v, the transcript has %+v", i, got[i], m)
		}
	}

	if _, stderr, ok := runAdmin(t, adminURL, token, "erase", "demo", "--token", w.Visitor); ok || !strings.Contains(stderr, "--yes") {
		t.Fatalf("erase without --yes: ok %v, %s", ok, stderr)
	}
	out, stderr, ok = runAdmin(t, adminURL, token, "erase", "demo", "--token", w.Visitor, "--yes")
	if !ok || !strings.Contains(out, w.Conversation) {
		t.Fatalf("erase: %s %s", out, stderr)
	}
	if _, stderr, ok := runAdmin(t, adminURL, token, "show", w.Conversation); ok || !strings.Contains(stderr, "404") {
		t.Fatalf("show after the erase: %s", stderr)
	}
	again, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if aw := again.hello(w.Visitor, 4); aw.Conversation != "" || aw.Last != 0 {
		t.Fatalf("the old token after the erase: %+v, want a fresh visitor without a conversation", aw)
	}

	// Nothing of the visitor is left in the store; the other visitor's
	// conversation is whole.
	p.cmd.Process.Signal(os.Interrupt)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	st, err := store.OpenBolt(filepath.Join(data, "porthole.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	if _, err := st.Get(ctx, w.Conversation); err == nil {
		t.Fatal("the erased conversation is in the store")
	}
	all, err := st.List(ctx, "demo", store.Cursor{}, 100)
	if err != nil || len(all) != 1 || all[0].ID != ow.Conversation {
		t.Fatalf("conversations left: %+v, %v; want only the other visitor's", all, err)
	}
	if pending, err := st.Outbox(ctx, 100); err != nil || len(pending) != 0 {
		t.Fatalf("outbox after the erase: %+v, %v", pending, err)
	}
	if ms, err := st.Read(ctx, ow.Conversation, 0, 100); err != nil || len(ms) < 2 {
		t.Fatalf("the other conversation: %d messages, %v", len(ms), err)
	}
}
