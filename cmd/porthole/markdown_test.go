package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Formatted bot text in real browsers: a demo bot with text_format:
// markdown answers with Markdown that formats (bold, italic, a link,
// code, a numbered list with a nested one, a code block) and Markdown
// that attacks (raw HTML with script, an image with onerror, a
// javascript: link, images). The widget and the chat page show the first
// as elements and the second as text or not at all.

// markdownReply is what the bot says, the same to every message.
const markdownReply = `**Bold move** and *italic*, see [the prices](https://example.com/prices) or ` + "`porthole serve`" + `.

1. First step
2. Second step
   - nested item

` + "```" + `
<b>code stays text</b>
` + "```" + `

<script>window.pwned = 1</script>

Also <img src=x onerror="window.pwned = 2"> and [click me](javascript:window.pwned=3) and ![cat picture](http://127.0.0.1:9/cat.png) and ![](data:image/png;base64,AAAA) end.`

// writeMarkdownConfig writes a configuration whose demo bot runs a script
// that answers markdownReply, with text_format: markdown.
func writeMarkdownConfig(t testing.TB, data string, port int, hostOrigins ...string) {
	t.Helper()
	var reply strings.Builder
	for _, line := range strings.Split(markdownReply, "\n") {
		reply.WriteString("          " + line + "\n")
	}
	script := filepath.Join(data, "format.yaml")
	if err := os.WriteFile(script, []byte(`name: Formatting
start: answer
fallback: answer
blocks:
  answer:
    messages:
      - text: |
`+reply.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	origins := `"self"`
	for _, o := range hostOrigins {
		origins += `, "` + o + `"`
	}
	cfg := fmt.Sprintf(`public_url: "http://localhost:%d"
bots:
  - id: demo
    provider: demo
    text_format: markdown
    origins: [%s]
    demo: {typing_delay: 20ms, script: %q}
    widget: {title: "Format bot", brand_color: "#0b6e6e"}
`, port, origins, script)
	if err := os.WriteFile(filepath.Join(data, "porthole.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newMarkdownSite is newSite with the formatting bot.
func newMarkdownSite(t testing.TB) *site {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &site{data: t.TempDir(), port: port, url: fmt.Sprintf("http://localhost:%d", port)}
	s.host = newHostSite(t, s.url)
	writeMarkdownConfig(t, s.data, port, s.host.URL)
	s.proxy, _ = startProxyOn(t, s.data, port)
	return s
}

// formatChecks are JavaScript expressions on the element of the bot's
// formatted message, each true when the rendering is right, by name.
var formatChecks = []struct{ name, expr string }{
	{"bold", `m.querySelector("strong").textContent == "Bold move"`},
	{"italic", `m.querySelector("p > em").textContent == "italic"`},
	{"inline code", `m.querySelector("p > code").textContent == "porthole serve"`},
	{"link", `(function(a){return a.length == 2 && a[0].getAttribute("href") == "https://example.com/prices" && a[0].textContent.indexOf("the prices") == 0 && a[0].rel == "noopener noreferrer" && a[0].target == "_blank"})(m.querySelectorAll("a"))`},
	{"numbered list", `m.querySelectorAll("ol > li").length == 2 && m.querySelector("ol > li").textContent == "First step"`},
	{"nested list", `m.querySelector("ol > li > ul > li").textContent == "nested item"`},
	{"code block", `m.querySelector("pre > code").textContent == "<b>code stays text</b>" && !m.querySelector("pre b")`},
	{"raw HTML as text", `m.textContent.indexOf("<script>window.pwned = 1</script>") >= 0 && m.textContent.indexOf("<img src=x onerror=") >= 0`},
	{"no script, img, b or handler elements", `!m.querySelector("script, img, b, [onerror], [onload]")`},
	{"javascript: link as text", `m.textContent.indexOf("click me") >= 0 && !Array.from(m.querySelectorAll("a")).some(function(a){return /^\s*javascript:/i.test(a.getAttribute("href") || "") || a.textContent.indexOf("click me") >= 0})`},
	{"image as a link", `(function(a){return a.getAttribute("href") == "http://127.0.0.1:9/cat.png" && a.textContent.indexOf("cat picture") == 0})(m.querySelectorAll("a")[1])`},
	{"data: image dropped", `m.textContent.indexOf("data:") < 0 && m.textContent.indexOf("and  end.") >= 0`},
	{"nothing ran", `window.pwned === undefined`},
}

// TestWidgetMarkdown: in the widget, the formatting bot's answer renders
// as elements and its attacks as text, while the visitor's own Markdown
// stays as typed.
func TestWidgetMarkdown(t *testing.T) {
	s := newMarkdownSite(t)
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, s.host.URL+"/")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	typeMessage(t, ctx, "**not bold** [x](https://example.com/x)")
	waitJS(t, ctx, "the bot's formatted answer", shadow+`.querySelectorAll(".msg.bot .bubble.rich").length >= 1`)
	m := `var m = ` + shadow + `.querySelector(".msg.bot .bubble.rich");`
	for _, c := range formatChecks {
		if !evalJS[bool](t, ctx, `(function(){`+m+` try { return !!(`+c.expr+`) } catch (e) { return false } })()`) {
			t.Errorf("%s: not so; the message is %s", c.name, evalJS[string](t, ctx, `(function(){`+m+` return m.innerHTML})()`))
		}
	}
	// The visitor's message is text as typed; its address is linked as
	// in any plain text, nothing else.
	mine := in(".msg.user .bubble")
	if got := evalJS[string](t, ctx, mine+`.textContent`); !strings.Contains(got, "**not bold** [x](https://example.com/x)") {
		t.Errorf("visitor's message = %q", got)
	}
	if evalJS[bool](t, ctx, mine+`.querySelector("strong, em, code, ul, ol, p")`+` !== null`) {
		t.Errorf("visitor's message was formatted: %s", evalJS[string](t, ctx, mine+`.innerHTML`))
	}
	for _, v := range runAxe(t, ctx, axeSource(t), `document.querySelector("[data-porthole]")`) {
		t.Errorf("axe: %s", v)
	}
}

// TestChatPageMarkdown: the chat page (the one without JavaScript, here
// in a browser that runs scripts, so that one injected would show) shows
// the same formatting and the same attacks as text.
func TestChatPageMarkdown(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	writeMarkdownConfig(t, data, p)
	launch(t, addr, data, "--config", filepath.Join(data, "porthole.yaml"))
	ctx := browser(t, 1280, 860)
	navigate(t, ctx, "http://localhost:"+port+"/chat/demo")
	if err := chromedp.Do(ctx, chromedp.SendKeys("form.composer textarea", "**not bold**")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("form.composer button.send", chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	// The page refreshes itself until the answer is there.
	waitJS(t, ctx, "the bot's formatted answer", `document.querySelectorAll(".msg.bot .bubble.rich").length >= 1`)
	m := `var m = document.querySelector(".msg.bot .bubble.rich");`
	for _, c := range formatChecks {
		if !evalJS[bool](t, ctx, `(function(){`+m+` try { return !!(`+c.expr+`) } catch (e) { return false } })()`) {
			t.Errorf("%s: not so; the message is %s", c.name, evalJS[string](t, ctx, `(function(){`+m+` return m.innerHTML})()`))
		}
	}
	mine := `document.querySelector(".msg.user .bubble")`
	if got := evalJS[string](t, ctx, mine+`.textContent`); !strings.Contains(got, "**not bold**") || evalJS[bool](t, ctx, mine+`.querySelector("strong") !== null`) {
		t.Errorf("visitor's message = %q, formatted or changed", got)
	}
	// axe runs on a page that no longer refreshes itself, which could
	// reload it mid-run.
	waitJS(t, ctx, "the page to stop refreshing", `document.querySelectorAll(".msg.bot .bubble.rich").length == 2 && !document.querySelector(".poll [role=status]")`)
	for _, v := range runAxe(t, ctx, axeSource(t), `document`) {
		t.Errorf("axe: %s", v)
	}
}

// TestEngineMarkdown: the formatting and the attacks of TestWidgetMarkdown
// in each engine (engines_test.go): Chromium, Firefox ESR and WebKitGTK.
func TestEngineMarkdown(t *testing.T) {
	for _, e := range engineSpecs {
		t.Run(e.name, func(t *testing.T) {
			s := newEngineSiteWith(t, writeMarkdownConfig)
			p := openEngine(t, e)

			p.navigate(s.host.URL + "/")
			p.click("the launcher", engineLauncher)
			p.waitFor("focus in the composer", shadow+`.activeElement && `+shadow+`.activeElement == `+engineComposer)
			p.keys("**not bold**", true)
			p.waitFor("the bot's formatted answer", shadow+`.querySelector(".msg.bot .bubble.rich")`)
			m := `var m = ` + shadow + `.querySelector(".msg.bot .bubble.rich");`
			for _, c := range formatChecks {
				if !evalEngine[bool](p, `(function(){`+m+` try { return !!(`+c.expr+`) } catch (e) { return false } })()`) {
					t.Errorf("%s: %s: not so; the message is %s", e.name, c.name, evalEngine[string](p, `(function(){`+m+` return m.innerHTML})()`))
				}
			}
			if got := evalEngine[string](p, shadow+`.querySelector(".msg.user .bubble").textContent`); !strings.Contains(got, "**not bold**") {
				t.Errorf("%s: visitor's message = %q", e.name, got)
			}
		})
	}
}
