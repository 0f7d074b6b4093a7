// Reading a plan job from JavaScript (see job_read.h).
#include "job_read.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace batchlab {
namespace {

[[noreturn]] void fail(std::string field, std::string expected, std::string received, bool typeError = false) {
  throw PlanFailure{Problem{std::move(field), std::move(expected), std::move(received)}, typeError};
}

int32_t intField(const Napi::Object& o, const char* field, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(field);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= (double)lo && d <= (double)hi) || d != std::floor(d)) {
    std::string expected = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (d == std::floor(d) && d < (double)lo) expected = "an integer >= " + std::to_string(lo);
    if (d == std::floor(d) && d > (double)hi) expected = "an integer <= " + std::to_string(hi);
    fail(field, expected, describe(v), !v.IsNumber());
  }
  return (int32_t)d;
}

template <typename T>
struct TypedInfo;
template <>
struct TypedInfo<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "a Uint8Array";
};
template <>
struct TypedInfo<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "an Int32Array";
};
template <>
struct TypedInfo<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "a Float32Array";
};

// Element pointer and length of a typed array field (a valid pointer and 0 when empty or
// detached). Works for views of a SharedArrayBuffer too.
template <typename T>
T* typedField(Napi::Env env, const Napi::Object& o, const char* field, size_t* length, const std::function<void(napi_value)>& keep) {
  Napi::Value v = o.Get(field);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != TypedInfo<T>::type) fail(field, TypedInfo<T>::name, describe(v), true);
  void* data = nullptr;
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, nullptr, &n, &data, nullptr, nullptr) != napi_ok) throw Napi::Error::New(env);
  keep(v);
  static T none{};
  *length = data ? n : 0;
  return data && n ? static_cast<T*>(data) : &none;
}

}  // namespace

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return num(v.As<Napi::Number>().DoubleValue());
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsTypedArray()) {
    static const char* const names[] = {"Int8Array",    "Uint8Array",   "Uint8ClampedArray", "Int16Array",
                                        "Uint16Array",  "Int32Array",   "Uint32Array",       "Float32Array",
                                        "Float64Array", "BigInt64Array", "BigUint64Array"};
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    const int ty = (int)t.TypedArrayType();
    return std::string(ty >= 0 && ty < 11 ? names[ty] : "a typed array") + " of length " + std::to_string(t.ElementLength());
  }
  if (v.IsArray()) return "an array of length " + std::to_string(v.As<Napi::Array>().Length());
  if (v.IsArrayBuffer()) return "an ArrayBuffer";
  if (v.IsFunction()) return "a function";
  return "an object";
}

