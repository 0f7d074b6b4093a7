/** Pixel plumbing shared by the image views: an RGB canvas, tile conversion, nearest upscaling. */
import type { Canvas } from "./font";
import { encodePng } from "./png";
import { makeBundle, type Bundle } from "../display/index";

export type { Canvas } from "./font";

export function whiteCanvas(width: number, height: number): Canvas {
  const rgb = new Uint8Array(width * height * 3);
  rgb.fill(255);
  return { width, height, rgb };
}

/** Channels a tile of `c` channels is drawn from: grey (1) or the first three (3, or 4 without alpha). */
export function displayChannels(c: number): 1 | 3 {
  return c === 1 ? 1 : 3;
}

/**
 * Converts one CHW image (`c` planes of h*w starting at `offset`) to HWC RGB bytes:
 * byte = clamp(round(x * a[ch] + b[ch]), 0, 255). Grey images are replicated to RGB;
 * a fourth (alpha) channel is ignored. NaN becomes 0.
 */
export function chwToRgb(
  src: ArrayLike<number>,
  offset: number,
  c: number,
  h: number,
  w: number,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  out: Uint8Array,
): void {
  const plane = h * w;
  if (c === 1) {
    const a0 = a[0]!;
    const b0 = b[0]!;
    for (let i = 0, o = 0; i < plane; i++, o += 3) {
      let v = src[offset + i]! * a0 + b0;
      v = v > 0 ? (v < 255 ? v + 0.5 : 255) : 0;
      const q = v | 0;
      out[o] = q;
      out[o + 1] = q;
      out[o + 2] = q;
    }
    return;
  }
  for (let ch = 0; ch < 3; ch++) {
    const ac = a[ch]!;
    const bc = b[ch]!;
    const base = offset + ch * plane;
    for (let i = 0, o = ch; i < plane; i++, o += 3) {
      let v = src[base + i]! * ac + bc;
      v = v > 0 ? (v < 255 ? v + 0.5 : 255) : 0;
      out[o] = v | 0;
    }
  }
}

/** Converts one HWC uint8 image (1, 3 or 4 channels) to HWC RGB bytes. */
export function hwcToRgb(src: Uint8Array, h: number, w: number, c: number, out: Uint8Array): void {
  const n = h * w;
  if (c === 3) {
    out.set(src.subarray(0, n * 3));
    return;
  }
  for (let i = 0, o = 0; i < n; i++, o += 3) {
    if (c === 1) {
      const v = src[i]!;
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
    } else {
      const s = i * c;
      out[o] = src[s]!;
      out[o + 1] = src[s + 1]!;
      out[o + 2] = src[s + 2]!;
    }
  }
}

/**
 * Draws an RGB image of sw x sh into the canvas at (dx, dy) with size dw x dh, nearest
 * neighbour (source pixel floor(x * sw / dw)); repeated source rows are copied, not recomputed.
 */
export function blitNearest(canvas: Canvas, src: Uint8Array, sw: number, sh: number, dx: number, dy: number, dw: number, dh: number): void {
  const { width, rgb } = canvas;
  const xmap = new Int32Array(dw);
  for (let x = 0; x < dw; x++) xmap[x] = Math.min(sw - 1, Math.floor((x * sw) / dw)) * 3;
  let prevSy = -1;
  let prevRow = -1;
  for (let y = 0; y < dh; y++) {
    const py = dy + y;
    if (py < 0 || py >= canvas.height) continue;
    const sy = Math.min(sh - 1, Math.floor((y * sh) / dh));
    const rowStart = (py * width + dx) * 3;
    if (sy === prevSy && prevRow >= 0) {
      rgb.copyWithin(rowStart, prevRow, prevRow + dw * 3);
      continue;
    }
    const s = sy * sw * 3;
    for (let x = 0, o = rowStart; x < dw; x++, o += 3) {
      const si = s + xmap[x]!;
      rgb[o] = src[si]!;
      rgb[o + 1] = src[si + 1]!;
      rgb[o + 2] = src[si + 2]!;
    }
    prevSy = sy;
    prevRow = rowStart;
  }
}

/**
 * Draws an RGB image of sw x sh into the canvas at (dx, dy) with size dw x dh: nearest neighbour
 * when enlarging, the mean of the covered source pixels (a box filter) when shrinking, so that a
 * large photo shown small does not alias.
 */
export function blitScaled(canvas: Canvas, src: Uint8Array, sw: number, sh: number, dx: number, dy: number, dw: number, dh: number): void {
  if (dw >= sw && dh >= sh) return blitNearest(canvas, src, sw, sh, dx, dy, dw, dh);
  const { width, rgb } = canvas;
  const x0s = new Int32Array(dw + 1);
  for (let x = 0; x <= dw; x++) x0s[x] = Math.min(sw, Math.floor((x * sw) / dw));
  const acc = new Float64Array(dw * 3);
  const cnt = new Int32Array(dw);
  for (let y = 0; y < dh; y++) {
    const py = dy + y;
    const sy0 = Math.floor((y * sh) / dh);
    const sy1 = Math.max(sy0 + 1, Math.min(sh, Math.floor(((y + 1) * sh) / dh)));
    if (py < 0 || py >= canvas.height) continue;
    acc.fill(0);
    cnt.fill(0);
    for (let sy = sy0; sy < sy1; sy++) {
      const row = sy * sw * 3;
      for (let x = 0; x < dw; x++) {
        const a = x0s[x]!;
        const b = Math.max(a + 1, x0s[x + 1]!);
        for (let sx = a; sx < Math.min(b, sw); sx++) {
          const si = row + sx * 3;
          acc[x * 3] += src[si]!;
          acc[x * 3 + 1] += src[si + 1]!;
          acc[x * 3 + 2] += src[si + 2]!;
          cnt[x]!++;
        }
      }
    }
    const rowStart = (py * width + dx) * 3;
    for (let x = 0; x < dw; x++) {
      const k = cnt[x]! || 1;
      rgb[rowStart + x * 3] = Math.round(acc[x * 3]! / k);
      rgb[rowStart + x * 3 + 1] = Math.round(acc[x * 3 + 1]! / k);
      rgb[rowStart + x * 3 + 2] = Math.round(acc[x * 3 + 2]! / k);
    }
  }
}

/** Fills a rectangle (clipped to the canvas). */
export function fillRect(canvas: Canvas, x: number, y: number, w: number, h: number, color: readonly [number, number, number]): void {
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(canvas.width, x + w);
  const y1 = Math.min(canvas.height, y + h);
  for (let py = y0; py < y1; py++) {
    for (let px = x0; px < x1; px++) {
      const o = (py * canvas.width + px) * 3;
      canvas.rgb[o] = color[0];
      canvas.rgb[o + 1] = color[1];
      canvas.rgb[o + 2] = color[2];
    }
  }
}

/** The canvas as an image bundle: one PNG plus its size, and a text summary. */
export function pngBundle(canvas: Canvas, text: string): Bundle {
  const png = encodePng(canvas.rgb, canvas.width, canvas.height, 3);
  return makeBundle(
    { "image/png": png.toString("base64"), "text/plain": text },
    { "image/png": { width: canvas.width, height: canvas.height } },
  );
}
