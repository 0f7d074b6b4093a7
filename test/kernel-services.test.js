"use strict";
// The kernel through a real client: @jupyterlab/services talking to a Jupyter server started on
// 127.0.0.1 in a sandbox (temporary JUPYTER_* directories and HOME). The notebook directory has
// no node_modules, as a user's would not.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { makeSandbox, startServer, servicesFor, execute, streamText, ROOT } = require("./helpers/jupyter");

let sandbox;
let server;
let kernels;
let kernel;

test.before(async () => {
  sandbox = makeSandbox();
  server = await startServer(sandbox);
  ({ kernels } = servicesFor(server));
  kernel = await kernels.startNew({ name: "batchlab" });
  await kernel.info;
});

test.after(async () => {
  try {
    if (kernel && !kernel.isDisposed) await kernel.shutdown();
  } catch {
    /* the server goes away next */
  }
  if (kernels) kernels.dispose();
  if (server) await server.stop();
  if (sandbox) sandbox.cleanup();
});

/** Run a cell that must succeed; returns the execute() result. */
async function ok(code) {
  const r = await execute(kernel, code);
  assert.equal(r.reply.content.status, "ok", `cell failed: ${code}\n${JSON.stringify(r.reply.content)}\n${streamText(r, "stderr")}`);
  return r;
}

/** Runs `code`, interrupts the kernel once `marker` appears on its output, and returns the run. */
async function interruptOnceItPrints(code, marker) {
  let started;
  const startedP = new Promise((r) => (started = r));
  const run = execute(kernel, code, {
    onIOPub: (m) => {
      if (m.header.msg_type === "stream" && m.content.text.includes(marker)) started();
    },
  });
  await startedP;
  await kernel.interrupt();
  return run;
}

function resultText(r) {
  const res = r.byType("execute_result");
  assert.equal(res.length, 1, `expected one execute_result, got ${JSON.stringify(r.iopub.map((m) => m.header.msg_type))}`);
  return res[0].content.data["text/plain"];
}

test("kernel_info: a TypeScript kernel implemented by batchlab", { timeout: 60000 }, async () => {
  const info = (await kernel.requestKernelInfo()).content;
  assert.equal(info.status, "ok");
  assert.equal(info.implementation, "batchlab");
  assert.equal(info.language_info.name, "typescript");
  assert.equal(info.language_info.file_extension, ".ts");
  assert.equal(info.protocol_version, "5.3");
});

test("the last expression is an execute_result; console output is a stream; types carry to later cells", { timeout: 60000 }, async () => {
  const r1 = await ok(`interface Pt { x: number; y: number }\nconst p: Pt = { x: 3, y: 4 };\nconsole.log("norm", Math.hypot(p.x, p.y));\np`);
  assert.equal(streamText(r1), "norm 5\n");
  assert.equal(resultText(r1), "{ x: 3, y: 4 }");
  const ec = r1.byType("execute_result")[0].content.execution_count;
  assert.equal(ec, r1.reply.content.execution_count);

  const r2 = await ok(`const q: Pt = { x: p.y, y: p.x };\nq.x * 10 + q.y`);
  assert.equal(resultText(r2), "43");

  const bad = await execute(kernel, `const r: Pt = { x: "no", y: 1 };`);
  assert.equal(bad.reply.content.status, "error");
  assert.equal(bad.reply.content.ename, "CompileError");
  assert.match(bad.reply.content.evalue, /Type 'string' is not assignable to type 'number'/);

  const none = await ok(`const unused = 1;`);
  assert.equal(none.byType("execute_result").length, 0);
});

