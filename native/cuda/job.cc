// Reading, checking and packing a plan job; the CPU emulation of the CUDA kernel.
#include "job.h"

#include <cmath>
#include <cstring>
#include <string>

namespace blcuda {
namespace {

const char* const kOpNames[] = {"AFFINE", "GRAY", "JITTER", "ERASE"};

std::string num(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  if (d == std::floor(d) && std::fabs(d) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", d);
  else std::snprintf(buf, sizeof buf, "%.9g", d);
  return buf;
}

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return num(v.As<Napi::Number>().DoubleValue());
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsTypedArray()) {
    static const char* const names[] = {"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
                                        "Uint16Array", "Int32Array", "Uint32Array", "Float32Array",
                                        "Float64Array", "BigInt64Array", "BigUint64Array"};
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    const int ty = (int)t.TypedArrayType();
    const char* name = ty >= 0 && ty < 11 ? names[ty] : "typed array";
    return std::string(name) + " of length " + std::to_string(t.ElementLength());
  }
  if (v.IsArray()) return "an array of length " + std::to_string(v.As<Napi::Array>().Length());
  if (v.IsArrayBuffer()) return "an ArrayBuffer";
  if (v.IsFunction()) return "a function";
  return "an object";
}

[[noreturn]] void fail(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::RangeError::New(env, "plan job: " + msg);
  e.Value().Set("code", Napi::String::New(env, "ERR_BATCHLAB_PLAN"));
  throw e;
}

int intField(Napi::Env env, const Napi::Object& job, const char* name, int lo, int hi) {
  Napi::Value v = job.Get(name);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!v.IsNumber() || !(d >= lo && d <= hi) || d != std::floor(d)) {
    fail(env, std::string("job.") + name + ": expected an integer in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "], received " + describe(v));
  }
  return (int)d;
}

template <typename T>
const T* typedField(Napi::Env env, const Napi::Object& job, const char* name, napi_typedarray_type type,
                    const char* typeName, size_t* length) {
  Napi::Value v = job.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    fail(env, std::string("job.") + name + ": expected " + typeName + ", received " + describe(v));
  }
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  *length = t.ElementLength();
  uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
  if (base == nullptr) {
    if (*length != 0) fail(env, std::string("job.") + name + ": its ArrayBuffer is detached");
    static const T none{};
    return &none;
  }
  return reinterpret_cast<const T*>(base + t.ByteOffset());
}

size_t alignUp(size_t x) { return (x + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }

}  // namespace

