package widget

import (
	"strings"
	"testing"
)

func TestCheckFont(t *testing.T) {
	for _, ok := range []string{"", `"Source Sans 3", Arial, sans-serif`, "'Noto Sans Arabic', system-ui"} {
		if err := CheckFont("font", ok); err != nil {
			t.Errorf("CheckFont(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"Arial;}:host{color:red", `"Arial`, "x url(a)", "a\nb", strings.Repeat("a", 201)} {
		err := CheckFont("widget.font", bad)
		if err == nil || !strings.HasPrefix(err.Error(), "widget.font ") {
			t.Errorf("CheckFont(%q) = %v, want an error naming widget.font", bad, err)
		}
	}
	if CheckColorScheme("s", "dark") != nil || CheckColorScheme("s", "blue") == nil {
		t.Error("CheckColorScheme accepts the wrong values")
	}
}

// TestFrameStyleScheme: a bot's fixed scheme and font reach the eager
// stylesheet; an unsafe font never does; auto adds nothing.
func TestFrameStyleScheme(t *testing.T) {
	auto := string(FrameStyle(nil, FrameLook{Lang: "en"}))
	if strings.Contains(auto, "--ph-bg") || strings.Contains(auto, "--ph-font") {
		t.Errorf("auto look has scheme or font rules: %s", auto)
	}
	dark := string(FrameStyle(nil, FrameLook{Lang: "en", Look: Look{ColorScheme: "dark", Font: `"Inter", sans-serif`}}))
	if !strings.Contains(dark, darkVars) || !strings.Contains(dark, `--ph-font:"Inter", sans-serif;`) {
		t.Errorf("dark look: %s", dark)
	}
	light := string(FrameStyle(nil, FrameLook{Lang: "en", Look: Look{ColorScheme: "light", Font: "x;}*{color:red"}}))
	if !strings.Contains(light, "@media (prefers-color-scheme:dark){:host{"+lightVars+"}}") || strings.Contains(light, "color:red") {
		t.Errorf("light look: %s", light)
	}
}
