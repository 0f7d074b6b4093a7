/**
 * Samplers: which dataset indices, in which order, for epoch e. Every answer is a pure function
 * of (seed, epoch), drawn from the counter-based generator (rng.ts) with Purpose.sampler, so any
 * epoch can be recomputed and any batch resumed. Semantics follow torch.utils.data where PyTorch
 * has the same sampler.
 */
import { DISPLAY, summaryBundle, type MimeData } from "../display/index";
import { OptionError } from "../errors";
import * as v from "../options";
import { Purpose, RandomStream, checkSeed, permutation, randomSeed } from "./rng";
import type { BatchSamplerLike, Sampler } from "./types";

/** Epochs address the generator's 32-bit counter word. */
const MAX_EPOCH = 0xffffffff;
/** Indices are returned as Int32Array. */
const MAX_INDEX = 0x7fffffff;

function epochOf(option: string, e: unknown): number {
  return v.int(option, e, 0, MAX_EPOCH);
}

function seedOf(option: string, seed: unknown): number {
  return seed === undefined ? randomSeed() : checkSeed(option, seed);
}

function optionsOf<T extends object>(fn: string, o: T | undefined, keys: readonly string[]): T {
  return v.knownKeys<T>(fn, o, keys) as T;
}

/** An Array or a numeric typed array (not a DataView), or undefined. */
function arrayLike(x: unknown): ArrayLike<unknown> | undefined {
  if (Array.isArray(x)) return x;
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return x as unknown as ArrayLike<unknown>;
  return undefined;
}

abstract class BaseSampler implements Sampler {
  abstract readonly length: number;
  private current = 0;
  get epoch(): number {
    return this.current;
  }
  abstract indices(epoch: number): Int32Array;
  setEpoch(epoch: number): void {
    this.current = epochOf(`${this.constructor.name}.setEpoch(epoch)`, epoch);
  }
  [Symbol.iterator](): Iterator<number> {
    return this.indices(this.current)[Symbol.iterator]();
  }
  protected checkEpoch(epoch: unknown): number {
    return epochOf(`${this.constructor.name}.indices(epoch)`, epoch);
  }
  protected abstract describe(): string;
  toString(): string {
    return `${this.constructor.name}(${this.describe()}): ${this.length} indices per epoch, epoch ${this.current}`;
  }
  [DISPLAY](): MimeData {
    const first = Array.from(this.indices(this.current).subarray(0, PREVIEW));
    const rows: [string, string][] = [
      ["options", this.describe()],
      ["indices per epoch", String(this.length)],
      ["epoch", String(this.current)],
      [`first ${first.length} of epoch ${this.current}`, first.join(", ") + (this.length > PREVIEW ? ", ..." : "")],
    ];
    return summaryBundle("batchlab-sampler", this.constructor.name, this.toString(), rows).data;
  }
}

/** How many indices a sampler's notebook view lists. */
const PREVIEW = 16;

/** 0, 1, ..., n-1 every epoch. */
export class SequentialSampler extends BaseSampler {
  readonly length: number;
  constructor(n: number) {
    super();
    this.length = v.int("SequentialSampler(n)", n, 0, MAX_INDEX + 1);
  }
  indices(epoch = 0): Int32Array {
    this.checkEpoch(epoch);
    const out = new Int32Array(this.length);
    for (let i = 0; i < out.length; i++) out[i] = i;
    return out;
  }
  protected describe(): string {
    return `n=${this.length}`;
  }
}

export interface RandomSamplerOptions {
  /** Default: a fresh randomSeed(), recorded as `.seed`. */
  seed?: number;
  /** Independent uniform draws (default false: a permutation). */
  replacement?: boolean;
  /** Indices per epoch (default n). Without replacement and above n: concatenated permutations. */
  numSamples?: number;
}

