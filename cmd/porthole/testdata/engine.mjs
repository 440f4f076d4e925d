// engine.mjs drives one browser engine for the Go tests in
// engines_test.go. `node engine.mjs <engine> <browser> [<driver>]`
// launches the browser (the paths of its executable and, for WebKit, of
// its WebDriver server), says {"ready":…} on stdout, then answers one
// JSON request per line on stdin ({"id", "op", …}) with one JSON line on
// stdout ({"id", "value"} or {"id", "error"}). Its own and the browser's
// diagnostics go to stderr. Closing stdin closes the browser and ends
// the script.
//
// The engines, each with the browser Debian installs (nothing here ever
// downloads a browser or a driver):
//   chromium  chromium, puppeteer-core over CDP
//   firefox   firefox-esr, puppeteer-core over WebDriver BiDi
//   webkit    WebKitGTK's MiniBrowser through WebKitWebDriver, started
//             with --automation (webkitgtk:browserOptions); it has no
//             headless mode and needs DISPLAY. selenium-webdriver over
//             W3C WebDriver classic
//
// Why selenium-webdriver for WebKit rather than a Go WebDriver client:
// puppeteer does not speak classic WebDriver, and Debian's
// WebKitWebDriver speaks nothing else. selenium-webdriver is the
// reference W3C client, maintained with the spec, and through this same
// line protocol the Go tests drive all three engines with one scenario;
// a Go client would be a second, home-made protocol implementation to
// keep correct (element references, action chains, error mapping). It is
// used only as a client (its JavaScript binding has no WebKitGTK module;
// the generic DriverService and WebDriver.createSession are enough): the
// driver service is started here with its path, so Selenium Manager is
// never asked to find or fetch anything.
//
// Operations: goto {url}, reload, eval {expr} (the JSON value of a
// JavaScript expression, promises awaited), click {expr} (a real pointer
// click on the element the expression returns, which may be inside a
// shadow root), keys {text, enter} (real key presses into whatever has
// focus), screenshot {path}, console (the page's console lines so far;
// in WebKit only those logged after the load event, see hookConsole).

import { createInterface } from "node:readline";
import { writeFileSync } from "node:fs";

// Selenium Manager only runs when a driver has to be found; in case it
// ever did, it must not fetch one.
process.env.SE_OFFLINE = "true";

const [engine, browserPath, driverPath] = process.argv.slice(2);
const width = 1280, height = 860;
const consoleLines = [];

function note(line) {
  process.stderr.write("engine.mjs: " + line + "\n");
}

async function puppeteerEngine(kind) {
  const { default: puppeteer } = await import("puppeteer-core");
  const chromium = kind == "chromium";
  const browser = await puppeteer.launch({
    browser: chromium ? "chrome" : "firefox",
    executablePath: browserPath,
    headless: true,
    defaultViewport: { width, height },
    args: chromium ? ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"] : [],
    // Firefox: no background traffic to Mozilla's services; there is
    // no network here anyway, and none of it is part of a page view.
    extraPrefsFirefox: {
      "browser.safebrowsing.malware.enabled": false,
      "browser.safebrowsing.phishing.enabled": false,
      "network.captive-portal-service.enabled": false,
      "network.connectivity-service.enabled": false,
    },
    timeout: 60000,
  });
  const page = (await browser.pages())[0] || (await browser.newPage());
  page.on("console", (m) => consoleLines.push(m.type() + ": " + m.text()));
  page.on("pageerror", (e) => consoleLines.push("pageerror: " + (e && e.message || e)));
  page.setDefaultTimeout(20000);
  // Firefox does not apply defaultViewport to the first page.
  await page.setViewport({ width, height });
  return {
    version: await browser.version(),
    goto: (a) => page.goto(a.url, { waitUntil: "load" }).then(() => null),
    reload: () => page.reload({ waitUntil: "load" }).then(() => null),
    eval: (a) => page.evaluate("(" + a.expr + ")"),
    click: async (a) => {
      const h = await page.evaluateHandle("(" + a.expr + ")");
      const el = h.asElement();
      if (!el) throw new Error("click: " + a.expr + " is not an element");
      await el.click();
      await h.dispose();
      return null;
    },
    keys: async (a) => {
      await page.keyboard.type(a.text);
      if (a.enter) await page.keyboard.press("Enter");
      return null;
    },
    screenshot: (a) => page.screenshot({ path: a.path }).then(() => null),
    console: () => consoleLines.slice(),
    close: () => browser.close(),
  };
}

