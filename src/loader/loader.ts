/**
 * DataLoader: sampler -> fetch -> draw parameters -> one plan call -> batch.
 *
 * Fetching is sequential across batches (so a skipped sample's replacement is well defined),
 * and everything after it overlaps: `prefetch` batches are in flight while the consumer works.
 */
import * as os from "node:os";
import { richDisplay, summaryTable } from "../data/display";
import type { Dataset, Image, PixelStore, Sample } from "../data/types";
import { BatchlabError, OptionError, SampleError, TimeoutError, describeValue } from "../errors";
import { Purpose, RandomStream, checkSeed, randomSeed } from "../sampling/rng";
import type { BatchSamplerLike, Sampler } from "../sampling/types";
import { BatchSampler, RandomSampler, SequentialSampler } from "../sampling/index";
import { Plan, Transform, type BatchTransform, type Params, type Shape } from "../transforms/index";
import * as v from "../validate";
import { deviceEngine, pinnedAlloc, pixelsOfImages, pixelsOfStore, selectEngine, type BatchPixels, type DeviceTensor, type Engine } from "./engine";
import type { Batch, BatchTiming, LoaderStats, SkippedSample, StageTimings } from "./types";

export interface LoaderOptions<T = Batch> {
  /** Samples per batch (default 1, as PyTorch). */
  batchSize?: number;
  /** Reshuffle every epoch with a RandomSampler (default false). */
  shuffle?: boolean;
  /** Where indices come from; excludes shuffle and batchSampler. */
  sampler?: Sampler;
  /** Whole batches of indices; excludes batchSize, shuffle, sampler and dropLast. */
  batchSampler?: BatchSamplerLike;
  /** Drop the last batch when it is short (default false). */
  dropLast?: boolean;
  /** Seed of every random draw: order and augmentation (default: random, see stats().seed). */
  seed?: number;
  /** The transform chain (a compose of T.* transforms). */
  transform?: Transform;
  /** Batches in flight ahead of the consumer (default 2; 0 loads on demand). */
  prefetch?: number;
  /** Native pool threads one batch may use (default: the machine's cores). */
  numThreads?: number;
  /** "auto" (native when built, else reference), "native" or "reference". */
  backend?: "auto" | "native" | "reference";
  /** Bad samples: "raise" (default) stops with the index and file; "skip" drops and counts them. */
  onError?: "raise" | "skip";
  /** Milliseconds one batch may take before it fails with TimeoutError (0: no limit). */
  timeout?: number;
  /** "cpu" (default) or "cuda": the uint8 batch crosses to the GPU and the plan runs there as one kernel. */
  device?: "cpu" | "cuda";
  /** Batch buffers in pinned (page-locked) host memory, for fast asynchronous copies (needs CUDA). */
  pinMemory?: boolean;
  /** A batch-level augmentation (T.mixup, T.cutmix) run after the plan; fills batch.targets. */
  batchTransform?: BatchTransform;
  /** Turns each batch into whatever the training loop wants. */
  collate?: (batch: Batch) => T;
}

const OPTION_KEYS = [
  "batchSize", "shuffle", "sampler", "batchSampler", "dropLast", "seed", "transform", "prefetch",
  "numThreads", "backend", "onError", "timeout", "collate", "batchTransform", "pinMemory", "device",
] as const;

const DISPLAY = Symbol.for("Jupyter.display");
/** Most bytes of disposed batches' buffers a loader keeps for reuse. */
const SPARE_LIMIT = 512 * 2 ** 20;

function now(): number {
  return performance.now();
}

function isSampler(x: unknown): x is Sampler {
  return typeof x === "object" && x !== null && typeof (x as Sampler).indices === "function" && typeof (x as Sampler).length === "number";
}

function isDataset(x: unknown): x is Dataset {
  return typeof x === "object" && x !== null && typeof (x as Dataset).get === "function" && typeof (x as Dataset).length === "number";
}

