#include "plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace batchlab {
namespace {

constexpr float kR = 0.299f, kG = 0.587f, kB = 0.114f;

inline float gray3(float r, float g, float b) {
  float t = kR * r;
  t = t + kG * g;  // each operation rounds to float: no contraction (-ffp-contract=off)
  return t + kB * b;
}

inline float clampTo(float x, float bound) { return x < 0.0f ? 0.0f : (x > bound ? bound : x); }

int opParamCount(int32_t code, int32_t C) {
  switch (code) {
    case kAffine: return 1 + 2 * C;
    case kGray: return 2;
    case kJitter: return 6;
    case kErase: return 5 + C;
    default: return -1;
  }
}

std::string num(double v) {
  char b[64];
  snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

std::string validate(const PlanView& p, size_t tapLength, size_t fillLength, size_t paramsLength, size_t outLength) {
  if (p.n < 0) return "n: expected >= 0, received " + std::to_string(p.n);
  if (p.inC < 1 || p.inC > 64) return "inC: expected 1..64, received " + std::to_string(p.inC);
  if (p.outC < 1 || p.outC > 64) return "outC: expected 1..64, received " + std::to_string(p.outC);
  if (p.outH < 1 || p.outW < 1) return "outH/outW: expected >= 1, received " + std::to_string(p.outH) + "x" + std::to_string(p.outW);
  if (p.K < 1 || p.K > 64) return "K: expected 1..64, received " + std::to_string(p.K);
  if ((int64_t)p.sources.size() != p.n) return "sources: expected " + std::to_string(p.n) + " Uint8Arrays, received " + std::to_string(p.sources.size());
  const size_t perSample = (size_t)(p.outH + p.outW) * p.K;
  if (tapLength != perSample * p.n) return "tapIndex/tapWeight: expected length n*(outH+outW)*K = " + std::to_string(perSample * p.n) + ", received " + std::to_string(tapLength);
  if (fillLength < (size_t)p.inC) return "fill: expected at least inC = " + std::to_string(p.inC) + " values, received " + std::to_string(fillLength);
  const size_t outPer = (size_t)p.outC * p.outH * p.outW;
  if (outLength < outPer * p.n) return "out: expected at least n*outC*outH*outW = " + std::to_string(outPer * p.n) + " floats, received " + std::to_string(outLength);
  if (p.n > 0 && paramsLength % p.n != 0) return "params: length " + std::to_string(paramsLength) + " is not a multiple of n = " + std::to_string(p.n);
  if (p.opOffsets.size() != p.program.size()) return "opOffsets: expected one offset per op (" + std::to_string(p.program.size()) + "), received " + std::to_string(p.opOffsets.size());
  for (int32_t s = 0; s < p.n; s++) {
    const int64_t h = p.srcDims[2 * s], w = p.srcDims[2 * s + 1];
    if (h < 1 || w < 1) return "srcDims: sample " + std::to_string(s) + " has " + std::to_string(h) + "x" + std::to_string(w) + ", expected positive sizes";
    if (p.sourceBytes[s] < (size_t)(h * w * p.inC)) {
      return "sources[" + std::to_string(s) + "]: " + std::to_string(p.sourceBytes[s]) + " bytes, expected at least height*width*inC = " + std::to_string(h * w * p.inC);
    }
    const int32_t* ty = p.tapIndex + perSample * s;
    const int32_t* tx = ty + (size_t)p.outH * p.K;
    for (size_t k = 0; k < (size_t)p.outH * p.K; k++)
      if (ty[k] < -1 || ty[k] >= h) return "tapIndex: sample " + std::to_string(s) + " row tap " + std::to_string(k) + " is " + std::to_string(ty[k]) + ", expected -1 or a row in [0, " + std::to_string(h - 1) + "]";
    for (size_t k = 0; k < (size_t)p.outW * p.K; k++)
      if (tx[k] < -1 || tx[k] >= w) return "tapIndex: sample " + std::to_string(s) + " column tap " + std::to_string(k) + " is " + std::to_string(tx[k]) + ", expected -1 or a column in [0, " + std::to_string(w - 1) + "]";
  }
  // Channel counts along the program, the same for every sample.
  int32_t C = p.inC;
  const size_t P = p.paramsPerSample;
  for (size_t k = 0; k < p.program.size(); k++) {
    const int32_t code = p.program[k];
    const int cnt = opParamCount(code, C);
    if (cnt < 0) return "program[" + std::to_string(k) + "]: unknown op code " + std::to_string(code) + " (expected 0..3)";
    const int32_t off = p.opOffsets[k];
    if (off < 0 || (size_t)off + cnt > P) return "opOffsets[" + std::to_string(k) + "]: " + std::to_string(off) + " with " + std::to_string(cnt) + " parameters does not fit a parameter block of " + std::to_string(P);
    if ((code == kGray) && C != 1 && C != 3) return "program[" + std::to_string(k) + "]: GRAY needs 1 or 3 channels, the image has " + std::to_string(C);
    int32_t next = C;
    for (int32_t s = 0; s < p.n; s++) {
      const float* q = p.params + P * s + off;
      if (code == kGray) {
        const float oc = q[1];
        if (oc != 1.0f && oc != 3.0f) return "params: GRAY outChannels of sample " + std::to_string(s) + " is " + num(oc) + ", expected 1 or 3";
        const int32_t after = q[0] != 0.0f ? (int32_t)oc : C;
        if (s == 0) next = (int32_t)oc;
        if (after != next) return "params: GRAY of sample " + std::to_string(s) + " would leave " + std::to_string(after) + " channels, other samples " + std::to_string(next) + " (a disabled GRAY must keep the channel count)";
      } else if (code == kJitter) {
        const int order = (int)q[2];
        if (!(q[2] >= 0 && q[2] <= 5) || (float)order != q[2]) return "params: JITTER order of sample " + std::to_string(s) + " is " + num(q[2]) + ", expected 0..5";
        if ((!std::isnan(q[4]) || !std::isnan(q[5])) && C != 1 && C != 3) return "program[" + std::to_string(k) + "]: contrast and saturation need 1 or 3 channels, the image has " + std::to_string(C);
      } else if (code == kErase && q[0] != 0.0f) {
        const float y0 = q[1], x0 = q[2], eh = q[3], ew = q[4];
        // The box may reach past the image (only the pixels inside change), but it is made of
        // non-negative integers no larger than the output.
        const bool ok = y0 >= 0 && x0 >= 0 && eh >= 0 && ew >= 0 && y0 <= p.outH && x0 <= p.outW && eh <= p.outH && ew <= p.outW &&
                        y0 == std::floor(y0) && x0 == std::floor(x0) && eh == std::floor(eh) && ew == std::floor(ew);
        if (!ok) {
          return "params: ERASE box of sample " + std::to_string(s) + " (y0 " + num(y0) + ", x0 " + num(x0) + ", h " + num(eh) + ", w " + num(ew) + ") is not made of integers within the " + std::to_string(p.outH) + "x" + std::to_string(p.outW) + " output";
        }
      }
    }
    C = next;
  }
  if (C != p.outC) return "outC: the program ends with " + std::to_string(C) + " channels, outC is " + std::to_string(p.outC);
  return "";
}

namespace {

// v holds C planes of H*W floats (CHW).
void affine(float* v, int32_t C, size_t plane, const float* q) {
  for (int32_t c = 0; c < C; c++) {
    const float sub = q[1 + c], div = q[1 + C + c];
    float* x = v + c * plane;
    for (size_t i = 0; i < plane; i++) x[i] = (x[i] - sub) / div;
  }
}

inline float grayAt(const float* v, int32_t C, size_t plane, size_t i) {
  return C == 1 ? v[i] : gray3(v[i], v[plane + i], v[2 * plane + i]);
}

void toGray(float* v, int32_t C, size_t plane, int32_t outC) {
  for (size_t i = 0; i < plane; i++) {
    const float g = grayAt(v, C, plane, i);
    for (int32_t c = 0; c < outC; c++) v[c * plane + i] = g;
  }
}

void brightness(float* v, int32_t C, size_t plane, float f, float bound) {
  for (size_t i = 0; i < C * plane; i++) v[i] = clampTo(f * v[i], bound);
}

void contrast(float* v, int32_t C, size_t plane, float f, float bound) {
  double sum = 0;  // double accumulation, row-major: part of the ABI
  for (size_t i = 0; i < plane; i++) sum += grayAt(v, C, plane, i);
  const float mean = (float)(sum / (double)plane);
  const float rest = (1.0f - f) * mean;
  for (size_t i = 0; i < C * plane; i++) v[i] = clampTo(f * v[i] + rest, bound);
}

void saturation(float* v, int32_t C, size_t plane, float f, float bound) {
  const float rest = 1.0f - f;
  for (size_t i = 0; i < plane; i++) {
    const float g = grayAt(v, C, plane, i);
    const float rg = rest * g;
    for (int32_t c = 0; c < C; c++) v[c * plane + i] = clampTo(f * v[c * plane + i] + rg, bound);
  }
}

constexpr int kOrders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

void jitter(float* v, int32_t C, size_t plane, const float* q) {
  const float bound = q[1];
  const int order = (int)q[2];
  for (int k = 0; k < 3; k++) {
    const int which = kOrders[order][k];
    const float f = q[3 + which];
    if (std::isnan(f)) continue;
    if (which == 0) brightness(v, C, plane, f, bound);
    else if (which == 1) contrast(v, C, plane, f, bound);
    else saturation(v, C, plane, f, bound);
  }
}

void erase(float* v, int32_t C, int32_t H, int32_t W, size_t plane, const float* q) {
  const int32_t y0 = (int32_t)q[1], x0 = (int32_t)q[2];
  const int32_t y1 = std::min(H, y0 + (int32_t)q[3]), x1 = std::min(W, x0 + (int32_t)q[4]);
  for (int32_t c = 0; c < C; c++)
    for (int32_t y = y0; y < y1; y++) {
      float* row = v + c * plane + (size_t)y * W;
      for (int32_t x = x0; x < x1; x++) row[x] = q[5 + c];
    }
}

// The geometry pass, general form (PLAN_ABI.md): acc = sum_i wy_i * (sum_j wx_j * S).
void geometryGeneral(const PlanView& p, int32_t s, float* v) {
  const int32_t H = p.outH, W = p.outW, K = p.K, C = p.inC;
  const int32_t srcW = p.srcDims[2 * s + 1];
  const uint8_t* src = p.sources[s];
  const size_t per = (size_t)(H + W) * K;
  const int32_t* ty = p.tapIndex + per * s;
  const float* wy = p.tapWeight + per * s;
  const int32_t* tx = ty + (size_t)H * K;
  const float* wx = wy + (size_t)H * K;
  const size_t plane = (size_t)H * W;
  for (int32_t c = 0; c < C; c++) {
    const float fillc = p.fill[c];
    for (int32_t y = 0; y < H; y++) {
      float* o = v + c * plane + (size_t)y * W;
      for (int32_t x = 0; x < W; x++) {
        float acc = 0.0f;
        for (int32_t i = 0; i < K; i++) {
          const int32_t r = ty[y * K + i];
          float row = 0.0f;
          for (int32_t j = 0; j < K; j++) {
            const int32_t q = tx[x * K + j];
            const float val = (r < 0 || q < 0) ? fillc : (float)src[((size_t)r * srcW + q) * C + c];
            row = row + wx[x * K + j] * val;
          }
          acc = acc + wy[y * K + i] * row;
        }
        o[x] = acc;
      }
    }
  }
}

// K == 1 with unit weights: a plain gather (the value is exactly the source byte or the fill).
void geometryGather(const PlanView& p, int32_t s, float* v) {
  const int32_t H = p.outH, W = p.outW, C = p.inC;
  const int32_t srcW = p.srcDims[2 * s + 1];
  const uint8_t* src = p.sources[s];
  const size_t per = (size_t)(H + W);
  const int32_t* ty = p.tapIndex + per * s;
  const int32_t* tx = ty + H;
  const size_t plane = (size_t)H * W;
  for (int32_t y = 0; y < H; y++) {
    const int32_t r = ty[y];
    const uint8_t* srow = r < 0 ? nullptr : src + (size_t)r * srcW * C;
    for (int32_t c = 0; c < C; c++) {
      float* o = v + c * plane + (size_t)y * W;
      const float fillc = p.fill[c];
      if (!srow) {
        for (int32_t x = 0; x < W; x++) o[x] = fillc;
        continue;
      }
      const uint8_t* sc = srow + c;
      for (int32_t x = 0; x < W; x++) {
        const int32_t q = tx[x];
        o[x] = q < 0 ? fillc : (float)sc[(size_t)q * C];
      }
    }
  }
}

// The common case in one pass. With K == 1 and unit weights every output value is an affine
// chain applied to a source byte or to the fill value, so the chain is evaluated once per
// (channel, byte value) into a table (the same float32 operations, so the same bits) and the
// pass itself is a pure gather through it.
void gatherAffine(const PlanView& p, int32_t s, float* v, Scratch& sc) {
  const int32_t H = p.outH, W = p.outW, C = p.inC;
  const float* q = p.params + p.paramsPerSample * s;
  if (sc.lut.size() != (size_t)C * 257 || sc.lutParams.size() != p.paramsPerSample || std::memcmp(sc.lutParams.data(), q, sizeof(float) * p.paramsPerSample) != 0) {
    sc.lutParams.assign(q, q + p.paramsPerSample);
    sc.lut.resize((size_t)C * 257);
    for (int32_t c = 0; c < C; c++) {
      float* t = sc.lut.data() + (size_t)c * 257;
      for (int b = 0; b < 257; b++) {
        float val = b < 256 ? (float)b : p.fill[c];
        for (size_t k = 0; k < p.program.size(); k++) {
          const float* o = q + p.opOffsets[k];
          if (o[0] != 0.0f) val = (val - o[1 + c]) / o[1 + C + c];
        }
        t[b] = val;
      }
    }
  }
  const int32_t srcW = p.srcDims[2 * s + 1];
  const uint8_t* src = p.sources[s];
  const int32_t* ty = p.tapIndex + (size_t)(H + W) * s;
  const int32_t* tx = ty + H;
  const size_t plane = (size_t)H * W;
  for (int32_t c = 0; c < C; c++) {
    const float* t = sc.lut.data() + (size_t)c * 257;
    for (int32_t y = 0; y < H; y++) {
      const int32_t r = ty[y];
      float* o = v + c * plane + (size_t)y * W;
      if (r < 0) {
        for (int32_t x = 0; x < W; x++) o[x] = t[256];
        continue;
      }
      const uint8_t* row = src + (size_t)r * srcW * C + c;
      for (int32_t x = 0; x < W; x++) {
        const int32_t qx = tx[x];
        o[x] = qx < 0 ? t[256] : t[row[(size_t)qx * C]];
      }
    }
  }
}

}  // namespace

void runSample(const PlanView& p, int32_t s, Scratch& scratch) {
  const size_t plane = (size_t)p.outH * p.outW;
  float* slot = p.out + (size_t)s * p.outC * plane;
  if (p.unitTaps && p.affineOnly) {
    gatherAffine(p, s, slot, scratch);
    return;
  }
  float* v = slot;
  if (p.maxChannels > p.outC) {
    scratch.buffer.resize((size_t)p.maxChannels * plane);
    v = scratch.buffer.data();
  }
  if (p.unitTaps) geometryGather(p, s, v);
  else geometryGeneral(p, s, v);
  int32_t C = p.inC;
  const float* q = p.params + p.paramsPerSample * s;
  for (size_t k = 0; k < p.program.size(); k++) {
    const float* b = q + p.opOffsets[k];
    const int32_t code = p.program[k];
    if (b[0] == 0.0f) continue;
    switch (code) {
      case kAffine: affine(v, C, plane, b); break;
      case kGray: {
        const int32_t oc = (int32_t)b[1];
        toGray(v, C, plane, oc);
        C = oc;
        break;
      }
      case kJitter: jitter(v, C, plane, b); break;
      case kErase: erase(v, C, p.outH, p.outW, plane, b); break;
    }
  }
  if (v != slot) std::memcpy(slot, v, sizeof(float) * p.outC * plane);
}

}  // namespace batchlab
