"use strict";
// The classic Notebook in a real browser. The test serves a copy of notebooks/02 with the
// `batchlab notebook` command (Debian's jupyter-notebook 6, the classic UI, on 127.0.0.1), opens
// it in headless Chromium driven over the DevTools protocol, runs every cell through the
// Notebook's own JavaScript API, and checks the page: the augmentation strip and the batch grid
// are decoded <img> elements, a plotly chart is drawn (an extra cell adds plotSampler), no error
// output. A screenshot of the page is kept in test/artifacts/notebook-02.png.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { spawn, spawnSync } = require("node:child_process");
const { makeSandbox, freePort, within, ROOT } = require("./helpers/jupyter");
const chromium = require("./helpers/chromium");
const { waitFor, launch, sleep } = chromium;

const ARTIFACTS = path.join(ROOT, "test", "artifacts");

function chromiumMissing() {
  const missing = chromium.chromiumMissing();
  if (missing) return missing;
  const py = fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const nb = spawnSync(py, ["-c", "import notebook"], { encoding: "utf8" });
  return nb.error || nb.status !== 0 ? `${py} has no Jupyter Notebook (apt-get install jupyter-notebook)` : null;
}

let sandbox;
let server;
let serverLog = "";
let browser;
let page;

test.after(async () => {
  if (browser) await browser.stop();
  for (const p of [server]) {
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await within(gone, 5000);
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
  }
  if (sandbox) sandbox.cleanup();
});

