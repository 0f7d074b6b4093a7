"use strict";
// Malformed plan jobs, one per check of native/plan_check.cc, with the field, the received value
// and what the refusal must say was expected. Both addons read and check a job with the same
// code (native/job_read.cc), so native-abi.test.js runs the table against the CPU engine and
// cuda.test.js against the CUDA addon's check (which needs no GPU).

/**
 * A valid job: 2 samples, 3 channels, 4x4 sources, output 3x3, K = 2; program AFFINE, JITTER,
 * ERASE. `base` supplies the other fields (e.g. a random job's fill).
 */
function validJob() {
  const block = [1, 0, 0, 0, 255, 255, 255, 1, 1, 0, 1.2, 0.8, 1.1, 0.05, 1, 0, 0, 1, 1, 0, 0, 0];
  return {
    n: 2,
    inC: 3,
    outC: 3,
    outH: 3,
    outW: 3,
    K: 2,
    sources: [new Uint8Array(48).fill(9), new Uint8Array(48).fill(200)],
    srcDims: Int32Array.from([4, 4, 4, 4]),
    tapIndex: new Int32Array(2 * 6 * 2).fill(1),
    tapWeight: new Float32Array(2 * 6 * 2).fill(0.5),
    fill: Float32Array.from([1, 2, 3]),
    program: Int32Array.from([0, 2, 3]),
    opOffsets: Int32Array.from([0, 7, 14]),
    params: Float32Array.from([...block, ...block]),
    out: new Float32Array(2 * 3 * 3 * 3),
    numThreads: 2,
  };
}

/**
 * The valid job with a bilinear warp pass: each sample's block gains a 42-float warp block at
 * offset 22 (enabled, the identity matrix, domain and real windows of the whole 4x4 source, no
 * frames, G = 0), so P = 64, and the taps read a 4x4 warped image. Returns the job (mutated).
 */
function withWarp(j) {
  const block = [1, 0, 0, 0, 255, 255, 255, 1, 1, 0, 1.2, 0.8, 1.1, 0.05, 1, 0, 0, 1, 1, 0, 0, 0];
  const warp = [1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 4, 4, 0, 0, 4, 4, 0, ...new Array(22).fill(0), 0];
  j.warp = 2;
  j.warpOffset = 22;
  j.warpDims = Int32Array.from([4, 4, 4, 4]);
  j.params = Float32Array.from([...block, ...warp, ...block, ...warp]);
  return j;
}

/**
 * withWarp's job with a pass before the warp: each sample's 4x4 source becomes a 3x2 pre-pass
 * image (K = 1 taps: rows 0..2, columns 3 and 2), which the (identity) warp reads; its real
 * window is the pre-pass image and warpDims stay 4x4 (the warp writes 4x4 from 3x2).
 */
function withPrePass(j) {
  withWarp(j);
  j.preK = 1;
  j.preDims = Int32Array.from([3, 2, 3, 2]);
  j.preTapIndex = Int32Array.from([0, 1, 2, 3, 2, 0, 1, 2, 3, 2]);
  j.preTapWeight = new Float32Array(10).fill(1);
  for (const at of [22, 64 + 22]) j.params.set([0, 0, 2, 3, 0, 0, 2, 3], at + 10);
  return j;
}

