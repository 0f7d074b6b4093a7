/**
 * Automatic augmentation policies, with torchvision's names, op tables, magnitude bins and order
 * of draws: AutoAugment (Cubuk et al. 2019; the ImageNet, CIFAR-10 and SVHN policies),
 * RandAugment (Cubuk et al. 2020), TrivialAugmentWide (Müller and Hutter 2021) and AugMix
 * (Hendrycks et al. 2020). What a sample got is drawn as plain data, in torchvision's terms
 * (`ops: [{ name: "Solarize", magnitude: 128 }, ...]`), so showAugmentations reads like a recipe
 * and any sample replays through torchvision's `_apply_op`.
 *
 * `applyOp` is torchvision's `_apply_op` on batchlab's values, in the units in force: the warps
 * (ShearX/Y, TranslateX/Y, Rotate) are warp.ts maps sampled with the policy's interpolation and
 * fill; Brightness, Color and Contrast are colorJitter's maths with factor 1 + magnitude;
 * Sharpness, Posterize, Solarize, AutoContrast, Equalize and Invert are photometric.ts's.
 * Solarize's magnitude is a level in 0..255 (torchvision's table), applied as the threshold
 * magnitude * bound / 255 (torchvision 0.14 compares a float image in 0..1 with the 0..255
 * number, so on float images its Solarize never fires; batchlab's fires as it does on uint8).
 *
 * In the fused plan (planSteps): TrivialAugmentWide is one op slot, RandAugment with numOps <= 2
 * and AutoAugment two (OpSlots): each slot is one warp step and one step per colour op, of which
 * only the drawn op's runs. AugMix is a mix group of the program (MIX_BEGIN, per chain its op
 * slots, each with a WARP op in place of the warp step, then MIX_NEXT / MIX_END), so a chain may
 * hold several warps with colour ops between them; RandAugment with three or more ops is such
 * slots in a row (programSlot).
 */
import { OptionError } from "../errors";
import * as v from "../options";
import type { RandomStream } from "../sampling/rng";
import { OpCode, Transform, Warping, type Params, type PlanOp, type Shape, type ValueContext } from "./library";
import { autocontrast, equalize, invert, posterize, sharpness, solarize } from "./photometric";
import * as ref from "./reference";
import type { FloatImage } from "./reference";
import { WARP_MODES, affineWarp, inverseAffine, warpImage, type Mat3, type WarpInterpolation } from "./warp";

const f = Math.fround;

export type OpName =
  | "Identity"
  | "ShearX"
  | "ShearY"
  | "TranslateX"
  | "TranslateY"
  | "Rotate"
  | "Brightness"
  | "Color"
  | "Contrast"
  | "Sharpness"
  | "Posterize"
  | "Solarize"
  | "AutoContrast"
  | "Equalize"
  | "Invert";

/** One op as a policy chose it. */
export interface PolicyOp {
  name: OpName;
  magnitude: number;
}

/** An op space: names in torchvision's order (a draw picks by index), their magnitude bins, and whether a coin flips the sign. */
type Space = readonly (readonly [OpName, readonly number[] | null, boolean])[];

