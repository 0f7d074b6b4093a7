"use strict";
// The native engine's surface: bad jobs are rejected with the field named (the process lives
// on), the JavaScript thread stays free while a batch runs, and concurrent jobs share the pool.
const test = require("node:test");
const assert = require("node:assert/strict");
const T = require("../dist/transforms");
const { loadNative } = require("../dist/engines/addon-cpu");

const native = loadNative();
const skip = native.ok ? false : `native engine not built: ${native.reason}`;
if (skip) console.log(`# native tests skipped: ${skip}`);

function job(n = 2, h = 8, w = 8, c = 3, chain = T.compose([T.randomCrop(6, { padding: 1 }), T.toTensor()])) {
  const plan = new T.Plan(chain);
  const images = Array.from({ length: n }, (_, i) => ({ data: new Uint8Array(h * w * c).fill(i * 10 + 1), height: h, width: w, channels: c }));
  const params = images.map((im, i) => plan.draw(im, { seed: 1, epoch: 0, position: i }));
  const j = require("../dist/engines").encodeJob(plan, images, params);
  return { ...j, out: new Float32Array(j.n * j.outC * j.outH * j.outW), numThreads: 2 };
}

test("invalid jobs are rejected with the field, the value and what was expected", { skip }, async () => {
  const run = (mut) => {
    const j = job();
    mut(j);
    return native.addon.runPlan(j);
  };
  await assert.rejects(run((j) => (j.tapIndex[3] = 99)), /tapIndex: sample 0 row tap 3 is 99, expected -1 or a row in \[0, 7\]/);
  await assert.rejects(run((j) => (j.tapIndex[8] = -2)), /tapIndex: sample 0 column tap 2 is -2/);
  await assert.rejects(run((j) => (j.out = new Float32Array(10))), /out: expected at least n\*outC\*outH\*outW = 216 floats, received 10/);
  await assert.rejects(run((j) => j.sources.pop()), /sources: expected 2 Uint8Arrays, received 1/);
  await assert.rejects(run((j) => (j.sources[1] = new Uint8Array(5))), /sources\[1\]: 5 bytes, expected at least height\*width\*inC = 192/);
  await assert.rejects(run((j) => (j.program = Int32Array.from([7]))), /program\[0\]: unknown op code 7/);
  await assert.rejects(run((j) => (j.opOffsets = Int32Array.from([5]))), /opOffsets\[0\]: 5 with 7 parameters does not fit a parameter block of 7/);
  await assert.rejects(run((j) => (j.outC = 1)), /outC: the program ends with 3 channels, outC is 1|out: expected/);
  await assert.rejects(run((j) => (j.tapWeight = new Float32Array(3))), /tapWeight: expected the length of tapIndex/);
  await assert.rejects(run((j) => (j.srcDims = new Float32Array(4))), /srcDims: expected a Int32Array/);
  await assert.rejects(run((j) => (j.numThreads = 0)), /numThreads: expected an integer >= 1/);
  const gray = job(1, 4, 4, 2, T.compose([T.toTensor()]));
  gray.program = Int32Array.from([1]);
  gray.params = Float32Array.from([1, 1]);
  gray.opOffsets = Int32Array.from([0]);
  await assert.rejects(native.addon.runPlan(gray), /GRAY needs 1 or 3 channels, the image has 2/);
  // and the engine still works afterwards
  const ok = job();
  await native.addon.runPlan(ok);
  assert.ok(ok.out.some((x) => x > 0));
});

test("one-buffer sources: offsets are checked by name, and the job reads each sample at its offset", { skip }, async () => {
  const chain = T.compose([T.randomCrop(6, { padding: 1 }), T.toTensor()]);
  const plan = new T.Plan(chain);
  const shape = { height: 8, width: 8, channels: 3 };
  const pixels = new Uint8Array(5 * 192);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31) % 256;
  const params = [0, 1].map((i) => plan.draw(shape, { seed: 4, epoch: 0, position: i }));
  const stored = (offsets) => ({ ...require("../dist/engines").encodeJob(plan, require("../dist/engines").pixelsOfStore({ pixels, offsets: Float64Array.from(offsets), shape }), params), out: new Float32Array(2 * 108), numThreads: 2 });
  const good = stored([4 * 192, 192]);
  await native.addon.runPlan(good);
  const views = require("../dist/engines").encodeJob(plan, [4 * 192, 192].map((o) => ({ data: pixels.subarray(o, o + 192), ...shape })), params);
  const out = new Float32Array(2 * 108);
  await native.addon.runPlan({ ...views, out, numThreads: 1 });
  assert.deepEqual(good.out, out);

  const reject = (mut, re) => {
    const j = stored([0, 192]);
    mut(j);
    return assert.rejects(native.addon.runPlan(j), (e) => re.test(e.message) && e.code === "ERR_BATCHLAB_PLAN");
  };
  await reject((j) => (j.srcOffsets = Float64Array.from([0])), /srcOffsets: expected n = 2 offsets, received 1/);
  await reject((j) => (j.srcOffsets = Int32Array.from([0, 0])), /srcOffsets: expected a Float64Array of n byte offsets when sources is one Uint8Array, received Int32Array of length 2/);
  await reject((j) => delete j.srcOffsets, /srcOffsets: expected a Float64Array .* received undefined/);
  await reject((j) => (j.srcOffsets[1] = -1), /srcOffsets\[1\]: -1, expected an integer byte offset in \[0, 960\]/);
  await reject((j) => (j.srcOffsets[0] = 1.5), /srcOffsets\[0\]: 1.5, expected an integer byte offset/);
  await reject((j) => (j.srcOffsets[0] = NaN), /srcOffsets\[0\]: NaN, expected an integer byte offset/);
  await reject((j) => (j.srcOffsets[1] = 4 * 192 + 1), /srcOffsets\[1\]: 769 leaves 191 bytes of sources, expected at least height\*width\*inC = 192/);
  await reject((j) => (j.sources = new Int8Array(960)), /sources: expected a Uint8Array \(with srcOffsets\) or an array of n Uint8Array, received Int8Array/);
  await reject((j) => (j.sources = [pixels, pixels]), /srcOffsets: expected undefined when sources is an array of views/);
  await reject((j) => (j.out = new Float32Array(pixels.buffer, 0, 216)), /out: shares memory with sample 0 of sources/);
});

