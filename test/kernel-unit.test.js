"use strict";
// Kernel parts that need no Jupyter: MIME bundles (plotly ones get the library's HTML and embed),
// the interrupt rewrite of async cells, kernelspec installation with its logos, the wire
// protocol's signing.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { decode } = require("fast-png");
const { kernelModule, PYTHON } = require("./helpers/jupyter");

const viz = require("../dist/viz");
const display = kernelModule("display.js");
const interrupt = kernelModule("interrupt.js");
const install = kernelModule("install.js");
const protocol = kernelModule("protocol.js");
const executor = kernelModule("executor.js");

test("a plain MIME map becomes a payload with binary data base64-encoded and text/plain added", () => {
  const bytes = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10, 0, 255);
  const p = display.payloadFor({ "image/png": bytes, "text/html": "<b>x</b>" }, false);
  assert.equal(p.data["image/png"], Buffer.from(bytes).toString("base64"));
  assert.equal(p.data["text/html"], "<b>x</b>");
  assert.equal(p.data["text/plain"], "<image/png, text/html>");
  assert.deepEqual(p.metadata, {});
});

test("{ data, metadata } keeps per-MIME metadata such as image width and height", () => {
  const p = display.payloadFor({ data: { "image/png": new Uint8Array([1, 2, 3]), "text/plain": "img" }, metadata: { "image/png": { width: 280, height: 140 } } }, false);
  assert.deepEqual(p.metadata, { "image/png": { width: 280, height: 140 } });
  assert.equal(p.data["image/png"], "AQID");
  assert.equal(p.data["text/plain"], "img");
});

test("Symbol.for('Jupyter.display') wins over the object's own keys; async representations are awaited", async () => {
  const obj = { a: 1, [Symbol.for("Jupyter.display")]() { return { "text/markdown": "**a**" }; } };
  assert.deepEqual(display.payloadFor(obj, true).data, { "text/markdown": "**a**", "text/plain": "<text/markdown>" });
  const later = { async [Symbol.for("Jupyter.display")]() { return { "text/html": "<i>late</i>" }; } };
  const p = await display.payloadFor(later, true);
  assert.equal(p.data["text/html"], "<i>late</i>");
  // a { data, metadata } bundle whose method returns only the MIME map keeps its metadata
  const view = { data: { "image/png": "AAAA", "text/plain": "grid" }, metadata: { "image/png": { width: 56, height: 28 } } };
  Object.defineProperty(view, Symbol.for("Jupyter.display"), { value() { return this.data; }, enumerable: false });
  assert.deepEqual(display.payloadFor(view, true), { data: { "image/png": "AAAA", "text/plain": "grid" }, metadata: { "image/png": { width: 56, height: 28 } } });
  const bad = { [Symbol.for("Jupyter.display")]() { return 42; } };
  assert.throws(() => display.payloadFor(bad, true), /returned number; expected a MIME bundle/);
});

test("ordinary values fall back to inspected text/plain; undefined shows nothing", () => {
  assert.deepEqual(display.payloadFor({ a: [1, 2] }, true).data, { "text/plain": "{ a: [ 1, 2 ] }" });
  assert.deepEqual(display.payloadFor("hi", true).data, { "text/plain": "'hi'" });
  assert.equal(display.payloadFor(undefined, true), null);
  assert.equal(display.payloadFor({ a: 1 }, false), null);
  // an object with a non-MIME key is data, not a bundle
  assert.equal(display.isMimeBundle({ "text/plain": "x", other: 1 }), false);
});

test("a MIME payload of the wrong kind is a TypeError naming the MIME type", () => {
  assert.throws(() => display.normalizeBundle({ "image/png": 12 }), /image\/png must be a Uint8Array, ArrayBuffer or base64 string, got number/);
  assert.throws(() => display.normalizeBundle({ "application/json": "{not json" }), /application\/json was given a string that is not JSON/);
});

