package server

import (
	"net"
	"net/netip"
	"sync"
)

// LimitListener wraps the server's listener so that it never holds more
// than limits.max_tcp_connections connections at once, nor more than
// limits.tcp_connections_per_ip from one address (by limitKey, so an
// IPv6 /64 is one address). Why at the listener: a connection that
// trickles its request or body, or says nothing at all, holds a file
// descriptor and memory long before any handler or per-socket limit
// sees it, and enough of them from one address once stopped /healthz
// from answering. A connection over a cap is closed at once, before a
// byte of it is read. A trusted proxy carries many clients on its
// connections, so it counts only toward the total; its clients are
// limited per address by the handlers (trusted_proxies).
func (s *Server) LimitListener(ln net.Listener) net.Listener {
	return &capListener{Listener: ln, srv: s, perIP: map[string]int{}}
}

// capListener is the listener LimitListener returns.
type capListener struct {
	net.Listener
	srv *Server

	mu    sync.Mutex
	total int
	perIP map[string]int // open connections by limitKey of the peer
}

// Accept returns the next connection within the caps, closing those
// over them as they come.
func (l *capListener) Accept() (net.Conn, error) {
	lim := l.srv.config().Limits
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ""
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			if a := ap.Addr().Unmap().WithZone(""); !l.srv.now().proxies.trusts(a) {
				key = limitKey(a.String())
			}
		}
		l.mu.Lock()
		switch {
		case l.total >= lim.MaxTCPConnections:
			l.mu.Unlock()
			c.Close()
			l.srv.metrics.limit(LimitMaxTCPConnections)
			l.srv.log.Warn("connection closed at accept: the server is at limits.max_tcp_connections", "max_tcp_connections", lim.MaxTCPConnections)
			continue
		case key != "" && l.perIP[key] >= lim.TCPConnectionsPerIP:
			l.mu.Unlock()
			c.Close()
			l.srv.metrics.limit(LimitTCPConnectionsPerIP)
			l.srv.log.Warn("connection closed at accept: the address is at limits.tcp_connections_per_ip", "tcp_connections_per_ip", lim.TCPConnectionsPerIP)
			continue
		}
		l.total++
		if key != "" {
			l.perIP[key]++
		}
		l.mu.Unlock()
		return &capConn{Conn: c, l: l, key: key}, nil
	}
}

// release gives back the slots of a closed connection.
func (l *capListener) release(key string) {
	l.mu.Lock()
	l.total--
	if key != "" {
		if l.perIP[key]--; l.perIP[key] <= 0 {
			delete(l.perIP, key)
		}
	}
	l.mu.Unlock()
}

// capConn is an accepted connection that gives its slots back when it
// is closed, by net/http or, after a WebSocket upgrade, by the socket.
type capConn struct {
	net.Conn
	l    *capListener
	key  string
	once sync.Once
}

// Close closes the connection and gives its slots back, once.
func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
