package chatlayer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// These tests run two adapters of one bot over one Sink: two `porthole
// serve` processes sharing one store, with Chatlayer's callbacks of a
// conversation spread over both by the load balancer.

// counterWatch is the Sink the two adapters share. It records every value
// the stored counter takes, in the order written (atomically with the
// write), so that a test can check it never moved backwards.
type counterWatch struct {
	*providertest.Sink
	mu     sync.Mutex
	values map[string][]uint64 // by conversation
}

func (w *counterWatch) SetAttr(ctx context.Context, conv, key, value string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.Sink.SetAttr(ctx, conv, key, value)
	if err == nil && key == AttrCounter {
		w.note(conv, value)
	}
	return err
}

func (w *counterWatch) CompareAndSetAttr(ctx context.Context, conv, key, old, value string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ok, err := w.Sink.CompareAndSetAttr(ctx, conv, key, old, value)
	if ok && key == AttrCounter {
		w.note(conv, value)
	}
	return ok, err
}

// note records a counter value of conv, its epoch in the high bits; w.mu
// is held.
func (w *counterWatch) note(conv, v string) {
	c, ok := ParseCounter(v)
	n := c.Epoch<<40 | c.Last
	if !ok || c.At.IsZero() {
		n = 1<<64 - 1 // shows up as a regression at the next write
	}
	w.values[conv] = append(w.values[conv], n)
}

// check fails t if conv's stored counter ever moved backwards or stayed
// put on a write, and unless it ended at last.
func (w *counterWatch) check(t *testing.T, conv string, last uint64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	vs := w.values[conv]
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] {
			t.Errorf("%s: the stored counter went %d then %d (all writes: %v)", conv[:4], vs[i-1], vs[i], vs)
			break
		}
	}
	if n := len(vs); n == 0 || vs[n-1] != last {
		t.Errorf("%s: counter writes %v, want the last to be %d", conv[:4], vs, last)
	}
}

// twoProcesses returns two adapters of one bot over one shared Sink.
func twoProcesses(t *testing.T, wait time.Duration) (*counterWatch, [2]*Adapter) {
	t.Helper()
	w := &counterWatch{Sink: providertest.NewSink(t, convA, convB), values: map[string][]uint64{}}
	var ads [2]*Adapter
	for i := range ads {
		a, err := New(Config{ChannelID: "c", Token: testToken, VerifyToken: testVerify, ReorderWait: wait, BaseURL: "http://127.0.0.1:1"}, "acme", w, nil, (&providertest.LogBuffer{}).Logger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		ads[i] = a
	}
	return w, ads
}

func counted(t *testing.T, conv string, n int) []byte {
	return callback(t, map[string]any{"senderId": conv, "verifyToken": testVerify, "message": textMsg(strconv.Itoa(n)), "messageCounter": n})
}

// held waits until a holds a callback of conv ahead of its turn.
func held(t *testing.T, a *Adapter, conv string, counter uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("callback %d held", counter), 5*time.Second, func() bool {
		a.mu.Lock()
		l := a.lanes[conv]
		a.mu.Unlock()
		if l == nil {
			return false
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.waiting[heldKey{l.epoch, counter}] > 0
	})
}

// A callback held for a gap on one process goes as soon as the gap is
// filled on the other, and a retry of an old callback landing on the
// process with the stale lane does not move the stored counter back.
func TestWebhookOrderAcrossProcesses(t *testing.T) {
	wait := maxReorderWait
	w, ads := twoProcesses(t, wait)

	type result struct {
		code int
		took time.Duration
	}
	three := make(chan result, 1)
	go func() {
		start := time.Now()
		code, _ := post(ads[0], counted(t, convA, 3))
		three <- result{code, time.Since(start)}
	}()
	held(t, ads[0], convA, 3) // process 0 has a lane expecting 1

	for _, n := range []int{1, 2} {
		if code, _ := post(ads[1], counted(t, convA, n)); code != http.StatusOK {
			t.Fatalf("callback %d on process 1: %d", n, code)
		}
	}
	// Chatlayer retries 1 (its answer was lost), and this time the load
	// balancer sends it to process 0.
	if code, _ := post(ads[0], counted(t, convA, 1)); code != http.StatusOK {
		t.Fatalf("retried callback 1 on process 0: %d", code)
	}
	r := <-three
	if r.code != http.StatusOK {
		t.Fatalf("held callback 3: %d", r.code)
	}
	if r.took >= wait/2 {
		t.Errorf("held callback 3 was answered after %s: it waited out its %s ReorderWait instead of seeing the gap filled by the other process", r.took, wait)
	}

	// The other way round, with process 1's lane loaded while process 0
	// moves the counter on.
	five := make(chan int, 1)
	go func() { code, _ := post(ads[1], counted(t, convA, 5)); five <- code }()
	held(t, ads[1], convA, 5)
	if code, _ := post(ads[0], counted(t, convA, 4)); code != http.StatusOK {
		t.Fatalf("callback 4 on process 0: %d", code)
	}
	if code := <-five; code != http.StatusOK {
		t.Fatalf("held callback 5: %d", code)
	}

	if got := strings.Join(w.Texts(convA), ","); got != "1,2,3,4,5" {
		t.Errorf("stored %s, want 1,2,3,4,5", got)
	}
	w.check(t, convA, 5)
}

// Many callbacks of two conversations, in a shuffled order, each posted to
// either process at random: each conversation's messages are stored once,
// in counter order, and its stored counter only moves forward.
func TestWebhookShuffledAcrossProcesses(t *testing.T) {
	const n = 24
	w, ads := twoProcesses(t, maxReorderWait)
	rng := rand.New(rand.NewPCG(14, 2))
	start := time.Now()
	var wg sync.WaitGroup
	for _, conv := range []string{convA, convB} {
		for i, c := range rng.Perm(n) {
			a := ads[rng.IntN(2)]
			var again *Adapter // a retried callback, possibly on the other process
			if rng.IntN(4) == 0 {
				again = ads[rng.IntN(2)]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * 2 * time.Millisecond)
				if code, _ := post(a, counted(t, conv, c+1)); code != http.StatusOK {
					t.Errorf("%s callback %d: %d", conv[:4], c+1, code)
				}
				if again != nil {
					if code, _ := post(again, counted(t, conv, c+1)); code != http.StatusOK {
						t.Errorf("%s retried callback %d: %d", conv[:4], c+1, code)
					}
				}
			}()
		}
	}
	wg.Wait()
	if d := time.Since(start); d >= maxReorderWait/2 {
		t.Errorf("the callbacks took %s: some waited out their ReorderWait instead of seeing the gap filled by the other process", d)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(i + 1)
	}
	for _, conv := range []string{convA, convB} {
		if got := strings.Join(w.Texts(conv), ","); got != strings.Join(want, ",") {
			t.Errorf("%s stored %s, want 1..%d in order", conv[:4], got, n)
		}
		if v, _ := w.Attr(t.Context(), conv, AttrCounter); epochLast(v) != "0:"+strconv.Itoa(n) {
			t.Errorf("%s stored counter %q, want %d", conv[:4], v, n)
		}
		w.check(t, conv, n)
	}
}
