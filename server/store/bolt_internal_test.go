package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketTest = []byte("test")

// openTestBolt opens a Bolt at dir with an extra bucket for raw writes.
func openTestBolt(t *testing.T, dir string) *Bolt {
	t.Helper()
	s, err := OpenBolt(filepath.Join(dir, "porthole.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketTest)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// hold occupies the committer with a write that waits for release, so
// that the writes queued meanwhile go into one transaction together.
func hold(t *testing.T, s *Bolt) (release func() error) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.batch(func(*bolt.Tx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	return func() error {
		close(unblock)
		return <-done
	}
}

// queued waits until n writes wait in the queue.
func queued(t *testing.T, s *Bolt, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		got := len(s.queue)
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", got, n)
		}
	}
}

// result is the outcome of one write started by spawn.
type result struct {
	err   error
	txid  int
	panic any
}

// spawn starts a write of key (failing with fail, or panicking when fail
// is errPanic, after writing) and waits until it is queued as the nth.
func spawn(t *testing.T, s *Bolt, n int, key string, fail error) <-chan result {
	t.Helper()
	out := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			r.panic = recover()
			out <- r
		}()
		r.err = s.batch(func(tx *bolt.Tx) error {
			r.txid = tx.ID()
			if err := tx.Bucket(bucketTest).Put([]byte(key), []byte("v")); err != nil {
				return err
			}
			if fail == errPanic {
				panic(fail)
			}
			return fail
		})
	}()
	queued(t, s, n)
	return out
}

var errPanic = errors.New("panic in fn")

func stored(t *testing.T, s *Bolt, key string) bool {
	t.Helper()
	var ok bool
	if err := s.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketTest).Get([]byte(key)) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestBoltGroupCommit checks that the writes queued during a commit share
// the next transaction, and that a write whose fn fails or panics is
// refused alone: its partial writes are gone, the others are committed.
func TestBoltGroupCommit(t *testing.T) {
	s := openTestBolt(t, t.TempDir())
	release := hold(t, s)
	errRefused := errors.New("refused")
	plan := []struct {
		key  string
		fail error
	}{{"a", nil}, {"b", errRefused}, {"c", nil}, {"d", errPanic}, {"e", nil}, {"f", errRefused}}
	var results []<-chan result
	for i, p := range plan {
		results = append(results, spawn(t, s, i+1, p.key, p.fail))
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	txid := -1
	for i, p := range plan {
		r := <-results[i]
		switch p.fail {
		case nil:
			if r.err != nil || r.panic != nil {
				t.Errorf("write %s: err %v, panic %v; want success", p.key, r.err, r.panic)
			}
			if txid >= 0 && r.txid != txid {
				t.Errorf("write %s committed in transaction %d, the others in %d", p.key, r.txid, txid)
			}
			txid = r.txid
		case errPanic:
			if r.panic != errPanic {
				t.Errorf("write %s: panic %v, err %v; want its panic on the caller", p.key, r.panic, r.err)
			}
		default:
			if !errors.Is(r.err, p.fail) {
				t.Errorf("write %s: err %v; want %v", p.key, r.err, p.fail)
			}
		}
		if got := stored(t, s, p.key); got != (p.fail == nil) {
			t.Errorf("write %s: stored %v, want %v", p.key, got, p.fail == nil)
		}
	}
	// The store goes on after a panic.
	if err := s.batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketTest).Put([]byte("g"), nil) }); err != nil {
		t.Fatal(err)
	}
}

// TestBoltCloseDrains checks that Close commits the writes already queued,
// refuses later ones and returns.
func TestBoltCloseDrains(t *testing.T) {
	dir := t.TempDir()
	s := openTestBolt(t, dir)
	release := hold(t, s)
	var results []<-chan result
	for i := range 5 {
		results = append(results, spawn(t, s, i+1, fmt.Sprint(i), nil))
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for {
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.batch(func(*bolt.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("write during Close: %v, want ErrClosed", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r := <-r; r.err != nil {
			t.Errorf("write %d queued before Close: %v", i, r.err)
		}
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	s = openTestBolt(t, dir)
	for i := range 5 {
		if !stored(t, s, fmt.Sprint(i)) {
			t.Errorf("write %d queued before Close is lost", i)
		}
	}
}

// tinyDisk mounts a tmpfs of size bytes and returns its directory. It
// needs root: it skips without, except in CI, where it must run.
func tinyDisk(t *testing.T, size int) string {
	t.Helper()
	inCI := os.Getenv("CI") == "true"
	if os.Geteuid() != 0 && !inCI {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if !inCI {
			t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
		}
		t.Fatalf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			return path
		}
	}
}

// TestBoltDiskFull fails a commit for want of space: every write of that
// transaction must fail with the error and nothing of them be stored, and
// once there is space again the store must work on, also after a reopen.
func TestBoltDiskFull(t *testing.T) {
	dir := tinyDisk(t, 4<<20)
	ctx := context.Background()
	s := openTestBolt(t, dir)
	c, _, err := s.Conversation(ctx, "bot", "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, Message{Conversation: c.ID, ClientID: "before", From: FromUser, State: Pending}); err != nil {
		t.Fatal(err)
	}

	release := hold(t, s)
	filler := fill(t, dir)
	big := bytes.Repeat([]byte("x"), 64<<10) // beyond any free page: needs new space
	const n = 5
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := s.Append(ctx, Message{Conversation: c.ID, ClientID: fmt.Sprint("full", i), From: FromUser, Body: big, State: Pending})
			errs <- err
		}()
		queued(t, s, i+1)
	}
	release() // its own commit may fail too: the disk is already full
	for range n {
		if err := <-errs; !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("append on a full disk: %v, want ENOSPC", err)
		}
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil || got.Last != 1 {
		t.Fatalf("after the failed commit: %+v, %v; want Last 1", got, err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, dup, err := s.Append(ctx, Message{Conversation: c.ID, ClientID: fmt.Sprint("full", i), From: FromUser, Body: big, State: Pending})
		if err != nil || dup || m.Seq != uint64(i+2) {
			t.Fatalf("append %d after freeing space: seq %d, dup %v, err %v; want seq %d", i, m.Seq, dup, err, i+2)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestBolt(t, dir)
	msgs, err := s.Read(ctx, c.ID, 0, 100)
	if err != nil || len(msgs) != n+1 {
		t.Fatalf("after reopen: %d messages, %v; want %d", len(msgs), err, n+1)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Errorf("message %d has seq %d", i, m.Seq)
		}
	}
	out, err := s.Outbox(ctx, 100)
	if err != nil || len(out) != n+1 {
		t.Errorf("Outbox after reopen: %d, %v; want %d", len(out), err, n+1)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Errorf("file check after reopen: %v", err)
	}
}

// TestBoltPruneDeletesClaims checks that Prune leaves no claim record of a
// conversation it deleted, which no Store method could tell.
func TestBoltPruneDeletesClaims(t *testing.T) {
	ctx := t.Context()
	s := openTestBolt(t, t.TempDir())
	var ids []string
	for _, v := range []string{"a", "b"} {
		c, _, err := s.Conversation(ctx, "bot", v)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Claim(ctx, c.ID, "owner", time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatalf("Claim = %v, %v", ok, err)
		}
		ids = append(ids, c.ID)
	}
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	if err := s.view(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketClaim).Stats().KeyN; n != 0 {
			t.Errorf("%d claim records left after pruning %v", n, ids)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
