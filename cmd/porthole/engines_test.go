package main

// The widget in every engine a visitor uses: Chromium, Firefox ESR and
// WebKitGTK (Safari's engine), each from Debian. One scenario, written
// here in Go, runs in each of them through testdata/engine.mjs, which
// drives the browser with a maintained client (puppeteer-core over CDP
// for Chromium and over WebDriver BiDi for Firefox, selenium-webdriver
// over W3C WebDriver for WebKitWebDriver; the file says why) and answers
// one JSON request per line. browser_test.go covers the widget in depth
// in Chromium with chromedp; these tests check that what a visitor does
// works in all three engines.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// engineSpec is a browser engine and where Debian puts it.
type engineSpec struct {
	name string
	// debian names the packages that provide it, for the message when
	// something is missing.
	debian string
	// browser is the browser's executable, a glob for WebKitGTK's
	// MiniBrowser, which lives in the library's directory of the
	// machine's architecture (package libwebkit2gtk-4.1-0).
	browser string
	// driver is the WebDriver server between the client and the
	// browser, if the client cannot launch the browser itself.
	driver string
	// npm is the client in node_modules that drives it.
	npm string
	// display: the browser has no headless mode and needs an X server
	// (Xvfb).
	display bool
}

var engineSpecs = []engineSpec{
	{name: "chromium", debian: "chromium", browser: "/usr/bin/chromium", npm: "puppeteer-core"},
	{name: "firefox", debian: "firefox-esr", browser: "/usr/bin/firefox-esr", npm: "puppeteer-core"},
	{name: "webkit", debian: "webkit2gtk-driver xvfb", browser: "/usr/lib/*/webkit2gtk-4.1/MiniBrowser",
		driver: "/usr/bin/WebKitWebDriver", npm: "selenium-webdriver", display: true},
}

// requireEngine returns the engine's browser and driver paths. Where one
// of them, node, the npm client or Xvfb is missing, it skips the test on
// a developer machine, naming what to install, and fails it in CI.
func requireEngine(t *testing.T, e engineSpec) (browser, driver string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %s; CI needs it", e.name, what)
		}
		t.Skipf("%s: %s", e.name, what)
	}
	found, _ := filepath.Glob(e.browser)
	if len(found) == 0 {
		missing(e.browser + " is missing: apt-get install " + e.debian)
	}
	browser = found[0]
	if e.driver != "" {
		if _, err := os.Stat(e.driver); err != nil {
			missing(e.driver + " is missing: apt-get install " + e.debian)
		}
	}
	if _, err := exec.LookPath("Xvfb"); e.display && err != nil {
		missing("Xvfb is missing: apt-get install xvfb")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node is missing: install Node.js 20 or newer")
	}
	if _, err := os.Stat(filepath.Join("..", "..", "node_modules", e.npm, "package.json")); err != nil {
		missing(e.npm + " is not installed: run npm ci")
	}
	return browser, e.driver
}

// xvfb starts a virtual X server for one browser and returns its
// DISPLAY. Xvfb picks a free display number and writes it to fd 3.
func xvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	var log lockedBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("starting Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case n := <-got:
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("Xvfb did not start (display %q): %s", n, log.String())
		}
		return ":" + n
	case <-time.After(15 * time.Second):
		t.Fatalf("Xvfb did not start in 15 s: %s", log.String())
	}
	return ""
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// enginePage is one browser with one page, driven by testdata/engine.mjs.
type enginePage struct {
	t       *testing.T
	name    string
	version string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string // the script's stdout, one JSON object a line
	stderr  lockedBuffer
	next    int
	dead    bool
}

