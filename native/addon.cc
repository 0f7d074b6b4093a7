// batchlab_cpu: the Node-API surface of the CPU engine. runPlan(job) validates the job on the
// JavaScript thread, then runs it on a process-wide thread pool and resolves a promise on the
// JavaScript thread when every sample is written. Nothing here aborts: every failure becomes a
// rejected promise or a thrown JavaScript error.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "plan.h"

namespace {

// One pool for the process: two loaders share it instead of each starting its own threads.
// Jobs enqueue up to numThreads worker tasks that pull samples from the job's counter, so
// concurrent jobs interleave in FIFO order rather than oversubscribing the cores.
class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static destructors
    return *pool;
  }
  size_t size() const { return workers_.size(); }
  void submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  Pool() {
    size_t n = std::max(1u, std::thread::hardware_concurrency());
    for (size_t i = 0; i < n; i++) {
      workers_.emplace_back([this] { loop(); });
      workers_.back().detach();
    }
  }
  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> tasks_;
  std::mutex mu_;
  std::condition_variable cv_;
};

struct Job {
  batchlab::PlanView plan;
  std::vector<Napi::Reference<Napi::Value>> keepAlive;  // the typed arrays stay alive until done
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction done;
  std::atomic<int32_t> next{0};
  std::atomic<int32_t> workersLeft{0};
  std::mutex errMu;
  std::string error;
  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

template <typename T>
const T* typedData(const Napi::Object& job, const char* field, size_t& length, Job& keep, Napi::Env env) {
  Napi::Value v = job.Get(field);
  napi_typedarray_type want = std::is_same<T, int32_t>::value ? napi_int32_array : std::is_same<T, float>::value ? napi_float32_array : napi_uint8_array;
  const char* name = want == napi_int32_array ? "Int32Array" : want == napi_float32_array ? "Float32Array" : "Uint8Array";
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
    throw Napi::TypeError::New(env, std::string(field) + ": expected a " + name);
  }
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  length = arr.ElementLength();
  keep.keepAlive.push_back(Napi::Persistent(v));
  return arr.Data();
}

int32_t intField(const Napi::Object& job, const char* field, Napi::Env env) {
  Napi::Value v = job.Get(field);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(field) + ": expected an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != (double)(int32_t)d) throw Napi::TypeError::New(env, std::string(field) + ": expected an integer, received " + std::to_string(d));
  return (int32_t)d;
}

void finish(Napi::Env env, Napi::Function, Job* job) {
  if (job->error.empty()) job->deferred.Resolve(env.Undefined());
  else job->deferred.Reject(Napi::Error::New(env, job->error).Value());
  job->done.Release();
  delete job;
}

