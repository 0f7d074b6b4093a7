/**
 * Fetching one batch's samples from the data set, in epoch order, with the bad-sample policy.
 * Two paths: an in-memory data set's samples as offsets into its one pixel buffer (no object
 * per sample), or sample by sample through dataset.get() (files, combinators, bad samples).
 */
import type { Dataset, EncodedSample, Image, PixelStore, Sample, SourceWindow } from "../data/types";
import type { EpochOrder } from "../sampling/types";
import { pixelsOfImages, pixelsOfStore, type BatchPixels } from "../engines/index";
import { OptionError, SampleError } from "../errors";
import type { Params, Shape } from "../transforms/index";
import type { SkippedSample } from "./types";

/** One batch's samples, fetched and waiting for the transform. */
export interface Fetched {
  n: number;
  /** Position of each sample in the epoch's index stream. */
  positions: Int32Array;
  /** Each sample's dataset index. */
  indices: Int32Array;
  labels: Int32Array;
  pixels: BatchPixels;
  /** Input shape of the first sample. */
  shape: Shape;
  skipped: SkippedSample[];
  /**
   * With a steered decode (FetchRules.steer): each sample's parameters drawn on its full image
   * (`drawn`, what the batch reports) and as the engine must apply them to the decoded window
   * (`run`).
   */
  drawn?: Params[];
  run?: Params[];
}

/**
 * Decoding that the plan steers (a data set with encoded(i)): the loader draws each sample's
 * parameters on the full image's shape, decodes only the window the plan reads, and moves the
 * parameters onto that window.
 */
export interface Steering {
  draw(full: Shape, position: number): Params;
  window(full: Shape, p: Params): SourceWindow | undefined;
  reframe(p: Params, frame: { left: number; top: number; scale: number }, size: { width: number; height: number }): Params;
}

export interface FetchRules {
  dataset: Dataset;
  /** Samples per full batch, and whether a short batch is dropped. */
  batchSize: number;
  dropLast: boolean;
  onError: "raise" | "skip";
  /** Indices skipped earlier in the loader's life (with onError "skip", never read again). */
  bad: Set<number>;
  /** Output [C, H, W] of the plan for an input shape; throws when the chain cannot run on it. */
  outShapeOf(s: Shape): [number, number, number];
  /** Set when the data set has encoded(i) and the plan can say which window it reads. */
  steer?: Steering;
}

interface Steered {
  sample: Sample;
  drawn: Params;
  run: Params;
}

/**
 * Images the loader decoded itself (EncodedSample.decode) or fetched from a data set whose
 * images are fresh (Dataset.freshImages): no one else holds them, so their memory goes back as
 * soon as the batch's engine call has read them (epoch.ts; only buffers the native decoder made
 * can be), not when the collector gets to them (a batch of decoded photos is tens of MB).
 */
export const decodedHere = new WeakSet<Image>();

/** Sample i through encoded(i): parameters on the full shape, only the window decoded. */
async function steeredSample(ds: Dataset, steer: Steering, index: number, position: number): Promise<Steered> {
  const enc: EncodedSample = await ds.encoded!(index);
  const full = { height: enc.shape.height, width: enc.shape.width, channels: enc.shape.channels };
  const drawn = steer.draw(full, position);
  const win = steer.window(full, drawn);
  const region = await enc.decode(win);
  const scale = win ? win.scale : 1;
  if (region.frame.scale !== scale) throw new OptionError(`dataset.encoded(${index}).decode(window).frame.scale`, region.frame.scale, `${scale} (the scale the window was asked for)`);
  const sample: Sample = { image: region.image, label: enc.label, index, path: enc.path };
  decodedHere.add(region.image);
  return { sample, drawn, run: win ? steer.reframe(drawn, region.frame, region.image) : drawn };
}

/** Reads the samples of an epoch's index stream, batch after batch, from a cursor. */
export class Fetcher {
  /** The dataset's pixel buffer, when batches can be read from it by offset (the fast path). */
  private readonly store: PixelStore | undefined;

  constructor(
    private readonly rules: FetchRules,
    /** The epoch's indices, read on demand a batch at a time. */
    private readonly stream: EpochOrder,
    public cursor: number,
  ) {
    this.store = usableStore(rules);
  }

  /** The indices at positions [start, start + n). */
  private read(start: number, n: number): Int32Array {
    return this.stream.fill(start, new Int32Array(n));
  }

  /** The next `want` samples (fewer at the end, or after skips); null when none is left to yield. */
  async next(want: number): Promise<Fetched | null> {
    const fast = this.store ? this.fetchStored(this.store, want) : undefined;
    return fast !== undefined ? fast : this.fetchSamples(want);
  }

