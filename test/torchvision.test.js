"use strict";
// batchlab against torchvision 0.14: each chain draws its parameters in batchlab, runs on
// batchlab's reference engine (the native engines equal it bit for bit: parity.test.js), and
// the same parameters are replayed through torchvision's functional ops
// (test/helpers/torchvision_replay.py) on float32 tensors. Each chain states its bound and why.
const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const T = require("../dist/transforms");
const { gammaQ } = require("./helpers/stats");
const { encodeJob, executePlan } = require("../dist/engines");

const PY = "/usr/bin/python3";
const REPLAY = path.join(__dirname, "helpers", "torchvision_replay.py");
const haveTorchvision = fs.existsSync(PY) && spawnSync(PY, ["-c", "import torchvision"]).status === 0;
const skip = haveTorchvision ? false : "Debian's python3-torchvision is not installed (npm test's setup installs it)";

/** The structure torchvision needs to replay a chain: names and options, recursively. */
function describe(t) {
  const d = { name: t.name, options: t.options };
  if (t.transforms) d.transforms = t.transforms.map(describe);
  if (t.inner) d.inner = describe(t.inner);
  return d;
}

/**
 * Test images: smooth and noisy synthetic ones of odd sizes, 1 and 3 channels, Fashion-MNIST,
 * and real photos (Debian's plasma-workspace-wallpapers, which npm test's setup installs),
 * decoded and shrunk by sharp to a few dozen pixels so that the replays stay quick.
 */
async function images() {
  const out = [];
  let x = 99;
  const rnd = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24);
  for (const [h, w, c] of [[23, 31, 3], [17, 12, 1], [40, 29, 3], [9, 9, 3]]) {
    const noisy = new Uint8Array(h * w * c).map(rnd);
    const smooth = new Uint8Array(h * w * c);
    for (let y = 0; y < h; y++) for (let q = 0; q < w; q++) for (let k = 0; k < c; k++) smooth[(y * w + q) * c + k] = Math.round(127.5 + 127 * Math.sin(y / 3 + k) * Math.cos(q / 4));
    out.push({ data: noisy, height: h, width: w, channels: c, noisy: true }, { data: smooth, height: h, width: w, channels: c });
  }
  const idx = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  if (fs.existsSync(idx)) {
    const raw = require("node:zlib").gunzipSync(fs.readFileSync(idx));
    for (const i of [0, 1, 7]) out.push({ data: raw.subarray(16 + i * 784, 16 + (i + 1) * 784), height: 28, width: 28, channels: 1 });
  }
  const dir = "/usr/share/wallpapers";
  const photos = fs.existsSync(dir)
    ? fs.readdirSync(dir).sort().map((d) => path.join(dir, d, "contents", "images")).filter((d) => fs.existsSync(d))
        .map((d) => path.join(d, fs.readdirSync(d).filter((f) => f.endsWith(".jpg")).sort()[0] ?? "")).filter((f) => f.endsWith(".jpg")).slice(0, 2)
    : [];
  const sharp = require("sharp");
  for (const [k, file] of photos.entries()) {
    const [w, h] = k === 0 ? [47, 33] : [36, 41];
    const data = await sharp(file).resize(w, h, { fit: "fill" }).removeAlpha().raw().toBuffer();
    out.push({ data: new Uint8Array(data), height: h, width: w, channels: 3, photo: file });
  }
  return out;
}

const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");

/** What the engines compute for one image: the fused plan's TypeScript executor, with sample()'s draw. */
function planSample(tf, img, seed, index) {
  const plan = new T.Plan(tf);
  assert.deepEqual(plan.unfused, [], `${tf} is one fused plan`);
  const params = plan.draw(img, { seed, epoch: 0, position: index });
  const job = encodeJob(plan, [img], [params]);
  const output = new Float32Array(job.outC * job.outH * job.outW);
  executePlan(job, output);
  return { output, shape: [job.outC, job.outH, job.outW], params };
}

/**
 * [label, chain factory, bound on max |difference|, why, { plan }]. Differences are in the value
 * units at the end of the chain (0..255 before toTensor, 0..1 after, normalized units after
 * normalize). Chains marked plan are measured on the fused plan's pixels (what every engine
 * computes: a warp folds the geometry around it into one resampling), the others on the
 * step-by-step reference (the same bits as the plan where nothing folds: parity.test.js).
 */