Napi::Value RunPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<Job>(env);
  try {
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "runPlan(job): expected a plan job object");
    Napi::Object o = info[0].As<Napi::Object>();
    batchlab::PlanView& p = job->plan;
    p.n = intField(o, "n", env);
    p.inC = intField(o, "inC", env);
    p.outC = intField(o, "outC", env);
    p.outH = intField(o, "outH", env);
    p.outW = intField(o, "outW", env);
    p.K = intField(o, "K", env);
    int32_t threads = intField(o, "numThreads", env);
    if (threads < 1) throw Napi::RangeError::New(env, "numThreads: expected an integer >= 1, received " + std::to_string(threads));
    Napi::Value srcs = o.Get("sources");
    if (!srcs.IsArray()) throw Napi::TypeError::New(env, "sources: expected an array of Uint8Array");
    Napi::Array arr = srcs.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value s = arr.Get(i);
      if (!s.IsTypedArray() || s.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        throw Napi::TypeError::New(env, "sources[" + std::to_string(i) + "]: expected a Uint8Array");
      }
      auto u8 = s.As<Napi::Uint8Array>();
      p.sources.push_back(u8.Data());
      p.sourceBytes.push_back(u8.ElementLength());
      job->keepAlive.push_back(Napi::Persistent(s));
    }
    size_t dimsLen, tapLen, wLen, fillLen, progLen, offLen, paramLen, outLen;
    p.srcDims = typedData<int32_t>(o, "srcDims", dimsLen, *job, env);
    if (dimsLen != 2 * (size_t)std::max(p.n, 0)) throw Napi::RangeError::New(env, "srcDims: expected length 2n = " + std::to_string(2 * (size_t)std::max(p.n, 0)) + ", received " + std::to_string(dimsLen));
    p.tapIndex = typedData<int32_t>(o, "tapIndex", tapLen, *job, env);
    p.tapWeight = typedData<float>(o, "tapWeight", wLen, *job, env);
    if (wLen != tapLen) throw Napi::RangeError::New(env, "tapWeight: expected the length of tapIndex (" + std::to_string(tapLen) + "), received " + std::to_string(wLen));
    p.fill = typedData<float>(o, "fill", fillLen, *job, env);
    const int32_t* prog = typedData<int32_t>(o, "program", progLen, *job, env);
    const int32_t* offs = typedData<int32_t>(o, "opOffsets", offLen, *job, env);
    p.program.assign(prog, prog + progLen);
    p.opOffsets.assign(offs, offs + offLen);
    p.params = typedData<float>(o, "params", paramLen, *job, env);
    p.paramsPerSample = p.n > 0 ? paramLen / p.n : 0;
    p.out = const_cast<float*>(typedData<float>(o, "out", outLen, *job, env));
    std::string problem = batchlab::validate(p, tapLen, fillLen, paramLen, outLen);
    if (!problem.empty()) throw Napi::RangeError::New(env, problem);
    // Derived facts for the fast paths.
    p.unitTaps = p.K == 1 && std::all_of(p.tapWeight, p.tapWeight + tapLen, [](float w) { return w == 1.0f; });
    p.affineOnly = std::all_of(p.program.begin(), p.program.end(), [](int32_t c) { return c == batchlab::kAffine; });
    int32_t C = p.inC, maxC = p.inC;
    for (size_t k = 0; k < p.program.size(); k++) {
      if (p.program[k] == batchlab::kGray && p.n > 0) C = (int32_t)p.params[p.opOffsets[k] + 1];
      maxC = std::max(maxC, C);
    }
    p.maxChannels = maxC;
    if (p.n == 0) {
      job->deferred.Resolve(env.Undefined());
      return job->deferred.Promise();
    }
    const int32_t workers = std::min<int32_t>({threads, p.n, (int32_t)Pool::get().size()});
    job->workersLeft = workers;
    job->done = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "batchlab.runPlan", 0, 1);
    Job* raw = job.release();
    Napi::Promise promise = raw->deferred.Promise();
    for (int32_t w = 0; w < workers; w++) {
      Pool::get().submit([raw] {
        batchlab::Scratch scratch;
        for (;;) {
          const int32_t s = raw->next.fetch_add(1);
          if (s >= raw->plan.n) break;
          try {
            batchlab::runSample(raw->plan, s, scratch);
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(raw->errMu);
            if (raw->error.empty()) raw->error = std::string("sample ") + std::to_string(s) + ": " + e.what();
          }
        }
        if (raw->workersLeft.fetch_sub(1) == 1) raw->done.NonBlockingCall(raw, finish);
      });
    }
    return promise;
  } catch (const Napi::Error& e) {
    job->deferred.Reject(e.Value());
    return job->deferred.Promise();
  }
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", "0.1.0");
  o.Set("threads", (double)Pool::get().size());
#if defined(__AVX2__)
  o.Set("simd", "avx2");
#elif defined(__SSE4_2__)
  o.Set("simd", "sse4.2");
#else
  o.Set("simd", "sse2");
#endif
#if defined(__clang__)
  o.Set("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
  o.Set("compiler", "g++ " __VERSION__);
#else
  o.Set("compiler", "unknown");
#endif
  return o;
}

Napi::Value PoolSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)Pool::get().size()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("runPlan", Napi::Function::New(env, RunPlan));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("poolSize", Napi::Function::New(env, PoolSize));
  return exports;
}

}  // namespace

NODE_API_MODULE(batchlab_cpu, Init)
