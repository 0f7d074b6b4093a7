/**
 * Samplers: which dataset indices, in which order, for epoch e. Every answer is a pure function
 * of (seed, epoch), drawn from the counter-based generator (rng.ts) with Purpose.sampler, so any
 * epoch can be recomputed and any batch resumed. Semantics follow torch.utils.data where PyTorch
 * has the same sampler.
 *
 * Orders are lazy: `order(epoch)` answers any position on demand, in O(1) memory (a shuffle is a
 * keyed bijection, rng.ts Shuffle; a draw with replacement reads the Philox stream at the
 * position's own address). Only WeightedRandomSampler without replacement holds an array (its
 * keys need every weight anyway). `indices(epoch)` is the same order as one array.
 */
import { DISPLAY, summaryBundle, type MimeData } from "../display/index";
import { OptionError } from "../errors";
import * as v from "../options";
import { Purpose, RandomStream, Shuffle, checkSeed, randomSeed } from "./rng";
import type { BatchSamplerLike, EpochBatches, EpochOrder, Sampler } from "./types";

/** Epochs address the generator's 32-bit counter word. */
const MAX_EPOCH = 0xffffffff;
/** Indices are returned as Int32Array. */
const MAX_INDEX = 0x7fffffff;

export function epochOf(option: string, e: unknown): number {
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

/** An epoch order from a function that fills a range; the range is checked here, once. */
export class Order implements EpochOrder {
  constructor(
    readonly length: number,
    private readonly fillRange: (start: number, out: Int32Array) => void,
  ) {}
  fill(start: number, out: Int32Array): Int32Array {
    if (!(out instanceof Int32Array)) throw new OptionError("order.fill(start, out)", out, "an Int32Array");
    v.int("order.fill(start)", start, 0, Math.max(0, this.length - out.length));
    if (out.length > this.length) throw new OptionError("order.fill(out).length", out.length, `at most ${this.length} (indices in the epoch)`);
    this.fillRange(start, out);
    return out;
  }
}

function arrayOrder(a: Int32Array): Order {
  return new Order(a.length, (start, out) => out.set(a.subarray(start, start + out.length)));
}

/** How many indices an iterator or a preview reads at a time. */
const CHUNK = 4096;

/** The indices of `order`, chunk by chunk. */
function* eachIndex(order: EpochOrder): Generator<number, void, undefined> {
  const buf = new Int32Array(Math.min(CHUNK, order.length));
  for (let k = 0; k < order.length; k += buf.length) {
    const part = order.fill(k, buf.subarray(0, Math.min(buf.length, order.length - k)));
    for (let j = 0; j < part.length; j++) yield part[j]!;
  }
}

export abstract class BaseSampler implements Sampler {
  abstract readonly length: number;
  private current = 0;
  get epoch(): number {
    return this.current;
  }
  /** The epoch's indices on demand. */
  order(epoch = 0): EpochOrder {
    return this.makeOrder(epochOf(`${this.constructor.name}.order(epoch)`, epoch));
  }
  protected abstract makeOrder(epoch: number): EpochOrder;
  indices(epoch = 0): Int32Array {
    const o = this.makeOrder(epochOf(`${this.constructor.name}.indices(epoch)`, epoch));
    return o.fill(0, new Int32Array(o.length));
  }
  setEpoch(epoch: number): void {
    this.current = epochOf(`${this.constructor.name}.setEpoch(epoch)`, epoch);
  }
  [Symbol.iterator](): Iterator<number> {
    return eachIndex(this.makeOrder(this.current));
  }
  protected abstract describe(): string;
  toString(): string {
    return `${this.constructor.name}(${this.describe()}): ${this.length} indices per epoch, epoch ${this.current}`;
  }
  [DISPLAY](): MimeData {
    const first = Array.from(this.makeOrder(this.current).fill(0, new Int32Array(Math.min(PREVIEW, this.length))));
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
  protected makeOrder(): EpochOrder {
    return new Order(this.length, (start, out) => {
      for (let j = 0; j < out.length; j++) out[j] = start + j;
    });
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
  protected makeOrder(epoch: number): EpochOrder {
    const { n, seed } = this;
    if (this.replacement) {
      // Position k draws from its own stream: any position is one Philox block away.
      const rng = new RandomStream(seed, epoch, 0, Purpose.sampler);
      return new Order(this.length, (start, out) => {
        for (let j = 0; j < out.length; j++) out[j] = rng.reset(seed, epoch, start + j, Purpose.sampler).int(n);
      });
    }
    // Position k is element k % n of round floor(k / n), Shuffle(n, seed, epoch, round): round 0
    // is exactly permutation(n, seed, epoch).
    let round = -1;
    let shuffle: Shuffle | undefined;
    return new Order(this.length, (start, out) => {
      for (let j = 0; j < out.length; j++) {
        const k = start + j;
        const r = Math.floor(k / n);
        if (r !== round) (shuffle = new Shuffle(n, seed, epoch, r)), (round = r);
        out[j] = shuffle!.at(k - r * n);
      }
    });
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
  protected makeOrder(epoch: number): EpochOrder {
    const subset = this.subset;
    const shuffle = new Shuffle(subset.length, this.seed, epoch);
    return new Order(subset.length, (start, out) => {
      for (let j = 0; j < out.length; j++) out[j] = subset[shuffle.at(start + j)]!;
    });
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
  protected makeOrder(epoch: number): EpochOrder {
    const rng = new RandomStream(this.seed, epoch, 0, Purpose.sampler);
    if (!this.replacement) return arrayOrder(this.withoutReplacement(rng, new Int32Array(this.length)));
    return new Order(this.length, (start, out) => this.withReplacement(rng, epoch, start, out));
  }
  /** Position start + k draws from its own stream (seed, epoch, position). */
  private withReplacement(rng: RandomStream, epoch: number, start: number, out: Int32Array): void {
    const c = this.cumulative;
    const last = c.length - 1;
    const total = c[last]!;
    for (let k = 0; k < out.length; k++) {
      const u = rng.reset(this.seed, epoch, start + k, Purpose.sampler).random() * total;
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

export interface Detected {
  env: DistributedEnv;
  /** Where rank and worldSize came from, for messages. */
  rankFrom: string;
  sizeFrom: string;
}

export type Env = Record<string, string | undefined>;

export function detect(env: Env): Detected {
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

export function envOf(option: string, env: unknown): Env {
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
  /** The whole epoch before the split, on demand: identical on every rank. */
  globalOrder(epoch = 0): EpochOrder {
    const at = this.globalAt(epochOf("DistributedSampler.globalOrder(epoch)", epoch));
    return new Order(this.totalSize, (start, out) => {
      for (let j = 0; j < out.length; j++) out[j] = at(start + j);
    });
  }
  /** globalOrder as one array. */
  globalIndices(epoch = 0): Int32Array {
    const o = this.globalOrder(epoch);
    return o.fill(0, new Int32Array(o.length));
  }
  /**
   * Global position g: the epoch's shuffle (or 0..n-1) at g, padded past n by repeating the list
   * from its start as often as it takes (PyTorch's padding), or cut at totalSize with dropLast.
   */
  private globalAt(epoch: number): (g: number) => number {
    const n = this.n;
    if (!this.shuffle) return (g) => g % n;
    const shuffle = new Shuffle(n, this.seed, epoch);
    return (g) => shuffle.at(g % n);
  }
  protected makeOrder(epoch: number): EpochOrder {
    const at = this.globalAt(epoch);
    const { rank, worldSize } = this;
    return new Order(this.length, (start, out) => {
      for (let j = 0; j < out.length; j++) out[j] = at(rank + (start + j) * worldSize);
    });
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
  /** The epoch's batches on demand: consecutive runs of batchSize positions of the sampler's order. */
  epochBatches(epoch = 0): EpochBatches {
    const all = orderOf(this.sampler, epoch);
    const bs = this.batchSize;
    const count = this.dropLast ? Math.floor(all.length / bs) : Math.ceil(all.length / bs);
    const total = this.dropLast ? count * bs : all.length;
    const order = total === all.length ? all : new Order(total, (start, out) => all.fill(start, out));
    return { count, order, start: (b) => Math.min(b * bs, total) };
  }
  batches(epoch = 0): Int32Array[] {
    const e = this.epochBatches(epoch);
    return Array.from({ length: e.count }, (_, b) => batchAt(e, b));
  }
  *[Symbol.iterator](): Iterator<Int32Array> {
    const e = this.epochBatches(this.sampler.epoch);
    for (let b = 0; b < e.count; b++) yield batchAt(e, b);
  }
  toString(): string {
    return `BatchSampler(batchSize=${this.batchSize}, dropLast=${this.dropLast}): ${this.length} batches per epoch over ${String(this.sampler)}`;
  }
  [DISPLAY](): MimeData {
    const e = this.epochBatches(this.sampler.epoch);
    const rows: [string, string][] = [
      ["batch size", String(this.batchSize)],
      ["drop last", String(this.dropLast)],
      ["batches per epoch", String(this.length)],
      ["last batch", e.count ? `${e.start(e.count) - e.start(e.count - 1)} indices` : "none"],
      ["sampler", String(this.sampler)],
    ];
    return summaryBundle("batchlab-sampler", "BatchSampler", this.toString(), rows).data;
  }
}

function batchAt(e: EpochBatches, b: number): Int32Array {
  const start = e.start(b);
  return e.order.fill(start, new Int32Array(e.start(b + 1) - start));
}

/**
 * A sampler's order for `epoch`: its own order() when it has one, else its indices() (a sampler
 * written by a user), checked once.
 */
export function orderOf(sampler: Sampler, epoch: number): EpochOrder {
  if (typeof sampler.order === "function") return sampler.order(epoch);
  return arrayOrder(indexList(`${sampler.constructor?.name ?? "sampler"}.indices(${epoch})`, sampler.indices(epoch)));
}

/**
 * A batch sampler's batches for `epoch`: its own epochBatches() when it has one (BatchSampler,
 * lazily), else its batches() (one written by a user), joined into one checked order.
 */
export function batchesOf(bs: BatchSamplerLike, epoch: number): EpochBatches {
  if (typeof bs.epochBatches === "function") return bs.epochBatches(epoch);
  const list = bs.batches(epoch);
  const bounds = new Float64Array(list.length + 1);
  for (let b = 0; b < list.length; b++) bounds[b + 1] = bounds[b]! + list[b]!.length;
  const flat = new Int32Array(bounds[list.length]!);
  for (let b = 0; b < list.length; b++) flat.set(indexList(`batchSampler.batches(${epoch})[${b}]`, list[b]), bounds[b]!);
  return { count: list.length, order: arrayOrder(flat), start: (b) => bounds[b]! };
}
