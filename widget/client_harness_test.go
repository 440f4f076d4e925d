package widget

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// A fake porthole server and browser tabs around Clients, following the
// real server's rules: persist, ack the sender, fan msg out to every
// socket of the conversation, dedupe by client id, replay after hello.
// A hello creates nothing: the conversation starts with the first start,
// send or postback; session and login frames before it are held and
// acknowledged once it starts.

type fakeClock struct{ t Instant }

func newClock() *fakeClock {
	return &fakeClock{t: Instant(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC).UnixMilli())}
}

func (c *fakeClock) Now() Instant   { return c.t }
func (c *fakeClock) Advance(d Span) { c.t = c.t.Add(d) }

// seqRandom returns a deterministic Random.
func seqRandom(seed uint64) func() uint64 { return newSplitMix(seed) }

type fakeMsg struct {
	msg    Msg
	state  string // "", StateDelivered, StateFailed
	reason string
}

type fakeServer struct {
	t     *testing.T
	clock *fakeClock
	conv  string
	token string
	look  Look
	// textsDown fails every fetch of the built-in texts.
	textsDown bool
	msgs      []*fakeMsg
	byClient  map[string]*fakeMsg
	conns     []*fakeConn
	sessions  []string
	reads     []uint64
	received  []Frame
	logins    []string // users logged in; "" for a logout
	// started says the conversation exists; starts counts the start
	// frames that created or found it.
	started bool
	starts  int
	// startLimit, when set, refuses a start with rate_limited and the
	// returned retry_ms when it is above 0.
	startLimit func() int64
	// ignoreStart drops start frames unanswered.
	ignoreStart bool
	// greeting, when set, is the bot's first message in a conversation.
	greeting string
	// limit, when set, refuses a client frame with rate_limited and the
	// returned retry_ms when it is above 0.
	limit func(id string) int64
	// ackFirst writes the ack before the echo of the visitor's message
	// (both orders happen on the real server).
	ackFirst bool
	// autoDeliver sends status delivered right after the ack.
	autoDeliver bool
}

type fakeConn struct {
	srv      *fakeServer
	open     bool
	welcomed bool
	watching bool    // subscribed to the conversation
	held     []Frame // session and login frames before the start
	inbox    [][]byte
	drop     map[uint64]bool // msgs this socket never gets (a gap)
}

func newServer(t *testing.T, clock *fakeClock) *fakeServer {
	return &fakeServer{t: t, clock: clock, conv: "conv-1", token: "tok-1", byClient: map[string]*fakeMsg{},
		look: Look{Title: "Acme", BrandColor: "#007171"}}
}

