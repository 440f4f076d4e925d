package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// loadResult collects the round trips of one load phase.
type loadResult struct {
	mu      sync.Mutex
	sent    map[string]time.Time // marker -> when it was sent
	rtts    []time.Duration
	replies map[string]int
	lost    int
	dup     int
	errors  int
	// start is when the first measured message went; last when the last
	// reply came: throughput is what was answered in between.
	start, last time.Time
	// visitorsOn and answeredOn count, per server, the widgets connected
	// to it and the measured replies they got (loadProxy only).
	visitorsOn, answeredOn []int
}

func newResult() *loadResult {
	return &loadResult{sent: map[string]time.Time{}, replies: map[string]int{}}
}

func (r *loadResult) send(marker string) {
	r.mu.Lock()
	r.sent[marker] = time.Now()
	r.mu.Unlock()
}

// reply records a bot reply that names marker. It reports whether this
// was the first reply to a measured message.
func (r *loadResult) reply(marker string) bool {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies[marker]++
	if t, ok := r.sent[marker]; ok && r.replies[marker] == 1 {
		r.rtts = append(r.rtts, now.Sub(t))
		r.last = now
		return true
	}
	return false
}

// finish counts what was never answered, or answered twice.
func (r *loadResult) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for m := range r.sent {
		switch n := r.replies[m]; {
		case n == 0:
			r.lost++
		case n > 1:
			r.dup += n - 1
		}
	}
	slices.Sort(r.rtts)
}

func (r *loadResult) pct(p float64) time.Duration {
	if len(r.rtts) == 0 {
		return 0
	}
	i := int(float64(len(r.rtts)-1) * p / 100)
	return r.rtts[i]
}

func (r *loadResult) throughput() float64 {
	if len(r.rtts) == 0 {
		return 0
	}
	return float64(len(r.rtts)) / r.last.Sub(r.start).Seconds()
}

// markerOf finds the marker in the emulator's echo "You said: <marker>
// (message n)".
func markerOf(text string) string {
	rest, ok := strings.CutPrefix(text, "You said: ")
	if !ok {
		return ""
	}
	m, _, _ := strings.Cut(rest, " ")
	return m
}

// schedule calls fire(visitor, n) at rate per second, spread over the
// visitors in turn, for d; it keeps to the planned times (an open loop),
// so a slow server shows as latency, not as a lower send rate.
func schedule(ctx context.Context, visitors int, rate float64, d time.Duration, fire func(v, n int)) time.Time {
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	total := int(d.Seconds() * rate)
	for n := range total {
		at := start.Add(time.Duration(n) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
				return start
			case <-time.After(wait):
			}
		}
		fire(n%visitors, n)
	}
	return start
}

// loadProxy runs the load through widget sockets on the servers at
// bases, visitor i on server i mod len(bases). beforeLoad runs after the
// warm-up, just before the measured load.
func loadProxy(ctx context.Context, bases []string, visitors int, rate float64, d time.Duration, beforeLoad func()) (*loadResult, error) {
	res := newResult()
	res.visitorsOn, res.answeredOn = make([]int, len(bases)), make([]int, len(bases))
	conns := make([]*websocket.Conn, visitors)
	var acks atomic.Int64
	for i := range conns {
		on := i % len(bases)
		c, err := dialWidget(ctx, bases[on])
		if err != nil {
			return nil, err
		}
		res.visitorsOn[on]++
		defer c.CloseNow()
		conns[i] = c
		go func() {
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				f, err := widget.Decode(data)
				if err != nil {
					continue
				}
				switch f := f.(type) {
				case *widget.Msg:
					if f.From == "bot" {
						if m := markerOf(f.Body.Text); m != "" && res.reply(m) {
							res.mu.Lock()
							res.answeredOn[on]++
							res.mu.Unlock()
						}
						// An open widget tells the server what the
						// visitor has seen.
						c.Write(ctx, websocket.MessageText, widget.Encode(&widget.Read{Seq: f.Seq}))
					}
				case *widget.Ack:
					acks.Add(1)
				case *widget.ErrorFrame:
					res.mu.Lock()
					res.errors++
					res.mu.Unlock()
				}
			}
		}()
	}
	// One warm-up message each: ChatAIBot starts its conversation on the
	// first one.
	for i, c := range conns {
		c.Write(ctx, websocket.MessageText, widget.Encode(&widget.Send{ID: fmt.Sprintf("w%d", i), Text: fmt.Sprintf("warm-%d", i)}))
	}
	time.Sleep(time.Second)
	beforeLoad()
	res.start = schedule(ctx, visitors, rate, d, func(v, n int) {
		marker := "m" + strconv.Itoa(n)
		res.send(marker)
		err := conns[v].Write(ctx, websocket.MessageText, widget.Encode(&widget.Send{ID: marker, Text: marker}))
		if err != nil {
			res.mu.Lock()
			res.errors++
			res.mu.Unlock()
		}
	})
	settle(res, 10*time.Second)
	res.finish()
	return res, nil
}

