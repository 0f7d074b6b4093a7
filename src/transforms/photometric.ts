/**
 * Photometric transforms beyond colorJitter, with torchvision's names, defaults and maths:
 * invert, posterize, solarize, autocontrast, equalize, sharpness, Gaussian blur, channel
 * permutation, SSD's photometric distort and Gaussian noise. Each is declared once here: options (checked when built), the parameter draw,
 * and the reference maths in float32 (one rounding per operation, as the plan's arithmetic
 * contract asks).
 *
 * Units. Values are in the units in force at the step (ctx.bound: 0..255 before toTensor, 0..1
 * after), and so are thresholds (solarize's threshold is 128 before toTensor, 0.5 after), as
 * torchvision's are in the image dtype's units. Posterize and equalize are defined by torchvision
 * on uint8 levels only: here each value is first quantised to the level a uint8 image would hold,
 * q = clamp(roundHalfEven(x * 255 / bound), 0, 255), and the result is that level back in the
 * units in force, so a replay through torchvision's uint8 op on the same levels matches exactly.
 *
 * Where they run. Gaussian blur is separable resampling (per-axis taps, reflect borders, as
 * torchvision pads), so the fused plan runs it with the rest of the geometry. The others have
 * no op in the fused plan yet: a chain holding one runs step by step on the reference path
 * (Plan.unfused names them), on every engine, with the same pixels.
 */
import { OptionError } from "../errors";
import * as v from "../options";
import { Purpose, RandomStream } from "../sampling/rng";
import { type AxisTaps, borderIndex } from "./geometry";
import { Geometric, OpCode, Transform, type Params, type PlanOp, type Shape, type StepTaps, type ValueContext } from "./library";
import * as ref from "./reference";
import type { FloatImage } from "./reference";

const f = Math.fround;

