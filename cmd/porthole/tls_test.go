package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/porthole-chat/porthole/widget"
)

// TestACMEWithPebble: a server configured with tls.acme obtains its
// certificate from a real ACME CA, Pebble, run in this process with its
// validation on (no PEBBLE_VA_ALWAYS_VALID): Pebble resolves the domain
// through a DNS server of the test to 127.0.0.1 and checks the
// TLS-ALPN-01 challenge on the server's HTTPS port. A client that trusts
// only Pebble's root then loads the widget and the demo page over HTTPS
// (HTTP/2) and opens the socket over wss (HTTP/1.1).
func TestACMEWithPebble(t *testing.T) {
	const domain = "porthole.test"
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // no random 0-5 s pause before each validation
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no random badNonce answers
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	pb := startPebble(t, unusedPort(t), port)

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "porthole.yaml")
	writeFile(t, cfg, fmt.Sprintf(`public_url: https://%s:%s
store: {driver: memory}
tls:
  acme:
    domains: [%s]
    email: ops@porthole.test
    directory: %s/dir
    ca_roots: %s
bots:
  - id: demo
    provider: demo
    origins: [self]
    widget: {title: Porthole over TLS}
`, domain, port, domain, pb.acmeURL, pb.caRootsFile))

	client, ws := pinnedClients(addr, pb.issuingRoots)
	p := launchTLS(t, addr, data, "https://"+domain+":"+port, client, "--config", cfg)
	base := "https://" + domain + ":" + port

	resp := get(t, client, base+"/widget.js")
	if resp.ProtoMajor != 2 {
		t.Errorf("GET /widget.js over %s, want HTTP/2", resp.Proto)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != domain {
		t.Errorf("certificate names %v, want [%s]", leaf.DNSNames, domain)
	}
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("certificate issued by %q, want Pebble's intermediate", leaf.Issuer.CommonName)
	}
	if !strings.Contains(resp.body, "porthole") {
		t.Errorf("GET /widget.js is not the loader: %.200s", resp.body)
	}
	if page := get(t, client, base+"/"); !strings.Contains(page.body, `src="/widget.js"`) {
		t.Errorf("the demo page does not embed the widget: %.300s", page.body)
	}

	c := dialWSS(t, ws, base, "demo", base)
	w := c.hello("", 0)
	if w.Widget.Title != "Porthole over TLS" {
		t.Fatalf("welcome over wss: %+v", w)
	}
	c.start("tls-start")
	c.botTurn()
	c.send(&widget.Send{ID: "tls-1", Text: "hello"})
	c.ack("tls-1")
	if reply := c.botTurn(); !strings.Contains(reply[0].Body.Text, "Hello") {
		t.Fatalf("reply over wss: %q", reply[0].Body.Text)
	}

	// The challenge was really checked: the one that made the
	// authorization valid is a tls-alpn-01 challenge Pebble's VA
	// validated, and the certificate sits in the default cache.
	if typ := pb.validatedChallenges(); len(typ) == 0 || typ[0] != "tls-alpn-01" {
		t.Errorf("challenges that validated: %v, want tls-alpn-01", typ)
	}
	if !strings.Contains(p.log(), "tls: certificate ready") {
		t.Errorf("the server did not log the certificate it obtained")
	}
	if _, err := os.Stat(filepath.Join(data, "acme", domain)); err != nil {
		t.Errorf("the certificate is not cached in the data directory: %v", err)
	}
}

