/**
 * Geometry as per-axis tap tables.
 *
 * Every geometric step (pad, crop, flip, resize) is separable: output row y reads source rows,
 * output column x reads source columns, each with a weight. A table of K taps per output
 * coordinate describes one step exactly (K = 1 for integer steps, 2 for bilinear), and two
 * tables compose into one by following taps through (weights multiply). That is how a whole
 * chain folds into one source-to-destination mapping per sample. A tap of -1 reads the fill
 * value.
 */

export interface AxisTaps {
  /** Output length along this axis. */
  readonly size: number;
  /** Taps per output coordinate. */
  readonly K: number;
  /** size*K source coordinates (-1: fill). */
  readonly index: Int32Array;
  /** size*K weights, float32. */
  readonly weight: Float32Array;
  /** True for the identity map (composition skips it). */
  readonly identity?: boolean;
}

export type BorderMode = "constant" | "edge" | "reflect" | "symmetric";

/** Where coordinate i (possibly outside [0, n)) reads from, under a border mode; -1 = fill. */
export function borderIndex(i: number, n: number, mode: BorderMode): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case "constant":
      return -1;
    case "edge":
      return i < 0 ? 0 : n - 1;
    case "reflect": {
      // ...2 1 | 0 1 2 ... n-1 | n-2 ...: period 2(n-1), the edge pixel is not repeated.
      if (n === 1) return 0;
      const period = 2 * (n - 1);
      let m = ((i % period) + period) % period;
      if (m >= n) m = period - m;
      return m;
    }
    case "symmetric": {
      // ...1 0 | 0 1 ... n-1 | n-1 n-2 ...: period 2n, the edge pixel is repeated.
      const period = 2 * n;
      let m = ((i % period) + period) % period;
      if (m >= n) m = period - 1 - m;
      return m;
    }
  }
}

/** Integer map: output o reads source `at(o)` (already border-resolved, -1 = fill). */
export function integerTaps(size: number, at: (o: number) => number): AxisTaps {
  const index = new Int32Array(size);
  const weight = new Float32Array(size).fill(1);
  for (let o = 0; o < size; o++) index[o] = at(o);
  return { size, K: 1, index, weight };
}

/** Pad by `before` then take `size` coordinates starting at `offset` of the padded axis. */
export function padCropTaps(n: number, before: number, offset: number, size: number, mode: BorderMode): AxisTaps {
  return integerTaps(size, (o) => borderIndex(o + offset - before, n, mode));
}

/**
 * A crop starting at `offset` that lies inside its axis, then `t` (a resampling of
 * the crop): t's taps moved by `offset`, its weights shared. The same table as
 * composeTaps(padCropTaps(n, 0, offset, size, mode), t) for such a crop, without building the
 * crop's table (a randomResizedCrop draws a new one per sample).
 */
export function shiftTaps(t: AxisTaps, offset: number): AxisTaps {
  if (offset === 0) return t;
  const index = new Int32Array(t.index.length);
  for (let i = 0; i < index.length; i++) {
    const q = t.index[i]!;
    index[i] = q < 0 ? -1 : q + offset;
  }
  return { size: t.size, K: t.K, index, weight: t.weight };
}

const flips = new Map<number, AxisTaps>();

/** The reversal of an axis of length n (shared, as identityTaps). */
export function flipTaps(n: number): AxisTaps {
  let t = flips.get(n);
  if (!t) {
    if (flips.size >= 256) flips.clear();
    t = integerTaps(n, (o) => n - 1 - o);
    flips.set(n, t);
  }
  return t;
}

const identities = new Map<number, AxisTaps>();

/** The identity map of an axis of length n (shared: tap tables are never mutated). */
export function identityTaps(n: number): AxisTaps {
  let t = identities.get(n);
  if (!t) {
    t = { ...integerTaps(n, (o) => o), identity: true };
    if (identities.size > 256) identities.clear();
    identities.set(n, t);
  }
  return t;
}

