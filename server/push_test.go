package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// pushing is a provider that takes session data at once
// (provider.SessionPusher), as Chatlayer does with session_dialogstate.
type pushing struct{ provider.Provider }

func (pushing) PushesSession() bool { return true }

// upstreamKinds lists conv's upstream calls as "kind:text" (a session
// push as "session:<data>"), in order.
func upstreamKinds(fp *fakeProvider, conv string) []string {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	var out []string
	for _, c := range fp.calls {
		if c.Conversation != conv {
			continue
		}
		switch c.Kind {
		case provider.Session:
			out = append(out, "session:"+string(c.Session))
		default:
			out = append(out, string(c.Kind)+":"+c.Text)
		}
	}
	return out
}

// TestSessionPushedInOrder: a page's session data goes upstream on its
// own as soon as it is set, after the messages stored before it and
// before those stored after; identity keys stay out of it, and a
// provider that does not take pushes gets none.
func TestSessionPushedInOrder(t *testing.T) {
	h := newHarness(t, func(_ *Config, o *Options) {
		o.Providers["acme"] = pushing{o.Providers["acme"]}
	})
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "m1", Text: "one"})
	c.ack("m1")
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"gold","email":"forged@example.com"}`)})
	c.waitFor("the refusal of the identity key", func(f widget.Frame) bool {
		e, ok := f.(*widget.ErrorFrame)
		return ok && e.ID == "s1" && strings.Contains(e.Message, "email")
	})
	c.send(&widget.Send{ID: "m2", Text: "two"})
	c.ack("m2")
	want := []string{"start:", "text:one", `session:{"plan":"gold"}`, "text:two"}
	waitUntil(t, "the push between the messages", func() bool { return len(upstreamKinds(h.fp, w.Conversation)) >= len(want) })
	time.Sleep(50 * time.Millisecond) // a wrong second push would come now
	if got := upstreamKinds(h.fp, w.Conversation); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("upstream got %q, want %q", got, want)
	}
	waitUntil(t, "the push recorded", func() bool {
		v, err := h.st.Attr(context.Background(), w.Conversation, attrPush)
		return err == nil && v == ""
	})

	// The demo bot takes no pushes: its session data waits for a message.
	d := h.connect("demo")
	dw := d.open("", 0)
	d.send(&widget.Session{ID: "s2", Data: widget.RawJSON(`{"plan":"gold"}`)})
	d.ack("s2")
	time.Sleep(50 * time.Millisecond)
	for _, k := range upstreamKinds(h.fp, dw.Conversation) {
		if strings.HasPrefix(k, "session:") {
			t.Fatalf("a provider without pushes got %q", k)
		}
	}
}

// TestSessionPushRetriedThenGivenUp: a push the platform refuses for now
// is retried; one it refuses for good is given up and cleared (the data
// still goes with the next message).
func TestSessionPushRetriedThenGivenUp(t *testing.T) {
	h := newHarness(t, func(_ *Config, o *Options) {
		o.Providers["acme"] = pushing{o.Providers["acme"]}
	})
	silver := 0
	h.fp.setFail(func(m provider.Message, _ int) error {
		if m.Kind != provider.Session {
			return nil
		}
		if strings.Contains(string(m.Session), "silver") {
			silver++ // Send runs one call of a conversation at a time
		}
		if strings.Contains(string(m.Session), "silver") && silver < 3 {
			return &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: 503}
		}
		if strings.Contains(string(m.Session), "bronze") {
			return &provider.Error{Reason: provider.ReasonRejected, Status: 400}
		}
		return nil
	})
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"silver"}`)})
	c.ack("s1")
	waitUntil(t, "the push through on its third try", func() bool {
		v, _ := h.st.Attr(context.Background(), w.Conversation, attrPush)
		return v == "" && strings.Count(strings.Join(upstreamKinds(h.fp, w.Conversation), " "), "silver") == 3
	})
	c.send(&widget.Session{ID: "s2", Data: widget.RawJSON(`{"plan":"bronze"}`)})
	c.ack("s2")
	waitUntil(t, "the refused push cleared", func() bool {
		v, _ := h.st.Attr(context.Background(), w.Conversation, attrPush)
		return v == "" && strings.Contains(strings.Join(upstreamKinds(h.fp, w.Conversation), " "), "bronze")
	})
	c.send(&widget.Send{ID: "m1", Text: "one"})
	c.ack("m1")
	waitUntil(t, "the message", func() bool { return h.fp.callsFor("m1") == 1 })
	h.fp.mu.Lock()
	defer h.fp.mu.Unlock()
	if last := h.fp.calls[len(h.fp.calls)-1]; !strings.Contains(string(last.Session), "bronze") {
		t.Fatalf("the next message carried %s", last.Session)
	}
}

// TestSessionPushSurvivesRestart: a push still due when the process
// stopped is made by the next one over the same store.
func TestSessionPushSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	open := func(name string, down bool) (*harness, *store.Bolt) {
		st, err := store.OpenBolt(path, store.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		retry := durableRetry
		h := newHarness(t, func(_ *Config, o *Options) {
			o.Store, o.Retry = st, &retry
			if o.Shared != nil {
				o.Shared.Owner += "/" + name
			}
			fp := o.Providers["acme"].(*fakeProvider)
			if down {
				fp.setFail(func(m provider.Message, _ int) error {
					if m.Kind == provider.Session {
						return unavailable
					}
					return nil
				})
			}
			o.Providers["acme"] = pushing{fp}
		})
		t.Cleanup(func() { st.Close() })
		return h, st
	}
	h1, _ := open("1", true)
	c := h1.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"gold"}`)})
	c.ack("s1")
	waitUntil(t, "the push tried", func() bool {
		return strings.Contains(strings.Join(upstreamKinds(h1.fp, w.Conversation), " "), "session:")
	})
	c.c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h1.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	h2, st2 := open("2", false)
	waitUntil(t, "the push after the restart", func() bool {
		v, err := st2.Attr(context.Background(), w.Conversation, attrPush)
		return err == nil && v == "" && len(upstreamKinds(h2.fp, w.Conversation)) > 0
	})
	// (The harness's provider refuses calls made before the server is
	// wired to it, so the recovered push may take two tries.)
	for _, got := range upstreamKinds(h2.fp, w.Conversation) {
		if got != `session:{"plan":"gold"}` {
			t.Fatalf("the next process sent %q", got)
		}
	}
}
