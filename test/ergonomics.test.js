"use strict";
// Quick looks a PyTorch user reaches for: loader.first() (typed Batch), loader.take(n),
// dataset.take(n), showBatch of a loader, a data set or samples, plotSampler with one options
// object (the older positional form kept), and their errors.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const bl = require("../dist");
const { OptionError } = require("../dist/errors");

const { datasets, DataLoader, viz, samplers } = bl;
const DISPLAY = Symbol.for("Jupyter.display");
const ROOT = path.resolve(__dirname, "..");

function synthetic(n, h = 4, w = 3, c = 3) {
  const pixels = new Uint8Array(n * h * w * c);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 251;
  return datasets.fromArrays(pixels, [n, h, w, c], Int32Array.from({ length: n }, (_, i) => i % 3), { classNames: ["a", "b", "c"] });
}

test("loader.first() is batch 0 of epoch 0 (or the one asked for) and leaves the loader's epoch alone", async () => {
  const loader = new DataLoader(synthetic(20), { batchSize: 6, shuffle: true, seed: 4 });
  const b = await loader.first();
  assert.deepEqual(b.shape, [6, 3, 4, 3]);
  assert.equal(b.epoch, 0);
  assert.equal(b.batchIndex, 0);
  assert.equal(loader.epoch, 0, "no epoch consumed");
  const again = await loader.first();
  assert.deepEqual(again.indices, b.indices, "the same batch again");
  const third = await loader.first({ epoch: 2, batch: 3 });
  assert.deepEqual([third.epoch, third.batchIndex, third.shape[0]], [2, 3, 2]);
  // the same batch as a for-await pass over epoch 2 gives
  const pass = [];
  for await (const x of loader.iterate({ epoch: 2 })) pass.push(x);
  assert.deepEqual(third.indices, pass[3].indices);
});

test("loader.first() and take(n) refuse bad arguments, naming the option, the value and what was expected", async () => {
  const loader = new DataLoader(synthetic(10), { batchSize: 4 });
  await assert.rejects(loader.first({ batch: 3 }), (e) => e instanceof OptionError && e.message === "first.batch: expected a batch index below 3 (the batches of one epoch), received 3");
  await assert.rejects(loader.first({ epoch: -1 }), /first\.epoch: expected an integer >= 0, received -1/);
  await assert.rejects(loader.first({ batches: 1 }), /first/);
  await assert.rejects(loader.take(1.5), /take\(n\): expected an integer >= 0, received 1\.5/);
});

test("loader.take(n): the first n batches as an array, fewer at the end of the epoch; the epoch is not advanced", async () => {
  const loader = new DataLoader(synthetic(10), { batchSize: 4 });
  const two = await loader.take(2);
  assert.deepEqual(two.map((b) => [b.batchIndex, b.shape[0]]), [[0, 4], [1, 4]]);
  assert.notEqual(two[0].images.buffer, two[1].images.buffer, "both batches stay valid");
  const all = await loader.take(99, { epoch: 1, startBatch: 1 });
  assert.deepEqual(all.map((b) => [b.epoch, b.batchIndex, b.shape[0]]), [[1, 1, 4], [1, 2, 2]]);
  assert.deepEqual(await loader.take(0), []);
  assert.equal(loader.epoch, 0);
});

