/**
 * Samplers: which dataset indices, in which order, for epoch e. Every answer is a pure function
 * of (seed, epoch), drawn from the counter-based generator (rng.ts), so any epoch can be
 * recomputed and any batch resumed. Semantics follow torch.utils.data where PyTorch has the
 * same sampler.
 */
import { OptionError } from "../errors";
import * as v from "../validate";
import { Purpose, RandomStream, checkSeed, permutation, randomSeed } from "./rng";
import type { BatchSamplerLike, Sampler } from "./types";

const DISPLAY = Symbol.for("Jupyter.display");

abstract class BaseSampler implements Sampler {
  abstract readonly length: number;
  private current = 0;
  get epoch(): number {
    return this.current;
  }
  abstract indices(epoch: number): Int32Array;
  setEpoch(epoch: number): void {
    this.current = v.int("setEpoch(epoch)", epoch, 0);
  }
  [Symbol.iterator](): Iterator<number> {
    return this.indices(this.current)[Symbol.iterator]();
  }
  protected abstract describe(): string;
  toString(): string {
    return `${this.constructor.name}(${this.describe()}), ${this.length} indices per epoch`;
  }
  [DISPLAY](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

function epochOf(option: string, e: unknown): number {
  return v.int(option, e, 0, 0xffffffff);
}

function seedOf(option: string, seed: unknown, fallback: () => number): number {
  return seed === undefined ? fallback() : checkSeed(option, seed);
}

/** 0, 1, ..., n-1 every epoch. */
export class SequentialSampler extends BaseSampler {
  readonly length: number;
  constructor(n: number) {
    super();
    this.length = v.int("SequentialSampler(n)", n, 0);
  }
  indices(epoch = 0): Int32Array {
    epochOf("indices(epoch)", epoch);
    return Int32Array.from({ length: this.length }, (_, i) => i);
  }
  protected describe(): string {
    return `n=${this.length}`;
  }
}

/** A random order each epoch; with replacement, numSamples independent uniform draws. */
export class RandomSampler extends BaseSampler {
  readonly n: number;
  readonly seed: number;
  readonly replacement: boolean;
  readonly length: number;
  constructor(n: number, options: { seed?: number; replacement?: boolean; numSamples?: number } = {}) {
    super();
    v.knownKeys("RandomSampler options", options, ["seed", "replacement", "numSamples"]);
    this.n = v.int("RandomSampler(n)", n, 0);
    this.seed = seedOf("RandomSampler.seed", options.seed, randomSeed);
    this.replacement = options.replacement === undefined ? false : v.bool("RandomSampler.replacement", options.replacement);
    this.length = options.numSamples === undefined ? this.n : v.int("RandomSampler.numSamples", options.numSamples, 1);
    if (this.n === 0 && this.length > 0) throw new OptionError("RandomSampler(n)", n, "at least 1 when numSamples > 0");
  }
  indices(epoch = 0): Int32Array {
    epochOf("indices(epoch)", epoch);
    const out = new Int32Array(this.length);
    if (this.replacement) {
      const rng = new RandomStream(this.seed, epoch, 0, Purpose.sampler);
      for (let i = 0; i < this.length; i++) out[i] = rng.int(this.n);
      return out;
    }
    // Without replacement, numSamples > n concatenates fresh permutations (as PyTorch does).
    for (let k = 0, round = 0; k < this.length; round++) {
      const p = permutation(this.n, this.seed, epoch, round);
      const take = Math.min(this.n, this.length - k);
      out.set(p.subarray(0, take), k);
      k += take;
    }
    return out;
  }
  protected describe(): string {
    return `n=${this.n}, seed=${this.seed}${this.replacement ? ", with replacement" : ""}`;
  }
}

function indexList(option: string, x: unknown): Int32Array {
  const arr = ArrayBuffer.isView(x) || Array.isArray(x) ? Array.from(x as ArrayLike<number>) : undefined;
  if (!arr) throw new OptionError(option, x, "an array of non-negative integer indices");
  arr.forEach((i, k) => {
    if (!Number.isInteger(i) || i < 0) throw new OptionError(`${option}[${k}]`, i, "a non-negative integer index");
  });
  return Int32Array.from(arr);
}

/** The given indices in a random order each epoch. */
export class SubsetRandomSampler extends BaseSampler {
  readonly subset: Int32Array;
  readonly seed: number;
  constructor(indices: ArrayLike<number>, options: { seed?: number } = {}) {
    super();
    v.knownKeys("SubsetRandomSampler options", options, ["seed"]);
    this.subset = indexList("SubsetRandomSampler(indices)", indices);
    this.seed = seedOf("SubsetRandomSampler.seed", options.seed, randomSeed);
  }
  get length(): number {
    return this.subset.length;
  }
  indices(epoch = 0): Int32Array {
    epochOf("indices(epoch)", epoch);
    const p = permutation(this.subset.length, this.seed, epoch);
    return Int32Array.from(p, (k) => this.subset[k]!);
  }
  protected describe(): string {
    return `${this.subset.length} indices, seed=${this.seed}`;
  }
}

function weightList(option: string, x: unknown): Float64Array {
  const arr = ArrayBuffer.isView(x) || Array.isArray(x) ? Float64Array.from(x as ArrayLike<number>) : undefined;
  if (!arr || arr.length === 0) throw new OptionError(option, x, "a non-empty array of non-negative weights");
  let total = 0;
  arr.forEach((w, k) => {
    if (!Number.isFinite(w) || w < 0) throw new OptionError(`${option}[${k}]`, w, "a finite, non-negative weight");
    total += w;
  });
  if (total <= 0) throw new OptionError(option, `all ${arr.length} weights are 0`, "at least one positive weight");
  return arr;
}

/** Index i with probability weights[i] / sum(weights). */
export class WeightedRandomSampler extends BaseSampler {
  readonly weights: Float64Array;
  readonly length: number;
  readonly replacement: boolean;
  readonly seed: number;
  private readonly cumulative: Float64Array;
  constructor(weights: ArrayLike<number>, numSamples: number, options: { replacement?: boolean; seed?: number } = {}) {
    super();
    v.knownKeys("WeightedRandomSampler options", options, ["replacement", "seed"]);
    this.weights = weightList("WeightedRandomSampler(weights)", weights);
    this.length = v.int("WeightedRandomSampler(numSamples)", numSamples, 1);
    this.replacement = options.replacement === undefined ? true : v.bool("WeightedRandomSampler.replacement", options.replacement);
    this.seed = seedOf("WeightedRandomSampler.seed", options.seed, randomSeed);
    const positive = this.weights.reduce((k, w) => k + (w > 0 ? 1 : 0), 0);
    if (!this.replacement && this.length > positive) {
      throw new OptionError("WeightedRandomSampler(numSamples)", numSamples, `at most ${positive} (the number of positive weights) without replacement`);
    }
    this.cumulative = new Float64Array(this.weights.length);
    let acc = 0;
    this.weights.forEach((w, i) => (this.cumulative[i] = acc += w));
  }
  indices(epoch = 0): Int32Array {
    epochOf("indices(epoch)", epoch);
    const rng = new RandomStream(this.seed, epoch, 0, Purpose.sampler);
    const out = new Int32Array(this.length);
    if (this.replacement) {
      const total = this.cumulative[this.cumulative.length - 1]!;
      for (let k = 0; k < this.length; k++) {
        const u = rng.random() * total;
        // first i with cumulative[i] > u (binary search)
        let lo = 0;
        let hi = this.cumulative.length - 1;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (this.cumulative[mid]! > u) hi = mid;
          else lo = mid + 1;
        }
        out[k] = lo;
      }
      return out;
    }
    // Without replacement: Efraimidis-Spirakis keys u^(1/w); the largest keys win.
    const keys: { i: number; key: number }[] = [];
    this.weights.forEach((w, i) => {
      if (w > 0) keys.push({ i, key: Math.log(rng.random() || Number.MIN_VALUE) / w });
    });
    keys.sort((a, b) => b.key - a.key);
    for (let k = 0; k < this.length; k++) out[k] = keys[k]!.i;
    return out;
  }
  protected describe(): string {
    return `${this.weights.length} weights, ${this.replacement ? "with" : "without"} replacement, seed=${this.seed}`;
  }
}

/** Every class equally likely: weights 1 / count(class), drawn with replacement. */
export class ClassBalancedSampler extends WeightedRandomSampler {
  readonly classCounts: Map<number, number>;
  constructor(labels: ArrayLike<number>, options: { seed?: number; numSamples?: number } = {}) {
    v.knownKeys("ClassBalancedSampler options", options, ["seed", "numSamples"]);
    const ls = ArrayBuffer.isView(labels) || Array.isArray(labels) ? Array.from(labels as ArrayLike<number>) : undefined;
    if (!ls || ls.length === 0) throw new OptionError("ClassBalancedSampler(labels)", labels, "a non-empty array of integer labels");
    const counts = new Map<number, number>();
    ls.forEach((l, k) => {
      if (!Number.isInteger(l)) throw new OptionError(`ClassBalancedSampler(labels)[${k}]`, l, "an integer label");
      counts.set(l, (counts.get(l) ?? 0) + 1);
    });
    super(
      ls.map((l) => 1 / counts.get(l)!),
      options.numSamples === undefined ? ls.length : v.int("ClassBalancedSampler.numSamples", options.numSamples, 1),
      { replacement: true, seed: options.seed },
    );
    this.classCounts = counts;
  }
  protected override describe(): string {
    return `${this.weights.length} labels in ${this.classCounts.size} classes, seed=${this.seed}`;
  }
}

export interface DistributedEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  source: "torchrun" | "slurm" | "openmpi" | "mpich/intel" | "none";
}