  /**
   * The fast path: offsets into the dataset's pixel buffer. Undefined (cursor untouched) when
   * an index is out of range: then the batch goes through dataset.get(), which reports it as
   * every other bad sample is reported.
   */
  private fetchStored(st: PixelStore, want: number): Fetched | null | undefined {
    const r = this.rules;
    const start = this.cursor;
    const n = Math.min(want, this.stream.length - start);
    const length = r.dataset.length;
    const size = st.height * st.width * st.channels;
    const offsets = new Float64Array(n);
    const labels = new Int32Array(n);
    const positions = new Int32Array(n);
    const indices = this.read(start, n);
    const map = st.index;
    const skip = r.onError === "skip";
    for (let j = 0; j < n; j++) {
      const index = indices[j]!;
      if (!(index >= 0 && index < length) || (skip && r.bad.has(index))) return undefined;
      offsets[j] = (map ? map[index]! : index) * size;
      labels[j] = st.labels[index]!;
      positions[j] = start + j;
    }
    this.cursor = start + n;
    if (n === 0 || (r.dropLast && n < r.batchSize)) return null;
    const shape = { height: st.height, width: st.width, channels: st.channels };
    return { n, positions, indices, labels, pixels: pixelsOfStore({ pixels: st.pixels, offsets, shape }), shape, skipped: [] };
  }

  /** Sample by sample through dataset.get(). Skipped samples are reported even for an empty batch. */
  private async fetchSamples(want: number): Promise<Fetched | null> {
    const r = this.rules;
    const ds = r.dataset;
    const samples: Sample[] = [];
    const positions: number[] = [];
    const indices: number[] = [];
    const skipped: SkippedSample[] = [];
    let shape: [number, number, number] | undefined;
    const skip = r.onError === "skip";
    const steer = r.steer && typeof ds.encoded === "function" ? r.steer : undefined;
    const drawn: Params[] = [];
    const run: Params[] = [];
    while (samples.length < want && this.cursor < this.stream.length) {
      const take = Math.min(want - samples.length, this.stream.length - this.cursor);
      const pos = Array.from({ length: take }, (_, j) => this.cursor + j);
      const idx = this.read(this.cursor, take);
      this.cursor += take;
      // Samples of in-memory datasets arrive synchronously: settle those without promises and
      // await only the ones that are still loading (files being decoded).
      const accept = (sample: Sample, index: number): Sample => {
        checkSample(sample, index);
        const out = r.outShapeOf(sample.image);
        checkBatchBytes(out, r.batchSize);
        if (shape && (out[0] !== shape[0] || out[1] !== shape[1] || out[2] !== shape[2])) {
          throw new OptionError("shape after transforms", out, `[${shape.join(", ")}] like the rest of the batch (add resize or centerCrop)`);
        }
        shape = shape ?? out;
        return sample;
      };
      const fail = (e: unknown, index: number): SampleError => (e instanceof SampleError ? e : new SampleError(index, ds.pathOf?.(index), e));
      const got: ({ ok: true; value: Sample } | { ok: false; error: SampleError })[] = new Array(take);
      const steered: (Steered | undefined)[] = new Array(take);
      const pending: Promise<void>[] = [];
      for (let j = 0; j < take; j++) {
        const index = idx[j]!;
        if (skip && r.bad.has(index)) {
          got[j] = { ok: false, error: new SampleError(index, ds.pathOf?.(index), new Error("skipped earlier in this run")) };
          continue;
        }
        try {
          const res = steer
            ? steeredSample(ds, steer, index, pos[j]!).then((st) => {
                steered[j] = st;
                return st.sample;
              })
            : ds.get(index);
          if (res && typeof (res as Promise<Sample>).then === "function") {
            pending.push(
              (res as Promise<Sample>).then(
                (sample) => {
                  try {
                    got[j] = { ok: true, value: accept(sample, index) };
                  } catch (e) {
                    got[j] = { ok: false, error: fail(e, index) };
                  }
                },
                (e) => void (got[j] = { ok: false, error: fail(e, index) }),
              ),
            );
          } else {
            got[j] = { ok: true, value: accept(res as Sample, index) };
          }
        } catch (e) {
          got[j] = { ok: false, error: fail(e, index) };
        }
      }
      if (pending.length) await Promise.all(pending);
      for (let j = 0; j < got.length; j++) {
        const g = got[j]!;
        if (g.ok) {
          if (!steer && ds.freshImages) decodedHere.add(g.value.image); // the loader's alone (Dataset.freshImages)
          if (steer) {
            drawn.push(steered[j]!.drawn);
            run.push(steered[j]!.run);
          }
          samples.push(g.value);
          positions.push(pos[j]!);
          indices.push(idx[j]!);
          continue;
        }
        const err = g.error;
        if (!skip) throw err;
        const index = idx[j]!;
        r.bad.add(index);
        skipped.push({ index, path: err.path, reason: err.cause instanceof Error ? err.cause.message : err.message });
      }
    }
    if (samples.length === 0 || (r.dropLast && samples.length < r.batchSize)) {
      return skipped.length ? { n: 0, positions: new Int32Array(0), indices: new Int32Array(0), labels: new Int32Array(0), pixels: pixelsOfImages([]), shape: { height: 0, width: 0, channels: 0 }, skipped } : null;
    }
    const images = samples.map((x) => x.image);
    const labels = Int32Array.from(samples, (x) => x.label);
    const out: Fetched = { n: samples.length, positions: Int32Array.from(positions), indices: Int32Array.from(indices), labels, pixels: pixelsOfImages(images), shape: images[0]!, skipped };
    if (steer) {
      out.drawn = drawn;
      out.run = run;
    }
    return out;
  }
}

