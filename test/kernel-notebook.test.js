"use strict";
// A notebook executed headless by nbconvert/nbclient against the batchlab kernel, its outputs
// checked; then the executed notebook exported to HTML and opened in headless Chromium, to
// check the figures offline: with nbconvert's default template (no server, its RequireJS URL
// unreachable here) each figure shows its static preview and says why it is not interactive;
// with the batchlab template (`batchlab install` writes it; plotly.js inlined once) they draw,
// also with RequireJS loaded, as in the classic Notebook.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { makeSandbox, notebook, runNotebook, installPlainTslab, PYTHON, ROOT } = require("./helpers/jupyter");

const CHROMIUM = process.env.CHROMIUM || "chromium";
const REQUIRE_JS = "/usr/share/javascript/requirejs/require.min.js";

const CELLS = [
  // 0: plain TypeScript, stdout and a result; types carry into cell 1
  `interface Row { name: string; n: number }\nconst rows: Row[] = [{ name: "a", n: 2 }, { name: "b", n: 3 }];\nconsole.log("rows", rows.length);\nrows.reduce((s, r) => s + r.n, 0)`,
  `rows.map((r: Row) => r.name.toUpperCase()).join("+")`,
  // 2: several MIME types with metadata
  `display({ data: { "text/html": "<b id='rich'>rich</b>", "text/plain": "rich", "image/png": new Uint8Array([137, 80, 78, 71]) }, metadata: { "image/png": { width: 64, height: 32 } } });`,
  // 3: a bare plotly bundle (the kernel adds the library's figure HTML)
  `({ "application/vnd.plotly.v1+json": { data: [{ type: "bar", x: ["a", "b"], y: [2, 3] }], layout: { title: { text: "kernel-built" } } } })`,
  // 4: a figure from the library's view, through the prelude
  `plotTransfer([{ bytes: 1 << 16, pageableGBps: 3, pinnedGBps: 9 }, { bytes: 1 << 22, pageableGBps: 5, pinnedGBps: 12 }])`,
  // 5: the library's progress bar, updated in place
  `let total = 0;\nfor (const i of progress(4, { label: "steps", minInterval: 0 })) total += i;\ntotal`,
  // 6: import from "batchlab" in a directory without node_modules
  `import { T as Tx, DataLoader as DL } from "batchlab";\n[typeof Tx, typeof DL]`,
  // 7: an error
  `throw new RangeError("on purpose")`,
  // 8: still alive after the error (with --allow-errors)
  `"after"`,
];

let sandbox;
let executed;

test.before(() => {
  sandbox = makeSandbox();
  executed = runNotebook(sandbox, notebook(CELLS), { name: "demo", allowErrors: true });
});

test.after(() => {
  if (sandbox) sandbox.cleanup();
});

/** A cell's outputs with nbformat's multi-line strings (lists of lines) joined back. */
const join = (v) => (Array.isArray(v) ? v.join("") : v);
const outputs = (i) =>
  executed.cells[i].outputs.map((o) => {
    const out = { ...o };
    if (o.text !== undefined) out.text = join(o.text);
    if (o.data) out.data = Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, /json$/.test(k) ? v : join(v)]));
    return out;
  });

test("cells run in order, with stdout, results and types carried across cells", { timeout: 180000 }, () => {
  assert.deepEqual(
    executed.cells.map((c) => c.execution_count),
    CELLS.map((_, i) => i + 1),
  );
  const o0 = outputs(0);
  assert.deepEqual(o0[0], { output_type: "stream", name: "stdout", text: "rows 2\n" });
  assert.equal(o0[1].output_type, "execute_result");
  assert.equal(o0[1].data["text/plain"], "5");
  assert.equal(outputs(1)[0].data["text/plain"], "'A+B'");
  assert.equal(executed.metadata.language_info.name, "typescript");
});