/** A random order each epoch; with replacement, numSamples independent uniform draws. */
export class RandomSampler extends BaseSampler {
  readonly n: number;
  readonly seed: number;
  readonly replacement: boolean;
  readonly length: number;
  constructor(n: number, options?: RandomSamplerOptions) {
    super();
    const o = optionsOf("RandomSampler", options, ["seed", "replacement", "numSamples"]);
    this.n = v.int("RandomSampler(n)", n, 0, MAX_INDEX + 1);
    this.seed = seedOf("RandomSampler.seed", o.seed);
    this.replacement = o.replacement === undefined ? false : v.bool("RandomSampler.replacement", o.replacement);
    this.length = o.numSamples === undefined ? this.n : v.int("RandomSampler.numSamples", o.numSamples, 1, MAX_INDEX + 1);
    if (this.n === 0 && this.length > 0) throw new OptionError("RandomSampler(n)", n, "at least 1 when numSamples > 0");
  }
  indices(epoch = 0): Int32Array {
    this.checkEpoch(epoch);
    const out = new Int32Array(this.length);
    if (this.replacement) {
      const rng = new RandomStream(this.seed, epoch, 0, Purpose.sampler);
      for (let i = 0; i < out.length; i++) out[i] = rng.int(this.n);
      return out;
    }
    // Round r uses permutation(n, seed, epoch, r): round 0 is exactly permutation(n, seed, epoch).
    for (let k = 0, round = 0; k < out.length; round++) {
      const p = permutation(this.n, this.seed, epoch, round);
      const take = Math.min(this.n, out.length - k);
      out.set(take === this.n ? p : p.subarray(0, take), k);
      k += take;
    }
    return out;
  }
  protected describe(): string {
    const more = this.length !== this.n ? `, numSamples=${this.length}` : "";
    return `n=${this.n}, seed=${this.seed}, ${this.replacement ? "with" : "without"} replacement${more}`;
  }
}

function indexList(option: string, x: unknown): Int32Array {
  const a = arrayLike(x);
  if (!a) throw new OptionError(option, x, "an array of non-negative integer indices");
  const out = new Int32Array(a.length);
  for (let k = 0; k < a.length; k++) {
    const i = a[k];
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i > MAX_INDEX) {
      throw new OptionError(`${option}[${k}]`, i, `a non-negative integer index <= ${MAX_INDEX}`);
    }
    out[k] = i;
  }
  return out;
}

/** The given indices in a random order each epoch. */
export class SubsetRandomSampler extends BaseSampler {
  readonly subset: Int32Array;
  readonly seed: number;
  constructor(indices: ArrayLike<number>, options?: { seed?: number }) {
    super();
    const o = optionsOf("SubsetRandomSampler", options, ["seed"]);
    this.subset = indexList("SubsetRandomSampler(indices)", indices);
    this.seed = seedOf("SubsetRandomSampler.seed", o.seed);
  }
  get length(): number {
    return this.subset.length;
  }
  indices(epoch = 0): Int32Array {
    this.checkEpoch(epoch);
    const p = permutation(this.subset.length, this.seed, epoch);
    for (let k = 0; k < p.length; k++) p[k] = this.subset[p[k]!]!;
    return p;
  }
  protected describe(): string {
    return `${this.subset.length} indices, seed=${this.seed}`;
  }
}

function weightList(option: string, x: unknown): { weights: Float64Array; positive: number } {
  const a = arrayLike(x);
  if (!a || a.length === 0) throw new OptionError(option, x, "a non-empty array of non-negative weights");
  if (a.length > MAX_INDEX + 1) throw new OptionError(option, x, `at most ${MAX_INDEX + 1} weights`);
  const weights = new Float64Array(a.length);
  let total = 0;
  let positive = 0;
  for (let k = 0; k < a.length; k++) {
    const w = a[k];
    if (typeof w !== "number" || !Number.isFinite(w) || w < 0) throw new OptionError(`${option}[${k}]`, w, "a finite, non-negative weight");
    weights[k] = w;
    total += w;
    if (w > 0) positive++;
  }
  if (positive === 0) throw new OptionError(option, x, "at least one positive weight (all are 0)");
  if (!Number.isFinite(total)) throw new OptionError(option, x, "weights whose sum is finite");
  return { weights, positive };
}

