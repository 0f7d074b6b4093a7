// JPEG decoding with libjpeg-turbo's jpeglib API, on the engine's worker pool.
//
//   decodeJpeg(requests) -> Promise<results>
//     requests: [{ data: Uint8Array, channels: 1|3|4, orientation?: 1..8, maxPixels?: number,
//                  window?: { left, top, width, height, scale: 1|2|4|8 } }, ...]
//     results:  [{ data: Uint8Array, width, height, channels, left, top, scale,
//                  fullWidth, fullHeight } | { error: string, offset: number }, ...]
//   jpegVersion: the libjpeg-turbo version the addon was built against (a string)
//
// The requests are read and checked on the JavaScript thread (a malformed request rejects the
// promise with a TypeError/RangeError naming it, code ERR_BATCHLAB_DECODE); the images are
// decoded by the pool's workers, one task for the batch, and the promise settles on the
// JavaScript thread through a thread-safe function. One image that fails does not fail the
// others: its result carries the decoder's message and the byte it had reached.
//
// libjpeg reports errors through error_exit, which must not return: it longjmps back to
// decodeJpeg, so a corrupt file never aborts the process. Warnings (corrupt data that libjpeg
// would patch over, a file that ends early) are errors here too, as sharp's default
// failOn: "warning" treats them. No C++ object with a destructor lives in a frame that a longjmp
// can skip: the decoder's state is plain memory freed on both paths.
#include "decode.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <vector>

#include "pool.h"

#ifdef BATCHLAB_WITH_JPEG
#include <csetjmp>
#include <cstdio>
#include <jpeglib.h>
#endif

namespace batchlab {

#ifdef BATCHLAB_WITH_JPEG
namespace {

struct Failure {
  jpeg_error_mgr pub;  // first: libjpeg sees a jpeg_error_mgr*
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void failExit(j_common_ptr c) {
  Failure* f = reinterpret_cast<Failure*>(c->err);
  f->message[0] = 0;
  c->err->format_message(c, f->message);
  longjmp(f->jump, 1);
}

// level -1 is a warning (corrupt data, premature end of file): an error here. Trace messages
// (level >= 0) are ignored.
void failMessage(j_common_ptr c, int level) {
  if (level < 0) failExit(c);
}

int64_t floorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceilDiv(int64_t a, int64_t b) { return -floorDiv(-a, b); }

// One axis of the shown image against the stored one. n: full length, s: scale; m = ceil(n/s)
// decoded pixels. Shown scaled pixel k covers shown full [origin + k*s, origin + (k+1)*s), where
// origin is 0 for a direct axis and n - m*s (in (-s, 0]) for a reversed one (the stored axis
// read backwards: its short last pixel comes first).
struct Axis {
  int64_t n = 0, m = 0;
  int s = 1;
  bool reversed = false;
  int64_t origin() const { return reversed ? n - m * s : 0; }
  // Shown scaled pixels [k0, k1) that cover shown full [a, b).
  void cover(int64_t a, int64_t b, int64_t& k0, int64_t& k1) const {
    k0 = std::max<int64_t>(0, floorDiv(a - origin(), s));
    k1 = std::min<int64_t>(m, ceilDiv(b - origin(), s));
    if (k1 <= k0) k1 = std::min<int64_t>(m, k0 + 1), k0 = k1 - 1;
  }
  // Stored scaled pixels of shown scaled [k0, k1), and back.
  void toStored(int64_t k0, int64_t k1, int64_t& j0, int64_t& j1) const {
    if (reversed) j0 = m - k1, j1 = m - k0;
    else j0 = k0, j1 = k1;
  }
};

// PIL's CMYK -> RGB (Convert.c cmyk2rgb): R = (255 - K) - C * (255 - K) / 255, with C, M, Y, K as
// ink amounts; Adobe's JPEGs store them inverted (255 = no ink), which libjpeg hands over as is.
inline uint8_t mulDiv255(int a, int b) {
  const int t = a * b + 128;
  return (uint8_t)((t + (t >> 8)) >> 8);
}

// PIL's RGB -> L (ITU-R 601-2 luma in 16-bit fixed point, Convert.c's L24), what
// Image.convert("L") gives for a colour JPEG; the JPEG's own Y plane differs where the RGB
// values clip (saturated colours, up to ~20 levels).
inline uint8_t luma(int r, int g, int b) { return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16); }

void grayRow(const uint8_t* in, uint8_t* out, int64_t w) {
  for (int64_t x = 0; x < w; ++x, in += 3) out[x] = luma(in[0], in[1], in[2]);
}

void cmykRow(const uint8_t* in, uint8_t* out, int64_t w, int channels, bool inverted) {
  for (int64_t x = 0; x < w; ++x, in += 4) {
    const int c = inverted ? in[0] : 255 - in[0];
    const int m = inverted ? in[1] : 255 - in[1];
    const int y = inverted ? in[2] : 255 - in[2];
    const int k = inverted ? in[3] : 255 - in[3];
    const uint8_t r = mulDiv255(c, k), g = mulDiv255(m, k), b = mulDiv255(y, k);
    if (channels == 1) {
      *out++ = luma(r, g, b);  // as for every other colour JPEG
    } else {
      *out++ = r, *out++ = g, *out++ = b;
      if (channels == 4) *out++ = 255;
    }
  }
}

// Everything the decoder allocates, freed on success and on failure alike.
struct Work {
  jpeg_decompress_struct cinfo;
  Failure err;
  bool created = false;
  uint8_t* region = nullptr;  // stored orientation, when the output is re-oriented
  uint8_t* row = nullptr;     // one CMYK or RGB scanline, converted into the output
  uint8_t* out = nullptr;
  uint8_t tail[256];          // a cropped row decoded in place: the end of the row above, kept
  ~Work() {
    if (created) jpeg_destroy_decompress(&cinfo);
    std::free(region);
    std::free(row);
    std::free(out);
  }
};

void* allocOrFail(Work* w, size_t bytes) {
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) {
    std::snprintf(w->err.message, sizeof w->err.message, "out of memory for %zu bytes of decoded pixels", bytes);
    longjmp(w->err.jump, 2);
  }
  return p;
}

}  // namespace