/** torch.linspace in float32: start + i * step for the first half, end - (steps - 1 - i) * step for the rest. */
export function linspace(start: number, end: number, steps: number): number[] {
  if (steps === 1) return [f(start)];
  const step = f(f(f(end) - f(start)) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Array.from({ length: steps }, (_, i) => (i < half ? f(f(start) + f(step * i)) : f(f(end) - f(step * (steps - 1 - i)))));
}

/** top - round(arange(n) / ((n - 1) / div)), in float32 with round half to even (torchvision's Posterize bins). */
function posterizeBins(top: number, n: number, div: number): number[] {
  const d = f((n - 1) / div);
  return Array.from({ length: n }, (_, i) => {
    const x = f(i / d);
    const r = Math.round(x);
    return top - (Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r);
  });
}

/** Spaces built so far, per (policy, bins, image size): a draw reads them and never changes them. */
const spaces = new Map<string, Space>();
function memoSpace(key: string, make: () => Space): Space {
  let sp = spaces.get(key);
  if (!sp) {
    if (spaces.size >= 256) spaces.clear();
    sp = make();
    spaces.set(key, sp);
  }
  return sp;
}

/** AutoAugment's and RandAugment's space (RandAugment adds Identity first; AutoAugment has Invert). */
function augmentSpace(bins: number, s: Shape, identity: boolean, invertOp: boolean): Space {
  return memoSpace(`a${bins},${s.width},${s.height},${identity},${invertOp}`, () => buildAugmentSpace(bins, s, identity, invertOp));
}

function buildAugmentSpace(bins: number, s: Shape, identity: boolean, invertOp: boolean): Space {
  const lin = (hi: number) => linspace(0, hi, bins);
  return [
    ...(identity ? [["Identity", null, false] as const] : []),
    ["ShearX", lin(0.3), true],
    ["ShearY", lin(0.3), true],
    ["TranslateX", lin((150 / 331) * s.width), true],
    ["TranslateY", lin((150 / 331) * s.height), true],
    ["Rotate", lin(30), true],
    ["Brightness", lin(0.9), true],
    ["Color", lin(0.9), true],
    ["Contrast", lin(0.9), true],
    ["Sharpness", lin(0.9), true],
    ["Posterize", posterizeBins(8, bins, 4), false],
    ["Solarize", linspace(255, 0, bins), false],
    ["AutoContrast", null, false],
    ["Equalize", null, false],
    ...(invertOp ? [["Invert", null, false] as const] : []),
  ];
}

function trivialSpace(bins: number): Space {
  return memoSpace(`t${bins}`, () => buildTrivialSpace(bins));
}

function buildTrivialSpace(bins: number): Space {
  const lin = (hi: number) => linspace(0, hi, bins);
  return [
    ["Identity", null, false],
    ["ShearX", lin(0.99), true],
    ["ShearY", lin(0.99), true],
    ["TranslateX", lin(32), true],
    ["TranslateY", lin(32), true],
    ["Rotate", lin(135), true],
    ["Brightness", lin(0.99), true],
    ["Color", lin(0.99), true],
    ["Contrast", lin(0.99), true],
    ["Sharpness", lin(0.99), true],
    ["Posterize", posterizeBins(8, bins, 6), false],
    ["Solarize", linspace(255, 0, bins), false],
    ["AutoContrast", null, false],
    ["Equalize", null, false],
  ];
}

function augMixSpace(s: Shape, allOps: boolean): Space {
  return memoSpace(`m${s.width},${s.height},${allOps}`, () => buildAugMixSpace(s, allOps));
}

function buildAugMixSpace(s: Shape, allOps: boolean): Space {
  const bins = 10;
  const lin = (hi: number) => linspace(0, hi, bins);
  return [
    ["ShearX", lin(0.3), true],
    ["ShearY", lin(0.3), true],
    ["TranslateX", lin(s.width / 3), true],
    ["TranslateY", lin(s.height / 3), true],
    ["Rotate", lin(30), true],
    ["Posterize", posterizeBins(4, bins, 4), false],
    ["Solarize", linspace(255, 0, bins), false],
    ["AutoContrast", null, false],
    ["Equalize", null, false],
    ...(allOps
      ? ([
          ["Brightness", lin(0.9), true],
          ["Color", lin(0.9), true],
          ["Contrast", lin(0.9), true],
          ["Sharpness", lin(0.9), true],
        ] as const)
      : []),
  ];
}

/** The op at `index` of a space with the magnitude at `bin` (0 where the op has none) and the sign coin. */
function chosen(space: Space, index: number, bin: (bins: number) => number, rng: RandomStream): PolicyOp {
  const [name, mags, signed] = space[index]!;
  let magnitude = mags ? mags[bin(mags.length)]! : 0;
  if (signed && rng.int(2) === 1) magnitude = -magnitude;
  return { name, magnitude };
}

export interface PolicyOptions {
  /** How the warps sample: "nearest" (torchvision's default) or "bilinear". */
  interpolation?: WarpInterpolation;
  /** Value outside the image after a warp, in the units in force: one value or one per channel (default 0). */
  fill?: number | readonly number[];
}

/** The ops that are warps. */
const WARP_OPS: ReadonlySet<OpName> = new Set(["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"]);

/** A warp op's map on an image of shape s (torchvision's F.affine / F.rotate inverse matrix), null for the others. */
export function opMatrix(op: PolicyOp, s: Shape): Mat3 | null {
  const m = op.magnitude;
  const affine = (center: [number, number], angle: number, translate: [number, number], shear: [number, number]): Mat3 =>
    affineWarp(inverseAffine(center, angle, translate, 1, shear), s.height, s.width, s.height, s.width);
  // Shears turn about the top left corner (torchvision's center=[0, 0]), relative to the image centre here.
  const corner: [number, number] = [-s.width * 0.5, -s.height * 0.5];
  const degrees = (x: number) => (Math.atan(x) * 180) / Math.PI;
  switch (op.name) {
    case "ShearX":
      return affine(corner, 0, [0, 0], [degrees(m), 0]);
    case "ShearY":
      return affine(corner, 0, [0, 0], [0, degrees(m)]);
    case "TranslateX":
      return affine([0, 0], 0, [Math.trunc(m), 0], [0, 0]);
    case "TranslateY":
      return affine([0, 0], 0, [0, Math.trunc(m)], [0, 0]);
    case "Rotate":
      return affine([0, 0], -m, [0, 0], [0, 0]); // F.rotate: counter-clockwise, the inverse takes -angle
    default:
      return null;
  }
}

/** torchvision's _apply_op on one image, in the units in force. */
export function applyOp(img: FloatImage, op: PolicyOp, bound: number, interpolation: WarpInterpolation, fill: readonly number[]): FloatImage {
  const m = op.magnitude;
  const warp = opMatrix(op, img);
  if (warp) return warpImage(img, warp, img.height, img.width, interpolation, fill);
  switch (op.name) {
    case "Identity":
    case "ShearX":
    case "ShearY":
    case "TranslateX":
    case "TranslateY":
    case "Rotate":
      return img;
    case "Brightness":
      return ref.brightness(img, 1 + m, bound);
    case "Color":
      return ref.saturation(img, 1 + m, bound);
    case "Contrast":
      return ref.contrast(img, 1 + m, bound);
    case "Sharpness":
      return sharpness(img, 1 + m, bound);
    case "Posterize":
      return posterize(img, Math.trunc(m), bound);
    case "Solarize":
      return solarize(img, bound === 255 ? m : f(m / 255), bound);
    case "AutoContrast":
      return autocontrast(img, bound);
    case "Equalize":
      return equalize(img, bound);
    case "Invert":
      return invert(img, bound);
  }
}

abstract class Policy extends Transform {
  readonly kind = "container";
  protected readonly interpolation: WarpInterpolation;
  protected readonly fill: number | number[];
  constructor(fn: string, o: PolicyOptions) {
    super();
    this.interpolation = v.oneOf(`${fn}.interpolation`, o.interpolation ?? "nearest", ["nearest", "bilinear"] as const);
    const fill = o.fill ?? 0;
    if (typeof fill === "number") this.fill = v.num(`${fn}.fill`, fill);
    else if (Array.isArray(fill) && fill.length > 0 && fill.every((x) => typeof x === "number" && Number.isFinite(x))) this.fill = fill.slice();
    else throw new OptionError(`${fn}.fill`, fill, "a number or one number per channel");
    this.fn = fn;
  }
  private readonly fn: string;
  protected fillFor(C: number): number[] {
    const fill = this.fill;
    if (typeof fill === "number") return new Array(C).fill(fill);
    if (fill.length === 1) return new Array(C).fill(fill[0]);
    if (fill.length !== C) throw new OptionError(`${this.fn}.fill`, fill, `1 or ${C} values for a ${C}-channel image`);
    return fill;
  }
  override outShape(s: Shape): Shape {
    if (s.channels !== 1 && s.channels !== 3) throw new OptionError(`${this.fn}: input channels`, s.channels, "1 or 3 (torchvision's policies take grayscale or RGB images)");
    this.fillFor(s.channels);
    return s;
  }
  /** Applies a list of ops in order. */
  protected run(img: FloatImage, ops: readonly PolicyOp[], bound: number): FloatImage {
    const fill = this.fillFor(img.channels);
    for (const op of ops) img = applyOp(img, op, bound, this.interpolation, fill);
    return img;
  }
}

// --------------------------------------------------------------------------------- AutoAugment

type Sub = readonly [OpName, number, number | null];
/** The learned policies (AutoAugment's paper, as torchvision 0.14 tabulates them): pairs of (op, probability, magnitude bin). */
const AUTO_POLICIES: Record<"imagenet" | "cifar10" | "svhn", readonly (readonly [Sub, Sub])[]> = {
  imagenet: [
    [["Posterize", 0.4, 8], ["Rotate", 0.6, 9]],
    [["Solarize", 0.6, 5], ["AutoContrast", 0.6, null]],
    [["Equalize", 0.8, null], ["Equalize", 0.6, null]],
    [["Posterize", 0.6, 7], ["Posterize", 0.6, 6]],
    [["Equalize", 0.4, null], ["Solarize", 0.2, 4]],
    [["Equalize", 0.4, null], ["Rotate", 0.8, 8]],
    [["Solarize", 0.6, 3], ["Equalize", 0.6, null]],
    [["Posterize", 0.8, 5], ["Equalize", 1.0, null]],
    [["Rotate", 0.2, 3], ["Solarize", 0.6, 8]],
    [["Equalize", 0.6, null], ["Posterize", 0.4, 6]],
    [["Rotate", 0.8, 8], ["Color", 0.4, 0]],
    [["Rotate", 0.4, 9], ["Equalize", 0.6, null]],
    [["Equalize", 0.0, null], ["Equalize", 0.8, null]],
    [["Invert", 0.6, null], ["Equalize", 1.0, null]],
    [["Color", 0.6, 4], ["Contrast", 1.0, 8]],
    [["Rotate", 0.8, 8], ["Color", 1.0, 2]],
    [["Color", 0.8, 8], ["Solarize", 0.8, 7]],
    [["Sharpness", 0.4, 7], ["Invert", 0.6, null]],
    [["ShearX", 0.6, 5], ["Equalize", 1.0, null]],
    [["Color", 0.4, 0], ["Equalize", 0.6, null]],
    [["Equalize", 0.4, null], ["Solarize", 0.2, 4]],
    [["Solarize", 0.6, 5], ["AutoContrast", 0.6, null]],
    [["Invert", 0.6, null], ["Equalize", 1.0, null]],
    [["Color", 0.6, 4], ["Contrast", 1.0, 8]],
    [["Equalize", 0.8, null], ["Equalize", 0.6, null]],
  ],
  cifar10: [
    [["Invert", 0.1, null], ["Contrast", 0.2, 6]],
    [["Rotate", 0.7, 2], ["TranslateX", 0.3, 9]],
    [["Sharpness", 0.8, 1], ["Sharpness", 0.9, 3]],
    [["ShearY", 0.5, 8], ["TranslateY", 0.7, 9]],
    [["AutoContrast", 0.5, null], ["Equalize", 0.9, null]],
    [["ShearY", 0.2, 7], ["Posterize", 0.3, 7]],
    [["Color", 0.4, 3], ["Brightness", 0.6, 7]],
    [["Sharpness", 0.3, 9], ["Brightness", 0.7, 9]],
    [["Equalize", 0.6, null], ["Equalize", 0.5, null]],
    [["Contrast", 0.6, 7], ["Sharpness", 0.6, 5]],
    [["Color", 0.7, 7], ["TranslateX", 0.5, 8]],
    [["Equalize", 0.3, null], ["AutoContrast", 0.4, null]],
    [["TranslateY", 0.4, 3], ["Sharpness", 0.2, 6]],
    [["Brightness", 0.9, 6], ["Color", 0.2, 8]],
    [["Solarize", 0.5, 2], ["Invert", 0.0, null]],
    [["Equalize", 0.2, null], ["AutoContrast", 0.6, null]],
    [["Equalize", 0.2, null], ["Equalize", 0.6, null]],
    [["Color", 0.9, 9], ["Equalize", 0.6, null]],
    [["AutoContrast", 0.8, null], ["Solarize", 0.2, 8]],
    [["Brightness", 0.1, 3], ["Color", 0.7, 0]],
    [["Solarize", 0.4, 5], ["AutoContrast", 0.9, null]],
    [["TranslateY", 0.9, 9], ["TranslateY", 0.7, 9]],
    [["AutoContrast", 0.9, null], ["Solarize", 0.8, 3]],
    [["Equalize", 0.8, null], ["Invert", 0.1, null]],
    [["TranslateY", 0.7, 9], ["AutoContrast", 0.9, null]],
  ],
  svhn: [
    [["ShearX", 0.9, 4], ["Invert", 0.2, null]],
    [["ShearY", 0.9, 8], ["Invert", 0.7, null]],
    [["Equalize", 0.6, null], ["Solarize", 0.6, 6]],
    [["Invert", 0.9, null], ["Equalize", 0.6, null]],
    [["Equalize", 0.6, null], ["Rotate", 0.9, 3]],
    [["ShearX", 0.9, 4], ["AutoContrast", 0.8, null]],
    [["ShearY", 0.9, 8], ["Invert", 0.4, null]],
    [["ShearY", 0.9, 5], ["Solarize", 0.2, 6]],
    [["Invert", 0.9, null], ["AutoContrast", 0.8, null]],
    [["Equalize", 0.6, null], ["Rotate", 0.9, 3]],
    [["ShearX", 0.9, 4], ["Solarize", 0.3, 3]],
    [["ShearY", 0.8, 8], ["Invert", 0.7, null]],
    [["Equalize", 0.9, null], ["TranslateY", 0.6, 6]],
    [["Invert", 0.9, null], ["Equalize", 0.6, null]],
    [["Contrast", 0.3, 3], ["Rotate", 0.8, 4]],
    [["Invert", 0.8, null], ["TranslateY", 0.0, 2]],
    [["ShearY", 0.7, 6], ["Solarize", 0.4, 8]],
    [["Invert", 0.6, null], ["Rotate", 0.8, 4]],
    [["ShearY", 0.3, 7], ["TranslateX", 0.9, 3]],
    [["ShearX", 0.1, 6], ["Invert", 0.6, null]],
    [["Solarize", 0.7, 2], ["TranslateY", 0.6, 7]],
    [["ShearY", 0.8, 4], ["Invert", 0.8, null]],
    [["ShearX", 0.7, 9], ["TranslateY", 0.8, 3]],
    [["ShearY", 0.8, 5], ["AutoContrast", 0.7, null]],
    [["ShearX", 0.7, 2], ["Invert", 0.1, null]],
  ],
};

export interface AutoAugmentOptions extends PolicyOptions {
  /** Which learned policy (default "imagenet"). */
  policy?: "imagenet" | "cifar10" | "svhn";
}

class AutoAugment extends Policy {
  readonly name = "AutoAugment";
  readonly options: { policy: "imagenet" | "cifar10" | "svhn"; interpolation: WarpInterpolation; fill: number | number[] };
  constructor(o: AutoAugmentOptions) {
    super("autoAugment", o);
    v.knownKeys("autoAugment", o, ["policy", "interpolation", "fill"]);
    this.options = { policy: v.oneOf("autoAugment.policy", o.policy ?? "imagenet", ["imagenet", "cifar10", "svhn"] as const), interpolation: this.interpolation, fill: this.fill };
    this.slots = new OpSlots(2, { interpolation: this.interpolation, fill: this.fill });
  }
  /** A sub-policy's two ops (those whose probability came up, in order) as two slots of the fused plan (OpSlots). */
  private readonly slots: OpSlots;
  override planSteps(p: Params): PlanStep[] {
    return this.slots.steps(p ? (p as unknown as { ops: PolicyOp[] }).ops : null);
  }
  /** torchvision's order: the sub-policy, two probabilities, two signs; then each op whose probability came up. */
  override draw(rng: RandomStream, s: Shape): Params {
    const policies = AUTO_POLICIES[this.options.policy];
    const policy = rng.int(policies.length);
    const probs = [rng.random(), rng.random()];
    const signs = [rng.int(2), rng.int(2)];
    const space = new Map(augmentSpace(10, s, false, true).map(([name, mags, signed]) => [name, { mags, signed }]));
    const ops: PolicyOp[] = [];
    policies[policy]!.forEach(([name, p, bin], i) => {
      if (!(probs[i]! <= p)) return;
      const { mags, signed } = space.get(name)!;
      let magnitude = bin !== null && mags ? mags[bin]! : 0;
      if (signed && signs[i] === 0) magnitude = -magnitude;
      ops.push({ name, magnitude });
    });
    return { policy, ops } as unknown as Params;
  }
  override reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    return this.run(img, (p as unknown as { ops: PolicyOp[] }).ops, ctx.bound);
  }
}

