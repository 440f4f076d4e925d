// measure.mjs: what a page view of a host page costs with the Porthole
// snippet, against the same page without it, as Lighthouse reports it.
//
//   npm ci --prefix tools/lighthouse
//   node tools/lighthouse/measure.mjs [--runs 3] [--out DIR] [--throttling simulate|devtools]
//
// It builds the widget assets and the binary (make wasm, go build), starts
// `porthole serve` with the built-in demo bot on loopback, as `make run`
// does, and serves two host pages on another loopback origin: an article
// without the snippet (/plain) and the same article with the one-line
// embed snippet (/snippet). Then it runs Lighthouse (performance only)
// against both, with Debian's Chromium (CHROME_PATH, default
// /usr/bin/chromium), desktop and mobile presets, --runs times each, a
// fresh browser profile (cold cache) per run, the two pages alternating,
// and prints the medians. Lighthouse's own throttling is used as its
// presets define it (simulated: mobile is slow 4G with a 4× slower CPU,
// desktop 40 ms RTT, 10 Mbit/s).
//
// Nothing may reach the internet: the browser resolves no name but
// localhost (--host-resolver-rules), runs with the background-networking
// flags of cmd/porthole/browser_test.go, and the script fails if
// Lighthouse saw a request to anything but the two loopback origins.
// --out DIR keeps every Lighthouse report (JSON) for a closer look.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as chromeLauncher from "chrome-launcher";
import lighthouse from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf("--" + name);
  return i >= 0 ? args[i + 1] : def;
};
const RUNS = Number(opt("runs", 3));
const OUT = opt("out", "");
// --throttling devtools: Lighthouse throttles the browser itself
// (request latency and bandwidth, CPU) and reports what it observed,
// instead of simulating from an unthrottled load (the default, simulate).
const THROTTLING = opt("throttling", "simulate");
const CHROME = process.env.CHROME_PATH || "/usr/bin/chromium";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// The flags of cmd/porthole/browser_test.go, and no name resolution but
// loopback's.
const CHROME_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
];

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const run = (cmd, argv, env) => {
  const r = spawnSync(cmd, argv, { cwd: ROOT, stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} failed (${r.status})`);
};

// An article page as a customer's site might have it: text, a little
// inline CSS, nothing from elsewhere. /snippet adds the embed snippet.
const article = (proxy, snippet) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>How a container crosses the sea | Acme Shipping</title>
<meta name="description" content="From the quay to your door: what happens to a container on its way.">
<style>
body { margin: 0; font: 18px/1.6 Georgia, serif; color: #1b1f24; background: #fbfaf7; }
header, main, footer { max-width: 42rem; margin: 0 auto; padding: 1rem 1.25rem; }
header { font: 600 1rem system-ui, sans-serif; border-bottom: 1px solid #ddd; }
h1 { font-size: 2.2rem; line-height: 1.2; margin: 1.5rem 0 .5rem; }
.lede { font-size: 1.2rem; color: #4a5159; }
footer { font: .9rem system-ui, sans-serif; color: #667; }
</style></head>
<body>
<header>Acme Shipping · News</header>
<main>
<h1>How a container crosses the sea</h1>
<p class="lede">From the quay to your door: what happens to a box on its way, and why it takes the time it takes.</p>
${"<p>A container is loaded at the terminal by a gantry crane, one of several working the same ship at once. Each box has its place in a stowage plan that keeps the heavy ones low, the reefers near their power points and the ones for the next port on top. The ship sails when the last box is lashed, and every hour in port costs money, so the plan is made days ahead and changed until the last minute.</p>\n".repeat(6)}
<p>Questions about your own shipment? Our team answers in the chat at the bottom of the page.</p>
</main>
<footer>© Acme Shipping</footer>
${snippet ? `<script async src="${proxy}/widget.js" data-bot="demo"></script>\n<noscript><a href="${proxy}/chat/demo">Chat with us</a></noscript>` : ""}
</body></html>`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function main() {
  // The server, built as `make run` builds it.
  run("make", ["wasm"]);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "porthole-lh-"));
  const bin = path.join(tmp, "porthole");
  run("go", ["build", "-trimpath", "-o", bin, "./cmd/porthole"]);
  const proxyPort = await freePort();
  const proxy = `http://localhost:${proxyPort}`;
  const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${proxyPort}`, "--data", path.join(tmp, "data")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const stop = () => {
    server.kill();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.on("exit", stop);
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${proxy}/readyz`);
      if (r.ok) break;
    } catch {}
    if (i > 300) throw new Error("porthole did not become ready");
    await new Promise((y) => setTimeout(y, 50));
  }

  // The host site, on another origin.
  const hostPort = await freePort();
  const host = `http://127.0.0.1:${hostPort}`;
  const pages = { plain: article(proxy, false), snippet: article(proxy, true) };
  const site = http.createServer((req, res) => {
    const page = pages[req.url.slice(1)];
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" });
    res.end(page);
  });
  await new Promise((y) => site.listen(hostPort, "127.0.0.1", y));

  if (OUT) mkdirSync(OUT, { recursive: true });
  const presets = { desktop: desktopConfig, mobile: undefined };
  const results = {}; // preset/page → [metrics]
  const seen = {}; // preset/page → Porthole URLs requested (the last run)
  for (let r = 1; r <= RUNS; r++) {
    for (const [preset, config] of Object.entries(presets)) {
      for (const page of ["plain", "snippet"]) {
        const chrome = await chromeLauncher.launch({ chromePath: CHROME, chromeFlags: CHROME_FLAGS });
        let lhr;
        try {
          const res = await lighthouse(`${host}/${page}`, { port: chrome.port, output: "json", logLevel: "error", onlyCategories: ["performance"], throttlingMethod: THROTTLING }, config);
          lhr = res.lhr;
          if (OUT) writeFileSync(path.join(OUT, `${preset}-${page}-${r}.json`), res.report);
        } finally {
          await chrome.kill();
        }
        if (lhr.runtimeError) throw new Error(`${preset} ${page}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
        const items = lhr.audits["network-requests"].details.items;
        const stray = items.filter((i) => !i.url.startsWith(host) && !i.url.startsWith(proxy) && !i.url.startsWith("data:"));
        if (stray.length) throw new Error(`requests off loopback: ${stray.map((i) => i.url).join(" ")}`);
        const ours = items.filter((i) => i.url.startsWith(proxy));
        const m = {
          score: lhr.categories.performance.score * 100,
          fcp: lhr.audits["first-contentful-paint"].numericValue,
          lcp: lhr.audits["largest-contentful-paint"].numericValue,
          tbt: lhr.audits["total-blocking-time"].numericValue,
          cls: lhr.audits["cumulative-layout-shift"].numericValue,
          bytes: lhr.audits["total-byte-weight"].numericValue,
          requests: items.length,
          ourBytes: ours.reduce((s, i) => s + (i.transferSize || 0), 0),
          ourRequests: ours.length,
          benchmarkIndex: lhr.environment.benchmarkIndex,
        };
        (results[`${preset}/${page}`] ||= []).push(m);
        seen[`${preset}/${page}`] = ours.map((i) => `${i.url.slice(proxy.length)} ${i.transferSize} B`);
        console.error(`run ${r} ${preset} ${page}: ${JSON.stringify(m)}`);
      }
    }
  }
  site.close();

  const f0 = (x) => Math.round(x).toLocaleString("en-US");
  const all = Object.values(results).flat();
  console.log(`\nLighthouse ${lhrVersion()}, ${chromeVersion()}, throttling: ${THROTTLING}; medians of ${RUNS} runs, a fresh profile each;`);
  console.log(`Lighthouse's CPU benchmark index on this machine: ${f0(median(all.map((m) => m.benchmarkIndex)))} (median of ${all.length})\n`);
  console.log("| preset | page | score | FCP ms | LCP ms | TBT ms | CLS | bytes | requests | Porthole bytes | Porthole requests |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  const keys = ["score", "fcp", "lcp", "tbt", "cls", "bytes", "requests", "ourBytes", "ourRequests"];
  const row = (preset, page, v) =>
    console.log(`| ${preset} | ${page} | ${f0(v.score)} | ${f0(v.fcp)} | ${f0(v.lcp)} | ${f0(v.tbt)} | ${v.cls.toFixed(3)} | ${f0(v.bytes)} | ${f0(v.requests)} | ${f0(v.ourBytes)} | ${f0(v.ourRequests)} |`);
  for (const preset of Object.keys(presets)) {
    const md = {};
    for (const page of ["plain", "snippet"]) {
      md[page] = Object.fromEntries(keys.map((k) => [k, median(results[`${preset}/${page}`].map((m) => m[k]))]));
      row(preset, page, md[page]);
    }
    row(preset, "snippet − plain", Object.fromEntries(keys.map((k) => [k, md.snippet[k] - md.plain[k]])));
  }
  console.log("\nPorthole requests (the last run; transfer sizes include headers):");
  for (const [key, urls] of Object.entries(seen)) console.log(`  ${key}: ${urls.length ? urls.join(", ") : "none"}`);
  server.kill();
}

function lhrVersion() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return JSON.parse(readFileSync(path.join(here, "node_modules/lighthouse/package.json"))).version;
}

function chromeVersion() {
  return spawnSync(CHROME, ["--version"]).stdout.toString().trim();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
