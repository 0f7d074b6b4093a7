/** What a loader measured: one timeline entry per batch, and the samples it skipped. */
import type { EngineName } from "../engines/index";
import type { BatchTiming, LoaderStats, SkippedSample, StageTimings } from "./types";

export class StatsRecorder {
  private samples = 0;
  private readonly perBatch: BatchTiming[] = [];
  private readonly skipped: SkippedSample[] = [];

  /** One batch's timing (size 0: only skipped samples) and the samples it skipped. */
  note(t: BatchTiming, skipped: readonly SkippedSample[]): void {
    this.perBatch.push(t);
    this.samples += t.size;
    for (const s of skipped) this.skipped.push(s);
  }

  reset(): void {
    this.perBatch.length = 0;
    this.skipped.length = 0;
    this.samples = 0;
  }

  summary(backend: EngineName, backendReason: string, seed: number): LoaderStats {
    const stages: StageTimings = { sample: 0, fetch: 0, transform: 0, collate: 0 };
    let first = Infinity;
    let last = -Infinity;
    for (const b of this.perBatch) {
      stages.sample += b.sample;
      stages.fetch += b.fetch;
      stages.transform += b.transform;
      stages.collate += b.collate;
      if (b.start < first) first = b.start;
      if (b.end > last) last = b.end;
    }
    const wall = this.perBatch.length ? last - first : 0;
    return {
      backend,
      backendReason,
      seed,
      batches: this.perBatch.length,
      samples: this.samples,
      wallMs: wall,
      samplesPerSecond: wall > 0 ? (this.samples / wall) * 1000 : 0,
      stages,
      perBatch: this.perBatch.slice(),
      skipped: this.skipped.slice(),
    };
  }
}