void decodeJpeg(const JpegRequest& req, JpegResult& res) {
  std::unique_ptr<Work> holder(new (std::nothrow) Work());
  if (!holder) {
    res.error = "out of memory for the decoder";
    return;
  }
  Work* w = holder.get();
  jpeg_decompress_struct* ci = &w->cinfo;
  ci->err = jpeg_std_error(&w->err.pub);
  w->err.pub.error_exit = failExit;
  w->err.pub.emit_message = failMessage;
  w->err.message[0] = 0;
  if (setjmp(w->err.jump)) {
    res.error = w->err.message[0] ? w->err.message : "libjpeg failed";
    res.offset = -1;
    if (w->created && ci->src) {
      const uint8_t* p = ci->src->next_input_byte;
      // At the end of the data libjpeg's memory source points at a fake EOI of its own.
      res.offset = (p >= req.data && p <= req.data + req.size) ? (int64_t)(p - req.data) : (int64_t)req.size;
    }
    return;  // holder frees everything
  }
  jpeg_create_decompress(ci);
  w->created = true;
  jpeg_mem_src(ci, req.data, (unsigned long)req.size);
  jpeg_read_header(ci, TRUE);
  const int64_t sw = ci->image_width, sh = ci->image_height;
  if ((double)sw * (double)sh > req.maxPixels) {
    std::snprintf(w->err.message, sizeof w->err.message, "the JPEG header declares %lld x %lld = %lld pixels, above maxPixels = %.0f", (long long)sw, (long long)sh, (long long)(sw * sh), req.maxPixels);
    longjmp(w->err.jump, 2);
  }
  const bool cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
  if (!cmyk && ci->jpeg_color_space != JCS_GRAYSCALE && ci->jpeg_color_space != JCS_YCbCr && ci->jpeg_color_space != JCS_RGB) {
    std::snprintf(w->err.message, sizeof w->err.message, "unsupported JPEG colour space (%d components of an unknown colour space)", ci->num_components);
    longjmp(w->err.jump, 2);
  }
  const int C = req.channels;
  // Gray output of a colour JPEG: RGB first, then PIL's luma (see luma()).
  const bool toGray = !cmyk && C == 1 && ci->jpeg_color_space != JCS_GRAYSCALE;
  ci->out_color_space = cmyk ? JCS_CMYK : toGray ? JCS_RGB : C == 1 ? JCS_GRAYSCALE : C == 3 ? JCS_RGB : JCS_EXT_RGBA;
  ci->dct_method = JDCT_ISLOW;
  ci->do_fancy_upsampling = TRUE;
  const int s = req.hasWindow ? req.scale : 1;
  ci->scale_num = 1;
  ci->scale_denom = (unsigned)s;

  // The axes of the shown image (orientation applied): shown X is stored x for 1-4, stored y
  // for 5-8 (transposed); which of them run backwards follows PIL's exif_transpose.
  const int o = req.orientation;
  const bool transposed = o >= 5;
  static const bool kRevX[9] = {false, false, true, true, false, false, true, true, false};
  static const bool kRevY[9] = {false, false, false, true, true, false, false, true, true};
  Axis ax, ay;  // shown X, shown Y
  ax.s = ay.s = s;
  ax.n = transposed ? sh : sw;
  ay.n = transposed ? sw : sh;
  ax.m = ceilDiv(ax.n, s);
  ay.m = ceilDiv(ay.n, s);
  ax.reversed = kRevX[o];
  ay.reversed = kRevY[o];
  res.fullWidth = (int)ax.n;
  res.fullHeight = (int)ay.n;
  int64_t kx0 = 0, kx1 = ax.m, ky0 = 0, ky1 = ay.m;
  if (req.hasWindow) {
    ax.cover(req.left, req.left + req.width, kx0, kx1);
    ay.cover(req.top, req.top + req.height, ky0, ky1);
  }
  // Stored scaled rectangle: columns [x0, x1), rows [y0, y1).
  int64_t x0, x1, y0, y1;
  if (transposed) {
    ax.toStored(kx0, kx1, y0, y1);
    ay.toStored(ky0, ky1, x0, x1);
  } else {
    ax.toStored(kx0, kx1, x0, x1);
    ay.toStored(ky0, ky1, y0, y1);
  }

  jpeg_start_decompress(ci);
  if ((int64_t)ci->output_width != (transposed ? ay.m : ax.m) || (int64_t)ci->output_height != (transposed ? ax.m : ay.m)) {
    std::snprintf(w->err.message, sizeof w->err.message, "libjpeg scaled %lld x %lld by 1/%d to %u x %u, expected ceil(size / %d)", (long long)sw, (long long)sh, s, ci->output_width, ci->output_height, s);
    longjmp(w->err.jump, 2);
  }
  // Columns: libjpeg decodes whole iMCU columns, widening [x0, x1) to its grid; with fancy
  // upsampling the first and last column it returns then differ from a full decode's (they are
  // upsampled as image edges). One column of margin on each side, cut off below, keeps the
  // region's pixels exactly the full decode's.
  int64_t xoff = 0, cropWidth = ci->output_width;
  if (x0 > 0 || x1 < (int64_t)ci->output_width) {
    JDIMENSION off = (JDIMENSION)std::max<int64_t>(0, x0 - 1);
    JDIMENSION cw = (JDIMENSION)(std::min<int64_t>(ci->output_width, x1 + 1) - off);
    jpeg_crop_scanline(ci, &off, &cw);
    xoff = off;
    cropWidth = cw;
    if (x0 < xoff || x1 > xoff + cropWidth) {
      std::snprintf(w->err.message, sizeof w->err.message, "libjpeg cropped columns [%lld, %lld), which do not hold [%lld, %lld)", (long long)xoff, (long long)(xoff + cropWidth), (long long)x0, (long long)x1);
      longjmp(w->err.jump, 2);
    }
  }
  const bool cropped = x0 != 0 || x1 != cropWidth;
  const int64_t rw = x1 - x0, rh = y1 - y0;  // stored region
  if (y0 > 0) {
    const JDIMENSION skipped = jpeg_skip_scanlines(ci, (JDIMENSION)y0);
    if ((int64_t)skipped != y0) {
      std::snprintf(w->err.message, sizeof w->err.message, "libjpeg skipped %u of %lld rows", skipped, (long long)y0);
      longjmp(w->err.jump, 2);
    }
  }
  const size_t bytes = (size_t)rw * (size_t)rh * (size_t)C;
  const bool reorient = o != 1;
  uint8_t* dst = (uint8_t*)allocOrFail(w, bytes);
  if (reorient) w->region = dst;
  else w->out = dst;
  const int rowC = cmyk ? 4 : toGray ? 3 : C;  // what libjpeg writes per pixel
  const bool viaRow = cmyk || toGray || cropped;
  if (viaRow) w->row = (uint8_t*)allocOrFail(w, (size_t)cropWidth * (size_t)rowC);
  // A cropped row in place: libjpeg writes its margins (the columns [xoff, x0) and [x1, xoff +
  // cropWidth)) around the row's place, over the end of the row above, saved and put back, and
  // the start of the row below, written afterwards. Where a margin is wider than a row, and for
  // the first and last rows, the scanline goes through w->row and is copied.
  const size_t rowBytes = (size_t)rw * (size_t)C;
  const size_t left = (size_t)(x0 - xoff) * (size_t)C, right = (size_t)(xoff + cropWidth - x1) * (size_t)C;
  const bool inPlace = cropped && !cmyk && !toGray && left <= rowBytes && right <= rowBytes && left <= sizeof w->tail;
  for (int64_t r = 0; r < rh; ++r) {
    uint8_t* line = dst + (size_t)r * rowBytes;
    const bool here = inPlace && r > 0 && r + 1 < rh;
    JSAMPROW rows[1] = {here ? line - left : viaRow ? w->row : line};
    if (here) std::memcpy(w->tail, line - left, left);
    if (jpeg_read_scanlines(ci, rows, 1) != 1) {
      std::snprintf(w->err.message, sizeof w->err.message, "libjpeg returned no scanline %lld", (long long)(y0 + r));
      longjmp(w->err.jump, 2);
    }
    if (here) {
      std::memcpy(line - left, w->tail, left);
      continue;
    }
    const uint8_t* from = w->row + (size_t)(x0 - xoff) * (size_t)rowC;
    if (cmyk) cmykRow(from, line, rw, C, ci->saw_Adobe_marker);
    else if (toGray) grayRow(from, line, rw);
    else if (cropped) std::memcpy(line, from, rowBytes);
  }
  // Reading to the last row lets libjpeg see the end of the data (a missing EOI is a warning,
  // so an error); a window that stops earlier leaves the rest unread.
  if (y1 == (int64_t)ci->output_height) jpeg_finish_decompress(ci);
  else jpeg_abort_decompress(ci);

  if (reorient) {
    // shown (r, c) <- region (i, j); region is rh x rw stored pixels.
    const int64_t ow = transposed ? rh : rw, oh = transposed ? rw : rh;
    w->out = (uint8_t*)allocOrFail(w, bytes);
    const uint8_t* src = w->region;
    for (int64_t r = 0; r < oh; ++r) {
      uint8_t* line = w->out + (size_t)r * (size_t)ow * (size_t)C;
      for (int64_t c = 0; c < ow; ++c) {
        int64_t i, j;  // stored row, column within the region
        const int64_t ci_ = ax.reversed ? ow - 1 - c : c;  // along the stored axis shown as X
        const int64_t ri_ = ay.reversed ? oh - 1 - r : r;  // along the stored axis shown as Y
        if (transposed) i = ci_, j = ri_;
        else i = ri_, j = ci_;
        std::memcpy(line + c * C, src + ((size_t)i * (size_t)rw + (size_t)j) * (size_t)C, (size_t)C);
      }
    }
    res.width = (int)ow;
    res.height = (int)oh;
  } else {
    res.width = (int)rw;
    res.height = (int)rh;
  }
  // Shown scaled rectangle decoded.
  int64_t sx0, sy0;
  if (transposed) {
    sx0 = ax.reversed ? ax.m - y1 : y0;
    sy0 = ay.reversed ? ay.m - x1 : x0;
  } else {
    sx0 = ax.reversed ? ax.m - x1 : x0;
    sy0 = ay.reversed ? ay.m - y1 : y0;
  }
  res.channels = C;
  res.scale = s;
  res.frameLeft = ax.origin() + sx0 * s;
  res.frameTop = ay.origin() + sy0 * s;
  res.pixels = w->out;
  w->out = nullptr;
}

