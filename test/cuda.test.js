"use strict";
// The CUDA engine. Without an addon, driver or device: availability is reported (never thrown),
// every device call throws a CudaUnavailableError naming the reason, and arguments are checked.
// With the addon (a driver is not needed): the kernel's own per-pixel code, run on the CPU by
// emulatePlan, equals an independent float32 implementation of native/PLAN_ABI.md, the
// TypeScript reference and the CPU engine; malformed jobs are rejected naming the field.
// With a device: pinned round trips, GPU == emulation on random plans, copy/compute overlap,
// and recovery from an out-of-memory error. GPU tests skip, with the reason printed, elsewhere.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawnSync } = require("child_process");
const cuda = require("../dist/device/index.js");
const errors = require("../dist/errors.js");
const { RandomStream } = require("../dist/sampling/rng.js");
const viz = require("../dist/viz/index.js");

const status = cuda.status();
const gpuSkip = cuda.available() ? false : `no usable CUDA device: ${cuda.unavailableReason()}`;
const addonSkip = status.addonLoaded ? false : `the CUDA addon is not built: ${status.reason}`;
const noGpuSkip = cuda.available() ? "a CUDA device is present, so CUDA calls do not fail here" : false;
if (gpuSkip) console.log(`# CUDA device tests skipped: ${gpuSkip}`);
if (addonSkip) console.log(`# CUDA addon tests skipped: ${addonSkip}`);

function tryRequire(p) {
  try {
    return require(p);
  } catch (e) {
    return { __error: e };
  }
}
const T = tryRequire("../dist/transforms/index.js");
const ref = tryRequire("../dist/transforms/reference.js");
const transformsSkip = T.__error || ref.__error ? `transforms not built: ${(T.__error || ref.__error).message}` : false;
const planRef = tryRequire("../dist/engines/plan-reference.js");
const planRefSkip = planRef.__error ? `the TypeScript executor is not built: ${planRef.__error.message}` : false;
const nativeMod = tryRequire("../dist/engines/addon-cpu.js");
const cpu = !nativeMod.__error && typeof nativeMod.loadNative === "function" ? nativeMod.loadNative() : { ok: false, reason: nativeMod.__error ? nativeMod.__error.message : "no loadNative()" };
const cpuSkip = cpu.ok ? false : `CPU engine unavailable: ${cpu.reason}`;
if (cpuSkip) console.log(`# CUDA-vs-CPU-engine comparisons skipped: ${cpuSkip}`);

const f = Math.fround;

// ---------------------------------------------------------------------------------------------
// An independent implementation of PLAN_ABI.md: whole-image passes (the kernel works pixel by
// pixel and recomputes), float32 via Math.fround after every operation.

const G_R = f(0.299);
const G_G = f(0.587);
const G_B = f(0.114);
const gray1 = (v, C, p) => (C === 1 ? v[0][p] : f(f(f(G_R * v[0][p]) + f(G_G * v[1][p])) + f(G_B * v[2][p])));
const clamp = (x, bound) => {
  const m = x < 0 ? 0 : x;
  return bound < m ? bound : m;
};
const { ORDERS, hueOf, levelOp, planeOp, sharpPlane } = require("./helpers/abi-maths");


function abiReference(job) {
  const { n, inC, outC, outH, outW, K } = job;
  const HW = outH * outW;
  const P = n ? job.params.length / n : 0;
  const per = (outH + outW) * K;
  const out = new Float32Array(n * outC * HW);
  for (let s = 0; s < n; s++) {
    const src = job.sources[s];
    const w = job.srcDims[2 * s + 1];
    let v = [];
    for (let c = 0; c < inC; c++) {
      const plane = new Float64Array(HW);
      for (let y = 0; y < outH; y++) {
        for (let x = 0; x < outW; x++) {
          let acc = 0;
          for (let i = 0; i < K; i++) {
            const r = job.tapIndex[s * per + y * K + i];
            const wy = job.tapWeight[s * per + y * K + i];
            let row = 0;
            for (let q = 0; q < K; q++) {
              const col = job.tapIndex[s * per + outH * K + x * K + q];
              const wx = job.tapWeight[s * per + outH * K + x * K + q];
              const S = r < 0 || col < 0 ? job.fill[c] : src[(r * w + col) * inC + c];
              row = f(row + f(wx * S));
            }
            acc = f(acc + f(wy * row));
          }
          plane[y * outW + x] = acc;
        }
      }
      v.push(plane);
    }
    let C = inC;
    const block = s * P;
    for (let k = 0; k < job.program.length; k++) {
      const o = block + job.opOffsets[k];
      const p = (i) => job.params[o + i];
      if (p(0) === 0) continue;
      const code = job.program[k];
      if (code === 0) {
        for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++) v[c][i] = f(f(v[c][i] - p(1 + c)) / p(1 + C + c));
      } else if (code === 1) {
        const oc = p(1);
        const g = new Float64Array(HW);
        for (let i = 0; i < HW; i++) g[i] = gray1(v, C, i);
        v = Array.from({ length: oc }, () => Float64Array.from(g));
        C = oc;
      } else if (code === 2) {
        const bound = p(1);
        for (const step of ORDERS[p(2)]) {
          const factor = p(3 + step);
          if (Number.isNaN(factor)) continue;
          if (step === 0) {
            for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++) v[c][i] = clamp(f(factor * v[c][i]), bound);
          } else if (step === 1) {
            let sum = 0;
            for (let i = 0; i < HW; i++) sum += gray1(v, C, i);
            const mean = f(sum / HW);
            const km = f(f(1 - factor) * mean);
            for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++) v[c][i] = clamp(f(f(factor * v[c][i]) + km), bound);
          } else if (step === 2) {
            const k1 = f(1 - factor);
            for (let i = 0; i < HW; i++) {
              const g = gray1(v, C, i);
              for (let c = 0; c < C; c++) v[c][i] = clamp(f(f(factor * v[c][i]) + f(k1 * g)), bound);
            }
          } else if (C === 3) {
            for (let i = 0; i < HW; i++) [v[0][i], v[1][i], v[2][i]] = hueOf(v[0][i], v[1][i], v[2][i], factor, bound);
          }
        }
      } else if (code === 10) {
        const old = v.slice();
        for (let c = 0; c < C; c++) v[c] = Float64Array.from(old[p(1 + c)]);
      } else if (code === 9) {
        for (let c = 0; c < C; c++) v[c] = Float64Array.from(sharpPlane(Array.from(v[c]), outH, outW, p(2), p(1)));
      } else if (code === 7 || code === 8) {
        for (let c = 0; c < C; c++) v[c] = Float64Array.from(planeOp(code, Array.from(v[c]), p(1)));
      } else if (code >= 4) {
        for (let c = 0; c < C; c++) for (let i = 0; i < HW; i++) v[c][i] = levelOp(code, v[c][i], p(1), p(2));
      } else {
        const [y0, x0, hh, ww] = [p(1), p(2), p(3), p(4)];
        for (let y = 0; y < outH; y++) {
          for (let x = 0; x < outW; x++) {
            if (y >= y0 && y < f(y0 + hh) && x >= x0 && x < f(x0 + ww)) for (let c = 0; c < C; c++) v[c][y * outW + x] = p(5 + c);
          }
        }
      }
    }
    assert.equal(C, outC, "test job: program must end with outC channels");
    for (let c = 0; c < outC; c++) out.set(v[c], (s * outC + c) * HW);
  }
  return out;
}

/**
 * A random job straight in ABI form: taps with -1 fills, K up to 3, every op kind and jitter order.
 * With options.warp or options.warpOps: a warp job with ops before the warp (randomWarpJob).
 */
function randomJob(rng, options = {}) {
  if (options.warp !== undefined || options.warpOps !== undefined) return randomWarpJob(rng, options);
  const n = options.n ?? 1 + rng.int(4);
  const inC = options.inC ?? [1, 3, 4, 2][rng.int(4)];
  const K = 1 + rng.int(3);
  const outH = 1 + rng.int(9);
  const outW = 1 + rng.int(9);
  const sources = [];
  const srcDims = new Int32Array(2 * n);
  for (let s = 0; s < n; s++) {
    const h = 1 + rng.int(12);
    const w = 1 + rng.int(12);
    srcDims[2 * s] = h;
    srcDims[2 * s + 1] = w;
    const px = new Uint8Array(h * w * inC);
    for (let i = 0; i < px.length; i++) px[i] = rng.int(256);
    sources.push(px);
  }
  const per = (outH + outW) * K;
  const tapIndex = new Int32Array(n * per);
  const tapWeight = new Float32Array(n * per);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < per; i++) {
      const lim = i < outH * K ? srcDims[2 * s] : srcDims[2 * s + 1];
      tapIndex[s * per + i] = rng.random() < 0.1 ? -1 : rng.int(lim);
      tapWeight[s * per + i] = K === 1 && rng.random() < 0.5 ? 1 : rng.uniform(-0.25, 1);
    }
  }
  const fill = Float32Array.from({ length: inC }, () => rng.int(256));
  // The op structure is shared by the batch; values and `enabled` vary per sample.
  const ops = [];
  let C = inC;
  const nOps = options.ops ?? rng.int(6);
  for (let k = 0; k < nOps; k++) {
    const grayable = C === 1 || C === 3;
    const kinds = grayable ? [0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 10] : [0, 3, 4, 5, 6, 7, 8, 10];
    // SHARPNESS at most once, and no JITTER, AUTOCONTRAST or EQUALIZE after it (the kernel's limits).
    const sharpened = ops.some((o) => o.code === 9);
    let code = kinds[rng.int(kinds.length)];
    if (!sharpened && rng.random() < 0.1) code = 9;
    if (sharpened && (code === 2 || code === 7 || code === 8)) code = 0;
    const before = C;
    if (code === 1) C = rng.random() < 0.5 ? 1 : 3;
    ops.push({ code, C: before, outCh: C });
  }
  const program = Int32Array.from(ops.map((o) => o.code));
  const opOffsets = new Int32Array(ops.length);
  const blocks = [];
  for (let s = 0; s < n; s++) {
    const b = [];
    ops.forEach((op, k) => {
      opOffsets[k] = b.length;
      // GRAY always runs (it changes C for the whole batch); other ops are on 80% of the time.
      const enabled = op.code === 1 || rng.random() < 0.8 ? 1 : 0;
      b.push(enabled);
      const maybe = (x) => (rng.random() < 0.25 ? NaN : x);
      if (op.code === 0) {
        for (let c = 0; c < op.C; c++) b.push(rng.uniform(-50, 200));
        for (let c = 0; c < op.C; c++) b.push(rng.uniform(0.1, 3));
      } else if (op.code === 1) {
        b.push(op.outCh);
      } else if (op.code === 2) {
        b.push(rng.random() < 0.5 ? 255 : 100, rng.int(24), maybe(rng.uniform(0, 2)), maybe(rng.uniform(0, 2)), maybe(rng.uniform(0, 2)), maybe(rng.uniform(-0.5, 0.5)));
      } else if (op.code >= 4) {
        b.push(rng.random() < 0.5 ? 255 : 1);
        if (op.code === 5) b.push(rng.uniform(-10, 280));
        if (op.code === 6) b.push(rng.int(9));
        if (op.code === 9) b.push(rng.uniform(0, 3));
        if (op.code === 10) {
          const perm = Array.from({ length: op.C }, (_, c) => c);
          for (let i = perm.length - 1; i > 0; i--) {
            const j = rng.int(i + 1);
            [perm[i], perm[j]] = [perm[j], perm[i]];
          }
          b.pop(); // PERMUTE has no bound
          b.push(...perm);
        }
      } else {
        b.push(rng.int(outH), rng.int(outW), rng.int(outH + 1), rng.int(outW + 1));
        for (let c = 0; c < op.C; c++) b.push(rng.uniform(-5, 300));
      }
    });
    blocks.push(b);
  }
  const P = blocks[0] ? blocks[0].length : 0;
  const params = new Float32Array(n * P);
  blocks.forEach((b, s) => params.set(b, s * P));
  return { n, inC, outC: C, outH, outW, K, sources, srcDims, tapIndex, tapWeight, fill, program, opOffsets, params };
}