test("display_data keeps several MIME types and the image metadata in the saved notebook", () => {
  const [o] = outputs(2);
  assert.equal(o.output_type, "display_data");
  assert.deepEqual(Object.keys(o.data).sort(), ["image/png", "text/html", "text/plain"]);
  assert.deepEqual(o.metadata, { "image/png": { width: 64, height: 32 } });
});

test("no plotly.js embed in the notebook: figures have plotly JSON and HTML that loads plotly.js for itself", () => {
  const all = executed.cells.flatMap((_, i) => outputs(i));
  assert.equal(all.filter((o) => o.data && /^plotly\.js /.test(o.data["text/plain"] ?? "")).length, 0);
  assert.ok(fs.statSync(path.join(sandbox.notebookDir, "demo.out.ipynb")).size < 200_000, "the notebook stays small");
  const o3 = outputs(3);
  assert.equal(o3.length, 1);
  assert.equal(o3[0].output_type, "execute_result");
  assert.equal(o3[0].data["application/vnd.plotly.v1+json"].layout.title.text, "kernel-built");
  // the kernel gave the bare figure the library's figure HTML (drawn in Chromium below)
  assert.match(o3[0].data["text/html"], /^<div class="batchlab-plot" data-batchlab-fig="[^"]+"/);
  const o4 = outputs(4);
  assert.equal(o4.length, 1);
  assert.ok(o4[0].data["application/vnd.plotly.v1+json"].data.length >= 2);
  assert.match(o4[0].data["text/html"], /^<div class="batchlab-plot" data-batchlab-fig="[^"]+"/);
});

test("the progress bar is one output, updated in place to its final state", () => {
  const o5 = outputs(5);
  const bars = o5.filter((o) => o.output_type === "display_data");
  assert.equal(bars.length, 1, JSON.stringify(o5.map((o) => o.output_type)));
  assert.match(bars[0].data["text/plain"], /steps: .*4\/4/);
  assert.match(bars[0].data["text/html"], /batchlab-progress/);
  assert.equal(o5.at(-1).data["text/plain"], "6");
});

test("import from 'batchlab' resolves without node_modules; errors are error outputs; the kernel goes on", () => {
  assert.ok(!fs.existsSync(path.join(sandbox.notebookDir, "node_modules")));
  assert.equal(outputs(6)[0].data["text/plain"], "[ 'object', 'function' ]");
  const [err] = outputs(7);
  assert.equal(err.output_type, "error");
  assert.equal(err.ename, "RangeError");
  assert.equal(err.evalue, "on purpose");
  assert.equal(err.traceback[0], "RangeError: on purpose");
  assert.equal(outputs(8)[0].data["text/plain"], "'after'");
});

function toHtml(extra, name) {
  const input = path.join(sandbox.notebookDir, "demo.out.ipynb");
  execFileSync(PYTHON, ["-m", "nbconvert", "--to", "html", ...extra, "--output", name, input], { cwd: sandbox.notebookDir, env: sandbox.env, stdio: ["ignore", "pipe", "pipe"] });
  return path.join(sandbox.notebookDir, `${name}.html`);
}

/** The page's DOM after its scripts ran, plus a probe line appended by a script of ours. */
function renderedDom(htmlFile) {
  const probe =
    `<script>window.addEventListener("load", function () { setTimeout(function () {` +
    `var figs = document.querySelectorAll(".batchlab-plot");` +
    `var drawn = 0, previews = 0, notes = []; figs.forEach(function (f) { if (f.querySelector(".main-svg")) drawn++;` +
    ` var img = f.querySelector(".batchlab-plot-img"); if (img && img.offsetParent !== null && img.naturalWidth > 0) { previews++; notes.push(f.querySelector(".batchlab-plot-note").textContent); } });` +
    `var amd = typeof window.requirejs === "function" && window.requirejs.defined && window.requirejs.defined("plotly");` +
    `var pre = document.createElement("pre"); pre.id = "probe";` +
    `pre.textContent = JSON.stringify({ figures: figs.length, drawn: drawn, previews: previews, notes: notes, plotly: typeof window.Plotly, amd: !!amd });` +
    `document.body.appendChild(pre); }, 3000); });</script>`;
  const withProbe = htmlFile.replace(/\.html$/, ".probe.html");
  fs.writeFileSync(withProbe, fs.readFileSync(htmlFile, "utf8").replace("</body>", `${probe}</body>`));
  const dom = execFileSync(
    CHROMIUM,
    ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", `--user-data-dir=${path.join(sandbox.dir, "chromium")}`, "--virtual-time-budget=30000", "--dump-dom", `file://${withProbe}`],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120000, maxBuffer: 64 * 1024 * 1024 },
  );
  const m = /<pre id="probe">([^<]*)<\/pre>/.exec(dom);
  assert.ok(m, "the probe ran");
  return JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&amp;/g, "&"));
}

