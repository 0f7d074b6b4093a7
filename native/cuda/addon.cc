// batchlab_cuda: the CUDA part of batchlab's native addon (a separate .node so that the CPU
// addon never depends on CUDA). Small surface: availability and device info, pinned host
// buffers, streams, events, device buffers, async copies, and the fused plan kernel.
//
// Every CUDA failure becomes a JavaScript exception (or a rejected promise for work that fails
// on the device): code ERR_CUDA with the CUDA error name, or ERR_CUDA_OOM with requestedBytes
// and freeBytes for allocation failures. Nothing here aborts the process.
//
// Completion of asynchronous work: a stream callback (cudaStreamAddCallback, which also
// reports device errors) posts to one thread-safe function; its JS-thread side resolves the
// promise and releases the JS objects the work kept alive. The thread-safe function is
// referenced only while work is pending, so idle streams never keep Node's event loop alive.
#include <cuda_runtime_api.h>
#include <napi.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "job.h"
#include "launch.h"

namespace blcuda {
namespace {

// ---------------------------------------------------------------------------------------------
// Errors

std::string versionString(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

Napi::Error cudaError(Napi::Env env, cudaError_t e, const std::string& what) {
  Napi::Error err = Napi::Error::New(env, what + " failed: " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
  err.Value().Set("code", Napi::String::New(env, "ERR_CUDA"));
  err.Value().Set("cudaError", Napi::Number::New(env, (double)e));
  err.Value().Set("cudaErrorName", Napi::String::New(env, cudaGetErrorName(e)));
  return err;
}

Napi::Error plainError(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Value().Set("code", Napi::String::New(env, code));
  return err;
}

// MemAvailable from /proc/meminfo (bytes), for pinned allocation failures.
double hostAvailableBytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024.0;
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (double)pages * (double)size : 0.0;
}

Napi::Error oomError(Napi::Env env, const std::string& what, size_t requested, bool host) {
  double freeBytes = 0;
  if (host) {
    freeBytes = hostAvailableBytes();
  } else {
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) == cudaSuccess) freeBytes = (double)f;
    cudaGetLastError();
  }
  char msg[512];
  std::snprintf(msg, sizeof msg, "CUDA out of memory: %s of %.0f bytes failed; %.0f bytes free%s", what.c_str(),
                (double)requested, freeBytes, host ? " in host memory" : " on the device");
  Napi::Error err = plainError(env, "ERR_CUDA_OOM", msg);
  err.Value().Set("requestedBytes", Napi::Number::New(env, (double)requested));
  err.Value().Set("freeBytes", Napi::Number::New(env, freeBytes));
  err.Value().Set("what", Napi::String::New(env, what));
  return err;
}

// Throws unless e == cudaSuccess. Allocation failures (allocation = true) become ERR_CUDA_OOM.
void check(Napi::Env env, cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that the next call starts clean
  throw cudaError(env, e, what);
}

void checkAlloc(Napi::Env env, cudaError_t e, const std::string& what, size_t bytes, bool host) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  if (e == cudaErrorMemoryAllocation) throw oomError(env, what, bytes, host);
  throw cudaError(env, e, what + " of " + std::to_string(bytes) + " bytes");
}

// ---------------------------------------------------------------------------------------------
// Availability (checked once, on first use; loading the addon makes no CUDA call)

struct Availability {
  bool ok = false;
  std::string reason;
  int deviceCount = 0;
  int runtimeVersion = 0;
  int driverVersion = 0;
  int error = 0;
  std::string errorName;
};

