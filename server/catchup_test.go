package server

import (
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// TestLostNotificationCaughtUpOnHeartbeat: a message stored without an
// event (a bus between processes lost it) still reaches the socket, on
// its next heartbeat.
func TestLostNotificationCaughtUpOnHeartbeat(t *testing.T) {
	h := newHarness(t, func(_ *Config, o *Options) { o.PingInterval = 100 * time.Millisecond })
	c := h.connect("acme")
	w := c.open("", 0)
	m, _, err := h.st.Append(t.Context(), store.Message{Conversation: w.Conversation, From: store.FromBot, Body: widget.Text("said while the bus was down").AppendJSON(nil)})
	if err != nil {
		t.Fatal(err)
	}
	got := c.msgWith("the message stored without an event", func(f *widget.Msg) bool { return f.Seq == m.Seq })
	if got.Body.Text != "said while the bus was down" {
		t.Fatalf("got %+v", got)
	}
}