#else  // no libjpeg

void decodeJpeg(const JpegRequest&, JpegResult& res) { res.error = "built without libjpeg"; }

#endif

// ---------------------------------------------------------------------------------------------
// The Node-API surface.

#ifdef BATCHLAB_WITH_JPEG
namespace {

// Per Node environment, as addon.cc's EnvState: at teardown the cleanup hook stops this
// environment's decode tasks from starting more images and waits until no pool thread is in
// one. Never freed (pool threads may look at `closing` after).
struct DecodeEnv {
  std::atomic<bool> closing{false};
  std::atomic<int32_t> busy{0};
  napi_threadsafe_function completion = nullptr;  // made on the first call, kept
  int32_t inflight = 0;                          // JavaScript thread only
};

class DecodeTask;
void settleDecode(Napi::Env env, Napi::Function, std::nullptr_t*, DecodeTask* task);
using DecodeCompletion = Napi::TypedThreadSafeFunction<std::nullptr_t, DecodeTask, settleDecode>;

class DecodeTask final : public Task {
 public:
  DecodeTask(Napi::Env env, int32_t count, DecodeEnv* st)
      : Task(count, (int32_t)Pool::size()), deferred(Napi::Promise::Deferred::New(env)), state(st), requests(count), results(count) {
    busy = &st->busy;
  }
  ~DecodeTask() override {
    for (JpegResult& r : results) std::free(r.pixels);
  }

