/**
 * The compiler: a transform chain becomes a plan that one native call runs for a whole batch.
 *
 * Geometric steps fold into one per-axis tap table per sample (see geometry.ts); colour steps
 * become a fixed op program whose parameters vary per sample (native/PLAN_ABI.md). Random
 * parameters are drawn here, in TypeScript, from each sample's counter-based stream; the
 * engines never draw.
 */
import { OptionError } from "../errors";
import type { Image } from "../data/types";
import { RandomStream, Purpose } from "../sampling/rng";
import { type AxisTaps, composeTaps, identityTaps, widenTaps } from "./geometry";
import {
  Compose,
  RandomApply,
  Transform,
  type Params,
  type PlanOp,
  type Shape,
  OpCode,
} from "./library";

/** A leaf transform with its drawn parameters and whether its randomApply coins said yes. */
interface Leaf {
  t: Transform;
  p: Params;
  enabled: boolean;
}

function leaves(t: Transform, p: Params, enabled: boolean, out: Leaf[]): Leaf[] {
  if (t instanceof Compose) {
    const steps = (p as { steps: Params[] } | null)?.steps;
    t.transforms.forEach((c, i) => leaves(c, steps ? steps[i]! : null, enabled, out));
  } else if (t instanceof RandomApply) {
    const q = p as { apply: boolean; inner: Params } | null;
    leaves(t.inner, q ? q.inner : null, enabled && (q ? q.apply : true), out);
  } else {
    out.push({ t, p, enabled });
  }
  return out;
}

/** The arrays one batch hands to an engine (field names as in native/PLAN_ABI.md). */
export interface EncodedBatch {
  n: number;
  inC: number;
  outC: number;
  outH: number;
  outW: number;
  K: number;
  /** One view per sample, or (with srcOffsets) one buffer that holds every sample. */
  sources: Uint8Array[] | Uint8Array;
  /** Byte offset of each sample inside `sources` when that is one buffer. */
  srcOffsets?: Float64Array;
  srcDims: Int32Array;
  tapIndex: Int32Array;
  tapWeight: Float32Array;
  fill: Float32Array;
  program: Int32Array;
  opOffsets: Int32Array;
  params: Float32Array;
}

/** Samples that share one shape and one buffer: sample i's bytes start at offsets[i]. */
export interface StoredPixels {
  pixels: Uint8Array;
  offsets: Float64Array;
  shape: Shape;
}

/** Where a sample's random parameters come from. */
export interface DrawAddress {
  seed: number;
  epoch: number;
  /** Position of the sample in the epoch's stream (mixed with the rank by the loader). */
  position: number;
}

interface Layout {
  /** Input shape of each leaf. */
  shapes: Shape[];
  /** Value bound in force before each leaf. */
  bounds: number[];
  /** Value context of each leaf (the bound in force), shared by every sample. */
  ctxs: { bound: number }[];
  program: number[];
  offsets: number[];
  /** Floats per sample's parameter block. */
  P: number;
  out: Shape;
}

const RESAMPLING = new Set(["Resize", "RandomResizedCrop"]);
/** Colour steps that commute exactly with integer geometry (fill 0 stays 0). */
function commutesWithIntegerGeometry(l: Leaf): boolean {
  if (l.t.name === "ToTensor" || l.t.name === "Grayscale" || l.t.name === "RandomGrayscale") return true;
  if (l.t.name === "Normalize") return (l.t.options as { mean: number[] }).mean.every((m) => m === 0);
  return false;
}

export class Plan {
  /** The chain this plan runs. */
  readonly transform: Transform;
  private readonly structure: Leaf[];

  constructor(transform: Transform | undefined) {
    this.transform = transform ?? new Compose([]);
    this.structure = leaves(this.transform, null, true, []);
    this.flat = this.transform instanceof Compose && this.transform.transforms.every((t) => t.kind !== "container");
  }

  /** True when the chain is one compose of plain (non-container) transforms. */
  private readonly flat: boolean;

  /** Output [C, H, W] for an input shape; throws OptionError when the chain cannot run on it. */
  outputShape(s: Shape): [number, number, number] {
    this.check(s);
    const o = this.transform.outShape(s);
    return [o.channels, o.height, o.width];
  }

  /**
   * Order rules the folding relies on. The engines run all geometry first, so a geometric step
   * may follow colour steps only where that reorder is exact: integer geometry (no resampling)
   * after toTensor, grayscale or a zero-mean normalize.
   */
  private check(s: Shape): void {
    let blocking: Leaf | undefined;
    let anyColor: Leaf | undefined;
    for (const l of this.structure) {
      if (l.t.kind === "color") {
        anyColor = anyColor ?? l;
        if (!commutesWithIntegerGeometry(l)) blocking = blocking ?? l;
      } else if (blocking || (anyColor && RESAMPLING.has(l.t.name))) {
        const before = (blocking ?? anyColor)!.t.name;
        throw new OptionError(
          "compose(transforms)",
          this.structure.map((x) => x.t.name),
          `geometric steps before ${before}: move ${l.t.name} ahead of it (its result would differ once folded)`,
        );
      }
    }
    this.transform.outShape(s);
  }

