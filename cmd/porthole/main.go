// Command porthole runs the Porthole proxy.
//
//	porthole serve [--config FILE] [--listen ADDR] [--data DIR]
//
// Without --config it runs the built-in demo bot, reachable from its own
// demo page and from any loopback origin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/porthole-chat/porthole/server"
	"github.com/porthole-chat/porthole/server/platforms"
	"github.com/porthole-chat/porthole/web"
)

const usage = `porthole: put a Chatlayer or ChatAIBot bot on any website.

Usage:
  porthole serve [flags]   run the proxy (no --config: the built-in demo bot)
  porthole sim [flags]     run the bot platforms' emulators for the examples/*-sim.yaml configs
  porthole bench [flags]   measure a real server under load (memory per connection, reply round trip) against an emulator
  porthole version         print the version

Run 'porthole serve -h' for the flags.
`

var version = "dev"

func main() {
	platforms.Register()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:], os.Stderr)
	case "sim":
		err = sim(os.Args[2:], os.Stderr)
	case "bench":
		err = bench(os.Args[2:], os.Stdout, os.Stderr)
	case "version":
		fmt.Println("porthole", version)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "porthole: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		os.Exit(1)
	}
}

// logSampleInterval is how often a repeated warning is logged (see
// server.SampleWarnings): often enough to see an outage go on, seldom
// enough that thousands of conversations failing alike stay readable.
const logSampleInterval = 10 * time.Second

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file`; empty runs the built-in demo bot")
	listen := fs.String("listen", "", "listen `address`, overriding the config (default :8080)")
	dataDir := fs.String("data", "./data", "`directory` for the store file and the generated session key")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q; did you mean --config %s?", fs.Arg(0), fs.Arg(0))
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, hopts)
	case "json":
		handler = slog.NewJSONHandler(stderr, hopts)
	default:
		return fmt.Errorf("--log-format %q: use text or json", *logFormat)
	}
	// A platform refusing calls makes every conversation log the same
	// warning: one line per kind and bot every 10 s, with the count.
	log := slog.New(server.SampleWarnings(handler, logSampleInterval))

	cfg := server.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = server.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if err := cfg.AdminListenError(); err != nil {
		return err
	}

	var styles *web.Styles
	if frame, err := web.Frame(); err == nil {
		styles = web.NewStyles(frame)
	}
	// The demo page at / talks to a demo bot: only a config with one has
	// it. A production config answers / with 404 rather than a page for
	// whatever bot comes first, which was never meant to be public.
	var index http.Handler
	if id, ok := demoBot(cfg); ok {
		index = web.DemoPage(id)
	}
	// The binary wires the parts: the store and the bus here, the bot
	// platforms through platforms.Register.
	be, err := server.OpenBackend(cfg, *dataDir, log)
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, server.Options{
		DataDir: *dataDir,
		Store:   be.Store,
		Bus:     be.Bus,
		Limits:  be.Limits,
		Logger:  log,
		Static:  web.Static(),
		Loader:  web.Loader(),
		Styles:  styles,
		Index:   index,
		Version: version,
	})
	if err != nil {
		be.Close()
		return err
	}
	if _, err := web.Manifest(); err != nil {
		log.Warn("the widget is not available: its assets were not built into this binary; build with make build", "error", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listen on %s: %w (is another server using the port? pick one with --listen)", cfg.Listen, err)
	}
	ln = srv.LimitListener(ln)
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: time.Duration(cfg.Limits.HeaderTimeout), // bodies: limits.body_timeout, per handler
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bots := make([]string, 0, len(cfg.Bots))
	for _, b := range cfg.Bots {
		bots = append(bots, b.ID+" ("+b.Provider+")")
	}
	// The admin listener (admin.listen) serves /metrics on a port of
	// its own; the public one serves nothing of it.
	var admin *http.Server
	var aln net.Listener
	if cfg.Admin.Listen != "" {
		if aln, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			ln.Close()
			srv.Close()
			return fmt.Errorf("admin.listen %s: %w (is another process using the port? pick another admin.listen)", cfg.Admin.Listen, err)
		}
		admin = &http.Server{
			Handler:           srv.AdminHandler(),
			ReadHeaderTimeout: time.Duration(cfg.Limits.HeaderTimeout),
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	log.Info("porthole serving", "addr", "http://"+displayAddr(ln.Addr()), "bots", bots, "data", *dataDir, "version", version)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv.StartPruning(ctx)
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	if admin != nil {
		log.Info("admin listener serving", "addr", "http://"+displayAddr(aln.Addr()), "paths", []string{"/metrics"})
		go func() { errc <- admin.Serve(aln) }()
	}
	select {
	case err := <-errc:
		hs.Close()
		if admin != nil {
			admin.Close()
		}
		srv.Close()
		return err
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down: closing sockets with 1012 so widgets reconnect")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	herr := hs.Shutdown(sctx)
	var aerr error
	if admin != nil {
		aerr = admin.Shutdown(sctx)
	}
	serr := srv.Shutdown(sctx)
	if err := errors.Join(herr, aerr, serr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// demoBot returns the id of the first bot with provider demo, the one
// the demo page at / embeds, if the config has one.
func demoBot(cfg *server.Config) (string, bool) {
	for _, b := range cfg.Bots {
		if b.Provider == "demo" {
			return b.ID, true
		}
	}
	return "", false
}

// displayAddr turns ":8080" into "localhost:8080" for the startup line.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
