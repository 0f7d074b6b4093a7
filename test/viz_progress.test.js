"use strict";
// progress(): items pass through unchanged; updates go to a sink under one display id and end
// with a final update; the default sink follows the kernel, a TTY, or a plain pipe.
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const viz = require("../dist/viz");
const { OptionError } = require("../dist/errors");

function recorder() {
  const calls = [];
  const sink = (bundle, o) => calls.push({ bundle, ...o, state: bundle.metadata["batchlab/progress"] });
  return { calls, sink };
}

function checkUpdates(calls) {
  assert.ok(calls.length >= 2, "at least a first and a final update");
  const id = calls[0].displayId;
  assert.equal(typeof id, "string");
  assert.ok(calls.every((c) => c.displayId === id), "one display id throughout");
  assert.equal(calls[0].update, false, "the first update creates the output");
  assert.ok(calls.slice(1).every((c) => c.update === true), "later ones replace it");
  for (const c of calls) {
    assert.equal(typeof c.bundle.data["text/html"], "string");
    assert.equal(typeof c.bundle.data["text/plain"], "string");
    assert.equal(c.bundle[Symbol.for("Jupyter.display")](), c.bundle.data);
  }
  return calls[calls.length - 1];
}

test("progress over an array: yields every item; the last update is 100% with the same displayId", () => {
  const { calls, sink } = recorder();
  const items = ["a", "b", "c", "d"];
  const seen = [];
  for (const x of viz.progress(items, { sink, label: "files", minInterval: 0 })) seen.push(x);
  assert.deepEqual(seen, items);
  const last = checkUpdates(calls);
  assert.equal(last.state.status, "done");
  assert.equal(last.state.n, 4);
  assert.equal(last.state.total, 4);
  assert.equal(last.state.fraction, 1);
  assert.match(last.bundle.data["text/plain"], /^files: 100%\|#{30}\| 4\/4 \[/);
  assert.match(last.bundle.data["text/html"], /width:100\.0%/);
  assert.match(last.bundle.data["text/html"], /aria-valuenow="100"/);
  assert.deepEqual(calls.map((c) => c.state.n), [0, 1, 2, 3, 4], "with minInterval 0 every step is reported, 100% once");
});

test("progress(n) counts 0..n-1; intermediate updates are throttled but the first and last always go", () => {
  const { calls, sink } = recorder();
  assert.deepEqual([...viz.progress(5, { sink, minInterval: 60_000 })], [0, 1, 2, 3, 4]);
  assert.equal(calls.length, 2, "start and end only within one long interval");
  assert.equal(checkUpdates(calls).state.fraction, 1);
});

test("progress over an async iterable (for await), total from options", async () => {
  const { calls, sink } = recorder();
  async function* gen() {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      yield i * 10;
    }
  }
  const out = [];
  for await (const x of viz.progress(gen(), { sink, total: 3, unit: "batch", minInterval: 0 })) out.push(x);
  assert.deepEqual(out, [0, 10, 20]);
  const last = checkUpdates(calls);
  assert.equal(last.state.fraction, 1);
  assert.match(last.bundle.data["text/plain"], /100%.*3\/3 .*batch\/s/);
});

test("progress takes the total from length (e.g. a DataLoader) and learns it at the end when unknown", async () => {
  const loaderLike = {
    length: 2,
    async *[Symbol.asyncIterator]() {
      yield "b0";
      yield "b1";
    },
  };
  const a = recorder();
  for await (const _ of viz.progress(loaderLike, { sink: a.sink })) void _;
  assert.equal(a.calls[0].state.total, 2);
  assert.equal(checkUpdates(a.calls).state.fraction, 1);

  const b = recorder();
  function* unknown() {
    yield 1;
    yield 2;
    yield 3;
  }
  for (const _ of viz.progress(unknown(), { sink: b.sink, minInterval: 0 })) void _;
  assert.equal(b.calls[1].state.total, undefined);
  assert.match(b.calls[1].bundle.data["text/plain"], /^1 it \[/);
  const last = checkUpdates(b.calls);
  assert.equal(last.state.total, 3);
  assert.equal(last.state.fraction, 1);
});

test("progress: a loop left early ends with a 'stopped' update at the count reached", () => {
  const { calls, sink } = recorder();
  for (const x of viz.progress(10, { sink })) if (x === 3) break;
  const last = checkUpdates(calls);
  assert.equal(last.state.status, "stopped");
  assert.equal(last.state.n, 3);
  assert.equal(last.state.fraction, 0.3);
  assert.match(last.bundle.data["text/plain"], /30%.*stopped$/);
  // An error inside the source also ends the bar.
  const e = recorder();
  function* failing() {
    yield 1;
    throw new Error("boom");
  }
  assert.throws(() => {
    for (const _ of viz.progress(failing(), { sink: e.sink })) void _;
  }, /boom/);
  assert.equal(checkUpdates(e.calls).state.status, "stopped");
});

test("progress uses the kernel's display (globalThis[Symbol.for('batchlab.display')]) when present", () => {
  const key = Symbol.for("batchlab.display");
  const before = globalThis[key];
  const { calls, sink } = recorder();
  globalThis[key] = sink;
  try {
    for (const _ of viz.progress([1, 2], { label: "k" })) void _;
  } finally {
    if (before === undefined) delete globalThis[key];
    else globalThis[key] = before;
  }
  assert.equal(checkUpdates(calls).state.fraction, 1);
});

test("progress in a plain script: nothing on a piped stderr until the end, then one line", () => {
  const script = `const viz = require(${JSON.stringify(path.join(__dirname, "..", "dist", "viz"))});
    let s = 0; for (const x of viz.progress(2000, { label: "work", minInterval: 0 })) s += x;
    process.stdout.write(String(s));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, String((2000 * 1999) / 2));
  const lines = r.stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^work: 100%\|#+\| 2000\/2000 \[/);
  assert.ok(!r.stderr.includes("\r"), "no carriage returns when stderr is not a terminal");
});

test("progress in a plain script on a terminal: one line rewritten in place with carriage returns", (t) => {
  const fs = require("node:fs");
  const os = require("node:os");
  const script = "/usr/bin/script";
  if (!fs.existsSync(script)) return t.skip("util-linux script(1) is not installed: no way to give the child a terminal");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-viz-tty-"));
  const file = path.join(dir, "bar.js");
  fs.writeFileSync(
    file,
    `const viz = require(${JSON.stringify(path.join(__dirname, "..", "dist", "viz"))});
for (const _ of viz.progress(5, { label: "tty", minInterval: 0 })) void _;
process.stderr.write("END");
`,
  );
  try {
    const r = spawnSync(script, ["-qec", `'${process.execPath}' '${file}'`, "/dev/null"], { encoding: "utf8" });
    if (r.status !== 0 && /script: /.test(r.stderr)) return t.skip(`script(1) could not run: ${r.stderr.trim()}`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const frames = r.stdout.split("\r").filter((f) => f.startsWith("tty:"));
    assert.deepEqual(frames.map((f) => f.match(/(\d+)%/)[1]), ["0", "20", "40", "60", "80", "100"]);
    assert.match(r.stdout, /100%[^\r]*\r?\nEND/, "the final frame ends the line");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("progress rejects what it cannot iterate", () => {
  assert.throws(() => viz.progress({}), (e) => e instanceof OptionError && /progress\(source\)/.test(e.message));
  assert.throws(() => viz.progress(-1), /progress\(count\)/);
  assert.throws(() => viz.progress([1], { sink: 3 }), /progress\(options\)\.sink/);
  assert.throws(() => viz.progress([1], { totl: 3 }), /progress\.totl/);
});
