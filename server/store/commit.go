package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// write is one queued write: fn runs in a transaction of the committer,
// which sends the outcome on done (buffered, so the committer never waits
// for the writer).
type write struct {
	fn   func(*bolt.Tx) error
	err  error // fn's own error, kept until the batch's commit is known
	done chan error
}

// maxBatch bounds the writes of one transaction, so that a burst does not
// make one transaction (and the reruns after a refused write) unbounded;
// the rest goes into the next transaction at once.
const maxBatch = 1000

// batch runs fn in the committer's next write transaction, shared with the
// other writes queued meanwhile, and returns when that transaction is on
// disk. fn may run more than once (when another write of its transaction
// fails, the transaction is rolled back and run again without it), so it
// must set all its results on every run. A nil error means fn's writes are
// committed and fsynced; an error means nothing of fn was stored.
//
// batch does not give up when the caller's context ends: the wait is one
// commit at most, and a write whose caller left would still commit, which
// would make its outcome unknown. The service relies on that: it records
// a delivery with a context that shutdown has already cancelled.
func (s *Bolt) batch(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan error, 1)}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return ErrClosed
	}
	s.queue = append(s.queue, w)
	s.wake.Signal()
	s.mu.Unlock()
	err := <-w.done
	if p, ok := err.(panicked); ok {
		panic(p.reason) // on the writer's goroutine, as db.Update would
	}
	return s.wrap(err)
}

// committer is the group commit: it takes every write queued so far, runs
// them in one transaction (one fsync), answers them all and starts over
// with what arrived meanwhile. There is no timer: a lone write commits at
// once, and under load the writes that queue during one commit share the
// next. It returns once Close has stopped the queue and it is empty.
func (s *Bolt) committer() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.stopping {
			s.wake.Wait()
		}
		ws := s.queue
		s.queue, s.spare = s.spare[:0], nil
		s.mu.Unlock()
		if len(ws) == 0 { // stopping, and everything is answered
			return
		}
		for rest := ws; len(rest) > 0; {
			n := min(len(rest), maxBatch)
			s.commit(rest[:n])
			rest = rest[n:]
		}
		clear(ws)
		s.mu.Lock()
		s.spare = ws[:0]
		s.mu.Unlock()
	}
}

// commit runs ws in one transaction and answers each. A write whose fn
// fails (or panics) is taken out and the transaction is run again without
// it, since bbolt cannot roll back one write of a transaction; it gets its
// own error once the others are committed. When the commit fails (disk
// full, I/O error) every write of ws gets that error, the ones whose fn
// failed too: their fn saw writes that were then not stored.
func (s *Bolt) commit(ws []*write) {
	pending := ws
	var refused []*write
	var err error
	for len(pending) > 0 {
		failed := -1
		err = s.db.Update(func(tx *bolt.Tx) error {
			for i, w := range pending {
				if err := safely(w.fn, tx); err != nil {
					failed, w.err = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			break
		}
		refused = append(refused, pending[failed])
		pending = append(pending[:failed:failed], pending[failed+1:]...)
		err = nil
	}
	for _, w := range pending {
		w.done <- err
	}
	for _, w := range refused {
		if err != nil {
			w.done <- err
		} else {
			w.done <- w.err
		}
	}
}

// panicked carries a panic of a write's fn from the committer to the
// writer's goroutine, where batch raises it again.
type panicked struct{ reason any }

func (p panicked) Error() string { return fmt.Sprintf("panic: %v", p.reason) }

// safely calls fn, turning a panic into a panicked error so that one bad
// write cannot kill the committer and leave every other writer waiting.
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicked{p}
		}
	}()
	return fn(tx)
}

func (s *Bolt) update(fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.wrap(s.db.Update(fn))
}
