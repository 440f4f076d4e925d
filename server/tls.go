package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// TLSConfig is the `tls:` block: the server speaks HTTPS itself, with
// certificate files it reloads when they change (Cert and Key), or with
// certificates it obtains and renews from an ACME CA such as Let's
// Encrypt (ACME). Without the block the server speaks plain HTTP, for
// running behind a reverse proxy that terminates TLS.
type TLSConfig struct {
	// Cert is the PEM certificate chain file, leaf first; Key its
	// private key file. Both are read again when either changes (checked
	// at most every CertCheckInterval, on a handshake), so a renewal by
	// certbot or cert-manager needs no restart; files that do not load
	// keep the previous certificate in service, and the problem is logged.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ACME obtains certificates automatically; exclusive with Cert/Key.
	ACME *ACMEConfig `yaml:"acme"`
	// HTTPListen, such as ":80", is a plain-HTTP listener that redirects
	// every request to HTTPS (and answers ACME HTTP-01 challenges with
	// acme). Empty: none.
	HTTPListen string `yaml:"http_listen"`
}

// ACMEConfig obtains and renews certificates with the ACME protocol
// (golang.org/x/crypto/acme/autocert). The CA proves control of each
// domain with the TLS-ALPN-01 challenge on the HTTPS port itself, so no
// other port is needed; with tls.http_listen on port 80, HTTP-01 is
// tried as well. Setting it accepts the CA's terms of service.
type ACMEConfig struct {
	// Domains are the names visitors reach this server at; a
	// certificate is requested for these and no others, whatever name a
	// client asks for.
	Domains []string `yaml:"domains"`
	// Email is the contact the CA writes to about expiring or revoked
	// certificates. Optional, recommended.
	Email string `yaml:"email"`
	// Cache is the directory that keeps the account key and the
	// certificates across restarts, so that a restart asks the CA for
	// nothing. Default: acme in the data directory.
	Cache string `yaml:"cache"`
	// Directory is the CA's ACME directory URL. Default: Let's
	// Encrypt's production directory (acme.LetsEncryptURL).
	Directory string `yaml:"directory"`
	// CARoots is a PEM file of extra roots to trust the ACME server's
	// own HTTPS with: a private CA, or a test CA such as Pebble.
	CARoots string `yaml:"ca_roots"`
}

// CertCheckInterval is how often, at most, a handshake looks at the
// certificate files' modification times: seldom enough to cost nothing
// under load, often enough that a renewed certificate is served within
// seconds.
const CertCheckInterval = 2 * time.Second

// validate reports the problems of the tls block, each naming its field;
// listen is the HTTPS listen address.
func (t *TLSConfig) validate(listen string) []error {
	if t == nil {
		return nil
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	files := t.Cert != "" || t.Key != ""
	switch {
	case files && t.ACME != nil:
		bad("tls", "sets both certificate files (cert, key) and acme; keep one: files you renew yourself, or acme to have certificates obtained and renewed for you")
	case !files && t.ACME == nil:
		bad("tls", "has neither cert and key nor acme; set cert: and key: to your certificate files, or acme: {domains: [chat.example.com]} to obtain one, or remove tls to serve plain HTTP")
	case t.Cert == "" && t.Key != "":
		bad("tls.cert", "is missing; set it to the PEM certificate file that goes with tls.key, e.g. /etc/porthole/tls/cert.pem")
	case t.Key == "" && t.Cert != "":
		bad("tls.key", "is missing; set it to the PEM private key file of tls.cert, e.g. /etc/porthole/tls/key.pem")
	}
	if a := t.ACME; a != nil {
		if len(a.Domains) == 0 {
			bad("tls.acme.domains", "is empty; list the names visitors reach this server at, e.g. [chat.example.com]")
		}
		seen := map[string]bool{}
		for i, d := range a.Domains {
			field := fmt.Sprintf("tls.acme.domains[%d]", i)
			switch {
			case strings.HasPrefix(d, "*."):
				bad(field, "%q is a wildcard, which needs the DNS-01 challenge; list each name instead, e.g. chat.example.com", d)
			case !isDomainName(d):
				bad(field, "%q is not a domain name; write the bare name, like chat.example.com (no scheme, port or path)", d)
			case seen[strings.ToLower(d)]:
				bad(field, "%q is listed twice; keep one", d)
			}
			seen[strings.ToLower(d)] = true
		}
		if a.Email != "" {
			if m, err := mail.ParseAddress(a.Email); err != nil || m.Address != a.Email {
				bad("tls.acme.email", "%q is not an email address; write it like ops@example.com, or leave it out", a.Email)
			}
		}
		if a.Directory != "" {
			if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
				bad("tls.acme.directory", "%q is not an https URL; write the CA's ACME directory URL, or leave it out for Let's Encrypt", a.Directory)
			}
		}
	}
	if t.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(t.HTTPListen); err != nil {
			bad("tls.http_listen", "%q is not a listen address; write it like :80", t.HTTPListen)
		} else if t.HTTPListen == listen {
			bad("tls.http_listen", "%q is the HTTPS listen address too; give the plain-HTTP redirect its own port, like :80", t.HTTPListen)
		}
	}
	return errs
}

