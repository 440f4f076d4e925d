package providertest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
	"github.com/porthole-chat/porthole/widget"
)

var _ provider.Sink = (*providertest.Sink)(nil)

// fakeTB records what the kit reports, so that failures it must raise can
// be seen without failing this test.
type fakeTB struct {
	mu       sync.Mutex
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Errorf(format, args...) }
func (f *fakeTB) Cleanup(fn func())                 { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) end() []string {
	for _, fn := range f.cleanups {
		fn()
	}
	return f.errors
}

func TestSinkStoresOncePerKeyAndPosition(t *testing.T) {
	ctx := t.Context()
	s := providertest.NewSink(t, "a", "b")
	s.Deliver(ctx, "a", "k1", widget.Text("one"), widget.Text("two"))
	s.Deliver(ctx, "a", "k1", widget.Text("one"), widget.Text("two"), widget.Text("three")) // a retry that says more
	s.Deliver(ctx, "b", "k1", widget.Text("other conversation"))
	s.Deliver(ctx, "a", "", widget.Text("unkeyed"))
	s.Deliver(ctx, "a", "", widget.Text("unkeyed"))
	if got := s.Texts("a"); !reflect.DeepEqual(got, []string{"one", "two", "three", "unkeyed", "unkeyed"}) {
		t.Errorf("texts of a = %q", got)
	}
	if got := s.Deliveries("b"); len(got) != 1 || got[0].Key != "k1" || got[0].Conv != "b" {
		t.Errorf("deliveries of b = %+v", got)
	}
	if len(s.All()) != 6 || s.Calls() != 5 {
		t.Errorf("%d stored in %d calls", len(s.All()), s.Calls())
	}
}

func TestSinkConversationsAndFailures(t *testing.T) {
	ctx := t.Context()
	s := providertest.NewSink(t, "a")
	if err := s.Deliver(ctx, "nope", "k", widget.Text("x")); !errors.Is(err, provider.ErrUnknownConversation) {
		t.Errorf("unknown conversation: %v", err)
	}
	if _, err := s.Attr(ctx, "nope", "k"); !errors.Is(err, provider.ErrUnknownConversation) {
		t.Errorf("Attr of an unknown conversation: %v", err)
	}
	if err := s.SetAttr(ctx, "nope", "k", "v"); !errors.Is(err, provider.ErrUnknownConversation) {
		t.Errorf("SetAttr of an unknown conversation: %v", err)
	}
	s.FailDeliver(1)
	s.FailDeliver(1)
	for i := range 2 {
		if err := s.Deliver(ctx, "a", "k", widget.Text("x")); !errors.Is(err, providertest.ErrInjected) {
			t.Errorf("injected failure %d: %v", i, err)
		}
	}
	if err := s.Deliver(ctx, "a", "k", widget.Text("x")); err != nil || len(s.All()) != 1 {
		t.Errorf("after the failures: %v, %d stored", err, len(s.All()))
	}
	s.FailSetAttr(1)
	if err := s.SetAttr(ctx, "a", "k", "v"); !errors.Is(err, providertest.ErrInjected) {
		t.Errorf("injected SetAttr failure: %v", err)
	}
	s.SetAttr(ctx, "a", "k", "v")
	if v, err := s.Attr(ctx, "a", "k"); v != "v" || err != nil {
		t.Errorf("Attr = %q, %v", v, err)
	}
	// CompareAndSetAttr: only from the value named ("" for none), and
	// an injected failure applies to it too.
	if ok, err := s.CompareAndSetAttr(ctx, "a", "n", "", "1"); !ok || err != nil {
		t.Errorf("CAS from absent: %v, %v", ok, err)
	}
	if ok, err := s.CompareAndSetAttr(ctx, "a", "n", "", "2"); ok || err != nil {
		t.Errorf("CAS from a stale absent: %v, %v", ok, err)
	}
	if ok, err := s.CompareAndSetAttr(ctx, "a", "n", "1", "2"); !ok || err != nil {
		t.Errorf("CAS from the current value: %v, %v", ok, err)
	}
	if v, _ := s.Attr(ctx, "a", "n"); v != "2" {
		t.Errorf("after CAS: %q", v)
	}
	if _, err := s.CompareAndSetAttr(ctx, "nope", "n", "", "1"); !errors.Is(err, provider.ErrUnknownConversation) {
		t.Errorf("CAS of an unknown conversation: %v", err)
	}
	s.FailSetAttr(1)
	if ok, err := s.CompareAndSetAttr(ctx, "a", "n", "2", "3"); ok || !errors.Is(err, providertest.ErrInjected) {
		t.Errorf("injected CAS failure: %v, %v", ok, err)
	}
	if v, _ := s.Attr(ctx, "a", "n"); v != "2" {
		t.Errorf("a failed CAS set %q", v)
	}
	s.Typing("a", true)
	s.Typing("a", false)
	if got := s.Typings(); !reflect.DeepEqual(got, []string{"a:on", "a:off"}) {
		t.Errorf("typings %q", got)
	}

	open := providertest.NewSink(t)
	if err := open.Deliver(ctx, "any", "k", widget.Text("x")); err != nil {
		t.Errorf("a sink without named conversations refused one: %v", err)
	}
}