  Napi::Promise::Deferred deferred;
  DecodeEnv* state;
  DecodeCompletion completion;
  std::vector<JpegRequest> requests;
  std::vector<JpegResult> results;
  std::vector<Napi::Reference<Napi::Value>> keep;  // the input bytes, alive until settled

  void run(int32_t begin, int32_t end, Scratch&) override {
    for (int32_t i = begin; i < end; ++i) {
      if (state->closing.load()) return;
      try {
        decodeJpeg(requests[(size_t)i], results[(size_t)i]);
      } catch (const std::bad_alloc&) {
        results[(size_t)i].error = "out of memory";
      } catch (const std::exception& e) {
        results[(size_t)i].error = e.what();
      }
    }
  }

  void finished() override {
    if (state->closing.load()) return abandon();
    DecodeCompletion c = completion;
    if (c.NonBlockingCall(this) != napi_ok) abandon();
  }

  void abandon() {
    for (auto& r : keep) r.SuppressDestruct();
    delete this;
  }
};

// Decoded pixels a caller may give back before the collector frees them (releaseDecoded: the
// loader does once the batch's engine call has read them). One record per buffer, the
// finalizer's hint; livePixels maps the memory of buffers not yet given back to their records.
struct Pixels {
  uint8_t* data;
  bool released;
};
std::mutex pixelsMu;  // every environment's JavaScript thread
std::unordered_map<const void*, Pixels*> livePixels;

void freePixels(Napi::Env, uint8_t* data, Pixels* rec) {
  if (!rec->released) {
    {
      std::lock_guard<std::mutex> lock(pixelsMu);
      livePixels.erase(data);
    }
    std::free(data);
  }
  delete rec;
}

// releaseDecoded(uint8Array) -> boolean: a buffer decodeJpeg made, not given back yet, is
// detached (every view of it reads as empty) and its memory freed now; false for any other.
Napi::Value ReleaseDecoded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) return Napi::Boolean::New(env, false);
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = view.ArrayBuffer();
  void* data = ab.Data();
  Pixels* rec = nullptr;
  {
    std::lock_guard<std::mutex> lock(pixelsMu);
    auto it = livePixels.find(data);
    if (it == livePixels.end()) return Napi::Boolean::New(env, false);
    rec = it->second;
  }
  if (napi_detach_arraybuffer(env, ab) != napi_ok) return Napi::Boolean::New(env, false);  // not detachable here: the collector frees it
  {
    std::lock_guard<std::mutex> lock(pixelsMu);
    livePixels.erase(data);
  }
  rec->released = true;
  std::free(rec->data);
  return Napi::Boolean::New(env, true);
}