/** Parameters of one op of `code` at C channels for one sample (ERASE's box within an H x W image). */
function opParams(rng, code, C, outCh, H, W) {
  const b = [code === 1 || rng.random() < 0.8 ? 1 : 0];
  const maybe = (x) => (rng.random() < 0.25 ? NaN : x);
  if (code === 0) {
    for (let c = 0; c < C; c++) b.push(rng.uniform(-50, 200));
    for (let c = 0; c < C; c++) b.push(rng.uniform(0.1, 3));
  } else if (code === 1) {
    b.push(outCh);
  } else if (code === 2) {
    b.push(rng.random() < 0.5 ? 255 : 100, rng.int(24), maybe(rng.uniform(0, 2)), maybe(rng.uniform(0, 2)), maybe(rng.uniform(0, 2)), maybe(rng.uniform(-0.5, 0.5)));
  } else if (code === 3) {
    b.push(rng.int(H), rng.int(W), rng.int(H + 1), rng.int(W + 1));
    for (let c = 0; c < C; c++) b.push(rng.uniform(-5, 300));
  } else if (code === 10) {
    const perm = Array.from({ length: C }, (_, c) => c);
    for (let i = perm.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    b.push(...perm);
  } else if (code === 11) {
    b.push(rng.random() < 0.5 ? 255 : 1, rng.uniform(-5, 5), rng.uniform(0, 30), rng.int(2), rng.int(65536), rng.int(65536), rng.int(65536));
  } else {
    b.push(rng.random() < 0.5 ? 255 : 1);
    if (code === 5) b.push(rng.uniform(-10, 280));
    if (code === 6) b.push(rng.int(9));
    if (code === 9) b.push(rng.uniform(0, 3));
  }
  return b;
}

/**
 * A random job with a warp pass straight in ABI form: sources of different sizes, a pre pass or
 * not, per-sample warp blocks (some with enabled = 0, frames, displacement grids, projective
 * maps), and `warpOps` of the program's ops before the warp (options.warpOps; by default 1..all
 * of them most of the time, else 0). The ops before the warp keep inC channels (GRAY to the same
 * count); each stage has at most one SHARPNESS with no reduction after it and at most 4
 * AUTOCONTRAST/EQUALIZE ops (the kernel's per-stage limits). `options.program`: fixed op codes.
 */
function randomWarpJob(rng, options = {}) {
  const n = options.n ?? 1 + rng.int(4);
  const inC = options.inC ?? [1, 3, 3, 4, 2][rng.int(5)];
  const K = 1 + rng.int(2);
  const outH = 1 + rng.int(8);
  const outW = 1 + rng.int(8);
  const warp = options.warp ?? 1 + rng.int(3);
  const preK = options.pre ?? rng.random() < 0.5 ? 1 + rng.int(3) : 0;
  const sources = [];
  const srcDims = new Int32Array(2 * n);
  const preDims = new Int32Array(2 * n);
  const preIdx = [];
  const preWts = [];
  for (let s = 0; s < n; s++) {
    const h = 1 + rng.int(12);
    const w = 1 + rng.int(12);
    srcDims.set([h, w], 2 * s);
    const px = new Uint8Array(h * w * inC);
    for (let i = 0; i < px.length; i++) px[i] = rng.int(256);
    sources.push(px);
    if (preK) {
      const ph = 1 + rng.int(10);
      const pw = 1 + rng.int(10);
      preDims.set([ph, pw], 2 * s);
      for (let i = 0; i < (ph + pw) * preK; i++) {
        preIdx.push(rng.random() < 0.1 ? -1 : rng.int(i < ph * preK ? h : w));
        preWts.push(preK === 1 && rng.random() < 0.5 ? 1 : rng.uniform(-0.25, 1));
      }
    }
  }
  const readDims = preK ? preDims : srcDims;
  // The program: codes shared by the batch, parameters per sample.
  const codes = options.program ? Array.from(options.program) : [];
  const nOps = options.program ? codes.length : options.ops ?? 1 + rng.int(7);
  const warpOps = options.warpOps ?? (rng.random() < 0.85 ? 1 + rng.int(nOps) : 0);
  const ops = [];
  let C = inC;
  for (let k = 0; k < nOps; k++) {
    const before = k < warpOps;
    const stage = ops.filter((o) => o.before === before);
    const grayable = C === 1 || C === 3;
    const kinds = grayable ? [0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] : [0, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    let code = options.program ? codes[k] : kinds[rng.int(kinds.length)];
    if (!options.program) {
      const sharpened = stage.some((o) => o.code === 9);
      const whole = stage.filter((o) => o.code === 7 || o.code === 8).length;
      if (code === 9 && sharpened) code = 4;
      if (sharpened && (code === 2 || code === 7 || code === 8)) code = 0;
      if ((code === 7 || code === 8) && whole >= 4) code = 6;
    }
    const C0 = C;
    if (code === 1) C = before ? C : rng.random() < 0.5 ? 1 : 3;
    ops.push({ code, C: C0, outCh: C, before });
  }
  const blocks = [];
  const warpDims = new Int32Array(2 * n);
  let Gmax = 0;
  const warpBlocks = [];
  for (let s = 0; s < n; s++) {
    const rh = readDims[2 * s];
    const rw = readDims[2 * s + 1];
    const enabled = options.enabled ? options.enabled(s) : rng.random() < 0.75 ? 1 : 0;
    const wh = enabled ? 1 + rng.int(10) : rh;
    const ww = enabled ? 1 + rng.int(10) : rw;
    warpDims.set([wh, ww], 2 * s);
    const mat = () => randomMap(rng, () => [(rw / ww) * rng.uniform(0.6, 1.4), (rh / wh) * rng.uniform(0.6, 1.4)], rw, rh, ww, wh, 0.03);
    const b = [enabled, ...mat()];
    b.push(-rng.int(3), -rng.int(3), rw + rng.int(3), rh + rng.int(3));
    const x0 = rng.random() < 0.6 ? 0 : rng.int(rw + 1);
    const y0 = rng.random() < 0.6 ? 0 : rng.int(rh + 1);
    b.push(x0, y0, rng.random() < 0.6 ? rw : x0 + rng.int(rw - x0 + 1), rng.random() < 0.6 ? rh : y0 + rng.int(rh - y0 + 1));
    const F = rng.int(3);
    b.push(F);
    for (let fr = 0; fr < 2; fr++) b.push(...(fr < F ? [...mat(), 1 + rng.int(10), 1 + rng.int(10)] : new Array(11).fill(0)));
    const G = rng.random() < 0.3 ? 2 + rng.int(2) : 0;
    b.push(G);
    for (let i = 0; i < 2 * G * G; i++) b.push(rng.uniform(-1.5, 1.5));
    Gmax = Math.max(Gmax, G);
    warpBlocks.push(b);
  }
  const opOffsets = new Int32Array(ops.length);
  for (let s = 0; s < n; s++) {
    const b = [];
    ops.forEach((op, k) => {
      opOffsets[k] = b.length;
      const [H, W] = op.before ? [readDims[2 * s], readDims[2 * s + 1]] : [outH, outW];
      b.push(...opParams(rng, op.code, op.C, op.outCh, H, W));
    });
    blocks.push(b);
  }
  const warpOffset = blocks[0].length;
  const P = warpOffset + 42 + 2 * Gmax * Gmax;
  const params = new Float32Array(n * P);
  blocks.forEach((b, s) => {
    params.set(b, s * P);
    params.set(warpBlocks[s], s * P + warpOffset);
  });
  const per = (outH + outW) * K;
  const tapIndex = new Int32Array(n * per);
  const tapWeight = new Float32Array(n * per);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < per; i++) {
      tapIndex[s * per + i] = rng.random() < 0.1 ? -1 : rng.int(i < outH * K ? warpDims[2 * s] : warpDims[2 * s + 1]);
      tapWeight[s * per + i] = K === 1 && rng.random() < 0.5 ? 1 : rng.uniform(-0.25, 1);
    }
  }
  const fill = Float32Array.from({ length: inC }, () => rng.int(256));
  const job = { n, inC, outC: C, outH, outW, K, sources, srcDims, tapIndex, tapWeight, fill, program: Int32Array.from(ops.map((o) => o.code)), opOffsets, params, warp, warpOffset, warpDims, warpOps };
  if (preK) Object.assign(job, { preK, preDims, preTapIndex: Int32Array.from(preIdx), preTapWeight: Float32Array.from(preWts) });
  return job;
}