const NO_SERVER = "Static preview: the interactive figure needs plotly.js, which is not available here (no Jupyter server on this page to load plotly.js from).";

test("in nbconvert's default HTML (no server, RequireJS unreachable) each figure shows its static preview and says why", { timeout: 180000 }, () => {
  // Debian's nbconvert points at a local require.js; upstream's points at a CDN. Port 9 on
  // 127.0.0.1 (discard) refuses at once, like a CDN on a machine without internet.
  const html = toHtml(["--HTMLExporter.require_js_url=http://127.0.0.1:9/require.min.js"], "demo-lab");
  const text = fs.readFileSync(html, "utf8");
  assert.ok(!/<script[^>]+src="https?:\/\/[^"]*plotly/i.test(text), "plotly.js is not loaded from the network");
  assert.ok(text.length < 1_000_000, "no plotly.js in it");
  const probe = renderedDom(html);
  assert.deepEqual(probe, { figures: 2, drawn: 0, previews: 2, notes: [NO_SERVER, NO_SERVER], plotly: "undefined", amd: false });
});

test("with --template batchlab (plotly.js inlined once) both figures draw, also under RequireJS where 'plotly' is an AMD module", { timeout: 180000 }, () => {
  const html = toHtml(["--template", "batchlab", "--HTMLExporter.require_js_url=http://127.0.0.1:9/require.min.js"], "demo-batchlab");
  assert.equal(fs.readFileSync(html, "utf8").match(/data-batchlab-plotly=/g).length, 1, "plotly.js once");
  assert.deepEqual(renderedDom(html), { figures: 2, drawn: 2, previews: 0, notes: [], plotly: "object", amd: false });
  assert.ok(fs.existsSync(REQUIRE_JS), `${REQUIRE_JS} (Debian's libjs-requirejs, a dependency of jupyter-notebook)`);
  const rq = toHtml(["--template", "batchlab", `--HTMLExporter.require_js_url=file://${REQUIRE_JS}`], "demo-batchlab-rq");
  assert.match(fs.readFileSync(rq, "utf8"), /<script src="file:\/\/\/usr\/share\/javascript\/requirejs\/require\.min\.js"><\/script>/);
  assert.deepEqual(renderedDom(rq), { figures: 2, drawn: 2, previews: 0, notes: [], plotly: "object", amd: true });
});

test("plain tslab imports the package too, where it is installed in node_modules as npm would", { timeout: 180000 }, () => {
  installPlainTslab(sandbox);
  const dir = path.join(sandbox.notebookDir, "plain");
  fs.mkdirSync(path.join(dir, "node_modules"), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, "node_modules", "batchlab"), "dir");
  const nb = runNotebook(sandbox, notebook([`import { DataLoader, T, viz } from "batchlab";\nconst kinds: string[] = [typeof DataLoader, typeof T, typeof viz.progress];\nkinds.join(",")`], "tslab"), { name: "plain", kernelName: "tslab", dir });
  const outs = nb.cells[0].outputs;
  // tslab prints the last expression to stdout
  const text = outs.map((o) => (Array.isArray(o.text) ? o.text.join("") : o.text ?? "")).join("");
  assert.match(text, /function,object,function/);
});
