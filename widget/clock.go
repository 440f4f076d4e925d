package widget

// Instant and Span stand in for time.Time and time.Duration. The widget
// package avoids package time on purpose: importing it links its
// GODEBUG settings, and with them internal/godebug, internal/bisect and
// the runtime's metrics tables, about 40 KB (brotli) of widget.wasm for
// what integer milliseconds do as well. The browser's clock is Date.now().

// Instant is a point in time in milliseconds since the Unix epoch; the
// zero Instant means "not set".
type Instant int64

// Span is a length of time in milliseconds.
type Span int64

// Spans.
const (
	Millisecond Span = 1
	Second           = 1000 * Millisecond
	Minute           = 60 * Second
	Hour             = 60 * Minute
)

// IsZero reports whether t is unset.
func (t Instant) IsZero() bool { return t == 0 }

// Add returns t+d.
func (t Instant) Add(d Span) Instant { return t + Instant(d) }

// Sub returns t-u.
func (t Instant) Sub(u Instant) Span { return Span(t - u) }

// Before reports whether t is before u.
func (t Instant) Before(u Instant) bool { return t < u }

// After reports whether t is after u.
func (t Instant) After(u Instant) bool { return t > u }

// UnixMilli returns t as milliseconds since the Unix epoch.
func (t Instant) UnixMilli() int64 { return int64(t) }

// Milliseconds returns d in milliseconds.
func (d Span) Milliseconds() int64 { return int64(d) }