/** The uint8 level of a value in the units in force. */
function level(x: number, bound: number): number {
  const y = bound === 255 ? x : f(x * 255);
  const r = Math.round(y);
  const q = Math.abs(y - Math.trunc(y)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return q < 0 ? 0 : q > 255 ? 255 : q;
}

/** A uint8 level back in the units in force. */
function fromLevel(q: number, bound: number): number {
  return bound === 255 ? q : f(q / 255);
}

function mapValues(img: FloatImage, fn: (x: number) => number): FloatImage {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = fn(img.data[i]!);
  return { ...img, data: out };
}

/** How a coin-applied colour op (torchvision's RandomX(p) form) computes and what it is in the plan. */
interface CoinOp<O> {
  apply(img: FloatImage, o: O, bound: number): FloatImage;
  code: OpCode;
  /** The plan op's parameters after `bound`. */
  args(o: O): number[];
}

/** A colour op applied with probability p: drawn as { apply }, run as its CoinOp. */
class CoinColour<O extends { p: number }> extends Transform {
  readonly kind = "color";
  constructor(
    readonly name: string,
    readonly options: O,
    private readonly how: CoinOp<O>,
  ) {
    super();
  }
  override draw(rng: RandomStream, _s: Shape): Params {
    return { apply: rng.random() < this.options.p };
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    return (p as { apply: boolean }).apply ? this.how.apply(img, this.options, ctx.bound) : img;
  }
  /** The plan op: [bound, ...args]; off where the coin said no. */
  override op(s: Shape, p: Params, ctx: ValueContext): PlanOp {
    return { code: this.how.code, params: [ctx.bound, ...this.how.args(this.options)], channelsOut: s.channels, disabled: !(p as { apply: boolean }).apply };
  }
}

function probOf(fn: string, o: { p?: unknown }, dflt = 0.5): number {
  return v.prob(`${fn}.p`, o.p ?? dflt);
}

// ------------------------------------------------------------------------------ pointwise

/** bound - x. */
export function invert(img: FloatImage, bound: number): FloatImage {
  return mapValues(img, (x) => f(bound - x));
}

/** bound - x with probability p (torchvision's RandomInvert). */
export function randomInvert(options: { p?: number } = {}): Transform {
  v.knownKeys("randomInvert", options, ["p"]);
  return new CoinColour("RandomInvert", { p: probOf("randomInvert", options) }, { apply: (img, _o, bound) => invert(img, bound), code: OpCode.Invert, args: () => [] });
}

/** The top `bits` bits of each value's uint8 level. */
export function posterize(img: FloatImage, bits: number, bound: number): FloatImage {
  const mask = (0xff << (8 - bits)) & 0xff;
  return mapValues(img, (x) => fromLevel(level(x, bound) & mask, bound));
}

/** Keeps the top `bits` bits of each uint8 level, with probability p (torchvision's RandomPosterize). */
export function randomPosterize(bits: number, options: { p?: number } = {}): Transform {
  v.knownKeys("randomPosterize", options, ["p"]);
  const o = { bits: v.int("randomPosterize(bits)", bits, 0, 8), p: probOf("randomPosterize", options) };
  return new CoinColour("RandomPosterize", o, { apply: (img, q, bound) => posterize(img, q.bits, bound), code: OpCode.Posterize, args: (q) => [q.bits] });
}

/** bound - x where x >= threshold (in the units in force; the threshold as float32, as the plan's op holds it). */
export function solarize(img: FloatImage, threshold: number, bound: number): FloatImage {
  const t = f(threshold);
  return mapValues(img, (x) => (x >= t ? f(bound - x) : x));
}

/** Inverts values at or above `threshold` (in the units in force), with probability p (torchvision's RandomSolarize). */
export function randomSolarize(threshold: number, options: { p?: number } = {}): Transform {
  v.knownKeys("randomSolarize", options, ["p"]);
  const o = { threshold: v.num("randomSolarize(threshold)", threshold), p: probOf("randomSolarize", options) };
  return new CoinColour("RandomSolarize", o, { apply: (img, q, bound) => solarize(img, q.threshold, bound), code: OpCode.Solarize, args: (q) => [q.threshold] });
}

// ------------------------------------------------------------------ per-sample reductions

/**
 * Per channel: (x - min) * (bound / (max - min)), clamped; a flat channel is left as it is. Min
 * and max pass over NaN and order -0 below 0 (so they do not depend on the order of the scan).
 */
export function autocontrast(img: FloatImage, bound: number): FloatImage {
  const { channels: C, data } = img;
  const out = new Float32Array(data.length);
  for (let c = 0; c < C; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = c; i < data.length; i += C) {
      const x = data[i]!;
      if (x < lo || (x === 0 && lo === 0 && Object.is(x, -0))) lo = x;
      if (x > hi || (x === 0 && hi === 0 && Object.is(hi, -0))) hi = x;
    }
    const flat = !(hi > lo);
    const min = flat ? 0 : lo;
    const scale = flat ? 1 : f(bound / f(hi - lo));
    for (let i = c; i < data.length; i += C) {
      const y = f(f(data[i]! - min) * scale);
      out[i] = y < 0 ? 0 : y > bound ? bound : y;
    }
  }
  return { ...img, data: out };
}

/** Stretches each channel to the full range, with probability p (torchvision's RandomAutocontrast). */
export function randomAutocontrast(options: { p?: number } = {}): Transform {
  v.knownKeys("randomAutocontrast", options, ["p"]);
  // AUTOCONTRAST is a pass of its own in the plan (per-channel min and max of the whole image).
  return new CoinColour("RandomAutocontrast", { p: probOf("randomAutocontrast", options) }, { apply: (img, _o, bound) => autocontrast(img, bound), code: OpCode.Autocontrast, args: () => [] });
}

/**
 * Per channel, on uint8 levels, torchvision's table: step = floor((count - count of the
 * highest level present) / 255); none when step is 0; else level q maps to
 * floor((cumulative count below q + floor(step / 2)) / step), clamped to 255.
 */
