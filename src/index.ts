/**
 * batchlab: load a data set, sample it, augment it on the CPU or with CUDA, time every stage,
 * and look at the result. Stages follow the data: data -> sampling -> transforms -> engines ->
 * loader -> device -> memory -> viz, with display, errors and options at the bottom; a later
 * stage may import an earlier one, never the reverse.
 */
export * as datasets from "./data/index";
export * as samplers from "./sampling/index";
export * as transforms from "./transforms/index";
export * as T from "./transforms/index";
export { DataLoader } from "./loader/index";
export type { Batch, LoaderOptions, LoaderStats } from "./loader/index";
export * as engines from "./engines/index";
export * as cuda from "./device/index";
export * as memory from "./memory/index";
export * as viz from "./viz/index";
export * from "./viz/index";
export * from "./errors";
export type { Image, Sample, Dataset } from "./data/types";
export { RandomStream, Purpose } from "./sampling/rng";