const Availability& availability() {
  static std::once_flag once;
  static Availability a;
  std::call_once(once, [] {
    cudaRuntimeGetVersion(&a.runtimeVersion);
    if (cudaDriverGetVersion(&a.driverVersion) != cudaSuccess) a.driverVersion = 0;
    cudaGetLastError();
    const cudaError_t e = cudaGetDeviceCount(&a.deviceCount);
    cudaGetLastError();
    a.error = (int)e;
    a.errorName = cudaGetErrorName(e);
    const std::string detail = std::string(" (") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e) + ")";
    const std::string rt = versionString(a.runtimeVersion);
    if (e == cudaSuccess && a.deviceCount > 0) {
      // Kernels are built for sm_80 and sm_90 (+ compute_90 PTX): compute capability 8.0 or newer.
      int major = 0, minor = 0;
      int usable = 0;
      std::string old;
      for (int i = 0; i < a.deviceCount; ++i) {
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, i);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, i);
        if (major >= 8) ++usable;
        else if (old.empty()) old = "device " + std::to_string(i) + " has compute capability " + std::to_string(major) + "." + std::to_string(minor);
      }
      cudaGetLastError();
      if (usable == 0) {
        a.deviceCount = 0;
        a.reason = "no CUDA device with compute capability 8.0 or newer, which this build's kernels need (" + old + ")";
        return;
      }
      a.ok = true;
      a.reason = std::to_string(a.deviceCount) + " CUDA device(s), driver " + versionString(a.driverVersion) +
                 ", runtime " + rt;
      return;
    }
    a.deviceCount = 0;
    if (e == cudaSuccess) {
      a.reason = "no CUDA device found (the driver reports 0 devices)";
    } else if (e == cudaErrorNoDevice) {
      a.reason = "no CUDA device found" + detail;
    } else if (e == cudaErrorInsufficientDriver && a.driverVersion == 0) {
      a.reason = "no NVIDIA driver found: libcuda could not be loaded, so there is no usable CUDA device (the CUDA " +
                 rt + " runtime needs an NVIDIA driver)" + detail;
    } else if (e == cudaErrorInsufficientDriver) {
      a.reason = "the NVIDIA driver supports CUDA " + versionString(a.driverVersion) +
                 ", older than the CUDA " + rt + " runtime this addon was built with; no usable device" + detail;
    } else if (e == cudaErrorStubLibrary) {
      a.reason = "only the CUDA driver stub library was found, not a real NVIDIA driver; no usable device" + detail;
    } else if (e == cudaErrorDevicesUnavailable) {
      a.reason = "every CUDA device is busy or unavailable (exclusive or prohibited compute mode)" + detail;
    } else {
      a.reason = "cudaGetDeviceCount failed, no usable CUDA device" + detail;
    }
  });
  return a;
}

void requireDevice(Napi::Env env) {
  const Availability& a = availability();
  if (!a.ok) throw plainError(env, "ERR_CUDA_UNAVAILABLE", "CUDA is unavailable: " + a.reason);
}

// ---------------------------------------------------------------------------------------------
// Argument helpers (TypeScript validates options; these guard the native boundary)

double numberArg(Napi::Env env, const Napi::Value& v, const char* name, double lo, double hi) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= lo && d <= hi) || d != std::floor(d)) {
    throw Napi::TypeError::New(env, std::string(name) + ": expected an integer in [" + std::to_string((long long)lo) +
                                        ", " + std::to_string((long long)hi) + "]");
  }
  return d;
}

size_t bytesArg(Napi::Env env, const Napi::Value& v, const char* name, double lo = 0) {
  return (size_t)numberArg(env, v, name, lo, 9007199254740991.0);
}

struct HostSpan {
  uint8_t* data;
  size_t bytes;
};

HostSpan hostSpan(Napi::Env env, const Napi::Value& v, const char* name) {
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
    if (base == nullptr && t.ByteLength() > 0) throw Napi::TypeError::New(env, std::string(name) + ": detached buffer");
    return {base ? base + t.ByteOffset() : nullptr, t.ByteLength()};
  }
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  throw Napi::TypeError::New(env, std::string(name) + ": expected a typed array or an ArrayBuffer");
}

// ---------------------------------------------------------------------------------------------
// Pinned host memory: ArrayBuffers over cudaHostAlloc memory. Freed by free() or, failing
// that, by the ArrayBuffer's finalizer. The registry lets runPlan copy straight from pinned
// sources and lets JS ask whether a view is pinned.

struct PinnedRec {
  void* ptr;
  size_t bytes;
  bool freed;
};

std::mutex g_pinMu;
std::map<uintptr_t, PinnedRec*> g_pinned;  // by start address; only live allocations

// The live pinned allocation containing [p, p+bytes), or nullptr. Caller holds g_pinMu.
PinnedRec* pinnedContaining(const void* p, size_t bytes) {
  const uintptr_t a = (uintptr_t)p;
  auto it = g_pinned.upper_bound(a);
  if (it == g_pinned.begin()) return nullptr;
  --it;
  PinnedRec* r = it->second;
  if (a + bytes <= it->first + r->bytes) return r;
  return nullptr;
}