test("the JavaScript thread stays free while a large batch runs", { skip }, async () => {
  const j = job(512, 256, 256, 3, T.compose([T.resize([250, 250]), T.colorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5 }), T.toTensor()]));
  assert.equal(j.K, 2);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = Date.now();
  await native.addon.runPlan(j);
  const ms = Date.now() - t0;
  clearInterval(timer);
  assert.ok(ms > 20, `the job should take a while (${ms} ms)`);
  assert.ok(ticks >= 3, `timer fired ${ticks} times during a ${ms} ms native call`);
});

test("two concurrent jobs on the shared pool both complete correctly", { skip }, async () => {
  const a = job(64);
  const b = job(64, 8, 8, 3, T.compose([T.randomHorizontalFlip(1), T.toTensor(), T.normalize([0.5], [0.5])]));
  const a1 = { ...a, out: new Float32Array(a.out.length) };
  const b1 = { ...b, out: new Float32Array(b.out.length) };
  await Promise.all([native.addon.runPlan(a), native.addon.runPlan(b)]);
  await native.addon.runPlan(a1);
  await native.addon.runPlan(b1);
  assert.deepEqual(a.out, a1.out);
  assert.deepEqual(b.out, b1.out);
  assert.ok(native.addon.poolSize() >= 1);
  assert.match(native.addon.info().compiler, /g\+\+|clang/);
});

test("allocOutput: batch memory of a collected or released buffer is handed out again; bad sizes are refused by name", { skip }, async () => {
  const v8 = require("node:v8");
  const vm = require("node:vm");
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc");
  const { addon } = native;
  const bytes = 3 * 1024 * 1024 + 4096; // a size no other test uses
  const a = addon.allocOutput(bytes);
  assert.ok(a instanceof ArrayBuffer);
  assert.equal(a.byteLength, bytes);
  let reused = false;
  for (let attempt = 0; attempt < 10 && !reused; attempt++) {
    // Mark a buffer, drop every reference to it, let the collector free it, ask again.
    ((marker) => new Float64Array(addon.allocOutput(bytes)).fill(marker))(0x5eed + attempt);
    gc();
    await new Promise((r) => setImmediate(r));
    const b = new Float64Array(addon.allocOutput(bytes));
    reused = b[0] === 0x5eed + attempt && b[b.length - 1] === 0x5eed + attempt;
  }
  assert.ok(reused, "the memory of a collected batch buffer came back");

  // releaseOutput: no collection needed. The buffer is detached at once; its memory comes back.
  const released = addon.allocOutput(bytes);
  const view = new Float64Array(released).fill(0xd15);
  assert.equal(addon.releaseOutput(released), true);
  assert.equal(view.length, 0);
  assert.equal(released.byteLength, 0);
  assert.equal(addon.releaseOutput(released), false, "twice is refused");
  await new Promise((r) => setImmediate(r));
  const again = new Float64Array(addon.allocOutput(bytes));
  assert.ok(again[0] === 0xd15 && again[again.length - 1] === 0xd15, "the released memory is handed out again");
  assert.equal(addon.releaseOutput(new ArrayBuffer(8)), false, "a buffer allocOutput did not make is left alone");

  // A buffer a queued or running job writes into is refused (the job holds it) until the job ends.
  const j = job(64, 16, 16, 3, T.compose([T.toTensor()]));
  const busy = addon.allocOutput(j.out.length * 4);
  const done = addon.runPlan({ ...j, out: new Float32Array(busy) });
  assert.equal(addon.releaseOutput(busy), false, "refused while the job runs");
  assert.equal(busy.byteLength, j.out.length * 4, "and left attached");
  await done;
  assert.equal(addon.releaseOutput(busy), true, "released once the job has ended");
  assert.equal(addon.releaseOutput(new Float32Array(4)), false);
  for (const bad of [0, -1, 1.5, 2 ** 31 + 1, 2 ** 40, "1024", undefined]) {
    assert.throws(() => addon.allocOutput(bad), (e) => e instanceof RangeError && /^allocOutput\(bytes\): expected an integer from 1 to 2\^31, received/.test(e.message));
  }
});
