"use strict";
// DataLoader behaviour: determinism, resume, epochs, bad samples, timeouts, options, tf hand-off.
const test = require("node:test");
const assert = require("node:assert/strict");
const bl = require("../dist");
const { datasets, transforms: T, samplers, DataLoader } = bl;

process.env.BATCHLAB_QUIET = "1";

function synthetic(n, h = 6, w = 5, c = 3) {
  const pixels = new Uint8Array(n * h * w * c);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  return datasets.fromArrays(pixels, [n, h, w, c], labels);
}

const augment = () =>
  T.compose([T.randomCrop(4, { padding: 2, paddingMode: "reflect" }), T.randomHorizontalFlip(), T.colorJitter({ brightness: 0.4, contrast: 0.4 }), T.toTensor(), T.normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]), T.randomErasing({ p: 0.5 })]);

async function collect(iterable) {
  const out = [];
  for await (const b of iterable) out.push(b);
  return out;
}

const same = (a, b) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test("a shuffled epoch visits every index once, in batches of batchSize with a short last batch", async () => {
  const ds = synthetic(23);
  const loader = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 3, transform: augment() });
  const batches = await collect(loader);
  assert.deepEqual(batches.map((b) => b.shape[0]), [5, 5, 5, 5, 3]);
  const seen = batches.flatMap((b) => Array.from(b.indices)).sort((a, z) => a - z);
  assert.deepEqual(seen, Array.from({ length: 23 }, (_, i) => i));
  for (const b of batches) {
    assert.deepEqual(b.shape.slice(1), [3, 4, 4]);
    assert.equal(b.images.length, b.shape[0] * 48);
    assert.deepEqual(Array.from(b.labels), Array.from(b.indices, (i) => i % 4));
  }
  const dropped = await collect(new DataLoader(ds, { batchSize: 5, dropLast: true }));
  assert.deepEqual(dropped.map((b) => b.shape[0]), [5, 5, 5, 5]);
});

test("the same seed gives the same batches whatever the prefetch depth and thread count", async () => {
  const ds = synthetic(40);
  const run = (o) => collect(new DataLoader(ds, { batchSize: 8, shuffle: true, seed: 11, transform: augment(), ...o }).iterate({ epoch: 2 }));
  const base = await run({ prefetch: 0, numThreads: 1 });
  for (const o of [{ prefetch: 1, numThreads: 2 }, { prefetch: 4, numThreads: 1 }]) {
    const other = await run(o);
    assert.equal(other.length, base.length);
    other.forEach((b, i) => {
      assert.deepEqual(b.indices, base[i].indices);
      assert.ok(same(b.images, base[i].images), `batch ${i} pixels differ with ${JSON.stringify(o)}`);
    });
  }
  const otherSeed = await collect(new DataLoader(ds, { batchSize: 8, shuffle: true, seed: 12, transform: augment() }).iterate({ epoch: 2 }));
  assert.notDeepEqual(otherSeed[0].indices, base[0].indices);
});

test("iterate({ epoch, startBatch }) yields exactly the tail of the full epoch", async () => {
  const ds = synthetic(50);
  const loader = new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 5, transform: augment() });
  const full = await collect(loader.iterate({ epoch: 4 }));
  const tail = await collect(loader.iterate({ epoch: 4, startBatch: 3 }));
  assert.equal(tail.length, full.length - 3);
  tail.forEach((b, i) => {
    assert.equal(b.batchIndex, i + 3);
    assert.deepEqual(b.indices, full[i + 3].indices);
    assert.ok(same(b.images, full[i + 3].images));
  });
  await assert.rejects(collect(loader.iterate({ epoch: 4, startBatch: 99 })), /iterate\.startBatch: expected at most 8 \(batches in epoch 4\), received 99/);
});

test("each for-await pass advances the epoch; setEpoch chooses it", async () => {
  const ds = synthetic(30);
  const loader = new DataLoader(ds, { batchSize: 30, shuffle: true, seed: 1 });
  const [e0] = await collect(loader);
  const [e1] = await collect(loader);
  assert.equal(e0.epoch, 0);
  assert.equal(e1.epoch, 1);
  assert.notDeepEqual(e0.indices, e1.indices);
  loader.setEpoch(0);
  const [again] = await collect(loader);
  assert.deepEqual(again.indices, e0.indices);
});

