package main

// The fault suite's rig: the real binary in front of a platform
// emulator on an address the test controls, simulated widgets, and the
// audit every scenario ends with. The scenarios are in faults_test.go.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/widget"
)

const faultSecret = "fault-suite-webhook-secret-0123"

// faultRig is a porthole server process fronting a platform emulator
// that listens on an address of the test's own, so the test can take the
// platform down and bring it back on the same address.
type faultRig struct {
	t    *testing.T
	plat platform
	emu  *chataibottest.Server // the platform, when it is ChatAIBot
	addr string                // the porthole server
	data string
	cfg  string
	p    *proc
	// logs are the logs of the server processes before p.
	logs []string
	// procs, in a multi-instance rig (redisrig_test.go), are all its
	// server processes, p among them, dead or alive: the audit reads
	// every one's log.
	procs []*proc

	emuAddr string
	emuMu   sync.Mutex
	emuSrv  *http.Server // nil while the platform is down
}

// faultConfig is the server config of the fault suite: bolt store, limits
// that a burst does not hit, and (faultUpstream, unless extra sets its
// own upstream) a backoff that retries within seconds. extra is appended
// at the top level, then the platform's bot entry.
const faultConfig = `store: {driver: bolt}
%s
bots:
%s`

// faultUpstream gives calls 5 s. On a loaded machine (the race detector,
// browsers and the other scenarios on two cores) a call can pass half a
// second after the platform took it; the timeout then hands the message
// over again (ChatAIBot has no idempotency key), a repeat the audit does
// not allow. Only TestFaultUpstreamTimeouts times calls out on purpose,
// with its own shorter timeout.
const faultUpstream = "upstream: {timeout: 5s, max_backoff: 1s, retry_for: 5m}\n"

// faultLimits are the fault suite's limits unless extra sets its own.
const faultLimits = "limits: {messages_per_minute: 6000, burst: 200, ip_messages_per_minute: 1000000, connections_per_ip: 10000}\n"

// newFaultRig starts a ChatAIBot emulator and the server. data is the
// server's data directory ("" for a new temporary one).
func newFaultRig(t *testing.T, opts chataibottest.Options, data, extra string) *faultRig {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	if opts.Parallel == 0 {
		opts.Parallel = 64
	}
	emu := chataibottest.New(opts)
	r := newRigOn(t, aiPlatform{emu}, data, extra)
	r.emu, emu.URL = emu, "http://"+r.emuAddr
	return r
}

// newRigOn starts the server in front of plat, which it serves on an
// address of its own.
func newRigOn(t *testing.T, plat platform, data, extra string) *faultRig {
	t.Helper()
	r := &faultRig{t: t, plat: plat, addr: freeAddr(t), data: data}
	if r.data == "" {
		r.data = t.TempDir()
	}
	r.emuAddr = freeAddr(t)
	r.upstreamUp()
	t.Cleanup(func() {
		r.upstreamDown()
		plat.Close()
	})
	plat.setHook("http://" + r.addr)
	r.cfg = filepath.Join(t.TempDir(), "porthole.yaml")
	if !strings.Contains(extra, "limits:") {
		extra = faultLimits + extra
	}
	if !strings.Contains(extra, "upstream:") {
		extra = faultUpstream + extra
	}
	cfg := fmt.Sprintf(faultConfig, extra, plat.bot("http://"+r.emuAddr))
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.p = launch(t, r.addr, r.data, "--config", r.cfg)
	return r
}

// upstreamUp serves the emulator on its address (again).
func (r *faultRig) upstreamUp() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the address can take a moment to be free again
		if ln, err = net.Listen("tcp", r.emuAddr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("platform back on %s: %v", r.emuAddr, err)
	}
	srv := &http.Server{Handler: r.plat.Handler()}
	go srv.Serve(ln)
	r.emuMu.Lock()
	r.emuSrv = srv
	r.emuMu.Unlock()
}

