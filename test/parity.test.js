"use strict";
// The main correctness test of the native engine: on the same seed it gives the pixels of the
// TypeScript reference, for every transform and for random compositions over random shapes.
const test = require("node:test");
const assert = require("node:assert/strict");
const T = require("../dist/transforms");
const ref = require("../dist/transforms/reference");
const { RandomStream } = require("../dist/sampling/rng");
const { loadNative } = require("../dist/engines/addon-cpu");
const { encodeJob, pixelsOfStore } = require("../dist/engines");

const native = loadNative();
const skip = native.ok ? false : `native engine not built: ${native.reason}`;
if (skip) console.log(`# parity tests skipped: ${skip}`);

function randomImage(rng, h, w, c) {
  const data = new Uint8Array(h * w * c);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { data, height: h, width: w, channels: c };
}

/** A random chain: geometry, then colour steps valid for c channels. */
function randomChain(rng, c, h, w) {
  const steps = [];
  let resamples = 0;
  // One chain has one fill value; a centre crop larger than the image fills with 0, so it
  // stays within the image when the chain's fill is not 0.
  const fill = rng.random() < 0.3 ? 1 + rng.int(255) : 0;
  const pick = (arr) => arr[rng.int(arr.length)];
  const nGeo = rng.int(4);
  let H = h;
  let W = w;
  for (let k = 0; k < nGeo; k++) {
    const kind = pick(["crop", "flipx", "flipy", "center", "resize", "rrc", "blur"]);
    if (kind === "crop") {
      const pad = rng.int(Math.max(H, W) + 3); // padding larger than the image too
      const mode = pick(["constant", "edge", "reflect", "symmetric"]);
      const size = [1 + rng.int(H + 2 * pad), 1 + rng.int(W + 2 * pad)];
      steps.push(T.randomCrop(size, { padding: pad, paddingMode: mode, fill }));
      [H, W] = size;
    } else if (kind === "flipx") steps.push(T.randomHorizontalFlip(rng.random()));
    else if (kind === "flipy") steps.push(T.randomVerticalFlip(rng.random()));
    else if (kind === "center") {
      const size = fill ? [1 + rng.int(H), 1 + rng.int(W)] : [1 + rng.int(H + 2), 1 + rng.int(W + 2)];
      steps.push(T.centerCrop(size));
      [H, W] = size;
    } else if (kind === "resize") {
      const size = [1 + rng.int(2 * H), 1 + rng.int(2 * W)];
      steps.push(T.resize(size, { interpolation: rng.random() < 0.8 ? "bilinear" : "nearest" }));
      resamples++;
      [H, W] = size;
    } else if (kind === "blur") {
      steps.push(T.gaussianBlur([1 + 2 * rng.int(4), 1 + 2 * rng.int(4)], { sigma: [0.2, 2] }));
      resamples++;
    } else {
      const size = [1 + rng.int(2 * H), 1 + rng.int(2 * W)];
      steps.push(T.randomResizedCrop(size));
      resamples++;
      [H, W] = size;
    }
  }
  const gray = c === 1 || c === 3;
  let C = c;
  const colour = [];
  if (gray && rng.random() < 0.4) colour.push(T.colorJitter({ brightness: rng.random(), contrast: rng.random(), saturation: rng.random() }));
  if (gray && rng.random() < 0.3) colour.push(T.randomGrayscale(rng.random()));
  if (gray && rng.random() < 0.2) {
    const k = rng.random() < 0.5 ? 1 : 3;
    colour.push(T.grayscale(k));
    C = k;
  }
  if (rng.random() < 0.7) colour.push(T.toTensor());
  if (rng.random() < 0.6) colour.push(T.normalize(Array.from({ length: C }, () => rng.random()), Array.from({ length: C }, () => 0.1 + rng.random())));
  if (gray && C !== 2 && rng.random() < 0.3) colour.push(T.randomApply([T.colorJitter({ brightness: 0.5 })], rng.random()));
  if (rng.random() < 0.5) colour.push(T.randomErasing({ p: rng.random(), value: rng.random() }));
  // Two resampling steps fold into one tap table, which rounds differently from running them one
  // after the other: within 1e-6 relative per resampling step.
  return { chain: T.compose([...steps, ...colour]), exact: resamples <= 1 && !(fill && resamples) ? true : 1e-6 * Math.max(1, resamples) };
}

