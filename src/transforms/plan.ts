/**
 * The compiler: a transform chain becomes a plan that one engine call runs for a whole batch.
 *
 * Geometric steps fold into one per-axis tap table per sample (see geometry.ts); colour steps
 * become a fixed op program whose parameters vary per sample (native/PLAN_ABI.md). Random
 * parameters are drawn here, in TypeScript, from each sample's counter-based stream; the
 * engines never draw. The compiler knows transforms only by the facts each declares (kind,
 * `resamples`, `commutesWithIntegerGeometry`); src/engines/job.ts packs a batch into the job.
 */
import { OptionError } from "../errors";
import { RandomStream, Purpose } from "../sampling/rng";
import { type AxisTaps, composeTaps, identityTaps } from "./geometry";
import { Compose, RandomApply, Transform, type Params, type Shape, OpCode } from "./library";

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

/** Where a sample's random parameters come from. */
export interface DrawAddress {
  seed: number;
  epoch: number;
  /** Position of the sample in the epoch's stream (mixed with the rank by the loader). */
  position: number;
}

/** The layout of the plan for one input shape (see Plan.layout). */
export interface Layout {
  /** Input shape of each leaf. */
  readonly shapes: readonly Shape[];
  /** Value context of each leaf (the bound in force), shared by every sample. */
  readonly ctxs: readonly { bound: number }[];
  /** The op codes, in order, and each op's offset in a sample's parameter block. */
  readonly program: Int32Array;
  readonly opOffsets: Int32Array;
  /** Floats per sample's parameter block. */
  readonly P: number;
  readonly out: Shape;
}

/** Per-sample tap tables, before they are widened to the batch's taps per coordinate. */
export interface SampleTaps {
  y: AxisTaps;
  x: AxisTaps;
}

/** The one fill value of a batch, as the samples bring it (see Plan.encodeSample). */
export interface FillState {
  fill: readonly number[] | undefined;
}

export class Plan {
  /** The chain this plan runs. */
  readonly transform: Transform;
  private readonly structure: Leaf[];

  constructor(transform: Transform | undefined) {
    this.transform = transform ?? new Compose([]);
    this.structure = leaves(this.transform, null, true, []);
    this.flat = this.transform instanceof Compose && this.transform.transforms.every((t) => t.kind !== "container");
    this.unfused = this.structure.filter((l) => l.t.kind === "warp").map((l) => l.t.name);
  }

  /**
   * Steps the fused plan cannot express yet (warps: rotation, affine, perspective). A chain with
   * any runs step by step on the reference path, whatever engine was asked for; empty otherwise.
   */
  readonly unfused: readonly string[];

  /** True when one engine call can run the whole chain (see `unfused`). */
  get fused(): boolean {
    return this.unfused.length === 0;
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
    if (!this.fused) {
      // Step by step, any order runs as written.
      this.transform.outShape(s);
      return;
    }
    let blocking: Leaf | undefined;
    let anyColor: Leaf | undefined;
    for (const l of this.structure) {
      if (l.t.kind === "color") {
        anyColor = anyColor ?? l;
        if (!l.t.commutesWithIntegerGeometry()) blocking = blocking ?? l;
      } else if (blocking || (anyColor && l.t.resamples)) {
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

  /** The layout for input shape `s` (the last one asked for is remembered); throws OptionError. */
  layout(s: Shape): Layout {
    const last = this.lastLayout;
    if (last && last.h === s.height && last.w === s.width && last.c === s.channels) return last.layout;
    const l = this.layoutOf(s);
    this.lastLayout = { h: s.height, w: s.width, c: s.channels, layout: l };
    return l;
  }

  private layoutOf(s: Shape): Layout {
    if (!this.fused) throw new OptionError("plan", this.unfused, "a chain without warp steps: this one runs on the reference path (Plan.fused is false)");
    const key = `${s.height}x${s.width}x${s.channels}`;
    let l = this.layouts.get(key);
    if (!l) {
      this.check(s);
      const shapes: Shape[] = [];
      const ctxs: { bound: number }[] = [];
      const program: number[] = [];
      const offsets: number[] = [];
      let bound = 255;
      let P = 0;
      for (const leaf of this.structure) {
        shapes.push(s);
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
      l = { shapes, ctxs, program: Int32Array.from(program), opOffsets: Int32Array.from(offsets), P, out: s };
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
   * One sample's part of a job: writes its parameter block (the layout's P floats) into
   * `block` at `base` and returns its row and column taps. `fill` carries the batch's one fill
   * value from sample to sample; a step whose fill disagrees throws OptionError.
   */
  encodeSample(img: Shape, layout: Layout, p: Params, block: Float32Array, base: number, fill: FillState): SampleTaps {
    const structure = this.structure;
    const leafParams = this.leafParams;
    const leafEnabled = this.leafEnabled;
    let y: AxisTaps = identityTaps(img.height);
    let x: AxisTaps = identityTaps(img.width);
    let sawColor = false;
    let op = 0;
    this.collect(this.transform, p, true, 0);
    for (let k = 0; k < structure.length; k++) {
      const leaf = structure[k]!.t;
      const q = leafParams[k]!;
      const s = layout.shapes[k]!;
      if (leaf.kind === "geometry") {
        if (!leafEnabled[k]) continue;
        const t = leaf.taps!(s, q);
        y = composeTaps(y, t.y);
        x = composeTaps(x, t.x);
        if (t.fill && (t.fill !== fill.fill || sawColor)) fill.fill = this.checkFill(leaf, t.fill, fill.fill, sawColor, img.channels);
      } else {
        sawColor = true;
        const o = leaf.op!(s, q, layout.ctxs[k]!);
        let at = base + layout.opOffsets[op++]!;
        block[at++] = leafEnabled[k] && !o.disabled ? 1 : 0;
        const v = o.params;
        for (let j = 0; j < v.length; j++) block[at++] = v[j]!;
      }
    }
    return { y, x };
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