const CHAINS = [
  ["centerCrop, smaller and larger (every (crop - image) % 4)", (img) => T.centerCrop([img.height - 3, img.width + 5]), 0, "integer geometry: the same pixels"],
  ["centerCrop larger by 3, 6, 7", (img) => T.centerCrop([img.height + 3, img.width + 7]), 0, "integer geometry: the same pixels"],
  ["centerCrop larger by 6, 4", (img) => T.centerCrop([img.height + 6, img.width + 4]), 0, "integer geometry"],
  ["randomCrop with constant padding, flips", () => T.compose([T.randomCrop(20, { padding: 4, padIfNeeded: true, fill: 9 }), T.randomHorizontalFlip(), T.randomVerticalFlip()]), 0, "integer geometry"],
  ["randomCrop reflect / edge / symmetric padding", () => T.compose([T.randomCrop([15, 22], { padding: [3, 5, 2, 6], paddingMode: "reflect" }), T.randomCrop(14, { padding: 2, paddingMode: "edge" }), T.randomCrop(13, { padding: 1, paddingMode: "symmetric" })]), 0, "integer geometry"],
  ["pad: constant with a fill per channel, edge, reflect, symmetric", (img) => T.compose([T.pad([1, 2, 3, 4], { fill: img.channels === 3 ? [10, 20, 30] : 7 }), T.pad(3, { mode: "edge" }), T.pad([2, 5], { mode: "reflect" }), T.pad([4, 1, 0, 2], { mode: "symmetric" })]), 0, "integer geometry"],
  ["resize nearest (up and down)", () => T.compose([T.resize([37, 11], { interpolation: "nearest" }), T.resize(19, { interpolation: "nearest" })]), 0, "torch's float32 nearest index, reproduced exactly"],
  ["resize bilinear, no antialias (short side)", () => T.resize(13), 1e-3, "torch's float32 source coordinates and weights; the sums are the same products in the same order up to a few ulps of 255"],
  ["randomResizedCrop bilinear", () => T.compose([T.randomResizedCrop([16, 21], { scale: [0.2, 1] }), T.randomHorizontalFlip()]), 1e-3, "crop and resize folded into one tap table: the same float32 weights"],
  ["resize bilinear, antialiased (down 1.3x to 4x)", (img) => T.resize([Math.max(1, Math.round(img.height / 2.5)), Math.max(1, Math.round(img.width / 1.3))]), 1e-3, "PIL's and torch's footprint filter with torch's float32 weights"],
  ["resize bicubic, antialiased, int size with maxSize", (img) => T.resize(Math.max(2, Math.floor(Math.min(img.height, img.width) / 3)), { interpolation: "bicubic", maxSize: Math.floor(Math.max(img.height, img.width) / 2.5) }), 1e-3, "Keys' cubic (a = -0.5) over the footprint, float32 weights"],
  ["resize bicubic without antialias, up and down", () => T.compose([T.resize([31, 9], { interpolation: "bicubic", antialias: false }), T.resize([13, 20], { interpolation: "bicubic", antialias: false })]), 2e-2, "Keys' cubic (a = -0.75), edge-clamped; two resamplings folded into one tap table: the intermediate is not rounded, sums in another order (bicubic overshoots to about 1.3 x 255)"],
  ["resize nearest-exact", () => T.resize([19, 7], { interpolation: "nearest-exact" }), 0, "torch's nearest-exact index in float32"],
  ["randomResizedCrop bicubic antialiased", () => T.randomResizedCrop([8, 11], { interpolation: "bicubic", scale: [0.3, 1] }), 1e-3, "crop, then the footprint filter"],
  ["randomRotation nearest, about the centre and about a point", (img) => T.compose([T.randomRotation(40), T.randomRotation([-10, 170], { center: [2, img.height - 3], fill: 50 })]), 0, "nearest: the same source pixel (float32 grid; a point exactly half-way is measure zero)"],
  ["randomRotation bilinear with a fill per channel", (img) => T.randomRotation(180, { interpolation: "bilinear", fill: img.channels === 3 ? [10, 200, 30] : 90 }), 5e-3, "the same bilinear weights and fill blend; torch builds the grid another way (normalised coordinates, a batched matmul), so source points agree to about 1e-5 pixel: times a step of up to 255 between neighbours on noise"],
  ["randomAffine: degrees, translate, scale, shear x and y", () => T.randomAffine({ degrees: 25, translate: [0.2, 0.1], scale: [0.7, 1.3], shear: [-10, 10, -5, 5], interpolation: "bilinear" }), 5e-3, "as rotation"],
  ["randomRotation and randomAffine bicubic (fill per channel)", (img) => T.compose([T.randomRotation(180, { interpolation: "bicubic", fill: img.channels === 3 ? [10, 200, 30] : 90 }), T.randomAffine({ degrees: 20, translate: [0.1, 0.1], scale: [0.8, 1.2], shear: [-10, 10], interpolation: "bicubic", fill: 40 })]), 6e-3, "torch's grid_sample bicubic (a = -0.75) through torchvision's own grid and fill blend (0.14 refuses bicubic tensors at its argument check only; the replay widens it): source points agree to about 1e-5 pixel as bilinear, times the cubic's steeper slope (up to 1.25 x the step between neighbours), through two resamplings (measured 1.9e-3)"],
  ["randomPerspective and elasticTransform bicubic", (img) => T.compose([T.randomPerspective({ p: 0.8, distortionScale: 0.5, interpolation: "bicubic", fill: 20 }), T.elasticTransform({ alpha: 20, sigma: 4, interpolation: "bicubic", fill: 20 })]), 1.2e-2, "as bicubic rotation; the perspective's least-squares corners and the elastic field handed over in double as in the bilinear replays (measured 4.8e-3)"],
  ["plan: randomRotation bicubic", (img) => T.randomRotation(180, { interpolation: "bicubic", fill: img.channels === 3 ? [10, 200, 30] : 90 }), 6e-3, "one warp, nothing folded: the plan's pass is the step-by-step bicubic warp (measured 1.8e-3)", { plan: true }],
  ["randomPerspective bilinear", () => T.compose([T.toTensor(), T.randomPerspective({ p: 0.8, distortionScale: 0.6, interpolation: "bilinear", fill: 0.5 })]), 5e-3 / 255 * 20, "torchvision solves the corner system by float32 least squares, batchlab exactly: the source points differ by about 1e-5 pixel"],
  // The fused plan of warp chains.
  ["plan: randomRotation bilinear with a fill per channel", (img) => T.randomRotation(180, { interpolation: "bilinear", fill: img.channels === 3 ? [10, 200, 30] : 90 }), 5e-3, "one warp, nothing folded: the plan's pass is the step-by-step warp", { plan: true }],
  ["plan: randomAffine nearest", () => T.randomAffine({ degrees: 25, translate: [0.2, 0.1], scale: [0.7, 1.3], shear: [-10, 10, -5, 5] }), 0, "nearest: the same source pixel", { plan: true }],
  ["plan: randomPerspective after toTensor (fill taken back to pixel units)", () => T.compose([T.toTensor(), T.randomPerspective({ p: 0.8, distortionScale: 0.6, interpolation: "bilinear", fill: 0.5 })]), 5e-3 / 255 * 20, "as the step-by-step perspective: the fill goes through toTensor's division (fill * 255 / 255, one rounding)", { plan: true }],
  ["plan: elasticTransform bilinear (the same field handed to torchvision)", (img) => T.elasticTransform({ alpha: 30, sigma: 4, fill: img.channels === 3 ? [5, 100, 250] : 60 }), 1e-2, "torchvision gets batchlab's control grid interpolated in double and normalised; the float32 source points differ by about 1e-5 pixel, times steps of up to 255 between neighbours on noise", { plan: true }],
  ["plan: flip, nearest rotation, flip (integer steps folded)", () => T.compose([T.randomHorizontalFlip(), T.randomRotation(30), T.randomVerticalFlip()]), 0, "folding flips into a nearest warp moves no sample point off its source pixel", { plan: true }],
  ["plan: flip, padded crop, bilinear rotation (folded)", () => T.compose([T.randomHorizontalFlip(), T.randomCrop(20, { padding: 4, padIfNeeded: true }), T.randomRotation(30, { interpolation: "bilinear" })]), 5e-3, "the padding is read as fill pixels (real window) and the crop and flip are exact translations: the same bilinear weights up to the matrix's float32 rounding", { plan: true }],
  ["plan: antialiased randomResizedCrop, then rotation (a separable pass before the warp)", () => T.compose([T.randomResizedCrop([16, 21], { scale: [0.3, 1] }), T.randomRotation(20, { interpolation: "bilinear" })]), 5e-3, "the resized crop's taps as torch's, then the warp on that image: the step-by-step chain's pixels", { plan: true }],
  ["plan: rotation then resize, folded into one resampling (sharper; noise images)", (img) => (img.noisy ? T.compose([T.randomRotation(30, { interpolation: "bilinear" }), T.resize([15, 13], { antialias: false })]) : null), 255, "one bilinear resampling where torchvision resamples twice: on noise a pixel may differ by most of the range (see the mean); the max is not bounded; the mean is (measured 15.4)", { plan: true, mean: 20 }],
  ["plan: rotation then resize, folded (smooth images, Fashion-MNIST)", (img) => (img.noisy ? null : T.compose([T.randomRotation(30, { interpolation: "bilinear" }), T.resize([15, 13], { antialias: false })])), 255, "as above, on images with edges: the second resampling's blur is missing, most at the fill edge of the rotation; the mean is bounded (measured 4.1)", { plan: true, mean: 6 }],
  ["plan: two bilinear warps folded into one (sharper; smooth images, Fashion-MNIST)", (img) => (img.noisy ? null : T.compose([T.randomRotation(20, { interpolation: "bilinear" }), T.randomAffine({ degrees: 10, scale: [0.8, 1.2], interpolation: "bilinear" })])), 255, "one resampling where torchvision resamples twice, and the first warp's fill edge blended at the point, not per intermediate pixel; the mean is bounded (measured 3.4)", { plan: true, mean: 5 }],
  // Sizes drawn per sample, then a fixed-size step.
  ["randomZoomOut (fill per channel), then an antialiased resize", (img) => T.compose([T.randomZoomOut({ fill: img.channels === 3 ? [10, 200, 30] : 90, p: 0.8 }), T.resize([Math.max(1, img.height - 2), img.width + 3])]), 1e-3, "F.pad with the drawn padding, then the footprint filter: the pad's taps compose with the resize's into the same weights on the same pixels"],
  ["randomZoomOut, flip, centerCrop", (img) => T.compose([T.randomZoomOut({ fill: 7, sideRange: [1, 2], p: 0.8 }), T.randomHorizontalFlip(), T.centerCrop([img.height + 4, img.width + 2])]), 0, "integer geometry"],
  ["plan: randomRotation expand (nearest), centerCrop", (img) => T.compose([T.randomRotation(180, { expand: true }), T.centerCrop([img.height + 2, img.width])]), 0, "F.rotate(expand=True)'s size (_compute_affine_output_size, reproduced in float32) and grid: the same source pixel", { plan: true }],
  ["plan: randomRotation expand about a point (bilinear, fill per channel), then an antialiased resize", (img) => T.compose([T.randomRotation([-50, 120], { expand: true, interpolation: "bilinear", center: [1, img.height - 2], fill: img.channels === 3 ? [10, 200, 30] : 90 }), T.resize([img.height, Math.max(1, img.width - 3)])]), 6e-3, "the warp as plain rotation (5e-3), then the same footprint filter on the expanded image (its weights sum to 1)", { plan: true }],
  ["plan: zoom out, rotation with expand, resize folded into one resampling (smooth images, Fashion-MNIST)", (img) => (img.noisy ? null : T.compose([T.randomZoomOut({ p: 0.7 }), T.randomRotation(30, { expand: true, interpolation: "bilinear" }), T.resize([img.height, img.width], { antialias: false })])), 255, "one bilinear resampling where torchvision pads, rotates and resizes (two resamplings); the mean is bounded (measured 2.2)", { plan: true, mean: 4 }],
  ["toTensor, normalize", (img) => T.compose([T.toTensor(), T.normalize(img.channels === 3 ? [0.485, 0.456, 0.406] : [0.286], img.channels === 3 ? [0.229, 0.224, 0.225] : [0.353])]), 2e-6, "float32 division: batchlab divides by 255, torchvision too (one rounding each), then (x - m) / s"],
  ["grayscale (3 -> 1 and 3 -> 3)", (img) => T.compose([img.channels === 3 ? T.grayscale(3) : T.randomGrayscale(1), T.toTensor()]), 1e-4 + 2e-6, "PIL's weights (0.299) against the tensor path's (0.2989): at most 0.0001 of full scale"],
  ["colorJitter after toTensor", () => T.compose([T.toTensor(), T.colorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5 })]), 3e-4, "contrast and saturation blend with gray: PIL's weights against 0.2989 (up to 1e-4 per blend, three blends)"],
  ["pad-and-crop after toTensor and normalize (fill in normalized units)", (img) => T.compose([T.toTensor(), T.normalize(img.channels === 3 ? [0.49, 0.48, 0.45] : [0.29], img.channels === 3 ? [0.25, 0.24, 0.26] : [0.35]), T.randomCrop([img.height, img.width], { padding: 4, fill: 0.5 }), T.randomHorizontalFlip()]), 2e-6, "as normalize: the padding holds the fill itself, as torchvision pads after normalizing"],
  ["randomErasing after normalize", () => T.compose([T.toTensor(), T.normalize([0.5], [0.25]), T.randomErasing({ p: 1, value: 0.5 })]), 2e-6, "erasing writes the value; the rest as normalize"],
  ["posterize and equalize on uint8 levels, before and after toTensor", (img) => T.compose([T.randomCrop([img.height - 1, img.width - 2], { padding: 1 }), T.randomPosterize(3, { p: 0.7 }), T.randomEqualize({ p: 0.7 }), T.toTensor(), T.randomPosterize(5, { p: 0.8 }), T.randomEqualize({ p: 0.9 })]), 0, "both quantise to the same uint8 levels (round half to even), then torchvision's uint8 ops: the same levels"],
  ["invert and solarize, thresholds in the units in force", () => T.compose([T.randomInvert(), T.randomSolarize(127.5, { p: 0.7 }), T.toTensor(), T.randomSolarize(0.3, { p: 0.8 }), T.randomInvert({ p: 0.3 })]), 2e-7, "bound - x against torchvision's 1 - x on x / 255: one rounding apart (thresholds between levels: the replay's x / 255 * 255 may land either side of a threshold equal to a level)"],
  ["autocontrast, before and after toTensor", () => T.compose([T.randomAutocontrast({ p: 0.8 }), T.toTensor(), T.randomAutocontrast({ p: 0.9 })]), 2e-6, "(x - min) * bound / (max - min) in float32 against the same on x / 255: a few roundings apart"],
  ["adjustSharpness up and down, before and after toTensor", () => T.compose([T.randomAdjustSharpness(2, { p: 0.8 }), T.toTensor(), T.randomAdjustSharpness(0.3, { p: 1 })]), 2e-6, "the same 3 x 3 kernel in float32; torch's convolution sums in another order"],
  ["gaussianBlur: a drawn sigma, two kernels folded into one tap table", (img) => T.compose([T.gaussianBlur([5, 3]), T.gaussianBlur(Math.min(img.height, img.width) > 12 ? 9 : 3, { sigma: 1.5 })]), 1e-3, "separable, reflect borders, torch's float32 kernel; torch convolves once with the 2-D outer product, per blur, and rounds its intermediate"],
  ["channel permutation", () => T.compose([T.randomChannelPermutation(), T.toTensor()]), 0, "the same channels moved"],
  ["colorJitter with hue, after toTensor", () => T.compose([T.toTensor(), T.colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.3 })]), 5e-4, "RGB -> HSV -> RGB in float32 as torchvision's tensor path; contrast and saturation blend with PIL's gray as above"],
  ["colorJitter hue only, on 0..255", () => T.colorJitter({ hue: [-0.5, 0.5] }), 1e-3, "the same HSV maths in the units in force against torchvision's on x / 255 (a few roundings of 255)"],
  ["randomPhotometricDistort (torchvision v2's order), after toTensor", () => T.compose([T.toTensor(), T.randomPhotometricDistort({ p: 0.7 })]), 5e-4, "colorJitter's maths in v2's order; contrast and saturation blend with PIL's gray (1e-4 per blend)"],
  ["randomChoice and randomOrder", () => T.compose([T.randomChoice([T.randomHorizontalFlip(1), T.randomInvert({ p: 1 }), T.randomPosterize(2, { p: 1 })], { p: [1, 2, 1] }), T.randomOrder([T.randomVerticalFlip(), T.randomSolarize(127.5, { p: 1 }), T.randomEqualize({ p: 1 })]), T.toTensor()]), 2e-7, "which step and which order are replayed as drawn; the steps as above"],
];