void finalizePinned(Napi::Env, void*, PinnedRec* rec) {
  {
    std::lock_guard<std::mutex> lock(g_pinMu);
    if (!rec->freed) {
      g_pinned.erase((uintptr_t)rec->ptr);
      rec->freed = true;
      cudaFreeHost(rec->ptr);
      cudaGetLastError();
    }
  }
  delete rec;
}

Napi::Value PinnedAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  const size_t bytes = bytesArg(env, info[0], "bytes", 1);
  void* p = nullptr;
  checkAlloc(env, cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "pinned host allocation (cudaHostAlloc)", bytes,
             true);
  PinnedRec* rec = new PinnedRec{p, bytes, false};
  {
    std::lock_guard<std::mutex> lock(g_pinMu);
    g_pinned[(uintptr_t)p] = rec;
  }
  return Napi::ArrayBuffer::New(env, p, bytes, finalizePinned, rec);
}

Napi::Value PinnedFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer: expected an ArrayBuffer from pinned()");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return Napi::Boolean::New(env, false);  // already freed
  {
    std::lock_guard<std::mutex> lock(g_pinMu);
    auto it = g_pinned.find((uintptr_t)ab.Data());
    if (it == g_pinned.end() || it->second->bytes != ab.ByteLength()) {
      throw Napi::TypeError::New(env, "buffer: not a pinned buffer allocated by this addon");
    }
    PinnedRec* rec = it->second;
    g_pinned.erase(it);
    rec->freed = true;
    const cudaError_t e = cudaFreeHost(rec->ptr);
    if (e != cudaSuccess) cudaGetLastError();
  }
  ab.Detach();  // JS can no longer touch the freed memory; the finalizer sees freed = true
  return Napi::Boolean::New(env, true);
}

Napi::Value IsPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HostSpan h = hostSpan(env, info[0], "view");
  std::lock_guard<std::mutex> lock(g_pinMu);
  return Napi::Boolean::New(env, h.data != nullptr && pinnedContaining(h.data, h.bytes) != nullptr);
}

// ---------------------------------------------------------------------------------------------
// Completion of asynchronous work

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

void CUDART_CB onStreamCallback(cudaStream_t, cudaError_t status, void* userData) {
  // A CUDA thread: no CUDA calls, no JS. Hand over to the JS thread.
  Pending* p = static_cast<Pending*>(userData);
  p->status = status;
  if (p->addon->tsfn.NonBlockingCall(p) != napi_ok) {
    // The environment is shutting down: nobody is waiting any more. Leak p rather than
    // touch JS references from this thread.
  }
}

void pendingOnJsThread(Napi::Env env, Napi::Function, AddonData* addon, Pending* p) {
  if (static_cast<napi_env>(env) == nullptr || p == nullptr) return;  // teardown
  std::unique_ptr<Pending> own(p);
  if (--addon->pending == 0) addon->tsfn.Unref(env);
  Napi::HandleScope scope(env);
  try {
    if (p->status != cudaSuccess) {
      p->deferred.Reject(cudaError(env, p->status, p->what).Value());
    } else if (p->timings) {
      float copyMs = 0, kernelMs = 0;
      check(env, cudaEventElapsedTime(&copyMs, p->ev[0], p->ev[1]), "cudaEventElapsedTime");
      check(env, cudaEventElapsedTime(&kernelMs, p->ev[1], p->ev[2]), "cudaEventElapsedTime");
      Napi::Object r = Napi::Object::New(env);
      r.Set("copyMs", Napi::Number::New(env, copyMs));
      r.Set("kernelMs", Napi::Number::New(env, kernelMs));
      p->deferred.Resolve(r);
    } else {
      p->deferred.Resolve(env.Undefined());
    }
  } catch (const Napi::Error& e) {
    try {
      p->deferred.Reject(e.Value());
    } catch (...) {
      // Nothing more can be done from a callback; never let an exception reach Node.
    }
  } catch (...) {
  }
  p->destroyEvents();
}

// Resolves p's promise once everything enqueued on `stream` so far has completed.
Napi::Promise whenDone(Napi::Env env, cudaStream_t stream, std::unique_ptr<Pending> p) {
  AddonData* addon = p->addon;
  Napi::Promise promise = p->deferred.Promise();
  const cudaError_t e = cudaStreamAddCallback(stream, onStreamCallback, p.get(), 0);
  if (e != cudaSuccess) {
    p->destroyEvents();
    check(env, e, "cudaStreamAddCallback");
  }
  p.release();
  if (addon->pending++ == 0) addon->tsfn.Ref(env);
  return promise;
}