/** Loads batches from a dataset. Iterate with `for await`; each full pass advances the epoch. */
export class DataLoader<T = Batch> implements AsyncIterable<T> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly prefetch: number;
  readonly numThreads: number;
  readonly onError: "raise" | "skip";
  readonly timeout: number;
  readonly batchSampler: BatchSamplerLike;
  readonly plan: Plan;
  readonly batchTransform?: BatchTransform;
  readonly device: "cpu" | "cuda";
  readonly pinMemory: boolean;
  private readonly collate?: (batch: Batch) => T;
  private readonly backend: "auto" | "native" | "reference";
  private engineCache?: Engine;
  private nextEpoch = 0;
  private readonly record: {
    samples: number;
    perBatch: BatchTiming[];
    skipped: SkippedSample[];
  } = { samples: 0, perBatch: [], skipped: [] };
  private readonly badIndices = new Set<number>();
  /** Pixel buffers of disposed batches, by byte length, for the next batches (see Batch.dispose). */
  private readonly spare = new Map<number, ArrayBuffer[]>();
  private spareBytes = 0;

  constructor(dataset: Dataset, options: LoaderOptions<T> = {}) {
    if (!isDataset(dataset)) throw new OptionError("DataLoader(dataset)", dataset, "a dataset with length and get(i) (see datasets.*)");
    v.knownKeys("DataLoader options", options, OPTION_KEYS);
    this.dataset = dataset;
    const o = options;
    this.seed = o.seed === undefined ? randomSeed() : checkSeed("DataLoader.seed", o.seed);
    this.prefetch = o.prefetch === undefined ? 2 : v.int("DataLoader.prefetch", o.prefetch, 0, 64);
    const cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
    this.numThreads = o.numThreads === undefined ? cores : v.int("DataLoader.numThreads", o.numThreads, 1, 1024);
    this.onError = v.oneOf("DataLoader.onError", o.onError ?? "raise", ["raise", "skip"] as const);
    this.timeout = o.timeout === undefined ? 0 : v.num("DataLoader.timeout", o.timeout, 0);
    this.backend = v.oneOf("DataLoader.backend", o.backend ?? "auto", ["auto", "native", "reference"] as const);
    if (o.transform !== undefined && !(o.transform instanceof Transform)) {
      throw new OptionError("DataLoader.transform", o.transform, "a transform made by T.* (e.g. T.compose([...]))");
    }
    this.plan = new Plan(o.transform);
    if (o.batchTransform !== undefined && (typeof o.batchTransform !== "object" || typeof o.batchTransform.apply !== "function")) {
      throw new OptionError("DataLoader.batchTransform", o.batchTransform, "a batch transform made by T.mixup or T.cutmix");
    }
    this.batchTransform = o.batchTransform;
    if (o.collate !== undefined && typeof o.collate !== "function") throw new OptionError("DataLoader.collate", o.collate, "a function (batch) => anything");
    this.collate = o.collate;
    this.device = v.oneOf("DataLoader.device", o.device ?? "cpu", ["cpu", "cuda"] as const);
    this.pinMemory = o.pinMemory === undefined ? false : v.bool("DataLoader.pinMemory", o.pinMemory);
    if (this.device === "cuda") {
      if (o.backend !== undefined) throw new OptionError("DataLoader.backend", o.backend, 'undefined with device: "cuda" (the CUDA engine runs the plan)');
      const e = deviceEngine("cuda");
      if (!e) throw new OptionError("DataLoader.device", "cuda", "a device whose engine is loaded (import batchlab's cuda module)");
      this.engineCache = e; // throws CudaUnavailableError with the reason where there is no device
      if (o.batchTransform !== undefined) throw new OptionError("DataLoader.batchTransform", o.batchTransform.toString(), 'undefined with device: "cuda" (mixup/cutmix run on the host batch)');
    }
    if (this.pinMemory && this.device === "cpu" && !pinnedAlloc()) {
      throw new OptionError("DataLoader.pinMemory", true, "false: pinned memory needs the CUDA module");
    }

    if (o.batchSampler !== undefined) {
      for (const k of ["batchSize", "shuffle", "sampler", "dropLast"] as const) {
        if (o[k] !== undefined) throw new OptionError(`DataLoader.${k}`, o[k], "undefined when batchSampler is given (it decides the batches)");
      }
      const bs = o.batchSampler;
      if (typeof bs !== "object" || bs === null || typeof bs.batches !== "function") {
        throw new OptionError("DataLoader.batchSampler", bs, "a BatchSampler (samplers.BatchSampler)");
      }
      this.batchSampler = bs;
      this.batchSize = bs.batchSize;
      this.dropLast = bs.dropLast;
    } else {
      this.batchSize = v.int("DataLoader.batchSize", o.batchSize ?? 1, 1);
      this.dropLast = o.dropLast === undefined ? false : v.bool("DataLoader.dropLast", o.dropLast);
      const shuffle = o.shuffle === undefined ? false : v.bool("DataLoader.shuffle", o.shuffle);
      let sampler: Sampler;
      if (o.sampler !== undefined) {
        if (shuffle) throw new OptionError("DataLoader.shuffle", true, "false when a sampler is given (the sampler decides the order)");
        if (!isSampler(o.sampler)) throw new OptionError("DataLoader.sampler", o.sampler, "a sampler (samplers.*) with length and indices(epoch)");
        sampler = o.sampler;
      } else {
        sampler = shuffle ? new RandomSampler(dataset.length, { seed: this.seed }) : new SequentialSampler(dataset.length);
      }
      this.batchSampler = new BatchSampler(sampler, this.batchSize, this.dropLast);
    }
  }

  /** Batches per epoch (before any skipped samples). */
  get length(): number {
    return this.batchSampler.length;
  }

  /** The epoch the next `for await` pass uses. */
  get epoch(): number {
    return this.nextEpoch;
  }

  /** Sets the epoch of the next pass (and of the sampler, for code that reads it there). */
  setEpoch(epoch: number): void {
    this.nextEpoch = v.int("setEpoch(epoch)", epoch, 0);
    this.batchSampler.sampler.setEpoch(epoch);
  }

  /** The engine that runs transforms ("native" or "reference") and why. */
  get engine(): { name: string; reason: string } {
    const e = this.getEngine();
    return { name: e.name, reason: e.reason };
  }

  private getEngine(): Engine {
    return (this.engineCache ??= selectEngine(this.backend));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const epoch = this.nextEpoch;
    this.setEpoch(epoch + 1);
    return this.iterate({ epoch });
  }

  /**
   * One epoch from batch `startBatch` on: exactly the tail of the full epoch (resume after a
   * crash). With onError "skip", exact when no sample before startBatch was skipped.
   */
  async *iterate(options: { epoch?: number; startBatch?: number } = {}): AsyncGenerator<T, void, undefined> {
    v.knownKeys("iterate", options, ["epoch", "startBatch"]);
    const epoch = options.epoch === undefined ? this.nextEpoch : v.int("iterate.epoch", options.epoch, 0);
    const startBatch = v.int("iterate.startBatch", options.startBatch ?? 0, 0);
    const run = new EpochRun(this, epoch, startBatch, this.getEngine());
    const depth = Math.max(1, this.prefetch);
    const inflight: Promise<Batch | null>[] = [];
    for (;;) {
      while (inflight.length < depth && run.hasMore()) {
        const p = run.next();
        p.catch(() => undefined); // observed when its turn comes; avoids unhandled rejections
        inflight.push(p);
      }
      const p = inflight.shift();
      if (!p) break;
      const batch = await p;
      if (!batch) continue;
      yield this.collate ? this.collate(batch) : (batch as unknown as T);
    }
  }

  /** Per-stage times, throughput and skipped samples, over every batch so far. */
  stats(): LoaderStats {
    const stages: StageTimings = { sample: 0, fetch: 0, transform: 0, collate: 0 };
    for (const b of this.record.perBatch) {
      stages.sample += b.sample;
      stages.fetch += b.fetch;
      stages.transform += b.transform;
      stages.collate += b.collate;
    }
    const wall = this.record.perBatch.length ? Math.max(...this.record.perBatch.map((b) => b.end)) - Math.min(...this.record.perBatch.map((b) => b.start)) : 0;
    const e = this.getEngine();
    return {
      backend: e.name,
      backendReason: e.reason,
      seed: this.seed,
      batches: this.record.perBatch.length,
      samples: this.record.samples,
      wallMs: wall,
      samplesPerSecond: wall > 0 ? (this.record.samples / wall) * 1000 : 0,
      stages,
      perBatch: this.record.perBatch.slice(),
      skipped: this.record.skipped.slice(),
    };
  }

  /** Forgets the statistics gathered so far. */
  resetStats(): void {
    this.record.perBatch.length = 0;
    this.record.skipped.length = 0;
    this.record.samples = 0;
  }

  toString(): string {
    return `DataLoader(${this.dataset.length} samples, batchSize=${this.batchSize}, ${this.length} batches/epoch, seed=${this.seed}, engine=${this.getEngine().name})\n  transform: ${this.plan.transform.toString().replace(/\n/g, "\n  ")}`;
  }

  [DISPLAY](): Record<string, string> {
    const engine = this.getEngine();
    const rows: [string, string][] = [
      ["dataset", `${this.dataset.length} samples${this.dataset.shape ? `, ${this.dataset.shape.join(" x ")} (H x W x C)` : ""}`],
      ["batches per epoch", `${this.length} of ${this.batchSize}${this.dropLast ? " (last partial batch dropped)" : ""}`],
      ["sampler", String(this.batchSampler)],
      ["transform", this.plan.transform.toString().replace(/\s*\n\s*/g, " ")],
      ["engine", `${engine.name} (${engine.reason}), ${this.numThreads} threads, prefetch ${this.prefetch}`],
      ["device", this.device + (this.pinMemory ? ", pinned host memory" : "")],
      ["epoch", String(this.epoch)],
    ];
    return { "text/plain": this.toString(), "text/html": summaryTable("batchlab-loader", "DataLoader", rows) };
  }

  /** @internal */ _note(t: BatchTiming, skipped: SkippedSample[]): void {
    this.record.perBatch.push(t);
    this.record.samples += t.size;
    this.record.skipped.push(...skipped);
  }
  /** @internal */ _engine(): Engine {
    return this.getEngine();
  }
  /** @internal A disposed batch's buffer, for a new batch of that size. */
  _takeSpare(bytes: number): ArrayBuffer | undefined {
    const list = this.spare.get(bytes);
    const b = list?.pop();
    if (b) this.spareBytes -= bytes;
    return b;
  }
  /**
   * @internal Keeps `buffer` for a later batch. It is detached first (its memory moves to a new
   * ArrayBuffer that only the loader holds, or back to the engine that allocated it), so views
   * the caller kept read as empty instead of showing a later batch's pixels. Beyond
   * prefetch + 2 buffers of a size, or 512 MiB in all, the memory is left to the garbage
   * collector.
   */
  _recycle(buffer: ArrayBuffer): void {
    const bytes = buffer.byteLength;
    if (bytes === 0) return; // already detached
    // The engine's own (external) buffers: it detaches them and reuses their memory itself.
    if (this.getEngine().release?.(buffer)) return;
    let moved: ArrayBuffer;
    try {
      moved = structuredClone(buffer, { transfer: [buffer] });
    } catch {
      return; // not transferable: the garbage collector frees it
    }
    // A buffer the runtime will not detach is cloned instead: the caller's views still see it.
    // Then the copy is not worth keeping.
    if (buffer.byteLength !== 0) return;
    const list = this.spare.get(bytes) ?? [];
    if (list.length >= this.prefetch + 2 || this.spareBytes + bytes > SPARE_LIMIT) return;
    list.push(moved);
    this.spare.set(bytes, list);
    this.spareBytes += bytes;
  }
  /** @internal */ _isBad(i: number): boolean {
    return this.badIndices.has(i);
  }
  /** @internal */ _markBad(i: number): void {
    this.badIndices.add(i);
  }
}

