/**
 * Counter-based randomness (Philox4x32-10, Salmon et al., SC'11).
 *
 * A stream is addressed by (seed, epoch, index, purpose): any draw can be recomputed from its
 * address alone, with no state carried between samples. That is what makes batches identical
 * whatever the thread count, the prefetch depth, the backend, or where iteration resumed.
 */
import { int } from "../options";

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 values, exact in double arithmetic. */
function mulhi(a: number, b: number): number {
  const ah = a >>> 16;
  const al = a & 0xffff;
  const bh = b >>> 16;
  const bl = b & 0xffff;
  const mid = ah * bl + al * bh + ((al * bl) >>> 16);
  return (ah * bh + Math.floor(mid / 65536)) >>> 0;
}

/** One Philox4x32-10 block: four uint32 outputs for counter (c0..c3) under key (k0, k1). */
export function philox4x32(k0: number, k1: number, c0: number, c1: number, c2: number, c3: number, out: Uint32Array): void {
  k0 >>>= 0; k1 >>>= 0; c0 >>>= 0; c1 >>>= 0; c2 >>>= 0; c3 >>>= 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/** What a stream is for; part of its address so that purposes never share numbers. */
export const Purpose = {
  sampler: 1,
  transform: 2,
  batch: 3,
  user: 4,
  /** The order of a sharded data set's shards (ShardSampler). */
  shards: 5,
  /** A sharded data set's shuffle buffer (ShuffleBuffer). */
  shuffleBuffer: 6,
} as const;
export type Purpose = (typeof Purpose)[keyof typeof Purpose];

/** Seeds are integers in [0, 2^53). */
export function checkSeed(option: string, seed: unknown): number {
  return int(option, seed, 0, Number.MAX_SAFE_INTEGER);
}

/** A fresh seed for callers that gave none (recorded so a run can be repeated). */
export function randomSeed(): number {
  const b = new Uint32Array(2);
  require("node:crypto").randomFillSync(b);
  return (b[0]! & 0x1fffff) * 0x100000000 + b[1]!;
}

/** Scratch for one Philox block (JavaScript runs one stream at a time). */
const blockOut = new Uint32Array(4);

/**
 * A deterministic stream of random numbers at one address. Cheap to create: make one per
 * sample. Draws come four at a time from consecutive Philox blocks.
 */
export class RandomStream {
  private k0 = 0;
  private k1 = 0;
  private c0 = 0;
  private c1 = 0;
  private c2 = 0;
  private block = 0;
  /** The current block's four outputs (fields, not a typed array: one stream per sample is made). */
  private b0 = 0;
  private b1 = 0;
  private b2 = 0;
  private b3 = 0;
  private pos = 4;

  constructor(seed: number, epoch: number, index: number, purpose: number = Purpose.user) {
    this.reset(seed, epoch, index, purpose);
  }

  /**
   * Moves the stream to another address, as if it were new (the loader draws every sample of a
   * batch with one stream object instead of allocating one per sample).
   */
  reset(seed: number, epoch: number, index: number, purpose: number = Purpose.user): this {
    this.block = 0;
    this.pos = 4;
    this.k0 = seed >>> 0;
    this.k1 = Math.floor(seed / 0x100000000) >>> 0;
    this.c0 = index >>> 0;
    this.c1 = epoch >>> 0;
    // The upper bits of an index beyond 2^32 share the purpose word.
    this.c2 = ((purpose & 0xff) | ((Math.floor(index / 0x100000000) & 0xffffff) << 8)) >>> 0;
    return this;
  }

  /** A uniform uint32. */
  nextUint32(): number {
    if (this.pos === 4) {
      philox4x32(this.k0, this.k1, this.c0, this.c1, this.c2, this.block++, blockOut);
      this.b0 = blockOut[0]!;
      this.b1 = blockOut[1]!;
      this.b2 = blockOut[2]!;
      this.b3 = blockOut[3]!;
      this.pos = 0;
    }
    const p = this.pos++;
    return p === 0 ? this.b0 : p === 1 ? this.b1 : p === 2 ? this.b2 : this.b3;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform double in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** A uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (n <= 0x100000000) {
      // Lemire-style rejection on 32 bits.
      const limit = 0x100000000 - (0x100000000 % n);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    return Math.floor(this.random() * n);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.random() < p;
  }

  /** A standard normal draw (Box-Muller). */
  normal(): number {
    let u = this.random();
    while (u === 0) u = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }
}

/** Rounds of the shuffle's Feistel network. */
const ROUNDS = 8;

/** A 32-bit integer mix (an xorshift-multiply finaliser): the Feistel round function. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * A shuffled order of 0..n-1 for (seed, epoch, salt), with random access: `at(k)` is the k-th
 * element, computed in O(1) time and memory, so an epoch of 2^31 indices costs nothing before
 * its first batch and any position can be resumed exactly.
 *
 * It is a keyed bijection: a balanced Feistel network of ROUNDS rounds on the smallest even
 * number of bits b with 2^b >= n (so at most 4n), with round keys drawn from the Philox stream
 * at (seed, epoch, salt, purpose; Purpose.sampler by default), and cycle walking (re-encrypting while the result is
 * >= n) to stay in [0, n). Every element appears once per epoch; the order is pseudo-random,
 * not a uniform draw over all n! orders (which no 53-bit seed can give anyway for n > 18).
 */
export class Shuffle {
  readonly n: number;
  private readonly half: number;
  private readonly mask: number;
  private readonly keys = new Uint32Array(ROUNDS);

  constructor(n: number, seed: number, epoch: number, salt = 0, purpose: number = Purpose.sampler) {
    this.n = n;
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.half = bits / 2;
    this.mask = 2 ** this.half - 1;
    const rng = new RandomStream(seed, epoch, salt, purpose);
    for (let r = 0; r < ROUNDS; r++) this.keys[r] = rng.nextUint32();
  }

  /** The element at position k (0 <= k < n). */
  at(k: number): number {
    let x = k;
    do x = this.encrypt(x);
    while (x >= this.n);
    return x;
  }

  /** Positions [start, start + out.length) into out. */
  fill(start: number, out: Int32Array): Int32Array {
    for (let j = 0; j < out.length; j++) out[j] = this.at(start + j);
    return out;
  }

  private encrypt(x: number): number {
    const { half, mask, keys } = this;
    // x < 2^32: uint32 shifts are exact.
    let l = x >>> half;
    let r = x & mask;
    for (let i = 0; i < ROUNDS; i++) {
      const t = (l ^ mix32(r ^ keys[i]!)) & mask;
      l = r;
      r = t;
    }
    return ((l << half) | r) >>> 0;
  }
}

/** The whole of Shuffle(n, seed, epoch, salt) as an array: a permutation of 0..n-1. */
export function permutation(n: number, seed: number, epoch: number, salt = 0): Int32Array {
  return new Shuffle(n, seed, epoch, salt).fill(0, new Int32Array(n));
}