/** One of the learned sub-policies per sample, as torchvision's AutoAugment. */
export function autoAugment(options: AutoAugmentOptions = {}): Transform {
  return new AutoAugment(options);
}

// --------------------------------------------------------------------------------- RandAugment

export interface RandAugmentOptions extends PolicyOptions {
  /** Ops per sample (default 2). */
  numOps?: number;
  /** The magnitude bin every op uses (default 9). */
  magnitude?: number;
  /** Bins of each op's range (default 31). */
  numMagnitudeBins?: number;
}

class RandAugment extends Policy {
  readonly name = "RandAugment";
  readonly options: { numOps: number; magnitude: number; numMagnitudeBins: number; interpolation: WarpInterpolation; fill: number | number[] };
  constructor(o: RandAugmentOptions) {
    super("randAugment", o);
    v.knownKeys("randAugment", o, ["numOps", "magnitude", "numMagnitudeBins", "interpolation", "fill"]);
    const bins = v.int("randAugment.numMagnitudeBins", o.numMagnitudeBins ?? 31, 2, 1000);
    this.options = {
      numOps: v.int("randAugment.numOps", o.numOps ?? 2, 0, 100),
      magnitude: v.int("randAugment.magnitude", o.magnitude ?? 9, 0, bins - 1),
      numMagnitudeBins: bins,
      interpolation: this.interpolation,
      fill: this.fill,
    };
    const n = this.options.numOps;
    this.slots = n <= 2 ? new OpSlots(n as 0 | 1 | 2, { interpolation: this.interpolation, fill: this.fill }) : undefined;
    this.wide = n > 2 ? programSlot(augmentSpace(bins, { height: 1, width: 1, channels: 3 }, true, false), this.interpolation, (C) => this.fillFor(C)) : [];
  }
  /**
   * Up to two ops: a slot each around the one warp pass (OpSlots: two warps fold into one
   * resampling). More: one program slot per op (programSlot), each warp a WARP op of its own.
   */
  private readonly slots: OpSlots | undefined;
  private readonly wide: Slot;
  override planSteps(p: Params): PlanStep[] {
    const ops = p ? (p as unknown as { ops: PolicyOp[] }).ops : null;
    if (this.slots) return this.slots.steps(ops);
    const out: PlanStep[] = [];
    for (let j = 0; j < this.options.numOps; j++) pushSlot(out, this.wide, ops ? ops[j] ?? null : null, ops === null);
    return out;
  }
  override draw(rng: RandomStream, s: Shape): Params {
    const space = augmentSpace(this.options.numMagnitudeBins, s, true, false);
    const ops = Array.from({ length: this.options.numOps }, () => chosen(space, rng.int(space.length), () => this.options.magnitude, rng));
    return { ops } as unknown as Params;
  }
  override reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    return this.run(img, (p as unknown as { ops: PolicyOp[] }).ops, ctx.bound);
  }
}