const LAUNCHERS: { source: DistributedEnv["source"]; rank: string; size: string; local?: string }[] = [
  { source: "torchrun", rank: "RANK", size: "WORLD_SIZE", local: "LOCAL_RANK" },
  { source: "openmpi", rank: "OMPI_COMM_WORLD_RANK", size: "OMPI_COMM_WORLD_SIZE", local: "OMPI_COMM_WORLD_LOCAL_RANK" },
  { source: "mpich/intel", rank: "PMI_RANK", size: "PMI_SIZE", local: "MPI_LOCALRANKID" },
  { source: "slurm", rank: "SLURM_PROCID", size: "SLURM_NTASKS", local: "SLURM_LOCALID" },
];

/** Rank and world size as the common launchers set them (torchrun, Open MPI, MPICH/Intel MPI, Slurm). */
export function distributedEnv(env: Record<string, string | undefined> = process.env): DistributedEnv {
  for (const l of LAUNCHERS) {
    const r = env[l.rank];
    const s = env[l.size];
    if (r === undefined || s === undefined) continue;
    const num = (name: string, x: string | undefined, min: number): number => {
      const n = Number(x);
      if (x === undefined || x.trim() === "" || !Number.isInteger(n) || n < min) throw new OptionError(`environment variable ${name}`, x, `an integer >= ${min} (set by ${l.source})`);
      return n;
    };
    const rank = num(l.rank, r, 0);
    const worldSize = num(l.size, s, 1);
    if (rank >= worldSize) throw new OptionError(`environment variable ${l.rank}`, r, `less than ${l.size}=${worldSize}`);
    const localRank = l.local && env[l.local] !== undefined ? num(l.local, env[l.local], 0) : 0;
    return { rank, worldSize, localRank, source: l.source };
  }
  return { rank: 0, worldSize: 1, localRank: 0, source: "none" };
}

