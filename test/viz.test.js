"use strict";
// Image views (showBatch, showAugmentations), the bundle convention, the PNG encoder and font.
const test = require("node:test");
const assert = require("node:assert/strict");
const viz = require("../dist/viz");
const { OptionError } = require("../dist/errors");
const { encodePng } = require("../dist/viz/png");
const font = require("../dist/viz/font");

let decodePng;
test.before(async () => {
  ({ decode: decodePng } = await import("fast-png"));
});

// Layout of showBatch (its documented contract): 2 px white padding around and between tiles,
// a 12 px caption band under each tile when the batch has labels.
const PAD = 2;
const BAND = 12;

function png(bundle) {
  const img = decodePng(Buffer.from(bundle.data["image/png"], "base64"));
  assert.equal(img.depth, 8);
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = img.data[i * img.channels + (img.channels >= 3 ? c : 0)];
  return { width: img.width, height: img.height, at: (x, y) => Array.from(rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)) };
}

/** N solid-colour images, N x C x H x W, colour i = colours[i] (values in [0, 1]). */
function solidBatch(colours, H, W, extra = {}) {
  const N = colours.length;
  const C = colours[0].length;
  const images = new Float32Array(N * C * H * W);
  colours.forEach((col, i) => col.forEach((v, c) => images.fill(v, (i * C + c) * H * W, (i * C + c + 1) * H * W)));
  return { images, shape: [N, C, H, W], ...extra };
}

const COLOURS = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [1, 1, 0],
  [0, 1, 1],
  [1, 0, 1],
  [0.5, 0.5, 0.5],
];

function darkPixels(p, x0, y0, w, h) {
  let n = 0;
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) if (p.at(x, y).every((v) => v < 100)) n++;
  return n;
}

test("showBatch: one PNG whose size follows nrow and scale, with width/height metadata", () => {
  const b = viz.showBatch(solidBatch(COLOURS, 4, 5, { labels: Int32Array.from(COLOURS, (_, i) => i % 2) }), { nrow: 3, scale: 3 });
  const p = png(b);
  const tileW = 15;
  const tileH = 12;
  assert.equal(p.width, 3 * (tileW + PAD) + PAD);
  assert.equal(p.height, 3 * (tileH + BAND + PAD) + PAD, "7 images in rows of 3 make 3 rows");
  assert.deepEqual(b.metadata["image/png"], { width: p.width, height: p.height });
  assert.equal(typeof b.data["text/plain"], "string");
  assert.equal(b.data["application/vnd.plotly.v1+json"], undefined);

  const noLabels = png(viz.showBatch(solidBatch(COLOURS, 4, 5), { nrow: 7, scale: 1 }));
  assert.equal(noLabels.width, 7 * (5 + PAD) + PAD);
  assert.equal(noLabels.height, 4 + 2 * PAD, "no caption band without labels");
});

test("showBatch: default scale makes small images legible (28x28 -> 84 px tiles) and nrow defaults to 8", () => {
  const b = viz.showBatch(solidBatch(Array.from({ length: 10 }, () => [0.2]), 28, 28));
  const p = png(b);
  assert.equal(p.width, 8 * (84 + PAD) + PAD);
  assert.equal(p.height, 2 * (84 + PAD) + PAD);
});

test("showBatch: solid-colour images land in their tiles, in order, on a white background", () => {
  const nrow = 4;
  const scale = 2;
  const H = 6;
  const W = 6;
  const b = viz.showBatch(solidBatch(COLOURS, H, W), { nrow, scale, denormalize: { mean: 0, std: 1 } });
  const p = png(b);
  const tile = H * scale;
  COLOURS.forEach((col, i) => {
    const x0 = PAD + (i % nrow) * (tile + PAD);
    const y0 = PAD + Math.floor(i / nrow) * (tile + PAD);
    const expected = col.map((v) => Math.round(v * 255));
    for (const [dx, dy] of [[0, 0], [tile - 1, tile - 1], [tile >> 1, tile >> 1]]) {
      assert.deepEqual(p.at(x0 + dx, y0 + dy), expected, `tile ${i} pixel (${dx}, ${dy})`);
    }
    assert.deepEqual(p.at(x0 - 1, y0), [255, 255, 255], `padding left of tile ${i}`);
  });
  // The eighth slot of the second row is empty: white.
  assert.deepEqual(p.at(PAD + 3 * (tile + PAD) + 3, PAD + tile + PAD + 3), [255, 255, 255]);
});

