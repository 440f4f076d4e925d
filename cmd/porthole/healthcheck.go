package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/porthole-chat/porthole/server"
)

// healthcheck asks a running server on this host whether it is ready:
// GET /readyz on its listen address, exit status 0 on 200 and 1 on
// anything else. It exists for container health checks: the image is
// built FROM scratch and has no curl or shell to do it.
//
//	porthole healthcheck [--config FILE] [--listen ADDR] [--timeout 3s]
//
// The address is --listen, else the config's listen, else :8080, the
// same order `porthole serve` uses, so the same flags find the server.
func healthcheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` whose listen address to check")
	listen := fs.String("listen", "", "the server's listen `address`, overriding the config (default :8080)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck takes no arguments, got %q; give the address with --listen", fs.Arg(0))
	}
	addr := server.DefaultListen
	if *configPath != "" {
		cfg, err := server.LoadConfig(*configPath)
		if err != nil {
			return err
		}
		addr = cfg.Listen
	}
	if *listen != "" {
		addr = *listen
	}
	target, err := dialAddr(addr)
	if err != nil {
		return err
	}
	url := "http://" + target + "/readyz"
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// The server is on this host: no proxy from the environment, and a
	// redirect is an answer other than 200, not something to follow.
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w (is porthole serving on %s? pass its address with --listen or --config)", err, addr)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: GET %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// dialAddr turns a listen address into one to connect to: a server
// listening on every interface (":8080", "0.0.0.0:8080", "[::]:8080")
// is reached on the loopback address of the same family.
func dialAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %v; write it as host:port or :port, like :8080", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
