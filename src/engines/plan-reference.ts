/**
 * The TypeScript executor of a plan job: native/PLAN_ABI.md written out in float32 (Math.fround
 * after every operation), sample by sample. The C++ engine and the CUDA kernel give these
 * pixels bit for bit. The reference engine runs it for chains with a warp, whose plan folds the
 * geometry around the warp into one resampling (so it differs from the step-by-step reference
 * by design: see README, "Semantics").
 */
import { HUE_ORDERS } from "../transforms/library";
import { autocontrast, equalize, invert, noiseField, permuteChannels, posterize, sharpness, solarize } from "../transforms/photometric";
import * as ref from "../transforms/reference";
import type { FloatImage } from "../transforms/reference";
import { WARP_MODES, warpImage, type Mat3, type WarpInterpolation } from "../transforms/warp";

/** The interpolation of each job `warp` code. */
const WARP_INTERPOLATIONS: Record<number, WarpInterpolation> = Object.fromEntries(Object.entries(WARP_MODES).map(([k, v]) => [v, k as WarpInterpolation]));
import { WARP_BLOCK } from "../transforms/plan";
import type { PlanJob } from "./job";

const f = Math.fround;
/** JITTER orders: the permutations of (brightness, contrast, saturation, hue), lexicographic. */
const ORDERS = HUE_ORDERS;

/** The source pixels of sample s (a view of its HWC bytes). */
function sourceOf(job: PlanJob, s: number): Uint8Array {
  const bytes = job.srcDims[2 * s]! * job.srcDims[2 * s + 1]! * job.inC;
  if (Array.isArray(job.sources)) return (job.sources as readonly Uint8Array[])[s]!;
  const at = job.srcOffsets![s]!;
  return (job.sources as Uint8Array).subarray(at, at + bytes);
}

/**
 * The image the taps of sample s read: the source, or the warp pass's output when the job has
 * a warp and the sample's block enables it.
 */
export function warpedImage(job: PlanJob, s: number): { height: number; width: number; channels: number; data: ArrayLike<number> } {
  const src = sourceOf(job, s);
  const h = job.srcDims[2 * s]!;
  const w = job.srcDims[2 * s + 1]!;
  let image: { height: number; width: number; channels: number; data: ArrayLike<number> } = { height: h, width: w, channels: job.inC, data: src };
  if (!job.warp) return image;
  if (job.preK) {
    // The pass before the warp: sample s's pre taps start after the earlier samples' ones.
    let at = 0;
    for (let i = 0; i < s; i++) at += (job.preDims![2 * i]! + job.preDims![2 * i + 1]!) * job.preK;
    const ph = job.preDims![2 * s]!;
    const pw = job.preDims![2 * s + 1]!;
    const K = job.preK;
    const per = (ph + pw) * K;
    image = separable(image, job.preTapIndex!.subarray(at, at + per), job.preTapWeight!.subarray(at, at + per), ph, pw, K, job.fill);
  }
  const P = job.params.length / job.n;
  const at = s * P + job.warpOffset!;
  const b = job.params;
  if (job.warpOps) {
    // The ops before the warp, on the image it reads (PLAN_ABI.md, "Ops before the warp").
    const data = new Float32Array(image.height * image.width * image.channels);
    for (let i = 0; i < data.length; i++) data[i] = image.data[i]!;
    image = runOps(job, b.subarray(s * P, (s + 1) * P), { data, height: image.height, width: image.width, channels: image.channels }, 0, job.warpOps);
  }
  if (b[at] === 0) return image;
  const m = Array.from(b.subarray(at + 1, at + 10)) as unknown as Mat3;
  const domain = Array.from(b.subarray(at + 10, at + 14));
  const real = Array.from(b.subarray(at + 14, at + 18));
  const frames = Array.from({ length: b[at + 18]! }, (_, f) => {
    const fr = b.subarray(at + 19 + 11 * f, at + 30 + 11 * f);
    return { m: Array.from(fr.subarray(0, 9)) as unknown as Mat3, height: fr[9]!, width: fr[10]! };
  });
  const G = b[at + WARP_BLOCK - 1]!;
  const grid = G > 0 ? { G, d: b.subarray(at + WARP_BLOCK, at + WARP_BLOCK + 2 * G * G) } : undefined;
  const fill = Array.from(job.fill.subarray(0, job.inC));
  return warpImage(image, m, job.warpDims![2 * s]!, job.warpDims![2 * s + 1]!, WARP_INTERPOLATIONS[job.warp]!, fill, { domain, real, frames, ...(grid ? { grid } : {}) });
}

