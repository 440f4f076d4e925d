package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/server/store/storetest"
)

func openBolt(t testing.TB, path string) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openBolt(t, filepath.Join(t.TempDir(), "porthole.db"))
	})
}

func TestBoltCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "porthole")
	path := filepath.Join(dir, "porthole.db")
	openBolt(t, path)
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestBoltReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "porthole.db")
	s := openBolt(t, path)
	c, _, err := s.Conversation(ctx, "bot", "v")
	if err != nil {
		t.Fatal(err)
	}
	var stored []store.Message
	for i := range 3 {
		m, _, err := s.Append(ctx, store.Message{Conversation: c.ID, ClientID: fmt.Sprint(i), From: store.FromUser, Body: []byte(`{"text":"hi"}`), Payload: "p", State: store.Pending})
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, m)
	}
	if _, err := s.SetState(ctx, c.ID, 1, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBolt(t, path)
	again, created, err := s.Conversation(ctx, "bot", "v")
	if err != nil || created || again.ID != c.ID || again.Last != 3 {
		t.Fatalf("after reopen: %+v, created %v, err %v", again, created, err)
	}
	m, dup, err := s.Append(ctx, store.Message{Conversation: c.ID, ClientID: "2"})
	if err != nil || !dup || m.ID != stored[2].ID {
		t.Errorf("duplicate after reopen: %+v, dup %v, err %v", m, dup, err)
	}
	if m, _, err := s.Append(ctx, store.Message{Conversation: c.ID, From: store.FromBot}); err != nil || m.Seq != 4 {
		t.Errorf("append after reopen: seq %d, err %v; want 4", m.Seq, err)
	}
	out, err := s.Outbox(ctx, 10)
	if err != nil || len(out) != 2 || out[0].Seq != 2 || out[1].Seq != 3 || out[0].ID != stored[1].ID || string(out[0].Body) != `{"text":"hi"}` {
		t.Errorf("Outbox after reopen = %+v, %v; want seqs 2 and 3", out, err)
	}
}

// TestBoltReopenClaims checks that a claim outlives a restart of the
// process that holds the file: another owner still waits for its lease.
func TestBoltReopenClaims(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "porthole.db")
	s := openBolt(t, path)
	c, _, err := s.Conversation(ctx, "bot", "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, store.Message{Conversation: c.ID, From: store.FromUser, State: store.Pending}); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	if ok, err := s.Claim(ctx, c.ID, "before", until); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBolt(t, path)
	if ok, err := s.Claim(ctx, c.ID, "after", until); err != nil || ok {
		t.Errorf("Claim of a conversation claimed before the restart = %v, %v; want false", ok, err)
	}
	if ids, err := s.Unclaimed(ctx, until, 10); err != nil || len(ids) != 1 || ids[0] != c.ID {
		t.Errorf("Unclaimed when the lease ran out = %v, %v; want [%s]", ids, err, c.ID)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	openBolt(t, path)
	start := time.Now()
	s, err := store.OpenBolt(path, store.BoltOptions{Timeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second OpenBolt on an open file succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another porthole") {
		t.Errorf("error %q does not name %s and the likely cause", err, path)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second OpenBolt took %v to fail", d)
	}
}

// TestBoltCrash kills a process in the middle of concurrent appends and
// checks that every acknowledged message survived, with no hole in seq.
func TestBoltCrash(t *testing.T) {
	if path := os.Getenv("PORTHOLE_STORE_CRASH"); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := filepath.Join(t.TempDir(), "porthole.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltCrash$")
	cmd.Env = append(os.Environ(), "PORTHOLE_STORE_CRASH="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var conv string
	acked := map[uint64]string{} // seq -> message id
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && len(acked) < 200 {
		f := strings.Fields(lines.Text())
		if len(f) == 1 {
			conv = f[0]
			continue
		}
		seq, _ := strconv.ParseUint(f[0], 10, 64)
		acked[seq] = f[1]
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("child acknowledged only %d appends", len(acked))
	}

	s := openBolt(t, path)
	c, err := s.Get(t.Context(), conv)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Read(t.Context(), conv, 0, int(c.Last)+1)
	if err != nil || uint64(len(msgs)) != c.Last {
		t.Fatalf("Read = %d messages, %v; want Last = %d", len(msgs), err, c.Last)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
		if id, ok := acked[m.Seq]; ok && id != m.ID {
			t.Errorf("seq %d: acknowledged id %s, stored %s", m.Seq, id, m.ID)
		}
		delete(acked, m.Seq)
	}
	if len(acked) > 0 {
		t.Errorf("%d acknowledged messages lost", len(acked))
	}
	t.Logf("%d messages survived the kill", c.Last)
}

// crashChild appends from 8 goroutines until it is killed, printing the
// conversation id and then "seq id" for each acknowledged append.
func crashChild(path string) {
	s, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	c, _, err := s.Conversation(ctx, "bot", "v")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	fmt.Println(c.ID)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				m, _, err := s.Append(ctx, store.Message{Conversation: c.ID, From: store.FromUser, State: store.Pending})
				if err != nil {
					if !errors.Is(err, store.ErrClosed) {
						fmt.Fprintln(os.Stderr, err)
					}
					return
				}
				mu.Lock()
				fmt.Println(m.Seq, m.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(1)
}
