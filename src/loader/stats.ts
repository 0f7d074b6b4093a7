/**
 * What a loader measured: running totals over the whole run, and a bounded window of the most
 * recent batches' timelines and skipped samples (a run of millions of batches keeps constant
 * memory, and nothing here spreads a long array into a call).
 */
import type { EngineName } from "../engines/index";
import type { BatchTiming, LoaderStats, SkippedSample, StageTimings } from "./types";

/** How many recent batches (and skipped samples) stats() lists. */
export const STATS_WINDOW = 4096;

/** A ring of the last `cap` items. */
class Recent<T> {
  private readonly items: T[] = [];
  private next = 0;
  constructor(private readonly cap: number) {}
  push(x: T): void {
    if (this.items.length < this.cap) this.items.push(x);
    else this.items[this.next] = x;
    this.next = (this.next + 1) % this.cap;
  }
  /** Oldest first. */
  list(): T[] {
    return this.items.length < this.cap ? this.items.slice() : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
  clear(): void {
    this.items.length = 0;
    this.next = 0;
  }
}

export class StatsRecorder {
  private samples = 0;
  private batches = 0;
  private skippedCount = 0;
  private first = Infinity;
  private last = -Infinity;
  private readonly stages: StageTimings = { sample: 0, fetch: 0, transform: 0, collate: 0 };
  private readonly perBatch = new Recent<BatchTiming>(STATS_WINDOW);
  private readonly skipped = new Recent<SkippedSample>(STATS_WINDOW);

  /** One batch's timing (size 0: only skipped samples) and the samples it skipped. */
  note(t: BatchTiming, skipped: readonly SkippedSample[]): void {
    this.perBatch.push(t);
    this.batches++;
    this.samples += t.size;
    this.stages.sample += t.sample;
    this.stages.fetch += t.fetch;
    this.stages.transform += t.transform;
    this.stages.collate += t.collate;
    if (t.start < this.first) this.first = t.start;
    if (t.end > this.last) this.last = t.end;
    for (const s of skipped) this.skipped.push(s);
    this.skippedCount += skipped.length;
  }

  reset(): void {
    this.perBatch.clear();
    this.skipped.clear();
    this.samples = 0;
    this.batches = 0;
    this.skippedCount = 0;
    this.first = Infinity;
    this.last = -Infinity;
    this.stages.sample = this.stages.fetch = this.stages.transform = this.stages.collate = 0;
  }

  summary(backend: EngineName, backendReason: string, seed: number): Omit<LoaderStats, "steps"> {
    const wall = this.batches ? this.last - this.first : 0;
    return {
      backend,
      backendReason,
      seed,
      batches: this.batches,
      samples: this.samples,
      wallMs: wall,
      samplesPerSecond: wall > 0 ? (this.samples / wall) * 1000 : 0,
      stages: { ...this.stages },
      perBatch: this.perBatch.list(),
      skipped: this.skipped.list(),
      skippedCount: this.skippedCount,
    };
  }
}
