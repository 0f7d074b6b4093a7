/**
 * Which engine runs the transform plan: the native thread pool when the addon loads, else the
 * TypeScript reference. The choice is made once per process and said once.
 */
import type { Image } from "../data/types";
import type { Plan, Params, StoredPixels } from "../transforms/index";
import * as ref from "../transforms/reference";
import { NativeError } from "../errors";
import { loadNative } from "./native";

export type BackendName = "native" | "reference" | "cuda";

/** A batch in device memory, as a device engine returns it. */
export interface DeviceTensor {
  readonly shape: readonly [number, number, number, number];
  toHost(): Promise<Float32Array>;
  free(): void;
}

/**
 * The pixels of one batch: one view per sample, or, for an in-memory data set, one buffer with
 * each sample's offset (no per-sample objects; engines that want views ask images()).
 */
export interface BatchPixels {
  readonly n: number;
  /** One view per sample (made on the first call when the batch is stored). */
  images(): readonly Image[];
  /** Every sample in one buffer, with one shape. */
  readonly stored?: StoredPixels;
}

/** A batch of views. */
export function pixelsOfImages(images: readonly Image[]): BatchPixels {
  return { n: images.length, images: () => images };
}

/** A batch read from one buffer: views are made only when an engine asks for them. */
export function pixelsOfStore(stored: StoredPixels): BatchPixels {
  let views: Image[] | undefined;
  return {
    n: stored.offsets.length,
    stored,
    images() {
      if (!views) {
        const { height, width, channels } = stored.shape;
        const size = height * width * channels;
        views = Array.from(stored.offsets, (o) => ({ data: stored.pixels.subarray(o, o + size), height, width, channels }));
      }
      return views;
    },
  };
}

export interface EngineResult {
  /** Host engines fill the `out` they were given. Device engines return the device batch. */
  device?: DeviceTensor;
  /** Device milliseconds of the host-to-device copy and of the kernel. */
  copy?: number;
  kernel?: number;
}

export interface Engine {
  readonly name: BackendName;
  readonly reason: string;
  /** True when `run` leaves the batch on a device instead of writing `out`. */
  readonly onDevice?: boolean;
  /**
   * Memory for a batch's output, when the engine has a better source than a fresh buffer (the
   * native engine reuses the memory of batches already garbage collected). Undefined: allocate.
   */
  allocate?(bytes: number): ArrayBuffer | undefined;
  /**
   * Takes back a buffer that allocate() gave out, once its batch is disposed: detached at once,
   * its memory reused by a later allocate(). False when the buffer is not the engine's.
   */
  release?(buffer: ArrayBuffer): boolean;
  /** Writes n x C x H x W float32 into `out` (host engines) or returns a device batch. */
  run(plan: Plan, pixels: BatchPixels, params: readonly Params[], out: Float32Array | undefined, numThreads: number): Promise<EngineResult>;
}

/**
 * Later stages plug in here (imports point one way: src/device registers the CUDA engine and
 * the pinned allocator when it is loaded, the loader never imports it).
 */
const deviceEngines = new Map<string, () => Engine>();
let pinnedAllocator: ((bytes: number) => ArrayBuffer) | undefined;

export function registerDeviceEngine(name: string, make: () => Engine): void {
  deviceEngines.set(name, make);
}

export function registerPinnedAllocator(alloc: (bytes: number) => ArrayBuffer): void {
  pinnedAllocator = alloc;
}

export function deviceEngine(name: string): Engine | undefined {
  const make = deviceEngines.get(name);
  return make ? make() : undefined;
}

export function pinnedAlloc(): ((bytes: number) => ArrayBuffer) | undefined {
  return pinnedAllocator;
}

const referenceEngine = (reason: string): Engine => ({
  name: "reference",
  reason,
  async run(plan, pixels, params, out) {
    let offset = 0;
    if (!out) throw new NativeError("the reference engine needs an output buffer");
    pixels.images().forEach((image, i) => {
      const img = plan.transform.reference(ref.fromImage(image), params[i]!, { bound: 255 });
      ref.writeCHW(img, out, offset);
      offset += img.data.length;
    });
    return {};
  },
});

let said = false;

/** The engine for `backend` ("auto" picks native when it loads). */
export function selectEngine(backend: "auto" | "native" | "reference"): Engine {
  if (backend === "reference") return referenceEngine("backend: \"reference\" was asked for");
  const loaded = loadNative();
  if (!loaded.ok) {
    if (backend === "native") throw new NativeError(`backend: "native" was asked for, but the native engine is unavailable: ${loaded.reason}`, "ERR_BATCHLAB_NO_NATIVE");
    if (!said && !process.env.BATCHLAB_QUIET) {
      said = true;
      process.emitWarning(`batchlab: using the TypeScript reference engine (${loaded.reason})`, { code: "BATCHLAB_REFERENCE" });
    }
    return referenceEngine(loaded.reason);
  }
  const addon = loaded.addon;
  return {
    name: "native",
    reason: "native addon loaded",
    // Up to 2 GiB (the addon's limit); a larger batch gets an ordinary buffer.
    allocate: (bytes) => (bytes <= 2 ** 31 ? (addon.allocOutput(bytes) ?? undefined) : undefined),
    release: (buffer) => addon.releaseOutput(buffer),
    async run(plan, pixels, params, out, numThreads) {
      if (!out) throw new NativeError("the native engine needs an output buffer");
      const job = pixels.stored ? plan.encodeStored(pixels.stored, params) : plan.encode(pixels.images(), params);
      await addon.runPlan({ ...job, out, numThreads });
      plan.recycle(job); // after success only: a failed job may still be read by pool threads
      return {};
    },
  };
}

/** What `batchlab doctor` prints about the CPU engines. */
export function engineReport(): { backend: BackendName; reason: string } {
  const loaded = loadNative();
  return loaded.ok ? { backend: "native", reason: "native addon loaded" } : { backend: "reference", reason: loaded.reason };
}
