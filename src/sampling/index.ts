/** The sampling stage: counter-based randomness and the samplers built on it. */
export {
  SequentialSampler,
  RandomSampler,
  SubsetRandomSampler,
  WeightedRandomSampler,
  ClassBalancedSampler,
  DistributedSampler,
  BatchSampler,
  orderOf,
  batchesOf,
  distributedEnv,
} from "./samplers";
export type {
  DistributedEnv,
  RandomSamplerOptions,
  WeightedRandomSamplerOptions,
  ClassBalancedSamplerOptions,
  DistributedSamplerOptions,
} from "./samplers";
export { ShardSampler, ShuffleBuffer } from "./shards";
export type { ShardSamplerOptions } from "./shards";
export type { Sampler, BatchSamplerLike, EpochOrder, EpochBatches } from "./types";
export { RandomStream, Purpose, Shuffle, permutation, philox4x32, randomSeed, checkSeed } from "./rng";
