"use strict";
// The CPU engine at the level of native/PLAN_ABI.md: hand-built jobs and random jobs checked
// bit for bit against a small independent implementation of the ABI written here (float32 by
// Math.fround after every operation, the contrast mean as a sequential double sum in row-major
// order), every malformed field rejected by name without touching `out`, the JavaScript thread
// free while a batch runs, concurrent jobs, and a worker thread torn down mid-job.
//
// BATCHLAB_NATIVE_ADDON=/path/to/batchlab_cpu.node runs these tests against another build
// (e.g. the AddressSanitizer build of native/README.md). BATCHLAB_ABI_CASES sets how many
// random jobs run (default 400).
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { loadNative } = require("../dist/engines/addon-cpu");
const { PlanError } = require("../dist/errors");
const { validJob, BAD_JOBS, assertRefusal } = require("./helpers/bad-jobs");

const native = loadNative();
const skipReason = native.ok ? null : `native engine unavailable: ${native.reason}`;
const CASES = Number(process.env.BATCHLAB_ABI_CASES || 400);

/** Runs `fn` as a test, or skips it with the reason (printed) when the addon is not built. */
function ntest(name, fn) {
  test(name, async (t) => {
    if (skipReason) {
      t.skip(skipReason);
      return;
    }
    await fn(t);
  });
}

// ---------------------------------------------------------------------------------------------
// The oracle: PLAN_ABI.md, written out directly.

const f = Math.fround;
const GR = f(0.299);
const GG = f(0.587);
const GB = f(0.114);
const { ORDERS, hueOf, levelOp, planeOp, sharpPlane } = require("./helpers/abi-maths");
// NOISE's field is the reference's own function (its maths: PLAN_ABI.md; its statistics: transforms.test.js)
const { noiseField } = require("../dist/transforms/photometric");


function grayOf(px, C) {
  return C === 1 ? px[0] : f(f(f(GR * px[0]) + f(GG * px[1])) + f(GB * px[2]));
}
function clamp(x, bound) {
  const m = x < 0 ? 0 : x; // max(x, 0)
  return m > bound ? bound : m; // min(., bound)
}

/** Output of sample s of `job` (NCHW Float32Array of outC*outH*outW), computed per the ABI. */
function oracleSample(job, s) {
  const { inC, outH: H, outW: W, K } = job;
  const P = job.params.length / job.n;
  const block = job.params.subarray(s * P, (s + 1) * P);
  const per = (H + W) * K;
  const taps = job.tapIndex.subarray(s * per, (s + 1) * per);
  const wts = job.tapWeight.subarray(s * per, (s + 1) * per);
  const srcW = job.srcDims[2 * s + 1];
  const src = job.sources[s];
  // img[p] = array of C channel values of pixel p (row-major)
  let img = new Array(H * W);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const px = new Array(inC);
      for (let c = 0; c < inC; c++) {
        let acc = 0;
        for (let i = 0; i < K; i++) {
          const r = taps[y * K + i];
          let row = 0;
          for (let j = 0; j < K; j++) {
            const q = taps[H * K + x * K + j];
            const S = r === -1 || q === -1 ? job.fill[c] : src[(r * srcW + q) * inC + c];
            row = f(row + f(wts[H * K + x * K + j] * S));
          }
          acc = f(acc + f(wts[y * K + i] * row));
        }
        px[c] = acc;
      }
      img[y * W + x] = px;
    }
  }
  let C = inC;
  for (let k = 0; k < job.program.length; k++) {
    const p = block.subarray(job.opOffsets[k]);
    if (p[0] === 0) continue;
    const code = job.program[k];
    if (code === 0) {
      img = img.map((px) => px.map((v, c) => f(f(v - p[1 + c]) / p[1 + C + c])));
    } else if (code === 1) {
      const oc = p[1];
      img = img.map((px) => new Array(oc).fill(grayOf(px, C)));
      C = oc;
    } else if (code === 2) {
      const bound = p[1];
      for (const which of ORDERS[p[2]]) {
        const fac = p[3 + which];
        if (Number.isNaN(fac)) continue;
        if (which === 0) {
          img = img.map((px) => px.map((v) => clamp(f(fac * v), bound)));
        } else if (which === 1) {
          let sum = 0;
          for (let q = 0; q < H * W; q++) sum += grayOf(img[q], C);
          const mean = f(sum / (H * W));
          const rest = f(f(1 - fac) * mean);
          img = img.map((px) => px.map((v) => clamp(f(f(fac * v) + rest), bound)));
        } else if (which === 2) {
          const k1 = f(1 - fac);
          img = img.map((px) => {
            const g = f(k1 * grayOf(px, C));
            return px.map((v) => clamp(f(f(fac * v) + g), bound));
          });
        } else if (C === 3) {
          img = img.map((px) => hueOf(px[0], px[1], px[2], fac, bound));
        }
      }
    } else if (code === 3) {
      const [y0, x0, h, w] = [p[1], p[2], p[3], p[4]];
      for (let y = y0; y < Math.min(H, y0 + h); y++) {
        for (let x = x0; x < Math.min(W, x0 + w); x++) img[y * W + x] = Array.from({ length: C }, (_, c) => p[5 + c]);
      }
    } else if (code >= 4 && code <= 6) {
      img = img.map((px) => px.map((v) => levelOp(code, v, p[1], p[2])));
    } else if (code === 10) {
      img = img.map((px) => px.map((_, c) => px[p[1 + c]]));
    } else if (code === 11) {
      const hwc = Float32Array.from(img.flat());
      const noisy = noiseField({ height: H, width: W, channels: C, data: hwc }, [p[5], p[6], p[7]], p[2], p[3], p[4] !== 0, p[1]).data;
      img = img.map((px, q) => px.map((_, c) => noisy[q * C + c]));
    } else if (code === 9) {
      const planes = Array.from({ length: C }, (_, c) => sharpPlane(img.map((px) => px[c]), H, W, p[2], p[1]));
      img = img.map((_, q) => planes.map((pl) => pl[q]));
    } else if (code === 7 || code === 8) {
      const planes = Array.from({ length: C }, (_, c) => planeOp(code, img.map((px) => px[c]), p[1]));
      img = img.map((_, q) => planes.map((pl) => pl[q]));
    } else {
      throw new Error(`oracle: op code ${code}`);
    }
  }
  assert.equal(C, job.outC, "oracle: the program ends with outC channels");
  const out = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) for (let q = 0; q < H * W; q++) out[c * H * W + q] = img[q][c];
  return out;
}

