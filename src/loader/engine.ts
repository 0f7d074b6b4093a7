/**
 * Which engine runs the transform plan: the native thread pool when the addon loads, else the
 * TypeScript reference. The choice is made once per process and said once.
 */
import type { Image } from "../data/types";
import type { EncodedBatch, Plan, Params } from "../transforms/index";
import * as ref from "../transforms/reference";
import { NativeError } from "../errors";
import { loadNative } from "./native";

export type BackendName = "native" | "reference";

export interface Engine {
  readonly name: BackendName;
  readonly reason: string;
  /** Writes n x C x H x W float32 into `out`. */
  run(plan: Plan, images: readonly Image[], params: readonly Params[], out: Float32Array, numThreads: number): Promise<EncodedBatch | undefined>;
}

const referenceEngine = (reason: string): Engine => ({
  name: "reference",
  reason,
  async run(plan, images, params, out) {
    let offset = 0;
    images.forEach((image, i) => {
      const img = plan.transform.reference(ref.fromImage(image), params[i]!, { bound: 255 });
      ref.writeCHW(img, out, offset);
      offset += img.data.length;
    });
    return undefined;
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
    async run(plan, images, params, out, numThreads) {
      const job = plan.encode(images, params);
      await addon.runPlan({ ...job, out, numThreads });
      return job;
    },
  };
}

/** What `batchlab doctor` prints about the CPU engines. */
export function engineReport(): { backend: BackendName; reason: string } {
  const loaded = loadNative();
  return loaded.ok ? { backend: "native", reason: "native addon loaded" } : { backend: "reference", reason: loaded.reason };
}
