package server

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
)

// Metrics is what the server counts for Prometheus, served as text on
// the admin listener (Server.AdminHandler), never on the public one.
// It has its own registry, not the process-wide default, so that two
// servers in one test process never share a count, and a library that
// registers on the default cannot add to it. Label values are bounded:
// bot ids and provider names come from the config, outcomes, results,
// kinds and operations are the fixed sets below; no visitor or
// conversation id is ever a label.
//
// A nil *Metrics counts nothing, so that a Service made without a
// server (the tests' NewService) needs none.
type Metrics struct {
	reg *prometheus.Registry
	// providers names each bot's provider, for the provider label.
	providers map[string]string

	visitors      *prometheus.CounterVec
	conversations *prometheus.CounterVec
	messagesIn    *prometheus.CounterVec
	messagesOut   *prometheus.CounterVec
	upstreamTime  *prometheus.HistogramVec
	upstreamCalls *prometheus.CounterVec
	retries       *prometheus.CounterVec
	callbacks     *prometheus.CounterVec
	storeWrites   *prometheus.HistogramVec
	limited       *prometheus.CounterVec
}

// Upstream call outcomes (the outcome label of
// porthole_upstream_calls_total): what the platform answered, by HTTP
// class, or that no answer came in time, or at all.
const (
	OutcomeOK      = "ok"
	Outcome4xx     = "4xx"
	Outcome429     = "429"
	Outcome5xx     = "5xx"
	OutcomeTimeout = "timeout"
	OutcomeNetwork = "network" // no HTTP answer: refused, reset, DNS
)

var outcomes = []string{OutcomeOK, Outcome4xx, Outcome429, Outcome5xx, OutcomeTimeout, OutcomeNetwork}

// Callback results (the result label of porthole_callbacks_total): the
// webhook's answer to a platform's callback.
const (
	CallbackAccepted  = "accepted"  // 2xx, something new stored (or nothing to store)
	CallbackDuplicate = "duplicate" // 2xx, every message was stored before: a retried callback
	CallbackRefused   = "refused"   // 4xx: wrong secret, unreadable body, another bot's conversation
	CallbackError     = "error"     // 5xx: not stored; the platform retries
)

var callbackResults = []string{CallbackAccepted, CallbackDuplicate, CallbackRefused, CallbackError}

// Limit kinds (the kind label of porthole_limited_total), each named
// after the setting under limits: that refused.
const (
	LimitMessages            = "messages"               // messages_per_minute or ip_messages_per_minute
	LimitStarts              = "starts"                 // starts_per_minute or bot_starts_per_minute
	LimitConnectionsPerIP    = "connections_per_ip"     // sockets of one address
	LimitMaxConnections      = "max_connections"        // sockets of the server
	LimitTCPConnectionsPerIP = "tcp_connections_per_ip" // TCP connections of one address, at accept
	LimitMaxTCPConnections   = "max_tcp_connections"    // TCP connections of the server, at accept
)

var limitKinds = []string{LimitMessages, LimitStarts, LimitConnectionsPerIP, LimitMaxConnections, LimitTCPConnectionsPerIP, LimitMaxTCPConnections}

// Store write operations (the op label of porthole_store_write_seconds).
const (
	storeAppend = "append" // a visitor message or a bot reply
	storeCreate = "create" // a conversation found or made
)

// outboxScan bounds what one scrape makes the store read for the outbox
// gauges, and outboxCache how long their values are reused: a scrape
// every few seconds from several Prometheus servers costs the store one
// bounded read per outboxCache.
const (
	outboxScan  = 1000
	outboxCache = 5 * time.Second
)

