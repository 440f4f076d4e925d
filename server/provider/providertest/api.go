package providertest

// The API side of an emulator: the faults a test injects into its
// answers, slowness, and the rate limit.

import (
	"net/http"
	"sync"
	"time"
)

// Fault is one injected answer of an emulator's API, in place of what it
// would have answered.
type Fault struct {
	Status int
	Header http.Header
	// Message is the error message of the answer's body; empty means the
	// emulator's default for an injected fault.
	Message string
}

// Inject queues n copies of f for the next API calls, after those already
// queued: how an emulator offers faults of its own platform's kind (an
// "ok": false answer) beside FailNext.
func (k *Kit) Inject(n int, f Fault) {
	h := http.Header{}
	for name, vs := range f.Header {
		h[http.CanonicalHeaderKey(name)] = append([]string(nil), vs...)
	}
	f.Header = h
	k.mu.Lock()
	for range n {
		k.faults = append(k.faults, f)
	}
	k.mu.Unlock()
}

// TakeFault returns the next injected API fault, if any, and uses it up.
func (k *Kit) TakeFault() (Fault, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.faults) == 0 {
		return Fault{}, false
	}
	f := k.faults[0]
	k.faults = k.faults[1:]
	return f, true
}

// Stall holds an API answer for the delay Slow set. It reports false
// when the client gave up meanwhile (there is no one to answer); when the
// Kit closes, it stops holding and reports true.
func (k *Kit) Stall(r *http.Request) bool {
	k.mu.Lock()
	d := k.slow
	k.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return false
	case <-k.ctx.Done():
	}
	return true
}

// RateWindow counts API calls in fixed windows, as both platforms' rate
// limits do, for their x-ratelimit-* headers and 429s. Set Limit and
// Window before the first Take.
type RateWindow struct {
	Limit  int           // calls allowed per window; 0 or less: no limit
	Window time.Duration // the window's length

	mu   sync.Mutex
	ends time.Time
	used int
}

// Take counts one call at now, opening a new window if the last one has
// ended, and returns whether the call is over the limit, how many calls
// the window has left, and when it ends.
func (w *RateWindow) Take(now time.Time) (limited bool, remaining int, reset time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !now.Before(w.ends) {
		w.ends, w.used = now.Add(w.Window), 0
	}
	w.used++
	return w.Limit > 0 && w.used > w.Limit, max(w.Limit-w.used, 0), w.ends
}
