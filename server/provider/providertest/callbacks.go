package providertest

// The callback side of an emulator: where callbacks go, the faults that
// apply to them, their retrying delivery, and their record.

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// Callback is one callback an emulator sent to the proxy's webhook, or
// meant to: a POST attempt, or one a DropCallbacks fault lost. Tests read
// them to see what the proxy was offered and how it answered.
type Callback struct {
	// Conversation is who it is for, in the platform's terms: Chatlayer's
	// senderId, ChatAIBot's conversation_id.
	Conversation string
	// Seq is the platform's number for it where it numbers them
	// (Chatlayer's messageCounter), else 0.
	Seq uint64
	// Epoch numbers the runs of Seq where the platform starts it again
	// (Chatlayer's sessions, after an expiry), from 0.
	Epoch     uint64
	Attempt   int         // 1 for the first try; 0 for a dropped one
	Dropped   bool        // never sent
	Duplicate bool        // the second copy of a DuplicateCallbacks fault
	Header    http.Header // as sent
	Body      []byte      // as sent, or as it would have been
	Status    int         // the proxy's answer; 0 when the POST failed
	Err       string      // why the POST failed, or why it was dropped
	At        time.Time   // when it was sent or dropped
}

func (cb Callback) clone() Callback {
	cb.Header, cb.Body = cb.Header.Clone(), bytes.Clone(cb.Body)
	return cb
}

// CallbackStats counts what became of the callbacks, for assertions.
type CallbackStats struct {
	Attempts   int // POSTs tried, retries and duplicates included
	Delivered  int // callbacks the proxy acknowledged with a 2xx, duplicates included
	Failed     int // callbacks given up after every retry
	Dropped    int // callbacks never sent
	Duplicated int // callbacks sent a second time by DuplicateCallbacks
}

// Stats returns the counters of the callbacks so far.
func (k *Kit) Stats() CallbackStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stats
}

// Drop records cb as dropped (with Err saying why, if not a
// DropCallbacks fault) without sending it.
func (k *Kit) Drop(cb Callback) {
	cb.Dropped, cb.Attempt, cb.At = true, 0, time.Now()
	k.mu.Lock()
	k.callbacks = append(k.callbacks, cb.clone())
	k.stats.Dropped++
	k.mu.Unlock()
}

// Post sends cb.Body to the target as JSON, with the target's headers,
// and tries again after the platform's pause on a network error or a
// status other than 2xx, Retries times at most; each attempt is recorded
// as a copy of cb. It reports whether the proxy took the callback: false
// also when the Kit closed first or the URL is not one.
func (k *Kit) Post(cb Callback) bool {
	for attempt := 1; attempt <= 1+k.opts.Retries; attempt++ {
		if attempt > 1 && !k.Sleep(k.opts.RetryPause(attempt-1)) {
			return false
		}
		k.mu.Lock()
		url, header := k.url, k.header.Clone()
		k.mu.Unlock()
		a := cb
		a.Attempt, a.At = attempt, time.Now()
		if url == "" {
			a.Err = "no callback URL set"
			k.record(a)
			continue
		}
		req, err := http.NewRequestWithContext(k.ctx, http.MethodPost, url, bytes.NewReader(cb.Body))
		if err != nil {
			a.Err = "bad callback URL"
			k.record(a)
			break
		}
		if header == nil {
			header = http.Header{}
		}
		header.Set("Content-Type", "application/json")
		req.Header, a.Header = header, header.Clone()
		resp, err := k.opts.Client.Do(req)
		if err != nil {
			a.Err = err.Error()
		} else {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			a.Status = resp.StatusCode
		}
		if k.record(a) {
			return true
		}
		if k.ctx.Err() != nil {
			return false
		}
	}
	k.mu.Lock()
	k.stats.Failed++
	k.mu.Unlock()
	return false
}

// record keeps an attempt and counts it; it reports whether the proxy
// took it.
func (k *Kit) record(a Callback) bool {
	ok := a.Status >= 200 && a.Status < 300
	k.mu.Lock()
	defer k.mu.Unlock()
	k.callbacks = append(k.callbacks, a.clone())
	k.stats.Attempts++
	if ok {
		k.stats.Delivered++
	}
	if a.Duplicate && a.Attempt == 1 {
		k.stats.Duplicated++
	}
	return ok
}

// SetTarget sets where callbacks go and the headers they carry besides
// Content-Type (the platform's authentication, if it sends any). An
// empty url makes each attempt fail.
func (k *Kit) SetTarget(url string, header http.Header) {
	k.mu.Lock()
	k.url, k.header = url, header.Clone()
	k.mu.Unlock()
}

// Target returns the callback URL.
func (k *Kit) Target() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.url
}

// take uses up one of a fault counter.
func (k *Kit) take(n *int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if *n <= 0 {
		return false
	}
	*n--
	return true
}

// TakeDrop reports whether the next callback is to be dropped (a
// DropCallbacks fault), using the fault up.
func (k *Kit) TakeDrop() bool { return k.take(&k.drop) }

// TakeDuplicate reports whether the next callback is to be sent twice (a
// DuplicateCallbacks fault), using the fault up.
func (k *Kit) TakeDuplicate() bool { return k.take(&k.dup) }

// TakeReorder reports whether the next reply batch is to go out of order
// (a ReorderCallbacks fault), using the fault up.
func (k *Kit) TakeReorder() bool { return k.take(&k.reorder) }

// CallbackDelay returns the wait DelayCallbacks set before each callback.
func (k *Kit) CallbackDelay() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.delay
}

// AddPending adds n (which may be negative) to the count of callback
// batches queued or in flight, which WaitIdle waits to see at zero.
func (k *Kit) AddPending(n int) {
	k.mu.Lock()
	k.pending += n
	k.mu.Unlock()
}
