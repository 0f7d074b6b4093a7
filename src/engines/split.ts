/**
 * Chains the fused plan cannot run whole (Plan.split): the fused head runs through the engine's
 * own executor for the whole batch, then the remaining steps run sample by sample on the
 * reference path, on the head's output. Every CPU engine does this the same way (the native
 * engine's head is the C++ plan, the reference engine's the plan's TypeScript executor, which
 * agree bit for bit), so both give the same batch.
 */
import type { Compose, Params, Plan } from "../transforms/index";
import * as ref from "../transforms/reference";
import type { BatchPixels } from "./job";

/** Runs the head plan on a batch into `out` (float32 NCHW of the head's output shape). */
export type HeadRunner = (head: Plan, pixels: BatchPixels, params: Params[], out: Float32Array) => Promise<void>;

/**
 * Runs `plan` as its fused head and its step-by-step rest; false (nothing written) where the
 * plan has no split or its head's output shape differs between samples (then the caller runs
 * the chain step by step throughout).
 */
export async function runSplit(plan: Plan, pixels: BatchPixels, params: readonly Params[], out: Float32Array, runHead: HeadRunner): Promise<boolean> {
  const split = plan.split;
  if (!split) return false;
  const { head, steps: k } = split;
  const shapes = pixels.stored ? [pixels.stored.shape] : pixels.images();
  const [C, H, W] = head.outputShape(shapes[0]!);
  for (const s of shapes) {
    const o = head.outputShape(s);
    if (o[0] !== C || o[1] !== H || o[2] !== W) return false;
  }
  const n = pixels.n;
  const per = C * H * W;
  const headOut = new Float32Array(n * per);
  const stepParams = params.map((p) => (p as { steps: Params[] }).steps);
  await runHead(head, pixels, stepParams.map((st) => ({ steps: st.slice(0, k) }) as Params), headOut);
  const rest = (plan.transform as Compose).transforms.slice(k);
  const bound = head.transform.boundAfter(255);
  let offset = 0;
  for (let i = 0; i < n; i++) {
    let img = fromCHW(headOut, i * per, C, H, W);
    const ctx = { bound };
    rest.forEach((t, j) => {
      img = t.reference(img, stepParams[i]![k + j]!, ctx);
      ctx.bound = t.boundAfter(ctx.bound);
    });
    ref.writeCHW(img, out, offset);
    offset += img.data.length;
  }
  return true;
}

/** One sample of a float32 NCHW batch as the reference's HWC image. */
function fromCHW(src: Float32Array, at: number, C: number, H: number, W: number): ref.FloatImage {
  const data = new Float32Array(C * H * W);
  const plane = H * W;
  for (let c = 0; c < C; c++) for (let p = 0; p < plane; p++) data[p * C + c] = src[at + c * plane + p]!;
  return { height: H, width: W, channels: C, data };
}
