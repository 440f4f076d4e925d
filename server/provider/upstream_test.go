package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testToken stands for a platform token: it goes into the query string
// and a header of every request, and must never come back in an error.
const testToken = "tok_5ecret-upstream-0123456789"

// fixedNow is the clock of the tests: a whole second, so that HTTP dates
// (second resolution) give exact waits.
var fixedNow = time.Date(2025, 2, 10, 20, 21, 3, 0, time.UTC)

// respond returns a handler answering status with the given headers and
// body.
func respond(status int, header http.Header, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range header {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// call runs one Upstream.Do against h with the token in the query and in
// a header, the way a careless caller might.
func call(t *testing.T, u *Upstream, h http.Handler) (*Response, error) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	if u == nil {
		u = &Upstream{Now: func() time.Time { return fixedNow }}
	}
	return u.Do(context.Background(), Request{
		Method: http.MethodPost,
		URL:    srv.URL + "/api/v1/conversations?access_token=" + testToken,
		Header: http.Header{"Authorization": {"Bearer " + testToken}, "X-Api-Key": {testToken}},
		JSON:   map[string]string{"hello": "world"},
	})
}

// noSecret fails the test when err, in any of its renderings, shows the
// token.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprint(err), fmt.Sprintf("%+v", err), fmt.Sprintf("%q", err)} {
		if strings.Contains(s, testToken) {
			t.Errorf("error shows the token: %s", s)
		}
		if strings.Contains(s, "access_token") {
			t.Errorf("error shows the query string: %s", s)
		}
	}
}

func TestUpstreamSuccessReturnsTheBody(t *testing.T) {
	for _, status := range []int{200, 201, 202, 204} {
		body := `{"ok":true}`
		if status == http.StatusNoContent {
			body = ""
		}
		resp, err := call(t, nil, respond(status, http.Header{"X-Ratelimit-Remaining": {"9"}}, body))
		if err != nil {
			t.Fatalf("HTTP %d: %v", status, err)
		}
		if resp.Status != status || string(resp.Body) != body || resp.Header.Get("X-Ratelimit-Remaining") != "9" {
			t.Errorf("HTTP %d: got status %d, body %q, header %v", status, resp.Status, resp.Body, resp.Header)
		}
	}
}

func TestUpstreamSendsJSONAndHeaders(t *testing.T) {
	var got *http.Request
	var body []byte
	_, err := call(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
	}))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"Accept":        "application/json",
		"User-Agent":    "porthole",
		"Authorization": "Bearer " + testToken,
		"X-Api-Key":     testToken,
	} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if string(body) != `{"hello":"world"}` || got.Method != http.MethodPost {
		t.Errorf("got %s with body %s", got.Method, body)
	}
}

