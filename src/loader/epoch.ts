/**
 * One pass over one epoch: the flat index stream, fetched in order (fetch.ts), then for each
 * batch the parameter draw, one engine call and the Batch (batch.ts). Everything it uses is
 * handed in (EpochDeps); it never calls back into the DataLoader.
 *
 * Fetching is sequential across batches (so a skipped sample's replacement is well defined);
 * everything after it overlaps: the loader keeps `prefetch` batches in flight.
 */
import type { Dataset } from "../data/types";
import type { Engine } from "../engines/index";
import { OptionError, TimeoutError } from "../errors";
import { Purpose, RandomStream } from "../sampling/rng";
import { batchesOf } from "../sampling/samplers";
import type { BatchSamplerLike, EpochBatches } from "../sampling/types";
import type { BatchTransform, Params, Plan, Shape } from "../transforms/index";
import { makeBatch } from "./batch";
import { Fetcher, decodedHere, type Fetched, type FetchRules } from "./fetch";
import { releaseDecoded } from "../data/jpeg";
import { StreamFetcher, epochFeed } from "./stream";
import type { StreamDataset } from "../data/webdataset";
import type { ShardSampler } from "../sampling/shards";
import type { StatsRecorder } from "./stats";
import type { Batch, StageTimings } from "./types";

export interface EpochDeps {
  dataset: Dataset;
  batchSampler: BatchSamplerLike;
  plan: Plan;
  engine: Engine;
  seed: number;
  numThreads: number;
  onError: "raise" | "skip";
  /** Milliseconds one batch may take (0: no limit). */
  timeout: number;
  batchTransform: BatchTransform | undefined;
  /** Where each batch's timing and skipped samples go. */
  record: StatsRecorder;
  /** Indices skipped earlier in the loader's life (onError "skip"). */
  bad: Set<number>;
  /** A stream data set (webdataset) and its shard sampler: the epoch is a feed (stream.ts), not an index order. */
  stream?: { dataset: StreamDataset; shards: ShardSampler };
}

function now(): number {
  return performance.now();
}

export class EpochRun {
  /** The epoch's batches, computed on demand (nothing of size n is built before batch 0); a stream's count is unknown. */
  private readonly batches: { count: number; start(b: number): number };
  private batchNo: number;
  private fetchChain: Promise<unknown> = Promise.resolve();
  private readonly rank: number;
  private readonly worldSize: number;
  private readonly origin = now();
  private readonly fetcher: Fetcher | StreamFetcher;

  constructor(
    private readonly d: EpochDeps,
    private readonly epoch: number,
    startBatch: number,
  ) {
    const bs = d.batchSampler;
    this.batchNo = startBatch;
    const outShapeOf = (sh: Shape): [number, number, number] => this.outShapeOf(sh);
    if (d.stream) {
      const size = bs.batchSize;
      this.batches = { count: Infinity, start: (b) => b * size };
      this.rank = d.stream.shards.rank;
      this.worldSize = d.stream.shards.worldSize;
      const rules = { batchSize: size, dropLast: bs.dropLast, onError: d.onError, outShapeOf };
      const { dataset, shards } = d.stream;
      this.fetcher = new StreamFetcher(rules, (signal) => epochFeed(dataset, shards, epoch, signal), startBatch * size);
      return;
    }
    const batches: EpochBatches = batchesOf(bs, epoch);
    this.batches = batches;
    if (startBatch > batches.count) throw new OptionError("iterate.startBatch", startBatch, `at most ${batches.count} (batches in epoch ${epoch})`);
    const s = bs.sampler as { rank?: number; worldSize?: number };
    this.rank = s.rank ?? 0;
    this.worldSize = s.worldSize ?? 1;
    const rules: FetchRules = { dataset: d.dataset, batchSize: bs.batchSize, dropLast: bs.dropLast, onError: d.onError, bad: d.bad, outShapeOf };
    // A data set that can decode a window (imageFolder's decode "fast"), and a chain that says
    // which window it reads: the parameters are drawn on the full image before decoding.
    if (typeof d.dataset.encoded === "function" && d.plan.readsWindow) {
      const plan = d.plan;
      rules.steer = {
        draw: (full, position) => plan.drawAt(full, d.seed, this.epoch, position * this.worldSize + this.rank),
        window: (full, p) => plan.sourceWindow(full, p),
        reframe: (p, frame, size) => plan.reframe(p, frame, size),
      };
    }
    this.fetcher = new Fetcher(rules, batches.order, batches.start(startBatch));
  }

  hasMore(): boolean {
    return this.batchNo < this.batches.count && !(this.fetcher instanceof StreamFetcher && this.fetcher.exhausted);
  }

