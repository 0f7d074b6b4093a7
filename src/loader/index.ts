/** The loader stage: DataLoader, batches, statistics, and the engine that runs plans. */
export { DataLoader, summarizeBatch } from "./loader";
export type { LoaderOptions } from "./loader";
export type { Batch, BatchTiming, LoaderStats, SkippedSample, StageTimings } from "./types";
export { engineReport } from "./engine";
