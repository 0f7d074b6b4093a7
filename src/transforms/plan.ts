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
  sources: Uint8Array[];
  srcDims: Int32Array;
  tapIndex: Int32Array;
  tapWeight: Float32Array;
  fill: Float32Array;
  program: Int32Array;
  opOffsets: Int32Array;
  params: Float32Array;
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
  program: number[];
  offsets: number[];
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
  }

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
      const program: number[] = [];
      const offsets: number[] = [];
      let bound = 255;
      let P = 0;
      for (const leaf of this.structure) {
        shapes.push(s);
        bounds.push(bound);
        if (leaf.t.kind === "color") {
          const op = leaf.t.op!(s, leaf.t.draw(new RandomStream(0, 0, 0), s), { bound });
          program.push(op.code);
          offsets.push(P);
          P += 1 + op.params.length;
          bound = leaf.t.boundAfter(bound);
        }
        s = leaf.t.outShape(s);
      }
      l = { shapes, bounds, program, offsets, out: s };
      if (this.layouts.size > 256) this.layouts.clear();
      this.layouts.set(key, l);
    }
    return l;
  }

  /** Draws every transform's parameters for one sample. */
  draw(image: Shape, at: DrawAddress): Params {
    const rng = new RandomStream(at.seed, at.epoch, at.position, Purpose.transform);
    return this.transform.draw(rng, image);
  }

  /**
   * Encodes a batch: per-sample taps and op parameters. `params[i]` are the drawn parameters
   * of sample i (from draw()).
   */
  encode(images: readonly Image[], params: readonly Params[]): EncodedBatch {
    const n = images.length;
    if (n === 0) throw new OptionError("encode(images)", images, "at least one image");
    const inC = images[0]!.channels;
    let outShape: Shape | undefined;
    const tapsY: AxisTaps[] = [];
    const tapsX: AxisTaps[] = [];
    let fill: readonly number[] | undefined;
    let program: number[] | undefined;
    let offsets: number[] | undefined;
    const paramBlocks: number[][] = [];

    const leafList: Leaf[] = [];
    for (let i = 0; i < n; i++) {
      const img = images[i]!;
      if (img.channels !== inC) {
        throw new OptionError(`sample ${i} of the batch: channels`, img.channels, `${inC} like the first sample (decode every image to one channel count)`);
      }
      const layout = this.layout(img);
      let y: AxisTaps = identityTaps(img.height);
      let x: AxisTaps = identityTaps(img.width);
      const block: number[] = [];
      let sawColor = false;
      leafList.length = 0;
      leaves(this.transform, params[i]!, true, leafList);
      for (let k = 0; k < leafList.length; k++) {
        const l = leafList[k]!;
        const s = layout.shapes[k]!;
        if (l.t.kind === "geometry") {
          if (!l.enabled) continue;
          const t = l.t.taps!(s, l.p);
          y = composeTaps(y, t.y);
          x = composeTaps(x, t.x);
          if (t.fill) {
            const f = sawColor ? new Array(inC).fill(0) : t.fill;
            if (sawColor && t.fill.some((z) => z !== 0)) {
              throw new OptionError(`${l.t.name}.fill`, t.fill, "0 when the step comes after a colour step (or move it before toTensor/normalize)");
            }
            if (fill && fill.some((z, c) => z !== f[c])) {
              throw new OptionError(`${l.t.name}.fill`, t.fill, `the same fill as earlier steps (${JSON.stringify(fill)}): one chain has one fill value`);
            }
            fill = f;
          }
        } else {
          sawColor = true;
          const op: PlanOp = l.t.op!(s, l.p, { bound: layout.bounds[k]! });
          block.push(l.enabled && !op.disabled ? 1 : 0);
          for (const q of op.params) block.push(q);
        }
      }
      const o = layout.out;
      if (!outShape) {
        outShape = o;
        program = layout.program;
        offsets = layout.offsets;
      } else if (o.height !== outShape.height || o.width !== outShape.width || o.channels !== outShape.channels) {
        throw new OptionError(
          `sample ${i} of the batch: shape after transforms`,
          [o.channels, o.height, o.width],
          `[${outShape.channels}, ${outShape.height}, ${outShape.width}] like the first sample (add resize or centerCrop so every sample has one size)`,
        );
      }
      tapsY.push(y);
      tapsX.push(x);
      paramBlocks.push(block);
    }

    const K = Math.max(...tapsY.map((t) => t.K), ...tapsX.map((t) => t.K));
    const { height: outH, width: outW, channels: outC } = outShape!;
    const per = (outH + outW) * K;
    const tapIndex = new Int32Array(n * per);
    const tapWeight = new Float32Array(n * per);
    const srcDims = new Int32Array(2 * n);
    for (let i = 0; i < n; i++) {
      const y = widenTaps(tapsY[i]!, K);
      const x = widenTaps(tapsX[i]!, K);
      tapIndex.set(y.index, i * per);
      tapIndex.set(x.index, i * per + outH * K);
      tapWeight.set(y.weight, i * per);
      tapWeight.set(x.weight, i * per + outH * K);
      srcDims[2 * i] = images[i]!.height;
      srcDims[2 * i + 1] = images[i]!.width;
    }
    const P = paramBlocks[0]!.length;
    const flat = new Float32Array(n * P);
    paramBlocks.forEach((b, i) => flat.set(b, i * P));
    return {
      n,
      inC,
      outC,
      outH,
      outW,
      K,
      sources: images.map((im) => im.data),
      srcDims,
      tapIndex,
      tapWeight,
      fill: Float32Array.from(fill ?? new Array(inC).fill(0)),
      program: Int32Array.from(program!),
      opOffsets: Int32Array.from(offsets!),
      params: flat,
    };
  }
}

export { OpCode };