export interface WeightedRandomSamplerOptions {
  /** Default true. Without replacement: distinct indices, by Efraimidis-Spirakis keys. */
  replacement?: boolean;
  /** Default: a fresh randomSeed(), recorded as `.seed`. */
  seed?: number;
}

/** Index i with probability weights[i] / sum(weights). */
export class WeightedRandomSampler extends BaseSampler {
  readonly weights: Float64Array;
  readonly length: number;
  readonly replacement: boolean;
  readonly seed: number;
  /** Number of positive weights: the most indices one epoch can hold without replacement. */
  readonly positive: number;
  private readonly cumulative: Float64Array;
  constructor(weights: ArrayLike<number>, numSamples: number, options?: WeightedRandomSamplerOptions) {
    super();
    const name = new.target === WeightedRandomSampler ? "WeightedRandomSampler" : new.target.name;
    const o = optionsOf(name, options, ["replacement", "seed"]);
    const w = weightList(`${name}(weights)`, weights);
    this.weights = w.weights;
    this.positive = w.positive;
    this.length = v.int(`${name}(numSamples)`, numSamples, 1, MAX_INDEX + 1);
    this.replacement = o.replacement === undefined ? true : v.bool(`${name}.replacement`, o.replacement);
    this.seed = seedOf(`${name}.seed`, o.seed);
    if (!this.replacement && this.length > this.positive) {
      throw new OptionError(`${name}(numSamples)`, numSamples, `at most ${this.positive} (the number of positive weights) without replacement`);
    }
    this.cumulative = new Float64Array(this.weights.length);
    let acc = 0;
    for (let i = 0; i < this.weights.length; i++) this.cumulative[i] = acc += this.weights[i]!;
  }
  indices(epoch = 0): Int32Array {
    this.checkEpoch(epoch);
    const rng = new RandomStream(this.seed, epoch, 0, Purpose.sampler);
    const out = new Int32Array(this.length);
    return this.replacement ? this.withReplacement(rng, out) : this.withoutReplacement(rng, out);
  }
  private withReplacement(rng: RandomStream, out: Int32Array): Int32Array {
    const c = this.cumulative;
    const last = c.length - 1;
    const total = c[last]!;
    for (let k = 0; k < out.length; k++) {
      const u = rng.random() * total;
      // The first i with cumulative[i] > u; zero weights repeat the previous sum and so never win.
      let lo = 0;
      let hi = last;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (c[mid]! > u) hi = mid;
        else lo = mid + 1;
      }
      // Guard against rounding at the top end landing on trailing zero weights.
      while (this.weights[lo] === 0) lo--;
      out[k] = lo;
    }
    return out;
  }
  private withoutReplacement(rng: RandomStream, out: Int32Array): Int32Array {
    // Efraimidis-Spirakis: key_i = u_i^(1/w_i), kept as log(u_i) / w_i; the largest keys win, in
    // order, which is sequential weighted sampling without replacement.
    const cand = new Int32Array(this.positive);
    const keys = new Float64Array(this.weights.length);
    let m = 0;
    for (let i = 0; i < this.weights.length; i++) {
      const w = this.weights[i]!;
      if (w <= 0) continue;
      let u = rng.random();
      while (u === 0) u = rng.random();
      keys[i] = Math.log(u) / w;
      cand[m++] = i;
    }
    cand.sort((a, b) => keys[b]! - keys[a]! || a - b);
    out.set(cand.subarray(0, out.length));
    return out;
  }
  protected describe(): string {
    return `${this.weights.length} weights, ${this.replacement ? "with" : "without"} replacement, seed=${this.seed}`;
  }
}

export interface ClassBalancedSamplerOptions {
  /** Default: a fresh randomSeed(), recorded as `.seed`. */
  seed?: number;
  /** Indices per epoch (default labels.length). */
  numSamples?: number;
}

