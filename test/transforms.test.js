"use strict";
// Every transform against small hand-computed cases, plus option errors.
const test = require("node:test");
const assert = require("node:assert/strict");
const T = require("../dist/transforms");
const G = require("../dist/transforms/geometry");

/** A 1-channel image whose pixel (y, x) is 10*y + x. */
function grid(h, w, c = 1) {
  const data = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data[(y * w + x) * c + k] = 10 * y + x + 100 * k;
  return { data, height: h, width: w, channels: c };
}

/** Runs a single transform with fixed parameters through the reference. */
function run(t, img, params, bound = 255) {
  const ref = require("../dist/transforms/reference");
  const out = t.reference(ref.fromImage(img), params, { bound });
  return { ...out, data: Array.from(out.data) };
}

test("borderIndex follows numpy's constant, edge, reflect and symmetric padding", () => {
  const n = 3;
  const at = (mode) => [-4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => G.borderIndex(i, n, mode));
  assert.deepEqual(at("constant"), [-1, -1, -1, -1, 0, 1, 2, -1, -1, -1, -1]);
  assert.deepEqual(at("edge"), [0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2]);
  // reflect: ... 2 1 | 0 1 2 | 1 0 ..., period 4
  assert.deepEqual(at("reflect"), [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]);
  // symmetric: ... 1 0 | 0 1 2 | 2 1 ..., period 6
  assert.deepEqual(at("symmetric"), [2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]);
  assert.equal(G.borderIndex(-5, 1, "reflect"), 0, "a 1-pixel axis reflects onto itself");
});

test("randomCrop with constant padding reads the fill outside the image", () => {
  const t = T.randomCrop(3, { padding: 1, fill: 7 });
  const out = run(t, grid(2, 2), { top: 0, left: 0 });
  assert.deepEqual(out.data, [7, 7, 7, 7, 0, 1, 7, 10, 11]);
  assert.equal(out.height, 3);
});

test("randomCrop with reflect padding larger than the image", () => {
  const t = T.randomCrop([1, 7], { padding: 4, paddingMode: "reflect" });
  // row 0 of a 2x2 image [0, 1]: reflect of columns -4..2 -> 0 1 0 1 0 1 0
  const out = run(t, grid(2, 2), { top: 4, left: 0 });
  assert.deepEqual(out.data, [0, 1, 0, 1, 0, 1, 0]);
});

test("randomCrop draws offsets within the padded image and is reproducible", () => {
  const t = T.randomCrop(28, { padding: 4 });
  const img = grid(28, 28);
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const { params } = t.sample(img, { seed: 3, index: i });
    assert.ok(params.top >= 0 && params.top <= 8 && params.left >= 0 && params.left <= 8);
    seen.add(params.top);
    assert.deepEqual(t.sample(img, { seed: 3, index: i }).params, params);
  }
  assert.equal(seen.size, 9, "every vertical offset 0..8 occurs");
});

test("padIfNeeded pads both sides by the shortfall, as torchvision", () => {
  const t = T.randomCrop(4, { padIfNeeded: true });
  assert.deepEqual(t.outputShape([2, 3, 1]), [1, 4, 4]);
  assert.throws(() => T.randomCrop(4).outputShape([2, 3, 1]), /randomCrop\(size\).*padded image size 2x3/);
});

test("flips mirror the right axis", () => {
  const img = grid(2, 3);
  assert.deepEqual(run(T.randomHorizontalFlip(), img, { flip: true }).data, [2, 1, 0, 12, 11, 10]);
  assert.deepEqual(run(T.randomHorizontalFlip(), img, { flip: false }).data, [0, 1, 2, 10, 11, 12]);
  assert.deepEqual(run(T.randomVerticalFlip(), img, { flip: true }).data, [10, 11, 12, 0, 1, 2]);
});

test("centerCrop rounds the offset half to even, and pads with zeros when larger", () => {
  // (5 - 2) / 2 = 1.5 -> 2 (Python's round)
  assert.deepEqual(run(T.centerCrop([1, 2]), grid(1, 5), null).data, [2, 3]);
  // (4 - 1) / 2 = 1.5 -> 2
  assert.deepEqual(run(T.centerCrop([1, 1]), grid(1, 4), null).data, [2]);
  assert.deepEqual(run(T.centerCrop([1, 4]), grid(1, 2), null).data, [0, 0, 1, 0]);
});

test("resize bilinear uses half-pixel centres (align_corners=False)", () => {
  // 1x2 -> 1x4: source x = (o + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (i1 clamped)
  const img = { data: Uint8Array.from([0, 100]), height: 1, width: 2, channels: 1 };
  const out = run(T.resize([1, 4]), img, null);
  assert.deepEqual(out.data, [0, 25, 75, 100]);
  // 4 -> 2 downscale without antialias: x = 0.5 and 2.5 -> averages of neighbours
  const img4 = { data: Uint8Array.from([0, 10, 20, 30]), height: 1, width: 4, channels: 1 };
  assert.deepEqual(run(T.resize([1, 2], { antialias: false }), img4, null).data, [5, 25]);
  // with antialias (the default): the triangle stretched to radius 2 around centres 1 and 3,
  // weights (0.75, 0.75, 0.25) / 1.75 over pixels 0..2 and (0.25, 0.75, 0.75) / 1.75 over 1..3
  const aa = run(T.resize([1, 2]), img4, null).data;
  assert.ok(Math.abs(aa[0] - 12.5 / 1.75) < 1e-5 && Math.abs(aa[1] - 40 / 1.75) < 1e-5, `antialiased ${aa}`);
  assert.deepEqual(T.resize(14).outputShape([28, 56, 3]), [3, 14, 28], "an int sets the shorter edge");
  assert.deepEqual(run(T.resize([1, 2], { interpolation: "nearest" }), img4, null).data, [0, 20]);
});

