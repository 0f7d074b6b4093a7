// batchlab_cpu: the Node-API surface of the CPU engine.
//
//   runPlan(job) -> Promise<void>   the plan executor of native/PLAN_ABI.md
//   info()       -> { version, threads, simd, compiler }
//   poolSize()   -> number of pool workers
//   allocOutput(bytes) / releaseOutput(arrayBuffer): recycled batch memory (below)
//
// runPlan reads and checks the whole job on the JavaScript thread (nothing is written to `out`
// for a bad job: the promise is rejected with a RangeError/TypeError whose message names the
// field, the value and what was expected, and whose `code` is ERR_BATCHLAB_PLAN), keeps every
// typed array of the job referenced, and queues the job on the process-wide pool. The promise
// settles on the JavaScript thread through a thread-safe function when the last sample is
// written; only then are the references released. Nothing here aborts the process.
#include <algorithm>
#include <napi.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "plan.h"
#include "pool.h"

#ifndef BATCHLAB_VERSION
#define BATCHLAB_VERSION "unknown"
#endif

namespace {

using batchlab::Job;
using batchlab::Lengths;
using batchlab::Pool;
using batchlab::Scratch;

// Per Node environment (main thread or a worker thread). At teardown the cleanup hook stops
// this environment's jobs from starting further samples and waits until no pool thread is
// inside one, so that no worker touches memory the environment is about to free. Never freed:
// pool threads may still look at `closing` afterwards.
struct EnvState {
  std::atomic<bool> closing{false};
  std::atomic<int32_t> busy{0};
  // The thread-safe function that settles this environment's jobs, made on the first job and
  // kept: one per job would cost a libuv handle opened and closed per batch. Referenced (keeps
  // the event loop alive) only while jobs are in flight. Used on the JavaScript thread only.
  napi_threadsafe_function completion = nullptr;
  int32_t inflight = 0;
};

// A malformed job: becomes a rejected promise.
struct BadJob {
  std::string message;
  bool typeError;
};

[[noreturn]] void bad(const std::string& message, bool typeError = false) { throw BadJob{message, typeError}; }

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (std::isnan(d)) return "NaN";
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", d);
    return b;
  }
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
  if (v.IsFunction()) return "a function";
  return "an object";
}

int32_t intField(const Napi::Object& o, const char* field, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(field);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= (double)lo && d <= (double)hi) || d != std::floor(d)) {
    std::string expected = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (d == std::floor(d) && d < (double)lo) expected = "an integer >= " + std::to_string(lo);
    if (d == std::floor(d) && d > (double)hi) expected = "an integer <= " + std::to_string(hi);
    bad(std::string(field) + ": expected " + expected + ", received " + describe(v), !v.IsNumber());
  }
  return (int32_t)d;
}

template <typename T>
struct TypedInfo;
template <>
struct TypedInfo<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};
template <>
struct TypedInfo<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};
template <>
struct TypedInfo<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};

// A view of a typed array's elements (never null; length 0 for an empty or detached array).
template <typename T>
struct View {
  T* data;
  size_t length;
  const uint8_t* begin() const { return reinterpret_cast<const uint8_t*>(data); }
  const uint8_t* end() const { return reinterpret_cast<const uint8_t*>(data + length); }
};

// A job writing into a buffer from allocOutput pins it: releaseOutput refuses it until the job
// has ended (see below). Returns the buffer's id, 0 when `out` is not such a buffer.
uint64_t pinOutput(const void* out);
void unpinOutput(uint64_t id);

class NativeJob;
void settle(Napi::Env env, Napi::Function, std::nullptr_t*, NativeJob* job);
using Completion = Napi::TypedThreadSafeFunction<std::nullptr_t, NativeJob, settle>;

class NativeJob final : public batchlab::Task {
 public:
  NativeJob(Napi::Env env, int32_t count, int32_t cap, EnvState* env_state)
      : Task(count, cap), deferred(Napi::Promise::Deferred::New(env)), envState(env_state) {
    busy = &env_state->busy;
  }
  ~NativeJob() override { unpinOutput(pinnedOutput); }

  Job job;
  uint64_t pinnedOutput = 0;  // the allocOutput buffer `out` lies in (0: none)
  std::vector<Napi::Reference<Napi::Value>> keep;  // the job's typed arrays, alive until it ends
  Napi::Promise::Deferred deferred;
  Completion completion;
  EnvState* envState;
  std::mutex errorMu;
  std::string error;

