package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

func TestHashedNames(t *testing.T) {
	content := []byte("hello wasm")
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])[:10]
	o := newOutput(assetWASM, content, true)
	if o.hash != hash || o.file != "widget."+hash+".wasm" {
		t.Errorf("hashed output: hash %q file %q, want %q and widget.%s.wasm", o.hash, o.file, hash, hash)
	}
	if got := newOutput(assetLoader, content, false).file; got != "widget.js" {
		t.Errorf("the loader is named %q, want widget.js", got)
	}
	if got := hashedName("wasm_exec.js", "0123456789"); got != "wasm_exec.0123456789.js" {
		t.Errorf("hashedName = %q", got)
	}
}

// TestTextsOutputs: one asset a language, the built-in texts as the
// widget reads them, all named with one version that changes with any
// of them; package web names them alike.
func TestTextsOutputs(t *testing.T) {
	outs, version := textsOutputs()
	if len(outs) != len(widget.Languages) || len(version) != 10 {
		t.Fatalf("%d outputs, version %q", len(outs), version)
	}
	for i, o := range outs {
		lang := widget.Languages[i]
		if o.logical != web.TextsAsset(lang) || o.file != "texts."+lang+"."+version+".json" || !o.hashed {
			t.Errorf("%s: logical %q file %q", lang, o.logical, o.file)
		}
		if !bytes.Equal(o.raw, widget.BuiltinJSON(lang)) {
			t.Errorf("%s: not the built-in texts", lang)
		}
	}
	if again, v2 := textsOutputs(); v2 != version || again[0].file != outs[0].file {
		t.Error("the version is not stable")
	}
}

