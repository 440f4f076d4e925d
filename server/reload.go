package server

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/provider"
)

// snapshot is the running configuration and what is made from it: the
// bots by id and the trusted proxies. Nothing in it changes once it is
// stored; a reload makes a new one and swaps it in (Server.cur), so a
// request reads one whole configuration, old or new, without a lock.
type snapshot struct {
	cfg  *Config
	bots map[string]*Bot
	// proxies says whose forwarded headers name the client.
	proxies proxies
}

func newSnapshot(cfg *Config) *snapshot {
	sn := &snapshot{cfg: cfg, bots: make(map[string]*Bot, len(cfg.Bots))}
	sn.proxies.nets, _ = parseTrustedProxies(cfg.TrustedProxies) // Validate reported bad entries
	sn.proxies.header = cfg.ForwardedHeader
	for _, bc := range cfg.Bots {
		sn.bots[bc.ID] = &Bot{Config: bc}
	}
	return sn
}

// now is the running snapshot.
func (s *Server) now() *snapshot { return s.cur.Load() }

// config is the running configuration. Callers do not change it.
func (s *Server) config() *Config { return s.cur.Load().cfg }

// bot is the running configuration's bot id, nil for none.
func (s *Server) bot(id string) *Bot { return s.cur.Load().bots[id] }

// CloseOriginRefused is the WebSocket close code (1008, policy
// violation) of a socket that a reload no longer allows: its page's
// origin left the bot's origins, or the bot left the configuration. The
// widget backs off as for any policy close, and its next handshake is
// refused with 403 or 404 like any other from that page.
const CloseOriginRefused = websocket.StatusPolicyViolation

// Reload applies cfg, a configuration that ParseConfig or LoadConfig
// validated, in place, without closing a socket that is still allowed:
// bots added, removed or changed, their origins, widget look, identity
// secret and platform settings, the limits, the trusted proxies and the
// retention. Open sockets take the new look and secret from their next
// frame on (a new hello's welcome carries the new look); a socket whose
// page origin the new origins leave out, or whose bot is gone, is closed
// with CloseOriginRefused and a reason saying which. A bot whose
// provider or platform settings changed gets a new provider; the old one
// takes no new calls and is closed (if it is an io.Closer) once the
// calls it has in flight have had the upstream timeout to end.
//
// What cannot change in place (restartOnly: the listen address, the
// public URL, the session keys, the store, the upstream policy, the
// header timeout and tracing) keeps its running value, each change logged as a
// warning naming the field with "restart to change it", and the rest
// applies. Why not refuse the whole reload: the reason for a reload is
// nearly always what can change in place (a client's new domain, a
// title), and it must not wait because the same file also prepares the
// next restart; the running state stays well defined (the new file
// with the running values of those fields) and the log says which
// differ. A provider that cannot be made refuses the whole reload, with
// nothing changed: the error says which bot.
func (s *Server) Reload(cfg *Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.now()
	next := *cfg
	for _, field := range keepRestartOnly(&next, old.cfg) {
		s.log.Warn("config reload: "+field+" changed, but the running server cannot change it; restart to change it (the running value is kept)", "field", field)
	}

	// Make the providers first: one that fails leaves everything as it
	// was.
	var added, rebuilt, updated, removed []string
	made := map[string]provider.Provider{}
	closers := map[string]func() error{}
	for _, bc := range next.Bots {
		ob := old.bots[bc.ID]
		switch {
		case ob == nil:
			added = append(added, bc.ID)
		case !sameProvider(ob.Config, bc):
			rebuilt = append(rebuilt, bc.ID)
		default:
			if !sameBot(ob.Config, bc) {
				updated = append(updated, bc.ID)
			}
			continue
		}
		if p := s.opts.Providers[bc.ID]; p != nil {
			made[bc.ID] = p
			continue
		}
		p, closer, err := s.newProvider(bc)
		if err != nil {
			for _, c := range closers {
				c()
			}
			return fmt.Errorf("bot %s: %w; the running configuration is kept", bc.ID, err)
		}
		made[bc.ID] = p
		if closer != nil {
			closers[bc.ID] = closer
		}
	}
	sn := newSnapshot(&next)
	for id := range old.bots {
		if sn.bots[id] == nil {
			removed = append(removed, id)
		}
	}
	slices.Sort(removed)

	// New providers before the snapshot that lets sockets reach them;
	// removed bots' providers after the snapshot that stops them.
	s.service.SetProviders(made, nil)
	s.cur.Store(sn)
	s.service.SetProviders(nil, removed)
	s.limits.SetLimits(next.Limits)
	// A call in flight ends within the retry policy's timeout.
	grace := s.service.retry.Timeout + time.Second
	for _, id := range append(slices.Clone(rebuilt), removed...) {
		if c := s.providers[id]; c != nil {
			delete(s.providers, id)
			s.retire(id, c, grace)
		}
	}
	for id, c := range closers {
		s.providers[id] = c
	}

	closed := 0
	s.sockets.Range(func(k, _ any) bool {
		so := k.(*socket)
		if reason := s.refusal(so, sn); reason != "" {
			closed++
			go so.conn.Close(CloseOriginRefused, reason)
		}
		return true
	})
	s.warmStyles()
	s.warnSelfWithoutPublicURL()
	s.log.Info("config reloaded", "added", added, "removed", removed, "provider_rebuilt", rebuilt, "updated", updated, "sockets_closed", closed)
	return nil
}

