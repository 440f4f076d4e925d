package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/evanw/esbuild/pkg/api"

	"github.com/porthole-chat/porthole/widget"
)

// Logical asset names, the keys of manifest.Assets; they match the
// Asset* constants of package web, which reads the manifest.
const (
	assetWASM     = "widget.wasm"
	assetExec     = "wasm_exec.js"
	assetCSS      = "widget.css"
	assetLoader   = "widget.js"
	assetFrame    = "frame.css"
	assetFallback = "fallback.js"
)

// Budgets. The widget may cost at most a quarter more than the floor,
// the Go runtime every Go browser program carries. What a page downloads
// before intent, the loader and the eager stylesheet (frame.css with a
// bot's look), is on the critical path of every customer page. The goal
// is 3 KB in all (eagerGoal); with the panel's frame, the teaser and the
// early outbox in the loader it is not met yet, so the enforced ceiling
// is eagerBudget, which only stops it growing: docs/PERFORMANCE.md says
// where the bytes go.
const (
	wasmBudgetNum, wasmBudgetDen = 5, 4 // 1.25 × floor brotli
	eagerGoal                    = 3072
	eagerBudget                  = 4096
)

// manifest is dist/manifest.json. It is web.BuildManifest, kept apart so
// that this program does not import (and embed) the dist it rewrites;
// TestManifestMatchesWeb checks both agree.
type manifest struct {
	Go     string           `json:"go"`
	Assets map[string]asset `json:"assets"`
	Floor  sizes            `json:"floor"`
	Style  sizes            `json:"style"`
}

type asset struct {
	File string `json:"file"`
	Hash string `json:"hash"`
	sizes
}

type sizes struct {
	Raw    int64 `json:"raw"`
	Gzip   int64 `json:"gzip"`
	Brotli int64 `json:"brotli"`
}

// output is one file to write to dist, with its compressed copies.
type output struct {
	logical string
	file    string
	hash    string
	hashed  bool // the name carries the hash, so an existing file is this one
	raw     []byte
	br, gz  []byte
	// reused is set when dist already holds file and its copies.
	reused       bool
	brLen, gzLen int64
}

// textsAsset is the logical name of the built-in texts of lang; it
// matches web.TextsAsset.
func textsAsset(lang string) string { return "texts." + lang + ".json" }

// textsOutputs returns the built-in texts of each language as outputs
// named texts.<lang>.<version>.json, where version is the first 10 hex
// digits of the SHA-256 of them all: one version for the wasm to know,
// which changes whenever any of them does.
func textsOutputs() ([]*output, string) {
	all := sha256.New()
	var outs []*output
	for _, lang := range widget.Languages {
		data := widget.BuiltinJSON(lang)
		fmt.Fprintf(all, "%s %d\n", lang, len(data))
		all.Write(data)
		outs = append(outs, newOutput(textsAsset(lang), data, true))
	}
	version := hex.EncodeToString(all.Sum(nil))[:10]
	for _, o := range outs {
		o.file = hashedName(o.logical, version)
	}
	return outs, version
}

// newOutput names content: "widget.wasm" becomes
// "widget.3f2a1b9c0d.wasm" when hashed.
func newOutput(logical string, content []byte, hashed bool) *output {
	sum := sha256.Sum256(content)
	o := &output{logical: logical, hash: hex.EncodeToString(sum[:])[:10], hashed: hashed, raw: content, file: logical}
	if hashed {
		o.file = hashedName(logical, o.hash)
	}
	return o
}

