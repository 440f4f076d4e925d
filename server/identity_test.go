package server

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	key1 = "first-session-key-0123456789abcdef0123"
	key2 = "second-session-key-0123456789abcdef012"
)

func newTestKeyring(t *testing.T, secrets ...string) *Keyring {
	t.Helper()
	k, err := NewKeyring(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mint(t *testing.T, k *Keyring, bot, visitor string) string {
	t.Helper()
	tok, err := k.MintVisitor(bot, visitor)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVisitorRoundTrip(t *testing.T) {
	k := newTestKeyring(t, key1)
	id := NewVisitorID()
	tok := mint(t, k, "support", id)
	if got, ok := k.Visitor("support", tok); !ok || got != id {
		t.Fatalf("Visitor = %q, %v; want %q, true", got, ok, id)
	}
	if strings.Contains(tok, id) {
		t.Error("the token shows the visitor id in clear")
	}
	for _, c := range tok {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-_=", c)) {
			t.Fatalf("token %q is not URL-safe (%q)", tok, c)
		}
	}
	// Two tokens for the same visitor differ (random IV), and both work.
	tok2 := mint(t, k, "support", id)
	if tok2 == tok {
		t.Error("two tokens are identical")
	}
	if got, ok := k.Visitor("support", tok2); !ok || got != id {
		t.Errorf("second token: %q, %v", got, ok)
	}
	// A keyring built from the same secret (a restart) reads it.
	if got, ok := newTestKeyring(t, key1).Visitor("support", tok); !ok || got != id {
		t.Errorf("after a restart: %q, %v", got, ok)
	}
}

func TestVisitorWrongBot(t *testing.T) {
	k := newTestKeyring(t, key1)
	id := NewVisitorID()
	tok := mint(t, k, "bot-a", id)
	for _, bot := range []string{"bot-b", "", "bot-a ", "BOT-A"} {
		if got, ok := k.Visitor(bot, tok); ok || got != "" {
			t.Errorf("token for bot-a accepted for %q: %q, %v", bot, got, ok)
		}
	}
	if _, ok := k.Visitor("bot-a", tok); !ok {
		t.Error("token refused for its own bot")
	}
}

func TestVisitorForeignKey(t *testing.T) {
	tok := mint(t, newTestKeyring(t, key1), "support", NewVisitorID())
	if got, ok := newTestKeyring(t, key2).Visitor("support", tok); ok || got != "" {
		t.Errorf("a token from another key was accepted: %q", got)
	}
}

func TestVisitorInvalidID(t *testing.T) {
	k := newTestKeyring(t, key1)
	for _, id := range []string{"", "visitor", strings.Repeat("g", 32), NewVisitorID()[:31], NewVisitorID() + "00"} {
		if got, ok := k.Visitor("support", mint(t, k, "support", id)); ok {
			t.Errorf("visitor id %q accepted: %q", id, got)
		}
	}
}

func TestVisitorTampered(t *testing.T) {
	k := newTestKeyring(t, key1)
	tok := mint(t, k, "support", NewVisitorID())

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":           "",
		"space":           " ",
		"garbage":         "not-a-token",
		"not base64":      "!!!!$$$$****",
		"pipes":           "a|b|c",
		"flip middle":     flip(tok, len(tok)/2),
		"flip start":      flip(tok, 0),
		"flip quarter":    flip(tok, len(tok)/4),
		"truncated half":  tok[:len(tok)/2],
		"truncated by 1":  tok[:len(tok)-1],
		"truncated by 8":  tok[:len(tok)-8],
		"first char":      tok[:1],
		"appended":        tok + "AAAA",
		"doubled":         tok + tok,
		"leading space":   " " + tok,
		"huge":            strings.Repeat("A", 1<<16),
		"reversed halves": tok[len(tok)/2:] + tok[:len(tok)/2],
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("Visitor panicked: %v", r)
				}
			}()
			if got, ok := k.Visitor("support", bad); ok || got != "" {
				t.Errorf("tampered token accepted: %q", got)
			}
		})
	}
	if _, ok := k.Visitor("support", tok); !ok {
		t.Error("the untouched token was refused")
	}
}