func (s *fakeServer) at() string {
	return time.UnixMilli(int64(s.clock.Now())).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func (s *fakeServer) push(c *fakeConn, f Frame) {
	if c.open {
		c.inbox = append(c.inbox, Encode(f))
	}
}

func (s *fakeServer) fanout(f Frame) {
	for _, c := range s.conns {
		if c.open && c.watching {
			if m, ok := f.(*Msg); ok && c.drop[m.Seq] {
				continue
			}
			s.push(c, f)
		}
	}
}

func (s *fakeServer) append(from, clientID string, body Body) *fakeMsg {
	s.started = true // a message means a conversation
	m := &fakeMsg{msg: Msg{Seq: uint64(len(s.msgs) + 1), ID: "m" + strconv.Itoa(len(s.msgs)+1), ClientID: clientID, From: from, At: s.at(), Body: body}}
	s.msgs = append(s.msgs, m)
	if clientID != "" {
		s.byClient[clientID] = m
	}
	return m
}

// say stores a bot message and fans it out.
func (s *fakeServer) say(text string, qr ...QuickReply) *fakeMsg {
	m := s.append("bot", "", Body{Kind: KindText, Text: text, QuickReplies: qr})
	s.fanout(&m.msg)
	return m
}

func (s *fakeServer) status(clientID, state, reason string) {
	m := s.byClient[clientID]
	m.state, m.reason = state, reason
	s.fanout(&Status{ID: clientID, State: state, Error: reason})
}

func (s *fakeServer) typing(on bool) { s.fanout(&Typing{On: on}) }

// restart closes every socket with 1012, as a draining server does.
func (s *fakeServer) closeAll() {
	for _, c := range s.conns {
		c.open = false
	}
	s.conns = nil
}

func (s *fakeServer) receive(c *fakeConn, data []byte) {
	f, err := Decode(data)
	if err != nil {
		s.t.Fatalf("client sent an invalid frame %s: %v", data, err)
	}
	s.received = append(s.received, f)
	switch f := f.(type) {
	case *Hello:
		if f.Bot != "acme" {
			s.t.Fatalf("hello for bot %q", f.Bot)
		}
		c.welcomed = true
		c.watching = s.started
		s.welcome(c, f.After)
	case *Start:
		if c.watching || s.ignoreStart {
			return // a no-op on a socket with a conversation
		}
		s.start(c, f.ID)
	case *Send:
		if c.watching || s.start(c, f.ID) {
			s.post(c, f.ID, Text(f.Text))
		}
	case *Postback:
		if c.watching || s.start(c, f.ID) {
			s.post(c, f.ID, Text(f.Title))
		}
	case *Login:
		if f.User == "" { // logout: a fresh visitor, as the real server makes
			s.logout(c, f.ID)
			return
		}
		if c.watching || f.Signature != strings.Repeat("a", 64) { // a forged one is refused at once
			s.setting(c, f)
		} else {
			c.held = append(c.held, f)
		}
	case *Session:
		if c.watching {
			s.setting(c, f)
		} else {
			c.held = append(c.held, f)
		}
	case *Read:
		s.reads = append(s.reads, f.Seq)
	}
}

// logout makes the socket's browser a fresh visitor: a new token, a new
// conversation not yet started; the socket gets a welcome without one,
// then the ack.
func (s *fakeServer) logout(c *fakeConn, id string) {
	s.logins = append(s.logins, "")
	s.token += "'"
	s.conv += "'"
	s.msgs, s.byClient, s.started = nil, map[string]*fakeMsg{}, false
	c.watching = false
	s.welcome(c, 0)
	s.push(c, &Ack{ID: id})
}

// welcome answers a hello or a start: the conversation, if any, then
// the replay after after.
func (s *fakeServer) welcome(c *fakeConn, after uint64) {
	last := uint64(len(s.msgs))
	conv := ""
	if c.watching {
		conv = s.conv
	}
	s.push(c, &Welcome{Visitor: s.token, Conversation: conv, Last: last, Widget: s.look})
	if after > last {
		after = 0
	}
	for _, m := range s.msgs[after:] {
		if c.drop[m.msg.Seq] {
			continue
		}
		s.push(c, &m.msg)
		if m.state == StateFailed {
			s.push(c, &Status{ID: m.msg.ClientID, State: StateFailed, Error: m.reason})
		}
	}
}

// start creates the conversation or finds it, applies the held settings,
// welcomes the socket again and acknowledges them; a refused start
// answers rate_limited for id and reports false.
func (s *fakeServer) start(c *fakeConn, id string) bool {
	if !s.started && s.startLimit != nil {
		if ms := s.startLimit(); ms > 0 {
			s.push(c, &ErrorFrame{Code: CodeRateLimited, Message: "too many new conversations", ID: id, RetryMS: ms})
			return false
		}
	}
	if !s.started && s.greeting != "" {
		s.append("bot", "", Text(s.greeting))
	}
	s.started, c.watching = true, true
	s.starts++
	held := c.held
	c.held = nil
	var replies []Frame
	for _, f := range held {
		replies = append(replies, s.apply(f))
	}
	s.welcome(c, 0)
	for _, f := range replies {
		s.push(c, f)
	}
	return true
}

// setting applies a session or login frame and answers it.
func (s *fakeServer) setting(c *fakeConn, f Frame) {
	if sf, ok := f.(*Session); ok && s.limited(c, sf.ID) {
		return
	}
	s.push(c, s.apply(f))
}

func (s *fakeServer) apply(f Frame) Frame {
	switch f := f.(type) {
	case *Session:
		s.sessions = append(s.sessions, string(f.Data))
		return &Ack{ID: f.ID}
	case *Login:
		if f.User != "" && f.Signature != strings.Repeat("a", 64) { // the fake's only valid signature
			return &ErrorFrame{Code: CodeUnauthorized, Message: "bad signature", ID: f.ID}
		}
		s.logins = append(s.logins, f.User)
		return &Ack{ID: f.ID}
	}
	s.t.Fatalf("apply %s", f.Type())
	return nil
}

func (s *fakeServer) limited(c *fakeConn, id string) bool {
	if s.limit == nil {
		return false
	}
	if ms := s.limit(id); ms > 0 {
		s.push(c, &ErrorFrame{Code: CodeRateLimited, Message: "too many messages; wait a moment", ID: id, RetryMS: ms})
		return true
	}
	return false
}

func (s *fakeServer) post(c *fakeConn, id string, body Body) {
	if s.limited(c, id) {
		return
	}
	if m := s.byClient[id]; m != nil {
		if m.state == StateFailed {
			m.state = "" // retried
		}
		s.push(c, &Ack{ID: id, Seq: m.msg.Seq})
		if m.state == StateDelivered {
			s.push(c, &Status{ID: id, State: StateDelivered})
		}
		return
	}
	m := s.append("user", id, body)
	if s.ackFirst {
		s.push(c, &Ack{ID: id, Seq: m.msg.Seq})
		s.fanout(&m.msg)
	} else {
		s.fanout(&m.msg)
		s.push(c, &Ack{ID: id, Seq: m.msg.Seq})
	}
	if s.autoDeliver {
		m.state = StateDelivered
		s.fanout(&Status{ID: id, State: StateDelivered})
	}
}

// count returns how many stored messages carry client id.
func (s *fakeServer) count(clientID string) int {
	n := 0
	for _, m := range s.msgs {
		if m.msg.ClientID == clientID {
			n++
		}
	}
	return n
}

// tab is one browser tab: a Client, its socket and what it was told.
type tab struct {
	t       *testing.T
	name    string
	c       *Client
	srv     *fakeServer
	clock   *fakeClock
	conn    *fakeConn
	dialing bool
	hungUp  bool
	wake    Span
	news    []*Entry
	notices []*Notice
	changes Change
	fetched []string // languages whose texts the client asked for
}

func newTab(t *testing.T, name string, srv *fakeServer, store Storage, seed uint64) *tab {
	tb := &tab{t: t, name: name, srv: srv, clock: srv.clock}
	tb.c = NewClient(ClientOptions{Bot: "acme", Storage: store, Locale: "en-GB", TZ: "Europe/Brussels",
		Now: srv.clock.Now, Random: seqRandom(seed)})
	return tb
}

func (tb *tab) apply(u Update) Update {
	tb.t.Helper()
	tb.wake = u.Wake
	tb.news = append(tb.news, u.New...)
	tb.changes |= u.Change
	if u.Notice != nil {
		tb.notices = append(tb.notices, u.Notice)
	}
	for _, f := range u.Send {
		if tb.conn == nil || !tb.conn.open {
			tb.t.Fatalf("%s: %s frame without an open socket", tb.name, f.Type())
		}
		tb.srv.receive(tb.conn, Encode(f))
	}
	if u.Hangup {
		tb.hungUp = true
	}
	if u.Dial {
		if tb.conn != nil && tb.conn.open {
			tb.t.Fatalf("%s: dial with a socket open", tb.name)
		}
		tb.dialing = true
	}
	if u.Texts != "" {
		// The texts asset, as the server serves it, unless it is down.
		tb.fetched = append(tb.fetched, u.Texts)
		var data []byte
		if !tb.srv.textsDown {
			data = BuiltinJSON(u.Texts)
		}
		tb.apply(tb.c.TextsLoaded(u.Texts, data))
	}
	return u
}

// connect completes a pending dial and runs the conversation until quiet.
func (tb *tab) connect() {
	tb.t.Helper()
	if !tb.dialing {
		tb.t.Fatalf("%s: connect without a dial", tb.name)
	}
	tb.dialing = false
	tb.conn = &fakeConn{srv: tb.srv, open: true, drop: map[uint64]bool{}}
	tb.srv.conns = append(tb.srv.conns, tb.conn)
	tb.apply(tb.c.Opened(Page{URL: "https://www.acme.com/", Title: "Acme"}))
	tb.pump()
}

// pump delivers what the server wrote to this tab until nothing is left.
func (tb *tab) pump() {
	tb.t.Helper()
	for tb.conn != nil && len(tb.conn.inbox) > 0 {
		data := tb.conn.inbox[0]
		tb.conn.inbox = tb.conn.inbox[1:]
		tb.apply(tb.c.Receive(data))
	}
}

// lose closes the socket from the server side with code.
func (tb *tab) lose(code int) Update {
	tb.t.Helper()
	if tb.conn != nil {
		tb.conn.open = false
	}
	tb.conn = nil
	return tb.apply(tb.c.Closed(code))
}

// sleep advances the clock by the pending wake-up and ticks.
func (tb *tab) sleep() Update {
	tb.t.Helper()
	if tb.wake == 0 {
		tb.t.Fatalf("%s: no wake-up scheduled", tb.name)
	}
	tb.clock.Advance(tb.wake)
	return tb.apply(tb.c.Tick())
}

func (tb *tab) send(text string) *Entry {
	tb.t.Helper()
	e, u := tb.c.SendText(text)
	tb.apply(u)
	tb.pump()
	return e
}

// texts returns the transcript as "from:text" strings.
func (tb *tab) texts() []string {
	var out []string
	for _, e := range tb.c.Entries() {
		out = append(out, e.From+":"+e.Body.Summary())
	}
	return out
}

func (tb *tab) mustTexts(want ...string) {
	tb.t.Helper()
	got := tb.texts()
	if len(got) != len(want) {
		tb.t.Fatalf("%s transcript:\n got %q\nwant %q", tb.name, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			tb.t.Fatalf("%s transcript:\n got %q\nwant %q", tb.name, got, want)
		}
	}
	// Seqs strictly increase among stored entries.
	var last uint64
	for _, e := range tb.c.Entries() {
		if e.Seq == 0 {
			continue
		}
		if e.Seq <= last {
			tb.t.Fatalf("%s: seq %d after %d", tb.name, e.Seq, last)
		}
		last = e.Seq
	}
}

// sentFrames returns the frames of type typ the server received.
func (s *fakeServer) sentFrames(typ string) []Frame {
	var out []Frame
	for _, f := range s.received {
		if f.Type() == typ {
			out = append(out, f)
		}
	}
	return out
}

// online starts a tab and connects it.
func (tb *tab) online() *tab {
	tb.t.Helper()
	tb.apply(tb.c.Start())
	tb.connect()
	if !tb.c.Online() {
		tb.t.Fatalf("%s: not online after connect", tb.name)
	}
	return tb
}

// redialIn returns how long until the scheduled dial.
func (tb *tab) redialIn() Span {
	if tb.c.Conn() != ConnWaiting {
		tb.t.Fatalf("%s: no dial scheduled (conn %d)", tb.name, tb.c.Conn())
	}
	return tb.c.redialAt.Sub(tb.clock.Now())
}

// sleepUntilDial ticks through wake-ups until the Client dials.
func (tb *tab) sleepUntilDial() {
	tb.t.Helper()
	for i := 0; i < 10; i++ {
		if tb.sleep().Dial {
			return
		}
	}
	tb.t.Fatalf("%s: no dial", tb.name)
}
