/**
 * Batch-level augmentations: MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019), as
 * torchvision.transforms.v2 does them: each sample mixes with its neighbour in the batch (the
 * batch rolled by one), and the labels become soft targets with the same weights.
 * They run after the plan, on the float32 NCHW batch; parameters come from the batch's own
 * counter-based stream (seed, epoch, batch index).
 */
import { OptionError } from "../errors";
import type { RandomStream } from "../sampling/rng";
import * as v from "../options";

export interface MixInput {
  images: Float32Array;
  shape: readonly [number, number, number, number];
  labels: Int32Array;
}

export interface MixResult {
  /** Mixed images (a new buffer). */
  images: Float32Array;
  /** Soft targets, n x numClasses. */
  targets: Float32Array;
  /** What was drawn: the mixing weight of the sample itself, and CutMix's box. */
  params: { lambda: number; box?: { y0: number; x0: number; y1: number; x1: number } };
}

export interface BatchTransform {
  readonly name: string;
  readonly numClasses: number;
  apply(batch: MixInput, rng: RandomStream): MixResult;
  toString(): string;
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000), boosted for shape < 1. */
function gamma(rng: RandomStream, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(rng.random() || Number.MIN_VALUE, 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let t: number;
    do {
      x = rng.normal();
      t = 1 + c * x;
    } while (t <= 0);
    t = t * t * t;
    const u = rng.random();
    if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - t + Math.log(t))) return d * t;
  }
}

/** A Beta(a, b) draw. */
export function beta(rng: RandomStream, a: number, b: number): number {
  const x = gamma(rng, a);
  const y = gamma(rng, b);
  return x / (x + y);
}

function oneHotMix(labels: Int32Array, numClasses: number, lambda: number): Float32Array {
  const n = labels.length;
  const t = new Float32Array(n * numClasses);
  for (let i = 0; i < n; i++) {
    const own = labels[i]!;
    const other = labels[(i + n - 1) % n]!; // roll by one, as torchvision
    if (own < 0 || own >= numClasses) throw new OptionError(`labels[${i}]`, own, `a class index in [0, ${numClasses}) (numClasses=${numClasses})`);
    t[i * numClasses + own] += lambda;
    t[i * numClasses + other] += 1 - lambda;
  }
  return t;
}

function checkOptions(name: string, o: { alpha?: number; numClasses?: number }, defaultAlpha: number) {
  v.knownKeys(name, o, ["alpha", "numClasses"]);
  return {
    alpha: v.num(`${name}.alpha`, o.alpha ?? defaultAlpha, Number.MIN_VALUE),
    numClasses: v.int(`${name}.numClasses`, o.numClasses, 1),
  };
}

/** MixUp: x = lam * x + (1 - lam) * x_rolled, lam ~ Beta(alpha, alpha). */
export function mixup(options: { alpha?: number; numClasses: number }): BatchTransform {
  const { alpha, numClasses } = checkOptions("mixup", options, 1);
  return {
    name: "MixUp",
    numClasses,
    apply(batch, rng) {
      const lambda = beta(rng, alpha, alpha);
      const [n, c, h, w] = batch.shape;
      const per = c * h * w;
      const out = new Float32Array(batch.images.length);
      const lf = Math.fround(lambda);
      const rest = Math.fround(1 - lf);
      for (let i = 0; i < n; i++) {
        const a = i * per;
        const b = ((i + n - 1) % n) * per;
        for (let k = 0; k < per; k++) out[a + k] = lf * batch.images[a + k]! + rest * batch.images[b + k]!;
      }
      return { images: out, targets: oneHotMix(batch.labels, numClasses, lambda), params: { lambda } };
    },
    toString: () => `MixUp(alpha=${alpha}, numClasses=${numClasses})`,
  };
}

/** CutMix: a box of area (1 - lam) comes from the neighbour; lam is corrected to the box. */
export function cutmix(options: { alpha?: number; numClasses: number }): BatchTransform {
  const { alpha, numClasses } = checkOptions("cutmix", options, 1);
  return {
    name: "CutMix",
    numClasses,
    apply(batch, rng) {
      const lam0 = beta(rng, alpha, alpha);
      const [n, c, h, w] = batch.shape;
      const cy = rng.int(h);
      const cx = rng.int(w);
      const r = 0.5 * Math.sqrt(1 - lam0);
      const rh = Math.floor(r * h);
      const rw = Math.floor(r * w);
      const y0 = Math.max(cy - rh, 0);
      const y1 = Math.min(cy + rh, h);
      const x0 = Math.max(cx - rw, 0);
      const x1 = Math.min(cx + rw, w);
      const lambda = 1 - ((y1 - y0) * (x1 - x0)) / (h * w);
      const out = batch.images.slice();
      const per = c * h * w;
      for (let i = 0; i < n; i++) {
        const b = ((i + n - 1) % n) * per;
        for (let ch = 0; ch < c; ch++) {
          for (let y = y0; y < y1; y++) {
            const row = ch * h * w + y * w;
            out.set(batch.images.subarray(b + row + x0, b + row + x1), i * per + row + x0);
          }
        }
      }
      return { images: out, targets: oneHotMix(batch.labels, numClasses, lambda), params: { lambda, box: { y0, x0, y1, x1 } } };
    },
    toString: () => `CutMix(alpha=${alpha}, numClasses=${numClasses})`,
  };
}
