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
import { Compose, RandomApply, RandomChoice, Transform, fillFor, fixedShape, type Params, type Shape, OpCode } from "./library";
import { compose as composeMaps, WARP_MODES, type Mat3, type WarpInterpolation } from "./warp";

/** Floats of a warp block before its displacement grid (native/PLAN_ABI.md, "Warp pass"). */
export const WARP_BLOCK = 42;
/** Earlier warps' input images a warp block can check (its F). */
export const WARP_FRAMES = 2;
const IDENTITY: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Where a plan's warp pass sits (see Layout.warp). */
export interface WarpLayout {
  /** The job's `warp`: 1 nearest, 2 bilinear, 3 bicubic (WARP_MODES). */
  readonly mode: 1 | 2 | 3;
  /** Offset of the warp block in a sample's parameter block. */
  readonly offset: number;
  /** Leaves [0, end) fold into the warp's one matrix; later geometry is taps on the warped image. */
  readonly end: number;
  /** The warped image (what the taps read): the shape after leaf end - 1. */
  readonly shape: Shape;
  /**
   * True when the steps before the first warp run as a separable pass of their own (some of
   * them do not fold into a matrix: antialiased or bicubic resizing, mirror padding); the warp
   * then reads that pass's image, of shape preShape.
   */
  readonly pre: boolean;
  readonly preShape: Shape;
  /**
   * Ops of the program that run before the warp, on the image it reads (the job's warpOps):
   * the colour steps written before it, when one of them is not a pointwise affine step
   * (Plan.warpProgram); 0 otherwise.
   */
  readonly ops: number;
}

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
  } else if (t instanceof RandomChoice) {
    // Every option is a step; the chosen one is enabled.
    const q = p as { choice: number; steps: Params[] } | null;
    t.transforms.forEach((c, i) => leaves(c, q ? q.steps[i]! : null, enabled && (q ? q.choice === i : true), out));
  } else {
    const planned = t.planSteps?.(p);
    if (planned) for (const st of planned) leaves(st.t, st.p, enabled && st.enabled, out);
    else out.push({ t, p, enabled });
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
  /** The warp pass, when the chain has a warp. */
  readonly warp?: WarpLayout;
}

/** Per-sample tap tables, before they are widened to the batch's taps per coordinate. */
export interface SampleTaps {
  y: AxisTaps;
  x: AxisTaps;
  /** With a warp whose earlier steps do not fold: the taps of the pass before it (see WarpLayout.pre). */
  pre?: { y: AxisTaps; x: AxisTaps };
  /** With a warp: this sample's warped image (the job's warpDims; per sample where a size is drawn). */
  warped?: { height: number; width: number };
}

/** The one fill value of a batch, as the samples bring it (see Plan.encodeSample). */
export interface FillState {
  fill: readonly number[] | undefined;
}

/** resize to a fixed [height, width] (an int size keeps the aspect ratio of its input, so not that). */
/** The coarsest DCT scale (1, 2, 4 or 8) at which a w x h source still has at least ow x oh pixels. */
function coarsestScale(w: number, h: number, ow: number, oh: number): 1 | 2 | 4 | 8 {
  for (const k of [8, 4, 2] as const) if (Math.floor(w / k) >= ow && Math.floor(h / k) >= oh) return k;
  return 1;
}

export class Plan {
  /** The chain this plan runs. */
  readonly transform: Transform;
  private readonly structure: Leaf[];

  constructor(transform: Transform | undefined) {
    this.transform = transform ?? new Compose([]);
    this.structure = leaves(this.transform, null, true, []);
    this.flat = this.transform instanceof Compose && this.transform.transforms.every((t) => t.kind !== "container");
    this.unfused = unfusedSteps(this.structure);
    this.warpAt = this.structure.findIndex((l) => l.t.kind === "warp");
    this.warpLast = this.structure.map((l) => l.t.kind).lastIndexOf("warp");
    this.gridReserve = this.structure.reduce((g, e) => Math.max(g, e.t.displacementGrid()), 0);
    this.warpProgram = this.warpAt >= 0 && this.structure.slice(0, this.warpAt).some((l) => l.t.kind === "color" && !l.t.pointwiseAffine);
    const before = this.structure.slice(0, Math.max(0, this.warpAt));
    const firstGeometry = before.findIndex((l) => l.t.kind === "geometry");
    this.warpPre =
      this.warpAt >= 0 &&
      (before.some((l) => l.t.kind === "geometry" && !l.t.foldsBeforeWarp()) ||
        // Colour steps after geometry, run before the warp: they must see the geometry's image.
        (this.warpProgram && firstGeometry >= 0 && firstGeometry < before.findIndex((l) => l.t.kind === "color")));
    this.refills = this.structure.map((l, k) => l.t.kind === "geometry" && l.t.borderReads() === "fill" && this.structure.slice(0, k).some((e) => e.t.kind === "color"));
    this.varies = this.structure.some((l) => l.t.sizesVary());
    this.endsVarying = endsVarying(this.structure);
  }