test("randomResizedCrop parameters stay inside the image and follow scale and ratio", () => {
  const t = T.randomResizedCrop(8, { scale: [0.25, 0.5], ratio: [1, 1] });
  const img = grid(16, 16);
  for (let i = 0; i < 100; i++) {
    const { params, shape } = t.sample(img, { seed: 1, index: i });
    assert.deepEqual(shape, [1, 8, 8]);
    assert.equal(params.height, params.width, "ratio 1 gives squares");
    const area = params.height * params.width;
    assert.ok(area >= 0.25 * 256 - 16 && area <= 0.5 * 256 + 17, `area ${area}`);
    assert.ok(params.top + params.height <= 16 && params.left + params.width <= 16);
  }
  // A crop of the whole image at the same size is the identity.
  const whole = T.randomResizedCrop(4);
  const small = grid(4, 4);
  assert.deepEqual(run(whole, small, { top: 0, left: 0, height: 4, width: 4 }).data, Array.from(small.data));
});

test("toTensor divides by 255 and normalize subtracts and divides, in float32", () => {
  const img = { data: Uint8Array.from([0, 51, 255]), height: 1, width: 3, channels: 1 };
  assert.deepEqual(run(T.toTensor(), img, null).data, [0, Math.fround(51 / 255), 1]);
  const n = run(T.normalize([0.5], [0.25]), img, null);
  assert.deepEqual(n.data, [-2, Math.fround(50.5 / 0.25), Math.fround(254.5 / 0.25)]);
  assert.throws(() => T.normalize([0.5, 0.5], [0.2]), /normalize\(std\).*as many values as mean \(2\)/);
  assert.throws(() => T.normalize([0.5], [0]), /normalize\(std\): expected a positive number/);
  assert.throws(() => T.normalize([0.1, 0.2], [1, 1]).outputShape([2, 2, 3]), /1 or 3 values for a 3-channel image/);
});

test("grayscale uses 0.299 R + 0.587 G + 0.114 B", () => {
  const img = { data: Uint8Array.from([100, 200, 50]), height: 1, width: 1, channels: 3 };
  const f = Math.fround;
  const g = f(f(f(f(0.299) * 100) + f(f(0.587) * 200)) + f(f(0.114) * 50));
  assert.deepEqual(run(T.grayscale(), img, null).data, [g]);
  assert.deepEqual(run(T.grayscale(3), img, null).data, [g, g, g]);
  // the same weights in float64: 29.9 + 117.4 + 5.7 = 153
  assert.ok(Math.abs(run(T.grayscale(), img, null).data[0] - 153) < 1e-3);
  assert.throws(() => T.grayscale().outputShape([2, 2, 4]), /grayscale: input channels: expected 1 or 3 channels, received 4/);
});

test("colorJitter: brightness scales and clamps, contrast blends with the mean, saturation with gray", () => {
  const img = { data: Uint8Array.from([100, 200]), height: 1, width: 2, channels: 1 };
  const t = T.colorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5 });
  // order 0 = brightness, contrast, saturation; NaN leaves one out
  assert.deepEqual(run(t, img, { order: 0, brightness: 1.5, contrast: NaN, saturation: NaN }).data, [150, 255]);
  assert.deepEqual(run(t, img, { order: 0, brightness: NaN, contrast: 0.5, saturation: NaN }).data, [125, 175]);
  assert.deepEqual(run(t, img, { order: 0, brightness: NaN, contrast: 0, saturation: NaN }).data, [150, 150]);
  // after toTensor the bound is 1: brightness clamps at 1, not 255
  const unit = { data: Float32Array.from([0.8, 0.2]), height: 1, width: 2, channels: 1 };
  assert.deepEqual(run(t, unit, { order: 0, brightness: 2, contrast: NaN, saturation: NaN }, 1).data, [1, Math.fround(0.4)]);
  const ref = require("../dist/transforms/reference");
  const bright = ref.brightness({ data: Float32Array.from([0.8, 0.2]), height: 1, width: 2, channels: 1 }, 2, 1);
  assert.deepEqual(Array.from(bright.data), [1, Math.fround(0.4)]);
  const rgb = { data: Uint8Array.from([255, 0, 0]), height: 1, width: 1, channels: 3 };
  const s0 = run(t, rgb, { order: 0, brightness: NaN, contrast: NaN, saturation: 0 }).data;
  assert.ok(s0.every((x) => Math.abs(x - s0[0]) < 1e-4), "saturation 0 is gray");
  assert.throws(() => T.colorJitter({ hue: 0.6 }), (e) => e.option === "colorJitter.hue" && /0\.5/.test(e.message));
  assert.throws(() => T.colorJitter({ hue: [-0.6, 0.1] }), (e) => e.option === "colorJitter.hue");
  // Hue: a pure red turned by a third of the circle is pure green; gray stays gray; one channel passes.
  const hue = (rgb, factor) => run(T.colorJitter({ hue: 0.5 }), { data: Uint8Array.from(rgb), height: 1, width: 1, channels: 3 }, { order: 3, brightness: NaN, contrast: NaN, saturation: NaN, hue: factor }).data;
  assert.deepEqual(hue([255, 0, 0], 1 / 3).map(Math.round), [0, 255, 0]);
  assert.deepEqual(hue([90, 90, 90], 0.25), [90, 90, 90]);
  assert.ok(hue([200, 100, 50], 0).every((x, i) => Math.abs(x - [200, 100, 50][i]) < 1e-4), "factor 0 returns the pixel (the float32 HSV round trip, as torchvision's, is within a rounding)");
  assert.equal(new T.Plan(T.compose([T.colorJitter({ hue: 0.1 })])).fused, true, "hue is a step of the fused JITTER op");
  assert.throws(() => T.colorJitter({ brightness: -1 }), /colorJitter\.brightness: expected a finite number >= 0, received -1/);
  assert.throws(() => T.colorJitter({ brightnes: 1 }), /colorJitter\.brightnes.*no such option/);
  const draws = new Set();
  for (let i = 0; i < 300; i++) {
    const p = t.sample(rgb, { seed: 9, index: i }).params;
    draws.add(p.order);
    assert.ok(p.brightness >= 0.5 && p.brightness <= 1.5);
  }
  assert.equal(draws.size, 6, "all six orders occur");
});