  void run(int32_t begin, int32_t end, Scratch& scratch) override {
    for (int32_t s = begin; s < end; ++s) {
      if (envState->closing.load()) return;  // the environment is going away: touch nothing
      std::string problem;
      try {
        problem = batchlab::runSample(job, s, scratch);
      } catch (const std::bad_alloc&) {
        problem = "out of memory for the sample's working buffers";
      } catch (const std::exception& e) {
        problem = e.what();
      }
      if (!problem.empty()) {
        std::lock_guard<std::mutex> lock(errorMu);
        if (error.empty()) error = "sample " + std::to_string(s) + ": " + problem;
      }
    }
  }

  void finished() override {
    Completion c = completion;
    if (c.NonBlockingCall(this) != napi_ok) abandon();  // the environment is closing
  }

  // The environment is gone or going: drop the job without calling into Node-API.
  void abandon() {
    for (auto& r : keep) r.SuppressDestruct();
    delete this;
  }
};

// On the JavaScript thread (or, with env == nullptr, while the environment is torn down).
// Nothing may throw out of here: node-addon-api would rethrow into a C++ frame that cannot
// catch it. A worker thread being terminated makes Node-API calls fail, for instance.
void settle(Napi::Env env, Napi::Function, std::nullptr_t*, NativeJob* job) {
  if (static_cast<napi_env>(env) == nullptr) {
    job->abandon();
    return;
  }
  try {
    if (job->error.empty()) {
      job->deferred.Resolve(env.Undefined());
    } else {
      Napi::Error e = Napi::Error::New(env, "runPlan: " + job->error);
      e.Set("code", Napi::String::New(env, "ERR_BATCHLAB_NATIVE"));
      job->deferred.Reject(e.Value());
    }
  } catch (...) {
    // The environment is stopping: nobody is left to see the promise settle.
  }
  EnvState* st = job->envState;
  if (--st->inflight == 0) job->completion.Unref(env);  // no job left: let the process exit
  delete job;  // releases the references, on the JavaScript thread
}

template <typename T>
View<T> typedField(NativeJob& nj, const Napi::Object& o, const char* field) {
  Napi::Value v = o.Get(field);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != TypedInfo<T>::type) {
    bad(std::string(field) + ": expected a " + TypedInfo<T>::name + ", received " + describe(v), true);
  }
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  static T none{};
  View<T> view{&none, 0};
  void* base = t.ArrayBuffer().Data();
  if (base != nullptr && t.ElementLength() > 0) {
    view.data = reinterpret_cast<T*>(static_cast<uint8_t*>(base) + t.ByteOffset());
    view.length = t.ElementLength();
  }
  nj.keep.push_back(Napi::Persistent(v));
  return view;
}

bool overlaps(const uint8_t* a0, const uint8_t* a1, const uint8_t* b0, const uint8_t* b1) { return a0 < b1 && b0 < a1; }

EnvState* envState(Napi::Env env) { return env.GetInstanceData<EnvState>(); }