/** The TypeScript executor's output for a job (src/engines/plan-reference.ts). */
function executed(job) {
  const out = new Float32Array(job.n * job.outC * job.outH * job.outW).fill(NaN);
  planRef.executePlan(job, out);
  return out;
}

const hasContrast = (job) => {
  const P = job.n ? job.params.length / job.n : 0;
  for (let s = 0; s < job.n; s++) {
    for (let k = 0; k < job.program.length; k++) {
      const o = s * P + job.opOffsets[k];
      if (job.program[k] === 2 && job.params[o] !== 0 && !Number.isNaN(job.params[o + 4])) return true;
    }
  }
  return false;
};

/** Bit for bit, or (`tolerant`) within 1e-6 of the larger of 1 and the sample's largest magnitude. */
function assertSame(actual, expected, label, tolerant = false, perSample = 1) {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    if (tolerant && i % perSample === 0) {
      scale = 1;
      for (let j = i; j < i + perSample; j++) scale = Math.max(scale, Math.abs(expected[j]));
    }
    const a = actual[i];
    const b = expected[i];
    if (tolerant ? !(Math.abs(a - b) <= 1e-6 * scale || Object.is(a, b)) : !Object.is(a, b)) {
      assert.fail(`${label}: element ${i}: ${a} != ${b}${tolerant ? " (beyond 1e-6)" : ""}`);
    }
  }
}

function randomImage(rng, h, w, c) {
  const data = new Uint8Array(h * w * c);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { data, height: h, width: w, channels: c };
}

/** A random chain built with the library's transforms; `exact` as in the CPU parity tests. */
function randomChain(rng, c, h, w) {
  const pick = (a) => a[rng.int(a.length)];
  const steps = [];
  let resamples = 0;
  let H = h;
  let W = w;
  for (let k = rng.int(3); k > 0; k--) {
    const kind = pick(["crop", "flip", "center", "resize", "rrc", "blur"]);
    if (kind === "crop") {
      const pad = rng.int(4);
      const size = [1 + rng.int(H + 2 * pad), 1 + rng.int(W + 2 * pad)];
      steps.push(T.randomCrop(size, { padding: pad, paddingMode: pick(["constant", "reflect", "edge"]) }));
      [H, W] = size;
    } else if (kind === "flip") {
      steps.push(rng.random() < 0.5 ? T.randomHorizontalFlip() : T.randomVerticalFlip());
    } else if (kind === "center") {
      const size = [1 + rng.int(H + 2), 1 + rng.int(W + 2)];
      steps.push(T.centerCrop(size));
      [H, W] = size;
    } else if (kind === "blur") {
      steps.push(T.gaussianBlur([1 + 2 * rng.int(3), 1 + 2 * rng.int(3)]));
      resamples++;
    } else {
      const size = [1 + rng.int(2 * H), 1 + rng.int(2 * W)];
      steps.push(kind === "resize" ? T.resize(size) : T.randomResizedCrop(size));
      resamples++;
      [H, W] = size;
    }
  }
  const colour = [];
  const grayable = c === 1 || c === 3;
  if (grayable && rng.random() < 0.6) colour.push(T.colorJitter({ brightness: rng.random(), contrast: rng.random(), saturation: rng.random(), hue: resamples <= 1 && rng.random() < 0.5 ? rng.random() / 2 : 0 } /* hue amplifies the rounding of two folded resamplings */));
  if (grayable && rng.random() < 0.3) colour.push(T.randomGrayscale(rng.random()));
  // Equalize and autocontrast turn the rounding of two folded resamplings into level steps: exact chains only.
  if (resamples <= 1 && rng.random() < 0.2) colour.push(T.randomEqualize({ p: 0.8 }));
  if (rng.random() < 0.7) colour.push(T.toTensor());
  if (resamples <= 1 && rng.random() < 0.2) colour.push(T.randomAutocontrast({ p: 0.8 }));
  if (rng.random() < 0.5) colour.push(T.normalize(Array.from({ length: c }, () => rng.random()), Array.from({ length: c }, () => 0.1 + rng.random())));
  if (rng.random() < 0.4) colour.push(T.randomErasing({ p: rng.random(), value: rng.random() }));
  return { chain: T.compose([...steps, ...colour]), exact: resamples <= 1 };
}

function encodeChain(chain, images, seed) {
  const plan = new T.Plan(chain);
  const params = images.map((im, i) => plan.draw(im, { seed, epoch: 0, position: i }));
  return { job: require("../dist/engines").encodeJob(plan, images, params), params };
}

// ---------------------------------------------------------------------------------------------
// Availability and errors (run everywhere)

test("availability is a boolean with a reason; status() agrees and never throws", () => {
  const ok = cuda.available();
  assert.equal(typeof ok, "boolean");
  const st = cuda.status();
  assert.equal(st.available, ok);
  assert.equal(typeof st.addonPath, "string");
  if (ok) {
    assert.equal(cuda.unavailableReason(), "");
    assert.ok(st.deviceCount >= 1);
  } else {
    assert.match(cuda.unavailableReason(), /\S/);
    assert.equal(st.reason, cuda.unavailableReason());
    assert.equal(st.deviceCount, 0);
    console.log(`# cuda.available() === false: ${cuda.unavailableReason()}`);
  }
});

test("with the addon built but no usable GPU, the reason names the missing driver or device", { skip: addonSkip || noGpuSkip }, () => {
  assert.match(cuda.unavailableReason(), /(no (NVIDIA driver|CUDA device)|driver|device)/i);
  assert.match(cuda.status().runtimeVersion, /^\d+\.\d+$/);
  assert.match(cuda.status().targets, /sm_80.*sm_90/);
});

function childReport(addonFile) {
  const script = `
    const cuda = require(${JSON.stringify(path.join(__dirname, "..", "dist", "device", "index.js"))});
    let err;
    try { cuda.memInfo(); } catch (e) { err = { name: e.name, code: e.code, message: e.message, isBatchlab: e instanceof require(${JSON.stringify(path.join(__dirname, "..", "dist", "errors.js"))}).BatchlabError }; }
    process.stdout.write(JSON.stringify({ available: cuda.available(), reason: cuda.unavailableReason(), status: cuda.status(), err }));`;
  const r = spawnSync(process.execPath, ["-e", script], { env: { ...process.env, BATCHLAB_CUDA_ADDON: addonFile }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("a missing addon makes available() false with a reason, and calls throw CudaUnavailableError", () => {
  const missing = path.join(os.tmpdir(), `batchlab-no-such-addon-${process.pid}.node`);
  const r = childReport(missing);
  assert.equal(r.available, false);
  assert.match(r.reason, /not built/);
  assert.ok(r.reason.includes(missing), r.reason);
  assert.equal(r.status.addonLoaded, false);
  assert.equal(r.err.name, "CudaUnavailableError");
  assert.equal(r.err.code, "ERR_CUDA_UNAVAILABLE");
  assert.equal(r.err.isBatchlab, true);
  assert.ok(r.err.message.startsWith("CUDA is unavailable: ") && r.err.message.includes(r.reason), r.err.message);
});

test("an addon file that cannot be loaded is reported as such, not thrown", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-cuda-"));
  const bad = path.join(dir, "broken.node");
  fs.writeFileSync(bad, "this is not a shared object");
  try {
    const r = childReport(bad);
    assert.equal(r.available, false);
    assert.match(r.reason, /failed to load/);
    assert.equal(r.err.code, "ERR_CUDA_UNAVAILABLE");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("without CUDA every device call throws CudaUnavailableError carrying the reason", { skip: noGpuSkip }, async () => {
  const reason = cuda.unavailableReason();
  const isUnavailable = (e) => {
    assert.ok(e instanceof errors.BatchlabError, `expected a BatchlabError, got ${e}`);
    assert.ok(e instanceof cuda.CudaUnavailableError);
    assert.equal(e.code, "ERR_CUDA_UNAVAILABLE");
    assert.equal(e.reason, reason);
    assert.ok(e.message.includes(reason));
    return true;
  };
  assert.throws(() => cuda.devices(), isUnavailable);
  assert.throws(() => cuda.memInfo(), isUnavailable);
  assert.throws(() => cuda.currentDevice(), isUnavailable);
  assert.throws(() => cuda.setDevice(0), isUnavailable);
  assert.throws(() => cuda.pinned(1024), isUnavailable);
  assert.throws(() => new cuda.Stream(), isUnavailable);
  assert.throws(() => new cuda.Event(), isUnavailable);
  assert.throws(() => new cuda.DeviceBuffer(1024), isUnavailable);
  assert.throws(() => cuda.defaultStream(), isUnavailable);
  const rng = new RandomStream(3, 0, 0);
  await assert.rejects(cuda.runPlan(randomJob(rng)), isUnavailable);
  await assert.rejects(viz.transferBenchmark([1024]), isUnavailable);
  assert.equal(cuda.isPinned(new Uint8Array(8)), false);
});

test("arguments are checked (OptionError naming the argument) before CUDA is needed", async () => {
  const optionError = (name) => (e) => {
    assert.ok(e instanceof errors.OptionError, `expected OptionError, got ${e && e.stack}`);
    assert.ok(e.message.startsWith(name), `${e.message} should start with ${name}`);
    return true;
  };
  for (const bad of [0, -1, 1.5, "8", NaN, Infinity, 2 ** 60, undefined]) {
    assert.throws(() => cuda.pinned(bad), optionError("pinned(bytes)"));
    assert.throws(() => new cuda.DeviceBuffer(bad), optionError("DeviceBuffer(bytes)"));
  }
  assert.throws(() => new cuda.Event({ timing: 1 }), optionError("Event.timing"));
  assert.throws(() => new cuda.Event({ timming: true }), optionError("Event.timming"));
  await assert.rejects(viz.transferBenchmark([]), optionError("transferBenchmark(sizes)"));
  await assert.rejects(viz.transferBenchmark([1024, 0]), optionError("transferBenchmark(sizes)"));
  await assert.rejects(viz.transferBenchmark([1024], { direction: "up" }), optionError("transferBenchmark.direction"));
  await assert.rejects(viz.transferBenchmark([1024], { repeats: 0 }), optionError("transferBenchmark.repeats"));
  // A malformed job is refused by the addon's own check (no TypeScript copy of it), device or not.
  const planError = (field) => (e) => {
    assert.equal(e.code, "ERR_BATCHLAB_PLAN", String(e && e.stack));
    assert.ok(e.message.includes(field), `${e.message} should name ${field}`);
    return true;
  };
  const rng = new RandomStream(4, 0, 0);
  const job = randomJob(rng, { n: 2 });
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, n: -1 }), planError("n"));
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, inC: 5 }), planError("inC"));
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, sources: [job.sources[0]] }), planError("sources"));
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, sources: [job.sources[0], [1, 2, 3]] }), planError("sources[1]"));
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, tapIndex: new Float32Array(job.tapIndex) }), planError("tapIndex"));
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, tapWeight: job.tapWeight.subarray(1) }), planError("tapWeight"));
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, opOffsets: new Int32Array(job.program.length + 1) }), planError("opOffsets"));
  await assert.rejects(cuda.runPlan(job, { stream: {} }), optionError("runPlan.stream"));
  await assert.rejects(cuda.runPlan(job, { output: new Float32Array(4) }), optionError("runPlan.output"));
  await assert.rejects(cuda.runPlan(job, { strem: 1 }), optionError("runPlan.strem"));
  if (status.addonLoaded) assert.throws(() => cuda.emulatePlan({ ...job, K: 0 }), planError("K"));
  await assert.rejects(cuda.copyToDevice({}, new Uint8Array(4)), optionError("copyToDevice(dst)"));
  assert.throws(() => cuda.isPinned(42), optionError("isPinned(view)"));
});

