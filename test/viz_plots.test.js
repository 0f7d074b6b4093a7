"use strict";
// Plotly views (plotSampler, plotTimings, plotTransfer), their HTML (its script run in a fake page),
// the offline plotly.js embed, and standaloneHtml.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const vm = require("node:vm");
const viz = require("../dist/viz");
const S = require("../dist/sampling");
const { OptionError } = require("../dist/errors");

const PLOTLY = "application/vnd.plotly.v1+json";

/** A valid plotly figure: traces with a type, a layout object, JSON round-trip safe. */
function checkFigure(b) {
  const fig = b.data[PLOTLY];
  assert.ok(fig && Array.isArray(fig.data) && fig.data.length > 0, "figure has traces");
  for (const t of fig.data) assert.equal(typeof t.type, "string", "every trace has a type");
  assert.equal(typeof fig.layout, "object");
  assert.deepEqual(JSON.parse(JSON.stringify(fig)), fig, "figure is plain JSON");
  for (const t of fig.data) {
    if (t.xaxis) assert.ok(fig.layout[t.xaxis.replace("x", "xaxis")], `layout has ${t.xaxis}`);
    if (t.yaxis) assert.ok(fig.layout[t.yaxis.replace("y", "yaxis")], `layout has ${t.yaxis}`);
  }
  assert.equal(typeof b.data["text/html"], "string");
  assert.equal(typeof b.data["text/plain"], "string");
  assert.equal(b[Symbol.for("Jupyter.display")](), b.data);
  return fig;
}

/** A sampler over 0..n-1 in order, every epoch. */
function sequential(n) {
  return { length: n, epoch: 0, indices: () => Int32Array.from({ length: n }, (_, i) => i), setEpoch() {}, [Symbol.iterator]: function* () {} };
}

test("plotSampler: class frequency per epoch, per-batch mix and coverage, with exact counts", () => {
  const labels = Int32Array.of(0, 0, 0, 1, 1, 2, 0, 1, 2, 2);
  const b = viz.plotSampler(sequential(10), labels, { epochs: 2, batchSize: 4, classNames: ["cat", "dog", "fox"] });
  const fig = checkFigure(b);
  const text = b.data["text/plain"];
  assert.match(text, /epoch 0: cat 4, dog 3, fox 3/);
  assert.match(text, /epoch 1: cat 4, dog 3, fox 3/);
  assert.match(text, /10 of 10 indices drawn at least once, 0 never, most drawn 2 times/);
  const freq = fig.data.filter((t) => t.type === "bar" && /^epoch/.test(t.name));
  assert.deepEqual(freq.map((t) => t.y), [[4, 3, 3], [4, 3, 3]]);
  assert.deepEqual(freq[0].x, ["cat", "dog", "fox"]);
  const heat = fig.data.find((t) => t.type === "heatmap");
  assert.deepEqual(heat.z, [[3, 1, 0], [1, 2, 0], [0, 1, 2]], "class x batch counts of batches [0..3], [4..7], [8, 9]");
  const cov = fig.data.find((t) => t.name === "draws");
  assert.deepEqual(cov.y, new Array(10).fill(2));
});

test("plotSampler: takes a BatchSampler or a loader-like object, and a dataset for labels", () => {
  const labels = Int32Array.from({ length: 20 }, (_, i) => i % 4);
  const bs = new S.BatchSampler(new S.RandomSampler(20, { seed: 5 }), 6, true);
  const b = viz.plotSampler(bs, labels, { epochs: 1 });
  checkFigure(b);
  assert.match(b.data["text/plain"], /3 of 3 batches of 6/);
  const ds = { length: 20, classNames: ["a", "b", "c", "d"], get() {}, labels: () => labels };
  const c = viz.plotSampler({ batchSampler: bs, dataset: ds }, undefined, { epochs: 1 });
  assert.match(c.data["text/plain"], /epoch 0: a 5, b 5, c 5, d 5/);
  assert.throws(() => viz.plotSampler(bs, undefined), (e) => e instanceof OptionError && /plotSampler\(labels\)/.test(e.message));
  assert.throws(() => viz.plotSampler(bs, labels, { batchSize: 3 }), /batchSize: expected undefined or 6/);
  assert.throws(() => viz.plotSampler({}, labels), /plotSampler\(sampler\): expected a sampler/);
});

