"use strict";
/**
 * Headless Chromium driven over the DevTools protocol, for the browser tests: launch with a
 * private profile and no network beyond 127.0.0.1, a minimal protocol client, and polling.
 */
const fs = require("node:fs");
const path = require("node:path");
const assert = require("node:assert/strict");
const { spawn, spawnSync } = require("node:child_process");
const WebSocket = require("ws");
const { within } = require("./jupyter");

const CHROMIUM = process.env.CHROMIUM || "chromium";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Why Chromium cannot run here, or null. */
function chromiumMissing() {
  const r = spawnSync(CHROMIUM, ["--version"], { encoding: "utf8" });
  return r.error || r.status !== 0 ? `${CHROMIUM} is not installed (apt-get install chromium, or set CHROMIUM)` : null;
}

/** A minimal DevTools-protocol client over one page's WebSocket; `events` keeps every event. */
function cdp(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
  let id = 0;
  const pending = new Map();
  const events = [];
  ws.on("message", (raw) => {
    const m = JSON.parse(raw.toString());
    if (m.id && pending.has(m.id)) {
      const { resolve, reject } = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) reject(new Error(`${m.error.message} (${m.error.code})`));
      else resolve(m.result);
    } else if (m.method) events.push(m);
  });
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return {
    events,
    async send(method, params = {}) {
      await opened;
      const n = ++id;
      ws.send(JSON.stringify({ id: n, method, params }));
      return new Promise((resolve, reject) => pending.set(n, { resolve, reject }));
    },
    /** Evaluates an expression in the page (awaiting promises); returns its JSON value, rethrowing page errors. */
    async eval(expression) {
      const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
      return r.result.value;
    },
    close() {
      ws.close();
    },
  };
}

/** Polls `expression` in the page until it is truthy; fails with `what` and a diagnosis. */
async function waitFor(page, expression, what, timeoutMs, diagnose = async () => "") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let v;
    try {
      v = await page.eval(expression);
    } catch {
      v = undefined; // the page may be reloading
    }
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${timeoutMs} ms\n${await diagnose()}`);
    await sleep(250);
  }
}

/**
 * Starts headless Chromium (profile in `profileDir`, window `width` x `height`) on about:blank and
 * connects to its page. Returns { page, log(), stop() }.
 */
async function launch(profileDir, { width = 1280, height = 2000, timeoutMs = 60000 } = {}) {
  let log = "";
  const proc = spawn(
    CHROMIUM,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--user-data-dir=${profileDir}`,
      `--window-size=${width},${height}`,
      // no network beyond 127.0.0.1, even on a machine that has one
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
      "--proxy-server=http://127.0.0.1:9",
      "--proxy-bypass-list=127.0.0.1",
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  proc.stderr.on("data", (d) => (log += d));
  const deadline = Date.now() + timeoutMs;
  let ws;
  while (!(ws = /DevTools listening on (ws:\/\/\S+)/.exec(log))) {
    if (proc.exitCode !== null || Date.now() > deadline) assert.fail(`Chromium did not start:\n${log}`);
    await sleep(100);
  }
  const devtools = new URL(ws[1]);
  const targets = await (await fetch(`http://${devtools.host}/json/list`)).json();
  const page = cdp(targets.find((t) => t.type === "page").webSocketDebuggerUrl);
  return {
    page,
    log: () => log,
    async stop() {
      page.close();
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await within(gone, 5000);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      }
    },
  };
}

/** Saves a full-page screenshot to `file`. */
async function screenshot(page, file) {
  const size = await page.eval(`[document.documentElement.scrollWidth, document.documentElement.scrollHeight]`);
  await page.send("Emulation.setDeviceMetricsOverride", { width: Math.max(800, size[0]), height: Math.min(size[1], 16000), deviceScaleFactor: 1, mobile: false });
  await sleep(300);
  const shot = await page.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.from(shot.data, "base64"));
  await page.send("Emulation.clearDeviceMetricsOverride");
}

module.exports = { CHROMIUM, chromiumMissing, cdp, waitFor, launch, screenshot, sleep };
