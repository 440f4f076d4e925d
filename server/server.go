// Package server is the Porthole proxy: it holds the bot platforms'
// tokens, speaks porthole.v1 over WebSocket to the widget, serves the
// fallback pages and the platforms' webhooks, and routes everything
// through one conversation service over a durable store.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/gorilla/sessions"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/web"
)

// Options are the parts of a server that do not come from the config file.
type Options struct {
	// DataDir holds the bolt file and the generated session key.
	DataDir string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Store is the store (cmd/porthole opens it with OpenBackend); nil
	// opens the configured one. The server closes it.
	Store store.Store
	// Bus carries events to the sockets of every process (cmd/porthole
	// opens it with OpenBackend); nil is the configured one's, or the
	// in-process bus. The server closes it.
	Bus bus.Bus
	// Limits counts what visitors and addresses do, for the limits
	// (cmd/porthole opens it with OpenBackend); nil is the configured
	// store's, or counts in memory. The server closes it.
	Limits Limiter
	// Retry overrides DefaultRetry (tests use short waits).
	Retry *RetryPolicy
	// HelloTimeout overrides the 10 s a socket has to say hello.
	HelloTimeout time.Duration
	// PingInterval overrides the 25 s between heartbeats.
	PingInterval time.Duration
	// WriteTimeout overrides the 10 s a client has to take one frame
	// before it counts as not reading and is dropped.
	WriteTimeout time.Duration
	// Static serves the widget, loader and demo assets under /static/
	// and the demo page at /; nil serves nothing there.
	Static http.Handler
	// DemoPage, if set, is the page at GET / for a demo bot: it is served
	// for the first bot of the current config whose provider is demo, and
	// GET / is 404 without one, also after a reload adds or removes it.
	DemoPage func(bot string) http.Handler
	// Loader, if set, serves GET /widget.js, the script tag's target.
	Loader http.Handler
	// Styles, if set, serves GET /widget.css?bot=ID, the eager stylesheet
	// with the bot's look that the loader links.
	Styles *web.Styles
	// Shared makes the dispatcher share the outbox with other processes
	// (SharedDispatch); nil shares it when the store is Redis, with the
	// default lease and poll, and dispatches alone otherwise.
	Shared *SharedDispatch
	// Providers replaces the configured provider of the bots it names
	// (tests count upstream calls with it).
	Providers map[string]provider.Provider
	// Version is the build's version, for porthole_build_info.
	Version string
}

// Bot is a configured bot.
type Bot struct {
	Config BotConfig
}

// Server is the running proxy.
type Server struct {
	// cur is the running configuration and what is made from it; a
	// reload swaps it whole (see snapshot and Reload).
	cur     atomic.Pointer[snapshot]
	opts    Options
	log     *slog.Logger
	store   store.Store
	bus     bus.Bus
	service *Service
	keys    *Keyring
	// pageSessions keeps the chat pages' session cookie.
	pageSessions *sessions.CookieStore
	closers      []func() error
	// reloadMu orders reloads and Close; providers holds the closer of
	// each bot's provider and retired those of providers a reload
	// replaced, until they close (see Reload).
	reloadMu  sync.Mutex
	providers map[string]func() error
	retired   map[*time.Timer]func() error
	// upstream is the one HTTP client of every platform adapter.
	upstream *provider.Upstream

	limits  Limiter
	mux     *http.ServeMux
	sockets sync.Map // *socket -> struct{}

	// admin is the admin listener's mux (adminRoutes), adminPatterns
	// its endpoints' patterns (adminHandle).
	admin         *http.ServeMux
	adminPatterns []string
	metrics       *Metrics

	mu       sync.Mutex
	draining bool
	conns    int // open sockets in all, for Limits.MaxConnections
}

// New builds a server from a validated config: it opens the store, makes
// the providers and queues what the last run left undelivered.
func New(cfg *Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, bus: opts.Bus, providers: map[string]func() error{}, retired: map[*time.Timer]func() error{}}
	s.cur.Store(newSnapshot(cfg))
	if s.bus == nil {
		s.bus = bus.NewLocal()
	}
	if opts.HelloTimeout == 0 {
		s.opts.HelloTimeout = 10 * time.Second
	}
	if opts.PingInterval == 0 {
		s.opts.PingInterval = 25 * time.Second
	}
	if opts.WriteTimeout == 0 {
		s.opts.WriteTimeout = 10 * time.Second
	}

	var secrets []string
	for _, k := range cfg.SessionKeys {
		secrets = append(secrets, k.Reveal())
	}
	if len(secrets) == 0 {
		key, err := LoadOrCreateKey(opts.DataDir)
		if err != nil {
			return nil, dataDirError(opts.DataDir, fmt.Errorf("session key: %w", err))
		}
		secrets = []string{key}
	}
	var err error
	if s.keys, err = NewKeyring(secrets); err != nil {
		return nil, err
	}
	s.pageSessions = newPageSessions(s.keys)

	s.store, s.limits = opts.Store, opts.Limits
	if s.store == nil {
		be, err := OpenBackend(cfg, opts.DataDir, log)
		if err != nil {
			return nil, err
		}
		s.store = be.Store
		if opts.Bus == nil {
			s.bus = be.Bus
		} else {
			be.Bus.Close()
		}
		if s.limits == nil {
			s.limits = be.Limits
		} else {
			be.Limits.Close()
		}
	}
	if s.limits == nil {
		s.limits = NewMemoryLimiter(cfg.Limits)
	}
	// The limiter and the bus close before the store: on Redis they
	// share its client.
	s.closers = append(s.closers, s.limits.Close, s.bus.Close, s.store.Close)

	retry := cfg.Upstream.Retry()
	if opts.Retry != nil {
		retry = *opts.Retry
	}
	s.service = NewService(s.store, s.bus, log, retry)
	s.metrics = NewMetrics(botProviders(cfg), opts.Version, s.store, s.openSockets)
	s.service.metrics = s.metrics
	switch {
	case opts.Shared != nil:
		s.service.Share(*opts.Shared)
	case cfg.Store.Driver == "redis":
		s.service.Share(SharedDispatch{Owner: NewOwner()})
	}
	s.upstream = &provider.Upstream{}
	for _, bc := range cfg.Bots {
		p, closer, err := opts.Providers[bc.ID], (func() error)(nil), error(nil)
		if p == nil {
			p, closer, err = s.newProvider(bc)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("bot %s: %w", bc.ID, err)
		}
		s.service.SetProvider(bc.ID, p)
		if closer != nil {
			s.providers[bc.ID] = closer
		}
	}
	if n, err := s.service.Recover(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("recover outbox: %w", err)
	} else if n > 0 {
		log.Info("resuming undelivered messages", "count", n)
	}
	s.warnSelfWithoutPublicURL()
	s.routes()
	s.adminRoutes()
	s.warmStyles()
	return s, nil
}