test("onError 'skip' keeps batches full from the sampler and lists every skipped sample", async () => {
  const base = synthetic(20);
  const bad = new Set([2, 3, 11]);
  const ds = {
    length: 20,
    get(i) {
      if (bad.has(i)) throw new Error(`cannot decode ${i}`);
      return base.get(i);
    },
    pathOf: (i) => `/data/img${i}.png`,
  };
  const loader = new DataLoader(ds, { batchSize: 4, onError: "skip", seed: 1 });
  const batches = await collect(loader);
  assert.deepEqual(batches.map((b) => b.shape[0]), [4, 4, 4, 4, 1]);
  const seen = batches.flatMap((b) => Array.from(b.indices));
  assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i).filter((i) => !bad.has(i)));
  const skipped = loader.stats().skipped;
  assert.deepEqual(skipped.map((s) => s.index), [2, 3, 11]);
  assert.equal(skipped[0].path, "/data/img2.png");
  assert.match(skipped[0].reason, /cannot decode 2/);

  const raising = new DataLoader(ds, { batchSize: 4 });
  await assert.rejects(collect(raising), (e) => e instanceof bl.SampleError && e.index === 2 && /sample 2 \(\/data\/img2\.png\) failed: cannot decode 2/.test(e.message));
});

test("a sample whose shape the chain cannot take is named, and skip mode drops it", async () => {
  const a = synthetic(3, 6, 5, 3);
  const ds = { length: 4, get: (i) => (i === 1 ? { image: { data: new Uint8Array(4 * 4 * 3), height: 4, width: 4, channels: 3 }, label: 0, index: 1 } : a.get(i === 0 ? 0 : i - 1)) };
  const t = T.compose([T.toTensor()]);
  await assert.rejects(collect(new DataLoader(ds, { batchSize: 4, transform: t })), /sample 1 failed: shape after transforms: expected \[3, 6, 5\]/);
  const kept = await collect(new DataLoader(ds, { batchSize: 4, transform: t, onError: "skip" }));
  assert.deepEqual(Array.from(kept[0].indices), [0, 2, 3]);
});

test("timeout fails a batch that never arrives, with the batch named", async () => {
  const ds = { length: 4, get: () => new Promise(() => {}) };
  await assert.rejects(collect(new DataLoader(ds, { batchSize: 2, timeout: 50 })), (e) => e instanceof bl.TimeoutError && /batch 0 of epoch 0 did not finish within timeout=50 ms/.test(e.message));
});

test("options are checked, naming the option, the value and what was expected", () => {
  const ds = synthetic(4);
  const cases = [
    [{ batchSize: 0 }, /DataLoader\.batchSize: expected an integer >= 1, received 0/],
    [{ batchSize: 2.5 }, /DataLoader\.batchSize: expected an integer >= 1, received 2\.5/],
    [{ prefetch: -1 }, /DataLoader\.prefetch: expected an integer in \[0, 64\], received -1/],
    [{ onError: "ignore" }, /DataLoader\.onError: expected one of "raise", "skip", received "ignore"/],
    [{ seed: -3 }, /DataLoader\.seed: expected an integer in \[0, 9007199254740991\], received -3/],
    [{ transform: (x) => x }, /DataLoader\.transform: expected a transform made by T\.\*/],
    [{ shuffle: true, sampler: new samplers.SequentialSampler(4) }, /DataLoader\.shuffle: expected false when a sampler is given/],
    [{ batchSampler: new samplers.BatchSampler(new samplers.SequentialSampler(4), 2, false), batchSize: 2 }, /DataLoader\.batchSize: expected undefined when batchSampler is given/],
    [{ batchsize: 2 }, /DataLoader\.batchsize: expected no such option/],
    [{ backend: "gpu" }, /DataLoader\.backend: expected one of "auto", "native", "reference"/],
  ];
  for (const [o, re] of cases) assert.throws(() => new DataLoader(ds, o), re, JSON.stringify(o));
  assert.throws(() => new DataLoader({ length: 3 }), /DataLoader\(dataset\): expected a dataset with length and get\(i\)/);
});

