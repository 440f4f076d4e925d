package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	// The IANA time zones, built in: the chat page shows times in the
	// visitor's zone (?tz=), and the container image (FROM scratch) has
	// no zoneinfo of its own. About 450 KB of the binary.
	_ "time/tzdata"
	"unicode/utf8"

	"github.com/gorilla/sessions"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

// The chat pages (GET and POST /chat/{bot}) let a visitor without
// JavaScript or WebAssembly hold the whole conversation with plain HTML
// forms, through the same service, store and providers as the widget.
//
// At the top level the visitor is known by a gorilla/sessions cookie
// alone. In the loader's panel (embed=1 in a frame), where most browsers
// send no cookies to a page framed by another site, the signed visitor
// token that the loader hands over, and that every form and link then
// carries, names the visitor instead. A token is never taken from a
// top-level link, nor written into the cookie: a link with someone
// else's token must not bind a visitor to that stranger's conversation
// (session fixation). Forms carry a token tied to the visitor against
// cross-site posts, which are refused by their Origin as well.

// Timings of the chat pages.
const (
	// pageRefresh is how often a page waiting for a reply reloads
	// (Service.AwaitingReply says how long).
	pageRefresh = 2 * time.Second
)

const (
	pageCookie  = "porthole_chat"
	maxPageForm = 64 << 10 // bytes of a posted form
)

func newPageSessions(k *Keyring) *sessions.CookieStore {
	st := sessions.NewCookieStore(k.Pairs()...)
	st.MaxAge(int(VisitorTokenMaxAge / time.Second))
	st.Options.Path = "/chat/"
	st.Options.HttpOnly = true
	st.Options.SameSite = http.SameSiteLaxMode
	return st
}

// pageVisitor is who a chat page request is from, and how we know.
type pageVisitor struct {
	id     string
	cookie string // the visitor the session cookie names, if any
	// token is set when id came from a link's or form's visitor token:
	// such a visitor is never written into the cookie.
	token bool
	sess  *sessions.Session
}

// resolveVisitor finds the visitor of a page request: the visitor token
// the link or form carries (token) where one may name the visitor, else
// the session cookie's, else a new visitor. A token counts in the
// loader's panel (see inPanel), where it is the one the loader handed
// over for the widget's conversation, and in a form posted without the
// cookie: a form is only ever posted from one of our own pages (see
// sameOrigin), which carries the visitor it was rendered for. A token in
// a top-level link is ignored, so that following a link cannot put a
// visitor into a stranger's conversation.
func (s *Server) resolveVisitor(r *http.Request, bot *Bot, token string) pageVisitor {
	sess, _ := s.pageSessions.Get(r, pageCookie) // a bad cookie gives a new session
	pv := pageVisitor{sess: sess}
	if v, ok := sess.Values["v:"+bot.Config.ID].(string); ok && validVisitorID(v) {
		pv.cookie = v
	}
	fromToken, ok := s.keys.Visitor(bot.Config.ID, token)
	posted := r.Method == http.MethodPost
	switch {
	case ok && s.inPanel(r, bot, posted):
		pv.id, pv.token = fromToken, true
	case pv.cookie != "":
		pv.id = pv.cookie
	case ok && posted:
		pv.id, pv.token = fromToken, true
	default:
		pv.id = NewVisitorID()
		s.metrics.visitorStarted(bot.Config.ID)
	}
	return pv
}

// inPanel says whether a page request comes from the loader's panel: an
// embedded page (embed=1) that the browser loads in a frame. Fetch
// metadata says so (Sec-Fetch-Dest); a browser too old to send it is
// believed only when the page that framed it (the Referer) is one of the
// bot's sites, or, for a form post, which sameOrigin has already checked,
// when it is not a top-level navigation. A frame by another site is kept
// out by frame-ancestors in any case.
func (s *Server) inPanel(r *http.Request, bot *Bot, posted bool) bool {
	if r.URL.Query().Get("embed") != "1" {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Dest") {
	case "iframe", "frame":
		return true
	case "":
		if posted {
			return true
		}
		o, err := refererOrigin(r.Referer())
		return err == nil && s.originListed(bot, o, r)
	}
	return false
}

// refererOrigin is the origin of a Referer header.
func refererOrigin(ref string) (string, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return parseOrigin(u.Scheme + "://" + u.Host)
}