/** One pass over one epoch: the flat index stream, a fetch cursor and a batch counter. */
class EpochRun {
  private readonly stream: Int32Array;
  /** Where each batch starts in `stream` when nothing is skipped. */
  private readonly bounds: number[];
  private cursor: number;
  private batchNo: number;
  private fetchChain: Promise<unknown> = Promise.resolve();
  private readonly rank: number;
  private readonly worldSize: number;
  private readonly origin = now();
  private readonly outShapes = new Map<string, [number, number, number] | Error>();
  /** The dataset's pixel buffer, when batches can be read from it by offset (the fast path). */
  private readonly store: PixelStore | undefined;

  constructor(
    private readonly loader: DataLoader<unknown>,
    private readonly epoch: number,
    startBatch: number,
    private readonly engine: Engine,
  ) {
    const batches = loader.batchSampler.batches(epoch);
    if (startBatch > batches.length) throw new OptionError("iterate.startBatch", startBatch, `at most ${batches.length} (batches in epoch ${epoch})`);
    const total = batches.reduce((s, b) => s + b.length, 0);
    this.stream = new Int32Array(total);
    this.bounds = [];
    let k = 0;
    for (const b of batches) {
      this.bounds.push(k);
      this.stream.set(b, k);
      k += b.length;
    }
    this.bounds.push(k);
    this.batchNo = startBatch;
    this.cursor = this.bounds[startBatch]!;
    const s = loader.batchSampler.sampler as Sampler & { worldSize?: number };
    this.rank = s.rank ?? 0;
    this.worldSize = s.worldSize ?? 1;
    this.store = this.usableStore();
  }