// ---------------------------------------------------------------------------------------------
// Stream

class StreamW : public Napi::ObjectWrap<StreamW> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Stream",
                       {InstanceMethod<&StreamW::Synchronize>("synchronize"), InstanceMethod<&StreamW::Query>("query"),
                        InstanceMethod<&StreamW::Done>("done"), InstanceMethod<&StreamW::Destroy>("destroy"),
                        InstanceAccessor<&StreamW::Destroyed>("destroyed")});
  }

  explicit StreamW(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamW>(info) {
    Napi::Env env = info.Env();
    requireDevice(env);
    check(env, cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  ~StreamW() override { release(); }

  cudaStream_t handle(Napi::Env env) const {
    if (!s_) throw plainError(env, "ERR_CUDA", "the stream was destroyed");
    return s_;
  }

  // Staging and device memory that runPlan reuses across the batches of this stream.
  struct Slot {
    uint8_t* host = nullptr;
    size_t cap = 0;
    cudaEvent_t consumed = nullptr;  // recorded after the copy that reads `host`
    bool used = false;
  };

  // A pinned staging slot of at least `bytes`, free to overwrite (waits for its last copy).
  Slot& staging(Napi::Env env, size_t bytes) {
    Slot& slot = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    if (!slot.consumed) check(env, cudaEventCreateWithFlags(&slot.consumed, cudaEventDisableTiming), "cudaEventCreate");
    if (slot.used) {
      check(env, cudaEventSynchronize(slot.consumed), "cudaEventSynchronize (staging reuse)");
      slot.used = false;
    }
    if (slot.cap < bytes) {
      if (slot.host) cudaFreeHost(slot.host);
      slot.host = nullptr;
      slot.cap = 0;
      const size_t want = bytes + bytes / 4;
      void* p = nullptr;
      cudaError_t e = cudaHostAlloc(&p, want, cudaHostAllocPortable);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
        if (e == cudaSuccess) slot.cap = bytes;
      } else if (e == cudaSuccess) {
        slot.cap = want;
      }
      checkAlloc(env, e, "pinned staging allocation for runPlan (cudaHostAlloc)", bytes, true);
      slot.host = static_cast<uint8_t*>(p);
    }
    return slot;
  }

  // A device arena of at least `bytes`. Growing waits for this stream's earlier work.
  uint8_t* arena(Napi::Env env, size_t bytes) {
    if (arenaCap_ >= bytes) return arena_;
    if (arena_) {
      check(env, cudaStreamSynchronize(s_), "cudaStreamSynchronize (arena growth)");
      cudaFree(arena_);
      arena_ = nullptr;
      arenaCap_ = 0;
    }
    const size_t want = bytes + bytes / 4;
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, want);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      e = cudaMalloc(&p, bytes);
      if (e == cudaSuccess) arenaCap_ = bytes;
    } else if (e == cudaSuccess) {
      arenaCap_ = want;
    }
    checkAlloc(env, e, "device job arena for runPlan (cudaMalloc)", bytes, false);
    arena_ = static_cast<uint8_t*>(p);
    return arena_;
  }

 private:
  static constexpr int kSlots = 2;

  Napi::Value Synchronize(const Napi::CallbackInfo& info) {
    check(info.Env(), cudaStreamSynchronize(handle(info.Env())), "cudaStreamSynchronize");
    return info.Env().Undefined();
  }
  Napi::Value Query(const Napi::CallbackInfo& info) {
    const cudaError_t e = cudaStreamQuery(handle(info.Env()));
    if (e == cudaErrorNotReady) return Napi::Boolean::New(info.Env(), false);
    check(info.Env(), e, "cudaStreamQuery");
    return Napi::Boolean::New(info.Env(), true);
  }
  Napi::Value Done(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto p = std::make_unique<Pending>(env, env.GetInstanceData<AddonData>(), "work on a stream");
    p->keep.push_back(Napi::Persistent(Napi::Value(info.This())));
    return whenDone(env, handle(env), std::move(p));
  }
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (s_) check(info.Env(), cudaStreamSynchronize(s_), "cudaStreamSynchronize (destroy)");
    release();
    return info.Env().Undefined();
  }
  Napi::Value Destroyed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), s_ == nullptr); }

  void release() noexcept {
    if (!s_) return;
    cudaStreamSynchronize(s_);
    for (Slot& slot : slots_) {
      if (slot.consumed) cudaEventDestroy(slot.consumed);
      if (slot.host) cudaFreeHost(slot.host);
      slot = Slot{};
    }
    if (arena_) cudaFree(arena_);
    arena_ = nullptr;
    arenaCap_ = 0;
    cudaStreamDestroy(s_);
    s_ = nullptr;
    cudaGetLastError();
  }

  cudaStream_t s_ = nullptr;
  Slot slots_[kSlots];
  int next_ = 0;
  uint8_t* arena_ = nullptr;
  size_t arenaCap_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Event

