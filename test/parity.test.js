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
  if (gray && rng.random() < 0.4) colour.push(T.colorJitter({ brightness: rng.random(), contrast: rng.random(), saturation: rng.random(), hue: resamples <= 1 && !(fill && resamples) && rng.random() < 0.5 ? rng.random() / 2 : 0 } /* hue amplifies the rounding of two folded resamplings */));
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
  if (rng.random() < 0.25) colour.push(T.gaussianNoise({ mean: rng.random() - 0.5, sigma: rng.random() * 30, clip: rng.random() < 0.5 }));
  // Two resampling steps fold into one tap table, which rounds differently from running them one
  // after the other: within 1e-6 relative per resampling step.
  return { chain: T.compose([...steps, ...colour]), exact: resamples <= 1 && !(fill && resamples) ? true : 1e-6 * Math.max(1, resamples) };
}

const cudaStatus = require("../dist/device/index.js").status();
/** The CUDA addon's emulatePlan where the addon loads (it needs no device), else null. */
const cudaEmulation = cudaStatus.addonLoaded ? (job) => require("../dist/device/index.js").emulatePlan(job) : null;

/** Whether a job fits the CUDA kernel's limits (plan_check's CUDA Limits). */
function withinCudaLimits(job) {
  const codes = Array.from(job.program);
  const sharp = codes.indexOf(9);
  return job.inC <= 4 && job.outC <= 4 && codes.length <= 32 && codes.filter((c) => c === 7 || c === 8).length <= 4 &&
    codes.filter((c) => c === 9).length <= 1 && (sharp < 0 || !codes.slice(sharp + 1).some((c) => c === 2 || c === 7 || c === 8));
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
  // The CUDA kernel's CPU emulation runs the same job: the same bits as the C++ engine, within
  // the kernel's own limits (at most 4 channels, 4 AUTOCONTRAST/EQUALIZE ops, 1 SHARPNESS).
  if (cudaEmulation && withinCudaLimits(job)) {
    const emu = cudaEmulation(job);
    assert.ok(Buffer.from(emu.buffer, emu.byteOffset, emu.byteLength).equals(Buffer.from(out.buffer)), `${label}: the CUDA emulation differs from the C++ engine\n${chain}`);
  }
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
    T.colorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.5 }),
    T.colorJitter({ hue: [-0.1, 0.3] }),
    T.grayscale(),
    T.grayscale(3),
    T.randomGrayscale(0.5),
    T.randomErasing({ p: 1, value: [1, 2, 3] }),
    T.randomApply([T.randomVerticalFlip(1), T.colorJitter({ contrast: 0.5 })], 0.5),
    T.gaussianBlur([5, 3]),
    T.randomInvert(),
    T.randomSolarize(100.5, { p: 0.7 }),
    T.randomPosterize(3, { p: 0.8 }),
    T.randomAutocontrast({ p: 0.7 }),
    T.randomEqualize({ p: 0.7 }),
    T.randomAdjustSharpness(2.5, { p: 0.8 }),
    T.randomChannelPermutation(),
    T.randomPhotometricDistort({ p: 0.7 }),
    T.compose([T.toTensor(), T.randomPhotometricDistort({ p: 1 })]),
    T.gaussianNoise({ mean: 3, sigma: 20 }),
    T.compose([T.toTensor(), T.gaussianNoise({ sigma: 0.3, clip: false }), T.randomEqualize({ p: 1 }), T.gaussianNoise({ mean: -0.1, sigma: 0.05 })]),
    T.compose([T.toTensor(), T.randomAdjustSharpness(0.2, { p: 1 }), T.randomEqualize({ p: 1 }), T.randomAdjustSharpness(3, { p: 0.5 })]),
    T.compose([T.randomCrop(12, { padding: 3 }), T.colorJitter({ contrast: 0.5 }), T.randomEqualize({ p: 0.9 }), T.toTensor(), T.randomAutocontrast({ p: 0.9 }), T.colorJitter({ contrast: 0.5, hue: 0.2 })]),
    T.compose([T.toTensor(), T.randomSolarize(0.4), T.randomPosterize(5, { p: 1 }), T.randomInvert({ p: 0.4 })]),
    T.randomChoice([T.randomHorizontalFlip(1), T.randomInvert({ p: 1 }), T.randomSolarize(100, { p: 1 }), T.colorJitter({ hue: 0.3 })], { p: [2, 1, 1, 1] }),
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

