/**
 * The plan job and the engine interface: what every engine (reference.ts, cpu.ts, cuda.ts)
 * takes and gives back. A job is one batch for one call, field by field as native/PLAN_ABI.md
 * describes it; `encodeJob` packs a batch into it from the compiled plan (transforms/plan.ts)
 * and each sample's drawn parameters. The native engines check a job themselves, in C++, before
 * touching a pixel, and refuse a bad one with an error naming the field.
 */
import type { Image } from "../data/types";
import { OptionError } from "../errors";
import type { Plan, Params, Shape, FillState } from "../transforms/index";
import { writeWidened, type AxisTaps } from "../transforms/geometry";
import type { BufferPool } from "./buffers";

/** One batch for an engine, exactly as native/PLAN_ABI.md lays it out. */
export interface PlanJob {
  /** Samples in the batch. */
  n: number;
  /** Channels of every source image. */
  inC: number;
  /** Output shape of one sample. */
  outC: number;
  outH: number;
  outW: number;
  /** Taps per output coordinate per axis (1: integer map, 2: one bilinear step, ...). */
  K: number;
  /** HWC uint8 pixels: one view per sample, or one buffer holding every sample (with srcOffsets). */
  sources: readonly Uint8Array[] | Uint8Array;
  /** With one `sources` buffer: the byte offset of each sample in it (n integers). */
  srcOffsets?: Float64Array;
  /** Height, width of each source: length 2n. */
  srcDims: Int32Array;
  /** Per sample: outH*K row taps, then outW*K column taps; a source row/column or -1 (fill). */
  tapIndex: Int32Array;
  /** Tap weights, same layout as tapIndex. */
  tapWeight: Float32Array;
  /** Value of a -1 tap, per source channel (length >= inC). */
  fill: Float32Array;
  /** Op codes (0 AFFINE, 1 GRAY, 2 JITTER, 3 ERASE), applied in order after the geometry. */
  program: Int32Array;
  /** Offset of each op's parameters inside a sample's block of P = params.length / n floats. */
  opOffsets: Int32Array;
  /** Per-sample parameter blocks. */
  params: Float32Array;
  /** The warp pass: 0 or absent none, 1 nearest, 2 bilinear, 3 bicubic (the taps then read the warped image). */
  warp?: number;
  /** With a warp: offset of the warp block inside each sample's parameter block. */
  warpOffset?: number;
  /** With a warp: height, width of each sample's warped image (length 2n). */
  warpDims?: Int32Array;
  /**
   * With a warp whose earlier steps do not fold into its matrix: a separable pass from the
   * source to an image of preDims (height, width per sample) that the warp reads. Taps per
   * coordinate, and per sample (preH + preW) * preK row then column taps, back to back.
   */
  preK?: number;
  preDims?: Int32Array;
  preTapIndex?: Int32Array;
  preTapWeight?: Float32Array;
  /**
   * With a warp: the first warpOps ops of `program` run on the image the warp reads (the
   * pre-pass image, or the source), before the warp; the others after the geometry pass.
   */
  warpOps?: number;
}

/** What the CPU engine adds to a job: where to write, and how many pool threads may work on it. */
export interface HostJob extends PlanJob {
  /** NCHW float32 output, length >= n*outC*outH*outW; must not share memory with the inputs. */
  out: Float32Array;
  /** At most this many pool threads work on the job (>= 1). */
  numThreads: number;
}

/** Samples that share one shape and one buffer: sample i's bytes start at offsets[i]. */
export interface StoredPixels {
  pixels: Uint8Array;
  offsets: Float64Array;
  shape: Shape;
}

/**
 * The pixels of one batch: one view per sample, or, for an in-memory data set, one buffer with
 * each sample's offset (no per-sample objects; engines that want views ask images()).
 */
export interface BatchPixels {
  readonly n: number;
  /** One view per sample (made on the first call when the batch is stored). */
  images(): readonly Image[];
  /** Every sample in one buffer, with one shape. */
  readonly stored?: StoredPixels;
}

/** A batch of views. */
export function pixelsOfImages(images: readonly Image[]): BatchPixels {
  return { n: images.length, images: () => images };
}

/** A batch read from one buffer: views are made only when an engine asks for them. */
export function pixelsOfStore(stored: StoredPixels): BatchPixels {
  let views: Image[] | undefined;
  return {
    n: stored.offsets.length,
    stored,
    images() {
      if (!views) {
        const { height, width, channels } = stored.shape;
        const size = height * width * channels;
        views = Array.from(stored.offsets, (o) => ({ data: stored.pixels.subarray(o, o + size), height, width, channels }));
      }
      return views;
    },
  };
}

/** A batch in device memory, as a device engine returns it. */
export interface DeviceTensor {
  readonly shape: readonly [number, number, number, number];
  toHost(): Promise<Float32Array>;
  free(): void;
}

export interface EngineResult {
  /** Device engines: the batch in device memory (host engines fill the `out` they were given). */
  device?: DeviceTensor;
  /** Device milliseconds of the host-to-device copy and of the kernel. */
  copy?: number;
  kernel?: number;
}

export type EngineName = "native" | "reference" | "cuda";

