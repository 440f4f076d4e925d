// Porthole loader: the only eager download (budget: 3 KB brotli).
//
// It draws the launcher inside a shadow root at once, installs
// window.Porthole (calls made before the widget runs are queued), and
// fetches wasm_exec.js + widget.wasm only on intent (hover, focus, touch,
// click, an API call) or when the page is idle after its load event, and
// never on Save-Data. Where WebAssembly cannot run, it opens the no-JS
// chat page in the panel for the same visitor.
//
// Contract with the Go program (wasm/): before go.run it sets
// globalThis.__porthole_boot = {root, host, base, bot, options, calls,
// emit(name, detail), ready(dispatch)}. The program calls ready with one
// function dispatch(name, args); the loader wraps it into the API
// methods and replays the queued calls on them.
//
// The build (web/build) minifies this file with esbuild and replaces
// __PH_WASM__, __PH_EXEC__ and __PH_CSS__ with the hashed file names.
(function () {
  var d = document, w = window;
  var script = d.currentScript;
  if (!script || w.__porthole_loaded) return;
  w.__porthole_loaded = 1;

  var base = new URL(script.src).origin;
  var dist = base + "/static/dist/";
  var options = {};
  var ds = script.dataset;
  for (var k in ds) options[k] = ds[k];
  var bot = options.bot;

  var calls = [], listeners = {}, impl, state = 0; // 0 idle, 1 loading, 2 ready, 3 fallback
  var open = false, host, root, launcher;

  function emit(name, detail) {
    if (name == "open") open = true;
    if (name == "close") open = false;
    (listeners[name] || []).slice().forEach(function (fn) {
      try { fn(detail); } catch (e) { setTimeout(function () { throw e; }); }
    });
  }

  // call runs an API method now if the widget is ready, else queues it
  // and starts loading (an API call is intent).
  function call(name) {
    return function () {
      var args = [].slice.call(arguments);
      if (impl) return impl[name].apply(impl, args);
      calls.push([name, args]);
      load();
      if (name == "open" || name == "toggle" && !open) busy(1);
    };
  }

  var api = {
    init: function (o) {
      for (var k in o) options[k] = o[k];
      if (o && o.bot) bot = o.bot;
      if (impl && impl.init) impl.init(o);
      draw();
      return new Promise(function (resolve) {
        state == 2 ? resolve() : api.on("ready", resolve);
      });
    },
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
    off: function (name, fn) {
      listeners[name] = (listeners[name] || []).filter(function (f) { return fn && f != fn; });
    },
    isOpen: function () { return open; }
  };
  "open close toggle destroy sendMessage setSessionData setLanguage render login logout".split(" ").forEach(function (n) {
    api[n] = call(n);
  });
  // A page may queue calls before this script runs, and go on pushing
  // after: window.Porthole = window.Porthole || []; Porthole.push(["open"]).
  api.push = function (c) { api[c[0]].apply(api, c.slice(1)); };
  var queued = w.Porthole;
  w.Porthole = api;
  if (queued && queued.forEach) queued.forEach(api.push);

  function el(tag, cls, parent, ns) {
    var e = ns ? d.createElementNS("http://www.w3.org/2000/svg", tag) : d.createElement(tag);
    if (cls) e.setAttribute("class", cls);
    if (parent) parent.appendChild(e);
    return e;
  }

  // draw builds the launcher once the body exists; the stylesheet loads
  // first so the launcher never shows unstyled.
  function draw() {
    if (host || !bot) return;
    if (!d.body) return d.addEventListener("DOMContentLoaded", draw);
    host = el("div");
    host.setAttribute("data-porthole", bot);
    root = host.attachShadow({ mode: "open" });
    var css = el("link", 0, root);
    css.rel = "stylesheet";
    css.href = dist + __PH_CSS__;
    theme();
    launcher = el("button", "launcher " + (options.position == "left" ? "left" : "right"));
    launcher.type = "button";
    launcher.setAttribute("aria-label", options.launcherLabel || "Open chat");
    launcher.setAttribute("aria-expanded", "false");
    var svg = el("svg", "icon", launcher, 1);
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    el("path", 0, svg, 1).setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    el("span", "badge", launcher).hidden = true;
    css.onload = css.onerror = function () { root.appendChild(launcher); };
    d.body.appendChild(host);

    launcher.addEventListener("click", function () {
      if (!impl) { calls.push(["toggle", []]); busy(1); }
      load();
    });
    ["pointerenter", "focus", "touchstart"].forEach(function (t) {
      launcher.addEventListener(t, load, { passive: true, once: true });
    });
    // Idle prefetch: after the page's load event, never on Save-Data.
    var save = navigator.connection && navigator.connection.saveData;
    function idle() {
      if (!save) (w.requestIdleCallback || setTimeout)(load, { timeout: 4000 });
    }
    d.readyState == "complete" ? idle() : w.addEventListener("load", idle);
  }

  // theme sets the brand colour and a readable text colour on the host
  // through the CSSOM, which a strict CSP allows (style attributes it
  // would not).
  function theme() {
    var c = options.brandColor;
    if (!/^#([0-9a-f]{3}){1,2}$/i.test(c || "")) return;
    var h = c.length == 4 ? c.replace(/\w/g, "$&$&") : c, L = 0;
    [1, 3, 5].forEach(function (i, j) {
      var v = parseInt(h.substr(i, 2), 16) / 255;
      v = v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
      L += v * [0.2126, 0.7152, 0.0722][j];
    });
    host.style.setProperty("--ph-brand", c);
    // White on brand vs dark on brand: keep whichever contrasts more.
    host.style.setProperty("--ph-on-brand", 1.05 / (L + 0.05) >= (L + 0.05) / 0.0649 ? "#fff" : "#111827");
  }

  function busy(on) {
    if (launcher) launcher.classList.toggle("busy", !!on);
  }

  // load fetches and starts the Go program, once.
  function load() {
    if (state || !bot) return;
    draw(); // the queue may call before the body exists
    if (!root) return d.addEventListener("DOMContentLoaded", load);
    state = 1;
    w.__porthole_boot = {
      root: root, host: host, base: base, bot: bot, options: options, calls: calls, emit: emit,
      // ready receives the program's dispatch(name, args) function.
      ready: function (dispatch) {
        impl = {};
        "init open close toggle destroy sendMessage setSessionData setLanguage render login logout".split(" ").forEach(function (n) {
          impl[n] = function () { return dispatch(n, [].slice.call(arguments)); };
        });
        state = 2;
        busy(0);
        calls.splice(0).forEach(function (c) { impl[c[0]].apply(impl, c[1]); });
        emit("ready");
      }
    };
    var s = el("script");
    s.src = dist + __PH_EXEC__;
    s.onload = function () {
      var go = new Go();
      WebAssembly.instantiateStreaming(fetch(dist + __PH_WASM__), go.importObject)
        .then(function (r) { go.run(r.instance); }, fallback);
    };
    s.onerror = fallback;
    if (typeof WebAssembly != "object" || !WebAssembly.instantiateStreaming) return fallback();
    d.head.appendChild(s);
  }

  // fallback shows the no-JavaScript chat page in a panel for the same
  // visitor: for browsers without WebAssembly, or a host page whose CSP
  // forbids compiling it.
  function fallback(err) {
    if (state == 3) return;
    state = 3;
    busy(0);
    emit("error", { code: "wasm_unavailable", message: String(err || "WebAssembly unavailable") });
    var key = "porthole:" + bot + ":visitor", token = "", lang = options.language || d.documentElement.lang;
    try { token = localStorage.getItem(key) || ""; } catch (e) {}
    var panel = el("div", "panel fallback " + (options.position == "left" ? "left" : "right"), root);
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", options.title || "Chat");
    var close = el("button", "close", panel);
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    close.textContent = "\u00d7";
    var frame = el("iframe", 0, panel);
    frame.title = options.title || "Chat";
    frame.src = base + "/chat/" + encodeURIComponent(bot) + "?embed=1" + (token ? "&v=" + encodeURIComponent(token) : "") + (lang ? "&lang=" + encodeURIComponent(lang) : "");
    // The page tells us its visitor (a new one, before its first message)
    // so that the next page of this site continues the same conversation.
    w.addEventListener("message", function (e) {
      var m = e.data;
      if (e.origin == base && e.source == frame.contentWindow && m && m.porthole == "visitor" && m.bot == bot) {
        try { localStorage.setItem(key, m.visitor); } catch (x) {}
      }
    });
    impl = {
      open: function () { panel.hidden = false; launcher.setAttribute("aria-expanded", "true"); emit("open"); },
      close: function () { panel.hidden = true; launcher.setAttribute("aria-expanded", "false"); launcher.focus(); emit("close"); },
      toggle: function () { open ? impl.close() : impl.open(); },
      destroy: function () { host.remove(); }
    };
    close.onclick = impl.close;
    launcher.onclick = impl.toggle;
    "sendMessage setSessionData setLanguage render login logout".split(" ").forEach(function (n) {
      impl[n] = function () {};
    });
    impl.close();
    calls.splice(0).forEach(function (c) { impl[c[0]].apply(impl, c[1]); });
  }

  if (bot) draw();
})();
