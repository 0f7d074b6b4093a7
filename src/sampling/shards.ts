/**
 * Sampling for sharded stream data sets (WebDataset tar shards): which shards this rank reads
 * in epoch e, and in what order (ShardSampler), and the shuffle buffer that mixes samples within
 * and across the shards read (ShuffleBuffer). Both are pure functions of (seed, epoch, rank) and
 * of the sample stream they are given, drawn from the counter-based generator (rng.ts) under
 * their own purposes (Purpose.shards, Purpose.shuffleBuffer), so an epoch can be replayed exactly.
 */
import { OptionError } from "../errors";
import * as v from "../options";
import { Purpose, RandomStream, Shuffle, checkSeed } from "./rng";
import { BaseSampler, Order, detect, envOf, epochOf, type Env } from "./samplers";
import type { EpochOrder } from "./types";

export interface ShardSamplerOptions {
  /** Shuffle the shard list every epoch with (seed, epoch) (default true). */
  shuffle?: boolean;
  /** Default 0: every rank must use the same seed, so that the ranks agree on one order. */
  seed?: number;
  /** Default: from the launcher's environment (torchrun, Slurm, Open MPI, MPICH), else 0. */
  rank?: number;
  /** Default: from the launcher's environment, else 1. */
  worldSize?: number;
  /**
   * Default false: every shard is read each epoch, and ranks get floor or ceil(shards / worldSize)
   * of them. true: the epoch's last `shards % worldSize` shards (in the epoch's order, so other
   * ones each epoch when shuffled) are left out, and every rank reads the same number of shards.
   */
  dropLast?: boolean;
  /** The environment to read rank and worldSize from (default process.env). */
  env?: Env;
  /** The name in error messages (default "ShardSampler"). */
  name?: string;
}

/**
 * This rank's shards in each epoch. All ranks draw one order of the `n` shards from (seed,
 * epoch) (Shuffle under Purpose.shards; 0..n-1 without shuffle) and rank r takes its positions
 * r, r + worldSize, r + 2 worldSize, ...: the ranks' shard sets are disjoint and together cover
 * every shard (all but the dropped tail with dropLast). Its indices are shard numbers.
 */
export class ShardSampler extends BaseSampler {
  /** Shards in all. */
  readonly n: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Where rank and worldSize came from: "options", "<launcher> environment", or a mix. */
  readonly source: string;
  private readonly name: string;

  constructor(n: number, options: ShardSamplerOptions = {}) {
    super();
    const o = v.knownKeys<ShardSamplerOptions>("ShardSampler", options, ["shuffle", "seed", "rank", "worldSize", "dropLast", "env", "name"]) as ShardSamplerOptions;
    const name = (this.name = o.name === undefined ? "ShardSampler" : String(o.name));
    this.n = v.int(`${name}(shards)`, n, 1, 0x7fffffff);
    const rankOpt = o.rank === undefined ? undefined : v.int(`${name}.rank`, o.rank, 0);
    const sizeOpt = o.worldSize === undefined ? undefined : v.int(`${name}.worldSize`, o.worldSize, 1);
    const found = rankOpt === undefined || sizeOpt === undefined ? detect(envOf(`${name}.env`, o.env ?? process.env)) : undefined;
    this.rank = rankOpt ?? found!.env.rank;
    this.worldSize = sizeOpt ?? found!.env.worldSize;
    const rankFrom = rankOpt !== undefined ? `${name}.rank` : found!.rankFrom;
    const sizeFrom = sizeOpt !== undefined ? `${name}.worldSize` : found!.sizeFrom;
    if (this.rank >= this.worldSize) {
      throw new OptionError(rankOpt !== undefined ? `${name}.rank` : `${name} rank from ${rankFrom}`, this.rank, `an integer in [0, ${this.worldSize - 1}] (worldSize ${this.worldSize} from ${sizeFrom})`);
    }
    if (this.n < this.worldSize) {
      throw new OptionError(
        sizeOpt !== undefined ? `${name}.worldSize` : `${name} worldSize from ${sizeFrom}`,
        this.worldSize,
        `at most ${this.n}, the number of shards (each rank reads whole shards, so every rank needs at least one: write more, smaller shards, e.g. batchlab shards --per-shard N with a smaller N)`,
      );
    }
    const envSource = found === undefined ? undefined : found.env.source === "none" ? "defaults" : `${found.env.source} environment`;
    this.source = envSource === undefined ? "options" : rankOpt === undefined && sizeOpt === undefined ? envSource : `options and ${envSource}`;
    this.shuffle = o.shuffle === undefined ? true : v.bool(`${name}.shuffle`, o.shuffle);
    this.seed = o.seed === undefined ? 0 : checkSeed(`${name}.seed`, o.seed);
    this.dropLast = o.dropLast === undefined ? false : v.bool(`${name}.dropLast`, o.dropLast);
  }