/** numOps ops drawn uniformly, each at one fixed magnitude, as torchvision's RandAugment. */
export function randAugment(options: RandAugmentOptions = {}): Transform {
  return new RandAugment(options);
}

// --------------------------------------------------- a one-op policy as steps of the fused plan

/** The parameters of a one-op policy's steps: the sample's op (null when only the structure is asked for). */
type OneOp = { op: PolicyOp | null };

/** The warp ops of a one-op policy as one warp step of the plan (identity for the others). */
class OpWarp extends Warping {
  readonly name = "PolicyWarp";
  readonly options = {};
  constructor(protected readonly warpOptions: { interpolation: WarpInterpolation; fill: number | number[] }) {
    super();
  }
  matrix(s: Shape, p: Params): Mat3 | null {
    const op = (p as unknown as OneOp | null)?.op;
    return op ? opMatrix(op, s) : null;
  }
}

/** The colour ops of a one-op policy, one step each: op() is its plan op, reference() applyOp. */
class OpColour extends Transform {
  readonly kind = "color";
  readonly options = {};
  constructor(
    readonly name: string,
    private readonly make: (op: PolicyOp, bound: number) => { code: OpCode; params: number[] },
  ) {
    super();
  }
  override op(s: Shape, p: Params, ctx: ValueContext): PlanOp {
    const op = (p as unknown as OneOp | null)?.op ?? { name: "Identity" as OpName, magnitude: 0 };
    return { ...this.make(op, ctx.bound), channelsOut: s.channels };
  }
  reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const op = (p as unknown as OneOp | null)?.op;
    return op ? applyOp(img, op, ctx.bound, "nearest", []) : img;
  }
}