test("classic Notebook in headless Chromium: notebook 02 runs, the grids and a plotly chart render", { skip: chromiumMissing() || false, timeout: 240000 }, async (t) => {
  sandbox = makeSandbox();
  const nb = JSON.parse(fs.readFileSync(path.join(ROOT, "notebooks", "02-augmentation-preview.ipynb"), "utf8"));
  nb.cells.push({ cell_type: "code", execution_count: null, metadata: {}, outputs: [], source: ["plotSampler(loader, undefined, { epochs: 2 })"] });
  fs.writeFileSync(path.join(sandbox.notebookDir, "02.ipynb"), JSON.stringify(nb));

  // The server, as `npm start` runs it.
  const port = await freePort();
  server = spawn(process.execPath, [path.join(ROOT, "bin", "batchlab.js"), "notebook", "--port", String(port), "--dir", sandbox.notebookDir], {
    env: sandbox.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.on("data", (d) => (serverLog += d));
  server.stderr.on("data", (d) => (serverLog += d));
  const deadline = Date.now() + 60000;
  let m;
  while (!(m = /http:\/\/127\.0\.0\.1:(\d+)\/tree\?token=([\w-]+)/.exec(serverLog))) {
    if (server.exitCode !== null || Date.now() > deadline) assert.fail(`the notebook server did not start:\n${serverLog}`);
    await sleep(100);
  }
  const notebookUrl = `http://127.0.0.1:${m[1]}/notebooks/02.ipynb?token=${m[2]}`;

  // Headless Chromium with its own profile and no network beyond 127.0.0.1 (helpers/chromium.js):
  // plotly.js must come from the notebook server, never a CDN.
  browser = await launch(path.join(sandbox.dir, "chromium"), { width: 1280, height: 2400 });
  page = browser.page;
  await page.send("Runtime.enable");
  await page.send("Page.enable");
  await page.send("Network.enable");
  await page.send("Page.navigate", { url: notebookUrl });

  const consoleErrors = () =>
    page.events
      .filter((e) => e.method === "Runtime.exceptionThrown" || (e.method === "Runtime.consoleAPICalled" && e.params.type === "error"))
      .map((e) => JSON.stringify(e.params).slice(0, 400))
      .join("\n");
  const diagnose = async () => {
    const notes = await page.eval(`[...document.querySelectorAll(".batchlab-plot-note")].map((n) => n.textContent).join("\\n")`).catch((e) => e.message);
    const plotlyRequests = page.events.filter((e) => e.method === "Network.requestWillBeSent" && /plotly/.test(e.params.request.url)).map((e) => e.params.request.url);
    return `console errors:\n${consoleErrors()}\nfigure notes:\n${notes}\nplotly requests: ${plotlyRequests.join(", ")}\nserver log (tail):\n${serverLog.slice(-3000)}`;
  };

  // The Notebook app is up and its kernel (batchlab) connected.
  await waitFor(
    page,
    `!!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected() && Jupyter.notebook.kernel.name === "batchlab")`,
    "the notebook's batchlab kernel connecting",
    90000,
    diagnose,
  );
  await page.eval(`Jupyter.notebook.execute_all_cells(), true`);
  // Every code cell has run: an execution count in its prompt and the kernel idle again.
  await waitFor(
    page,
    `Jupyter.notebook.get_cells().filter((c) => c.cell_type === "code").every((c) => typeof c.input_prompt_number === "number") && Jupyter.notebook.kernel_busy === false`,
    "all cells finishing",
    150000,
    diagnose,
  );
  // A plotly chart is drawn by plotly.js in the page (it takes a moment after the output lands).
  await waitFor(page, `document.querySelectorAll(".output_area .js-plotly-plot .main-svg").length > 0`, "a rendered plotly chart", 30000, diagnose);
  const dom = await page.eval(`(() => {
    const imgs = [...document.querySelectorAll(".output_area img")].filter((i) => i.src.startsWith("data:image/png"));
    return {
      images: imgs.map((i) => ({ complete: i.complete, w: i.naturalWidth, h: i.naturalHeight })),
      errors: [...document.querySelectorAll(".output_error, .output_stderr")].map((e) => e.textContent.slice(0, 500)),
      plotly: document.querySelectorAll(".js-plotly-plot .main-svg").length,
      bars: document.querySelectorAll(".js-plotly-plot .bars path, .js-plotly-plot .heatmaplayer image").length,
      loaderTable: !!document.querySelector(".output_area table.batchlab-loader"),
      counts: Jupyter.notebook.get_cells().filter((c) => c.cell_type === "code").map((c) => c.input_prompt_number),
    };
  })()`);

  // Keep what the browser showed, whatever the result below. The classic Notebook scrolls inside
  // #site, so let it grow to its content first and the capture holds the whole notebook.
  await page.eval(`(() => { const site = document.getElementById("site"); if (site) { site.style.height = "auto"; site.style.overflow = "visible"; } document.body.style.overflow = "visible"; return true; })()`);
  const size = await page.eval(`[document.documentElement.scrollWidth, document.documentElement.scrollHeight]`);
  await page.send("Emulation.setDeviceMetricsOverride", { width: 1280, height: Math.min(size[1], 8000), deviceScaleFactor: 1, mobile: false });
  await sleep(500);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = await page.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
  const shotPath = path.join(ARTIFACTS, "notebook-02.png");
  fs.writeFileSync(shotPath, Buffer.from(shot.data, "base64"));
  t.diagnostic(`screenshot: ${shotPath}`);

  assert.deepEqual(dom.errors, [], "no error or stderr output in the page");
  assert.deepEqual(
    dom.counts,
    dom.counts.map((_, i) => i + 1),
    "cells ran once each, in order",
  );
  assert.ok(dom.images.length >= 2, `the augmentation strip and the batch grid: ${JSON.stringify(dom.images)}`);
  for (const img of dom.images) assert.ok(img.complete && img.w > 100 && img.h > 50, `a decoded grid image: ${JSON.stringify(img)}`);
  assert.ok(dom.images.some((i) => i.w > 4 * i.h), "the augmentation strip is wide");
  assert.ok(dom.plotly >= 1 && dom.bars > 0, `plotly drew the sampler chart: ${JSON.stringify(dom)}`);
  assert.ok(dom.loaderTable, "the loader's own view is an HTML table");
  const offsite = page.events
    .filter((e) => e.method === "Network.requestWillBeSent")
    .map((e) => e.params.request.url)
    .filter((u) => !/^(data:|blob:|(http|ws):\/\/127\.0\.0\.1:)/.test(u));
  assert.deepEqual(offsite, [], "the page asked for nothing beyond 127.0.0.1");
  const png = fs.readFileSync(shotPath);
  assert.equal(png.subarray(1, 4).toString(), "PNG");
});
