/**
 * Every transform, declared once: its options (checked when it is built), how it draws its
 * random parameters (plain numbers, from the sample's counter-based stream), how it changes the
 * shape, its readable reference implementation, and what it contributes to the compiled plan
 * (per-axis taps for geometry, an op for colour). Parameter maths follows torchvision.
 */
import { DISPLAY, type MimeData } from "../display/index";
import { OptionError } from "../errors";
import type { Image } from "../data/types";
import { RandomStream, Purpose } from "../sampling/rng";
import * as v from "../options";
import {
  type AxisTaps,
  type BorderMode,
  flipTaps,
  identityTaps,
  padCropTaps,
  resampleTaps,
  type Interpolation,
  composeTaps,
  shiftTaps,
  roundHalfEven,
} from "./geometry";
import * as ref from "./reference";
import type { FloatImage } from "./reference";
import { affineWarp, inverseAffine, perspectiveWarp, translation, warpImage, type Mat3, type WarpInterpolation } from "./warp";

export interface Shape {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /**
   * Set by outShape when the size at this point is drawn per sample (randomZoomOut, an expanded
   * randomRotation: the name of that step); height and width are then nominal, and each
   * sample's own size is sampleShape's. A later fixed-size step clears it.
   */
  readonly varies?: string;
}

/** Plain-number parameters drawn for one sample; null when a transform draws nothing. */
export type Params = { readonly [key: string]: number | boolean | readonly number[] | readonly (readonly number[])[] | Params | readonly Params[] } | null;

/** The value range in force: 255 before toTensor, 1 after (colour clamps use it). */
export interface ValueContext {
  bound: number;
}

/** Geometry of one step for one sample. */
export interface StepTaps {
  y: AxisTaps;
  x: AxisTaps;
  /** Per-channel fill for -1 taps, when this step can produce them. */
  fill?: readonly number[];
}

/** One colour op of the plan (see native/PLAN_ABI.md). */
export interface PlanOp {
  code: OpCode;
  /** Parameters after `enabled`. */
  params: number[];
  /** Channels after the op. */
  channelsOut: number;
  /** Drawn as "not this time" (e.g. the coin of a random op). */
  disabled?: boolean;
}

export const enum OpCode {
  Affine = 0,
  Gray = 1,
  Jitter = 2,
  Erase = 3,
  Invert = 4,
  Solarize = 5,
  Posterize = 6,
  Autocontrast = 7,
  Equalize = 8,
  Sharpness = 9,
  Permute = 10,
  Noise = 11,
  Warp = 12,
  MixBegin = 13,
  MixNext = 14,
  MixEnd = 15,
}

export const OP_NAMES = ["affine", "gray", "jitter", "erase", "invert", "solarize", "posterize", "autocontrast", "equalize", "sharpness", "permute", "noise"] as const;


export abstract class Transform {
  abstract readonly name: string;
  /** "warp": geometry through a per-sample projective map (warp.ts): the plan's warp pass. */
  abstract readonly kind: "geometry" | "warp" | "color" | "container";
  /** The options as given (after defaults), for display and debugging. */
  abstract readonly options: Readonly<Record<string, unknown>>;

  /** Output shape for an input shape; throws OptionError if the input cannot be handled. */
  outShape(s: Shape): Shape {
    return s;
  }

  /** Draws this transform's random parameters for one sample. */
  draw(_rng: RandomStream, _s: Shape): Params {
    return null;
  }

  /**
   * One sample's output shape, for its own input shape and drawn parameters: outShape, except
   * for steps whose size is drawn (randomZoomOut, an expanded randomRotation).
   */
  sampleShape(s: Shape, _p: Params): Shape {
    return this.outShape(s);
  }

  /** True when the step's output size depends on its drawn parameters (see Shape.varies). */
  sizesVary(): boolean {
    return false;
  }

  /**
   * What the step does with an input whose size is drawn per sample (Shape.varies): "keep" it
   * per sample (its output size follows each sample's), "fix" it (a size of its own: resize to
   * [h, w], centerCrop, randomResizedCrop), or "refuse" it (its maths needs one size per batch).
   */
  varyingInput(): "keep" | "fix" | "refuse" {
    return this.kind === "color" || this.kind === "warp" ? "keep" : "refuse";
  }

  /** Applies the transform with drawn parameters: the readable reference. */
  abstract reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage;

  /** Geometry steps: the taps for one sample. */
  taps?(s: Shape, p: Params): StepTaps;

  /** Colour steps: the op for one sample (parameters may vary per sample, the code may not). */
  op?(s: Shape, p: Params, ctx: ValueContext): PlanOp;

  /**
   * Containers the plan runs as fused steps (a policy with one op per sample): the steps, each
   * with its parameters and whether this sample runs it; with p null, only the structure (every
   * step, enabled). Undefined, or a method that returns undefined (the same for every p: it
   * depends on the options only): not such a container.
   */
  planSteps?(p: Params): { t: Transform; p: Params; enabled: boolean }[] | undefined;

  /** Colour steps: whether the plan program has an op for this step as configured (if not, the chain runs step by step). */
  hasOp(): boolean {
    return typeof this.op === "function";
  }

  /** Colour steps: the value bound after this step. */
  boundAfter(bound: number): number {
    return bound;
  }

  // Facts the plan compiler reads (it never matches names):

  /** Geometry steps: true when the step resamples (interpolates), not only moves whole pixels. */
  readonly resamples: boolean = false;

  /**
   * Colour steps: true when the step gives the same pixels before or after integer geometry
   * (crops, flips, zero padding), so the engines may run it after the geometry.
   */
  commutesWithIntegerGeometry(): boolean {
    return false;
  }

  /**
   * Geometry steps: what the step reads outside its input: nothing, a constant fill, or mirrored
   * / repeated border pixels (edge, reflect, symmetric).
   */
  borderReads(): "none" | "fill" | "mirror" {
    return "none";
  }

  // Facts for folding geometry into a warp (plan.ts): consecutive projective steps become one
  // per-sample matrix, so the chain resamples once.

  /**
   * Geometry and warps: the step for one sample as a projective map from a point of its output
   * to a point of its input (pixel units, pixel centres at +0.5), or null where it is the
   * identity for this sample.
   */
  foldMatrix?(s: Shape, p: Params): Mat3 | null;

  /** Warps: the displacement grid's points per side (0: none; the same for every sample). */
  displacementGrid(): number {
    return 0;
  }

  /** Warps with a displacement grid: G x G (dx, dy) pairs in output pixels, row-major; null where none. */
  displacement?(s: Shape, p: Params): ArrayLike<number> | null;

  /** True when the step folds into a later warp's matrix, whatever the input shape. */
  foldsBeforeWarp(): boolean {
    return false;
  }

  /** True when the step folds into an earlier warp's matrix at input shape s (it stays inside the warped image). */
  foldsAfterWarp(_s: Shape): boolean {
    return false;
  }

  /** Colour steps: true when the step is a per-channel (x - sub) / div (the AFFINE op), which a warp may run before. */
  readonly pointwiseAffine: boolean = false;

  /** Geometry and warps: the constant fill the step reads outside its input, as given (none: undefined). */
  fillOption(): number | readonly number[] | undefined {
    return undefined;
  }

  /**
   * Geometry steps whose borderReads() is "fill": false when, at input shape s, the step reads
   * no fill whatever its parameters (a centre crop no larger than the image).
   */
  readsFillAt(_s: Shape): boolean {
    return this.borderReads() === "fill";
  }

  /**
   * Runs the reference on one image with the parameters for (seed, epoch, index): the output
   * as float32 CHW, its shape, and the drawn parameters. Handy in notebooks and for views.
   */
  sample(image: Image, at: { seed?: number; epoch?: number; index?: number } = {}): { output: Float32Array; shape: [number, number, number]; params: Params } {
    const rng = new RandomStream(at.seed ?? 0, at.epoch ?? 0, at.index ?? 0, Purpose.transform);
    const shape = { height: image.height, width: image.width, channels: image.channels };
    this.outShape(shape);
    const params = this.draw(rng, shape);
    const img = this.reference(ref.fromImage(image), params, { bound: 255 });
    const output = new Float32Array(img.data.length);
    ref.writeCHW(img, output, 0);
    return { output, shape: [img.channels, img.height, img.width], params };
  }

  /** Output shape [C, H, W] for an input [H, W, C]. */
  outputShape(input: readonly [number, number, number]): [number, number, number] {
    const s = fixedShape(this, this.outShape({ height: input[0], width: input[1], channels: input[2] }));
    return [s.channels, s.height, s.width];
  }