// TestACMEHTTP01WithPebble: with tls.http_listen, a server whose
// HTTPS port the CA cannot reach for TLS-ALPN-01 proves control with
// HTTP-01 on the plain-HTTP listener instead, again really checked by
// Pebble.
func TestACMEHTTP01WithPebble(t *testing.T) {
	const domain = "porthole.test"
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	addr, httpAddr := freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	pb := startPebble(t, httpPort, unusedPort(t)) // TLS-ALPN-01 goes nowhere

	dir := t.TempDir()
	cfg := filepath.Join(dir, "porthole.yaml")
	writeFile(t, cfg, fmt.Sprintf(`store: {driver: memory}
tls:
  http_listen: %s
  acme:
    domains: [%s]
    cache: %s
    directory: %s/dir
    ca_roots: %s
bots:
  - id: demo
    provider: demo
    origins: [self]
`, httpAddr, domain, filepath.Join(dir, "certs"), pb.acmeURL, pb.caRootsFile))

	client, _ := pinnedClients(addr, pb.issuingRoots)
	launchTLS(t, addr, filepath.Join(dir, "data"), "https://"+domain+":"+port, client, "--config", cfg)
	resp := get(t, client, "https://"+domain+":"+port+"/widget.js")
	if names := resp.TLS.PeerCertificates[0].DNSNames; len(names) != 1 || names[0] != domain {
		t.Errorf("certificate names %v, want [%s]", names, domain)
	}
	if typ := pb.validatedChallenges(); len(typ) != 1 || typ[0] != "http-01" {
		t.Errorf("challenges that validated: %v, want http-01", typ)
	}
	if _, err := os.Stat(filepath.Join(dir, "certs", domain)); err != nil {
		t.Errorf("the certificate is not in tls.acme.cache: %v", err)
	}
}

// unusedPort returns a port nothing listens on just now.
func unusedPort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

// TestTLSCertFilesReload: a server configured with tls.cert and tls.key
// serves that certificate over HTTPS; when the files are replaced it
// serves the new one on the next handshakes without a restart; files that
// do not load keep the last good certificate in service; and the
// plain-HTTP listener redirects to HTTPS.
func TestTLSCertFilesReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := selfSigned(t, "first")
	second := selfSigned(t, "second")
	first.write(t, certFile, keyFile)

	addr, redirectAddr := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "porthole.yaml")
	writeFile(t, cfg, fmt.Sprintf(`store: {driver: memory}
tls:
  cert: %s
  key: %s
  http_listen: %s
bots:
  - id: demo
    provider: demo
    origins: [self, loopback]
    widget: {title: Porthole over TLS}
`, certFile, keyFile, redirectAddr))

	roots := x509.NewCertPool()
	roots.AddCert(first.leaf)
	roots.AddCert(second.leaf)
	client, ws := pinnedClients(addr, roots)
	client.Transport.(*http.Transport).DisableKeepAlives = true // a handshake per request
	base := "https://localhost:" + addr[strings.LastIndex(addr, ":")+1:]
	p := launchTLS(t, addr, filepath.Join(dir, "data"), base, client, "--config", cfg)
	pid := p.cmd.Process.Pid

	served := func() string {
		return get(t, client, base+"/widget.js").TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("serving %q, want the certificate of the files, first", got)
	}
	if page := get(t, client, base+"/"); !strings.Contains(page.body, `src="/widget.js"`) {
		t.Errorf("the demo page over HTTPS: %.300s", page.body)
	}
	c := dialWSS(t, ws, base, "demo", base)
	if w := c.hello("", 0); w.Widget.Title != "Porthole over TLS" {
		t.Fatalf("welcome over wss: %+v", w)
	}

	// Renewed in place, the certificate first and the key after it, as
	// a renewal tool does.
	second.write(t, certFile, keyFile)
	waitFor(t, "the renewed certificate", 10*time.Second, func() bool { return served() == "second" })
	if p.cmd.ProcessState != nil || p.cmd.Process.Pid != pid {
		t.Fatalf("the server restarted")
	}
	if !strings.Contains(p.log(), "tls: certificate reloaded") {
		t.Errorf("no log line for the reload")
	}
	// The socket opened before the renewal is still there.
	c.send(&widget.Send{ID: "after-renewal", Text: "hello"})
	c.ack("after-renewal")

	// A broken certificate file is refused, and the last good one stays.
	writeFile(t, certFile, "not a certificate\n")
	waitFor(t, "the refusal of the broken file", 10*time.Second, func() bool {
		served() // the files are looked at on a handshake
		return strings.Contains(p.log(), "do not load; still serving the certificate loaded before")
	})
	if got := served(); got != "second" {
		t.Fatalf("after a broken file, serving %q, want second", got)
	}

	// ALPN: h2 for pages, and http/1.1 still offered, which WebSocket
	// upgrades need.
	for _, protos := range [][]string{{"h2", "http/1.1"}, {"http/1.1"}} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: protos})
		if err != nil {
			t.Fatal(err)
		}
		if got := conn.ConnectionState().NegotiatedProtocol; got != protos[0] {
			t.Errorf("ALPN offering %v negotiated %q, want %q", protos, got, protos[0])
		}
		conn.Close()
	}

	// A port probe that hangs up before its handshake is a debug line:
	// a public server sees many, and nobody can act on one.
	probe, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	probe.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	probe.Close()
	waitFor(t, "the probe's log line", 10*time.Second, func() bool { return strings.Contains(p.log(), "http: TLS handshake error") })
	for _, line := range strings.Split(p.log(), "\n") {
		if strings.Contains(line, "http: TLS handshake error") && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("a failed handshake logged above debug: %s", line)
		}
	}

	// Plain HTTP is redirected to the same path over HTTPS.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, redirectPort, _ := net.SplitHostPort(redirectAddr)
	resp, err := noFollow.Get("http://localhost:" + redirectPort + "/chat/demo?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := base + "/chat/demo?x=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// TestTLSStartErrors: certificate files that do not load stop the start
// with an error naming the field, rather than failing every handshake.
func TestTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	a, b := selfSigned(t, "a"), selfSigned(t, "b")
	certFile, keyFile, otherKey := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "other.pem")
	a.write(t, certFile, keyFile)
	b.write(t, filepath.Join(dir, "b.pem"), otherKey)
	for name, c := range map[string]struct{ tls, want string }{
		"missing file":         {"{cert: " + filepath.Join(dir, "none.pem") + ", key: " + keyFile + "}", "tls.cert:"},
		"another's key":        {"{cert: " + certFile + ", key: " + otherKey + "}", "private key does not match public key"},
		"roots not PEM":        {"{acme: {domains: [chat.example.com], ca_roots: " + keyFile + "}}", "tls.acme.ca_roots:"},
		"cert and acme":        {"{cert: " + certFile + ", key: " + keyFile + ", acme: {domains: [chat.example.com]}}", "keep one"},
		"domain with :":        {"{acme: {domains: [\"chat.example.com:443\"]}}", "tls.acme.domains[0]:"},
		"cert, no key":         {"{cert: " + certFile + "}", "tls.key: is missing"},
		"http_listen = listen": {"{cert: " + certFile + ", key: " + keyFile + ", http_listen: \"LISTEN\"}", "tls.http_listen:"},
	} {
		t.Run(name, func(t *testing.T) {
			addr := freeAddr(t)
			cfg := filepath.Join(t.TempDir(), "porthole.yaml")
			writeFile(t, cfg, "listen: \""+addr+"\"\nstore: {driver: memory}\ntls: "+strings.ReplaceAll(c.tls, "LISTEN", addr)+"\nbots: [{id: demo, provider: demo, origins: [self]}]\n")
			b, err := exec.Command(binary, "serve", "--config", cfg, "--data", t.TempDir()).CombinedOutput()
			out := string(b)
			if err == nil {
				t.Fatalf("started with tls %s", c.tls)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("error %q does not say %q", out, c.want)
			}
		})
	}
}