async function webkitEngine() {
  const { WebDriver, Capabilities, Key } = await import("selenium-webdriver");
  const remote = await import("selenium-webdriver/remote/index.js");
  const http = await import("selenium-webdriver/http/index.js");
  const portprober = await import("selenium-webdriver/net/portprober.js");
  const port = await portprober.findFreePort();
  // The driver's and the browser's output go to stderr: stdout is this
  // script's protocol.
  const service = new remote.DriverService(driverPath, {
    loopback: true, port, args: ["--port=" + port], stdio: ["ignore", 2, 2],
  });
  const url = await service.start(30000);
  const caps = new Capabilities();
  caps.set("webkitgtk:browserOptions", {
    binary: browserPath,
    args: ["--automation"],
  });
  const driver = WebDriver.createSession(new http.Executor(new http.HttpClient(url)), caps, () => service.kill());
  // WebDriver classic has no console channel (and this WebKitWebDriver
  // no BiDi), so after each load the page's console is copied into an
  // array that the console op reads: what a page logs after its load
  // event, which is when the widget runs.
  const hookConsole = () => driver.executeScript(`if (!window.__engineConsole) {
    var seen = window.__engineConsole = [];
    ["log", "info", "warn", "error"].forEach(function (k) {
      var orig = console[k];
      console[k] = function () { seen.push(k + ": " + [].map.call(arguments, String).join(" ")); return orig.apply(console, arguments); };
    });
    addEventListener("error", function (e) { seen.push("pageerror: " + e.message); });
    addEventListener("unhandledrejection", function (e) { seen.push("unhandledrejection: " + e.reason); });
  }`).then(() => null);
  const c = await driver.getCapabilities();
  await driver.manage().window().setRect({ width, height });
  await driver.manage().setTimeouts({ script: 20000, pageLoad: 30000 });
  return {
    version: c.get("browserName") + " " + c.get("browserVersion"),
    goto: (a) => driver.get(a.url).then(hookConsole),
    reload: () => driver.navigate().refresh().then(hookConsole),
    eval: (a) => driver.executeScript("return (" + a.expr + ");"),
    click: async (a) => {
      const el = await driver.executeScript("return (" + a.expr + ");");
      if (!el || typeof el.click != "function") throw new Error("click: " + a.expr + " is not an element");
      await el.click();
      return null;
    },
    keys: async (a) => {
      await driver.actions().sendKeys(a.text + (a.enter ? Key.ENTER : "")).perform();
      return null;
    },
    screenshot: async (a) => {
      writeFileSync(a.path, await driver.takeScreenshot(), "base64");
      return null;
    },
    console: async () => {
      try {
        const seen = await driver.executeScript("return window.__engineConsole || [];");
        return ["(WebKit: lines logged after the load event only)"].concat(seen);
      } catch (err) {
        return ["(WebKit: console unavailable: " + err.message + ")"];
      }
    },
    close: async () => {
      try { await driver.quit(); } finally { await service.kill(); }
    },
  };
}

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

let e;
try {
  if (engine == "chromium" || engine == "firefox") e = await puppeteerEngine(engine);
  else if (engine == "webkit") e = await webkitEngine();
  else throw new Error("unknown engine " + JSON.stringify(engine) + "; want chromium, firefox or webkit");
} catch (err) {
  send({ ready: false, error: String(err && err.stack || err) });
  process.exit(1);
}
send({ ready: true, version: e.version });

// Requests are handled one at a time, in order.
let chain = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  chain = chain.then(async () => {
    let req;
    try {
      req = JSON.parse(line);
      const fn = e[req.op];
      if (!fn || req.op == "close" || req.op == "version") throw new Error("unknown op " + req.op);
      const value = await fn(req);
      send({ id: req.id, value: value === undefined ? null : value });
    } catch (err) {
      send({ id: req && req.id, error: String(err && err.message || err) });
    }
  });
});
lines.on("close", () => {
  chain.then(async () => {
    try { await e.close(); } catch (err) { note("close: " + err); }
    process.exit(0);
  });
});
