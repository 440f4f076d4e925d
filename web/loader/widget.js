// Porthole loader: the only eager script. With its stylesheet it must stay
// within 3,072 bytes brotli (`make size`), so it is written for the
// minifier: short, no dependencies, arrow functions (every browser with
// shadow DOM and WebAssembly has them).
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

  var base = new URL(script.src).origin, dist = base + "/static/dist/", options = {}, k;
  for (k in script.dataset) options[k] = script.dataset[k];
  var bot = options.bot, calls = [], listeners = {}, look = {}, tx = {}, want = 0;
  var host, root, launcher, panel, refs, fetched, booted, impl, goes, opened, stopped;
  var saveData = (navigator.connection || {}).saveData;
  // The API's methods: the first seven work or start the widget, the
  // others are intent only.
  var names = "init open close toggle destroy sendMessage render setSessionData setLanguage login logout".split(" ");
  var CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  var CLOSE = "M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 1 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z";

  var key = (n) => "porthole:" + bot + ":" + n;
  var store = (n, v) => {
    try {
      return v ? localStorage.setItem(key(n), v) : localStorage.getItem(key(n));
    } catch (e) {}
  };
  var side = () => (options.position || look.p) == "left" ? "left" : "right";
  var attr = (e, n, v) => e.setAttribute(n, v);
  var el = (tag, cls, parent) => {
    var e = d.createElement(tag);
    if (cls) e.className = cls;
    return parent ? parent.appendChild(e) : e;
  };
  // build draws spec under parent: one element a line, one space of
  // indent a level, tag.classes, then attributes, where "$x" is the bot's
  // text x and "~" the launcher's side; a line "svg PATH" is an icon.
  // It returns the elements by their first class, or their tag.
  var build = (spec, parent) => {
    var refs = {}, stack = [parent];
    spec.replace(/~/g, side()).split("\n").forEach((line) => {
      var depth = line.search(/\S/), words = line.trim().split(" "), tc = words.shift().split("."), e;
      if (tc[0] == "svg") {
        var ns = "http://www.w3.org/2000/svg";
        e = stack[depth].appendChild(d.createElementNS(ns, "svg"));
        attr(e, "viewBox", "0 0 24 24");
        attr(e, "aria-hidden", true);
        attr(e, "class", tc[1]);
        return attr(e.appendChild(d.createElementNS(ns, "path")), "d", words.join(" "));
      }
      e = stack[depth + 1] = refs[tc[1] || tc[0]] = el(tc.shift(), tc.join(" "), stack[depth]);
      words.forEach((a) => {
        a = a.split("=");
        attr(e, a[0], a[1][0] == "$" ? tx[a[1][1]] : a[1]);
      });
    });
    return refs;
  };
  var emit = (name, detail) => {
    if (name == "open" || name == "close") opened = name == "open";
    (listeners[name] || []).slice().forEach((fn) => {
      try {
        fn(detail);
      } catch (e) {
        setTimeout(() => { throw e; });
      }
    });
  };

  // The API. Until the Go program runs, the panel's calls work here and
  // the others are kept for it: sendMessage and render start it, the rest
  // only fetch it (an API call is intent).
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
    open: () => show(1),
    close: () => show(0),
    toggle: () => show(!opened),
    destroy() {
      stopped = 1;
      goes ? impl.destroy() : host && host.remove();
    }
  };
  names.forEach((n, i) => {
    var own = api[n];
    api[n] = (...args) => {
      if (own) return own(...args);
      if (impl) return impl[n](...args);
      calls.push([n, args]);
      i > 6 ? intent() : start();
    };
  });
  // A page may queue calls before this script runs, and go on pushing
  // after: window.Porthole = window.Porthole || []; Porthole.push(["open"]).
  api.push = (c) => api[c[0]](...c.slice(1));
  var queued = w.Porthole;
  w.Porthole = api;
  if (queued && queued.forEach) queued.forEach(api.push);

  // draw adds the shadow root and its stylesheet; the launcher follows
  // when the stylesheet has loaded, so it never shows unstyled.
  function draw() {
    if (host || !bot || stopped) return;
    if (!d.body) return d.addEventListener("DOMContentLoaded", draw);
    attr(host = el("div", 0, d.body), "data-porthole", bot);
    root = host.attachShadow({ mode: "open" });
    var css = el("link", 0, root), c = options.brandColor;
    css.rel = "stylesheet";
    css.href = base + "/widget.css?" + new URLSearchParams({
      bot, lang: options.language || "", page: d.documentElement.lang || navigator.language, color: c || ""
    });
    css.onload = drawLauncher;
  }

  function drawLauncher() {
    try {
      look = JSON.parse(decodeURIComponent(getComputedStyle(host).getPropertyValue("--ph-look").trim().slice(1, -1)));
    } catch (e) {}
    tx = look.x || {};
    launcher = build("button.launcher.~ type=button aria-label=$o aria-expanded=false\n svg.chat " + CHAT + "\n svg.shut " + CLOSE +
      "\n span.badge", root).launcher;
    var badge = launcher.lastChild, n = store("unread");
    badge.textContent = n;
    badge.hidden = !(n > 0);
    launcher.onclick = () => goes || show(!opened);
    ["pointerenter", "focus", "touchstart"].forEach((t) => launcher.addEventListener(t, intent, { passive: true, once: true }));
    teaser();
    if (calls[0]) intent(); // calls made before the launcher was drawn
    if (want > 1) show(1);
    else if (want) start();
    else if (store("visitor") && (options.connect || look.k) != "open" && !saveData) {
      // A returning visitor: start once the page has loaded and is idle.
      var idle = () => w.requestIdleCallback ? requestIdleCallback(start, { timeout: 4e3 }) : setTimeout(start, 2e3);
      d.readyState == "complete" ? idle() : w.addEventListener("load", idle);
    }
  }

  // teaser shows a bubble beside the launcher after a delay, once a day,
  // on the configured paths only.
  function teaser() {
    var z = look.z || {}, text = options.teaser || z.t, day = new Date().toDateString();
    if (text && store("teaser") != day && (!z.p || z.p.some((p) => location.pathname.startsWith(p)))) {
      setTimeout(() => {
        if (opened || stopped) return;
        var t = build("div.teaser.~\n button.tt\n button.tx aria-label=$c", root), x = t.tx;
        t.tt.textContent = text;
        x.textContent = "\u00d7";
        t = t.teaser;
        t.firstChild.onclick = () => show(1);
        api.on("open", x.onclick = () => t.remove());
        store("teaser", day);
      }, z.d || 3e3);
    }
  }

  // show opens or closes the panel while the loader owns it.
  function show(on) {
    on = !!on;
    if (goes) return impl[on ? "open" : "close"]();
    if (!launcher) return on && (want = 2, start());
    frame();
    panel.hidden = !on;
    attr(launcher, "aria-expanded", on);
    launcher.classList.toggle("open", on);
    if (on) refs.textarea.focus({ preventScroll: true });
    else if (root.activeElement) launcher.focus();
    if (on != !!opened) emit(on ? "open" : "close");
    if (on) start();
  }

  // frame draws the panel, hidden, as the Go program expects to find it.
  function frame() {
    if (panel) return;
    refs = build("div.panel.~ role=dialog hidden= aria-label=$d lang=$l\n div.header\n  img.avatar alt= hidden=\n  div.titles\n" +
      "   h2.title\n   p.subtitle\n  button.close type=button aria-label=$c\n   svg. " + CLOSE + "\n div.banner role=status hidden=\n" +
      " div.log tabindex=0 aria-label=$d\n div.sr aria-live=polite aria-atomic=true\n form.composer\n" +
      "  textarea rows=1 maxlength=4000 enterkeyhint=send placeholder=$h aria-label=$m\n  button.send type=submit aria-label=$s\n" +
      "   svg. M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z", root);
    panel = refs.panel;
    var sub = options.subtitle || look.s, src = options.icon || look.i, g = options.greeting || look.g;
    refs.title.textContent = options.title || look.t || tx.d;
    refs.subtitle.textContent = sub;
    refs.subtitle.hidden = !sub;
    if (/^https:/.test(src)) refs.avatar.hidden = !(refs.avatar.src = src);
    if (g) el("p", "greeting", refs.log).textContent = g;
    refs.close.onclick = () => goes || show(0);
    panel.onkeydown = (e) => goes || e.key != "Escape" || show(0);
    refs.composer.onsubmit = (e) => {
      e.preventDefault();
      goes || typed();
    };
    refs.textarea.onkeydown = (e) => {
      if (!goes && e.key == "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        typed();
      }
    };
  }

  // typed keeps a message sent before the Go program runs: on the
  // widget's stored outbox, exactly as the program stores one (its own id,
  // "at"), so that the program shows it as sending and sends it once;
  // where storage fails, as a queued sendMessage call.
  function typed() {
    var text = refs.textarea.value.trim(), now = Date.now(), o, m;
    if (!text) return;
    try {
      (o = JSON.parse(store("outbox")) || []).push({ type: "send", id: now.toString(36) + "-" + Math.random().toString(36).slice(2), text, at: now });
      localStorage.setItem(key("outbox"), JSON.stringify(o));
    } catch (e) {
      calls.push(["sendMessage", [text]]);
    }
    refs.textarea.value = "";
    el("div", "bubble", m = el("div", "msg user", refs.log)).textContent = text;
    el("div", "meta", m).textContent = tx.w;
    refs.log.scrollTop = 1e9;
  }

  function intent() {
    if (!saveData && launcher) fetchWidget().catch(Boolean);
  }

  // fetchWidget fetches and compiles the widget, once; it runs nothing.
  // The work is inside an executor, so that a browser without WebAssembly
  // gets a rejection rather than an exception.
  function fetchWidget() {
    return fetched = fetched || new Promise((y) => {
      var css = el("link", 0, root), s = el("script", 0, d.head);
      css.rel = "stylesheet";
      css.href = dist + __PH_CSS__;
      y(Promise.all([
        new Promise((y) => css.onload = css.onerror = y),
        new Promise((y, n) => {
          s.onload = y;
          s.onerror = n;
          s.src = dist + __PH_EXEC__;
        }),
        WebAssembly.compileStreaming(fetch(dist + __PH_WASM__))
      ]));
    });
  }

  // start runs the Go program in the panel's frame, once.
  function start() {
    if (!launcher) return want = want || 1;
    if (booted || stopped) return;
    booted = 1;
    frame();
    setTimeout(() => impl || (refs.banner.hidden = !(refs.banner.textContent = tx.n)), 800);
    w.__porthole_boot = {
      root, host, base, bot, options, look, calls, emit,
      ready(dispatch) {
        goes = impl = {};
        names.forEach((n) => impl[n] = (...a) => dispatch(n, a));
        calls.splice(0).forEach((c) => impl[c[0]](...c[1]));
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
      names.forEach((n) => impl[n] = Boolean);
      calls.splice(0);
      emit("error", { code: "wasm_unavailable", message: "" + err });
      el("script", 0, d.head).src = dist + __PH_FALLBACK__;
    });
  }

  draw();
})();
