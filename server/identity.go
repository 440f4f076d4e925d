package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// VisitorTokenMaxAge is how long a visitor token stays valid without a
// visit. Every welcome hands out a fresh one, so an active visitor never
// runs out; the store's retention decides how long a conversation lives.
const VisitorTokenMaxAge = 400 * 24 * time.Hour

// VisitorTokenSkew is how far in the future a visitor token's issue time
// may lie and still be accepted: room for clocks of several servers
// sharing session keys to disagree a little. Anything beyond it was not
// minted by a server in its right mind (a clock set wrong, or a key
// used elsewhere), and such a token would outlive VisitorTokenMaxAge by
// as much as it is early, so it is refused like a tampered one.
const VisitorTokenSkew = 5 * time.Minute

// Keyring signs and encrypts what the server hands to browsers: visitor
// tokens, the chat pages' session cookies and form tokens. The first key
// encodes; every key decodes, so keys rotate by adding a new one in front.
type Keyring struct {
	codecs []securecookie.Codec
	pairs  [][]byte
	now    func() time.Time // for tests; nil means time.Now
}

func (k *Keyring) clock() time.Time {
	if k.now != nil {
		return k.now()
	}
	return time.Now()
}

// NewKeyring derives a signing (HMAC-SHA256) and an encryption (AES-256)
// key from each secret, so one configured string serves both purposes.
func NewKeyring(secrets []string) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("keyring: no session key")
	}
	k := &Keyring{}
	for _, s := range secrets {
		k.pairs = append(k.pairs, derive(s, "porthole hash key"), derive(s, "porthole block key"))
	}
	for _, c := range securecookie.CodecsFromPairs(k.pairs...) {
		sc := c.(*securecookie.SecureCookie)
		sc.MaxAge(int(VisitorTokenMaxAge / time.Second))
		sc.SetSerializer(securecookie.JSONEncoder{})
		k.codecs = append(k.codecs, sc)
	}
	return k, nil
}

func derive(secret, label string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Pairs returns the derived hash and block keys, for gorilla/sessions.
func (k *Keyring) Pairs() [][]byte { return k.pairs }

// visitorToken is what a visitor token carries, bound to one bot.
type visitorToken struct {
	Visitor string `json:"v"`
	Bot     string `json:"b"`
	Issued  int64  `json:"t"`
}

const visitorTokenName = "porthole-visitor"

// MintVisitor returns a token naming visitor for bot.
func (k *Keyring) MintVisitor(bot, visitor string) (string, error) {
	return securecookie.EncodeMulti(visitorTokenName, visitorToken{Visitor: visitor, Bot: bot, Issued: k.clock().Unix()}, k.codecs...)
}

// Visitor returns the visitor a token names, if the token is genuine,
// unexpired, not dated in the future (beyond VisitorTokenSkew) and was
// minted for bot. A tampered, expired, future or foreign token is not an
// error for the caller: it simply starts a fresh visitor.
func (k *Keyring) Visitor(bot, token string) (string, bool) {
	if token == "" {
		return "", false
	}
	var t visitorToken
	if err := securecookie.DecodeMulti(visitorTokenName, token, &t, k.codecs...); err != nil {
		return "", false
	}
	if t.Bot != bot || !validVisitorID(t.Visitor) {
		return "", false
	}
	age := k.clock().Sub(time.Unix(t.Issued, 0))
	if age > VisitorTokenMaxAge || age < -VisitorTokenSkew {
		return "", false
	}
	return t.Visitor, true
}

// NewVisitorID returns a random visitor id: 32 lowercase hex characters.
func NewVisitorID() string { return randomHex(16) }

func validVisitorID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// LoadOrCreateKey returns the session key kept in dir/session.key,
// creating it (0600) on first start. It makes visitor tokens survive a
// restart when the configuration names no session_keys.
func LoadOrCreateKey(dir string) (string, error) {
	path := filepath.Join(dir, "session.key")
	data, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(data))
		if len(key) < 32 {
			return "", fmt.Errorf("%s holds a key of %d characters; delete the file to make a new one", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// The key is written to a temporary file and linked into place, so
	// that session.key appears complete or not at all: a process that
	// loses the race to create it reads the winner's whole key, not an
	// empty file.
	key := randomHex(32)
	f, err := os.CreateTemp(dir, ".session.key-*") // 0600
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(key + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return LoadOrCreateKey(dir)
		}
		// No hard links on this file system: create the file in place.
		if err := writeNewFile(path, key+"\n"); err != nil {
			if errors.Is(err, os.ErrExist) {
				return LoadOrCreateKey(dir)
			}
			return "", err
		}
	}
	return key, nil
}

// writeNewFile creates path (0600) with data, failing if it exists.
func writeNewFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FormToken returns the token a fallback page's forms carry against
// cross-site request forgery: an HMAC of the bot and visitor under the
// first key, so that only a page we rendered for this visitor has it.
// It needs no server state, and it stays valid as long as its key is in
// the ring.
func (k *Keyring) FormToken(bot, visitor string) string {
	return formToken(k.pairs[0], bot, visitor)
}

// CheckFormToken reports, in constant time, whether token is the form
// token of bot and visitor under any key of the ring.
func (k *Keyring) CheckFormToken(bot, visitor, token string) bool {
	ok := false
	for i := 0; i < len(k.pairs); i += 2 {
		if hmac.Equal([]byte(formToken(k.pairs[i], bot, visitor)), []byte(token)) {
			ok = true
		}
	}
	return ok && token != ""
}

func formToken(key []byte, bot, visitor string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("porthole form\x00" + bot + "\x00" + visitor))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
