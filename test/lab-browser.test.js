"use strict";
// JupyterLab 4 as a front end under test: test/lab/ bundles a page from Lab's own npm packages
// (services, rendermime with Lab's standard renderers, OutputArea; a second build adds the
// jupyterlab-plotly renderer), served by Debian's jupyter-server on 127.0.0.1 and driven in
// headless Chromium. Every tutorial notebook runs live (trusted) in a batchlab kernel and is then
// reopened from its saved file untrusted, in both builds. The DOM is checked: PNGs decoded at the
// size their metadata states, every figure drawn (svg.main-svg) where it can be, its static
// preview and note shown where it cannot, a second view of a figure drawing too, progress bars
// one output at 100%, no error output and no console errors. Then a figure cell is re-run, the
// notebook saved and reopened trusted (every figure draws), and a second page (its own window)
// attached to the same kernel runs the figure cell and draws it. Screenshots: test/artifacts/lab-*.png.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { makeSandbox, startServer, ROOT } = require("./helpers/jupyter");
const { chromiumMissing, launch, waitFor, screenshot } = require("./helpers/chromium");

const ARTIFACTS = path.join(ROOT, "test", "artifacts");
const NOTEBOOKS = fs.readdirSync(path.join(ROOT, "notebooks")).filter((f) => f.endsWith(".ipynb")).sort();
const PLOTLY = "application/vnd.plotly.v1+json";
const skip = chromiumMissing();

let sandbox;
let server;
let browser;
let page;
let seen = 0; // events already looked at

test.before(async () => {
  if (skip) return;
  const { ensureLabFrontend } = require("./lab/setup");
  const dist = await ensureLabFrontend({ quiet: true });
  sandbox = makeSandbox();
  for (const f of NOTEBOOKS) fs.copyFileSync(path.join(ROOT, "notebooks", f), path.join(sandbox.notebookDir, f));
  const staticDir = path.join(sandbox.dir, "static");
  fs.mkdirSync(path.join(staticDir, "bl"), { recursive: true });
  for (const f of fs.readdirSync(dist)) fs.copyFileSync(path.join(dist, f), path.join(staticDir, "bl", f));
  server = await startServer(sandbox, { extraArgs: [`--ServerApp.extra_static_paths=${JSON.stringify([staticDir])}`] });
  const config = JSON.stringify({ baseUrl: "/", token: server.token, appName: "batchlab-lab-test" });
  for (const name of ["lab", "lab-plotly"]) {
    fs.writeFileSync(
      path.join(staticDir, "bl", `${name}.html`),
      `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${name}</title>` +
        `<script id="jupyter-config-data" type="application/json">${config}</script>` +
        `<link rel="stylesheet" href="${name}.css"><style>body { margin: 8px; font-family: sans-serif; } #notebook { width: 900px; } .bl-source { background: #f5f5f5; padding: 4px; margin: 12px 0 2px; font-size: 11px; white-space: pre-wrap; }</style>` +
        `</head><body class="jp-ThemedContainer"><div id="notebook"></div><script src="${name}.js"></script></body></html>`,
    );
  }
  browser = await launch(path.join(sandbox.dir, "chromium"), { width: 1000, height: 1400 });
  page = browser.page;
  await page.send("Runtime.enable");
  await page.send("Log.enable");
  await page.send("Page.enable");
  // a token in the URL gives the page the server's login cookie: the figures' <script src> to the
  // kernelspec's plotly.min.js needs it, as in a real Lab session
  await page.send("Page.navigate", { url: `${server.baseUrl}api/status?token=${server.token}` });
  await waitFor(page, `document.readyState === "complete" && /started/.test(document.body.textContent)`, "the login", 30000);
});

test.after(async () => {
  if (page) await page.eval("window.batchlabLab && batchlabLab.shutdown()").catch(() => {});
  if (browser) await browser.stop();
  if (server) await server.stop();
  if (sandbox) sandbox.cleanup();
});

/** Console errors and failed loads since the last call. */
function consoleErrors() {
  const evs = page.events.slice(seen);
  seen = page.events.length;
  return evs
    .filter((e) => e.method === "Runtime.exceptionThrown" || (e.method === "Runtime.consoleAPICalled" && e.params.type === "error") || (e.method === "Log.entryAdded" && e.params.entry.level === "error"))
    .map((e) => JSON.stringify(e.params).slice(0, 500));
}

