/**
 * The bridge to the native CPU engine (build/Release/batchlab_cpu.node): loaded once, lazily.
 * Where it is not built or cannot load, callers get the reason instead of an exception.
 */
import * as path from "node:path";
import * as fs from "node:fs";
import { NativeError } from "../errors";
import type { EncodedBatch } from "../transforms/index";

/** A plan job (native/PLAN_ABI.md) plus where to write and how many threads may work on it. */
export interface PlanJob extends EncodedBatch {
  out: Float32Array;
  numThreads: number;
}

export interface NativeAddon {
  runPlan(job: PlanJob): Promise<void>;
  info(): { version: string; threads: number; simd: string; compiler: string };
  poolSize(): number;
}

let cached: { ok: true; addon: NativeAddon } | { ok: false; reason: string } | undefined;

export function addonPath(): string {
  return process.env.BATCHLAB_NATIVE_ADDON ?? path.join(__dirname, "..", "..", "build", "Release", "batchlab_cpu.node");
}

/** The addon, or why it is not available. */
export function loadNative(): { ok: true; addon: NativeAddon } | { ok: false; reason: string } {
  if (cached) return cached;
  if (process.env.BATCHLAB_BACKEND === "reference") return (cached = { ok: false, reason: "BATCHLAB_BACKEND=reference forces the reference engine" });
  const file = addonPath();
  if (!fs.existsSync(file)) return (cached = { ok: false, reason: `not built: ${file} is missing (run npm run build:native; it needs g++, make and python3)` });
  try {
    const raw = require(file) as NativeAddon;
    const addon: NativeAddon = {
      info: () => raw.info(),
      poolSize: () => raw.poolSize(),
      runPlan: (job) =>
        raw.runPlan(job).catch((e: unknown) => {
          throw new NativeError(`native engine: ${e instanceof Error ? e.message : String(e)}`, "ERR_BATCHLAB_PLAN");
        }),
    };
    return (cached = { ok: true, addon });
  } catch (e) {
    return (cached = { ok: false, reason: `cannot load ${file}: ${(e as Error).message.split("\n")[0]}` });
  }
}