/** The geometry pass's formula (PLAN_ABI.md): an H x W float image (HWC) from `img` through taps. */
function separable(img: { width: number; channels: number; data: ArrayLike<number> }, taps: Int32Array, wts: Float32Array, H: number, W: number, K: number, fill: Float32Array): FloatImage {
  const C = img.channels;
  const sw = img.width;
  const data = img.data;
  const out = new Float32Array(H * W * C);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let i = 0; i < K; i++) {
          const r = taps[y * K + i]!;
          let row = 0;
          for (let j = 0; j < K; j++) {
            const q = taps[H * K + x * K + j]!;
            const v = r < 0 || q < 0 ? fill[c]! : data[(r * sw + q) * C + c]!;
            row = f(row + f(wts[H * K + x * K + j]! * v));
          }
          acc = f(acc + f(wts[y * K + i]! * row));
        }
        out[(y * W + x) * C + c] = acc;
      }
    }
  }
  return { data: out, height: H, width: W, channels: C };
}

/** Runs `job` into `out` (NCHW, n * outC * outH * outW floats). */
export function executePlan(job: PlanJob, out: Float32Array): void {
  const { n, outH: H, outW: W, K } = job;
  const P = n > 0 ? job.params.length / n : 0;
  const per = (H + W) * K;
  for (let s = 0; s < n; s++) {
    const src = warpedImage(job, s);
    let img: FloatImage = separable(src, job.tapIndex.subarray(s * per, (s + 1) * per), job.tapWeight.subarray(s * per, (s + 1) * per), H, W, K, job.fill);
    img = runOps(job, job.params.subarray(s * P, (s + 1) * P), img, job.warp ? job.warpOps ?? 0 : 0, job.program.length); // warpOps means nothing without a warp
    ref.writeCHW(img, out, s * job.outC * H * W);
  }
}

/** Ops from .. to - 1 of the program on one sample's image (its block: the sample's P floats). */
function runOps(job: PlanJob, block: Float32Array, img: FloatImage, from: number, to: number): FloatImage {
  let origin: FloatImage | undefined; // the open mix group's image (MIX_BEGIN) and its sum
  let mix: Float32Array | undefined;
  for (let k = from; k < to; k++) {
    const p = block.subarray(job.opOffsets[k]!);
    if (p[0] === 0) continue;
    const C = img.channels;
    switch (job.program[k]) {
      case 0:
        img = ref.affine(img, p.subarray(1, 1 + C), p.subarray(1 + C, 1 + 2 * C));
        break;
      case 1:
        img = ref.grayscale(img, p[1]!);
        break;
      case 2:
        for (const which of ORDERS[p[2]!]!) {
          const factor = p[3 + which]!;
          if (Number.isNaN(factor)) continue;
          if (which === 0) img = ref.brightness(img, factor, p[1]!);
          else if (which === 1) img = ref.contrast(img, factor, p[1]!);
          else if (which === 2) img = ref.saturation(img, factor, p[1]!);
          else img = ref.hue(img, factor, p[1]!);
        }
        break;
      case 4:
        img = invert(img, p[1]!);
        break;
      case 5:
        img = solarize(img, p[2]!, p[1]!);
        break;
      case 6:
        img = posterize(img, p[2]!, p[1]!);
        break;
      case 7:
        img = autocontrast(img, p[1]!);
        break;
      case 8:
        img = equalize(img, p[1]!);
        break;
      case 9:
        img = sharpness(img, p[2]!, p[1]!);
        break;
      case 10:
        img = permuteChannels(img, Array.from(p.subarray(1, 1 + C)));
        break;
      case 11:
        img = noiseField(img, [p[5]!, p[6]!, p[7]!], p[2]!, p[3]!, p[4] !== 0, p[1]!);
        break;
      case 12: {
        const fill = Array.from(p.subarray(2, 2 + C));
        const m = Array.from(p.subarray(2 + C, 11 + C)) as unknown as Mat3;
        img = warpImage(img, m, img.height, img.width, WARP_INTERPOLATIONS[p[1]!]!, fill);
        break;
      }
      case 13:
      case 14:
      case 15: {
        const w = p[1]!;
        const x = img.data;
        if (job.program[k] === 13) {
          origin = { ...img, data: Float32Array.from(x) }; // a copy: no op below may change it
          mix = new Float32Array(x.length);
          for (let i = 0; i < x.length; i++) mix[i] = f(w * x[i]!);
          break;
        }
        for (let i = 0; i < x.length; i++) mix![i] = f(mix![i]! + f(w * x[i]!));
        if (job.program[k] === 14) img = { ...origin!, data: Float32Array.from(origin!.data) };
        else img = { ...img, data: mix! };
        break;
      }
      case 3: {
        const d = img.data.slice();
        const H = img.height;
        const W = img.width;
        const y1 = Math.min(H, p[1]! + p[3]!);
        const x1 = Math.min(W, p[2]! + p[4]!);
        for (let y = p[1]!; y < y1; y++) for (let x = p[2]!; x < x1; x++) for (let c = 0; c < C; c++) d[(y * W + x) * C + c] = p[5 + c]!;
        img = { ...img, data: d };
        break;
      }
    }
  }
  return img;
}