test("randomErasing writes the value into a rectangle within the image", () => {
  const img = grid(4, 4);
  const out = run(T.randomErasing({ value: 9 }), img, { apply: true, y: 1, x: 2, h: 2, w: 1 });
  assert.deepEqual(out.data, [0, 1, 2, 3, 10, 11, 9, 13, 20, 21, 9, 23, 30, 31, 32, 33]);
  // p = 1 erases every time: on 20x20 with scale [0.1, 0.2] and the default ratio [0.3, 3.3],
  // every box drawn has sides of at most round(sqrt(80 * 3.3)) = 16, so the first attempt fits.
  const t = T.randomErasing({ p: 1, scale: [0.1, 0.2] });
  for (let i = 0; i < 100; i++) {
    const p = t.sample(grid(20, 20), { seed: 2, index: i }).params;
    assert.equal(p.apply, true, `draw ${i}`);
    assert.ok(p.h >= 1 && p.w >= 1 && p.y >= 0 && p.x >= 0, `draw ${i}: ${JSON.stringify(p)}`);
    assert.ok(p.y + p.h <= 20 && p.x + p.w <= 20 && p.h < 20 && p.w < 20, `draw ${i}: ${JSON.stringify(p)}`);
  }
  const never = T.randomErasing({ p: 0 });
  for (let i = 0; i < 20; i++) assert.equal(never.sample(grid(20, 20), { seed: 2, index: i }).params.apply, false);
  assert.throws(() => T.randomErasing({ value: "random" }), /randomErasing\.value.*per-pixel random values are not supported/);
  assert.throws(() => T.randomErasing({ p: 2 }), /randomErasing\.p: expected a finite number in \[0, 1\], received 2/);
});

test("compose threads shapes and bounds; randomApply keeps shape and draws inner params either way", () => {
  const t = T.compose([T.randomCrop(3), T.toTensor(), T.randomApply([T.colorJitter({ brightness: 0.5 })], 0.5)]);
  assert.deepEqual(t.outputShape([5, 5, 1]), [1, 3, 3]);
  const img = grid(5, 5);
  let applied = 0;
  for (let i = 0; i < 200; i++) {
    const r = t.sample(img, { seed: 4, index: i });
    const jitter = r.params.steps[2];
    assert.ok(jitter.inner.steps[0].brightness >= 0.5);
    if (jitter.apply) applied++;
    for (const x of r.output) assert.ok(x >= 0 && x <= 1, "clamped to the bound 1 after toTensor");
  }
  assert.ok(applied > 60 && applied < 140, `applied ${applied}/200`);
  assert.throws(() => T.randomApply([T.randomCrop(2)]).outputShape([3, 3, 1]), /randomApply\(transforms\).*keep the shape/);
  assert.throws(() => T.compose([T.toTensor(), 5]), /compose\(transforms\)\[1\]: expected a transform/);
});

test("geometry after colour steps it cannot commute with runs step by step, and the outputs agree", () => {
  const ok = new T.Plan(T.compose([T.toTensor(), T.normalize([0.5], [0.2]), T.randomCrop(2, { padding: 1 })]));
  assert.deepEqual(ok.unfused, [], "pad-and-crop after pointwise colour steps is fused (its fill rewritten by ERASE ops)");
  assert.deepEqual(ok.outputShape({ height: 3, width: 3, channels: 1 }), [1, 2, 2]);
  const jitter = new T.Plan(T.compose([T.colorJitter({ contrast: 0.5 }), T.randomCrop(2)]));
  assert.deepEqual(jitter.unfused, ["RandomCrop"], "contrast's mean sees the whole image: a crop after it cannot move ahead");
  const resample = new T.Plan(T.compose([T.toTensor(), T.resize(2)]));
  assert.deepEqual(resample.unfused, ["Resize"]);
  assert.deepEqual(resample.outputShape({ height: 3, width: 3, channels: 1 }), [1, 2, 2]);
  const mirror = new T.Plan(T.compose([T.toTensor(), T.pad(1), T.pad(2, { mode: "reflect" })]));
  assert.deepEqual(mirror.unfused, ["Pad"], "a mirror after a fill could carry fill pixels inwards");
});

