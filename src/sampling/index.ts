/** The sampling stage: counter-based randomness and the samplers built on it. */
export {
  SequentialSampler,
  RandomSampler,
  SubsetRandomSampler,
  WeightedRandomSampler,
  ClassBalancedSampler,
  DistributedSampler,
  BatchSampler,
  distributedEnv,
} from "./samplers";
export type {
  DistributedEnv,
  RandomSamplerOptions,
  WeightedRandomSamplerOptions,
  ClassBalancedSamplerOptions,
  DistributedSamplerOptions,
} from "./samplers";
export type { Sampler, BatchSamplerLike } from "./types";
export { RandomStream, Purpose, permutation, philox4x32, randomSeed, checkSeed } from "./rng";