test("showBatch: min-max per batch by default; denormalize undoes a Normalize per channel", () => {
  const batch = solidBatch([[-2, 0, 2], [2, -2, 0]], 2, 2);
  const p = png(viz.showBatch(batch, { scale: 1, nrow: 2 }));
  assert.deepEqual(p.at(PAD, PAD), [0, 128, 255], "[-2, 2] maps to [0, 255]");
  assert.deepEqual(p.at(PAD + 2 + PAD, PAD), [255, 0, 128]);
  const mean = [0.5, 0.4, 0.3];
  const std = [0.25, 0.2, 0.1];
  const q = png(viz.showBatch(batch, { scale: 1, nrow: 2, denormalize: { mean, std } }));
  const expect = [-2, 0, 2].map((x, c) => Math.max(0, Math.min(255, Math.round((x * std[c] + mean[c]) * 255))));
  assert.deepEqual(q.at(PAD, PAD), expect);
});

test("showBatch: each label's class name is drawn under its image, and different names differ", () => {
  const names = ["cat", "dog", "T-shirt/top"];
  const labels = Int32Array.from([0, 1, 2, 0]);
  const b = viz.showBatch(solidBatch([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]], 8, 8, { labels }), { nrow: 4, scale: 8, classNames: names });
  const p = png(b);
  const tile = 64;
  const band = (i) => {
    const x0 = PAD + i * (tile + PAD);
    const y0 = PAD + tile;
    const mask = [];
    for (let y = y0; y < y0 + BAND; y++) for (let x = x0; x < x0 + tile; x++) mask.push(p.at(x, y).every((v) => v < 100) ? 1 : 0);
    return mask;
  };
  const masks = [0, 1, 2, 3].map(band);
  for (const [i, m] of masks.entries()) assert.ok(m.reduce((s, x) => s + x, 0) > 10, `text pixels under tile ${i}`);
  assert.deepEqual(masks[0], masks[3], "the same name draws the same pixels");
  assert.notDeepEqual(masks[0], masks[1], "cat and dog differ");
  // Tiles are white here; the only dark pixels in the image are text.
  assert.equal(darkPixels(p, 0, 0, p.width, PAD + tile), 0);
  // Without class names the label number is drawn: label 7 draws what a class named "7" draws.
  const caption = (label, options = {}) => {
    const q = png(viz.showBatch(solidBatch([[1, 1, 1]], 8, 8, { labels: Int32Array.of(label) }), { scale: 8, ...options }));
    const mask = [];
    for (let y = PAD + tile; y < PAD + tile + BAND; y++) for (let x = PAD; x < PAD + tile; x++) mask.push(q.at(x, y).every((v) => v < 100) ? 1 : 0);
    return mask;
  };
  const seven = caption(7);
  assert.ok(seven.reduce((s, x) => s + x, 0) > 5, "the number is drawn");
  assert.deepEqual(seven, caption(7, { classNames: Array.from({ length: 8 }, (_, k) => String(k)) }), 'label 7 reads "7"');
  assert.notDeepEqual(seven, caption(1), "label 1 draws differently");
});

