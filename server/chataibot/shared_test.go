package chataibot_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/provider"
)

// These tests run two adapters of one bot over one Sink and one set of
// durable links: two `porthole serve` processes sharing a store. The
// rig's adapter (process P) sends; the emulator's callbacks go to the
// other's webhook (process Q), as a load balancer may send them.

// statuses records what a webhook answered, in order.
type statuses struct {
	mu   sync.Mutex
	list []int
	seen chan struct{} // one per answer
}

func (s *statuses) all() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.list...)
}

// otherProcess starts process Q for rig r, sharing r's sink and links,
// and points the emulator's callbacks at Q's webhook. entered, when not
// nil, is told each time a callback enters Q's webhook.
func otherProcess(t *testing.T, r *rig, links provider.Links, entered chan<- struct{}) (*chataibot.Adapter, *statuses) {
	t.Helper()
	q, err := chataibot.New(r.cfg, "shop", r.sink, nil, r.logs.Logger(), links)
	if err != nil {
		t.Fatal(err)
	}
	st := &statuses{seen: make(chan struct{}, 16)}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if entered != nil {
			entered <- struct{}{}
		}
		rec := httptest.NewRecorder()
		q.ServeWebhook(rec, req)
		st.mu.Lock()
		st.list = append(st.list, rec.Code)
		st.mu.Unlock()
		st.seen <- struct{}{}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(hook.Close)
	r.emu.SetCallback(hook.URL+"/hooks/chataibot/shop", hookSecret)
	return q, st
}

// The bot's first reply reaches Q while P's start call is still waiting
// for its answer: Q has no start in flight of its own, yet it waits for
// the route P stores, and takes the reply at the first try.
func TestReplyOvertakesStartOnAnotherProcess(t *testing.T) {
	links := &fakeLinker{}
	entered := make(chan struct{}, 10)
	r := newRig(t, rigOptions{linker: links, front: func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if req.URL.Path == "/api/v1/conversations" {
				select {
				case <-entered: // the callback is in Q's webhook
				case <-time.After(2 * time.Second):
					t.Error("the callback did not come while the start answer was held")
				}
				time.Sleep(100 * time.Millisecond) // Q finds no route for a while
			}
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}})
	_, st := otherProcess(t, r, links, entered)
	r.mustSend(text(convA, "c1", "Hello"))
	got := r.sink.Await(t, 1)
	if got[0].Conv != convA || !strings.HasPrefix(got[0].Body.Text, "Welcome!") {
		t.Errorf("stored %+v", got)
	}
	r.idle()
	if s := r.emu.Stats(); s.CallbackAttempts != 1 || s.CallbacksFailed != 0 {
		t.Errorf("%d callback attempts, %d failed: want the first to be taken", s.CallbackAttempts, s.CallbacksFailed)
	}
	if codes := st.all(); len(codes) != 1 || codes[0] != http.StatusOK {
		t.Errorf("Q answered %v", codes)
	}
}

// P's start succeeds but its link cannot be stored, so Q finds no route
// within its wait: it answers 503, not 200, and the platform's retry is
// taken once P's retried Send has stored the link. A 200 would have
// thrown the bot's first reply away.
func TestCallbackRetriedUntilTheRouteIsStored(t *testing.T) {
	links := &fakeLinker{failLink: 1}
	r := newRig(t, rigOptions{linker: links, emu: chataibottest.Options{RetryDelay: 300 * time.Millisecond}})
	q, st := otherProcess(t, r, links, nil)
	chataibot.SetStartWait(q, 100*time.Millisecond)

	first := text(convA, "c1", "Hello")
	if err := r.send(first); err == nil {
		t.Fatal("Send succeeded although the link could not be stored")
	}
	select {
	case <-st.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("no callback reached Q")
	}
	if codes := st.all(); codes[0] != http.StatusServiceUnavailable {
		t.Fatalf("Q answered %v for a conversation whose route is not stored yet, want 503 first", codes)
	}
	if n := len(r.sink.All()); n != 0 {
		t.Fatalf("%d stored before the route exists", n)
	}
	// The service retries the message on P: the link is stored, nothing
	// is sent again.
	r.mustSend(first)
	r.idle()
	got := r.sink.All()
	if len(got) == 0 || got[0].Conv != convA || !strings.HasPrefix(got[0].Body.Text, "Welcome!") {
		t.Fatalf("stored %+v, want the bot's first reply", got)
	}
	for _, d := range got {
		if d.Key != got[0].Key {
			t.Errorf("stored %+v, want one reply batch", got)
		}
	}
	codes := st.all()
	if codes[len(codes)-1] != http.StatusOK {
		t.Errorf("Q answered %v, want the last retry taken", codes)
	}
	if s := r.emu.Stats(); s.Started != 1 || s.CallbacksFailed != 0 {
		t.Errorf("%d started, %d callbacks given up", s.Started, s.CallbacksFailed)
	}
}

// A callback that is not authenticated is refused before any route is
// looked for: only the platform can hold a handler for the route's wait.
func TestUnauthenticatedCallbackDoesNotWait(t *testing.T) {
	links := &fakeLinker{}
	r := newRig(t, rigOptions{linker: links})
	body := `{"conversation_id":"NOT-YET","message_id":"M1","messages":[{"type":"text","data":{"body":"hi"}}]}`
	if status, _ := r.post(body, bearer("wrong-secret-0123456789abcd")); status != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", status)
	}
	links.mu.Lock()
	defer links.mu.Unlock()
	if links.resolved != 0 {
		t.Errorf("an unauthenticated callback made %d route lookups", links.resolved)
	}
}
