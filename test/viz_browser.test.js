"use strict";
// The views' HTML in a real browser (headless Chromium, offline): plotly figures draw from the
// inlined plotly.js in a standalone page, under RequireJS (the classic Notebook) and when the
// figure arrives before plotly.js; a PNG bundle shows at its metadata size. Skips, with the
// reason, where Chromium is missing.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const viz = require("../dist/viz");

const CHROMIUM = process.env.CHROMIUM || "chromium";
const REQUIREJS = "/usr/share/javascript/requirejs/require.min.js";

function chromiumMissing() {
  const r = spawnSync(CHROMIUM, ["--version"], { encoding: "utf8" });
  return r.status === 0 ? null : `${CHROMIUM} not runnable (${r.error ? r.error.code : r.stderr.trim()}); install Debian's chromium or set CHROMIUM`;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-viz-browser-"));
process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));

/** Loads `html` and returns the DOM after scripts ran (virtual time, so timers finish quickly). */
function render(name, html) {
  const file = path.join(dir, `${name}.html`);
  fs.writeFileSync(file, html);
  const r = spawnSync(
    CHROMIUM,
    ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", `--user-data-dir=${path.join(dir, "profile-" + name)}`, "--virtual-time-budget=15000", "--dump-dom", `file://${file}`],
    { encoding: "utf8", timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Writes, after a delay, what the page knows into #probe. */
const PROBE = `<div id="probe"></div><script>setTimeout(function () {
  var d = document.querySelectorAll(".batchlab-plot");
  var out = [];
  for (var i = 0; i < d.length; i++) out.push(d[i].querySelector(".main-svg") ? "drawn" : "empty:" + d[i].textContent);
  if (typeof window.requirejs === "function") out.push("amd:" + window.requirejs.defined("plotly"));
  var img = document.querySelector("img");
  if (img) out.push("img:" + img.naturalWidth + "x" + img.naturalHeight);
  document.getElementById("probe").textContent = out.join("|");
}, 3000);</script>`;

function probe(dom) {
  const m = dom.match(/<div id="probe">([^<]*)<\/div>/);
  assert.ok(m, "probe ran");
  return m[1].split("|");
}

const figure = () =>
  viz.plotTransfer([
    { bytes: 1024, pageableGBps: 1, pinnedGBps: 2 },
    { bytes: 1 << 20, pageableGBps: 3, pinnedGBps: 9 },
  ]);

test("browser: standaloneHtml draws the figure offline, and a PNG bundle at its size", (t) => {
  const why = chromiumMissing();
  if (why) return t.skip(why);
  const img = viz.showBatch({ images: new Float32Array(2 * 3 * 8 * 8).fill(0.5), shape: [2, 3, 8, 8], labels: Int32Array.of(0, 1) });
  const md = img.metadata["image/png"];
  const page = viz.standaloneHtml([figure(), img]).replace("</body>", `${PROBE}</body>`);
  assert.deepEqual(probe(render("standalone", page)), ["drawn", `img:${md.width}x${md.height}`]);
});

test("browser: under RequireJS (classic Notebook) the embed sets window.Plotly and registers 'plotly'", (t) => {
  const why = chromiumMissing();
  if (why) return t.skip(why);
  if (!fs.existsSync(REQUIREJS)) return t.skip(`${REQUIREJS} missing (Debian's libjs-requirejs)`);
  const rq = fs.readFileSync(REQUIREJS, "utf8");
  // The second figure finds no global Plotly and draws through require(["plotly"]).
  const page =
    `<!DOCTYPE html><html><head><meta charset="utf-8"><script>${rq}</script></head><body>` +
    viz.plotlyScriptHtml() +
    figure().data["text/html"] +
    "<script>delete window.Plotly;</script>" +
    figure().data["text/html"] +
    PROBE +
    "</body></html>";
  assert.deepEqual(probe(render("requirejs", page)), ["drawn", "drawn", "amd:true"]);
});

test("browser: a figure shown before plotly.js arrives waits for it; without plotly.js it says so", (t) => {
  const why = chromiumMissing();
  if (why) return t.skip(why);
  const head = `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>`;
  const late = head + figure().data["text/html"] + `<script>window.__later = 1;</script>` + viz.plotlyScriptHtml() + PROBE + "</body></html>";
  assert.deepEqual(probe(render("late", late)), ["drawn"]);
  const missing = head + figure().data["text/html"] + PROBE.replace("3000", "12000") + "</body></html>";
  const [state] = probe(render("missing", missing));
  assert.match(state, /^empty:plotly\.js is not loaded on this page/);
});