HostJob parseJob(Napi::Env env, Napi::Object job) {
  HostJob hj;
  DevJob& d = hj.dev;
  d.n = intField(env, job, "n", 0, 1 << 24);
  d.inC = intField(env, job, "inC", 1, kMaxChannels);
  d.outC = intField(env, job, "outC", 1, kMaxChannels);
  d.outH = intField(env, job, "outH", 1, 1 << 15);
  d.outW = intField(env, job, "outW", 1, 1 << 15);
  d.K = intField(env, job, "K", 1, 64);
  const size_t n = (size_t)d.n;

  // Sources and their sizes.
  Napi::Value srcV = job.Get("sources");
  if (!srcV.IsArray()) fail(env, "job.sources: expected an array of n Uint8Array, received " + describe(srcV));
  Napi::Array sources = srcV.As<Napi::Array>();
  if (sources.Length() != n) {
    fail(env, "job.sources: expected n = " + std::to_string(n) + " Uint8Array, received " + describe(srcV));
  }
  size_t dimsLen = 0;
  hj.srcDims = typedField<int32_t>(env, job, "srcDims", napi_int32_array, "an Int32Array", &dimsLen);
  if (dimsLen != 2 * n) {
    fail(env, "job.srcDims: expected length 2n = " + std::to_string(2 * n) + ", received length " +
                  std::to_string(dimsLen));
  }
  hj.srcData.resize(n);
  hj.srcBytes.resize(n);
  for (size_t s = 0; s < n; ++s) {
    const int32_t h = hj.srcDims[2 * s], w = hj.srcDims[2 * s + 1];
    if (h < 1 || w < 1) {
      fail(env, "job.srcDims[" + std::to_string(2 * s) + ".." + std::to_string(2 * s + 1) + "] = " +
                    std::to_string(h) + ", " + std::to_string(w) + ": sample " + std::to_string(s) +
                    " needs a height and width >= 1");
    }
    Napi::Value sv = sources.Get((uint32_t)s);
    if (!sv.IsTypedArray() || sv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      fail(env, "job.sources[" + std::to_string(s) + "]: expected a Uint8Array, received " + describe(sv));
    }
    Napi::TypedArray t = sv.As<Napi::TypedArray>();
    const size_t need = (size_t)h * (size_t)w * (size_t)d.inC;
    if (t.ByteLength() < need) {
      fail(env, "job.sources[" + std::to_string(s) + "]: expected at least height*width*inC = " +
                    std::to_string(h) + "*" + std::to_string(w) + "*" + std::to_string(d.inC) + " = " +
                    std::to_string(need) + " bytes, received " + describe(sv));
    }
    const uint8_t* base = static_cast<const uint8_t*>(t.ArrayBuffer().Data());
    if (base == nullptr) fail(env, "job.sources[" + std::to_string(s) + "]: its ArrayBuffer is detached");
    hj.srcData[s] = base + t.ByteOffset();
    hj.srcBytes[s] = need;
    hj.pixelBytes += need;
  }

  // Taps.
  hj.taps = n * (size_t)(d.outH + d.outW) * (size_t)d.K;
  size_t len = 0;
  hj.tapIndex = typedField<int32_t>(env, job, "tapIndex", napi_int32_array, "an Int32Array", &len);
  if (len != hj.taps) {
    fail(env, "job.tapIndex: expected length n*(outH+outW)*K = " + std::to_string(hj.taps) +
                  ", received length " + std::to_string(len));
  }
  hj.tapWeight = typedField<float>(env, job, "tapWeight", napi_float32_array, "a Float32Array", &len);
  if (len != hj.taps) {
    fail(env, "job.tapWeight: expected length n*(outH+outW)*K = " + std::to_string(hj.taps) +
                  ", received length " + std::to_string(len));
  }
  const size_t perSample = (size_t)(d.outH + d.outW) * (size_t)d.K;
  for (size_t s = 0; s < n; ++s) {
    const int32_t h = hj.srcDims[2 * s], w = hj.srcDims[2 * s + 1];
    const int32_t* t = hj.tapIndex + s * perSample;
    for (size_t i = 0; i < perSample; ++i) {
      const bool row = i < (size_t)d.outH * (size_t)d.K;
      const int32_t lim = row ? h : w;
      if (t[i] < -1 || t[i] >= lim) {
        const size_t local = row ? i : i - (size_t)d.outH * (size_t)d.K;
        fail(env, "job.tapIndex[" + std::to_string(s * perSample + i) + "] = " + std::to_string(t[i]) +
                      ": " + (row ? "row" : "column") + " tap " + std::to_string(local % (size_t)d.K) +
                      " of output " + (row ? "row " : "column ") + std::to_string(local / (size_t)d.K) +
                      " of sample " + std::to_string(s) + " is outside [-1, " + std::to_string(lim - 1) +
                      "] (source " + (row ? "height " : "width ") + std::to_string(lim) + ")");
      }
    }
  }

  // Fill.
  const float* fill = typedField<float>(env, job, "fill", napi_float32_array, "a Float32Array", &len);
  if (len < (size_t)d.inC) {
    fail(env, "job.fill: expected length inC = " + std::to_string(d.inC) + ", received length " +
                  std::to_string(len));
  }
  for (int c = 0; c < d.inC; ++c) d.fill[c] = fill[c];

  // Program.
  const int32_t* prog = typedField<int32_t>(env, job, "program", napi_int32_array, "an Int32Array", &len);
  if (len > (size_t)kMaxOps) {
    fail(env, "job.program: the CUDA engine runs at most " + std::to_string(kMaxOps) + " ops, received " +
                  std::to_string(len));
  }
  d.nOps = (int)len;
  const int32_t* offs = typedField<int32_t>(env, job, "opOffsets", napi_int32_array, "an Int32Array", &len);
  if (len != (size_t)d.nOps) {
    fail(env, "job.opOffsets: expected one offset per op (" + std::to_string(d.nOps) + "), received length " +
                  std::to_string(len));
  }
  for (int k = 0; k < d.nOps; ++k) {
    if (prog[k] < 0 || prog[k] > 3) {
      fail(env, "job.program[" + std::to_string(k) + "] = " + std::to_string(prog[k]) +
                    ": expected an op code 0 (AFFINE), 1 (GRAY), 2 (JITTER) or 3 (ERASE)");
    }
    if (offs[k] < 0) {
      fail(env, "job.opOffsets[" + std::to_string(k) + "] = " + std::to_string(offs[k]) + ": expected >= 0");
    }
    d.program[k] = prog[k];
    d.opOffsets[k] = offs[k];
    if (prog[k] == kJitter) d.jitterOps[d.nJitter++] = k;
  }

  // Parameters.
  hj.params = typedField<float>(env, job, "params", napi_float32_array, "a Float32Array", &len);
  if (n == 0 ? len != 0 : len % n != 0) {
    fail(env, "job.params: expected a length that is a multiple of n = " + std::to_string(n) +
                  ", received length " + std::to_string(len));
  }
  if (n > 0 && len / n > (size_t)0x7fffffff) fail(env, "job.params: blocks of more than 2^31-1 floats");
  hj.paramCount = len;
  d.P = n == 0 ? 0 : (int)(len / n);
  const size_t P = (size_t)d.P;
  for (size_t s = 0; s < n; ++s) {
    const float* blk = hj.params + s * P;
    int C = d.inC;
    for (int k = 0; k < d.nOps; ++k) {
      const int code = d.program[k];
      const size_t off = (size_t)d.opOffsets[k];
      const size_t size = code == kAffine ? 1 + 2 * (size_t)C : code == kGray ? 2 : code == kJitter ? 6 : 5 + (size_t)C;
      const std::string where = "op " + std::to_string(k) + " (" + kOpNames[code] + ") of sample " + std::to_string(s);
      if (off + size > P) {
        fail(env, "job.opOffsets[" + std::to_string(k) + "] = " + std::to_string(off) + ": " + where + " needs " +
                      std::to_string(size) + " floats at " + std::to_string(C) +
                      " channels, past the end of its parameter block of P = params.length / n = " +
                      std::to_string(P) + " floats");
      }
      const float* p = blk + off;
      if (p[0] == 0.0f) continue;
      const std::string at = "job.params[" + std::to_string(s * P + off + 1) + "]";
      if (code == kGray || code == kJitter) {
        if (C != 1 && C != 3) {
          fail(env, where + ": gray is defined for 1 or 3 channels, the image has " + std::to_string(C) +
                        " at that point");
        }
      }
      if (code == kGray) {
        if (p[1] != 1.0f && p[1] != 3.0f) {
          fail(env, at + " = " + num(p[1]) + ": " + where + ": outChannels must be 1 or 3");
        }
        C = (int)p[1];
      } else if (code == kJitter) {
        const float o = p[2];
        if (!(o >= 0.0f && o <= 5.0f) || o != std::floor(o)) {
          fail(env, "job.params[" + std::to_string(s * P + off + 2) + "] = " + num(o) + ": " + where +
                        ": order must be an integer in [0, 5]");
        }
      }
    }
    if (C != d.outC) {
      fail(env, "job.outC = " + std::to_string(d.outC) + ": sample " + std::to_string(s) +
                    " ends its program with " + std::to_string(C) + " channels");
    }
  }

  // Reductions (one block per sample) only when some sample's contrast actually needs a mean;
  // otherwise JITTER runs pixel-parallel like every other op (means[] is then never read).
  bool anyMean = false;
  for (size_t s = 0; s < n && !anyMean; ++s) {
    for (int r = 0; r < d.nJitter && !anyMean; ++r) {
      const float* p = hj.params + s * P + d.opOffsets[d.jitterOps[r]];
      anyMean = p[0] != 0.0f && !isNaN(p[4]);
    }
  }
  if (!anyMean) d.nJitter = 0;

  const size_t hw = (size_t)d.outH * (size_t)d.outW;
  hj.outElements = n * (size_t)d.outC * hw;

  size_t off = 0;
  auto section = [&off](size_t bytes) {
    const size_t at = off;
    off = alignUp(off + bytes);
    return at;
  };
  hj.offSrcOffsets = section(8 * n);
  hj.offSrcDims = section(8 * n);
  hj.offTapIndex = section(4 * hj.taps);
  hj.offTapWeight = section(4 * hj.taps);
  hj.offParams = section(4 * hj.paramCount);
  hj.metaBytes = off;
  return hj;
}