/**
 * This rank's share of each epoch, as torch.utils.data.DistributedSampler: every rank shuffles
 * with (seed, epoch) and so agrees on one permutation, pads it by repeating its start (or drops
 * the tail with dropLast) to a multiple of worldSize, and takes positions rank, rank+worldSize, ...
 */
export class DistributedSampler extends BaseSampler {
  readonly n: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Where rank and worldSize came from: "options" or a launcher's environment. */
  readonly source: string;
  readonly length: number;
  readonly totalSize: number;
  constructor(n: number, options: { rank?: number; worldSize?: number; shuffle?: boolean; seed?: number; dropLast?: boolean; env?: Record<string, string | undefined> } = {}) {
    super();
    v.knownKeys("DistributedSampler options", options, ["rank", "worldSize", "shuffle", "seed", "dropLast", "env"]);
    this.n = v.int("DistributedSampler(n)", n, 0);
    const fromEnv = options.rank === undefined || options.worldSize === undefined ? distributedEnv(options.env ?? process.env) : undefined;
    this.worldSize = options.worldSize === undefined ? fromEnv!.worldSize : v.int("DistributedSampler.worldSize", options.worldSize, 1);
    this.rank = options.rank === undefined ? fromEnv!.rank : v.int("DistributedSampler.rank", options.rank, 0);
    this.source = options.rank !== undefined && options.worldSize !== undefined ? "options" : fromEnv!.source === "none" ? "default (no launcher environment)" : `${fromEnv!.source} environment`;
    if (this.rank >= this.worldSize) {
      throw new OptionError(options.rank !== undefined ? "DistributedSampler.rank" : `rank from ${this.source}`, this.rank, `an integer in [0, ${this.worldSize - 1}] (worldSize ${this.worldSize})`);
    }
    this.shuffle = options.shuffle === undefined ? true : v.bool("DistributedSampler.shuffle", options.shuffle);
    this.seed = options.seed === undefined ? 0 : checkSeed("DistributedSampler.seed", options.seed);
    this.dropLast = options.dropLast === undefined ? false : v.bool("DistributedSampler.dropLast", options.dropLast);
    this.length = this.dropLast && this.n % this.worldSize !== 0 ? Math.ceil((this.n - this.worldSize) / this.worldSize) : Math.ceil(this.n / this.worldSize);
    this.totalSize = this.length * this.worldSize;
  }
  /** The whole epoch before the split (all ranks compute the same list). */
  globalIndices(epoch = 0): Int32Array {
    epochOf("indices(epoch)", epoch);
    const base = this.shuffle ? permutation(this.n, this.seed, epoch) : Int32Array.from({ length: this.n }, (_, i) => i);
    const out = new Int32Array(this.totalSize);
    if (this.totalSize <= this.n) out.set(base.subarray(0, this.totalSize));
    else for (let k = 0; k < this.totalSize; k++) out[k] = base[k % this.n]!;
    return out;
  }
  indices(epoch = 0): Int32Array {
    const all = this.globalIndices(epoch);
    const out = new Int32Array(this.length);
    for (let k = 0; k < this.length; k++) out[k] = all[this.rank + k * this.worldSize]!;
    return out;
  }
  protected describe(): string {
    return `n=${this.n}, rank ${this.rank} of ${this.worldSize} (${this.source}), shuffle=${this.shuffle}, seed=${this.seed}${this.dropLast ? ", dropLast" : ""}`;
  }
}

