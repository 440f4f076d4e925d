package web

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/widget"
)

// TestMediumDatesAsIntl: for every built-in language, every month and a
// one- and a two-digit day, MediumDate writes what Intl.DateTimeFormat
// (dateStyle "medium") writes in Node, the ICU the widget's browsers
// also use. In CI a missing node fails the test.
func TestMediumDatesAsIntl(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed: the medium dates cannot be checked against Intl")
		}
		t.Skip("node is not installed")
	}
	langs, _ := json.Marshal(widget.Languages)
	out, err := exec.Command(node, "-e", `
		const out = {};
		for (const l of `+string(langs)+`) {
			const f = new Intl.DateTimeFormat(l, {dateStyle: "medium", timeZone: "UTC"});
			out[l] = [];
			for (let m = 0; m < 12; m++) for (const d of [7, 29]) out[l].push(f.format(new Date(Date.UTC(2026, m, d))));
		}
		console.log(JSON.stringify(out));`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want map[string][]string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for _, lang := range widget.Languages {
		if _, ok := mediumDates[lang]; !ok {
			t.Errorf("%s has no medium date", lang)
			continue
		}
		i := 0
		for m := time.January; m <= time.December; m++ {
			for _, d := range []int{7, 29} {
				if got := MediumDate(lang, time.Date(2026, m, d, 12, 0, 0, 0, time.UTC)); got != want[lang][i] {
					t.Errorf("%s %d-%d: %q, Intl writes %q", lang, m, d, got, want[lang][i])
				}
				i++
			}
		}
	}
	if got := MediumDate("xx", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)); got != "2026-11-29" {
		t.Errorf("a language without a medium date: %q, want ISO 8601", got)
	}
}