void packMeta(const HostJob& hj, uint8_t* arena, const std::vector<int64_t>& pixelOffsets) {
  const size_t n = (size_t)hj.dev.n;
  if (n > 0) std::memcpy(arena + hj.offSrcOffsets, pixelOffsets.data(), 8 * n);
  if (n > 0) std::memcpy(arena + hj.offSrcDims, hj.srcDims, 8 * n);
  if (hj.taps > 0) std::memcpy(arena + hj.offTapIndex, hj.tapIndex, 4 * hj.taps);
  if (hj.taps > 0) std::memcpy(arena + hj.offTapWeight, hj.tapWeight, 4 * hj.taps);
  if (hj.paramCount > 0) std::memcpy(arena + hj.offParams, hj.params, 4 * hj.paramCount);
}

std::vector<int64_t> packedOffsets(const HostJob& hj) {
  std::vector<int64_t> offsets(hj.srcBytes.size());
  int64_t at = 0;
  for (size_t s = 0; s < offsets.size(); ++s) {
    offsets[s] = at;
    at += (int64_t)hj.srcBytes[s];
  }
  return offsets;
}

std::vector<int64_t> packPixels(const HostJob& hj, uint8_t* dst) {
  std::vector<int64_t> offsets = packedOffsets(hj);
  for (size_t s = 0; s < offsets.size(); ++s) std::memcpy(dst + offsets[s], hj.srcData[s], hj.srcBytes[s]);
  return offsets;
}