const DOM = `(() => {
  const visible = (el) => !!el && el.offsetParent !== null && el.getBoundingClientRect().height > 0;
  const outputs = [...document.querySelectorAll(".jp-OutputArea-child")];
  const imgs = [...document.querySelectorAll(".jp-RenderedImage img")].map((i) => ({ complete: i.complete, w: i.naturalWidth, h: i.naturalHeight, attrW: Number(i.getAttribute("width")) || null, attrH: Number(i.getAttribute("height")) || null, shownW: Math.round(i.getBoundingClientRect().width) }));
  const figs = outputs.filter((o) => o.querySelector(".batchlab-plot, .jp-RenderedPlotly")).map((o) => {
    const pre = o.querySelector(".batchlab-plot-img");
    const note = o.querySelector(".batchlab-plot-note");
    return {
      renderer: o.querySelector(".jp-RenderedPlotly") ? "plotly" : "html",
      drawn: !!o.querySelector("svg.main-svg"),
      preview: visible(pre) && pre.complete && pre.naturalWidth > 0,
      note: visible(note) ? note.textContent : null,
      height: Math.round(o.getBoundingClientRect().height),
    };
  });
  const errors = [...document.querySelectorAll(".jp-OutputArea-child [data-mime-type='application/vnd.jupyter.stderr'], .jp-OutputArea-child [data-mime-type='application/vnd.jupyter.error']")].map((e) => e.textContent.slice(0, 300));
  const progress = [...document.querySelectorAll(".batchlab-progress")].map((p) => p.textContent.replace(/\\s+/g, " ").slice(0, 120));
  return { imgs, figs, errors, progress, outputs: outputs.length };
})()`;

/** What the saved notebook says the page should show: PNG sizes, figure count, progress bars. */
function expected(file) {
  const nb = JSON.parse(fs.readFileSync(path.join(sandbox.notebookDir, file), "utf8"));
  const outs = nb.cells.filter((c) => c.cell_type === "code").flatMap((c) => c.outputs);
  return {
    pngs: outs.filter((o) => o.data && o.data["image/png"]).map((o) => o.metadata["image/png"]),
    figures: outs.filter((o) => o.data && o.data[PLOTLY]).length,
    progress: outs.filter((o) => o.metadata && o.metadata["batchlab/progress"]).length,
  };
}

function checkImages(dom, want, where) {
  assert.equal(dom.imgs.length, want.pngs.length, `${where}: one <img> per PNG output`);
  dom.imgs.forEach((img, i) => {
    const md = want.pngs[i];
    assert.ok(img.complete, `${where}: image ${i} loaded`);
    assert.deepEqual([img.w, img.h], [md.width, md.height], `${where}: image ${i} decoded at its metadata size`);
    assert.deepEqual([img.attrW, img.attrH], [md.width, md.height], `${where}: image ${i} sized by its metadata`);
    assert.ok(img.shownW === md.width || img.shownW <= 900, `${where}: image ${i} shown at ${img.shownW} px`);
  });
}