func TestVisitorKeyRotation(t *testing.T) {
	id := NewVisitorID()
	old := newTestKeyring(t, key1)
	rotated := newTestKeyring(t, key2, key1)
	onlyNew := newTestKeyring(t, key2)

	oldTok := mint(t, old, "support", id)
	if got, ok := rotated.Visitor("support", oldTok); !ok || got != id {
		t.Errorf("a token from [k1] is refused by [k2, k1]: %q, %v", got, ok)
	}
	newTok := mint(t, rotated, "support", id)
	if got, ok := rotated.Visitor("support", newTok); !ok || got != id {
		t.Errorf("a token from [k2, k1] is refused by [k2, k1]: %q, %v", got, ok)
	}
	if _, ok := old.Visitor("support", newTok); ok {
		t.Error("a token from [k2, k1] is accepted by [k1]: the first key must sign")
	}
	if got, ok := onlyNew.Visitor("support", newTok); !ok || got != id {
		t.Errorf("a token from [k2, k1] is refused by [k2]: %q, %v", got, ok)
	}
	if _, ok := onlyNew.Visitor("support", oldTok); ok {
		t.Error("a token from [k1] is accepted once k1 is dropped")
	}
}

func TestVisitorExpiry(t *testing.T) {
	id := NewVisitorID()
	k := newTestKeyring(t, key1)
	at := func(d time.Duration) func() time.Time {
		return func() time.Time { return time.Now().Add(d) }
	}

	// Minted long ago.
	k.now = at(-VisitorTokenMaxAge - time.Hour)
	expired := mint(t, k, "support", id)
	k.now = at(-VisitorTokenMaxAge + time.Hour)
	fresh := mint(t, k, "support", id)
	k.now = nil
	if got, ok := k.Visitor("support", expired); ok {
		t.Errorf("a token older than VisitorTokenMaxAge was accepted: %q", got)
	}
	if got, ok := k.Visitor("support", fresh); !ok || got != id {
		t.Errorf("a token just younger than VisitorTokenMaxAge was refused: %q, %v", got, ok)
	}

	// Minted now, read after the maximum age.
	tok := mint(t, k, "support", id)
	k.now = at(VisitorTokenMaxAge + time.Minute)
	if _, ok := k.Visitor("support", tok); ok {
		t.Error("a token was accepted after VisitorTokenMaxAge")
	}
	k.now = at(VisitorTokenMaxAge - time.Minute)
	if _, ok := k.Visitor("support", tok); !ok {
		t.Error("a token was refused before VisitorTokenMaxAge")
	}
}

// TestVisitorFromTheFuture: a token whose issue time lies beyond
// VisitorTokenSkew ahead of the server's clock is refused, so that it
// starts a fresh visitor like a tampered one; within the skew (servers
// whose clocks differ a little) it is still accepted.
func TestVisitorFromTheFuture(t *testing.T) {
	id := NewVisitorID()
	k := newTestKeyring(t, key1)
	at := func(d time.Duration) func() time.Time {
		return func() time.Time { return time.Now().Add(d) }
	}
	for _, c := range []struct {
		ahead time.Duration
		ok    bool
	}{
		{VisitorTokenSkew + time.Minute, false},
		{24 * time.Hour, false},
		{VisitorTokenMaxAge, false},
		{VisitorTokenSkew - time.Minute, true},
		{time.Minute, true},
	} {
		k.now = at(c.ahead)
		tok := mint(t, k, "support", id)
		k.now = nil
		if got, ok := k.Visitor("support", tok); ok != c.ok || ok && got != id {
			t.Errorf("a token dated %s ahead: Visitor = %q, %v; want ok %v", c.ahead, got, ok, c.ok)
		}
	}
}