  private readonly layouts = new Map<string, Layout>();

  /** Shapes, value bounds and the op program along the chain, once per input shape. */
  private lastLayout: { h: number; w: number; c: number; layout: Layout } | undefined;

  private layout(s: Shape): Layout {
    const last = this.lastLayout;
    if (last && last.h === s.height && last.w === s.width && last.c === s.channels) return last.layout;
    const l = this.layoutOf(s);
    this.lastLayout = { h: s.height, w: s.width, c: s.channels, layout: l };
    return l;
  }

  private layoutOf(s: Shape): Layout {
    const key = `${s.height}x${s.width}x${s.channels}`;
    let l = this.layouts.get(key);
    if (!l) {
      this.check(s);
      const shapes: Shape[] = [];
      const bounds: number[] = [];
      const ctxs: { bound: number }[] = [];
      const program: number[] = [];
      const offsets: number[] = [];
      let bound = 255;
      let P = 0;
      for (const leaf of this.structure) {
        shapes.push(s);
        bounds.push(bound);
        ctxs.push({ bound });
        if (leaf.t.kind === "color") {
          const op = leaf.t.op!(s, leaf.t.draw(new RandomStream(0, 0, 0), s), { bound });
          program.push(op.code);
          offsets.push(P);
          P += 1 + op.params.length;
          bound = leaf.t.boundAfter(bound);
        }
        s = leaf.t.outShape(s);
      }
      l = { shapes, bounds, ctxs, program, offsets, P, out: s };
      if (this.layouts.size > 256) this.layouts.clear();
      this.layouts.set(key, l);
    }
    return l;
  }

  /** Draws every transform's parameters for one sample. */
  draw(image: Shape, at: DrawAddress): Params {
    return this.drawAt(image, at.seed, at.epoch, at.position);
  }

  /** One stream, moved to each sample's address in turn (draws are synchronous). */
  private readonly rng = new RandomStream(0, 0, 0, Purpose.transform);

  /** draw() without the address object, for the loader's per-sample loop. */
  drawAt(image: Shape, seed: number, epoch: number, position: number): Params {
    return this.transform.draw(this.rng.reset(seed, epoch, position, Purpose.transform), image);
  }

  /** Scratch of collect(): each leaf's parameters and whether its randomApply coins said yes. */
  private readonly leafParams: Params[] = [];
  private readonly leafEnabled: boolean[] = [];

  /** leaves() without allocating: fills leafParams/leafEnabled in structure order. */
  private collect(t: Transform, p: Params, enabled: boolean, k: number): number {
    if (t === this.transform && this.flat) {
      // The usual chain, a compose of plain transforms: its steps are the leaves.
      const steps = (p as { steps: Params[] } | null)?.steps;
      const n = this.structure.length;
      for (let i = 0; i < n; i++) {
        this.leafParams[i] = steps ? steps[i]! : null;
        this.leafEnabled[i] = true;
      }
      return n;
    }
    if (t instanceof Compose) {
      const steps = (p as { steps: Params[] } | null)?.steps;
      const ts = t.transforms;
      for (let i = 0; i < ts.length; i++) k = this.collect(ts[i]!, steps ? steps[i]! : null, enabled, k);
      return k;
    }
    if (t instanceof RandomApply) {
      const q = p as { apply: boolean; inner: Params } | null;
      return this.collect(t.inner, q ? q.inner : null, enabled && (q ? q.apply : true), k);
    }
    this.leafParams[k] = p;
    this.leafEnabled[k] = enabled;
    return k + 1;
  }

  /**
   * Encodes a batch: per-sample taps and op parameters. `params[i]` are the drawn parameters
   * of sample i (from draw()). The sources are one view per image.
   */
  encode(images: readonly Image[], params: readonly Params[]): EncodedBatch {
    if (images.length === 0) throw new OptionError("encode(images)", images, "at least one image");
    const job = this.build(images.length, (i) => images[i]!, params);
    return { ...job, sources: images.map((im) => im.data) };
  }

  /**
   * Encodes a batch whose samples share one shape and one buffer (an in-memory data set):
   * the job reads them from `pixels` at `offsets`, with no per-sample views.
   */
  encodeStored(stored: StoredPixels, params: readonly Params[]): EncodedBatch {
    const n = stored.offsets.length;
    if (n === 0) throw new OptionError("encodeStored(offsets)", stored.offsets, "at least one sample");
    const shape = stored.shape;
    const job = this.build(n, () => shape, params);
    return { ...job, sources: stored.pixels, srcOffsets: stored.offsets };
  }