/** Groups a sampler's indices into batches; the last short batch is kept unless dropLast. */
export class BatchSampler implements BatchSamplerLike {
  readonly sampler: Sampler;
  readonly batchSize: number;
  readonly dropLast: boolean;
  constructor(sampler: Sampler, batchSize: number, dropLast = false) {
    if (!sampler || typeof (sampler as Sampler).indices !== "function") throw new OptionError("BatchSampler(sampler)", sampler, "a sampler (samplers.*)");
    this.sampler = sampler;
    this.batchSize = v.int("BatchSampler(batchSize)", batchSize, 1);
    this.dropLast = v.bool("BatchSampler(dropLast)", dropLast);
  }
  get length(): number {
    const n = this.sampler.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }
  batches(epoch = 0): Int32Array[] {
    const all = this.sampler.indices(epoch);
    const out: Int32Array[] = [];
    for (let k = 0; k < all.length; k += this.batchSize) {
      const b = all.subarray(k, Math.min(k + this.batchSize, all.length));
      if (b.length < this.batchSize && this.dropLast) break;
      out.push(b.slice());
    }
    return out;
  }
  [Symbol.iterator](): Iterator<Int32Array> {
    return this.batches(this.sampler.epoch)[Symbol.iterator]();
  }
  toString(): string {
    return `BatchSampler(batchSize=${this.batchSize}, dropLast=${this.dropLast}, ${this.length} batches) over ${this.sampler}`;
  }
  [DISPLAY](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}