test("a runtime error is an iopub error (ename, evalue, traceback) with a matching execute_reply", { timeout: 60000 }, async () => {
  const r = await execute(kernel, `function boom(n: number): number {\n  if (n > 2) throw new RangeError("n too big: " + n);\n  return n;\n}\nboom(7)`);
  const errs = r.byType("error");
  assert.equal(errs.length, 1);
  const e = errs[0].content;
  assert.equal(e.ename, "RangeError");
  assert.equal(e.evalue, "n too big: 7");
  assert.equal(e.traceback[0], "RangeError: n too big: 7");
  assert.ok(e.traceback.some((l) => /at boom \(cell\[\d+\]:\d+:\d+\)/.test(l)), e.traceback.join("\n"));
  assert.ok(e.traceback.includes('        > if (n > 2) throw new RangeError("n too big: " + n);'), e.traceback.join("\n"));
  assert.ok(e.traceback.some((l) => /at boom \(cell\[\d+\]:2:20\)$/.test(l)), `the TypeScript line and column of "new": ${e.traceback.join("\n")}`);
  assert.ok(!e.traceback.some((l) => /compiled JavaScript/.test(l)), e.traceback.join("\n"));
  assert.ok(!e.traceback.some((l) => l.includes("dist-kernel")), "kernel frames are hidden");
  assert.equal(r.reply.content.status, "error");
  assert.equal(r.reply.content.ename, "RangeError");
  assert.equal(r.reply.content.evalue, "n too big: 7");
  assert.deepEqual(r.reply.content.traceback, e.traceback);

  const thrown = await execute(kernel, `throw { code: 42 };`);
  assert.equal(thrown.reply.content.ename, "Uncaught");
  assert.equal(thrown.byType("error")[0].content.evalue, "{ code: 42 }");

  const rejected = await execute(kernel, `await Promise.reject(new TypeError("async bad"));`);
  assert.equal(rejected.reply.content.ename, "TypeError");
  assert.equal(rejected.byType("error")[0].content.evalue, "async bad");

  const compile = await execute(kernel, `undefinedName + 1`);
  const ce = compile.byType("error")[0].content;
  assert.equal(ce.ename, "CompileError");
  assert.match(ce.traceback[0], /^cell\[\d+\]:1:1 - error TS(2304|2552): Cannot find name 'undefinedName'\./);
});

test("errors point at the cell's TypeScript line and column (types erased, declarations moved), in tracebacks and CompileErrors", { timeout: 60000 }, async () => {
  const code = [
    "interface Scaled { values: number[]; k: number }",
    "function scale(xs: number[], k: number): Scaled {",
    "  const out: number[] = xs.map((x: number) => x * k);",
    "  const bad: any = undefined;",
    "  return { values: bad.missing.call(out), k };",
    "}",
    "const factor: number = 3;",
    "scale([1, 2], factor)",
  ].join("\n");
  const r = await execute(kernel, code);
  const e = r.byType("error")[0].content;
  assert.equal(e.ename, "TypeError");
  const cell = /at scale \((cell\[\d+\]):(\d+):(\d+)\)$/.exec(e.traceback.find((l) => /at scale \(/.test(l)) ?? "");
  assert.ok(cell, e.traceback.join("\n"));
  // line 5 of the TypeScript (the compiled JavaScript has it on another line), at ".missing"
  assert.equal(Number(cell[2]), 5, e.traceback.join("\n"));
  assert.equal(code.split("\n")[4].slice(Number(cell[3]) - 1).startsWith("missing") || code.split("\n")[4].slice(Number(cell[3]) - 1).startsWith(".missing"), true, e.traceback.join("\n"));
  assert.ok(e.traceback.includes("        > return { values: bad.missing.call(out), k };"), "the TypeScript line is quoted");
  // the top-level call's frame too
  assert.ok(e.traceback.some((l) => new RegExp(`${cell[1].replace(/[[\]]/g, "\\$&")}:8:1\\)?$`).test(l)), e.traceback.join("\n"));
  // CompileErrors name the TypeScript position (tslab's diagnostics)
  const ce = (await execute(kernel, `const fine = 1;\nconst wrong: string = fine;`)).byType("error")[0].content;
  assert.equal(ce.ename, "CompileError");
  assert.match(ce.traceback[0], /^cell\[\d+\]:2:7 - error TS2322: Type 'number' is not assignable to type 'string'\./);
});

test("after an error, execute requests already queued are aborted; later ones run", { timeout: 60000 }, async () => {
  const first = execute(kernel, `await new Promise((r) => setTimeout(r, 300));\nthrow new Error("stop here")`);
  const second = execute(kernel, `"should not run"`);
  const [a, b] = await Promise.all([first, second]);
  assert.equal(a.reply.content.status, "error");
  assert.equal(b.reply.content.status, "aborted");
  assert.equal(b.byType("execute_result").length, 0);
  const c = await ok(`"runs"`);
  assert.equal(resultText(c), "'runs'");
});

test("display() sends several MIME types at once with per-MIME metadata (image width/height)", { timeout: 60000 }, async () => {
  const r = await ok(
    `const px = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);\n` +
      `display({ data: { "image/png": px, "text/html": "<b>grid</b>", "text/plain": "a grid" }, metadata: { "image/png": { width: 280, height: 140 } } });`,
  );
  const d = r.byType("display_data");
  assert.equal(d.length, 1);
  assert.deepEqual(Object.keys(d[0].content.data).sort(), ["image/png", "text/html", "text/plain"]);
  assert.equal(d[0].content.data["image/png"], Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]).toString("base64"));
  assert.deepEqual(d[0].content.metadata, { "image/png": { width: 280, height: 140 } });
});