class EventW : public Napi::ObjectWrap<EventW> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Event",
                       {InstanceMethod<&EventW::Record>("record"), InstanceMethod<&EventW::Query>("query"),
                        InstanceMethod<&EventW::Synchronize>("synchronize"),
                        InstanceMethod<&EventW::ElapsedSince>("elapsedSince"),
                        InstanceMethod<&EventW::Destroy>("destroy")});
  }
  explicit EventW(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventW>(info) {
    Napi::Env env = info.Env();
    requireDevice(env);
    const bool timing = info.Length() < 1 || !info[0].IsBoolean() || info[0].As<Napi::Boolean>().Value();
    check(env, cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
  }
  ~EventW() override {
    if (e_) cudaEventDestroy(e_);
  }
  cudaEvent_t handle(Napi::Env env) const {
    if (!e_) throw plainError(env, "ERR_CUDA", "the event was destroyed");
    return e_;
  }

 private:
  Napi::Value Record(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info) {
    const cudaError_t e = cudaEventQuery(handle(info.Env()));
    if (e == cudaErrorNotReady) return Napi::Boolean::New(info.Env(), false);
    check(info.Env(), e, "cudaEventQuery");
    return Napi::Boolean::New(info.Env(), true);
  }
  Napi::Value Synchronize(const Napi::CallbackInfo& info) {
    check(info.Env(), cudaEventSynchronize(handle(info.Env())), "cudaEventSynchronize");
    return info.Env().Undefined();
  }
  Napi::Value ElapsedSince(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (e_) cudaEventDestroy(e_);
    e_ = nullptr;
    return info.Env().Undefined();
  }
  cudaEvent_t e_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Device buffer

class DeviceBufferW : public Napi::ObjectWrap<DeviceBufferW> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "DeviceBuffer",
                       {InstanceMethod<&DeviceBufferW::Free>("free"), InstanceAccessor<&DeviceBufferW::Bytes>("bytes"),
                        InstanceAccessor<&DeviceBufferW::Freed>("freed")});
  }
  explicit DeviceBufferW(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBufferW>(info) {
    Napi::Env env = info.Env();
    requireDevice(env);
    const size_t bytes = bytesArg(env, info[0], "bytes", 1);
    void* p = nullptr;
    checkAlloc(env, cudaMalloc(&p, bytes), "device allocation (cudaMalloc)", bytes, false);
    p_ = static_cast<uint8_t*>(p);
    bytes_ = bytes;
  }
  ~DeviceBufferW() override {
    if (p_) cudaFree(p_);
  }
  uint8_t* ptr(Napi::Env env) const {
    if (!p_) throw plainError(env, "ERR_CUDA", "the device buffer was freed");
    return p_;
  }
  size_t bytes() const { return bytes_; }

 private:
  Napi::Value Free(const Napi::CallbackInfo& info) {
    if (p_) check(info.Env(), cudaFree(p_), "cudaFree");
    p_ = nullptr;
    return info.Env().Undefined();
  }
  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)bytes_); }
  Napi::Value Freed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), p_ == nullptr); }
  uint8_t* p_ = nullptr;
  size_t bytes_ = 0;
};

template <typename W>
W* unwrapAs(Napi::Env env, const Napi::Value& v, const Napi::FunctionReference& ctor, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor.Value())) {
    throw Napi::TypeError::New(env, std::string("expected a ") + what);
  }
  return W::Unwrap(v.As<Napi::Object>());
}

Napi::Value EventW::Record(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* a = env.GetInstanceData<AddonData>();
  StreamW* s = unwrapAs<StreamW>(env, info[0], a->streamCtor, "Stream");
  check(env, cudaEventRecord(handle(env), s->handle(env)), "cudaEventRecord");
  return env.Undefined();
}