Napi::Value RunPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred early = Napi::Promise::Deferred::New(env);
  std::unique_ptr<NativeJob> nj;
  try {
    if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray()) bad("runPlan(job): expected a plan job object, received " + describe(info[0]), true);
    Napi::Object o = info[0].As<Napi::Object>();
    const int32_t n = intField(o, "n", 0, batchlab::kMaxSamples);
    const int32_t threads = intField(o, "numThreads", 1, 1 << 20);
    nj.reset(new NativeJob(env, n, (int32_t)std::min<size_t>((size_t)threads, Pool::size()), envState(env)));
    Job& job = nj->job;
    static std::atomic<uint64_t> jobs{0};
    job.id = ++jobs;
    job.n = n;
    job.inC = intField(o, "inC", 1, batchlab::kMaxChannels);
    job.outC = intField(o, "outC", 1, batchlab::kMaxChannels);
    job.outH = intField(o, "outH", 1, batchlab::kMaxSide);
    job.outW = intField(o, "outW", 1, batchlab::kMaxSide);
    job.K = intField(o, "K", 1, batchlab::kMaxTaps);

    Napi::Value srcs = o.Get("sources");
    Napi::Value offsetsValue = o.Get("srcOffsets");
    std::vector<View<uint8_t>> sources;
    if (srcs.IsTypedArray()) {
      // One buffer holding every sample (an in-memory data set): sample s starts at
      // srcOffsets[s]. Its view runs to the end of the buffer; checkJob checks it is long enough.
      Napi::TypedArray t = srcs.As<Napi::TypedArray>();
      if (t.TypedArrayType() != napi_uint8_array) bad("sources: expected a Uint8Array (with srcOffsets) or an array of n Uint8Array, received " + describe(srcs), true);
      if (!offsetsValue.IsTypedArray() || offsetsValue.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
        bad("srcOffsets: expected a Float64Array of n byte offsets when sources is one Uint8Array, received " + describe(offsetsValue), true);
      }
      Napi::TypedArray offs = offsetsValue.As<Napi::TypedArray>();
      if (offs.ElementLength() != (size_t)n) {
        bad("srcOffsets: expected n = " + std::to_string(n) + " offsets, received " + std::to_string(offs.ElementLength()));
      }
      // Element pointers straight from the views: this also works for views of a
      // SharedArrayBuffer, which napi_get_arraybuffer_info refuses.
      const auto elements = [&](napi_value v) -> void* {
        void* d = nullptr;
        if (napi_get_typedarray_info(env, v, nullptr, nullptr, &d, nullptr, nullptr) != napi_ok) throw Napi::Error::New(env);
        return d;
      };
      const size_t bytes = t.ElementLength();
      const uint8_t* base = bytes ? static_cast<const uint8_t*>(elements(srcs)) : nullptr;
      const double* off = n ? static_cast<const double*>(elements(offsetsValue)) : nullptr;
      sources.reserve((size_t)n);
      for (int32_t s = 0; s < n; ++s) {
        const double d = off[s];
        if (!(d >= 0.0 && d <= (double)bytes) || d != std::floor(d)) {
          bad("srcOffsets[" + std::to_string(s) + "]: " + describe(Napi::Number::New(env, d)) + ", expected an integer byte offset in [0, " + std::to_string(bytes) + "] (the length of sources)");
        }
        const size_t at = (size_t)d;
        View<uint8_t> view{const_cast<uint8_t*>(base ? base + at : nullptr), base ? bytes - at : 0};
        sources.push_back(view);
        job.src.push_back(view.data);
        job.srcBytes.push_back(view.length);
      }
      job.srcOffsets.assign(off, off + n);
      nj->keep.push_back(Napi::Persistent(srcs));
    } else {
      if (!srcs.IsArray()) bad("sources: expected an array of n Uint8Array (or one Uint8Array with srcOffsets), received " + describe(srcs), true);
      if (!offsetsValue.IsUndefined()) bad("srcOffsets: expected undefined when sources is an array of views, received " + describe(offsetsValue), true);
      Napi::Array arr = srcs.As<Napi::Array>();
      const uint32_t count = arr.Length();
      if (count != (uint32_t)n) bad("sources: expected " + std::to_string(n) + " Uint8Arrays, received " + std::to_string(count) + " (one per sample: n = " + std::to_string(n) + ")");
      sources.reserve(count);
      // Raw Node-API here: one batch can hold thousands of sources, and this runs on the
      // JavaScript thread (napi_get_typedarray_info gives type, length and data in one call).
      // What keeps a source's bytes alive is its ArrayBuffer, so one reference per distinct
      // buffer is enough: views of one buffer share a single one. A buffer is recognised by the
      // start of its memory (data - byteOffset), checked against the buffers already kept.
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
          bad("sources[" + std::to_string(i) + "]: expected a Uint8Array, received " + describe(Napi::Value(env, sv)), true);
        }
        View<uint8_t> view{static_cast<uint8_t*>(data), data ? length : 0};
        sources.push_back(view);
        job.src.push_back(view.data);
        job.srcBytes.push_back(view.length);
        const uint8_t* base = data ? static_cast<const uint8_t*>(data) - byteOffset : nullptr;
        if (std::find(keptBases.begin(), keptBases.end(), base) == keptBases.end()) {
          keptBases.push_back(base);
          nj->keep.push_back(Napi::Persistent(Napi::Value(env, buffer)));
        }
      }
    }
    Lengths len;
    const View<int32_t> dims = typedField<int32_t>(*nj, o, "srcDims");
    const View<int32_t> tapIndex = typedField<int32_t>(*nj, o, "tapIndex");
    const View<float> tapWeight = typedField<float>(*nj, o, "tapWeight");
    const View<float> fill = typedField<float>(*nj, o, "fill");
    const View<int32_t> program = typedField<int32_t>(*nj, o, "program");
    const View<int32_t> opOffsets = typedField<int32_t>(*nj, o, "opOffsets");
    const View<float> params = typedField<float>(*nj, o, "params");
    const View<float> out = typedField<float>(*nj, o, "out");
    len.srcDims = dims.length;
    len.tapIndex = tapIndex.length;
    len.tapWeight = tapWeight.length;
    len.fill = fill.length;
    len.program = program.length;
    len.opOffsets = opOffsets.length;
    len.params = params.length;
    len.out = out.length;
    // Small arrays are copied now; the large ones (taps, params) are read in place and each
    // sample checks its own copy again before using it.
    if (dims.length == 2 * (size_t)n) job.dims.assign(dims.data, dims.data + dims.length);
    job.fill.assign(fill.data, fill.data + fill.length);
    job.program.assign(program.data, program.data + program.length);
    job.opOffsets.assign(opOffsets.data, opOffsets.data + opOffsets.length);
    job.tapIndex = tapIndex.data;
    job.tapWeight = tapWeight.data;
    job.params = params.data;
    job.out = out.data;
    job.P = n > 0 ? params.length / (size_t)n : 0;
    if (dims.length != 2 * (size_t)n) bad("srcDims: expected length 2n = " + std::to_string(2 * (size_t)n) + ", received " + std::to_string(dims.length));
    const std::string problem = batchlab::checkJob(job, len);
    if (!problem.empty()) bad(problem);

    // The output must not share memory with anything the job reads.
    const size_t outBytes = (size_t)n * job.outPerSample() * sizeof(float);
    const uint8_t* o0 = out.begin();
    const uint8_t* o1 = o0 + outBytes;
    const struct {
      const char* name;
      const uint8_t *b, *e;
    } inputs[] = {{"srcDims", dims.begin(), dims.end()},       {"tapIndex", tapIndex.begin(), tapIndex.end()},
                  {"tapWeight", tapWeight.begin(), tapWeight.end()}, {"fill", fill.begin(), fill.end()},
                  {"params", params.begin(), params.end()}};
    for (const auto& in : inputs) {
      if (overlaps(o0, o1, in.b, in.e)) bad(std::string("out: shares memory with ") + in.name + ", expected a separate buffer");
    }
    for (size_t s = 0; s < sources.size(); ++s) {
      const uint8_t* b = sources[s].data;
      const size_t used = std::min(sources[s].length, (size_t)job.dims[2 * s] * (size_t)job.dims[2 * s + 1] * (size_t)job.inC);
      if (b && overlaps(o0, o1, b, b + used)) {
        bad(std::string("out: shares memory with ") + (job.srcOffsets.empty() ? "sources[" + std::to_string(s) + "]" : "sample " + std::to_string(s) + " of sources") +
            ", expected a separate buffer");
      }
    }

    if (n == 0) {
      early.Resolve(env.Undefined());
      return early.Promise();
    }
    Pool::instance().start();
    EnvState* st = envState(env);
    if (st->completion == nullptr) {
      Completion made = Completion::New(env, "batchlab.runPlan", 0, 1);
      made.Unref(env);
      st->completion = made;
    }
    nj->completion = Completion(st->completion);
    nj->pinnedOutput = pinOutput(out.data);
    Napi::Promise promise = nj->deferred.Promise();
    Pool::instance().submit(nj.get());  // may throw (out of memory): then nothing was queued
    NativeJob* queued = nj.release();  // the pool owns it now; settle() deletes it
    // settle() runs on this thread, so not before this function has returned.
    if (st->inflight++ == 0) queued->completion.Ref(env);
    return promise;
  } catch (const BadJob& e) {
    Napi::Error err = e.typeError ? Napi::Error(Napi::TypeError::New(env, e.message)) : Napi::Error(Napi::RangeError::New(env, e.message));
    err.Set("code", Napi::String::New(env, "ERR_BATCHLAB_PLAN"));
    early.Reject(err.Value());
    return early.Promise();
  } catch (const Napi::Error& e) {  // a getter on the job threw, or Node-API failed
    early.Reject(e.Value());
    return early.Promise();
  } catch (const std::bad_alloc&) {
    early.Reject(Napi::RangeError::New(env, "runPlan: out of memory while reading the job").Value());
    return early.Promise();
  } catch (const std::exception& e) {
    Napi::Error err = Napi::Error::New(env, std::string("runPlan: ") + e.what());
    err.Set("code", Napi::String::New(env, "ERR_BATCHLAB_NATIVE"));
    early.Reject(err.Value());
    return early.Promise();
  }
}

