package redistest

import "testing"

// TestStart: a server starts, answers and stops.
func TestStart(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(t.Context(), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	s.Stop()
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Fatal("the server still answers after Stop")
	}
}