Napi::Value EventW::ElapsedSince(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* a = env.GetInstanceData<AddonData>();
  EventW* start = unwrapAs<EventW>(env, info[0], a->eventCtor, "Event");
  float ms = 0;
  check(env, cudaEventElapsedTime(&ms, start->handle(env), handle(env)), "cudaEventElapsedTime");
  return Napi::Number::New(env, ms);
}

// ---------------------------------------------------------------------------------------------
// Functions

Napi::Value Available(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Availability& a = availability();
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", a.ok);
  r.Set("reason", a.reason);
  r.Set("deviceCount", a.deviceCount);
  r.Set("runtimeVersion", versionString(a.runtimeVersion));
  r.Set("driverVersion", a.driverVersion ? versionString(a.driverVersion) : std::string(""));
  r.Set("error", a.errorName);
  return r;
}

Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  const Availability& a = availability();
  Napi::Array out = Napi::Array::New(env, (size_t)a.deviceCount);
  for (int i = 0; i < a.deviceCount; ++i) {
    cudaDeviceProp p;
    check(env, cudaGetDeviceProperties(&p, i), "cudaGetDeviceProperties(" + std::to_string(i) + ")");
    int memClock = 0;
    if (cudaDeviceGetAttribute(&memClock, cudaDevAttrMemoryClockRate, i) != cudaSuccess) {
      memClock = 0;
      cudaGetLastError();
    }
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", i);
    d.Set("name", std::string(p.name));
    d.Set("totalMemory", (double)p.totalGlobalMem);
    Napi::Array cc = Napi::Array::New(env, 2);
    cc.Set(0u, p.major);
    cc.Set(1u, p.minor);
    d.Set("computeCapability", cc);
    d.Set("multiprocessors", p.multiProcessorCount);
    d.Set("memoryBusWidth", p.memoryBusWidth);
    d.Set("memoryClockKHz", memClock);
    out.Set((uint32_t)i, d);
  }
  return out;
}

Napi::Value MemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  size_t f = 0, t = 0;
  check(env, cudaMemGetInfo(&f, &t), "cudaMemGetInfo");
  Napi::Object r = Napi::Object::New(env);
  r.Set("free", (double)f);
  r.Set("total", (double)t);
  return r;
}

Napi::Value SetDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  const int i = (int)numberArg(env, info[0], "index", 0, availability().deviceCount - 1);
  check(env, cudaSetDevice(i), "cudaSetDevice(" + std::to_string(i) + ")");
  return env.Undefined();
}

Napi::Value GetDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  int i = 0;
  check(env, cudaGetDevice(&i), "cudaGetDevice");
  return Napi::Number::New(env, i);
}

// copy(stream, toDevice, deviceBuffer, deviceOffset, hostView, track) -> Promise | undefined
// With track = false the caller keeps hostView alive until the stream has passed the copy.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  AddonData* a = env.GetInstanceData<AddonData>();
  StreamW* st = unwrapAs<StreamW>(env, info[0], a->streamCtor, "Stream");
  const bool toDevice = info[1].ToBoolean().Value();
  DeviceBufferW* buf = unwrapAs<DeviceBufferW>(env, info[2], a->bufferCtor, "DeviceBuffer");
  const size_t off = bytesArg(env, info[3], "deviceOffset");
  HostSpan h = hostSpan(env, info[4], "host");
  const bool track = info.Length() < 6 || info[5].ToBoolean().Value();
  if (off > buf->bytes() || h.bytes > buf->bytes() - off) {
    throw Napi::RangeError::New(env, "copy of " + std::to_string(h.bytes) + " bytes at device offset " +
                                         std::to_string(off) + " overruns a device buffer of " +
                                         std::to_string(buf->bytes()) + " bytes");
  }
  cudaStream_t s = st->handle(env);
  uint8_t* dev = buf->ptr(env) + off;
  if (h.bytes > 0) {
    check(env,
          toDevice ? cudaMemcpyAsync(dev, h.data, h.bytes, cudaMemcpyHostToDevice, s)
                   : cudaMemcpyAsync(h.data, dev, h.bytes, cudaMemcpyDeviceToHost, s),
          toDevice ? "cudaMemcpyAsync (host to device)" : "cudaMemcpyAsync (device to host)");
  }
  if (!track) return env.Undefined();
  auto p = std::make_unique<Pending>(env, a, toDevice ? "host-to-device copy" : "device-to-host copy");
  p->keep.push_back(Napi::Persistent(info[0]));
  p->keep.push_back(Napi::Persistent(info[2]));
  p->keep.push_back(Napi::Persistent(info[4]));
  return whenDone(env, s, std::move(p));
}