test("the plan folds a chain into taps that reproduce the step-by-step geometry", () => {
  const t = T.compose([T.randomCrop(5, { padding: 2, paddingMode: "reflect" }), T.randomHorizontalFlip(), T.resize([3, 4], { antialias: false })]);
  const plan = new T.Plan(t);
  const img = grid(4, 5);
  const params = plan.draw(img, { seed: 5, epoch: 0, position: 1 });
  const job = require("../dist/engines").encodeJob(plan, [img], [params]);
  assert.equal(job.K, 2);
  assert.deepEqual([job.outC, job.outH, job.outW], [1, 3, 4]);
  // Evaluate the folded taps by hand (the ABI's geometry formula) and compare with the reference.
  const f = Math.fround;
  const folded = [];
  for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) {
    let acc = 0;
    for (let i = 0; i < 2; i++) {
      let row = 0;
      const r = job.tapIndex[y * 2 + i];
      for (let j = 0; j < 2; j++) {
        const q = job.tapIndex[3 * 2 + x * 2 + j];
        const val = r < 0 || q < 0 ? 0 : img.data[r * 5 + q];
        row = f(row + f(job.tapWeight[3 * 2 + x * 2 + j] * val));
      }
      acc = f(acc + f(job.tapWeight[y * 2 + i] * row));
    }
    folded.push(acc);
  }
  assert.deepEqual(folded, run(t, img, params).data);
});

test("mixup and cutmix mix each sample with its neighbour and weight the targets alike", () => {
  const { RandomStream } = require("../dist/sampling/rng");
  const n = 3, c = 1, h = 4, w = 4;
  const images = new Float32Array(n * 16);
  for (let i = 0; i < n; i++) images.fill(i + 1, i * 16, (i + 1) * 16);
  const labels = Int32Array.from([0, 1, 2]);
  const m = T.mixup({ alpha: 0.4, numClasses: 3 }).apply({ images, shape: [n, c, h, w], labels }, new RandomStream(1, 0, 0));
  const lam = m.params.lambda;
  assert.ok(lam > 0 && lam < 1);
  // sample 0 mixes with sample 2 (the batch rolled by one)
  assert.ok(Math.abs(m.images[0] - (lam * 1 + (1 - lam) * 3)) < 1e-5);
  assert.deepEqual(Array.from(m.targets.slice(0, 3)).map((x) => +x.toFixed(5)), [+lam.toFixed(5), 0, +(1 - lam).toFixed(5)]);
  const cm = T.cutmix({ numClasses: 3 }).apply({ images, shape: [n, c, h, w], labels }, new RandomStream(2, 0, 0));
  const { y0, x0, y1, x1 } = cm.params.box;
  const area = (y1 - y0) * (x1 - x0);
  assert.equal(cm.params.lambda, 1 - area / 16);
  const fromNeighbour = Array.from(cm.images.slice(16, 32)).filter((x) => x === 1).length;
  assert.equal(fromNeighbour, area, "the box of sample 1 comes from sample 0");
  assert.throws(() => T.mixup({ alpha: 0.2 }), /mixup\.numClasses: expected an integer >= 1, received undefined/);
  // Beta(2, 5) has mean 2/7
  const rng = new RandomStream(3, 0, 0);
  let s = 0;
  for (let i = 0; i < 4000; i++) s += T.beta(rng, 2, 5);
  assert.ok(Math.abs(s / 4000 - 2 / 7) < 0.01, `mean ${s / 4000}`);
});

test("ops shared by every sample (toTensor, normalize) cannot be changed through op()", () => {
  const shape = { height: 2, width: 2, channels: 3 };
  for (const t of [T.toTensor(), T.normalize([0.1, 0.2, 0.3], [0.5, 0.5, 0.5])]) {
    const op = t.op(shape, null, { bound: 255 });
    assert.ok(Object.isFrozen(op) && Object.isFrozen(op.params), t.name);
    assert.throws(() => op.params.push(1), TypeError);
    assert.strictEqual(t.op(shape, null, { bound: 255 }), op);
  }
});

test("pad grows each side by its padding and checks its options", () => {
  assert.deepEqual(T.pad([1, 2, 3, 4]).outputShape([5, 6, 3]), [3, 11, 10], "[left, top, right, bottom]");
  assert.deepEqual(T.pad([1, 2]).outputShape([5, 6, 1]), [1, 9, 8], "[left/right, top/bottom]");
  assert.deepEqual(run(T.pad([1, 0, 0, 0], { fill: 9 }), grid(1, 2), null).data, [9, 0, 1]);
  assert.deepEqual(run(T.pad([2, 0, 1, 0], { mode: "reflect" }), grid(1, 3), null).data, [2, 1, 0, 1, 2, 1]);
  assert.throws(() => T.pad(-1), (e) => e.option === "pad(padding)" && /non-negative integer/.test(e.message));
  assert.throws(() => T.pad(1, { mode: "wrap" }), (e) => e.option === "pad.mode" && /constant/.test(e.message));
  assert.throws(() => T.pad(1, { fill: [1, 2] }).outputShape([4, 4, 3]), (e) => e.option === "pad.fill" && /1 or 3 values/.test(e.message));
  assert.throws(() => T.resize([4, 4], { maxSize: 9 }), (e) => e.option === "resize.maxSize");
  assert.throws(() => T.resize(8, { maxSize: 8 }), (e) => e.option === "resize.maxSize", "maxSize must exceed the short edge");
  assert.deepEqual(T.resize(8, { maxSize: 12 }).outputShape([10, 20, 1]), [1, 6, 12], "the long edge capped, the short one scaled down with it");
  assert.throws(() => T.resize(8, { interpolation: "lanczos" }), (e) => e.option === "resize.interpolation" && /bicubic/.test(e.message));
});

