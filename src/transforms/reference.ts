/**
 * The TypeScript reference: every transform applied one step at a time to a float32 HWC
 * image, with Math.fround after each elementary operation so that it reproduces IEEE float32
 * arithmetic exactly (see native/PLAN_ABI.md). The native engines fold the same steps into one
 * pass; the parity tests compare them against this.
 */
import type { Image } from "../data/types";
import type { AxisTaps } from "./geometry";

const f = Math.fround;

/** A float32 image, height x width x channels, row-major. */
export interface FloatImage {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

export function fromImage(img: Image): FloatImage {
  const data = new Float32Array(img.height * img.width * img.channels);
  for (let i = 0; i < data.length; i++) data[i] = img.data[i]!;
  return { data, height: img.height, width: img.width, channels: img.channels };
}

/** One geometric step: out(y, x, c) = sum_i wy_i * (sum_j wx_j * in(ty_i, tx_j, c)). */
export function applyTaps(img: FloatImage, ty: AxisTaps, tx: AxisTaps, fill: ArrayLike<number>): FloatImage {
  const { width: W, channels: C } = img;
  const out = new Float32Array(ty.size * tx.size * C);
  for (let y = 0; y < ty.size; y++) {
    for (let x = 0; x < tx.size; x++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let i = 0; i < ty.K; i++) {
          const r = ty.index[y * ty.K + i]!;
          let row = 0;
          for (let j = 0; j < tx.K; j++) {
            const q = tx.index[x * tx.K + j]!;
            const v = r < 0 || q < 0 ? fill[c]! : img.data[(r * W + q) * C + c]!;
            row = f(row + f(tx.weight[x * tx.K + j]! * v));
          }
          acc = f(acc + f(ty.weight[y * ty.K + i]! * row));
        }
        out[(y * tx.size + x) * C + c] = acc;
      }
    }
  }
  return { data: out, height: ty.size, width: tx.size, channels: C };
}

/** x = (x - sub[c]) / div[c] for every pixel. */
export function affine(img: FloatImage, sub: ArrayLike<number>, div: ArrayLike<number>): FloatImage {
  const out = new Float32Array(img.data.length);
  const C = img.channels;
  const d = img.data;
  // Channel by channel (the same operations as value by value; no modulo per value).
  for (let c = 0; c < C; c++) {
    const s = f(sub[c]!);
    const q = f(div[c]!);
    for (let i = c; i < out.length; i += C) out[i] = f(f(d[i]! - s) / q);
  }
  return { ...img, data: out };
}

/**
 * Luma with PIL's weights, 0.299 R + 0.587 G + 0.114 B (the value itself for 1 channel): what
 * torchvision computes on PIL images. Its tensor path weighs 0.2989, 0.587, 0.114; the two
 * differ by at most 0.0001 * R (0.026 of a uint8 level).
 */
export function grayAt(d: Float32Array, p: number, C: number): number {
  if (C === 1) return d[p]!;
  return f(f(f(f(0.299) * d[p]!) + f(f(0.587) * d[p + 1]!)) + f(f(0.114) * d[p + 2]!));
}

export function grayscale(img: FloatImage, outChannels: number): FloatImage {
  const n = img.height * img.width;
  const out = new Float32Array(n * outChannels);
  for (let p = 0; p < n; p++) {
    const g = grayAt(img.data, p * img.channels, img.channels);
    for (let c = 0; c < outChannels; c++) out[p * outChannels + c] = g;
  }
  return { ...img, data: out, channels: outChannels };
}

function clamp(x: number, bound: number): number {
  return x < 0 ? 0 : x > bound ? bound : x;
}

/** blend(x, other) = clamp(factor * x + (1 - factor) * other), as torchvision's _blend. */
export function brightness(img: FloatImage, factor: number, bound: number): FloatImage {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clamp(f(f(factor) * img.data[i]!), bound);
  return { ...img, data: out };
}

export function meanGray(img: FloatImage): number {
  let sum = 0; // double accumulation, row-major: part of the ABI
  const n = img.height * img.width;
  for (let p = 0; p < n; p++) sum += grayAt(img.data, p * img.channels, img.channels);
  return f(sum / n);
}