test("objects with [Symbol.for('Jupyter.display')]() render richly, as a result and through display()", { timeout: 60000 }, async () => {
  const r = await ok(
    `class Swatch { constructor(readonly color: string) {}\n` +
      `  [Symbol.for("Jupyter.display")]() { return { "text/html": \`<div style="background:\${this.color}">\${this.color}</div>\`, "text/plain": "Swatch " + this.color }; } }\n` +
      `display(new Swatch("red"));\nnew Swatch("blue")`,
  );
  const d = r.byType("display_data");
  assert.equal(d.length, 1);
  assert.equal(d[0].content.data["text/plain"], "Swatch red");
  const res = r.byType("execute_result")[0].content;
  assert.equal(res.data["text/html"], '<div style="background:blue">blue</div>');
  assert.equal(res.data["text/plain"], "Swatch blue");

  const bundle = await ok(`({ "text/markdown": "# title", "text/plain": "title" })`);
  assert.equal(bundle.byType("execute_result")[0].content.data["text/markdown"], "# title");
});

test("progress-style updates: display_id on the first output, update_display_data afterwards", { timeout: 60000 }, async () => {
  const r = await ok(
    `const bar = (i: number, n: number) => ({ "text/html": \`<progress value="\${i}" max="\${n}"></progress>\`, "text/plain": \`\${i}/\${n}\` });\n` +
      `display(bar(0, 3), { displayId: "epoch-1" });\n` +
      `for (let i = 1; i <= 3; i++) { await new Promise((r) => setTimeout(r, 5)); display(bar(i, 3), { displayId: "epoch-1", update: true }); }`,
  );
  const first = r.byType("display_data");
  const updates = r.byType("update_display_data");
  assert.equal(first.length, 1);
  assert.equal(first[0].content.transient.display_id, "epoch-1");
  assert.deepEqual(updates.map((m) => m.content.data["text/plain"]), ["1/3", "2/3", "3/3"]);
  assert.ok(updates.every((m) => m.content.transient.display_id === "epoch-1"));

  // library code reaches the same bridge through the global sink (see kernel/README.md)
  const sink = await ok(`(globalThis as any)[Symbol.for("batchlab.display")]({ "text/plain": "from the library" }, { displayId: "lib" });`);
  const sd = sink.byType("display_data");
  assert.equal(sd.length, 1);
  assert.equal(sd[0].content.data["text/plain"], "from the library");
  assert.equal(sd[0].content.transient.display_id, "lib");

  const misuse = await execute(kernel, `display({ "text/plain": "x" }, { update: true })`);
  assert.equal(misuse.reply.content.ename, "TypeError");
  assert.match(misuse.reply.content.evalue, /update needs options\.displayId/);
});

