package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Forwarded header names for Config.ForwardedHeader.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
)

// proxies is the set of reverse proxies whose forwarded headers are
// believed, and which header they append to. The zero value trusts
// nobody: every request counts by its direct peer.
type proxies struct {
	nets   []netip.Prefix
	header string // HeaderXForwardedFor or HeaderForwarded
}

// parseTrustedProxies reads trusted_proxies: each entry an address
// (one host) or a CIDR. It returns every entry it cannot read, each as a
// message that says what to write instead.
func parseTrustedProxies(list []string) ([]netip.Prefix, []string) {
	var nets []netip.Prefix
	var bad []string
	for i, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Addr().Zone() != "" {
				bad = append(bad, fmt.Sprintf("trusted_proxies[%d]: %q has a zone; write the network without %%zone, like fd00::/64", i, s))
				continue
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			nets = append(nets, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		bad = append(bad, fmt.Sprintf("trusted_proxies[%d]: %q is not an address or CIDR; write your proxy's address like 10.0.0.5 or its network like 10.0.0.0/8 or fd00::/64", i, s))
	}
	return nets, bad
}

// trusts says whether a is one of the trusted proxies.
func (p proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the address of the request's direct peer, the one end of
// the TCP connection nobody can forge; invalid if RemoteAddr is not an
// address (a test that sets it by hand).
func peerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap().WithZone("")
}

// clientAddr is the address limits count by. From an untrusted peer it
// is the peer: a forwarded header from there was written by the client
// and is ignored. From a trusted proxy it walks the forwarded chain from
// the right, the end the proxies append to, over the trusted proxies to
// the first address that is not one: the client as the nearest trusted
// proxy saw it. What lies further left was written by the client and is
// never read. An entry that is not an address (junk, "unknown", an
// obfuscated name) ends the walk at the trusted hop that passed it on,
// so a malformed entry never becomes the address either.
func (p proxies) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !peer.IsValid() || !p.trusts(peer) {
		return peer
	}
	chain := forwardedChain(r.Header, p.header)
	addr := peer
	for i := len(chain) - 1; i >= 0; i-- {
		a := chain[i]
		if !a.IsValid() {
			return addr
		}
		addr = a
		if !p.trusts(a) {
			return a
		}
	}
	return addr
}

// forwardedChain is the list of hops in the forwarded header named, left
// (the client end) to right (the nearest proxy); an entry that is not an
// address is the invalid Addr. Several header lines are one list, in
// order (RFC 9110, section 5.3).
func forwardedChain(h http.Header, name string) []netip.Addr {
	lines := h.Values(name)
	if len(lines) == 0 {
		return nil
	}
	joined := strings.Join(lines, ",")
	var chain []netip.Addr
	if name == HeaderForwarded {
		for _, el := range splitQuoted(joined, ',') {
			chain = append(chain, forwardedFor(el))
		}
		return chain
	}
	for _, e := range strings.Split(joined, ",") {
		chain = append(chain, hopAddr(strings.TrimSpace(e)))
	}
	return chain
}

// forwardedFor is the for= address of one element of an RFC 7239
// Forwarded header, invalid when the element has none, more than one,
// or one that is not an address ("unknown", "_hidden").
func forwardedFor(el string) netip.Addr {
	var found netip.Addr
	n := 0
	for _, pair := range splitQuoted(el, ';') {
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "for") {
			continue
		}
		n++
		found = hopAddr(unquote(strings.TrimSpace(value)))
	}
	if n != 1 {
		return netip.Addr{}
	}
	return found
}

// hopAddr reads one hop: an address, optionally with a port
// ("192.0.2.1:4711", "[2001:db8::1]:4711") or in brackets. Anything else,
// zoned addresses included, is invalid.
func hopAddr(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Addr().Zone() != "" {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// splitQuoted splits s at sep outside double-quoted strings, where a
// backslash escapes the next character (RFC 9110 quoted-string).
func splitQuoted(s string, sep byte) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote removes the quotes and escapes of a quoted-string; a token is
// returned as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// clientIP is the address, as text, that the per-address limits count
// (by limitKey): see proxies.clientAddr.
func (s *Server) clientIP(r *http.Request) string {
	if a := s.now().proxies.clientAddr(r); a.IsValid() {
		return a.String()
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// fromTrustedProxy says whether the request's direct peer is a trusted
// proxy, whose X-Forwarded-Proto may then be believed.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	a := peerAddr(r)
	return a.IsValid() && s.now().proxies.trusts(a)
}