// hashedName puts hash before the extension of name.
func hashedName(name, hash string) string {
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

func (o *output) sizes() sizes {
	if o.reused {
		return sizes{Raw: int64(len(o.raw)), Gzip: o.gzLen, Brotli: o.brLen}
	}
	return sizes{Raw: int64(len(o.raw)), Gzip: int64(len(o.gz)), Brotli: int64(len(o.br))}
}

// compress makes the brotli copy (quality 11, the largest window that
// browsers decode: 24; "large window" brotli beyond it is not part of
// Content-Encoding: br) and the gzip copy (best compression).
func (o *output) compress() error {
	var wg sync.WaitGroup
	var brErr error
	wg.Go(func() {
		var b bytes.Buffer
		w := brotli.NewWriterOptions(&b, brotli.WriterOptions{Quality: 11, LGWin: 24})
		if _, brErr = w.Write(o.raw); brErr == nil {
			brErr = w.Close()
		}
		o.br = b.Bytes()
	})
	var g bytes.Buffer
	w, err := gzip.NewWriterLevel(&g, gzip.BestCompression)
	if err == nil {
		if _, err = w.Write(o.raw); err == nil {
			err = w.Close()
		}
	}
	o.gz = g.Bytes()
	wg.Wait()
	return errors.Join(err, brErr)
}

// reuse looks for this hashed file and both copies in dist from an
// earlier build: the name is the content's hash, so they are this file,
// and its slow brotli compression can be skipped.
func (o *output) reuse(dist string) bool {
	if !o.hashed {
		return false
	}
	p := filepath.Join(dist, o.file)
	raw, errRaw := os.Stat(p)
	br, errBr := os.Stat(p + ".br")
	gz, errGz := os.Stat(p + ".gz")
	if errRaw != nil || errBr != nil || errGz != nil || raw.Size() != int64(len(o.raw)) || br.Size() == 0 || gz.Size() == 0 {
		return false
	}
	o.reused, o.brLen, o.gzLen = true, br.Size(), gz.Size()
	return true
}

// writeDist writes outs and their copies into dist, then the manifest,
// then removes every other file (earlier builds, stray temporaries).
// Each file is renamed into place, so no reader sees half a file, and
// the manifest is written only once everything it names exists.
func writeDist(dist, goVersion string, floor, style sizes, outs []*output) (manifest, error) {
	m := manifest{Go: goVersion, Assets: make(map[string]asset), Floor: floor, Style: style}
	var wg sync.WaitGroup
	errs := make([]error, len(outs))
	for i, o := range outs {
		if o.reuse(dist) {
			continue
		}
		wg.Go(func() { errs[i] = o.compress() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	keep := map[string]bool{"manifest.json": true}
	// The loader names the other files, so it goes last.
	for _, o := range outs {
		keep[o.file], keep[o.file+".br"], keep[o.file+".gz"] = true, true, true
		m.Assets[o.logical] = asset{File: o.file, Hash: o.hash, sizes: o.sizes()}
		if o.reused {
			continue
		}
		p := filepath.Join(dist, o.file)
		for _, f := range []struct {
			path string
			data []byte
		}{{p + ".br", o.br}, {p + ".gz", o.gz}, {p, o.raw}} {
			if err := writeFileAtomic(f.path, f.data); err != nil {
				return m, err
			}
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := writeFileAtomic(filepath.Join(dist, "manifest.json"), append(data, '\n')); err != nil {
		return m, err
	}
	entries, err := os.ReadDir(dist)
	if err != nil {
		return m, err
	}
	for _, e := range entries {
		if !keep[e.Name()] && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dist, e.Name())); err != nil {
				return m, err
			}
		}
	}
	return m, nil
}

// writeFileAtomic writes data to a temporary file beside name and
// renames it over name. The temporary name starts with a dot, which
// go:embed skips, should a build run meanwhile.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// minifyLoader minifies the loader and replaces its placeholders
// (__PH_WASM__ and the like) with the hashed names as JSON strings. The
// loader must stay a classic script (customers load it with a plain
// <script>), hence an IIFE for ES2018.
func minifyLoader(src []byte, names map[string]string) ([]byte, error) {
	define := map[string]string{}
	for ident, name := range names {
		lit, _ := json.Marshal(name)
		define[ident] = string(lit)
	}
	code, err := minifyScript("web/loader/widget.js", src, define)
	if err != nil {
		return nil, err
	}
	if i := bytes.Index(code, []byte("__PH_")); i >= 0 {
		end := i + bytes.IndexFunc(code[i:], func(r rune) bool { return r != '_' && !('A' <= r && r <= 'Z') && !('0' <= r && r <= '9') })
		if end < i {
			end = len(code)
		}
		return nil, fmt.Errorf("web/loader/widget.js: %s is not a known placeholder (use __PH_WASM__, __PH_EXEC__, __PH_CSS__, __PH_FALLBACK__)", code[i:end])
	}
	for ident, name := range names {
		if !bytes.Contains(code, []byte(name)) {
			fmt.Fprintf(os.Stderr, "web/build: warning: web/loader/widget.js does not use %s (%s)\n", ident, name)
		}
	}
	return code, nil
}

// minifyScript minifies a classic script (an IIFE for ES2018: pages
// load it with a plain <script>), with define's identifiers replaced.
func minifyScript(name string, src []byte, define map[string]string) ([]byte, error) {
	return transform(name, src, api.TransformOptions{
		Loader:            api.LoaderJS,
		Format:            api.FormatIIFE,
		Target:            api.ES2018,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Define:            define,
	})
}

// sampleStyle is the eager stylesheet of a typical bot, for the budget:
// a title, a subtitle, a greeting and a teaser limited to one path, with
// English texts. The server makes the real ones (widget.FrameStyle); a
// server test checks that the demo bot's, as served, is within the
// budget too.
func sampleStyle(frame []byte) []byte {
	return widget.FrameStyle(frame, widget.FrameLook{
		Look: widget.Look{Title: "Acme Support", Subtitle: "We answer in seconds", BrandColor: "#007171",
			Greeting: "Hi! Ask us anything about your order."},
		Lang:   "en",
		Teaser: &widget.Teaser{Text: "Questions about pricing? Ask us!", DelayMS: 5000, Paths: []string{"/pricing"}},
	})
}

// minifyExec minifies the toolchain's wasm_exec.js. Its license asks to
// keep the copyright notice, which the minifier would drop, hence the
// banner.
func minifyExec(src []byte) ([]byte, error) {
	return transform("wasm_exec.js", src, api.TransformOptions{
		Loader:            api.LoaderJS,
		Target:            api.ES2018,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Banner:            "/*! wasm_exec.js: Copyright 2018 The Go Authors. BSD-style license: https://go.dev/LICENSE */",
	})
}

// minifyCSS minifies the widget's stylesheet.
func minifyCSS(src []byte) ([]byte, error) {
	return transform("web/loader/widget.css", src, api.TransformOptions{
		Loader:           api.LoaderCSS,
		MinifyWhitespace: true,
		MinifySyntax:     true,
	})
}

func transform(name string, src []byte, opts api.TransformOptions) ([]byte, error) {
	opts.Sourcefile = name
	opts.LegalComments = api.LegalCommentsInline
	res := api.Transform(string(src), opts)
	for _, w := range api.FormatMessages(res.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage}) {
		fmt.Fprint(os.Stderr, w)
	}
	if len(res.Errors) > 0 {
		return nil, fmt.Errorf("minifying %s:\n%s", name, strings.Join(api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage}), ""))
	}
	return res.Code, nil
}