func TestSinkReportsInvalidBodies(t *testing.T) {
	tb := &fakeTB{}
	s := providertest.NewSink(tb)
	if err := s.Deliver(t.Context(), "a", "k", widget.Body{Kind: "nonsense"}); err == nil {
		t.Error("an invalid body was taken")
	}
	if errs := tb.end(); len(errs) != 1 || !strings.Contains(errs[0], "does not validate") {
		t.Errorf("reported %q", errs)
	}
}

func TestSinkAwait(t *testing.T) {
	s := providertest.NewSink(t)
	go func() {
		time.Sleep(10 * time.Millisecond)
		s.Deliver(context.Background(), "a", "k", widget.Text("1"), widget.Text("2"))
	}()
	if got := s.Await(t, 2); len(got) != 2 {
		t.Errorf("Await returned %d", len(got))
	}
}

func TestLogBuffer(t *testing.T) {
	var b providertest.LogBuffer
	b.Logger().Debug("quiet", "k", "v")
	if !strings.Contains(b.String(), "msg=quiet k=v") {
		t.Errorf("debug line missing: %q", b.String())
	}
}

// hook is a webhook that answers the statuses in fail, then 200.
type hook struct {
	mu   sync.Mutex
	fail []int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.fail) > 0 {
		w.WriteHeader(h.fail[0])
		h.fail = h.fail[1:]
	}
}

