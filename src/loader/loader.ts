/**
 * DataLoader: sampler -> fetch -> draw parameters -> one engine call -> batch.
 *
 * This file holds the loader object (options, the sampler and the engine it chose, statistics,
 * its notebook view); one epoch's run is epoch.ts, fetching fetch.ts, the Batch batch.ts, the
 * options' declaration options.ts. Batch memory is reused through the engine's pool.
 */
import type { Dataset } from "../data/types";
import { isStreamDataset, type StreamDataset } from "../data/webdataset";
import { DISPLAY, summaryBundle, type MimeData } from "../display/index";
import { selectEngine, type Engine } from "../engines/index";
import { OptionError } from "../errors";
import * as v from "../options";
import { BatchSampler, RandomSampler, SequentialSampler } from "../sampling/index";
import type { BatchSamplerLike, Sampler } from "../sampling/types";
import { Plan, type BatchTransform } from "../transforms/index";
import { EpochRun } from "./epoch";
import { LOADER_OPTIONS, type LoaderOptions } from "./options";
import { StatsRecorder } from "./stats";
import { StreamBatches, shardSamplerOf } from "./stream";
import type { ShardSampler } from "../sampling/shards";
import type { Batch, LoaderStats, StepPlacement } from "./types";

export type { LoaderOptions };

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
  private readonly record = new StatsRecorder();
  private readonly bad = new Set<number>();
  /** For a stream data set (datasets.webdataset): the data set and this rank's shard sampler. */
  readonly stream?: { readonly dataset: StreamDataset; readonly shards: ShardSampler };

  constructor(dataset: Dataset, options: LoaderOptions<T> = {}) {
    if (!isDataset(dataset)) throw new OptionError("DataLoader(dataset)", dataset, "a dataset with length and get(i) (see datasets.*)");
    const o = LOADER_OPTIONS.parse(options);
    this.dataset = dataset;
    this.seed = o.seed;
    this.prefetch = o.prefetch;
    this.numThreads = o.numThreads;
    this.onError = o.onError;
    this.timeout = o.timeout;
    this.backend = o.backend ?? "auto";
    this.plan = new Plan(o.transform);
    this.batchTransform = o.batchTransform;
    this.collate = o.collate as ((batch: Batch) => T) | undefined;
    this.device = o.device;
    this.pinMemory = o.pinMemory;
    if (this.device === "cuda") {
      if (o.backend !== undefined) throw new OptionError("DataLoader.backend", o.backend, 'undefined with device: "cuda" (the CUDA engine runs the plan)');
      if (o.batchTransform !== undefined) throw new OptionError("DataLoader.batchTransform", o.batchTransform.toString(), 'undefined with device: "cuda" (mixup/cutmix run on the host batch)');
      this.engineCache = this.chooseEngine(); // throws CudaUnavailableError with the reason where there is no device
    } else if (this.pinMemory) {
      this.engineCache = this.chooseEngine(); // throws CudaUnavailableError where pinned memory cannot be had
    }

    if (isStreamDataset(dataset)) {
      // A stream has no indices to sample: the data set's shard order and shuffle buffer decide.
      const why: Record<string, string> = {
        shuffle: "false for a stream data set (shuffle with webdataset's shuffle: bufferSize and shardShuffle options)",
        sampler: "undefined for a stream data set (its shards are split by rank with webdataset's rank / worldSize options or the launcher's environment)",
        batchSampler: "undefined for a stream data set (use batchSize and dropLast)",
      };
      for (const k of ["shuffle", "sampler", "batchSampler"] as const) {
        const given = (options as Record<string, unknown>)[k];
        if (given !== undefined && given !== false) throw new OptionError(`DataLoader.${k}`, given, why[k]!);
      }
      const shards = shardSamplerOf(dataset);
      this.stream = { dataset, shards };
      this.batchSize = o.batchSize ?? 1;
      this.dropLast = o.dropLast ?? false;
      this.batchSampler = new StreamBatches(shards, this.batchSize, this.dropLast, dataset.length);
    } else if (o.batchSampler !== undefined) {
      for (const k of ["batchSize", "shuffle", "sampler", "dropLast"] as const) {
        const given = (options as Record<string, unknown>)[k];
        if (given !== undefined) throw new OptionError(`DataLoader.${k}`, given, "undefined when batchSampler is given (it decides the batches)");
      }
      this.batchSampler = o.batchSampler;
      this.batchSize = o.batchSampler.batchSize;
      this.dropLast = o.batchSampler.dropLast;
    } else {
      this.batchSize = o.batchSize ?? 1;
      this.dropLast = o.dropLast ?? false;
      let sampler: Sampler;
      if (o.sampler !== undefined) {
        if (o.shuffle) throw new OptionError("DataLoader.shuffle", true, "false when a sampler is given (the sampler decides the order)");
        sampler = o.sampler;
      } else {
        sampler = o.shuffle ? new RandomSampler(dataset.length, { seed: this.seed }) : new SequentialSampler(dataset.length);
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

  /** The engine that runs transforms ("native", "reference" or "cuda") and why. */
  get engine(): { name: string; reason: string } {
    const e = this.getEngine();
    return { name: e.name, reason: e.reason };
  }

  private chooseEngine(): Engine {
    return selectEngine({ backend: this.backend, device: this.device, pinMemory: this.pinMemory });
  }

  private getEngine(): Engine {
    return (this.engineCache ??= this.chooseEngine());
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
    const run = new EpochRun(
      {
        dataset: this.dataset,
        batchSampler: this.batchSampler,
        plan: this.plan,
        engine: this.getEngine(),
        seed: this.seed,
        numThreads: this.numThreads,
        onError: this.onError,
        timeout: this.timeout,
        batchTransform: this.batchTransform,
        record: this.record,
        bad: this.bad,
        stream: this.stream,
      },
      epoch,
      startBatch,
    );
    const depth = Math.max(1, this.prefetch);
    const inflight: Promise<Batch | null>[] = [];
    try {
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
    } finally {
      run.close(); // a stream's open shard (file or HTTP connection) is closed when iteration stops early
    }
  }

  /**
   * One batch for a quick look, typed as the loader's batches (`Batch` unless a collate says
   * otherwise): batch `batch` (default 0) of `epoch` (default 0). It does not advance the
   * loader's epoch, and stops fetching once the batch is there.
   */
  async first(options: { epoch?: number; batch?: number } = {}): Promise<T> {
    v.knownKeys("first", options, ["epoch", "batch"]);
    const epoch = v.int("first.epoch", options.epoch ?? 0, 0);
    const batch = v.int("first.batch", options.batch ?? 0, 0);
    if (batch >= this.length) throw new OptionError("first.batch", batch, `a batch index below ${this.length} (the batches of one epoch)`);
    const [b] = await this.take(1, { epoch, startBatch: batch });
    if (b === undefined) throw new OptionError("first.batch", batch, `a batch that is not empty (every sample of batch ${batch} of epoch ${epoch} was skipped)`);
    return b;
  }

  /**
   * The first `n` batches of `epoch` (default 0) from `startBatch` (default 0), as an array:
   * fewer when the epoch ends first. Does not advance the loader's epoch; stops fetching after
   * the n-th. The batches stay valid until disposed (their buffers are not reused before).
   */
  async take(n: number, options: { epoch?: number; startBatch?: number } = {}): Promise<T[]> {
    const count = v.int("take(n)", n, 0);
    v.knownKeys("take", options, ["epoch", "startBatch"]);
    const epoch = v.int("take.epoch", options.epoch ?? 0, 0);
    const out: T[] = [];
    if (count === 0) return out;
    const it = this.iterate({ epoch, startBatch: options.startBatch ?? 0 });
    try {
      for (let r = await it.next(); !r.done; r = await it.next()) {
        out.push(r.value);
        if (out.length === count) break;
      }
    } finally {
      await it.return(undefined);
    }
    return out;
  }

  /** Per-stage times, throughput and skipped samples, over every batch so far. */
  stats(): LoaderStats {
    const e = this.getEngine();
    return { ...this.record.summary(e.name, e.reason, this.seed), steps: this.placement() };
  }

  /** Where each top-level transform step runs, and why where it is not in the fused plan (Plan.placement). */
  placement(): StepPlacement[] {
    const e = this.getEngine();
    const where = e.name === "reference" ? "the TypeScript reference engine" : e.name === "cuda" ? "the CUDA kernel" : "the native engine";
    return this.plan.placement().map((p) => (p.fused ? { step: p.step, runs: `fused: ${where}` } : { step: p.step, runs: "step by step: the TypeScript reference", why: p.why! }));
  }

  /** Forgets the statistics gathered so far. */
  resetStats(): void {
    this.record.reset();
  }

  /** "N samples", or for a stream "N shards (stream)". */
  private sizeText(): string {
    if (!this.stream) return `${this.dataset.length} samples`;
    const n = this.stream.dataset.urls.length;
    return `${n} shard${n === 1 ? "" : "s"} (stream, ${this.stream.shards.length} on rank ${this.stream.shards.rank} of ${this.stream.shards.worldSize}${Number.isFinite(this.dataset.length) ? `, ${this.dataset.length} samples` : ""})`;
  }

  toString(): string {
    return `DataLoader(${this.sizeText()}, batchSize=${this.batchSize}, ${Number.isNaN(this.length) ? "unknown" : this.length} batches/epoch, seed=${this.seed}, engine=${this.getEngine().name})\n  transform: ${this.plan.transform.toString().replace(/\n/g, "\n  ")}`;
  }

  [DISPLAY](): MimeData {
    const engine = this.getEngine();
    const rows: [string, string][] = [
      ["dataset", `${this.sizeText()}${this.dataset.shape ? `, ${this.dataset.shape.join(" x ")} (H x W x C)` : ""}`],
      ["batches per epoch", `${Number.isNaN(this.length) ? "unknown (a stream)" : this.length} of ${this.batchSize}${this.dropLast ? " (last partial batch dropped)" : ""}`],
      ["sampler", String(this.batchSampler)],
      ["transform", this.plan.transform.toString().replace(/\s*\n\s*/g, " ")],
      ["engine", `${engine.name} (${engine.reason}), ${this.numThreads} threads, prefetch ${this.prefetch}`],
      ...(this.plan.fused ? [] : this.placement().map((p): [string, string] => [`step ${p.step}`, p.why ? `${p.runs} (${p.why})` : p.runs])),
      ["device", this.device + (this.pinMemory ? ", pinned host memory" : "")],
      ["epoch", String(this.epoch)],
    ];
    return summaryBundle("batchlab-loader", "DataLoader", this.toString(), rows).data;
  }
}
