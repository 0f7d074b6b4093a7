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
  /** The indices of one epoch, in order, as one array. */
  indices(epoch: number): Int32Array;
  /** The same indices on demand (the built-in samplers; a sampler without it is read through indices()). */
  order?(epoch: number): EpochOrder;
  setEpoch(epoch: number): void;
}

/**
 * One epoch's indices, computed on demand: the built-in samplers answer any position in O(1)
 * memory (a shuffle is a keyed bijection, a draw with replacement a counter-based stream), so the
 * first batch of a data set of any size comes at once and a resumed epoch is exact.
 */
export interface EpochOrder {
  /** Indices in the epoch. */
  readonly length: number;
  /** The indices at positions [start, start + out.length), written into out (and returned). */
  fill(start: number, out: Int32Array): Int32Array;
}

/** One epoch cut into batches: batch b is positions [start(b), start(b + 1)) of `order`. */
export interface EpochBatches {
  /** Batches in the epoch. */
  readonly count: number;
  readonly order: EpochOrder;
  /** Where batch b starts in `order` (b = count gives order.length). */
  start(b: number): number;
}

/** Groups a sampler's indices into batches. */
export interface BatchSamplerLike extends Iterable<Int32Array> {
  readonly sampler: Sampler;
  readonly batchSize: number;
  readonly dropLast: boolean;
  /** Number of batches per epoch. */
  readonly length: number;
  batches(epoch: number): Int32Array[];
  /** The same batches on demand (BatchSampler; one without it is read through batches()). */
  epochBatches?(epoch: number): EpochBatches;
}