// budgetLine is one row of the size table.
type budgetLine struct {
	logical, file string
	sizes
	budget int64  // brotli bytes allowed; 0 for none
	basis  string // how the budget is derived
}

// budgets lists the assets in serving order, then the floor, with the
// budgets that apply.
func budgets(m manifest) []budgetLine {
	var lines []budgetLine
	for _, logical := range []string{assetLoader, assetFrame, assetWASM, assetExec, assetCSS, assetFallback} {
		a := m.Assets[logical]
		l := budgetLine{logical: logical, file: a.File, sizes: a.sizes}
		if logical == assetWASM {
			l.budget = m.Floor.Brotli * wasmBudgetNum / wasmBudgetDen
			l.basis = "1.25 × floor " + strconv.FormatInt(m.Floor.Brotli, 10)
		}
		lines = append(lines, l)
	}
	// The built-in texts: the widget fetches one language; show the
	// largest.
	var texts budgetLine
	for _, lang := range widget.Languages {
		if a := m.Assets[textsAsset(lang)]; a.Brotli > texts.Brotli {
			texts = budgetLine{logical: "texts (largest)", file: a.File, sizes: a.sizes}
		}
	}
	if texts.file != "" {
		lines = append(lines, texts)
	}
	loader := m.Assets[assetLoader].sizes
	eager := sizes{Raw: loader.Raw + m.Style.Raw, Gzip: loader.Gzip + m.Style.Gzip, Brotli: loader.Brotli + m.Style.Brotli}
	return append(lines,
		budgetLine{logical: "style (sample)", file: "/widget.css?bot=…", sizes: m.Style},
		budgetLine{logical: "eager", file: "widget.js + style", sizes: eager, budget: eagerBudget,
			basis: "ceiling for what a page loads before intent; goal " + strconv.Itoa(eagerGoal)},
		budgetLine{logical: "floor", file: "(not shipped)", sizes: m.Floor})
}

// overBudget names each asset over its brotli budget and by how much.
func overBudget(lines []budgetLine) []string {
	var over []string
	for _, l := range lines {
		if l.budget > 0 && l.Brotli > l.budget {
			over = append(over, fmt.Sprintf("%s is %d bytes brotli, %d over its budget of %d (%s)",
				l.logical, l.Brotli, l.Brotli-l.budget, l.budget, l.basis))
		}
	}
	return over
}

// printTable writes the sizes in bytes, one asset a row: names left
// aligned, figures right aligned.
func printTable(w io.Writer, m manifest, lines []budgetLine) {
	rows := [][]string{{"asset", "file", "raw", "gzip", "brotli", "budget", "headroom"}}
	for _, l := range lines {
		budget, headroom := "-", "-"
		if l.budget > 0 {
			budget = strconv.FormatInt(l.budget, 10)
			headroom = strconv.FormatInt(l.budget-l.Brotli, 10)
			if l.Brotli > l.budget {
				headroom += " OVER"
			}
		}
		rows = append(rows, []string{l.logical, l.file, strconv.FormatInt(l.Raw, 10),
			strconv.FormatInt(l.Gzip, 10), strconv.FormatInt(l.Brotli, 10), budget, headroom})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-len(cell))
			if i < 2 {
				b.WriteString(cell + pad + "  ")
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintf(w, "bytes; budgets apply to brotli; floor: the smallest Go browser program, %s\n", m.Go)
}
