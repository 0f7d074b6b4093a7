/**
 * The engine registry: which engine runs a loader's plan. "auto" picks the native CPU engine
 * when its addon loads, else the TypeScript reference (said once per process); device "cuda"
 * loads the CUDA engine (cuda.ts) only when asked for.
 */
import { NativeError } from "../errors";
import { loadNative } from "./addon-cpu";
import { cpuEngine } from "./cpu";
import type { Engine, EngineName } from "./job";
import { referenceEngine } from "./reference";

export type Backend = "auto" | "native" | "reference";

export interface EngineChoice {
  backend: Backend;
  device: "cpu" | "cuda";
  /** Host batches in pinned memory (needs CUDA). */
  pinMemory: boolean;
}

let said = false;

/** The engine for a loader's choice; throws (NativeError, CudaUnavailableError) when it cannot run. */
export function selectEngine(choice: EngineChoice): Engine {
  if (choice.device === "cuda") {
    // Loaded here, on demand: a CPU-only pipeline never reads the CUDA engine's code.
    const { cudaEngine } = require("./cuda") as typeof import("./cuda");
    return cudaEngine();
  }
  const pinned = choice.pinMemory ? (require("./cuda") as typeof import("./cuda")).pinnedMemory() : undefined;
  if (choice.backend === "reference") return referenceEngine('backend: "reference" was asked for', pinned);
  const loaded = loadNative();
  if (!loaded.ok) {
    if (choice.backend === "native") throw new NativeError(`backend: "native" was asked for, but the native engine is unavailable: ${loaded.reason}`, "ERR_BATCHLAB_NO_NATIVE");
    if (!said && !process.env.BATCHLAB_QUIET) {
      said = true;
      process.emitWarning(`batchlab: using the TypeScript reference engine (${loaded.reason})`, { code: "BATCHLAB_REFERENCE" });
    }
    return referenceEngine(loaded.reason, pinned);
  }
  return cpuEngine(loaded.addon, pinned);
}

/** What `batchlab doctor` prints about the CPU engines. */
export function engineReport(): { backend: EngineName; reason: string } {
  const loaded = loadNative();
  if (!loaded.ok) return { backend: "reference", reason: loaded.reason };
  const info = loaded.addon.info();
  return { backend: "native", reason: `native addon loaded; ${info.threads} threads; warp on ${info.warpLanes ?? `${info.simd} lanes`}` };
}

export { encodeJob, pixelsOfImages, pixelsOfStore } from "./job";
export { executePlan } from "./plan-reference";
export type { PlanJob, HostJob, Engine, EngineName, EngineResult, BatchPixels, StoredPixels, DeviceTensor } from "./job";
export { BufferPool } from "./buffers";
export { loadNative, addonPath } from "./addon-cpu";
