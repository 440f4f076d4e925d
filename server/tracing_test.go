package server

import (
	"strings"
	"testing"
)

// TestTracingConfig checks the tracing block: off by default, its
// defaults, and each bad value refused with an error naming its field.
func TestTracingConfig(t *testing.T) {
	const bots = "bots:\n  - id: a\n    provider: demo\n    origins: [self]\n"
	c, err := ParseConfig([]byte(bots), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Enabled() || c.Tracing.Ratio() != 1 || c.Tracing.Service() != "porthole" {
		t.Fatalf("default tracing = %+v (enabled %v, ratio %v, service %q), want off, 1, porthole",
			c.Tracing, c.Tracing.Enabled(), c.Tracing.Ratio(), c.Tracing.Service())
	}
	c, err = ParseConfig([]byte(bots+"tracing: {endpoint: \"http://collector:4318\", sample_ratio: 0, service_name: shop-chat}\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Tracing.Enabled() || c.Tracing.Ratio() != 0 || c.Tracing.Service() != "shop-chat" {
		t.Fatalf("tracing = %+v, want on, ratio 0 (kept, not defaulted), shop-chat", c.Tracing)
	}
	for _, tt := range []struct{ block, want string }{
		{`{endpoint: "collector:4318"}`, "tracing.endpoint: \"collector:4318\" is not an OTLP/HTTP collector URL; write it like http://collector:4318"},
		{`{endpoint: "ftp://collector"}`, "tracing.endpoint: \"ftp://collector\" is not an OTLP/HTTP collector URL"},
		{`{endpoint: "http://"}`, "tracing.endpoint: \"http://\" is not an OTLP/HTTP collector URL"},
		{`{endpoint: "https://user:pw@collector"}`, "tracing.endpoint: holds a user or password; send credentials with the OTEL_EXPORTER_OTLP_HEADERS"},
		{`{endpoint: "http://collector:4318?x=1"}`, "tracing.endpoint: \"http://collector:4318?x=1\" has a query or fragment"},
		{`{endpoint: "http://collector:4318", sample_ratio: 1.5}`, "tracing.sample_ratio: 1.5 is out of range; use a number from 0 (none) to 1"},
		{`{sample_ratio: -0.1}`, "tracing.sample_ratio: -0.1 is out of range"},
		{`{endpoint: "http://c:4318", sampel_ratio: 1}`, "sampel_ratio"},
	} {
		_, err := ParseConfig([]byte(bots+"tracing: "+tt.block+"\n"), testEnv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("tracing: %s: error %v, want one with %q", tt.block, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("tracing: %s: the error shows the password: %v", tt.block, err)
		}
	}
}