  /**
   * The part of the source that a sample's output reads, when the plan can say so cheaply: a
   * chain whose first step is randomResizedCrop reads its crop box and nothing else (constant
   * padding never applies: the box lies inside the image). Undefined for every other chain
   * (the whole image is read). The loader decodes only this window of a JPEG (imageFolder's
   * decode "fast") and hands the plan the window's pixels with reframe()d parameters.
   */
  sourceWindow(s: Shape, p: Params): { left: number; top: number; width: number; height: number; scale: 1 | 2 | 4 | 8 } | undefined {
    const first = this.firstStep(p);
    if (first && first.t.name === "Resize") {
      // A resize reads the whole image: only the scale can drop, to the coarsest that still
      // leaves at least the output's pixels (for an int size, the output the full image gets:
      // the decoded image's aspect ratio may move its longer edge by a pixel).
      const o = first.t.outShape(s);
      return { left: 0, top: 0, width: s.width, height: s.height, scale: coarsestScale(s.width, s.height, o.width, o.height) };
    }
    if (!first || first.t.name !== "RandomResizedCrop") return undefined;
    const { top, left, height, width } = first.p as { top: number; left: number; height: number; width: number };
    if (!(top >= 0 && left >= 0 && height >= 1 && width >= 1 && top + height <= s.height && left + width <= s.width)) return undefined;
    // The coarsest DCT scale at which the box still has at least the output's resolution.
    const [oh, ow] = (first.t as unknown as { options: { size: [number, number] } }).options.size;
    return { left, top, width, height, scale: coarsestScale(width, height, ow, oh) };
  }

  /**
   * The parameters of `p` (drawn on the full image) for a source that is a window of the full
   * image decoded at 1/scale (SourceFrame: decoded (r, c) covers full column left + c * scale,
   * row top + r * scale; `size` is the decoded window's). At scale 1 the first step's crop box
   * moves by (-left, -top) and the output is the same pixels. At 1/2, 1/4 or 1/8 the box's edges
   * are rounded to the nearest decoded pixel edge (each moves by at most scale/2 full pixels):
   * the output is close to, not equal to, a full decode's. Only for a window from sourceWindow().
   */
  reframe(p: Params, frame: { left: number; top: number; scale?: number }, size?: { width: number; height: number }): Params {
    const first = this.firstStep(p);
    if (first && first.t.name === "Resize") return p; // no parameters: the resize maps the decoded image
    if (!first || first.t.name !== "RandomResizedCrop") throw new OptionError("plan.reframe(params)", p, "parameters of a chain whose first step is randomResizedCrop (see sourceWindow)");
    const box = first.p as { top: number; left: number; height: number; width: number };
    const k = frame.scale ?? 1;
    let moved: Params;
    if (k === 1) moved = { ...box, top: box.top - frame.top, left: box.left - frame.left } as Params;
    else {
      if (!size) throw new OptionError("plan.reframe(size)", size, "the decoded window's { width, height } (the frame's scale is not 1)");
      const edges = (a: number, n: number, origin: number, limit: number): [number, number] => {
        const lo = Math.min(limit - 1, Math.max(0, Math.round((a - origin) / k)));
        const hi = Math.min(limit, Math.max(lo + 1, Math.round((a + n - origin) / k)));
        return [lo, hi - lo];
      };
      const [left, width] = edges(box.left, box.width, frame.left, size.width);
      const [top, height] = edges(box.top, box.height, frame.top, size.height);
      moved = { ...box, top, left, height, width } as Params;
    }
    if (this.transform instanceof Compose) {
      const steps = (p as { steps: Params[] }).steps.slice();
      steps[0] = moved;
      return { ...(p as object), steps } as Params;
    }
    return moved;
  }

  /** Whether sourceWindow() can give windows for this chain (its first step is randomResizedCrop or resize). */
  get readsWindow(): boolean {
    const t = this.transform instanceof Compose ? this.transform.transforms[0] : this.transform;
    return t !== undefined && (t.name === "RandomResizedCrop" || t.name === "Resize");
  }

  /** The first step of the chain and its parameters, unless it sits inside a container. */
  private firstStep(p: Params): { t: Transform; p: Params } | undefined {
    if (this.transform instanceof Compose) {
      const t = this.transform.transforms[0];
      const steps = (p as { steps?: Params[] }).steps;
      if (!t || !steps || t.kind === "container") return undefined;
      return { t, p: steps[0]! };
    }
    return this.transform.kind === "container" ? undefined : { t: this.transform, p };
  }

  /** Some step draws its output size (Shape.varies): each sample's shapes are its own (sampleShapes). */
  private readonly varies: boolean;
  /** The chain's last size is still drawn per sample: it cannot make a batch (check refuses it). */
  private readonly endsVarying: boolean;

  /**
   * Steps the fused plan cannot run as written (see unfusedSteps): a chain with any runs step by
   * step on the reference path, whatever engine was asked for; empty otherwise.
   */
  readonly unfused: readonly string[];

  /**
   * Per leaf: a constant-fill geometric step after a colour step. The engines run geometry
   * first, so its fill pixels would go through the colour steps before it; the program gets
   * ERASE ops at its place that write the fill over them in the units of that point (the fill
   * region of pads, crops and flips is at most two runs of rows and two of columns).
   */
  private readonly refills: readonly boolean[];

