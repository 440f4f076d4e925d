package server

import (
	"net/http"
	"strings"

	"github.com/porthole-chat/porthole/widget"
)

// handleStyle serves GET /widget.css?bot=ID&lang=L&page=P&color=C, the
// eager stylesheet the loader links: the frame's CSS and the bot's look,
// with the texts in the visitor's language (lang: the page's
// data-language; page: the page's or the browser's language) and the
// page's data-brand-color. It is public like widget.js: the look is what
// every visitor of the bot sees anyway, so it checks no origin.
func (s *Server) handleStyle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bot := s.bot(q.Get("bot"))
	if bot == nil {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("/* unknown bot; data-bot must name a configured bot */\n"))
		return
	}
	look := bot.Config.Widget.FrameLook(clipParam(q.Get("lang")), clipParam(q.Get("page")), q.Get("color"))
	s.opts.Styles.Serve(w, r, look)
}

// warmStyles compresses each bot's eager stylesheet in each built-in
// language in the background, as the loader asks for it on a page
// without data-language or data-brand-color. Reload calls it again: a
// changed look is a new body, cached by its hash, so the old look's
// bodies are never served for it.
func (s *Server) warmStyles() {
	if s.opts.Styles == nil {
		return
	}
	bots := s.now().bots
	go func() {
		for _, b := range bots {
			for _, lang := range widget.Languages {
				s.opts.Styles.Warm(b.Config.Widget.FrameLook("", lang, ""))
			}
		}
	}()
}

// clipParam bounds a language parameter: a language tag is short, and
// only its first subtag is read.
func clipParam(s string) string {
	if len(s) > 35 {
		s = s[:35]
	}
	return strings.TrimSpace(s)
}
