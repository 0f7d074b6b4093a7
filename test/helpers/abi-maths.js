"use strict";
// Pieces of native/PLAN_ABI.md written out independently of the engines, for the two oracles
// that test them (native-abi.test.js for the C++ engine, cuda.test.js for the CUDA emulation):
// JITTER's order table and its hue step.
const f = Math.fround;

/** JITTER orders: the permutations of (0 brightness, 1 contrast, 2 saturation, 3 hue), lexicographic. */
const ORDERS = [];
(function permute(prefix, rest) {
  if (!rest.length) ORDERS.push(prefix);
  rest.forEach((x, i) => permute([...prefix, x], [...rest.slice(0, i), ...rest.slice(i + 1)]));
})([], [0, 1, 2, 3]);

/** The ABI's max and min of three: NaN if any is NaN, else the first largest (smallest). */
function max3(a, b, c) {
  if ([a, b, c].some(Number.isNaN)) return NaN;
  return b > a ? (c > b ? c : b) : c > a ? c : a;
}
function min3(a, b, c) {
  if ([a, b, c].some(Number.isNaN)) return NaN;
  return b < a ? (c < b ? c : b) : c < a ? c : a;
}

const clamp = (x, bound) => {
  const m = x < 0 ? 0 : x;
  return m > bound ? bound : m;
};

/** The hue step on one pixel: torchvision's RGB -> HSV, shift, HSV -> RGB, in float32. */
function hueOf(r, g, b, factor, bound) {
  const mx = max3(r, g, b);
  const mn = min3(r, g, b);
  const flat = mx === mn;
  const s = f(f(mx - mn) / (flat ? 1 : mx));
  const d = flat ? 1 : f(mx - mn);
  const [rc, gc, bc] = [r, g, b].map((x) => f(f(mx - x) / d));
  let h = mx === r ? f(bc - gc) : mx === g ? f(f(2 + rc) - bc) : f(f(4 + gc) - rc);
  h = f(f(f(h / 6) + 1) % 1);
  h = f(h + f(factor));
  h = f(h - Math.floor(h));
  const k = Math.floor(f(h * 6));
  const fr = f(f(h * 6) - k);
  const p = clamp(f(mx * f(1 - s)), bound);
  const q = clamp(f(mx * f(1 - f(s * fr))), bound);
  const t = clamp(f(mx * f(1 - f(s * f(1 - fr)))), bound);
  return [[mx, t, p], [q, mx, p], [p, mx, t], [p, q, mx], [t, p, mx], [mx, p, q]][Number.isFinite(k) ? k % 6 : 4];
}

/** INVERT, SOLARIZE, POSTERIZE on one value (code 4, 5, 6; p = the op's parameters after `enabled`). */
function levelOp(code, x, bound, arg) {
  if (code === 4) return f(bound - x);
  if (code === 5) return x >= arg ? f(bound - x) : x;
  const y = bound === 255 ? x : f(x * 255);
  let r = Math.round(y);
  if (Math.abs(y - Math.trunc(y)) === 0.5 && r % 2 !== 0) r -= 1;
  r = r >= 0 ? r : 0; // NaN -> 0
  r = r <= 255 ? r : 255;
  const q = r & ((0xff << (8 - arg)) & 0xff);
  return bound === 255 ? q : f(q / 255);
}

/** The uint8 level of a value (POSTERIZE's and EQUALIZE's). */
function levelOf(x, bound) {
  const y = bound === 255 ? x : f(x * 255);
  let r = Math.round(y);
  if (Math.abs(y - Math.trunc(y)) === 0.5 && r % 2 !== 0) r -= 1;
  r = r >= 0 ? r : 0;
  return r <= 255 ? r : 255;
}

/** AUTOCONTRAST (code 7) and EQUALIZE (code 8) on one channel's values, in row-major order. */
function planeOp(code, values, bound) {
  if (code === 7) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of values) {
      if (x < lo || (x === 0 && lo === 0 && Object.is(x, -0))) lo = x;
      if (x > hi || (x === 0 && hi === 0 && Object.is(hi, -0))) hi = x;
    }
    const flat = !(hi > lo);
    const min = flat ? 0 : lo;
    const scale = flat ? 1 : f(bound / f(hi - lo));
    return values.map((x) => clamp(f(f(x - min) * scale), bound));
  }
  const hist = new Array(256).fill(0);
  for (const x of values) hist[levelOf(x, bound)]++;
  let top = 255;
  while (top > 0 && hist[top] === 0) top--;
  const step = Math.floor((values.length - hist[top]) / 255);
  const lut = [];
  let below = 0;
  for (let q = 0; q < 256; q++) {
    lut.push(step === 0 ? q : Math.min(255, Math.floor((below + Math.floor(step / 2)) / step)));
    below += hist[q];
  }
  return values.map((x) => {
    const q = lut[levelOf(x, bound)];
    return bound === 255 ? q : f(q / 255);
  });
}

/** SHARPNESS (code 9) on one channel's H x W values (row-major): interior pixels blend with the 3 x 3 kernel's sum. */
function sharpPlane(values, H, W, factor, bound) {
  if (H <= 2 || W <= 2) return values.slice();
  const side = f(1 / 13);
  const centre = f(5 / 13);
  const k1 = f(1 - factor);
  return values.map((x, i) => {
    const y = Math.floor(i / W);
    const q = i % W;
    let s = x;
    if (y > 0 && y < H - 1 && q > 0 && q < W - 1) {
      s = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s = f(s + f((dy || dx ? side : centre) * values[i + dy * W + dx]));
    }
    return clamp(f(f(factor * x) + f(k1 * s)), bound);
  });
}

module.exports = { ORDERS, hueOf, levelOp, planeOp, sharpPlane };