test("plotly: no embed from the kernel; figures carry plotly JSON and HTML; the server serves the kernelspec's plotly.min.js", { timeout: 60000 }, async () => {
  const fig = (n) => `({ "application/vnd.plotly.v1+json": { data: [{ type: "bar", x: ["a", "b"], y: [${n}, 2] }], layout: { title: { text: "f${n}" } } } })`;
  const r1 = await ok(fig(1));
  assert.equal(r1.byType("display_data").length, 0, "nothing before the figure");
  const res = r1.byType("execute_result")[0].content.data;
  assert.equal(res["application/vnd.plotly.v1+json"].layout.title.text, "f1");
  assert.match(res["text/html"], /^<div class="batchlab-plot" data-batchlab-fig="[^"]+"/);
  assert.match(res["text/html"], /name = "batchlab"/, "the figure names the kernelspec it runs from (kernel.json's env)");
  assert.ok(res["text/html"].length < 100_000);
  assert.equal(res["text/plain"], '<Plotly figure "f1": 1 trace>');
  const r2 = await ok(`display(${fig(2)})`);
  assert.equal(r2.byType("display_data").length, 1);
  assert.ok(r2.byType("display_data")[0].content.data["application/vnd.plotly.v1+json"]);
  // what each figure's HTML loads where window.Plotly is missing: <base>kernelspecs/batchlab/plotly.min.js
  const js = await fetch(`${server.baseUrl}kernelspecs/batchlab/plotly.min.js`, { headers: { Authorization: `token ${server.token}` } });
  assert.equal(js.status, 200);
  assert.ok(Buffer.from(await js.arrayBuffer()).equals(fs.readFileSync(require.resolve("plotly.js-dist-min"))));
});

test("comm_info_request gets a comm_info_reply with no comms", { timeout: 60000 }, async () => {
  const all = await kernel.requestCommInfo({});
  assert.equal(all.header.msg_type, "comm_info_reply");
  assert.deepEqual(all.content, { status: "ok", comms: {} });
  const widgets = await kernel.requestCommInfo({ target_name: "jupyter.widget" });
  assert.deepEqual(widgets.content, { status: "ok", comms: {} });
});

test("interrupt stops a running for-await loop and keeps the kernel's state", { timeout: 60000 }, async () => {
  await ok(`let ticks = 0;\nconst keep = "still here";\nasync function* forever() { for (let i = 0; ; i++) { await new Promise((r) => setTimeout(r, 2)); yield i; } }`);
  const r = await interruptOnceItPrints(`const got: number[] = [];\nfor await (const t of forever()) { got.push(t); ticks++; if (ticks === 3) console.log("looping"); }`, "looping");
  assert.equal(r.reply.content.status, "error");
  assert.equal(r.reply.content.ename, "Interrupted");
  assert.equal(r.byType("error")[0].content.ename, "Interrupted");
  // the loop is stopped, not left running in the background
  const after = await ok(`const seen = ticks;\nawait new Promise((r) => setTimeout(r, 100));\n[seen > 0, ticks === seen, keep, got.length === seen]`);
  assert.equal(resultText(after), "[ true, true, 'still here', true ]");
});

test("interrupt stops a synchronous loop too", { timeout: 60000 }, async () => {
  await ok(`let spins = 0;`);
  let started;
  const startedP = new Promise((r) => (started = r));
  const run = execute(kernel, `console.log("spinning");\nwhile (true) { spins++; }`, {
    onIOPub: (m) => {
      if (m.header.msg_type === "stream" && m.content.text.includes("spinning")) started();
    },
  });
  await startedP;
  await kernel.interrupt();
  const r = await run;
  assert.equal(r.reply.content.ename, "Interrupted");
  const after = await ok(`spins > 0`);
  assert.equal(resultText(after), "true");
});

test("an exception thrown later by a timer is reported on stderr and the kernel lives on", { timeout: 60000 }, async () => {
  const r = await ok(`setTimeout(() => { throw new Error("late failure"); }, 1);\nawait new Promise((r) => setTimeout(r, 50));\n"done"`);
  assert.match(streamText(r, "stderr"), /Uncaught Error: late failure/);
  assert.equal(resultText(await ok(`1 + 1`)), "2");
});

