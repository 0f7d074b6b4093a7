// batchlab_cuda: errors, availability, argument helpers, completion of asynchronous work (common.h).
#include "common.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>

namespace blcuda {

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
static double hostAvailableBytes() {
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

size_t bytesArg(Napi::Env env, const Napi::Value& v, const char* name, double lo) {
  return (size_t)numberArg(env, v, name, lo, 9007199254740991.0);
}


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
// Completion of asynchronous work


static void CUDART_CB onStreamCallback(cudaStream_t, cudaError_t status, void* userData) {
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

}  // namespace blcuda
