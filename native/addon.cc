// batchlab_cpu: the Node-API surface of the CPU engine.
//
//   runPlan(job) -> Promise<void>   the plan executor of native/PLAN_ABI.md
//   info()       -> { version, threads, simd, compiler }
//   poolSize()   -> number of pool workers
//   allocOutput(bytes) / releaseOutput(arrayBuffer): recycled batch memory (below)
//   decodeJpeg(requests) -> Promise<results>, jpegVersion: native/decode.cc (with libjpeg)
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

#include "decode.h"
#include "job_read.h"
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

using batchlab::describe;

[[noreturn]] void bad(const std::string& field, const std::string& expected, const Napi::Value& v) {
  throw batchlab::PlanFailure{batchlab::Problem{field, expected, describe(v)}, true};
}

int32_t intField(const Napi::Object& o, const char* field, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(field);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= (double)lo && d <= (double)hi) || d != std::floor(d)) {
    bad(field, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", v);
  }
  return (int32_t)d;
}

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

  // Called still counted in envState->busy (pool.cc), so the environment's cleanup hook waits
  // for it: once `closing` is seen, the thread-safe function is not touched at all.
  void finished() override {
    if (envState->closing.load()) return abandon();
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

EnvState* envState(Napi::Env env) { return env.GetInstanceData<EnvState>(); }

Napi::Value RunPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred early = Napi::Promise::Deferred::New(env);
  std::unique_ptr<NativeJob> nj;
  try {
    if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray()) bad("runPlan(job)", "a plan job object", info[0]);
    Napi::Object o = info[0].As<Napi::Object>();
    const int32_t threads = intField(o, "numThreads", 1, 1 << 20);
    Job parsed;
    Lengths len;
    batchlab::JobInputs inputs;
    std::vector<Napi::Reference<Napi::Value>> keep;
    batchlab::readJob(env, o, batchlab::Limits{}, true, parsed, len, inputs, [&](napi_value v) { keep.push_back(Napi::Persistent(Napi::Value(env, v))); });
    const int32_t n = parsed.n;
    nj.reset(new NativeJob(env, n, (int32_t)std::min<size_t>((size_t)threads, Pool::size()), envState(env)));
    nj->keep = std::move(keep);
    Job& job = nj->job;
    job = std::move(parsed);
    static std::atomic<uint64_t> jobs{0};
    job.id = ++jobs;
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
    nj->pinnedOutput = pinOutput(job.out);
    Napi::Promise promise = nj->deferred.Promise();
    Pool::instance().submit(nj.get());  // may throw (out of memory): then nothing was queued
    NativeJob* queued = nj.release();  // the pool owns it now; settle() deletes it
    // settle() runs on this thread, so not before this function has returned.
    if (st->inflight++ == 0) queued->completion.Ref(env);
    return promise;
  } catch (const batchlab::PlanFailure& f) {
    early.Reject(batchlab::planError(env, f).Value());
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
  o.Set("warpLanes", batchlab::warpLanesName());
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
// Either way memory is reused only once no JavaScript value can see it. A buffer too large for
// that budget (a batch of 256 images of 224 x 224 x 3 floats is 147 MiB) goes to a second list
// that holds the kKeepLarge largest such blocks: without it, every such batch was a fresh
// mapping, page-faulted and zeroed by the kernel. A request takes a block of that list of at
// most twice its size (the last, smaller batch of an epoch takes a full batch's block, so the
// next epoch still finds its blocks); the ArrayBuffer has the size asked for.
namespace {
constexpr size_t kKeepBytes = size_t(96) << 20;
constexpr size_t kKeepLarge = 2;
// Below every runtime's largest ArrayBuffer (Node 20: 4 GiB), so that creating one never fails
// for its size: a larger batch takes the caller's own allocation.
constexpr size_t kMaxOutputBytes = size_t(1) << 31;

// One buffer handed out. Its finalizer (Node runs it after the collector frees the buffer, or
// a task after releaseOutput detached it) gets this record as its hint.
struct Output {
  size_t bytes;     // the ArrayBuffer's size
  size_t capacity;  // the block's size (>= bytes: a block of the large list)
  void* data;
  uint64_t id;    // unique, never reused (records are looked up by it, not by address)
  bool released;  // releaseOutput already took the memory back: the finalizer only deletes this
};

std::mutex freeMu;
std::vector<std::pair<size_t, void*>> freeBlocks;  // (bytes, memory), few entries
size_t freeBytes = 0;
std::vector<std::pair<size_t, void*>> largeBlocks;  // (capacity, memory) beyond kKeepBytes: at most kKeepLarge
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
  void* drop = out->data;
  {
    std::lock_guard<std::mutex> lock(freeMu);
    if (out->capacity == out->bytes && freeBytes + out->bytes <= kKeepBytes) {
      freeBlocks.emplace_back(out->bytes, out->data);
      freeBytes += out->bytes;
      return;
    }
    largeBlocks.emplace_back(out->capacity, out->data);
    drop = nullptr;
    if (largeBlocks.size() > kKeepLarge) {  // let the smallest go
      auto smallest = std::min_element(largeBlocks.begin(), largeBlocks.end());
      drop = smallest->second;
      largeBlocks.erase(smallest);
    }
  }
  std::free(drop);  // outside the lock: unmapping a large block takes a while
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
  size_t capacity = bytes;
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
    size_t best = largeBlocks.size();
    for (size_t i = 0; !data && i < largeBlocks.size(); ++i) {
      const size_t cap = largeBlocks[i].first;
      if (cap >= bytes && cap / 2 <= bytes && (best == largeBlocks.size() || cap < largeBlocks[best].first)) best = i;
    }
    if (!data && best < largeBlocks.size()) {
      capacity = largeBlocks[best].first;
      data = largeBlocks[best].second;
      largeBlocks.erase(largeBlocks.begin() + (ptrdiff_t)best);
    }
  }
  if (!data) data = std::malloc(bytes);
  Output* out = data ? new (std::nothrow) Output{bytes, capacity, data, 0, false} : nullptr;
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
  batchlab::registerDecode(env, exports);  // decodeJpeg, jpegVersion (native/decode.cc)
  return exports;
}

}  // namespace

NODE_API_MODULE(batchlab_cpu, Init)