/** How an axis is resampled: torchvision's InterpolationMode names. */
export type Interpolation = "nearest" | "nearest-exact" | "bilinear" | "bicubic";

const f32 = Math.fround;

/**
 * Resampling of an axis of length n to `size`, with PyTorch's float32 index and weight maths
 * (half-pixel centres, align_corners=False), so the taps are the ones torch computes:
 *   nearest        floor(o * scale)                     (torch's "nearest", torchvision's NEAREST)
 *   nearest-exact  floor((o + 0.5) * scale)             (PIL's nearest)
 *   bilinear       two taps at max((o + 0.5) * scale - 0.5, 0)
 *   bicubic        four taps, Keys' cubic with a = -0.75, edge-clamped indices
 * and with `antialias` (bilinear and bicubic only; what PIL and torchvision's antialias=True do)
 * the filter is stretched by the scale when downsampling: every source pixel under the output
 * pixel's footprint contributes (triangle, or Keys' cubic with a = -0.5), weights normalised to 1.
 */
export function resampleTaps(n: number, size: number, mode: Interpolation, antialias = false): AxisTaps {
  // The tables depend on these four values only and are never written to, so samples share
  // them: a photo set's random crops repeat the same (n, size) pairs over an epoch.
  const key = `${mode}:${antialias ? 1 : 0}:${n}:${size}`;
  let t = resampled.get(key);
  if (!t) {
    if (resampled.size >= 4096) resampled.clear();
    resampled.set(key, (t = resampleUncached(n, size, mode, antialias)));
  }
  return t;
}
const resampled = new Map<string, AxisTaps>();

function resampleUncached(n: number, size: number, mode: Interpolation, antialias: boolean): AxisTaps {
  const scale = f32(n / size);
  if (mode === "nearest" || mode === "nearest-exact") {
    // floor(o * float32(n / size)): exact integer division picks another pixel than torch at
    // some (n, size) pairs (238 of 13,754 checked), double arithmetic at more (423); this at none.
    const half = mode === "nearest-exact" ? 0.5 : 0;
    return integerTaps(size, (o) => Math.min(Math.floor(f32(f32(o + half) * scale)), n - 1));
  }
  if (antialias) return footprintTaps(n, size, scale, mode);
  if (mode === "bilinear") {
    const index = new Int32Array(size * 2);
    const weight = new Float32Array(size * 2);
    for (let o = 0; o < size; o++) {
      let src = f32(f32(scale * f32(o + 0.5)) - 0.5);
      if (src < 0) src = 0;
      const i0 = Math.min(Math.floor(src), n - 1);
      const i1 = Math.min(i0 + 1, n - 1);
      const frac = f32(src - i0);
      index[2 * o] = i0;
      index[2 * o + 1] = i1;
      weight[2 * o] = f32(1 - frac);
      weight[2 * o + 1] = frac;
    }
    return { size, K: 2, index, weight };
  }
  const index = new Int32Array(size * 4);
  const weight = new Float32Array(size * 4);
  for (let o = 0; o < size; o++) {
    const src = f32(f32(scale * f32(o + 0.5)) - 0.5);
    const i0 = Math.floor(src);
    const t = f32(src - i0);
    const w = [cubicFar(f32(t + 1), -0.75), cubicNear(t, -0.75), cubicNear(f32(1 - t), -0.75), cubicFar(f32(2 - t), -0.75)];
    for (let k = 0; k < 4; k++) {
      index[4 * o + k] = Math.min(Math.max(i0 - 1 + k, 0), n - 1);
      weight[4 * o + k] = w[k]!;
    }
  }
  return { size, K: 4, index, weight };
}