// On the JavaScript thread. Nothing may throw out of here (see addon.cc's settle).
void settleDecode(Napi::Env env, Napi::Function, std::nullptr_t*, DecodeTask* task) {
  if (static_cast<napi_env>(env) == nullptr) {
    task->abandon();
    return;
  }
  try {
    Napi::Array out = Napi::Array::New(env, task->results.size());
    for (size_t i = 0; i < task->results.size(); ++i) {
      JpegResult& r = task->results[i];
      Napi::Object o = Napi::Object::New(env);
      if (!r.error.empty() || !r.pixels) {
        o.Set("error", r.error.empty() ? std::string("not decoded") : r.error);
        o.Set("offset", (double)r.offset);
      } else {
        const size_t bytes = (size_t)r.width * (size_t)r.height * (size_t)r.channels;
        Napi::Buffer<uint8_t> data;
        try {
          Pixels* rec = new Pixels{r.pixels, false};
          try {
            data = Napi::Buffer<uint8_t>::New(env, r.pixels, bytes, freePixels, rec);
          } catch (...) {
            delete rec;
            throw;
          }
          {
            std::lock_guard<std::mutex> lock(pixelsMu);
            livePixels[r.pixels] = rec;
          }
          r.pixels = nullptr;  // the buffer owns it now
        } catch (const Napi::Error&) {
          data = Napi::Buffer<uint8_t>::Copy(env, r.pixels, bytes);  // runtimes without external buffers
        }
        o.Set("data", data);
        o.Set("width", (double)r.width);
        o.Set("height", (double)r.height);
        o.Set("channels", (double)r.channels);
        o.Set("left", (double)r.frameLeft);
        o.Set("top", (double)r.frameTop);
        o.Set("scale", (double)r.scale);
        o.Set("fullWidth", (double)r.fullWidth);
        o.Set("fullHeight", (double)r.fullHeight);
      }
      out.Set((uint32_t)i, o);
    }
    task->deferred.Resolve(out);
  } catch (const Napi::Error& e) {
    try {
      task->deferred.Reject(e.Value());
    } catch (...) {
    }
  } catch (...) {
    // the environment is stopping
  }
  DecodeEnv* st = task->state;
  if (--st->inflight == 0) task->completion.Unref(env);
  delete task;
}