/**
 * The policies: each drawn recipe replayed through torchvision's _apply_op. [label, factory,
 * bound on max, bound on the fraction of values more than 1e-3 of full scale off, why].
 */
const POLICY_CHAINS = [
  ["RandAugment (bilinear), on 0..255", () => T.randAugment({ numOps: 3, magnitude: 12, interpolation: "bilinear" }), 255, 0.005, "each op as above; a rounding that moves a value across a level boundary is then posterized or equalized a whole level step apart, so the max is not bounded, the share of such values is"],
  ["RandAugment (nearest), on 0..255", () => T.randAugment({ numOps: 2 }), 255, 0.01, "as above, and nearest shears put source points exactly half-way between pixels (shear 0.2 at row 2: x + 0.5), where torch's normalised grid rounds either side: a neighbour's pixel"],
  ["TrivialAugmentWide (bilinear), after toTensor", () => T.compose([T.toTensor(), T.trivialAugmentWide({ interpolation: "bilinear" })]), 1, 0.005, "as RandAugment"],
  ["AutoAugment, ImageNet, CIFAR-10 and SVHN policies (bilinear)", () => T.compose([T.autoAugment({ interpolation: "bilinear" }), T.autoAugment({ policy: "cifar10", interpolation: "bilinear" }), T.autoAugment({ policy: "svhn", fill: 128, interpolation: "bilinear" })]), 255, 0.005, "as RandAugment"],
  ["AugMix (bilinear), after toTensor", () => T.compose([T.toTensor(), T.augMix({ interpolation: "bilinear" })]), 1, 0.005, "the same weights and chains, summed in the same order; bilinear warps as randomAffine"],
];