// If every source lies in one pinned allocation and their span is not much larger than the
// pixels themselves, returns true with the span; runPlan then copies it straight from there.
bool pinnedSpan(const HostJob& hj, const uint8_t** start, size_t* bytes) {
  if (hj.srcData.empty()) return false;
  std::lock_guard<std::mutex> lock(g_pinMu);
  PinnedRec* rec = nullptr;
  const uint8_t* lo = nullptr;
  const uint8_t* hi = nullptr;
  for (size_t s = 0; s < hj.srcData.size(); ++s) {
    PinnedRec* r = pinnedContaining(hj.srcData[s], hj.srcBytes[s]);
    if (r == nullptr || (rec != nullptr && r != rec)) return false;
    rec = r;
    const uint8_t* a = hj.srcData[s];
    const uint8_t* b = a + hj.srcBytes[s];
    if (!lo || a < lo) lo = a;
    if (!hi || b > hi) hi = b;
  }
  const size_t span = (size_t)(hi - lo);
  if (span > 2 * hj.pixelBytes + (1u << 20)) return false;
  *start = lo;
  *bytes = span;
  return true;
}

struct EventSet {
  cudaEvent_t ev[3] = {nullptr, nullptr, nullptr};
  ~EventSet() {
    for (cudaEvent_t e : ev)
      if (e) cudaEventDestroy(e);
  }
};

// runPlan(job, deviceBuffer, stream) -> Promise<{copyMs, kernelMs}>
Napi::Value RunPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* a = env.GetInstanceData<AddonData>();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "job: expected a plan job object");
  HostJob hj = parseJob(env, info[0].As<Napi::Object>());  // a bad job is refused with or without a device
  requireDevice(env);
  DeviceBufferW* out = unwrapAs<DeviceBufferW>(env, info[1], a->bufferCtor, "DeviceBuffer (output)");
  StreamW* st = unwrapAs<StreamW>(env, info[2], a->streamCtor, "Stream");
  const size_t outBytes = hj.outElements * sizeof(float);
  if (out->bytes() < outBytes) {
    throw Napi::RangeError::New(env, "output: the batch needs n*outC*outH*outW*4 = " + std::to_string(outBytes) +
                                         " bytes, the device buffer has " + std::to_string(out->bytes()));
  }
  float* outPtr = reinterpret_cast<float*>(out->ptr(env));
  cudaStream_t s = st->handle(env);

  const uint8_t* spanStart = nullptr;
  size_t spanBytes = 0;
  const bool direct = pinnedSpan(hj, &spanStart, &spanBytes);
  const size_t pixelBytes = direct ? spanBytes : hj.pixelBytes;
  const size_t stagingBytes = hj.metaBytes + (direct ? 0 : hj.pixelBytes);

  StreamW::Slot& slot = st->staging(env, stagingBytes > 0 ? stagingBytes : 1);
  std::vector<int64_t> offsets;
  if (direct) {
    offsets.resize(hj.srcData.size());
    for (size_t i = 0; i < offsets.size(); ++i) offsets[i] = (int64_t)(hj.srcData[i] - spanStart);
  } else {
    offsets = packPixels(hj, slot.host + hj.metaBytes);
  }
  packMeta(hj, slot.host, offsets);
  uint8_t* arena = st->arena(env, hj.metaBytes + pixelBytes > 0 ? hj.metaBytes + pixelBytes : 1);

  EventSet evs;
  for (cudaEvent_t& e : evs.ev) check(env, cudaEventCreate(&e), "cudaEventCreate");
  check(env, cudaEventRecord(evs.ev[0], s), "cudaEventRecord");
  check(env, cudaMemcpyAsync(arena, slot.host, stagingBytes, cudaMemcpyHostToDevice, s),
        "cudaMemcpyAsync (plan job to device)");
  if (direct && spanBytes > 0) {
    check(env, cudaMemcpyAsync(arena + hj.metaBytes, spanStart, spanBytes, cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync (pinned sources to device)");
  }
  check(env, cudaEventRecord(slot.consumed, s), "cudaEventRecord");
  slot.used = true;
  check(env, cudaEventRecord(evs.ev[1], s), "cudaEventRecord");
  const DevJob dj = bindJob(hj, arena, outPtr);
  check(env, launchPlan(dj, s), "plan kernel launch");
  check(env, cudaEventRecord(evs.ev[2], s), "cudaEventRecord");

  auto p = std::make_unique<Pending>(env, a, "plan kernel");
  p->timings = true;
  for (int i = 0; i < 3; ++i) {
    p->ev[i] = evs.ev[i];
    evs.ev[i] = nullptr;
  }
  p->keep.push_back(Napi::Persistent(info[1]));
  p->keep.push_back(Napi::Persistent(info[2]));
  if (direct) p->keep.push_back(Napi::Persistent(info[0].As<Napi::Object>().Get("sources")));
  return whenDone(env, s, std::move(p));
}

// emulatePlan(job) -> Float32Array: the kernel's code on the CPU (no device needed).
Napi::Value EmulatePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "job: expected a plan job object");
  HostJob hj = parseJob(env, info[0].As<Napi::Object>());
  std::vector<uint8_t> arena(hj.metaBytes + hj.pixelBytes + 1);
  std::vector<int64_t> offsets = packPixels(hj, arena.data() + hj.metaBytes);
  packMeta(hj, arena.data(), offsets);
  Napi::Float32Array out = Napi::Float32Array::New(env, hj.outElements);
  emulatePlan(bindJob(hj, arena.data(), out.Data()));
  return out;
}