export function equalize(img: FloatImage, bound: number): FloatImage {
  const { channels: C, data } = img;
  const out = new Float32Array(data.length);
  const levels = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) levels[i] = level(data[i]!, bound);
  const hist = new Float64Array(256);
  const lut = new Float64Array(256);
  for (let c = 0; c < C; c++) {
    hist.fill(0);
    for (let i = c; i < data.length; i += C) hist[levels[i]!]!++;
    let top = 255;
    while (top > 0 && hist[top] === 0) top--;
    const count = data.length / C;
    const step = Math.floor((count - hist[top]!) / 255);
    let below = 0;
    for (let q = 0; q < 256; q++) {
      lut[q] = step === 0 ? q : Math.min(255, Math.floor((below + Math.floor(step / 2)) / step));
      below += hist[q]!;
    }
    for (let i = c; i < data.length; i += C) out[i] = fromLevel(lut[levels[i]!]!, bound);
  }
  return { ...img, data: out };
}

/** Equalizes each channel's histogram of uint8 levels, with probability p (torchvision's RandomEqualize). */
export function randomEqualize(options: { p?: number } = {}): Transform {
  v.knownKeys("randomEqualize", options, ["p"]);
  // EQUALIZE is a pass of its own in the plan (per-channel histograms of the whole image).
  return new CoinColour("RandomEqualize", { p: probOf("randomEqualize", options) }, { apply: (img, _o, bound) => equalize(img, bound), code: OpCode.Equalize, args: () => [] });
}

/**
 * torchvision's adjust_sharpness: blend with a smoothed copy (3 x 3 kernel 1 1 1 / 1 5 1 /
 * 1 1 1, over 13, on interior pixels; the border row and column keep their values), by
 * factor * x + (1 - factor) * smoothed, clamped. Images of 2 pixels or fewer on a side pass.
 */
export function sharpness(img: FloatImage, factor: number, bound: number): FloatImage {
  const { height: H, width: W, channels: C, data } = img;
  if (H <= 2 || W <= 2) return img;
  const k = f(factor); // float32, as the plan's SHARPNESS op holds it
  const rest = f(1 - k);
  const side = f(1 / 13);
  const centre = f(5 / 13);
  const out = new Float32Array(data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < C; c++) {
        const i = (y * W + x) * C + c;
        let s = data[i]!;
        if (y > 0 && y < H - 1 && x > 0 && x < W - 1) {
          s = 0;
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) s = f(s + f((dy === 0 && dx === 0 ? centre : side) * data[i + (dy * W + dx) * C]!));
          }
        }
        const b = f(f(k * data[i]!) + f(rest * s));
        out[i] = b < 0 ? 0 : b > bound ? bound : b;
      }
    }
  }
  return { ...img, data: out };
}

/** Sharpens (factor > 1) or softens (factor < 1), with probability p (torchvision's RandomAdjustSharpness). */
export function randomAdjustSharpness(sharpnessFactor: number, options: { p?: number } = {}): Transform {
  v.knownKeys("randomAdjustSharpness", options, ["p"]);
  const o = { sharpnessFactor: v.num("randomAdjustSharpness(sharpnessFactor)", sharpnessFactor, 0), p: probOf("randomAdjustSharpness", options) };
  // SHARPNESS is a pass of its own in the plan (each pixel's 3 x 3 neighbourhood).
  return new CoinColour("RandomAdjustSharpness", o, { apply: (img, q, bound) => sharpness(img, q.sharpnessFactor, bound), code: OpCode.Sharpness, args: (q) => [q.sharpnessFactor] });
}

// --------------------------------------------------------------------------- channel order

class RandomChannelPermutation extends Transform {
  readonly name = "RandomChannelPermutation";
  readonly kind = "color";
  readonly options = {};
  override draw(rng: RandomStream, s: Shape): Params {
    const permutation = Array.from({ length: s.channels }, (_, c) => c);
    for (let i = permutation.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [permutation[i], permutation[j]] = [permutation[j]!, permutation[i]!];
    }
    return { permutation };
  }
  reference(img: FloatImage, p: Params): FloatImage {
    return permuteChannels(img, (p as { permutation: readonly number[] }).permutation);
  }
  /** PERMUTE: [permutation[C]]. */
  override op(s: Shape, p: Params): PlanOp {
    const perm = p ? (p as { permutation: readonly number[] }).permutation : Array.from({ length: s.channels }, (_, c) => c);
    return { code: OpCode.Permute, params: [...perm], channelsOut: s.channels };
  }
}