// pebble is an ACME CA in this process.
type pebble struct {
	acmeURL      string         // its ACME server
	caRootsFile  string         // the root its ACME server's HTTPS is signed by
	issuingRoots *x509.CertPool // the root of the certificates it issues
	logs         *syncBuffer
	store        *db.MemoryStore
}

var validatedBy = regexp.MustCompile(`set VALID by completed challenge (\S+)`)

// validatedChallenges returns the types of the challenges that made an
// authorization valid, as Pebble's log names them and its store knows
// them.
func (p *pebble) validatedChallenges() []string {
	var types []string
	for _, m := range validatedBy.FindAllStringSubmatch(p.logs.String(), -1) {
		if ch := p.store.GetChallengeByID(m[1]); ch != nil && !ch.ValidatedDate.IsZero() {
			types = append(types, ch.Type)
		}
	}
	return types
}

// startPebble runs Pebble as cmd/pebble wires it, validating HTTP-01 on
// httpPort and TLS-ALPN-01 on tlsPort of 127.0.0.1: its names are
// resolved by a DNS server of the test that answers 127.0.0.1 for every
// name.
func startPebble(t *testing.T, httpPort, tlsPort string) *pebble {
	t.Helper()
	logs := &syncBuffer{}
	logger := log.New(logs, "pebble ", log.LstdFlags)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs.String())
		}
	})

	dnsAddr := freeAddr(t)
	dns, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{dnsAddr}, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	dns.SetDefaultDNSIPv4("127.0.0.1")
	dns.SetDefaultDNSIPv6("") // the server listens on IPv4 only
	dns.Run()
	t.Cleanup(dns.Shutdown)
	waitFor(t, "the DNS server", 5*time.Second, func() bool {
		c, err := net.Dial("tcp", dnsAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	var vaHTTP, vaTLS int
	fmt.Sscan(httpPort, &vaHTTP)
	fmt.Sscan(tlsPort, &vaTLS)
	store := db.NewMemoryStore()
	issuer := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "The default profile"}})
	validator := va.New(logger, vaHTTP, vaTLS, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, issuer, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	acmeSrv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(acmeSrv.Close)
	mgmt := httptest.NewTLSServer(front.ManagementHandler())
	t.Cleanup(mgmt.Close)

	caRoots := filepath.Join(t.TempDir(), "acme-server-root.pem")
	writeFile(t, caRoots, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: acmeSrv.Certificate().Raw})))

	// The root of what it issues, from its management endpoint.
	resp, err := mgmt.Client().Get(mgmt.URL + wfe.RootCertPath + "0")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pool := x509.NewCertPool()
	if resp.StatusCode != 200 || !pool.AppendCertsFromPEM(root) {
		t.Fatalf("Pebble's root: %d %s", resp.StatusCode, root)
	}
	return &pebble{acmeURL: acmeSrv.URL, caRootsFile: caRoots, issuingRoots: pool, logs: logs, store: store}
}

