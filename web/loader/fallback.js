// Porthole's no-WebAssembly fallback, loaded by the loader only where the
// Go program cannot run (an old browser, a host page whose CSP forbids
// compiling WebAssembly). It puts the no-JavaScript chat page
// (/chat/{bot}) in the panel the loader drew, for the same visitor, so
// the conversation started in the widget goes on; the loader keeps the
// launcher and the panel.
(() => {
  var b = __porthole_boot, root = b.root, key = "porthole:" + b.bot + ":visitor", token, lang;
  try {
    token = localStorage.getItem(key);
  } catch (e) {}
  // The frame's language, so that the page's direction is the panel's.
  lang = b.options.language || (b.look.x || {}).l || document.documentElement.lang;
  var f = document.createElement("iframe");
  f.title = (b.look.x || {}).d || "Chat";
  f.src = b.base + "/chat/" + encodeURIComponent(b.bot) + "?embed=1" + (token ? "&v=" + encodeURIComponent(token) : "") +
    (lang ? "&lang=" + encodeURIComponent(lang) : "") + "&tz=" + encodeURIComponent(Intl.DateTimeFormat().resolvedOptions().timeZone) + "&host=" + encodeURIComponent(location.origin);
  root.querySelector(".log").replaceWith(f);
  root.querySelector(".composer").remove();
  root.querySelector(".banner").remove();
  root.querySelector(".panel").classList.add("fallback");
  // The page tells us its visitor (a new one, before its first message)
  // so that the next page of this site continues the same conversation.
  // It posts only to the origin named by host, which the server checks
  // against the bot's origins.
  addEventListener("message", (e) => {
    var m = e.data;
    if (e.origin == b.base && e.source == f.contentWindow && m && m.porthole == "visitor" && m.bot == b.bot) {
      try {
        localStorage.setItem(key, m.visitor);
      } catch (x) {}
    }
  });
})();
