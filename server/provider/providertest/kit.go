package providertest

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// KitOptions are what differs between the platforms in the kit's
// machinery: how they retry a callback.
type KitOptions struct {
	// Client posts the callbacks. Nil: a client with a 5s timeout.
	Client *http.Client
	// Retries is how many times a failed callback is tried again.
	Retries int
	// RetryPause is the wait before retry n (1 for the first retry). Nil:
	// no wait.
	RetryPause func(retry int) time.Duration
}

// Kit is the machinery an emulator of a platform that calls back is made
// of, whatever the platform: the faults a test injected, the callback
// URL and headers, the retrying delivery of callbacks and their record,
// the count of callbacks still to go, and the goroutines that post them.
// The emulator consumes the faults where its platform would meet them;
// its tests reach the Kit through Controls.
type Kit struct {
	opts   KitOptions
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	url       string
	header    http.Header
	faults    []Fault
	slow      time.Duration
	drop      int
	dup       int
	reorder   int
	delay     time.Duration
	callbacks []Callback
	stats     CallbackStats
	pending   int
}

// NewKit returns a Kit; Close it with its emulator.
func NewKit(opts KitOptions) *Kit {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.RetryPause == nil {
		opts.RetryPause = func(int) time.Duration { return 0 }
	}
	k := &Kit{opts: opts}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	return k
}

// Controls returns the Kit's side for tests, for the emulator to embed.
func (k *Kit) Controls() Controls { return Controls{k} }

// Context is the emulator's lifetime: it ends when the Kit is closed, so
// that waits and callbacks in flight stop.
func (k *Kit) Context() context.Context { return k.ctx }

// Closed reports whether Close has been called, for an emulator that
// must stop queueing work.
func (k *Kit) Closed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.closed
}

// Go runs f in a goroutine that Close waits for. Once the Kit is closed
// it runs nothing and returns false.
func (k *Kit) Go(f func()) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		f()
	}()
	return true
}

// Close ends the Kit's Context and waits for the goroutines Go started:
// callbacks not yet posted are abandoned.
func (k *Kit) Close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
}

// Sleep waits d, or less if the Kit closes meanwhile; it reports whether
// the Kit is still open.
func (k *Kit) Sleep(d time.Duration) bool {
	if d <= 0 {
		return k.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-k.ctx.Done():
		return false
	}
}