/** Keys' cubic convolution for |x| <= 1 and for 1 < |x| < 2, in float32 as torch writes it. */
export function cubicNear(x: number, a: number): number {
  return f32(f32(f32(f32(f32(f32(a + 2) * x) - f32(a + 3)) * x) * x) + 1);
}
export function cubicFar(x: number, a: number): number {
  return f32(f32(f32(f32(f32(f32(f32(a * x) - f32(5 * a)) * x) + f32(8 * a)) * x)) - f32(4 * a));
}

/** The antialiasing filters: support radius at scale 1 and the kernel. */
const FOOTPRINT = {
  bilinear: { support: 1, at: (x: number) => { x = Math.abs(x); return x < 1 ? f32(1 - x) : 0; } },
  bicubic: { support: 2, at: (x: number) => { x = Math.abs(x); return x < 1 ? cubicNear(x, -0.5) : x < 2 ? cubicFar(x, -0.5) : 0; } },
} as const;

/** PIL's and torch's antialiased taps: the filter widened by the scale when downsampling. */
function footprintTaps(n: number, size: number, scale: number, mode: "bilinear" | "bicubic"): AxisTaps {
  const filter = FOOTPRINT[mode];
  const support = scale >= 1 ? f32(filter.support * scale) : filter.support;
  const invscale = scale >= 1 ? f32(1 / scale) : 1;
  const K = Math.ceil(support) * 2 + 1;
  const index = new Int32Array(size * K);
  const weight = new Float32Array(size * K);
  const w = new Float32Array(K);
  for (let o = 0; o < size; o++) {
    const center = f32(scale * f32(o + 0.5));
    const lo = Math.max(Math.trunc(f32(f32(center - support) + 0.5)), 0);
    const count = Math.min(Math.trunc(f32(f32(center + support) + 0.5)), n) - lo;
    let total = 0;
    for (let j = 0; j < count; j++) {
      w[j] = filter.at(f32(f32(f32(f32(j + lo) - center) + 0.5) * invscale));
      total = f32(total + w[j]!);
    }
    for (let j = 0; j < K; j++) {
      // Slots past the footprint read its first pixel with weight 0: they add exactly 0.
      index[o * K + j] = j < count ? lo + j : Math.min(lo, n - 1);
      weight[o * K + j] = j >= count ? 0 : total !== 0 ? f32(w[j]! / total) : w[j]!;
    }
  }
  return { size, K, index, weight };
}

const composed = new WeakMap<AxisTaps, Map<AxisTaps, AxisTaps>>();

/**
 * `outer` reads coordinates of the space `inner` produces; the result reads inner's source.
 * Results are memoised on the (shared, immutable) tables, so a chain whose steps have few
 * distinct parameter values (crops, flips) composes each combination once.
 */
export function composeTaps(inner: AxisTaps, outer: AxisTaps): AxisTaps {
  if (outer.identity && outer.size === inner.size) return inner;
  if (inner.identity) return outer;
  let byOuter = composed.get(inner);
  if (!byOuter) composed.set(inner, (byOuter = new Map()));
  let t = byOuter.get(outer);
  if (!t) {
    t = composeUncached(inner, outer);
    if (byOuter.size > 1024) byOuter.clear();
    byOuter.set(outer, t);
  }
  return t;
}

/** Whether every weight of a K = 1 table is 1 (a crop, flip or constant pad: a pure gather). */
const gathers = new WeakMap<AxisTaps, boolean>();
function isGather(t: AxisTaps): boolean {
  if (t.K !== 1) return false;
  let g = gathers.get(t);
  if (g === undefined) {
    g = t.weight.every((w) => w === 1);
    gathers.set(t, g);
  }
  return g;
}

