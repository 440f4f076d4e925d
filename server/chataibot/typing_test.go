package chataibot_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
)

// TestTypingUntilTheFirstReply: once ChatAIBot accepted a visitor
// message (the start call or a later one), the typing indicator shows
// until the reply; it stays off when the reply came during the call, and
// with reply_typing: false.
func TestTypingUntilTheFirstReply(t *testing.T) {
	r := newRig(t, rigOptions{emu: chataibottest.Options{ReplyDelay: 100 * time.Millisecond}})
	r.mustSend(text("c1", "m1", "hello"))
	r.mustSend(text("c1", "m2", "again"))
	if got := strings.Join(r.sink.Typings(), " "); got != "c1:on c1:on" {
		t.Fatalf("typing after two accepted messages: %q", got)
	}
	r.idle()
	if len(r.sink.Deliveries("c1")) == 0 {
		t.Fatal("no reply")
	}

	// A reply that overtakes the API's answer to a later message: the
	// callback is stored before Send returns, so the indicator stays off.
	fast := newRig(t, rigOptions{front: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
			if !strings.HasSuffix(q.URL.Path, "/messages") {
				h.ServeHTTP(w, q)
				return
			}
			rec := &holdWriter{ResponseWriter: w}
			h.ServeHTTP(rec, q)
			time.Sleep(300 * time.Millisecond) // the reply's callback lands meanwhile
			rec.flush()
		})
	}})
	fast.mustSend(text("c2", "m1", "hello"))
	fast.idle()
	before := len(fast.sink.Typings())
	fast.mustSend(text("c2", "m2", "again"))
	if got := fast.sink.Typings()[before:]; len(got) != 0 || len(fast.sink.Deliveries("c2")) < 2 {
		t.Fatalf("typing %v after the reply was stored (%d stored)", got, len(fast.sink.Deliveries("c2")))
	}

	off := newRig(t, rigOptions{cfg: func(c *chataibot.Config) { f := false; c.ReplyTyping = &f }})
	off.mustSend(text("c3", "m1", "hello"))
	if got := off.sink.Typings(); len(got) != 0 {
		t.Fatalf("reply_typing: false still showed typing: %v", got)
	}
}

// holdWriter keeps an answer until flush, so that a test can hold the
// API's answer back while the bot's callback goes ahead.
type holdWriter struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (h *holdWriter) WriteHeader(code int)        { h.status = code }
func (h *holdWriter) Write(b []byte) (int, error) { h.body = append(h.body, b...); return len(b), nil }

func (h *holdWriter) flush() {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.ResponseWriter.WriteHeader(h.status)
	h.ResponseWriter.Write(h.body)
}