test("steps without a fused op (a policy that picks several ops per sample) run step by step: the same batch on every CPU engine", { skip }, async () => {
  const bl = require("../dist");
  const rng = new RandomStream(4, 0, 0);
  for (const [c, chain] of [
    [3, T.compose([T.randomCrop(14, { padding: 2 }), T.randomInvert(), T.randomOrder([T.randomEqualize(), T.colorJitter({ contrast: 0.5 }), T.randomRotation(10)]), T.toTensor(), T.gaussianNoise({ sigma: 0.05 }), T.randomSolarize(0.5)])],
    [1, T.compose([T.toTensor(), T.randomEqualize({ p: 1 }), T.augMix({ mixtureWidth: 2 }), T.gaussianBlur(3), T.randomSolarize(0.4, { p: 1 })])],
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

// ---------------------------------------------------------------------------------------------
// The warp pass. A chain with a warp folds the projective steps around it into one matrix per
// sample (native/PLAN_ABI.md, "Warp pass"), so its pixels are defined by the plan, not by the
// step-by-step reference: the plan's TypeScript executor, the C++ engine and the CUDA kernel's
// CPU emulation must agree bit for bit on the same drawn parameters.

const { executePlan } = require("../dist/engines");
const cudaLoad = require("../dist/engines/addon-cuda").load();
const emulate = cudaLoad.addon ? (job) => cudaLoad.addon.emulatePlan(job) : undefined;
if (!emulate) console.log(`# CUDA emulation comparisons skipped: ${cudaLoad.reason}`);

const sameBits = (a, b) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Runs one warp chain on the three executors of the plan; returns the job and the output. */
async function compareWarp(chain, images, seed, label) {
  const plan = new T.Plan(chain);
  assert.deepEqual(plan.unfused, [], `${label}: fused\n${chain}`);
  const params = images.map((im, i) => plan.draw(im, { seed, epoch: 0, position: i }));
  const job = encodeJob(plan, images, params);
  assert.ok([1, 2, 3].includes(job.warp), `${label}: the job has a warp pass`);
  const expected = new Float32Array(job.n * job.outC * job.outH * job.outW).fill(NaN);
  executePlan(job, expected);
  const out = new Float32Array(expected.length).fill(NaN);
  await native.addon.runPlan({ ...job, out, numThreads: 2 });
  for (let i = 0; i < out.length; i++) {
    if (!Object.is(out[i], expected[i])) assert.fail(`${label}: element ${i} native ${out[i]} != plan reference ${expected[i]}\n${chain}`);
  }
  if (emulate) assert.ok(sameBits(emulate(job), expected), `${label}: CUDA emulation differs from the plan reference\n${chain}`);
  return { job, plan, params, out: expected };
}

/** A random chain with one warp: folding geometry before and after, taps after, colour steps. */
function randomWarpChain(rng, c, h, w) {
  const pick = (arr) => arr[rng.int(arr.length)];
  const fill = rng.random() < 0.5 ? 0 : rng.random() < 0.5 ? 1 + rng.int(255) : Array.from({ length: c }, () => rng.int(256));
  const interpolation = pick(["nearest", "bilinear", "bicubic"]);
  const steps = [];
  let H = h;
  let W = w;
  const colourFirst = rng.random() < 0.25; // toTensor (and normalize) before the warp: the fill maps back
  if (colourFirst) {
    steps.push(T.toTensor());
    if (rng.random() < 0.5) steps.push(T.normalize(Array.from({ length: c }, () => rng.random()), Array.from({ length: c }, () => 0.1 + rng.random())));
  }
  // Colour steps that are not affine before the warp run before it (the job's warpOps): after
  // the geometry before the warp (a pre pass), or before all of it (which then folds).
  const program = !colourFirst && rng.random() < 0.35 ? pick(["before", "after"]) : null;
  const gray = c === 1 || c === 3;
  const programSteps = () => {
    for (let k = 1 + rng.int(2); k > 0; k--) {
      const kind = pick(gray ? ["invert", "posterize", "solarize", "equalize", "autocontrast", "noise", "sharpness", "jitter"] : ["invert", "posterize", "solarize", "equalize", "autocontrast", "noise", "sharpness"]);
      if (kind === "invert") steps.push(T.randomInvert({ p: rng.random() }));
      else if (kind === "posterize") steps.push(T.randomPosterize(1 + rng.int(7), { p: rng.random() }));
      else if (kind === "solarize") steps.push(T.randomSolarize(rng.int(256), { p: rng.random() }));
      else if (kind === "equalize") steps.push(T.randomEqualize({ p: rng.random() }));
      else if (kind === "autocontrast") steps.push(T.randomAutocontrast({ p: rng.random() }));
      else if (kind === "noise") steps.push(T.gaussianNoise({ sigma: 10 * rng.random(), clip: rng.random() < 0.5 }));
      else if (kind === "sharpness") steps.push(T.randomAdjustSharpness(2 * rng.random(), { p: rng.random() }));
      else steps.push(T.colorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.2 }));
    }
  };
  if (program === "before") programSteps();
  for (let k = rng.int(3); k > 0; k--) {
    const kind = pick(
      colourFirst ? ["flipx", "flipy", "center", "resizeaa"] : program === "before" ? ["flipx", "flipy", "crop", "pad", "center", "resize", "rrc"] : ["flipx", "flipy", "crop", "pad", "center", "resize", "rrc", "resizeaa", "mirror"],
    );
    if (kind === "flipx") steps.push(T.randomHorizontalFlip(rng.random()));
    else if (kind === "flipy") steps.push(T.randomVerticalFlip(rng.random()));
    else if (kind === "crop") {
      const pad = rng.int(5);
      const size = [1 + rng.int(H + 2 * pad), 1 + rng.int(W + 2 * pad)];
      steps.push(T.randomCrop(size, { padding: pad, fill }));
      [H, W] = size;
    } else if (kind === "pad") {
      const p = [rng.int(4), rng.int(4), rng.int(4), rng.int(4)];
      steps.push(T.pad(p, { fill }));
      H += p[1] + p[3];
      W += p[0] + p[2];
    } else if (kind === "center") {
      const size = [1 + rng.int(H), 1 + rng.int(W)]; // within the image: no padding
      steps.push(T.centerCrop(size));
      [H, W] = size;
    } else if (kind === "resize") {
      const size = [1 + rng.int(2 * H), 1 + rng.int(2 * W)];
      steps.push(T.resize(size, { antialias: false, interpolation: rng.random() < 0.8 ? "bilinear" : "nearest-exact" }));
      [H, W] = size;
    } else if (kind === "rrc") {
      const size = [1 + rng.int(2 * H), 1 + rng.int(2 * W)];
      steps.push(T.randomResizedCrop(size, { antialias: program !== "before" && rng.random() < 0.5 })); // antialiased: does not fold
      [H, W] = size;
    } else if (kind === "resizeaa") {
      // Does not fold: the steps before the warp become a separable pass of their own.
      const size = [1 + rng.int(2 * H), 1 + rng.int(2 * W)];
      steps.push(T.resize(size, { interpolation: pick(["bilinear", "bicubic", "nearest"]) }));
      [H, W] = size;
    } else {
      const p = [rng.int(4), rng.int(4)];
      steps.push(T.pad(p, { mode: pick(["edge", "reflect", "symmetric"]) }));
      H += 2 * p[1];
      W += 2 * p[0];
    }
  }
  if (program === "after") programSteps();
  const warp = pick(["rotation", "affine", "perspective"]);
  if (warp === "rotation") steps.push(T.randomRotation(rng.random() < 0.2 ? [90, 90] : 180 * rng.random(), { interpolation, fill: colourFirst ? rng.random() : fill, ...(rng.random() < 0.3 ? { center: [rng.int(W), rng.int(H)] } : {}) }));
  else if (warp === "affine") steps.push(T.randomAffine({ degrees: 45 * rng.random(), translate: [0.3 * rng.random(), 0.3 * rng.random()], scale: [0.5, 1.5], shear: [-20, 20, -10, 10], interpolation, fill: colourFirst ? rng.random() : fill }));
  else steps.push(T.randomPerspective({ p: rng.random(), distortionScale: rng.random(), interpolation, fill: colourFirst ? rng.random() : fill }));
  for (let k = rng.int(3); k > 0; k--) {
    const kind = pick(colourFirst ? ["flipx", "center", "resize", "resizeaa"] : ["flipx", "crop", "center", "resize", "resizeaa", "pad"]);
    if (kind === "flipx") steps.push(T.randomHorizontalFlip(rng.random()));
    else if (kind === "crop") {
      const pad = colourFirst ? 0 : rng.int(3);
      const size = [1 + rng.int(H + 2 * pad), 1 + rng.int(W + 2 * pad)];
      steps.push(T.randomCrop(size, { padding: pad, fill }));
      [H, W] = size;
    } else if (kind === "center") {
      const size = [1 + rng.int(H), 1 + rng.int(W)]; // within the image: no padding
      steps.push(T.centerCrop(size));
      [H, W] = size;
    } else if (kind === "resize" || kind === "resizeaa") {
      // Upscales fold into the matrix; an antialiased downscale stays separable taps after the warp.
      const size = [1 + rng.int(2 * H), 1 + rng.int(2 * W)];
      steps.push(T.resize(size, kind === "resize" ? { antialias: false } : { interpolation: rng.random() < 0.5 ? "bilinear" : "bicubic" }));
      [H, W] = size;
    } else if (!colourFirst) {
      steps.push(T.pad([rng.int(3), rng.int(3)], { mode: pick(["constant", "edge", "reflect"]), fill }));
    }
  }
  if (!colourFirst && rng.random() < 0.5) steps.push(T.toTensor());
  if (gray && rng.random() < 0.3) steps.push(T.colorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5 }));
  if (rng.random() < 0.3) steps.push(T.randomErasing({ p: 0.5 }));
  return T.compose(steps);
}