for (const [build, plotlyRenderer] of [["lab", false], ["lab-plotly", true]]) {
  test(`JupyterLab 4 (${plotlyRenderer ? "with" : "without"} the jupyterlab-plotly renderer): every tutorial, live and reopened untrusted`, { skip: skip || false, timeout: 600000 }, async (t) => {
    await page.send("Page.navigate", { url: `${server.baseUrl}static/bl/${build}.html` });
    await waitFor(page, `document.body && document.body.dataset.ready === "1"`, `the ${build} page`, 60000, async () => consoleErrors().join("\n"));
    assert.equal(await page.eval("batchlabLab.plotlyRenderer"), plotlyRenderer);
    consoleErrors();
    for (const file of NOTEBOOKS) {
      const stem = path.basename(file, ".ipynb");
      const saved = `${stem}.${build}.ipynb`;
      // live
      const results = await page.eval(`batchlabLab.run(${JSON.stringify(file)}, ${JSON.stringify(saved)})`);
      assert.ok(results.length > 0 && results.every((r) => r.status === "ok"), `${file}: ${JSON.stringify(results.filter((r) => r.status !== "ok"))}`);
      const want = expected(saved);
      const diagnose = async () => JSON.stringify(await page.eval(DOM)).slice(0, 3000) + "\n" + (await page.eval(`document.getElementById("notebook").innerHTML.slice(0, 3000)`)) + "\n" + consoleErrors().join("\n");
      await waitFor(page, `(${DOM}).figs.filter((f) => f.drawn).length === ${want.figures}`, `${file} live: ${want.figures} figures drawn`, 30000, diagnose);
      let dom = await page.eval(DOM);
      await screenshot(page, path.join(ARTIFACTS, `lab-${stem}-${build}-live.png`));
      assert.deepEqual(dom.errors, [], `${file} live: no error or stderr output`);
      checkImages(dom, want, `${file} live`);
      assert.equal(dom.figs.length, want.figures);
      for (const f of dom.figs) {
        assert.equal(f.renderer, plotlyRenderer ? "plotly" : "html", `${file} live: the figure's renderer`);
        assert.equal(f.preview, false, `${file} live: the static preview is hidden once drawn`);
        assert.ok(f.height > 200, `${file} live: a figure of real height (${f.height} px)`);
      }
      assert.equal(dom.progress.length, plotlyRenderer ? want.progress : want.progress, `${file} live: each progress bar is one output`);
      for (const p of dom.progress) assert.match(p, /100%/, `${file} live: progress ends at 100%`);
      if (want.figures > 0 && !plotlyRenderer) {
        // a second view of the first figure's output draws too (no duplicated element ids)
        const cell = await page.eval(`[...document.querySelectorAll(".bl-cell")].findIndex((c) => c.querySelector(".batchlab-plot"))`);
        await page.eval(`batchlabLab.secondView(${cell}), true`);
        await waitFor(page, `(${DOM}).figs.filter((f) => f.drawn).length === ${want.figures + 1}`, `${file}: the second view drawn`, 30000, diagnose);
      }
      assert.deepEqual(consoleErrors(), [], `${file} live: no console errors`);
      // reopened untrusted
      await page.eval(`batchlabLab.reopen(${JSON.stringify(saved)}, false)`);
      if (plotlyRenderer) await waitFor(page, `(${DOM}).figs.filter((f) => f.drawn).length === ${want.figures}`, `${file} untrusted: figures drawn by the plotly renderer`, 30000, diagnose);
      else await waitFor(page, `(${DOM}).figs.filter((f) => f.preview).length === ${want.figures}`, `${file} untrusted: the static previews shown`, 30000, diagnose);
      dom = await page.eval(DOM);
      await screenshot(page, path.join(ARTIFACTS, `lab-${stem}-${build}-untrusted.png`));
      checkImages(dom, want, `${file} untrusted`);
      assert.deepEqual(dom.errors, []);
      for (const f of dom.figs) {
        if (plotlyRenderer) assert.deepEqual([f.renderer, f.drawn], ["plotly", true], `${file} untrusted: the plotly renderer draws the JSON`);
        else {
          assert.deepEqual([f.renderer, f.drawn, f.preview], ["html", false, true], `${file} untrusted: no script ran; the preview shows`);
          assert.match(f.note, /^Static preview of “.+”\. For the interactive figure, trust the notebook/, `${file} untrusted: the note says how to see it`);
        }
      }
      assert.deepEqual(consoleErrors(), [], `${file} untrusted: no console errors`);
      t.diagnostic(`${file}: ${want.pngs.length} images, ${want.figures} figures, ${want.progress} progress bars; screenshots test/artifacts/lab-${stem}-${build}-{live,untrusted}.png`);
    }
  });
}