function composeUncached(inner: AxisTaps, outer: AxisTaps): AxisTaps {
  if (isGather(inner)) {
    // Through a gather each outer tap just reads another index, with its own weight (times 1,
    // exact): the general loop below gives these very tables, this without its bookkeeping.
    const index = new Int32Array(outer.index.length);
    for (let i = 0; i < index.length; i++) {
      const mid = outer.index[i]!;
      index[i] = mid < 0 ? -1 : inner.index[mid]!;
    }
    return { size: outer.size, K: outer.K, index, weight: outer.weight.slice() };
  }
  if (isGather(outer)) {
    // A gather after a resampling (a flip or crop after a resize): each output takes one inner
    // coordinate's taps (weights times 1, exact), a fill output one fill tap; the general loop
    // below gives these very tables.
    let K = 1;
    for (let o = 0; o < outer.size; o++) if (outer.index[o]! >= 0) K = inner.K;
    const index = new Int32Array(outer.size * K);
    const weight = new Float32Array(outer.size * K);
    for (let o = 0; o < outer.size; o++) {
      const mid = outer.index[o]!;
      if (mid < 0) {
        index.fill(-1, o * K, (o + 1) * K);
        weight[o * K] = 1;
        continue;
      }
      for (let k = 0; k < K; k++) {
        index[o * K + k] = inner.index[mid * inner.K + k]!;
        weight[o * K + k] = inner.weight[mid * inner.K + k]!;
      }
    }
    return { size: outer.size, K, index, weight };
  }
  // Follow each outer tap through the inner table. Where both steps resample, taps that land on
  // the same source index merge (weights added in float32, in order of first appearance), so a
  // chain of resamplings keeps as many taps as its footprint has pixels, not the product of the
  // steps' K. With one integer step nothing merges: the sums stay the step-by-step ones, bit
  // for bit, even where padding maps two outputs to one pixel.
  const merge = inner.K > 1 && outer.K > 1;
  const wide = inner.K * outer.K;
  const idx = new Int32Array(outer.size * wide);
  const wgt = new Float32Array(outer.size * wide);
  const count = new Int32Array(outer.size);
  let K = 1;
  for (let o = 0; o < outer.size; o++) {
    const base = o * wide;
    let m = 0;
    const add = (i: number, w: number): void => {
      for (let q = merge ? 0 : m; q < m; q++) {
        if (idx[base + q] === i) {
          wgt[base + q] = Math.fround(wgt[base + q]! + w);
          return;
        }
      }
      idx[base + m] = i;
      wgt[base + m] = w;
      m++;
    };
    for (let a = 0; a < outer.K; a++) {
      const mid = outer.index[o * outer.K + a]!;
      const wa = outer.weight[o * outer.K + a]!;
      if (mid < 0) add(-1, wa); // a fill tap stays a fill tap
      else for (let b = 0; b < inner.K; b++) add(inner.index[mid * inner.K + b]!, Math.fround(wa * inner.weight[mid * inner.K + b]!));
    }
    count[o] = m;
    if (m > K) K = m;
  }
  const index = new Int32Array(outer.size * K);
  const weight = new Float32Array(outer.size * K);
  for (let o = 0; o < outer.size; o++) {
    const m = count[o]!;
    for (let k = 0; k < K; k++) {
      // Unused slots repeat the first tap with weight 0 (they add exactly 0).
      index[o * K + k] = idx[o * wide + (k < m ? k : 0)]!;
      weight[o * K + k] = k < m ? wgt[o * wide + k]! : 0;
    }
  }
  return { size: outer.size, K, index, weight };
}

/**
 * Writes `t` widened to K taps per coordinate into `index` / `weight` at `at`: the extra taps
 * are fill taps of weight 0 (they add exactly 0).
 */
export function writeWidened(t: AxisTaps, K: number, index: Int32Array, weight: Float32Array, at: number): void {
  if (t.K === K) {
    index.set(t.index, at);
    weight.set(t.weight, at);
    return;
  }
  for (let o = 0; o < t.size; o++) {
    const to = at + o * K;
    for (let a = 0; a < K; a++) {
      index[to + a] = a < t.K ? t.index[o * t.K + a]! : -1;
      weight[to + a] = a < t.K ? t.weight[o * t.K + a]! : 0;
    }
  }
}

/** Python's round(): halves go to the even neighbour (torchvision's parameter maths uses it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
