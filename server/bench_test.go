package server

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// nopProvider accepts everything at once, so the benchmark measures the
// proxy alone.
type nopProvider struct{}

func (nopProvider) Send(context.Context, provider.Message) error { return nil }

// BenchmarkSendAck measures one visitor message from the client's write
// to the client reading its ack, over a real WebSocket on loopback: frame
// decoding, validation, the durable append, the bus and the writer.
func BenchmarkSendAck(b *testing.B) {
	for _, driver := range []string{"memory", "bolt"} {
		b.Run(driver, func(b *testing.B) {
			var st store.Store = store.NewMemory()
			if driver == "bolt" {
				var err error
				st, err = store.OpenBolt(filepath.Join(b.TempDir(), "bench.db"), store.BoltOptions{})
				if err != nil {
					b.Fatal(err)
				}
			}
			cfg := DefaultConfig()
			cfg.Limits.Burst, cfg.Limits.MessagesPerMinute, cfg.Limits.IPMessagesPerMinute = 1<<30, 1<<30, 1<<30
			srv, err := New(cfg, Options{DataDir: b.TempDir(), Store: st, Logger: slog.New(slog.DiscardHandler),
				Providers: map[string]provider.Provider{"demo": nopProvider{}}})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer func() {
				hs.CloseClientConnections()
				hs.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/v1/ws?bot=demo",
				&websocket.DialOptions{Subprotocols: []string{widget.Protocol}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			c.Write(ctx, websocket.MessageText, widget.Encode(&widget.Hello{Bot: "demo"}))
			readUntil(b, c, widget.TypeWelcome, "")

			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := "b" + strconv.Itoa(i)
				if err := c.Write(ctx, websocket.MessageText, widget.Encode(&widget.Send{ID: id, Text: "ping"})); err != nil {
					b.Fatal(err)
				}
				readUntil(b, c, widget.TypeAck, id)
			}
		})
	}
}

// readUntil reads frames until one of type typ (with ack id, if given).
func readUntil(b *testing.B, c *websocket.Conn, typ, id string) {
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		f, err := widget.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if f.Type() == typ && (id == "" || f.(*widget.Ack).ID == id) {
			return
		}
	}
}