// ---------------------------------------------------------------------------------------------
// The kernel's code on the CPU (addon needed, no device)

test("emulatePlan: a hand-computed 2x2 job (identity taps, fill, toTensor, erase)", { skip: addonSkip }, () => {
  // One RGB sample 1x2: pixels (10,20,30) (40,50,60). Output 2x2: row taps [0, -1], column taps [1, 0].
  const job = {
    n: 1, inC: 3, outC: 3, outH: 2, outW: 2, K: 1,
    sources: [Uint8Array.from([10, 20, 30, 40, 50, 60])],
    srcDims: Int32Array.from([1, 2]),
    tapIndex: Int32Array.from([0, -1, 1, 0]),
    tapWeight: Float32Array.from([1, 1, 1, 1]),
    fill: Float32Array.from([255, 0, 51]),
    program: Int32Array.from([0, 3]),
    opOffsets: Int32Array.from([0, 7]),
    // AFFINE enabled, sub 0, div 255; ERASE enabled at y0=1, x0=1, 1x1 with value (7, 8, 9).
    params: Float32Array.from([1, 0, 0, 0, 255, 255, 255, 1, 1, 1, 1, 1, 7, 8, 9]),
  };
  const out = cuda.emulatePlan(job);
  const d = (x) => f(x / 255);
  assert.deepEqual(Array.from(out), [
    d(40), d(10), d(255), 7, // channel 0: (0,0)=src(0,1) (0,1)=src(0,0) (1,0)=fill (1,1)=erased
    d(50), d(20), 0, 8,
    d(60), d(30), d(51), 9,
  ]);
});

test("emulatePlan equals an independent float32 implementation of the plan ABI on random jobs", { skip: addonSkip }, () => {
  const rng = new RandomStream(77, 0, 0);
  let contrast = 0;
  for (let trial = 0; trial < 300; trial++) {
    const job = randomJob(rng);
    if (hasContrast(job)) contrast++;
    assertSame(cuda.emulatePlan(job), abiReference(job), `trial ${trial} (n=${job.n} inC=${job.inC} K=${job.K} program=[${job.program}])`);
  }
  assert.ok(contrast > 20, `only ${contrast} trials exercised contrast`);
});

test("emulatePlan equals the TypeScript reference on random transform chains", { skip: addonSkip || transformsSkip }, () => {
  const rng = new RandomStream(2025, 0, 0);
  for (let trial = 0; trial < 80; trial++) {
    const c = [1, 3, 3, 4][rng.int(4)];
    const h = 2 + rng.int(20);
    const w = 2 + rng.int(20);
    const images = Array.from({ length: 1 + rng.int(5) }, () => randomImage(rng, h, w, c));
    const { chain, exact } = randomChain(rng, c, h, w);
    const { job, params } = encodeChain(chain, images, trial);
    const per = job.outC * job.outH * job.outW;
    const expected = new Float32Array(job.n * per);
    images.forEach((im, i) => ref.writeCHW(chain.reference(ref.fromImage(im), params[i], { bound: 255 }), expected, i * per));
    assertSame(cuda.emulatePlan(job), expected, `trial ${trial}: ${chain}`, !exact, per);
  }
});

test("emulatePlan equals the CPU engine bit for bit on random jobs", { skip: addonSkip || cpuSkip }, async () => {
  const rng = new RandomStream(91, 0, 0);
  for (let trial = 0; trial < 100; trial++) {
    const job = randomJob(rng);
    const out = new Float32Array(job.n * job.outC * job.outH * job.outW).fill(NaN);
    await cpu.addon.runPlan({ ...job, out, numThreads: 2 });
    assertSame(cuda.emulatePlan(job), out, `trial ${trial}`);
  }
});

test("the CPU engine, the emulation and the TypeScript executor agree bit for bit on random warpOps jobs and random WARP/MIX jobs", { skip: addonSkip || cpuSkip || planRefSkip }, async () => {
  const rng = new RandomStream(92, 0, 0);
  for (let trial = 0; trial < 160; trial++) {
    const job = trial % 2 === 0 ? randomWarpJob(rng) : randomMixJob(rng, { warp: trial % 4 === 1 });
    const out = new Float32Array(job.n * job.outC * job.outH * job.outW).fill(NaN);
    await cpu.addon.runPlan({ ...job, out, numThreads: 2 });
    const expected = executed(job);
    assertSame(out, expected, `trial ${trial} (${trial % 2 === 0 ? "warpOps" : "WARP/MIX"}): CPU engine vs TypeScript executor`);
    assertSame(cuda.emulatePlan(job), out, `trial ${trial}: emulation vs CPU engine`);
  }
});

test("malformed jobs: the CUDA addon gives the CPU engine's refusal, field for field, with no device needed", { skip: addonSkip }, () => {
  // Both addons read and check a job with the same code (native/job_read.cc, plan_check.cc):
  // the same table of bad jobs, the same field, value and expectation. Cases about `out` and
  // `numThreads` concern the CPU engine only (CUDA writes a device buffer).
  const raw = require(cuda.addonPath());
  const { validJob, BAD_JOBS, assertRefusal } = require("./helpers/bad-jobs");
  let checked = 0;
  for (const c of BAD_JOBS) {
    if (c[5] !== "both") continue;
    const job = validJob();
    delete job.out;
    delete job.numThreads;
    c[1](job);
    assert.throws(() => raw.emulatePlan(job), (e) => (assertRefusal(assert, e, c), true), c[0]);
    checked++;
  }
  assert.ok(checked >= 25, `${checked} cases`);
  // The kernel's own limits: 4 channels, 32 ops.
  assert.throws(() => raw.emulatePlan({ ...validJob(), inC: 5 }), (e) => e.field === "inC" && e.expected === "an integer <= 4");
  const many = validJob();
  many.program = new Int32Array(33);
  many.opOffsets = new Int32Array(33);
  assert.throws(() => raw.emulatePlan(many), (e) => e.field === "program" && /at most 32 ops/.test(e.expected));
  // ... at most 4 AUTOCONTRAST/EQUALIZE ops, one SHARPNESS and no reduction after it (the CPU engine takes these jobs).
  const sharpThenJitter = validJob();
  sharpThenJitter.program = Int32Array.from([9, 2, 3]);
  sharpThenJitter.params.set([1, 255, 1.5], 0);
  sharpThenJitter.params.set([1, 255, 1.5], 22);
  assert.throws(() => raw.emulatePlan(sharpThenJitter), (e) => e.field === "program[1]" && /no JITTER, AUTOCONTRAST or EQUALIZE after a SHARPNESS op/.test(e.expected));
  const fiveEqualize = validJob();
  fiveEqualize.program = Int32Array.from([8, 8, 8, 8, 8]);
  fiveEqualize.opOffsets = Int32Array.from([0, 2, 4, 6, 8]);
  for (let i = 0; i < 44; i += 2) fiveEqualize.params.set([0, 255], i);
  assert.throws(() => raw.emulatePlan(fiveEqualize), (e) => e.field === "program" && /at most 4 AUTOCONTRAST and EQUALIZE ops/.test(e.expected));
  // A valid job still runs, and one-buffer sources work here too.
  const ok = validJob();
  const out = raw.emulatePlan(ok);
  assert.equal(out.length, 54);
  const pixels = new Uint8Array(100);
  pixels.set(ok.sources[0], 2);
  pixels.set(ok.sources[1], 50);
  assert.deepEqual(raw.emulatePlan({ ...ok, sources: pixels, srcOffsets: Float64Array.from([2, 50]) }), out);
});

