/**
 * Loading the native CPU engine, build/Release/batchlab_cpu.node (native/README.md).
 * Loaded once, lazily, on first use. Where it is not built or cannot load, callers get the
 * reason instead of an exception, and the loader runs the TypeScript reference engine.
 *
 * Environment: BATCHLAB_BACKEND=reference forces "not loaded"; BATCHLAB_NATIVE_ADDON=/path
 * loads another build of the addon (e.g. a sanitizer build); BATCHLAB_SIMD=sse4 keeps the warp
 * pass on the baseline's four SSE lanes where the processor has AVX2 ("auto", the default, takes
 * eight), which tests use to check that both give the same bits.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { nativeAddonPath } from "../data/jpeg";
import { NativeError, fromNative } from "../errors";
import type { HostJob } from "./job";

export interface NativeInfo {
  /** Package version the addon was built from. */
  version: string;
  /** Worker threads of the process-wide pool. */
  threads: number;
  /** Vector instruction set the build targets (e.g. "sse4.2" for x86-64-v2). */
  simd: string;
  /**
   * How the warp pass runs here, chosen at run time: "avx2 (8 lanes)" where the processor has
   * AVX2, else "sse4.1 (4 lanes)"; BATCHLAB_SIMD=sse4 keeps the four lanes. Absent in older builds.
   */
  warpLanes?: string;
  /** Compiler and version, e.g. "g++ 12.2.0". */
  compiler: string;
}

export interface NativeAddon {
  /** Resolves when `out` is written; rejects with a PlanError for a bad job, else a NativeError. */
  runPlan(job: HostJob): Promise<void>;
  info(): NativeInfo;
  poolSize(): number;
  /**
   * An ArrayBuffer of `bytes` (1 to 2^31) for a batch's output, from memory that earlier batches'
   * buffers gave back when they were released or garbage collected (so no page faults on first
   * write). Null where the runtime refuses external buffers, or the addon is older than this.
   */
  allocOutput(bytes: number): ArrayBuffer | null;
  /**
   * Detaches a buffer from allocOutput now (every view of it reads as empty) and returns its
   * memory to the free list without waiting for the garbage collector. False for any other
   * buffer, and for one a runPlan job still writes into; those are left untouched.
   */
  releaseOutput(buffer: ArrayBuffer): boolean;
}

export type NativeLoad = { ok: true; addon: NativeAddon } | { ok: false; reason: string };

interface RawAddon {
  runPlan(job: HostJob): Promise<void>;
  info(): NativeInfo;
  poolSize(): number;
  allocOutput?(bytes: number): ArrayBuffer | null;
  releaseOutput?(buffer: ArrayBuffer): boolean;
}

const packageRoot = path.join(__dirname, "..", "..");
let cached: NativeLoad | undefined;

/** Where the addon is loaded from (found by src/data/jpeg.ts, whose JPEG decoder lives in it too). */
export function addonPath(): string {
  return nativeAddonPath();
}

function wrapError(e: unknown): Error {
  return fromNative(e, "ERR_BATCHLAB_NATIVE", "native engine: ");
}

function wrap(raw: RawAddon): NativeAddon {
  return {
    info: () => raw.info(),
    poolSize: () => raw.poolSize(),
    allocOutput: (bytes: number) => (typeof raw.allocOutput === "function" ? raw.allocOutput(bytes) : null),
    releaseOutput: (buffer: ArrayBuffer) => (typeof raw.releaseOutput === "function" ? raw.releaseOutput(buffer) : false),
    runPlan(job: HostJob): Promise<void> {
      let pending: Promise<void>;
      try {
        pending = raw.runPlan(job);
      } catch (e) {
        return Promise.reject(wrapError(e));
      }
      return pending.catch((e: unknown) => {
        throw wrapError(e);
      });
    },
  };
}

/** The addon, or why it is not available. Never throws. */
export function loadNative(): NativeLoad {
  if (process.env.BATCHLAB_BACKEND === "reference") {
    return { ok: false, reason: "not loaded, because forced: BATCHLAB_BACKEND=reference" };
  }
  if (cached) return cached;
  const simd = process.env.BATCHLAB_SIMD;
  if (simd !== undefined && simd !== "" && simd !== "auto" && simd !== "sse4") {
    return { ok: false, reason: `not loaded: BATCHLAB_SIMD is ${JSON.stringify(simd)}; expected "auto" (the default) or "sse4"` };
  }
  const file = addonPath();
  if (!fs.existsSync(file)) {
    const shown = process.env.BATCHLAB_NATIVE_ADDON ? file : path.relative(packageRoot, file);
    cached = { ok: false, reason: `not built: ${shown} missing; run npm run build:native (it needs g++, make and python3)` };
    return cached;
  }
  try {
    const raw = require(file) as RawAddon;
    if (typeof raw?.runPlan !== "function") throw new Error("it does not export runPlan (an older or foreign build?)");
    cached = { ok: true, addon: wrap(raw) };
  } catch (e) {
    const first = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    cached = { ok: false, reason: `cannot load ${file}: ${first}` };
  }
  return cached;
}

/** Runs one plan job on the native engine; rejects with a NativeError when it is unavailable. */
export function runPlan(job: HostJob): Promise<void> {
  const loaded = loadNative();
  if (!loaded.ok) return Promise.reject(new NativeError(`the native engine is unavailable: ${loaded.reason}`, "ERR_BATCHLAB_NO_NATIVE"));
  return loaded.addon.runPlan(job);
}
