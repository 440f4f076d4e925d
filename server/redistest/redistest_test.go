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

// TestStartCluster: a three-node cluster serves keys of every slot.
func TestStartCluster(t *testing.T) {
	c := StartCluster(t)
	cc := c.Client(t)
	for _, k := range []string{"a", "b", "c", "{x}1", "{y}2", "zz"} {
		if err := cc.Set(t.Context(), k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
}
