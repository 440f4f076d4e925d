package main

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchmarkClickToInteractive measures, in headless Chromium, the time
// from a click on the launcher until the panel is open with the composer
// focused and the bot's greeting shown: the wasm fetched, compiled and
// connected. The host page holds its load event back, so no idle
// prefetch has started before the click. Cold: a fresh browser profile
// (empty HTTP cache) every time; warm: the same browser reloading the
// page (the immutable wasm comes from its cache). Loopback only: add
// your network's transfer time for ~540 KB (brotli) to the cold figure.
func BenchmarkClickToInteractive(b *testing.B) {
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			s := newSite(b)
			var ctx context.Context
			if mode == "warm" {
				ctx = browser(b, 1280, 860)
				clickToInteractive(b, ctx, s) // fill the cache
			}
			var times []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if mode == "cold" {
					ctx = browser(b, 1280, 860)
				}
				b.StartTimer()
				times = append(times, clickToInteractive(b, ctx, s))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
		})
	}
}

// clickToInteractive loads the host page with its load event held back,
// clicks the launcher and returns the time until the chat is usable.
func clickToInteractive(b testing.TB, ctx context.Context, s *site) time.Duration {
	s.host.rearm()
	// Leave the previous page first, so that the waits below see the new one.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.Fatal(err)
	}
	go chromedp.Do(ctx, chromedp.Navigate(s.host.URL+"/slow"))
	waitJS(b, ctx, "the styled launcher", launcherStyled)
	start := time.Now()
	click(b, ctx, ".launcher")
	waitJS(b, ctx, "the usable chat", shadow+`.activeElement == `+in(".composer textarea")+` && `+in(".msg.bot"))
	d := time.Since(start)
	s.host.release()
	return d
}
