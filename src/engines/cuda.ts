/**
 * The CUDA engine, for DataLoader({ device: "cuda" }): the uint8 sources cross to the GPU (4x
 * fewer bytes than float32) and the plan runs there as one fused kernel
 * (native/cuda/plan_kernel.cu). Batches alternate between streams, so the copy of batch k+1
 * overlaps the kernel of batch k while the loader keeps `prefetch` batches in flight.
 * Loaded by engines/index.ts only when a loader asks for device "cuda".
 */
import { CudaUnavailableError, OptionError } from "../errors";
import { call, callAsync, device, load, type CudaAddon, type RawBuffer, type RawStream } from "./addon-cuda";
import { BufferPool } from "./buffers";
import { encodeJob, type DeviceTensor, type Engine } from "./job";

const STREAMS = 2;

export function cudaEngine(): Engine {
  const state = load();
  if (!state.ok) throw new CudaUnavailableError(state.reason);
  const addon = device();
  const streams = Array.from({ length: STREAMS }, () => call(() => new addon.Stream()));
  let next = 0;
  const name = call(() => addon.devices())[0]?.name ?? "CUDA device";
  return {
    name: "cuda",
    reason: `${name}, fused plan kernel on ${STREAMS} streams`,
    onDevice: true,
    pool: new BufferPool(), // batches stay in device memory
    async run(plan, pixels, params) {
      if (!plan.fused) {
        throw new OptionError("DataLoader.device", "cuda", `a chain the fused kernel runs: ${plan.unfused.join(", ")} run on the CPU reference path for now (use device "cpu")`);
      }
      const job = encodeJob(plan, pixels, params);
      const stream = streams[next++ % STREAMS]!;
      const shape = [job.n, job.outC, job.outH, job.outW] as const;
      const out = call(() => new addon.DeviceBuffer(Math.max(4, job.n * job.outC * job.outH * job.outW * 4)));
      try {
        const t = await callAsync(() => addon.runPlan(job, out, stream));
        return { device: deviceTensor(addon, shape, out, stream), copy: t.copyMs, kernel: t.kernelMs };
      } catch (e) {
        out.free();
        throw e;
      }
    },
  };
}

/** A batch in device memory: copied back on the stream its kernel ran on. */
function deviceTensor(addon: CudaAddon, shape: readonly [number, number, number, number], buffer: RawBuffer, stream: RawStream): DeviceTensor {
  return {
    shape,
    async toHost(): Promise<Float32Array> {
      const host = new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]);
      await callAsync(() => addon.copy(stream, false, buffer, 0, host, true));
      return host;
    },
    free: () => buffer.free(),
  };
}

/**
 * Pinned (page-locked) host memory for a host engine's batches (DataLoader's pinMemory): copies
 * from it to a device are asynchronous. Pinned buffers are not recycled: the garbage collector
 * frees them through the addon.
 */
export function pinnedMemory(): { alloc(bytes: number): ArrayBuffer; release(): boolean } {
  const state = load();
  if (!state.ok) throw new CudaUnavailableError(state.reason);
  const addon = device();
  return { alloc: (bytes) => call(() => addon.pinnedAlloc(bytes)), release: () => false };
}