const char* simdName() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__SSE4_2__)
  return "sse4.2";
#elif defined(__SSE2__)
  return "sse2";
#elif defined(__ARM_NEON)
  return "neon";
#else
  return "none";
#endif
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", BATCHLAB_VERSION);
  o.Set("threads", (double)Pool::size());
  o.Set("simd", simdName());
#if defined(__clang__)
  o.Set("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
  o.Set("compiler", "g++ " __VERSION__);
#else
  o.Set("compiler", "unknown");
#endif
  return o;
}

Napi::Value PoolSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)Pool::size()); }

void keepEnvState(Napi::Env, EnvState*, void*) {}

void onEnvCleanup(EnvState* st) {
  st->closing.store(true);
  while (st->busy.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// ---------------------------------------------------------------------------------------------
// Batch output memory that is reused. A fresh multi-megabyte buffer per batch costs a page fault
// per 4 KiB page on first write (and the kernel's zeroing of it), more than the plan itself on
// small images. allocOutput(bytes) hands out an external ArrayBuffer whose memory goes back to a
// free list (up to kKeepBytes in all) for the next batch of the same size, either when
// releaseOutput(buffer) detaches it (batch.dispose()) or when the garbage collector frees it.
// Either way memory is reused only once no JavaScript value can see it.
namespace {
constexpr size_t kKeepBytes = size_t(96) << 20;
// Below every runtime's largest ArrayBuffer (Node 20: 4 GiB), so that creating one never fails
// for its size: a larger batch takes the caller's own allocation.
constexpr size_t kMaxOutputBytes = size_t(1) << 31;

// One buffer handed out. Its finalizer (Node runs it after the collector frees the buffer, or
// a task after releaseOutput detached it) gets this record as its hint.
struct Output {
  size_t bytes;
  void* data;
  uint64_t id;    // unique, never reused (records are looked up by it, not by address)
  bool released;  // releaseOutput already took the memory back: the finalizer only deletes this
};

std::mutex freeMu;
std::vector<std::pair<size_t, void*>> freeBlocks;  // (bytes, memory), few entries
size_t freeBytes = 0;
std::vector<Output*> liveOutputs;  // handed out, not yet released or finalized
std::vector<uint64_t> pinnedOutputs;  // ids of live outputs that queued or running jobs write
uint64_t lastOutputId = 0;

// V8 starts a collection once external memory has grown by a fixed amount (64 MiB) since the
// last one; batch buffers are few and large, so that much garbage would sit resident before
// anyone frees it. Each buffer is reported once more on top of V8's own count, so collections
// come after about 32 MiB of dead batches. (Three times over halves that again, but the extra
// major collections cost about a fifth of the throughput on 2 cores.)
constexpr int64_t kPressure = 1;

// Back to the free list (or to the system beyond kKeepBytes); un-reports the extra pressure.
// The caller has removed `out` from liveOutputs.
void reclaim(napi_env env, Output* out) {
  int64_t unused = 0;
  napi_adjust_external_memory(env, -(int64_t)out->bytes * kPressure, &unused);
  {
    std::lock_guard<std::mutex> lock(freeMu);
    if (freeBytes + out->bytes <= kKeepBytes) {
      freeBlocks.emplace_back(out->bytes, out->data);
      freeBytes += out->bytes;
      return;
    }
  }
  std::free(out->data);
}

}  // namespace

uint64_t pinOutput(const void* out) {
  const uint8_t* p = static_cast<const uint8_t*>(out);
  std::lock_guard<std::mutex> lock(freeMu);
  for (Output* o : liveOutputs) {
    const uint8_t* b = static_cast<const uint8_t*>(o->data);
    if (p != nullptr && p >= b && p < b + o->bytes) {
      pinnedOutputs.push_back(o->id);
      return o->id;
    }
  }
  return 0;
}

void unpinOutput(uint64_t id) {
  if (id == 0) return;
  std::lock_guard<std::mutex> lock(freeMu);
  auto it = std::find(pinnedOutputs.begin(), pinnedOutputs.end(), id);
  if (it != pinnedOutputs.end()) pinnedOutputs.erase(it);
}

namespace {

void finalizeOutput(napi_env env, void*, void* hint) {
  Output* out = static_cast<Output*>(hint);
  if (!out->released) {
    {
      std::lock_guard<std::mutex> lock(freeMu);
      auto live = std::find(liveOutputs.begin(), liveOutputs.end(), out);
      if (live != liveOutputs.end()) liveOutputs.erase(live);
    }
    reclaim(env, out);
  }
  delete out;
}

Napi::Value AllocOutput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double want = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1.0;
  if (!(want >= 1.0 && want <= (double)kMaxOutputBytes) || want != std::floor(want)) {
    Napi::RangeError::New(env, "allocOutput(bytes): expected an integer from 1 to 2^31, received " + describe(info.Length() > 0 ? info[0] : env.Undefined()))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t bytes = (size_t)want;
  void* data = nullptr;
  {
    std::lock_guard<std::mutex> lock(freeMu);
    for (size_t i = freeBlocks.size(); i-- > 0;) {
      if (freeBlocks[i].first == bytes) {
        data = freeBlocks[i].second;
        freeBlocks.erase(freeBlocks.begin() + (ptrdiff_t)i);
        freeBytes -= bytes;
        break;
      }
    }
  }
  if (!data) data = std::malloc(bytes);
  Output* out = data ? new (std::nothrow) Output{bytes, data, 0, false} : nullptr;
  if (!out) {
    std::free(data);
    Napi::RangeError::New(env, "allocOutput: out of memory for " + std::to_string(bytes) + " bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  napi_value ab = nullptr;
  if (napi_create_external_arraybuffer(env, data, bytes, finalizeOutput, out, &ab) != napi_ok) {
    // Runtimes that refuse external buffers (a sandboxed V8): the caller falls back to its own.
    // The memory and the record are left as they are: the runtime may still call the finalizer
    // with them (now or later), and freeing them here would free them twice.
    return env.Null();
  }
  int64_t unused = 0;
  napi_adjust_external_memory(env, (int64_t)bytes * kPressure, &unused);
  {
    std::lock_guard<std::mutex> lock(freeMu);
    out->id = ++lastOutputId;
    liveOutputs.push_back(out);
  }
  return Napi::Value(env, ab);
}

// releaseOutput(arrayBuffer) -> boolean. A buffer from allocOutput whose batch the caller is
// done with (batch.dispose()): it is detached, so every view of it reads as empty, and its
// memory is on the free list before this returns: the next allocOutput of that size gets it,
// with no garbage collection and no wait for Node's finalizer (which then only drops the
// record). False, and nothing done, for anything else, and for a buffer that a runPlan job
// still writes (the job holds it; the collector reclaims it after).
Napi::Value ReleaseOutput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return Napi::Boolean::New(env, false);
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  Output* out = nullptr;
  {
    std::lock_guard<std::mutex> lock(freeMu);
    for (Output* o : liveOutputs)
      if (o->data == data && data != nullptr) out = o;
    // A job still writes into it: leave it to the garbage collector, which waits for the job.
    if (out && std::find(pinnedOutputs.begin(), pinnedOutputs.end(), out->id) != pinnedOutputs.end()) out = nullptr;
  }
  if (!out || napi_detach_arraybuffer(env, ab) != napi_ok) return Napi::Boolean::New(env, false);
  {
    std::lock_guard<std::mutex> lock(freeMu);
    auto live = std::find(liveOutputs.begin(), liveOutputs.end(), out);
    if (live != liveOutputs.end()) liveOutputs.erase(live);
  }
  out->released = true;
  reclaim(env, out);
  return Napi::Boolean::New(env, true);
}
}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  EnvState* st = new EnvState();
  // Instance data without a finalizer: the state must outlive the environment (see EnvState).
  env.SetInstanceData<EnvState, void, keepEnvState>(st, nullptr);
  env.AddCleanupHook(onEnvCleanup, st);
  exports.Set("runPlan", Napi::Function::New(env, RunPlan, "runPlan"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("poolSize", Napi::Function::New(env, PoolSize, "poolSize"));
  exports.Set("allocOutput", Napi::Function::New(env, AllocOutput, "allocOutput"));
  exports.Set("releaseOutput", Napi::Function::New(env, ReleaseOutput, "releaseOutput"));
  return exports;
}

}  // namespace

NODE_API_MODULE(batchlab_cpu, Init)