test("stats() reports every stage, samples per second and the seed", async () => {
  const loader = new DataLoader(synthetic(32), { batchSize: 8, transform: augment(), seed: 9 });
  await collect(loader);
  const s = loader.stats();
  assert.equal(s.batches, 4);
  assert.equal(s.samples, 32);
  assert.equal(s.seed, 9);
  assert.ok(s.samplesPerSecond > 0);
  for (const k of ["sample", "fetch", "transform", "collate"]) assert.ok(s.stages[k] >= 0, k);
  assert.equal(s.perBatch.length, 4);
  assert.ok(s.perBatch.every((b) => b.end >= b.start));
  // The engine in charge is the one the machine has: native where the addon loads.
  assert.equal(s.backend, require("../dist/engines/addon-cpu").loadNative().ok ? "native" : "reference");
});

test("a custom collate shapes what the loop receives; a sampler and a batchSampler can be given", async () => {
  const ds = synthetic(10);
  const loader = new DataLoader(ds, { batchSize: 4, collate: (b) => ({ n: b.shape[0], first: b.indices[0] }) });
  assert.deepEqual(await collect(loader), [{ n: 4, first: 0 }, { n: 4, first: 4 }, { n: 2, first: 8 }]);
  const sub = new samplers.SubsetRandomSampler([1, 3, 5], { seed: 2 });
  const got = await collect(new DataLoader(ds, { sampler: sub, batchSize: 3 }));
  assert.deepEqual(Array.from(got[0].indices).sort(), [1, 3, 5]);
  const bs = new samplers.BatchSampler(new samplers.SequentialSampler(10), 6, true);
  assert.deepEqual((await collect(new DataLoader(ds, { batchSampler: bs }))).map((b) => b.shape[0]), [6]);
});

test("distributed ranks split an epoch between them and draw different augmentations", async () => {
  const ds = synthetic(20);
  const loaders = [0, 1].map((rank) => new DataLoader(ds, { sampler: new samplers.DistributedSampler(20, { rank, worldSize: 2, seed: 4 }), batchSize: 5, transform: augment(), seed: 4 }));
  const [r0, r1] = await Promise.all(loaders.map((l) => collect(l.iterate({ epoch: 1 }))));
  const i0 = r0.flatMap((b) => Array.from(b.indices));
  const i1 = r1.flatMap((b) => Array.from(b.indices));
  assert.equal(i0.length, 10);
  assert.deepEqual([...i0, ...i1].sort((a, z) => a - z), Array.from({ length: 20 }, (_, i) => i));
});

test("toTensor hands the batch to TensorFlow.js in NCHW or NHWC", async () => {
  const tf = require("@tensorflow/tfjs");
  const [b] = await collect(new DataLoader(synthetic(3), { batchSize: 3, transform: T.toTensor() }));
  const { xs, ys } = b.toTensor(tf);
  assert.deepEqual(xs.shape, [3, 3, 6, 5]);
  assert.deepEqual(Array.from(ys.dataSync()), [0, 1, 2]);
  const nhwc = b.toTensor(tf, { layout: "NHWC" }).xs;
  assert.deepEqual(nhwc.shape, [3, 6, 5, 3]);
  // pixel (y=1, x=2, c=1) of sample 0 is the same value in both layouts
  assert.equal(nhwc.arraySync()[0][1][2][1], xs.arraySync()[0][1][1][2]);
  assert.throws(() => b.toTensor({}), /toTensor\(tf\): expected the TensorFlow\.js module/);
});

/** The same samples without a pixel store: every batch goes through dataset.get(). */
function withoutStore(ds) {
  return { length: ds.length, shape: ds.shape, get: (i) => ds.get(i), labels: () => ds.labels() };
}