  /** Stops reading: a stream's open shard is closed at once. */
  close(): void {
    if (this.fetcher instanceof StreamFetcher) void this.fetcher.close();
  }

  /** Schedules the next batch: fetch (in order with other batches), then transform. */
  next(): Promise<Batch | null> {
    const batchIndex = this.batchNo++;
    const want = this.batches.start(batchIndex + 1) - this.batches.start(batchIndex);
    const fetched = this.fetchChain.then(async () => {
      const t0 = now();
      return { f: await this.fetcher.next(want), t0, ms: now() - t0 };
    });
    this.fetchChain = fetched.catch(() => undefined);
    const work = fetched.then(({ f, t0, ms }) => (f ? this.finish(batchIndex, f, t0, ms) : null));
    const limit = this.d.timeout;
    if (!limit) return work;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError(`batch ${batchIndex} of epoch ${this.epoch}`, limit)), limit);
      work.then(
        (b) => (clearTimeout(timer), resolve(b)),
        (e) => (clearTimeout(timer), reject(e)),
      );
    });
  }

  /** The last input shape seen and its output: in-memory data sets have one shape throughout. */
  private lastIn: [number, number, number] = [-1, -1, -1];
  private lastOut: [number, number, number] | Error = [0, 0, 0];
  private readonly outShapes = new Map<string, [number, number, number] | Error>();

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
        s = this.d.plan.outputShape({ height: img.height, width: img.width, channels: img.channels });
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

  private async finish(batchIndex: number, f: Fetched, fetchStart: number, fetchMs: number): Promise<Batch | null> {
    const d = this.d;
    if (f.n === 0) {
      // Every sample of this batch was skipped: report them, yield nothing.
      d.record.note({ batch: batchIndex, epoch: this.epoch, start: fetchStart - this.origin, end: now() - this.origin, size: 0, sample: 0, fetch: fetchMs, transform: 0, collate: 0 }, f.skipped);
      return null;
    }
    const t1 = now();
    const n = f.n;
    const params: Params[] = new Array(n);
    const plan = d.plan;
    const images = f.pixels.stored !== undefined ? undefined : f.pixels.images();
    for (let j = 0; j < n; j++) {
      // Global position in the epoch: for distributed ranks, where torch's strided split puts it.
      params[j] = f.run ? f.run[j]! : plan.drawAt(images ? images[j]! : f.shape, d.seed, this.epoch, f.positions[j]! * this.worldSize + this.rank);
    }
    const [c, h, w] = this.outShapeOf(f.shape);
    const t2 = now();
    const engine = d.engine;
    const out = engine.onDevice ? undefined : engine.pool.output(n * c * h * w);
    const result = await engine.run(plan, f.pixels, params, out, d.numThreads);
    if (images && !engine.onDevice) {
      // The engine has read the sources: images the loader decoded go back now (fetch.ts decodedHere).
      for (const im of images) if (decodedHere.delete(im)) releaseDecoded(im.data);
    }
    const labels = f.labels;
    let pixels = out;
    let targets: Float32Array | undefined;
    if (d.batchTransform && pixels) {
      const mixed = d.batchTransform.apply({ images: pixels, shape: [n, c, h, w], labels }, new RandomStream(d.seed, this.epoch, batchIndex, Purpose.batch));
      pixels = mixed.images;
      targets = mixed.targets;
      // The mixed pixels are the batch transform's own memory (it may keep reusing it): never given back.
      if (pixels.buffer !== out!.buffer) engine.pool.give(out!.buffer as ArrayBuffer);
    }
    const t3 = now();
    const indices = f.indices;
    const timings: StageTimings = { sample: t2 - t1, fetch: fetchMs, transform: t3 - t2, collate: 0 };
    if (result.copy !== undefined) timings.copy = result.copy;
    if (result.kernel !== undefined) timings.kernel = result.kernel;
    // Only the loader's own buffer, whole, goes back to the pool.
    const giveBack = pixels && pixels === out ? (b: ArrayBuffer) => engine.pool.give(b) : undefined;
    // The batch reports the parameters as drawn on the full image (they replay through torchvision).
    const batch = makeBatch(pixels, [n, c, h, w], labels, indices, this.epoch, batchIndex, timings, f.drawn ?? params, d.dataset.classNames, targets, result.device, giveBack);
    const t4 = now();
    timings.collate = t4 - t3;
    d.record.note({ batch: batchIndex, epoch: this.epoch, start: fetchStart - this.origin, end: t4 - this.origin, size: n, ...timings }, f.skipped);
    return batch;
  }
}