  /** The leaf of the chain's warp (-1: none); the steps around it fold into its matrix. */
  private readonly warpAt: number;
  /** The leaf of its last warp (the same when it has one). */
  private readonly warpLast: number;
  /** The steps before the first warp are a separable pass of their own (WarpLayout.pre). */
  private readonly warpPre: boolean;
  /**
   * The colour steps before the warp run before it, on the image it reads (the job's warpOps),
   * because one of them is not pointwise affine (a policy's Equalize, a colorJitter): they keep
   * their place in the chain. Otherwise (toTensor, normalize) they run after the warp with its
   * fill taken back through them (warpFill), which lets the warp write the output directly.
   */
  private readonly warpProgram: boolean;
  /** Control points per side the warp block reserves room for (the chain's elastic warp's). */
  private readonly gridReserve: number;

  /** True when the plan has a warp pass (its engines resample through one matrix per sample). */
  get warps(): boolean {
    return this.warpAt >= 0;
  }

  /**
   * For a chain the fused plan cannot run whole, written as one compose: the longest run of its
   * first steps that it can (`head`, a fused plan of those `steps`). The engines run the head
   * fused and the remaining steps one by one on the reference path, on the head's output, so a
   * user's own step or a policy costs only itself. Undefined where no first step fuses.
   */
  get split(): { head: Plan; steps: number } | undefined {
    if (this.splitCache === undefined) {
      this.splitCache = null;
      if (!this.fused && this.transform instanceof Compose) {
        const ts = this.transform.transforms;
        for (let k = ts.length - 1; k >= 1; k--) {
          const head = new Plan(new Compose(ts.slice(0, k)));
          if (head.fused && !head.endsVarying) {
            this.splitCache = { head, steps: k };
            break;
          }
        }
      }
    }
    return this.splitCache ?? undefined;
  }
  private splitCache: { head: Plan; steps: number } | null | undefined;

  /**
   * Where each top-level step runs and why: in the fused plan (one engine call for the batch),
   * or step by step on the reference path (after the fused head, when there is one).
   */
  placement(): { step: string; fused: boolean; why?: string }[] {
    const ts = this.transform instanceof Compose ? this.transform.transforms : [this.transform];
    if (this.fused) return ts.map((t) => ({ step: t.name, fused: true }));
    const k = this.split?.steps ?? 0;
    const blocked = new Set(this.unfused);
    return ts.map((t, i) => {
      if (i < k) return { step: t.name, fused: true };
      const names = leaves(t, null, true, []).map((l) => l.t.name);
      const own = names.some((n) => blocked.has(n));
      return { step: t.name, fused: false, why: own ? whyUnfused(t) : `after ${ts[k]!.name}, which runs step by step (the fused plan runs only a chain's first steps)` };
    });
  }

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

