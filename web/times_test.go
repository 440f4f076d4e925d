package web

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// TestChatTimes: each message shows its time in the page's zone, and a
// day's first message has its day above it: today and yesterday in the
// page's language, older days as the date in its medium style (as the
// widget writes it); without a zone, UTC says so.
func TestChatTimes(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	p := page(
		ChatEntry{Seq: 1, Mine: true, At: at(-50 * time.Hour), Body: text("old")},
		ChatEntry{Seq: 2, At: at(-49 * time.Hour), Body: text("old reply")},
		ChatEntry{Seq: 3, Mine: true, At: at(-20 * time.Hour), Body: text("yesterday")},
		ChatEntry{Seq: 4, Mine: true, At: at(-time.Hour), Body: text("today")},
	)
	p.Now, p.Texts = now, NewChatTexts("nl", nil)
	p.Zone, _ = time.LoadLocation("Europe/Amsterdam")
	if p.Zone == nil {
		p.Zone = time.FixedZone("CET", 3600)
	}
	doc := render(t, p)
	var days []string
	doc.Find(".log > li.day").Each(func(_ int, s *goquery.Selection) { days = append(days, s.Text()) })
	if strings.Join(days, "|") != "8 mrt 2026|Gisteren|Vandaag" {
		t.Errorf("days = %q", days)
	}
	if got := doc.Find("#m4 time.at").Text(); got != "09:00" {
		t.Errorf("time of a message at 08:00 UTC in Amsterdam = %q, want 09:00", got)
	}
	if got := doc.Find("#m4 time.at").AttrOr("datetime", ""); got != "2026-03-10T08:00:00Z" {
		t.Errorf("datetime = %q", got)
	}
	p.Zone = nil
	if got := render(t, p).Find("#m4 time.at").Text(); got != "08:00 UTC" {
		t.Errorf("time without a zone = %q, want 08:00 UTC", got)
	}
}
