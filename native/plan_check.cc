// The plan job check (see plan_check.h and native/PLAN_ABI.md).
#include "plan_check.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace batchlab {
namespace {

const char* const kOpNames[] = {"AFFINE", "GRAY", "JITTER", "ERASE", "INVERT", "SOLARIZE", "POSTERIZE", "AUTOCONTRAST", "EQUALIZE", "SHARPNESS", "PERMUTE", "NOISE", "WARP", "MIX_BEGIN", "MIX_NEXT", "MIX_END"};
const char* const kOpCodes = "an op code: 0 AFFINE, 1 GRAY, 2 JITTER, 3 ERASE, 4 INVERT, 5 SOLARIZE, 6 POSTERIZE, 7 AUTOCONTRAST, 8 EQUALIZE, 9 SHARPNESS, 10 PERMUTE, 11 NOISE, 12 WARP, 13 MIX_BEGIN, 14 MIX_NEXT or 15 MIX_END";

std::string str(size_t v) { return std::to_string(v); }
std::string str(int64_t v) { return std::to_string(v); }
std::string str(int32_t v) { return std::to_string(v); }

bool isNonNegativeInt(float v) { return v >= 0.0f && v <= 2147483647.0f && v == std::floor(v); }

Problem bad(std::string field, std::string expected, std::string received) {
  return Problem{std::move(field), std::move(expected), std::move(received)};
}

Problem inRange(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return {};
  return bad(field, v < lo ? "an integer >= " + str(lo) : "an integer <= " + str(hi), str(v));
}

}  // namespace

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char b[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(b, sizeof b, "%.0f", v);
  else std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

int opParamCount(int32_t code, int32_t C) {
  switch (code) {
    case kAffine: return 1 + 2 * C;
    case kGray: return 2;
    case kJitter: return 7;
    case kErase: return 5 + C;
    case kInvert: return 2;
    case kSolarize: return 3;
    case kPosterize: return 3;
    case kAutocontrast: return 2;
    case kEqualize: return 2;
    case kSharpness: return 3;
    case kPermute: return 1 + C;
    case kNoise: return 8;
    case kWarpOp: return 11 + C;
    case kMixBegin:
    case kMixNext:
    case kMixEnd: return 2;
    default: return -1;
  }
}

// The height and width of sample s's intermediate image (warpDims, preDims): in [1, maxSide],
// and at most 2^31 values with the job's channels.
Problem imageDims(const Job& job, const Limits& lim, const char* field, const char* what, int64_t h, int64_t w, size_t s) {
  const std::string f = std::string(field) + "[" + str(2 * s) + ".." + str(2 * s + 1) + "]";
  if (h < 1 || w < 1 || h > lim.maxSide || w > lim.maxSide) {
    return bad(f, "a height and width in [1, " + str(lim.maxSide) + "] for sample " + str(s), str(h) + "x" + str(w));
  }
  if ((uint64_t)h * (uint64_t)w * (uint64_t)job.inC > ((uint64_t)1 << 31)) {
    return bad(f, std::string(what) + " of at most 2^31 values (height*width*inC, sample " + str(s) + ")", str(h) + "x" + str(w));
  }
  return Problem{};
}

Problem checkScalars(const Job& job, const Limits& lim) {
  Problem p;
  if (!(p = inRange("n", job.n, 0, lim.maxSamples)).ok()) return p;
  if (!(p = inRange("inC", job.inC, 1, lim.maxChannels)).ok()) return p;
  if (!(p = inRange("outC", job.outC, 1, lim.maxChannels)).ok()) return p;
  if (!(p = inRange("outH", job.outH, 1, lim.maxSide)).ok()) return p;
  if (!(p = inRange("outW", job.outW, 1, lim.maxSide)).ok()) return p;
  return inRange("K", job.K, 1, lim.maxTaps);
}

// The warp block of sample s (a copy in `block`): the block fits P, `enabled` is 0 or 1 (0: the
// warped image is the source, so warpDims must equal srcDims), the real window lies inside the
// source, no displacement grid.
Problem checkWarpBlock(const Job& job, int32_t s, const float* block) {
  const size_t P = job.P;
  if (job.warpOffset + (size_t)kWarpBlock > P) {
    return bad("warpOffset", "an offset where the warp block (" + str((int32_t)kWarpBlock) + " floats) fits the parameter block of P = params.length / n = " + str(P) + " floats", str(job.warpOffset));
  }
  const float* b = block + job.warpOffset;
  const size_t at = (size_t)s * P + job.warpOffset;
  const int64_t sh = job.readH(s), sw = job.readW(s);
  const int64_t wh = job.warpDims[2 * (size_t)s], ww = job.warpDims[2 * (size_t)s + 1];
  const std::string of = " (warp block of sample " + str(s) + ")";
  const std::string reads = job.preK ? "pre-pass image" : "source";
  if (b[0] != 0.0f && b[0] != 1.0f) return bad("params[" + str(at) + "]", "a warp enabled flag, 0 or 1" + of, num(b[0]));
  if (b[0] == 0.0f) {
    if (wh != sh || ww != sw) {
      return bad("warpDims[" + str(2 * (size_t)s) + ".." + str(2 * (size_t)s + 1) + "]", "the " + reads + "'s size " + str(sh) + "x" + str(sw) + " for sample " + str(s) + ", whose warp is off (params[" + str(at) + "] = 0)", str(wh) + "x" + str(ww));
    }
    return {};
  }
  static const char* const names[] = {"x0", "y0", "x1", "y1"};
  for (int i = 0; i < 4; ++i) {
    const float v = b[14 + i];
    const double hi = (double)(i % 2 == 0 ? sw : sh);
    if (!(v >= 0.0f && (double)v <= hi)) {
      return bad("params[" + str(at + 14 + (size_t)i) + "]", std::string("a real-window ") + names[i] + " in [0, " + num(hi) + "] (inside the " + reads + ")" + of, num(v));
    }
  }
  const float F = b[18];
  if (!(F >= 0.0f && F <= (float)kWarpFrames) || F != std::floor(F)) {
    return bad("params[" + str(at + 18) + "]", "a frame count F, an integer in 0.." + str(kWarpFrames) + of, num(F));
  }
  for (int32_t f = 0; f < (int32_t)F; ++f) {
    for (int i = 0; i < 2; ++i) {
      const size_t k = 19 + 11 * (size_t)f + 9 + (size_t)i;
      const float v = b[k];
      if (!(v >= 1.0f && v <= (float)kMaxSide) || v != std::floor(v)) {
        return bad("params[" + str(at + k) + "]", std::string("a frame ") + (i == 0 ? "height" : "width") + ", an integer in [1, " + str(kMaxSide) + "] (frame " + str(f) + ")" + of, num(v));
      }
    }
  }
  const float G = b[kWarpBlock - 1];
  const size_t gAt = at + (size_t)kWarpBlock - 1;
  if (!(G == 0.0f || (G >= 2.0f && G <= (float)kWarpMaxGrid)) || G != std::floor(G)) {
    return bad("params[" + str(gAt) + "]", "a displacement grid size G: 0 (none) or an integer in [2, " + str(kWarpMaxGrid) + "]" + of, num(G));
  }
  const size_t gridFloats = 2 * (size_t)G * (size_t)G;
  if (job.warpOffset + (size_t)kWarpBlock + gridFloats > P) {
    return bad("params[" + str(gAt) + "]", "a grid of G x G (dx, dy) pairs that fits the parameter block of P = " + str(P) + " floats after the warp block at " + str(job.warpOffset) + of, num(G));
  }
  return {};
}

Problem checkPreTaps(const Job& job, int32_t s, const int32_t* taps) {
  const int64_t h = job.dims[2 * (size_t)s], w = job.dims[2 * (size_t)s + 1];
  const size_t K = (size_t)job.preK;
  const size_t rowTaps = (size_t)job.preDims[2 * (size_t)s] * K, colTaps = (size_t)job.preDims[2 * (size_t)s + 1] * K;
  const size_t base = job.preTapAt[(size_t)s];
  for (size_t k = 0; k < rowTaps + colTaps; ++k) {
    const int32_t t = taps[k];
    const bool row = k < rowTaps;
    const int64_t n = row ? h : w;
    if (t < -1 || t >= n) {
      const size_t at = row ? k : k - rowTaps;
      return bad("preTapIndex[" + str(base + k) + "]", std::string("-1 or a ") + (row ? "row" : "column") + " of sample " + str(s) + " in [0, " + str(n - 1) + "] (pre-pass " + (row ? "row" : "column") + " tap " + str(at % K) + " of " + (row ? "row " : "column ") + str(at / K) + ")", str(t));
    }
  }
  return {};
}

Problem checkSample(const Job& job, int32_t s, const int32_t* taps, const float* block) {
  if (job.warp != kWarpNone) {
    const Problem p = checkWarpBlock(job, s, block);
    if (!p.ok()) return p;
  }
  // The taps read the warped image when there is a warp pass, else the source.
  const std::vector<int32_t>& read = job.warp != kWarpNone ? job.warpDims : job.dims;
  const std::string image = job.warp != kWarpNone ? "warped image" : "sample";
  const int64_t h = read[2 * (size_t)s], w = read[2 * (size_t)s + 1];
  const size_t K = (size_t)job.K;
  const size_t rowTaps = (size_t)job.outH * K, colTaps = (size_t)job.outW * K;
  const size_t base = (size_t)s * job.tapsPerSample();
  for (size_t k = 0; k < rowTaps; ++k) {
    const int32_t t = taps[k];
    if (t < -1 || t >= h) {
      return bad("tapIndex[" + str(base + k) + "]", "-1 or a row of " + image + " " + str(s) + " in [0, " + str(h - 1) + "] (row tap " + str(k % K) + " of output row " + str(k / K) + ")", str(t));
    }
  }
  for (size_t k = 0; k < colTaps; ++k) {
    const int32_t t = taps[rowTaps + k];
    if (t < -1 || t >= w) {
      return bad("tapIndex[" + str(base + rowTaps + k) + "]", "-1 or a column of " + image + " " + str(s) + " in [0, " + str(w - 1) + "] (column tap " + str(k % K) + " of output column " + str(k / K) + ")", str(t));
    }
  }
  int32_t C = job.inC;
  const size_t P = job.P;
  const size_t blockAt = (size_t)s * P;
  int64_t mixAt = -1;  // the open mix group's MIX_BEGIN (-1: none)
  int32_t mixC = 0;    // its channel count
  for (size_t k = 0; k < job.program.size(); ++k) {
    // The ops before the warp keep the channel count: the warp reads inC channels.
    if ((int32_t)k == job.warpOps && job.warpOps > 0 && C != job.inC) {
      return bad("warpOps", "ops before the warp that keep inC = " + str(job.inC) + " channels (sample " + str(s) + " has " + str(C) + " after op " + str(job.warpOps - 1) + ")", str(job.warpOps));
    }
    if ((int32_t)k == job.warpOps && job.warpOps > 0 && mixAt >= 0) {
      return bad("warpOps", "a boundary outside every mix group (sample " + str(s) + "'s MIX_BEGIN at op " + str(mixAt) + " is still open)", str(job.warpOps));
    }
    const int32_t code = job.program[k];
    const int cnt = opParamCount(code, C);
    if (cnt < 0) return bad("program[" + str(k) + "]", kOpCodes, str(code));
    const int64_t off = job.opOffsets[k];
    if (off < 0 || (size_t)off + (size_t)cnt > P) {
      return bad("opOffsets[" + str(k) + "]", "an offset where op " + str(k) + " (" + kOpNames[code] + ", " + str((int32_t)cnt) + " floats at " + str(C) + " channels) fits the parameter block of P = params.length / n = " + str(P) + " floats", str(off));
    }
    const float* p = block + off;
    if (p[0] == 0.0f) continue;  // disabled for this sample
    const size_t at = blockAt + (size_t)off;
    const std::string of = " (op " + str(k) + " " + kOpNames[code] + " of sample " + str(s) + ")";
    if (code == kWarpOp) {
      if (p[1] != 1.0f && p[1] != 2.0f && p[1] != 3.0f) return bad("params[" + str(at + 1) + "]", "a WARP mode: 1 nearest, 2 bilinear or 3 bicubic" + of, num(p[1]));
    } else if (code == kMixBegin || code == kMixNext || code == kMixEnd) {
      if (!std::isfinite(p[1])) return bad("params[" + str(at + 1) + "]", std::string("a finite ") + kOpNames[code] + " weight" + of, num(p[1]));
      if (code == kMixBegin && mixAt >= 0) return bad("program[" + str(k) + "]", "a MIX_BEGIN outside any mix group (groups do not nest; the one at op " + str(mixAt) + " is open)" + of, str(code));
      if (code != kMixBegin && mixAt < 0) return bad("program[" + str(k) + "]", std::string("a ") + kOpNames[code] + " inside a mix group (after an enabled MIX_BEGIN)" + of, str(code));
      if (code != kMixBegin && C != mixC) return bad("program[" + str(k) + "]", "a branch that keeps the " + str(mixC) + " channels of its MIX_BEGIN" + of, str(C) + " channels");
      if (code == kMixBegin) mixAt = (int64_t)k, mixC = C;
      if (code == kMixEnd) mixAt = -1;
    } else if (code == kGray) {
      if (C != 1 && C != 3) return bad("program[" + str(k) + "]", "GRAY at 1 or 3 channels" + of, str(C) + " channels");
      if (p[1] != 1.0f && p[1] != 3.0f) return bad("params[" + str(at + 1) + "]", "GRAY outChannels 1 or 3" + of, num(p[1]));
      C = (int32_t)p[1];
    } else if (code == kJitter) {
      if (!(p[2] >= 0.0f && p[2] <= 23.0f) || p[2] != std::floor(p[2])) {
        return bad("params[" + str(at + 2) + "]", "a JITTER order, an integer in 0..23" + of, num(p[2]));
      }
      if ((!std::isnan(p[4]) || !std::isnan(p[5]) || !std::isnan(p[6])) && C != 1 && C != 3) {
        return bad("program[" + str(k) + "]", "JITTER contrast, saturation and hue at 1 or 3 channels" + of, str(C) + " channels");
      }
    } else if (code == kInvert || code == kSolarize || code == kPosterize || code == kAutocontrast || code == kEqualize || code == kSharpness) {
      if (p[1] != 1.0f && p[1] != 255.0f) return bad("params[" + str(at + 1) + "]", std::string("a ") + kOpNames[code] + " bound, 1 or 255" + of, num(p[1]));
      if (code == kPosterize && !(p[2] >= 0.0f && p[2] <= 8.0f && p[2] == std::floor(p[2]))) {
        return bad("params[" + str(at + 2) + "]", "POSTERIZE bits, an integer in 0..8" + of, num(p[2]));
      }
    } else if (code == kNoise) {
      if (p[1] != 1.0f && p[1] != 255.0f) return bad("params[" + str(at + 1) + "]", "a NOISE bound, 1 or 255" + of, num(p[1]));
      if (!std::isfinite(p[2])) return bad("params[" + str(at + 2) + "]", "a finite NOISE mean" + of, num(p[2]));
      if (!(std::isfinite(p[3]) && p[3] >= 0.0f)) return bad("params[" + str(at + 3) + "]", "a NOISE sigma, finite and >= 0" + of, num(p[3]));
      if (p[4] != 0.0f && p[4] != 1.0f) return bad("params[" + str(at + 4) + "]", "NOISE clip, 0 or 1" + of, num(p[4]));
      for (int i = 5; i < 8; ++i) {
        if (!(p[i] >= 0.0f && p[i] <= 65535.0f && p[i] == std::floor(p[i]))) {
          return bad("params[" + str(at + i) + "]", "a NOISE key word, an integer in 0..65535" + of, num(p[i]));
        }
      }
    } else if (code == kPermute) {
      bool seen[kMaxChannels] = {};
      for (int32_t c = 0; c < C; ++c) {
        const float q = p[1 + c];
        if (!(q >= 0.0f && q < (float)C && q == std::floor(q)) || seen[(int)q]) {
          return bad("params[" + str(at + 1 + c) + "]", "a PERMUTE entry: a channel in 0.." + str(C - 1) + ", each once" + of, num(q));
        }
        seen[(int)q] = true;
      }
    } else if (code == kErase) {
      static const char* const names[] = {"y0", "x0", "h", "w"};
      for (int i = 0; i < 4; ++i) {
        if (!isNonNegativeInt(p[1 + i])) return bad("params[" + str(at + 1 + i) + "]", std::string("an ERASE ") + names[i] + ", a non-negative integer" + of, num(p[1 + i]));
      }
    }
  }
  if (mixAt >= 0) return bad("program", "a MIX_END for sample " + str(s) + "'s MIX_BEGIN at op " + str(mixAt), "none");
  if (job.warpOps > 0 && (size_t)job.warpOps == job.program.size() && C != job.inC) {
    return bad("warpOps", "ops before the warp that keep inC = " + str(job.inC) + " channels (sample " + str(s) + " has " + str(C) + ")", str(job.warpOps));
  }
  if (C != job.outC) return bad("outC", "the channels the program ends with for sample " + str(s) + " (" + str(C) + ")", str(job.outC));
  return {};
}

Problem checkJob(const Job& job, const Lengths& len, const Limits& lim) {
  Problem p = checkScalars(job, lim);
  if (!p.ok()) return p;
  const size_t n = (size_t)job.n;
  if (job.src.size() != n) return bad("sources", "n = " + str(n) + " sources (one per sample)", str(job.src.size()));
  if (len.srcDims != 2 * n) return bad("srcDims", "an Int32Array of length 2n = " + str(2 * n), "length " + str(len.srcDims));
  for (size_t s = 0; s < n; ++s) {
    const int64_t h = job.dims[2 * s], w = job.dims[2 * s + 1];
    if (h < 1 || w < 1) return bad("srcDims[" + str(2 * s) + ".." + str(2 * s + 1) + "]", "a height and width >= 1 for sample " + str(s), str(h) + "x" + str(w));
    if ((int64_t)w * job.inC > std::numeric_limits<int32_t>::max()) {
      return bad("srcDims[" + str(2 * s + 1) + "]", "rows of at most 2^31-1 bytes (width*inC, sample " + str(s) + ")", str(w) + "*" + str(job.inC));
    }
    const size_t need = (size_t)h * (size_t)w * (size_t)job.inC;
    if (job.srcBytes[s] < need) {
      const std::string what = job.srcOffsets.empty() ? "sources[" + str(s) + "]" : "srcOffsets[" + str(s) + "]";
      const std::string got = job.srcOffsets.empty() ? str(job.srcBytes[s]) + " bytes" : num(job.srcOffsets[s]) + ", which leaves " + str(job.srcBytes[s]) + " bytes of sources";
      return bad(what, "at least height*width*inC = " + str(h) + "*" + str(w) + "*" + str(job.inC) + " = " + str(need) + " bytes", got);
    }
  }
  if (job.warp != kWarpNone) {
    if (len.warpDims != 2 * n) return bad("warpDims", "an Int32Array of length 2n = " + str(2 * n) + " (the job has a warp pass)", "length " + str(len.warpDims));
    for (size_t s = 0; s < n; ++s) {
      const Problem p = imageDims(job, lim, "warpDims", "a warped image", job.warpDims[2 * s], job.warpDims[2 * s + 1], s);
      if (!p.ok()) return p;
    }
  }
  if (job.preK) {
    if (len.preDims != 2 * n) return bad("preDims", "an Int32Array of length 2n = " + str(2 * n) + " (the job has a pass before its warp)", "length " + str(len.preDims));
    size_t total = 0;
    for (size_t s = 0; s < n; ++s) {
      const int64_t h = job.preDims[2 * s], w = job.preDims[2 * s + 1];
      const Problem p = imageDims(job, lim, "preDims", "a pre-pass image", h, w, s);
      if (!p.ok()) return p;
      total += (size_t)(h + w) * (size_t)job.preK;
    }
    if (len.preTapIndex != total) return bad("preTapIndex", "length sum over samples of (preH+preW)*preK = " + str(total), "length " + str(len.preTapIndex));
    if (len.preTapWeight != total) return bad("preTapWeight", "the length of preTapIndex (" + str(total) + ")", "length " + str(len.preTapWeight));
    for (size_t s = 0; s < n; ++s) {
      p = checkPreTaps(job, (int32_t)s, job.preTapIndex + job.preTapAt[s]);
      if (!p.ok()) return p;
    }
  }
  const size_t taps = n * job.tapsPerSample();
  if (len.tapIndex != taps) return bad("tapIndex", "length n*(outH+outW)*K = " + str(taps), "length " + str(len.tapIndex));
  if (len.tapWeight != len.tapIndex) return bad("tapWeight", "the length of tapIndex (" + str(len.tapIndex) + ")", "length " + str(len.tapWeight));
  if (len.fill < (size_t)job.inC) return bad("fill", "at least inC = " + str(job.inC) + " values", "length " + str(len.fill));
  const size_t outNeed = n * job.outPerSample();
  if (len.out < outNeed) return bad("out", "at least n*outC*outH*outW = " + str(outNeed) + " floats", "length " + str(len.out));
  if (n == 0 ? len.params != 0 : len.params % n != 0) return bad("params", "a length that is a multiple of n = " + str(n) + " (one block of P floats per sample)", "length " + str(len.params));
  if (n > 0 && len.params / n > (size_t)std::numeric_limits<int32_t>::max()) return bad("params", "blocks of at most 2^31-1 floats", str(len.params / n));
  if (len.program > (size_t)lim.maxOps) return bad("program", "at most " + str(lim.maxOps) + " ops (this engine's limit)", "length " + str(len.program));
  if ((size_t)job.warpOps > len.program) return bad("warpOps", "at most the program's length (" + str(len.program) + " ops)", str(job.warpOps));
  // An engine's limits on whole-image ops hold per stage: the ops before the warp (warpOps)
  // and the ops after the geometry pass run as programs of their own.
  for (int stage = 0; stage < 2; ++stage) {
    const size_t from = stage == 0 ? 0 : (size_t)job.warpOps, to = stage == 0 ? (size_t)job.warpOps : len.program;
    const std::string which = job.warpOps == 0 ? ""
                              : stage == 0 ? " among the ops before the warp (ops 0.." + str(job.warpOps - 1) + ", warpOps = " + str(job.warpOps) + ")"
                                           : " among the ops after the warp (ops " + str(job.warpOps) + "..)";
    int32_t whole = 0;
    for (size_t k = from; k < to; ++k) whole += job.program[k] == kAutocontrast || job.program[k] == kEqualize;
    if (whole > lim.maxWholeImageOps) return bad("program", "at most " + str(lim.maxWholeImageOps) + " AUTOCONTRAST and EQUALIZE ops" + which + " (this engine's limit)", str(whole));
    int32_t sharp = 0;
    for (size_t k = from; k < to; ++k) {
      const int32_t code = job.program[k];
      if (sharp > 0 && !lim.reductionsAfterSharpness && (code == kJitter || code == kAutocontrast || code == kEqualize)) {
        return bad("program[" + str(k) + "]", "no JITTER, AUTOCONTRAST or EQUALIZE after a SHARPNESS op" + which + " (this engine's limit)", str(code));
      }
      sharp += code == kSharpness;
    }
    if (sharp > lim.maxSharpnessOps) return bad("program", "at most " + str(lim.maxSharpnessOps) + " SHARPNESS op" + which + " (this engine's limit)", str(sharp));
  }
  if (len.opOffsets != len.program) return bad("opOffsets", "one offset per op (" + str(len.program) + ")", "length " + str(len.opOffsets));
  for (size_t k = 0; k < job.program.size(); ++k) {
    if (opParamCount(job.program[k], 1) < 0) return bad("program[" + str(k) + "]", kOpCodes, str(job.program[k]));
    if (job.opOffsets[k] < 0) return bad("opOffsets[" + str(k) + "]", "an offset >= 0", str(job.opOffsets[k]));
  }
  const size_t per = job.tapsPerSample();
  for (size_t s = 0; s < n; ++s) {
    p = checkSample(job, (int32_t)s, job.tapIndex + s * per, job.params + s * job.P);
    if (!p.ok()) return p;
  }
  return {};
}

}  // namespace batchlab