/** Against PIL's uint8 resampling: [label, chain factory, bound in uint8 levels, why]. */
const PIL_CHAINS = [
  ["PIL resize bilinear (antialiased)", (img) => T.resize([Math.max(1, Math.round(img.height / 2.5)), Math.max(1, Math.round(img.width / 1.7))]), 1.0, "PIL rounds each pass to uint8 (horizontal then vertical) and quantises weights to 22 bits: up to one level"],
  ["PIL resize bicubic (antialiased, up and down)", (img) => T.resize([img.height * 2, Math.max(1, Math.round(img.width / 3))], { interpolation: "bicubic" }), 8, "PIL clamps its horizontal pass to 0..255 before the vertical one: where the cubic overshoots on noise, the second pass sees the clamped value (smooth images stay within one level)"],
  ["PIL randomResizedCrop bilinear", () => T.randomResizedCrop([9, 12]), 1.0, "one level: PIL's uint8 passes"],
];

test("batchlab's drawn parameters replayed through torchvision 0.14 stay within each chain's bound", { skip, timeout: 120_000 }, async (t) => {
  const imgs = await images();
  assert.ok(imgs.filter((im) => im.photo).length === 2, "two real photos are among the test images (Debian's plasma-workspace-wallpapers)");
  const cases = [];
  const all = [
    ...CHAINS.map(([label, make, bound, why, o]) => ({ label, make, bound, why, pil: false, viaPlan: !!o?.plan, mean: o?.mean })),
    ...PIL_CHAINS.map(([label, make, bound, why]) => ({ label, make, bound, why, pil: true })),
    // Policies: full scale is the max bound; "off" means more than 1e-3 of it.
    ...POLICY_CHAINS.map(([label, make, bound, frac, why]) => ({ label, make, bound, frac, tol: bound * 1e-3, why, pil: false })),
  ];
  const meanBounds = new Map(all.filter((c) => c.mean !== undefined).map((c) => [c.label, c.mean]));
  all.forEach(({ label, make, bound, why, pil, viaPlan, frac, tol }, ci) => {
    imgs.forEach((img, ii) => {
      let tf;
      try {
        tf = make(img);
        tf.outputShape([img.height, img.width, img.channels]);
      } catch {
        return; // a chain that does not apply to this shape (e.g. a crop larger than it)
      }
      for (let seed = 0; seed < (frac === undefined ? 3 : 12); seed++) {
        const { output, shape, params } = viaPlan ? planSample(tf, img, seed, ii) : tf.sample(img, { seed, index: ii });
        const chain = tf instanceof T.Compose ? tf.transforms.map(describe) : [describe(tf)];
        const steps = tf instanceof T.Compose ? params.steps : [params];
        cases.push({ id: cases.length, label, bound, frac, why, ci, caseJson: { id: cases.length, pil, tol, image: b64(img.data), shape: [img.height, img.width, img.channels], chain, params: steps, out: b64(output), outShape: shape } });
      }
    });
  });
  const py = spawn(PY, [REPLAY], { stdio: ["pipe", "pipe", "inherit"] });
  let text = "";
  py.stdout.on("data", (d) => (text += d));
  const done = new Promise((resolve) => py.on("close", resolve));
  for (const c of cases) py.stdin.write(JSON.stringify(c.caseJson, (k, v) => (typeof v === "number" && Number.isNaN(v) ? null : v)) + "\n");
  py.stdin.end();
  assert.equal(await done, 0, "the replay script exits cleanly");
  const results = text.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(results.length, cases.length, "one result per case");
  const worst = new Map();
  for (const r of results) {
    const c = cases[r.id];
    assert.equal(r.error, undefined, `${c.label}: torchvision replay failed: ${r.error}`);
    assert.deepEqual(r.shape, c.caseJson.outShape, `${c.label}: output shape`);
    const w = worst.get(c.label) ?? { max: 0, mean: 0, n: 0, off: 0, values: 0, bound: c.bound, frac: c.frac, why: c.why };
    w.max = Math.max(w.max, r.max);
    w.mean += r.mean;
    w.n++;
    if (c.frac !== undefined) {
      w.off += r.off;
      w.values += r.values;
    }
    worst.set(c.label, w);
  }
  for (const { label } of all) assert.ok(worst.has(label), `${label}: no case ran`);
  for (const [label, w] of worst) {
    const share = w.frac === undefined ? "" : `, ${((100 * w.off) / w.values).toFixed(3)}% of values off by more than 1e-3 of full scale (bound ${100 * w.frac}%)`;
    t.diagnostic(`${label}: max ${w.max.toExponential(2)}, mean ${(w.mean / w.n).toExponential(2)} over ${w.n} cases${share} (bound ${w.bound}: ${w.why})`);
    assert.ok(w.max <= w.bound, `${label}: max difference ${w.max} exceeds ${w.bound} (${w.why})`);
    if (w.frac !== undefined) assert.ok(w.off <= w.frac * w.values, `${label}: ${w.off} of ${w.values} values off (${w.why})`);
    if (meanBounds.has(label)) assert.ok(w.mean / w.n <= meanBounds.get(label), `${label}: mean difference ${w.mean / w.n} exceeds ${meanBounds.get(label)} (${w.why})`);
  }
});