// isDomainName says whether s is a DNS name with at least two labels,
// as a CA issues certificates for.
func isDomainName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") || strings.HasSuffix(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return net.ParseIP(s) == nil
}

// TLS is what serving HTTPS needs, made from the tls block by NewTLS.
type TLS struct {
	// Config is the http.Server's TLSConfig: the certificate source,
	// and ALPN with h2 and http/1.1 (WebSocket upgrades need HTTP/1.1:
	// browsers open their sockets over it), plus acme-tls/1 with acme.
	Config *tls.Config
	// Redirect is the handler of the plain-HTTP listener
	// (tls.http_listen): ACME HTTP-01 challenges with acme, and a
	// redirect to HTTPS for everything else.
	Redirect http.Handler

	manager *autocert.Manager
	domains []string
	log     *slog.Logger
}

// NewTLS prepares HTTPS for cfg.TLS, or returns nil when the block is
// absent. It reads the certificate files (or the ACME CA roots) now, so
// that a mistake stops the start with an error naming the field rather
// than failing every handshake. dataDir holds the default ACME cache.
func NewTLS(cfg *Config, dataDir string, log *slog.Logger) (*TLS, error) {
	c := cfg.TLS
	if c == nil {
		return nil, nil
	}
	t := &TLS{log: log}
	if c.ACME == nil {
		files, err := loadCertFiles(c.Cert, c.Key, log)
		if err != nil {
			return nil, err
		}
		t.Config = &tls.Config{GetCertificate: files.GetCertificate}
		t.Config.NextProtos = []string{"h2", "http/1.1"}
		t.Redirect = redirectToHTTPS(cfg)
	} else {
		m, err := newAutocert(c.ACME, dataDir)
		if err != nil {
			return nil, err
		}
		t.manager, t.domains = m, c.ACME.Domains
		t.Config = &tls.Config{GetCertificate: m.GetCertificate}
		t.Config.NextProtos = []string{"h2", "http/1.1", acme.ALPNProto}
		if c.HTTPListen != "" {
			t.Redirect = withoutPort(m.HTTPHandler(redirectToHTTPS(cfg)))
		}
	}
	t.Config.MinVersion = tls.VersionTLS12
	return t, nil
}

// Warm obtains the ACME certificates now, one per domain, from the cache
// or the CA, rather than on the first visitor's handshake, and logs the
// outcome, which autocert itself never does. Call it once the HTTPS
// listener is open: the CA's TLS-ALPN-01 check connects to it. Without
// acme it does nothing.
func (t *TLS) Warm() {
	if t == nil || t.manager == nil {
		return
	}
	for _, d := range t.domains {
		go func() {
			start := time.Now()
			// A hello as a current browser sends it, so that the ECDSA
			// certificate it will be served is the one obtained.
			cert, err := t.manager.GetCertificate(&tls.ClientHelloInfo{
				ServerName:       d,
				CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
				SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
				SupportedCurves:  []tls.CurveID{tls.CurveP256},
			})
			if err != nil {
				t.log.Error("tls: could not obtain a certificate; handshakes for this domain fail until one is obtained (each is retried)", "domain", d, "error", err)
				return
			}
			t.log.Info("tls: certificate ready", append(certAttrs(cert), "domain", d, "took", time.Since(start).Round(time.Millisecond))...)
		}()
	}
}

// newAutocert makes the ACME manager for a: a certificate for a.Domains
// only (a client naming any other host gets no handshake and costs the
// CA nothing), kept in the cache directory.
func newAutocert(a *ACMEConfig, dataDir string) (*autocert.Manager, error) {
	cache := a.Cache
	if cache == "" {
		cache = filepath.Join(dataDir, "acme")
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, fmt.Errorf("tls.acme.cache: %w; make the directory writable, or point cache at one that is", err)
	}
	dir := a.Directory
	if dir == "" {
		dir = acme.LetsEncryptURL
	}
	hc := http.DefaultClient
	if a.CARoots != "" {
		pem, err := os.ReadFile(a.CARoots)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_roots: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme.ca_roots: %s holds no PEM certificate; point it at the CA's root certificate in PEM", a.CARoots)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr}
	}
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cache),
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Email:      a.Email,
		Client:     &acme.Client{DirectoryURL: dir, HTTPClient: hc, UserAgent: "porthole"},
	}, nil
}

// withoutPort drops the port from the request's Host before h sees it:
// autocert checks an HTTP-01 request's Host against the domains as it is,
// so "chat.example.com:80", as a client may write it, would be refused.
func withoutPort(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = strings.Trim(host, "[]")
		}
		h.ServeHTTP(w, r)
	})
}