/**
 * The dataset's PixelStore when it is consistent (sizes, labels, index map) and the chain can
 * run on its shape; otherwise undefined, and every sample goes through dataset.get().
 */
function usableStore(r: FetchRules): PixelStore | undefined {
  const ds = r.dataset;
  const st = typeof ds.pixelStore === "function" ? ds.pixelStore() : undefined;
  if (!st || !(st.pixels instanceof Uint8Array) || !(st.labels instanceof Int32Array) || st.labels.length !== ds.length) return undefined;
  const size = st.height * st.width * st.channels;
  if (!(size > 0) || !Number.isInteger(size)) return undefined;
  const stored = Math.floor(st.pixels.length / size);
  if (st.index) {
    if (!(st.index instanceof Int32Array) || st.index.length !== ds.length) return undefined;
    for (let i = 0; i < st.index.length; i++) if (!(st.index[i]! >= 0 && st.index[i]! < stored)) return undefined;
  } else if (stored < ds.length) {
    return undefined;
  }
  try {
    checkBatchBytes(r.outShapeOf(st), r.batchSize);
  } catch {
    return undefined; // the slow path reports it sample by sample, under the onError policy
  }
  return st;
}

/** The dataset contract: a sample is { image: { data: Uint8Array, height, width, channels }, label }. */
function checkSample(s: Sample, index: number): void {
  const img = s?.image;
  const option = `dataset.get(${index})`;
  if (!img || !(img.data instanceof Uint8Array)) throw new OptionError(option, s, "{ image: { data: Uint8Array, height, width, channels }, label }");
  const dim = (key: "height" | "width" | "channels", max: number): number => {
    const v = img[key] as unknown;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max) throw new OptionError(`${option}.image.${key}`, v, `an integer from 1 to ${max}`);
    return v;
  };
  const need = dim("height", MAX_SIDE) * dim("width", MAX_SIDE) * dim("channels", MAX_CHANNELS);
  if (img.data.length < need) {
    throw new OptionError(`${option}.image.data`, img.data, `height*width*channels = ${img.height}*${img.width}*${img.channels} = ${need} bytes`);
  }
  const label = s.label as unknown;
  if (typeof label !== "number" || !Number.isInteger(label) || label < 0 || label > 2 ** 31 - 1) {
    throw new OptionError(`${option}.label`, label, "an integer class index from 0 to 2^31-1 (labels travel as an Int32Array)");
  }
}

/** Bounds on a sample's shape (the native engines' own limits: 2^20 per side, 64 channels). */
const MAX_SIDE = 1 << 20;
const MAX_CHANNELS = 64;

/** A batch's output must fit one buffer: throws OptionError naming the transformed shape. */
export function checkBatchBytes(out: readonly [number, number, number], batchSize: number): void {
  const bytes = out[0] * out[1] * out[2] * 4 * batchSize;
  if (!(bytes <= MAX_BATCH_BYTES)) {
    throw new OptionError("shape after transforms", out, `a batch of at most ${MAX_BATCH_BYTES} bytes (${batchSize} x ${out.join(" x ")} float32 is ${bytes}): resize to less or lower batchSize`);
  }
}

/** The largest float32 batch the loader allocates: 2^31 bytes (the CPU engine's allocator limit is the same). */
const MAX_BATCH_BYTES = 2 ** 31;