func TestUpstreamClassifiesStatuses(t *testing.T) {
	date := func(d time.Duration) string { return fixedNow.Add(d).Format(http.TimeFormat) }
	epoch := func(d time.Duration) string { return strconv.FormatInt(fixedNow.Add(d).Unix(), 10) }
	epochMilli := func(d time.Duration) string { return strconv.FormatInt(fixedNow.Add(d).UnixMilli(), 10) }
	tests := []struct {
		name      string
		status    int
		header    http.Header
		reason    string
		temporary bool
		after     time.Duration
	}{
		{"429 bare", 429, nil, ReasonRateLimited, true, 0},
		{"429 Retry-After seconds", 429, http.Header{"Retry-After": {"7"}}, ReasonRateLimited, true, 7 * time.Second},
		{"429 Retry-After fraction", 429, http.Header{"Retry-After": {"1.5"}}, ReasonRateLimited, true, 1500 * time.Millisecond},
		{"429 Retry-After HTTP date", 429, http.Header{"Retry-After": {date(90 * time.Second)}}, ReasonRateLimited, true, 90 * time.Second},
		{"429 Retry-After date in the past", 429, http.Header{"Retry-After": {date(-time.Hour)}}, ReasonRateLimited, true, 0},
		{"429 Retry-After garbage", 429, http.Header{"Retry-After": {"soon"}}, ReasonRateLimited, true, 0},
		{"429 reset epoch seconds", 429, http.Header{"X-Ratelimit-Reset": {epoch(30 * time.Second)}}, ReasonRateLimited, true, 30 * time.Second},
		{"429 reset epoch milliseconds", 429, http.Header{"X-Ratelimit-Reset": {epochMilli(2500 * time.Millisecond)}}, ReasonRateLimited, true, 2500 * time.Millisecond},
		{"429 reset delta seconds", 429, http.Header{"X-Ratelimit-Reset": {"12"}}, ReasonRateLimited, true, 12 * time.Second},
		{"429 reset in the past", 429, http.Header{"X-Ratelimit-Reset": {epoch(-time.Minute)}}, ReasonRateLimited, true, 0},
		{"429 Retry-After wins over reset", 429, http.Header{"Retry-After": {"3"}, "X-Ratelimit-Reset": {"40"}}, ReasonRateLimited, true, 3 * time.Second},
		{"429 zero Retry-After falls back to reset", 429, http.Header{"Retry-After": {"0"}, "X-Ratelimit-Reset": {"40"}}, ReasonRateLimited, true, 40 * time.Second},
		{"429 capped Retry-After", 429, http.Header{"Retry-After": {"3600"}}, ReasonRateLimited, true, 10 * time.Minute},
		{"429 capped huge Retry-After", 429, http.Header{"Retry-After": {"1e300"}}, ReasonRateLimited, true, 10 * time.Minute},
		{"429 capped Inf", 429, http.Header{"Retry-After": {"+Inf"}}, ReasonRateLimited, true, 10 * time.Minute},
		{"429 NaN", 429, http.Header{"Retry-After": {"NaN"}}, ReasonRateLimited, true, 0},
		{"429 capped reset date", 429, http.Header{"X-Ratelimit-Reset": {epochMilli(24 * time.Hour)}}, ReasonRateLimited, true, 10 * time.Minute},
		{"429 capped reset far future", 429, http.Header{"X-Ratelimit-Reset": {"99999999999999999999999"}}, ReasonRateLimited, true, 10 * time.Minute},
		{"503", 503, nil, ReasonUnavailable, true, 0},
		{"503 ignores an informational reset", 503, http.Header{"X-Ratelimit-Reset": {epoch(40 * time.Second)}, "X-Ratelimit-Remaining": {"12"}}, ReasonUnavailable, true, 0},
		{"503 with the window used up", 503, http.Header{"X-Ratelimit-Reset": {epoch(40 * time.Second)}, "X-Ratelimit-Remaining": {"0"}}, ReasonUnavailable, true, 40 * time.Second},
		{"503 with a bare reset", 503, http.Header{"X-Ratelimit-Reset": {"40"}}, ReasonUnavailable, true, 40 * time.Second},
		{"500 ignores a reset while calls are left", 500, http.Header{"X-Ratelimit-Reset": {"40"}, "X-Ratelimit-Remaining": {"3"}}, ReasonUnavailable, true, 0},
		{"429 honours the reset even with calls left", 429, http.Header{"X-Ratelimit-Reset": {"40"}, "X-Ratelimit-Remaining": {"3"}}, ReasonRateLimited, true, 40 * time.Second},
		{"503 Retry-After", 503, http.Header{"Retry-After": {"5"}}, ReasonUnavailable, true, 5 * time.Second},
		{"500", 500, nil, ReasonUnavailable, true, 0},
		{"502", 502, nil, ReasonUnavailable, true, 0},
		{"504", 504, nil, ReasonUnavailable, true, 0},
		{"408", 408, nil, ReasonUnavailable, true, 0},
		{"401", 401, http.Header{"Retry-After": {"5"}}, ReasonAuth, false, 0},
		{"403", 403, nil, ReasonAuth, false, 0},
		{"400", 400, http.Header{"Retry-After": {"5"}}, ReasonRejected, false, 0},
		{"404", 404, nil, ReasonRejected, false, 0},
		{"409", 409, nil, ReasonRejected, false, 0},
		{"422", 422, nil, ReasonRejected, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The platform echoes the token in its error body: that must
			// not reach the error either.
			resp, err := call(t, nil, respond(tt.status, tt.header, `{"ok":false,"error":"bad token `+testToken+`"}`))
			if err == nil {
				t.Fatalf("got %+v, want an error", resp)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if e.Reason != tt.reason || e.Temporary != tt.temporary || e.After != tt.after || e.Status != tt.status {
				t.Errorf("got reason %s temporary %v after %v status %d; want %s %v %v %d",
					e.Reason, e.Temporary, e.After, e.Status, tt.reason, tt.temporary, tt.after, tt.status)
			}
			if reason, temporary, after := Classify(err); reason != tt.reason || temporary != tt.temporary || after != tt.after {
				t.Errorf("Classify = %s %v %v", reason, temporary, after)
			}
			if !strings.Contains(err.Error(), "POST /api/v1/conversations") {
				t.Errorf("error %q does not name the call", err)
			}
			noSecret(t, err)
		})
	}
}

func TestUpstreamNetworkErrorIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	u := &Upstream{}
	_, err := u.Do(context.Background(), Request{
		Method: http.MethodPost, URL: url + "/x?access_token=" + testToken,
		Header: http.Header{"Authorization": {"Bearer " + testToken}},
	})
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonUnavailable || !e.Temporary || e.Status != 0 {
		t.Fatalf("got %#v, want a temporary unavailable error", err)
	}
	if !strings.Contains(err.Error(), "network error") {
		t.Errorf("error %q does not say network error", err)
	}
	noSecret(t, err)
}

func TestUpstreamTimeoutIsTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close, so the handler returns
	for _, tt := range []struct {
		name string
		u    *Upstream
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"client timeout", &Upstream{Client: &http.Client{Timeout: 30 * time.Millisecond}}, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
		{"context deadline", &Upstream{}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 30*time.Millisecond)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := tt.u.Do(ctx, Request{
				Method: http.MethodGet, URL: srv.URL + "/slow?access_token=" + testToken,
				Header: http.Header{"Authorization": {"Bearer " + testToken}},
			})
			var e *Error
			if !errors.As(err, &e) || e.Reason != ReasonUnavailable || !e.Temporary {
				t.Fatalf("got %v, want a temporary unavailable error", err)
			}
			if !strings.Contains(err.Error(), "timeout") {
				t.Errorf("error %q does not say timeout", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			noSecret(t, err)
		})
	}
}

func TestUpstreamBadRequestsNeverShowSecrets(t *testing.T) {
	u := &Upstream{}
	// An unparsable URL: net/url's error would quote it whole.
	_, err := u.Do(context.Background(), Request{Method: http.MethodGet, URL: "http://[::1?access_token=" + testToken})
	if reason, temporary, _ := Classify(err); reason != ReasonRejected || temporary {
		t.Errorf("bad URL: got %v", err)
	}
	noSecret(t, err)
	// A body that cannot be encoded.
	_, err = u.Do(context.Background(), Request{Method: http.MethodPost, URL: "http://127.0.0.1:1/?access_token=" + testToken, JSON: map[string]any{"c": make(chan int)}})
	if reason, temporary, _ := Classify(err); reason != ReasonRejected || temporary {
		t.Errorf("bad JSON: got %v", err)
	}
	noSecret(t, err)
}

func TestUpstreamTruncatesLargeBodies(t *testing.T) {
	big := strings.Repeat("x", MaxResponse+4096)
	resp, err := call(t, nil, respond(200, nil, big))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != MaxResponse {
		t.Errorf("read %d bytes, want MaxResponse = %d", len(resp.Body), MaxResponse)
	}
	// An error answer is bounded too, and its body never shows.
	_, err = call(t, nil, respond(500, nil, big+testToken))
	if reason, temporary, _ := Classify(err); reason != ReasonUnavailable || !temporary {
		t.Errorf("got %v", err)
	}
	noSecret(t, err)
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes long: the body leaked into it", len(err.Error()))
	}
}

func TestUpstreamErrorJSONNeverShowsSecrets(t *testing.T) {
	_, err := call(t, nil, respond(401, nil, testToken))
	b, _ := json.Marshal(map[string]string{"err": err.Error()})
	if strings.Contains(string(b), testToken) {
		t.Errorf("error JSON shows the token: %s", b)
	}
	noSecret(t, err)
}
