/**
 * How the loader runs an epoch of a stream data set (datasets.webdataset): there is no index to
 * sample, so the epoch is a feed of samples in order, and the loader cuts it into batches.
 *
 *   ShardSampler.order(epoch)   this rank's shards, from (seed, epoch)
 *   -> dataset.readShard(k)      each shard's samples as its bytes arrive (errors included)
 *   -> dataset.prepare(record)   label and image member found (no decoding yet)
 *   -> ShuffleBuffer             (seed, epoch, rank): the same input gives the same output
 *   -> position 0, 1, 2, ...     a sample's place in this rank's epoch
 *   -> StreamFetcher             decode a batch's images concurrently (sharp, off the JS thread),
 *                                 apply onError; then the usual path: parameters drawn at the
 *                                 position, one engine call, the Batch (epoch.ts)
 *
 * Everything before decoding is deterministic and cheap, so `iterate({ startBatch })` replays the
 * feed (reading, not decoding, the skipped samples) and starts at position startBatch * batchSize:
 * the same batches as the uninterrupted epoch (exact when no decode failed before startBatch, as
 * for other data sets). A sample that fails before it has a position (a corrupt member, a shard
 * cut off) takes no position, so skipping it does not shift later batches in a resumed epoch.
 */
import type { RawRecord, StreamDataset, StreamRecord } from "../data/webdataset";
import type { Image } from "../data/types";
import { pixelsOfImages } from "../engines/index";
import { BatchlabError, FileFormatError, OptionError, SampleError } from "../errors";
import { ShardSampler, ShuffleBuffer } from "../sampling/shards";
import type { BatchSamplerLike, Sampler } from "../sampling/types";
import type { Shape } from "../transforms/index";
import { checkBatchBytes, decodedHere, type Fetched } from "./fetch";
import type { SkippedSample } from "./types";

/** One item of an epoch's feed: a sample at its position, or a sample or shard that failed. */
export type FeedItem = { readonly record: StreamRecord; readonly position: number; readonly error?: undefined } | { readonly record?: undefined; readonly error: FileFormatError };

/** This rank's samples of `epoch`, in order (see the module comment). */
export async function* epochFeed(ds: StreamDataset, shards: ShardSampler, epoch: number, signal?: AbortSignal): AsyncGenerator<FeedItem, void, undefined> {
  const order = shards.indices(epoch);
  const buffer = new ShuffleBuffer<StreamRecord>(ds.shuffle, ds.seed, epoch, shards.rank);
  let position = 0;
  for (const k of order) {
    if (signal?.aborted) return;
    for await (const item of ds.readShard(k, signal)) {
      if (item.error) {
        yield { error: item.error };
        continue;
      }
      let rec: StreamRecord;
      try {
        rec = ds.prepare(item.record as RawRecord);
      } catch (e) {
        yield { error: e instanceof FileFormatError ? e : new FileFormatError(`${item.record.url}#${item.record.key}`, e instanceof Error ? e.message : String(e)) };
        continue;
      }
      const out = buffer.push(rec);
      if (out) yield { record: out.value, position: position++ };
    }
  }
  for (let out = buffer.drain(); out; out = buffer.drain()) yield { record: out.value, position: position++ };
}

export interface StreamRules {
  batchSize: number;
  dropLast: boolean;
  onError: "raise" | "skip";
  outShapeOf(s: Shape): [number, number, number];
}

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Reads an epoch feed batch by batch: the stream data sets' counterpart of Fetcher. */
export class StreamFetcher {
  /** True once the feed has ended. */
  exhausted = false;
  private toSkip: number;
  private readonly feed: AsyncGenerator<FeedItem, void, undefined>;
  private readonly stop = new AbortController();

  constructor(
    private readonly rules: StreamRules,
    makeFeed: (signal: AbortSignal) => AsyncGenerator<FeedItem, void, undefined>,
    /** Positions before the first batch to yield (startBatch * batchSize). */
    skip: number,
  ) {
    this.feed = makeFeed(this.stop.signal);
    this.toSkip = skip;
  }

  /**
   * Stops reading: the open shard's file or connection is closed at once (a fetch in progress
   * ends with what it has, reporting nothing more), then the feed is closed.
   */
  close(): Promise<void> {
    this.exhausted = true;
    this.stop.abort();
    return this.feed.return(undefined).then(
      () => undefined,
      () => undefined,
    );
  }

  /** A sample or shard error that has no position: raised, or listed as skipped. */
  private unplaced(e: FileFormatError, skipped: SkippedSample[]): void {
    if (this.rules.onError === "raise") throw e;
    skipped.push({ index: -1, path: e.path, reason: e.message });
  }