test("showBatch: text/plain has the shape, per-channel mean and std, and label counts by class name", () => {
  const images = new Float32Array(3 * 2 * 2 * 2);
  // channel 0 of every image: 0,0,1,1 (mean 0.5, std 0.5); channel 1: 2 everywhere (mean 2, std 0)
  for (let i = 0; i < 3; i++) {
    images.set([0, 0, 1, 1], i * 8);
    images.set([2, 2, 2, 2], i * 8 + 4);
  }
  assert.throws(() => viz.showBatch({ images, shape: [3, 2, 2, 2] }), (e) => e instanceof OptionError && /showBatch\(batch\)\.shape/.test(e.message) && /C = 1 \(grey\), 3 \(RGB\) or 4/.test(e.message));
  const rgb = new Float32Array(3 * 3 * 4);
  for (let i = 0; i < 3; i++) {
    rgb.set([0, 0, 1, 1], i * 12);
    rgb.set([2, 2, 2, 2], i * 12 + 4);
    rgb.set([0, 0, 0, 0], i * 12 + 8);
  }
  const b = viz.showBatch({ images: rgb, shape: [3, 3, 2, 2], labels: Int32Array.of(1, 0, 1), epoch: 2, batchIndex: 5 }, { classNames: ["cat", "dog"] });
  const text = b.data["text/plain"];
  assert.match(text, /Batch of 3 images, 3x2x2/);
  assert.match(text, /epoch 2, batch 5/);
  assert.match(text, /per-channel mean \[0\.5, 2, 0\], std \[0\.5, 0, 0\]/);
  assert.match(text, /labels: cat 1, dog 2/);
});

test("showBatch: grey images are replicated to RGB; a fourth (alpha) channel is dropped", () => {
  const grey = png(viz.showBatch(solidBatch([[0.25], [1]], 2, 2), { scale: 1, denormalize: { mean: 0, std: 1 } }));
  assert.deepEqual(grey.at(PAD, PAD), [64, 64, 64]);
  const opaque = viz.showBatch(solidBatch([[1, 0, 0, 1], [0, 0, 1, 1]], 3, 3), { scale: 1, denormalize: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1] } });
  const clear = viz.showBatch(solidBatch([[1, 0, 0, 0], [0, 0, 1, 0]], 3, 3), { scale: 1, denormalize: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1] } });
  assert.equal(opaque.data["image/png"], clear.data["image/png"], "alpha does not change the picture");
  assert.deepEqual(png(opaque).at(PAD, PAD), [255, 0, 0]);
});

test("showBatch: rejects wrong shapes and device batches with an OptionError that names the argument", () => {
  const ok = solidBatch([[1, 0, 0]], 2, 2);
  const cases = [
    [{ images: ok.images, shape: [1, 3, 2] }, /showBatch\(batch\)\.shape: expected \[N, C, H, W\]/],
    [{ images: ok.images.subarray(1), shape: [1, 3, 2, 2] }, /showBatch\(batch\)\.images: expected 12 numbers/],
    [{ images: ok.images, shape: [1, 5, 2, 2] }, /showBatch\(batch\)\.shape/],
    [{ images: ok.images, shape: [1, 3, 2, 2], labels: Int32Array.of(1, 2) }, /showBatch\(batch\)\.labels: expected 1 labels/],
    [null, /showBatch\(batch\): expected a batch/],
  ];
  for (const [batch, re] of cases) assert.throws(() => viz.showBatch(batch), (e) => e instanceof OptionError && re.test(e.message), String(re));
  assert.throws(() => viz.showBatch(ok, { nrows: 2 }), /showBatch\.nrows: expected no such option/);
  assert.throws(() => viz.showBatch(ok, { denormalize: { mean: [0, 0], std: 1 } }), /denormalize\.mean/);
  assert.throws(() => viz.showBatch(ok, { denormalize: { mean: 0, std: 0 } }), /denormalize\.std/);
  const device = {
    shape: [1, 3, 2, 2],
    get images() {
      throw new Error("device batch: use await batch.device.toHost()");
    },
  };
  assert.throws(() => viz.showBatch(device), (e) => e instanceof OptionError && /toHost/.test(e.message));
});

test("showBatch: limit draws the first images only and says so", () => {
  const b = viz.showBatch(solidBatch(Array.from({ length: 10 }, () => [0.5, 0.5, 0.5]), 2, 2, { labels: new Int32Array(10) }), { limit: 4, nrow: 8, scale: 1 });
  assert.equal(png(b).width, 4 * (2 + PAD) + PAD);
  assert.match(b.data["text/plain"], /showing the first 4 of 10/);
  assert.match(b.data["text/plain"], /labels: 0 10/, "counts still cover the whole batch");
});