test("JupyterLab 4: a figure cell re-run draws, its notebook reopened trusted draws every figure, and a second page on the same kernel draws the figure", { skip: skip || false, timeout: 300000 }, async () => {
  // The issue this guards: figures that loaded plotly.js once per session lost it when a figure
  // cell was re-run (the saved notebook then said "plotly.js is not loaded"), and a second page
  // on the same kernel never got it. Each figure now loads plotly.js itself, from the kernelspec.
  const file = NOTEBOOKS.find((f) => {
    const nb = JSON.parse(fs.readFileSync(path.join(ROOT, "notebooks", f), "utf8"));
    // the notebooks are stored without outputs: a cell that draws a plotly figure by name
    return nb.cells.some((c) => c.cell_type === "code" && /\bviz\.plot[A-Z]|\bplot(Sampler|Timings|Transfer)\(/.test([].concat(c.source).join("")));
  });
  assert.ok(file, "a tutorial notebook with a figure");
  const stem = path.basename(file, ".ipynb");
  const saved = `${stem}.rerun.ipynb`;
  await page.send("Page.navigate", { url: `${server.baseUrl}static/bl/lab.html` });
  await waitFor(page, `document.body && document.body.dataset.ready === "1"`, "the lab page", 60000, async () => consoleErrors().join("\n"));
  consoleErrors();
  const results = await page.eval(`batchlabLab.run(${JSON.stringify(file)}, ${JSON.stringify(saved)})`);
  assert.ok(results.every((r) => r.status === "ok"), JSON.stringify(results));
  const want = expected(saved);
  const diagnose = async () => JSON.stringify(await page.eval(DOM)).slice(0, 2000) + "\n" + consoleErrors().join("\n");
  await waitFor(page, `(${DOM}).figs.filter((f) => f.drawn).length === ${want.figures}`, `${file}: figures drawn`, 30000, diagnose);
  // the first figure cell, by its place among the code cells
  const nb = JSON.parse(fs.readFileSync(path.join(sandbox.notebookDir, saved), "utf8"));
  const code = nb.cells.filter((c) => c.cell_type === "code");
  const k = code.findIndex((c) => c.outputs.some((o) => o.data && o.data[PLOTLY]));
  assert.equal(await page.eval(`batchlabLab.rerun(${k})`), "ok");
  await waitFor(page, `(${DOM}).figs.filter((f) => f.drawn).length === ${want.figures}`, `${file}: figures drawn after re-running cell ${k}`, 30000, diagnose);
  await page.eval(`batchlabLab.save(${JSON.stringify(saved)})`);
  assert.equal(expected(saved).figures, want.figures, "the saved notebook keeps every figure");
  // reopened trusted (as after Lab's "Trust Notebook"): every figure's own script loads plotly.js
  await page.eval(`batchlabLab.reopen(${JSON.stringify(saved)}, true)`);
  await waitFor(page, `(${DOM}).figs.filter((f) => f.drawn).length === ${want.figures}`, `${file} reopened trusted: ${want.figures} figures drawn`, 30000, diagnose);
  const dom = await page.eval(DOM);
  assert.deepEqual(dom.figs.map((f) => f.note), dom.figs.map(() => null), "no figure shows a note");
  assert.doesNotMatch(await page.eval(`document.body.textContent`), /plotly\.js is not loaded/);
  await screenshot(page, path.join(ARTIFACTS, `lab-${stem}-rerun-trusted.png`));
  // a second page (its own document and window, so its own window.Plotly) on the same kernel
  const id = await page.eval(`batchlabLab.kernelId()`);
  await page.eval(`(() => { const f = document.createElement("iframe"); f.id = "second"; f.src = "lab.html"; f.style.cssText = "width: 1000px; height: 1200px"; document.body.appendChild(f); return true; })()`);
  const second = `document.getElementById("second").contentWindow`;
  await waitFor(page, `!!${second}.document.body && ${second}.document.body.dataset.ready === "1"`, "the second page", 60000, diagnose);
  assert.equal(await page.eval(`${second}.Plotly === undefined`), true, "the second page starts without plotly.js");
  const source = Array.isArray(code[k].source) ? code[k].source.join("") : code[k].source;
  assert.equal(await page.eval(`${second}.batchlabLab.attachAndRun(${JSON.stringify(id)}, ${JSON.stringify(source)})`), "ok");
  await waitFor(page, `${second}.document.querySelectorAll("svg.main-svg").length > 0`, "the figure drawn on the second page", 30000, diagnose);
  assert.equal(await page.eval(`${second}.document.querySelectorAll(".batchlab-plot-note").length === 0 || [...${second}.document.querySelectorAll(".batchlab-plot-note")].every((n) => n.offsetParent === null)`), true, "no visible note on the second page");
  await screenshot(page, path.join(ARTIFACTS, `lab-${stem}-second-page.png`));
  assert.deepEqual(consoleErrors(), [], "no console errors");
  await page.eval(`batchlabLab.shutdown()`);
});