test("warps: rotation, affine and perspective alone equal the step-by-step reference and run bit for bit on every engine", { skip }, async () => {
  const rng = new RandomStream(31, 0, 0);
  for (const c of [1, 3, 4]) {
    const images = Array.from({ length: 4 }, () => randomImage(rng, 13, 18, c));
    const fill = c === 1 ? 40 : Array.from({ length: c }, (_, k) => 10 + 60 * k);
    for (const interpolation of ["nearest", "bilinear", "bicubic"]) {
      for (const warp of [
        T.randomRotation(180, { interpolation, fill }),
        T.randomRotation([-30, 60], { interpolation, fill, center: [3, 11] }),
        T.randomAffine({ degrees: 30, translate: [0.2, 0.3], scale: [0.6, 1.4], shear: [-15, 15, -5, 5], interpolation, fill }),
        T.randomPerspective({ p: 0.75, distortionScale: 0.7, interpolation, fill }),
      ]) {
        const chain = T.compose([warp]);
        const { params, out } = await compareWarp(chain, images, 11, `${warp} on ${c} channels`);
        // One warp and nothing folded: the plan's pass is the step-by-step warp itself.
        const expected = new Float32Array(out.length);
        const per = out.length / images.length;
        images.forEach((im, i) => ref.writeCHW(chain.reference(ref.fromImage(im), params[i], { bound: 255 }), expected, i * per));
        assert.ok(sameBits(out, expected), `${warp}: plan equals the step-by-step warp`);
      }
    }
  }
});

test("warps: a chain of flip, crop, rotate and resize folds into one matrix and one resampling", { skip }, async () => {
  const rng = new RandomStream(32, 0, 0);
  const images = Array.from({ length: 5 }, () => randomImage(rng, 27, 31, 3));
  const chain = T.compose([T.randomHorizontalFlip(), T.randomCrop(24, { padding: 4 }), T.randomRotation(25, { interpolation: "bilinear" }), T.resize([16, 20], { antialias: false }), T.toTensor(), T.normalize([0.5], [0.25])]);
  const { job } = await compareWarp(chain, images, 5, "flip + crop + rotate + resize");
  assert.equal(job.K, 1, "every geometric step is in the matrix: the taps are the identity");
  assert.deepEqual(Array.from(job.warpDims), Array.from({ length: 10 }, (_, i) => (i % 2 ? 20 : 16)), "the warp writes the output size directly");
  // An antialiased downscale after the warp stays a separable pass on the warped image.
  const down = T.compose([T.randomRotation(25, { interpolation: "bilinear" }), T.resize([9, 7])]);
  const d = await compareWarp(down, images, 6, "rotate + antialiased downscale");
  assert.ok(d.job.K > 2, `wide taps after the warp (K = ${d.job.K})`);
  assert.deepEqual(Array.from(d.job.warpDims.subarray(0, 2)), [27, 31]);
  // Before a warp, steps that do not fold (mirror padding, antialiased resizing) are a separable
  // pass of their own, which the warp reads: then the plan is the step-by-step chain, bit for bit.
  for (const pre of [T.pad(2, { mode: "reflect" }), T.resize(20), T.randomResizedCrop(9), T.resize([13, 29], { interpolation: "bicubic" })]) {
    const chain = T.compose([pre, T.randomHorizontalFlip(), T.randomRotation(10, { interpolation: "bilinear" })]);
    const p = await compareWarp(chain, images, 8, `${pre} before a warp`);
    assert.ok(p.job.preK >= 1, `${pre}: a pass before the warp`);
    const expected = new Float32Array(p.out.length);
    images.forEach((im, i) => ref.writeCHW(chain.reference(ref.fromImage(im), p.params[i], { bound: 255 }), expected, i * (p.out.length / images.length)));
    assert.ok(sameBits(p.out, expected), `${pre}: the same bits as step by step`);
  }
  const four = T.compose([T.randomRotation(10), T.randomRotation(10), T.randomRotation(10), T.randomRotation(10)]);
  assert.deepEqual(new T.Plan(four).unfused, ["RandomRotation"], "at most three warps in one pass");
  assert.deepEqual(new T.Plan(T.compose([T.randomRotation(10), T.randomRotation(10, { interpolation: "bilinear" })])).unfused, ["RandomRotation"], "one interpolation per pass");
  assert.deepEqual(new T.Plan(T.compose([T.randomRotation(10), T.toTensor(), T.randomRotation(10)])).unfused, ["ToTensor"], "nothing but geometry between warps");
  assert.deepEqual(new T.Plan(T.compose([T.elasticTransform(), T.randomRotation(10, { interpolation: "bilinear" })])).unfused, ["ElasticTransform"], "a displacement only in the last warp");
  // Colour steps that are not affine before a warp run before it (the job's warpOps), so they
  // must keep the channels and not interleave with the geometry before the warp; geometry
  // after them (before the warp) folds into its matrix, so it must fold.
  assert.deepEqual(new T.Plan(T.compose([T.colorJitter({ brightness: 0.2 }), T.randomRotation(10)])).unfused, []);
  assert.deepEqual(new T.Plan(T.compose([T.grayscale(1), T.randomRotation(10)])).unfused, ["Grayscale"], "the warp reads the source's channels");
  assert.deepEqual(new T.Plan(T.compose([T.randomCrop(8), T.randomEqualize(), T.randomCrop(6), T.randomRotation(10)])).unfused, ["RandomEqualize"], "colour between the geometry before a warp");
  assert.deepEqual(new T.Plan(T.compose([T.randomEqualize(), T.pad(2, { mode: "reflect" }), T.randomRotation(10)])).unfused, ["Pad"], "mirror padding after such colour steps does not fold");
  assert.deepEqual(new T.Plan(T.compose([T.randomCrop(8, { padding: 2, fill: 5 }), T.randomRotation(10)])).unfused, ["RandomCrop"], "one fill per plan");
});