test("showBatch: mixed soft targets caption the largest class with its weight", () => {
  const targets = Float32Array.of(0.3, 0.7, 1, 0);
  const b = viz.showBatch(solidBatch([[1, 1, 1], [1, 1, 1]], 8, 8, { labels: Int32Array.of(1, 0), targets }), { classNames: ["cat", "dog"], scale: 8 });
  assert.match(b.data["text/plain"], /soft targets over 2 classes/);
  const p = png(b);
  const inkWidth = (i) => {
    let last = -1;
    for (let x = 0; x < 64; x++) for (let y = PAD + 64; y < PAD + 64 + BAND; y++) if (p.at(PAD + i * 66 + x, y)[0] < 100) last = Math.max(last, x);
    return last;
  };
  assert.ok(inkWidth(0) > inkWidth(1), '"dog .70" is wider than "cat"');
});

test("bundles: Symbol.for('Jupyter.display') returns the data map; JSON has only data and metadata", () => {
  const b = viz.showBatch(solidBatch([[1, 0, 0]], 2, 2));
  const fn = b[Symbol.for("Jupyter.display")];
  assert.equal(typeof fn, "function");
  assert.equal(b[Symbol.for("Jupyter.display")](), b.data);
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(b))).sort(), ["data", "metadata"]);
  assert.deepEqual(Object.keys(b).sort(), ["data", "metadata"]);
});

test("encodePng: grey and RGB images decode to the same pixels", () => {
  const rgb = Uint8Array.from({ length: 7 * 5 * 3 }, (_, i) => (i * 37) & 255);
  const d = decodePng(encodePng(rgb, 7, 5, 3));
  assert.equal(d.width, 7);
  assert.equal(d.height, 5);
  assert.equal(d.channels, 3);
  assert.deepEqual(Array.from(d.data), Array.from(rgb));
  const grey = Uint8Array.from({ length: 3 * 4 }, (_, i) => i * 20);
  const g = decodePng(encodePng(grey, 3, 4, 1));
  assert.equal(g.channels, 1);
  assert.deepEqual(Array.from(g.data), Array.from(grey));
  assert.throws(() => encodePng(grey, 3, 3, 1), /expected 9 bytes/);
});

test("font: every printable ASCII character has its own glyph; others draw as '?'", () => {
  const seen = new Map();
  for (let c = 32; c < 127; c++) {
    const ch = String.fromCharCode(c);
    const key = Array.from(font.glyph(ch)).join(",");
    assert.ok(!seen.has(key), `${JSON.stringify(ch)} looks like ${JSON.stringify(seen.get(key))}`);
    seen.set(key, ch);
    if (ch !== " ") assert.ok(font.glyph(ch).some((r) => r !== 0), `${JSON.stringify(ch)} draws something`);
  }
  assert.deepEqual(font.glyph("é"), font.glyph("?"));
  assert.equal(font.fitText("T-shirt/top", 6), "T-shi.");
  assert.equal(font.fitText("cat", 6), "cat");
});

// ------------------------------------------------------------------------ showAugmentations

/** 4x4 grey image: left half black, right half white. */
function halfImage() {
  const data = new Uint8Array(16);
  for (let y = 0; y < 4; y++) for (let x = 2; x < 4; x++) data[y * 4 + x] = 255;
  return { data, height: 4, width: 4, channels: 1 };
}

/** A transform shaped like batchlab's Compose([RandomHorizontalFlip]): flips on even epochs. */
function stubFlip(calls) {
  const flip = { name: "RandomHorizontalFlip", options: { p: 0.5 } };
  return {
    name: "Compose",
    transforms: [flip, { name: "ToTensor", options: {} }],
    sample(image, at) {
      calls.push(at);
      const doFlip = at.epoch % 2 === 0;
      const out = new Float32Array(16);
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) out[y * 4 + x] = image.data[y * 4 + (doFlip ? 3 - x : x)] / 255;
      return { output: out, shape: [1, 4, 4], params: { steps: [{ flip: doFlip }, null] } };
    },
    toString() {
      return "Compose([RandomHorizontalFlip(p=0.5), ToTensor()])";
    },
  };
}