test("plotSampler: an index beyond the labels is an OptionError; large data sets get a coverage histogram", () => {
  assert.throws(() => viz.plotSampler(sequential(10), new Int32Array(5)), /plotSampler: indices\(0\)\[5\]: expected a dataset index in \[0, 4\]/);
  const n = 3000;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const b = viz.plotSampler(new S.RandomSampler(n, { seed: 1, replacement: true }), labels, { epochs: 2 });
  const hist = checkFigure(b).data.find((t) => t.name === "indices");
  assert.equal(hist.y.reduce((s, x) => s + x, 0), n, "every index counted once in the histogram");
  assert.equal(hist.y.reduce((s, x, k) => s + x * k, 0), 2 * n, "draws add up to epochs x length");
  assert.ok(hist.y[0] > 0, "sampling with replacement misses some indices");
});

test("plotSampler: a DistributedSampler shows the split of every rank (rebuilt, given, or by factory)", () => {
  const n = 10;
  const labels = Int32Array.from({ length: n }, (_, i) => (i < 6 ? 0 : 1));
  const mine = new S.DistributedSampler(n, { rank: 1, worldSize: 3, seed: 4 });
  const b = viz.plotSampler(mine, labels, { epochs: 1 });
  const fig = checkFigure(b);
  const ranks = fig.data.filter((t) => /^rank /.test(t.name));
  assert.deepEqual(ranks.map((t) => t.name), ["rank 0", "rank 1 (this)", "rank 2"]);
  const total = ranks.reduce((s, t) => s + t.y.reduce((a, x) => a + x, 0), 0);
  assert.equal(total, 12, "3 ranks x 4 indices (10 padded to 12)");
  const text = b.data["text/plain"];
  assert.match(text, /2 indices on more than one rank \(padding\), 0 on none/);
  assert.equal(text.match(/^ {2}rank \d/gm).length, 3);
  // The rebuilt ranks agree with samplers built by hand.
  const byHand = [0, 1, 2].map((r) => new S.DistributedSampler(n, { rank: r, worldSize: 3, seed: 4 }));
  const given = viz.plotSampler(mine, labels, { epochs: 1, ranks: byHand });
  assert.deepEqual(given.data[PLOTLY].data.filter((t) => /^rank /.test(t.name)).map((t) => t.y), ranks.map((t) => t.y));
  const factory = viz.plotSampler(mine, labels, { epochs: 1, ranks: (r) => byHand[r] });
  assert.match(factory.data["text/plain"], /options\.ranks \(factory\)/);
  assert.throws(() => viz.plotSampler(mine, labels, { ranks: byHand.slice(1) }), /plotSampler\(options\)\.ranks: expected an array of 3 samplers/);
});

function fakeStats(withDevice) {
  const perBatch = [];
  for (let i = 0; i < 6; i++) {
    perBatch.push({ batch: i % 3, epoch: Math.floor(i / 3), start: i * 10, end: i * 10 + 9, size: 32, sample: 1, fetch: 2, transform: 3, collate: 0.5, ...(withDevice ? { copy: 1, kernel: 1.5 } : {}) });
  }
  return {
    backend: withDevice ? "cuda" : "native",
    backendReason: "test",
    seed: 7,
    batches: 6,
    samples: 192,
    wallMs: 59,
    samplesPerSecond: 192000 / 59,
    stages: { sample: 6, fetch: 12, transform: 18, collate: 3, ...(withDevice ? { copy: 6, kernel: 9 } : {}) },
    perBatch,
    skipped: [{ index: 3, path: "x.png", reason: "corrupt" }],
  };
}