// NewMetrics returns the metrics of a server with the given bots (id to
// provider name), version and store, with the Go runtime's and the
// process's collectors. sockets counts the open sockets per bot at
// scrape time.
func NewMetrics(bots map[string]string, version string, st store.Store, sockets func() map[string]int) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), providers: bots}
	perBot := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"bot"})
	}
	m.visitors = perBot("porthole_visitors_started_total", "New visitors: a socket or chat page without a valid visitor token, given a fresh visitor id.")
	m.conversations = perBot("porthole_conversations_started_total", "Conversations created (each one greeted by the bot once).")
	m.messagesIn = perBot("porthole_messages_in_total", "Visitor messages stored (a repeated client id counts once).")
	m.messagesOut = perBot("porthole_messages_out_total", "Bot messages stored (a retried callback counts once).")
	m.upstreamTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "porthole_upstream_call_duration_seconds", Help: "Time of one call to the bot platform, whatever its outcome.",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60},
	}, []string{"bot", "provider"})
	m.upstreamCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "porthole_upstream_calls_total", Help: "Calls to the bot platform by outcome: ok, 4xx, 429, 5xx, timeout, network.",
	}, []string{"bot", "provider", "outcome"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "porthole_upstream_retries_total", Help: "Calls to the bot platform that retried a message after a failed call.",
	}, []string{"bot", "provider"})
	m.callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "porthole_callbacks_total", Help: "Platform callbacks by the webhook's answer: accepted, duplicate, refused (4xx), error (5xx).",
	}, []string{"bot", "provider", "result"})
	m.storeWrites = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "porthole_store_write_seconds", Help: "Time of a store write the conversation service waits for, until it is durable.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"op"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "porthole_limited_total", Help: "Requests refused by a limit, by the limits setting that refused them.",
	}, []string{"kind"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "porthole_build_info", Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)

	m.reg.MustRegister(m.visitors, m.conversations, m.messagesIn, m.messagesOut, m.upstreamTime,
		m.upstreamCalls, m.retries, m.callbacks, m.storeWrites, m.limited, build,
		&gaugeCollector{socketsDesc, sockets, m.bots()},
		newOutboxCollector(st),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every series a bot can have exists from the start, at 0: a rate()
	// over a counter that appears only at its first increment misses it.
	for bot, prov := range bots {
		for _, v := range []*prometheus.CounterVec{m.visitors, m.conversations, m.messagesIn, m.messagesOut} {
			v.WithLabelValues(bot)
		}
		m.retries.WithLabelValues(bot, prov)
		m.upstreamTime.WithLabelValues(bot, prov)
		for _, o := range outcomes {
			m.upstreamCalls.WithLabelValues(bot, prov, o)
		}
		for _, r := range callbackResults {
			m.callbacks.WithLabelValues(bot, prov, r)
		}
	}
	for _, k := range limitKinds {
		m.limited.WithLabelValues(k)
	}
	m.storeWrites.WithLabelValues(storeAppend)
	m.storeWrites.WithLabelValues(storeCreate)
	return m
}

func (m *Metrics) bots() []string {
	out := make([]string, 0, len(m.providers))
	for b := range m.providers {
		out = append(out, b)
	}
	return out
}

// Handler serves the metrics as Prometheus text (or protobuf, as the
// scraper asks).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Registry is where the metrics are registered, for a caller with more
// to add.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) visitorStarted(bot string) {
	if m != nil {
		m.visitors.WithLabelValues(bot).Inc()
	}
}

func (m *Metrics) conversationStarted(bot string) {
	if m != nil {
		m.conversations.WithLabelValues(bot).Inc()
	}
}

func (m *Metrics) messageIn(bot string) {
	if m != nil && bot != "" {
		m.messagesIn.WithLabelValues(bot).Inc()
	}
}

func (m *Metrics) messagesOutAdd(bot string, n int) {
	if m != nil && n > 0 {
		m.messagesOut.WithLabelValues(bot).Add(float64(n))
	}
}

// storeWrite records the time of one store write that began at start.
func (m *Metrics) storeWrite(op string, start time.Time) {
	if m != nil {
		m.storeWrites.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}

// limit counts one refusal by the limit kind.
func (m *Metrics) limit(kind string) {
	if m != nil {
		m.limited.WithLabelValues(kind).Inc()
	}
}

// upstream records one call to bot's platform: its time, its outcome
// (from err, see Outcome), and whether it retried a message.
func (m *Metrics) upstream(bot string, retry bool, took time.Duration, err error) {
	if m == nil {
		return
	}
	prov := m.providers[bot]
	m.upstreamTime.WithLabelValues(bot, prov).Observe(took.Seconds())
	m.upstreamCalls.WithLabelValues(bot, prov, Outcome(err)).Inc()
	if retry {
		m.retries.WithLabelValues(bot, prov).Inc()
	}
}

// Outcome maps the error of a Provider.Send to its outcome label: the
// HTTP status of a provider.Error, or its reason when it has none (a
// platform that fails under a 200, like ChatAIBot's ok:false), a
// timeout, or a network error.
func Outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	if errors.Is(err, provider.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return OutcomeTimeout
	}
	var e *provider.Error
	if !errors.As(err, &e) {
		return OutcomeNetwork
	}
	switch {
	case e.Status == http.StatusTooManyRequests:
		return Outcome429
	case e.Status == http.StatusRequestTimeout:
		return OutcomeTimeout
	case e.Status >= 500:
		return Outcome5xx
	case e.Status >= 400:
		return Outcome4xx
	}
	switch e.Reason {
	case provider.ReasonRateLimited:
		return Outcome429
	case provider.ReasonRejected, provider.ReasonAuth:
		return Outcome4xx
	}
	if e.Status == 0 {
		return OutcomeNetwork
	}
	return Outcome5xx
}

