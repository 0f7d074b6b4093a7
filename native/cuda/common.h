// batchlab_cuda, shared by its files: errors (every CUDA failure becomes a JavaScript
// exception: code ERR_CUDA with the CUDA error name, or ERR_CUDA_OOM with requestedBytes and
// freeBytes), availability (checked once, on first use), argument helpers, and the completion of
// asynchronous work (a stream callback posts to one thread-safe function, whose JS-thread side
// settles the promise and releases what the work kept alive).
#pragma once

#include <cuda_runtime_api.h>
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace blcuda {

std::string versionString(int v);
Napi::Error cudaError(Napi::Env env, cudaError_t e, const std::string& what);
Napi::Error plainError(Napi::Env env, const std::string& code, const std::string& msg);
Napi::Error oomError(Napi::Env env, const std::string& what, size_t requested, bool host);
// Throws unless e == cudaSuccess. checkAlloc: allocation failures become ERR_CUDA_OOM.
void check(Napi::Env env, cudaError_t e, const std::string& what);
void checkAlloc(Napi::Env env, cudaError_t e, const std::string& what, size_t bytes, bool host);

struct Availability {
  bool ok = false;
  std::string reason;
  int deviceCount = 0;
  int runtimeVersion = 0;
  int driverVersion = 0;
  int error = 0;
  std::string errorName;
};

const Availability& availability();
// Throws ERR_CUDA_UNAVAILABLE unless a usable device is there.
void requireDevice(Napi::Env env);

// Argument helpers (TypeScript validates options; these guard the native boundary).
double numberArg(Napi::Env env, const Napi::Value& v, const char* name, double lo, double hi);
size_t bytesArg(Napi::Env env, const Napi::Value& v, const char* name, double lo = 0);
struct HostSpan {
  uint8_t* data;
  size_t bytes;
};
HostSpan hostSpan(Napi::Env env, const Napi::Value& v, const char* name);

struct AddonData;
struct Pending;
void pendingOnJsThread(Napi::Env env, Napi::Function, AddonData* addon, Pending* p);
using Tsfn = Napi::TypedThreadSafeFunction<AddonData, Pending, pendingOnJsThread>;

struct AddonData {
  Tsfn tsfn;
  int pending = 0;
  Napi::FunctionReference streamCtor, eventCtor, bufferCtor;
};

struct Pending {
  Pending(Napi::Env env, AddonData* a, std::string w) : deferred(Napi::Promise::Deferred::New(env)), addon(a), what(std::move(w)) {}
  Napi::Promise::Deferred deferred;
  AddonData* addon;
  std::string what;
  std::vector<Napi::Reference<Napi::Value>> keep;  // JS objects the device work uses
  cudaEvent_t ev[3] = {nullptr, nullptr, nullptr};  // plan timings: start, copies done, kernel done
  bool timings = false;
  cudaError_t status = cudaSuccess;

  void destroyEvents() {
    for (cudaEvent_t& e : ev) {
      if (e) cudaEventDestroy(e);
      e = nullptr;
    }
  }
};

// Resolves p's promise once everything enqueued on `stream` so far has completed.
Napi::Promise whenDone(Napi::Env env, cudaStream_t stream, std::unique_ptr<Pending> p);

template <typename W>
W* unwrapAs(Napi::Env env, const Napi::Value& v, const Napi::FunctionReference& ctor, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor.Value())) {
    throw Napi::TypeError::New(env, std::string("expected a ") + what);
  }
  return W::Unwrap(v.As<Napi::Object>());
}

}  // namespace blcuda
