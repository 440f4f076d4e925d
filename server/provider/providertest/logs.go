package providertest

import (
	"bytes"
	"log/slog"
	"sync"
)

// LogBuffer collects log lines written from any goroutine, so that a test
// can read back what an adapter or an emulator logged: to check that an
// event was logged, and to scan every line for secrets. The zero value is
// ready to use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it never fails.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a logger that writes text lines to b at every level,
// debug included, so that a secret logged at any level is caught.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