struct BadRequest {
  bool type;  // TypeError, else RangeError
  std::string message;
};

[[noreturn]] void badRequest(bool type, const std::string& field, const std::string& expected, const Napi::Value& v) {
  std::string got;
  if (v.IsUndefined()) got = "undefined";
  else if (v.IsNull()) got = "null";
  else if (v.IsNumber()) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", v.As<Napi::Number>().DoubleValue());
    got = b;
  } else if (v.IsString()) got = "\"" + v.As<Napi::String>().Utf8Value().substr(0, 40) + "\"";
  else if (v.IsTypedArray()) got = "a typed array";
  else if (v.IsArray()) got = "an array";
  else if (v.IsObject()) got = "an object";
  else got = "a " + std::string(v.IsBoolean() ? "boolean" : "value");
  throw BadRequest{type, "decodeJpeg(" + field + "): expected " + expected + ", received " + got};
}

double numberIn(const Napi::Object& o, const std::string& where, const char* key, double lo, double hi, double fallback, bool integer) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !std::isnan(fallback)) return fallback;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= lo && d <= hi) || (integer && d != std::floor(d))) {
    char b[96];
    std::snprintf(b, sizeof b, integer ? "an integer in [%.0f, %.0f]" : "a number in [%g, %g]", lo, hi);
    badRequest(!v.IsNumber(), where + "." + key, b, v);
  }
  return d;
}