test("in-memory data sets are read by offset from their one buffer, with exactly the batches dataset.get() gives", async () => {
  const ds = synthetic(37);
  assert.equal(typeof ds.pixelStore, "function");
  const picks = Int32Array.from({ length: 30 }, (_, k) => (k * 11) % 37);
  const cases = [
    ["ArrayDataset", ds, withoutStore(ds), {}],
    ["subset", datasets.subset(ds, picks), withoutStore(datasets.subset(ds, picks)), {}],
    ["subset of a subset", datasets.subset(datasets.subset(ds, picks), [29, 3, 3, 0]), null, {}],
    ["distributed rank 1", ds, withoutStore(ds), { sampler: new samplers.DistributedSampler(37, { rank: 1, worldSize: 3, seed: 2 }) }],
    ["reference engine", ds, withoutStore(ds), { backend: "reference" }],
  ];
  for (const [name, fast, slow, extra] of cases) {
    const opts = { batchSize: 8, seed: 5, transform: augment(), ...(extra.sampler ? {} : { shuffle: true }), ...extra };
    const a = await collect(new DataLoader(fast, opts).iterate({ epoch: 1 }));
    const b = await collect(new DataLoader(slow ?? { length: fast.length, get: (i) => fast.get(i) }, { ...opts, sampler: extra.sampler }).iterate({ epoch: 1 }));
    assert.equal(a.length, b.length, name);
    a.forEach((x, i) => {
      assert.deepEqual(x.indices, b[i].indices, `${name}: batch ${i} indices`);
      assert.deepEqual(x.labels, b[i].labels, `${name}: batch ${i} labels`);
      assert.deepEqual(x.params, b[i].params, `${name}: batch ${i} params`);
      assert.ok(same(x.images, b[i].images), `${name}: batch ${i} pixels differ between the one-buffer path and dataset.get()`);
    });
  }
  // pixels in a SharedArrayBuffer take the one-buffer path as well
  const shared = new Uint8Array(new SharedArrayBuffer(ds.pixels.length));
  shared.set(ds.pixels);
  const sds = datasets.fromArrays(shared, [37, 6, 5, 3], ds.labels());
  const opts = { batchSize: 8, seed: 5, shuffle: true, transform: augment() };
  const [sa, sb] = [await collect(new DataLoader(sds, opts).iterate({ epoch: 1 })), await collect(new DataLoader(ds, opts).iterate({ epoch: 1 }))];
  sa.forEach((x, i) => assert.ok(same(x.images, sb[i].images), `SharedArrayBuffer batch ${i}`));
  // a subclass with its own get() is read through it, never around it
  class Inverted extends datasets.ArrayDataset {
    get(i) {
      const s = super.get(i);
      return { ...s, image: { ...s.image, data: s.image.data.map((v) => 255 - v) } };
    }
  }
  const inv = new Inverted(ds.pixels, [37, 6, 5, 3], ds.labels());
  assert.equal(inv.pixelStore(), undefined);
  const [first] = await collect(new DataLoader(inv, { batchSize: 1, transform: T.toTensor() }));
  assert.equal(first.images[0], (255 - ds.pixels[0]) / 255);
  // the store's index is a copy: changing it does not change the subset
  const sub = datasets.subset(ds, [5, 6]);
  sub.pixelStore().index[0] = 0;
  assert.equal(sub.pixelStore().index[0], 5);
  // a subset of a subset maps through both index lists to the stored images
  const nested = datasets.subset(datasets.subset(ds, picks), [29, 3]);
  assert.deepEqual(Array.from(nested.pixelStore().index), [picks[29], picks[3]]);
  assert.deepEqual(Array.from(nested.pixelStore().labels), [picks[29] % 4, picks[3] % 4]);
});

test("an index the store does not hold goes through dataset.get(), which names it (or skips it)", async () => {
  const ds = synthetic(10);
  const bad = { length: 10, rank: 0, indices: () => Int32Array.from([0, 1, 12, 3]), setEpoch() {} };
  await assert.rejects(collect(new DataLoader(ds, { sampler: bad, batchSize: 4 })), (e) => e instanceof bl.SampleError && /12/.test(e.message));
  const [only] = await collect(new DataLoader(ds, { sampler: bad, batchSize: 4, onError: "skip" }));
  assert.deepEqual(Array.from(only.indices), [0, 1, 3]);
});