export function contrast(img: FloatImage, factor: number, bound: number): FloatImage {
  const mean = meanGray(img);
  const k = f(factor);
  const rest = f(f(1 - k) * mean);
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clamp(f(f(k * img.data[i]!) + rest), bound);
  return { ...img, data: out };
}

export function saturation(img: FloatImage, factor: number, bound: number): FloatImage {
  const k = f(factor);
  const rest = f(1 - k);
  const C = img.channels;
  const out = new Float32Array(img.data.length);
  for (let p = 0; p < img.height * img.width; p++) {
    const g = grayAt(img.data, p * C, C);
    for (let c = 0; c < C; c++) out[p * C + c] = clamp(f(f(k * img.data[p * C + c]!) + f(rest * g)), bound);
  }
  return { ...img, data: out };
}

export function erase(img: FloatImage, y0: number, x0: number, h: number, w: number, value: ArrayLike<number>): FloatImage {
  const out = img.data.slice();
  const C = img.channels;
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      for (let c = 0; c < C; c++) out[(y * img.width + x) * C + c] = f(value[c]!);
    }
  }
  return { ...img, data: out };
}

/** HWC float image into a CHW slot of an NCHW batch. */
export function writeCHW(img: FloatImage, out: Float32Array, offset: number): void {
  const { height: H, width: W, channels: C } = img;
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < H * W; p++) out[offset + c * H * W + p] = img.data[p * C + c]!;
  }
}

/** The largest of three (NaN if any is NaN; of equal values, such as -0 and 0, the first). */
function max3(a: number, b: number, c: number): number {
  if (a !== a || b !== b || c !== c) return NaN;
  let m = a;
  if (b > m) m = b;
  if (c > m) m = c;
  return m;
}

/** The smallest of three, as max3. */
function min3(a: number, b: number, c: number): number {
  if (a !== a || b !== b || c !== c) return NaN;
  let m = a;
  if (b < m) m = b;
  if (c < m) m = c;
  return m;
}

/**
 * torchvision's adjust_hue (its tensor path, _rgb2hsv and _hsv2rgb) in float32, in the units in
 * force: hue and saturation do not depend on the scale, value is clamped to [0, bound] as
 * torchvision clamps to [0, 1]. One channel is left as it is (as PIL and torchvision do).
 */
export function hue(img: FloatImage, factor: number, bound: number): FloatImage {
  if (img.channels === 1) return img;
  const d = img.data;
  const out = new Float32Array(d.length);
  const hf = f(factor);
  const cl = (x: number) => clamp(x, bound);
  for (let i = 0; i < d.length; i += 3) {
    const r = d[i]!;
    const g = d[i + 1]!;
    const b = d[i + 2]!;
    const maxc = max3(r, g, b);
    const minc = min3(r, g, b);
    const eqc = maxc === minc;
    const cr = f(maxc - minc);
    const s = f(cr / (eqc ? 1 : maxc));
    const div = eqc ? 1 : cr;
    const rc = f(f(maxc - r) / div);
    const gc = f(f(maxc - g) / div);
    const bc = f(f(maxc - b) / div);
    const hr = maxc === r ? f(bc - gc) : 0;
    const hg = maxc === g && maxc !== r ? f(f(2 + rc) - bc) : 0;
    const hb = maxc !== g && maxc !== r ? f(f(4 + gc) - rc) : 0;
    let h = f(f(f(hr + hg) + hb) / 6);
    h = f(h + 1) % 1; // torch.fmod: exact
    h = f(h + hf);
    h = f(h - Math.floor(h)); // (h + factor) % 1.0, Python's sign convention
    const h6 = f(h * 6);
    const k = Math.floor(h6);
    const fr = f(h6 - k);
    const v = maxc;
    const p = cl(f(v * f(1 - s)));
    const q = cl(f(v * f(1 - f(s * fr))));
    const t = cl(f(v * f(1 - f(s * f(1 - fr)))));
    // A NaN sector (from NaN input) is 4, as torch's int32 conversion of NaN then % 6 gives.
    const [R, G, B] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][Number.isFinite(k) ? k % 6 : 4]!;
    out[i] = R!;
    out[i + 1] = G!;
    out[i + 2] = B!;
  }
  return { ...img, data: out };
}