// launchShape(job) -> {gridX, gridY, block}: how runPlan would launch this job.
Napi::Value LaunchShapeOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "job: expected a plan job object");
  HostJob hj = parseJob(env, info[0].As<Napi::Object>());
  const LaunchShape sh = planLaunchShape(hj.dev);
  Napi::Object r = Napi::Object::New(env);
  r.Set("gridX", sh.gridX);
  r.Set("gridY", sh.gridY);
  r.Set("block", sh.block);
  return r;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  AddonData* a = new AddonData();
  a->tsfn = Tsfn::New(env, "batchlab_cuda completion", 0, 1, a);
  a->tsfn.Unref(env);
  Napi::Function streamCtor = StreamW::Init(env);
  Napi::Function eventCtor = EventW::Init(env);
  Napi::Function bufferCtor = DeviceBufferW::Init(env);
  a->streamCtor = Napi::Persistent(streamCtor);
  a->eventCtor = Napi::Persistent(eventCtor);
  a->bufferCtor = Napi::Persistent(bufferCtor);
  env.SetInstanceData<AddonData>(a);

  exports.Set("available", Napi::Function::New(env, Available, "available"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("memInfo", Napi::Function::New(env, MemInfo, "memInfo"));
  exports.Set("setDevice", Napi::Function::New(env, SetDevice, "setDevice"));
  exports.Set("getDevice", Napi::Function::New(env, GetDevice, "getDevice"));
  exports.Set("pinnedAlloc", Napi::Function::New(env, PinnedAlloc, "pinnedAlloc"));
  exports.Set("pinnedFree", Napi::Function::New(env, PinnedFree, "pinnedFree"));
  exports.Set("isPinned", Napi::Function::New(env, IsPinned, "isPinned"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("runPlan", Napi::Function::New(env, RunPlan, "runPlan"));
  exports.Set("emulatePlan", Napi::Function::New(env, EmulatePlan, "emulatePlan"));
  exports.Set("launchShape", Napi::Function::New(env, LaunchShapeOf, "launchShape"));
  exports.Set("Stream", streamCtor);
  exports.Set("Event", eventCtor);
  exports.Set("DeviceBuffer", bufferCtor);
  Napi::Object build = Napi::Object::New(env);
  build.Set("cudaRuntime", versionString(CUDART_VERSION));
  build.Set("targets", "sm_80, sm_90, compute_90 (PTX)");
  exports.Set("build", build);
  return exports;
}

}  // namespace
}  // namespace blcuda

static Napi::Object InitBatchlabCuda(Napi::Env env, Napi::Object exports) { return blcuda::Init(env, exports); }

NODE_API_MODULE(batchlab_cuda, InitBatchlabCuda)