test("warps: a rotated pixel lands where mapPoint's inverse says, options are checked, identity angles change nothing", () => {
  const W = require("../dist/transforms/warp");
  // One bright pixel at (x 6, y 2) of a 9 x 11 image, rotated 90 degrees counter-clockwise about the centre.
  const img = { data: new Uint8Array(9 * 11), height: 9, width: 11, channels: 1 };
  img.data[2 * 11 + 6] = 200;
  const t = T.randomRotation([90, 90]);
  const out = run(t, img, { angle: 90 });
  const at = out.data.indexOf(200);
  assert.equal(out.data.filter((v) => v === 200).length, 1, "nearest moves the pixel, it does not blur it");
  const [ox, oy] = [at % 11, Math.floor(at / 11)];
  // The sample's matrix maps that output pixel's centre back onto the source pixel's centre.
  const m = t.matrix({ height: 9, width: 11, channels: 1 }, { angle: 90 });
  const [sx, sy] = W.mapPoint(m, ox + 0.5, oy + 0.5);
  assert.ok(Math.abs(sx - 6.5) < 1e-9 && Math.abs(sy - 2.5) < 1e-9, `source point ${sx}, ${sy}`);
  // Counter-clockwise on screen: the source centre is at (6.5, 2.5), 1 right of and 2 above the
  // image centre (5.5, 4.5); right turns into up and up into left, so it lands 2 left, 1 up.
  assert.deepEqual([ox, oy], [3, 3]);
  assert.deepEqual(run(T.randomRotation(0), img, { angle: 0 }).data, Array.from(img.data), "angle 0 is the identity");
  assert.deepEqual(run(T.randomAffine({ degrees: 0 }), img, { angle: 0, translate: [0, 0], scale: 1, shear: [0, 0] }).data, Array.from(img.data));
  assert.throws(() => T.randomRotation(10, { expand: "yes" }), (e) => e.option === "randomRotation.expand");
  assert.throws(() => T.randomRotation(10, { interpolation: "lanczos" }), (e) => e.option === "randomRotation.interpolation" && /nearest, bilinear or bicubic|"nearest", "bilinear", "bicubic"/.test(e.message));
  assert.throws(() => T.randomAffine({}), (e) => e.option === "randomAffine.degrees" && /required/.test(e.message));
  assert.throws(() => T.randomAffine({ degrees: 5, translate: [0.5, 2] }), (e) => e.option === "randomAffine.translate");
  assert.throws(() => T.randomPerspective({ distortionScale: 1.5 }), (e) => e.option === "randomPerspective.distortionScale");
  assert.throws(() => T.randomRotation(5, { center: [1] }), (e) => e.option === "randomRotation.center");
});

test("randomZoomOut: torchvision v2's draw (coin, side ratio, position), the image on its canvas, options checked", () => {
  const img = { data: Uint8Array.from([1, 2, 3, 4, 5, 6]), height: 2, width: 3, channels: 1 };
  const t = T.randomZoomOut({ fill: 9, sideRange: [2, 2], p: 1 });
  const q = { apply: true, left: 1, top: 2, padding: [1, 2, 2, 0], canvas: [4, 6] };
  const out = run(t, img, q);
  assert.deepEqual([out.height, out.width], [4, 6]);
  assert.deepEqual(out.data, [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9, 9]);
  assert.deepEqual(run(t, img, { apply: false, left: 0, top: 0, padding: [0, 0, 0, 0], canvas: [2, 3] }).data, [1, 2, 3, 4, 5, 6], "a coin that says no leaves the image");
  // Every draw: canvas int(side * r) with r in sideRange, the image inside it, padding adding up.
  const { RandomStream } = require("../dist/sampling/rng");
  const z = T.randomZoomOut({ sideRange: [1.5, 3], p: 0.7 });
  let applied = 0;
  for (let i = 0; i < 2000; i++) {
    const p = z.draw(new RandomStream(5, 0, i), { height: 37, width: 53, channels: 3 });
    const [ch, cw] = p.canvas;
    const [l, tp, r, b] = p.padding;
    assert.ok(l === p.left && tp === p.top && l + 53 + r === cw && tp + 37 + b === ch && Math.min(l, tp, r, b) >= 0, JSON.stringify(p));
    if (p.apply) {
      applied++;
      assert.ok(cw >= Math.floor(53 * 1.5) && cw <= 53 * 3 && ch >= Math.floor(37 * 1.5) && ch <= 37 * 3, JSON.stringify(p));
    } else assert.deepEqual(p.canvas, [37, 53]);
  }
  assert.ok(Math.abs(applied / 2000 - 0.7) < 0.05, `applied ${applied} of 2000 at p = 0.7`);
  assert.throws(() => T.randomZoomOut({ sideRange: [0.5, 2] }), (e) => e.option === "randomZoomOut.sideRange" && />= 1/.test(e.message));
  assert.throws(() => T.randomZoomOut({ p: 2 }), (e) => e.option === "randomZoomOut.p");
  assert.throws(() => T.randomZoomOut({ fill: [1, 2] }).outputShape([4, 4, 3]), (e) => e.option === "randomZoomOut.fill");
  assert.throws(() => T.randomZoomOut({ side: [1, 2] }), (e) => e.option === "randomZoomOut.side");
});

