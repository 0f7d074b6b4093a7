/** The loader stage: DataLoader, its options, one epoch's run, fetching, batches and statistics. */
export { DataLoader } from "./loader";
export type { LoaderOptions } from "./options";
export { summarizeBatch } from "./batch";
export type { Batch, BatchTiming, LoaderStats, SkippedSample, StageTimings } from "./types";