// retire closes the provider closer c of bot once grace has passed, or
// at Close, whichever comes first. The caller holds reloadMu.
func (s *Server) retire(bot string, c func() error, grace time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(grace, func() {
		s.reloadMu.Lock()
		c, ok := s.retired[t]
		delete(s.retired, t)
		s.reloadMu.Unlock()
		if !ok {
			return
		}
		if err := c(); err != nil {
			s.log.Warn("closing a replaced provider failed", "bot", bot, "error", err)
		}
	})
	s.retired[t] = c
}

// refusal says why the running configuration sn no longer allows socket
// so, as its close reason; "" when it does.
func (s *Server) refusal(so *socket, sn *snapshot) string {
	b := sn.bots[so.botID]
	switch {
	case b == nil:
		return "bot " + so.botID + " was removed from the configuration"
	case so.origin != "" && !listsOrigin(b.Config.Origins, so.origin, so.self):
		return "origin " + so.origin + " is no longer allowed for bot " + so.botID
	}
	return ""
}

// socketOrigin is the normalised Origin of a socket's request ("" when
// it sent none) and whether that is this server's own, for refusal.
// The public URL and the port cannot change without a restart, so
// whether it is "self" cannot either.
func (s *Server) socketOrigin(r *http.Request) (origin string, self bool) {
	h := r.Header.Get("Origin")
	if h == "" {
		return "", false
	}
	o, err := parseOrigin(h)
	if err != nil {
		return h, false // originAllowed refused it already
	}
	return o, s.isSelf(o, r)
}

// sameProvider says whether bots a and b are answered alike: the same
// platform with the same settings, so that the running provider serves
// b too.
func sameProvider(a, b BotConfig) bool {
	return a.Provider == b.Provider && reflect.DeepEqual(a.Settings, b.Settings)
}

// sameBot says whether a and b are the same bot configuration, but for
// the YAML nodes of their blocks (whose positions move with any edit).
func sameBot(a, b BotConfig) bool {
	a.Blocks, b.Blocks = nil, nil
	return reflect.DeepEqual(a, b)
}

// keepRestartOnly sets the fields of next that a reload cannot change to
// their values in cur and names those that differed. Why each one:
// listen is the socket the process is bound to (and limits.header_timeout
// a setting of its http.Server, fixed while it serves); public_url is in
// the links and webhook URLs the providers were made with, and what
// "self" means to the sockets already open; the store is where every
// conversation, the bus and the limits' counts live, so a new one is a
// migration; the upstream policy is read by the dispatcher's workers
// without a lock; and the session keys sign every visitor token and page
// cookie, so that a key dropped by a slip in a reload would sign every
// visitor out at once, while a rotation (a new key in front, the old one
// kept) is rare, planned, and safe with a rolling restart.
func keepRestartOnly(next, cur *Config) []string {
	var kept []string
	keep(&kept, "listen", &next.Listen, cur.Listen)
	keep(&kept, "public_url", &next.PublicURL, cur.PublicURL)
	keep(&kept, "session_keys", &next.SessionKeys, cur.SessionKeys)
	keep(&kept, "store", &next.Store, cur.Store)
	keep(&kept, "upstream", &next.Upstream, cur.Upstream)
	keep(&kept, "limits.header_timeout", &next.Limits.HeaderTimeout, cur.Limits.HeaderTimeout)
	keep(&kept, "tls", &next.TLS, cur.TLS)       // the listener and its certificates are made at start
	keep(&kept, "admin", &next.Admin, cur.Admin) // the admin listener is made at start
	keep(&kept, "admin_token", &next.AdminToken, cur.AdminToken)
	keep(&kept, "tracing", &next.Tracing, cur.Tracing)
	return kept
}

// keep sets *next to cur, adding name to kept when they differed.
func keep[T any](kept *[]string, name string, next *T, cur T) {
	if !reflect.DeepEqual(*next, cur) {
		*kept = append(*kept, name)
		*next = cur
	}
}