test("a plotly bundle without HTML gets the library's figure HTML and a summary text/plain; one with HTML keeps it", () => {
  // What that HTML does in a page is tested with the library (viz_plots, viz_browser).
  const fig = { data: [{ type: "bar", x: [1, 2], y: [3, 4] }], layout: { title: { text: "counts" }, height: 300 }, frames: [{ name: "f0", data: [{ y: [4, 3] }] }] };
  const p = display.normalizeBundle({ [display.PLOTLY_MIME]: fig });
  assert.deepEqual(p.data[display.PLOTLY_MIME], fig);
  assert.equal(p.data["text/plain"], '<Plotly figure "counts": 1 trace>');
  const html = p.data["text/html"];
  const key = html.match(/^<div class="batchlab-plot" data-batchlab-fig="([^"]+)"/)[1];
  assert.equal(html, viz.figureHtml(fig, key));
  // a figure with no traces or layout still gets HTML (of an empty plot)
  const bare = display.normalizeBundle({ [display.PLOTLY_MIME]: {} }).data["text/html"];
  assert.equal(bare, viz.figureHtml({ data: [], layout: {} }, bare.match(/data-batchlab-fig="([^"]+)"/)[1]));
  // a bundle that brings its own HTML keeps it
  const own = display.normalizeBundle({ [display.PLOTLY_MIME]: fig, "text/html": "<p>mine</p>" });
  assert.equal(own.data["text/html"], "<p>mine</p>");
  // no plotly.js embed from the kernel: each figure's HTML loads it (see viz_plots)
  assert.equal(display.plotlyEmbedPayload, undefined);
});

test("instrumentAsync wraps top-level awaits and for-await sources, not code inside functions", () => {
  const js = [
    "let y = await f(await g());",
    "for await (const b of loader) { exports.n = n += 1; await tick(); }",
    "const h = async () => { await inner(); for await (const q of it) {} };",
    "for await (const z of await make()) {}",
  ].join("\n");
  const out = interrupt.instrumentAsync(js);
  const P = interrupt.CELL_PARAM;
  assert.equal(
    out,
    [
      `let y = ${P}.pass(await f(${P}.pass(await g())));`,
      `for await (const b of ${P}.guard(loader)) { exports.n = n += 1; ${P}.pass(await tick()); }`,
      "const h = async () => { await inner(); for await (const q of it) {} };",
      `for await (const z of ${P}.guard(${P}.pass(await make()))) {}`,
    ].join("\n"),
  );
  assert.equal(interrupt.instrumentAsync("const a = 1;"), "const a = 1;");
  // a lone for-await makes the cell asynchronous (tslab itself only notices await expressions)
  assert.equal(interrupt.analyzeAsync("for (const x of y) {}").isAsync, false);
  assert.equal(interrupt.analyzeAsync("for await (const x of y) {}").isAsync, true);
  assert.equal(interrupt.analyzeAsync("const f = async () => { await g(); };").isAsync, false);
});

test("a guarded iteration stops at the next step after interrupt() and closes the source iterator", async () => {
  const ctx = new interrupt.CellContext();
  let closed = false;
  let produced = 0;
  const source = {
    [Symbol.asyncIterator]() {
      return {
        async next() {
          produced++;
          return { done: false, value: produced };
        },
        async return() {
          closed = true;
          return { done: true, value: undefined };
        },
      };
    },
  };
  const seen = [];
  await assert.rejects(async () => {
    for await (const v of ctx.guard(source)) {
      seen.push(v);
      if (v === 3) ctx.interrupt();
    }
  }, interrupt.Interrupted);
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(closed, true);
  assert.throws(() => ctx.pass(1), interrupt.Interrupted);
  await assert.rejects(ctx.interruptedPromise, interrupt.Interrupted);
  // a fresh context passes values through and iterates sync iterables of promises
  const ok = new interrupt.CellContext();
  assert.equal(ok.pass(5), 5);
  const got = [];
  for await (const v of ok.guard([Promise.resolve(1), 2])) got.push(v);
  assert.deepEqual(got, [1, 2]);
});