function oracle(job) {
  const per = job.outC * job.outH * job.outW;
  const out = new Float32Array(job.n * per);
  for (let s = 0; s < job.n; s++) out.set(oracleSample(job, s), s * per);
  return out;
}

/** Bit-for-bit equality (NaN payloads aside), with the first difference located. */
function assertSameBits(actual, expected, job, label) {
  assert.equal(actual.length >= expected.length, true, `${label}: output too short`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, expected.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (a[i] !== e[i] && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) {
      const plane = job.outH * job.outW;
      const s = Math.floor(i / (job.outC * plane));
      const c = Math.floor((i % (job.outC * plane)) / plane);
      const q = i % plane;
      assert.fail(
        `${label}: element ${i} (sample ${s}, channel ${c}, y ${Math.floor(q / job.outW)}, x ${q % job.outW}) ` +
          `native ${actual[i]} (0x${a[i].toString(16)}) != ABI ${expected[i]} (0x${e[i].toString(16)})\n` +
          `program ${Array.from(job.program)} K ${job.K} inC ${job.inC} outC ${job.outC} ${job.outH}x${job.outW}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random jobs

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomJob(seed, opts = {}) {
  const rnd = mulberry32(seed);
  const int = (n) => Math.floor(rnd() * n);
  const pick = (arr) => arr[int(arr.length)];
  const n = opts.n ?? 1 + int(4);
  const inC = opts.inC ?? 1 + int(4);
  const K = opts.K ?? pick([1, 1, 2, 4]);
  const unit = K === 1 && rnd() < 0.6; // integer map: every weight 1 (the gather path)
  const outH = 1 + int(13);
  const outW = 1 + int(13);
  const special = () => pick([0, -0, 1, -1, 0.5, 255, 1e-30, 3.4e38]);
  const val = () => (rnd() < 0.1 ? special() : (rnd() - 0.3) * 300);
  const sources = [];
  const srcDims = new Int32Array(2 * n);
  const tapIndex = new Int32Array(n * (outH + outW) * K);
  const tapWeight = new Float32Array(tapIndex.length);
  for (let s = 0; s < n; s++) {
    const h = 1 + int(12);
    const w = 1 + int(12);
    srcDims[2 * s] = h;
    srcDims[2 * s + 1] = w;
    const px = new Uint8Array(h * w * inC);
    for (let i = 0; i < px.length; i++) px[i] = rnd() < 0.1 ? pick([0, 255]) : int(256);
    sources.push(px);
    const base = s * (outH + outW) * K;
    for (let i = 0; i < (outH + outW) * K; i++) {
      const lim = i < outH * K ? h : w;
      tapIndex[base + i] = rnd() < 0.12 ? -1 : int(lim);
      tapWeight[base + i] = unit ? 1 : rnd() < 0.1 ? pick([0, -0, 1, -0.25, 2]) : rnd() * 1.5 - 0.25;
    }
  }
  const fill = Float32Array.from({ length: inC }, () => (rnd() < 0.2 ? pick([0, -0, 255, 0.5]) : val()));

  // A program, its parameter layout, then the per-sample blocks.
  const ops = [];
  let C = inC;
  const nOps = int(6);
  for (let k = 0; k < nOps; k++) {
    const code = int(12);
    const grayable = C === 1 || C === 3;
    if (code === 1 && !grayable) continue;
    const op = { code, C };
    if (code === 1) {
      op.outChannels = pick([1, 3]);
      op.optional = op.outChannels === C; // may be disabled only when it keeps C
      C = op.outChannels;
    }
    op.size = code === 0 ? 1 + 2 * op.C : code === 1 ? 2 : code === 2 ? 7 : code === 3 ? 5 + op.C : code === 4 || code === 7 || code === 8 ? 2 : code === 10 ? 1 + op.C : code === 11 ? 8 : 3;
    op.grayable = grayable;
    ops.push(op);
  }
  let P = 0;
  const offsets = ops.map((op) => {
    P += int(3); // gaps between blocks
    const at = P;
    P += op.size;
    return at;
  });
  P += int(3);
  const params = new Float32Array(n * P);
  for (let s = 0; s < n; s++) {
    const b = params.subarray(s * P, (s + 1) * P);
    for (let i = 0; i < P; i++) b[i] = rnd() * 1000 - 500; // garbage in the gaps
    ops.forEach((op, k) => {
      const p = b.subarray(offsets[k]);
      const enabled = op.code === 1 && !op.optional ? 1 : rnd() < 0.8 ? pick([1, 1, 2, -1]) : 0;
      p[0] = enabled;
      if (!enabled) {
        if (op.code === 1) p[1] = op.outChannels; // the rest stays garbage: it is never read
        return;
      }
      if (op.code === 0) {
        for (let c = 0; c < op.C; c++) {
          p[1 + c] = rnd() < 0.1 ? special() : rnd() * 200 - 50;
          p[1 + op.C + c] = rnd() < 0.05 ? pick([0, -0, 1e-30]) : rnd() < 0.5 ? 255 : rnd() * 3 - 1;
        }
      } else if (op.code === 1) {
        p[1] = op.outChannels;
      } else if (op.code === 2) {
        p[1] = pick([255, 1, 100]);
        p[2] = int(24);
        const factor = () => (rnd() < 0.25 ? NaN : rnd() < 0.1 ? pick([0, 1, -0]) : rnd() * 2);
        p[3] = factor();
        p[4] = op.grayable ? factor() : NaN;
        p[5] = op.grayable ? factor() : NaN;
        p[6] = op.grayable && rnd() < 0.75 ? rnd() - 0.5 : NaN;
      } else if (op.code === 11) {
        p[1] = pick([255, 1]);
        p[2] = rnd() < 0.2 ? pick([0, -0, 1]) : rnd() * 40 - 20;
        p[3] = rnd() < 0.1 ? pick([0, -0, 1e-30]) : rnd() * 60;
        p[4] = pick([0, 1]);
        for (let i = 5; i < 8; i++) p[i] = rnd() < 0.1 ? pick([0, 65535]) : int(65536);
      } else if (op.code >= 4) {
        p[1] = pick([255, 1]);
        if (op.code === 5) p[2] = rnd() < 0.1 ? special() : rnd() * 300 - 20;
        if (op.code === 6) p[2] = int(9);
        if (op.code === 9) p[2] = rnd() < 0.1 ? special() : rnd() * 3;
        if (op.code === 10) {
          const perm = Array.from({ length: op.C }, (_, c) => c);
          for (let i = perm.length - 1; i > 0; i--) {
            const j = int(i + 1);
            [perm[i], perm[j]] = [perm[j], perm[i]];
          }
          perm.forEach((q, c) => (p[1 + c] = q));
        }
      } else {
        p[1] = int(outH + 2);
        p[2] = int(outW + 2);
        p[3] = int(outH + 3);
        p[4] = int(outW + 3);
        for (let c = 0; c < op.C; c++) p[5 + c] = val();
      }
    });
  }
  return {
    n,
    inC,
    outC: C,
    outH,
    outW,
    K,
    sources,
    srcDims,
    tapIndex,
    tapWeight,
    fill,
    program: Int32Array.from(ops.map((o) => o.code)),
    opOffsets: Int32Array.from(offsets),
    params,
    out: new Float32Array(n * C * outH * outW).fill(12345),
    numThreads: 1 + int(4),
  };
}

// ---------------------------------------------------------------------------------------------
// Hand-built jobs

/** A job for one HWC image with identity taps (K = 1, weights 1) and the given program. */
function identityJob(h, w, c, pixels, program = [], blocks = [], outC = c) {
  const tapIndex = new Int32Array(h + w);
  for (let y = 0; y < h; y++) tapIndex[y] = y;
  for (let x = 0; x < w; x++) tapIndex[h + x] = x;
  const offsets = [];
  const params = [];
  for (const b of blocks) {
    offsets.push(params.length);
    params.push(...b);
  }
  return {
    n: 1,
    inC: c,
    outC,
    outH: h,
    outW: w,
    K: 1,
    sources: [Uint8Array.from(pixels)],
    srcDims: Int32Array.from([h, w]),
    tapIndex,
    tapWeight: new Float32Array(h + w).fill(1),
    fill: new Float32Array(c),
    program: Int32Array.from(program),
    opOffsets: Int32Array.from(offsets),
    params: Float32Array.from(params),
    out: new Float32Array(outC * h * w),
    numThreads: 2,
  };
}

ntest("K = 1 identity taps with toTensor give byte / 255 in NCHW order", async () => {
  const px = [0, 1, 2, 255, 128, 7, 10, 20, 30, 40, 50, 60]; // 2x2, 3 channels, HWC
  const job = identityJob(2, 2, 3, px, [0], [[1, 0, 0, 0, 255, 255, 255]]);
  await native.addon.runPlan(job);
  const expected = [];
  for (let c = 0; c < 3; c++) for (let p = 0; p < 4; p++) expected.push(f(px[p * 3 + c] / 255));
  assert.deepEqual(Array.from(job.out), expected);
});

ntest("fill taps, a horizontal flip and K = 2 weights follow the ABI's sums", async () => {
  // 1 channel, source 2x3: [[10, 20, 30], [40, 50, 60]]; output 2x4.
  const job = identityJob(2, 3, 1, [10, 20, 30, 40, 50, 60]);
  job.outW = 4;
  job.K = 2;
  // rows: y0 = 0.25*r0 + 0.75*r1, y1 = fill row; columns: x0 = col 2 (flip), x1 = 0.5 c0 + 0.5 fill,
  // x2 = col 1, x3 = 1.0 * col 0 + 0 * fill
  job.tapIndex = Int32Array.from([0, 1, -1, -1, 2, 2, 0, -1, 1, 1, 0, -1]);
  job.tapWeight = Float32Array.from([0.25, 0.75, 1, 0, 1, 0, 0.5, 0.5, 1, 0, 1, 0]);
  job.fill = Float32Array.from([100]);
  job.out = new Float32Array(8);
  await native.addon.runPlan(job);
  const S = (r, q) => (r < 0 || q < 0 ? 100 : [10, 20, 30, 40, 50, 60][r * 3 + q]);
  const cols = [
    [2, 2, 1, 0],
    [0, -1, 0.5, 0.5],
    [1, 1, 1, 0],
    [0, -1, 1, 0],
  ];
  const rows = [
    [0, 1, 0.25, 0.75],
    [-1, -1, 1, 0],
  ];
  const expected = [];
  for (const [r0, r1, wy0, wy1] of rows) {
    for (const [q0, q1, wx0, wx1] of cols) {
      const row = (r) => f(f(0 + f(wx0 * S(r, q0))) + f(wx1 * S(r, q1)));
      expected.push(f(f(0 + f(wy0 * row(r0))) + f(wy1 * row(r1))));
    }
  }
  assert.deepEqual(Array.from(job.out), expected);
  assert.equal(job.out[4], 100, "a fill row gives the fill value");
});

ntest("JITTER contrast uses the exact double mean of gray, GRAY changes the channel count", async () => {
  const px = [];
  for (let i = 0; i < 5 * 3 * 3; i++) px.push((i * 37) % 256);
  // JITTER (bound 255, order 6: c b s h) with contrast 0.3 and saturation 1.7, then GRAY to 1.
  const job = identityJob(5, 3, 3, px, [2, 1], [[1, 255, 6, NaN, 0.3, 1.7, NaN], [1, 1]], 1);
  await native.addon.runPlan(job);
  assertSameBits(job.out, oracle(job), job, "contrast + gray");
  // The mean itself: contrast 0 makes every pixel equal to the mean.
  const flat = identityJob(5, 3, 3, px, [2, 1], [[1, 255, 0, NaN, 0, NaN, NaN], [1, 1]], 1);
  await native.addon.runPlan(flat);
  let sum = 0;
  for (let p = 0; p < 15; p++) sum += grayOf([px[3 * p], px[3 * p + 1], px[3 * p + 2]], 3);
  const mean = f(sum / 15);
  const g = grayOf([mean, mean, mean], 3);
  assert.ok(flat.out.every((v) => v === g), `every pixel ${flat.out[0]} = gray(mean) ${g}`);
});

ntest("a gray image expanded to 3 channels and ERASE boxes reaching past the image", async () => {
  const job = identityJob(4, 5, 1, [...Array(20).keys()].map((i) => i * 12), [1, 3], [[1, 3], [1, 2, 3, 9, 9, 7, 8, 9]], 3);
  await native.addon.runPlan(job);
  assertSameBits(job.out, oracle(job), job, "gray 1->3 + erase");
  assert.equal(job.out[2 * 5 + 3], 7);
  assert.equal(job.out[20 + 3 * 5 + 4], 8);
});

ntest(`random jobs (${CASES}): every op code, K = 1, 2, 4, fill taps, 1..4 channels, odd sizes: bit-exact`, async () => {
  let codes = new Set();
  for (let seed = 1; seed <= CASES; seed++) {
    const job = randomJob(seed);
    job.program.forEach((c) => codes.add(c));
    try {
      await native.addon.runPlan(job);
    } catch (e) {
      assert.fail(`seed ${seed}: rejected a valid job: ${e.message}`);
    }
    assertSameBits(job.out, oracle(job), job, `seed ${seed}`);
  }
  assert.deepEqual([...codes].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "the random programs cover every op code");
});

ntest("random jobs with a batch of 1, and with the gather path's integer taps", async () => {
  for (let seed = 10001; seed <= 10000 + Math.ceil(CASES / 4); seed++) {
    const job = randomJob(seed, { n: 1 });
    await native.addon.runPlan(job);
    assertSameBits(job.out, oracle(job), job, `seed ${seed} (n = 1)`);
    const k1 = randomJob(seed, { K: 1, inC: seed % 2 ? 3 : 1 });
    await native.addon.runPlan(k1);
    assertSameBits(k1.out, oracle(k1), k1, `seed ${seed} (K = 1)`);
  }
});

ntest("the result does not depend on numThreads", async () => {
  const base = randomJob(777, { n: 40, K: 2, inC: 3 });
  const outs = [];
  for (const threads of [1, 2, 3, 64]) {
    const job = { ...base, out: new Float32Array(base.out.length), numThreads: threads };
    await native.addon.runPlan(job);
    outs.push(job.out);
  }
  for (const o of outs.slice(1)) assert.deepEqual(new Uint32Array(o.buffer), new Uint32Array(outs[0].buffer));
  assertSameBits(outs[0], oracle(base), base, "numThreads");
});

// ---------------------------------------------------------------------------------------------
// Malformed jobs

ntest("every malformed field rejects the promise with a PlanError naming it; out is untouched", async () => {
  for (const c of BAD_JOBS) {
    const job = { ...validJob(), fill: randomJob(5, { n: 2, inC: 3, K: 2 }).fill };
    c[1](job);
    const before = job.out ? Float32Array.from(job.out) : null;
    await assert.rejects(native.addon.runPlan(job), (e) => {
      assert.ok(e instanceof PlanError, `${c[0]}: a PlanError, got ${e && e.constructor && e.constructor.name}`);
      assertRefusal(assert, e, c);
      return true;
    });
    if (before && job.out instanceof Float32Array && job.out.length === before.length) {
      assert.deepEqual(job.out, before, `${c[0]}: nothing was written`);
    }
  }
  await assert.rejects(native.addon.runPlan(undefined), (e) => e instanceof PlanError && e.option === "runPlan(job)" && e.received === "undefined");
  // The process lives on and the engine still works.
  const ok = validJob();
  await native.addon.runPlan(ok);
  assertSameBits(ok.out, oracle(ok), ok, "the valid job after the bad ones");
});

ntest("disabled ops are skipped whatever their parameters hold", async () => {
  const job = validJob();
  job.program = Int32Array.from([0, 2, 3, 1]);
  job.opOffsets = Int32Array.from([0, 7, 14, 20]);
  const p = job.params;
  for (const s of [0, 1]) {
    const b = s * 22;
    p[b + 7] = 0; // JITTER disabled, order 99
    p[b + 9] = 99;
    p[b + 14] = 0; // ERASE disabled, negative box
    p[b + 15] = -5;
    p[b + 20] = 0; // GRAY disabled, outChannels 7
    p[b + 21] = 7;
  }
  await native.addon.runPlan(job);
  assertSameBits(job.out, oracle(job), job, "disabled ops");
});

ntest("a job with n = 0 resolves without work", async () => {
  const job = { n: 0, inC: 1, outC: 1, outH: 1, outW: 1, K: 1, sources: [], srcDims: new Int32Array(0), tapIndex: new Int32Array(0), tapWeight: new Float32Array(0), fill: new Float32Array(1), program: new Int32Array(0), opOffsets: new Int32Array(0), params: new Float32Array(0), out: new Float32Array(0), numThreads: 1 };
  await native.addon.runPlan(job);
});

// ---------------------------------------------------------------------------------------------
// Threads

/** n samples of h x w x 3 (8 distinct images shared as views) resized to oh x ow with K = 2. */
function bilinearJob(n, h, w, oh, ow, program = [0], block = [1, 0, 0, 0, 255, 255, 255]) {
  const images = Array.from({ length: 8 }, (_, k) => {
    const d = new Uint8Array(h * w * 3);
    for (let i = 0; i < d.length; i++) d[i] = (i * (k + 3) + (i >> 7)) & 255;
    return d;
  });
  const axis = (out, src) => {
    const idx = new Int32Array(out * 2);
    const wt = new Float32Array(out * 2);
    for (let o = 0; o < out; o++) {
      const pos = Math.max(0, ((o + 0.5) * src) / out - 0.5);
      const i0 = Math.min(src - 1, Math.floor(pos));
      const frac = f(pos - i0);
      idx[2 * o] = i0;
      idx[2 * o + 1] = Math.min(src - 1, i0 + 1);
      wt[2 * o] = f(1 - frac);
      wt[2 * o + 1] = frac;
    }
    return [idx, wt];
  };
  const [ry, wy] = axis(oh, h);
  const [rx, wx] = axis(ow, w);
  const per = (oh + ow) * 2;
  const tapIndex = new Int32Array(n * per);
  const tapWeight = new Float32Array(n * per);
  for (let s = 0; s < n; s++) {
    tapIndex.set(ry, s * per);
    tapIndex.set(rx, s * per + oh * 2);
    tapWeight.set(wy, s * per);
    tapWeight.set(wx, s * per + oh * 2);
  }
  const params = new Float32Array(n * block.length);
  for (let s = 0; s < n; s++) params.set(block, s * block.length);
  return {
    n,
    inC: 3,
    outC: 3,
    outH: oh,
    outW: ow,
    K: 2,
    sources: Array.from({ length: n }, (_, s) => images[s % 8]),
    srcDims: new Int32Array(2 * n).map((_, i) => (i % 2 ? w : h)),
    tapIndex,
    tapWeight,
    fill: new Float32Array(3),
    program: Int32Array.from(program),
    opOffsets: new Int32Array(program.length).map((_, k) => (k === 0 ? 0 : 7)),
    params,
    out: new Float32Array(n * 3 * oh * ow),
    numThreads: 64,
  };
}

function checkSomeSamples(job, samples, label) {
  const per = job.outC * job.outH * job.outW;
  for (const s of samples) assertSameBits(job.out.subarray(s * per, (s + 1) * per), oracleSample(job, s), { ...job, n: 1 }, `${label}, sample ${s}`);
}

ntest("the JavaScript thread stays free while a large batch runs (512 x 256x256x3, K = 2)", async () => {
  const job = bilinearJob(512, 256, 256, 160, 160, [0, 2], [1, 0, 0, 0, 255, 255, 255, 1, 1, 3, 1.1, 0.9, 1.2, 0.1]);
  let settled = false;
  let pendingWhenTimerFired;
  const run = native.addon.runPlan(job).then(() => (settled = true));
  setTimeout(() => (pendingWhenTimerFired = !settled), 0);
  await run;
  assert.equal(pendingWhenTimerFired, true, "a timer set after runPlan() ran before the batch finished");
  checkSomeSamples(job, [0, 255, 511], "large batch");
});

ntest("two concurrent jobs share the pool and both come out right", async () => {
  const a = bilinearJob(96, 40, 30, 23, 17);
  const b = randomJob(4242, { n: 64, K: 4, inC: 3 });
  const c = randomJob(4243, { n: 50, K: 1, inC: 1 });
  a.numThreads = 2;
  b.numThreads = 1;
  await Promise.all([native.addon.runPlan(a), native.addon.runPlan(b), native.addon.runPlan(c)]);
  checkSomeSamples(a, [0, 1, 47, 95], "concurrent job a");
  assertSameBits(b.out, oracle(b), b, "concurrent job b");
  assertSameBits(c.out, oracle(c), c, "concurrent job c");
});

ntest("the job's typed arrays stay alive until it finishes, whatever the garbage collector does", async () => {
  require("v8").setFlagsFromString("--expose-gc");
  const gc = require("vm").runInNewContext("gc");
  const job = randomJob(99, { n: 200, K: 2, inC: 3 });
  const expected = oracle(job);
  const out = job.out;
  const pending = native.addon.runPlan({ ...job, sources: job.sources.map((s) => s.slice()), tapIndex: job.tapIndex.slice(), tapWeight: job.tapWeight.slice(), params: job.params.slice() });
  for (let i = 0; i < 3; i++) gc();
  await pending;
  assertSameBits(out, expected, job, "after gc");
});

ntest("arrays changed while a job runs never lead outside the sources", async () => {
  const job = bilinearJob(256, 64, 64, 48, 48);
  const pending = native.addon.runPlan(job);
  job.tapIndex.fill(1 << 30); // every later sample sees out-of-range taps
  job.params.fill(NaN);
  try {
    await pending;
  } catch (e) {
    assert.match(e.message, /sample \d+: the job's arrays changed while it ran: tapIndex\[\d+\]: expected -1 or a row of sample \d+ in \[0, 63\] \(row tap 0 of output row 0\), received 1073741824/);
  }
});

ntest("info() and poolSize() describe the build and the pool", () => {
  const info = native.addon.info();
  assert.equal(info.version, require("../package.json").version);
  assert.equal(info.threads, native.addon.poolSize());
  assert.ok(Number.isInteger(info.threads) && info.threads >= 1);
  assert.equal(typeof info.simd, "string");
  assert.match(info.compiler, /g\+\+|clang/);
});

ntest("worker threads ended in the middle of jobs leave the process and the engine working", async () => {
  // Each worker queues a few jobs and is terminated at once or a few milliseconds later, so
  // that its environment goes away while the pool runs its samples, or while the results
  // are being delivered. A crash here ends the whole test process.
  const { Worker } = require("node:worker_threads");
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const addon = require(workerData.file);
    const n = 64, h = 64, w = 64;
    const src = new Uint8Array(h * w * 3).fill(7);
    const per = (h + w) * 2;
    for (let k = 0; k < 4; k++) {
      addon.runPlan({ n, inC: 3, outC: 3, outH: h, outW: w, K: 2, sources: Array(n).fill(src),
        srcDims: new Int32Array(2 * n).fill(h), tapIndex: new Int32Array(n * per), tapWeight: new Float32Array(n * per).fill(0.5),
        fill: new Float32Array(3), program: new Int32Array(0), opOffsets: new Int32Array(0), params: new Float32Array(0),
        out: new Float32Array(n * 3 * h * w), numThreads: 8 });
    }
    parentPort.postMessage("started");`;
  const file = path.resolve(require("../dist/engines/addon-cpu").addonPath());
  const rnd = mulberry32(2024);
  for (let round = 0; round < 60; round++) {
    const worker = new Worker(code, { eval: true, workerData: { file } });
    await new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    const delay = Math.floor(rnd() * 8);
    if (delay > 1) await new Promise((resolve) => setTimeout(resolve, delay));
    await worker.terminate();
  }
  const job = randomJob(31337, { n: 8 });
  await native.addon.runPlan(job);
  assertSameBits(job.out, oracle(job), job, "after the workers ended");
});

// ---------------------------------------------------------------------------------------------
// Sources in one buffer, and the batch memory allocator

const T = require("../dist/transforms");

/** A job compiled from a transform chain (uniform images i*10+1). */
function planJob(n = 2, h = 8, w = 8, c = 3, chain = T.compose([T.randomCrop(6, { padding: 1 }), T.toTensor()])) {
  const plan = new T.Plan(chain);
  const images = Array.from({ length: n }, (_, i) => ({ data: new Uint8Array(h * w * c).fill(i * 10 + 1), height: h, width: w, channels: c }));
  const params = images.map((im, i) => plan.draw(im, { seed: 1, epoch: 0, position: i }));
  const j = require("../dist/engines").encodeJob(plan, images, params);
  return { ...j, out: new Float32Array(j.n * j.outC * j.outH * j.outW), numThreads: 2 };
}

ntest("one-buffer sources: offsets are checked by name, and the job reads each sample at its offset", async () => {
  const chain = T.compose([T.randomCrop(6, { padding: 1 }), T.toTensor()]);
  const plan = new T.Plan(chain);
  const shape = { height: 8, width: 8, channels: 3 };
  const pixels = new Uint8Array(5 * 192);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31) % 256;
  const params = [0, 1].map((i) => plan.draw(shape, { seed: 4, epoch: 0, position: i }));
  const stored = (offsets) => ({ ...require("../dist/engines").encodeJob(plan, require("../dist/engines").pixelsOfStore({ pixels, offsets: Float64Array.from(offsets), shape }), params), out: new Float32Array(2 * 108), numThreads: 2 });
  const good = stored([4 * 192, 192]);
  await native.addon.runPlan(good);
  const views = require("../dist/engines").encodeJob(plan, [4 * 192, 192].map((o) => ({ data: pixels.subarray(o, o + 192), ...shape })), params);
  const out = new Float32Array(2 * 108);
  await native.addon.runPlan({ ...views, out, numThreads: 1 });
  assert.deepEqual(good.out, out);

  const reject = (mut, field, received, expected) => {
    const j = stored([0, 192]);
    mut(j);
    return assert.rejects(native.addon.runPlan(j), (e) => (assertRefusal(assert, e, ["one buffer", null, field, received, expected]), true));
  };
  await reject((j) => (j.srcOffsets = Float64Array.from([0])), "srcOffsets", "length 1", /^n = 2 offsets$/);
  await reject((j) => (j.srcOffsets = Int32Array.from([0, 0])), "srcOffsets", "Int32Array of length 2", /^a Float64Array of n byte offsets when sources is one Uint8Array$/);
  await reject((j) => delete j.srcOffsets, "srcOffsets", "undefined", /^a Float64Array/);
  await reject((j) => (j.srcOffsets[1] = -1), "srcOffsets[1]", "-1", /^an integer byte offset in \[0, 960\]/);
  await reject((j) => (j.srcOffsets[0] = 1.5), "srcOffsets[0]", "1.5", /integer byte offset/);
  await reject((j) => (j.srcOffsets[0] = NaN), "srcOffsets[0]", "NaN", /integer byte offset/);
  await reject((j) => (j.srcOffsets[1] = 4 * 192 + 1), "srcOffsets[1]", "769, which leaves 191 bytes of sources", /^at least height\*width\*inC = 8\*8\*3 = 192 bytes$/);
  await reject((j) => (j.sources = new Int8Array(960)), "sources", "Int8Array of length 960", /^a Uint8Array \(with srcOffsets\) or an array of n Uint8Array$/);
  await reject((j) => (j.sources = [pixels, pixels]), "srcOffsets", "Float64Array of length 2", /^undefined when sources is an array of views$/);
  await reject((j) => (j.out = new Float32Array(pixels.buffer, 0, 216)), "out", "a view that overlaps sample 0 of sources", /shares no memory/);
});

ntest("allocOutput: batch memory of a collected or released buffer is handed out again; bad sizes are refused by name", async () => {
  const v8 = require("node:v8");
  const vm = require("node:vm");
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc");
  const { addon } = native;
  const bytes = 3 * 1024 * 1024 + 4096; // a size no other test uses
  const a = addon.allocOutput(bytes);
  assert.ok(a instanceof ArrayBuffer);
  assert.equal(a.byteLength, bytes);
  let reused = false;
  for (let attempt = 0; attempt < 60 && !reused; attempt++) {
    // Mark a buffer, drop every reference to it, let the collector free it, ask again (the
    // collector's finalizers run when they run: on a loaded machine, try again a while).
    ((marker) => new Float64Array(addon.allocOutput(bytes)).fill(marker))(0x5eed + attempt);
    gc();
    await new Promise((r) => (attempt < 10 ? setImmediate(r) : setTimeout(r, 10)));
    const b = new Float64Array(addon.allocOutput(bytes));
    reused = b[0] === 0x5eed + attempt && b[b.length - 1] === 0x5eed + attempt;
  }
  assert.ok(reused, "the memory of a collected batch buffer came back");

  // releaseOutput: no collection needed. The buffer is detached at once; its memory comes back.
  const released = addon.allocOutput(bytes);
  const view = new Float64Array(released).fill(0xd15);
  assert.equal(addon.releaseOutput(released), true);
  assert.equal(view.length, 0);
  assert.equal(released.byteLength, 0);
  assert.equal(addon.releaseOutput(released), false, "twice is refused");
  await new Promise((r) => setImmediate(r));
  const again = new Float64Array(addon.allocOutput(bytes));
  assert.ok(again[0] === 0xd15 && again[again.length - 1] === 0xd15, "the released memory is handed out again");
  assert.equal(addon.releaseOutput(new ArrayBuffer(8)), false, "a buffer allocOutput did not make is left alone");

  // A buffer a queued or running job writes into is refused (the job holds it) until the job ends.
  const j = planJob(64, 16, 16, 3, T.compose([T.toTensor()]));
  const busy = addon.allocOutput(j.out.length * 4);
  const done = addon.runPlan({ ...j, out: new Float32Array(busy) });
  assert.equal(addon.releaseOutput(busy), false, "refused while the job runs");
  assert.equal(busy.byteLength, j.out.length * 4, "and left attached");
  await done;
  assert.equal(addon.releaseOutput(busy), true, "released once the job has ended");
  assert.equal(addon.releaseOutput(new Float32Array(4)), false);
  for (const bad of [0, -1, 1.5, 2 ** 31 + 1, 2 ** 40, "1024", undefined]) {
    assert.throws(() => addon.allocOutput(bad), (e) => e instanceof RangeError && /^allocOutput\(bytes\): expected an integer from 1 to 2\^31, received/.test(e.message));
  }
});

ntest("the malformed-job table's warp jobs are valid: the C++ engine, the plan's TypeScript executor and the CUDA emulation agree", async () => {
  const { withWarp, withPrePass } = require("./helpers/bad-jobs");
  const { executePlan } = require("../dist/engines");
  const cuda = require("../dist/engines/addon-cuda").load();
  for (const [make, mode] of [withWarp, withPrePass].flatMap((m) => [1, 2, 3].map((w) => [m, w]))) {
    const job = make(validJob());
    job.warp = mode;
    const expected = new Float32Array(job.out.length);
    executePlan(job, expected);
    await native.addon.runPlan(job);
    assertSameBits(job.out, expected, job, `${make.name}, warp ${mode}`);
    if (cuda.addon) assertSameBits(cuda.addon.emulatePlan(job), expected, job, `${make.name}, warp ${mode} (CUDA emulation)`);
  }
});

// The whole-image ops' SSE paths (AUTOCONTRAST's scan and map, POSTERIZE, EQUALIZE) on the values
// where the lanes must follow the scalar rules: -0 (the lowest is -0 once one is seen), NaN
// (passed over, level 0) and infinities, from an AFFINE with sub = the pixel value and div -1 or 0.
ntest("AUTOCONTRAST, POSTERIZE and EQUALIZE on -0, NaN and infinities: the CPU engine equals the TypeScript executor", async () => {
  const { executePlan } = require("../dist/engines");
  const { RandomStream } = require("../dist/sampling/rng");
  const rng = new RandomStream(9, 0, 0);
  let special = 0; // trials whose AFFINE made -0 (channel 0) and NaN (channel 1) values
  for (let t = 0; t < 200; t++) {
    const H = 1 + rng.int(9);
    const W = 1 + rng.int(13);
    const C = 3;
    const sources = [0, 1].map(() => Uint8Array.from({ length: H * W * C }, () => [0, 100, 100, 200, rng.int(256)][rng.int(5)]));
    const per = H + W;
    const tapIndex = new Int32Array(2 * per);
    for (let s = 0; s < 2; s++) {
      for (let y = 0; y < H; y++) tapIndex[s * per + y] = y;
      for (let x = 0; x < W; x++) tapIndex[s * per + H + x] = x;
    }
    const bound = rng.random() < 0.5 ? 1 : 255;
    // AFFINE (sub 100, 100, 0; div -1, 0, +-1 or -255), AUTOCONTRAST, POSTERIZE 3 bits, EQUALIZE.
    const block = [1, 100, 100, 0, -1, 0, rng.random() < 0.5 ? 1 : -255, 1, bound, 1, bound, 3, 1, bound];
    const job = {
      n: 2, inC: C, outC: C, outH: H, outW: W, K: 1, sources, srcDims: Int32Array.from([H, W, H, W]), tapIndex, tapWeight: new Float32Array(2 * per).fill(1),
      fill: new Float32Array(C), program: Int32Array.from([0, 7, 6, 8]), opOffsets: Int32Array.from([0, 7, 9, 12]), params: Float32Array.from([...block, ...block]),
    };
    const expected = new Float32Array(2 * C * H * W);
    executePlan(job, expected);
    const out = new Float32Array(expected.length).fill(7);
    await native.addon.runPlan({ ...job, out, numThreads: 2 });
    for (let i = 0; i < out.length; i++) if (!Object.is(out[i], expected[i])) assert.fail(`trial ${t} (${H}x${W}): element ${i} native ${out[i]} != ${expected[i]}`);
    special += sources.some((s) => s.some((v, i) => v === 100 && i % C < 2)) ? 1 : 0;
  }
  assert.ok(special > 150, `the jobs held -0 and NaN values (${special} of 200)`);
});