/** [what, mutate(job), field, received, expected (RegExp), where: "both" | "cpu" (out, numThreads, CPU limits)] */
const BAD_JOBS = [
  ["tap index past the source's last row", (j) => (j.tapIndex[3] = 4), "tapIndex[3]", "4", /^-1 or a row of sample 0 in \[0, 3\] \(row tap 1 of output row 1\)$/, "both"],
  ["tap index below -1", (j) => (j.tapIndex[2 * 12 - 1] = -2), "tapIndex[23]", "-2", /^-1 or a column of sample 1 in \[0, 3\]/, "both"],
  ["tap index of a smaller source", (j) => ((j.srcDims[3] = 1), (j.sources[1] = new Uint8Array(12))), "tapIndex[18]", "1", /column of sample 1 in \[0, 0\]/, "both"],
  ["short out buffer", (j) => (j.out = new Float32Array(53)), "out", "length 53", /^at least n\*outC\*outH\*outW = 54 floats$/, "cpu"],
  ["missing source", (j) => j.sources.pop(), "sources", "an array of length 1", /^n = 2 Uint8Arrays/, "both"],
  ["extra source", (j) => j.sources.push(new Uint8Array(48)), "sources", "an array of length 3", /^n = 2 Uint8Arrays/, "both"],
  ["source shorter than its dims", (j) => (j.sources[1] = new Uint8Array(47)), "sources[1]", "47 bytes", /^at least height\*width\*inC = 4\*4\*3 = 48 bytes$/, "both"],
  ["source of the wrong type", (j) => (j.sources[0] = new Float32Array(48)), "sources[0]", "Float32Array of length 48", /^a Uint8Array$/, "both"],
  ["bad op code", (j) => (j.program[1] = 99), "program[1]", "99", /^an op code: 0 AFFINE, 1 GRAY, 2 JITTER, 3 ERASE, 4 INVERT, 5 SOLARIZE, 6 POSTERIZE, 7 AUTOCONTRAST, 8 EQUALIZE, 9 SHARPNESS, 10 PERMUTE, 11 NOISE, 12 WARP, 13 MIX_BEGIN, 14 MIX_NEXT or 15 MIX_END$/, "both"],
  ["negative op offset", (j) => (j.opOffsets[0] = -1), "opOffsets[0]", "-1", /^an offset >= 0$/, "both"],
  ["op block past the end of P", (j) => (j.opOffsets[2] = 15), "opOffsets[2]", "15", /op 2 \(ERASE, 8 floats at 3 channels\) fits the parameter block of P = params.length \/ n = 22 floats/, "both"],
  ["one offset missing", (j) => (j.opOffsets = Int32Array.from([0, 7])), "opOffsets", "length 2", /^one offset per op \(3\)$/, "both"],
  ["outC not the program's channel count", (j) => ((j.outC = 1), (j.out = new Float32Array(18))), "outC", "1", /program ends with for sample 0 \(3\)/, "both"],
  ["GRAY on 2 channels", (j) => ((j.inC = 2), (j.fill = new Float32Array(2)), (j.program[1] = 1)), "program[1]", "2 channels", /^GRAY at 1 or 3 channels/, "both"],
  ["GRAY to 2 channels", (j) => ((j.program = Int32Array.from([1])), (j.opOffsets = Int32Array.from([7])), (j.params[8] = 2)), "params[8]", "2", /^GRAY outChannels 1 or 3 \(op 0 GRAY of sample 0\)$/, "both"],
  ["JITTER order 24", (j) => (j.params[22 + 9] = 24), "params[31]", "24", /JITTER order, an integer in 0\.\.23 \(op 1 JITTER of sample 1\)/, "both"],
  ["POSTERIZE bits 9", (j) => ((j.program[2] = 6), (j.params[15] = 255), (j.params[16] = 9)), "params[16]", "9", /^POSTERIZE bits, an integer in 0\.\.8 \(op 2 POSTERIZE of sample 0\)$/, "both"],
  ["NOISE bound 7", (j) => ((j.program[2] = 11), (j.params[15] = 7)), "params[15]", "7", /^a NOISE bound, 1 or 255 \(op 2 NOISE of sample 0\)$/, "both"],
  ["NOISE sigma -1", (j) => ((j.program[2] = 11), (j.params[15] = 1), (j.params[17] = -1)), "params[17]", "-1", /^a NOISE sigma, finite and >= 0 \(op 2 NOISE of sample 0\)$/, "both"],
  ["NOISE clip 2", (j) => ((j.program[2] = 11), (j.params[15] = 1), (j.params[18] = 2)), "params[18]", "2", /^NOISE clip, 0 or 1 \(op 2 NOISE of sample 0\)$/, "both"],
  ["NOISE key word 1.5", (j) => ((j.program[2] = 11), (j.params[15] = 1), (j.params[19] = 1.5)), "params[19]", "1.5", /^a NOISE key word, an integer in 0\.\.65535 \(op 2 NOISE of sample 0\)$/, "both"],
  ["SOLARIZE with bound 100", (j) => ((j.program[2] = 5), (j.params[15] = 100)), "params[15]", "100", /^a SOLARIZE bound, 1 or 255/, "both"],
  ["JITTER order 1.5", (j) => (j.params[9] = 1.5), "params[9]", "1.5", /JITTER order/, "both"],
  ["ERASE with a negative corner", (j) => (j.params[15] = -1), "params[15]", "-1", /^an ERASE y0, a non-negative integer/, "both"],
  ["ERASE with a fractional width", (j) => (j.params[22 + 18] = 0.5), "params[40]", "0.5", /^an ERASE w, a non-negative integer \(op 2 ERASE of sample 1\)$/, "both"],
  ["params not a multiple of n", (j) => (j.params = new Float32Array(41)), "params", "length 41", /^a length that is a multiple of n = 2/, "both"],
  ["srcDims too short", (j) => (j.srcDims = Int32Array.from([4, 4, 4])), "srcDims", "length 3", /^an Int32Array of length 2n = 4$/, "both"],
  ["srcDims with a zero height", (j) => (j.srcDims[2] = 0), "srcDims[2..3]", "0x4", /^a height and width >= 1 for sample 1$/, "both"],
  ["srcDims of the wrong type", (j) => (j.srcDims = new Float32Array(4)), "srcDims", "Float32Array of length 4", /^an Int32Array$/, "both"],
  ["tapIndex of the wrong length", (j) => (j.tapIndex = new Int32Array(23)), "tapIndex", "length 23", /^length n\*\(outH\+outW\)\*K = 24$/, "both"],
  ["tapWeight of the wrong length", (j) => (j.tapWeight = new Float32Array(3)), "tapWeight", "length 3", /^the length of tapIndex \(24\)$/, "both"],
  ["fill shorter than inC", (j) => (j.fill = new Float32Array(2)), "fill", "length 2", /^at least inC = 3 values$/, "both"],
  ["program not an Int32Array", (j) => (j.program = [0, 2, 3]), "program", "an array of length 3", /^an Int32Array$/, "both"],
  ["params missing", (j) => delete j.params, "params", "undefined", /^a Float32Array$/, "both"],
  ["n not an integer", (j) => (j.n = 1.5), "n", "1.5", /^an integer in \[0, \d+\]$/, "both"],
  ["K of 0", (j) => (j.K = 0), "K", "0", /^an integer >= 1$/, "both"],
  ["outH a string", (j) => (j.outH = "3"), "outH", "a string", /^an integer in \[1, \d+\]$/, "both"],
  ["inC too large", (j) => (j.inC = 65), "inC", "65", /^an integer <= 64$/, "cpu"],
  // The warp pass (PLAN_ABI.md, "Warp pass").
  ["warp mode 4", (j) => (withWarp(j).warp = 4), "warp", "4", /^an integer <= 3$/, "both"],
  ["warp mode a string", (j) => (withWarp(j).warp = "bilinear"), "warp", "a string", /^an integer in \[0, 3\]$/, "both"],
  ["warpOffset missing", (j) => delete withWarp(j).warpOffset, "warpOffset", "undefined", /^an integer in \[0, 2147483647\]$/, "both"],
  ["warp block past the end of P", (j) => (withWarp(j).warpOffset = 23), "warpOffset", "23", /^an offset where the warp block \(42 floats\) fits the parameter block of P = params.length \/ n = 64 floats$/, "both"],
  ["warpDims missing", (j) => delete withWarp(j).warpDims, "warpDims", "undefined", /^an Int32Array$/, "both"],
  ["warpDims too short", (j) => (withWarp(j).warpDims = Int32Array.from([4, 4])), "warpDims", "length 2", /^an Int32Array of length 2n = 4 \(the job has a warp pass\)$/, "both"],
  ["warpDims with a zero width", (j) => (withWarp(j).warpDims[3] = 0), "warpDims[2..3]", "4x0", /^a height and width in \[1, \d+\] for sample 1$/, "both"],
  ["tap past the warped image", (j) => (withWarp(j).warpDims[0] = 1), "tapIndex[0]", "1", /^-1 or a row of warped image 0 in \[0, 0\] \(row tap 0 of output row 0\)$/, "both"],
  ["warp enabled flag 0.5", (j) => (withWarp(j).params[22] = 0.5), "params[22]", "0.5", /^a warp enabled flag, 0 or 1 \(warp block of sample 0\)$/, "both"],
  ["warp off with a warped size unlike the source", (j) => ((withWarp(j).params[64 + 22] = 0), (j.warpDims[2] = 3), (j.tapIndex.fill(0))), "warpDims[2..3]", "3x4", /^the source's size 4x4 for sample 1, whose warp is off \(params\[86\] = 0\)$/, "both"],
  ["real window past the source", (j) => (withWarp(j).params[22 + 16] = 4.5), "params[38]", "4.5", /^a real-window x1 in \[0, 4\] \(inside the source\) \(warp block of sample 0\)$/, "both"],
  ["real window NaN", (j) => (withWarp(j).params[64 + 22 + 15] = NaN), "params[101]", "NaN", /^a real-window y0 in \[0, 4\]/, "both"],
  ["frame count 3", (j) => (withWarp(j).params[22 + 18] = 3), "params[40]", "3", /^a frame count F, an integer in 0\.\.2 \(warp block of sample 0\)$/, "both"],
  ["frame of height 0", (j) => ((withWarp(j).params[22 + 18] = 1), (j.params[22 + 19 + 10] = 4)), "params[50]", "0", /^a frame height, an integer in \[1, \d+\] \(frame 0\)/, "both"],
  ["pre pass with preK 0", (j) => (withPrePass(j).preK = 0), "preK", "0", /^an integer >= 1$/, "both"],
  ["pre pass without preDims", (j) => delete withPrePass(j).preDims, "preDims", "undefined", /^an Int32Array$/, "both"],
  ["pre pass with a zero height", (j) => (withPrePass(j).preDims[2] = 0), "preDims[2..3]", "0x2", /^a height and width in \[1, \d+\] for sample 1$/, "both"],
  ["pre taps of the wrong length", (j) => (withPrePass(j).preTapIndex = new Int32Array(9)), "preTapIndex", "length 9", /^length sum over samples of \(preH\+preW\)\*preK = 10$/, "both"],
  ["pre weights of the wrong length", (j) => (withPrePass(j).preTapWeight = new Float32Array(11)), "preTapWeight", "length 11", /^the length of preTapIndex \(10\)$/, "both"],
  ["pre tap past the source's last column", (j) => (withPrePass(j).preTapIndex[8] = 4), "preTapIndex[8]", "4", /^-1 or a column of sample 1 in \[0, 3\] \(pre-pass column tap 0 of column 0\)$/, "both"],
  ["real window past the pre-pass image", (j) => (withPrePass(j).params[22 + 16] = 3), "params[38]", "3", /^a real-window x1 in \[0, 2\] \(inside the pre-pass image\)/, "both"],
  ["displacement grid of 1 point", (j) => (withWarp(j).params[22 + 41] = 1), "params[63]", "1", /^a displacement grid size G: 0 \(none\) or an integer in \[2, 64\]/, "both"],
  ["displacement grid past the block", (j) => (withWarp(j).params[64 + 22 + 41] = 3), "params[127]", "3", /^a grid of G x G \(dx, dy\) pairs that fits the parameter block of P = 64 floats after the warp block at 22 \(warp block of sample 1\)$/, "both"],
  // WARP and mix groups (PLAN_ABI.md, "Branches mixed per sample").
  ["WARP mode 4", (j) => ((j.program[1] = 12), (j.params[8] = 4)), "params[8]", "4", /^a WARP mode: 1 nearest, 2 bilinear or 3 bicubic \(op 1 WARP of sample 0\)$/, "both"],
  ["MIX_NEXT without a MIX_BEGIN", (j) => (j.program[1] = 14), "program[1]", "14", /^a MIX_NEXT inside a mix group \(after an enabled MIX_BEGIN\) \(op 1 MIX_NEXT of sample 0\)$/, "both"],
  ["nested MIX_BEGIN", (j) => ((j.program[0] = 13), (j.program[1] = 13)), "program[1]", "13", /^a MIX_BEGIN outside any mix group \(groups do not nest; the one at op 0 is open\) \(op 1 MIX_BEGIN of sample 0\)$/, "both"],
  ["MIX_BEGIN without a MIX_END", (j) => (j.program[0] = 13), "program", "none", /^a MIX_END for sample 0's MIX_BEGIN at op 0$/, "both"],
  ["MIX weight NaN", (j) => ((j.program[0] = 13), (j.program[2] = 15), (j.params[1] = NaN)), "params[1]", "NaN", /^a finite MIX_BEGIN weight \(op 0 MIX_BEGIN of sample 0\)$/, "both"],
  // Ops before the warp (PLAN_ABI.md, "Ops before the warp").
  ["warpOps past the program", (j) => (withWarp(j).warpOps = 4), "warpOps", "4", /^at most the program's length \(3 ops\)$/, "both"],
  [
    "ops before the warp that change the channels",
    (j) => {
      withWarp(j);
      j.program = Int32Array.from([1, 1]); // GRAY to 1 channel, then back to 3
      j.opOffsets = Int32Array.from([0, 7]);
      for (const b of [0, 64]) j.params.set([1, 1], b), j.params.set([1, 3], b + 7);
      j.warpOps = 1;
    },
    "warpOps", "1", /^ops before the warp that keep inC = 3 channels \(sample 0 has 1 after op 0\)$/, "both",
  ],
  ["numThreads of 0", (j) => (j.numThreads = 0), "numThreads", "0", /^an integer in \[1, 1048576\]$/, "cpu"],
  [
    "out sharing memory with params",
    (j) => {
      const shared = new ArrayBuffer(4 * 100);
      j.out = new Float32Array(shared, 0, 54);
      j.params = new Float32Array(shared, 4 * 50, 44);
    },
    "out", "a view that overlaps params", /^a buffer that shares no memory with the job's inputs$/, "cpu",
  ],
  [
    "out sharing memory with a source",
    (j) => {
      j.out = new Float32Array(54);
      j.sources[1] = new Uint8Array(j.out.buffer, 8, 48);
    },
    "out", "a view that overlaps sources[1]", /shares no memory/, "cpu",
  ],
];

/** Asserts that `e` is the refusal the case describes (field, received, expected, code, message). */
function assertRefusal(assert, e, [what, , field, received, expected]) {
  assert.equal(e.code, "ERR_BATCHLAB_PLAN", `${what}: code`);
  assert.equal(e.option ?? e.field, field, `${what}: field`);
  assert.equal(e.received, received, `${what}: received`);
  assert.match(e.expected, expected, `${what}: expected`);
  assert.equal(e.message, `plan job: ${field}: expected ${e.expected}, received ${received}`, `${what}: one message format`);
}

module.exports = { validJob, withWarp, withPrePass, BAD_JOBS, assertRefusal };
