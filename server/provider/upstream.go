package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Secret is a configuration value that must never be shown (a platform
// token, a verify token, a session key): its String, GoString, Format,
// MarshalText and LogValue all print a placeholder. Reveal is the only
// way to the value, and it is called where the value goes on the wire.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Secret) Format(f fmt.State, _ rune)   { f.Write([]byte(redacted)) }

// LogValue keeps the secret out of structured logs.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Reveal returns the secret value itself.
func (s Secret) Reveal() string { return string(s) }

// UnmarshalText keeps the configured value.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Webhook is implemented by providers whose platform calls back with the
// bot's replies; the server mounts it at /hooks/{provider}/{bot}.
type Webhook interface {
	ServeWebhook(w http.ResponseWriter, r *http.Request)
}

// Upstream is the one HTTP client both platform adapters use. It makes a
// single attempt and classifies the outcome as an *Error: the
// conversation service owns retries (ordered per conversation, durable
// across restarts), so retrying here too would multiply attempts.
type Upstream struct {
	// Client does the requests; nil means a client with sane timeouts.
	Client *http.Client
	// Now is the clock for x-ratelimit-reset; nil means time.Now.
	Now func() time.Time
}

// MaxResponse bounds what is read of an upstream response body.
const MaxResponse = 1 << 20

var defaultClient = &http.Client{
	Timeout: 20 * time.Second,
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
	},
}

// Response is a successful (2xx) upstream answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Request is one upstream call. Headers may carry a token; the URL must
// not, when it can be avoided (errors show its path, never its query).
type Request struct {
	Method string
	URL    string
	Header http.Header
	// JSON, if not nil, is marshalled as the body with
	// Content-Type: application/json.
	JSON any
}

// Do performs r. A 2xx answer returns its body; anything else returns an
// *Error saying whether a retry may help and how long the platform asked
// to wait. Errors name the method and path only: no query, no header.
func (u *Upstream) Do(ctx context.Context, r Request) (*Response, error) {
	var body io.Reader
	if r.JSON != nil {
		b, err := json.Marshal(r.JSON)
		if err != nil {
			return nil, &Error{Reason: ReasonRejected, Err: fmt.Errorf("encode request: %w", err)}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, &Error{Reason: ReasonRejected, Err: errors.New("bad upstream URL")}
	}
	what := r.Method + " " + req.URL.Path
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if r.JSON != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "porthole")
	client := u.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The transport's error names the full URL; keep only the cause.
		var ue interface{ Timeout() bool }
		cause := errors.New("network error")
		if errors.As(err, &ue) && ue.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			cause = ErrTimeout
		}
		return nil, &Error{Reason: ReasonUnavailable, Temporary: true, Err: fmt.Errorf("%s: %w", what, cause)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return nil, &Error{Reason: ReasonUnavailable, Temporary: true, Status: resp.StatusCode, Err: errors.New(what + ": reading the answer failed")}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
	}
	e := &Error{Status: resp.StatusCode, Err: errors.New(what + " answered " + resp.Status)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Reason, e.Temporary = ReasonRateLimited, true
	case resp.StatusCode >= 500:
		e.Reason, e.Temporary = ReasonUnavailable, true
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Reason = ReasonAuth
	case resp.StatusCode == http.StatusRequestTimeout:
		e.Reason, e.Temporary = ReasonUnavailable, true
	default:
		e.Reason = ReasonRejected
	}
	if e.Temporary {
		e.After = u.wait(resp.Header, resp.StatusCode == http.StatusTooManyRequests)
	}
	return nil, e
}

// wait reads how long the platform asked us to wait: Retry-After
// (seconds or an HTTP date) or x-ratelimit-reset (an epoch time in
// seconds or, as Chatlayer's docs show, milliseconds; a small number is
// taken as seconds to wait). Capped at 10 minutes. The arithmetic is done
// in float seconds and capped before converting: a huge, infinite or NaN
// header value must not overflow time.Duration into a negative (no wait).
//
// x-ratelimit-reset says when the rate-limit window ends, and APIs send
// it on every answer: on a 429 it is always a reason to wait, otherwise
// only when x-ratelimit-remaining does not show calls left. Else a plain
// 500 would wait out the rest of the window.
func (u *Upstream) wait(h http.Header, limited bool) time.Duration {
	now := time.Now
	if u.Now != nil {
		now = u.Now
	}
	const ceiling = 10 * time.Minute
	nowSecs := func() float64 { return float64(now().UnixMilli()) / 1e3 }
	var secs float64
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			secs = n
		} else if t, err := http.ParseTime(v); err == nil {
			secs = float64(t.UnixMilli())/1e3 - nowSecs()
		}
	}
	if left, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Ratelimit-Remaining"))); err != nil || left <= 0 {
		limited = true
	}
	if v := strings.TrimSpace(h.Get("X-Ratelimit-Reset")); !(secs > 0) && limited && v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			switch {
			case n > 1e12: // epoch milliseconds
				secs = n/1e3 - nowSecs()
			case n > 1e9: // epoch seconds
				secs = n - nowSecs()
			default: // seconds to wait
				secs = n
			}
		}
	}
	switch {
	case !(secs > 0): // also NaN
		return 0
	case secs >= ceiling.Seconds():
		return ceiling
	}
	return time.Duration(secs * float64(time.Second))
}