// redirectToHTTPS answers a plain-HTTP request with a permanent redirect
// to the same path over HTTPS: at public_url when set, else at the
// request's host on the HTTPS port. 308 keeps the method and body, so a
// platform's callback posted to http:// still arrives.
func redirectToHTTPS(cfg *Config) http.Handler {
	_, port, _ := net.SplitHostPort(cfg.Listen)
	public := strings.TrimSuffix(cfg.PublicURL, "/")
	if !strings.HasPrefix(public, "https://") {
		public = ""
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := public
		if target == "" {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if host == "" {
				http.Error(w, "use HTTPS", http.StatusBadRequest)
				return
			}
			if port != "443" {
				host = net.JoinHostPort(strings.Trim(host, "[]"), port)
			}
			target = "https://" + host
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// certFiles serves a certificate from a pair of files and reloads it
// when either file changes: on a handshake, at most every
// CertCheckInterval, it compares the files' modification times and
// sizes with those it last read.
type certFiles struct {
	certPath, keyPath string
	log               *slog.Logger
	every             time.Duration

	current atomic.Pointer[tls.Certificate]
	// mu is held by the one handshake that checks the files; the others
	// go on with the current certificate meanwhile.
	mu      sync.Mutex
	checked time.Time
	stamp   [2]fileStamp // of the pair last read, loaded or not
	// fresh says a file was modified less than settleTime before stamp
	// was read: a write in the same tick of the file system's clock, of
	// the same size, would leave the stamp as it is, so the pair is read
	// again at the next check.
	fresh   bool
	failing bool // the last check could not read a stamp
}

// settleTime is how long after its modification a file's stamp is
// trusted to tell every later write: more than the coarsest mtime
// granularity of the usual file systems.
const settleTime = 2 * time.Second

// fileStamp is what tells a file has changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

// loadCertFiles reads the pair now, naming the field of a file that does
// not load.
func loadCertFiles(certPath, keyPath string, log *slog.Logger) (*certFiles, error) {
	f := &certFiles{certPath: certPath, keyPath: keyPath, log: log, every: CertCheckInterval}
	stamp, err := f.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := f.load()
	if err != nil {
		return nil, err
	}
	f.checked = time.Now()
	f.stamp, f.fresh = stamp, isFresh(stamp, f.checked)
	f.current.Store(cert)
	log.Info("tls: serving the certificate files", append(certAttrs(cert), "cert", certPath, "key", keyPath)...)
	return f, nil
}

// GetCertificate is the tls.Config hook: the current certificate, after
// a reload when the files changed.
func (f *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.maybeReload(time.Now())
	return f.current.Load(), nil
}

func (f *certFiles) maybeReload(now time.Time) {
	if !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	if now.Sub(f.checked) < f.every {
		return
	}
	f.checked = now
	stamp, err := f.stamps()
	if err != nil {
		if !f.failing {
			f.log.Warn("tls: cannot check the certificate files; still serving the certificate loaded before", "error", err)
		}
		f.failing = true
		return
	}
	f.failing = false
	if stamp == f.stamp && !f.fresh {
		return
	}
	// Remember the stamps read before the files, so that a file written
	// again while being read is read again at the next check.
	wasFresh := stamp == f.stamp
	f.stamp, f.fresh = stamp, isFresh(stamp, now)
	cert, err := f.load()
	if err != nil {
		if !wasFresh {
			f.log.Warn("tls: the certificate files changed but do not load; still serving the certificate loaded before (it is tried again when they change)", "error", err)
		}
		return
	}
	if old := f.current.Load(); old != nil && slices.EqualFunc(old.Certificate, cert.Certificate, bytes.Equal) {
		return // read again while fresh: the same pair
	}
	f.current.Store(cert)
	f.log.Info("tls: certificate reloaded", certAttrs(cert)...)
}

// isFresh says whether a file of the stamp was modified less than
// settleTime before now.
func isFresh(stamp [2]fileStamp, now time.Time) bool {
	return now.Sub(stamp[0].mod) < settleTime || now.Sub(stamp[1].mod) < settleTime
}

func (f *certFiles) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, p := range []struct{ field, path string }{{"tls.cert", f.certPath}, {"tls.key", f.keyPath}} {
		fi, err := os.Stat(p.path)
		if err != nil {
			return s, fmt.Errorf("%s: %w", p.field, err)
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

// load reads and checks the pair: the key must be the certificate's.
func (f *certFiles) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.certPath)
	if err != nil {
		return nil, fmt.Errorf("tls.cert: %w", err)
	}
	keyPEM, err := os.ReadFile(f.keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls.key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls.cert %s and tls.key %s: %w; both must be PEM, the key the certificate's own", f.certPath, f.keyPath, err)
	}
	return &cert, nil
}

// certAttrs describes a certificate for the log: its names, issuer and
// expiry, never its key.
func certAttrs(c *tls.Certificate) []any {
	leaf := c.Leaf
	if leaf == nil && len(c.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	if leaf == nil {
		return nil
	}
	names := leaf.DNSNames
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return []any{"names", names, "issuer", leaf.Issuer.CommonName, "expires", leaf.NotAfter.UTC().Format(time.RFC3339)}
}