// openEngine launches the engine with a fresh profile. If the test fails,
// the page's console, a screenshot and the widget's DOM are logged.
func openEngine(t *testing.T, e engineSpec) *enginePage {
	t.Helper()
	browser, driver := requireEngine(t, e)
	script, err := filepath.Abs(filepath.Join("testdata", "engine.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	p := &enginePage{t: t, name: e.name, lines: make(chan string, 16)}
	p.cmd = exec.Command("node", script, e.name, browser, driver)
	p.cmd.Env = os.Environ()
	if e.display {
		p.cmd.Env = append(p.cmd.Env, "DISPLAY="+xvfb(t))
	}
	// Its own process group, so that whatever it leaves behind can be
	// ended with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", e.name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(p.close)
	var ready struct {
		Ready   bool   `json:"ready"`
		Version string `json:"version"`
		Error   string `json:"error"`
	}
	select {
	case line, ok := <-p.lines:
		if !ok || json.Unmarshal([]byte(line), &ready) != nil || !ready.Ready {
			p.dead = true
			t.Fatalf("%s did not start: %s %s\n%s", e.name, line, ready.Error, p.stderrTail())
		}
	case <-time.After(90 * time.Second):
		p.dead = true
		t.Fatalf("%s did not start in 90 s:\n%s", e.name, p.stderrTail())
	}
	p.version = ready.Version
	t.Logf("%s: %s", e.name, p.version)
	t.Cleanup(p.diagnose)
	return p
}

// diagnose logs what helps to see why a failed test failed: the page's
// console, a screenshot (kept in the temp directory) and the widget's DOM.
func (p *enginePage) diagnose() {
	if !p.t.Failed() || p.dead {
		return
	}
	var lines []string
	if err := p.try(&lines, "console", nil); err == nil {
		if len(lines) == 0 {
			lines = []string{"(nothing logged)"}
		}
		p.t.Logf("%s console:\n  %s", p.name, strings.Join(lines, "\n  "))
	}
	shot := filepath.Join(os.TempDir(), "porthole-"+regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(p.t.Name(), "-")+".png")
	if err := p.try(nil, "screenshot", map[string]any{"path": shot}); err == nil {
		p.t.Logf("%s screenshot: %s", p.name, shot)
	}
	var dom string
	if err := p.try(&dom, "eval", map[string]any{"expr": `(function(){try{return ` + shadow + `.innerHTML.slice(0, 4000)}catch(e){return String(e)}})()`}); err == nil {
		p.t.Logf("%s widget DOM: %s", p.name, dom)
	}
	if tail := p.stderrTail(); tail != "" {
		p.t.Logf("%s driver log:\n%s", p.name, tail)
	}
}

func (p *enginePage) stderrTail() string {
	s := p.stderr.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// close asks the script to close the browser, and ends its process
// group if it does not within 15 s.
func (p *enginePage) close() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(15 * time.Second):
	}
	// puppeteer closes the browser it launched on SIGTERM.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// try runs one operation and decodes its value into out (when not nil).
func (p *enginePage) try(out any, op string, args map[string]any) error {
	if p.dead {
		return fmt.Errorf("%s is gone", p.name)
	}
	p.next++
	req := map[string]any{"id": p.next, "op": op}
	for k, v := range args {
		req[k] = v
	}
	b, _ := json.Marshal(req)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.dead = true
		return fmt.Errorf("%s: %v", op, err)
	}
	select {
	case line, ok := <-p.lines:
		if !ok {
			p.dead = true
			return fmt.Errorf("%s: the driver script ended:\n%s", op, p.stderrTail())
		}
		var resp struct {
			ID    int             `json:"id"`
			Value json.RawMessage `json:"value"`
			Error *string         `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &resp); err != nil || resp.ID != p.next {
			p.dead = true
			return fmt.Errorf("%s: unexpected answer %q", op, line)
		}
		if resp.Error != nil {
			return fmt.Errorf("%s: %s", op, *resp.Error)
		}
		if out != nil {
			if err := json.Unmarshal(resp.Value, out); err != nil {
				return fmt.Errorf("%s: decoding %s: %v", op, resp.Value, err)
			}
		}
		return nil
	case <-time.After(60 * time.Second):
		// The answer may still come; later answers would be out of step.
		p.dead = true
		return fmt.Errorf("%s: no answer in 60 s", op)
	}
}

func (p *enginePage) do(op string, args map[string]any) {
	p.t.Helper()
	if err := p.try(nil, op, args); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

func (p *enginePage) navigate(u string) { p.t.Helper(); p.do("goto", map[string]any{"url": u}) }
func (p *enginePage) reload()           { p.t.Helper(); p.do("reload", nil) }

// click clicks the element that the JavaScript expression returns with
// the engine's real pointer input.
func (p *enginePage) click(what, expr string) {
	p.t.Helper()
	p.waitFor(what, expr)
	if err := p.try(nil, "click", map[string]any{"expr": expr}); err != nil {
		p.t.Fatalf("%s: click %s: %v", p.name, what, err)
	}
}

// keys types text into whatever has focus, then Enter if enter.
func (p *enginePage) keys(text string, enter bool) {
	p.t.Helper()
	p.do("keys", map[string]any{"text": text, "enter": enter})
}

// evalEngine returns the value of a JavaScript expression in the page.
func evalEngine[T any](p *enginePage, expr string) T {
	p.t.Helper()
	var v T
	if err := p.try(&v, "eval", map[string]any{"expr": expr}); err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is truthy, for up to
// 20 s. An evaluation cut short by a navigation is tried again.
func (p *enginePage) waitFor(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		var ok bool
		last = p.try(&ok, "eval", map[string]any{"expr": `(function(){try{return !!(` + expr + `)}catch(e){return false}})()`})
		if last == nil && ok {
			return
		}
		if p.dead {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last == nil {
		last = fmt.Errorf("still false after 20 s: %s", expr)
	}
	p.t.Fatalf("%s: waiting for %s: %v", p.name, what, last)
}

// Expressions on the widget, in its shadow root.
const (
	engineLauncher = `(function(b){var r = b && b.getBoundingClientRect(); return b && getComputedStyle(b).position == "fixed" && r.width > 0 && r.height > 0 && b})(` + shadow + `.querySelector(".launcher"))`
	engineDialog   = `(function(d){return d && !d.hidden && d.getBoundingClientRect().height > 0 && d})(` + shadow + `.querySelector('[role="dialog"]'))`
	engineComposer = shadow + `.querySelector('[role="dialog"] textarea')`
)

// engineMessages counts the messages from ("user" or "bot") that contain
// text.
func engineMessages(from, text string) string {
	return `Array.from(` + shadow + `.querySelectorAll(".msg.` + from + `")).filter(function(m){return m.textContent.indexOf(` + jsString(text) + `) >= 0}).length`
}

// tap is the proxy's origin as browsers see it: a reverse proxy in front
// of the porthole server that records every request as it starts. The
// no-intent test reads it: it sees each request whatever the engine,
// WebSocket handshakes included (which Resource Timing does not list and
// the server logs only when the socket closes), and a fresh profile per
// test means no request is answered from a cache instead.
type tap struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "GET /path", the query left out
}

func newTap(t *testing.T) *tap {
	t.Helper()
	tp := &tap{}
	tp.Server = httptest.NewUnstartedServer(nil)
	t.Cleanup(tp.Close)
	return tp
}

// to starts forwarding to the server at backend (host:port).
func (tp *tap) to(backend string) {
	target := &url.URL{Scheme: "http", Host: backend}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		// While a test has stopped the server, requests get a 502, as
		// from a load balancer in front of it, and no log line.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	tp.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp.mu.Lock()
		tp.seen = append(tp.seen, r.Method+" "+r.URL.Path)
		tp.mu.Unlock()
		rp.ServeHTTP(w, r)
	})
	tp.Start()
}

// requests returns the requests seen so far whose path matches re.
func (tp *tap) requests(re *regexp.Regexp) []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []string
	for _, s := range tp.seen {
		if re.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

// engineSite is the porthole server behind a tap, and a customer's site on
// another origin (127.0.0.1) that embeds the widget from the tap's origin
// (localhost) with the one-line snippet.
type engineSite struct {
	proxy   *proc
	tap     *tap
	url     string // the proxy's origin, as the host page embeds it
	backend string // the server's own address, behind the tap
	data    string
	host    *hostSite
}

func newEngineSite(t *testing.T) *engineSite { return newEngineSiteWith(t, writeProxyConfig) }

// newEngineSiteWith is newEngineSite with the proxy's config written by
// writeConfig.
func newEngineSiteWith(t *testing.T, writeConfig func(t testing.TB, data string, port int, hostOrigins ...string)) *engineSite {
	t.Helper()
	s := &engineSite{tap: newTap(t), data: t.TempDir(), backend: freeAddr(t)}
	port := s.tap.Listener.Addr().(*net.TCPAddr).Port
	s.url = fmt.Sprintf("http://localhost:%d", port)
	s.host = newHostSite(t, s.url)
	writeConfig(t, s.data, port, s.host.URL)
	s.launch(t)
	s.tap.to(s.backend)
	return s
}

func (s *engineSite) launch(t *testing.T) {
	t.Helper()
	s.proxy = launch(t, s.backend, s.data, "--config", filepath.Join(s.data, "porthole.yaml"))
}

// TestEngineWidget: in each engine, the launcher appears, a click opens
// the panel with the composer focused, the demo bot answers a message,
// after a reload the conversation is there again, messages carry their
// times under today's divider, and setLanguage("ar") turns the panel
// right to left.
func TestEngineWidget(t *testing.T) {
	for _, e := range engineSpecs {
		t.Run(e.name, func(t *testing.T) {
			s := newEngineSite(t)
			p := openEngine(t, e)

			// 1. Load: the launcher, styled, in the shadow root of the
			// element with data-porthole.
			p.navigate(s.host.URL + "/")
			p.waitFor("the launcher", engineLauncher)
			if got := evalEngine[string](p, `document.querySelector("[data-porthole]").getAttribute("data-porthole")`); got != "demo" {
				t.Fatalf("data-porthole = %q", got)
			}

			// 2. Open: the dialog shows and the composer has the focus.
			p.click("the launcher", engineLauncher)
			p.waitFor("the open panel", engineDialog)
			p.waitFor("focus in the composer", shadow+`.activeElement && `+shadow+`.activeElement == `+engineComposer)

			// 3. A conversation, typed into the focused composer.
			p.keys("hello", true)
			p.waitFor("the visitor's message", engineMessages("user", "hello")+` == 1`)
			p.waitFor("the bot's answer", engineMessages("bot", "Hello, there!")+` == 1`)
			// Times and the day, through the engine's Intl.
			p.waitFor("today's divider and the message times", in(".log > .day")+`.textContent == "Today" && /\d:\d\d/.test(`+in(".msg.user time.at")+`.textContent)`)

			// 4. A reload: the history is there when the panel opens again.
			p.reload()
			p.click("the launcher after the reload", engineLauncher)
			p.waitFor("the open panel after the reload", engineDialog)
			p.waitFor("the restored history", engineMessages("user", "hello")+` == 1 && `+engineMessages("bot", "Hello, there!")+` == 1`)

			// 5. Arabic: the widget fetches its texts, and the panel turns
			// right to left, mirrored: the send button left of the composer.
			evalEngine[any](p, `Porthole.setLanguage("ar"), null`)
			p.waitFor("the Arabic panel", in(".panel")+`.dir == "rtl" && `+in("textarea")+`.placeholder == "اكتب رسالتك…"`)
			p.waitFor("the mirrored composer", in(".send")+`.getBoundingClientRect().right <= `+in("textarea")+`.getBoundingClientRect().left + 1`)
			p.waitFor("today's divider in Arabic", in(".log > .day")+`.textContent == "اليوم"`)
		})
	}
}