test("launch shape: one thread per pixel; one block per sample when contrast needs a mean", { skip: addonSkip }, () => {
  const rng = new RandomStream(6, 0, 0);
  const flat = randomJob(rng, { n: 3, inC: 3, ops: 0 });
  const big = { ...flat, outH: 40, outW: 30, tapIndex: new Int32Array(3 * 70), tapWeight: new Float32Array(3 * 70).fill(1), K: 1 };
  assert.deepEqual(cuda.launchShape(big), { gridX: Math.ceil(1200 / 256), gridY: 3, block: 256 });
  const jit = { ...big, program: Int32Array.from([2]), opOffsets: Int32Array.from([0]), params: new Float32Array(21).fill(1) };
  for (let i = 0; i < 3; i++) jit.params.set([1, 255, 0, 1, 1, 1, 0.1], i * 7);
  const s = cuda.launchShape(jit);
  assert.equal(s.gridX, 1);
  assert.equal(s.gridY, 3);
  assert.ok(s.block % 32 === 0 && s.block <= 512 && s.block >= 32, JSON.stringify(s));
  // Brightness and saturation only (contrast NaN everywhere): no reduction, pixel-parallel again.
  for (let i = 0; i < 3; i++) jit.params[i * 7 + 4] = NaN;
  assert.deepEqual(cuda.launchShape(jit), { gridX: Math.ceil(1200 / 256), gridY: 3, block: 256 });
});


// ---------------------------------------------------------------------------------------------
// Ops before the warp (warpOps): the CUDA engine's first stage materialises each sample's read
// image after ops 0 .. warpOps-1; the emulation runs the same code.

test("warpOps: emulatePlan equals the TypeScript executor bit for bit on random warp jobs with ops before the warp", { skip: addonSkip || planRefSkip }, () => {
  const rng = new RandomStream(4242, 0, 0);
  const seen = new Map();
  let withPre = 0, withoutPre = 0, off = 0, allBefore = 0, mixedSizes = 0, contrastBefore = 0;
  for (let trial = 0; trial < 400; trial++) {
    const job = randomWarpJob(rng);
    const P = job.params.length / job.n;
    for (let k = 0; k < job.warpOps; k++) {
      for (let s = 0; s < job.n; s++) {
        const p = s * P + job.opOffsets[k];
        if (job.params[p] === 0) continue;
        seen.set(job.program[k], (seen.get(job.program[k]) ?? 0) + 1);
        if (job.program[k] === 2 && !Number.isNaN(job.params[p + 4])) contrastBefore++;
      }
    }
    if (job.warpOps > 0) (job.preK ? withPre++ : withoutPre++);
    if (job.warpOps > 0 && job.warpOps === job.program.length) allBefore++;
    for (let s = 0; s < job.n; s++) if (job.params[s * P + job.warpOffset] === 0 && job.warpOps > 0) off++;
    const sizes = new Set(Array.from({ length: job.n }, (_, s) => `${job.srcDims[2 * s]}x${job.srcDims[2 * s + 1]}`));
    if (sizes.size > 1) mixedSizes++;
    assertSame(cuda.emulatePlan(job), executed(job), `trial ${trial} (n=${job.n} inC=${job.inC} warp=${job.warp} preK=${job.preK ?? 0} warpOps=${job.warpOps} program=[${job.program}])`);
  }
  for (let code = 0; code <= 11; code++) assert.ok((seen.get(code) ?? 0) >= 10, `op ${code} ran before the warp only ${seen.get(code) ?? 0} times`);
  assert.ok(contrastBefore >= 20, `contrast before the warp ${contrastBefore} times`);
  assert.ok(withPre >= 50 && withoutPre >= 50 && allBefore >= 30 && off >= 50 && mixedSizes >= 100, JSON.stringify({ withPre, withoutPre, allBefore, off, mixedSizes }));
});