test("randomRotation with expand: torchvision's output size, the whole image kept; a size drawn per sample needs a fixed-size step", () => {
  const { expandedSize } = require("../dist/transforms/library");
  const { inverseAffine } = require("../dist/transforms/warp");
  const size = (angle, w, h) => expandedSize(inverseAffine([0, 0], -angle, [0, 0], 1, [0, 0]), w, h);
  assert.deepEqual(size(0, 11, 9), [11, 9]);
  assert.deepEqual(size(90, 11, 9), [9, 11], "a quarter turn swaps the sides (the 1e-4 cut keeps cos 90 from adding a pixel)");
  assert.deepEqual(size(45, 10, 10), [16, 16], "corners at +-7.07 about the centre: [-2.07, 12.07] rounded outwards");
  assert.deepEqual(size(180, 7, 5), [7, 5]);
  // Every source pixel survives a rotation with expand (nearest: each lands somewhere).
  const img = { data: Uint8Array.from({ length: 9 * 11 }, (_, i) => 1 + (i % 250)), height: 9, width: 11, channels: 1 };
  const t = T.randomRotation([30, 30], { expand: true });
  const out = run(t, img, { angle: 30 });
  assert.deepEqual([out.height, out.width], [size(30, 11, 9)[1], size(30, 11, 9)[0]]);
  assert.equal(out.data.filter((v) => v !== 0).length >= 9 * 11 - 4, true, "the rotated image is all inside the canvas");
  // A chain must end with one size per batch.
  const chainOut = (steps) => T.compose(steps).outputShape([9, 11, 1]);
  assert.throws(() => chainOut([t, T.toTensor()]), (e) => e.option === "compose: output size" && e.received === "RandomRotation" && /centerCrop/.test(e.message));
  assert.throws(() => chainOut([T.randomZoomOut(), T.resize(8)]), (e) => e.received === "RandomZoomOut", "an int resize keeps the aspect ratio: still per sample");
  assert.throws(() => chainOut([T.randomZoomOut(), T.randomCrop(4)]), (e) => e.option === "randomCrop after RandomZoomOut");
  assert.throws(() => chainOut([T.randomApply([T.randomZoomOut()]), T.resize([4, 4])]), (e) => e.option === "randomApply(transforms)" && /own p/.test(e.message));
  assert.throws(() => new T.Plan(T.randomZoomOut()).outputShape({ height: 9, width: 11, channels: 1 }), (e) => e.received === "RandomZoomOut");
  assert.deepEqual(chainOut([t, T.randomHorizontalFlip(), T.centerCrop([8, 6]), T.toTensor()]), [1, 8, 6]);
  assert.deepEqual(chainOut([T.randomZoomOut(), T.resize(8), T.randomResizedCrop(5)]), [1, 5, 5]);
  assert.deepEqual(chainOut([T.randomZoomOut(), T.randomCrop(5, { padIfNeeded: true })]), [1, 5, 5]);
  // Later steps draw for each sample's own size (a resized crop inside the canvas).
  const plan = new T.Plan(T.compose([T.randomZoomOut({ p: 1 }), T.randomResizedCrop(5, { scale: [0.9, 1] })]));
  for (let i = 0; i < 50; i++) {
    const p = plan.draw({ height: 9, width: 11, channels: 1 }, { seed: 2, epoch: 0, position: i }).steps;
    assert.ok(p[1].top + p[1].height <= p[0].canvas[0] && p[1].left + p[1].width <= p[0].canvas[1] && p[1].width > 11 * 0.9, JSON.stringify(p));
  }
});

test("a chain with a warp runs as one fused plan on every CPU engine, with the same pixels", async () => {
  const { DataLoader, datasets } = require("../dist");
  const n = 6;
  const pixels = new Uint8Array(n * 12 * 10 * 3).map((_, i) => (i * 37) % 251);
  const ds = datasets.fromArrays(pixels, [n, 12, 10, 3], Int32Array.from({ length: n }, (_, i) => i % 3));
  const transform = T.compose([T.randomCrop(10, { padding: 2 }), T.randomRotation(30, { interpolation: "bilinear" }), T.toTensor(), T.randomPerspective({ p: 1 })]);
  // A colour step between two warps: this one still runs step by step.
  assert.deepEqual(new T.Plan(transform).unfused, ["ToTensor"]);
  assert.deepEqual(new T.Plan(T.compose(transform.transforms.slice(0, 3))).unfused, [], "crop, rotation and toTensor: one plan");
  for (const chain of [transform, T.compose(transform.transforms.slice(0, 3))]) {
    const outs = [];
    for (const backend of ["reference", "native"]) {
      const loader = new DataLoader(ds, { batchSize: 4, seed: 4, transform: chain, backend });
      const got = [];
      for await (const b of loader) got.push(Array.from(b.images));
      outs.push(got.flat());
    }
    assert.equal(outs[0].length, n * 3 * 10 * 10);
    assert.deepEqual(outs[1], outs[0], `${chain}`);
    assert.ok(outs[0].some((v) => v !== 0));
  }
});