/** Output channel c is input channel permutation[c]. */
export function permuteChannels(img: FloatImage, perm: readonly number[]): FloatImage {
  const C = img.channels;
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i += C) for (let c = 0; c < C; c++) out[i + c] = img.data[i + perm[c]!]!;
  return { ...img, data: out };
}

/** Shuffles the channels of each sample (torchvision v2's RandomChannelPermutation). */
export function randomChannelPermutation(): Transform {
  return new RandomChannelPermutation();
}

// ------------------------------------------------------------------------------ Gaussian blur

export interface GaussianBlurOptions {
  /** The standard deviation, or the range [min, max] it is drawn from per sample (default [0.1, 2]). */
  sigma?: number | [number, number];
}

/**
 * torchvision's Gaussian kernel in float32: x = linspace(-(k - 1) / 2, (k - 1) / 2, k),
 * pdf = exp(-(x / sigma)^2 / 2), divided by its sum.
 */
export function gaussianKernel(k: number, sigma: number): Float32Array {
  const half = f((k - 1) * 0.5);
  const pdf = new Float32Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) {
    // torch.linspace: start + i * step, step = (end - start) / (steps - 1).
    const x = k === 1 ? -half : f(-half + f(i * f(f(2 * half) / (k - 1))));
    const z = f(x / f(sigma));
    pdf[i] = f(Math.exp(f(f(-0.5) * f(z * z))));
    sum = f(sum + pdf[i]!);
  }
  for (let i = 0; i < k; i++) pdf[i] = f(pdf[i]! / sum);
  return pdf;
}

/** A 1-D convolution along an axis of length n, reflect-padded (torch's "reflect": the edge is not repeated). */
function blurTaps(n: number, kernel: Float32Array): AxisTaps {
  const K = kernel.length;
  const half = (K - 1) / 2;
  const index = new Int32Array(n * K);
  const weight = new Float32Array(n * K);
  for (let o = 0; o < n; o++) {
    for (let j = 0; j < K; j++) {
      index[o * K + j] = borderIndex(o + j - half, n, "reflect");
      weight[o * K + j] = kernel[j]!;
    }
  }
  return { size: n, K, index, weight };
}

class GaussianBlur extends Geometric {
  readonly name = "GaussianBlur";
  readonly options: { kernelSize: [number, number]; sigma: [number, number] };
  override readonly resamples = true;
  constructor(kernelSize: number | [number, number], o: GaussianBlurOptions) {
    super();
    v.knownKeys("gaussianBlur", o, ["sigma"]);
    const odd = (option: string, k: unknown): number => {
      const n = v.int(option, k, 1, 511);
      if (n % 2 !== 1) throw new OptionError(option, k, "an odd integer from 1 to 511");
      return n;
    };
    const ks = typeof kernelSize === "number" ? [kernelSize, kernelSize] : kernelSize;
    if (!Array.isArray(ks) || ks.length !== 2) throw new OptionError("gaussianBlur(kernelSize)", kernelSize, "an odd integer or [kx, ky] (width first, as torchvision)");
    const sigma = o.sigma ?? [0.1, 2];
    const range: [number, number] = typeof sigma === "number" ? [v.num("gaussianBlur.sigma", sigma, Number.MIN_VALUE), sigma] : v.pair("gaussianBlur.sigma", sigma, Number.MIN_VALUE);
    this.options = { kernelSize: [odd("gaussianBlur(kernelSize)[0]", ks[0]), odd("gaussianBlur(kernelSize)[1]", ks[1])], sigma: range };
  }
  override borderReads(): "mirror" {
    return "mirror";
  }
  override varyingInput(): "keep" {
    return "keep"; // per pixel, at any size
  }
  override draw(rng: RandomStream): Params {
    const [lo, hi] = this.options.sigma;
    return { sigma: lo === hi ? lo : f(rng.uniform(lo, hi)) };
  }
  protected makeTaps(s: Shape, p: Params): StepTaps {
    const sigma = (p as { sigma: number }).sigma;
    const [kx, ky] = this.options.kernelSize;
    return { y: blurTaps(s.height, gaussianKernel(ky, sigma)), x: blurTaps(s.width, gaussianKernel(kx, sigma)) };
  }
}