test("showAugmentations: original plus n draws keyed by { seed, epoch: k, index }, with params under each and in text", () => {
  const img = halfImage();
  const ds = { length: 3, classNames: ["a", "b", "c"], get: (i) => ({ image: img, label: 2, index: i }) };
  const calls = [];
  const b = viz.showAugmentations(ds, stubFlip(calls), { index: 2, n: 3, seed: 9, scale: 24 });
  assert.deepEqual(calls, [0, 1, 2].map((k) => ({ seed: 9, epoch: k, index: 2 })));
  const text = b.data["text/plain"];
  assert.match(text, /sample 2, label 2 \(c\)/);
  assert.match(text, /draw 0: hflip yes\n/);
  assert.match(text, /draw 1: hflip no\n/);
  assert.match(text, /transform: Compose\(\[RandomHorizontalFlip/);
  const p = png(b);
  assert.deepEqual(b.metadata["image/png"], { width: p.width, height: p.height });
  // Four columns of 96 px (4 px * 24), 10 px apart, after 2 px of padding.
  const col = (k) => PAD + k * (96 + 10);
  assert.equal(p.width, col(4) - 10 + PAD);
  const y = PAD + 40;
  assert.deepEqual(p.at(col(0) + 5, y), [0, 0, 0], "original: left is black");
  assert.deepEqual(p.at(col(1) + 5, y), [255, 255, 255], "draw 0 is flipped");
  assert.deepEqual(p.at(col(2) + 5, y), [0, 0, 0], "draw 1 is not");
  assert.deepEqual(p.at(col(3) + 5, y), [255, 255, 255], "draw 2 is flipped");
  // Captions under the tiles.
  for (let k = 0; k < 4; k++) assert.ok(darkPixels(p, col(k), PAD + 96 + 2, 96, 30) > 10, `caption under column ${k}`);
});

test("showAugmentations: real transforms, a sample or an AugmentFn instead of a dataset", () => {
  const T = require("../dist/transforms");
  const image = { data: Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 7) & 255), height: 8, width: 8, channels: 3 };
  const tf = T.compose([T.randomCrop(6, { padding: 1 }), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])]);
  const b = viz.showAugmentations({ image, label: 1, index: 4 }, tf, { n: 4 });
  const text = b.data["text/plain"];
  assert.equal(text.match(/^draw \d: crop top=\d left=\d; hflip (yes|no)$/gm).length, 4, text);
  assert.match(text, /denormalized with the transform's Normalize/);
  assert.match(text, /8x8x3 uint8 -> 3x6x6 float32/);
  png(b);
  const fn = (img, at) => ({ output: new Float32Array(img.height * img.width).fill(at.epoch * 100), shape: [1, img.height, img.width], params: [{ level: at.epoch }] });
  const c = viz.showAugmentations(image, fn, { n: 2 });
  assert.match(c.data["text/plain"], /draw 1: level=1/);
  assert.match(c.data["text/plain"], /values within \[0, 255\]/);
});