test("warps: two and three warps and an elastic displacement fold into one pass, bit for bit", { skip }, async () => {
  const rng = new RandomStream(35, 0, 0);
  for (const c of [1, 3, 4]) {
    const images = Array.from({ length: 3 }, () => randomImage(rng, 17, 22, c));
    for (const interpolation of ["nearest", "bilinear", "bicubic"]) {
      const fill = c === 1 ? 70 : Array.from({ length: c }, (_, k) => 20 + 50 * k);
      const chains = [
        [T.randomRotation(40, { interpolation, fill }), T.randomAffine({ degrees: 20, translate: [0.1, 0.1], scale: [0.7, 1.2], interpolation, fill })],
        [T.randomHorizontalFlip(), T.randomRotation(30, { interpolation, fill }), T.randomVerticalFlip(), T.centerCrop([15, 19]), T.randomPerspective({ p: 0.8, interpolation, fill }), T.resize([30, 40], { antialias: false })],
        [T.randomCrop(18, { padding: 3, fill }), T.randomRotation(25, { interpolation, fill }), T.randomRotation(25, { interpolation, fill }), T.randomPerspective({ p: 1, interpolation, fill })],
        [T.elasticTransform({ interpolation, fill, grid: 5 + rng.int(12) })],
        [T.randomHorizontalFlip(), T.resize([20, 25], { antialias: false }), T.randomRotation(20, { interpolation, fill }), T.elasticTransform({ interpolation, fill, alpha: [20, 80], sigma: 3 }), T.toTensor()],
        [T.elasticTransform({ interpolation, fill }), T.resize([9, 11]), T.colorJitter({ brightness: 0.4 })], // an antialiased downscale after the displacement: taps
        [T.randomApply([T.randomRotation(60, { interpolation, fill })], 0.5), T.randomApply([T.randomHorizontalFlip(1), T.randomPerspective({ p: 1, interpolation, fill })], 0.5)], // warps some samples skip
      ];
      for (const steps of chains) {
        const chain = T.compose(steps);
        const { job } = await compareWarp(chain, images, 7, `${c} channels, ${interpolation}`);
        const frames = Array.from({ length: job.n }, (_, i) => job.params[i * (job.params.length / job.n) + job.warpOffset + 18]);
        const count = (t) => (t.kind === "warp" ? 1 : t.transforms ? t.transforms.reduce((a, u) => a + count(u), 0) : t.inner ? count(t.inner) : 0);
        const warps = count(chain);
        assert.ok(frames.every((f) => f <= warps - 1), `frames ${frames} for ${warps} warps`);
      }
      // An elastic warp alone is the step-by-step one.
      const chain = T.compose([T.elasticTransform({ interpolation, fill })]);
      const { params, out } = await compareWarp(chain, images, 9, "elastic alone");
      const expected = new Float32Array(out.length);
      images.forEach((im, i) => ref.writeCHW(chain.reference(ref.fromImage(im), params[i], { bound: 255 }), expected, i * (out.length / images.length)));
      assert.ok(sameBits(out, expected), "elastic: plan equals the step-by-step warp");
    }
  }
});

test("warps: random chains (1 to 4 channels, odd sizes, fills per channel, nearest, bilinear and bicubic, batch of 1) bit for bit", { skip }, async () => {
  const rng = new RandomStream(33, 0, 0);
  const trials = Number(process.env.BATCHLAB_PARITY_TRIALS || 150);
  for (let trial = 0; trial < trials; trial++) {
    const c = 1 + rng.int(4);
    const h = 1 + rng.int(23);
    const w = 1 + rng.int(23);
    const n = trial % 10 === 0 ? 1 : 1 + rng.int(6);
    const chain = randomWarpChain(rng, c, h, w);
    const images = Array.from({ length: n }, () => randomImage(rng, h, w, c));
    try {
      chain.outputShape([h, w, c]);
    } catch {
      continue; // a crop larger than the image it gets
    }
    await compareWarp(chain, images, trial, `trial ${trial} (${n} x ${h}x${w}x${c})`);
  }
});

test("warps: images of different sizes in one batch (each sample its own warped size)", { skip }, async () => {
  const rng = new RandomStream(34, 0, 0);
  const images = [randomImage(rng, 40, 30, 3), randomImage(rng, 17, 50, 3), randomImage(rng, 33, 33, 3)];
  const { job } = await compareWarp(T.compose([T.randomRotation(20, { interpolation: "bilinear" }), T.resize([12, 12]), T.toTensor()]), images, 3, "mixed sizes");
  assert.deepEqual(Array.from(job.warpDims), [40, 30, 17, 50, 33, 33], "the antialiased downscale reads each sample's warped image");
  await compareWarp(T.compose([T.randomAffine({ degrees: 10, scale: [0.9, 1.1] }), T.resize([15, 13], { antialias: false })]), images, 4, "mixed sizes, folded resize");
});