// callback counts one platform callback to bot by the webhook's status
// and what it stored (note).
func (m *Metrics) callback(bot string, status int, note *hookNote) {
	if m == nil {
		return
	}
	result := CallbackAccepted
	switch {
	case status >= 500:
		result = CallbackError
	case status >= 300:
		result = CallbackRefused
	case note.dups > 0 && note.stored == 0:
		result = CallbackDuplicate
	}
	m.callbacks.WithLabelValues(bot, m.providers[bot], result).Inc()
}

// hookNote is what the Sink stored for one callback request: the webhook
// handler puts one in the request's context (withHookNote), and
// botSink.Deliver adds to it, so that a callback whose every message was
// stored before counts as a duplicate.
type hookNote struct {
	mu           sync.Mutex
	stored, dups int
}

type hookNoteKey struct{}

func withHookNote(ctx context.Context, n *hookNote) context.Context {
	return context.WithValue(ctx, hookNoteKey{}, n)
}

// noteDelivered adds what one Deliver stored to ctx's hookNote, if any.
func noteDelivered(ctx context.Context, stored, dups int) {
	if n, ok := ctx.Value(hookNoteKey{}).(*hookNote); ok {
		n.mu.Lock()
		n.stored += stored
		n.dups += dups
		n.mu.Unlock()
	}
}

var socketsDesc = prometheus.NewDesc("porthole_sockets_open", "Open widget sockets of this process, per bot.", []string{"bot"}, nil)

// gaugeCollector reports a per-bot gauge read at scrape time, every
// configured bot included (0 when it has none).
type gaugeCollector struct {
	desc *prometheus.Desc
	read func() map[string]int
	bots []string
}

func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	if c.read != nil {
		counts = c.read()
	}
	for _, b := range c.bots {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[b]), b)
	}
}

var (
	outboxDepthDesc = prometheus.NewDesc("porthole_outbox_messages", "Visitor messages stored and not yet accepted by the platform (the store's, shared by every process on it; counted up to 1000).", nil, nil)
	outboxAgeDesc   = prometheus.NewDesc("porthole_outbox_oldest_age_seconds", "Age of the oldest message on the outbox; 0 when it is empty.", nil, nil)
)

// outboxCollector reads the outbox gauges from the store at scrape
// time, at most outboxScan messages once per outboxCache: a scrape
// cannot make the store work harder than that, and a store that does
// not answer in time leaves the gauges out of that scrape rather than
// report a wrong 0.
type outboxCollector struct {
	st store.Store

	mu     sync.Mutex
	at     time.Time
	depth  int
	oldest time.Time // zero when the outbox is empty
	ok     bool
}

func newOutboxCollector(st store.Store) *outboxCollector { return &outboxCollector{st: st} }

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepthDesc
	ch <- outboxAgeDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.at) >= outboxCache {
		c.at, c.ok = now, false
		if c.st != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ms, err := c.st.Outbox(ctx, outboxScan)
			cancel()
			if err == nil {
				c.ok, c.depth, c.oldest = true, len(ms), time.Time{}
				for _, m := range ms {
					if !m.At.IsZero() && (c.oldest.IsZero() || m.At.Before(c.oldest)) {
						c.oldest = m.At
					}
				}
			}
		}
	}
	if !c.ok {
		ch <- prometheus.NewInvalidMetric(outboxDepthDesc, errors.New("the store did not list the outbox"))
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxDepthDesc, prometheus.GaugeValue, float64(c.depth))
	age := 0.0
	if !c.oldest.IsZero() {
		age = max(now.Sub(c.oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age)
}

// botProviders maps each configured bot to its provider's name.
func botProviders(cfg *Config) map[string]string {
	m := make(map[string]string, len(cfg.Bots))
	for _, b := range cfg.Bots {
		m[b.ID] = b.Provider
	}
	return m
}

// openSockets counts the open sockets per bot, for porthole_sockets_open:
// one pass over the socket set per scrape.
func (s *Server) openSockets() map[string]int {
	n := map[string]int{}
	s.sockets.Range(func(k, _ any) bool {
		n[k.(*socket).botID]++
		return true
	})
	return n
}