test("showAugmentations: a chain with a warp shows the fused plan's pixels (what the loader gives), not sample()'s step by step", () => {
  const T = require("../dist/transforms");
  const { encodeJob, executePlan } = require("../dist/engines");
  const image = { data: Uint8Array.from({ length: 12 * 10 * 3 }, (_, i) => (i * 37) & 255), height: 12, width: 10, channels: 3 };
  const tf = T.compose([T.randomRotation(30, { interpolation: "bilinear" }), T.resize([24, 20], { antialias: false }), T.toTensor()]);
  const plan = new T.Plan(tf);
  const viaPlan = (img, at) => {
    const params = plan.draw(img, { seed: at.seed, epoch: at.epoch, position: at.index });
    const job = encodeJob(plan, [img], [params]);
    const output = new Float32Array(job.outC * job.outH * job.outW);
    executePlan(job, output);
    return { output, shape: [job.outC, job.outH, job.outW], params };
  };
  // Stand-ins with the chain's structure (for the labels) and another sample().
  const like = (sample) => ({ name: tf.name, kind: tf.kind, options: tf.options, transforms: tf.transforms, sample });
  const shown = viz.showAugmentations(image, tf, { n: 3, seed: 2 }).data["image/png"];
  assert.equal(shown, viz.showAugmentations(image, like(viaPlan), { n: 3, seed: 2 }).data["image/png"], "the plan's pixels");
  assert.notEqual(shown, viz.showAugmentations(image, like((img, at) => tf.sample(img, at)), { n: 3, seed: 2 }).data["image/png"], "folding is sharper than step by step");
});

test("showAugmentations: asks for the sample when the dataset answers with a promise; checks its inputs", () => {
  const img = halfImage();
  const asyncDs = { length: 2, get: async () => ({ image: img, label: 0, index: 0 }) };
  assert.throws(() => viz.showAugmentations(asyncDs, stubFlip([])), (e) => e instanceof OptionError && /await dataset\.get\(0\)/.test(e.message));
  const ds = { length: 2, get: () => ({ image: img, label: 0, index: 0 }) };
  assert.throws(() => viz.showAugmentations(ds, stubFlip([]), { index: 2 }), /showAugmentations\(options\)\.index: expected an integer in \[0, 1\], received 2/);
  assert.throws(() => viz.showAugmentations(ds, {}), /showAugmentations\(transform\)/);
  assert.throws(() => viz.showAugmentations(ds, () => ({ output: new Float32Array(3), shape: [1, 4, 4], params: null })), /output: expected 16 numbers/);
  assert.throws(() => viz.showAugmentations(42, stubFlip([])), /showAugmentations\(dataset\)/);
});

test("describeParams: names each step, hides unused numbers and turned-off steps", () => {
  const chain = { transforms: [{ name: "RandomCrop" }, { name: "ColorJitter" }, { name: "RandomErasing" }, { name: "ToTensor" }] };
  const lines = viz.describeParams(chain, { steps: [{ top: 1, left: 2 }, { brightness: 1.23456, saturation: NaN }, { apply: false, x: 0 }, null] });
  assert.deepEqual(lines, ["crop top=1 left=2", "jitter brightness=1.23", "erase off"]);
  assert.deepEqual(viz.describeParams({ name: "RandomApply", inner: { name: "RandomVerticalFlip" } }, { apply: true, inner: { flip: true } }), ["vflip yes"]);
});

test("a loader's batch shows showBatch's grid as its notebook view, and text where the grid cannot be drawn", async () => {
  const { DataLoader, datasets, T } = require("../dist");
  const DISPLAY = Symbol.for("Jupyter.display");
  const make = (c) => {
    const pixels = new Uint8Array(4 * 6 * 5 * c).map((_, i) => (i * 37) & 255);
    return datasets.fromArrays(pixels, [4, 6, 5, c], [0, 1, 2, 1]);
  };
  const first = async (ds) => {
    const it = new DataLoader(ds, { batchSize: 4, transform: T.compose([T.toTensor()]) }).iterate();
    const b = (await it.next()).value;
    await it.return();
    return b;
  };
  const rgb = await first(make(3));
  const shown = rgb[DISPLAY]();
  const img = decodePng(Buffer.from(shown.data["image/png"], "base64"));
  assert.deepEqual(shown.metadata["image/png"], { width: img.width, height: img.height });
  assert.equal(shown.data["text/plain"], viz.showBatch(rgb).data["text/plain"]);
  // Two channels: showBatch refuses them, so the batch falls back to its text summary.
  const two = (await first(make(2)))[DISPLAY]();
  assert.deepEqual(Object.keys(two.data), ["text/plain"]);
  assert.match(two.data["text/plain"], /^Batch 0 of epoch 0: 4 x 2 x 6 x 5 float32/);
});
