// Porthole loader: the only eager script. With its stylesheet it is what
// every page view costs (`make size` counts both), so it is written for
// the minifier: short, no dependencies, arrow functions (every browser
// with shadow DOM and WebAssembly has them), elements drawn from small
// specs by one function.
//
// What a page view costs, stage by stage (DESIGN.md, "Loading on a host
// page"):
//   - Now: the launcher in a shadow root, styled by GET /widget.css?bot=ID,
//     which also carries the bot's look and texts (--ph-look); the
//     window.Porthole API, whose calls are kept until the widget runs;
//     maybe a teaser. No wasm, no socket, no storage write, nothing on the
//     server.
//   - Intent (pointer over, focus or touch on the launcher, an API call):
//     wasm_exec.js, widget.wasm (compiled, not run) and the transcript's
//     stylesheet are fetched. Never on Save-Data. Nothing on the server.
//   - Open (click, open(), sendMessage(), render()): the panel's frame is
//     drawn here at once, with no network, and the Go program starts and
//     takes the same DOM over. What the visitor sends meanwhile goes into
//     the widget's stored outbox, and out once, with its own id.
//   - A returning visitor (one with a visitor token) starts the program
//     after the load event, when the page is idle, so that replies that
//     came while away show on the badge; connect "open" waits for the open.
//
// Contract with the Go program (wasm/) and the no-WebAssembly fallback
// (fallback.js): globalThis.__porthole_boot = {root, host, base, bot,
// options, look, calls, emit(name, detail), ready(dispatch)}. The program
// finds the panel drawn here by its classes, calls ready with one function
// dispatch(name, args), and from then on owns the launcher and the panel.
//
// The build (web/build) minifies this file with esbuild and replaces
// __PH_WASM__, __PH_EXEC__, __PH_CSS__ and __PH_FALLBACK__ with the hashed
// file names.
(() => {
  var d = document, w = window, script = d.currentScript;
  if (!script || w.__porthole_loaded) return;
  w.__porthole_loaded = 1;

  var base = new URL(script.src).origin, dist = base + "/static/dist/";
  var options = Object.assign({}, script.dataset), bot = options.bot;
  var calls = [], early = [], listeners = {}, look = {}, tx = {};
  var host, root, launcher, panel, refs, fetched, booted, impl, goes, opened, stopped;
  var saveData = (navigator.connection || {}).saveData;
  var names = "open close toggle destroy sendMessage render setSessionData setLanguage login logout setContext".split(" ");
  var CLOSE = "M6 6l12 12m0-12L6 18";

  var key = (n) => "porthole:" + bot + ":" + n;
  var store = (n, v) => {
    try {
      return v ? localStorage.setItem(key(n), v) : localStorage.getItem(key(n));
    } catch (e) {}
  };
  var side = () => (options.position || look.p) == "left" ? "left" : "right";
  var attr = (e, n, v) => e.setAttribute(n, v);
  var emit = (name, detail) => {
    if (name == "open" || name == "close") opened = name == "open";
    (listeners[name] || []).map((fn) => setTimeout(fn, 0, detail));
  };
  // build draws spec under parent: one element a line, one space of
  // indent a level, tag.classes, then attributes, where $x is text x of
  // the look; "svg.class PATH" is an icon. It returns the elements by
  // their first class, or their tag.
  var build = (spec, parent) => {
    var refs = {}, stack = [parent];
    spec.replace(/~/g, side()).split("\n").map((line) => {
      var depth = line.search(/\S/), words = line.trim().split(" "), tc = words.shift().split("."), svg = tc[0] == "svg";
      var e = stack[depth + 1] = refs[tc[1] || tc[0]] = stack[depth].appendChild(
        svg ? d.createElementNS("http://www.w3.org/2000/svg", "svg") : d.createElement(tc[0]));
      attr(e, "class", tc.slice(1).join(" "));
      if (svg) {
        attr(e, "viewBox", "0 0 24 24");
        attr(e, "aria-hidden", true);
        attr(e.appendChild(d.createElementNS("http://www.w3.org/2000/svg", "path")), "d", words.join(" "));
      } else words.map((a) => {
        a = a.split("=");
        attr(e, a[0], a[1][0] == "$" ? tx[a[1][1]] : a[1]);
      });
    });
    return refs;
  };

  var api = {
    init(o) {
      Object.assign(options, o);
      bot = options.bot;
      goes ? impl.init(o) : draw();
      return new Promise((y) => goes ? y() : api.on("ready", y));
    },
    on: (name, fn) => (listeners[name] = listeners[name] || []).push(fn),
    off: (name, fn) => listeners[name] = (listeners[name] || []).filter((f) => fn && f != fn),
    isOpen: () => !!opened,
    push: (c) => api[c[0]](...c.slice(1))
  };
  // The rest wait for the launcher; then, until the Go program runs, the
  // panel's calls work here and the others are kept for the program:
  // sendMessage and render start it, the rest only fetch it (intent).
  names.map((n, i) => api[n] = (...a) => {
    if (!launcher) return early.push([n, a]);
    if (goes) return impl[n](...a);
    if (i < 3) return show(i ? i < 2 ? 0 : !opened : 1);
    if (i < 4) return stopped = host.remove() || 1;
    if (impl) return; // the fallback: nothing to do
    calls.push([n, a]);
    i > 5 ? intent() : start();
  });
  var queued = w.Porthole;
  w.Porthole = api;
  if (queued && queued.map) queued.map(api.push);

  function draw() {
    if (host || !bot) return;
    if (!d.body) return d.addEventListener("DOMContentLoaded", draw);
    attr(host = d.body.appendChild(d.createElement("div")), "data-porthole", bot);
    root = host.attachShadow({ mode: "open" });
    var css = build("link rel=stylesheet", root).link;
    css.href = base + "/widget.css?" + new URLSearchParams({
      bot, lang: options.language || "", page: d.documentElement.lang || navigator.language, color: options.brandColor || ""
    });
    css.onload = () => {
      try {
        look = JSON.parse(decodeURIComponent(getComputedStyle(host).getPropertyValue("--ph-look").trim().slice(1, -1)));
      } catch (e) {}
      tx = look.x || {};
      launcher = build("button.launcher.~ type=button aria-label=$o aria-expanded=false\n svg.chat M3 4h18v13H9l-5 4z\n svg.shut " +
        CLOSE + "\n span.badge", root).launcher;
      var badge = launcher.lastChild, n = store("unread"), z = look.z || {}, text = options.teaser || z.t, day = Date().slice(0, 15);
      badge.textContent = n;
      badge.hidden = !(n > 0);
      launcher.onclick = () => goes || show(!opened);
      ["pointerenter", "focus", "touchstart"].map((t) => launcher.addEventListener(t, intent, { passive: true, once: true }));
      // The teaser: after a delay, once a day, on the configured paths.
      if (text && store("teaser") != day && (!z.p || z.p.some((p) => location.pathname.startsWith(p)))) {
        setTimeout(() => {
          if (opened || stopped) return;
          var t = build("div.teaser.~\n button.tt\n button.tx aria-label=$c", root);
          t.tt.textContent = text;
          t.tx.textContent = "\u00d7";
          t.tt.onclick = () => show(1);
          api.on("open", t.tx.onclick = () => t.teaser.remove());
          store("teaser", day);
        }, z.d || 3e3);
      }
      early.map((c) => api[c[0]](...c[1]));
      // A returning visitor: start once the page has loaded and is idle.
      if (store("visitor") && (options.connect || look.k) != "open" && !saveData) {
        var idle = () => w.requestIdleCallback ? requestIdleCallback(start, { timeout: 4e3 }) : setTimeout(start, 2e3);
        d.readyState == "complete" ? idle() : w.addEventListener("load", idle);
      }
    };
  }

  // show opens or closes the panel while the loader owns it, drawing its
  // frame the first time, as the Go program expects to find it.
  function show(on) {
    if (goes) return impl[on ? "open" : "close"]();
    if (!panel) {
      refs = build("div.panel.~ role=dialog hidden= aria-label=$d lang=$l dir=$r\n div.header\n  img.avatar alt= hidden=\n  div.titles\n" +
        "   h2.title\n   p.subtitle\n  button.close type=button aria-label=$c\n   svg. " + CLOSE + "\n div.banner role=status hidden=\n" +
        " div.log tabindex=0 aria-label=$d\n div.sr aria-live=polite aria-atomic=true\n form.composer\n" +
        "  textarea rows=1 maxlength=4000 enterkeyhint=send placeholder=$h aria-label=$m\n  button.send type=submit aria-label=$s\n" +
        "   svg. M3 20 21 12 3 4v6l12 2-12 2z", root);
      panel = refs.panel;
      var sub = options.subtitle || look.s, src = options.icon || look.i, g = options.greeting || look.g, ta = refs.textarea;
      refs.title.textContent = options.title || look.t || tx.d;
      refs.subtitle.hidden = !(refs.subtitle.textContent = sub || "");
      if (/^https:/.test(src)) refs.avatar.hidden = !(refs.avatar.src = src);
      if (g) build("p.greeting", refs.log).greeting.textContent = g;
      refs.close.onclick = () => goes || show();
      panel.onkeydown = (e) => goes || e.key != "Escape" || show();
      refs.composer.onsubmit = ta.onkeydown = (e) => {
        if (!goes && (!e.key || e.key == "Enter" && !e.shiftKey && !e.isComposing)) {
          e.preventDefault();
          // Kept on the widget's stored outbox, exactly as the program
          // stores a message (its own id, "at"), so that the program shows
          // it as sending and sends it once; where storage fails, as a
          // queued sendMessage call.
          var text = ta.value.trim(), now = Date.now(), o, m;
          if (!text) return;
          try {
            (o = JSON.parse(store("outbox")) || []).push({ type: "send", id: now.toString(36) + "-" + Math.random().toString(36).slice(2), text, at: now });
            store("outbox", JSON.stringify(o));
          } catch (x) {
            calls.push(["sendMessage", [text]]);
          }
          ta.value = "";
          m = build("div.msg.user\n div.bubble\n div.meta", refs.log);
          m.bubble.textContent = text;
          m.meta.textContent = tx.w;
          refs.log.scrollTop = 1e9;
        }
      };
    }
    panel.hidden = !on;
    attr(launcher, "aria-expanded", !!on);
    launcher.classList.toggle("open", !!on);
    if (!on == !opened) return;
    emit(on ? "open" : "close");
    on ? (refs.textarea.focus({ preventScroll: true }), start()) : root.activeElement && launcher.focus();
  }

  function intent() {
    if (!saveData) fetchWidget().catch(Boolean);
  }

  // fetchWidget fetches and compiles the widget, once; it runs nothing.
  // Inside an executor, so that a browser without WebAssembly gets a
  // rejection rather than an exception.
  function fetchWidget() {
    return fetched = fetched || new Promise((y) => {
      var r = build("link rel=stylesheet\nscript", root);
      r.link.href = dist + __PH_CSS__;
      d.head.append(r.script);
      y(Promise.all([
        new Promise((y) => r.link.onload = r.link.onerror = y),
        new Promise((y, n) => {
          r.script.onload = y;
          r.script.onerror = n;
          r.script.src = dist + __PH_EXEC__;
        }),
        WebAssembly.compileStreaming(fetch(dist + __PH_WASM__))
      ]));
    });
  }

  // start runs the Go program in the panel's frame, once.
  function start() {
    if (booted || stopped) return;
    booted = 1;
    show(opened);
    setTimeout(() => impl || (refs.banner.hidden = !(refs.banner.textContent = tx.n)), 800);
    w.__porthole_boot = {
      root, host, base, bot, options, look, calls, emit,
      ready(dispatch) {
        goes = impl = {};
        ["init", ...names].map((n) => impl[n] = (...a) => dispatch(n, a));
        calls.splice(0).map((c) => impl[c[0]](...c[1]));
        emit("ready");
      }
    };
    fetchWidget().then((r) => {
      var go = new Go();
      return WebAssembly.instantiate(r[2], go.importObject).then((i) => go.run(i));
    }).catch((err) => {
      // No WebAssembly here (an old browser, a CSP without
      // 'wasm-unsafe-eval'): fallback.js puts the no-JavaScript chat page
      // in the panel for the same visitor, and the loader keeps the panel.
      if (impl) return;
      impl = {};
      names.map((n) => impl[n] = Boolean);
      calls.splice(0);
      emit("error", { code: "wasm_unavailable", message: "" + err });
      build("script", d.head).script.src = dist + __PH_FALLBACK__;
    });
  }

  draw();
})();