  /**
   * The dataset's PixelStore when it is consistent (sizes, labels, index map) and the chain can
   * run on its shape; otherwise undefined, and every sample goes through dataset.get().
   */
  private usableStore(): PixelStore | undefined {
    const ds = this.loader.dataset;
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
      this.outShapeOf(st);
    } catch {
      return undefined; // the slow path reports it sample by sample, under the onError policy
    }
    return st;
  }

  hasMore(): boolean {
    return this.batchNo < this.bounds.length - 1;
  }

  /** Schedules the next batch: fetch (in order with other batches), then transform. */
  next(): Promise<Batch | null> {
    const batchIndex = this.batchNo++;
    const want = this.bounds[batchIndex + 1]! - this.bounds[batchIndex]!;
    const fetched = this.fetchChain.then(() => this.fetch(batchIndex, want));
    this.fetchChain = fetched.catch(() => undefined);
    const work = fetched.then((f) => (f ? this.finish(batchIndex, f) : null));
    const limit = this.loader.timeout;
    if (!limit) return work;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError(`batch ${batchIndex} of epoch ${this.epoch}`, limit)), limit);
      work.then(
        (b) => (clearTimeout(timer), resolve(b)),
        (e) => (clearTimeout(timer), reject(e)),
      );
    });
  }

  /** A batch buffer: pinned host memory with pinMemory, else ordinary memory. */
  private allocate(count: number): Float32Array {
    const alloc = this.loader.pinMemory ? pinnedAlloc() : undefined;
    if (alloc) return new Float32Array(alloc(count * 4));
    const spare = this.loader._takeSpare(count * 4);
    if (spare) return new Float32Array(spare, 0, count);
    const recycled = this.loader._engine().allocate?.(count * 4);
    if (recycled) return new Float32Array(recycled, 0, count);
    // Every element is written by the engine, so skip the zero-fill of a fresh ArrayBuffer.
    const b = Buffer.allocUnsafeSlow(count * 4);
    return new Float32Array(b.buffer, b.byteOffset, count);
  }

  /** The last input shape seen and its output: in-memory data sets have one shape throughout. */
  private lastIn: [number, number, number] = [-1, -1, -1];
  private lastOut: [number, number, number] | Error = [0, 0, 0];

  private outShapeOf(img: Shape): [number, number, number] {
    const last = this.lastIn;
    if (img.height === last[0] && img.width === last[1] && img.channels === last[2]) {
      if (this.lastOut instanceof Error) throw this.lastOut;
      return this.lastOut;
    }
    const key = `${img.height}x${img.width}x${img.channels}`;
    let s = this.outShapes.get(key);
    if (!s) {
      try {
        s = this.loader.plan.outputShape({ height: img.height, width: img.width, channels: img.channels });
      } catch (e) {
        s = e as Error;
      }
      this.outShapes.set(key, s);
    }
    this.lastIn = [img.height, img.width, img.channels];
    this.lastOut = s;
    if (s instanceof Error) throw s;
    return s;
  }

  private async fetch(batchIndex: number, want: number): Promise<Fetched | null> {
    const t0 = now();
    const fast = this.store ? this.fetchStored(this.store, want, t0) : undefined;
    return fast !== undefined ? fast : this.fetchSamples(batchIndex, want, t0);
  }

  /**
   * The fast path: the batch's samples as offsets into the dataset's pixel buffer, no objects
   * per sample. Undefined (cursor untouched) when an index is out of range: then the batch goes
   * through dataset.get(), which reports it as every other bad sample is reported.
   */
  private fetchStored(st: PixelStore, want: number, t0: number): Fetched | null | undefined {
    const loader = this.loader;
    const start = this.cursor;
    const n = Math.min(want, this.stream.length - start);
    const length = loader.dataset.length;
    const size = st.height * st.width * st.channels;
    const offsets = new Float64Array(n);
    const labels = new Int32Array(n);
    const positions = new Int32Array(n);
    const stream = this.stream;
    const map = st.index;
    for (let j = 0; j < n; j++) {
      const index = stream[start + j]!;
      if (!(index >= 0 && index < length) || (loader.onError === "skip" && loader._isBad(index))) return undefined;
      offsets[j] = (map ? map[index]! : index) * size;
      labels[j] = st.labels[index]!;
      positions[j] = start + j;
    }
    this.cursor = start + n;
    if (n === 0 || (loader.dropLast && n < loader.batchSize)) return null;
    const shape = { height: st.height, width: st.width, channels: st.channels };
    return { n, positions, labels, pixels: pixelsOfStore({ pixels: st.pixels, offsets, shape }), shape, skipped: [], fetchStart: t0, fetchMs: now() - t0 };
  }

  /** Sample by sample through dataset.get() (files, combinators, bad samples). */
  private async fetchSamples(batchIndex: number, want: number, t0: number): Promise<Fetched | null> {
    const loader = this.loader;
    const ds = loader.dataset;
    const samples: Sample[] = [];
    const positions: number[] = [];
    const skipped: SkippedSample[] = [];
    let shape: [number, number, number] | undefined;
    const skip = loader.onError === "skip";
    while (samples.length < want && this.cursor < this.stream.length) {
      const take = Math.min(want - samples.length, this.stream.length - this.cursor);
      const pos = Array.from({ length: take }, (_, j) => this.cursor + j);
      this.cursor += take;
      // Samples of in-memory datasets arrive synchronously: settle those without promises and
      // await only the ones that are still loading (files being decoded).
      const accept = (sample: Sample, index: number): Sample => {
        checkSample(sample, index);
        const out = this.outShapeOf(sample.image);
        if (shape && (out[0] !== shape[0] || out[1] !== shape[1] || out[2] !== shape[2])) {
          throw new OptionError("shape after transforms", out, `[${shape.join(", ")}] like the rest of the batch (add resize or centerCrop)`);
        }
        shape = shape ?? out;
        return sample;
      };
      const fail = (e: unknown, index: number): SampleError => (e instanceof SampleError ? e : new SampleError(index, ds.pathOf?.(index), e));
      const got: ({ ok: true; value: Sample } | { ok: false; error: SampleError })[] = new Array(take);
      const pending: Promise<void>[] = [];
      for (let j = 0; j < take; j++) {
        const index = this.stream[pos[j]!]!;
        if (skip && loader._isBad(index)) {
          got[j] = { ok: false, error: new SampleError(index, ds.pathOf?.(index), new Error("skipped earlier in this run")) };
          continue;
        }
        try {
          const r = ds.get(index);
          if (r && typeof (r as Promise<Sample>).then === "function") {
            pending.push(
              (r as Promise<Sample>).then(
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
            got[j] = { ok: true, value: accept(r as Sample, index) };
          }
        } catch (e) {
          got[j] = { ok: false, error: fail(e, index) };
        }
      }
      if (pending.length) await Promise.all(pending);
      for (let j = 0; j < got.length; j++) {
        const g = got[j]!;
        if (g.ok) {
          samples.push(g.value);
          positions.push(pos[j]!);
          continue;
        }
        const err = g.error;
        if (!skip) throw err;
        const index = this.stream[pos[j]!]!;
        loader._markBad(index);
        skipped.push({ index, path: err.path, reason: err.cause instanceof Error ? err.cause.message : err.message });
      }
    }
    if (samples.length === 0 || (loader.dropLast && samples.length < loader.batchSize)) {
      if (skipped.length) loader._note({ batch: batchIndex, epoch: this.epoch, start: t0 - this.origin, end: now() - this.origin, size: 0, sample: 0, fetch: now() - t0, transform: 0, collate: 0 }, skipped);
      return null;
    }
    const images = samples.map((x) => x.image);
    const labels = Int32Array.from(samples, (x) => x.label);
    return { n: samples.length, positions: Int32Array.from(positions), labels, pixels: pixelsOfImages(images), shape: images[0]!, skipped, fetchStart: t0, fetchMs: now() - t0 };
  }

  private async finish(batchIndex: number, f: Fetched): Promise<Batch> {
    const loader = this.loader;
    const t1 = now();
    const n = f.n;
    const params: Params[] = new Array(n);
    const uniform = f.pixels.stored !== undefined;
    const images = uniform ? undefined : f.pixels.images();
    for (let j = 0; j < n; j++) {
      // Global position in the epoch: for distributed ranks, where torch's strided split puts it.
      params[j] = loader.plan.drawAt(images ? images[j]! : f.shape, loader.seed, this.epoch, f.positions[j]! * this.worldSize + this.rank);
    }
    const [c, h, w] = this.outShapeOf(f.shape);
    const t2 = now();
    const out = this.engine.onDevice ? undefined : this.allocate(n * c * h * w);
    const result = await this.engine.run(loader.plan, f.pixels, params, out, loader.numThreads);
    const labels = f.labels;
    let pixels = out;
    let targets: Float32Array | undefined;
    if (loader.batchTransform && pixels) {
      const mixed = loader.batchTransform.apply({ images: pixels, shape: [n, c, h, w], labels }, new RandomStream(loader.seed, this.epoch, batchIndex, Purpose.batch));
      pixels = mixed.images;
      targets = mixed.targets;
      if (pixels.buffer !== out!.buffer && !loader.pinMemory) loader._recycle(out!.buffer as ArrayBuffer);
      // The mixed pixels are the batch transform's own memory (it may keep reusing it): never recycled.
    }
    const t3 = now();
    const indices = new Int32Array(n);
    for (let j = 0; j < n; j++) indices[j] = this.stream[f.positions[j]!]!;
    const timings: StageTimings = { sample: t2 - t1, fetch: f.fetchMs, transform: t3 - t2, collate: 0 };
    if (result.copy !== undefined) timings.copy = result.copy;
    if (result.kernel !== undefined) timings.kernel = result.kernel;
    // Only the loader's own buffer, whole, goes back to it.
    const recycle = pixels && pixels === out && !loader.pinMemory ? (b: ArrayBuffer) => loader._recycle(b) : undefined;
    const batch = makeBatch(pixels, [n, c, h, w], labels, indices, this.epoch, batchIndex, timings, params, loader.dataset.classNames, targets, result.device, recycle);
    const t4 = now();
    timings.collate = t4 - t3;
    loader._note({ batch: batchIndex, epoch: this.epoch, start: f.fetchStart - this.origin, end: t4 - this.origin, size: n, ...timings }, f.skipped);
    return batch;
  }
}

/** One batch's samples, fetched and waiting for the transform. */
interface Fetched {
  n: number;
  /** Position of each sample in the epoch's index stream. */
  positions: Int32Array;
  labels: Int32Array;
  pixels: BatchPixels;
  /** Input shape of the first sample. */
  shape: Shape;
  skipped: SkippedSample[];
  fetchStart: number;
  fetchMs: number;
}

function checkSample(s: Sample, index: number): void {
  const img = s?.image;
  if (!img || !(img.data instanceof Uint8Array)) throw new BatchlabError(`dataset.get(${index}) returned ${describeValue(s)}; expected { image: { data: Uint8Array, height, width, channels }, label }`);
  if (img.data.length < img.height * img.width * img.channels) {
    throw new BatchlabError(`dataset.get(${index}).image.data has ${img.data.length} bytes; expected height*width*channels = ${img.height * img.width * img.channels}`);
  }
  if (!Number.isInteger(s.label)) throw new BatchlabError(`dataset.get(${index}).label is ${describeValue(s.label)}; expected an integer`);
}

function makeBatch(
  images: Float32Array | undefined,
  shape: [number, number, number, number],
  labels: Int32Array,
  indices: Int32Array,
  epoch: number,
  batchIndex: number,
  timings: StageTimings,
  params: readonly unknown[],
  classNames: readonly string[] | undefined,
  targets: Float32Array | undefined,
  device: DeviceTensor | undefined,
  recycle: ((buffer: ArrayBuffer) => void) | undefined,
): Batch {
  let disposed = false;
  const batch = {
    get images(): Float32Array {
      if (disposed) throw new BatchlabError(`batch ${batchIndex} of epoch ${epoch} was disposed: read its images before batch.dispose()`, "ERR_BATCHLAB_DISPOSED");
      if (!images) throw new BatchlabError("this batch is in GPU memory (device: \"cuda\"): use await batch.device.toHost()", "ERR_BATCHLAB_ON_DEVICE");
      return images;
    },
    get disposed(): boolean {
      return disposed;
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      if (images && recycle) recycle(images.buffer as ArrayBuffer);
      images = undefined;
      device?.free(); // a CUDA batch: its device memory, now rather than at a collection
    },
    device,
    targets,
    shape,
    labels,
    indices,
    epoch,
    batchIndex,
    timings,
    params,
    classNames,
    toTensor(tf: unknown, options: { layout?: "NCHW" | "NHWC" } = {}) {
      const t = tf as {
        tensor4d?: (v: Float32Array, s: number[]) => { transpose(p: number[]): unknown; dispose(): void };
        tensor1d?: (v: Int32Array, d: string) => unknown;
      };
      if (!t || typeof t.tensor4d !== "function" || typeof t.tensor1d !== "function") {
        throw new OptionError("toTensor(tf)", tf, "the TensorFlow.js module (require(\"@tensorflow/tfjs\") or @tensorflow/tfjs-node-gpu)");
      }
      const layout = v.oneOf("toTensor.layout", options.layout ?? "NCHW", ["NCHW", "NHWC"] as const);
      const nchw = t.tensor4d(this.images, [...shape]);
      // A backend may keep the array itself (tfjs's CPU backend does): never reuse it then.
      recycle = undefined;
      let xs: unknown = nchw;
      if (layout === "NHWC") {
        xs = nchw.transpose([0, 2, 3, 1]);
        nchw.dispose();
      }
      return { xs, ys: t.tensor1d(labels, "int32") };
    },
    [DISPLAY]() {
      const text = () => summarizeBatch(this as Batch);
      if (disposed) return { "text/plain": text() };
      // The viz stage registers showBatch's grid; without it (or for a batch it cannot draw), text.
      return richDisplay("batch", this, text);
    },
  };
  const dispose = (Symbol as { dispose?: symbol }).dispose;
  if (dispose) Object.defineProperty(batch, dispose, { value: batch.dispose });
  return batch as Batch;
}

export function summarizeBatch(b: Batch): string {
  const [n, c, h, w] = b.shape;
  const lines = [`Batch ${b.batchIndex} of epoch ${b.epoch}: ${n} x ${c} x ${h} x ${w} float32`];
  if (b.disposed) return `${lines[0]} (disposed: its pixels were given back)`;
  const plane = h * w;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const base = (i * c + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const x = b.images[base + p]!;
        s += x;
        s2 += x * x;
      }
    }
    const m = s / (n * plane);
    lines.push(`  channel ${ch}: mean ${m.toFixed(4)}, std ${Math.sqrt(Math.max(0, s2 / (n * plane) - m * m)).toFixed(4)}`);
  }
  const counts = new Map<number, number>();
  for (const l of b.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const name = (l: number) => b.classNames?.[l] ?? String(l);
  lines.push("  labels: " + [...counts.entries()].sort((a, z) => a[0] - z[0]).map(([l, k]) => `${name(l)}=${k}`).join(", "));
  const t = b.timings;
  lines.push(`  ms: sample ${t.sample.toFixed(2)}, fetch ${t.fetch.toFixed(2)}, transform ${t.transform.toFixed(2)}, collate ${t.collate.toFixed(2)}`);
  return lines.join("\n");
}
