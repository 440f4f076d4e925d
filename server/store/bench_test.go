package store_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
)

var benchBody = []byte(`{"type":"text","text":"Hello! I would like to know the opening hours of the shop on Sunday."}`)

// benchStores are the stores of the benchmarks, opened fresh for each.
var benchStores = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"memory", func(*testing.B) store.Store { return store.NewMemory() }},
	{"bolt", func(b *testing.B) store.Store { return openBolt(b, filepath.Join(b.TempDir(), "porthole.db")) }},
}

func benchConv(b *testing.B, s store.Store) string {
	c, _, err := s.Conversation(b.Context(), "bot", "visitor")
	if err != nil {
		b.Fatal(err)
	}
	return c.ID
}

func benchAppend(b *testing.B, s store.Store, conv string) {
	_, _, err := s.Append(b.Context(), store.Message{Conversation: conv, From: store.FromUser, Body: benchBody, State: store.Pending})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppend measures a user message append; on bolt each one waits
// for its fsync, which parallel appends share through the group commit.
func BenchmarkAppend(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			conv := benchConv(b, s)
			b.ReportAllocs()
			for b.Loop() {
				benchAppend(b, s, conv)
			}
		})
		b.Run(bs.name+"-parallel", func(b *testing.B) {
			s := bs.open(b)
			conv := benchConv(b, s)
			b.SetParallelism(16) // many sockets per CPU
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchAppend(b, s, conv)
				}
			})
		})
	}
}

// BenchmarkAppendWriters measures appends from a few and from many
// writers at once, each in its own conversation, as sockets append: ns/op
// is the store's throughput, µs/append the latency each writer saw, the
// figure the round trip pays.
func BenchmarkAppendWriters(b *testing.B) {
	for _, writers := range []int{4, 32} {
		b.Run(fmt.Sprintf("bolt-%d", writers), func(b *testing.B) {
			s := openBolt(b, filepath.Join(b.TempDir(), "porthole.db"))
			convs := make([]string, writers)
			for w := range convs {
				c, _, err := s.Conversation(b.Context(), "bot", fmt.Sprint("visitor", w))
				if err != nil {
					b.Fatal(err)
				}
				convs[w] = c.ID
			}
			var next, waited atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, conv := range convs {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						start := time.Now()
						_, _, err := s.Append(b.Context(), store.Message{Conversation: conv, From: store.FromUser, Body: benchBody, State: store.Pending})
						if err != nil {
							b.Error(err)
							return
						}
						waited.Add(int64(time.Since(start)))
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(waited.Load())/float64(b.N)/1e3, "µs/append")
		})
	}
}

// BenchmarkRead measures a replay: 100 messages after seq 0 of a
// 1000-message conversation.
func BenchmarkRead(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			conv := benchConv(b, s)
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					for range 50 {
						benchAppend(b, s, conv)
					}
				})
			}
			wg.Wait()
			b.ReportAllocs()
			for b.Loop() {
				msgs, err := s.Read(b.Context(), conv, 0, 100)
				if err != nil || len(msgs) != 100 {
					b.Fatal(len(msgs), err)
				}
			}
		})
	}
}
