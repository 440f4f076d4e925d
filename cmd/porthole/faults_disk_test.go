package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
)

// mountTmpfs mounts a tmpfs of size bytes on dir (root only) until the
// test ends. Outside CI a test that cannot mount skips; in CI it fails.
func mountTmpfs(t *testing.T, dir string, size int, opts ...string) {
	t.Helper()
	args := []string{"-t", "tmpfs", "-o", strings.Join(append([]string{fmt.Sprintf("size=%d", size)}, opts...), ","), "tmpfs", dir}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
		}
		t.Fatalf("cannot mount a tmpfs (CI runs as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes a file into dir until the filesystem is full.
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
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestFaultDataDirFull: the store's filesystem fills up during a burst.
// A message that could not be stored gets an error frame, never an ack;
// a reply the platform posts meanwhile gets a 500 and is posted again;
// once there is room, the widgets' retries store every message once.
func TestFaultDataDirFull(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mountTmpfs(t, data, 4<<20)
	r := newFaultRig(t, chataibottest.Options{RetryDelay: 700 * time.Millisecond}, data, "")
	before := visitors("room", 2, 3, 10*time.Millisecond)
	runAll(t, r.addr, before, 30*time.Second)
	filler := fill(t, data)

	pad := strings.Repeat("y", 3000) // each message needs new pages
	vs := visitors("full", 4, 10, 20*time.Millisecond)
	for _, v := range vs {
		for i := range v.texts {
			v.texts[i] += " " + pad
		}
	}
	wait := startAll(t, r.addr, vs, 2*time.Minute)
	waitFor(t, "error frames for messages that could not be stored", 30*time.Second, func() bool {
		n := 0
		for _, v := range vs {
			v.mu.Lock()
			n += sumCounts(v.codes)
			v.mu.Unlock()
		}
		return n >= 5
	})
	unacked := 0
	for _, v := range vs {
		v.mu.Lock()
		unacked += len(v.outbox)
		v.mu.Unlock()
	}
	if unacked == 0 {
		t.Fatal("every message was acknowledged on a full disk")
	}
	time.Sleep(time.Second)
	os.Remove(filler)
	wait()
	r.settle(append(before, vs...), time.Minute)
	if !strings.Contains(r.p.log(), "no space left on device") {
		t.Fatal("the server never logged the full disk")
	}
	r.audit(append(before, vs...), nil)
}

// TestFaultDataDirReadOnly: a read-only data directory stops the server at
// start with a message naming the directory and what to do.
func TestFaultDataDirReadOnly(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mountTmpfs(t, data, 1<<20, "ro")
	out, err := exec.Command(binary, "serve", "--listen", freeAddr(t), "--data", data).CombinedOutput()
	if err == nil {
		t.Fatalf("the server started on a read-only data directory:\n%s", out)
	}
	for _, want := range []string{data, "read-only", "--data"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the error does not mention %q:\n%s", want, out)
		}
	}
	t.Logf("%s", out)
}

// TestWidgetDataDirFull: in a real browser, a message typed while the
// proxy's disk is full shows as still sending, with the reason; the
// widget sends it again by itself, and once there is room it is stored
// and answered once.
func TestWidgetDataDirFull(t *testing.T) {
	data := t.TempDir()
	mountTmpfs(t, data, 4<<20)
	s := newSiteIn(t, data)
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/")
	click(t, ctx, ".launcher")
	botSays(t, ctx, "Where shall we start?")
	filler := fill(t, data)

	// Long messages need new pages in the store; the first that cannot
	// be stored shows why it is still sending.
	notSaved := `Array.from(` + shadow + `.querySelectorAll(".msg.user .meta")).some(function(m){return m.textContent.indexOf("Not saved yet") >= 0})`
	pad := strings.Repeat("z", 3000)
	typed := 0
	for typed < 12 && !evalJS[bool](t, ctx, notSaved) {
		typed++
		js := in(".composer textarea") + `.value = ` + jsString(fmt.Sprintf("full disk %d %s", typed, pad)) + `;` +
			in(".composer textarea") + `.dispatchEvent(new Event("input"))`
		evalJS[any](t, ctx, js)
		typeMessage(t, ctx, "")
		time.Sleep(300 * time.Millisecond)
	}
	waitJS(t, ctx, "a message shown as not saved yet", notSaved)
	os.Remove(filler)
	waitJS(t, ctx, "every message stored once there is room",
		`!Array.from(`+shadow+`.querySelectorAll(".msg.user .meta")).some(function(m){return m.textContent.indexOf("Not saved yet") >= 0 || m.textContent.indexOf("Sending") >= 0})`)
	_, msgs := replayOf(t, s, ctx)
	for i := 1; i <= typed; i++ {
		text := fmt.Sprintf("full disk %d ", i)
		if n := count(t, ctx, ".msg.user", text); n != 1 {
			t.Fatalf("message %d shows %d times", i, n)
		}
		stored := 0
		for _, m := range msgs {
			if strings.Contains(m, text) {
				stored++
			}
		}
		if stored != 1 {
			t.Fatalf("message %d stored %d times", i, stored)
		}
	}
	t.Logf("%d messages typed on a full disk, each stored once after", typed)
}