func TestBudgets(t *testing.T) {
	m := manifest{Go: "go1.26.0", Floor: sizes{Raw: 1000, Gzip: 600, Brotli: 400}, Assets: map[string]asset{
		assetWASM:   {File: "widget.a.wasm", sizes: sizes{Brotli: 500}}, // exactly 1.25 × 400
		assetLoader: {File: "widget.js", sizes: sizes{Brotli: 3000}},
		assetExec:   {File: "wasm_exec.b.js", sizes: sizes{Brotli: 99999}}, // no budget
		assetCSS:    {File: "widget.c.css", sizes: sizes{Brotli: 99999}},
	}, Style: sizes{Brotli: 1096}} // the eager pair at 4096 exactly
	if over := overBudget(budgets(m)); len(over) != 0 {
		t.Fatalf("at the budgets exactly: %q", over)
	}
	m.Assets[assetWASM] = asset{File: "widget.a.wasm", sizes: sizes{Brotli: 501}}
	m.Assets[assetLoader] = asset{File: "widget.js", sizes: sizes{Brotli: 3028}}
	over := overBudget(budgets(m))
	if len(over) != 2 ||
		!strings.Contains(over[0], "widget.wasm is 501 bytes brotli, 1 over its budget of 500 (1.25 × floor 400)") ||
		!strings.Contains(over[1], "eager is 4124 bytes brotli, 28 over its budget of 4096") {
		t.Errorf("over budget: %q", over)
	}
	var table bytes.Buffer
	printTable(&table, m, budgets(m))
	for _, want := range []string{"headroom", "-28 OVER", "-1 OVER", "(not shipped)", "go1.26.0"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestEagerBudgetMatchesWeb(t *testing.T) {
	if eagerBudget != web.EagerBudget || eagerGoal != web.EagerGoal {
		t.Errorf("web/build budgets %d (goal %d), package web %d (goal %d)", eagerBudget, eagerGoal, web.EagerBudget, web.EagerGoal)
	}
}

func TestMinifyLoader(t *testing.T) {
	src := []byte(`(function () {
  var assets = [__PH_WASM__, __PH_EXEC__, __PH_CSS__];
  window.Porthole = { assets: assets };
})();`)
	code, err := minifyLoader(src, map[string]string{"__PH_WASM__": "widget.0123456789.wasm", "__PH_EXEC__": "wasm_exec.0123456789.js", "__PH_CSS__": "widget.0123456789.css"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"widget.0123456789.wasm"`, `"wasm_exec.0123456789.js"`, `"widget.0123456789.css"`} {
		if !bytes.Contains(code, []byte(want)) {
			t.Errorf("minified loader lacks %s: %s", want, code)
		}
	}
	if bytes.Contains(code, []byte("\n  ")) || bytes.Contains(code, []byte("export")) || bytes.Contains(code, []byte("import")) {
		t.Errorf("not minified to a classic script: %s", code)
	}
	if _, err := minifyLoader([]byte(`var x = __PH_WSAM__;`), map[string]string{"__PH_WASM__": "a"}); err == nil || !strings.Contains(err.Error(), "__PH_WSAM__") {
		t.Errorf("a misspelt placeholder: error %v", err)
	}
	if _, err := minifyLoader([]byte(`var x = ;`), map[string]string{"__PH_WASM__": "a"}); err == nil {
		t.Error("a syntax error was not reported")
	}
}

func TestMinifyCSS(t *testing.T) {
	code, err := minifyCSS([]byte(":host {\n  color: #ff0000;\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(code)); got != ":host{color:red}" {
		t.Errorf("minified CSS %q", got)
	}
}

// TestWriteDist writes a dist twice over a stale build and reads it back
// with package web, which is also what checks that the two copies of
// the manifest format agree.
func TestWriteDist(t *testing.T) {
	static := t.TempDir()
	dist := filepath.Join(static, "dist")
	if err := os.Mkdir(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []string{"widget.ffffffffff.wasm", "widget.ffffffffff.wasm.br", ".tmp-widget.js-123"} {
		if err := os.WriteFile(filepath.Join(dist, stale), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outputs := func() []*output {
		wasm := newOutput(assetWASM, bytes.Repeat([]byte("\x00asm wasm "), 100), true)
		exec := newOutput(assetExec, []byte("globalThis.Go=class{}"), true)
		css := newOutput(assetCSS, []byte(":host{all:initial}"), true)
		frame := newOutput(assetFrame, []byte(":host{all:initial;color:red}"), true)
		fallback := newOutput(assetFallback, []byte(`(()=>{})();`), true)
		loader := newOutput(assetLoader, []byte(`(()=>{var a="`+wasm.file+`"})();`), false)
		texts, _ := textsOutputs()
		return append(append([]*output{wasm, exec, css, frame, fallback}, texts...), loader)
	}
	floor := sizes{Raw: 2000, Gzip: 700, Brotli: 500}
	m, err := writeDist(dist, "go1.26.0", floor, sizes{Raw: 3, Gzip: 2, Brotli: 1}, outputs())
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	entries, _ := os.ReadDir(dist)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	var want []string
	for _, a := range m.Assets {
		want = append(want, a.File, a.File+".br", a.File+".gz")
	}
	want = append(want, "manifest.json")
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("dist holds %q, want %q", names, want)
	}

	fromWeb, err := web.NewAssets(os.DirFS(static)).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if fromWeb.Go != m.Go || !reflect.DeepEqual(fromWeb.Floor, web.Sizes(m.Floor)) || fromWeb.Style != web.Sizes(m.Style) || len(fromWeb.Assets) != len(m.Assets) {
		t.Fatalf("web reads %+v, build wrote %+v", fromWeb, m)
	}
	for logical, a := range m.Assets {
		if got := fromWeb.Assets[logical]; got != (web.Asset{File: a.File, Hash: a.Hash, Sizes: web.Sizes(a.sizes)}) {
			t.Errorf("%s: web reads %+v, build wrote %+v", logical, got, a)
		}
		if a.Raw == 0 || a.Gzip == 0 || a.Brotli == 0 {
			t.Errorf("%s: sizes %+v", logical, a.sizes)
		}
	}

	// A second build of the same content keeps the hashed files (and
	// skips their compression) and gives the same manifest.
	outs := outputs()
	m2, err := writeDist(dist, "go1.26.0", floor, sizes{Raw: 3, Gzip: 2, Brotli: 1}, outs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Errorf("rebuild changed the manifest: %+v then %+v", m, m2)
	}
	for _, o := range outs {
		if o.reused != o.hashed {
			t.Errorf("%s: reused %v", o.logical, o.reused)
		}
	}
}

// TestChatCSSUpToDate: web/chat.min.css, which the chat pages inline, is
// web/chat.css as the minifier makes it now.
func TestChatCSSUpToDate(t *testing.T) {
	want, err := minifiedChatCSS("../chat.css")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../chat.min.css")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("web/chat.min.css is stale: run make generate")
	}
}