/** Blurs with a Gaussian of a per-sample sigma (torchvision's GaussianBlur; kernelSize is [kx, ky] or one odd size). */
export function gaussianBlur(kernelSize: number | [number, number], options: GaussianBlurOptions = {}): Transform {
  return new GaussianBlur(kernelSize, options);
}

// ------------------------------------------------------------------- SSD's photometric distort

export interface RandomPhotometricDistortOptions {
  brightness?: [number, number];
  contrast?: [number, number];
  saturation?: [number, number];
  hue?: [number, number];
  /** Probability of each of the five distortions (default 0.5). */
  p?: number;
}

/** The fused form of RandomPhotometricDistort's colour part: one JITTER op (contrast before saturation and hue, or after). */
class DistortJitter extends Transform {
  readonly name = "PhotometricDistortJitter";
  readonly kind = "color";
  readonly options = {};
  override op(s: Shape, p: Params, ctx: ValueContext): PlanOp {
    const q = (p ?? { brightness: NaN, contrast: NaN, saturation: NaN, hue: NaN, contrastBefore: true }) as { brightness: number; contrast: number; saturation: number; hue: number; contrastBefore: boolean };
    // Orders of (b, c, s, h): 0 is b c s h, 3 is b s h c (HUE_ORDERS, lexicographic).
    return { code: OpCode.Jitter, params: [ctx.bound, q.contrastBefore ? 0 : 3, q.brightness, q.contrast, q.saturation, s.channels === 1 ? NaN : q.hue], channelsOut: s.channels };
  }
  reference(img: FloatImage): FloatImage {
    return img; // only the plan runs this step; RandomPhotometricDistort's reference is the chain's
  }
}

/** The fused form of its channel permutation: PERMUTE, off where none was drawn. */
class DistortPermute extends Transform {
  readonly name = "PhotometricDistortPermute";
  readonly kind = "color";
  readonly options = {};
  override op(s: Shape, p: Params): PlanOp {
    const perm = p ? (p as { permutation: readonly number[] }).permutation : [];
    return { code: OpCode.Permute, params: perm.length ? [...perm] : Array.from({ length: s.channels }, (_, c) => c), channelsOut: s.channels, disabled: perm.length === 0 };
  }
  reference(img: FloatImage): FloatImage {
    return img;
  }
}

const DISTORT_STEPS = [new DistortJitter(), new DistortPermute()];

