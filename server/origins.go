package server

import (
	"net"
	"net/http"
	"slices"
	"strings"
)

// originAllowed says whether a browser page at origin may use bot. A
// request without Origin comes from a program, not a browser page: the
// origin rule protects visitors' browsers, and a program could send any
// Origin it likes, so there is nothing to check.
func (s *Server) originAllowed(b *Bot, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	o, err := parseOrigin(origin)
	if err != nil {
		return false
	}
	return s.originListed(b, o, r)
}

// originListed says whether the normalised origin o is one of bot b's
// origins ("self" as isSelf decides).
func (s *Server) originListed(b *Bot, o string, r *http.Request) bool {
	return listsOrigin(b.Config.Origins, o, s.isSelf(o, r))
}

// listsOrigin says whether the origin patterns list the normalised
// origin o; self says whether o is this server's own (isSelf).
func listsOrigin(patterns []string, o string, self bool) bool {
	for _, p := range patterns {
		switch p {
		case "self":
			if self {
				return true
			}
		case "loopback":
			if isLoopbackOrigin(o) {
				return true
			}
		default:
			if matchOrigin(p, o) {
				return true
			}
		}
	}
	return false
}

// isSelf says whether the normalised origin o is this server's own. With
// public_url, that is public_url and nothing else. Without it, it is a
// loopback origin (localhost, *.localhost, 127.0.0.0/8, [::1]) on the
// port the request arrived at, with the request's scheme. Why not the
// request's Host, as before: the Host is written by whoever sends the
// request, and a DNS-rebinding page at http://evil.example:8080, its
// name pointed at this server, sends Host and Origin alike and passed.
// Why not refuse to start without public_url on a non-loopback address
// instead: `make run` listens on :8080 with no config, and a developer
// opening http://localhost:8080 must keep getting the demo. A loopback
// origin cannot be forged by a remote page (a browser only sends it from
// a page on this machine), so "self" keeps working locally and for
// nothing else; a server reached by a public name sets public_url.
func (s *Server) isSelf(o string, r *http.Request) bool {
	if s.config().PublicURL != "" {
		p, _ := parseOrigin(s.config().PublicURL)
		return o == p
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	oScheme, hostport, _ := strings.Cut(o, "://")
	if oScheme != scheme || !isLoopbackOrigin(o) {
		return false
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		port = "80" // parseOrigin drops the default port
		if scheme == "https" {
			port = "443"
		}
	}
	return port == s.localPort(r)
}

// warnSelfWithoutPublicURL logs, at start, that a bot listing "self"
// on a server reachable beyond loopback has no public_url: isSelf then
// matches loopback pages only, and visitors at the public name would be
// refused with no other hint. The demo bot is left out, so that `make
// run` (":8080", no config) starts quietly.
func (s *Server) warnSelfWithoutPublicURL() {
	if s.config().PublicURL != "" {
		return
	}
	host, port, _ := net.SplitHostPort(s.config().Listen)
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return
	}
	for _, b := range s.config().Bots {
		if b.Provider != "demo" && slices.Contains(b.Origins, "self") {
			s.log.Warn(`public_url is not set, so "self" matches only loopback pages on port `+port+`; set public_url to the origin visitors reach this server at, like https://chat.example.com`, "bot", b.ID)
			return
		}
	}
}

// localPort is the port the request reached this server at: that of the
// connection's local address, or the configured listen port for a
// request that did not come over a connection (tests).
func (s *Server) localPort(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			return port
		}
	}
	_, port, _ := net.SplitHostPort(s.config().Listen)
	return port
}

// matchOrigin compares a configured pattern with a normalised origin;
// "https://*.acme.com" matches any subdomain of acme.com at any depth,
// but not acme.com itself.
func matchOrigin(pattern, origin string) bool {
	scheme, host, ok := strings.Cut(pattern, "://*.")
	if !ok {
		p, err := parseOrigin(pattern)
		return err == nil && p == origin
	}
	oScheme, oHost, _ := strings.Cut(origin, "://")
	if oScheme != strings.ToLower(scheme) {
		return false
	}
	suffix := "." + strings.ToLower(host)
	if scheme == "https" {
		suffix = strings.TrimSuffix(suffix, ":443")
	} else {
		suffix = strings.TrimSuffix(suffix, ":80")
	}
	return strings.HasSuffix(oHost, suffix) && len(oHost) > len(suffix)
}

func isLoopbackOrigin(origin string) bool {
	_, hostport, _ := strings.Cut(origin, "://")
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
