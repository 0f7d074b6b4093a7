/**
 * Warps: geometry where each output pixel reads a source point through a projective map (a 3x3
 * matrix; rotation and affine maps are special cases), as torchvision's rotate, affine and
 * perspective do on tensors (grid_sample with align_corners=False).
 *
 * The map takes an output pixel's centre (x + 0.5, y + 0.5), in pixels from the output's top
 * left corner, to a source point in the same units; the source is sampled at that point minus
 * 0.5 (pixel centres at integers). `mapPoint` applies the same maths to any point, so boxes and
 * keypoints can follow an image through it.
 *
 * Sampling follows torchvision: source pixels outside the image read 0, and the fill is blended
 * with the weight of the in-image part (bilinear and bicubic: v * m + (1 - m) * fill, m the
 * in-image weight; nearest: the fill where the nearest pixel is outside). Bicubic is torch's
 * grid_sample bicubic (Keys' cubic, a = -0.75, 4 x 4 taps, rows summed over x first), which
 * torchvision 0.14 refuses for tensors only at its argument check. Like torchvision, a border pixel that is
 * partly outside is thereby attenuated twice when the fill is 0.
 */
import { cubicFar, cubicNear } from "./geometry";
import type { FloatImage } from "./reference";

/** Row-major 3x3 projective matrix: (x, y) -> ((m0 x + m1 y + m2) / w, (m3 x + m4 y + m5) / w), w = m6 x + m7 y + m8. */
export type Mat3 = readonly [number, number, number, number, number, number, number, number, number];

export type WarpInterpolation = "nearest" | "bilinear" | "bicubic";

/** The job's `warp` code of each interpolation (native/PLAN_ABI.md). */
export const WARP_MODES: Readonly<Record<WarpInterpolation, 1 | 2 | 3>> = { nearest: 1, bilinear: 2, bicubic: 3 };

export function mapPoint(m: Mat3, x: number, y: number): [number, number] {
  const w = m[6] * x + m[7] * y + m[8];
  return [(m[0] * x + m[1] * y + m[2]) / w, (m[3] * x + m[4] * y + m[5]) / w];
}

/** a after b: the map that applies b first. */
export function compose(a: Mat3, b: Mat3): Mat3 {
  const r = new Array<number>(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) r[i * 3 + j] = a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!;
  return r as unknown as Mat3;
}

export function translation(tx: number, ty: number): Mat3 {
  return [1, 0, tx, 0, 1, ty, 0, 0, 1];
}

/**
 * torchvision's inverse affine matrix (functional._get_inverse_affine_matrix): for an output
 * point relative to the image centre, the source point relative to it. `center` is relative to
 * the image centre too; angle and shear in degrees.
 */
export function inverseAffine(center: readonly [number, number], angle: number, translate: readonly [number, number], scale: number, shear: readonly [number, number]): [number, number, number, number, number, number] {
  const rot = (angle * Math.PI) / 180;
  const sx = (shear[0] * Math.PI) / 180;
  const sy = (shear[1] * Math.PI) / 180;
  const [cx, cy] = center;
  const [tx, ty] = translate;
  const a = Math.cos(rot - sy) / Math.cos(sy);
  const b = (-Math.cos(rot - sy) * Math.tan(sx)) / Math.cos(sy) - Math.sin(rot);
  const c = Math.sin(rot - sy) / Math.cos(sy);
  const d = (-Math.sin(rot - sy) * Math.tan(sx)) / Math.cos(sy) + Math.cos(rot);
  // The rotation-shear part has determinant 1, so its inverse is the adjugate; then the scale.
  const m = [d, -b, 0, -c, a, 0].map((x) => x / scale);
  m[2] = m[2]! + m[0]! * (-cx - tx) + m[1]! * (-cy - ty) + cx;
  m[5] = m[5]! + m[3]! * (-cx - tx) + m[4]! * (-cy - ty) + cy;
  return m as [number, number, number, number, number, number];
}

/** An inverse affine matrix about the centres (torchvision's convention) as a pixel-space Mat3. */
export function affineWarp(inv: readonly number[], h: number, w: number, oh: number, ow: number): Mat3 {
  const centred: Mat3 = [inv[0]!, inv[1]!, inv[2]!, inv[3]!, inv[4]!, inv[5]!, 0, 0, 1];
  return compose(translation(w / 2, h / 2), compose(centred, translation(-ow / 2, -oh / 2)));
}