  toString(): string {
    const opts = Object.entries(this.options)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${k}=${JSON.stringify(x)}`)
      .join(", ");
    return `${this.name}(${opts})`;
  }

  [DISPLAY](): MimeData {
    return { "text/plain": this.toString() };
  }
}

// ---------------------------------------------------------------------------------- colour

class ToTensor extends Transform {
  readonly name = "ToTensor";
  readonly kind = "color";
  override readonly pointwiseAffine = true;
  readonly options = {};
  reference(img: FloatImage): FloatImage {
    return ref.affine(img, new Array(img.channels).fill(0), new Array(img.channels).fill(255));
  }
  private readonly byChannels = new Map<number, PlanOp>();
  override op(s: Shape): PlanOp {
    // The same for every sample: one shared (never modified) op per channel count.
    let op = this.byChannels.get(s.channels);
    if (!op) {
      op = frozenOp(OpCode.Affine, [...new Array(s.channels).fill(0), ...new Array(s.channels).fill(255)], s.channels);
      this.byChannels.set(s.channels, op);
    }
    return op;
  }
  override boundAfter(): number {
    return 1;
  }
  override commutesWithIntegerGeometry(): boolean {
    return true; // a scale: 0 stays 0
  }
}

/** uint8 [0, 255] to float [0, 1], as torchvision's ToTensor (layout is always CHW here). */
export function toTensor(): Transform {
  return new ToTensor();
}

class Normalize extends Transform {
  readonly name = "Normalize";
  readonly kind = "color";
  override readonly pointwiseAffine = true;
  readonly options: { mean: number[]; std: number[] };
  constructor(mean: unknown, std: unknown) {
    super();
    this.options = { mean: numberList("normalize(mean)", mean), std: numberList("normalize(std)", std, true) };
    if (this.options.mean.length !== this.options.std.length) {
      throw new OptionError("normalize(std)", std, `as many values as mean (${this.options.mean.length})`);
    }
  }
  private readonly byChannels = new Map<number, { mean: number[]; std: number[]; op: PlanOp }>();
  private perChannel(C: number): { mean: number[]; std: number[]; op: PlanOp } {
    let r = this.byChannels.get(C);
    if (!r) {
      const { mean, std } = this.options;
      if (mean.length !== 1 && mean.length !== C) {
        throw new OptionError("normalize(mean)", mean, `1 or ${C} values for a ${C}-channel image`);
      }
      const pick = (a: number[]) => Array.from({ length: C }, (_, c) => a[a.length === 1 ? 0 : c]!);
      r = { mean: pick(mean), std: pick(std), op: frozenOp(OpCode.Affine, [...pick(mean), ...pick(std)], C) };
      this.byChannels.set(C, r);
    }
    return r;
  }
  override outShape(s: Shape): Shape {
    this.perChannel(s.channels);
    return s;
  }
  reference(img: FloatImage): FloatImage {
    const { mean, std } = this.perChannel(img.channels);
    return ref.affine(img, mean, std);
  }
  override op(s: Shape): PlanOp {
    return this.perChannel(s.channels).op; // shared by every sample, never modified
  }
  override commutesWithIntegerGeometry(): boolean {
    return true; // per pixel (a later constant fill is rewritten by the plan's ERASE ops)
  }
}

/** (x - mean[c]) / std[c]; one value broadcasts to every channel. */
export function normalize(mean: number | readonly number[], std: number | readonly number[]): Transform {
  return new Normalize(mean, std);
}

class Grayscale extends Transform {
  readonly name: string;
  readonly kind = "color";
  readonly options: { numOutputChannels?: number; p?: number };
  constructor(
    private readonly out: number | "same",
    private readonly p: number,
  ) {
    super();
    this.name = out === "same" ? "RandomGrayscale" : "Grayscale";
    this.options = out === "same" ? { p } : { numOutputChannels: out };
  }
  private channelsOut(C: number): number {
    return this.out === "same" ? C : this.out;
  }
  override outShape(s: Shape): Shape {
    needGrayChannels(`${lower(this.name)}: input channels`, s.channels);
    return { ...s, channels: this.channelsOut(s.channels) };
  }
  override draw(rng: RandomStream): Params {
    return this.out === "same" ? { apply: rng.random() < this.p } : null;
  }
  reference(img: FloatImage, p: Params): FloatImage {
    if (p && !p.apply) return img;
    return ref.grayscale(img, this.channelsOut(img.channels));
  }
  override op(s: Shape, p: Params): PlanOp {
    return { code: OpCode.Gray, params: [this.channelsOut(s.channels)], channelsOut: this.channelsOut(s.channels), disabled: p !== null && !p.apply };
  }
  override commutesWithIntegerGeometry(): boolean {
    return true; // per pixel, and gray of black is black
  }
}

/** Luma (0.299 R + 0.587 G + 0.114 B) into 1 or 3 channels. */
export function grayscale(numOutputChannels: 1 | 3 = 1): Transform {
  if (numOutputChannels !== 1 && numOutputChannels !== 3) throw new OptionError("grayscale(numOutputChannels)", numOutputChannels, "1 or 3");
  return new Grayscale(numOutputChannels, 1);
}

/** Grayscale with probability p, keeping the channel count (as torchvision's RandomGrayscale). */
export function randomGrayscale(p = 0.1): Transform {
  return new Grayscale("same", v.prob("randomGrayscale(p)", p));
}

export interface ColorJitterOptions {
  /** Factor range [max(0, 1 - b), 1 + b], or [lo, hi]. */
  brightness?: number | [number, number];
  contrast?: number | [number, number];
  saturation?: number | [number, number];
  /** Hue shift range [-h, h] (0 <= h <= 0.5), or [lo, hi] within [-0.5, 0.5]. */
  hue?: number | [number, number];
}

/** The 24 orders of (brightness 0, contrast 1, saturation 2, hue 3), lexicographic (the fused JITTER op's order index). */
export const HUE_ORDERS: readonly (readonly number[])[] = (() => {
  const out: number[][] = [];
  const rec = (prefix: number[], rest: number[]) => {
    if (!rest.length) out.push(prefix);
    rest.forEach((x, i) => rec([...prefix, x], [...rest.slice(0, i), ...rest.slice(i + 1)]));
  };
  rec([], [0, 1, 2, 3]);
  return out;
})();

/** Without hue: the six orders of (brightness, contrast, saturation) a draw picks from, as indices of HUE_ORDERS (hue last). */
const JITTER_ORDERS = [0, 2, 6, 8, 12, 14] as const;

class ColorJitter extends Transform {
  readonly name = "ColorJitter";
  readonly kind = "color";
  readonly options: { brightness?: [number, number]; contrast?: [number, number]; saturation?: [number, number]; hue?: [number, number] };
  private readonly ranges: ([number, number] | undefined)[];
  private readonly hue: [number, number] | undefined;
  constructor(o: ColorJitterOptions) {
    super();
    v.knownKeys("colorJitter", o, ["brightness", "contrast", "saturation", "hue"]);
    if (o.hue === undefined || o.hue === 0) this.hue = undefined;
    else if (typeof o.hue === "number") {
      const h = v.num("colorJitter.hue", o.hue, 0, 0.5);
      this.hue = [-h, h];
    } else this.hue = v.pair("colorJitter.hue", o.hue, -0.5, 0.5);
    const range = (name: string, x: unknown): [number, number] | undefined => {
      if (x === undefined || x === 0) return undefined;
      if (typeof x === "number") {
        v.num(`colorJitter.${name}`, x, 0);
        return [Math.max(0, 1 - x), 1 + x];
      }
      return v.pair(`colorJitter.${name}`, x, 0);
    };
    this.ranges = [range("brightness", o.brightness), range("contrast", o.contrast), range("saturation", o.saturation)];
    this.options = { brightness: this.ranges[0], contrast: this.ranges[1], saturation: this.ranges[2], ...(this.hue ? { hue: this.hue } : {}) };
  }
  override outShape(s: Shape): Shape {
    if (this.ranges[1] || this.ranges[2] || this.hue) needGrayChannels("colorJitter: input channels (contrast, saturation and hue)", s.channels);
    return s;
  }
  /** Without hue: an order of three (the fused op's form); with hue: torchvision's randperm(4), then the factors. */
  override draw(rng: RandomStream): Params {
    const order = rng.int(this.hue ? 24 : 6);
    const factors = this.ranges.map((r) => (r ? rng.uniform(r[0], r[1]) : NaN));
    const base = { order, brightness: factors[0]!, contrast: factors[1]!, saturation: factors[2]! };
    return this.hue ? { ...base, hue: rng.uniform(this.hue[0], this.hue[1]) } : base;
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const q = p as { order: number; brightness: number; contrast: number; saturation: number; hue?: number };
    for (const which of HUE_ORDERS[q.hue === undefined ? JITTER_ORDERS[q.order]! : q.order]!) {
      if (which === 0 && !Number.isNaN(q.brightness)) img = ref.brightness(img, q.brightness, ctx.bound);
      if (which === 1 && !Number.isNaN(q.contrast)) img = ref.contrast(img, q.contrast, ctx.bound);
      if (which === 2 && !Number.isNaN(q.saturation)) img = ref.saturation(img, q.saturation, ctx.bound);
      if (which === 3 && q.hue !== undefined) img = ref.hue(img, q.hue, ctx.bound);
    }
    return img;
  }
  /** JITTER: [bound, order of the four (0..23), brightness, contrast, saturation, hue], NaN for a step left out. */
  override op(s: Shape, p: Params, ctx: ValueContext): PlanOp {
    const q = p as { order: number; brightness: number; contrast: number; saturation: number; hue?: number };
    const order = q.hue === undefined ? JITTER_ORDERS[q.order]! : q.order;
    return { code: OpCode.Jitter, params: [ctx.bound, order, q.brightness, q.contrast, q.saturation, q.hue ?? NaN], channelsOut: s.channels };
  }
}

/** Random brightness, contrast, saturation and hue in a random order, as torchvision's ColorJitter. */
export function colorJitter(options: ColorJitterOptions): Transform {
  return new ColorJitter(options);
}

export interface RandomErasingOptions {
  p?: number;
  scale?: [number, number];
  ratio?: [number, number];
  /** Value in the units in force at this step (after normalize: normalized units). */
  value?: number | readonly number[];
}

class RandomErasing extends Transform {
  readonly name = "RandomErasing";
  readonly kind = "color";
  readonly options: { p: number; scale: [number, number]; ratio: [number, number]; value: number | number[] };
  constructor(o: RandomErasingOptions) {
    super();
    v.knownKeys("randomErasing", o, ["p", "scale", "ratio", "value"]);
    const value = o.value ?? 0;
    if (value === ("random" as unknown)) {
      throw new OptionError("randomErasing.value", value, "a number or one number per channel (per-pixel random values are not supported)");
    }
    this.options = {
      p: v.prob("randomErasing.p", o.p ?? 0.5),
      scale: v.pair("randomErasing.scale", o.scale ?? [0.02, 0.33], 0, 1),
      ratio: v.pair("randomErasing.ratio", o.ratio ?? [0.3, 3.3], Number.MIN_VALUE),
      value: typeof value === "number" ? v.num("randomErasing.value", value) : numberList("randomErasing.value", value),
    };
  }
  private values(C: number): number[] {
    const val = this.options.value;
    if (typeof val === "number") return new Array(C).fill(val);
    if (val.length === 1) return new Array(C).fill(val[0]);
    if (val.length !== C) throw new OptionError("randomErasing.value", val, `1 or ${C} values for a ${C}-channel image`);
    return val;
  }
  override outShape(s: Shape): Shape {
    this.values(s.channels);
    return s;
  }
  override draw(rng: RandomStream, s: Shape): Params {
    const none = { apply: false, y: 0, x: 0, h: 0, w: 0 };
    if (!(rng.random() < this.options.p)) return none;
    const area = s.height * s.width;
    const [r0, r1] = this.options.ratio;
    for (let attempt = 0; attempt < 10; attempt++) {
      const eraseArea = area * rng.uniform(this.options.scale[0], this.options.scale[1]);
      const aspect = Math.exp(rng.uniform(Math.log(r0), Math.log(r1)));
      const h = roundHalfEven(Math.sqrt(eraseArea * aspect));
      const w = roundHalfEven(Math.sqrt(eraseArea / aspect));
      if (!(h < s.height && w < s.width)) continue;
      const y = rng.int(s.height - h + 1);
      const x = rng.int(s.width - w + 1);
      return { apply: true, y, x, h, w };
    }
    return none;
  }
  reference(img: FloatImage, p: Params): FloatImage {
    const q = p as { apply: boolean; y: number; x: number; h: number; w: number };
    return q.apply ? ref.erase(img, q.y, q.x, q.h, q.w, this.values(img.channels)) : img;
  }
  override op(s: Shape, p: Params): PlanOp {
    const q = p as { apply: boolean; y: number; x: number; h: number; w: number };
    return { code: OpCode.Erase, params: [q.y, q.x, q.h, q.w, ...this.values(s.channels)], channelsOut: s.channels, disabled: !q.apply };
  }
}

/** Erases a random rectangle, as torchvision's RandomErasing (Zhong et al. 2017). */
export function randomErasing(options: RandomErasingOptions = {}): Transform {
  return new RandomErasing(options);
}

// ---------------------------------------------------------------------------------- geometry

/** Geometry as per-axis taps (cached per shape and parameters); photometric.ts's blur is one too. */
export abstract class Geometric extends Transform {
  readonly kind = "geometry";
  /** Tap tables for a shape and parameters; computed once per distinct pair (see cachedTaps). */
  protected abstract makeTaps(s: Shape, p: Params): StepTaps;
  /** Tables by parameter key, for the input shape seen last (in-memory sets have one shape). */
  private cacheShape: Shape = { height: -1, width: -1, channels: -1 };
  private cache = new Map<number | string, StepTaps>();

  override taps(s: Shape, p: Params): StepTaps {
    const last = this.cacheShape;
    if (s.height !== last.height || s.width !== last.width || s.channels !== last.channels) {
      this.cacheShape = { height: s.height, width: s.width, channels: s.channels };
      this.cache = new Map();
    }
    const key = paramKey(p);
    let t = this.cache.get(key);
    if (!t) {
      t = this.makeTaps(s, p);
      if (this.cache.size > 4096) this.cache.clear();
      this.cache.set(key, t);
    }
    return t;
  }

  reference(img: FloatImage, p: Params): FloatImage {
    const t = this.taps({ height: img.height, width: img.width, channels: img.channels }, p);
    return ref.applyTaps(img, t.y, t.x, t.fill ?? new Array(img.channels).fill(0));
  }
}

class RandomFlip extends Geometric {
  readonly name: string;
  readonly options: { p: number };
  constructor(
    private readonly axis: "x" | "y",
    p: number,
  ) {
    super();
    this.name = axis === "x" ? "RandomHorizontalFlip" : "RandomVerticalFlip";
    this.options = { p };
  }
  override draw(rng: RandomStream): Params {
    return { flip: rng.random() < this.options.p };
  }
  protected makeTaps(s: Shape, p: Params): StepTaps {
    const flip = (p as { flip: boolean }).flip;
    const y = flip && this.axis === "y" ? flipTaps(s.height) : identityTaps(s.height);
    const x = flip && this.axis === "x" ? flipTaps(s.width) : identityTaps(s.width);
    return { y, x };
  }
  override foldMatrix(s: Shape, p: Params): Mat3 | null {
    if (!(p as { flip: boolean }).flip) return null;
    return this.axis === "x" ? [-1, 0, s.width, 0, 1, 0, 0, 0, 1] : [1, 0, 0, 0, -1, s.height, 0, 0, 1];
  }
  override foldsBeforeWarp(): boolean {
    return true;
  }
  override foldsAfterWarp(): boolean {
    return true;
  }
  override varyingInput(): "keep" {
    return "keep";
  }
}

export function randomHorizontalFlip(p = 0.5): Transform {
  return new RandomFlip("x", v.prob("randomHorizontalFlip(p)", p));
}

export function randomVerticalFlip(p = 0.5): Transform {
  return new RandomFlip("y", v.prob("randomVerticalFlip(p)", p));
}

export interface RandomCropOptions {
  /** int (all sides), [left/right, top/bottom] or [left, top, right, bottom]. */
  padding?: number | readonly number[];
  padIfNeeded?: boolean;
  /** Constant fill in pixel units: one value or one per channel. */
  fill?: number | readonly number[];
  paddingMode?: BorderMode;
}

class RandomCrop extends Geometric {
  readonly name = "RandomCrop";
  readonly options: { size: [number, number]; padding: [number, number, number, number]; padIfNeeded: boolean; fill: number | number[]; paddingMode: BorderMode };
  constructor(size: unknown, o: RandomCropOptions) {
    super();
    v.knownKeys("randomCrop", o, ["padding", "padIfNeeded", "fill", "paddingMode"]);
    this.options = {
      size: v.size2("randomCrop(size)", size),
      padding: parsePadding("randomCrop.padding", o.padding ?? 0),
      padIfNeeded: o.padIfNeeded === undefined ? false : v.bool("randomCrop.padIfNeeded", o.padIfNeeded),
      fill: parseFill("randomCrop.fill", o.fill ?? 0),
      paddingMode: v.oneOf("randomCrop.paddingMode", o.paddingMode ?? "constant", ["constant", "edge", "reflect", "symmetric"] as const),
    };
  }
  /** Padding per side after padIfNeeded: [left, top, right, bottom]. */
  private pads(s: Shape): readonly [number, number, number, number] {
    if (!this.options.padIfNeeded) return this.options.padding;
    let [l, t, r, b] = this.options.padding;
    const [h, w] = this.options.size;
    if (this.options.padIfNeeded) {
      if (s.height + t + b < h) {
        const d = h - (s.height + t + b);
        t += d;
        b += d;
      }
      if (s.width + l + r < w) {
        const d = w - (s.width + l + r);
        l += d;
        r += d;
      }
    }
    return [l, t, r, b];
  }
  override outShape(s: Shape): Shape {
    const [l, t, r, b] = this.pads(s);
    const [h, w] = this.options.size;
    if (s.height + t + b < h || s.width + l + r < w) {
      throw new OptionError("randomCrop(size)", this.options.size, `at most the padded image size ${s.height + t + b}x${s.width + l + r} (input ${s.height}x${s.width}; set padding or padIfNeeded)`);
    }
    fillFor("randomCrop.fill", this.options.fill, s.channels);
    return { height: h, width: w, channels: s.channels };
  }
  override draw(rng: RandomStream, s: Shape): Params {
    const [l, t, r, b] = this.pads(s);
    const [h, w] = this.options.size;
    const top = rng.int(s.height + t + b - h + 1);
    const left = rng.int(s.width + l + r - w + 1);
    return { top, left };
  }
  override borderReads(): "fill" | "mirror" {
    return this.options.paddingMode === "constant" ? "fill" : "mirror";
  }
  override fillOption(): number | readonly number[] | undefined {
    return this.options.paddingMode === "constant" ? this.options.fill : undefined;
  }
  override foldMatrix(s: Shape, p: Params): Mat3 {
    const [l, t] = this.pads(s);
    const { top, left } = p as { top: number; left: number };
    return translation(left - l, top - t);
  }
  override foldsBeforeWarp(): boolean {
    return this.options.paddingMode === "constant"; // the padding is outside the source: the warp's fill
  }
  override foldsAfterWarp(s: Shape): boolean {
    return this.pads(s).every((x) => x === 0); // a window of the warped image
  }
  override varyingInput(): "fix" | "refuse" {
    return this.options.padIfNeeded ? "fix" : "refuse"; // without it, a small sample could not be cropped
  }
  protected makeTaps(s: Shape, p: Params): StepTaps {
    const [l, t] = this.pads(s);
    const { top, left } = p as { top: number; left: number };
    const mode = this.options.paddingMode;
    return {
      y: padCropTaps(s.height, t, top, this.options.size[0], mode),
      x: padCropTaps(s.width, l, left, this.options.size[1], mode),
      fill: mode === "constant" ? fillFor("randomCrop.fill", this.options.fill, s.channels) : undefined,
    };
  }
}

/** Pads, then crops a random size[0] x size[1] window, as torchvision's RandomCrop. */
export function randomCrop(size: number | [number, number], options: RandomCropOptions = {}): Transform {
  return new RandomCrop(size, options);
}

export interface PadOptions {
  /** Constant fill in the units in force: one value or one per channel (default 0). */
  fill?: number | readonly number[];
  /** torchvision's padding modes; reflect and symmetric repeat periodically past the image. */
  mode?: BorderMode;
}

class Pad extends Geometric {
  readonly name = "Pad";
  readonly options: { padding: [number, number, number, number]; fill: number | number[]; mode: BorderMode };
  constructor(padding: unknown, o: PadOptions) {
    super();
    v.knownKeys("pad", o, ["fill", "mode"]);
    this.options = {
      padding: parsePadding("pad(padding)", padding),
      fill: parseFill("pad.fill", o.fill ?? 0),
      mode: v.oneOf("pad.mode", o.mode ?? "constant", ["constant", "edge", "reflect", "symmetric"] as const),
    };
  }
  override outShape(s: Shape): Shape {
    const [l, t, r, b] = this.options.padding;
    fillFor("pad.fill", this.options.fill, s.channels);
    return { height: s.height + t + b, width: s.width + l + r, channels: s.channels };
  }
  override borderReads(): "fill" | "mirror" {
    return this.options.mode === "constant" ? "fill" : "mirror";
  }
  override fillOption(): number | readonly number[] | undefined {
    return this.options.mode === "constant" ? this.options.fill : undefined;
  }
  override foldMatrix(): Mat3 {
    const [l, t] = this.options.padding;
    return translation(-l, -t);
  }
  override foldsBeforeWarp(): boolean {
    return this.options.mode === "constant";
  }
  override varyingInput(): "keep" {
    return "keep";
  }
  protected makeTaps(s: Shape): StepTaps {
    const [l, t, r, b] = this.options.padding;
    const mode = this.options.mode;
    return {
      y: padCropTaps(s.height, t, 0, s.height + t + b, mode),
      x: padCropTaps(s.width, l, 0, s.width + l + r, mode),
      fill: mode === "constant" ? fillFor("pad.fill", this.options.fill, s.channels) : undefined,
    };
  }
}

/**
 * Pads each side, as torchvision's Pad: an int (every side), [left/right, top/bottom] or
 * [left, top, right, bottom]; `mode` constant (with `fill`), edge, reflect or symmetric.
 */
export function pad(padding: number | readonly number[], options: PadOptions = {}): Transform {
  return new Pad(padding, options);
}

export interface RandomZoomOutOptions {
  /** Value of the canvas around the image, in the units in force: one value or one per channel (default 0). */
  fill?: number | readonly number[];
  /** Range of the canvas side as a multiple of the image's, [lo, hi] with 1 <= lo <= hi (default [1, 4]). */
  sideRange?: [number, number];
  /** Probability of zooming out a sample (default 0.5). */
  p?: number;
}

/** One sample's zoom out: where the image sits on its canvas (torchvision v2's padding, and the canvas size). */
interface ZoomOutParams {
  apply: boolean;
  /** Columns of canvas left of the image, rows above it. */
  left: number;
  top: number;
  /** torchvision v2's RandomZoomOut padding: [left, top, right, bottom]. */
  padding: [number, number, number, number];
  /** The canvas: [height, width]. */
  canvas: [number, number];
}

class RandomZoomOut extends Geometric {
  readonly name = "RandomZoomOut";
  readonly options: { fill: number | number[]; sideRange: [number, number]; p: number };
  constructor(o: RandomZoomOutOptions) {
    super();
    v.knownKeys("randomZoomOut", o, ["fill", "sideRange", "p"]);
    const sideRange = v.pair("randomZoomOut.sideRange", o.sideRange ?? [1, 4], 1);
    this.options = { fill: parseFill("randomZoomOut.fill", o.fill ?? 0), sideRange, p: v.prob("randomZoomOut.p", o.p ?? 0.5) };
  }
  override outShape(s: Shape): Shape {
    fillFor("randomZoomOut.fill", this.options.fill, s.channels);
    return { height: s.height, width: s.width, channels: s.channels, varies: this.name };
  }
  override sizesVary(): boolean {
    return true;
  }
  override varyingInput(): "keep" {
    return "keep";
  }
  /**
   * torchvision v2's RandomZoomOut: the coin (rand >= p leaves the sample), then r ~ U(sideRange),
   * a canvas of int(h * r) x int(w * r), and the image at left = int(u1 * (canvas_w - w)),
   * top = int(u2 * (canvas_h - h)).
   */
  override draw(rng: RandomStream, s: Shape): Params {
    const { height: h, width: w } = s;
    if (!(rng.random() < this.options.p)) return { apply: false, left: 0, top: 0, padding: [0, 0, 0, 0], canvas: [h, w] };
    const [lo, hi] = this.options.sideRange;
    const r = lo + rng.random() * (hi - lo);
    const cw = Math.floor(w * r);
    const ch = Math.floor(h * r);
    const left = Math.floor((cw - w) * rng.random());
    const top = Math.floor((ch - h) * rng.random());
    return { apply: true, left, top, padding: [left, top, cw - w - left, ch - h - top], canvas: [ch, cw] };
  }
  override sampleShape(s: Shape, p: Params): Shape {
    const [height, width] = (p as unknown as ZoomOutParams).canvas;
    return { height, width, channels: s.channels };
  }
  override borderReads(): "fill" {
    return "fill";
  }
  override fillOption(): number | readonly number[] {
    return this.options.fill;
  }
  override foldMatrix(_s: Shape, p: Params): Mat3 | null {
    const q = p as unknown as ZoomOutParams;
    return q.apply ? translation(-q.left, -q.top) : null;
  }
  override foldsBeforeWarp(): boolean {
    return true; // a constant pad: outside the source, the warp's fill
  }
  protected makeTaps(s: Shape, p: Params): StepTaps {
    const q = p as unknown as ZoomOutParams;
    return {
      y: padCropTaps(s.height, q.top, 0, q.canvas[0], "constant"),
      x: padCropTaps(s.width, q.left, 0, q.canvas[1], "constant"),
      fill: q.apply ? fillFor("randomZoomOut.fill", this.options.fill, s.channels) : undefined,
    };
  }
}

/**
 * Places the image on a larger canvas filled with `fill`, with probability p, as torchvision
 * v2's RandomZoomOut: the canvas side is r times the image's, r drawn from sideRange. The size
 * is drawn per sample, so a later step must give one size (resize to [height, width],
 * centerCrop, randomResizedCrop).
 */
export function randomZoomOut(options: RandomZoomOutOptions = {}): Transform {
  return new RandomZoomOut(options);
}

/**
 * Where a centred crop of `crop` starts along an axis of length n, as torchvision's center_crop:
 * a smaller crop starts at round((n - crop) / 2) (Python's round, halves to even); a larger one
 * pads d = crop - n with zeros, floor(d / 2) before and the rest after, so it starts at
 * -floor(d / 2).
 */
export function centerOffset(n: number, crop: number): number {
  return crop > n ? -Math.floor((crop - n) / 2) : roundHalfEven((n - crop) / 2);
}

class CenterCrop extends Geometric {
  readonly name = "CenterCrop";
  readonly options: { size: [number, number] };
  constructor(size: unknown) {
    super();
    this.options = { size: v.size2("centerCrop(size)", size) };
  }
  override outShape(s: Shape): Shape {
    return { height: this.options.size[0], width: this.options.size[1], channels: s.channels };
  }
  override borderReads(): "fill" {
    return "fill"; // a crop larger than the image pads with zeros
  }
  override fillOption(): number {
    return 0;
  }
  override readsFillAt(s: Shape): boolean {
    return this.options.size[0] > s.height || this.options.size[1] > s.width;
  }
  override foldMatrix(s: Shape): Mat3 {
    return translation(centerOffset(s.width, this.options.size[1]), centerOffset(s.height, this.options.size[0]));
  }
  override foldsBeforeWarp(): boolean {
    return true;
  }
  override foldsAfterWarp(s: Shape): boolean {
    return this.options.size[0] <= s.height && this.options.size[1] <= s.width;
  }
  override varyingInput(): "fix" {
    return "fix";
  }
  protected makeTaps(s: Shape): StepTaps {
    const [h, w] = this.options.size;
    const top = centerOffset(s.height, h);
    const left = centerOffset(s.width, w);
    return {
      y: padCropTaps(s.height, 0, top, h, "constant"),
      x: padCropTaps(s.width, 0, left, w, "constant"),
      fill: h > s.height || w > s.width ? new Array(s.channels).fill(0) : undefined,
    };
  }
}

export function centerCrop(size: number | [number, number]): Transform {
  return new CenterCrop(size);
}

export type { Interpolation };

const INTERPOLATIONS = ["bilinear", "bicubic", "nearest", "nearest-exact"] as const;

export interface ResizeOptions {
  /** Default "bilinear"; "nearest" is torch's floor(o * scale), "nearest-exact" PIL's. */
  interpolation?: Interpolation;
  /** Filter over the whole footprint when downscaling (PIL, torchvision >= 0.17); default true. */
  antialias?: boolean;
  /** With an int size: the longer edge is at most this (the shorter then gets less). */
  maxSize?: number;
}

/** The interpolation and antialias options of a resampling transform, checked once. */
function resampling(fn: string, o: { interpolation?: unknown; antialias?: unknown }): { interpolation: Interpolation; antialias: boolean } {
  return {
    interpolation: v.oneOf(`${fn}.interpolation`, o.interpolation ?? "bilinear", INTERPOLATIONS),
    antialias: o.antialias === undefined ? true : v.bool(`${fn}.antialias`, o.antialias),
  };
}

/**
 * True when a resampling step is a plain scale of the image that a warp's sampling can take
 * over: bilinear without antialiasing (or upscaling, where antialiasing changes nothing), or
 * nearest-exact (pixel centres). Antialiased downscaling, bicubic and torch's legacy nearest
 * stay separable taps.
 */
function isPureScale(o: { interpolation: Interpolation; antialias: boolean }, upscale: boolean): boolean {
  return o.interpolation === "nearest-exact" || (o.interpolation === "bilinear" && (!o.antialias || upscale));
}

class Resize extends Geometric {
  readonly name = "Resize";
  override readonly resamples = true;
  readonly options: { size: number | [number, number]; interpolation: Interpolation; antialias: boolean; maxSize?: number };
  constructor(size: unknown, o: ResizeOptions) {
    super();
    v.knownKeys("resize", o, ["interpolation", "antialias", "maxSize"]);
    const parsed = typeof size === "number" ? v.int("resize(size)", size, 1) : v.size2("resize(size)", size);
    let maxSize: number | undefined;
    if (o.maxSize !== undefined) {
      if (typeof parsed !== "number") throw new OptionError("resize.maxSize", o.maxSize, "no maxSize with a [height, width] size (only an int size sets the shorter edge)");
      maxSize = v.int("resize.maxSize", o.maxSize, parsed + 1);
    }
    this.options = { size: parsed, ...resampling("resize", o), ...(maxSize !== undefined ? { maxSize } : {}) };
  }
  override outShape(s: Shape): Shape {
    const size = this.options.size;
    if (Array.isArray(size)) return { height: size[0], width: size[1], channels: s.channels };
    // One number: the shorter edge becomes `size`, the aspect ratio is kept (torchvision's
    // _compute_resized_output_size, with its int() truncation).
    const short = Math.min(s.height, s.width);
    const long = Math.max(s.height, s.width);
    let newShort = size;
    let newLong = Math.floor((size * long) / short);
    const max = this.options.maxSize;
    if (max !== undefined && newLong > max) {
      newShort = Math.floor((max * newShort) / newLong);
      newLong = max;
    }
    return s.height <= s.width
      ? { height: newShort, width: newLong, channels: s.channels }
      : { height: newLong, width: newShort, channels: s.channels };
  }
  override foldMatrix(s: Shape): Mat3 {
    const o = this.outShape(s);
    return [s.width / o.width, 0, 0, 0, s.height / o.height, 0, 0, 0, 1];
  }
  override foldsBeforeWarp(): boolean {
    return isPureScale(this.options, false);
  }
  override foldsAfterWarp(s: Shape): boolean {
    const o = this.outShape(s);
    return isPureScale(this.options, o.height >= s.height && o.width >= s.width);
  }
  override varyingInput(): "fix" | "keep" {
    return Array.isArray(this.options.size) ? "fix" : "keep"; // an int size keeps the aspect ratio: still per sample
  }
  protected makeTaps(s: Shape): StepTaps {
    const o = this.outShape(s);
    const { interpolation, antialias } = this.options;
    return { y: resampleTaps(s.height, o.height, interpolation, antialias), x: resampleTaps(s.width, o.width, interpolation, antialias) };
  }
}

/** Resizes: an int sets the shorter edge (at most maxSize for the longer), [h, w] the exact size. */
export function resize(size: number | [number, number], options: ResizeOptions = {}): Transform {
  return new Resize(size, options);
}

class RandomResizedCrop extends Geometric {
  readonly name = "RandomResizedCrop";
  override readonly resamples = true;
  readonly options: { size: [number, number]; scale: [number, number]; ratio: [number, number]; interpolation: Interpolation; antialias: boolean };
  constructor(size: unknown, o: RandomResizedCropOptions) {
    super();
    v.knownKeys("randomResizedCrop", o, ["scale", "ratio", "interpolation", "antialias"]);
    this.options = {
      size: v.size2("randomResizedCrop(size)", size),
      scale: v.pair("randomResizedCrop.scale", o.scale ?? [0.08, 1], 0),
      ratio: v.pair("randomResizedCrop.ratio", o.ratio ?? [3 / 4, 4 / 3], Number.MIN_VALUE),
      ...resampling("randomResizedCrop", o),
    };
  }
  override outShape(s: Shape): Shape {
    return { height: this.options.size[0], width: this.options.size[1], channels: s.channels };
  }
  override draw(rng: RandomStream, s: Shape): Params {
    const H = s.height;
    const W = s.width;
    const area = H * W;
    const [r0, r1] = this.options.ratio;
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = area * rng.uniform(this.options.scale[0], this.options.scale[1]);
      const aspect = Math.exp(rng.uniform(Math.log(r0), Math.log(r1)));
      const w = roundHalfEven(Math.sqrt(target * aspect));
      const h = roundHalfEven(Math.sqrt(target / aspect));
      if (w > 0 && w <= W && h > 0 && h <= H) {
        const top = rng.int(H - h + 1);
        const left = rng.int(W - w + 1);
        return { top, left, height: h, width: w };
      }
    }
    // Fallback: the largest centred crop whose aspect ratio lies within `ratio`.
    let w = W;
    let h = H;
    const inRatio = W / H;
    if (inRatio < r0) h = roundHalfEven(w / r0);
    else if (inRatio > r1) w = roundHalfEven(h * r1);
    return { top: Math.floor((H - h) / 2), left: Math.floor((W - w) / 2), height: h, width: w };
  }
  override foldMatrix(_s: Shape, p: Params): Mat3 {
    const { top, left, height: h, width: w } = p as { top: number; left: number; height: number; width: number };
    const [oh, ow] = this.options.size;
    return [w / ow, 0, left, 0, h / oh, top, 0, 0, 1];
  }
  override foldsBeforeWarp(): boolean {
    return isPureScale(this.options, false);
  }
  override foldsAfterWarp(): boolean {
    return isPureScale(this.options, false);
  }
  override varyingInput(): "fix" {
    return "fix";
  }
  protected makeTaps(s: Shape, p: Params): StepTaps {
    // torchvision's get_params names, so a sample replays through F.resized_crop.
    const { top, left, height: h, width: w } = p as { top: number; left: number; height: number; width: number };
    const [oh, ow] = this.options.size;
    const { interpolation, antialias } = this.options;
    return {
      // The box lies inside the image (get_params draws it so; reframe keeps it inside the window).
      y: top >= 0 && top + h <= s.height ? shiftTaps(resampleTaps(h, oh, interpolation, antialias), top) : composeTaps(padCropTaps(s.height, 0, top, h, "constant"), resampleTaps(h, oh, interpolation, antialias)),
      x: left >= 0 && left + w <= s.width ? shiftTaps(resampleTaps(w, ow, interpolation, antialias), left) : composeTaps(padCropTaps(s.width, 0, left, w, "constant"), resampleTaps(w, ow, interpolation, antialias)),
    };
  }
}

/** A random area and aspect ratio, resized to `size`, as torchvision's RandomResizedCrop. */
export interface RandomResizedCropOptions {
  scale?: [number, number];
  ratio?: [number, number];
  interpolation?: Interpolation;
  antialias?: boolean;
}

export function randomResizedCrop(size: number | [number, number], options: RandomResizedCropOptions = {}): Transform {
  return new RandomResizedCrop(size, options);
}

// ---------------------------------------------------------------------------------- warps

/** Options every warp shares: torchvision's interpolation (nearest, bilinear or bicubic) and fill. */
interface WarpOptions {
  interpolation?: WarpInterpolation;
  /** Value outside the source, in the units in force: one value or one per channel (default 0). */
  fill?: number | readonly number[];
}

/**
 * A warp: the same output size, each pixel read through the sample's matrix (warp.ts). In the
 * plan it becomes the warp pass, with the projective steps around it folded into its matrix.
 */
export abstract class Warping extends Transform {
  readonly kind = "warp";
  override readonly resamples = true;
  protected abstract readonly warpOptions: { interpolation: WarpInterpolation; fill: number | number[] };
  /** The sample's map (output pixel centre to source point), or null where it does nothing. */
  abstract matrix(s: Shape, p: Params): Mat3 | null;
  override foldMatrix(s: Shape, p: Params): Mat3 | null {
    return this.matrix(s, p);
  }
  /** nearest, bilinear or bicubic: how the plan's warp pass samples the source. */
  get interpolation(): WarpInterpolation {
    return this.warpOptions.interpolation;
  }
  override fillOption(): number | readonly number[] {
    return this.warpOptions.fill;
  }
  override outShape(s: Shape): Shape {
    fillFor(`${lower(this.name)}.fill`, this.warpOptions.fill, s.channels);
    return s;
  }
  reference(img: FloatImage, p: Params): FloatImage {
    const m = this.matrix(img, p);
    if (!m) return img;
    const o = this.sampleShape(img, p);
    return warpImage(img, m, o.height, o.width, this.warpOptions.interpolation, fillFor(`${lower(this.name)}.fill`, this.warpOptions.fill, img.channels));
  }
}

function warpInterpolation(fn: string, x: unknown, dflt: WarpInterpolation): WarpInterpolation {
  return v.oneOf(`${fn}.interpolation`, x ?? dflt, ["nearest", "bilinear", "bicubic"] as const);
}

/** [a, b], each a fraction in [0, 1] (not a range: a is for x, b for y). */
function fractions(option: string, x: unknown): [number, number] {
  if (!Array.isArray(x) || x.length !== 2 || !x.every((e) => typeof e === "number" && e >= 0 && e <= 1)) {
    throw new OptionError(option, x, "[x fraction, y fraction], each in [0, 1]");
  }
  return [x[0], x[1]];
}

/** A symmetric range from one number (-d, d), or [lo, hi] as given. */
function degreesRange(option: string, x: unknown): [number, number] {
  if (typeof x === "number") {
    v.num(option, x, 0);
    return [-x, x];
  }
  return v.pair(option, x, -Infinity);
}

function centerOption(option: string, x: unknown): [number, number] | undefined {
  if (x === undefined) return undefined;
  if (!Array.isArray(x) || x.length !== 2 || !x.every((e) => typeof e === "number" && Number.isFinite(e))) {
    throw new OptionError(option, x, "[x, y] in pixels from the top left corner");
  }
  return [x[0], x[1]];
}

/** torchvision's center argument, relative to the image centre. */
function centred(center: [number, number] | undefined, s: Shape): [number, number] {
  return center ? [center[0] - s.width * 0.5, center[1] - s.height * 0.5] : [0, 0];
}

export interface RandomRotationOptions extends WarpOptions {
  /** Rotation centre [x, y] in pixels (default the image centre). */
  center?: [number, number];
  /**
   * Grow the output to hold the whole rotated image (torchvision's expand; default false). Its
   * size then changes with each angle, so a later step must give one size (resize to
   * [height, width], centerCrop, randomResizedCrop).
   */
  expand?: boolean;
}

class RandomRotation extends Warping {
  readonly name = "RandomRotation";
  readonly options: { degrees: [number, number]; interpolation: WarpInterpolation; expand: boolean; fill: number | number[]; center?: [number, number] };
  protected get warpOptions() {
    return this.options;
  }
  constructor(degrees: unknown, o: RandomRotationOptions) {
    super();
    v.knownKeys("randomRotation", o, ["interpolation", "expand", "center", "fill"]);
    const center = centerOption("randomRotation.center", o.center);
    this.options = {
      degrees: degreesRange("randomRotation(degrees)", degrees),
      interpolation: warpInterpolation("randomRotation", o.interpolation, "nearest"),
      expand: o.expand === undefined ? false : v.bool("randomRotation.expand", o.expand),
      fill: parseFill("randomRotation.fill", o.fill ?? 0),
      ...(center ? { center } : {}),
    };
  }
  override draw(rng: RandomStream): Params {
    return { angle: rng.uniform(this.options.degrees[0], this.options.degrees[1]) };
  }
  private inverse(s: Shape, p: Params): [number, number, number, number, number, number] {
    // F.rotate turns counter-clockwise: its inverse affine matrix takes -angle.
    return inverseAffine(centred(this.options.center, s), -(p as { angle: number }).angle, [0, 0], 1, [0, 0]);
  }
  override outShape(s: Shape): Shape {
    const o = super.outShape(s);
    return this.options.expand ? { ...o, varies: this.name } : o;
  }
  override sizesVary(): boolean {
    return this.options.expand;
  }
  override sampleShape(s: Shape, p: Params): Shape {
    if (!this.options.expand) return this.outShape(s);
    const [width, height] = expandedSize(this.inverse(s, p), s.width, s.height);
    return { height, width, channels: s.channels };
  }
  matrix(s: Shape, p: Params): Mat3 {
    const o = this.sampleShape(s, p);
    return affineWarp(this.inverse(s, p), s.height, s.width, o.height, o.width);
  }
}

/**
 * torchvision's expanded size (functional_tensor._compute_affine_output_size, as F.rotate with
 * expand=True computes it): the image's corners about its centre through the inverse matrix, in
 * float32 as torch's matmul, their bounding box shifted back by half the size, its edges cut to
 * 1e-4 and rounded outwards. Returns [width, height].
 */
export function expandedSize(inv: readonly number[], w: number, h: number): [number, number] {
  const f = Math.fround;
  const t = inv.map(f);
  const hw = f(0.5 * w);
  const hh = f(0.5 * h);
  const pts = [[-hw, -hh], [-hw, hh], [hw, hh], [hw, -hh]];
  const lo = [Infinity, Infinity];
  const hi = [-Infinity, -Infinity];
  for (const [x, y] of pts) {
    for (let k = 0; k < 2; k++) {
      const v = f(f(f(x! * t[3 * k]!) + f(y! * t[3 * k + 1]!)) + t[3 * k + 2]!);
      lo[k] = Math.min(lo[k]!, v);
      hi[k] = Math.max(hi[k]!, v);
    }
  }
  const tol = f(1e-4);
  const half = [hw, hh];
  const size = [0, 1].map((k) => {
    const cmax = Math.ceil(f(Math.trunc(f(f(hi[k]! + half[k]!) / tol)) * tol));
    const cmin = Math.floor(f(Math.trunc(f(f(lo[k]! + half[k]!) / tol)) * tol));
    return Math.max(1, cmax - cmin);
  });
  return [size[0]!, size[1]!];
}

/** Rotates by an angle drawn from degrees (a number d: [-d, d]), as torchvision's RandomRotation. */
export function randomRotation(degrees: number | [number, number], options: RandomRotationOptions = {}): Transform {
  return new RandomRotation(degrees, options);
}

export interface RandomAffineOptions extends WarpOptions {
  /** Rotation range: d for [-d, d], or [lo, hi] (degrees, clockwise as torchvision's affine). */
  degrees: number | [number, number];
  /** Largest translation as fractions of the width and the height. */
  translate?: [number, number];
  /** Scale range [lo, hi]. */
  scale?: [number, number];
  /** Shear: s for x in [-s, s], [lo, hi] for x, or [xlo, xhi, ylo, yhi] (degrees). */
  shear?: number | [number, number] | [number, number, number, number];
  center?: [number, number];
}

class RandomAffine extends Warping {
  readonly name = "RandomAffine";
  readonly options: {
    degrees: [number, number];
    translate?: [number, number];
    scale?: [number, number];
    shear?: [number, number] | [number, number, number, number];
    interpolation: WarpInterpolation;
    fill: number | number[];
    center?: [number, number];
  };
  protected get warpOptions() {
    return this.options;
  }
  constructor(o: RandomAffineOptions) {
    super();
    if (o === null || typeof o !== "object") throw new OptionError("randomAffine(options)", o, "an object with at least degrees");
    v.knownKeys("randomAffine", o, ["degrees", "translate", "scale", "shear", "interpolation", "center", "fill"]);
    if (o.degrees === undefined) throw new OptionError("randomAffine.degrees", undefined, "a number d (for [-d, d]) or [lo, hi]: torchvision's degrees is required (0 for none)");
    const center = centerOption("randomAffine.center", o.center);
    let shear: [number, number] | [number, number, number, number] | undefined;
    if (o.shear !== undefined) {
      if (Array.isArray(o.shear) && o.shear.length === 4) {
        shear = [...v.pair("randomAffine.shear", o.shear.slice(0, 2), -Infinity), ...v.pair("randomAffine.shear", o.shear.slice(2), -Infinity)];
      } else shear = degreesRange("randomAffine.shear", o.shear);
    }
    const translate = o.translate === undefined ? undefined : fractions("randomAffine.translate", o.translate);
    const scale = o.scale === undefined ? undefined : v.pair("randomAffine.scale", o.scale, Number.MIN_VALUE);
    this.options = {
      degrees: degreesRange("randomAffine.degrees", o.degrees),
      ...(translate ? { translate } : {}),
      ...(scale ? { scale } : {}),
      ...(shear ? { shear } : {}),
      interpolation: warpInterpolation("randomAffine", o.interpolation, "nearest"),
      fill: parseFill("randomAffine.fill", o.fill ?? 0),
      ...(center ? { center } : {}),
    };
  }
  /** torchvision's RandomAffine.get_params, in its order of draws, under its names. */
  override draw(rng: RandomStream, s: Shape): Params {
    const o = this.options;
    const angle = rng.uniform(o.degrees[0], o.degrees[1]);
    let translate: [number, number] = [0, 0];
    if (o.translate) {
      const dx = o.translate[0] * s.width;
      const dy = o.translate[1] * s.height;
      translate = [roundHalfEven(rng.uniform(-dx, dx)), roundHalfEven(rng.uniform(-dy, dy))];
    }
    const scale = o.scale ? rng.uniform(o.scale[0], o.scale[1]) : 1;
    const shear: [number, number] = [0, 0];
    if (o.shear) {
      shear[0] = rng.uniform(o.shear[0], o.shear[1]);
      if (o.shear.length === 4) shear[1] = rng.uniform(o.shear[2], o.shear[3]);
    }
    return { angle, translate, scale, shear };
  }
  matrix(s: Shape, p: Params): Mat3 {
    const q = p as { angle: number; translate: [number, number]; scale: number; shear: [number, number] };
    const inv = inverseAffine(centred(this.options.center, s), q.angle, q.translate, q.scale, q.shear);
    return affineWarp(inv, s.height, s.width, s.height, s.width);
  }
}

/** Rotation, translation, scale and shear drawn per sample, as torchvision's RandomAffine. */
export function randomAffine(options: RandomAffineOptions): Transform {
  return new RandomAffine(options);
}

export interface RandomPerspectiveOptions extends WarpOptions {
  /** How far each corner may move, as a fraction of half the side (0..1, default 0.5). */
  distortionScale?: number;
  /** Probability of warping a sample (default 0.5). */
  p?: number;
}

class RandomPerspective extends Warping {
  readonly name = "RandomPerspective";
  readonly options: { distortionScale: number; p: number; interpolation: WarpInterpolation; fill: number | number[] };
  protected get warpOptions() {
    return this.options;
  }
  constructor(o: RandomPerspectiveOptions) {
    super();
    v.knownKeys("randomPerspective", o, ["distortionScale", "p", "interpolation", "fill"]);
    this.options = {
      distortionScale: v.prob("randomPerspective.distortionScale", o.distortionScale ?? 0.5),
      p: v.prob("randomPerspective.p", o.p ?? 0.5),
      interpolation: warpInterpolation("randomPerspective", o.interpolation, "bilinear"),
      fill: parseFill("randomPerspective.fill", o.fill ?? 0),
    };
  }
  /** torchvision's RandomPerspective: the coin, then get_params' corners in its order. */
  override draw(rng: RandomStream, s: Shape): Params {
    const W = s.width;
    const H = s.height;
    const startpoints = [[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]];
    if (!(rng.random() < this.options.p)) return { apply: false, startpoints, endpoints: startpoints };
    const d = this.options.distortionScale;
    const dw = Math.trunc(d * Math.floor(W / 2));
    const dh = Math.trunc(d * Math.floor(H / 2));
    const between = (lo: number, hi: number) => lo + rng.int(hi - lo); // torch.randint(lo, hi)
    const topLeft = [between(0, dw + 1), between(0, dh + 1)];
    const topRight = [between(W - dw - 1, W), between(0, dh + 1)];
    const bottomRight = [between(W - dw - 1, W), between(H - dh - 1, H)];
    const bottomLeft = [between(0, dw + 1), between(H - dh - 1, H)];
    return { apply: true, startpoints, endpoints: [topLeft, topRight, bottomRight, bottomLeft] };
  }
  matrix(_s: Shape, p: Params): Mat3 | null {
    const q = p as { apply: boolean; startpoints: number[][]; endpoints: number[][] };
    if (!q.apply) return null;
    // torchvision applies the corner solution to pixel centres as they are (x + 0.5, y + 0.5).
    return perspectiveWarp(q.startpoints, q.endpoints);
  }
}

/** Moves the four corners at random, as torchvision's RandomPerspective. */
export function randomPerspective(options: RandomPerspectiveOptions = {}): Transform {
  return new RandomPerspective(options);
}

export interface ElasticTransformOptions extends WarpOptions {
  /** Magnitude of the displacement (torchvision's alpha, default 50): one value, or [for x, for y]. */
  alpha?: number | [number, number];
  /** Smoothness: the standard deviation of the Gaussian that blurs the noise, in pixels (default 5). */
  sigma?: number | [number, number];
  /**
   * Control points per side of the displacement grid (2..64, default 17): the field is drawn
   * on this grid, spanning the image, and interpolated bilinearly at the pixel centres.
   */
  grid?: number;
}

/** Uniform noise in [-1, 1) on an n x m grid, blurred along both axes (reflected edges). */
function blurredNoise(rng: RandomStream, n: number, m: number, sy: number, sx: number): Float64Array {
  const a = new Float64Array(n * m);
  for (let i = 0; i < a.length; i++) a[i] = rng.random() * 2 - 1;
  const blur = (src: Float64Array, along: "x" | "y", sigma: number): Float64Array => {
    if (!(sigma > 0)) return src;
    const r = Math.max(1, Math.ceil(3 * sigma));
    const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
    const total = k.reduce((x, y) => x + y, 0);
    const out = new Float64Array(src.length);
    const len = along === "x" ? m : n;
    const reflect = (i: number) => {
      if (len === 1) return 0;
      const period = 2 * (len - 1);
      let q = ((i % period) + period) % period;
      if (q >= len) q = period - q;
      return q;
    };
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        let acc = 0;
        for (let t = -r; t <= r; t++) acc += k[t + r]! * (along === "x" ? src[i * m + reflect(j + t)]! : src[reflect(i + t) * m + j]!);
        out[i * m + j] = acc / total;
      }
    }
    return out;
  };
  return blur(blur(a, "x", sx), "y", sy);
}

/** Sum of the squared weights of torchvision's normalised Gaussian kernel (size int(8 sigma + 1), odd). */
function kernelEnergy(sigma: number): number {
  if (!(sigma > 0)) return 1;
  let size = Math.floor(8 * sigma + 1);
  if (size % 2 === 0) size++;
  const h = (size - 1) / 2;
  const k = Array.from({ length: size }, (_, i) => Math.exp(-0.5 * ((i - h) / sigma) ** 2));
  const t = k.reduce((x, y) => x + y, 0);
  return k.reduce((x, y) => x + (y / t) ** 2, 0);
}

/** Sum of the squared weights of the coarse blur (radius ceil(3 sigma)), as blurredNoise uses it. */
function coarseEnergy(sigma: number): number {
  if (!(sigma > 0)) return 1;
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const t = k.reduce((x, y) => x + y, 0);
  return k.reduce((x, y) => x + (y / t) ** 2, 0);
}

class ElasticTransform extends Warping {
  readonly name = "ElasticTransform";
  readonly options: { alpha: [number, number]; sigma: [number, number]; interpolation: WarpInterpolation; fill: number | number[]; grid: number };
  protected get warpOptions() {
    return this.options;
  }
  constructor(o: ElasticTransformOptions) {
    super();
    v.knownKeys("elasticTransform", o, ["alpha", "sigma", "interpolation", "fill", "grid"]);
    const pairOf = (name: string, x: unknown, dflt: number): [number, number] => {
      if (x === undefined) return [dflt, dflt];
      if (typeof x === "number") return [v.num(`elasticTransform.${name}`, x, 0), x];
      const p = v.pair(`elasticTransform.${name}`, x, 0);
      return [p[0], p[1]];
    };
    this.options = {
      alpha: pairOf("alpha", o.alpha, 50),
      sigma: pairOf("sigma", o.sigma, 5),
      interpolation: warpInterpolation("elasticTransform", o.interpolation, "bilinear"),
      fill: parseFill("elasticTransform.fill", o.fill ?? 0),
      grid: o.grid === undefined ? 17 : v.int("elasticTransform.grid", o.grid, 2, 64),
    };
  }
  override displacementGrid(): number {
    return this.options.grid;
  }
  /**
   * The displacement on the control grid, in pixels: (dx, dy) per point, row-major. As
   * torchvision's get_params: uniform noise in [-1, 1) blurred with sigma, times alpha / height
   * (x) or alpha / width (y) in normalised units (then W / 2 or H / 2 pixels per unit). The noise
   * is drawn and blurred on the grid (sigma in grid spacings) and rescaled to the standard
   * deviation that torchvision's full-resolution field has.
   */
  override draw(rng: RandomStream, s: Shape): Params {
    const G = this.options.grid;
    const [ax, ay] = this.options.alpha;
    const [sx, sy] = this.options.sigma;
    const spaceX = s.width / (G - 1);
    const spaceY = s.height / (G - 1);
    const field = (sigma: number, alpha: number, unit: number): Float64Array => {
      const gx = sigma / spaceX;
      const gy = sigma / spaceY;
      const noise = blurredNoise(rng, G, G, gy, gx);
      const scale = Math.sqrt(kernelEnergy(sigma) ** 2 / (coarseEnergy(gx) * coarseEnergy(gy)));
      return noise.map((x) => x * scale * alpha * unit);
    };
    const dx = field(sx, ax, s.width / (2 * s.height));
    const dy = field(sy, ay, s.height / (2 * s.width));
    const displacement = new Array<number>(2 * G * G);
    for (let i = 0; i < G * G; i++) {
      displacement[2 * i] = dx[i]!;
      displacement[2 * i + 1] = dy[i]!;
    }
    return { displacement };
  }
  matrix(): null {
    return null;
  }
  override displacement(_s: Shape, p: Params): readonly number[] {
    return (p as { displacement: number[] }).displacement;
  }
  override reference(img: FloatImage, p: Params): FloatImage {
    const fill = fillFor("elasticTransform.fill", this.options.fill, img.channels);
    return warpImage(img, [1, 0, 0, 0, 1, 0, 0, 0, 1], img.height, img.width, this.options.interpolation, fill, { grid: { G: this.options.grid, d: this.displacement(img, p) } });
  }
}

/**
 * Elastic distortion, as torchvision's ElasticTransform (alpha, sigma, interpolation, fill): a
 * smooth random displacement of every pixel. The field is drawn on a coarse grid of control
 * points and interpolated (see README, "Semantics").
 */
export function elasticTransform(options: ElasticTransformOptions = {}): Transform {
  return new ElasticTransform(options);
}

// ---------------------------------------------------------------------------------- containers

export class Compose extends Transform {
  readonly name = "Compose";
  readonly kind = "container";
  readonly options: Record<string, unknown>;
  constructor(readonly transforms: readonly Transform[]) {
    super();
    this.options = {};
  }
  override outShape(s: Shape): Shape {
    for (const t of this.transforms) s = stepShape(t, s);
    return s;
  }
  override draw(rng: RandomStream, s: Shape): Params {
    const ts = this.transforms;
    const steps: Params[] = new Array(ts.length);
    if (this.sizesVary()) {
      // Some step draws its output size: each later step draws for this sample's own size.
      let at = s;
      for (let i = 0; i < ts.length; i++) {
        steps[i] = ts[i]!.draw(rng, at);
        at = ts[i]!.sampleShape(at, steps[i]!);
      }
      return { steps } as Params;
    }
    const shapes = this.shapesFrom(s);
    for (let i = 0; i < ts.length; i++) steps[i] = ts[i]!.draw(rng, shapes[i]!);
    return { steps } as Params;
  }
  override sampleShape(s: Shape, p: Params): Shape {
    const steps = (p as { steps: Params[] }).steps;
    this.transforms.forEach((t, i) => (s = t.sampleShape(s, steps[i]!)));
    return s;
  }
  private varyCache: boolean | undefined;
  override sizesVary(): boolean {
    return (this.varyCache ??= this.transforms.some((t) => t.sizesVary()));
  }
  override varyingInput(): "keep" {
    return "keep"; // each step says for itself (stepShape)
  }

  /** The input shape of each step for an input shape (the last one asked for is remembered). */
  private lastShapes: { from: Shape; shapes: Shape[] } | undefined;
  private shapesFrom(s: Shape): Shape[] {
    const last = this.lastShapes;
    if (last && last.from.height === s.height && last.from.width === s.width && last.from.channels === s.channels) return last.shapes;
    // Copies, not the caller's object (an Image, whose pixels must not be kept alive here).
    const from = { height: s.height, width: s.width, channels: s.channels };
    const shapes: Shape[] = [];
    let at: Shape = { ...from };
    for (const t of this.transforms) {
      shapes.push(at);
      at = t.outShape(at);
    }
    this.lastShapes = { from, shapes };
    return shapes;
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const steps = (p as { steps: Params[] }).steps;
    this.transforms.forEach((t, i) => {
      img = t.reference(img, steps[i]!, ctx);
      ctx.bound = t.boundAfter(ctx.bound);
    });
    return img;
  }
  override boundAfter(bound: number): number {
    for (const t of this.transforms) bound = t.boundAfter(bound);
    return bound;
  }
  override toString(): string {
    return `Compose([\n${this.transforms.map((t) => "  " + t.toString().replace(/\n/g, "\n  ")).join(",\n")}\n])`;
  }
}

export function compose(transforms: readonly Transform[]): Compose {
  checkTransformList("compose(transforms)", transforms);
  return new Compose(transforms);
}

export class RandomApply extends Transform {
  readonly name = "RandomApply";
  readonly kind = "container";
  readonly options: { p: number };
  readonly inner: Compose;
  constructor(transforms: readonly Transform[], p: number) {
    super();
    this.inner = new Compose(transforms);
    this.options = { p };
  }
  override outShape(s: Shape): Shape {
    const o = this.inner.outShape(s);
    if (o.height !== s.height || o.width !== s.width || o.channels !== s.channels || o.varies !== s.varies) {
      throw new OptionError(
        "randomApply(transforms)",
        this.inner.transforms.map((t) => t.name),
        o.varies !== s.varies
          ? `transforms that keep the shape, not ${o.varies} (its size is drawn per sample; give it its own p instead of randomApply)`
          : `transforms that keep the shape (${s.height}x${s.width}x${s.channels} became ${o.height}x${o.width}x${o.channels}); samples of a batch must share one shape`,
      );
    }
    if (this.inner.boundAfter(255) !== 255 || this.inner.boundAfter(1) !== 1) {
      throw new OptionError("randomApply(transforms)", this.inner.transforms.map((t) => t.name), "no toTensor inside randomApply (the value range must not depend on chance)");
    }
    return s;
  }
  override draw(rng: RandomStream, s: Shape): Params {
    const apply = rng.random() < this.options.p;
    // Inner parameters are drawn either way, so later draws do not depend on the coin.
    return { apply, inner: this.inner.draw(rng, s) } as Params;
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const q = p as { apply: boolean; inner: Params };
    return q.apply ? this.inner.reference(img, q.inner, ctx) : img;
  }
  override sampleShape(s: Shape): Shape {
    return s; // its steps keep the shape (outShape)
  }
  override varyingInput(): "keep" {
    return "keep"; // its steps say for themselves (Compose)
  }
  override toString(): string {
    return `RandomApply(p=${this.options.p}, ${this.inner.toString()})`;
  }
}

export function randomApply(transforms: readonly Transform[], p = 0.5): RandomApply {
  checkTransformList("randomApply(transforms)", transforms);
  return new RandomApply(transforms, v.prob("randomApply(p)", p));
}

/** Transforms whose input and output share shape and value range (randomChoice, randomOrder). */
function checkKeepsShape(option: string, ts: readonly Transform[], s: Shape): void {
  for (const t of ts) {
    const o = t.outShape(s);
    if (o.height !== s.height || o.width !== s.width || o.channels !== s.channels || o.varies) {
      throw new OptionError(option, t.name, `transforms that keep the shape (${t.name} makes ${s.height}x${s.width}x${s.channels} ${o.height}x${o.width}x${o.channels}); which one runs is drawn per sample, and samples of a batch share one shape`);
    }
    if (t.boundAfter(255) !== 255 || t.boundAfter(1) !== 1) throw new OptionError(option, t.name, "no toTensor inside (the value range must not depend on chance)");
  }
}

export class RandomChoice extends Transform {
  readonly name = "RandomChoice";
  readonly kind = "container";
  readonly options: { p?: number[] };
  private readonly cumulative: number[];
  constructor(
    readonly transforms: readonly Transform[],
    p: number[] | undefined,
  ) {
    super();
    this.options = p ? { p } : {};
    const w = p ?? transforms.map(() => 1);
    let acc = 0;
    this.cumulative = w.map((x) => (acc += x));
  }
  override outShape(s: Shape): Shape {
    checkKeepsShape("randomChoice(transforms)", this.transforms, s);
    return s;
  }
  /**
   * torchvision's random.choices(transforms, weights=p): one index; then every option's
   * parameters, in order (the chosen one's are what torchvision draws; the others keep later
   * draws independent of the choice, and let the plan run every option as a step that only the
   * chosen one enables, as randomApply's).
   */
  override draw(rng: RandomStream, s: Shape): Params {
    const total = this.cumulative[this.cumulative.length - 1]!;
    const u = rng.random() * total;
    let choice = this.cumulative.findIndex((c) => u < c);
    if (choice < 0) choice = this.cumulative.length - 1;
    return { choice, steps: this.transforms.map((t) => t.draw(rng, s)) } as Params;
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const q = p as { choice: number; steps: Params[] };
    return this.transforms[q.choice]!.reference(img, q.steps[q.choice]!, ctx);
  }
  override toString(): string {
    return `RandomChoice(${this.options.p ? `p=${JSON.stringify(this.options.p)}, ` : ""}[${this.transforms.map(String).join(", ")}])`;
  }
}

/** One of the transforms per sample (weights p, default equal), as torchvision's RandomChoice. */
export function randomChoice(transforms: readonly Transform[], options: { p?: readonly number[] } = {}): RandomChoice {
  checkTransformList("randomChoice(transforms)", transforms);
  if (transforms.length === 0) throw new OptionError("randomChoice(transforms)", transforms, "at least one transform");
  v.knownKeys("randomChoice", options, ["p"]);
  let p: number[] | undefined;
  if (options.p !== undefined) {
    p = numberList("randomChoice.p", options.p);
    if (p.length !== transforms.length || p.some((x) => x < 0) || !p.some((x) => x > 0)) {
      throw new OptionError("randomChoice.p", options.p, `${transforms.length} non-negative weights, one per transform, not all 0`);
    }
  }
  return new RandomChoice(transforms, p);
}

export class RandomOrder extends Transform {
  readonly name = "RandomOrder";
  readonly kind = "container";
  readonly options = {};
  constructor(readonly transforms: readonly Transform[]) {
    super();
  }
  override outShape(s: Shape): Shape {
    checkKeepsShape("randomOrder(transforms)", this.transforms, s);
    return s;
  }
  /** A shuffled order (Fisher-Yates from the last index, as Python's random.shuffle), then each step's parameters in that order. */
  override draw(rng: RandomStream, s: Shape): Params {
    const order = this.transforms.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const steps: Params[] = new Array(order.length);
    for (const k of order) steps[k] = this.transforms[k]!.draw(rng, s);
    return { order, steps } as Params;
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const q = p as { order: number[]; steps: Params[] };
    for (const k of q.order) img = this.transforms[k]!.reference(img, q.steps[k]!, ctx);
    return img;
  }
  override toString(): string {
    return `RandomOrder([${this.transforms.map(String).join(", ")}])`;
  }
}

/** The transforms in a random order per sample, as torchvision's RandomOrder. */
export function randomOrder(transforms: readonly Transform[]): RandomOrder {
  checkTransformList("randomOrder(transforms)", transforms);
  return new RandomOrder(transforms);
}

// ---------------------------------------------------------------------------------- helpers

/** An op shared by every sample (its parameters do not depend on the draw): frozen, params too. */
function frozenOp(code: OpCode, params: number[], channelsOut: number): PlanOp {
  return Object.freeze({ code, params: Object.freeze(params) as number[], channelsOut });
}

/**
 * A cache key for one transform's parameters (a flat object whose fields always come in one
 * order): a number when there are at most three fields, each a boolean or an integer in
 * [0, 65536) (crops and flips), else a string.
 */
function paramKey(p: Params): number | string {
  if (!p) return -1;
  let key = 0;
  let fields = 0;
  for (const k in p) {
    const x = (p as Record<string, unknown>)[k];
    const d = x === true ? 1 : x === false ? 0 : x;
    if (++fields > 3 || typeof d !== "number" || !(d >= 0 && d < 65536) || Math.floor(d) !== d) return Object.values(p).join(",");
    key = key * 65536 + d;
  }
  return key;
}

function checkTransformList(option: string, ts: unknown): void {
  if (!Array.isArray(ts)) throw new OptionError(option, ts, "an array of transforms");
  ts.forEach((t, i) => {
    if (!(t instanceof Transform)) throw new OptionError(`${option}[${i}]`, t, "a transform made by batchlab's T.* functions");
  });
}

function numberList(option: string, x: unknown, positive = false): number[] {
  const arr = typeof x === "number" ? [x] : x;
  if (!Array.isArray(arr) || arr.length === 0 || !arr.every((e) => typeof e === "number" && Number.isFinite(e) && (!positive || e > 0))) {
    throw new OptionError(option, x, positive ? "a positive number or a non-empty array of positive numbers" : "a number or a non-empty array of finite numbers");
  }
  return arr.slice();
}

function parsePadding(option: string, x: unknown): [number, number, number, number] {
  const ok = (e: unknown) => typeof e === "number" && Number.isInteger(e) && e >= 0;
  if (ok(x)) return [x as number, x as number, x as number, x as number];
  if (Array.isArray(x) && x.every(ok)) {
    if (x.length === 2) return [x[0], x[1], x[0], x[1]];
    if (x.length === 4) return [x[0], x[1], x[2], x[3]];
  }
  throw new OptionError(option, x, "a non-negative integer, [left/right, top/bottom] or [left, top, right, bottom]");
}

function parseFill(option: string, x: unknown): number | number[] {
  if (typeof x === "number" && Number.isFinite(x)) return x;
  return numberList(option, x);
}

export function fillFor(option: string, fill: number | number[], C: number): number[] {
  if (typeof fill === "number") return new Array(C).fill(fill);
  if (fill.length === 1) return new Array(C).fill(fill[0]);
  if (fill.length !== C) throw new OptionError(option, fill, `1 or ${C} values for a ${C}-channel image`);
  return fill;
}

/**
 * The shape after step t on input s, with the facts of Shape.varies: a step that draws its size
 * marks it, a step that keeps a drawn size carries the mark, a fixed-size step clears it, and a
 * step that needs one size per batch refuses it.
 */
function stepShape(t: Transform, s: Shape): Shape {
  const what = s.varies ? t.varyingInput() : "keep";
  if (what === "refuse") {
    throw new OptionError(`${lower(t.name)} after ${s.varies}`, t.name, `a step that takes a size drawn per sample (flips, warps, colour steps, resize, pad), or a fixed-size step between ${s.varies} and it (resize to [height, width], centerCrop, randomResizedCrop)`);
  }
  const o = t.outShape(s);
  if (what === "fix") return o.varies ? { height: o.height, width: o.width, channels: o.channels } : o;
  return s.varies && !o.varies ? { ...o, varies: s.varies } : o;
}

/** A chain's output shape, refused (OptionError) where its size is still drawn per sample. */
export function fixedShape(t: Transform, s: Shape): Shape {
  if (s.varies) {
    throw new OptionError(`${lower(t.name)}: output size`, s.varies, `a fixed-size step after ${s.varies} (add resize to [height, width], centerCrop or randomResizedCrop after it): its output size is drawn per sample, and the samples of a batch share one size`);
  }
  return s;
}

function needGrayChannels(option: string, C: number): void {
  if (C !== 1 && C !== 3) throw new OptionError(option, C, "1 or 3 channels");
}

function lower(name: string): string {
  return name[0]!.toLowerCase() + name.slice(1);
}