// newProvider makes the provider of bot bc from its platform
// (provider.Lookup), with a closer when it holds resources.
func (s *Server) newProvider(bc BotConfig) (provider.Provider, func() error, error) {
	pl, ok := provider.Lookup(bc.Provider)
	if !ok {
		return nil, nil, fmt.Errorf("provider %q is not available", bc.Provider)
	}
	settings := bc.Settings
	if settings == nil {
		settings = pl.Settings()
		if d, ok := settings.(provider.SettingsDefaults); ok {
			d.ApplyDefaults()
		}
	}
	p, err := pl.New(settings, provider.Env{
		Bot: bc.ID, Sink: s.botSink(bc.ID), Upstream: s.upstream, Log: s.log,
		BaseURL: s.baseURL(), Links: storeLinker{s.store, bc.ID},
	})
	if err != nil {
		return nil, nil, err
	}
	if c, ok := p.(io.Closer); ok {
		return p, c.Close, nil
	}
	return p, nil, nil
}

// baseURL is PublicURL, or the local address for a server without one,
// so that the demo bot's media links work on `make run`.
func (s *Server) baseURL() string {
	cfg := s.config()
	if cfg.PublicURL != "" {
		return strings.TrimSuffix(cfg.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "http://localhost:8080"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Shutdown stops accepting work and closes every socket with 1012
// (service restart) so widgets reconnect and replay what they missed.
// Then it stops the upstream workers and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	var wg sync.WaitGroup
	s.sockets.Range(func(k, _ any) bool {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.(*socket).conn.Close(websocket.StatusServiceRestart, "server restarting")
		}()
		return true
	})
	wg.Wait()
	err := s.service.Close(ctx)
	return errors.Join(err, s.Close())
}

// Close releases providers and the store without draining sockets.
func (s *Server) Close() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var errs []error
	for t, c := range s.retired {
		t.Stop()
		errs = append(errs, c())
	}
	clear(s.retired)
	for _, c := range s.providers {
		errs = append(errs, c())
	}
	clear(s.providers)
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// StartPruning deletes conversations older than the retention now and
// then every hour, until ctx ends. Each round reads the retention
// afresh, so a reload changes it.
func (s *Server) StartPruning(ctx context.Context) {
	go func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			retention := time.Duration(s.config().Retention)
			n, err := s.store.Prune(ctx, time.Now().Add(-retention))
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("retention pruning failed", "error", err)
			case n > 0:
				s.log.Info("retention pruned conversations", "count", n, "older_than", retention.String())
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// startConversation returns the conversation with bot that key finds (a
// visitor id or a user key), creating it (and with it the platform's
// greeting) when there is none. Creating one is metered, so that
// scripted sockets cannot run up the bot owner's bill: it takes a start
// from the bucket of the address ip (limits.starts_per_minute,
// start_burst) and from the bot's (limits.bot_starts_per_minute).
// Finding an existing conversation takes nothing, and a start that finds
// one after all (another tab created it meanwhile) is given back. A
// refused start creates nothing and returns how long to wait. setup runs
// as Opening.Setup.
func (s *Server) startConversation(ctx context.Context, bot *Bot, ip, key string, v provider.Visitor, setup func(Conv)) (Conv, time.Duration, error) {
	id := bot.Config.ID
	o := Opening{Bot: id, Key: key, Visitor: v, Create: true, Setup: setup}
	if _, found, err := s.service.Find(ctx, id, key); err != nil {
		return Conv{}, 0, err
	} else if found {
		c, _, _, err := s.service.Open(ctx, o)
		return c, 0, err
	}
	ok, wait, refund := s.limits.ReserveStart(ctx, ip, id)
	if !ok {
		s.metrics.limit(LimitStarts)
		s.log.Warn("conversation start refused: too many new conversations", "bot", id, "retry_ms", wait.Milliseconds())
		return Conv{}, wait, nil
	}
	c, _, created, err := s.service.Open(ctx, o)
	if err != nil || !created {
		refund()
	}
	if created {
		s.log.Debug("conversation started", "bot", id, "conversation", c.ID)
	}
	return c, 0, err
}

// dataDirError adds the fix to a failure to write the data directory:
// whether it is mounted read-only, owned by someone else or full, the
// operator's move is the same.
func dataDirError(dir string, err error) error {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w; the data directory %s must be writable and have free space (it holds the store and the session key): fix it or choose another with --data", err, dir)
	}
	return err
}
