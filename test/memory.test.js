"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const memory = require("../dist/memory");
const { CudaOutOfMemoryError } = require("../dist/errors");

test("findMaxBatchSize finds the largest size that does not run out of memory", async () => {
  const limit = 37;
  const r = await memory.findMaxBatchSize((n) => {
    if (n > limit) throw new CudaOutOfMemoryError("device batch", n * 1000, limit * 1000);
  });
  assert.equal(r.batchSize, 37);
  assert.deepEqual(r.trials.slice(0, 7).map((t) => t.batchSize), [1, 2, 4, 8, 16, 32, 64]);
  assert.ok(r.trials.length <= 7 + 6, "doubling then bisection");
  assert.equal((await memory.findMaxBatchSize(() => {}, { max: 100 })).batchSize, 100);
  assert.equal((await memory.findMaxBatchSize(() => { throw new Error("CUDA error: out of memory"); })).batchSize, 0);
  await assert.rejects(memory.findMaxBatchSize((n) => { if (n > 3) throw new TypeError("bug"); }), /bug/, "other errors are not swallowed");
  await assert.rejects(memory.findMaxBatchSize(() => {}, { start: 0 }), /findMaxBatchSize\.start: expected an integer >= 1, received 0/);
});

test("GradientAccumulator averages gradients over its steps", () => {
  const acc = new memory.GradientAccumulator(3);
  acc.add({ w: Float32Array.from([1, 2]), b: Float32Array.from([3]) });
  acc.add({ w: Float32Array.from([3, 4]), b: Float32Array.from([6]) });
  assert.equal(acc.ready, false);
  acc.add({ w: Float32Array.from([5, 0]), b: Float32Array.from([0]) });
  assert.equal(acc.ready, true);
  const g = acc.take();
  assert.deepEqual(Array.from(g.w), [3, 2]);
  assert.deepEqual(Array.from(g.b), [3]);
  assert.equal(acc.pending, 0);
  acc.add({ w: Float32Array.from([1, 1]) });
  assert.throws(() => acc.add({ w: Float32Array.from([1, 1, 1]) }), /add\(grads\)\.w: expected 2 values like the first micro-batch/);
  assert.throws(() => new memory.GradientAccumulator(0), /GradientAccumulator\(steps\): expected an integer >= 1, received 0/);
});

test("GradientAccumulator works with TensorFlow.js tensors", () => {
  const tf = require("@tensorflow/tfjs");
  const acc = new memory.GradientAccumulator(2);
  acc.add({ w: tf.tensor1d([2, 4]) });
  acc.add({ w: tf.tensor1d([4, 0]) });
  assert.deepEqual(Array.from(acc.take().w.dataSync()), [3, 2]);
});