test("tslab's display API and local TypeScript modules work in cells", { timeout: 60000 }, async () => {
  fs.writeFileSync(path.join(sandbox.notebookDir, "helpers.ts"), `export function twice(x: number): number { return 2 * x; }\n`);
  const r = await ok(`import * as tslab from "tslab";\nimport { twice } from "./helpers";\ntslab.display.html("<i>from tslab</i>");\ntwice(21)`);
  assert.equal(r.byType("display_data")[0].content.data["text/html"], "<i>from tslab</i>");
  assert.equal(resultText(r), "42");
});

test("completion and inspection see earlier cells' declarations", { timeout: 60000 }, async () => {
  await ok(`const trainingSetSize = 60000;`);
  const code = "trainingSet";
  const c = await kernel.requestComplete({ code, cursor_pos: code.length });
  assert.equal(c.content.status, "ok");
  assert.ok(c.content.matches.includes("trainingSetSize"), JSON.stringify(c.content.matches.slice(0, 10)));
  const i = await kernel.requestInspect({ code: "trainingSetSize", cursor_pos: 3, detail_level: 0 });
  assert.equal(i.content.found, true);
  assert.match(i.content.data["text/plain"], /const trainingSetSize: 60000/);
});

test("Tab completes the prelude's names and Shift-Tab shows their signatures and doc comments, also with the cursor after '('", { timeout: 60000 }, async () => {
  const complete = async (code) => (await kernel.requestComplete({ code, cursor_pos: code.length })).content;
  const inspect = async (code, pos = code.length) => (await kernel.requestInspect({ code, cursor_pos: pos, detail_level: 0 })).content;
  const c1 = await complete("DataLoa");
  assert.ok(c1.matches.includes("DataLoader"), JSON.stringify(c1.matches.slice(0, 10)));
  assert.deepEqual([c1.cursor_start, c1.cursor_end], [0, 7]);
  const c2 = await complete("T.randomCr");
  assert.ok(c2.matches.includes("randomCrop") && c2.matches.includes("randomCrop".slice(0)), JSON.stringify(c2.matches));
  assert.deepEqual([c2.cursor_start, c2.cursor_end], [2, 10]);
  assert.ok((await complete("datasets.fashionM")).matches.includes("fashionMnist"));
  assert.ok((await complete("showBa")).matches.includes("showBatch"));
  // Shift-Tab: Lab's and the classic Notebook's tooltip send the cursor where it is, often after "("
  const dl = await inspect("DataLoader");
  assert.equal(dl.found, true);
  assert.match(dl.data["text/plain"], /class DataLoader<T = Batch>/);
  assert.match(dl.data["text/plain"], /Loads batches from a dataset\. Iterate with `for await`/);
  for (const code of ["T.randomCrop(", "const crop = T.randomCrop(24, { padding: 4, ", "T.randomCrop"]) {
    const r = await inspect(code);
    assert.equal(r.found, true, code);
    assert.match(r.data["text/plain"], /randomCrop\(size: number \| \[number, number\], options\?: (transforms\.)?RandomCropOptions\)/, code);
    assert.match(r.data["text/plain"], /Pads, then crops a random size\[0\] x size\[1\] window, as torchvision's RandomCrop\./, code);
  }
  const ctor = await inspect("const loader = new DataLoader(ds, { batchSize: 64, ");
  assert.match(ctor.data["text/plain"], /new DataLoader<Batch>\(dataset: (datasets\.)?Dataset, options\?: LoaderOptions<Batch>\)/);
  const ps = await inspect("plotSampler(");
  assert.match(ps.data["text/plain"], /plotSampler\(source: (viz\.)?SamplerSource, options\?: (viz\.)?PlotSamplerOptions\)/);
  assert.match(ps.data["text/plain"], /Sampler distributions over `epochs` epochs/);
  // a name that does not exist (yet) is not found, rather than "any"
  assert.deepEqual(await inspect("DataLoa"), { status: "ok", found: false, data: {}, metadata: {} });
});

test("the prelude binds the package's exports in every cell, typed, and import from 'batchlab' works without node_modules", { timeout: 60000 }, async () => {
  assert.ok(!fs.existsSync(path.join(sandbox.notebookDir, "node_modules")));
  const pkg = require(ROOT);
  const names = Object.keys(pkg).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== "default");
  for (const k of ["datasets", "transforms", "T", "samplers", "DataLoader", "cuda", "viz"]) assert.ok(names.includes(k), `package exports ${k}`);
  const vizNames = Object.keys(pkg.viz);
  const all = [...new Set([...names, ...vizNames])];
  const r = await ok(`[${all.map((n) => `typeof ${n}`).join(", ")}].filter((t) => t === "undefined").length`);
  assert.equal(resultText(r), "0");
  // typed, not any: a misspelt member is a compile error
  const typo = await execute(kernel, `DataLoader.prototype.noSuchMember_`);
  assert.equal(typo.reply.content.ename, "CompileError");
  assert.match(typo.reply.content.evalue, /Property 'noSuchMember_' does not exist/);
  const imp = await ok(`import { DataLoader as DL, T as T2 } from "batchlab";\n[DL === DataLoader, T2 === T]`);
  assert.equal(resultText(imp), "[ true, true ]");
});