const NaN4 = [NaN, NaN, NaN, NaN];

/**
 * A policy that applies one op per sample, as steps of the fused plan: its warp ops as one warp
 * step, then one step per colour op, each enabled only for the samples that drew it (so the
 * order of the steps does not matter: one runs). SHARPNESS last, as the CUDA kernel asks.
 */
function oneOpSteps(warp: { interpolation: WarpInterpolation; fill: number | number[] }): { t: Transform; names: readonly OpName[] }[] {
  const jitter = (factorAt: number) => (op: PolicyOp, bound: number) => {
    const f4 = NaN4.slice();
    f4[factorAt] = 1 + op.magnitude;
    return { code: OpCode.Jitter, params: [bound, 0, ...f4] };
  };
  return [
    { t: new OpWarp(warp), names: [...WARP_OPS] },
    { t: new OpColour("PolicyBrightness", jitter(0)), names: ["Brightness"] },
    { t: new OpColour("PolicyContrast", jitter(1)), names: ["Contrast"] },
    { t: new OpColour("PolicyColor", jitter(2)), names: ["Color"] },
    { t: new OpColour("PolicyPosterize", (op, bound) => ({ code: OpCode.Posterize, params: [bound, Math.trunc(op.magnitude)] })), names: ["Posterize"] },
    { t: new OpColour("PolicySolarize", (op, bound) => ({ code: OpCode.Solarize, params: [bound, bound === 255 ? op.magnitude : f(op.magnitude / 255)] })), names: ["Solarize"] },
    { t: new OpColour("PolicyAutoContrast", (_op, bound) => ({ code: OpCode.Autocontrast, params: [bound] })), names: ["AutoContrast"] },
    { t: new OpColour("PolicyEqualize", (_op, bound) => ({ code: OpCode.Equalize, params: [bound] })), names: ["Equalize"] },
    { t: new OpColour("PolicyInvert", (_op, bound) => ({ code: OpCode.Invert, params: [bound] })), names: ["Invert"] }, // AutoAugment's
    { t: new OpColour("PolicySharpness", (op, bound) => ({ code: OpCode.Sharpness, params: [bound, 1 + op.magnitude] })), names: ["Sharpness"] },
  ];
}

