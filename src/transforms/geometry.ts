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

export function flipTaps(n: number): AxisTaps {
  return integerTaps(n, (o) => n - 1 - o);
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

/**
 * Resampling of an axis of length n to `size` (half-pixel centres, as PyTorch's
 * interpolate with align_corners=False and torchvision's Resize without antialiasing).
 */
export function resampleTaps(n: number, size: number, mode: "bilinear" | "nearest"): AxisTaps {
  const scale = n / size;
  if (mode === "nearest") {
    // PyTorch's nearest index, in its float32 arithmetic: floor(o * float32(n / size)). Exact
    // integer division picks another pixel than torch at some (n, size) pairs (238 of 13,754
    // checked), double arithmetic at more (423); this formula at none.
    const s32 = Math.fround(scale);
    return integerTaps(size, (o) => Math.min(Math.floor(Math.fround(o * s32)), n - 1));
  }
  const index = new Int32Array(size * 2);
  const weight = new Float32Array(size * 2);
  for (let o = 0; o < size; o++) {
    let src = (o + 0.5) * scale - 0.5;
    if (src < 0) src = 0;
    const i0 = Math.min(Math.floor(src), n - 1);
    const i1 = Math.min(i0 + 1, n - 1);
    const frac = src - i0;
    index[2 * o] = i0;
    index[2 * o + 1] = i1;
    weight[2 * o] = 1 - frac;
    weight[2 * o + 1] = frac;
  }
  return { size, K: 2, index, weight };
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

function composeUncached(inner: AxisTaps, outer: AxisTaps): AxisTaps {
  const K = inner.K * outer.K;
  const index = new Int32Array(outer.size * K);
  const weight = new Float32Array(outer.size * K);
  for (let o = 0; o < outer.size; o++) {
    let k = o * K;
    for (let a = 0; a < outer.K; a++) {
      const mid = outer.index[o * outer.K + a]!;
      const wa = outer.weight[o * outer.K + a]!;
      for (let b = 0; b < inner.K; b++) {
        if (mid < 0) {
          // A fill tap stays a fill tap; its weight lands on the first inner slot only.
          index[k] = -1;
          weight[k] = b === 0 ? wa : 0;
        } else {
          index[k] = inner.index[mid * inner.K + b]!;
          weight[k] = Math.fround(wa * inner.weight[mid * inner.K + b]!);
        }
        k++;
      }
    }
  }
  return { size: outer.size, K, index, weight };
}

/** Widens a table to K taps per coordinate with zero-weight fill taps (they add exactly 0). */
export function widenTaps(t: AxisTaps, K: number): AxisTaps {
  if (t.K === K) return t;
  const index = new Int32Array(t.size * K).fill(-1);
  const weight = new Float32Array(t.size * K);
  for (let o = 0; o < t.size; o++) {
    for (let a = 0; a < t.K; a++) {
      index[o * K + a] = t.index[o * t.K + a]!;
      weight[o * K + a] = t.weight[o * t.K + a]!;
    }
  }
  return { size: t.size, K, index, weight };
}

/** Python's round(): halves go to the even neighbour (torchvision's parameter maths uses it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