test("photometric ops on hand-computed cases, in the units in force, and their option errors", () => {
  const img = { data: Uint8Array.from([0, 10, 127, 128, 200, 255]), height: 2, width: 3, channels: 1 };
  const on = { apply: true };
  assert.deepEqual(run(T.randomInvert(), img, on).data, [255, 245, 128, 127, 55, 0]);
  assert.deepEqual(run(T.randomInvert(), img, { apply: false }).data, [0, 10, 127, 128, 200, 255]);
  assert.deepEqual(run(T.randomSolarize(128), img, on).data, [0, 10, 127, 127, 55, 0], "at or above the threshold");
  assert.deepEqual(run(T.randomPosterize(2), img, on).data, [0, 0, 64, 128, 192, 192], "the top two bits of each level");
  // After toTensor the same levels, in 0..1: 127.5/255 rounds half to even to level 128.
  const unit = { data: new Float32Array([0, 127.5 / 255, 1]), height: 1, width: 3, channels: 1 };
  const ref = require("../dist/transforms/reference");
  const post = T.randomPosterize(1).reference(unit, on, { bound: 1 });
  assert.deepEqual(Array.from(post.data), [0, Math.fround(128 / 255), Math.fround(128 / 255)]);
  assert.deepEqual(run(T.randomAutocontrast(), { data: Uint8Array.from([50, 100, 150]), height: 1, width: 3, channels: 1 }, on).data, [0, 127.5, 255]);
  assert.deepEqual(run(T.randomAutocontrast(), { data: Uint8Array.from([7, 7]), height: 1, width: 2, channels: 1 }, on).data, [7, 7], "a flat channel is left alone");
  // Equalize: 4 pixels at levels 0, 0, 1, 2: step = floor((4 - 1) / 255) = 0, so no change;
  // 510 pixels at level 10 and 255 at level 20: step = floor(510 / 255) = 2; lut[10] = floor((0 + 1) / 2) = 0, lut[20] = floor((510 + 1) / 2) = 255.
  assert.deepEqual(run(T.randomEqualize(), { data: Uint8Array.from([0, 0, 1, 2]), height: 2, width: 2, channels: 1 }, on).data, [0, 0, 1, 2]);
  const many = { data: new Uint8Array(765).fill(10).fill(20, 510), height: 1, width: 765, channels: 1 };
  const eq = run(T.randomEqualize(), many, on).data;
  assert.deepEqual([eq[0], eq[764]], [0, 255]);
  // Sharpness factor 0 is the smoothed image: the centre of a 3 x 3 with one bright pixel is 5/13 of it.
  const dot = { data: Uint8Array.from([0, 0, 0, 0, 130, 0, 0, 0, 0]), height: 3, width: 3, channels: 1 };
  assert.deepEqual(run(T.randomAdjustSharpness(0), dot, on).data, [0, 0, 0, 0, 50, 0, 0, 0, 0]);
  assert.deepEqual(run(T.randomChannelPermutation(), grid(1, 2, 3), { permutation: [2, 0, 1] }).data, [200, 0, 100, 201, 1, 101]);
  // Gaussian kernel: symmetric, sums to one, torchvision's float32 values for k = 3, sigma = 1.
  const k = Array.from(T.gaussianKernel(3, 1));
  assert.equal(k[0], k[2]);
  assert.ok(Math.abs(k[0] - 0.27406862) < 1e-7 && Math.abs(k[1] - 0.45186275) < 1e-7, `kernel ${k}`);
  const flat = run(T.gaussianBlur(5, { sigma: 1.2 }), { data: new Uint8Array(7 * 6).fill(90), height: 7, width: 6, channels: 1 }, { sigma: 1.2 }).data;
  assert.ok(flat.every((x) => Math.abs(x - 90) < 1e-4), "a flat image stays flat (reflect borders)");
  assert.deepEqual(ref.fromImage(img).data.length, 6);
  assert.throws(() => T.randomPosterize(9), (e) => e.option === "randomPosterize(bits)" && /8/.test(e.message));
  assert.throws(() => T.randomSolarize("128"), (e) => e.option === "randomSolarize(threshold)");
  assert.throws(() => T.randomInvert({ p: 2 }), (e) => e.option === "randomInvert.p");
  assert.throws(() => T.randomEqualize({ q: 1 }), (e) => /randomEqualize/.test(e.message) && /q/.test(e.message));
  assert.throws(() => T.randomAdjustSharpness(-1), (e) => e.option === "randomAdjustSharpness(sharpnessFactor)");
  assert.throws(() => T.gaussianBlur(4), (e) => e.option === "gaussianBlur(kernelSize)[0]" && /odd/.test(e.message));
  assert.throws(() => T.gaussianBlur([3, 3], { sigma: [2, 1] }), (e) => e.option === "gaussianBlur.sigma");
  assert.throws(() => T.gaussianBlur([3]), (e) => e.option === "gaussianBlur(kernelSize)" && /kx, ky/.test(e.message));
});