DevJob bindJob(const HostJob& hj, uint8_t* arena, float* out) {
  DevJob d = hj.dev;
  d.srcOffsets = reinterpret_cast<const int64_t*>(arena + hj.offSrcOffsets);
  d.srcDims = reinterpret_cast<const int32_t*>(arena + hj.offSrcDims);
  d.tapIndex = reinterpret_cast<const int32_t*>(arena + hj.offTapIndex);
  d.tapWeight = reinterpret_cast<const float*>(arena + hj.offTapWeight);
  d.params = reinterpret_cast<const float*>(arena + hj.offParams);
  d.pixels = arena + hj.metaBytes;
  d.out = out;
  return d;
}

void emulatePlan(const DevJob& j) {
  const int H = j.outH, W = j.outW;
  const double hw = (double)H * (double)W;
  float means[kMaxOps] = {};
  for (int s = 0; s < j.n; ++s) {
    for (int r = 0; r < j.nJitter; ++r) {
      float mean = 0.0f;
      if (needsMean(j, s, r)) {
        double sum = 0.0;
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x) sum += (double)grayBeforeContrast(j, s, y, x, means, r);
        mean = (float)(sum / hw);
      }
      means[r] = mean;
    }
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) writePixel(j, s, y, x, means);
  }
}

}  // namespace blcuda
