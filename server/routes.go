package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/ws", s.handleWS)
	s.mux.HandleFunc("POST /hooks/{provider}/{bot}", s.handleHook)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.HandleFunc("GET /chat/{bot}", s.handleChatPage)
	s.mux.HandleFunc("POST /chat/{bot}", s.handleChatPost)
	s.mux.HandleFunc("GET /chat/{bot}/transcript.txt", s.handleTranscriptText)
	if s.opts.Static != nil {
		s.mux.Handle("GET /static/", s.opts.Static)
	}
	if s.opts.Loader != nil {
		s.mux.Handle("GET /widget.js", s.opts.Loader)
	}
	if s.opts.Styles != nil {
		s.mux.HandleFunc("GET /widget.css", s.handleStyle)
	}
	if s.opts.DemoPage != nil {
		s.mux.HandleFunc("GET /{$}", s.handleDemoPage)
	}
}

// handleDemoPage serves the demo page of the current config's first demo
// bot, and 404 when it has none: a production config answers / with 404
// rather than a page for whatever bot comes first.
func (s *Server) handleDemoPage(w http.ResponseWriter, r *http.Request) {
	for _, b := range s.config().Bots {
		if b.Provider == "demo" {
			s.opts.DemoPage(b.ID).ServeHTTP(w, r)
			return
		}
	}
	http.NotFound(w, r)
}

// ServeHTTP logs each request (method, path, status, time; never the
// query, which may carry secrets on webhook URLs) and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(rec, r)
	level := slog.LevelDebug
	if rec.status >= 500 {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "http", "method", r.Method, "path", r.URL.Path, "status", rec.status, "ms", time.Since(start).Milliseconds())
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets the WebSocket upgrade reach the underlying Hijacker.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// handleHook hands a platform's callback to the provider of the bot it
// names, when that provider takes callbacks.
func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	bot := s.bot(r.PathValue("bot"))
	if bot == nil || bot.Config.Provider != r.PathValue("provider") {
		httpError(w, http.StatusNotFound, widget.CodeBadRequest, "no such bot for this provider")
		return
	}
	hook := s.service.Hook(bot.Config.ID)
	if hook == nil {
		httpError(w, http.StatusNotFound, widget.CodeBadRequest, "this bot's provider takes no callbacks")
		return
	}
	w, r, end := traceHook(w, r, bot.Config.ID, bot.Config.Provider)
	defer end()
	s.bodyDeadline(w, r)
	rec, note := &statusRecorder{ResponseWriter: w, status: http.StatusOK}, &hookNote{}
	hook.ServeHTTP(rec, r.WithContext(withHookNote(r.Context(), note)))
	s.metrics.callback(bot.Config.ID, rec.status, note)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// A well-formed id that names nothing: the store must be asked (a
	// malformed one could be refused without a round trip).
	_, err := s.store.Get(ctx, readyProbe)
	status, body := http.StatusOK, "ready\n"
	switch {
	case draining:
		status, body = http.StatusServiceUnavailable, "draining\n"
	case err != nil && !errors.Is(err, store.ErrNotFound):
		status, body = http.StatusServiceUnavailable, "store unavailable\n"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// readyProbe is the conversation /readyz looks up.
const readyProbe = "00000000000000000000000000000000"

// httpError answers a plain HTTP error as JSON with a protocol error code.
func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