func TestNewKeyring(t *testing.T) {
	if _, err := NewKeyring(nil); err == nil {
		t.Error("NewKeyring(nil) succeeded")
	}
	k := newTestKeyring(t, key1, key2)
	p := k.Pairs()
	if len(p) != 4 {
		t.Fatalf("Pairs() has %d keys, want a hash and a block key per secret", len(p))
	}
	for i, b := range p {
		if len(b) != 32 {
			t.Errorf("Pairs()[%d] has %d bytes, want 32", i, len(b))
		}
		for j := range i {
			if bytes.Equal(b, p[j]) {
				t.Errorf("Pairs()[%d] == Pairs()[%d]", i, j)
			}
		}
		if bytes.Contains(b, []byte(key1)) || bytes.Contains(b, []byte(key2)) {
			t.Errorf("Pairs()[%d] holds a secret itself", i)
		}
	}
	if q := newTestKeyring(t, key1, key2).Pairs(); !bytes.Equal(q[0], p[0]) || !bytes.Equal(q[3], p[3]) {
		t.Error("the derived keys are not deterministic")
	}
}

func TestNewVisitorID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewVisitorID()
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("NewVisitorID() = %q, want 32 lowercase hex characters", id)
		}
		if !validVisitorID(id) {
			t.Fatalf("validVisitorID(%q) = false", id)
		}
		if seen[id] {
			t.Fatalf("NewVisitorID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "porthole")
	key, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) < 32 || strings.TrimSpace(key) != key {
		t.Errorf("key %q: want at least 32 characters, no spaces", key)
	}
	path := filepath.Join(dir, "session.key")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("session.key mode = %v, want 0600", perm)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := di.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("data directory mode = %v, want no access for others", perm)
		}
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "session.key" {
		t.Errorf("the data directory holds %q, want only session.key", names)
	}
	again, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again != key {
		t.Errorf("second call returned %q, want the stored %q", again, key)
	}
	if other, err := LoadOrCreateKey(t.TempDir()); err != nil || other == key {
		t.Errorf("a new directory got %q, %v; want a new key", other, err)
	}
	if _, err := NewKeyring([]string{key}); err != nil {
		t.Errorf("the key does not make a keyring: %v", err)
	}
}

func TestLoadOrCreateKeyExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "session.key")
	want := "an-operator-chosen-key-0123456789abcdef"
	if err := os.WriteFile(path, []byte("  "+want+"\r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadOrCreateKey(dir); err != nil || got != want {
		t.Errorf("LoadOrCreateKey = %q, %v; want the file's key, trimmed", got, err)
	}
}

func TestLoadOrCreateKeyTooShort(t *testing.T) {
	for _, content := range []string{"short\n", "", "\n\n", strings.Repeat("x", 31)} {
		dir := t.TempDir()
		path := filepath.Join(dir, "session.key")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := LoadOrCreateKey(dir)
		if err == nil {
			t.Errorf("content %q: got key %q, want an error", content, key)
			continue
		}
		n := len(strings.TrimSpace(content))
		for _, w := range []string{path, "key of " + strconv.Itoa(n) + " characters", "delete the file"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("content %q: error %q does not contain %q", content, err, w)
			}
		}
		// The file is left alone for the operator to look at.
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("content %q: the file was changed to %q", content, b)
		}
	}
}

func TestLoadOrCreateKeyErrors(t *testing.T) {
	// The data directory is a file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if key, err := LoadOrCreateKey(file); err == nil {
		t.Errorf("LoadOrCreateKey under a file = %q, want an error", key)
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	const n = 16
	keys := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKey(dir) })
	}
	wg.Wait()
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "session.key" {
		t.Errorf("the data directory holds %q, want only session.key", names)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if keys[i] != keys[0] {
			t.Fatalf("concurrent calls returned different keys: %q and %q", keys[0], keys[i])
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
