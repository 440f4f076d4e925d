package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/porthole-chat/porthole/server"
)

// door is how visitors reach the server: plain HTTP, or HTTPS (the tls
// block) with, optionally, a plain-HTTP listener that redirects to it
// and answers ACME HTTP-01 challenges. serve keeps the wiring of HTTPS
// out of serve's body.
type door struct {
	scheme     string
	tls        *server.TLS
	redirect   *http.Server
	redirectLn net.Listener
	log        *slog.Logger
}

// openDoor prepares cfg's door for hs: the TLS configuration (its
// certificate files read, or its ACME manager made) and the redirect
// listener, opened now so that a port in use stops the start.
func openDoor(cfg *server.Config, dataDir string, srv *server.Server, hs *http.Server, log *slog.Logger) (*door, error) {
	t, err := server.NewTLS(cfg, dataDir, log)
	if err != nil {
		return nil, err
	}
	d := &door{scheme: "http", tls: t, log: log}
	if t == nil {
		return d, nil
	}
	d.scheme = "https"
	hs.TLSConfig = t.Config
	if addr := cfg.TLS.HTTPListen; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("tls.http_listen: listen on %s: %w (is another server using the port? pick another, or leave http_listen out)", addr, err)
		}
		d.redirectLn = srv.LimitListener(ln)
		d.redirect = &http.Server{
			Handler:           t.Redirect,
			ReadHeaderTimeout: time.Duration(cfg.Limits.HeaderTimeout),
			IdleTimeout:       time.Minute,
			ErrorLog:          hs.ErrorLog,
		}
	}
	return d, nil
}

// serve serves hs on ln until it is shut down: over TLS when the door
// has it, after starting the redirect listener and the ACME certificates'
// first request.
func (d *door) serve(hs *http.Server, ln net.Listener) error {
	if d.tls == nil {
		return hs.Serve(ln)
	}
	if d.redirect != nil {
		d.log.Info("redirecting plain HTTP to HTTPS", "addr", "http://"+displayAddr(d.redirectLn.Addr()))
		go func() {
			if err := d.redirect.Serve(d.redirectLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("tls.http_listen: the plain-HTTP listener stopped", "error", err)
			}
		}()
	}
	d.tls.Warm()
	return hs.ServeTLS(ln, "", "")
}

// shutdown stops the redirect listener, if any.
func (d *door) shutdown(ctx context.Context) error {
	if d.redirect == nil {
		return nil
	}
	return d.redirect.Shutdown(ctx)
}