test("plotTimings: stages as bars laid end to end from each batch's start, and throughput", () => {
  const b = viz.plotTimings(fakeStats(true));
  const fig = checkFigure(b);
  const bars = fig.data.filter((t) => t.type === "bar");
  assert.deepEqual(bars.map((t) => t.name), ["sample (indices, params)", "fetch / decode", "transform", "collate", "copy to device", "device kernel"]);
  for (const t of bars) assert.equal(t.orientation, "h");
  assert.deepEqual(bars[0].base, [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(bars[1].base, [1, 11, 21, 31, 41, 51], "fetch starts when sample ends");
  assert.deepEqual(bars[2].base, [3, 13, 23, 33, 43, 53]);
  assert.deepEqual(bars[0].y, ["e0 b0", "e0 b1", "e0 b2", "e1 b0", "e1 b1", "e1 b2"]);
  const cum = fig.data.find((t) => t.name === "cumulative");
  assert.equal(cum.y.length, 6);
  assert.ok(Math.abs(cum.y[5] - (192 * 1000) / 59) < 1e-6, "cumulative rate at the end = samples / wall time");
  const text = b.data["text/plain"];
  assert.match(text, /backend cuda/);
  assert.match(text, /6 batches, 192 samples in 59 ms/);
  assert.match(text, /transform 18 \(33\.3%\)/);
  assert.match(text, /skipped samples: 1 \(first: 3 x\.png: corrupt\)/);

  const cpu = viz.plotTimings({ stats: () => fakeStats(false) });
  assert.deepEqual(checkFigure(cpu).data.filter((t) => t.type === "bar").map((t) => t.name).slice(-1), ["collate"], "no device stages without a device");
  const few = viz.plotTimings(fakeStats(false), { maxBatches: 2 });
  assert.deepEqual(few.data[PLOTLY].data[0].y, ["e1 b1", "e1 b2"]);
  assert.throws(() => viz.plotTimings({}), (e) => e instanceof OptionError && /plotTimings\(stats\)/.test(e.message));
});

test("plotTransfer: bandwidth against size on a log axis, pageable vs pinned (and PyTorch)", () => {
  const results = [
    { bytes: 1 << 20, pageableGBps: 4, pinnedGBps: 12, torchGBps: 11.5 },
    { bytes: 1024, pageableGBps: 0.5, pinnedGBps: 1 },
  ];
  const b = viz.plotTransfer(results);
  const fig = checkFigure(b);
  assert.equal(fig.layout.xaxis.type, "log");
  assert.deepEqual(fig.data.map((t) => t.name), ["pageable", "pinned", "PyTorch (pinned)"]);
  assert.deepEqual(fig.data[1].x, [1024, 1 << 20], "sorted by size");
  assert.deepEqual(fig.data[1].y, [1, 12]);
  assert.deepEqual(fig.data[2].x, [1 << 20], "PyTorch only where measured");
  const text = b.data["text/plain"];
  assert.match(text, /1 KiB +0\.50 +1\.00 +2\.00x +-/);
  assert.match(text, /1 MiB +4\.00 +12\.00 +3\.00x +11\.50/);
  assert.equal(viz.plotTransfer([{ bytes: 10, pageableGBps: 1, pinnedGBps: 2 }]).data[PLOTLY].data.length, 2);
  assert.throws(() => viz.plotTransfer([]), /plotTransfer\(results\)/);
  assert.throws(() => viz.plotTransfer([{ bytes: 0, pageableGBps: 1, pinnedGBps: 1 }]), /plotTransfer\(results\)\[0\]\.bytes/);
});

/**
 * Runs the inline <script> elements of `html` in a fake page (node:vm): `document.getElementById`
 * finds the html's divs, `setTimeout` queues on a fake clock that `advance(ms)` runs, and
 * `window` starts with the given globals (a stub Plotly, a stub RequireJS...).
 */
/**
 * A page just big enough for the figure scripts: the figure elements the HTML holds (found by
 * their data-batchlab-fig key, as the script finds them), script tags it appends to <head>,
 * timers on a fake clock, and `page` settings: `{ baseUrl }` as JupyterLab's
 * #jupyter-config-data, `{ dataBaseUrl }` as the classic Notebook's body, `{ file: true }` for a
 * file:// page. Calling run(html) again adds that HTML's elements (a second view of an output).
 */
function fakePage(html, globals = {}, setup = {}) {
  const elements = [];
  const scripts = [];
  const unescape = (v) => v.replace(/&(quot|lt|gt|#39|amp);/g, (_, e) => ({ quot: '"', lt: "<", gt: ">", "#39": "'", amp: "&" })[e]);
  const element = (attrs) => {
    const note = { textContent: "" };
    const stat = { style: {} };
    const el = {
      attrs,
      children: [],
      style: {},
      note,
      static: stat,
      getAttribute: (k) => (k in el.attrs ? el.attrs[k] : null),
      setAttribute: (k, v) => (el.attrs[k] = String(v)),
      appendChild: (c) => el.children.push(c),
      querySelector: (sel) => (sel === ".batchlab-plot-note" ? note : sel === ".batchlab-plot-static" ? stat : null),
    };
    return el;
  };
  const add = (source) => {
    for (const m of source.matchAll(/<div class="batchlab-plot" data-batchlab-fig="([^"]*)"/g)) elements.push(element({ "data-batchlab-fig": unescape(m[1]) }));
  };
  let now = 0;
  const timers = [];
  const config = setup.baseUrl !== undefined ? { textContent: JSON.stringify({ baseUrl: setup.baseUrl }) } : null;
  const document = {
    querySelectorAll: (sel) => {
      assert.equal(sel, "div.batchlab-plot[data-batchlab-fig]");
      return elements;
    },
    querySelector: (sel) => {
      const m = /^div\.batchlab-plot\[data-batchlab-fig="(.*)"\]$/.exec(sel);
      assert.ok(m, sel);
      return elements.find((e) => e.attrs["data-batchlab-fig"] === m[1]) ?? null;
    },
    getElementById: (id) => (id === "jupyter-config-data" ? config : null),
    createElement: (tag) => ({ tag, style: {} }),
    head: { appendChild: (s) => scripts.push(s) },
    body: { getAttribute: (k) => (k === "data-base-url" && setup.dataBaseUrl !== undefined ? setup.dataBaseUrl : null) },
  };
  const window = {
    document,
    location: { protocol: setup.file ? "file:" : "http:" },
    setTimeout: (fn, ms) => timers.push({ at: now + (ms || 0), fn }),
    console,
    ...globals,
  };
  window.window = window;
  const context = vm.createContext(window);
  const page = {
    window,
    elements,
    scripts,
    run(source) {
      add(source);
      for (const m of source.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)) vm.runInContext(m[1], context);
      return page;
    },
    /** Runs the timers due within `ms` of fake time, in order. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        if (!timers.length || timers[0].at > end) break;
        const t = timers.shift();
        now = t.at;
        t.fn();
      }
      now = end;
      return page;
    },
  };
  return page.run(html);
}

/** A value made in the fake page, as plain JSON of this realm (for deepEqual). */
const plain = (v) => JSON.parse(JSON.stringify(v));

/** A stand-in for plotly.js: records the plots it draws. */
function stubPlotly() {
  const calls = [];
  return {
    calls,
    newPlot(el, data, layout, config) {
      calls.push({ fn: "newPlot", el, data, layout, config });
      return Promise.resolve(el);
    },
    addFrames(el, frames) {
      calls.push({ fn: "addFrames", el, frames });
      return Promise.resolve();
    },
  };
}

/** A stand-in for RequireJS with the AMD modules it has, its path config, and the calls it saw. */
function stubRequire(modules = {}) {
  const calls = [];
  const paths = {};
  const rq = (deps, cb, errback) => {
    calls.push(deps);
    if (deps.every((d) => d in modules)) cb(...deps.map((d) => modules[d]));
    else if (errback) errback(new Error("script error"));
  };
  rq.defined = (name) => name in modules;
  rq.specified = (name) => name in modules;
  rq.config = (c) => Object.assign(paths, c.paths);
  const define = (name, deps, factory) => {
    modules[name] = factory();
  };
  define.amd = {};
  return { requirejs: rq, define, modules, calls, paths };
}

const transfer = (options) => viz.plotTransfer([{ bytes: 1024, pageableGBps: 1, pinnedGBps: 2 }], options);

test("figure HTML: a static SVG preview and a note inside the figure's element; no element ids, nothing from the network", () => {
  const b = viz.plotTransfer([{ bytes: 1024, pageableGBps: 1, pinnedGBps: 2 }, { bytes: 1 << 20, pageableGBps: 3, pinnedGBps: 9 }]);
  const html = b.data["text/html"];
  assert.doesNotMatch(html, /\bid=/, "no element ids: a second view of the output would duplicate them");
  const img = html.match(/<img class="batchlab-plot-img" alt="([^"]*)" width="800" height="450" style="[^"]*" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)">/);
  assert.ok(img, "a static preview image");
  assert.match(img[1], /^Host-to-device bandwidth by copy size \(static preview\)$/);
  const svg = Buffer.from(img[2], "base64").toString("utf8");
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="800" height="450"/);
  assert.match(svg, /<polyline [^>]*stroke="#1f77b4"/, "the pinned line");
  assert.match(svg, />copy size</);
  assert.match(html, /<div class="batchlab-plot-note"[^>]*>Static preview of “Host-to-device bandwidth by copy size”\. For the interactive figure, trust the notebook/);
  assert.doesNotMatch(html, /<script[^>]*\bsrc=/i);
  assert.doesNotMatch(html.replace(/xmlns="http:\/\/www.w3.org\/2000\/svg"/g, ""), /https?:\/\//);
});

test("figure HTML: its script draws with window.Plotly into a new div in its element, then hides the preview", async () => {
  const b = transfer();
  const Plotly = stubPlotly();
  const page = fakePage(b.data["text/html"], { Plotly });
  assert.equal(page.elements.length, 1);
  const [el] = page.elements;
  assert.equal(Plotly.calls.length, 1);
  const { fn, el: into, data, layout, config } = Plotly.calls[0];
  assert.equal(fn, "newPlot");
  assert.equal(into, el.children[0]);
  assert.equal(into.className, "batchlab-plot-live");
  assert.deepEqual(JSON.parse(JSON.stringify({ data, layout })), b.data[PLOTLY]);
  assert.equal(config.responsive, true);
  await Promise.resolve();
  assert.equal(el.static.style.display, "none");
  assert.equal(page.scripts.length, 0, "nothing loaded");
});

test("figure HTML: a second view of the same output draws too (found by key, not id); a drawn one is not drawn again", () => {
  const html = transfer().data["text/html"];
  const Plotly = stubPlotly();
  const page = fakePage(html, { Plotly });
  page.run(html); // Lab's "New View for Output": the same HTML again, its script runs again
  assert.equal(page.elements.length, 2);
  assert.deepEqual(Plotly.calls.map((c) => c.el), page.elements.map((e) => e.children[0]));
  assert.equal(page.elements[0].children.length, 1, "the first view is not drawn twice");
  // another figure's script leaves this one's elements alone
  page.run(transfer().data["text/html"]);
  assert.equal(Plotly.calls.length, 3);
});

test("figure HTML: the classic Notebook runs the script before the output is in the page: it looks again", () => {
  const html = transfer().data["text/html"];
  const Plotly = stubPlotly();
  const page = fakePage("", { Plotly });
  page.run(html.replace(/^<div[\s\S]*?<\/div><\/div><\/div>\n/, ""));
  assert.equal(Plotly.calls.length, 0);
  page.run(html.match(/^<div[\s\S]*?<\/div><\/div><\/div>\n/)[0]);
  page.advance(50);
  assert.equal(Plotly.calls.length, 1);
});

test("figure HTML: without window.Plotly it loads the kernelspec's plotly.min.js from the page's Jupyter server, once for all figures", () => {
  const html = transfer().data["text/html"];
  // JupyterLab (and Notebook 7): the base URL from #jupyter-config-data
  const page = fakePage(html, {}, { baseUrl: "/user/ana" });
  page.run(transfer().data["text/html"]);
  assert.deepEqual(page.scripts.map((s) => s.src), ["/user/ana/kernelspecs/batchlab/plotly.min.js"], "one script for two figures");
  const Plotly = stubPlotly();
  page.window.Plotly = Plotly;
  page.scripts[0].onload();
  assert.equal(Plotly.calls.length, 2);
  // a later figure finds window.Plotly at once
  page.run(transfer().data["text/html"]);
  assert.equal(Plotly.calls.length, 3);
  assert.equal(page.scripts.length, 1);
});

test("figure HTML: under RequireJS (the classic Notebook) plotly.min.js is an AMD module from the server; 'plotly' when defined is used", () => {
  const html = transfer().data["text/html"];
  const Plotly = stubPlotly();
  const amd = stubRequire({ "batchlab-plotly-batchlab": Plotly });
  const page = fakePage(html, { requirejs: amd.requirejs, define: amd.define }, { dataBaseUrl: "/" });
  assert.deepEqual(amd.paths, { "batchlab-plotly-batchlab": "/kernelspecs/batchlab/plotly.min" });
  assert.deepEqual(plain(amd.calls), [["batchlab-plotly-batchlab"]]);
  assert.equal(Plotly.calls.length, 1);
  assert.equal(page.window.Plotly, Plotly, "window.Plotly set for later figures");
  // a page where "plotly" is already an AMD module (an old embed, or another extension's)
  const P2 = stubPlotly();
  const amd2 = stubRequire({ plotly: P2 });
  fakePage(html, { requirejs: amd2.requirejs, define: amd2.define }, { dataBaseUrl: "/" });
  assert.deepEqual(plain(amd2.calls), [["plotly"]]);
  assert.equal(P2.calls.length, 1);
});

test("figure HTML: adds the figure's frames once the plot exists", async () => {
  const fig = { data: [{ type: "bar", y: [1, 2] }], layout: {}, frames: [{ name: "f0", data: [{ y: [2, 1] }] }] };
  const Plotly = stubPlotly();
  fakePage(viz.figureHtml(fig), { Plotly });
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(Plotly.calls.map((c) => c.fn), ["newPlot", "addFrames"]);
  assert.deepEqual(plain(Plotly.calls[1].frames), fig.frames);
});

test("figure HTML: where plotly.js cannot be had, the note says why and the static preview stays", () => {
  const html = transfer().data["text/html"];
  // a file (nbconvert's HTML without the batchlab template): waits 2 s for window.Plotly
  const file = fakePage(html, {}, { file: true });
  file.advance(1900);
  assert.equal(file.elements[0].note.textContent, "");
  file.advance(200);
  assert.equal(file.elements[0].note.textContent, "Static preview: the interactive figure needs plotly.js, which is not available here (no Jupyter server on this page to load plotly.js from).");
  assert.equal(file.elements[0].static.style.display, undefined);
  // plotly.js arriving within the wait (a page that embeds it after the figure) is used
  const late = fakePage(html, {}, { file: true });
  late.advance(500);
  const P = stubPlotly();
  late.window.Plotly = P;
  late.advance(100);
  assert.equal(P.calls.length, 1);
  // a kernelspec without plotly.min.js (installed by an older batchlab): the load fails
  const old = fakePage(html, {}, { baseUrl: "/" });
  old.scripts[0].onerror();
  assert.match(old.elements[0].note.textContent, /not available here \(could not load \/kernelspecs\/batchlab\/plotly\.min\.js \(run batchlab install again/);
});

test("figure HTML: the kernelspec name comes from BATCHLAB_KERNELSPEC (set in kernel.json); text that looks like HTML cannot end the script", () => {
  const before = process.env.BATCHLAB_KERNELSPEC;
  process.env.BATCHLAB_KERNELSPEC = "bl-2";
  try {
    const page = fakePage(transfer().data["text/html"], {}, { baseUrl: "/" });
    assert.deepEqual(page.scripts.map((s) => s.src), ["/kernelspecs/bl-2/plotly.min.js"]);
  } finally {
    if (before === undefined) delete process.env.BATCHLAB_KERNELSPEC;
    else process.env.BATCHLAB_KERNELSPEC = before;
  }
  const title = "</script><b>x</b> & <!-- \u2028";
  const html = transfer({ title }).data["text/html"];
  assert.equal(html.match(/<\/script>/g).length, 1);
  const Plotly = stubPlotly();
  fakePage(html, { Plotly });
  const t = Plotly.calls[0].layout.title;
  assert.equal(typeof t === "string" ? t : t.text, title);
  // a key with quotes is escaped in the attribute and still found by the script
  const odd = viz.figureHtml({ data: [{ type: "bar", y: [1] }], layout: {} }, 'a"<b>');
  const P2 = stubPlotly();
  const page = fakePage(odd, { Plotly: P2 });
  assert.equal(P2.calls[0].el, page.elements[0].children[0]);
});

test("plotlyScriptHtml: the whole plotly.js inline, one closing tag, and its version", () => {
  const html = viz.plotlyScriptHtml();
  const src = fs.readFileSync(require.resolve("plotly.js-dist-min"), "utf8");
  assert.ok(html.includes(src.slice(0, 2000)) && html.includes(src.slice(-2000)), "start and end of plotly.min.js are in the tag");
  assert.equal(html.match(/<\/script>/gi).length, 1, "exactly one closing tag");
  assert.doesNotMatch(html, /<script[^>]*\bsrc=/i);
  assert.equal(viz.plotlyVersion(), require("plotly.js-dist-min/package.json").version);
});

/**
 * plotlyScriptHtml() with plotly.js replaced by a stand-in that, like many bundles, prefers
 * CommonJS, then AMD, and only then sets a global; it counts how often it was evaluated.
 */
function embedWithStub() {
  const src = fs.readFileSync(require.resolve("plotly.js-dist-min"), "utf8").replace(/<\/script/gi, "<\\/script");
  const html = viz.plotlyScriptHtml();
  assert.ok(html.includes(src));
  const stub =
    `(function (root, factory) {\n` +
    `  if (typeof module === "object" && module && module.exports) module.exports = factory();\n` +
    `  else if (typeof define === "function" && define.amd) define([], factory);\n` +
    `  else root.Plotly = factory();\n` +
    `})(typeof self !== "undefined" ? self : this, function () { window.evaluated = (window.evaluated || 0) + 1; return { stub: true }; });`;
  return html.replace(src, () => stub);
}

test("plotlyScriptHtml: sets window.Plotly under CommonJS- and AMD-looking pages, registers the AMD module 'plotly', runs once", () => {
  const html = embedWithStub();
  // a plain page
  const bare = fakePage(html);
  assert.deepEqual(plain(bare.window.Plotly), { stub: true });
  // RequireJS (the classic Notebook), and a stray CommonJS `module` global
  const amd = stubRequire();
  const page = fakePage(html, { requirejs: amd.requirejs, define: amd.define, module: { exports: {} } });
  assert.deepEqual(plain(page.window.Plotly), { stub: true });
  assert.deepEqual(plain(page.window.module.exports), {}, "not exported through CommonJS");
  assert.equal(amd.modules.plotly, page.window.Plotly, "the AMD module 'plotly' is window.Plotly");
  assert.deepEqual(plain(amd.calls), [["plotly"]], "required once so that RequireJS registers the named module");
  // the embed sent again (or a second page's copy): plotly.js is not evaluated again
  page.run(html);
  assert.equal(page.window.evaluated, 1);
  assert.deepEqual(plain(amd.calls), [["plotly"]]);
});

test("standaloneHtml: a full page with plotly.js inline and no http(s) script src", () => {
  const fig = viz.plotTransfer([{ bytes: 1024, pageableGBps: 1, pinnedGBps: 2 }]);
  const page = viz.standaloneHtml(fig);
  assert.match(page, /^<!DOCTYPE html>/);
  assert.match(page, /<\/html>\n$/);
  assert.ok(page.includes(viz.plotlyScriptHtml()), "plotly.js inlined");
  assert.ok(page.indexOf("data-batchlab-plotly") < page.indexOf(fig.data["text/html"]), "plotly.js comes before the figure");
  assert.doesNotMatch(page, /<script[^>]*\bsrc\s*=/i);
  assert.doesNotMatch(page, /<link[^>]*https?:/i);
  // Images and text need no plotly.
  const img = viz.showBatch({ images: new Float32Array(12), shape: [1, 3, 2, 2] });
  const page2 = viz.standaloneHtml([img, viz.progressBundle({ n: 1, total: 1, fraction: 1, elapsedSeconds: 1, rate: 1, remainingSeconds: 0, status: "done", label: "x" })]);
  assert.ok(page2.includes(`src="data:image/png;base64,${img.data["image/png"]}"`));
  assert.ok(!page2.includes("data-batchlab-plotly"));
  assert.match(page2, /role="progressbar"/);
  assert.throws(() => viz.standaloneHtml({}), /standaloneHtml: item 0/);
});