// settle waits until every sent message is answered. A server behind on
// its work is still answering: it waits as long as replies keep coming
// (up to two minutes), so that only what never comes counts as lost.
func settle(res *loadResult, quiet time.Duration) {
	deadline := time.Now().Add(2 * time.Minute)
	last, lastChange := -1, time.Now()
	for time.Now().Before(deadline) {
		res.mu.Lock()
		got, want := len(res.rtts), len(res.sent)
		res.mu.Unlock()
		if got >= want {
			time.Sleep(200 * time.Millisecond) // late duplicates
			return
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > quiet {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchSink takes the adapter's replies in the baseline: it records them
// and keeps the provider state in memory.
type benchSink struct {
	res   *loadResult
	mu    sync.Mutex
	attrs map[string]string
	links map[string]string
}

func (s *benchSink) Deliver(_ context.Context, _, _ string, bodies ...widget.Body) error {
	for _, b := range bodies {
		if m := markerOf(b.Text); m != "" {
			s.res.reply(m)
		}
	}
	return nil
}

func (s *benchSink) Typing(string, bool) {}

func (s *benchSink) Attr(_ context.Context, conv, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attrs[conv+"/"+key], nil
}

func (s *benchSink) SetAttr(_ context.Context, conv, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attrs[conv+"/"+key] = value
	return nil
}

func (s *benchSink) CompareAndSetAttr(_ context.Context, conv, key, old, value string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attrs[conv+"/"+key] != old {
		return false, nil
	}
	s.attrs[conv+"/"+key] = value
	return true, nil
}

func (s *benchSink) Link(_ context.Context, ref, conv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links[ref] = conv
	return nil
}

func (s *benchSink) Resolve(_ context.Context, ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.links[ref]; ok {
		return c, nil
	}
	return "", errors.New("unknown conversation")
}

// loadDirect runs the load against an emulator of its own through the
// ChatAIBot adapter, with its webhook served here: the platform's round
// trip without the proxy's sockets, store and service.
func loadDirect(ctx context.Context, visitors int, rate float64, d, think time.Duration) (*loadResult, error) {
	res := newResult()
	emu, emuURL, err := startEmulator(think)
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	const secret = "porthole-bench-webhook-secret"
	sink := &benchSink{res: res, attrs: map[string]string{}, links: map[string]string{}}
	a, err := chataibot.New(chataibot.Config{BaseURL: emuURL, Token: chataibottest.DefaultToken, BotKey: chataibottest.DefaultBotKey, WebhookSecret: secret},
		"bench", sink, &provider.Upstream{}, slog.New(slog.DiscardHandler), sink)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hook := &http.Server{Handler: http.HandlerFunc(a.ServeWebhook)}
	go hook.Serve(ln)
	defer hook.Close()
	emu.SetCallback("http://"+ln.Addr().String()+"/hooks/chataibot/bench", secret)

	conv := func(v int) string { return fmt.Sprintf("%032x", v+1) }
	msg := func(v int, kind provider.Kind, id, text string) provider.Message {
		return provider.Message{Bot: "bench", Conversation: conv(v), ClientID: id, Kind: kind, Text: text,
			Visitor: provider.Visitor{ID: fmt.Sprintf("%032x", v+1)}}
	}
	// Conversations start as the proxy's do: a start, then a first message.
	var wg sync.WaitGroup
	for v := range visitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Send(ctx, msg(v, provider.Start, "", ""))
			a.Send(ctx, msg(v, provider.Text, fmt.Sprintf("w%d", v), fmt.Sprintf("warm-%d", v)))
		}()
	}
	wg.Wait()
	time.Sleep(time.Second)
	// Each visitor's messages go in order, one at a time, as the
	// service's per-conversation queue sends them.
	queues := make([]chan provider.Message, visitors)
	for v := range queues {
		queues[v] = make(chan provider.Message, 1024)
		go func() {
			for m := range queues[v] {
				if err := a.Send(ctx, m); err != nil {
					res.mu.Lock()
					res.errors++
					res.mu.Unlock()
				}
			}
		}()
	}
	res.start = schedule(ctx, visitors, rate, d, func(v, n int) {
		marker := "m" + strconv.Itoa(n)
		res.send(marker)
		queues[v] <- msg(v, provider.Text, marker, marker)
	})
	for _, q := range queues {
		close(q)
	}
	settle(res, 10*time.Second)
	res.finish()
	return res, nil
}