class RandomPhotometricDistort extends Transform {
  readonly name = "RandomPhotometricDistort";
  readonly kind = "container";
  /** The fused plan runs it as one JITTER op and one PERMUTE op. */
  override planSteps(p: Params): { t: Transform; p: Params; enabled: boolean }[] {
    return DISTORT_STEPS.map((t) => ({ t, p, enabled: true }));
  }
  readonly options: { brightness: [number, number]; contrast: [number, number]; saturation: [number, number]; hue: [number, number]; p: number };
  constructor(o: RandomPhotometricDistortOptions) {
    super();
    v.knownKeys("randomPhotometricDistort", o, ["brightness", "contrast", "saturation", "hue", "p"]);
    const range = (k: "brightness" | "contrast" | "saturation", d: [number, number]) => v.pair(`randomPhotometricDistort.${k}`, o[k] ?? d, 0);
    this.options = {
      brightness: range("brightness", [0.875, 1.125]),
      contrast: range("contrast", [0.5, 1.5]),
      saturation: range("saturation", [0.5, 1.5]),
      hue: v.pair("randomPhotometricDistort.hue", o.hue ?? [-0.05, 0.05], -0.5, 0.5),
      p: probOf("randomPhotometricDistort", o),
    };
  }
  override outShape(s: Shape): Shape {
    if (s.channels !== 1 && s.channels !== 3) throw new OptionError("randomPhotometricDistort: input channels", s.channels, "1 or 3");
    return s;
  }
  /**
   * torchvision v2's order of draws: for brightness, contrast, saturation and hue a coin (p),
   * then the factor; whether contrast comes before saturation and hue; a coin, then the channel
   * permutation. A factor not drawn is NaN, a permutation not drawn is empty.
   */
  override draw(rng: RandomStream, s: Shape): Params {
    const o = this.options;
    const maybe = (r: [number, number]) => (rng.random() < o.p ? rng.uniform(r[0], r[1]) : NaN);
    const brightness = maybe(o.brightness);
    const contrast = maybe(o.contrast);
    const saturation = maybe(o.saturation);
    const hue = maybe(o.hue);
    const contrastBefore = rng.random() < 0.5;
    let permutation: number[] = [];
    if (rng.random() < o.p) {
      permutation = Array.from({ length: s.channels }, (_, c) => c);
      for (let i = permutation.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [permutation[i], permutation[j]] = [permutation[j]!, permutation[i]!];
      }
    }
    return { brightness, contrast, saturation, hue, contrastBefore, permutation };
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const q = p as { brightness: number; contrast: number; saturation: number; hue: number; contrastBefore: boolean; permutation: number[] };
    const b = ctx.bound;
    if (!Number.isNaN(q.brightness)) img = ref.brightness(img, q.brightness, b);
    if (!Number.isNaN(q.contrast) && q.contrastBefore) img = ref.contrast(img, q.contrast, b);
    if (!Number.isNaN(q.saturation)) img = ref.saturation(img, q.saturation, b);
    if (!Number.isNaN(q.hue)) img = ref.hue(img, q.hue, b);
    if (!Number.isNaN(q.contrast) && !q.contrastBefore) img = ref.contrast(img, q.contrast, b);
    if (q.permutation.length) img = permuteChannels(img, q.permutation);
    return img;
  }
}

/** SSD's photometric distortions (torchvision v2's RandomPhotometricDistort). */
export function randomPhotometricDistort(options: RandomPhotometricDistortOptions = {}): Transform {
  return new RandomPhotometricDistort(options);
}

// ------------------------------------------------------------------------------ Gaussian noise

export interface GaussianNoiseOptions {
  mean?: number;
  /** Standard deviation, in the units in force (default 0.1: meant after toTensor, as torchvision v2's). */
  sigma?: number;
  /** Clamp to [0, bound] afterwards (default true). */
  clip?: boolean;
}

class GaussianNoise extends Transform {
  readonly name = "GaussianNoise";
  readonly kind = "color";
  readonly options: { mean: number; sigma: number; clip: boolean };
  constructor(o: GaussianNoiseOptions) {
    super();
    v.knownKeys("gaussianNoise", o, ["mean", "sigma", "clip"]);
    this.options = { mean: v.num("gaussianNoise.mean", o.mean ?? 0), sigma: v.num("gaussianNoise.sigma", o.sigma ?? 0.1, 0), clip: v.bool("gaussianNoise.clip", o.clip ?? true) };
  }
  /** The noise field's key: 48 random bits (the field itself is never stored: see noiseField). */
  override draw(rng: RandomStream): Params {
    return { noiseKey: Math.floor(rng.random() * 2 ** 48) };
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const { mean, sigma, clip } = this.options;
    return noiseField(img, keyWords((p as { noiseKey: number }).noiseKey), f(mean), f(sigma), clip, ctx.bound);
  }
  /** NOISE: [bound, mean, sigma, clip, key's three 16-bit words]. */
  override op(s: Shape, p: Params, ctx: ValueContext): PlanOp {
    const { mean, sigma, clip } = this.options;
    return { code: OpCode.Noise, params: [ctx.bound, mean, sigma, clip ? 1 : 0, ...keyWords((p as { noiseKey: number }).noiseKey)], channelsOut: s.channels };
  }
}