  /** Shards this rank reads per epoch (with dropLast: the same on every rank). */
  get length(): number {
    const { n, worldSize: w, rank } = this;
    return this.dropLast ? Math.floor(n / w) : Math.floor(n / w) + (rank < n % w ? 1 : 0);
  }

  /** The epoch's order of all n shards, before the split: identical on every rank. */
  globalOrder(epoch = 0): EpochOrder {
    const at = this.globalAt(epochOf(`${this.name}.globalOrder(epoch)`, epoch));
    return new Order(this.n, (start, out) => {
      for (let j = 0; j < out.length; j++) out[j] = at(start + j);
    });
  }

  private globalAt(epoch: number): (g: number) => number {
    if (!this.shuffle) return (g) => g;
    const s = new Shuffle(this.n, this.seed, epoch, 0, Purpose.shards);
    return (g) => s.at(g);
  }

  protected makeOrder(epoch: number): EpochOrder {
    const at = this.globalAt(epoch);
    const { rank, worldSize } = this;
    return new Order(this.length, (start, out) => {
      for (let j = 0; j < out.length; j++) out[j] = at(rank + (start + j) * worldSize);
    });
  }

  protected describe(): string {
    return `${this.n} shards, rank ${this.rank} of ${this.worldSize} (${this.source}), shuffle=${this.shuffle}, seed=${this.seed}, dropLast=${this.dropLast}`;
  }
}

/**
 * WebDataset's shuffle buffer, made deterministic: the first `size` items fill the buffer; then
 * each new item replaces a uniformly drawn slot, whose old item is emitted; at the end the rest
 * leave in a drawn order. The draws come from one counter-based stream at (seed, epoch, rank,
 * Purpose.shuffleBuffer), so the same input sequence always gives the same output sequence.
 * Size 0 or 1 passes items through in order. It holds at most `size` items.
 */
export class ShuffleBuffer<T> {
  readonly size: number;
  private readonly items: T[] = [];
  private readonly rng: RandomStream;

  constructor(size: number, seed: number, epoch: number, rank = 0) {
    this.size = v.int("ShuffleBuffer(size)", size, 0, 1 << 24);
    this.rng = new RandomStream(checkSeed("ShuffleBuffer(seed)", seed), epochOf("ShuffleBuffer(epoch)", epoch), v.int("ShuffleBuffer(rank)", rank, 0), Purpose.shuffleBuffer);
  }

  /** Adds an item; returns the item that leaves the buffer, if one does. */
  push(item: T): { value: T } | undefined {
    if (this.size <= 1) return { value: item };
    if (this.items.length < this.size) {
      this.items.push(item);
      return undefined;
    }
    const j = this.rng.int(this.size);
    const out = this.items[j]!;
    this.items[j] = item;
    return { value: out };
  }

  /** Items still held. */
  get held(): number {
    return this.items.length;
  }

  /** After the last push: the next item to leave, undefined when empty. */
  drain(): { value: T } | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const j = this.rng.int(n);
    const out = this.items[j]!;
    this.items[j] = this.items[n - 1]!;
    this.items.pop();
    return { value: out };
  }
}