/** Every class equally likely: weights 1 / count(class), drawn with replacement. */
export class ClassBalancedSampler extends WeightedRandomSampler {
  /** label -> number of samples with that label. */
  readonly classCounts: Map<number, number>;
  constructor(labels: ArrayLike<number>, options?: ClassBalancedSamplerOptions) {
    const o = optionsOf("ClassBalancedSampler", options, ["seed", "numSamples"]);
    const a = arrayLike(labels);
    if (!a || a.length === 0) throw new OptionError("ClassBalancedSampler(labels)", labels, "a non-empty array of integer labels");
    const ls = new Float64Array(a.length);
    const counts = new Map<number, number>();
    for (let k = 0; k < a.length; k++) {
      const l = a[k];
      if (typeof l !== "number" || !Number.isSafeInteger(l)) throw new OptionError(`ClassBalancedSampler(labels)[${k}]`, l, "an integer label");
      ls[k] = l;
      counts.set(l, (counts.get(l) ?? 0) + 1);
    }
    const numSamples = o.numSamples === undefined ? a.length : v.int("ClassBalancedSampler.numSamples", o.numSamples, 1, MAX_INDEX + 1);
    const seed = seedOf("ClassBalancedSampler.seed", o.seed);
    super(Float64Array.from(ls, (l) => 1 / counts.get(l)!), numSamples, { replacement: true, seed });
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

interface Launcher {
  source: Exclude<DistributedEnv["source"], "none">;
  rank: string;
  /** The first of these that is set gives the world size. */
  size: readonly string[];
  local: string;
}

/**
 * Checked in this order. torchrun first: it may run inside a Slurm or MPI allocation, and its
 * RANK is the per-process one. The MPI launchers before Slurm: `mpirun` inside an sbatch
 * script leaves the batch step's SLURM_PROCID (0) in every process it starts.
 */
const LAUNCHERS: readonly Launcher[] = [
  { source: "torchrun", rank: "RANK", size: ["WORLD_SIZE"], local: "LOCAL_RANK" },
  { source: "openmpi", rank: "OMPI_COMM_WORLD_RANK", size: ["OMPI_COMM_WORLD_SIZE"], local: "OMPI_COMM_WORLD_LOCAL_RANK" },
  { source: "mpich/intel", rank: "PMI_RANK", size: ["PMI_SIZE"], local: "MPI_LOCALRANKID" },
  { source: "slurm", rank: "SLURM_PROCID", size: ["SLURM_NTASKS", "SLURM_NPROCS"], local: "SLURM_LOCALID" },
];

interface Detected {
  env: DistributedEnv;
  /** Where rank and worldSize came from, for messages. */
  rankFrom: string;
  sizeFrom: string;
}

type Env = Record<string, string | undefined>;

function detect(env: Env): Detected {
  for (const l of LAUNCHERS) {
    const r = env[l.rank];
    const sizeVar = l.size.find((name) => env[name] !== undefined);
    if (r === undefined || sizeVar === undefined) continue;
    const read = (name: string, min: number): number => {
      const x = env[name]!;
      const n = Number(x);
      if (x.trim() === "" || !Number.isSafeInteger(n) || n < min) {
        throw new OptionError(`environment variable ${name}`, x, `an integer >= ${min} (set by ${l.source})`);
      }
      return n;
    };
    const rank = read(l.rank, 0);
    const worldSize = read(sizeVar, 1);
    if (rank >= worldSize) {
      throw new OptionError(`environment variable ${l.rank}`, r, `an integer less than ${sizeVar}=${worldSize} (set by ${l.source})`);
    }
    const localRank = env[l.local] !== undefined ? read(l.local, 0) : 0;
    return {
      env: { rank, worldSize, localRank, source: l.source },
      rankFrom: `environment variable ${l.rank} (${l.source})`,
      sizeFrom: `environment variable ${sizeVar} (${l.source})`,
    };
  }
  const none = "the default (no launcher environment found)";
  return { env: { rank: 0, worldSize: 1, localRank: 0, source: "none" }, rankFrom: none, sizeFrom: none };
}

function envOf(option: string, env: unknown): Env {
  if (env === null || typeof env !== "object" || Array.isArray(env)) throw new OptionError(option, env, "an object of environment variables");
  return env as Env;
}

/**
 * Rank, world size and local rank as the common launchers set them: torchrun (RANK, WORLD_SIZE,
 * LOCAL_RANK), Open MPI (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK), MPICH and Intel MPI (PMI_RANK,
 * PMI_SIZE, MPI_LOCALRANKID), Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID); rank 0 of 1
 * when none is set. A malformed value throws, naming the variable.
 */
export function distributedEnv(env: Env = process.env): DistributedEnv {
  return detect(envOf("distributedEnv(env)", env)).env;
}

export interface DistributedSamplerOptions {
  /** Default: from the launcher's environment (distributedEnv), else 0. */
  rank?: number;
  /** Default: from the launcher's environment (distributedEnv), else 1. */
  worldSize?: number;
  /** Default true. */
  shuffle?: boolean;
  /** Default 0, as PyTorch: every rank must use the same seed. */
  seed?: number;
  /** Default false: pad to a multiple of worldSize by repeating indices; true: drop the tail. */
  dropLast?: boolean;
  /** The environment to read rank and worldSize from (default process.env). */
  env?: Env;
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
  readonly localRank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Where rank and worldSize came from: "options", "<launcher> environment", or a mix. */
  readonly source: string;
  /** Indices per rank per epoch. */
  readonly length: number;
  /** Indices over all ranks per epoch (length * worldSize). */
  readonly totalSize: number;
  constructor(n: number, options?: DistributedSamplerOptions) {
    super();
    const o = optionsOf("DistributedSampler", options, ["rank", "worldSize", "shuffle", "seed", "dropLast", "env"]);
    this.n = v.int("DistributedSampler(n)", n, 0, MAX_INDEX + 1);
    const rankOpt = o.rank === undefined ? undefined : v.int("DistributedSampler.rank", o.rank, 0);
    const sizeOpt = o.worldSize === undefined ? undefined : v.int("DistributedSampler.worldSize", o.worldSize, 1);
    const found = rankOpt === undefined || sizeOpt === undefined ? detect(envOf("DistributedSampler.env", o.env ?? process.env)) : undefined;
    this.rank = rankOpt ?? found!.env.rank;
    this.worldSize = sizeOpt ?? found!.env.worldSize;
    this.localRank = found?.env.localRank ?? 0;
    const rankFrom = rankOpt !== undefined ? "DistributedSampler.rank" : found!.rankFrom;
    const sizeFrom = sizeOpt !== undefined ? "DistributedSampler.worldSize" : found!.sizeFrom;
    if (this.rank >= this.worldSize) {
      const option = rankOpt !== undefined ? "DistributedSampler.rank" : `DistributedSampler rank from ${rankFrom}`;
      throw new OptionError(option, this.rank, `an integer in [0, ${this.worldSize - 1}] (worldSize ${this.worldSize} from ${sizeFrom})`);
    }
    const envSource = found === undefined ? undefined : found.env.source === "none" ? "defaults" : `${found.env.source} environment`;
    this.source = envSource === undefined ? "options" : rankOpt === undefined && sizeOpt === undefined ? envSource : `options and ${envSource}`;
    this.shuffle = o.shuffle === undefined ? true : v.bool("DistributedSampler.shuffle", o.shuffle);
    this.seed = o.seed === undefined ? 0 : checkSeed("DistributedSampler.seed", o.seed);
    this.dropLast = o.dropLast === undefined ? false : v.bool("DistributedSampler.dropLast", o.dropLast);
    const ws = this.worldSize;
    // PyTorch: ceil((n - worldSize) / worldSize) with dropLast and a remainder, else ceil(n / worldSize).
    // (n - ws) / ws > -1 here, so the first form is 0 or more; `|| 0` turns a -0 into 0.
    this.length = (this.dropLast && this.n % ws !== 0 ? Math.ceil((this.n - ws) / ws) : Math.ceil(this.n / ws)) || 0;
    this.totalSize = this.length * ws;
  }
  /** The whole epoch before the split: identical on every rank. */
  globalIndices(epoch = 0): Int32Array {
    this.checkEpoch(epoch);
    const base = this.shuffle ? permutation(this.n, this.seed, epoch) : new SequentialSampler(this.n).indices(0);
    if (this.totalSize <= this.n) return base.slice(0, this.totalSize);
    // Pad by repeating the list from its start, as many times as it takes.
    const out = new Int32Array(this.totalSize);
    for (let k = 0; k < out.length; k++) out[k] = base[k % this.n]!;
    return out;
  }
  indices(epoch = 0): Int32Array {
    const all = this.globalIndices(epoch);
    const out = new Int32Array(this.length);
    for (let k = 0; k < out.length; k++) out[k] = all[this.rank + k * this.worldSize]!;
    return out;
  }
  protected describe(): string {
    const diff = this.totalSize - this.n;
    const tail = diff > 0 ? `, ${diff} padded` : diff < 0 ? `, ${-diff} dropped` : "";
    return `n=${this.n}, rank ${this.rank} of ${this.worldSize} (${this.source}), shuffle=${this.shuffle}, seed=${this.seed}, dropLast=${this.dropLast}${tail}`;
  }
}

function isSampler(x: unknown): x is Sampler {
  return typeof x === "object" && x !== null && typeof (x as Sampler).indices === "function" && typeof (x as Sampler).length === "number";
}

/** Groups a sampler's indices into batches; the last short batch is kept unless dropLast. */
export class BatchSampler implements BatchSamplerLike {
  readonly sampler: Sampler;
  readonly batchSize: number;
  readonly dropLast: boolean;
  constructor(sampler: Sampler, batchSize: number, dropLast = false) {
    if (!isSampler(sampler)) throw new OptionError("BatchSampler(sampler)", sampler, "a sampler (samplers.*) with length and indices(epoch)");
    this.sampler = sampler;
    this.batchSize = v.int("BatchSampler(batchSize)", batchSize, 1);
    this.dropLast = v.bool("BatchSampler(dropLast)", dropLast);
  }
  get length(): number {
    const n = this.sampler.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }
  /** The sampler's epoch, which the iterator uses. */
  get epoch(): number {
    return this.sampler.epoch;
  }
  setEpoch(epoch: number): void {
    this.sampler.setEpoch(epoch);
  }
  batches(epoch = 0): Int32Array[] {
    const all = this.sampler.indices(epoch);
    const out: Int32Array[] = [];
    for (let k = 0; k < all.length; k += this.batchSize) {
      const end = k + this.batchSize;
      if (end > all.length && this.dropLast) break;
      out.push(all.slice(k, Math.min(end, all.length)));
    }
    return out;
  }
  [Symbol.iterator](): Iterator<Int32Array> {
    return this.batches(this.sampler.epoch)[Symbol.iterator]();
  }
  toString(): string {
    return `BatchSampler(batchSize=${this.batchSize}, dropLast=${this.dropLast}): ${this.length} batches per epoch over ${String(this.sampler)}`;
  }
  [DISPLAY](): MimeData {
    const epoch = this.sampler.epoch;
    const sizes = this.batches(epoch).map((b) => b.length);
    const rows: [string, string][] = [
      ["batch size", String(this.batchSize)],
      ["drop last", String(this.dropLast)],
      ["batches per epoch", String(this.length)],
      ["last batch", sizes.length ? `${sizes[sizes.length - 1]} indices` : "none"],
      ["sampler", String(this.sampler)],
    ];
    return summaryBundle("batchlab-sampler", "BatchSampler", this.toString(), rows).data;
  }
}