/** A 48-bit key as NOISE's three 16-bit words, low first. */
function keyWords(key: number): [number, number, number] {
  return [key % 65536, Math.floor(key / 65536) % 65536, Math.floor(key / 2 ** 32) % 65536];
}

// NOISE's arithmetic (native/PLAN_ABI.md; native/pixel_math.h writes the same for the C++ engine
// and the CUDA kernel): integer hashing, then float32 + - * / and sqrt only.
const u32 = (x: number): number => x >>> 0;
function mix32(x: number): number {
  x = u32(x ^ (x >>> 16));
  x = u32(Math.imul(x, 0x7feb352d));
  x = u32(x ^ (x >>> 15));
  x = u32(Math.imul(x, 0x846ca68b));
  return u32(x ^ (x >>> 16));
}
/** log(n / 2^24) for n in [1, 2^24) (pixel_math.h's logUnit). */
function logUnit(n: number): number {
  let e = 31 - Math.clz32(n);
  let m = f(n / 2 ** e);
  if (m > f(1.41421354)) {
    m = f(m * 0.5);
    e += 1;
  }
  const s = f(f(m - 1) / f(m + 1));
  const s2 = f(s * s);
  let t = f(f(s2 * f(0.222222224)) + f(0.285714298));
  t = f(f(s2 * t) + f(0.400000006));
  t = f(f(s2 * t) + f(0.666666687));
  const lm = f(f(2 * s) + f(f(s * s2) * t));
  return f(f((e - 24) * f(0.693147182)) + lm);
}
const horner = (x: number, cs: readonly number[]): number => cs.slice(1).reduce((acc, c) => f(f(acc * x) + c), cs[0]!);
const TAIL_NUM = [-0.0077848942, -0.322396457, -2.40075827, -2.54973245, 4.37466431, 2.938164].map(f);
const TAIL_DEN = [0.00778469583, 0.322467119, 2.44513416, 3.7544086, 1].map(f);
const MID_NUM = [-39.6968307, 220.946106, -275.928497, 138.357758, -30.6647987, 2.50662827].map(f);
const MID_DEN = [-54.4760971, 161.585831, -155.698975, 66.8013153, -13.2806816, 1].map(f);
const LOW = 406848; // 0.02425 * 2^24, rounded up
/** A standard normal value from 32 random bits (pixel_math.h's normalOf: the inverse normal CDF at an odd n / 2^24). */
function normalOf(bits: number): number {
  const n = ((bits >>> 9) << 1) | 1;
  if (n < LOW || n > 2 ** 24 - LOW) {
    const upper = n > 2 ** 24 - LOW;
    const q = f(Math.sqrt(f(-2 * logUnit(upper ? 2 ** 24 - n : n))));
    const z = f(horner(q, TAIL_NUM) / horner(q, TAIL_DEN));
    return upper ? -z : z;
  }
  const q = f(n * 2 ** -24 - 0.5);
  const r = f(q * q);
  return f(f(horner(r, MID_NUM) * q) / horner(r, MID_DEN));
}

/**
 * x + (mean + sigma * z) per value, z standard normal, a function of the sample's key words and
 * the value's index (y * W + x) * C + c (mod 2^32) in the image at this step; clamped to
 * [0, bound] if clip. mean and sigma as float32.
 */
export function noiseField(img: FloatImage, key: readonly number[], mean: number, sigma: number, clip: boolean, bound: number): FloatImage {
  const ka = mix32(key[0]! | (key[1]! << 16));
  const kb = mix32(key[2]! ^ 0x85ebca6b);
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const z = normalOf(mix32(u32(mix32(u32(i ^ ka)) + kb)));
    const y = f(img.data[i]! + f(mean + f(sigma * z)));
    out[i] = clip ? (y < 0 ? 0 : bound < y ? bound : y) : y;
  }
  return { ...img, data: out };
}

/** Adds Gaussian noise per value (torchvision v2's GaussianNoise). */
export function gaussianNoise(options: GaussianNoiseOptions = {}): Transform {
  return new GaussianNoise(options);
}