test("dispose() hands the buffer back at once: old views read as empty and later batches reuse the memory", async () => {
  const ds = synthetic(40);
  const loader = new DataLoader(ds, { batchSize: 8, shuffle: true, seed: 9, transform: augment(), prefetch: 1 });
  const kept = await collect(new DataLoader(ds, { batchSize: 8, shuffle: true, seed: 9, transform: augment() }));
  let i = 0;
  for await (const b of loader) {
    const view = b.images;
    assert.ok(same(view, kept[i].images), `batch ${i} before dispose`);
    assert.equal(b.disposed, false);
    b.dispose();
    b.dispose(); // idempotent
    assert.equal(b.disposed, true);
    assert.equal(view.length, 0, "a kept view is detached, so it cannot show a later batch");
    assert.throws(() => b.images, (e) => e.code === "ERR_BATCHLAB_DISPOSED" && /batch \d+ of epoch 0 was disposed/.test(e.message));
    assert.equal(b.labels.length, b.shape[0], "labels and indices stay readable");
    const shown = b[Symbol.for("Jupyter.display")]();
    assert.match(shown["text/plain"], /^Batch \d+ of epoch 0: 8 x 3 x 4 x 4 float32 \(disposed/, "a disposed batch still displays");
    i++;
  }
  assert.equal(i, kept.length);
  assert.equal(typeof kept[0][Symbol.dispose], "function");
  // Plain buffers (the reference engine's) wait in the engine's pool for the next batch of their size.
  const ref = new DataLoader(ds, { batchSize: 8, transform: augment(), backend: "reference" });
  for await (const b of ref) {
    const view = b.images;
    b.dispose();
    assert.equal(view.length, 0);
  }
  assert.ok((ref.engineCache.pool.spare.get(8 * 48 * 4)?.length ?? 0) >= 1, "the disposed buffers wait in the pool");
});

test("a batch handed to TensorFlow.js is never recycled: the tensor keeps its values after dispose()", async () => {
  const tf = require("@tensorflow/tfjs");
  const loader = new DataLoader(synthetic(4), { batchSize: 2, transform: T.toTensor() });
  const [b] = await collect(loader);
  const before = Array.from(b.images);
  const { xs } = b.toTensor(tf);
  b.dispose();
  assert.deepEqual(Array.from(xs.dataSync()), before);
  const pool = loader.engineCache.pool;
  assert.equal(pool.spare.get(2 * 90 * 4)?.length ?? 0, 0, "nothing was given back to the pool");
});

test("stats over 250,000 batches: totals over the whole run, a bounded window of timelines, no spread of long arrays", () => {
  const { StatsRecorder, STATS_WINDOW } = require("../dist/loader/stats");
  const r = new StatsRecorder();
  const N = 250_000;
  for (let i = 0; i < N; i++) {
    r.note({ batch: i, epoch: 0, start: i, end: i + 0.5, size: 2, sample: 0.1, fetch: 0.2, transform: 0.3, collate: 0.4 }, i % 1000 === 0 ? [{ index: i, reason: "bad" }] : []);
  }
  const s = r.summary("native", "test", 1);
  assert.equal(s.batches, N);
  assert.equal(s.samples, 2 * N);
  assert.equal(s.wallMs, N - 1 + 0.5);
  assert.ok(Math.abs(s.stages.fetch - 0.2 * N) < 1e-3 * N);
  assert.equal(s.perBatch.length, STATS_WINDOW, "the timeline is the recent window");
  assert.deepEqual([s.perBatch[0].batch, s.perBatch.at(-1).batch], [N - STATS_WINDOW, N - 1], "oldest first, ending with the last batch");
  assert.equal(s.skippedCount, 250);
  assert.equal(s.skipped.length, 250);
  r.reset();
  assert.deepEqual([r.summary("native", "", 1).batches, r.summary("native", "", 1).perBatch.length], [0, 0]);
});

test("a custom dataset's bad samples are SampleErrors naming the index, the field, the value and what was expected", async () => {
  const { SampleError } = require("../dist/errors");
  const ok = { data: new Uint8Array(8 * 8 * 3), height: 8, width: 8, channels: 3 };
  const cases = [
    ["negative size", { image: { ...ok, height: -8, width: -8 }, label: 0 }, "image.height", -8],
    ["fractional height", { image: { ...ok, height: 2.5 }, label: 0 }, "image.height", 2.5],
    ["height as a string", { image: { ...ok, height: "8" }, label: 0 }, "image.height", "8"],
    ["zero size", { image: { ...ok, height: 0, width: 0 }, label: 0 }, "image.height", 0],
    ["label 2^32 + 3", { image: ok, label: 2 ** 32 + 3 }, "label", 2 ** 32 + 3],
    ["label 2^53", { image: ok, label: 2 ** 53 }, "label", 2 ** 53],
    ["label -1", { image: ok, label: -1 }, "label", -1],
    ["5 channels of 3 bytes", { image: { ...ok, channels: 5 }, label: 0 }, "image.data", undefined],
  ];
  for (const backend of ["reference", "native"]) {
    for (const [what, sample, field, value] of cases) {
      const ds = { length: 4, get: (i) => (i === 2 ? sample : { image: ok, label: 1 }) };
      const loader = new DataLoader(ds, { batchSize: 4, backend });
      await assert.rejects(collect(loader), (e) => {
        assert.ok(e instanceof SampleError, `${backend}, ${what}: a SampleError, got ${e && e.constructor.name}: ${e && e.message}`);
        assert.equal(e.index, 2, what);
        assert.equal(e.cause.option, `dataset.get(2).${field}`, what);
        if (value !== undefined) assert.equal(e.cause.received, value, what);
        assert.match(e.message, /^sample 2 failed: dataset\.get\(2\)\./, what);
        return true;
      });
      // onError "skip" drops it and says why.
      const skipping = new DataLoader(ds, { batchSize: 4, backend, onError: "skip" });
      const batches = await collect(skipping);
      assert.deepEqual(batches.map((b) => Array.from(b.indices)), [[0, 1, 3]], what);
      assert.equal(skipping.stats().skipped[0].index, 2);
    }
  }
  // A transform whose output cannot be one batch: a typed error naming the shape, not ERR_OUT_OF_RANGE.
  const tiny = { length: 2, get: () => ({ image: { data: new Uint8Array(1), height: 1, width: 1, channels: 1 }, label: 0 }) };
  await assert.rejects(collect(new DataLoader(tiny, { batchSize: 2, transform: T.resize([40000, 40000]) })), (e) => e instanceof SampleError && e.cause.option === "shape after transforms" && /at most 2147483648 bytes/.test(e.cause.message));
});

test("a virtual data set of 2^31 samples: the first shuffled batch and a batch deep in the epoch come without building the epoch", { timeout: 120000 }, async () => {
  const n = 2 ** 31;
  const virtual = {
    length: n,
    get: (i) => ({ image: { data: new Uint8Array(12).fill(i & 255), height: 2, width: 2, channels: 3 }, label: i % 10 }),
  };
  const before = process.memoryUsage().arrayBuffers;
  const loader = new DataLoader(virtual, { batchSize: 256, shuffle: true, seed: 21, transform: T.compose([T.toTensor()]) });
  assert.equal(loader.length, n / 256);
  const order = new samplers.RandomSampler(n, { seed: 21 }).order(0);
  const it = loader.iterate({ epoch: 0 })[Symbol.asyncIterator]();
  const first = (await it.next()).value;
  await it.return();
  assert.deepEqual(first.indices, order.fill(0, new Int32Array(256)));
  assert.deepEqual(Array.from(first.labels), Array.from(first.indices, (i) => i % 10));
  // Resume far into the epoch: exactly the batch the full epoch has there.
  const k = n / 256 - 3;
  const deep = loader.iterate({ epoch: 0, startBatch: k })[Symbol.asyncIterator]();
  const b = (await deep.next()).value;
  await deep.return();
  assert.deepEqual(b.indices, order.fill(k * 256, new Int32Array(256)));
  assert.equal(b.images[0], Math.fround((b.indices[0] & 255) / 255));
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 2 ** 20, "no index list of the epoch's size");
});
