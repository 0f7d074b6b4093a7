/**
 * The CPU engine: one call of the native addon runs the whole batch's plan on its thread pool
 * (native/plan.cc), writing into memory from the addon's recycling allocator.
 */
import { NativeError } from "../errors";
import type { NativeAddon } from "./addon-cpu";
import { BufferPool, type EngineMemory } from "./buffers";
import { encodeJob, type Engine } from "./job";
import { runReference } from "./reference";
import { runSplit, type HeadRunner } from "./split";

/** Batches up to this size come from the addon's allocator (its limit); larger ones are plain buffers. */
const ADDON_ALLOC_LIMIT = 2 ** 31;

/** `pinned`: batches in pinned host memory instead of the addon's (DataLoader's pinMemory). */
export function cpuEngine(addon: NativeAddon, pinned?: EngineMemory): Engine {
  const pool = pinned
    ? new BufferPool(pinned, false)
    : new BufferPool({
        alloc: (bytes) => (bytes <= ADDON_ALLOC_LIMIT ? (addon.allocOutput(bytes) ?? undefined) : undefined),
        release: (buffer) => addon.releaseOutput(buffer),
      });
  return {
    name: "native",
    reason: "native addon loaded",
    onDevice: false,
    pool,
    async run(plan, pixels, params, out, numThreads) {
      if (!out) throw new NativeError("the native engine needs an output buffer");
      if (!plan.fused) {
        // Steps the fused plan cannot run (Plan.unfused): the fused head here, the rest step by step.
        const head: HeadRunner = async (h, px, ps, o) => {
          const job = encodeJob(h, px, ps, pool);
          await addon.runPlan({ ...job, out: o, numThreads });
          pool.giveJob(job);
        };
        if (!(await runSplit(plan, pixels, params, out, head))) runReference(plan, pixels, params, out);
        return {};
      }
      const job = encodeJob(plan, pixels, params, pool);
      await addon.runPlan({ ...job, out, numThreads });
      pool.giveJob(job); // after success only: a failed job may still be read by pool threads
      return {};
    },
  };
}