// pinnedClients returns an HTTPS client trusting only roots that
// reaches addr whatever the URL's host (so a name needs no DNS), with
// HTTP/2, and one for WebSocket handshakes, which offers only HTTP/1.1
// as browsers do.
func pinnedClients(addr string, roots *x509.CertPool) (*http.Client, *http.Client) {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	h2 := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	h1 := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}}
	return &http.Client{Transport: h2, Timeout: 90 * time.Second}, &http.Client{Transport: h1}
}

// launchTLS is launch for a server that speaks HTTPS: it waits until
// base/readyz answers 200 through client. With ACME the first answer
// waits for the certificate.
func launchTLS(t *testing.T, addr, dataDir, base string, client *http.Client, args ...string) *proc {
	t.Helper()
	p := startProc(t, addr, dataDir, args...)
	var last error
	ok := waitForErr(60*time.Second, func() bool {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			last = err
			return false
		}
		resp.Body.Close()
		last = fmt.Errorf("status %d", resp.StatusCode)
		return resp.StatusCode == 200
	})
	if !ok {
		t.Fatalf("server not ready over HTTPS: %v\n%s", last, p.log())
	}
	return p
}

// dialWSS opens a porthole.v1 socket over wss with client.
func dialWSS(t *testing.T, client *http.Client, base, bot, origin string) *wsc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := http.Header{"Origin": {origin}}
	c, resp, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(base, "https")+"/v1/ws?bot="+bot, &websocket.DialOptions{
		HTTPClient: client, Subprotocols: []string{widget.Protocol}, HTTPHeader: hdr,
	})
	if err != nil {
		t.Fatalf("wss dial: %v (%v)", err, resp)
	}
	if resp.TLS == nil {
		t.Fatalf("the socket is not over TLS")
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsc{t: t, c: c, bot: bot}
}

// response is a response with its body read.
type response struct {
	*http.Response
	body string
}

func get(t *testing.T, client *http.Client, url string) response {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return response{resp, string(b)}
}

// keyPair is a self-signed certificate for localhost and its key.
type keyPair struct {
	leaf    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

func selfSigned(t *testing.T, cn string) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	return keyPair{leaf,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}
}

// write writes the certificate, then the key, in place.
func (k keyPair) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	writeFile(t, certFile, string(k.certPEM))
	writeFile(t, keyFile, string(k.keyPEM))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitForErr(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// syncBuffer is a bytes.Buffer safe for Pebble's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
