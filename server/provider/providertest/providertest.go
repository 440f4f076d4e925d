// Package providertest is the test kit of the bot platforms: what the
// platform emulators (chatlayertest, chataibottest) and the adapters'
// tests would otherwise each write for themselves, written once so that
// both platforms are driven and checked with the same words.
//
// For the emulators: a Kit holds the machinery of a platform that calls
// back: injected API faults (FailNext, Slow), callback faults (drop,
// duplicate, reorder, delay), the retrying delivery of callbacks to the
// proxy's webhook with the platform's retry pauses, the record of every
// attempt, and idleness. An emulator embeds the Kit's Controls, so that
// tests call the same methods on either emulator, and keeps to itself
// only what its platform does differently: the API's contract, the
// scripted bot, and how callbacks are scheduled.
//
// For the adapters' tests: Sink, a recording provider.Sink that behaves
// like the conversation service where adapters rely on it; LogBuffer,
// which captures log lines for the secret scans; and Idle, which waits
// for an emulator's callbacks to be done.
//
// The package does not import package testing (see TB), because the
// emulators are also linked into the porthole binary for `porthole sim`.
package providertest

import (
	"context"
	"time"
)

// TB is the part of testing.TB the kit uses. It is declared here rather
// than taken from package testing so that the porthole binary, which
// links the emulators and so this package, does not link package testing.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Idler is an emulator whose callbacks can be waited for; both emulators
// are, through their Controls.
type Idler interface {
	WaitIdle(ctx context.Context) error
}

// IdleTimeout is how long Idle waits: far longer than any test's
// callbacks take, short enough that a stuck emulator fails the test
// rather than hanging it.
const IdleTimeout = 10 * time.Second

// Idle waits until e has no callback queued or in flight, and fails t
// if that takes longer than IdleTimeout: it is how a test knows that
// every reply the platform is going to send has been sent.
func Idle(t TB, e Idler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), IdleTimeout)
	defer cancel()
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatalf("emulator callbacks still running: %v", err)
	}
}

// PositiveOr returns v, or def when v is zero or negative: how the
// emulators' Options default a duration or a count left unset.
func PositiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