  /** Throws OptionError when the chain cannot run on input shape `s`. */
  private check(s: Shape): void {
    fixedShape(this.transform, this.transform.outShape(s));
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
    if (!this.fused) throw new OptionError("plan", this.unfused, "a chain the fused plan runs: this one runs step by step on the reference path (Plan.fused is false)");
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
      let warpOffset = -1;
      let warpOps = 0;
      for (let k = 0; k < this.structure.length; k++) {
        const leaf = this.structure[k]!;
        shapes.push(s);
        ctxs.push({ bound });
        if (k === this.warpAt) {
          // The block, and room for the chain's displacement grid (an elastic warp's, if any).
          warpOps = program.length;
          warpOffset = P;
          P += WARP_BLOCK + 2 * this.gridReserve * this.gridReserve;
        }
        if (this.refills[k]) {
          // Four ERASE ops (two runs of rows, two of columns) after the step's output shape.
          const after = leaf.t.outShape(s);
          for (let r = 0; r < 4; r++) {
            program.push(OpCode.Erase);
            offsets.push(P);
            P += 1 + 4 + after.channels;
          }
        }
        if (leaf.t.kind === "color") {
          const op = leaf.t.op!(s, leaf.t.draw(new RandomStream(0, 0, 0), s), { bound });
          program.push(op.code);
          offsets.push(P);
          P += 1 + op.params.length;
          bound = leaf.t.boundAfter(bound);
        }
        s = leaf.t.outShape(s);
      }
      let warp: WarpLayout | undefined;
      if (this.warpAt >= 0) {
        // Steps that read fill only at some shapes (a centre crop larger than its input) were
        // let through by warpUnfused: at this shape they must agree with the warp's fill.
        const wt = this.structure[this.warpAt]!.t;
        // (With the colour steps run before the warp, its fill is in their units: no conflict.)
        const colourBefore = !this.warpProgram && this.structure.slice(0, this.warpAt).some((e) => e.t.kind === "color");
        this.structure.forEach((e, k) => {
          const t = e.t;
          // With a size drawn per sample, a step may read fill at some samples' sizes: assume it does.
          if (t.kind !== "geometry" || t.borderReads() !== "fill" || t.readsFillAt(WIDE) || (!shapes[k]!.varies && !t.readsFillAt(shapes[k]!))) return;
          if (k > this.warpAt && k < this.warpLast) {
            throw new OptionError(where(t, shapes[k]!), t.options, "a crop within the image between two warps (the plan folds them into one resampling, which has no padding between them)");
          }
          if (colourBefore || !sameFill(t.fillOption()!, wt.fillOption()!)) {
            throw new OptionError(where(t, shapes[k]!), t.fillOption(), `no padding in a chain whose warp fills with ${JSON.stringify(wt.fillOption())}${colourBefore ? " after colour steps" : ""} (one fill per plan): crop within the image, or pad with the warp's fill`);
          }
        });
        // Geometry right after the warp that stays inside the warped image folds in too.
        let end = this.warpLast + 1;
        // A displacement is added at the output of the folded steps: nothing folds after it.
        const displaces = this.structure[this.warpLast]!.t.displacementGrid() > 0;
        // With a size drawn per sample, a step folds only where it folds at every size.
        const folds = (t: Transform, at: Shape) => (at.varies ? t.foldsAfterWarp(WIDE) && t.foldsAfterWarp(TINY) : t.foldsAfterWarp(at));
        while (!displaces && end < this.structure.length && this.structure[end]!.t.kind === "geometry" && folds(this.structure[end]!.t, shapes[end]!)) end++;
        const interpolation = (this.structure[this.warpAt]!.t as unknown as { interpolation: WarpInterpolation }).interpolation;
        warp = { mode: WARP_MODES[interpolation], offset: warpOffset, end, shape: end < shapes.length ? shapes[end]! : s, pre: this.warpPre, preShape: shapes[this.warpAt]!, ops: this.warpProgram ? warpOps : 0 };
      }
      l = { shapes, ctxs, program: Int32Array.from(program), opOffsets: Int32Array.from(offsets), P, out: s, ...(warp ? { warp } : {}) };
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
    if (t instanceof RandomChoice) {
      const q = p as { choice: number; steps: Params[] } | null;
      const ts = t.transforms;
      for (let i = 0; i < ts.length; i++) k = this.collect(ts[i]!, q ? q.steps[i]! : null, enabled && (q ? q.choice === i : true), k);
      return k;
    }
    const planned = t.planSteps?.(p);
    if (planned) {
      for (const st of planned) k = this.collect(st.t, st.p, enabled && st.enabled, k);
      return k;
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
    let op = 0;
    const refills = this.refills;
    const marks = this.refillMarks;
    marks.length = 0;
    this.collect(this.transform, p, true, 0);
    // Each leaf's input shape for this sample (the layout's, unless a step draws its size).
    const shapes = this.varies ? this.sampleShapes(img) : layout.shapes;
    const shapeAt = (k: number): Shape => (k < structure.length ? shapes[k]! : this.varies ? shapes[k]! : layout.out);
    let warped: Shape | undefined;
    let from = 0;
    let pre: { y: AxisTaps; x: AxisTaps } | undefined;
    const w = layout.warp;
    if (w) {
      // Leaves before w.end fold into one matrix (output point -> source point). The steps
      // before the warp give two windows in source coordinates: the extent of the image the
      // warp reads (domain) and where its pixels come from the source (real: the rest of the
      // domain is padding, read as the fill).
      let m = IDENTITY;
      warped = shapeAt(w.end);
      const preShape = shapeAt(this.warpAt);
      const readH = w.pre ? preShape.height : img.height;
      const readW = w.pre ? preShape.width : img.width;
      let domain = [0, 0, readW, readH];
      let real = domain;
      let preY: AxisTaps = identityTaps(img.height);
      let preX: AxisTaps = identityTaps(img.width);
      // Each later warp's input image, as a map from the output point to it, checked as a domain.
      const frames: { m: Mat3; height: number; width: number }[] = [];
      let applied = false;
      let grid: ArrayLike<number> | null = null;
      for (let k = 0; k < w.end; k++) {
        const leaf = structure[k]!.t;
        const q = leafParams[k]!;
        const s = shapes[k]!;
        if (leaf.kind === "color") {
          this.writeOp(leaf, s, q, layout.ctxs[k]!, leafEnabled[k]!, block, base + layout.opOffsets[op++]!);
          continue;
        }
        if (refills[k]) {
          // A centre crop within the image after toTensor / normalize: it reads no fill, so its
          // four ERASE ops stay off.
          for (let r = 0; r < 4; r++) {
            let at = base + layout.opOffsets[op++]!;
            block[at++] = 0;
            for (let j = 0; j < 4 + shapeAt(k + 1).channels; j++) block[at++] = 0;
          }
        }
        if (!leafEnabled[k]) continue;
        if (w.pre && k < this.warpAt) {
          // The pass before the warp: taps, as in a chain without a warp.
          const t = leaf.taps!(s, q);
          preY = composeTaps(preY, t.y);
          preX = composeTaps(preX, t.x);
          if (t.fill && t.fill !== fill.fill) fill.fill = this.checkFill(leaf, t.fill, fill.fill);
          continue;
        }
        const a = leaf.foldMatrix!(s, q);
        const d = leaf.displacement ? leaf.displacement(s, q) : null;
        // A warp after one that this sample applies reads that warp's output: a frame. Until the
        // first applied warp (a randomApply, randomChoice or policy slot may leave the first off),
        // the folded steps shape the image it reads: the domain.
        const applies = leaf.kind === "warp" && !!(a || d);
        if (applies && applied) frames.push({ m: IDENTITY, height: s.height, width: s.width });
        if (a) {
          m = composeMaps(m, a);
          for (const fr of frames) fr.m = composeMaps(fr.m, a);
        }
        if (d) grid = d; // the last folded step (see layoutOf)
        if (applies) applied = true;
        else if (!applied) {
          domain = extent(m, shapeAt(k + 1));
          real = intersect(real, domain);
        }
      }
      fill.fill = this.checkFill(structure[this.warpAt]!.t, this.warpFill(layout, block, base), fill.fill);
      const at = base + w.offset;
      const full = [0, 0, readW, readH];
      // Inside the source, as the engines check (an empty window, x1 <= x0, holds nothing).
      real = real.map((v, i) => Math.min(Math.max(v, 0), full[i % 2 === 0 ? 2 : 3]!));
      const identity = !grid && frames.length === 0 && sameValues(domain, full) && sameValues(real, full) && sameValues(m, IDENTITY) && warped.height === readH && warped.width === readW;
      block[at] = identity ? 0 : 1; // 0: the warped image is the image the warp reads (the same values)
      for (let i = 0; i < 9; i++) block[at + 1 + i] = m[i]!;
      for (let i = 0; i < 4; i++) block[at + 10 + i] = domain[i]!;
      for (let i = 0; i < 4; i++) block[at + 14 + i] = real[i]!;
      block[at + 18] = frames.length;
      for (let f = 0; f < WARP_FRAMES; f++) {
        const fr = frames[f];
        for (let i = 0; i < 9; i++) block[at + 19 + 11 * f + i] = fr ? fr.m[i]! : 0;
        block[at + 19 + 11 * f + 9] = fr ? fr.height : 0;
        block[at + 19 + 11 * f + 10] = fr ? fr.width : 0;
      }
      const G = grid ? Math.round(Math.sqrt(grid.length / 2)) : 0;
      block[at + WARP_BLOCK - 1] = G;
      for (let i = 0; i < 2 * G * G; i++) block[at + WARP_BLOCK + i] = grid![i]!;
      block.fill(0, at + WARP_BLOCK + 2 * G * G, at + WARP_BLOCK + 2 * this.gridReserve * this.gridReserve); // every element is written
      y = identityTaps(warped.height);
      x = identityTaps(warped.width);
      from = w.end;
      if (w.pre) pre = { y: preY, x: preX };
    }
    for (let k = from; k < structure.length; k++) {
      const leaf = structure[k]!.t;
      const q = leafParams[k]!;
      const s = shapes[k]!;
      if (refills[k]) {
        // Where this step's fill lands, followed through the later steps (see writeRefills).
        const t = leafEnabled[k] ? leaf.taps!(s, q) : undefined;
        for (const m of marks) {
          if (t) {
            m.y = composeTaps(m.y, t.y);
            m.x = composeTaps(m.x, t.x);
          }
        }
        const value = t?.fill ?? [];
        const after = shapeAt(k + 1);
        marks.push({ y: t ? fillMarks(t.y) : identityTaps(after.height), x: t ? fillMarks(t.x) : identityTaps(after.width), value, at: base + layout.opOffsets[op]!, enabled: !!t && !!t.fill });
        op += 4;
        if (t) {
          y = composeTaps(y, t.y);
          x = composeTaps(x, t.x);
        }
        continue;
      }
      if (leaf.kind === "geometry") {
        if (!leafEnabled[k]) continue;
        const t = leaf.taps!(s, q);
        y = composeTaps(y, t.y);
        x = composeTaps(x, t.x);
        for (const m of marks) {
          m.y = composeTaps(m.y, t.y);
          m.x = composeTaps(m.x, t.x);
        }
        if (t.fill && t.fill !== fill.fill) fill.fill = this.checkFill(leaf, t.fill, fill.fill);
      } else {
        this.writeOp(leaf, s, q, layout.ctxs[k]!, leafEnabled[k]!, block, base + layout.opOffsets[op++]!);
      }
    }
    for (const m of marks) writeRefills(m, block);
    const out: SampleTaps = pre ? { y, x, pre } : { y, x };
    if (warped) out.warped = { height: warped.height, width: warped.width };
    return out;
  }

  /** Scratch of sampleShapes. */
  private readonly shapeScratch: Shape[] = [];

  /**
   * Each leaf's input shape for the sample collect() filled in (its parameters), and the output
   * last: sampleShape through the leaves (a leaf that randomApply skips keeps the shape).
   */
  private sampleShapes(img: Shape): readonly Shape[] {
    const out = this.shapeScratch;
    out.length = 0;
    let s: Shape = { height: img.height, width: img.width, channels: img.channels };
    for (let k = 0; k < this.structure.length; k++) {
      out.push(s);
      if (this.leafEnabled[k]) s = this.structure[k]!.t.sampleShape(s, this.leafParams[k]!);
    }
    out.push(s);
    return out;
  }

  /** A colour leaf's op block: `enabled`, then its parameters. */
  private writeOp(leaf: Transform, s: Shape, q: Params, ctx: { bound: number }, enabled: boolean, block: Float32Array, at: number): void {
    // Off for this sample (a randomApply's coin, an option not chosen, a policy op not drawn):
    // the engines read only the flag, and the block is all zeros where nothing is written
    // (encodeJob clears a reused one), which keeps the job's bytes the same from run to run.
    if (!enabled) return;
    const o = leaf.op!(s, q, ctx);
    block[at++] = enabled && !o.disabled ? 1 : 0;
    const v = o.params;
    for (let j = 0; j < v.length; j++) block[at++] = v[j]!;
  }

  /**
   * The warp's fill in source units: its option at the warp, taken back through the colour
   * steps before it (AFFINE ops only: x * div + sub, in double, then float32 in the job), so
   * that those ops, run after the warp pass, give back the fill within a rounding.
   */
  private warpFill(layout: Layout, block: Float32Array, base: number): readonly number[] {
    const k0 = this.warpAt;
    let cached = this.warpFills.get(layout);
    if (!cached) {
      // The warp's fill option at this layout's channel count, and the colour ops before the
      // warp: the same for every sample of the layout, so built once (not per sample).
      const leaf = this.structure[k0]!.t;
      const C0 = layout.shapes[k0]!.channels;
      const value = fillFor(`${leaf.name[0]!.toLowerCase()}${leaf.name.slice(1)}.fill`, leaf.fillOption() as number | number[], C0).slice();
      let op = 0;
      const ops: number[] = [];
      for (let k = 0; k < k0; k++) if (this.structure[k]!.t.kind === "color") ops.push(op++);
      cached = { value, ops };
      this.warpFills.set(layout, cached);
    }
    const ops = cached.ops;
    // Shared: a fill array is never mutated. With the colour ops run before the warp
    // (warpProgram), its fill is used as written.
    if (ops.length === 0 || this.warpProgram) return cached.value;
    const C = layout.shapes[k0]!.channels;
    const v = cached.value.slice();
    for (let j = ops.length - 1; j >= 0; j--) {
      const at = base + layout.opOffsets[ops[j]!]!;
      if (block[at] === 0) continue;
      for (let c = 0; c < C; c++) v[c] = v[c]! * block[at + 1 + C + c]! + block[at + 1 + c]!;
    }
    return v;
  }

  /** Per layout: the warp's fill before any colour op, and the colour ops before the warp (warpFill). */
  private readonly warpFills = new WeakMap<Layout, { value: readonly number[]; ops: readonly number[] }>();

  /** Scratch of encodeSample: the refill steps of the sample being encoded. */
  private readonly refillMarks: RefillMark[] = [];

  /** The chain's one fill value, after a step that brings `f`; throws where they disagree. */
  private checkFill(leaf: Transform, f: readonly number[], fill: readonly number[] | undefined): readonly number[] {
    if (fill && fill !== f && !sameValues(fill, f)) {
      throw new OptionError(`${leaf.name}.fill`, f, `the same fill as earlier steps (${JSON.stringify(fill)}): one chain has one fill value before its colour steps (after them each step may have its own)`);
    }
    return f;
  }
}

/** The extent [x0, y0, x1, y1] of an image of shape `o` mapped by m (an axis-aligned map). */
function extent(m: Mat3, o: Shape): number[] {
  const xs = [m[2], m[0] * o.width + m[2]];
  const ys = [m[5], m[4] * o.height + m[5]];
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function intersect(a: readonly number[], b: readonly number[]): number[] {
  return [Math.max(a[0]!, b[0]!), Math.max(a[1]!, b[1]!), Math.min(a[2]!, b[2]!), Math.min(a[3]!, b[3]!)];
}

/** Two fill options give the same value for every channel (a number broadcasts). */
function sameFill(a: number | readonly number[], b: number | readonly number[]): boolean {
  const as = typeof a === "number" ? [a] : a;
  const bs = typeof b === "number" ? [b] : b;
  if (as.length === bs.length) return sameValues(as, bs);
  if (as.length === 1) return bs.every((x) => x === as[0]);
  if (bs.length === 1) return as.every((x) => x === bs[0]);
  return false;
}

function sameValues(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A sentence for placement(): why a step is not in the fused plan. */
function whyUnfused(t: Transform): string {
  if (t.kind === "container") return "its steps are chosen per sample (a policy or a random choice): no fused form yet";
  if (t.kind === "color") return t.hasOp() ? "a colour step before geometry it cannot be moved past" : "no op for it in the fused plan's program yet";
  if (t.kind === "warp") return "a warp the fused plan cannot fold here (see Plan.unfused's rules in plan.ts)";
  return "geometry after a colour step it cannot be moved past, or a resampling the plan cannot fold here";
}

/**
 * Why a chain cannot run as one fused plan (the engines run all geometry first, then the colour
 * program): the names of the steps that must run step by step, or none. Geometry may follow
 * colour steps only where that reorder is exact: integer geometry after pointwise colour steps
 * (toTensor, normalize, grayscale), and then mirroring borders (edge, reflect, symmetric) only
 * before any constant fill of that stretch (a mirror could carry fill pixels inwards, where one
 * ERASE box per side no longer covers them).
 */
function unfusedSteps(structure: readonly Leaf[]): string[] {
  const out: string[] = [];
  let blocking = false;
  let anyColor = false;
  let filled = false;
  // With a warp, the plan's pixels are its own (not the step-by-step ones): geometry may also
  // run before toTensor / normalize steps written ahead of it (the same within a rounding).
  let onlyAffine = true;
  const at = structure.findIndex((l) => l.t.kind === "warp");
  if (at >= 0) out.push(...warpUnfused(structure, at));
  out.push(...varyingFillUnfused(structure));
  // Colour steps that run before the warp (warpProgram) are behind every later step: the
  // reorder rules below start after the warp (warpUnfused judges the steps before it).
  const program = at >= 0 && runsBeforeWarp(structure, at);
  for (const [k, l] of structure.entries()) {
    const t = l.t;
    if (t.kind === "warp") continue; // warpUnfused
    if (program && k < at) {
      if (t.kind === "container" || (t.kind === "color" && !t.hasOp())) out.push(t.name);
      continue;
    }
    else if (t.kind === "container") out.push(t.name); // a policy or a choice: step by step
    else if (t.kind === "color") {
      if (!t.hasOp()) out.push(t.name); // no op in the plan program (yet): the reference runs it
      anyColor = true;
      if (!t.pointwiseAffine) onlyAffine = false;
      if (!t.commutesWithIntegerGeometry()) blocking = true;
    } else if (t.kind === "geometry" && anyColor && !(at >= 0 && onlyAffine)) {
      const border = t.borderReads();
      if (blocking || t.resamples || (border === "mirror" && filled)) out.push(t.name);
      if (border === "fill") filled = true;
    }
  }
  return out;
}

/** A shape larger than any crop: readsFillAt(WIDE) is false for steps that read fill only past the image. */
const WIDE: Shape = { height: Number.MAX_SAFE_INTEGER, width: Number.MAX_SAFE_INTEGER, channels: 1 };
/** The smallest image: with WIDE, the two ends of the sizes a drawn size may take. */
const TINY: Shape = { height: 1, width: 1, channels: 1 };

/**
 * After a step that draws its size, a crop that pads only when the sample is smaller than it
 * (centerCrop) reads its fill at some samples and not others: where that fill differs from the
 * chain's other fills (one fill per plan), the step runs step by step rather than fail mid-epoch.
 */
function varyingFillUnfused(structure: readonly Leaf[]): string[] {
  const first = structure.findIndex((l) => l.t.sizesVary());
  if (first < 0) return [];
  const fills = structure.filter((l) => l.t.kind === "warp" || (l.t.borderReads() === "fill" && l.t.readsFillAt(WIDE))).map((l) => l.t.fillOption()!);
  return structure
    .filter((l, k) => k > first && l.t.kind === "geometry" && l.t.borderReads() === "fill" && !l.t.readsFillAt(WIDE) && fills.some((f) => !sameFill(f, l.t.fillOption()!)))
    .map((l) => l.t.name);
}

/** True when the chain's output size is still drawn per sample (no fixed-size step after the last step that draws one). */
/** A step at its input shape, for messages: "CenterCrop at input 5x7", or after the step that drew the size. */
function where(t: Transform, s: Shape): string {
  return s.varies ? `${t.name} after ${s.varies} (a size drawn per sample)` : `${t.name} at input ${s.height}x${s.width}`;
}

function endsVarying(structure: readonly Leaf[]): boolean {
  let varying = false;
  for (const l of structure) {
    if (l.t.sizesVary()) varying = true;
    else if (l.t.varyingInput() === "fix") varying = false;
  }
  return varying;
}

/**
 * What keeps a chain with a warp (the first, at `at`) from the fused plan: more than three
 * warps, warps with different interpolations or fills, a displacement before the last warp,
 * between warps anything but flips, plain scales and centre crops within the image (the frames
 * a warp block checks have no padding); a fill that differs from the warp's (one fill per plan).
 * Before the first warp, when its colour steps are toTensor / normalize only (they run after the
 * warp, with its fill taken back through them): a geometric step that does not fold into a
 * matrix (mirror padding, antialiased or bicubic resizing: put those after the warp, where they
 * stay separable taps), and constant-fill geometry (the fills would be in two units). When some
 * colour step before it is not affine, they run before the warp (Plan.warpProgram): they must
 * keep the channels and not interleave with the geometry before the warp (all after it: the
 * pre pass; all before it: the geometry folds into the matrix, so it must fold).
 */
function warpUnfused(structure: readonly Leaf[], at: number): string[] {
  const out: string[] = [];
  const warp = structure[at]!.t;
  const fill = warp.fillOption()!;
  const colourBefore = structure.slice(0, at).some((l) => l.t.kind === "color");
  const last = structure.map((l) => l.t.kind).lastIndexOf("warp");
  // With the colour steps run before the warp: is there geometry before the first of them?
  const program = runsBeforeWarp(structure, at);
  const before = structure.slice(0, at).map((l) => l.t.kind);
  const firstColour = before.indexOf("color");
  const firstGeometry = before.indexOf("geometry");
  const lastGeometry = before.lastIndexOf("geometry");
  const geometryFirst = firstGeometry >= 0 && firstGeometry < firstColour;
  const mode = (t: Transform) => (t as unknown as { interpolation: WarpInterpolation }).interpolation;
  let warps = 0;
  structure.forEach((l, k) => {
    const t = l.t;
    if (t.kind === "warp") {
      warps++;
      // Up to 1 + WARP_FRAMES warps fold, with one interpolation and one fill; a displacement
      // only in the last one.
      if (k !== at && (warps > 1 + WARP_FRAMES || mode(t) !== mode(warp) || !sameFill(t.fillOption()!, fill))) out.push(t.name);
      else if (k !== last && t.displacementGrid() > 0) out.push(t.name);
    } else if (k > at && k < last && (t.kind === "color" || !(t.foldsBeforeWarp() && t.borderReads() === "none" || (t.borderReads() === "fill" && !t.readsFillAt(WIDE))))) {
      out.push(t.name); // between warps: only steps that keep every pixel (flips, scales, centre crops)
    } else if (k < at && t.kind === "color" && !program && !t.pointwiseAffine) out.push(t.name);
    else if (k < at && program && (t.kind === "color" ? t.name === "Grayscale" || (geometryFirst ? k < lastGeometry : firstGeometry >= 0 && k > firstGeometry) : t.kind === "geometry" && !geometryFirst && !t.foldsBeforeWarp())) {
      // Before the warp, run before it: colour steps that keep the channels (the warp reads
      // inC), after the geometry before the warp (the pre pass) or before all of it (the
      // geometry then folds into the warp's matrix, so it must fold).
      out.push(t.name);
    } else if (t.kind === "geometry" && t.borderReads() === "fill" && t.readsFillAt(WIDE) && ((colourBefore && !program) || !sameFill(t.fillOption()!, fill))) out.push(t.name);
  });
  return out;
}

/** The colour steps before the warp at `at` run before it (Plan.warpProgram): one of them is not pointwise affine. */
function runsBeforeWarp(structure: readonly Leaf[], at: number): boolean {
  return structure.slice(0, at).some((l) => l.t.kind === "color" && !l.t.pointwiseAffine);
}

/** A refill step of one sample: its fill region, followed to the output, and its ERASE blocks. */
interface RefillMark {
  y: AxisTaps;
  x: AxisTaps;
  value: readonly number[];
  /** Offset of the first of its four ERASE blocks in the parameter array. */
  at: number;
  enabled: boolean;
}

const markCache = new WeakMap<AxisTaps, AxisTaps>();

/** Integer taps of a fake 2-pixel source: 0 where the step reads its fill, 1 elsewhere. */
function fillMarks(t: AxisTaps): AxisTaps {
  let m = markCache.get(t);
  if (!m) {
    const index = new Int32Array(t.size);
    for (let o = 0; o < t.size; o++) index[o] = t.index[o * t.K]! < 0 ? 0 : 1;
    m = { size: t.size, K: 1, index, weight: new Float32Array(t.size).fill(1) };
    markCache.set(t, m);
  }
  return m;
}

/** The runs of output coordinates whose mark is 0 (this step's fill); at most two. */
function fillRuns(m: AxisTaps, what: string): [number, number][] {
  const runs: [number, number][] = [];
  for (let o = 0; o < m.size; o++) {
    if (m.index[o * m.K] !== 0) continue;
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === o) last[1]++;
    else runs.push([o, 1]);
  }
  if (runs.length > 2) throw new OptionError("plan", what, "at most two runs of fill per axis (an internal rule of the plan compiler was broken)");
  return runs;
}

/** Writes the four ERASE blocks of a refill step: rows runs across, then column runs down. */
function writeRefills(m: RefillMark, block: Float32Array): void {
  const rows = m.enabled ? fillRuns(m.y, "rows") : [];
  const cols = m.enabled ? fillRuns(m.x, "columns") : [];
  const boxes = [
    ...rows.map(([y0, h]) => [y0, 0, h, m.x.size]),
    ...cols.map(([x0, w]) => [0, x0, m.y.size, w]),
  ];
  const C = m.value.length;
  for (let r = 0; r < 4; r++) {
    let at = m.at + r * (5 + C);
    const box = boxes.shift();
    block[at++] = box ? 1 : 0;
    for (let j = 0; j < 4; j++) block[at++] = box ? box[j]! : 0;
    for (let c = 0; c < C; c++) block[at++] = m.value[c]!;
  }
}

export { OpCode };