/** exact: true for bit equality, else the relative tolerance. */
async function compare(chain, images, seed, exact, label) {
  const plan = new T.Plan(chain);
  const params = images.map((im, i) => plan.draw(im, { seed, epoch: 0, position: i }));
  const job = encodeJob(plan, images, params);
  const per = job.outC * job.outH * job.outW;
  const expected = new Float32Array(images.length * per);
  images.forEach((im, i) => ref.writeCHW(chain.reference(ref.fromImage(im), params[i], { bound: 255 }), expected, i * per));
  const out = new Float32Array(expected.length).fill(NaN);
  await native.addon.runPlan({ ...job, out, numThreads: 2 });
  const uniform = images.every((im) => im.height === images[0].height && im.width === images[0].width && im.channels === images[0].channels);
  if (uniform) {
    // The same batch as an in-memory data set hands it over: one buffer, samples in reverse
    // order after a 3-byte gap, read by offset. Same taps and parameters, so the same bits.
    const shape = { height: images[0].height, width: images[0].width, channels: images[0].channels };
    const size = shape.height * shape.width * shape.channels;
    const pixels = new Uint8Array(3 + size * images.length);
    const offsets = new Float64Array(images.length);
    images.forEach((im, i) => {
      offsets[i] = 3 + (images.length - 1 - i) * size;
      pixels.set(im.data.subarray(0, size), offsets[i]);
    });
    const stored = encodeJob(plan, pixelsOfStore({ pixels, offsets, shape }), params);
    assert.equal(stored.sources, pixels);
    const out2 = new Float32Array(expected.length).fill(NaN);
    await native.addon.runPlan({ ...stored, out: out2, numThreads: 2 });
    assert.ok(Buffer.from(out2.buffer).equals(Buffer.from(out.buffer)), `${label}: one-buffer sources differ from views\n${chain}`);
  }
  for (let i = 0; i < out.length; i++) {
    const a = out[i];
    const b = expected[i];
    if (exact === true) {
      if (!Object.is(a, b)) assert.fail(`${label}: element ${i} native ${a} != reference ${b}\n${chain}`);
    } else if (!(Math.abs(a - b) <= exact * Math.max(1, Math.abs(b)))) {
      assert.fail(`${label}: element ${i} native ${a} vs reference ${b} beyond ${exact}\n${chain}`);
    }
  }
}

test("every transform alone: native equals the reference bit for bit", { skip }, async () => {
  const rng = new RandomStream(1, 0, 0);
  const img3 = Array.from({ length: 5 }, () => randomImage(rng, 13, 11, 3));
  const all = [
    T.toTensor(),
    T.normalize([0.4, 0.5, 0.6], [0.2, 0.3, 0.4]),
    T.randomHorizontalFlip(),
    T.randomVerticalFlip(),
    T.randomCrop(9, { padding: 3 }),
    T.randomCrop([20, 30], { padding: 12, paddingMode: "reflect" }),
    T.randomCrop(12, { padding: [1, 2, 3, 4], paddingMode: "edge" }),
    T.randomCrop(12, { padding: 5, paddingMode: "symmetric" }),
    T.randomCrop(12, { padding: 2, fill: [10, 20, 30] }),
    T.centerCrop(7),
    T.pad([1, 2, 3, 4], { fill: [5, 6, 7] }),
    T.pad(4, { mode: "reflect" }),
    T.resize([5, 4], { interpolation: "bicubic" }),
    T.resize([29, 6], { interpolation: "bicubic", antialias: false }),
    T.resize(9, { interpolation: "nearest-exact" }),
    T.centerCrop([15, 17]),
    T.resize([7, 19]),
    T.resize(5, { interpolation: "nearest" }),
    T.randomResizedCrop(8),
    T.colorJitter({ brightness: 0.8, contrast: 0.8, saturation: 0.8 }),
    T.grayscale(),
    T.grayscale(3),
    T.randomGrayscale(0.5),
    T.randomErasing({ p: 1, value: [1, 2, 3] }),
    T.randomApply([T.randomVerticalFlip(1), T.colorJitter({ contrast: 0.5 })], 0.5),
    T.gaussianBlur([5, 3]),
    T.gaussianBlur(13, { sigma: 3 }), // wider than the image: reflect folds more than once
  ];
  for (const t of all) await compare(T.compose([t]), img3, 7, true, t.toString());
});

