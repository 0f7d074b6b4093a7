/**
 * The `cuda` namespace: availability and device info, device memory and pinned host buffers
 * (memory.ts), streams, events and async copies (streams.ts), and the fused plan kernel
 * (plan.ts). The addon is loaded on first use (src/engines/addon-cuda.ts). Without it, or
 * without a device or driver, `available()` is false, `unavailableReason()` says why, and every
 * other call throws a `CudaUnavailableError` carrying that reason; `emulatePlan()` needs the
 * addon only: it runs the kernel's own per-pixel code on the CPU.
 *
 * Errors: arguments are checked here (OptionError naming the argument); a malformed plan job is
 * refused by the addon (code ERR_BATCHLAB_PLAN), CUDA failures arrive as NativeError (code ERR_CUDA),
 * allocation failures as CudaOutOfMemoryError with the bytes asked for and the bytes free.
 * The loader's CUDA engine is src/engines/cuda.ts; the transfer benchmark is in the viz stage.
 */
export { available, unavailableReason, status, addonPath } from "../engines/addon-cuda";
export type { CudaStatus } from "../engines/addon-cuda";
export { CudaUnavailableError } from "../errors";
export { devices, memInfo, peakBandwidth, setDevice, currentDevice, PinnedBuffer, pinned, isPinned, DeviceBuffer } from "./memory";
export type { DeviceInfo, MemInfo } from "./memory";
export { Stream, Event, defaultStream, copyToDevice, copyToHost } from "./streams";
export { DeviceBatch, runPlan, emulatePlan, launchShape } from "./plan";
export type { RunPlanOptions, LaunchShape, PlanJob } from "./plan";
