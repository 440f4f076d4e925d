// Command build makes the widget's browser assets (`make wasm`) and
// checks their size budgets (`make size`, part of `make test` and CI).
//
// It writes to web/static/dist, which the web package embeds:
//
//   - widget.<hash>.wasm: ./wasm built with GOOS=js GOARCH=wasm
//     -ldflags='-s -w' -trimpath, its own packages without inlining
//     (ownCode);
//   - wasm_exec.<hash>.js: the toolchain's lib/wasm/wasm_exec.js, minified;
//   - texts.<lang>.<version>.json: the built-in texts of each language
//     (widget.BuiltinJSON), which the wasm fetches; <version> hashes all
//     of them and is built into the wasm (-X main.textsVersion);
//   - widget.<hash>.css: web/loader/widget.css, minified;
//   - widget.js: web/loader/widget.js, minified, with __PH_WASM__,
//     __PH_EXEC__ and __PH_CSS__ replaced by the hashed names above. It
//     keeps its name because customers' pages embed its URL;
//   - a .br (brotli) and a .gz (gzip) copy of each, served precompressed;
//   - manifest.json: names and sizes, written last, so a failed build
//     leaves the previous manifest and the files it names.
//
// <hash> is the first 10 hex digits of the SHA-256 of the content, so a
// name never changes meaning and browsers may cache it forever. Files
// of earlier builds are removed.
//
// The budget is relative, so that it measures the widget and not the Go
// runtime: in the same run, with the same toolchain and flags, it builds
// the smallest Go browser program (web/build/floor), and widget.wasm may
// be at most 1.25 times its brotli size. What a page view downloads
// before intent (the loader and a sample of its per-bot stylesheet) may
// be at most web.EagerBudget bytes brotli. The
// floor's sizes are cached under the user cache folder per toolchain,
// since its build and compression take several seconds and only change
// with Go.
//
// Usage:
//
//	go run ./web/build          build, print the sizes, warn when over budget
//	go run ./web/build -size    the same, and exit with status 1 when over
//	go run ./web/build -chatcss minify web/chat.css into web/chat.min.css
//	                            (committed; `make generate` runs it)
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/evanw/esbuild/pkg/api"
)

// ldflags and the other build settings are part of the floor's cache key:
// the floor must be built exactly like the widget.
const ldflags = "-s -w"

// ownCode compiles the widget's own packages without inlining: the
// browser program is glue around syscall/js, and every inlined copy of
// a small js.Value call or string helper is new code where a call would
// be a few bytes. It makes widget.wasm about 2 KB larger raw but some
// 9.5 KB smaller brotli, which is what a visitor downloads (the copies
// differ too much to compress; the calls repeat). The runtime and the
// standard library, which the floor measures, are compiled as usual.
var ownCode = []string{"-gcflags=./wasm=-l", "-gcflags=./widget=-l"}