Napi::Value DecodeJpeg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DecodeEnv* st = static_cast<DecodeEnv*>(info.Data());
  Napi::Promise::Deferred early = Napi::Promise::Deferred::New(env);
  try {
    if (info.Length() < 1 || !info[0].IsArray()) badRequest(true, "requests", "an array of decode requests", info.Length() ? info[0] : env.Undefined());
    Napi::Array list = info[0].As<Napi::Array>();
    const uint32_t n = list.Length();
    if (n > (1u << 20)) badRequest(false, "requests", "at most 2^20 requests", list);
    std::unique_ptr<DecodeTask> task(new DecodeTask(env, (int32_t)n, st));
    for (uint32_t i = 0; i < n; ++i) {
      const std::string where = "requests[" + std::to_string(i) + "]";
      Napi::Value item = list.Get(i);
      if (!item.IsObject() || item.IsArray()) badRequest(true, where, "a request object { data, channels, ... }", item);
      Napi::Object o = item.As<Napi::Object>();
      Napi::Value data = o.Get("data");
      if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) badRequest(true, where + ".data", "a Uint8Array of JPEG bytes", data);
      Napi::Uint8Array bytes = data.As<Napi::Uint8Array>();
      JpegRequest& r = task->requests[i];
      r.data = bytes.Data();
      r.size = bytes.ByteLength();
      const double ch = numberIn(o, where, "channels", 1, 4, NAN, true);
      if (ch == 2) badRequest(false, where + ".channels", "1, 3 or 4", o.Get("channels"));
      r.channels = (int)ch;
      r.orientation = (int)numberIn(o, where, "orientation", 1, 8, 1, true);
      r.maxPixels = numberIn(o, where, "maxPixels", 1, 9007199254740991.0, 67108864.0, true);
      Napi::Value win = o.Get("window");
      if (!win.IsUndefined() && !win.IsNull()) {
        if (!win.IsObject()) badRequest(true, where + ".window", "a window object { left, top, width, height, scale }", win);
        Napi::Object wo = win.As<Napi::Object>();
        const std::string ww = where + ".window";
        r.hasWindow = true;
        r.left = (int64_t)numberIn(wo, ww, "left", 0, 1 << 30, NAN, true);
        r.top = (int64_t)numberIn(wo, ww, "top", 0, 1 << 30, NAN, true);
        r.width = (int64_t)numberIn(wo, ww, "width", 1, 1 << 30, NAN, true);
        r.height = (int64_t)numberIn(wo, ww, "height", 1, 1 << 30, NAN, true);
        const double sc = numberIn(wo, ww, "scale", 1, 8, 1, true);
        if (sc != 1 && sc != 2 && sc != 4 && sc != 8) badRequest(false, ww + ".scale", "1, 2, 4 or 8", wo.Get("scale"));
        r.scale = (int)sc;
      }
      task->keep.push_back(Napi::Persistent(data));
    }
    if (n == 0) {
      early.Resolve(Napi::Array::New(env, 0));
      return early.Promise();
    }
    Pool::instance().start();
    if (st->completion == nullptr) {
      DecodeCompletion made = DecodeCompletion::New(env, "batchlab.decodeJpeg", 0, 1);
      made.Unref(env);
      st->completion = made;
    }
    task->completion = DecodeCompletion(st->completion);
    Napi::Promise promise = task->deferred.Promise();
    Pool::instance().submit(task.get());
    DecodeTask* queued = task.release();  // settleDecode deletes it, on this thread, later
    if (st->inflight++ == 0) queued->completion.Ref(env);
    return promise;
  } catch (const BadRequest& b) {
    Napi::Error e = b.type ? Napi::Error(Napi::TypeError::New(env, b.message)) : Napi::Error(Napi::RangeError::New(env, b.message));
    e.Set("code", Napi::String::New(env, "ERR_BATCHLAB_DECODE"));
    early.Reject(e.Value());
  } catch (const Napi::Error& e) {
    early.Reject(e.Value());
  } catch (const std::bad_alloc&) {
    early.Reject(Napi::RangeError::New(env, "decodeJpeg: out of memory while reading the requests").Value());
  } catch (const std::exception& e) {
    Napi::Error err = Napi::Error::New(env, std::string("decodeJpeg: ") + e.what());
    err.Set("code", Napi::String::New(env, "ERR_BATCHLAB_DECODE"));
    early.Reject(err.Value());
  }
  return early.Promise();
}

void onDecodeCleanup(DecodeEnv* st) {
  st->closing.store(true);
  while (st->busy.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

#define BATCHLAB_STR2(x) #x
#define BATCHLAB_STR(x) BATCHLAB_STR2(x)

}  // namespace

void registerDecode(Napi::Env env, Napi::Object exports) {
  DecodeEnv* st = new DecodeEnv();
  env.AddCleanupHook(onDecodeCleanup, st);
  exports.Set("decodeJpeg", Napi::Function::New(env, DecodeJpeg, "decodeJpeg", st));
  exports.Set("releaseDecoded", Napi::Function::New(env, ReleaseDecoded, "releaseDecoded"));
#ifdef LIBJPEG_TURBO_VERSION
  exports.Set("jpegVersion", Napi::String::New(env, "libjpeg-turbo " BATCHLAB_STR(LIBJPEG_TURBO_VERSION)));
#else
  exports.Set("jpegVersion", Napi::String::New(env, "libjpeg " BATCHLAB_STR(JPEG_LIB_VERSION)));
#endif
}

#else

void registerDecode(Napi::Env, Napi::Object) {}

#endif

}  // namespace batchlab