/**
 * The perspective map taking `endpoints` to `startpoints` (torchvision's _get_perspective_coeffs:
 * output corners to source corners), solved exactly (torchvision solves the same 8x8 system by
 * float32 least squares).
 */
export function perspectiveWarp(startpoints: readonly (readonly number[])[], endpoints: readonly (readonly number[])[]): Mat3 {
  const A: number[][] = [];
  const b: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = endpoints[i]!;
    const [u, v] = startpoints[i]!;
    A.push([x!, y!, 1, 0, 0, 0, -u! * x!, -u! * y!]);
    b.push(u!);
    A.push([0, 0, 0, x!, y!, 1, -v! * x!, -v! * y!]);
    b.push(v!);
  }
  const c = solve(A, b);
  return [c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, 1];
}

/** Gaussian elimination with partial pivoting (8 unknowns). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let p = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(M[r]![col]!) > Math.abs(M[p]![col]!)) p = r;
    [M[col], M[p]] = [M[p]!, M[col]!];
    const piv = M[col]![col]!;
    for (let r = col + 1; r < n; r++) {
      const f = M[r]![col]! / piv;
      for (let k = col; k <= n; k++) M[r]![k] = M[r]![k]! - f * M[col]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= M[r]![k]! * x[k]!;
    x[r] = s / M[r]![r]!;
  }
  return x;
}

const f = Math.fround;

/** Source points beyond this many pixels (or NaN, from a point at infinity) read only the fill. */
export const WARP_RANGE = 4194304; // 2^22: floor and the fractions below stay exact in float32

/** An image the warp reads: HWC values (uint8 sources or float32 intermediates). */
export interface WarpSource {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly data: ArrayLike<number>;
}

/** An earlier warp's input image, checked as a domain (see warpImage). */
export interface WarpFrame {
  /** Map from the (displaced) output point to a point of that image. */
  readonly m: Mat3;
  readonly height: number;
  readonly width: number;
}

/** Where the warp may read and what it adds (see warpImage); every field optional. */
export interface WarpExtras {
  /** [x0, y0, x1, y1]: the extent of the image the (first) warp reads, in source coordinates. */
  domain?: readonly number[];
  /** [x0, y0, x1, y1]: where that image's pixels come from the source (the rest is padding). */
  real?: readonly number[];
  /** Earlier warps' input images, earliest first: fill beyond each, blended as the warp blends. */
  frames?: readonly WarpFrame[];
  /** A displacement grid: G x G points of (dx, dy) in pixels, row-major, over the output. */
  grid?: { readonly G: number; readonly d: ArrayLike<number> };
}

/** The source point of p = (px, py) through the float32 matrix q: X / Wd - 0.5, Y / Wd - 0.5. */
function sourcePoint(q: readonly number[], px: number, py: number): [number, number] {
  const X = f(f(f(q[0]! * px) + f(q[1]! * py)) + q[2]!);
  const Y = f(f(f(q[3]! * px) + f(q[4]! * py)) + q[5]!);
  const Wd = f(f(f(q[6]! * px) + f(q[7]! * py)) + q[8]!);
  return [f(f(X / Wd) - 0.5), f(f(Y / Wd) - 0.5)];
}

/** A point's bilinear corners: the top-left (x0, y0), and the weights of top-left, top-right, bottom-left, bottom-right. */
function corners(ix: number, iy: number): { x0: number; y0: number; w: [number, number, number, number] } {
  const x0 = Math.floor(ix);
  const y0 = Math.floor(iy);
  const fx = f(ix - x0);
  const fy = f(iy - y0);
  const gx = f(1 - fx);
  const gy = f(1 - fy);
  return { x0, y0, w: [f(gx * gy), f(fx * gy), f(gx * fy), f(fx * fy)] };
}

/** Keys' cubic weights (a = -0.75) of taps i0 - 1 .. i0 + 2 at fraction t (native cubicWeights). */
function cubicWeights(t: number): [number, number, number, number] {
  return [cubicFar(f(t + 1), -0.75), cubicNear(t, -0.75), cubicNear(f(1 - t), -0.75), cubicFar(f(2 - t), -0.75)];
}

/**
 * The bicubic sum at (ix, iy): 4 x 4 taps from (floor - 1), each row summed over x, then the rows
 * weighted by y (torch's order). `tap(sx, sy, k)` adds tap weight k times the tap's value into the
 * row and says whether the tap counts (in the domain); the sums of counted weights give the mask.
 */