export interface Engine {
  readonly name: EngineName;
  /** Why this engine runs (e.g. why the native one could not be loaded). */
  readonly reason: string;
  /** True when `run` leaves the batch on a device instead of writing `out`. */
  readonly onDevice: boolean;
  /** Where this engine's batch outputs and job arrays come from and go back to. */
  readonly pool: BufferPool;
  /** Writes n x C x H x W float32 into `out` (host engines) or returns a device batch. */
  run(plan: Plan, pixels: BatchPixels, params: readonly Params[], out: Float32Array | undefined, numThreads: number): Promise<EngineResult>;
}

/**
 * Packs a batch into a plan job: each sample's taps (widened to the batch's K) and parameter
 * block. `params[i]` are sample i's drawn parameters (Plan.draw). Arrays come from `pool` when
 * given (give them back with pool.giveJob once the engine is done with the job).
 */
export function encodeJob(plan: Plan, pixels: BatchPixels | readonly Image[], params: readonly Params[], pool?: BufferPool): PlanJob {
  const batch = Array.isArray(pixels) ? pixelsOfImages(pixels as readonly Image[]) : (pixels as BatchPixels);
  const n = batch.n;
  if (n === 0) throw new OptionError("encodeJob(pixels)", pixels, "at least one sample");
  const stored = batch.stored;
  const images = stored ? undefined : batch.images();
  const shapeOf = (i: number): Shape => (stored ? stored.shape : images![i]!);

  const first = shapeOf(0);
  const inC = first.channels;
  const layout0 = plan.layout(first);
  const outShape = layout0.out;
  const P = layout0.P;
  // All zeros (a reused block is cleared): encodeSample leaves the ops a sample does not apply
  // as they are.
  const block = pool ? pool.float32("params", n * P).fill(0) : new Float32Array(n * P);
  const srcDims = pool ? pool.int32("srcDims", 2 * n) : new Int32Array(2 * n);
  const tapsY: AxisTaps[] = new Array(n);
  const tapsX: AxisTaps[] = new Array(n);
  const preTaps: ({ y: AxisTaps; x: AxisTaps } | undefined)[] = new Array(n);
  const warped: ({ height: number; width: number } | undefined)[] = new Array(n);
  const fill: FillState = { fill: undefined };
  let K = 1;

  for (let i = 0; i < n; i++) {
    const img = shapeOf(i);
    if (img.channels !== inC) {
      throw new OptionError(`sample ${i} of the batch: channels`, img.channels, `${inC} like the first sample (decode every image to one channel count)`);
    }
    const layout = plan.layout(img);
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
    const t = plan.encodeSample(img, layout, params[i]!, block, i * P, fill);
    tapsY[i] = t.y;
    tapsX[i] = t.x;
    preTaps[i] = t.pre;
    warped[i] = t.warped;
    if (t.y.K > K) K = t.y.K;
    if (t.x.K > K) K = t.x.K;
    srcDims[2 * i] = img.height;
    srcDims[2 * i + 1] = img.width;
  }

  const { height: outH, width: outW, channels: outC } = outShape;
  const per = (outH + outW) * K;
  const tapIndex = pool ? pool.int32("tapIndex", n * per) : new Int32Array(n * per);
  const tapWeight = pool ? pool.float32("tapWeight", n * per) : new Float32Array(n * per);
  for (let i = 0; i < n; i++) {
    writeWidened(tapsY[i]!, K, tapIndex, tapWeight, i * per);
    writeWidened(tapsX[i]!, K, tapIndex, tapWeight, i * per + outH * K);
  }
  const job: PlanJob = {
    n,
    inC,
    outC,
    outH,
    outW,
    K,
    sources: stored ? stored.pixels : images!.map((im) => im.data),
    srcDims,
    tapIndex,
    tapWeight,
    fill: Float32Array.from(fill.fill ?? new Array(inC).fill(0)),
    program: layout0.program.slice(), // copies: a caller may edit a job, never the plan
    opOffsets: layout0.opOffsets.slice(),
    params: block,
  };
  if (stored) job.srcOffsets = stored.offsets;
  const w = layout0.warp;
  if (w) {
    job.warp = w.mode;
    job.warpOffset = w.offset;
    const dims = new Int32Array(2 * n);
    for (let i = 0; i < n; i++) {
      // Each sample's own (a step before it may draw the size).
      const shape = warped[i]!;
      dims[2 * i] = shape.height;
      dims[2 * i + 1] = shape.width;
    }
    job.warpDims = dims;
    if (w.ops > 0) job.warpOps = w.ops;
    if (w.pre) {
      let preK = 1;
      let total = 0;
      for (const t of preTaps) {
        preK = Math.max(preK, t!.y.K, t!.x.K);
        total += t!.y.size + t!.x.size;
      }
      const index = new Int32Array(total * preK);
      const weight = new Float32Array(total * preK);
      const preDims = new Int32Array(2 * n);
      let at = 0;
      for (let i = 0; i < n; i++) {
        const { y, x } = preTaps[i]!;
        writeWidened(y, preK, index, weight, at);
        at += y.size * preK;
        writeWidened(x, preK, index, weight, at);
        at += x.size * preK;
        preDims[2 * i] = y.size;
        preDims[2 * i + 1] = x.size;
      }
      job.preK = preK;
      job.preDims = preDims;
      job.preTapIndex = index;
      job.preTapWeight = weight;
    }
  }
  return job;
}
