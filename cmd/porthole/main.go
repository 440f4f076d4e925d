// Command porthole runs the Porthole proxy.
//
//	porthole serve [--config FILE] [--listen ADDR] [--data DIR]
//	porthole check --config FILE
//
// Without --config it runs the built-in demo bot, reachable from its own
// demo page and from any loopback origin. SIGHUP reloads the config file
// in place (server.Reload).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/porthole-chat/porthole/server"
	"github.com/porthole-chat/porthole/server/platforms"
	"github.com/porthole-chat/porthole/web"
)

const usage = `porthole: put a Chatlayer or ChatAIBot bot on any website.

Usage:
  porthole serve [flags]   run the proxy (no --config: the built-in demo bot); SIGHUP reloads the config
  porthole check --config FILE   validate a config file without starting anything
  porthole sim [flags]     run the bot platforms' emulators for the examples/*-sim.yaml configs
  porthole bench [flags]   measure real servers under load (memory per connection, reply round trip, Redis commands) against an emulator
  porthole admin COMMAND   list, export or erase conversations through a running server's admin API ('porthole admin -h')
  porthole healthcheck     exit 0 when the server on this host answers /readyz with 200, else 1 (for container health checks)
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
	case "check":
		if err = check(os.Args[2:], os.Stdout, os.Stderr); errors.Is(err, errInvalid) {
			os.Exit(1) // check has listed the problems
		}
	case "sim":
		err = sim(os.Args[2:], os.Stderr)
	case "bench":
		err = bench(os.Args[2:], os.Stdout, os.Stderr)
	case "admin":
		err = admin(os.Args[2:], os.Stdout, os.Stderr)
	case "healthcheck":
		err = healthcheck(os.Args[2:], os.Stdout, os.Stderr)
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
	// The binary wires the parts: the store and the bus here, the bot
	// platforms through platforms.Register.
	stopTracing, err := startTracing(cfg.Tracing, log)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer flushTraces(stopTracing, log)
	be, err := server.OpenBackend(cfg, *dataDir, log)
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, server.Options{
		DataDir:  *dataDir,
		Store:    be.Store,
		Bus:      be.Bus,
		Limits:   be.Limits,
		Logger:   log,
		Static:   web.Static(),
		Loader:   web.Loader(),
		Styles:   styles,
		DemoPage: web.DemoPage,
		Version:  version,
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
		ErrorLog:          httpErrorLog(log),
	}
	door, err := openDoor(cfg, *dataDir, srv, hs, log)
	if err != nil {
		ln.Close()
		srv.Close()
		return err
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
			ErrorLog:          httpErrorLog(log),
		}
	}
	log.Info("porthole serving", "addr", door.scheme+"://"+displayAddr(ln.Addr()), "bots", bots, "data", *dataDir, "version", version)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv.StartPruning(ctx)
	errc := make(chan error, 2)
	go func() { errc <- door.serve(hs, ln) }()
	if admin != nil {
		log.Info("admin listener serving", "addr", "http://"+displayAddr(aln.Addr()), "paths", []string{"/metrics", "/admin/v1/"})
		go func() { errc <- admin.Serve(aln) }()
	}
	for running := true; running; {
		select {
		case err := <-errc:
			hs.Close()
			if admin != nil {
				admin.Close()
			}
			srv.Close()
			return err
		case <-hup:
			reload(srv, *configPath, *listen, log)
		case <-ctx.Done():
			running = false
		}
	}
	stop()
	log.Info("shutting down: closing sockets with 1012 so widgets reconnect")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	herr := errors.Join(hs.Shutdown(sctx), door.shutdown(sctx))
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

// reload reads the config file again and applies it (server.Reload) on
// SIGHUP. A file with problems is refused, each problem logged on a line
// of its own, and the running configuration stays.
func reload(srv *server.Server, path, listen string, log *slog.Logger) {
	if path == "" {
		log.Warn("SIGHUP: there is no config file to reload (serve runs the built-in demo without --config); nothing changed")
		return
	}
	log.Info("SIGHUP: reloading the config", "config", path)
	cfg, err := server.LoadConfig(path)
	if err != nil {
		for _, p := range problems(err) {
			log.Error("config reload refused: "+p.Error(), "config", path)
		}
		log.Error("config reload refused: the running configuration is kept; fix the file (porthole check --config "+path+") and send SIGHUP again", "config", path)
		return
	}
	if listen != "" {
		cfg.Listen = listen
	}
	if err := srv.Reload(cfg); err != nil {
		log.Error("config reload refused: "+err.Error(), "config", path)
	}
}

// errInvalid reports a config that check found problems in, after it
// listed them.
var errInvalid = errors.New("invalid config")

// check validates a config file as serve would read it, without opening
// the store or listening: every problem on a line of its own on stderr
// and errInvalid, or a summary of the bots on stdout. The file's ${VAR}
// references are expanded from the environment, as serve does.
func check(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` to validate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" && fs.NArg() == 1 {
		*configPath = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("check takes one file, with --config FILE; got %q", fs.Args())
	}
	if *configPath == "" {
		return errors.New("check needs the file: porthole check --config FILE")
	}
	cfg, err := server.LoadConfig(*configPath)
	if err != nil {
		ps := problems(err)
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", *configPath, len(ps))
		for _, p := range ps {
			fmt.Fprintf(stderr, "  - %v\n", p)
		}
		return errInvalid
	}
	bots := make([]string, 0, len(cfg.Bots))
	for _, b := range cfg.Bots {
		bots = append(bots, b.ID+" ("+b.Provider+")")
	}
	fmt.Fprintf(stdout, "ok: %s: %d bot(s): %s; store %s, listen %s\n", *configPath, len(bots), strings.Join(bots, ", "), cfg.Store.Driver, cfg.Listen)
	return nil
}

// problems splits an error of LoadConfig into its problems, one per
// field: LoadConfig joins them (errors.Join) under the file's name.
func problems(err error) []error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
	}
	return []error{err}
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

// httpErrorLog is the log of net/http's own errors. A failed TLS
// handshake goes at debug level: scanners, port probes and old clients
// make many on a public server, and nobody can act on one. Everything
// else (accept errors, panics in a handler) stays at warn.
func httpErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(httpErrorWriter{log}, "", 0)
}

type httpErrorWriter struct{ log *slog.Logger }

func (w httpErrorWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
}
