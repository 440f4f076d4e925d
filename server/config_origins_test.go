package server

import (
	"fmt"
	"testing"
)

func TestParseConfigOrigins(t *testing.T) {
	for _, o := range []string{
		"self", "loopback",
		"https://www.acme.com", "https://*.acme.com", "http://*.acme.com:8080",
		"http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:8080", "https://acme.com:8443",
	} {
		y := fmt.Sprintf("bots:\n  - id: a\n    provider: demo\n    origins: [%q]\n", o)
		if _, err := ParseConfig([]byte(y), testEnv); err != nil {
			t.Errorf("origin %q refused: %v", o, err)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "" means an error
	}{
		{"https://www.acme.com", "https://www.acme.com"},
		{"https://www.acme.com/", "https://www.acme.com"},
		{"https://WWW.Acme.COM", "https://www.acme.com"},
		{"HTTPS://www.acme.com", "https://www.acme.com"},
		{"https://x.com:443", "https://x.com"},
		{"http://x.com:80", "http://x.com"},
		{"http://x.com:443", "http://x.com:443"},
		{"https://x.com:80", "https://x.com:80"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"https://x.com/path", ""},
		{"https://x.com?q=1", ""},
		{"https://x.com#top", ""},
		{"https://user@x.com", ""},
		{"ftp://x.com", ""},
		{"x.com", ""},
		{"null", ""},
		{"", ""},
		{"https://", ""},
		{"https://x.com:bad", ""},
	} {
		got, err := parseOrigin(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseOrigin(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMatchOrigin(t *testing.T) {
	for _, tt := range []struct {
		pattern, origin string
		want            bool
	}{
		{"https://*.acme.com", "https://www.acme.com", true},
		{"https://*.acme.com", "https://a.b.acme.com", true},
		{"https://*.acme.com", "https://WWW.ACME.COM", true},
		{"https://*.acme.com", "https://acme.com", false},
		{"https://*.acme.com", "http://www.acme.com", false},
		{"https://*.acme.com", "https://evilacme.com", false},
		{"https://*.acme.com", "https://www.evilacme.com", false},
		{"https://*.acme.com", "https://www.acme.com.evil.com", false},
		{"https://*.acme.com", "https://www.acme.com:8443", false},
		{"https://*.acme.com", "https://www.acme.com:443", true},
		{"https://*.acme.com:8443", "https://www.acme.com:8443", true},
		{"https://*.acme.com:8443", "https://www.acme.com", false},
		{"http://*.acme.com:80", "http://www.acme.com", true},
		{"https://www.acme.com", "https://www.acme.com", true},
		{"https://www.acme.com", "https://www.acme.com:443", true},
		{"https://x.com:443", "https://x.com", true},
		{"https://x.com", "https://x.com:443", true},
		{"http://x.com", "http://x.com:80", true},
		{"https://x.com", "http://x.com", false},
		{"https://x.com", "https://x.com:8443", false},
		{"https://www.acme.com", "https://acme.com", false},
		{"https://www.acme.com", "https://www.acme.com.evil.com", false},
		{"https://acme.com", "https://www.acme.com", false},
	} {
		// The server normalises the Origin header before matching.
		o, err := parseOrigin(tt.origin)
		if err != nil {
			t.Fatalf("parseOrigin(%q): %v", tt.origin, err)
		}
		if got := matchOrigin(tt.pattern, o); got != tt.want {
			t.Errorf("matchOrigin(%q, %q) = %v, want %v", tt.pattern, o, got, tt.want)
		}
	}
}

func TestIsLoopbackOrigin(t *testing.T) {
	for _, tt := range []struct {
		origin string
		want   bool
	}{
		{"http://localhost:3000", true},
		{"http://localhost", true},
		{"https://localhost", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.0.0.5:1", true},
		{"http://[::1]:8080", true},
		{"http://[::1]", true},
		{"http://app.localhost", true},
		{"http://app.localhost:5173", true},
		{"http://localhost.evil.com", false},
		{"http://evillocalhost", false},
		{"http://10.0.0.1", false},
		{"http://192.168.1.10:3000", false},
		{"https://www.acme.com", false},
		{"http://[::2]:8080", false},
	} {
		o, err := parseOrigin(tt.origin)
		if err != nil {
			t.Fatalf("parseOrigin(%q): %v", tt.origin, err)
		}
		if got := isLoopbackOrigin(o); got != tt.want {
			t.Errorf("isLoopbackOrigin(%q) = %v, want %v", o, got, tt.want)
		}
	}
}