test("interrupt stops a running DataLoader epoch; the data set, the loader and the engine keep working", { timeout: 90000 }, async () => {
  await ok(
    `const fm = await datasets.fashionMnist({ split: "test" });\n` +
      `const aug = T.compose([T.randomCrop(28, { padding: 4 }), T.randomHorizontalFlip(0.5), T.toTensor(), T.normalize([0.286], [0.353])]);\n` +
      `const epochs = new DataLoader(fm, { batchSize: 32, shuffle: true, seed: 1, transform: aug });\nlet batchesSeen = 0;`,
  );
  const r = await interruptOnceItPrints(`for (let e = 0; e < 10000; e++) for await (const b of epochs) { batchesSeen++; if (batchesSeen === 5) console.log("training"); }`, "training");
  assert.equal(r.reply.content.ename, "Interrupted");
  const after = await ok(
    `const seenAt = batchesSeen;\nawait new Promise((r) => setTimeout(r, 200));\n` +
      `let again = 0;\nfor await (const b of epochs.iterate({ epoch: 0 })) again += b.shape[0];\n` +
      `[seenAt > 0, batchesSeen === seenAt, fm.length, again, epochs.engine.name]`,
  );
  assert.match(resultText(after), /^\[ true, true, 10000, 10000, '(native|reference)' \]$/);
});

test("data sets, samplers, loaders and batches render richly as a cell's result", { timeout: 90000 }, async () => {
  await ok(`const small = datasets.subset(await datasets.fashionMnist({ split: "test" }), [0, 1, 2, 3, 4, 5, 6, 7]);`);
  const ds = (await ok(`small`)).byType("execute_result")[0].content;
  assert.match(ds.data["text/html"], /<table class="batchlab-dataset">/);
  const sm = (await ok(`new samplers.RandomSampler(small.length, { seed: 4 })`)).byType("execute_result")[0].content;
  assert.match(sm.data["text/html"], /<table class="batchlab-sampler">.*RandomSampler/);
  await ok(`const few = new DataLoader(small, { batchSize: 8, transform: T.compose([T.toTensor()]) });`);
  const ld = (await ok(`few`)).byType("execute_result")[0].content;
  assert.match(ld.data["text/html"], /<table class="batchlab-loader">/);
  assert.match(ld.data["text/plain"], /DataLoader/);
  const b = (await ok(`const it8 = few.iterate();\nconst one = (await it8.next()).value as import("batchlab").Batch;\nawait it8.return();\none`)).byType("execute_result")[0].content;
  assert.ok(b.data["image/png"], "a batch shows its grid");
  assert.match(b.data["text/plain"], /8 images/);
  assert.ok(b.metadata["image/png"].width > 0 && b.metadata["image/png"].height > 0);
});

test("restart: a fresh kernel process, empty state, prelude and display still there", { timeout: 60000 }, async () => {
  await ok(`const beforeRestart = 1;`);
  await kernel.restart();
  const r = await ok(`typeof display + " " + (typeof (globalThis as any).beforeRestart)`);
  assert.equal(resultText(r), "'function undefined'");
  assert.equal(r.reply.content.execution_count, 1);
  const gone = await execute(kernel, `beforeRestart`);
  assert.equal(gone.reply.content.ename, "CompileError");
});
