/** What a loader yields and reports. */

/** Milliseconds spent in each stage of one batch. */
export interface StageTimings {
  /** Drawing indices and random parameters. */
  sample: number;
  /** Reading and decoding samples. */
  fetch: number;
  /** Running the transform plan. */
  transform: number;
  /** Assembling the batch object (labels, views). */
  collate: number;
  /** Host-to-device copy (CUDA only). */
  copy?: number;
  /** Device kernel (CUDA only). */
  kernel?: number;
}

export interface Batch {
  /** float32 pixels, N x C x H x W (for a device batch: throws, use `await batch.device.toHost()`). */
  readonly images: Float32Array;
  /** With `device: "cuda"`: the batch in device memory. */
  readonly device?: { readonly shape: readonly [number, number, number, number]; toHost(): Promise<Float32Array>; free(): void };
  readonly shape: readonly [number, number, number, number];
  readonly labels: Int32Array;
  /** Dataset index of each sample, in order. */
  readonly indices: Int32Array;
  readonly epoch: number;
  /** Position of this batch in its epoch. */
  readonly batchIndex: number;
  readonly timings: StageTimings;
  /** Random parameters each transform drew for each sample (for views and debugging). */
  readonly params?: readonly unknown[];
  /** Soft targets (n x numClasses) when a batch transform (mixup, cutmix) mixed the samples. */
  readonly targets?: Float32Array;
  /** Class names, when the dataset knows them. */
  readonly classNames?: readonly string[];
  /** Hands the batch to TensorFlow.js: { xs: tf.Tensor4D (NCHW or NHWC), ys: tf.Tensor1D }. */
  toTensor(tf: unknown, options?: { layout?: "NCHW" | "NHWC" }): { xs: unknown; ys: unknown };
  /**
   * Gives the pixel buffer back to the loader for a later batch, at once (as a TensorFlow.js
   * tensor's dispose). Afterwards `images` throws and every view of it reads as empty (the
   * buffer is detached, so no stale view can see a later batch). Without it, the garbage
   * collector reclaims the buffer some time after the batch is unreachable. A CUDA batch frees
   * its device memory. Idempotent.
   */
  dispose(): void;
  /** True once dispose() was called. */
  readonly disposed: boolean;
}

/** One batch's timeline entry, relative to the start of iteration (ms). */
export interface BatchTiming extends StageTimings {
  batch: number;
  epoch: number;
  start: number;
  end: number;
  size: number;
}

export interface SkippedSample {
  index: number;
  path?: string;
  reason: string;
}

export interface LoaderStats {
  backend: "native" | "reference" | "cuda";
  /** Why this backend was chosen (e.g. the addon failed to load). */
  backendReason: string;
  seed: number;
  /** Batches and samples over the whole run (since the last resetStats()). */
  batches: number;
  samples: number;
  /** Wall time from the first request to the last batch delivered (ms). */
  wallMs: number;
  samplesPerSecond: number;
  /** Total ms per stage over all batches. */
  stages: StageTimings;
  /** The most recent batches' timelines, at most STATS_WINDOW (4096) of them, oldest first. */
  perBatch: BatchTiming[];
  /** The most recent skipped samples, at most STATS_WINDOW; `skippedCount` counts them all. */
  skipped: SkippedSample[];
  skippedCount: number;
  /** Where each top-level transform step runs (fused in one engine call, or step by step) and why. */
  steps: StepPlacement[];
}

export interface StepPlacement {
  step: string;
  runs: string;
  /** Why a step is not in the fused plan. */
  why?: string;
}
