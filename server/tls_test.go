package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTLSConfigErrors(t *testing.T) {
	tests := []struct {
		name, tls string
		want      []string
	}{
		{"empty block", "tls: {}", []string{"tls: has neither cert and key nor acme"}},
		{"cert without key", "tls: {cert: c.pem}", []string{"tls.key: is missing"}},
		{"key without cert", "tls: {key: k.pem}", []string{"tls.cert: is missing"}},
		{"files and acme", "tls: {cert: c.pem, key: k.pem, acme: {domains: [chat.example.com]}}", []string{"tls: sets both", "keep one"}},
		{"acme without domains", "tls: {acme: {email: ops@example.com}}", []string{"tls.acme.domains: is empty"}},
		{"acme URL as domain", "tls: {acme: {domains: [\"https://chat.example.com\"]}}", []string{"tls.acme.domains[0]:", "not a domain name", "no scheme"}},
		{"acme port in domain", "tls: {acme: {domains: [\"chat.example.com:443\"]}}", []string{"tls.acme.domains[0]:", "not a domain name"}},
		{"acme single label", "tls: {acme: {domains: [localhost]}}", []string{"tls.acme.domains[0]:", "not a domain name"}},
		{"acme IP", "tls: {acme: {domains: [\"127.0.0.1\"]}}", []string{"tls.acme.domains[0]:", "not a domain name"}},
		{"acme wildcard", "tls: {acme: {domains: [\"*.example.com\"]}}", []string{"tls.acme.domains[0]:", "wildcard", "DNS-01"}},
		{"acme twice", "tls: {acme: {domains: [chat.example.com, Chat.Example.com]}}", []string{"tls.acme.domains[1]:", "listed twice"}},
		{"acme email", "tls: {acme: {domains: [chat.example.com], email: ops}}", []string{"tls.acme.email:", `"ops"`}},
		{"acme directory http", "tls: {acme: {domains: [chat.example.com], directory: \"http://ca.example.com/dir\"}}", []string{"tls.acme.directory:", "https URL"}},
		{"acme misspelt", "tls: {acme: {domain: [chat.example.com]}}", []string{`"domain" is not a known setting`}},
		{"http_listen bad", "tls: {cert: c.pem, key: k.pem, http_listen: \"80\"}", []string{"tls.http_listen:", `"80"`, ":80"}},
		{"http_listen = listen", "listen: \":8443\"\ntls: {cert: c.pem, key: k.pem, http_listen: \":8443\"}", []string{"tls.http_listen:", "its own port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.tls+"\n"+oneBot), testEnv)
			if err == nil {
				t.Fatalf("no error for %s", tt.tls)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	for _, ok := range []string{
		"tls: {cert: c.pem, key: k.pem}",
		"tls: {cert: c.pem, key: k.pem, http_listen: \":80\"}",
		"tls: {acme: {domains: [chat.example.com, www.example.co.uk], email: ops@example.com, cache: /var/lib/porthole/acme, directory: \"https://ca.example.com/dir\", ca_roots: roots.pem}}",
	} {
		c, err := ParseConfig([]byte(ok+"\n"+oneBot), testEnv)
		if err != nil {
			t.Errorf("%s: %v", ok, err)
		} else if c.TLS == nil {
			t.Errorf("%s: no TLS in the parsed config", ok)
		}
	}
	if c, err := ParseConfig([]byte(oneBot), testEnv); err != nil || c.TLS != nil {
		t.Errorf("without a tls block: %v, TLS %+v; want plain HTTP", err, c.TLS)
	}
}

// TestCertFilesReload: the pair is looked at no more often than every
// interval; a changed pair is served from the next handshake, even when
// written within the same tick of the file system's clock; a pair that
// does not load (a key of another certificate, a file being rewritten)
// keeps the last good one, and is tried again when the files change.
func TestCertFilesReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a, b, c := testPair(t, "a"), testPair(t, "b"), testPair(t, "c")
	// b of a's sizes, so that only its contents tell them apart when
	// written in the same tick of the file system's clock.
	for len(b.certPEM) != len(a.certPEM) || len(b.keyPEM) != len(a.keyPEM) {
		b = testPair(t, "b")
	}
	a.write(t, certFile, keyFile)
	var logs bytes.Buffer
	f, err := loadCertFiles(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// serving is a handshake once the interval has passed.
	serving := func() string {
		t.Helper()
		f.checked = time.Now().Add(-f.every)
		cert, _ := f.GetCertificate(nil)
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		return leaf.Subject.CommonName
	}
	if got := serving(); got != "a" {
		t.Fatalf("serving %s, want a", got)
	}

	// Renewed in the same clock tick as a was written (same stamps): not
	// seen within the interval, seen after it.
	ca, _ := os.Stat(certFile)
	ka, _ := os.Stat(keyFile)
	b.write(t, certFile, keyFile)
	os.Chtimes(certFile, ca.ModTime(), ca.ModTime())
	os.Chtimes(keyFile, ka.ModTime(), ka.ModTime())
	f.checked = time.Now()
	if cert, _ := f.GetCertificate(nil); !bytes.Contains(a.certPEM, pemOf(cert)) {
		t.Errorf("within the interval, the renewed files were read: too soon")
	}
	if got := serving(); got != "b" {
		t.Errorf("after the interval, serving %s, want the renewed b", got)
	}
	if n := strings.Count(logs.String(), "tls: certificate reloaded"); n != 1 || !strings.Contains(logs.String(), "issuer=b") {
		t.Errorf("reloads logged %d times, want once, for b: %s", n, logs.String())
	}

	// Half written: c's certificate with b's key. Refused, b stays.
	writeTestFile(t, certFile, c.certPEM)
	if got := serving(); got != "b" {
		t.Errorf("with a mismatched pair, serving %s, want b still", got)
	}
	if !strings.Contains(logs.String(), "do not load") {
		t.Errorf("the refused pair is not logged: %s", logs.String())
	}
	// The key follows: the pair loads.
	writeTestFile(t, keyFile, c.keyPEM)
	if got := serving(); got != "c" {
		t.Errorf("once the key followed, serving %s, want c", got)
	}

	// A file gone (mid-rotation) keeps c, logged once.
	os.Remove(keyFile)
	for range 3 {
		if got := serving(); got != "c" {
			t.Errorf("with the key gone, serving %s, want c", got)
		}
	}
	if n := strings.Count(logs.String(), "cannot check the certificate files"); n != 1 {
		t.Errorf("a missing file logged %d times, want once", n)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("a key reached the log")
	}

	// A pair just written is read again at the next check (a write in
	// the same clock tick would not change its stamp); once settled, an
	// unchanged pair is not.
	c.write(t, certFile, keyFile)
	serving()
	if !f.fresh {
		t.Errorf("a pair written just now is not fresh")
	}
	settled := time.Now().Add(-time.Minute)
	os.Chtimes(certFile, settled, settled)
	os.Chtimes(keyFile, settled, settled)
	serving()
	if f.fresh {
		t.Errorf("a pair written a minute ago is still fresh")
	}
}

func pemOf(c *tls.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
}

func TestNewTLS(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if tl, err := NewTLS(DefaultConfig(), t.TempDir(), log); tl != nil || err != nil {
		t.Errorf("without tls: %v, %v; want nothing", tl, err)
	}

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testPair(t, "a").write(t, certFile, keyFile)
	cfg := DefaultConfig()
	cfg.TLS = &TLSConfig{Cert: certFile, Key: keyFile}
	tl, err := NewTLS(cfg, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	// WebSocket upgrades need http/1.1 offered next to h2.
	if !slices.Equal(tl.Config.NextProtos, []string{"h2", "http/1.1"}) || tl.Config.MinVersion != tls.VersionTLS12 {
		t.Errorf("files: NextProtos %v, MinVersion %x", tl.Config.NextProtos, tl.Config.MinVersion)
	}

	cfg.TLS = &TLSConfig{ACME: &ACMEConfig{Domains: []string{"chat.example.com"}}, HTTPListen: ":80"}
	data := t.TempDir()
	tl, err = NewTLS(cfg, data, log)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tl.Config.NextProtos, []string{"h2", "http/1.1", "acme-tls/1"}) {
		t.Errorf("acme: NextProtos %v", tl.Config.NextProtos)
	}
	if fi, err := os.Stat(filepath.Join(data, "acme")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the default cache directory: %v %v, want data/acme, 0700", fi, err)
	}
	if tl.manager.Client.DirectoryURL != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("default directory %q, want Let's Encrypt's production directory", tl.manager.Client.DirectoryURL)
	}
	// The host policy: only the configured names get a certificate.
	if err := tl.manager.HostPolicy(t.Context(), "evil.example.com"); err == nil {
		t.Errorf("the host policy lets any name through")
	}
	// With http_listen, the HTTP-01 path is answered, not redirected.
	rec := httptest.NewRecorder()
	tl.Redirect.ServeHTTP(rec, httptest.NewRequest("GET", "http://chat.example.com/.well-known/acme-challenge/nope", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("an unknown challenge token: %d, want 404", rec.Code)
	}

	cfg.TLS.ACME.CARoots = keyFile // PEM, but no certificate
	if _, err := NewTLS(cfg, data, log); err == nil || !strings.Contains(err.Error(), "tls.acme.ca_roots:") {
		t.Errorf("ca_roots without a certificate: %v", err)
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	for _, tt := range []struct {
		listen, public, url, want string
	}{
		{":443", "", "http://chat.example.com/chat/demo?x=1", "https://chat.example.com/chat/demo?x=1"},
		{":443", "", "http://chat.example.com:80/widget.js", "https://chat.example.com/widget.js"},
		{":8443", "", "http://chat.example.com:8080/", "https://chat.example.com:8443/"},
		{":8443", "", "http://[::1]:8080/", "https://[::1]:8443/"},
		{":443", "https://chat.example.com", "http://10.0.0.5/hooks/x", "https://chat.example.com/hooks/x"},
	} {
		cfg := &Config{Listen: tt.listen, PublicURL: tt.public}
		rec := httptest.NewRecorder()
		redirectToHTTPS(cfg).ServeHTTP(rec, httptest.NewRequest("POST", tt.url, nil))
		if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != tt.want {
			t.Errorf("%s (listen %s, public_url %q): %d %q, want 308 %q", tt.url, tt.listen, tt.public, rec.Code, rec.Header().Get("Location"), tt.want)
		}
	}
}

// pemPair is a self-signed certificate and its key, PEM.
type pemPair struct{ certPEM, keyPEM []byte }

func testPair(t *testing.T, cn string) pemPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		Issuer:       pkix.Name{CommonName: cn},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pemPair{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}
}

func (p pemPair) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	writeTestFile(t, certFile, p.certPEM)
	writeTestFile(t, keyFile, p.keyPEM)
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
