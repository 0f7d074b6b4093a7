/**
 * The DataLoader's options, declared once: this declaration is both the TypeScript type of the
 * options argument (LoaderOptions) and its runtime check (LOADER_OPTIONS.parse). Checks that
 * relate two options (a sampler excludes shuffle, ...) are in the DataLoader constructor.
 */
import * as os from "node:os";
import { OptionError } from "../errors";
import { declareOptions, optional, withDefault, type OptionsOf } from "../options";
import * as v from "../options";
import { checkSeed, randomSeed } from "../sampling/rng";
import type { BatchSamplerLike, Sampler } from "../sampling/types";
import { Transform, type BatchTransform } from "../transforms/index";
import type { Backend } from "../engines/index";
import type { Batch } from "./types";

function cores(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

export function isSampler(x: unknown): x is Sampler {
  return typeof x === "object" && x !== null && typeof (x as Sampler).indices === "function" && typeof (x as Sampler).length === "number";
}

export const LOADER_OPTIONS = declareOptions("DataLoader", {
  /** Samples per batch (default 1, as PyTorch). */
  batchSize: optional<number>((o, x) => v.int(o, x, 1)),
  /** Reshuffle every epoch with a RandomSampler (default false). */
  shuffle: withDefault<boolean>(v.bool, false),
  /** Where indices come from; excludes shuffle and batchSampler. */
  sampler: optional<Sampler>((o, x) => {
    if (!isSampler(x)) throw new OptionError(o, x, "a sampler (samplers.*) with length and indices(epoch)");
    return x;
  }),
  /** Whole batches of indices; excludes batchSize, shuffle, sampler and dropLast. */
  batchSampler: optional<BatchSamplerLike>((o, x) => {
    if (typeof x !== "object" || x === null || typeof (x as BatchSamplerLike).batches !== "function") throw new OptionError(o, x, "a BatchSampler (samplers.BatchSampler)");
    return x as BatchSamplerLike;
  }),
  /** Drop the last batch when it is short (default false). */
  dropLast: optional<boolean>(v.bool),
  /** Seed of every random draw: order and augmentation (default: random, see stats().seed). */
  seed: withDefault<number>(checkSeed, randomSeed),
  /** The transform chain (a compose of T.* transforms). */
  transform: optional<Transform>((o, x) => {
    if (!(x instanceof Transform)) throw new OptionError(o, x, "a transform made by T.* (e.g. T.compose([...]))");
    return x;
  }),
  /** Batches in flight ahead of the consumer (default 2; 0 loads on demand). */
  prefetch: withDefault<number>((o, x) => v.int(o, x, 0, 64), 2),
  /** Native pool threads one batch may use (default: the machine's cores). */
  numThreads: withDefault<number>((o, x) => v.int(o, x, 1, 1024), cores),
  /** "auto" (native when built, else reference), "native" or "reference". */
  backend: optional<Backend>((o, x) => v.oneOf(o, x, ["auto", "native", "reference"] as const)),
  /** Bad samples: "raise" (default) stops with the index and file; "skip" drops and counts them. */
  onError: withDefault<"raise" | "skip">((o, x) => v.oneOf(o, x, ["raise", "skip"] as const), "raise"),
  /** Milliseconds one batch may take before it fails with TimeoutError (0: no limit). */
  timeout: withDefault<number>((o, x) => v.num(o, x, 0), 0),
  /** A function (batch) => anything: what the loader yields instead of the Batch. */
  collate: optional<(batch: Batch) => unknown>((o, x) => {
    if (typeof x !== "function") throw new OptionError(o, x, "a function (batch) => anything");
    return x as (batch: Batch) => unknown;
  }),
  /** A batch-level augmentation (T.mixup, T.cutmix) run after the plan; fills batch.targets. */
  batchTransform: optional<BatchTransform>((o, x) => {
    if (typeof x !== "object" || x === null || typeof (x as BatchTransform).apply !== "function") throw new OptionError(o, x, "a batch transform made by T.mixup or T.cutmix");
    return x as BatchTransform;
  }),
  /** Batch buffers in pinned (page-locked) host memory, for fast asynchronous copies (needs CUDA). */
  pinMemory: withDefault<boolean>(v.bool, false),
  /** "cpu" (default) or "cuda": the uint8 batch crosses to the GPU and the plan runs there as one kernel. */
  device: withDefault<"cpu" | "cuda">((o, x) => v.oneOf(o, x, ["cpu", "cuda"] as const), "cpu"),
});

/** The options of `new DataLoader(dataset, options)`; `collate` decides what each batch becomes. */
export type LoaderOptions<T = Batch> = Omit<OptionsOf<(typeof LOADER_OPTIONS)["spec"]>, "collate"> & {
  /** Turns each batch into whatever the training loop wants. */
  collate?: (batch: Batch) => T;
};
