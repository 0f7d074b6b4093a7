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
  for (var i = 0; i < d.length; i++) {
    var pre = d[i].querySelector(".batchlab-plot-img");
    var shown = pre && pre.offsetParent !== null && pre.naturalWidth > 0 ? "preview:" + pre.naturalWidth + "x" + pre.naturalHeight + ":" : "";
    out.push(d[i].querySelector(".main-svg") ? "drawn" + (shown ? "+preview" : "") : "empty:" + shown + d[i].textContent);
  }
  if (typeof window.requirejs === "function") out.push("amd:" + window.requirejs.defined("plotly"));
  var img = document.querySelector("img:not(.batchlab-plot-img)");
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

test("browser: a figure shown before plotly.js arrives waits for it; without plotly.js its static preview shows, and a note says why", (t) => {
  const why = chromiumMissing();
  if (why) return t.skip(why);
  const head = `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>`;
  const late = head + figure().data["text/html"] + `<script>window.__later = 1;</script>` + viz.plotlyScriptHtml() + PROBE + "</body></html>";
  assert.deepEqual(probe(render("late", late)), ["drawn"]);
  const missing = head + figure().data["text/html"] + PROBE.replace("3000", "12000") + "</body></html>";
  const [state] = probe(render("missing", missing));
  assert.equal(state, "empty:preview:800x450:Static preview: the interactive figure needs plotly.js, which is not available here (no Jupyter server on this page to load plotly.js from).");
});

/**
 * Plotly's laid-out boxes in the page, for each figure: titles (the figure's and the axes'),
 * panel titles (annotations), the legend, colour bars, tick labels (with their subplot) and the
 * plot areas. Returns the pairs that overlap by more than a pixel.
 */
const OVERLAPS = `<div id="probe"></div><script>setTimeout(function () {
  function box(el) { var r = el.getBoundingClientRect(); return { x0: r.left, y0: r.top, x1: r.right, y1: r.bottom }; }
  function meets(a, b) { return Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) > 1 && Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) > 1; }
  var report = [];
  document.querySelectorAll(".batchlab-plot").forEach(function (fig, f) {
    var svgs = fig.querySelectorAll("svg.main-svg");
    if (!svgs.length) { report.push("figure " + f + " not drawn"); return; }
    var labels = [];
    fig.querySelectorAll(".infolayer .gtitle, .infolayer text[class$='title']").forEach(function (e) { if (!e.closest(".legend") && !e.closest(".colorbar") && e.textContent) labels.push({ what: "title '" + e.textContent + "'", b: box(e) }); });
    fig.querySelectorAll(".infolayer .annotation").forEach(function (e) { labels.push({ what: "annotation '" + e.textContent + "'", b: box(e) }); });
    fig.querySelectorAll(".infolayer .legend .bg").forEach(function (e) { labels.push({ what: "legend", b: box(e) }); });
    fig.querySelectorAll(".infolayer .colorbar").forEach(function (e) { labels.push({ what: "colorbar", b: box(e) }); });
    var ticks = [];
    fig.querySelectorAll(".cartesianlayer .subplot").forEach(function (sp) {
      var id = (sp.getAttribute("class").match(/subplot (\\S+)/) || [])[1];
      sp.querySelectorAll(".xtick text, .ytick text").forEach(function (t) { if (t.textContent) ticks.push({ what: "tick '" + t.textContent + "' of " + id, sp: id, b: box(t) }); });
    });
    var areas = [];
    fig.querySelectorAll(".draglayer .nsewdrag").forEach(function (d) { areas.push({ what: "plot area " + d.getAttribute("data-subplot"), sp: d.getAttribute("data-subplot"), b: box(d) }); });
    for (var i = 0; i < labels.length; i++) for (var j = i + 1; j < labels.length; j++) if (meets(labels[i].b, labels[j].b)) report.push(f + ": " + labels[i].what + " / " + labels[j].what);
    ticks.forEach(function (t) {
      labels.forEach(function (l) { if (meets(t.b, l.b)) report.push(f + ": " + t.what + " / " + l.what); });
      areas.forEach(function (a) { if (a.sp !== t.sp && meets(t.b, a.b)) report.push(f + ": " + t.what + " / " + a.what); });
    });
    labels.forEach(function (l) { areas.forEach(function (a) { if (meets(l.b, a.b) && !/^annotation|^colorbar/.test(l.what)) report.push(f + ": " + l.what + " / " + a.what); }); });
    var w = box(svgs[0]);
    if (w.x1 - w.x0 > fig.parentNode.getBoundingClientRect().width + 1) report.push(f + ": wider than its container");
  });
  document.getElementById("probe").textContent = JSON.stringify(report);
}, 4000);</script>`;

function layoutFigures() {
  const S = require("../dist/sampling");
  const names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
  const labels = Int32Array.from({ length: 3000 }, (_, i) => (i * 7) % 10);
  const perBatch = [];
  for (let i = 0; i < 60; i++) perBatch.push({ batch: i % 30, epoch: Math.floor(i / 30), start: i * 10, end: i * 10 + 9, size: 64, sample: 1, fetch: 2, transform: 3, collate: 0.5, copy: 1, kernel: 1.5 });
  const stats = { backend: "cuda", backendReason: "", seed: 1, batches: 60, samples: 3840, wallMs: 600, samplesPerSecond: 6400, stages: { sample: 60, fetch: 120, transform: 180, collate: 30, copy: 60, kernel: 90 }, perBatch, skipped: [] };
  return [
    viz.plotSampler(new S.RandomSampler(3000, { seed: 3 }), labels, { epochs: 3, batchSize: 64, classNames: names }),
    viz.plotSampler(new S.DistributedSampler(3000, { rank: 1, worldSize: 4, shuffle: true, seed: 2 }), labels, { epochs: 2, classNames: names }),
    viz.plotSampler(new S.RandomSampler(500, { seed: 3 }), Int32Array.from({ length: 500 }, (_, i) => i % 4), { epochs: 2 }),
    viz.plotTimings(stats),
    viz.plotTransfer([1 << 10, 1 << 16, 1 << 20, 1 << 24, 1 << 28].map((bytes, i) => ({ bytes, pageableGBps: 1 + i, pinnedGBps: 2 + 2 * i, torchGBps: 2 + 1.8 * i }))),
  ];
}

for (const width of [820, 700, 1100]) {
  test(`browser: at ${width} px (JupyterLab's output area is about 820), no title, panel title, legend or tick label of a figure overlaps another`, (t) => {
    const why = chromiumMissing();
    if (why) return t.skip(why);
    const figs = layoutFigures();
    const page = viz
      .standaloneHtml(figs)
      .replace("<body>", `<body style="margin:0"><div style="width:${width}px">`)
      .replace("</body>", `</div>${OVERLAPS}</body>`);
    const m = render(`layout-${width}`, page).match(/<div id="probe">([^<]*)<\/div>/);
    assert.ok(m, "probe ran");
    assert.deepEqual(JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&amp;/g, "&").replace(/&gt;/g, ">").replace(/&lt;/g, "<")), []);
  });
}