type PlanStep = { t: Transform; p: Params; enabled: boolean };

/** An op slot's steps: each op kind's step and the op names it runs. */
type Slot = readonly { t: Transform; names: readonly OpName[] }[];

/** Whether a slot's step runs for the sample's op (every step when only the structure is asked for). */
function slotRuns(names: readonly OpName[], op: PolicyOp | null, structure: boolean): boolean {
  return structure || (op !== null && names.includes(op.name));
}

/** Appends one slot's steps for `op` (null: no op in this slot, or the structure when `structure`). */
function pushSlot(out: PlanStep[], slot: Slot, op: PolicyOp | null, structure: boolean): void {
  const p = { op } as unknown as Params;
  for (const { t, names } of slot) out.push({ t, p, enabled: slotRuns(names, op, structure) });
}

/**
 * A policy of up to two ops per sample (RandAugment with numOps <= 2, AutoAugment's
 * sub-policies) as steps of the fused plan, one slot per op: slot 1's colour ops then its warp,
 * slot 2's warp then its colour ops, each step enabled only where the sample drew its op. Every
 * order of two ops keeps its meaning: a colour op then a warp, a warp then a colour op, two
 * warps (folded into one matrix) or two colour ops (one before the warp pass, one after). Slot
 * 1's colour ops run before the warp (the job's warpOps), on the image it reads. One slot is
 * oneOpSteps as TrivialAugmentWide runs it.
 */
class OpSlots {
  private readonly slots: { t: Transform; names: readonly OpName[] }[][];
  constructor(count: 0 | 1 | 2, warp: { interpolation: WarpInterpolation; fill: number | number[] }) {
    const first = oneOpSteps(warp);
    this.slots = count === 0 ? [] : count === 1 ? [first] : [[...first.slice(1), first[0]!], oneOpSteps(warp)];
  }
  /**
   * The steps for a sample's ops (null: the structure, every step enabled); a missing op enables
   * nothing. The array and its entries are reused from call to call (the plan reads them at once).
   */
  steps(ops: readonly PolicyOp[] | null): PlanStep[] {
    const out = this.scratch;
    let j = 0;
    for (let i = 0; i < this.slots.length; i++) {
      const op = ops ? ops[i] ?? null : null;
      const q = { op } as unknown as Params;
      for (const { t, names } of this.slots[i]!) {
        const st = (out[j++] ??= { t, p: q, enabled: true });
        st.p = q;
        st.enabled = slotRuns(names, op, ops === null);
      }
    }
    return out;
  }
  private readonly scratch: PlanStep[] = [];
}

// -------------------------------------------------------------------------- TrivialAugmentWide

export interface TrivialAugmentWideOptions extends PolicyOptions {
  /** Bins of each op's range (default 31). */
  numMagnitudeBins?: number;
}