test("gaussianNoise adds mean + sigma * N(0, 1) per value from the sample's own field: reproducible, new per sample, normal (KS), uncorrelated, clipped", () => {
  const img = { height: 120, width: 100, channels: 3, data: new Float32Array(36000).fill(0.5) };
  const { RandomStream, Purpose } = require("../dist/sampling/rng");
  const raw = T.gaussianNoise({ mean: 0.01, sigma: 0.1, clip: false });
  const p = raw.draw(new RandomStream(1, 0, 0, Purpose.transform), img);
  const a = raw.reference(img, p, { bound: 1 }).data;
  assert.deepEqual(raw.reference(img, p, { bound: 1 }).data, a, "the same parameters, the same noise");
  const q = raw.draw(new RandomStream(1, 0, 1, Purpose.transform), img);
  const b = raw.reference(img, q, { bound: 1 }).data;
  assert.notDeepEqual(b, a, "another sample, another field");
  // z recovered from the output: a standard normal sample (two-sample-free KS against Phi)
  const z = Array.from(a, (x) => (x - 0.5 - 0.01) / 0.1).sort((x, y) => x - y);
  const erf = (x) => {
    // Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7)
    const t = 1 / (1 + 0.3275911 * Math.abs(x));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
    return x >= 0 ? y : -y;
  };
  const phi = (x) => 0.5 * (1 + erf(x / Math.SQRT2));
  let D = 0;
  z.forEach((x, i) => (D = Math.max(D, Math.abs(phi(x) - i / z.length), Math.abs(phi(x) - (i + 1) / z.length))));
  assert.ok(D < 1.63 / Math.sqrt(z.length), `KS distance ${D} to N(0, 1) over ${z.length} values (p = 0.01 bound ${1.63 / Math.sqrt(z.length)})`);
  const tails = z.filter((x) => Math.abs(x) > 3).length / z.length;
  assert.ok(Math.abs(tails - 0.0027) < 0.0012, `beyond 3 sigma: ${tails}`);
  // neighbouring values (the next channel, the next pixel) and two samples' fields are uncorrelated
  const corr = (u, v) => {
    const n = u.length;
    const mu = u.reduce((s, x) => s + x, 0) / n;
    const mv = v.reduce((s, x) => s + x, 0) / n;
    let suv = 0, su = 0, sv = 0;
    for (let i = 0; i < n; i++) {
      suv += (u[i] - mu) * (v[i] - mv);
      su += (u[i] - mu) ** 2;
      sv += (v[i] - mv) ** 2;
    }
    return suv / Math.sqrt(su * sv);
  };
  const av = Array.from(a);
  for (const [what, lag] of [["channel", 1], ["pixel", 3], ["row", 300]]) {
    const r = corr(av.slice(0, -lag), av.slice(lag));
    assert.ok(Math.abs(r) < 4 / Math.sqrt(av.length), `correlation with the next ${what}: ${r}`);
  }
  assert.ok(Math.abs(corr(av, Array.from(b))) < 4 / Math.sqrt(av.length), "two samples' fields are uncorrelated");
  const clipped = T.gaussianNoise({ mean: 0.01, sigma: 0.1 });
  const hot = clipped.reference({ ...img, data: new Float32Array(36000).fill(0.98) }, p, { bound: 1 }).data;
  assert.ok(Math.max(...hot) === 1 && Math.min(...hot) >= 0, "clipped to [0, bound]");
  assert.throws(() => T.gaussianNoise({ sigma: -1 }), (e) => e.option === "gaussianNoise.sigma");
  assert.throws(() => T.randomPhotometricDistort({ hue: [-0.7, 0] }), (e) => e.option === "randomPhotometricDistort.hue");
});

test("elasticTransform: torchvision's options checked, a control grid of displacements in pixels, alpha 0 is the identity", () => {
  const { describeParams } = require("../dist/viz/images");
  const img = grid(12, 15);
  const t = T.elasticTransform({ alpha: 40, sigma: 3, grid: 5 });
  const { params, output } = t.sample(img, { seed: 2 });
  assert.equal(params.displacement.length, 2 * 5 * 5, "(dx, dy) per control point");
  assert.ok(params.displacement.some((d) => Math.abs(d) > 0.1), "it moves pixels");
  assert.equal(output.length, 12 * 15);
  assert.deepEqual(run(T.elasticTransform({ alpha: 0 }), img, T.elasticTransform({ alpha: 0 }).sample(img).params).data, Array.from(img.data), "alpha 0: every displacement is 0");
  const line = describeParams(T.compose([t]), { steps: [params] })[0];
  assert.match(line, /displacement=\[50 numbers, \|max\| /, "the view summarises the grid");
  assert.throws(() => T.elasticTransform({ grid: 1 }), (e) => e.option === "elasticTransform.grid");
  assert.throws(() => T.elasticTransform({ alpha: -1 }), (e) => e.option === "elasticTransform.alpha");
  assert.throws(() => T.elasticTransform({ interpolation: "nearest-exact" }), (e) => e.option === "elasticTransform.interpolation");
  assert.throws(() => T.elasticTransform({ sigmas: 2 }), (e) => /sigmas/.test(e.message));
});