test("install: options parse, kernel.json points at this package's kernel, the logos are copied as 32 and 64 px PNGs, plotly.js and the nbconvert template", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-install-"));
  try {
    assert.deepEqual(install.parseInstallArgs([]), { scope: "user", name: "batchlab", displayName: "TypeScript (batchlab)" });
    assert.equal(install.parseInstallArgs(["--sys-prefix"]).scope, "sys-prefix");
    assert.equal(install.parseInstallArgs([`--prefix=${tmp}`]).prefix, tmp);
    assert.throws(() => install.parseInstallArgs(["--user", "--sys-prefix"]), /at most one of --user, --sys-prefix, --prefix/);
    assert.throws(() => install.parseInstallArgs(["--prefix"]), /--prefix needs a value/);
    assert.throws(() => install.parseInstallArgs(["--frobnicate"]), /unknown argument "--frobnicate"/);

    const dir = install.installKernelSpec(install.parseInstallArgs(["--prefix", tmp]));
    assert.equal(dir, path.join(tmp, "share", "jupyter", "kernels", "batchlab"));
    const spec = JSON.parse(fs.readFileSync(path.join(dir, "kernel.json"), "utf8"));
    assert.equal(spec.display_name, "TypeScript (batchlab)");
    assert.equal(spec.language, "typescript");
    assert.equal(spec.interrupt_mode, "signal");
    assert.equal(spec.argv[0], process.execPath);
    assert.ok(fs.existsSync(spec.argv[1]), spec.argv[1]);
    assert.equal(spec.argv[2], "{connection_file}");
    // the logos: valid PNGs (every chunk's CRC checked) of the size in their names, RGBA with
    // transparent corners and an opaque centre
    assert.deepEqual(fs.readdirSync(dir).sort(), ["kernel.json", "logo-32x32.png", "logo-64x64.png", "plotly.min.js"]);
    // the server serves plotly.js from here, for the figures (which name this kernelspec)
    assert.deepEqual(spec.env, { BATCHLAB_KERNELSPEC: "batchlab" });
    assert.ok(fs.readFileSync(path.join(dir, "plotly.min.js")).equals(fs.readFileSync(require.resolve("plotly.js-dist-min"))));
    const tpl = path.join(tmp, "share", "jupyter", "nbconvert", "templates", "batchlab");
    assert.deepEqual(fs.readdirSync(tpl).sort(), ["conf.json", "index.html.j2", "plotly_embed.html.j2"]);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(tpl, "conf.json"), "utf8")), { base_template: "lab", mimetypes: { "text/html": true } });
    assert.equal(fs.readFileSync(path.join(tpl, "plotly_embed.html.j2"), "utf8"), `{% raw %}${viz.plotlyScriptHtml()}{% endraw %}\n`);
    const named = install.installKernelSpec(install.parseInstallArgs(["--prefix", tmp, "--name", "bl-2"]));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(named, "kernel.json"), "utf8")).env, { BATCHLAB_KERNELSPEC: "bl-2" });
    for (const size of [32, 64]) {
      const img = decode(fs.readFileSync(path.join(dir, `logo-${size}x${size}.png`)), { checkCrc: true });
      assert.deepEqual([img.width, img.height, img.channels, img.depth], [size, size, 4, 8]);
      const alpha = (x, y) => img.data[(y * size + x) * 4 + 3];
      assert.deepEqual([alpha(0, 0), alpha(size - 1, 0), alpha(0, size - 1), alpha(size - 1, size - 1)], [0, 0, 0, 0]);
      assert.equal(alpha(size / 2, size / 2), 255);
    }
    const user = install.kernelsDir(install.parseInstallArgs(["--user"]), { JUPYTER_DATA_DIR: path.join(tmp, "d") });
    assert.equal(user, path.join(tmp, "d", "kernels"));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("install --sys-prefix writes into the given Python's sys.prefix (a virtualenv) and jupyter lists it", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-venv-"));
  try {
    const venv = path.join(tmp, "venv");
    execFileSync(PYTHON, ["-m", "venv", "--without-pip", "--system-site-packages", venv]);
    const py = path.join(venv, "bin", "python");
    const dir = install.installKernelSpec(install.parseInstallArgs(["--sys-prefix", "--python", py]));
    assert.equal(dir, path.join(venv, "share", "jupyter", "kernels", "batchlab"));
    const env = { ...process.env, HOME: tmp, JUPYTER_DATA_DIR: path.join(tmp, "nodata"), JUPYTER_PLATFORM_DIRS: "1" };
    delete env.JUPYTER_PATH;
    // jupyter_client's own lookup, run by the virtualenv's Python (`jupyter kernelspec` would run
    // the system script, whose sys.prefix is not the virtualenv's)
    const code = "import json; from jupyter_client.kernelspec import KernelSpecManager as K; print(json.dumps(K().get_all_specs()))";
    const listed = JSON.parse(execFileSync(py, ["-c", code], { env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
    assert.equal(listed.batchlab.resource_dir, dir);
    assert.equal(listed.batchlab.spec.display_name, "TypeScript (batchlab)");
    assert.equal(listed.batchlab.spec.language, "typescript");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("protocol: messages round-trip with an HMAC-SHA256 signature and tampering is rejected", () => {
  const signer = new protocol.Signer("secret", "hmac-sha256");
  const msg = { identities: [Buffer.from("id1")], header: protocol.makeHeader("execute_request", "s"), parent_header: {}, metadata: {}, content: { code: "1" }, buffers: [] };
  const frames = protocol.encode(msg, signer).map((f) => Buffer.from(f));
  const back = protocol.decode(frames, signer);
  assert.deepEqual(back.content, { code: "1" });
  assert.deepEqual(back.identities, [Buffer.from("id1")]);
  frames[frames.length - 1] = Buffer.from(JSON.stringify({ code: "2" }));
  assert.throws(() => protocol.decode(frames, signer), /invalid signature/);
  assert.throws(() => new protocol.Signer("k", "md5-only"), /unsupported signature_scheme/);
});

test("after a failed cell, declarations of names it assigned are kept and unassigned ones dropped", () => {
  const decl = "declare const loader: Loader;\ndeclare let a: number, b: string;\ninterface Loader { n: number }\ndeclare class C {}\ndeclare class D {}\ndeclare function f(): void;\nimport { T } from \"batchlab\";\n";
  const scope = { loader: { n: 1 }, a: 1, b: undefined, C: class {}, D: undefined };
  const kept = executor.keepAssignedDecls(decl, scope);
  assert.equal(kept, "declare const loader: Loader;\ndeclare let a: number;\ninterface Loader { n: number }\ndeclare class C {}\ndeclare function f(): void;\nimport { T } from \"batchlab\";\n");
});

test("positions: a compiled cell position maps back to the TypeScript line and column; an unmatched one is not mapped", () => {
  const { sourcePosition } = kernelModule("positions.js");
  const src = ["interface P { x: number }", "const p: P = { x: 1 };", "function f(a: number): number {", "  const q: string = 's';", "  return (null as any).boom + a;", "}", "f(p.x)"];
  const js = ['Object.defineProperty(exports, "__esModule", { value: true });', "exports.f = exports.p = void 0;", "const p = { x: 1 };", "exports.p = p;", "function f(a) {", "    const q = 's';", "    return null.boom + a;", "}", "exports.f = f;", "exports.tsLastExpr = f(exports.p.x);"];
  // ".boom" of compiled line 7, column 17
  assert.deepEqual(sourcePosition(src, js, 7, 17), { line: 5, col: 24 });
  assert.equal(src[4].slice(23, 27), "boom");
  // the last expression, behind the names the compiler adds
  assert.deepEqual(sourcePosition(src, js, 10, 22), { line: 7, col: 1 });
  // a line of only added names, or past the end, is not mapped
  assert.equal(sourcePosition(src, js, 1, 1), null);
  assert.equal(sourcePosition(src, js, 40, 1), null);
  assert.equal(sourcePosition(["let a = 1;"], ["totally(different, tokens, here);"], 1, 1), null);
});