void readJob(Napi::Env env, const Napi::Object& o, const Limits& lim, bool withOut, Job& job, Lengths& len, JobInputs& inputs,
             const std::function<void(napi_value)>& keep) {
  const int32_t n = intField(o, "n", 0, lim.maxSamples);
  job.n = n;
  job.inC = intField(o, "inC", 1, lim.maxChannels);
  job.outC = intField(o, "outC", 1, lim.maxChannels);
  job.outH = intField(o, "outH", 1, lim.maxSide);
  job.outW = intField(o, "outW", 1, lim.maxSide);
  job.K = intField(o, "K", 1, lim.maxTaps);
  // The warp pass is optional: a job without the field has none.
  job.warp = o.Get("warp").IsUndefined() ? kWarpNone : intField(o, "warp", kWarpNone, kWarpBicubic);
  if (job.warp != kWarpNone) job.warpOffset = (size_t)intField(o, "warpOffset", 0, std::numeric_limits<int32_t>::max());
  // The pass before the warp is optional too.
  if (job.warp != kWarpNone && !o.Get("preK").IsUndefined()) job.preK = intField(o, "preK", 1, lim.maxTaps);
  // Ops before the warp (checked against the program's length in checkJob).
  if (job.warp != kWarpNone && !o.Get("warpOps").IsUndefined()) job.warpOps = intField(o, "warpOps", 0, lim.maxOps);

  Napi::Value srcs = o.Get("sources");
  Napi::Value offsetsValue = o.Get("srcOffsets");
  const auto elements = [&](napi_value v) -> void* {
    void* d = nullptr;
    if (napi_get_typedarray_info(env, v, nullptr, nullptr, &d, nullptr, nullptr) != napi_ok) throw Napi::Error::New(env);
    return d;
  };
  if (srcs.IsTypedArray()) {
    // One buffer holding every sample (an in-memory data set): sample s starts at srcOffsets[s]
    // and its view runs to the end of the buffer; checkJob checks it is long enough.
    Napi::TypedArray t = srcs.As<Napi::TypedArray>();
    if (t.TypedArrayType() != napi_uint8_array) fail("sources", "a Uint8Array (with srcOffsets) or an array of n Uint8Array", describe(srcs), true);
    if (!offsetsValue.IsTypedArray() || offsetsValue.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      fail("srcOffsets", "a Float64Array of n byte offsets when sources is one Uint8Array", describe(offsetsValue), true);
    }
    Napi::TypedArray offs = offsetsValue.As<Napi::TypedArray>();
    if (offs.ElementLength() != (size_t)n) fail("srcOffsets", "n = " + std::to_string(n) + " offsets", "length " + std::to_string(offs.ElementLength()));
    const size_t bytes = t.ElementLength();
    const uint8_t* base = bytes ? static_cast<const uint8_t*>(elements(srcs)) : nullptr;
    const double* off = n ? static_cast<const double*>(elements(offsetsValue)) : nullptr;
    for (int32_t s = 0; s < n; ++s) {
      const double d = off[s];
      if (!(d >= 0.0 && d <= (double)bytes) || d != std::floor(d)) {
        fail("srcOffsets[" + std::to_string(s) + "]", "an integer byte offset in [0, " + std::to_string(bytes) + "] (the length of sources)", num(d));
      }
      job.src.push_back(base ? base + (size_t)d : nullptr);
      job.srcBytes.push_back(base ? bytes - (size_t)d : 0);
    }
    job.srcOffsets.assign(off, off + n);
    keep(srcs);
  } else {
    if (!srcs.IsArray()) fail("sources", "an array of n Uint8Array (or one Uint8Array with srcOffsets)", describe(srcs), true);
    if (!offsetsValue.IsUndefined()) fail("srcOffsets", "undefined when sources is an array of views", describe(offsetsValue), true);
    Napi::Array arr = srcs.As<Napi::Array>();
    const uint32_t count = arr.Length();
    if (count != (uint32_t)n) fail("sources", "n = " + std::to_string(n) + " Uint8Arrays (one per sample)", describe(srcs));
    // Raw Node-API: a batch can hold thousands of sources. What keeps a source's bytes alive is
    // its ArrayBuffer, so views of one buffer share one `keep` (recognised by data - byteOffset).
    std::vector<const uint8_t*> keptBases;
    for (uint32_t i = 0; i < count; ++i) {
      napi_value sv = nullptr;
      if (napi_get_element(env, arr, i, &sv) != napi_ok) throw Napi::Error::New(env);
      napi_typedarray_type type = napi_int8_array;
      size_t length = 0;
      void* data = nullptr;
      napi_value buffer = nullptr;
      size_t byteOffset = 0;
      bool isTyped = false;
      if (napi_is_typedarray(env, sv, &isTyped) != napi_ok || !isTyped ||
          napi_get_typedarray_info(env, sv, &type, &length, &data, &buffer, &byteOffset) != napi_ok || type != napi_uint8_array) {
        fail("sources[" + std::to_string(i) + "]", "a Uint8Array", describe(Napi::Value(env, sv)), true);
      }
      job.src.push_back(static_cast<const uint8_t*>(data));
      job.srcBytes.push_back(data ? length : 0);
      const uint8_t* bufBase = data ? static_cast<const uint8_t*>(data) - byteOffset : nullptr;
      if (std::find(keptBases.begin(), keptBases.end(), bufBase) == keptBases.end()) {
        keptBases.push_back(bufBase);
        keep(buffer);
      }
    }
  }
  size_t dimsLen = 0, tapLen = 0, weightLen = 0, fillLen = 0, progLen = 0, offLen = 0, paramLen = 0, outLen = 0;
  const int32_t* dims = typedField<int32_t>(env, o, "srcDims", &dimsLen, keep);
  job.tapIndex = typedField<int32_t>(env, o, "tapIndex", &tapLen, keep);
  job.tapWeight = typedField<float>(env, o, "tapWeight", &weightLen, keep);
  const float* fill = typedField<float>(env, o, "fill", &fillLen, keep);
  const int32_t* program = typedField<int32_t>(env, o, "program", &progLen, keep);
  const int32_t* opOffsets = typedField<int32_t>(env, o, "opOffsets", &offLen, keep);
  job.params = typedField<float>(env, o, "params", &paramLen, keep);
  size_t warpDimsLen = 0;
  const int32_t* warpDims = job.warp != kWarpNone ? typedField<int32_t>(env, o, "warpDims", &warpDimsLen, keep) : nullptr;
  if (warpDims) job.warpDims.assign(warpDims, warpDims + warpDimsLen);
  size_t preDimsLen = 0, preTapLen = 0, preWeightLen = 0;
  const int32_t* preDims = job.preK ? typedField<int32_t>(env, o, "preDims", &preDimsLen, keep) : nullptr;
  if (job.preK) {
    job.preTapIndex = typedField<int32_t>(env, o, "preTapIndex", &preTapLen, keep);
    job.preTapWeight = typedField<float>(env, o, "preTapWeight", &preWeightLen, keep);
    job.preDims.assign(preDims, preDims + preDimsLen);
    // Where each sample's pre taps start (checkJob checks the lengths against these).
    job.preTapAt.assign(1, 0);
    for (size_t s = 0; s + 1 < preDimsLen && s / 2 < (size_t)n; s += 2) {
      const int64_t h = std::max<int64_t>(preDims[s], 0), w = std::max<int64_t>(preDims[s + 1], 0);
      job.preTapAt.push_back(job.preTapAt.back() + (size_t)(h + w) * (size_t)job.preK);
    }
  }
  if (withOut) {
    job.out = typedField<float>(env, o, "out", &outLen, keep);
  } else {
    outLen = (size_t)n * job.outPerSample();  // the caller's device buffer, checked by the caller
  }
  len.srcDims = dimsLen;
  len.tapIndex = tapLen;
  len.tapWeight = weightLen;
  len.fill = fillLen;
  len.program = progLen;
  len.opOffsets = offLen;
  len.params = paramLen;
  len.out = outLen;
  len.warpDims = warpDimsLen;
  len.preDims = preDimsLen;
  len.preTapIndex = preTapLen;
  len.preTapWeight = preWeightLen;
  // Small arrays are copied; the large ones (taps, params) are read in place (the CPU engine
  // checks each sample's private copy again before using it).
  if (dimsLen != 2 * (size_t)n) fail("srcDims", "an Int32Array of length 2n = " + std::to_string(2 * (size_t)n), "length " + std::to_string(dimsLen));
  job.dims.assign(dims, dims + dimsLen);
  job.fill.assign(fill, fill + fillLen);
  job.program.assign(program, program + progLen);
  job.opOffsets.assign(opOffsets, opOffsets + offLen);
  job.P = n > 0 ? paramLen / (size_t)n : 0;
  const Problem p = checkJob(job, len, lim);
  if (!p.ok()) throw PlanFailure{p, false};

  const auto bytesOf = [](const void* b, size_t count, size_t size) {
    const uint8_t* p0 = static_cast<const uint8_t*>(b);
    return std::make_pair(p0, p0 + count * size);
  };
  const auto add = [&](const char* name, std::pair<const uint8_t*, const uint8_t*> r) { inputs.ranges.push_back({name, r.first, r.second}); };
  add("srcDims", bytesOf(dims, dimsLen, sizeof(int32_t)));
  add("tapIndex", bytesOf(job.tapIndex, tapLen, sizeof(int32_t)));
  add("tapWeight", bytesOf(job.tapWeight, weightLen, sizeof(float)));
  add("fill", bytesOf(fill, fillLen, sizeof(float)));
  add("params", bytesOf(job.params, paramLen, sizeof(float)));
  if (warpDims) add("warpDims", bytesOf(warpDims, warpDimsLen, sizeof(int32_t)));
  if (preDims) {
    add("preDims", bytesOf(preDims, preDimsLen, sizeof(int32_t)));
    add("preTapIndex", bytesOf(job.preTapIndex, preTapLen, sizeof(int32_t)));
    add("preTapWeight", bytesOf(job.preTapWeight, preWeightLen, sizeof(float)));
  }
  for (size_t s = 0; s < job.src.size(); ++s) {
    if (!job.src[s]) continue;
    const size_t used = (size_t)job.dims[2 * s] * (size_t)job.dims[2 * s + 1] * (size_t)job.inC;
    inputs.ranges.push_back({job.srcOffsets.empty() ? "sources[" + std::to_string(s) + "]" : "sample " + std::to_string(s) + " of sources", job.src[s], job.src[s] + used});
  }
  if (withOut) {
    const auto r = bytesOf(job.out, (size_t)n * job.outPerSample(), sizeof(float));
    inputs.outBegin = r.first;
    inputs.outEnd = r.second;
    for (const auto& in : inputs.ranges) {
      if (inputs.outBegin < in.end && in.begin < inputs.outEnd) fail("out", "a buffer that shares no memory with the job's inputs", "a view that overlaps " + in.name);
    }
  }
}

Napi::Error planError(Napi::Env env, const PlanFailure& f) {
  const std::string message = "plan job: " + f.problem.message();
  Napi::Error e = f.typeError ? Napi::Error(Napi::TypeError::New(env, message)) : Napi::Error(Napi::RangeError::New(env, message));
  e.Set("code", Napi::String::New(env, "ERR_BATCHLAB_PLAN"));
  e.Set("field", Napi::String::New(env, f.problem.field));
  e.Set("expected", Napi::String::New(env, f.problem.expected));
  e.Set("received", Napi::String::New(env, f.problem.received));
  return e;
}

}  // namespace batchlab