class TrivialAugmentWide extends Policy {
  readonly name = "TrivialAugmentWide";
  readonly options: { numMagnitudeBins: number; interpolation: WarpInterpolation; fill: number | number[] };
  private readonly slots: OpSlots;
  constructor(o: TrivialAugmentWideOptions) {
    super("trivialAugmentWide", o);
    v.knownKeys("trivialAugmentWide", o, ["numMagnitudeBins", "interpolation", "fill"]);
    this.options = { numMagnitudeBins: v.int("trivialAugmentWide.numMagnitudeBins", o.numMagnitudeBins ?? 31, 2, 1000), interpolation: this.interpolation, fill: this.fill };
    this.slots = new OpSlots(1, { interpolation: this.interpolation, fill: this.fill });
  }
  /** One op per sample: the fused plan runs it as steps that only the drawn op enables (OpSlots). */
  override planSteps(p: Params): PlanStep[] {
    return this.slots.steps(p ? (p as unknown as { ops: PolicyOp[] }).ops : null);
  }
  override draw(rng: RandomStream): Params {
    const space = trivialSpace(this.options.numMagnitudeBins);
    return { ops: [chosen(space, rng.int(space.length), (n) => rng.int(n), rng)] } as unknown as Params;
  }
  override reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    return this.run(img, (p as unknown as { ops: PolicyOp[] }).ops, ctx.bound);
  }
}

/** One op and one magnitude drawn uniformly per sample, as torchvision's TrivialAugmentWide. */
export function trivialAugmentWide(options: TrivialAugmentWideOptions = {}): Transform {
  return new TrivialAugmentWide(options);
}

// --------------------------------------------------- AugMix's branches as steps of the fused plan

const IDENTITY3: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** A slot's warp op inside the program (a WARP op: a resampling of its own, where a branch needs one). */
class OpWarpStep extends Transform {
  readonly kind = "color";
  readonly name = "PolicyWarpOp";
  readonly options = {};
  constructor(
    private readonly interpolation: WarpInterpolation,
    private readonly fillOf: (C: number) => number[],
  ) {
    super();
  }
  override op(s: Shape, p: Params): PlanOp {
    const op = (p as unknown as OneOp | null)?.op;
    const m = (op && opMatrix(op, s)) ?? IDENTITY3;
    return { code: OpCode.Warp, params: [WARP_MODES[this.interpolation], ...this.fillOf(s.channels), ...m], channelsOut: s.channels };
  }
  reference(img: FloatImage, p: Params): FloatImage {
    const op = (p as unknown as OneOp | null)?.op;
    const m = op && opMatrix(op, img);
    return m ? warpImage(img, m, img.height, img.width, this.interpolation, this.fillOf(img.channels)) : img;
  }
}

/** MIX_BEGIN, MIX_NEXT or MIX_END with the sample's weight (AugMix's original weight, then each chain's). */
class OpMix extends Transform {
  readonly kind = "color";
  readonly options = {};
  constructor(
    readonly name: string,
    private readonly code: OpCode.MixBegin | OpCode.MixNext | OpCode.MixEnd,
  ) {
    super();
  }
  override op(s: Shape, p: Params): PlanOp {
    return { code: this.code, params: [(p as unknown as { w: number } | null)?.w ?? 0], channelsOut: s.channels };
  }
  reference(): FloatImage {
    throw new OptionError(this.name, "reference", "a step of augMix's fused plan only (augMix's own reference mixes the chains)");
  }
}

/**
 * One op slot as program steps only (no warp pass): the colour ops of a space, then a WARP op,
 * of which only the drawn op's runs. Slots in a row keep any order of warps and colour ops, each
 * warp resampling once as the step-by-step chain does (AugMix's chains, RandAugment beyond two ops).
 */
function programSlot(space: Space, interpolation: WarpInterpolation, fillOf: (C: number) => number[]): Slot {
  const names = new Set(space.map(([name]) => name));
  const colour = oneOpSteps({ interpolation, fill: 0 }).slice(1);
  return [...colour.filter((st) => st.names.some((n) => names.has(n))), { t: new OpWarpStep(interpolation, fillOf), names: [...WARP_OPS] }];
}

// ------------------------------------------------------------------------------------- AugMix

/** A Gamma(a, 1) draw (Marsaglia and Tsang 2000; a < 1 boosted through Gamma(a + 1)). */
function gamma(rng: RandomStream, a: number): number {
  if (a < 1) {
    let u = rng.random();
    while (u === 0) u = rng.random();
    return gamma(rng, a + 1) * Math.pow(u, 1 / a);
  }
  const d = a - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = rng.normal();
    const t = 1 + c * x;
    if (t <= 0) continue;
    const v3 = t * t * t;
    const u = rng.random();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v3 + Math.log(v3))) return d * v3;
  }
}

/** A Dirichlet(alphas) draw, as float32 weights summing to 1 (up to rounding). */
function dirichlet(rng: RandomStream, alphas: readonly number[]): number[] {
  const g = alphas.map((a) => gamma(rng, a));
  const sum = g.reduce((s, x) => s + x, 0);
  return g.map((x) => f(x / sum));
}