test("dataset.take(n): in-memory data sets answer at once, image folders with a promise", async () => {
  const ds = synthetic(5);
  const s = ds.take(3);
  assert.deepEqual(s.map((x) => x.index), [0, 1, 2]);
  assert.deepEqual(ds.take(9, 3).map((x) => x.index), [3, 4]);
  assert.throws(() => ds.take(-1), /take\(n\): expected an integer >= 0, received -1/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-take-"));
  try {
    const sharp = require("sharp");
    for (const cls of ["cat", "dog"]) {
      fs.mkdirSync(path.join(dir, cls));
      for (let i = 0; i < 2; i++) {
        await sharp({ create: { width: 6, height: 5, channels: 3, background: { r: 40 * i, g: 90, b: 200 } } }).png().toFile(path.join(dir, cls, `${i}.png`));
      }
    }
    const folder = await datasets.imageFolder(dir);
    const taken = await folder.take(3, 1);
    assert.deepEqual(taken.map((x) => [x.index, x.label, x.image.width, x.image.height]), [[1, 0, 6, 5], [2, 1, 6, 5], [3, 1, 6, 5]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("showBatch(loader) shows the loader's first batch: a notebook shows the view, await gives the bundle", async () => {
  const loader = new DataLoader(synthetic(12), { batchSize: 5 });
  const view = viz.showBatch(loader);
  const rich = await view[DISPLAY]();
  const bundle = await view;
  const direct = viz.showBatch(await loader.first());
  assert.equal(bundle.data["image/png"], direct.data["image/png"]);
  assert.deepEqual(rich, { data: direct.data, metadata: direct.metadata });
  assert.match(bundle.data["text/plain"], /5 x 3 x 4 x 3/);
  // the kernel's display bridge accepts it as a value (a display method returning a promise)
  const display = require("../dist-kernel/display.js");
  const payload = await display.payloadFor(viz.showBatch(loader, { nrow: 2 }), true);
  assert.ok(payload.data["image/png"] && payload.metadata["image/png"].width > 0);
});

test("showBatch of a data set (its first samples, limit 16) or of samples (dataset.take(n)) draws them as ToTensor would", async () => {
  const ds = synthetic(20);
  const fromDs = await viz.showBatch(ds, { limit: 4 });
  const fromSamples = viz.showBatch(ds.take(4), { classNames: ds.classNames });
  const viaLoader = await viz.showBatch(new DataLoader(ds, { batchSize: 4, transform: bl.T.toTensor() }));
  assert.equal(fromSamples.data["image/png"], viaLoader.data["image/png"]);
  assert.equal(fromDs.data["image/png"], fromSamples.data["image/png"], "a data set's class names are used");
  assert.notEqual(viz.showBatch(ds.take(4)).data["image/png"], fromSamples.data["image/png"], "samples alone carry no class names");
  assert.match((await viz.showBatch(ds)).data["text/plain"], /16 x 3 x 4 x 3/);
  const odd = datasets.fromArrays(new Uint8Array(2 * 2 * 2 * 3), [2, 2, 2, 3], [0, 1]);
  assert.throws(() => viz.showBatch([ds.get(0), odd.get(0)]), (e) => e instanceof OptionError && /showBatch\(samples\)\[1\]\.image: expected 4x3x3 like sample 0/.test(e.message));
  assert.throws(() => viz.showBatch([]), /showBatch\(samples\): expected at least one sample/);
});

test("plotSampler(sampler, { labels, epochs, batchSize }) is the positional form's figure; mixing the two forms is refused", () => {
  const labels = Int32Array.from({ length: 30 }, (_, i) => i % 3);
  const s = new samplers.RandomSampler(30, { seed: 1 });
  const strip = (b) => JSON.stringify(b.data["application/vnd.plotly.v1+json"]);
  const one = viz.plotSampler(s, { labels, epochs: 2, batchSize: 5 });
  const old = viz.plotSampler(s, labels, { epochs: 2, batchSize: 5 });
  assert.equal(strip(one), strip(old));
  assert.equal(one.data["text/plain"], old.data["text/plain"]);
  // a loader needs no labels (its dataset's); options alone
  const loader = new DataLoader(synthetic(30), { batchSize: 5, shuffle: true });
  assert.match(viz.plotSampler(loader, { epochs: 2 }).data["text/plain"], /2 epochs of 30 indices/);
  assert.throws(() => viz.plotSampler(s, labels, { labels }), /plotSampler\(options\)\.labels: expected undefined when the labels are the second argument/);
  assert.throws(() => viz.plotSampler(s, { labels }, { epochs: 2 }), /plotSampler\(sampler, options, \.\.\.\): expected nothing after the options object/);
  assert.throws(() => viz.plotSampler(s, { labels, epoch: 2 }), /plotSampler/);
});

test("types: await loader.first() is a Batch, so showBatch(await loader.first()) and plotSampler(loader, { epochs }) compile without casts", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-types-"));
  try {
    const file = path.join(dir, "check.ts");
    fs.writeFileSync(
      file,
      `import { DataLoader, datasets, showBatch, plotSampler, type Batch } from ${JSON.stringify(path.join(ROOT, "dist", "index"))};\n` +
        `export async function f(): Promise<void> {\n` +
        `  const ds = datasets.fromArrays(new Uint8Array(48), [4, 2, 2, 3], [0, 1, 0, 1]);\n` +
        `  const loader = new DataLoader(ds, { batchSize: 2 });\n` +
        `  const b: Batch = await loader.first();\n` +
        `  const bs: Batch[] = await loader.take(2);\n` +
        `  showBatch(b); showBatch(await loader.first()); showBatch(loader); showBatch(ds.take(2)); showBatch(ds);\n` +
        `  const bundle = await showBatch(loader); bundle.data["text/plain"].length;\n` +
        `  plotSampler(loader, { epochs: 2 }); plotSampler(loader, undefined, { epochs: 2 }); plotSampler(loader.batchSampler, { labels: ds, batchSize: 2 });\n` +
        `  void bs;\n` +
        `}\n` +
        // and what must not compile: a typo in an option
        `// @ts-expect-error epoch is not an option\nplotSampler(new DataLoader(datasets.fromArrays(new Uint8Array(12), [1, 2, 2, 3], [0])), { epoch: 2 });\n`,
    );
    execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "commonjs", "--moduleResolution", "node", "--skipLibCheck", file], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    assert.fail(`tsc: ${e.stdout || e.message}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