function cubicSum(ix: number, iy: number, C: number, counts: (sx: number, sy: number) => boolean, value: (sx: number, sy: number, c: number) => number, v: Float64Array): number {
  const x0 = Math.floor(ix);
  const y0 = Math.floor(iy);
  const wx = cubicWeights(f(ix - x0));
  const wy = cubicWeights(f(iy - y0));
  const row = new Float64Array(C);
  let mask = 0;
  for (let c = 0; c < C; c++) v[c] = 0;
  for (let j = 0; j < 4; j++) {
    const sy = y0 - 1 + j;
    let rm = 0;
    row.fill(0);
    for (let i = 0; i < 4; i++) {
      const sx = x0 - 1 + i;
      if (!counts(sx, sy)) continue;
      rm = f(rm + wx[i]!);
      for (let c = 0; c < C; c++) row[c] = f(row[c]! + f(wx[i]! * value(sx, sy, c)));
    }
    mask = f(mask + f(wy[j]! * rm));
    for (let c = 0; c < C; c++) v[c] = f(v[c]! + f(wy[j]! * row[c]!));
  }
  return mask;
}

/** Weight of a point's taps inside a w x h image (bilinear or bicubic; nearest: 1 or 0), in float32. */
function frameMask(fr: WarpFrame, q: readonly number[], px: number, py: number, mode: WarpInterpolation): number {
  const [ix, iy] = sourcePoint(q, px, py);
  if (!(Math.abs(ix) <= WARP_RANGE && Math.abs(iy) <= WARP_RANGE)) return 0;
  const inside = (sx: number, sy: number) => sx >= 0 && sx < fr.width && sy >= 0 && sy < fr.height;
  if (mode === "nearest") return inside(roundEven(ix), roundEven(iy)) ? 1 : 0;
  if (mode === "bicubic") return cubicSum(ix, iy, 0, inside, () => 0, new Float64Array(0));
  const { x0, y0, w } = corners(ix, iy);
  let mask = 0;
  for (let k = 0; k < 4; k++) if (inside(x0 + (k & 1), y0 + (k >> 1))) mask = f(mask + w[k]!);
  return mask;
}

/**
 * Warps `img` to oh x ow through `m`: the maths of native/PLAN_ABI.md's warp pass, in float32
 * (every matrix, window and displacement rounded to float32 first). For output (y, x) with
 * centre xc = x + 0.5, yc = y + 0.5: the point p = (xc, yc) plus the grid's displacement there,
 * then the source point ix = X / Wd - 0.5, iy = Y / Wd - 0.5 with X = (m0 px + m1 py) + m2 and
 * so on. Windows [x0, y0, x1, y1] hold pixel (sx, sy) when x0 < sx + 0.5 < x1 and
 * y0 < sy + 0.5 < y1. A pixel in `real` (default the whole image) reads the source; a pixel in
 * `domain` (default `real`) but not in `real` reads the fill as a pixel value (padding folded
 * into the map); other pixels read 0, and the fill is blended by the weight of the pixels in the
 * domain: out = v * m + (1 - m) * fill, as torchvision. Each frame then blends again with the
 * weight of the point's corners inside that frame. The step-by-step reference (a warp on its
 * own) and the plan's TypeScript executor both call this one function.
 */