test("random compositions over random shapes (1 to 4 channels, odd sizes, batch of 1)", { skip }, async () => {
  const rng = new RandomStream(2024, 0, 0);
  const trials = Number(process.env.BATCHLAB_PARITY_TRIALS || 150);
  for (let trial = 0; trial < trials; trial++) {
    const c = 1 + rng.int(4);
    const h = 1 + rng.int(23);
    const w = 1 + rng.int(23);
    const n = trial % 10 === 0 ? 1 : 1 + rng.int(9);
    const { chain, exact } = randomChain(rng, c, h, w);
    const images = Array.from({ length: n }, () => randomImage(rng, h, w, c));
    await compare(chain, images, trial, exact, `trial ${trial} (${n} x ${h}x${w}x${c})`);
  }
});

test("images of different sizes in one batch, as an image folder gives them", { skip }, async () => {
  const rng = new RandomStream(5, 0, 0);
  const images = [randomImage(rng, 40, 30, 3), randomImage(rng, 17, 50, 3), randomImage(rng, 33, 33, 3)];
  await compare(T.compose([T.randomResizedCrop(16), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.5], [0.5])]), images, 3, true, "mixed sizes");
  await compare(T.compose([T.resize(20), T.centerCrop(18), T.colorJitter({ brightness: 0.3, contrast: 0.3, saturation: 0.3 }), T.toTensor()]), images, 4, true, "resize + centerCrop");
});

test("wide rows read in order or reversed: crops, pads and flips before toTensor/normalize, 1 and 3 channels", { skip }, async () => {
  const rng = new RandomStream(77, 0, 0);
  for (const [h, w] of [[5, 16], [3, 17], [32, 32], [28, 28], [9, 47], [4, 100]]) {
    for (const c of [1, 3]) {
      const images = Array.from({ length: 6 }, () => randomImage(rng, h, w, c));
      const mean = Array.from({ length: c }, () => rng.random());
      const std = Array.from({ length: c }, () => 0.1 + rng.random());
      const chains = [
        [T.randomCrop([h, w], { padding: 4 }), T.randomHorizontalFlip(), T.toTensor(), T.normalize(mean, std)],
        [T.randomHorizontalFlip(1), T.toTensor()],
        [T.randomCrop([h, Math.max(16, w - 1)], { padding: [3, 0], fill: 7 }), T.randomHorizontalFlip(0.5), T.normalize(mean, std)],
        [T.centerCrop([h + 2, w + 6]), T.toTensor(), T.normalize(mean, std), T.randomErasing({ p: 1 })],
        [T.randomCrop([h, w], { padding: 2, paddingMode: "reflect" }), T.toTensor()], // reflected edges: not one run
        [T.randomHorizontalFlip(), T.colorJitter({ brightness: 0.5 }), T.toTensor()], // brightness folded: table only
      ];
      for (const [k, steps] of chains.entries()) await compare(T.compose(steps), images, 100 + k, true, `${h}x${w}x${c} chain ${k}`);
    }
  }
});