func TestPostRetriesWithThePlatformsPauses(t *testing.T) {
	h := &hook{fail: []int{500, 503}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var pauses []int
	k := providertest.NewKit(providertest.KitOptions{Retries: 3, RetryPause: func(n int) time.Duration {
		pauses = append(pauses, n)
		return time.Millisecond
	}})
	defer k.Close()
	c := k.Controls()
	k.SetTarget(srv.URL, http.Header{"Authorization": {"Bearer s"}})
	if !k.Post(providertest.Callback{Conversation: "c", Seq: 7, Body: []byte(`{}`)}) {
		t.Fatal("not delivered after two failures")
	}
	cbs := c.Callbacks()
	var got []string
	for _, cb := range cbs {
		got = append(got, fmt.Sprint(cb.Attempt, ":", cb.Status))
		if cb.Conversation != "c" || cb.Seq != 7 || cb.Header.Get("Authorization") != "Bearer s" || cb.Header.Get("Content-Type") != "application/json" {
			t.Errorf("attempt %+v", cb)
		}
	}
	if strings.Join(got, " ") != "1:500 2:503 3:200" || !reflect.DeepEqual(pauses, []int{1, 2}) {
		t.Errorf("attempts %v, pauses %v", got, pauses)
	}

	h.fail = []int{500, 500, 500, 500}
	if k.Post(providertest.Callback{Body: []byte(`{}`)}) {
		t.Error("delivered although every attempt failed")
	}
	k.SetTarget("", nil)
	k.Post(providertest.Callback{Body: []byte(`{}`)})
	if last := c.Callbacks()[len(c.Callbacks())-1]; last.Err == "" || last.Attempt != 4 {
		t.Errorf("without a URL: %+v", last)
	}
	k.SetTarget("http://bad host/", nil)
	k.Post(providertest.Callback{Body: []byte(`{}`)})
	k.Drop(providertest.Callback{Body: []byte(`{}`)})
	k.SetTarget(srv.URL, nil)
	k.Post(providertest.Callback{Body: []byte(`{}`), Duplicate: true})
	want := providertest.CallbackStats{Attempts: 3 + 4 + 4 + 1 + 1, Delivered: 2, Failed: 3, Dropped: 1, Duplicated: 1}
	if st := k.Stats(); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestControlsQueueFaults(t *testing.T) {
	k := providertest.NewKit(providertest.KitOptions{})
	defer k.Close()
	c := k.Controls()
	c.FailNext(1, 429, http.Header{"retry-after": {"3"}})
	k.Inject(1, providertest.Fault{Status: 200, Message: "paused"})
	c.FailNext(1, 503, nil)
	var got []string
	for {
		f, ok := k.TakeFault()
		if !ok {
			break
		}
		got = append(got, fmt.Sprint(f.Status, f.Message, f.Header))
	}
	if strings.Join(got, "|") != "429map[Retry-After:[3]]|200pausedmap[]|503map[]" {
		t.Errorf("faults in order %q", got)
	}
	c.DropCallbacks(1)
	c.DropCallbacks(1)
	c.DuplicateCallbacks(1)
	c.ReorderCallbacks(1)
	if !k.TakeDrop() || !k.TakeDrop() || k.TakeDrop() || !k.TakeDuplicate() || k.TakeDuplicate() || !k.TakeReorder() || k.TakeReorder() {
		t.Error("callback faults are not counted down")
	}
	c.DelayCallbacks(time.Second)
	if k.CallbackDelay() != time.Second {
		t.Error("DelayCallbacks not kept")
	}
}

func TestStallAndIdle(t *testing.T) {
	k := providertest.NewKit(providertest.KitOptions{})
	c := k.Controls()
	c.Slow(30 * time.Millisecond)
	start := time.Now()
	if !k.Stall(httptest.NewRequest(http.MethodPost, "/", nil)) || time.Since(start) < 30*time.Millisecond {
		t.Error("Slow did not hold the answer")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if k.Stall(httptest.NewRequest(http.MethodPost, "/", nil).WithContext(ctx)) {
		t.Error("a client that gave up is still answered")
	}

	k.AddPending(1)
	k.Go(func() { k.Sleep(20 * time.Millisecond); k.AddPending(-1) })
	providertest.Idle(t, c)
	short, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	k.AddPending(1)
	if err := c.WaitIdle(short); err == nil {
		t.Error("idle with a callback pending")
	}
	k.Close()
	if k.Go(func() {}) || k.Sleep(time.Hour) || !k.Closed() {
		t.Error("a closed Kit still runs and sleeps")
	}
}

func TestRateWindow(t *testing.T) {
	w := providertest.RateWindow{Limit: 2, Window: time.Minute}
	t0 := time.Unix(1000, 0)
	var got []string
	for _, at := range []time.Duration{0, time.Second, 2 * time.Second, time.Minute} {
		limited, remaining, reset := w.Take(t0.Add(at))
		got = append(got, fmt.Sprint(limited, remaining, reset.Sub(t0)))
	}
	if strings.Join(got, " | ") != "false 1 1m0s | false 0 1m0s | true 0 1m0s | false 1 2m0s" {
		t.Errorf("takes %q", got)
	}
	unlimited := providertest.RateWindow{Limit: -1, Window: time.Minute}
	if limited, _, _ := unlimited.Take(t0); limited {
		t.Error("no limit limited")
	}
}

func TestPositiveOr(t *testing.T) {
	if providertest.PositiveOr(0, 5) != 5 || providertest.PositiveOr(-1, 5) != 5 || providertest.PositiveOr(3, 5) != 3 {
		t.Error("PositiveOr")
	}
}