func main() {
	enforce := flag.Bool("size", false, "exit with status 1 when an asset is over its size budget (CI)")
	goCmd := flag.String("go", envOr("GO", "go"), "the go command whose toolchain builds the wasm and provides wasm_exec.js")
	chatCSS := flag.Bool("chatcss", false, "only minify web/chat.css into web/chat.min.css, the chat pages' inlined stylesheet")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./web/build [-size] [-go go]\n\n"+
			"Builds the widget assets into web/static/dist and prints their sizes against the budgets.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *chatCSS {
		if err := writeChatCSS(); err != nil {
			fmt.Fprintln(os.Stderr, "web/build:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*goCmd, *enforce); err != nil {
		fmt.Fprintln(os.Stderr, "web/build:", err)
		os.Exit(1)
	}
}

func run(goCmd string, enforce bool) error {
	start := time.Now()
	tc, root, err := findToolchain(goCmd)
	if err != nil {
		return err
	}
	m, floorCached, err := build(tc, root)
	if err != nil {
		return err
	}
	floorNote := "built"
	if floorCached {
		floorNote = "cached"
	}
	fmt.Fprintf(os.Stderr, "web/build: wrote %s in %.1fs with %s (floor %s)\n",
		filepath.Join("web", "static", "dist"), time.Since(start).Seconds(), tc.version, floorNote)
	lines := budgets(m)
	printTable(os.Stdout, m, lines)
	over := overBudget(lines)
	if len(over) == 0 {
		return nil
	}
	msg := "over budget: " + strings.Join(over, "; ")
	if !enforce {
		fmt.Fprintln(os.Stderr, "web/build: warning:", msg)
		return nil
	}
	return errors.New(msg)
}

// toolchain is the Go installation that builds both programs and
// provides wasm_exec.js, which must match the runtime in the wasm.
type toolchain struct {
	goCmd   string
	version string // GOVERSION, "go1.26.8"
	goroot  string
}

// findToolchain asks the go command for its version, GOROOT and the
// module root, so the build works from any folder of the module and
// follows GOTOOLCHAIN like `go build` does.
func findToolchain(goCmd string) (toolchain, string, error) {
	out, err := exec.Command(goCmd, "env", "GOVERSION", "GOROOT", "GOMOD").Output()
	if err != nil {
		return toolchain{}, "", fmt.Errorf("%s env: %w", goCmd, commandError(err))
	}
	f := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(f) != 3 || f[0] == "" || f[1] == "" {
		return toolchain{}, "", fmt.Errorf("%s env printed %q, want GOVERSION, GOROOT and GOMOD", goCmd, out)
	}
	if f[2] == "" || f[2] == os.DevNull {
		return toolchain{}, "", errors.New("not inside the porthole module; run it from the repository")
	}
	return toolchain{goCmd: goCmd, version: f[0], goroot: f[1]}, filepath.Dir(f[2]), nil
}

// buildWasm compiles pkg (relative to root) for the browser into out;
// extra is added to the linker flags (-X settings, which leave the
// program's code as it is), and gcflags go to the compiler.
func (tc toolchain) buildWasm(root, pkg, out, extra string, gcflags ...string) error {
	flags := ldflags
	if extra != "" {
		flags += " " + extra
	}
	args := append([]string{"build", "-ldflags=" + flags, "-trimpath"}, gcflags...)
	cmd := exec.Command(tc.goCmd, append(args, "-o", out, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOOS=js GOARCH=wasm go build %s: %w\n%s", pkg, err, output)
	}
	return nil
}

func build(tc toolchain, root string) (m manifest, floorCached bool, err error) {
	tmp, err := os.MkdirTemp("", "porthole-wasm-")
	if err != nil {
		return m, false, err
	}
	defer os.RemoveAll(tmp)
	dist := filepath.Join(root, "web", "static", "dist")

	// The two Go builds and the floor's compression dominate; run them
	// side by side while esbuild does the small files.
	var (
		wg                sync.WaitGroup
		wasmErr, floorErr error
		floor             sizes
	)
	// The built-in texts, one asset a language; the wasm fetches them by
	// the version in their names.
	texts, textsVersion := textsOutputs()
	wasmPath := filepath.Join(tmp, "widget.wasm")
	wg.Go(func() {
		wasmErr = tc.buildWasm(root, "./wasm", wasmPath, "-X main.textsVersion="+textsVersion, ownCode...)
	})
	wg.Go(func() { floor, floorCached, floorErr = measureFloor(tc, root, tmp) })

	execSrc, err := os.ReadFile(filepath.Join(tc.goroot, "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		wg.Wait()
		return m, false, fmt.Errorf("wasm_exec.js of %s: %w", tc.version, err)
	}
	execJS, err := minifyExec(execSrc)
	if err != nil {
		wg.Wait()
		return m, false, err
	}
	var small [3][]byte // widget.css, frame.css, fallback.js, minified
	for i, f := range []struct {
		name string
		min  func([]byte) ([]byte, error)
	}{{"widget.css", minifyCSS}, {"frame.css", minifyCSS}, {"fallback.js", func(b []byte) ([]byte, error) { return minifyScript("web/loader/fallback.js", b, nil) }}} {
		src, err := os.ReadFile(filepath.Join(root, "web", "loader", f.name))
		if err == nil {
			small[i], err = f.min(src)
		}
		if err != nil {
			wg.Wait()
			return m, false, err
		}
	}
	loaderSrc, err := os.ReadFile(filepath.Join(root, "web", "loader", "widget.js"))
	if err != nil {
		wg.Wait()
		return m, false, err
	}
	wg.Wait()
	if err := errors.Join(wasmErr, floorErr); err != nil {
		return m, false, err
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return m, false, err
	}

	outs := []*output{
		newOutput(assetWASM, wasm, true),
		newOutput(assetExec, execJS, true),
		newOutput(assetCSS, small[0], true),
		newOutput(assetFrame, small[1], true),
		newOutput(assetFallback, small[2], true),
	}
	loader, err := minifyLoader(loaderSrc, map[string]string{"__PH_WASM__": outs[0].file, "__PH_EXEC__": outs[1].file,
		"__PH_CSS__": outs[2].file, "__PH_FALLBACK__": outs[4].file})
	if err != nil {
		return m, false, err
	}
	outs = append(append(outs, texts...), newOutput(assetLoader, loader, false))
	// The sample stylesheet is not written: the server makes one per bot.
	// It is measured here, compressed like the others, for the budget.
	sample := newOutput("sample style", sampleStyle(small[1]), false)
	if err := sample.compress(); err != nil {
		return m, false, err
	}

	if err := os.MkdirAll(dist, 0o755); err != nil {
		return m, false, err
	}
	m, err = writeDist(dist, tc.version, floor, sample.sizes(), outs)
	return m, floorCached, err
}

// measureFloor returns the floor's sizes, from the cache when this
// toolchain, these flags and this floor source were measured before.
func measureFloor(tc toolchain, root, tmp string) (s sizes, cached bool, err error) {
	src, err := os.ReadFile(filepath.Join(root, "web", "build", "floor", "main.go"))
	if err != nil {
		return s, false, err
	}
	key := sha256.New()
	for _, part := range []string{"floor v1", tc.version, tc.goroot, ldflags, "-trimpath",
		os.Getenv("GOFLAGS"), os.Getenv("GOEXPERIMENT"), os.Getenv("GOWASM"), string(src)} {
		fmt.Fprintf(key, "%d:%s;", len(part), part)
	}
	cacheFile := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cacheFile = filepath.Join(dir, "porthole", "wasm-floor-"+hex.EncodeToString(key.Sum(nil))[:16]+".json")
		if data, err := os.ReadFile(cacheFile); err == nil && json.Unmarshal(data, &s) == nil && s.Brotli > 0 {
			return s, true, nil
		}
	}
	out := filepath.Join(tmp, "floor.wasm")
	if err := tc.buildWasm(root, "./web/build/floor", out, ""); err != nil {
		return s, false, err
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return s, false, err
	}
	o := newOutput("floor", wasm, true)
	if err := o.compress(); err != nil {
		return s, false, err
	}
	s = o.sizes()
	if cacheFile != "" {
		data, _ := json.Marshal(s)
		// A cache that cannot be written only costs time on the next run.
		if os.MkdirAll(filepath.Dir(cacheFile), 0o755) == nil {
			_ = writeFileAtomic(cacheFile, data)
		}
	}
	return s, false, nil
}

func commandError(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(bytes.TrimSpace(exit.Stderr)) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(exit.Stderr))
	}
	return err
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// Where the chat pages' stylesheet is, and its minified copy that the web
// package embeds and inlines into every page.
const (
	chatCSSSource = "web/chat.css"
	chatCSSOut    = "web/chat.min.css"
)

// writeChatCSS minifies the chat pages' stylesheet into chat.min.css. It
// is a generated file, committed like templ's, so that the server builds
// with plain `go build`; a test fails when it is stale.
func writeChatCSS() error {
	out, err := minifiedChatCSS(chatCSSSource)
	if err != nil {
		return err
	}
	return os.WriteFile(chatCSSOut, out, 0o644)
}

// minifiedChatCSS returns the stylesheet at path, minified.
func minifiedChatCSS(path string) ([]byte, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run from the repository root)", err)
	}
	out, err := transform(path, src, api.TransformOptions{Loader: api.LoaderCSS, MinifyWhitespace: true, MinifySyntax: true})
	return bytes.TrimSpace(out), err
}
