package providertest

// What an emulator embeds: its common parts, and the Controls its tests
// use.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"time"
)

// Emulator is what every emulator's Server is made of besides its
// platform: the URL it is reached at, its API handler, the listener
// Listen starts, and the Controls of its Kit. An emulator embeds it, so
// that it is started, served, driven and closed the same way as any
// other.
type Emulator struct {
	// URL is the base URL of the emulated API, for the adapter's
	// base_url, without a trailing slash. Listen sets it; the caller of
	// an emulator it serves itself sets it if it wants it (the bot's
	// media may point at it).
	URL string
	// Controls inject faults and read the callbacks; the emulator's
	// documentation says where on its platform each fault applies.
	Controls

	kit     *Kit
	handler http.Handler
	hs      *httptest.Server
}

// NewEmulator returns the common part of an emulator that serves handler
// and calls back through kit.
func NewEmulator(kit *Kit, handler http.Handler) Emulator {
	return Emulator{Controls: kit.Controls(), kit: kit, handler: handler}
}

// Listen serves the emulated API on a loopback port, as
// httptest.NewServer does, and sets URL.
func (e *Emulator) Listen() {
	e.hs = httptest.NewServer(e.handler)
	e.URL = e.hs.URL
}

// Handler returns the emulated API, for a caller that serves it on an
// address of its own (as `porthole sim` does).
func (e *Emulator) Handler() http.Handler { return e.handler }

// Close stops the callbacks (those not yet posted are abandoned), then
// the listener if Listen started one, and waits for both.
func (e *Emulator) Close() {
	e.kit.Close()
	if e.hs != nil {
		e.hs.Close()
	}
}

// Controls are what an emulator offers its tests, the same on every
// emulator: fault injection, the record of callbacks, and waiting for
// them. An emulator embeds the Controls of its Kit; its documentation
// says where on its platform each fault applies.
type Controls struct{ k *Kit }

// FailNext makes the next n API calls answer status with header (a 429
// with Retry-After, a 503...), doing nothing else, after the faults
// already queued.
func (c Controls) FailNext(n, status int, header http.Header) {
	c.k.Inject(n, Fault{Status: status, Header: header})
}

// Slow delays every API answer by d, until Slow(0).
func (c Controls) Slow(d time.Duration) {
	c.k.mu.Lock()
	c.k.slow = d
	c.k.mu.Unlock()
}

// DropCallbacks loses the next n callbacks: they are recorded as
// Dropped but never sent.
func (c Controls) DropCallbacks(n int) { c.add(&c.k.drop, n) }

// DuplicateCallbacks sends each of the next n callbacks twice.
func (c Controls) DuplicateCallbacks(n int) { c.add(&c.k.dup, n) }

// ReorderCallbacks makes the replies to each of the next n visitor
// messages reach the proxy out of order; how depends on the platform.
func (c Controls) ReorderCallbacks(n int) { c.add(&c.k.reorder, n) }

// DelayCallbacks waits d before each callback, until DelayCallbacks(0).
func (c Controls) DelayCallbacks(d time.Duration) {
	c.k.mu.Lock()
	c.k.delay = d
	c.k.mu.Unlock()
}

// add raises a callback fault counter by n.
func (c Controls) add(counter *int, n int) {
	c.k.mu.Lock()
	*counter += n
	c.k.mu.Unlock()
}

// Callbacks returns every callback attempt and dropped callback so far,
// in order.
func (c Controls) Callbacks() []Callback {
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	out := make([]Callback, len(c.k.callbacks))
	for i, cb := range c.k.callbacks {
		out[i] = cb.clone()
	}
	return out
}

// WaitIdle returns once no callback is queued or in flight (posted,
// given up or dropped), or when ctx ends.
func (c Controls) WaitIdle(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		c.k.mu.Lock()
		idle := c.k.pending == 0
		c.k.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
