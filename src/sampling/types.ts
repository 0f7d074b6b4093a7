/**
 * A sampler answers "which dataset indices, in which order, for epoch e". Answers are pure
 * functions of (seed, epoch): no hidden state advances between epochs, so a loader can
 * recompute any epoch and resume from any batch.
 */
export interface Sampler extends Iterable<number> {
  /** Number of indices per epoch. */
  readonly length: number;
  /** The epoch `[Symbol.iterator]()` uses; set by setEpoch. */
  readonly epoch: number;
  /** For a DistributedSampler: this process's rank (mixed into augmentation streams). */
  readonly rank?: number;
  /** The indices of one epoch, in order. */
  indices(epoch: number): Int32Array;
  setEpoch(epoch: number): void;
}

/** Groups a sampler's indices into batches. */
export interface BatchSamplerLike extends Iterable<Int32Array> {
  readonly sampler: Sampler;
  readonly batchSize: number;
  readonly dropLast: boolean;
  /** Number of batches per epoch. */
  readonly length: number;
  batches(epoch: number): Int32Array[];
}