export interface AugMixOptions extends PolicyOptions {
  /** Magnitude bins the ops draw from: the first `severity` of 10 (default 3). */
  severity?: number;
  /** Chains mixed per sample (default 3). */
  mixtureWidth?: number;
  /** Ops per chain; -1 (default): 1 to 3 drawn per chain. */
  chainDepth?: number;
  /** Dirichlet and Beta concentration (default 1). */
  alpha?: number;
  /** With the colour ops (Brightness, Color, Contrast, Sharpness) too (default true). */
  allOps?: boolean;
}

class AugMix extends Policy {
  readonly name = "AugMix";
  readonly options: { severity: number; mixtureWidth: number; chainDepth: number; alpha: number; allOps: boolean; interpolation: WarpInterpolation; fill: number | number[] };
  constructor(o: AugMixOptions) {
    super("augMix", o);
    v.knownKeys("augMix", o, ["severity", "mixtureWidth", "chainDepth", "alpha", "allOps", "interpolation", "fill"]);
    const depth = v.int("augMix.chainDepth", o.chainDepth ?? -1, -1, 100);
    if (depth === 0) throw new OptionError("augMix.chainDepth", 0, "-1 (1 to 3 ops per chain, drawn) or a positive number of ops");
    this.options = {
      severity: v.int("augMix.severity", o.severity ?? 3, 1, 10),
      mixtureWidth: v.int("augMix.mixtureWidth", o.mixtureWidth ?? 3, 1, 100),
      chainDepth: depth,
      alpha: v.num("augMix.alpha", o.alpha ?? 1, Number.MIN_VALUE),
      allOps: v.bool("augMix.allOps", o.allOps ?? true),
      interpolation: this.interpolation,
      fill: this.fill,
    };
    this.slot = programSlot(augMixSpace({ height: 1, width: 1, channels: 3 }, this.options.allOps), this.interpolation, (C) => this.fillFor(C));
  }
  /**
   * The fused plan's steps (PLAN_ABI.md, "Branches mixed per sample"): MIX_BEGIN with the
   * original's weight, then per chain its op slots (one per op of the deepest chain: the colour
   * ops of the space and a WARP op, of which only the drawn op's runs) and MIX_NEXT, or MIX_END
   * after the last chain, with the chain's weight.
   */
  override planSteps(p: Params): PlanStep[] {
    const q = p as unknown as { original: number; weights: number[]; chains: PolicyOp[][] } | null;
    const o = this.options;
    const out: PlanStep[] = [];
    const depth = o.chainDepth > 0 ? o.chainDepth : 3;
    out.push({ t: this.mix.begin, p: { w: q ? q.original : 0 } as unknown as Params, enabled: true });
    for (let k = 0; k < o.mixtureWidth; k++) {
      for (let j = 0; j < depth; j++) pushSlot(out, this.slot, q ? q.chains[k]![j] ?? null : null, q === null);
      out.push({ t: k + 1 < o.mixtureWidth ? this.mix.next : this.mix.end, p: { w: q ? q.weights[k]! : 0 } as unknown as Params, enabled: true });
    }
    return out;
  }
  /** One op slot: the colour ops of the space, then the WARP op. */
  private readonly slot: Slot;
  private readonly mix = {
    begin: new OpMix("AugMixBegin", OpCode.MixBegin),
    next: new OpMix("AugMixNext", OpCode.MixNext),
    end: new OpMix("AugMixEnd", OpCode.MixEnd),
  };
  /**
   * torchvision's order: m ~ Dirichlet(alpha, alpha) (the original's weight is m[0]), chain
   * weights ~ Dirichlet(alpha x width) times m[1], then each chain's depth and ops.
   */
  override draw(rng: RandomStream, s: Shape): Params {
    const o = this.options;
    const space = augMixSpace(s, o.allOps);
    const m = dirichlet(rng, [o.alpha, o.alpha]);
    const weights = dirichlet(rng, new Array(o.mixtureWidth).fill(o.alpha)).map((w) => f(w * m[1]!));
    const chains = Array.from({ length: o.mixtureWidth }, () => {
      const depth = o.chainDepth > 0 ? o.chainDepth : 1 + rng.int(3);
      return Array.from({ length: depth }, () => chosen(space, rng.int(space.length), () => rng.int(o.severity), rng));
    });
    return { original: m[0]!, weights, chains } as unknown as Params;
  }
  /** original * x + sum_i weights[i] * chain_i(x), accumulated in float32 in that order. */
  override reference(img: FloatImage, p: Params, ctx: ValueContext): FloatImage {
    const q = p as unknown as { original: number; weights: number[]; chains: PolicyOp[][] };
    const mix = new Float32Array(img.data.length);
    const m0 = q.original;
    for (let i = 0; i < mix.length; i++) mix[i] = f(m0 * img.data[i]!);
    q.chains.forEach((chain, k) => {
      const aug = this.run(img, chain, ctx.bound).data;
      const w = q.weights[k]!;
      for (let i = 0; i < mix.length; i++) mix[i] = f(mix[i]! + f(w * aug[i]!));
    });
    return { ...img, data: mix };
  }
}

/** Mixes the sample with several random op chains of itself, as torchvision's AugMix. */
export function augMix(options: AugMixOptions = {}): Transform {
  return new AugMix(options);
}
