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

// TestRestartKeepsAppendOnly: killed and started again with
// appendfsync always, the server has every write it acknowledged, on
// the same address.
func TestRestartKeepsAppendOnly(t *testing.T) {
	s := Start(t, "--appendonly", "yes", "--appendfsync", "always")
	c := s.Client(t)
	for i := range 100 {
		if err := c.RPush(t.Context(), "list", i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	s.Restart(t)
	if n, err := c.LLen(t.Context(), "list").Result(); err != nil || n != 100 {
		t.Fatalf("after a restart: LLEN = %d, %v; want the 100 acknowledged pushes", n, err)
	}
	s.Stop()
	s.Restart(t) // after Stop, too
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRestartWithoutPersistence: by default a restarted server starts
// empty, which is what makes the persistence test above mean something.
func TestRestartWithoutPersistence(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if n, err := c.Exists(t.Context(), "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after a restart without persistence = %d, %v; want 0", n, err)
	}
}