test("warpOps: a RandAugment-like program (SHARPNESS, AUTOCONTRAST, EQUALIZE before the warp and again after it) is accepted and equals the TypeScript executor", { skip: addonSkip || planRefSkip }, () => {
  const rng = new RandomStream(5151, 0, 0);
  // Each slot as src/transforms/policies.ts emits it: brightness, contrast, color (JITTER),
  // POSTERIZE, SOLARIZE, AUTOCONTRAST, EQUALIZE, SHARPNESS; the first slot's before the warp.
  const slot = [2, 2, 2, 6, 5, 7, 8, 9];
  const program = [...slot, ...slot];
  const raw = require(cuda.addonPath());
  for (let trial = 0; trial < 40; trial++) {
    const job = randomWarpJob(rng, { program, warpOps: 8, inC: [1, 3][trial % 2] });
    assertSame(cuda.emulatePlan(job), executed(job), `trial ${trial} (preK=${job.preK ?? 0})`);
    // As one stage (no ops before the warp) the same program breaks the kernel's limits.
    assert.throws(() => raw.emulatePlan({ ...job, warpOps: 0 }), (e) => e.field === "program[8]" && /no JITTER, AUTOCONTRAST or EQUALIZE after a SHARPNESS op \(this engine's limit\)/.test(e.expected));
  }
});

test("warpOps: the kernel's limits apply per stage, and the refusal says which stage", { skip: addonSkip || planRefSkip }, () => {
  const rng = new RandomStream(6161, 0, 0);
  const raw = require(cuda.addonPath());
  // Four EQUALIZE ops on each side of the warp: accepted (eight in all).
  const eight = randomWarpJob(rng, { program: [8, 8, 8, 8, 8, 8, 8, 8], warpOps: 4, inC: 3 });
  assertSame(raw.emulatePlan(eight), executed(eight), "four EQUALIZE ops per stage");
  const five = randomWarpJob(rng, { program: [8, 8, 8, 8, 8, 0], warpOps: 5, inC: 3 });
  assert.throws(() => raw.emulatePlan(five), (e) => e.code === "ERR_BATCHLAB_PLAN" && e.field === "program" && /at most 4 AUTOCONTRAST and EQUALIZE ops among the ops before the warp/.test(e.expected) && e.received === "5");
  const sharpAfter = randomWarpJob(rng, { program: [0, 9, 9], warpOps: 1, inC: 3 });
  assert.throws(() => raw.emulatePlan(sharpAfter), (e) => e.field === "program" && /at most 1 SHARPNESS op among the ops after the warp/.test(e.expected) && e.received === "2");
  const reduceAfterSharp = randomWarpJob(rng, { program: [9, 7, 0], warpOps: 2, inC: 3 });
  assert.throws(() => raw.emulatePlan(reduceAfterSharp), (e) => e.field === "program[1]" && /after a SHARPNESS op among the ops before the warp/.test(e.expected));
  // A SHARPNESS before the warp and a reduction after it: separate stages, accepted.
  const split = randomWarpJob(rng, { program: [9, 7], warpOps: 1, inC: 3 });
  assertSame(raw.emulatePlan(split), executed(split), "SHARPNESS before the warp, AUTOCONTRAST after it");
});

test("warpOps: a job whose ops before the warp change the channel count is refused naming warpOps", { skip: addonSkip }, () => {
  const rng = new RandomStream(7171, 0, 0);
  const raw = require(cuda.addonPath());
  for (const [inC, outCh, program, warpOps] of [[3, 1, [1], 1], [3, 1, [0, 1, 0], 2], [1, 3, [1, 4], 1]]) {
    const job = randomWarpJob(rng, { program: program.map(() => 0), warpOps, inC, n: 2 });
    // Turn the op into a GRAY to another channel count (enabled for every sample).
    const P = job.params.length / job.n;
    const at = program.indexOf(1);
    job.program = Int32Array.from(program);
    for (let s = 0; s < job.n; s++) job.params.set([1, outCh], s * P + job.opOffsets[at]);
    if (at === program.length - 1) job.outC = outCh;
    assert.throws(
      () => raw.emulatePlan(job),
      (e) => {
        assert.equal(e.code, "ERR_BATCHLAB_PLAN", String(e && e.stack));
        assert.equal(e.field, "warpOps");
        assert.match(e.message, /warpOps/);
        assert.match(e.expected, /keep inC/);
        return true;
      },
      `inC ${inC}, program [${program}], warpOps ${warpOps}`,
    );
  }
  // More ops before the warp than the program has.
  const job = randomWarpJob(rng, { program: [0, 4], warpOps: 2 });
  assert.throws(() => raw.emulatePlan({ ...job, warpOps: 3 }), (e) => e.field === "warpOps" && /at most the program's length/.test(e.expected));
});

test("warpOps: with every op after the warp the emulation still equals the TypeScript executor (warp jobs, warpOps 0)", { skip: addonSkip || planRefSkip }, () => {
  const rng = new RandomStream(8181, 0, 0);
  for (let trial = 0; trial < 150; trial++) {
    const job = randomWarpJob(rng, { warpOps: 0 });
    assertSame(cuda.emulatePlan(job), executed(job), `trial ${trial} (warp=${job.warp} preK=${job.preK ?? 0} program=[${job.program}])`);
  }
});

test("warpOps: launch shape of the stage after the warp follows its own reductions", { skip: addonSkip }, () => {
  const rng = new RandomStream(9191, 0, 0);
  // Reductions only before the warp: the stage after it runs pixel-parallel.
  const job = randomWarpJob(rng, { program: [8, 0], warpOps: 1, inC: 3, n: 2 });
  const P = job.params.length / job.n;
  for (let s = 0; s < job.n; s++) job.params[s * P + job.opOffsets[0]] = 1;
  assert.equal(cuda.launchShape(job).block, 256);
  const after = randomWarpJob(rng, { program: [0, 8], warpOps: 1, inC: 3, n: 2 });
  const P2 = after.params.length / after.n;
  for (let s = 0; s < after.n; s++) after.params[s * P2 + after.opOffsets[1]] = 1;
  assert.equal(cuda.launchShape(after).gridX, 1);
});

// ---------------------------------------------------------------------------------------------
// WARP and MIX ops (PLAN_ABI.md ops 12-15): the CUDA engine splits the program into stages at
// each of them (and wherever a colour stage would pass its limits), materialising each stage's
// image per sample; the emulation runs the same stages.

/** A WARP map for an H x W image: a rotation and scale about the centre, a shift, sometimes projective. */
/**
 * A random map (output point -> source point): a rotation, the scales `scales()` draws, centred
 * from an outW x outH output onto an inW x inH source and moved by up to 2 pixels; perspective
 * terms up to `persp` in 30% of the draws.
 */
function randomMap(rng, scales, inW, inH, outW, outH, persp) {
  const t = rng.uniform(-Math.PI, Math.PI);
  const [sx, sy] = scales();
  const m = [sx * Math.cos(t), -sx * Math.sin(t), 0, sy * Math.sin(t), sy * Math.cos(t), 0, 0, 0, 1];
  m[2] = inW / 2 - (m[0] * outW) / 2 - (m[1] * outH) / 2 + rng.uniform(-2, 2);
  m[5] = inH / 2 - (m[3] * outW) / 2 - (m[4] * outH) / 2 + rng.uniform(-2, 2);
  if (rng.random() < 0.3) {
    m[6] = rng.uniform(-persp, persp);
    m[7] = rng.uniform(-persp, persp);
  }
  return m;
}

// A WARP op's map on an H x W image: one scale for both axes.
function warpOpMatrix(rng, H, W) {
  return randomMap(
    rng,
    () => {
      const sc = rng.uniform(0.7, 1.3);
      return [sc, sc];
    },
    W, H, W, H, 0.04,
  );
}

/** One op's parameter block for one sample: codes 0-11 as opParams, WARP with a random mode and map. */
function mixOpParams(rng, code, C, outCh, H, W, enabled) {
  if (code === 12) return [enabled ?? (rng.random() < 0.8 ? 1 : 0), 1 + rng.int(3), ...Array.from({ length: C }, () => rng.uniform(0, 255)), ...warpOpMatrix(rng, H, W)];
  const b = opParams(rng, code, C, outCh, H, W);
  if (enabled !== undefined && code !== 1) b[0] = enabled;
  return b;
}

/**
 * A random job whose program holds WARP ops and mix groups: top-level ops and groups of 1 to 4
 * branches of 0 to 3 ops each (every code, WARP in every mode), each group wholly on or off per
 * sample (about a quarter off); with options.warp a warp pass, and some of the program before it
 * (warpOps, ending outside every group). GRAY keeps the channel count inside a group and before
 * the warp (the check's rules), and may change it at the top level after the warp.
 * options.program: fixed [{code, slot}] items instead (see augMixProgram).
 */
function randomMixJob(rng, options = {}) {
  const inC = options.inC ?? [1, 3, 3][rng.int(3)];
  const n = options.n ?? 1 + rng.int(4);
  // The program as items: {code} at the top level, {group: [[codes], ...]} for a mix group.
  const items = [];
  const colour = (C) => (C === 1 || C === 3 ? [0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12] : [0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12]);
  const nItems = 1 + rng.int(4);
  for (let i = 0; i < nItems; i++) {
    if (rng.random() < 0.5) {
      const branches = Array.from({ length: 1 + rng.int(4) }, () => Array.from({ length: rng.int(4) }, () => colour(inC)[rng.int(colour(inC).length)]));
      items.push({ group: branches });
    } else {
      items.push({ code: colour(inC)[rng.int(colour(inC).length)] });
    }
  }
  // Every program holds a WARP or MIX op (without one, the kernel's one-stage limits apply).
  if (!items.some((it) => it.group || it.code === 12)) items.push(rng.random() < 0.5 ? { code: 12 } : { group: [[12], []] });
  // Flatten: codes, and where the warp pass may cut (outside every group).
  const codes = [];
  const cuts = [0];
  for (const it of items) {
    if (it.group) {
      codes.push(13);
      it.group.forEach((br, b) => {
        codes.push(...br);
        codes.push(b === it.group.length - 1 ? 15 : 14);
      });
    } else codes.push(it.code);
    cuts.push(codes.length);
  }
  const warp = options.warp ? 1 + rng.int(3) : 0;
  const warpOps = warp ? (options.warpOps ?? (rng.random() < 0.7 ? cuts[rng.int(cuts.length)] : 0)) : 0;
  // The base job: sources, taps, warp blocks (a program of AFFINE placeholders keeps inC).
  const base = warp ? randomWarpJob(rng, { program: codes.map(() => 0), warpOps, inC, n }) : randomJob(rng, { n, inC, ops: 0 });
  const P0 = base.params.length / n;
  const readDims = warp && base.preK ? base.preDims : base.srcDims;
  const blocks = [];
  const opOffsets = new Int32Array(codes.length);
  let outC = inC;
  let groupsOff = 0;
  const grayTo = codes.map(() => (rng.random() < 0.5 ? 1 : 3)); // a GRAY's count, the batch's
  for (let s = 0; s < n; s++) {
    const b = [];
    let C = inC;
    let groupOn = 1;
    for (let k = 0; k < codes.length; k++) {
      const code = codes[k];
      const before = k < warpOps;
      const [H, W] = before ? [readDims[2 * s], readDims[2 * s + 1]] : [base.outH, base.outW];
      opOffsets[k] = b.length;
      const inGroup = codes.slice(0, k).lastIndexOf(13) > codes.slice(0, k).lastIndexOf(15);
      if (code === 13) {
        groupOn = rng.random() < 0.75 ? 1 : 0;
        if (!groupOn) groupsOff++;
      }
      if (code >= 13) {
        b.push(groupOn, rng.uniform(-0.5, 1.5));
        continue;
      }
      let outCh = C;
      if (code === 1 && !inGroup && !before) outCh = options.keepC ? C : grayTo[k];
      b.push(...mixOpParams(rng, code, C, outCh, H, W));
      C = outCh;
    }
    outC = C;
    blocks.push(b);
  }
  // GRAY changes C for the whole batch (always on), so every sample ends with the same count.
  const Pops = blocks[0].length;
  const warpLen = warp ? P0 - base.warpOffset : 0;
  const P = Pops + warpLen;
  const params = new Float32Array(n * P);
  for (let s = 0; s < n; s++) {
    params.set(blocks[s], s * P);
    if (warp) params.set(base.params.subarray(s * P0 + base.warpOffset, (s + 1) * P0), s * P + Pops);
  }
  const job = { ...base, outC, program: Int32Array.from(codes), opOffsets, params };
  if (warp) Object.assign(job, { warpOffset: Pops, warpOps });
  job.groupsOff = groupsOff;
  return job;
}

/** Sample s's enabled flags of ops 12-15 in `job`, for coverage counts. */
function enabledOps(job, code) {
  const P = job.params.length / job.n;
  let count = 0;
  for (let s = 0; s < job.n; s++) for (let k = 0; k < job.program.length; k++) if (job.program[k] === code && job.params[s * P + job.opOffsets[k]] !== 0) count++;
  return count;
}

test("WARP/MIX: emulatePlan equals the TypeScript executor bit for bit on random jobs with WARP ops and mix groups", { skip: addonSkip || planRefSkip }, () => {
  const rng = new RandomStream(31337, 0, 0);
  const modes = [0, 0, 0, 0];
  const cover = { warpPass: 0, noWarp: 0, warpOpsBefore: 0, groupsOff: 0, mixBegin: 0, mixNext: 0, oneChannel: 0, threeChannels: 0, contrast: 0, whole: 0, sharp: 0, noise: 0, multiStage: 0 };
  for (let trial = 0; trial < 400; trial++) {
    const job = randomMixJob(rng, { warp: trial % 2 === 1 });
    const P = job.params.length / job.n;
    for (let s = 0; s < job.n; s++) {
      for (let k = 0; k < job.program.length; k++) {
        const p = s * P + job.opOffsets[k];
        if (job.params[p] === 0) continue;
        const code = job.program[k];
        if (code === 12) modes[job.params[p + 1]]++;
        if (code === 2 && !Number.isNaN(job.params[p + 4])) cover.contrast++;
        if (code === 7 || code === 8) cover.whole++;
        if (code === 9) cover.sharp++;
        if (code === 11) cover.noise++;
      }
    }
    job.warp ? cover.warpPass++ : cover.noWarp++;
    if (job.warpOps > 0 && job.program.slice(0, job.warpOps).some((c) => c >= 12)) cover.warpOpsBefore++;
    cover.groupsOff += job.groupsOff;
    cover.mixBegin += enabledOps(job, 13);
    cover.mixNext += enabledOps(job, 14);
    job.inC === 1 ? cover.oneChannel++ : cover.threeChannels++;
    const label = `trial ${trial} (n=${job.n} inC=${job.inC} warp=${job.warp ?? 0} preK=${job.preK ?? 0} warpOps=${job.warpOps ?? 0} program=[${job.program}])`;
    delete job.groupsOff;
    assertSame(cuda.emulatePlan(job), executed(job), label);
  }
  assert.ok(modes[1] >= 50 && modes[2] >= 50 && modes[3] >= 50, `WARP modes run: ${modes}`);
  for (const [k, v] of Object.entries(cover)) if (k !== "multiStage") assert.ok(v >= 20, `${k}: ${v} (${JSON.stringify(cover)})`);
});

test("WARP/MIX: several WARP ops with reductions and SHARPNESS between them, past the one-stage limits, equal the TypeScript executor", { skip: addonSkip || planRefSkip }, () => {
  const rng = new RandomStream(4711, 0, 0);
  // SHARPNESS then reductions, more than 4 EQUALIZE/AUTOCONTRAST ops, several SHARPNESS ops:
  // the CUDA engine splits the colour stages (only in programs with WARP/MIX ops).
  const program = [9, 7, 8, 12, 9, 2, 8, 8, 8, 8, 8, 9, 13, 9, 7, 14, 12, 9, 15, 12];
  for (let trial = 0; trial < 30; trial++) {
    const job = randomMixJob(rng, { warp: trial % 3 === 0, inC: [1, 3][trial % 2], warpOps: 0 });
    // Replace the program by the fixed one, every op on for every sample.
    const n = job.n;
    const P0 = job.params.length / n;
    const warpLen = job.warp ? P0 - job.warpOffset : 0;
    const blocks = [];
    const opOffsets = new Int32Array(program.length);
    for (let s = 0; s < n; s++) {
      const b = [];
      program.forEach((code, k) => {
        opOffsets[k] = b.length;
        if (code >= 13) b.push(1, rng.uniform(0, 1));
        else b.push(...mixOpParams(rng, code, job.inC, job.inC, job.outH, job.outW, 1));
      });
      blocks.push(b);
    }
    const P = blocks[0].length + warpLen;
    const params = new Float32Array(n * P);
    for (let s = 0; s < n; s++) {
      params.set(blocks[s], s * P);
      if (job.warp) params.set(job.params.subarray(s * P0 + job.warpOffset, (s + 1) * P0), s * P + blocks[0].length);
    }
    const fixed = { ...job, outC: job.inC, program: Int32Array.from(program), opOffsets, params };
    if (job.warp) fixed.warpOffset = blocks[0].length;
    delete fixed.groupsOff;
    assertSame(cuda.emulatePlan(fixed), executed(fixed), `trial ${trial}`);
  }
});

/** AugMix as one program: MIX_BEGIN, per chain `depth` slots of (12 colour codes + WARP), MIX_NEXT.../MIX_END. */
function augMixJob(rng, { n, inC, width = 3, depth = 3, warp = false }) {
  const slot = [2, 2, 2, 6, 5, 7, 8, 9, 4, 11, 0, 10, 12];
  const codes = [13];
  for (let c = 0; c < width; c++) {
    for (let d = 0; d < depth; d++) codes.push(...slot);
    codes.push(c === width - 1 ? 15 : 14);
  }
  const base = warp ? randomWarpJob(rng, { program: [0], warpOps: 0, inC, n }) : randomJob(rng, { n, inC, ops: 0 });
  const P0 = base.params.length / n;
  const opOffsets = new Int32Array(codes.length);
  const blocks = [];
  let off = 0;
  for (let s = 0; s < n; s++) {
    const on = s % 4 === 3 ? 0 : 1; // every fourth sample: the whole group off
    const b = [];
    let k = 0;
    const pick = () => rng.int(slot.length + 1); // the slot's one enabled op (slot.length: none)
    opOffsets[k++] = b.length;
    b.push(on, rng.uniform(0, 0.6));
    for (let c = 0; c < width; c++) {
      for (let d = 0; d < depth; d++) {
        const chosen = pick();
        slot.forEach((code, i) => {
          opOffsets[k++] = b.length;
          b.push(...mixOpParams(rng, code, inC, inC, base.outH, base.outW, on && i === chosen ? 1 : 0));
        });
      }
      opOffsets[k++] = b.length;
      b.push(on, rng.uniform(0, 0.5));
    }
    off += on ? 0 : 1;
    blocks.push(b);
  }
  const Pops = blocks[0].length;
  const warpLen = warp ? P0 - base.warpOffset : 0;
  const params = new Float32Array(n * (Pops + warpLen));
  for (let s = 0; s < n; s++) {
    params.set(blocks[s], s * (Pops + warpLen));
    if (warp) params.set(base.params.subarray(s * P0 + base.warpOffset, (s + 1) * P0), s * (Pops + warpLen) + Pops);
  }
  const job = { ...base, outC: inC, program: Int32Array.from(codes), opOffsets, params };
  if (warp) Object.assign(job, { warpOffset: Pops, warpOps: 0 });
  return job;
}

test("WARP/MIX: an AugMix-like program of 121 ops (3 chains of 3 slots of 13 op codes, one on per slot) equals the TypeScript executor", { skip: addonSkip || planRefSkip }, () => {
  const rng = new RandomStream(2718, 0, 0);
  for (let trial = 0; trial < 12; trial++) {
    const job = augMixJob(rng, { n: 6, inC: [1, 3][trial % 2], warp: trial % 3 === 2 });
    assert.equal(job.program.length, 121);
    assertSame(cuda.emulatePlan(job), executed(job), `trial ${trial} (inC=${job.inC} warp=${job.warp ?? 0})`);
  }
});

test("WARP/MIX: the CUDA addon reports the shared check's refusals naming the field", { skip: addonSkip }, () => {
  const raw = require(cuda.addonPath());
  const rng = new RandomStream(99, 0, 0);
  const make = (codes, params) => {
    const base = randomJob(rng, { n: 1, inC: 3, ops: 0 });
    const opOffsets = new Int32Array(codes.length);
    const b = [];
    codes.forEach((code, k) => {
      opOffsets[k] = b.length;
      b.push(...params[k]);
    });
    return { ...base, program: Int32Array.from(codes), opOffsets, params: Float32Array.from(b) };
  };
  const warpBlock = (mode) => [1, mode, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
  // An unmatched MIX_NEXT (no MIX_BEGIN before it).
  assert.throws(() => raw.emulatePlan(make([4, 14, 15], [[1, 255], [1, 0.5], [1, 0.5]])), (e) => e.code === "ERR_BATCHLAB_PLAN" && e.field === "program[1]" && /MIX_NEXT inside a mix group/.test(e.expected));
  // A nested MIX_BEGIN.
  assert.throws(() => raw.emulatePlan(make([13, 13, 15, 15], [[1, 0.5], [1, 0.5], [1, 0.5], [1, 0.5]])), (e) => e.code === "ERR_BATCHLAB_PLAN" && e.field === "program[1]" && /groups do not nest/.test(e.expected));
  // A WARP in mode 4.
  assert.throws(() => raw.emulatePlan(make([0, 12], [[0, 0, 0, 0, 1, 1, 1], warpBlock(4)])), (e) => e.code === "ERR_BATCHLAB_PLAN" && e.field === "params[8]" && /a WARP mode/.test(e.expected) && e.received === "4");
  // An open group at the end.
  assert.throws(() => raw.emulatePlan(make([13, 4], [[1, 0.5], [1, 255]])), (e) => e.code === "ERR_BATCHLAB_PLAN" && e.field === "program" && /a MIX_END/.test(e.expected));
  // Valid: the same WARP in mode 2 runs; a program of more than 32 ops runs when it has a WARP/MIX op.
  const ok = make([0, 12], [[0, 0, 0, 0, 1, 1, 1], warpBlock(2)]);
  assert.equal(raw.emulatePlan(ok).length, 3 * ok.outH * ok.outW);
  const long = make([13, ...new Array(40).fill(4), 15], [[1, 0.5], ...new Array(40).fill([1, 255]), [1, 0.5]]);
  assert.equal(raw.emulatePlan(long).length, 3 * long.outH * long.outW);
  // Without WARP/MIX ops the kernel's one-stage limit stays (32 ops).
  const short = make(new Array(33).fill(4), new Array(33).fill([1, 255]));
  assert.throws(() => raw.emulatePlan(short), (e) => e.field === "program" && /at most 32 ops/.test(e.expected));
});

// ---------------------------------------------------------------------------------------------
// With a device

test("devices() and memInfo() describe the GPU", { skip: gpuSkip }, () => {
  const ds = cuda.devices();
  assert.ok(ds.length >= 1);
  for (const [i, d] of ds.entries()) {
    assert.equal(d.index, i);
    assert.equal(typeof d.name, "string");
    assert.ok(d.totalMemory > 0 && d.multiprocessors > 0 && d.memoryBusWidth > 0);
    assert.equal(d.computeCapability.length, 2);
    console.log(`# device ${i}: ${d.name}, cc ${d.computeCapability.join(".")}, ${d.multiprocessors} SMs, peak ${(cuda.peakBandwidth(d) / 1e9).toFixed(0)} GB/s`);
  }
  const m = cuda.memInfo();
  assert.ok(m.total > 0 && m.free > 0 && m.free <= m.total);
  assert.equal(cuda.currentDevice(), 0);
});

test("pinned round trip: host -> device -> host through pinned and pageable memory", { skip: gpuSkip }, async () => {
  const bytes = (1 << 20) + 12;
  const src = cuda.pinned(bytes);
  const rng = new RandomStream(8, 0, 0);
  const u = src.uint8();
  for (let i = 0; i < bytes; i++) u[i] = rng.int(256);
  assert.equal(cuda.isPinned(u.subarray(100, 200)), true);
  assert.equal(cuda.isPinned(new Uint8Array(16)), false);
  const dev = new cuda.DeviceBuffer(bytes + 64);
  const stream = new cuda.Stream();
  await stream.copyToDevice(dev, src, { offset: 64 });
  const back = cuda.pinned(bytes);
  await stream.copyToHost(back, dev, { offset: 64 });
  assert.deepEqual(back.uint8(), u);
  const pageable = new Uint8Array(bytes);
  await cuda.copyToHost(pageable, dev, { offset: 64, stream });
  assert.deepEqual(pageable, u);
  await assert.rejects(stream.copyToHost(new Uint8Array(bytes), dev, { offset: 65 }), errors.OptionError);
  src.free();
  assert.equal(src.freed, true);
  assert.throws(() => src.buffer, errors.BatchlabError);
  assert.equal(u.length, 0, "views of a freed pinned buffer are emptied");
  back.free();
  dev.free();
  stream.destroy();
});

test("events time work on a stream", { skip: gpuSkip }, async () => {
  const stream = new cuda.Stream();
  const a = new cuda.Event().record(stream);
  const dev = new cuda.DeviceBuffer(8 << 20);
  await stream.copyToDevice(dev, new Uint8Array(8 << 20));
  const b = new cuda.Event().record(stream);
  await stream.done();
  assert.equal(b.query(), true);
  const ms = b.elapsedSince(a);
  assert.ok(ms > 0, `elapsed ${ms}`);
  dev.free();
  stream.destroy();
});

async function gpuMatchesEmulation(job, label, stream) {
  const batch = await cuda.runPlan(job, { stream });
  assert.deepEqual(batch.shape, [job.n, job.outC, job.outH, job.outW]);
  const got = await batch.toHost();
  batch.free();
  assertSame(got, cuda.emulatePlan(job), label, hasContrast(job), job.outC * job.outH * job.outW);
  return batch;
}

test("CUDA equals the kernel's CPU emulation (and so the ABI) on random jobs", { skip: gpuSkip }, async () => {
  const rng = new RandomStream(123, 0, 0);
  const stream = new cuda.Stream();
  for (let trial = 0; trial < 200; trial++) {
    const job = randomJob(rng);
    await gpuMatchesEmulation(job, `trial ${trial}`, stream);
  }
  stream.destroy();
});

test("CUDA equals the kernel's CPU emulation on random warp jobs with ops before the warp (warpOps)", { skip: gpuSkip }, async () => {
  const rng = new RandomStream(1234, 0, 0);
  const stream = new cuda.Stream();
  for (let trial = 0; trial < 200; trial++) {
    const job = randomJob(rng, { warp: 1 + rng.int(3) });
    await gpuMatchesEmulation(job, `trial ${trial} (warpOps=${job.warpOps} preK=${job.preK ?? 0} program=[${job.program}])`, stream);
  }
  stream.destroy();
});

test("CUDA equals the kernel's CPU emulation on random jobs with WARP ops and mix groups, and on an AugMix-like program", { skip: gpuSkip }, async () => {
  const rng = new RandomStream(4321, 0, 0);
  const stream = new cuda.Stream();
  for (let trial = 0; trial < 200; trial++) {
    const job = randomMixJob(rng, { warp: trial % 2 === 1 });
    delete job.groupsOff;
    await gpuMatchesEmulation(job, `trial ${trial} (warpOps=${job.warpOps ?? 0} program=[${job.program}])`, stream);
  }
  for (let trial = 0; trial < 6; trial++) await gpuMatchesEmulation(augMixJob(rng, { n: 8, inC: [1, 3][trial % 2], warp: trial % 3 === 2 }), `AugMix trial ${trial}`, stream);
  stream.destroy();
});

test("CUDA equals the CPU engine on random transform chains, sources pageable or pinned", { skip: gpuSkip || transformsSkip }, async () => {
  const rng = new RandomStream(321, 0, 0);
  const stream = new cuda.Stream();
  for (let trial = 0; trial < 40; trial++) {
    const c = [1, 3, 3][rng.int(3)];
    const h = 8 + rng.int(60);
    const w = 8 + rng.int(60);
    const n = 1 + rng.int(16);
    let images = Array.from({ length: n }, () => randomImage(rng, h, w, c));
    let pin;
    if (trial % 2 === 1) {
      // Every source inside one pinned buffer: runPlan copies them straight from there.
      pin = cuda.pinned(n * h * w * c);
      images = images.map((im, i) => {
        const view = pin.uint8().subarray(i * h * w * c, (i + 1) * h * w * c);
        view.set(im.data);
        return { ...im, data: view };
      });
    }
    const { chain } = randomChain(rng, c, h, w);
    const { job } = encodeChain(chain, images, trial);
    await gpuMatchesEmulation(job, `trial ${trial}: ${chain}`, stream);
    if (!cpuSkip) {
      const out = new Float32Array(job.n * job.outC * job.outH * job.outW);
      await cpu.addon.runPlan({ ...job, out, numThreads: 2 });
      const batch = await cuda.runPlan(job, { stream });
      assertSame(await batch.toHost(), out, `trial ${trial} vs CPU engine: ${chain}`, hasContrast(job), job.outC * job.outH * job.outW);
      batch.free();
    }
    if (pin) pin.free();
  }
  stream.destroy();
});

test("a malformed job rejects the runPlan promise; the stream keeps working", { skip: gpuSkip }, async () => {
  const rng = new RandomStream(12, 0, 0);
  const job = randomJob(rng, { n: 2 });
  const tapIndex = Int32Array.from(job.tapIndex);
  tapIndex[0] = 1 << 20;
  const stream = new cuda.Stream();
  await assert.rejects(cuda.runPlan({ ...job, tapIndex }, { stream }), (e) => e instanceof errors.NativeError && /job\.tapIndex\[0\]/.test(e.message));
  const small = await cuda.runPlan({ ...job, n: 1, sources: job.sources.slice(0, 1), srcDims: job.srcDims.subarray(0, 2), tapIndex: job.tapIndex.subarray(0, job.tapIndex.length / 2), tapWeight: job.tapWeight.subarray(0, job.tapWeight.length / 2), params: job.params.subarray(0, job.params.length / 2) }, { stream });
  await assert.rejects(cuda.runPlan(job, { stream, output: small }), errors.OptionError);
  small.free();
  await gpuMatchesEmulation(job, "after the errors", stream);
  stream.destroy();
});

test("an absurd allocation throws CudaOutOfMemoryError; allocation and kernels work afterwards", { skip: gpuSkip }, async () => {
  const { total } = cuda.memInfo();
  const absurd = total * 64;
  assert.throws(
    () => new cuda.DeviceBuffer(absurd),
    (e) => {
      assert.ok(e instanceof errors.CudaOutOfMemoryError, String(e));
      assert.equal(e.code, "ERR_CUDA_OOM");
      assert.equal(e.requestedBytes, absurd);
      assert.ok(e.freeBytes > 0 && e.freeBytes <= total);
      return true;
    },
  );
  const buf = new cuda.DeviceBuffer(1 << 20);
  const data = new Uint8Array(1 << 20).map((_, i) => i * 7);
  await cuda.copyToDevice(buf, data);
  const back = new Uint8Array(1 << 20);
  await cuda.copyToHost(back, buf);
  assert.deepEqual(back, data);
  buf.free();
  await gpuMatchesEmulation(randomJob(new RandomStream(13, 0, 0)), "after out-of-memory", undefined);
});

test("transferBenchmark reports pageable and pinned bandwidth by size", { skip: gpuSkip }, async () => {
  const r = await viz.transferBenchmark([4096, 1 << 22], { repeats: 5 });
  assert.equal(r.length, 2);
  for (const x of r) {
    assert.ok(x.pinnedGBps > 0 && x.pageableGBps > 0 && Number.isFinite(x.pinnedSpeedup));
    console.log(`# ${x.bytes} B: pageable ${x.pageableGBps.toFixed(2)} GB/s, pinned ${x.pinnedGBps.toFixed(2)} GB/s`);
  }
});

/** A 512x512 -> 512x512 RGB job with K random taps per axis (toTensor after), sources inside `pin`. */
const OV = { n: 64, size: 512 };
function overlapJob(pin, K, rng) {
  const { n, size } = OV;
  const C = 3;
  const per = 2 * size * K;
  const tapIndex = new Int32Array(n * per);
  const tapWeight = new Float32Array(n * per).fill(1 / K);
  for (let i = 0; i < tapIndex.length; i++) tapIndex[i] = rng.int(size);
  const sources = Array.from({ length: n }, (_, s) => pin.uint8().subarray(s * size * size * C, (s + 1) * size * size * C));
  const params = new Float32Array(n * 7);
  for (let s = 0; s < n; s++) params.set([1, 0, 0, 0, 255, 255, 255], s * 7);
  return {
    n, inC: C, outC: C, outH: size, outW: size, K, sources,
    srcDims: new Int32Array(2 * n).fill(size),
    tapIndex, tapWeight, fill: new Float32Array(C), program: Int32Array.from([0]), opOffsets: Int32Array.from([0]), params,
  };
}

test("overlap: 50 batches on 3 streams take <= 1.15 x max(copy, kernel) of the same batches run serially", { skip: gpuSkip }, async () => {
  const rng = new RandomStream(14, 0, 0);
  const streams = [new cuda.Stream(), new cuda.Stream(), new cuda.Stream()];
  const pins = streams.map(() => {
    const p = cuda.pinned(OV.n * OV.size * OV.size * 3);
    const u = p.uint8();
    for (let i = 0; i < u.length; i += 64) u[i] = rng.int(256);
    return p;
  });
  const outs = [];
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  // Serial per-batch times (device events): pick the K whose kernel time is closest to the
  // copy time, where overlap matters most (without it the batches would take copy + kernel).
  async function serial(K) {
    const job = overlapJob(pins[0], K, rng);
    const copies = [];
    const kernels = [];
    for (let i = 0; i < 7; i++) {
      outs[0] = await cuda.runPlan(job, { stream: streams[0], output: outs[0] });
      if (i >= 2) (copies.push(outs[0].timings.copy), kernels.push(outs[0].timings.kernel));
    }
    return { K, copy: median(copies), kernel: median(kernels) };
  }
  let best;
  for (const K of [1, 2, 3, 4, 6, 8, 12, 16]) {
    const m = await serial(K);
    if (!best || Math.abs(Math.log(m.kernel / m.copy)) < Math.abs(Math.log(best.kernel / best.copy))) best = m;
    if (m.kernel > m.copy) break;
  }
  const jobs = pins.map((p) => overlapJob(p, best.K, rng));
  for (let s = 1; s < 3; s++) outs[s] = await cuda.runPlan(jobs[s], { stream: streams[s] });
  const batches = 50;
  const t0 = performance.now();
  const pending = [];
  for (let b = 0; b < batches; b++) pending.push(cuda.runPlan(jobs[b % 3], { stream: streams[b % 3], output: outs[b % 3] }));
  const enqueued = performance.now() - t0;
  await Promise.all(pending);
  const pipelined = performance.now() - t0;
  const bound = batches * Math.max(best.copy, best.kernel);
  console.log(
    `# overlap: K=${best.K}, per batch copy ${best.copy.toFixed(3)} ms, kernel ${best.kernel.toFixed(3)} ms; ` +
      `${batches} batches pipelined ${pipelined.toFixed(1)} ms (host enqueue ${enqueued.toFixed(1)} ms) vs serial ${(batches * (best.copy + best.kernel)).toFixed(1)} ms; ` +
      `pipelined / max(copy, kernel) = ${(pipelined / bound).toFixed(3)}`,
  );
  assert.ok(pipelined <= 1.15 * bound, `pipelined ${pipelined.toFixed(1)} ms > 1.15 x ${bound.toFixed(1)} ms`);
  outs.forEach((o) => o.free());
  pins.forEach((p) => p.free());
  streams.forEach((s) => s.destroy());
});