test("a chain split at a step the plan cannot fuse: the fused head, then the rest step by step, the same on every CPU engine; stats say where each step ran", { skip }, async () => {
  const bl = require("../dist");
  // A transform a user writes: a subclass with draw and reference only.
  class AddNoise extends T.Transform {
    name = "AddNoise";
    kind = "color";
    options = { amount: 3 };
    draw(rng) {
      return { offset: rng.uniform(-3, 3) };
    }
    reference(img, p) {
      return { ...img, data: img.data.map((x) => Math.fround(x + p.offset)) };
    }
  }
  const rng = new RandomStream(12, 0, 0);
  const n = 7;
  const pixels = new Uint8Array(n * 20 * 18 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
  const ds = bl.datasets.fromArrays(pixels, [n, 20, 18, 3], new Int32Array(n));
  for (const chain of [
    T.compose([T.randomResizedCrop(12), T.randomHorizontalFlip(), new AddNoise(), T.toTensor(), T.normalize([0.5], [0.25])]),
    T.compose([T.randomCrop(16, { padding: 2 }), T.randomRotation(15, { interpolation: "bilinear" }), T.randAugment(), T.toTensor()]),
    T.compose([T.resize(14), T.toTensor(), T.randomOrder([T.randomEqualize(), T.randomInvert()]), T.randomErasing({ p: 1 })]),
  ]) {
    const plan = new T.Plan(chain);
    assert.ok(plan.split && plan.split.steps >= 1 && plan.split.head.fused, `${chain} splits after a fused head`);
    const batches = async (backend) => {
      const out = [];
      for await (const b of new bl.DataLoader(ds, { batchSize: 3, shuffle: true, seed: 9, transform: chain, backend })) out.push(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
      return Buffer.concat(out);
    };
    assert.ok((await batches("native")).equals(await batches("reference")), `${chain}: native and reference differ`);
    // The batch is the head plan's pixels with the rest applied step by step.
    const loader = new bl.DataLoader(ds, { batchSize: n, transform: chain, seed: 9 });
    const b = (await loader.iterate().next()).value;
    const k = plan.split.steps;
    const headParams = b.params.map((p) => ({ steps: p.steps.slice(0, k) }));
    const [C, H, W] = plan.split.head.outputShape({ height: 20, width: 18, channels: 3 });
    const headOut = new Float32Array(n * C * H * W);
    const images = Array.from(b.indices, (i) => ds.get(i).image);
    executePlan(encodeJob(plan.split.head, require("../dist/engines").pixelsOfImages(images), headParams), headOut);
    const j = 4;
    const per = C * H * W;
    const hwc = new Float32Array(per);
    for (let c = 0; c < C; c++) for (let q = 0; q < H * W; q++) hwc[q * C + c] = headOut[j * per + c * H * W + q];
    let img = { height: H, width: W, channels: C, data: hwc };
    const ctx = { bound: plan.split.head.transform.boundAfter(255) };
    chain.transforms.slice(k).forEach((t, i) => {
      img = t.reference(img, b.params[j].steps[k + i], ctx);
      ctx.bound = t.boundAfter(ctx.bound);
    });
    const expected = new Float32Array(img.data.length);
    ref.writeCHW(img, expected, 0);
    const outPer = b.images.length / n;
    assert.deepEqual(b.images.subarray(j * outPer, (j + 1) * outPer), expected);
    const steps = loader.stats().steps;
    assert.equal(steps.length, chain.transforms.length);
    steps.forEach((s, i) => assert.equal(s.runs.startsWith("fused"), i < k, `${s.step}: ${s.runs}`));
    assert.ok(steps[k].why && steps[k].why.length > 10, `the first step-by-step step says why: ${JSON.stringify(steps[k])}`);
  }
});

test("randomChoice runs fused: each option is a step only the chosen one enables (warps too), bit for bit on every engine", { skip }, async () => {
  const rng = new RandomStream(15, 0, 0);
  const images = Array.from({ length: 7 }, () => randomImage(rng, 17, 15, 3));
  // Options run in the order given, geometry before colour as in any fused chain.
  const colour = T.compose([T.randomChoice([T.randomVerticalFlip(1), T.randomInvert({ p: 1 }), T.randomPosterize(2, { p: 1 })]), T.toTensor()]);
  assert.ok(new T.Plan(colour).fused, "a choice of fusable steps is fused");
  await compare(colour, images, 5, true, "randomChoice of colour and flip");
  const warps = T.compose([T.randomChoice([T.randomRotation(25, { interpolation: "bilinear" }), T.randomAffine({ degrees: 0, translate: [0.2, 0.1], interpolation: "bilinear" })]), T.toTensor()]);
  await compareWarp(warps, images, 6, "randomChoice of two warps");
  // The chosen option is what the step-by-step reference runs.
  const plan = new T.Plan(colour);
  const p = plan.draw(images[0], { seed: 5, epoch: 0, position: 0 });
  const choice = p.steps[0].choice;
  assert.ok(choice >= 0 && choice < 3 && p.steps[0].steps.length === 3, "every option drew its parameters");
});

test("trivialAugmentWide runs fused (one op per sample: steps only the drawn op enables), bit for bit on every engine and equal to its step-by-step reference", { skip }, async () => {
  const bl = require("../dist");
  const rng = new RandomStream(17, 0, 0);
  const n = 60;
  const pixels = new Uint8Array(n * 21 * 19 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
  const ds = bl.datasets.fromArrays(pixels, [n, 21, 19, 3], new Int32Array(n));
  for (const interpolation of ["nearest", "bilinear"]) {
    // Nothing folded into the warp: the plan's pixels are the policy's own, sample by sample.
    const alone = T.compose([T.trivialAugmentWide({ interpolation, fill: 7 }), T.toTensor()]);
    assert.ok(new T.Plan(alone).fused, `${alone} is fused`);
    const b = (await new bl.DataLoader(ds, { batchSize: n, transform: alone, seed: 3 }).iterate().next()).value;
    const per = b.images.length / n;
    const names = new Set();
    for (let j = 0; j < n; j++) {
      const { output } = alone.sample(ds.get(b.indices[j]).image, { seed: 3, epoch: 0, index: j });
      names.add(b.params[j].steps[0].ops[0].name);
      assert.deepEqual(b.images.subarray(j * per, (j + 1) * per), output, `sample ${j}: ${JSON.stringify(b.params[j].steps[0].ops)}`);
    }
    assert.ok(names.size >= 10, `the batch drew most ops (${[...names]})`);
  }
  // With a crop and flip folded into the warp: the plan's pixels, bit for bit on every engine.
  const images = Array.from({ length: 24 }, () => randomImage(rng, 20, 17, 3));
  await compareWarp(T.compose([T.randomCrop(16, { padding: 2 }), T.randomHorizontalFlip(), T.trivialAugmentWide({ interpolation: "bilinear" }), T.toTensor(), T.normalize([0.5], [0.25])]), images, 8, "trivialAugmentWide after crop and flip");
});

const POLICY_WARPS = ["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"];

/** Asserts that each sample of a plan's output has its step-by-step reference's bits, except where `skip(i)`. */
function assertStepByStep(chain, images, params, out, label, skip = () => false) {
  const per = out.length / images.length;
  let compared = 0;
  images.forEach((im, i) => {
    if (skip(i)) return;
    const expected = new Float32Array(per);
    ref.writeCHW(chain.reference(ref.fromImage(im), params[i], { bound: 255 }), expected, 0);
    assert.ok(sameBits(out.subarray(i * per, (i + 1) * per), expected), `${label}: sample ${i} differs from its step-by-step reference`);
    compared++;
  });
  return compared;
}

test("colour steps before a warp keep their place (the job's warpOps): on the source, or after a pre pass when geometry comes first; bit for bit on every engine and step by step", { skip }, async () => {
  const rng = new RandomStream(18, 0, 0);
  for (const c of [1, 3]) {
    const images = Array.from({ length: 12 }, () => randomImage(rng, 19, 16, c));
    for (const [chain, pre] of [
      [T.compose([T.colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 }), T.randomRotation(30, { fill: 9 })]), false],
      [T.compose([T.randomEqualize({ p: 0.7 }), T.gaussianNoise({ sigma: 8 }), T.randomAffine({ degrees: 20, shear: 10, interpolation: "bicubic" })]), false],
      [T.compose([T.randomCrop(14, { padding: 2 }), T.randomAutocontrast({ p: 0.7 }), T.randomAdjustSharpness(2, { p: 0.7 }), T.randomRotation(30, { interpolation: "bilinear" }), T.toTensor()]), true],
      [T.compose([T.resize(12), T.randomPosterize(3), T.randomErasing({ p: 1, value: 100 }), T.randomPerspective({ p: 1, interpolation: "bilinear" })]), true],
    ]) {
      const { job, params, out } = await compareWarp(chain, images, 4, `${chain} on ${c} channels`);
      assert.ok(job.warpOps >= 1, `${chain}: the colour steps run before the warp (warpOps ${job.warpOps})`);
      assert.equal(!!job.preK, pre, `${chain}: a pre pass exactly when geometry comes first`);
      // Nothing folds into the warp: the plan's pixels are the chain's, step by step.
      assertStepByStep(chain, images, params, out, `${chain}`);
    }
  }
  // Geometry after the colour steps folds into the warp's matrix (its pixels are the plan's).
  const images = Array.from({ length: 8 }, () => randomImage(rng, 21, 18, 3));
  const folded = await compareWarp(T.compose([T.randomSolarize(100), T.randomCrop(16, { padding: 3 }), T.randomHorizontalFlip(), T.randomRotation(20, { interpolation: "bilinear" })]), images, 5, "solarize before crop, flip, rotation");
  assert.ok(folded.job.warpOps >= 1 && !folded.job.preK, "the colour step runs on the source, the crop and flip fold");
});

test("randAugment (numOps <= 2) and autoAugment run fused as two op slots: bit for bit on every engine, each sample its step-by-step reference unless it drew two warps (folded into one resampling)", { skip }, async () => {
  const bl = require("../dist");
  const rng = new RandomStream(19, 0, 0);
  const images = Array.from({ length: 40 }, () => randomImage(rng, 19, 16, 3));
  for (const policy of [
    T.randAugment(),
    T.randAugment({ numOps: 1, magnitude: 20 }),
    T.randAugment({ interpolation: "bilinear", fill: [10, 20, 30], magnitude: 14 }),
    T.autoAugment(),
    T.autoAugment({ policy: "cifar10", interpolation: "bilinear" }),
    T.autoAugment({ policy: "svhn", fill: 128 }),
  ]) {
    const chain = T.compose([policy, T.toTensor()]);
    const { params, out } = await compareWarp(chain, images, 6, `${policy}`);
    const twoWarps = (i) => params[i].steps[0].ops.filter((o) => POLICY_WARPS.includes(o.name)).length === 2;
    const compared = assertStepByStep(chain, images, params, out, `${policy}`, twoWarps);
    assert.ok(compared >= 25, `${policy}: most samples compared (${compared})`);
    // Two warps fold into one resampling (README, Semantics): the bound on what that changes.
    // These images are uniform noise, the worst case (a neighbouring pixel differs by a third of
    // full scale on average); measured at most 0.023 mean over such samples, 0.18 in the worst one.
    const per = out.length / images.length;
    let sum = 0;
    let count = 0;
    images.forEach((im, i) => {
      if (!twoWarps(i)) return;
      const expected = new Float32Array(per);
      ref.writeCHW(chain.reference(ref.fromImage(im), params[i], { bound: 255 }), expected, 0);
      let d = 0;
      for (let k = 0; k < per; k++) d += Math.abs(expected[k] - out[i * per + k]);
      assert.ok(d / per <= 0.3, `${policy}: sample ${i}, two warps folded, mean difference ${d / per} (bound 0.3 of full scale)`);
      sum += d;
      count += per;
    });
    if (count > 0) assert.ok(sum / count <= 0.05, `${policy}: mean difference of the folded samples ${sum / count} (bound 0.05)`);
  }
  // Three or more ops: one program slot per op, each warp a WARP op of its own (the step-by-step
  // chain's resamplings, so every sample is its reference).
  for (const policy of [T.randAugment({ numOps: 3 }), T.randAugment({ numOps: 4, magnitude: 20, interpolation: "bilinear", fill: [5, 50, 100] })]) {
    const chain = T.compose([T.randomCrop(16, { padding: 2 }), policy, T.toTensor()]);
    const { job, params, out } = await compareAll(chain, images, 7, `${policy}`);
    assert.ok(job.program.includes(12) && !job.warp, "WARP ops in the program, no warp pass");
    assert.equal(assertStepByStep(chain, images, params, out, `${policy}`), images.length);
  }
  // After crop and flip (the pre pass), the benchmark's CIFAR chain, on every engine and in the loader.
  const cifar = T.compose([T.randomCrop(16, { padding: 2 }), T.randomHorizontalFlip(), T.randAugment(), T.toTensor(), T.normalize([0.5], [0.25])]);
  const { job } = await compareWarp(cifar, images, 8, "randAugment after crop and flip");
  assert.ok(job.preK >= 1 && job.warpOps > 0, "crop and flip are a pre pass; slot 1's colour ops run on it");
  const pixels = new Uint8Array(images.length * 19 * 16 * 3);
  images.forEach((im, i) => pixels.set(im.data, i * im.data.length));
  const ds = bl.datasets.fromArrays(pixels, [images.length, 19, 16, 3], new Int32Array(images.length));
  const loader = new bl.DataLoader(ds, { batchSize: 16, transform: cifar, seed: 2 });
  const batches = async (backend) => {
    const out = [];
    for await (const b of new bl.DataLoader(ds, { batchSize: 16, shuffle: true, seed: 2, transform: cifar, backend })) out.push(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
    return Buffer.concat(out);
  };
  assert.ok((await batches("native")).equals(await batches("reference")), "native and reference loaders give the same batches");
  await loader.first();
  assert.ok(loader.stats().steps.every((st) => st.runs.startsWith("fused")), JSON.stringify(loader.stats().steps));
});

test("augMix runs fused (MIX_BEGIN, op slots with WARP ops, MIX_NEXT ... MIX_END): bit for bit on every engine and equal to its step-by-step reference", { skip }, async () => {
  const bl = require("../dist");
  const rng = new RandomStream(20, 0, 0);
  const trials = Math.max(12, Math.floor(Number(process.env.BATCHLAB_PARITY_TRIALS || 150) / 10));
  const pick = (arr) => arr[rng.int(arr.length)];
  let warpOps = 0;
  for (let trial = 0; trial < trials; trial++) {
    const c = pick([1, 3]);
    const h = 2 + rng.int(20);
    const w = 2 + rng.int(20);
    const fill = rng.random() < 0.5 ? rng.int(256) : Array.from({ length: c }, () => rng.int(256));
    const augMix = T.augMix({
      severity: 1 + rng.int(10),
      mixtureWidth: 1 + rng.int(4),
      chainDepth: pick([-1, 1, 2, 3]),
      alpha: pick([1, 0.5, 3]),
      allOps: rng.random() < 0.7,
      interpolation: pick(["nearest", "bilinear"]),
      fill,
    });
    const before = pick([[], [T.randomHorizontalFlip()], [T.randomCrop([Math.max(1, h - 2), Math.max(1, w - 1)], { padding: 1 })], [T.randomResizedCrop(9)]]);
    const after = pick([[], [T.toTensor()], [T.toTensor(), T.normalize([0.5], [0.25])], [T.randomRotation(15, { fill: 0 })]]);
    const chain = T.compose([...before, augMix, ...after]);
    const images = Array.from({ length: 1 + rng.int(5) }, () => randomImage(rng, h, w, c));
    const { job, params, out } = await compareAll(chain, images, trial, `trial ${trial} (${h}x${w}x${c})`);
    assert.ok(job.program.includes(13) && job.program.includes(15), "a mix group in the program");
    if (job.warpOps) warpOps++;
    // WARP ops resample one at a time, as the step-by-step chain does: the same bits (a rotation
    // after augMix is the one warp pass, on the mixed image: the same too).
    assertStepByStep(chain, images, params, out, `trial ${trial}: ${chain}`);
  }
  assert.ok(warpOps > 0, "some chains run augMix before a warp pass (warpOps)");
  // In the loader: native and reference engines, and where the steps ran.
  const pixels = new Uint8Array(20 * 16 * 15 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
  const ds = bl.datasets.fromArrays(pixels, [20, 16, 15, 3], new Int32Array(20));
  const chain = T.compose([T.randomCrop(14, { padding: 2 }), T.randomHorizontalFlip(), T.augMix(), T.toTensor()]);
  const batches = async (backend) => {
    const out = [];
    for await (const b of new bl.DataLoader(ds, { batchSize: 8, shuffle: true, seed: 3, transform: chain, backend })) out.push(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
    return Buffer.concat(out);
  };
  assert.ok((await batches("native")).equals(await batches("reference")), "native and reference loaders give the same batches");
  assert.deepEqual(new T.Plan(chain).placement().map((st) => st.fused), [true, true, true, true]);
});

// ---------------------------------------------------------------------------------------------
// Sizes drawn per sample: randomZoomOut and randomRotation with expand. Each sample's image has
// its own size until a fixed-size step; the plan carries it in the taps (no warp) or folds it
// into the warp block and warpDims, so every engine sees one job.

/** The three executors of the plan on one job (the plan's TypeScript executor, C++, CUDA emulation); returns the output. */
async function compareAll(chain, images, seed, label) {
  const plan = new T.Plan(chain);
  assert.deepEqual(plan.unfused, [], `${label}: fused\n${chain}`);
  const params = images.map((im, i) => plan.draw(im, { seed, epoch: 0, position: i }));
  const job = encodeJob(plan, images, params);
  const expected = new Float32Array(job.n * job.outC * job.outH * job.outW).fill(NaN);
  executePlan(job, expected);
  const out = new Float32Array(expected.length).fill(NaN);
  await native.addon.runPlan({ ...job, out, numThreads: 3 });
  for (let i = 0; i < out.length; i++) {
    if (!Object.is(out[i], expected[i])) assert.fail(`${label}: element ${i} native ${out[i]} != plan reference ${expected[i]}\n${chain}`);
  }
  if (emulate) assert.ok(sameBits(emulate(job), expected), `${label}: CUDA emulation differs from the plan reference\n${chain}`);
  return { job, plan, params, out: expected };
}

/** The step-by-step reference of a chain on each image, NCHW. */
function stepByStep(chain, images, params, per) {
  const expected = new Float32Array(images.length * per);
  images.forEach((im, i) => ref.writeCHW(chain.reference(ref.fromImage(im), params[i], { bound: 255 }), expected, i * per));
  return expected;
}

test("randomZoomOut and rotation with expand: per-sample sizes, bit for bit on every engine; integer steps equal step by step", { skip }, async () => {
  const rng = new RandomStream(41, 0, 0);
  for (const c of [1, 2, 3, 4]) {
    const images = Array.from({ length: 5 }, () => randomImage(rng, 11 + 2 * c, 16 - c, c));
    const fill = c === 1 ? 70 : Array.from({ length: c }, (_, k) => 15 + 60 * k);
    // No warp: the canvas and the fixed-size step are one tap table per sample.
    // A centre crop larger than some canvases pads those with 0: one fill per plan, so with
    // another zoom-out fill it runs step by step (a fused plan would fail at some samples only).
    const padded = T.compose([T.randomZoomOut({ fill: 9, sideRange: [1, 2.5] }), T.centerCrop([25, 33])]);
    assert.deepEqual(new T.Plan(padded).unfused, ["CenterCrop"]);
    for (const tail of [T.resize([19, 14]), T.resize([9, 7], { interpolation: "bicubic" }), T.centerCrop([25, 33]), T.randomResizedCrop([12, 10], { scale: [0.3, 1] })]) {
      const chain = T.compose([T.randomZoomOut({ fill: tail.name === "CenterCrop" ? 0 : fill, sideRange: [1, 2.5], p: 0.7 }), T.randomHorizontalFlip(), tail, T.toTensor()]);
      const r = await compareAll(chain, images, 3, `${tail} after a zoom out (${c} channels)`);
      assert.equal(r.job.warp, undefined, "no warp pass");
      assert.ok(sameBits(r.out, stepByStep(chain, images, r.params, r.out.length / images.length)), `${chain}: the plan is the step-by-step chain`);
      assert.ok(r.params.some((p) => p.steps[0].apply) && r.params.some((p) => !p.steps[0].apply), "some samples zoomed out, some not");
    }
    for (const interpolation of ["nearest", "bilinear", "bicubic"]) {
      // Rotation with expand, then a crop: the warp writes each sample's own size, integer taps crop it.
      const crop = T.compose([T.randomRotation(60, { expand: true, interpolation }), T.centerCrop([12, 15])]);
      const a = await compareAll(crop, images, 5, `expand + centerCrop, ${interpolation}, ${c} channels`);
      const sizes = new Set(Array.from({ length: images.length }, (_, i) => `${a.job.warpDims[2 * i]}x${a.job.warpDims[2 * i + 1]}`));
      assert.ok(sizes.size > 1, `warped sizes differ per sample: ${[...sizes]}`);
      assert.ok(sameBits(a.out, stepByStep(crop, images, a.params, a.out.length / images.length)), "expand + crop: the step-by-step chain");
      // A zoom out before the rotation folds into its matrix (the canvas is the warp's domain).
      const chains = [
        T.compose([T.randomZoomOut({ fill, p: 0.8 }), T.randomRotation(40, { expand: true, interpolation, fill }), T.resize([17, 13], { antialias: false })]),
        T.compose([T.randomZoomOut({ fill, sideRange: [1.2, 2] , p: 1 }), T.randomHorizontalFlip(), T.randomAffine({ degrees: 20, scale: [0.8, 1.2], interpolation, fill }), T.randomResizedCrop([10, 14], { antialias: false })]),
        T.compose([T.randomRotation(90, { expand: true, interpolation, fill, center: [2, 5] }), T.randomVerticalFlip(), T.resize([15, 11])]),
        T.compose([T.randomRotation(30, { expand: true, interpolation, fill }), T.resize([20, 20], { antialias: false }), T.randomRotation(15, { interpolation, fill }), T.toTensor(), T.normalize([0.5], [0.2])]),
      ];
      for (const chain of chains) {
        const r = await compareAll(chain, images, 7, `${c} channels, ${interpolation}`);
        assert.ok([1, 2, 3].includes(r.job.warp), "a warp pass");
      }
      // The zoom out is a translation in the matrix, and a fixed-size resize that folds is a scale:
      // one resampling per sample (K = 1 after the warp).
      const folded = await compareAll(chains[0], images, 8, "zoom out + expand + resize folded");
      assert.equal(folded.job.K, 1, "every step in the matrix");
      assert.deepEqual(Array.from(folded.job.warpDims), Array.from({ length: 10 }, (_, i) => (i % 2 ? 13 : 17)));
    }
  }
});

test("random chains with sizes drawn per sample, 1 to 4 channels, odd sizes: bit for bit on every engine, and the loader's last partial batch", { skip }, async () => {
  const rng = new RandomStream(43, 0, 0);
  const pick = (arr) => arr[rng.int(arr.length)];
  let ran = 0;
  for (let trial = 0; trial < 30; trial++) {
    const c = 1 + rng.int(4);
    const h = 5 + rng.int(20);
    const w = 5 + rng.int(20);
    const images = Array.from({ length: 1 + rng.int(4) }, () => randomImage(rng, h, w, c));
    const fill = rng.random() < 0.5 ? 0 : c === 1 || rng.random() < 0.5 ? rng.int(256) : Array.from({ length: c }, () => rng.int(256));
    const interpolation = pick(["nearest", "bilinear", "bicubic"]);
    const steps = [];
    const zoom = rng.random() < 0.6;
    if (zoom) steps.push(T.randomZoomOut({ fill, sideRange: [1, 1 + 3 * rng.random()], p: rng.random() }));
    if (rng.random() < 0.5) steps.push(T.randomHorizontalFlip());
    if (!zoom || rng.random() < 0.6) {
      steps.push(rng.random() < 0.5 ? T.randomRotation(180 * rng.random(), { expand: rng.random() < 0.7, interpolation, fill }) : T.randomAffine({ degrees: 30, translate: [0.2, 0.2], interpolation, fill }));
    }
    const size = [1 + rng.int(2 * h), 1 + rng.int(2 * w)];
    const tail = pick(["resize", "resizeaa", "center", "rrc"]);
    if (tail === "resize") steps.push(T.resize(size, { antialias: false }));
    else if (tail === "resizeaa") steps.push(T.resize(size, { interpolation: pick(["bilinear", "bicubic"]) }));
    else if (tail === "center") steps.push(T.centerCrop(fill === 0 ? size : [1 + rng.int(h), 1 + rng.int(w)]));
    else steps.push(T.randomResizedCrop(size, { antialias: rng.random() < 0.5 }));
    if (rng.random() < 0.5) steps.push(T.toTensor());
    if ((c === 1 || c === 3) && rng.random() < 0.3) steps.push(T.colorJitter({ brightness: 0.4, contrast: 0.4 }));
    const chain = T.compose(steps);
    const plan = new T.Plan(chain);
    if (plan.unfused.length) continue; // e.g. a zoom out whose fill differs from the warp's (one fill per plan)
    await compareAll(chain, images, trial, `random chain ${trial}`);
    ran++;
  }
  assert.ok(ran >= 15, `${ran} of 30 random chains fused`);
  // Through the loader: 7 samples in batches of 3 (the last has 1), the native engine against the reference engine.
  const n = 7;
  const pixels = new Uint8Array(n * 13 * 9 * 3).map((_, i) => (i * 53) % 251);
  const ds = require("../dist").datasets.fromArrays(pixels, [n, 13, 9, 3], Int32Array.from({ length: n }, (_, i) => i % 2));
  for (const chain of [
    T.compose([T.randomZoomOut({ fill: [10, 20, 30], p: 0.6 }), T.resize([12, 12]), T.toTensor()]),
    T.compose([T.randomRotation(45, { expand: true }), T.centerCrop([11, 11]), T.toTensor()]),
    T.compose([T.randomZoomOut({ p: 0.6 }), T.randomRotation(45, { expand: true, interpolation: "bilinear" }), T.resize([10, 8], { antialias: false })]),
  ]) {
    const outs = {};
    for (const backend of ["reference", "native"]) {
      const got = [];
      for await (const b of new (require("../dist").DataLoader)(ds, { batchSize: 3, seed: 4, transform: chain, backend })) got.push(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
      assert.equal(got.length, 3);
      outs[backend] = Buffer.concat(got);
    }
    assert.ok(outs.native.equals(outs.reference), `${chain}: the loader's engines differ`);
  }
});

// The warp pass runs on eight AVX2 lanes where the processor has them, else on the baseline's
// four SSE lanes (native/warp_lanes.h). This process checked the first against the reference;
// the tests of this file run again with BATCHLAB_SIMD=sse4 to check the second the same way.
test("the warp's four-lane SSE form passes this file's tests too (BATCHLAB_SIMD=sse4); a bad BATCHLAB_SIMD is refused by name", { skip: skip || (process.env.BATCHLAB_SIMD ? "this run is the BATCHLAB_SIMD child" : false) }, () => {
  const { spawnSync } = require("node:child_process");
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // the child reports as a test run of its own
  const run = (simd, args) => spawnSync(process.execPath, args, { encoding: "utf8", env: { ...env, BATCHLAB_SIMD: simd } });
  const lanes = (simd) => run(simd, ["-e", `const n = require(${JSON.stringify(require.resolve("../dist/engines/addon-cpu"))}).loadNative(); console.log(n.ok ? n.addon.info().warpLanes : n.reason)`]).stdout.trim();
  assert.equal(lanes("sse4"), "sse4.1 (4 lanes)");
  assert.match(lanes("auto"), /^(avx2 \(8 lanes\)|sse4\.1 \(4 lanes\))$/);
  assert.match(lanes("avx512"), /BATCHLAB_SIMD is "avx512"; expected "auto" \(the default\) or "sse4"/);
  const r = run("sse4", ["--test", "--test-reporter=tap", __filename]);
  assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr.slice(-2000));
  const passed = Number((r.stdout.match(/^# pass (\d+)/m) || [])[1]);
  assert.ok(passed >= 19, `the sse4 run passed ${passed} tests:\n${r.stdout.slice(-2000)}`);
});

test("a job's parameter block reused from the pool is cleared first: ops a sample leaves off are zeros, the bytes those of a fresh block", () => {
  const { BufferPool } = require("../dist/engines");
  const rng = new RandomStream(17, 0, 0);
  const chain = T.compose([T.randomResizedCrop(20), T.randAugment({ numOps: 2 }), T.randomApply([T.colorJitter({ brightness: 0.5 })], 0.5), T.toTensor()]);
  const plan = new T.Plan(chain);
  const images = Array.from({ length: 12 }, () => randomImage(rng, 24, 28, 3));
  const params = images.map((im, i) => plan.draw(im, { seed: 9, epoch: 0, position: i }));
  const fresh = encodeJob(plan, images, params);
  const pool = new BufferPool();
  const first = encodeJob(plan, images, params, pool);
  first.params.fill(7.5); // what a finished job's block may hold
  pool.giveJob(first);
  const reused = encodeJob(plan, images, params, pool);
  assert.equal(reused.params, first.params, "the pool handed the same array back");
  assert.ok(Buffer.from(reused.params.buffer).equals(Buffer.from(fresh.params.buffer)), "the same bytes as a fresh block");
  assert.ok(fresh.params.some((v, i) => v === 0 && i % plan.layout(images[0]).P !== 0), "some op of some sample is off (zeros)");
});
