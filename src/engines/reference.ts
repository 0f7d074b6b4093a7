/**
 * The reference engine: the transforms' readable TypeScript implementations, sample by sample.
 * A plan with a warp pass runs through the plan's own TypeScript executor (plan-reference.ts)
 * instead: its geometry is folded into one resampling, which the native engines reproduce bit
 * for bit, and which differs from resampling step by step.
 */
import { NativeError } from "../errors";
import * as ref from "../transforms/reference";
import { BufferPool, type EngineMemory } from "./buffers";
import type { Params, Plan } from "../transforms/index";
import { encodeJob, type BatchPixels, type Engine } from "./job";
import { executePlan } from "./plan-reference";
import { runSplit } from "./split";

/** `pinned`: batches in pinned host memory (DataLoader's pinMemory). */
export function referenceEngine(reason: string, pinned?: EngineMemory): Engine {
  return {
    name: "reference",
    reason,
    onDevice: false,
    pool: pinned ? new BufferPool(pinned, false) : new BufferPool(),
    async run(plan, pixels, params, out) {
      if (!out) throw new NativeError("the reference engine needs an output buffer");
      if (plan.fused && plan.warps) executePlan(encodeJob(plan, pixels, params), out);
      else if (!plan.fused) {
        // As the native engine: the fused head (through the plan's executor), the rest step by step.
        const head = async (h: Plan, px: BatchPixels, ps: Params[], o: Float32Array) => executePlan(encodeJob(h, px, ps), o);
        if (!(await runSplit(plan, pixels, params, out, head))) runReference(plan, pixels, params, out);
      } else runReference(plan, pixels, params, out);
      return {};
    },
  };
}

/** The chain step by step on every sample, into `out` (NCHW): also the path of unfused chains on the native engine. */
export function runReference(plan: Plan, pixels: BatchPixels, params: readonly Params[], out: Float32Array): void {
  let offset = 0;
  pixels.images().forEach((image, i) => {
    const img = plan.transform.reference(ref.fromImage(image), params[i]!, { bound: 255 });
    ref.writeCHW(img, out, offset);
    offset += img.data.length;
  });
}