test("randomRotation with expand has torchvision's output size for every angle, size and centre (3,000 cases)", { skip }, () => {
  const { expandedSize } = require("../dist/transforms/library");
  const { inverseAffine } = require("../dist/transforms/warp");
  const cases = [];
  for (let i = 0; i < 3000; i++) {
    const angle = i < 16 ? [0, 30, 45, 60, 90, 120, 135, 180, 270, -90, -45, 360, 15, 1e-9, 89.99, 90.01][i] : ((i * 0.7123) % 720) - 360;
    const w = 1 + ((i * 7) % 60);
    const h = 1 + ((i * 13) % 45);
    const center = i % 3 === 0 ? [(i * 5) % (w + 3), (i * 11) % (h + 2)] : null;
    cases.push({ angle, w, h, center });
  }
  const py = [
    "import json, sys",
    "from torchvision.transforms import functional as F, functional_tensor as FT",
    "out = []",
    "for c in json.load(sys.stdin):",
    "    cf = [0.0, 0.0] if c['center'] is None else [1.0 * (v - s * 0.5) for v, s in zip(c['center'], [c['w'], c['h']])]",
    "    m = F._get_inverse_affine_matrix(cf, -c['angle'], [0.0, 0.0], 1.0, [0.0, 0.0])",
    "    out.append(FT._compute_affine_output_size(m, c['w'], c['h']))",
    "print(json.dumps(out))",
  ].join("\n");
  const r = spawnSync(PY, ["-c", py], { input: JSON.stringify(cases), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout);
  cases.forEach(({ angle, w, h, center }, i) => {
    const c = center ? [center[0] - w * 0.5, center[1] - h * 0.5] : [0, 0];
    assert.deepEqual(expandedSize(inverseAffine(c, -angle, [0, 0], 1, [0, 0]), w, h), theirs[i], `angle ${angle}, ${w} x ${h}, centre ${center}`);
  });
});

/** Two-sample Kolmogorov-Smirnov: the statistic D and its asymptotic p-value. */
function ks(a, b) {
  a = Float64Array.from(a).sort();
  b = Float64Array.from(b).sort();
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < a.length && j < b.length) {
    const x = Math.min(a[i], b[j]);
    while (i < a.length && a[i] <= x) i++;
    while (j < b.length && b[j] <= x) j++;
    d = Math.max(d, Math.abs(i / a.length - j / b.length));
  }
  const ne = (a.length * b.length) / (a.length + b.length);
  const lambda = (Math.sqrt(ne) + 0.12 + 0.11 / Math.sqrt(ne)) * d;
  let p = 0;
  for (let k = 1; k <= 100; k++) p += 2 * (k % 2 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
  return { d, p: Math.min(1, Math.max(0, p)) };
}

test("parameter distributions match torchvision's get_params over 20,000 draws (two-sample KS, family-wise p > 0.01)", { skip, timeout: 120_000 }, (t) => {
  const N = 20000;
  const H = 37;
  const W = 53;
  const r = spawnSync(PY, [path.join(__dirname, "helpers", "torchvision_params.py"), String(N), String(H), String(W)], { encoding: "utf8", maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout);
  const draws = (tf, n) => {
    const plan = new T.Plan(T.compose([tf]));
    return Array.from({ length: n }, (_, i) => plan.draw({ height: H, width: W, channels: 1 }, { seed: 77, epoch: 0, position: i }).steps[0]);
  };
  const ours = {};
  const put = (k, v) => (ours[k] ??= []).push(v);
  for (const p of draws(T.randomRotation(30), N)) put("rotation.angle", p.angle);
  for (const p of draws(T.randomAffine({ degrees: 25, translate: [0.2, 0.1], scale: [0.7, 1.3], shear: [-10, 10, -5, 5] }), N)) {
    put("affine.angle", p.angle); put("affine.tx", p.translate[0]); put("affine.ty", p.translate[1]);
    put("affine.scale", p.scale); put("affine.shearX", p.shear[0]); put("affine.shearY", p.shear[1]);
  }
  for (const p of draws(T.randomPerspective({ p: 1, distortionScale: 0.6 }), N)) p.endpoints.flat().forEach((v, k) => put(`perspective.${k}`, v));
  for (const p of draws(T.randomResizedCrop(8), N)) for (const k of ["top", "left", "height", "width"]) put(`rrc.${k}`, p[k]);
  for (const p of draws(T.gaussianBlur(5), N)) put("blur.sigma", p.sigma);
  for (const p of draws(T.colorJitter({ hue: 0.3 }), N)) put("jitter.hue", p.hue);
  // One family of tests at level 0.01 (Bonferroni): 21 separate tests at 0.01 would fail about one
  // seed in five with identical distributions.
  const keys = Object.keys(theirs);
  const level = 0.01 / keys.length;
  assert.equal(keys.length, 21, "every parameter is compared");
  for (const key of keys) {
    assert.equal(ours[key]?.length, N, `${key}: batchlab drew ${ours[key]?.length}`);
    const { d, p } = ks(ours[key], theirs[key]);
    t.diagnostic(`${key}: D = ${d.toFixed(4)}, p = ${p.toFixed(3)}`);
    assert.ok(p > level, `${key}: batchlab's and torchvision's draws differ (KS D = ${d.toFixed(4)}, p = ${p.toExponential(2)} < ${level.toExponential(2)})`);
  }
});

/** Pearson's chi-square test that two samples of categories come from one distribution; cells expected below 5 are pooled. */
function homogeneity(a, b) {
  const count = (xs) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map());
  const ca = count(a);
  const cb = count(b);
  const keys = [...new Set([...ca.keys(), ...cb.keys()])];
  const na = a.length;
  const nb = b.length;
  const cells = [];
  let pooled = [0, 0];
  for (const k of keys) {
    const [x, y] = [ca.get(k) ?? 0, cb.get(k) ?? 0];
    if (((x + y) * Math.min(na, nb)) / (na + nb) < 5) pooled = [pooled[0] + x, pooled[1] + y];
    else cells.push([x, y]);
  }
  if (pooled[0] + pooled[1] > 0) cells.push(pooled);
  let stat = 0;
  for (const [x, y] of cells) {
    const ex = ((x + y) * na) / (na + nb);
    const ey = ((x + y) * nb) / (na + nb);
    stat += (x - ex) ** 2 / ex + (y - ey) ** 2 / ey;
  }
  const dof = cells.length - 1;
  return { stat, dof, p: dof > 0 ? gammaQ(dof / 2, stat / 2) : 1 };
}

test("policies choose ops and magnitudes as torchvision's do over 20,000 draws (chi-square homogeneity and KS, family-wise p > 0.01)", { skip, timeout: 180_000 }, (t) => {
  const N = 20000;
  const [H, W] = [32, 40];
  const r = spawnSync(PY, [path.join(__dirname, "helpers", "torchvision_policies.py"), String(N), String(H), String(W)], { encoding: "utf8", maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout);
  const key = (name, m) => `${name}:${Math.abs(m) < 1e-9 ? "0" : m.toFixed(4)}`;
  const draws = (tf) => {
    const plan = new T.Plan(T.compose([tf]));
    return Array.from({ length: N }, (_, i) => plan.draw({ height: H, width: W, channels: 3 }, { seed: 31, epoch: 0, position: i }).steps[0]);
  };
  const ours = {
    RandAugment: draws(T.randAugment()).map((p) => p.ops),
    TrivialAugmentWide: draws(T.trivialAugmentWide()).map((p) => p.ops),
    "AutoAugment.imagenet": draws(T.autoAugment()).map((p) => p.ops),
    "AutoAugment.svhn": draws(T.autoAugment({ policy: "svhn" })).map((p) => p.ops),
  };
  const mix = draws(T.augMix());
  ours.AugMix = mix.map((p) => p.chains.flat());
  const tests = [];
  for (const [name, samples] of Object.entries(ours)) {
    const theirsSamples = theirs[name].map((ops) => ops.map(([n, m]) => ({ name: n, magnitude: m })));
    // Each op chosen (name and magnitude with its sign), and how many ops a sample gets.
    tests.push([`${name}: ops`, homogeneity(samples.flat().map((o) => key(o.name, o.magnitude)), theirsSamples.flat().map((o) => key(o.name, o.magnitude)))]);
    tests.push([`${name}: ops per sample`, homogeneity(samples.map((s) => s.length), theirsSamples.map((s) => s.length))]);
  }
  // AutoAugment: the whole recipe of a sample (which sub-policy, which of its ops fired).
  tests.push(["AutoAugment.imagenet: recipes", homogeneity(ours["AutoAugment.imagenet"].map((s) => s.map((o) => key(o.name, o.magnitude)).join(" ")), theirs["AutoAugment.imagenet"].map((s) => s.map(([n, m]) => key(n, m)).join(" ")))]);
  const level = 0.01 / (tests.length + 1);
  for (const [label, { stat, dof, p }] of tests) {
    t.diagnostic(`${label}: chi-square ${stat.toFixed(1)} on ${dof} dof, p = ${p.toFixed(3)}`);
    assert.ok(p > level, `${label}: batchlab's and torchvision's choices differ (chi-square ${stat.toFixed(1)} on ${dof} dof, p = ${p.toExponential(2)} < ${level.toExponential(2)})`);
  }
  const { d, p } = ks(mix.map((q) => q.original), theirs["augmix.original"]);
  t.diagnostic(`AugMix: weight of the original, KS D = ${d.toFixed(4)}, p = ${p.toFixed(3)}`);
  assert.ok(p > level, `AugMix original weight: KS D = ${d}, p = ${p}`);
});