test("geometry after colour steps: the fused plan matches the step-by-step reference bit for bit", { skip }, async () => {
  const rng = new RandomStream(9, 0, 0);
  const img3 = Array.from({ length: 6 }, () => randomImage(rng, 30, 27, 3));
  const img1 = Array.from({ length: 4 }, () => randomImage(rng, 11, 14, 1));
  const chains = [
    // The chain common in PyTorch code: pad-and-crop after toTensor and normalize.
    [T.compose([T.toTensor(), T.normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26]), T.randomCrop(32, { padding: 4 }), T.randomHorizontalFlip()]), img3],
    [T.compose([T.randomCrop(28, { padding: 2, fill: 9 }), T.toTensor(), T.pad([1, 2, 3, 4], { fill: [0.5, 0.25, 1] }), T.normalize([0.5], [0.2]), T.randomCrop([30, 33], { padding: 3, fill: -1 }), T.randomVerticalFlip(), T.centerCrop(40)]), img3],
    [T.compose([T.grayscale(), T.toTensor(), T.randomCrop(12, { padding: 5, paddingMode: "reflect" }), T.randomApply([T.randomCrop(12, { padding: 2, fill: 0.75 })], 0.5), T.randomCrop(13, { padding: 1 })]), img1],
    [T.compose([T.toTensor(), T.randomHorizontalFlip(), T.centerCrop([17, 9]), T.normalize([0.1], [0.3])]), img1],
  ];
  for (const [chain, images] of chains) {
    const plan = new T.Plan(chain);
    assert.deepEqual(plan.unfused, [], `${chain} is fused`);
    await compare(chain, images, 3, true, "geometry after colour");
  }
  // Orders the fused plan cannot run exactly go step by step, and still run.
  for (const chain of [
    T.compose([T.toTensor(), T.resize([9, 8])]),
    T.compose([T.colorJitter({ contrast: 0.5 }), T.randomCrop(20, { padding: 2 })]),
    T.compose([T.toTensor(), T.pad(2), T.randomCrop(20, { padding: 3, paddingMode: "reflect" })]),
  ]) {
    const plan = new T.Plan(chain);
    assert.ok(plan.unfused.length > 0, `${chain} runs step by step`);
  }
});

test("steps without a fused op (the photometric ones but blur) run step by step: the same batch on every CPU engine", { skip }, async () => {
  const bl = require("../dist");
  const rng = new RandomStream(4, 0, 0);
  for (const [c, chain] of [
    [3, T.compose([T.randomCrop(14, { padding: 2 }), T.randomInvert(), T.randomPosterize(4), T.randomSolarize(100), T.randomAutocontrast(), T.randomEqualize(), T.randomAdjustSharpness(2), T.randomChannelPermutation(), T.toTensor()])],
    [1, T.compose([T.toTensor(), T.randomEqualize({ p: 1 }), T.gaussianBlur(3), T.randomSolarize(0.4, { p: 1 })])],
  ]) {
    const plan = new T.Plan(chain);
    assert.ok(plan.unfused.length > 0, `${chain} has steps the plan runs step by step`);
    const n = 9;
    const pixels = new Uint8Array(n * 16 * 15 * c);
    for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
    const ds = bl.datasets.fromArrays(pixels, [n, 16, 15, c], new Int32Array(n));
    const run = async (backend) => {
      const out = [];
      for await (const b of new bl.DataLoader(ds, { batchSize: 4, shuffle: true, seed: 5, transform: chain, backend })) out.push(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
      return Buffer.concat(out);
    };
    const [a, b] = [await run("native"), await run("reference")];
    assert.ok(a.equals(b), `${chain}: native and reference batches differ`);
    // And what the loader gives is each sample's reference, on the drawn parameters.
    const first = (await new bl.DataLoader(ds, { batchSize: n, transform: chain, seed: 5 }).iterate().next()).value;
    const im = ds.get(first.indices[2]).image;
    const expected = chain.reference(ref.fromImage(im), first.params[2], { bound: 255 });
    const per = first.images.length / n;
    const chw = new Float32Array(per);
    ref.writeCHW(expected, chw, 0);
    assert.deepEqual(first.images.subarray(2 * per, 3 * per), chw);
  }
});