// remember puts the visitor in the session cookie when it named nobody,
// unless a token named the visitor: the cookie only ever holds a visitor
// it created itself.
func (s *Server) remember(w http.ResponseWriter, r *http.Request, bot string, pv pageVisitor) {
	if pv.cookie != "" || pv.token {
		return
	}
	pv.sess.Values["v:"+bot] = pv.id
	opts := *s.pageSessions.Options
	opts.Secure = s.isHTTPS(r)
	pv.sess.Options = &opts
	if err := pv.sess.Save(r, w); err != nil {
		s.log.Warn("cannot save chat page session", "error", err)
	}
}

// isHTTPS says whether the visitor reached us over HTTPS, directly or
// through a proxy we trust.
func (s *Server) isHTTPS(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(s.config().PublicURL, "https://") {
		return true
	}
	return s.fromTrustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// pageBot is the bot a chat page's path names, or nil after a 404 page.
func (s *Server) pageBot(w http.ResponseWriter, r *http.Request) *Bot {
	bot := s.bot(r.PathValue("bot"))
	if bot == nil {
		s.pageError(w, r, http.StatusNotFound, "No such chat. The link names a bot this server does not have.")
	}
	return bot
}

// chatTexts are a chat page's texts: in lang (the page's choice, checked
// by web.Language), else the bot's locale, else the browser's language.
func chatTexts(r *http.Request, look widget.Look, lang string) web.ChatTexts {
	return web.NewChatTexts(web.PickLanguage(web.Language(lang), look.Locale, r.Header.Get("Accept-Language")), look.Texts)
}

// handleChatPage serves GET /chat/{bot}: the transcript and a composer.
// It never creates a conversation: that waits for the first message, so
// that crawlers and link previews cost the bot platform nothing.
func (s *Server) handleChatPage(w http.ResponseWriter, r *http.Request) {
	bot := s.pageBot(w, r)
	if bot == nil {
		return
	}
	q := r.URL.Query()
	pv := s.resolveVisitor(r, bot, q.Get("v"))
	p, err := s.chatPage(w, r, bot, pv, q)
	s.remember(w, r, bot.Config.ID, pv)
	if err != nil {
		s.log.Error("cannot read conversation for chat page", "bot", bot.Config.ID, "error", err)
		p.Error = p.Texts.Get(widget.TextErrorGeneric)
		p.Render(w, r, http.StatusServiceUnavailable)
		return
	}
	if p.Refreshing {
		w.Header().Set("Refresh", strconv.Itoa(int(pageRefresh/time.Second))+"; url="+p.PollURL())
	}
	p.Render(w, r, http.StatusOK)
}

// handleTranscriptText serves GET /chat/{bot}/transcript.txt: the
// visitor's own conversation as plain text, as a download. The visitor is
// the page's (the session cookie, or in the loader's panel the token its
// links carry, see resolveVisitor), so it never names anyone else's
// conversation; a visitor without one gets 404.
func (s *Server) handleTranscriptText(w http.ResponseWriter, r *http.Request) {
	bot := s.pageBot(w, r)
	if bot == nil {
		return
	}
	q := r.URL.Query()
	pv := s.resolveVisitor(r, bot, q.Get("v"))
	look := bot.Config.Widget.Look()
	texts := chatTexts(r, look, q.Get("lang"))
	c, found, err := s.service.Find(r.Context(), bot.Config.ID, pv.id)
	if err != nil {
		s.log.Error("cannot read conversation for transcript", "bot", bot.Config.ID, "error", err)
		s.pageError(w, r, http.StatusServiceUnavailable, texts.Get(widget.TextErrorGeneric))
		return
	}
	if !found {
		s.pageError(w, r, http.StatusNotFound, "No conversation yet. Send a message first; then you can save the conversation.")
		return
	}
	name := look.Title
	if name == "" {
		name = texts.Get(widget.TextChat)
	}
	you := texts.Get(widget.TextYou)
	b := append([]byte(name), "\n\n"...)
	for after := uint64(0); ; {
		es, err := s.service.Transcript(r.Context(), c.ID, after, 500)
		if err != nil {
			s.log.Error("cannot read conversation for transcript", "conversation", c.ID, "error", err)
			s.pageError(w, r, http.StatusServiceUnavailable, texts.Get(widget.TextErrorGeneric))
			return
		}
		for _, e := range es {
			who := name
			if e.Mine {
				who = you
			}
			b = widget.AppendPlain(b, e.At.UTC().Format(time.RFC3339), who, e.Body.Summary())
			after = e.Seq
		}
		if len(es) < 500 {
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="conversation.txt"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

// chatPage builds the page of visitor pv with the transcript as stored.
func (s *Server) chatPage(w http.ResponseWriter, r *http.Request, bot *Bot, pv pageVisitor, in url.Values) (*web.ChatPage, error) {
	look := bot.Config.Widget.Look()
	lang := web.Language(in.Get("lang"))
	p := &web.ChatPage{
		Bot: bot.Config.ID, Look: look, Embed: in.Get("embed") == "1",
		Texts: chatTexts(r, look, lang),
		Query: url.Values{}, CSRF: s.keys.FormToken(bot.Config.ID, pv.id),
		Form: randomHex(16), Nonce: randomHex(16),
	}
	setPageHeaders(w, s.frameAncestors(bot), p.Nonce)
	if p.Embed {
		p.Query.Set("embed", "1")
		if host, ok := s.hostOrigin(r, bot, in.Get("host")); ok {
			p.Query.Set("host", host)
			p.Host = host
		}
	}
	if lang != "" {
		p.Query.Set("lang", lang)
	}
	if tz := in.Get("tz"); tz != "" && len(tz) < 64 && tz != "Local" {
		if zone, err := time.LoadLocation(tz); err == nil {
			p.Zone = zone
			p.Query.Set("tz", tz)
		}
	}
	token, err := s.keys.MintVisitor(bot.Config.ID, pv.id)
	if err != nil {
		return p, err
	}
	p.Visitor = token
	if p.Embed && pv.cookie != pv.id {
		p.Query.Set("v", token) // the panel's cookie may not come back: links carry the visitor
	}
	refresh := in.Get("refresh") != "off"
	if !refresh {
		p.Query.Set("refresh", "off")
	}
	return p, s.fillTranscript(r, p, bot, pv, refresh)
}

// fillTranscript adds the visitor's conversation, if any, to p.
func (s *Server) fillTranscript(r *http.Request, p *web.ChatPage, bot *Bot, pv pageVisitor, refresh bool) error {
	c, found, err := s.service.Find(r.Context(), bot.Config.ID, pv.id)
	if err != nil || !found {
		return err
	}
	after := uint64(0)
	if c.Last > web.MaxEntries {
		after, p.Earlier = c.Last-web.MaxEntries, true
	}
	es, err := s.service.Transcript(r.Context(), c.ID, after, web.MaxEntries)
	if err != nil {
		return err
	}
	lastUser := -1
	for i, m := range es {
		e := web.ChatEntry{Seq: m.Seq, Mine: m.Mine, At: m.At, Body: m.Body}
		if e.Mine {
			lastUser = i
			e.State, e.Reason = m.State, m.Reason
			e.ShowState = m.State != widget.StateDelivered
		}
		p.Entries = append(p.Entries, e)
	}
	if lastUser >= 0 {
		p.Entries[lastUser].ShowState = true
	}
	p.Waiting = s.service.AwaitingReply(r.Context(), c, es)
	p.Refreshing = p.Waiting && refresh
	if len(es) > 0 && es[len(es)-1].Seq > 0 {
		if err := s.service.MarkRead(r.Context(), c.ID, es[len(es)-1].Seq); err != nil {
			s.log.Warn("cannot record read marker", "conversation", c.ID, "error", err)
		}
	}
	return nil
}

// handleChatPost serves POST /chat/{bot}: a typed message, a button or
// quick-reply click, or a retry; then 303 back to the page.
func (s *Server) handleChatPost(w http.ResponseWriter, r *http.Request) {
	bot := s.pageBot(w, r)
	if bot == nil {
		return
	}
	if !s.sameOrigin(r) {
		s.log.Info("cross-site chat form refused", "bot", bot.Config.ID, "origin", r.Header.Get("Origin"))
		s.pageError(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused. Open the chat page and write there.")
		return
	}
	s.bodyDeadline(w, r)
	r.Body = http.MaxBytesReader(w, r.Body, maxPageForm)
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, http.StatusBadRequest, "The form could not be read. Go back and try again.")
		return
	}
	// The page's query (embed, lang, refresh) is on the action URL.
	q := r.URL.Query()
	pv := s.resolveVisitor(r, bot, r.PostFormValue("v"))
	text := strings.ToValidUTF8(strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n"), "\uFFFD")

	// fail shows the page again with the problem and the visitor's text
	// in the composer: nothing typed is lost. When even the transcript
	// cannot be read, the page shows the composer alone.
	fail := func(status int, msg func(web.ChatTexts) string) {
		p, err := s.chatPage(w, r, bot, pv, q)
		if err != nil {
			s.log.Error("cannot read conversation for chat page", "bot", bot.Config.ID, "error", err)
			status = http.StatusServiceUnavailable
			msg = func(t web.ChatTexts) string { return t.Get(widget.TextErrorGeneric) }
		}
		p.Error, p.Draft, p.Refreshing = msg(p.Texts), text, false
		s.remember(w, r, bot.Config.ID, pv)
		p.Render(w, r, status)
	}
	if !s.keys.CheckFormToken(bot.Config.ID, pv.id, r.PostFormValue("csrf")) {
		fail(http.StatusForbidden, func(t web.ChatTexts) string { return t.Get(web.TextExpired) })
		return
	}
	in, problem := s.pageInbound(r, bot, pv.id, text)
	if problem != "" {
		fail(http.StatusBadRequest, func(t web.ChatTexts) string { return t.Get(problem) })
		return
	}
	if in != nil {
		if ok, _ := s.limits.Allow(r.Context(), pv.id, s.clientIP(r)); !ok {
			s.metrics.limit(LimitMessages)
			fail(http.StatusTooManyRequests, func(t web.ChatTexts) string { return t.Get(web.TextTooFast) })
			return
		}
		lang := web.PickLanguage(q.Get("lang"), bot.Config.Widget.Locale, r.Header.Get("Accept-Language"))
		c, wait, err := s.startConversation(r.Context(), bot, s.clientIP(r), pv.id, provider.Visitor{ID: pv.id, Locale: lang}, nil)
		if wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(max(wait.Round(time.Second), time.Second)/time.Second)))
			fail(http.StatusTooManyRequests, func(t web.ChatTexts) string { return t.Get(web.TextBusy) })
			return
		}
		if err == nil {
			in.Bot = bot.Config.ID
			_, err = s.service.Post(r.Context(), c.ID, *in)
		}
		if err != nil {
			var we *widget.Error
			if errors.As(err, &we) {
				fail(http.StatusBadRequest, func(t web.ChatTexts) string { return t.Error(we.Code) })
				return
			}
			s.log.Error("cannot store message from chat page", "bot", bot.Config.ID, "error", err)
			fail(http.StatusServiceUnavailable, func(t web.ChatTexts) string { return t.Get(widget.TextErrorGeneric) })
			return
		}
	}
	s.remember(w, r, bot.Config.ID, pv)
	p := &web.ChatPage{Bot: bot.Config.ID, Query: pageQuery(q)}
	if q.Get("embed") == "1" && pv.cookie != pv.id {
		token, err := s.keys.MintVisitor(bot.Config.ID, pv.id)
		if err == nil {
			p.Query.Set("v", token)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", p.URL()+"#end")
	w.WriteHeader(http.StatusSeeOther)
}

// pageQuery keeps the parts of a page's query that carry over.
func pageQuery(q url.Values) url.Values {
	out := url.Values{}
	if q.Get("embed") == "1" {
		out.Set("embed", "1")
		if h := q.Get("host"); h != "" {
			out.Set("host", h) // checked again when the page renders
		}
	}
	if l := web.Language(q.Get("lang")); l != "" {
		out.Set("lang", l)
	}
	if q.Get("refresh") == "off" {
		out.Set("refresh", "off")
	}
	return out
}

// pageInbound reads what a chat form asks for. A nil Inbound with no
// problem means there is nothing to do (a retry of a message that is no
// longer failed, a click on a button that is gone). problem is a text key.
func (s *Server) pageInbound(r *http.Request, bot *Bot, visitor, text string) (*Inbound, string) {
	ctx := r.Context()
	form := r.PostFormValue("form")
	if !validVisitorID(form) { // 32 hex digits, as chatPage makes it
		form = randomHex(16) // no form id: no duplicate detection either
	}
	// A message's id is made of the rendering's id and its content, so a
	// form sent twice (a double click, a resubmission) stores it once,
	// while different messages from the same rendering stay apart.
	id := func(kind, content string) string {
		sum := sha256.Sum256([]byte(kind + "\x00" + content))
		return "p-" + form + "-" + hex.EncodeToString(sum[:8])
	}
	conv := func() string {
		c, _, _ := s.service.Find(ctx, bot.Config.ID, visitor)
		return c.ID
	}
	switch {
	case r.PostForm.Has("retry"):
		seq, err := strconv.ParseUint(r.PostFormValue("retry"), 10, 64)
		if err != nil || seq == 0 {
			return nil, ""
		}
		in, ok := s.service.RetryOf(ctx, conv(), seq)
		if !ok {
			return nil, ""
		}
		return &in, ""
	case r.PostForm.Has("pb"):
		ref, ok := web.ParseRef(r.PostFormValue("pb"))
		if !ok {
			return nil, ""
		}
		title, payload, ok := s.service.ClickOf(ctx, conv(), ref)
		if !ok {
			return nil, ""
		}
		return &Inbound{ClientID: id("pb", ref.String()), Text: title, Payload: payload}, ""
	}
	if strings.TrimSpace(text) == "" {
		return nil, web.TextEmpty
	}
	if utf8.RuneCountInString(text) > widget.MaxText {
		return nil, widget.TextErrorTooLarge
	}
	return &Inbound{ClientID: id("text", text), Text: text}, ""
}

// sameOrigin says whether a form post comes from one of our own pages.
// Browsers send Origin with every POST; an older one without it is
// judged by Sec-Fetch-Site when present. The form token is checked too.
func (s *Server) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	switch origin := r.Header.Get("Origin"); origin {
	case "":
	case "null":
		// A page under a no-referrer policy (a privacy setting) sends
		// "null"; the browser's own Sec-Fetch-Site still tells.
		return site == "same-origin"
	default:
		o, err := parseOrigin(origin)
		return err == nil && s.isSelf(o, r)
	}
	switch site {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// hostOrigin checks the origin the loader says embeds the page (the
// host query parameter, its page's location.origin) against the bot's
// origins. The page hands its visitor token to that origin only
// (postMessage's target origin), never to "*": the browser delivers the
// message only when the framing page really is at that origin, so a page
// that frames the chat and claims another origin receives nothing.
func (s *Server) hostOrigin(r *http.Request, bot *Bot, host string) (string, bool) {
	if host == "" {
		return "", false
	}
	o, err := parseOrigin(host)
	if err != nil || !s.originListed(bot, o, r) {
		return "", false
	}
	return o, true
}

// frameAncestors turns a bot's origins into CSP frame-ancestors sources:
// only the sites that may embed the bot may frame its chat page.
func (s *Server) frameAncestors(b *Bot) string {
	var srcs []string
	for _, o := range b.Config.Origins {
		switch o {
		case "self":
			srcs = append(srcs, "'self'")
		case "loopback":
			for _, scheme := range []string{"http", "https"} {
				srcs = append(srcs, scheme+"://localhost:*", scheme+"://*.localhost:*", scheme+"://127.0.0.1:*")
			}
		default:
			srcs = append(srcs, o)
		}
	}
	if len(srcs) == 0 {
		return "'none'"
	}
	return strings.Join(srcs, " ")
}

// setPageHeaders sets what every chat page answers with: no caching (it
// shows a private conversation), no referrer to other sites (its URL may
// carry the visitor token; same-origin keeps the Origin header of its own
// form posts, which no-referrer would turn into "null"), and a CSP that allows the page's own inline style and
// script only, posts to us only, and framing by the bot's sites only.
func setPageHeaders(w http.ResponseWriter, ancestors, nonce string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	csp := "default-src 'none'; img-src * data:; media-src *; base-uri 'none'; form-action 'self'; frame-ancestors " + ancestors
	if nonce != "" {
		csp += "; style-src 'nonce-" + nonce + "'; script-src 'nonce-" + nonce + "'"
	}
	h.Set("Content-Security-Policy", csp)
}

// pageError answers a chat page request that cannot show the chat with a
// short plain page.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	setPageHeaders(w, "'none'", "")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
