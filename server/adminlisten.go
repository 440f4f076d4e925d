package server

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// AdminConfig is the admin listener: what operators and their tools
// reach, never visitors. It serves /metrics (Prometheus text), and is
// where the admin API (admin_token) goes.
type AdminConfig struct {
	// Listen is the admin listener's address, such as
	// "127.0.0.1:9090"; empty (the default) serves no admin listener.
	// It must not be the public listen address: nothing of it is ever
	// served on the public port. Keep it on loopback or a private
	// network: /metrics is not authenticated.
	Listen string `yaml:"listen"`
}

// checkAdmin reports the problems of the admin settings, each naming
// its field (Validate).
func (c *Config) checkAdmin() []error {
	var errs []error
	if err := c.AdminListenError(); err != nil {
		errs = append(errs, err)
	}
	if t := c.AdminToken.Reveal(); t != "" && len(t) < 16 {
		errs = append(errs, fmt.Errorf("admin_token: is %d characters; use at least 16 random characters, e.g. from `openssl rand -hex 32`, and write it as \"${ADMIN_TOKEN}\"", len(t)))
	}
	return errs
}

// AdminListenError reports an admin.listen that is not an address or
// that would share the public listener's port. Validate checks it, and
// so does `porthole serve` once --listen has overridden listen.
func (c *Config) AdminListenError() error {
	a := c.Admin.Listen
	if a == "" {
		return nil
	}
	ah, ap, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("admin.listen: %q is not a listen address; write it like 127.0.0.1:9090, or leave it out for no admin listener", a)
	}
	ph, pp, err := net.SplitHostPort(c.Listen)
	if err != nil || ap != pp || ap == "0" {
		return nil
	}
	if ah == "" || ph == "" || strings.EqualFold(ah, ph) || unspecified(ah) || unspecified(ph) {
		return fmt.Errorf("admin.listen: %q is the public listen address (%s); the admin listener must have a port of its own, never the public one: use e.g. 127.0.0.1:9090", a, c.Listen)
	}
	return nil
}

// unspecified reports whether host is 0.0.0.0 or ::, every address.
func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// adminRoutes builds the admin listener's mux (AdminHandler). An admin
// endpoint is added here with adminHandle, never on s.mux: the public
// port must serve nothing of it (a test requests every pattern
// adminHandle recorded from the public handler and wants 404).
// Endpoints that read or change conversations must check AdminToken in
// constant time.
func (s *Server) adminRoutes() {
	s.admin = http.NewServeMux()
	s.adminHandle("GET /metrics", s.metrics.Handler())
	s.adminAPIRoutes(s.config().AdminToken.Reveal(), s.adminHandle)
}

// adminHandle adds an admin endpoint and records its pattern.
func (s *Server) adminHandle(pattern string, h http.Handler) {
	s.admin.Handle(pattern, h)
	s.adminPatterns = append(s.adminPatterns, pattern)
}

// AdminHandler returns the handler of the admin listener (admin.listen):
// GET /metrics now. cmd/porthole serves it on its own listener, with the
// public server's graceful shutdown. A caller may add routes to it
// before serving (mux.Handle), but the server's own admin endpoints
// belong in adminRoutes.
func (s *Server) AdminHandler() *http.ServeMux { return s.admin }

// Metrics returns the server's metrics (Metrics.Registry takes more).
func (s *Server) Metrics() *Metrics { return s.metrics }