// upstreamDown stops the platform: connections are refused.
func (r *faultRig) upstreamDown() {
	r.emuMu.Lock()
	srv := r.emuSrv
	r.emuSrv = nil
	r.emuMu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart stops the server with SIGINT, waits for its exit and starts it
// again on the same address and data.
func (r *faultRig) restart() {
	r.t.Helper()
	r.p.cmd.Process.Signal(os.Interrupt)
	if err := r.p.cmd.Wait(); err != nil {
		r.t.Fatalf("graceful stop: %v\n%s", err, r.p.log())
	}
	r.relaunch()
}

// relaunch starts the server again on the same address and data, after a
// stop.
func (r *faultRig) relaunch() {
	if r.p != nil {
		r.logs = append(r.logs, r.p.log())
	}
	r.p = launch(r.t, r.addr, r.data, "--config", r.cfg)
}

// droppedRefs are the platform conversations whose replies the server
// accepted and dropped, having no conversation of its own for them: one
// that a killed process started upstream just before it could record it
// (the message in flight is then handed over again after the restart,
// in a new platform conversation, which the visitor sees answered).
func (r *faultRig) droppedRefs() map[string]bool {
	out := map[string]bool{}
	procs := r.procs
	if procs == nil {
		procs = []*proc{r.p}
	}
	logs := append([]string(nil), r.logs...)
	for _, p := range procs {
		logs = append(logs, p.log())
	}
	for _, log := range logs {
		for _, m := range droppedCallback.FindAllStringSubmatch(log, -1) {
			out[m[1]] = true
		}
	}
	return out
}

var droppedCallback = regexp.MustCompile(`callback for an unknown conversation; dropped" bot=\S+ ref=(\S+)`)

// settle waits until the platform has nothing left to post and no stored
// message is waiting for it: every visitor message is with the platform
// and every reply batch has been delivered or given up.
func (r *faultRig) settle(vs []*visitor, within time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if err := r.plat.idle(ctx); err != nil {
			r.t.Fatalf("the platform still has callbacks to post after %s", within)
		}
		up := r.plat.accepted()
		missing := ""
		for _, v := range vs {
			for _, text := range v.ackedTexts() {
				if up[text] == 0 {
					missing = text
				}
			}
		}
		if missing == "" {
			// Once more: a reply produced while we looked is posted too.
			if err := r.plat.idle(ctx); err == nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("acknowledged message %q never reached the platform within %s", missing, within)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// audit checks the promise for every visitor. mayRepeat names visitor
// messages the platform may have received twice (a crash between the
// platform's 2xx and our record of it); every other message must reach
// it exactly once.
func (r *faultRig) audit(vs []*visitor, mayRepeat func(text string) bool) {
	t := r.t
	t.Helper()
	stored := map[string]int{}    // user message text -> times stored
	botSaid := map[string]int{}   // bot message text -> times stored
	botIn := map[string]int{}     // conversation + "\x00" + bot message text -> times stored
	storedIDs := map[string]int{} // client id -> times stored
	convOf := map[string]string{} // user message text -> conversation, for the failure messages
	transcripts := map[string][]*widget.Msg{}
	for _, v := range vs {
		w, msgs := replayBot(t, r.p, "shop", v.token, 0)
		transcripts[w.Conversation] = msgs
		for i, m := range msgs {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s: transcript seq %d at position %d: a hole or a repeat", v.name, m.Seq, i+1)
			}
			switch m.From {
			case "user":
				stored[m.Body.Text]++
				storedIDs[m.ClientID]++
				convOf[m.Body.Text] = fmt.Sprintf("conversation %s seq %d", w.Conversation, m.Seq)
				if seq, ok := v.ackSeq(m.ClientID); ok && seq != m.Seq {
					t.Fatalf("%s: %s acknowledged as seq %d, stored as %d", v.name, m.ClientID, seq, m.Seq)
				}
			case "bot":
				botSaid[m.Body.Text]++
				botIn[w.Conversation+"\x00"+m.Body.Text]++
			}
		}
		if uint64(len(msgs)) != w.Last {
			t.Fatalf("%s: replayed %d messages, last seq %d", v.name, len(msgs), w.Last)
		}
		// What the widget received, live and after its reconnects, is the
		// transcript: every seq once, in order, nothing else.
		v.catchUp(r)
		got := v.received()
		if len(got) != len(msgs) {
			t.Fatalf("%s received %d messages, the transcript has %d", v.name, len(got), len(msgs))
		}
		for i, m := range msgs {
			if got[i].ID != m.ID {
				t.Fatalf("%s: seq %d received as message %s, stored as %s", v.name, m.Seq, got[i].ID, m.ID)
			}
		}
		for _, id := range v.ackedIDs() {
			if storedIDs[id] != 1 {
				t.Fatalf("%s: acknowledged message %s stored %d times", v.name, id, storedIDs[id])
			}
		}
	}
	for id, n := range storedIDs {
		if n != 1 {
			t.Fatalf("client message %s stored %d times", id, n)
		}
	}
	up := r.plat.accepted()
	for text, n := range stored {
		if n != 1 {
			t.Fatalf("visitor message %q stored %d times", text, n)
		}
		if up[text] != 1 && !(up[text] == 2 && mayRepeat != nil && mayRepeat(text)) {
			t.Fatalf("visitor message %q (%s) reached the platform %d times, want once", text, convOf[text], up[text])
		}
	}
	for text := range up {
		if stored[text] == 0 {
			t.Fatalf("the platform got %q, which no transcript holds", text)
		}
	}
	// Only a kill (mayRepeat) may leave a platform conversation that the
	// server never recorded, one per message it hands over again.
	dropped := map[string]bool{}
	if mayRepeat != nil {
		dropped = r.droppedRefs()
		repeated := 0
		for _, n := range up {
			if n == 2 {
				repeated++
			}
		}
		if len(dropped) > repeated {
			t.Fatalf("replies of %d unknown platform conversations dropped, with %d messages handed over twice", len(dropped), repeated)
		}
	} else if d := r.droppedRefs(); len(d) > 0 {
		t.Fatalf("replies of platform conversations the server does not know were dropped: %v", d)
	}
	replies := r.plat.replies(t, dropped)
	numbered := map[string][]reply{} // by conversation
	accepted := map[string]int{}     // unnumbered reply text -> callbacks accepted
	for _, rp := range replies {
		if rp.conv != "" {
			numbered[rp.conv] = append(numbered[rp.conv], rp)
		} else {
			accepted[rp.text]++
		}
	}
	// Each accepted callback shows once. Two with the same text are the
	// platform answering a message that reached it twice (the one repeat a
	// SIGKILL may cause, allowed above): each answer is its own.
	for text, n := range accepted {
		if botSaid[text] != n {
			if ai, ok := r.plat.(aiPlatform); ok {
				for _, a := range ai.Callbacks() {
					if strings.Contains(string(a.Body), text) {
						t.Logf("callback %d: %s", a.Status, a.Body)
					}
				}
			}
			t.Fatalf("accepted bot reply %q is in the transcripts %d times, the platform sent it %d times", text, botSaid[text], n)
		}
	}
	// Where the platform numbers its messages and names our conversation,
	// the transcript's bot messages are exactly the accepted ones in the
	// platform's order, however the callbacks arrived.
	for conv, rs := range numbered {
		sort.Slice(rs, func(i, j int) bool { return rs[i].order < rs[j].order })
		var got []string
		for _, m := range transcripts[conv] {
			if m.From == "bot" {
				got = append(got, m.Body.Text)
			}
		}
		for i, rp := range rs {
			if i >= len(got) || got[i] != rp.text {
				t.Fatalf("conversation %s: bot messages stored as %q, the platform numbered them %q", conv, got, texts(rs))
			}
		}
		if len(got) != len(rs) {
			t.Fatalf("conversation %s: %d bot messages stored, %d accepted", conv, len(got), len(rs))
		}
	}
	if len(replies) != sumCounts(botSaid) {
		t.Fatalf("%d bot messages stored, %d accepted from the platform", sumCounts(botSaid), len(replies))
	}
	t.Logf("audit: %d visitors, %d visitor messages stored and with the platform, %d bot replies from the platform shown once",
		len(vs), len(stored), len(replies))
}

func texts(rs []reply) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.text)
	}
	return out
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// failedSince connects with v's token, as v's next page would, and
// counts the messages the server says failed among those v holds: a
// reconnecting widget is told each one in a status frame right after
// its welcome. A second hello's welcome marks the end of them.
func (r *faultRig) failedSince(v *visitor) int {
	r.t.Helper()
	v.mu.Lock()
	hello := &widget.Hello{Bot: "shop", Visitor: v.token, After: v.last}
	v.mu.Unlock()
	c, _, err := dialBot(r.t, r.p, "shop", "")
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.c.CloseNow()
	c.send(hello)
	c.until("the welcome", func(f widget.Frame) bool { return f.Type() == widget.TypeWelcome })
	c.send(hello)
	failed := 0
	c.until("the second welcome", func(f widget.Frame) bool {
		if s, ok := f.(*widget.Status); ok && s.State == widget.StateFailed {
			failed++
		}
		return f.Type() == widget.TypeWelcome
	})
	return failed
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