  /** The next feed item, or undefined at the end. */
  private async pull(): Promise<FeedItem | undefined> {
    if (this.exhausted) return undefined;
    const r = await this.feed.next();
    if (r.done || this.stop.signal.aborted) {
      this.exhausted = true;
      return undefined;
    }
    return r.value;
  }

  /** The next `want` samples (fewer at the end, or after skips); null when none is left to yield. */
  async next(want: number): Promise<Fetched | null> {
    const r = this.rules;
    const skipped: SkippedSample[] = [];
    // Resume: replay the feed up to the first position wanted, without decoding.
    while (this.toSkip > 0) {
      const item = await this.pull();
      if (!item) break;
      if (item.error) this.unplaced(item.error, skipped);
      else this.toSkip--;
    }
    const images: Image[] = [];
    const labels: number[] = [];
    const positions: number[] = [];
    let shape: [number, number, number] | undefined;
    while (images.length < want && !this.exhausted) {
      const batch: StreamRecord[] = [];
      const pos: number[] = [];
      while (batch.length < want - images.length) {
        const item = await this.pull();
        if (!item) break;
        if (item.error) {
          this.unplaced(item.error, skipped);
          continue;
        }
        batch.push(item.record);
        pos.push(item.position);
      }
      // Decoding runs concurrently on libuv's pool; results are taken in feed order.
      const got = await Promise.all(batch.map((rec) => rec.decode().then((image) => ({ image }), (error: unknown) => ({ error }))));
      for (let j = 0; j < batch.length; j++) {
        const rec = batch[j]!;
        const g = got[j]!;
        let error: unknown = "error" in g ? g.error : undefined;
        if (!("error" in g)) {
          try {
            const out = r.outShapeOf(g.image);
            checkBatchBytes(out, r.batchSize);
            if (shape && (out[0] !== shape[0] || out[1] !== shape[1] || out[2] !== shape[2])) {
              throw new OptionError("shape after transforms", out, `[${shape.join(", ")}] like the rest of the batch (add resize or centerCrop)`);
            }
            shape = shape ?? out;
            images.push(g.image);
            decodedHere.add(g.image); // decoded here, for this batch only: its memory goes back after the engine call
            labels.push(rec.label);
            positions.push(pos[j]!);
            continue;
          } catch (e) {
            error = e;
          }
        }
        if (r.onError === "raise") throw error instanceof SampleError ? error : new SampleError(pos[j]!, rec.path, error);
        skipped.push({ index: pos[j]!, path: rec.path, reason: reasonOf(error) });
      }
    }
    if (images.length === 0 || (r.dropLast && images.length < r.batchSize)) {
      return skipped.length ? { n: 0, positions: new Int32Array(0), indices: new Int32Array(0), labels: new Int32Array(0), pixels: pixelsOfImages([]), shape: { height: 0, width: 0, channels: 0 }, skipped } : null;
    }
    const at = Int32Array.from(positions);
    return { n: images.length, positions: at, indices: at, labels: Int32Array.from(labels), pixels: pixelsOfImages(images), shape: images[0]!, skipped };
  }
}

/**
 * The batchSampler of a loader over a stream data set: its sampler is the ShardSampler (indices
 * are shard numbers), and its batches are known only by reading the shards, so `batches()`
 * throws. `length` is the batches per epoch when the data set was given its `length`, else NaN.
 */
export class StreamBatches implements BatchSamplerLike {
  constructor(
    readonly sampler: ShardSampler,
    readonly batchSize: number,
    readonly dropLast: boolean,
    private readonly samples: number,
  ) {}
  get length(): number {
    const n = this.samples;
    if (!Number.isFinite(n)) return NaN;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }
  batches(): Int32Array[] {
    throw new OptionError("batchSampler.batches()", undefined, "no call for a stream data set: its batches are known only by reading its shards (iterate the loader)");
  }
  [Symbol.iterator](): Iterator<Int32Array> {
    return this.batches()[Symbol.iterator]();
  }
  toString(): string {
    return `stream batches of ${this.batchSize}${this.dropLast ? " (last partial batch dropped)" : ""} over ${String(this.sampler as Sampler)}`;
  }
}

/** The sampler of a loader over `ds`: its shards, split by rank (the data set's options or the launcher's environment). */
export function shardSamplerOf(ds: StreamDataset): ShardSampler {
  try {
    return new ShardSampler(ds.urls.length, { shuffle: ds.shardShuffle, seed: ds.seed, rank: ds.rank, worldSize: ds.worldSize, dropLast: ds.evenShards, env: ds.env, name: "webdataset" });
  } catch (e) {
    if (e instanceof BatchlabError) throw e;
    throw new OptionError("webdataset", ds.urls, reasonOf(e));
  }
}
