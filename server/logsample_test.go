package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// logAt logs msg at level with attrs through h, stamped at.
func logAt(t *testing.T, h slog.Handler, at time.Time, level slog.Level, msg string, attrs ...slog.Attr) {
	t.Helper()
	r := slog.NewRecord(at, level, msg, 0)
	r.AddAttrs(attrs...)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestSampleWarnings: the first warning of a kind (level, message, bot)
// passes, repeats within the interval are dropped and counted, the first
// after it passes with the count; other kinds, other bots and records
// below warn are not held back.
func TestSampleWarnings(t *testing.T) {
	var buf bytes.Buffer
	h := SampleWarnings(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), 10*time.Second)
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	acme, shop := slog.String("bot", "acme"), slog.String("bot", "shop")
	for i := range 500 {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond) // 5 s of warnings
		logAt(t, h, at, slog.LevelWarn, "upstream call failed", acme, slog.String("conversation", fmt.Sprint(i)))
		logAt(t, h, at, slog.LevelInfo, "dropping slow client", acme)
	}
	logAt(t, h, t0.Add(time.Second), slog.LevelWarn, "upstream call failed", shop)
	logAt(t, h, t0.Add(time.Second), slog.LevelError, "upstream call failed", acme)
	logAt(t, h, t0.Add(2*time.Second), slog.LevelWarn, "cannot record read marker", acme)
	logAt(t, h, t0.Add(11*time.Second), slog.LevelWarn, "upstream call failed", acme, slog.String("conversation", "late"))
	logAt(t, h, t0.Add(12*time.Second), slog.LevelWarn, "upstream call failed", acme)

	var warns, infos []string
	for _, l := range lines(&buf) {
		if strings.Contains(l, "level=INFO") {
			infos = append(infos, l)
		} else {
			warns = append(warns, l)
		}
	}
	if len(infos) != 500 {
		t.Errorf("%d info lines, want all 500", len(infos))
	}
	want := []string{
		"level=WARN msg=\"upstream call failed\" bot=acme conversation=0",
		"level=WARN msg=\"upstream call failed\" bot=shop",
		"level=ERROR msg=\"upstream call failed\" bot=acme",
		"level=WARN msg=\"cannot record read marker\" bot=acme",
		"level=WARN msg=\"upstream call failed\" bot=acme conversation=late repeated=499",
	}
	if len(warns) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d lines", strings.Join(warns, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(warns[i], w) {
			t.Errorf("line %d = %s, want it to end %s", i, warns[i], w)
		}
	}
}

// TestSampleWarningsWithAttrs: a bot given to With counts like one in
// the record, and derived loggers share the counts.
func TestSampleWarningsWithAttrs(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(SampleWarnings(slog.NewTextHandler(&buf, nil), time.Hour))
	acme := base.With("bot", "acme")
	for range 3 {
		acme.Warn("chatlayer: callback refused")
		base.Warn("chatlayer: callback refused", "bot", "acme")
		base.With("bot", "shop").Warn("chatlayer: callback refused")
		base.WithGroup("g").Warn("chatlayer: callback refused", "bot", "acme") // a grouped bot is not the bot
	}
	if got := lines(&buf); len(got) != 3 {
		t.Fatalf("lines:\n%s\nwant 3: acme, shop, and the one without a bot", strings.Join(got, "\n"))
	}
}

// TestSampleWarningsBounded: past maxSampled kinds, kinds whose interval
// ran out are forgotten and their dropped counts logged, not lost.
func TestSampleWarningsBounded(t *testing.T) {
	var buf bytes.Buffer
	h := SampleWarnings(slog.NewTextHandler(&buf, nil), time.Second)
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	logAt(t, h, t0, slog.LevelWarn, "first kind")
	logAt(t, h, t0, slog.LevelWarn, "first kind")
	for i := range maxSampled {
		logAt(t, h, t0.Add(2*time.Second), slog.LevelWarn, fmt.Sprint("kind ", i))
	}
	if !strings.Contains(buf.String(), `msg="first kind" repeated=1`) {
		t.Fatalf("the forgotten kind's count is lost:\n%.500s", buf.String())
	}
	if n := len(h.(*sampler).st.seen); n > maxSampled {
		t.Fatalf("%d kinds tracked, bound %d", n, maxSampled)
	}
}
