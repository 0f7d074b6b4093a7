/**
 * The CUDA engine for DataLoader({ device: "cuda" }): the uint8 sources cross to the GPU (4x
 * fewer bytes than float32) and the plan runs there as one fused kernel. Batches alternate
 * between streams, so the copy of batch k+1 overlaps the kernel of batch k while the loader
 * keeps `prefetch` batches in flight. Registered with the loader when this module loads
 * (imports point one way: the loader never imports src/device).
 */
import { registerDeviceEngine, registerPinnedAllocator, type Engine } from "../loader/engine";
import { available, devices, pinned, runPlan, Stream, unavailableReason, CudaUnavailableError } from "./index";

const STREAMS = 2;

registerDeviceEngine("cuda", (): Engine => {
  if (!available()) throw new CudaUnavailableError(unavailableReason());
  const streams = Array.from({ length: STREAMS }, () => new Stream());
  let next = 0;
  const name = devices()[0]?.name ?? "CUDA device";
  return {
    name: "cuda",
    reason: `${name}, fused plan kernel on ${STREAMS} streams`,
    onDevice: true,
    async run(plan, pixels, params) {
      const job = plan.encode(pixels.images(), params);
      const stream = streams[next++ % STREAMS]!;
      const batch = await runPlan(job, { stream });
      return { device: batch, copy: batch.timings.copy, kernel: batch.timings.kernel };
    },
  };
});

registerPinnedAllocator((bytes) => {
  if (!available()) throw new CudaUnavailableError(unavailableReason());
  return pinned(bytes).buffer;
});