  private build(n: number, shapeOf: (i: number) => Shape, params: readonly Params[]): Omit<EncodedBatch, "sources" | "srcOffsets"> {
    const first = shapeOf(0);
    const inC = first.channels;
    const layout0 = this.layout(first);
    const outShape = layout0.out;
    const P = layout0.P;
    const spare = this.spare.pop();
    const flat = spare && spare.params.length === n * P ? spare.params : new Float32Array(n * P);
    const srcDims = spare && spare.srcDims.length === 2 * n ? spare.srcDims : new Int32Array(2 * n);
    const tapsY: AxisTaps[] = new Array(n);
    const tapsX: AxisTaps[] = new Array(n);
    let K = 1;
    let fill: readonly number[] | undefined;
    const structure = this.structure;
    const leafParams = this.leafParams;
    const leafEnabled = this.leafEnabled;

    for (let i = 0; i < n; i++) {
      const img = shapeOf(i);
      if (img.channels !== inC) {
        throw new OptionError(`sample ${i} of the batch: channels`, img.channels, `${inC} like the first sample (decode every image to one channel count)`);
      }
      const layout = this.layout(img);
      if (layout !== layout0) {
        const o = layout.out;
        if (o.height !== outShape.height || o.width !== outShape.width || o.channels !== outShape.channels) {
          throw new OptionError(
            `sample ${i} of the batch: shape after transforms`,
            [o.channels, o.height, o.width],
            `[${outShape.channels}, ${outShape.height}, ${outShape.width}] like the first sample (add resize or centerCrop so every sample has one size)`,
          );
        }
      }
      let y: AxisTaps = identityTaps(img.height);
      let x: AxisTaps = identityTaps(img.width);
      let sawColor = false;
      let op = 0;
      const base = i * P;
      this.collect(this.transform, params[i]!, true, 0);
      for (let k = 0; k < structure.length; k++) {
        const leaf = structure[k]!.t;
        const p = leafParams[k]!;
        const s = layout.shapes[k]!;
        if (leaf.kind === "geometry") {
          if (!leafEnabled[k]) continue;
          const t = leaf.taps!(s, p);
          y = composeTaps(y, t.y);
          x = composeTaps(x, t.x);
          if (t.fill && (t.fill !== fill || sawColor)) fill = this.checkFill(leaf, t.fill, fill, sawColor, inC);
        } else {
          sawColor = true;
          const o = leaf.op!(s, p, layout.ctxs[k]!);
          let at = base + layout.offsets[op++]!;
          flat[at++] = leafEnabled[k] && !o.disabled ? 1 : 0;
          const q = o.params;
          for (let j = 0; j < q.length; j++) flat[at++] = q[j]!;
        }
      }
      tapsY[i] = y;
      tapsX[i] = x;
      if (y.K > K) K = y.K;
      if (x.K > K) K = x.K;
      srcDims[2 * i] = img.height;
      srcDims[2 * i + 1] = img.width;
    }

    const { height: outH, width: outW, channels: outC } = outShape;
    const per = (outH + outW) * K;
    const tapIndex = spare && spare.tapIndex.length === n * per ? spare.tapIndex : new Int32Array(n * per);
    const tapWeight = spare && spare.tapWeight.length === n * per ? spare.tapWeight : new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      const y = widenTaps(tapsY[i]!, K);
      const x = widenTaps(tapsX[i]!, K);
      tapIndex.set(y.index, i * per);
      tapIndex.set(x.index, i * per + outH * K);
      tapWeight.set(y.weight, i * per);
      tapWeight.set(x.weight, i * per + outH * K);
    }
    return {
      n,
      inC,
      outC,
      outH,
      outW,
      K,
      srcDims,
      tapIndex,
      tapWeight,
      fill: Float32Array.from(fill ?? new Array(inC).fill(0)),
      program: Int32Array.from(layout0.program),
      opOffsets: Int32Array.from(layout0.offsets),
      params: flat,
    };
  }

  /** Per-batch arrays of finished jobs (every element is rewritten by the next build). */
  private readonly spare: Pick<EncodedBatch, "params" | "srcDims" | "tapIndex" | "tapWeight">[] = [];

  /**
   * Gives a job's arrays back once its engine has finished with it and nothing else holds it:
   * the next batch of the same size reuses them instead of allocating (and zeroing) new ones.
   */
  recycle(job: EncodedBatch): void {
    if (this.spare.length < 4) this.spare.push({ params: job.params, srcDims: job.srcDims, tapIndex: job.tapIndex, tapWeight: job.tapWeight });
  }

  /** The chain's one fill value, after a step that brings `f`; throws where they disagree. */
  private checkFill(leaf: Transform, f: readonly number[], fill: readonly number[] | undefined, sawColor: boolean, inC: number): readonly number[] {
    if (sawColor) {
      if (f.some((z) => z !== 0)) {
        throw new OptionError(`${leaf.name}.fill`, f, "0 when the step comes after a colour step (or move it before toTensor/normalize)");
      }
      f = new Array(inC).fill(0);
    }
    if (fill && !sameValues(fill, f)) {
      throw new OptionError(`${leaf.name}.fill`, f, `the same fill as earlier steps (${JSON.stringify(fill)}): one chain has one fill value`);
    }
    return f;
  }
}

function sameValues(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export { OpCode };