export function warpImage(img: WarpSource, m: Mat3, oh: number, ow: number, mode: WarpInterpolation, fill: readonly number[], extras: WarpExtras = {}): FloatImage {
  const { width: W, channels: C, data } = img;
  const q = m.map(f);
  const real = extras.real ?? [0, 0, W, img.height];
  const [x0r, y0r, x1r, y1r] = real.map(f) as [number, number, number, number];
  const [x0d, y0d, x1d, y1d] = (extras.domain ?? real).map(f) as [number, number, number, number];
  const frames = (extras.frames ?? []).map((fr) => ({ fr, q: fr.m.map(f) }));
  const G = extras.grid?.G ?? 0;
  const grid = extras.grid ? Float32Array.from(extras.grid.d) : new Float32Array(0);
  const gm1 = f(G - 1);
  const fow = f(ow);
  const foh = f(oh);
  const inside = (sx: number, sy: number): boolean => {
    const cx = f(sx + 0.5);
    const cy = f(sy + 0.5);
    return x0r < cx && cx < x1r && y0r < cy && cy < y1r;
  };
  const inDomain = (sx: number, sy: number): boolean => {
    const cx = f(sx + 0.5);
    const cy = f(sy + 0.5);
    return x0d < cx && cx < x1d && y0d < cy && cy < y1d;
  };
  const out = new Float32Array(oh * ow * C);
  const v = new Float64Array(C);
  const fl = fill.map(f);
  const nearest = mode === "nearest";
  for (let y = 0; y < oh; y++) {
    const yc = f(y + 0.5);
    for (let x = 0; x < ow; x++) {
      const xc = f(x + 0.5);
      let px = xc;
      let py = yc;
      if (G > 0) {
        // The grid spans the output: point (i, j) at (j * ow / (G - 1), i * oh / (G - 1)).
        const u = f(f(xc * gm1) / fow);
        const t = f(f(yc * gm1) / foh);
        const j0 = Math.min(Math.floor(u), G - 2);
        const i0 = Math.min(Math.floor(t), G - 2);
        const a = f(u - j0);
        const b = f(t - i0);
        const ra = f(1 - a);
        const rb = f(1 - b);
        const g = (i: number, j: number, k: number) => grid[((i0 + i) * G + j0 + j) * 2 + k]!;
        const dx = f(f(f(f(ra * g(0, 0, 0)) + f(a * g(0, 1, 0))) * rb) + f(f(f(ra * g(1, 0, 0)) + f(a * g(1, 1, 0))) * b));
        const dy = f(f(f(f(ra * g(0, 0, 1)) + f(a * g(0, 1, 1))) * rb) + f(f(f(ra * g(1, 0, 1)) + f(a * g(1, 1, 1))) * b));
        px = f(xc + dx);
        py = f(yc + dy);
      }
      const [ix, iy] = sourcePoint(q, px, py);
      const o = (y * ow + x) * C;
      const inRange = Math.abs(ix) <= WARP_RANGE && Math.abs(iy) <= WARP_RANGE; // false for NaN
      if (mode === "bicubic") {
        let mask = 0;
        if (inRange) {
          mask = cubicSum(ix, iy, C, inDomain, (sx, sy, c) => (inside(sx, sy) ? data[(sy * W + sx) * C + c]! : fl[c]!), v);
        } else {
          for (let c = 0; c < C; c++) v[c] = 0;
        }
        const rest = f(1 - mask);
        for (let c = 0; c < C; c++) v[c] = f(f(v[c]! * mask) + f(rest * fl[c]!));
      } else if (nearest) {
        const nx = inRange ? roundEven(ix) : 0;
        const ny = inRange ? roundEven(iy) : 0;
        const hit = inRange && inside(nx, ny);
        for (let c = 0; c < C; c++) v[c] = hit ? data[(ny * W + nx) * C + c]! : fl[c]!;
      } else {
        let mask = 0;
        for (let c = 0; c < C; c++) v[c] = 0;
        if (inRange) {
          const cs = corners(ix, iy);
          // Corners in the order top-left, top-right, bottom-left, bottom-right; each adds w * S.
          for (let k = 0; k < 4; k++) {
            const sx = cs.x0 + (k & 1);
            const sy = cs.y0 + (k >> 1);
            if (!inDomain(sx, sy)) continue;
            const w = cs.w[k]!;
            mask = f(mask + w);
            if (inside(sx, sy)) {
              const p = (sy * W + sx) * C;
              for (let c = 0; c < C; c++) v[c] = f(v[c]! + f(w * data[p + c]!));
            } else {
              for (let c = 0; c < C; c++) v[c] = f(v[c]! + f(w * fl[c]!));
            }
          }
        }
        const rest = f(1 - mask);
        for (let c = 0; c < C; c++) v[c] = f(f(v[c]! * mask) + f(rest * fl[c]!));
      }
      for (const { fr, q: fq } of frames) {
        const mk = frameMask(fr, fq, px, py, mode);
        const rest = f(1 - mk);
        for (let c = 0; c < C; c++) v[c] = f(f(f(v[c]! * mk) * mk) + f(rest * fl[c]!));
      }
      for (let c = 0; c < C; c++) out[o + c] = v[c]!;
    }
  }
  return { height: oh, width: ow, channels: C, data: out };
}

/** Rounds half to even, as C's nearbyint (grid_sample's nearest). */
export function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
