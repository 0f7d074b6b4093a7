/**
 * Loading the CUDA addon, build/Release/batchlab_cuda.node (native/cuda/README.md): its raw
 * surface, why it is unavailable when it is, and its errors as the library's classes. The
 * CUDA engine (cuda.ts) and the `cuda` namespace (src/device) both reach the addon here.
 *
 * Without the addon, or without a device or driver, `available()` is false and
 * `unavailableReason()` says why. `BATCHLAB_CUDA_ADDON` loads another build (read at first use).
 */
import * as path from "node:path";
import { CudaUnavailableError, fromNative } from "../errors";
import type { PlanJob } from "./job";

export interface RawAvailability {
  ok: boolean;
  reason: string;
  deviceCount: number;
  runtimeVersion: string;
  driverVersion: string;
  error: string;
}
export interface RawStream {
  synchronize(): void;
  query(): boolean;
  done(): Promise<void>;
  destroy(): void;
  readonly destroyed: boolean;
}
export interface RawEvent {
  record(stream: RawStream): void;
  query(): boolean;
  synchronize(): void;
  elapsedSince(start: RawEvent): number;
  destroy(): void;
}
export interface RawBuffer {
  readonly bytes: number;
  readonly freed: boolean;
  free(): void;
}
export type HostData = ArrayBufferView | ArrayBuffer;

/** How runPlan launches a job: grid (x: pixel blocks, y: samples) and threads per block. */
export interface LaunchShape {
  gridX: number;
  gridY: number;
  block: number;
}

export interface DeviceInfo {
  index: number;
  name: string;
  /** Bytes of device memory. */
  totalMemory: number;
  computeCapability: [number, number];
  multiprocessors: number;
  /** Bits. */
  memoryBusWidth: number;
  /** Peak memory clock (kHz; 0 when the driver does not say). */
  memoryClockKHz: number;
}

export interface MemInfo {
  free: number;
  total: number;
}

export interface CudaAddon {
  available(): RawAvailability;
  devices(): DeviceInfo[];
  memInfo(): MemInfo;
  setDevice(index: number): void;
  getDevice(): number;
  pinnedAlloc(bytes: number): ArrayBuffer;
  pinnedFree(buffer: ArrayBuffer): boolean;
  isPinned(view: HostData): boolean;
  copy(stream: RawStream, toDevice: boolean, buffer: RawBuffer, offset: number, host: HostData, track: boolean): Promise<void> | undefined;
  runPlan(job: PlanJob, out: RawBuffer, stream: RawStream): Promise<{ copyMs: number; kernelMs: number }>;
  emulatePlan(job: PlanJob): Float32Array;
  launchShape(job: PlanJob): LaunchShape;
  Stream: new () => RawStream;
  Event: new (timing: boolean) => RawEvent;
  DeviceBuffer: new (bytes: number) => RawBuffer;
  build: { cudaRuntime: string; targets: string };
}

/** Where the addon is looked for; BATCHLAB_CUDA_ADDON overrides it (read at first use). */
export function addonPath(): string {
  return process.env.BATCHLAB_CUDA_ADDON || path.join(__dirname, "..", "..", "build", "Release", "batchlab_cuda.node");
}

export interface LoadState {
  addon: CudaAddon | undefined;
  /** Why the addon is absent, or why it has no usable device; "" when CUDA is usable. */
  reason: string;
  ok: boolean;
  file: string;
  info: RawAvailability | undefined;
}
let state: LoadState | undefined;

export function load(): LoadState {
  if (state) return state;
  const file = addonPath();
  let addon: CudaAddon | undefined;
  let reason = "";
  try {
    addon = require(file) as CudaAddon;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    reason =
      err && err.code === "MODULE_NOT_FOUND"
        ? `the CUDA addon was not built: ${file} does not exist (\`npm run build:native\` builds it when nvcc is found; this build found no nvcc, or its CUDA build failed)`
        : `the CUDA addon ${file} failed to load: ${err && err.message ? err.message : String(e)}`;
  }
  let info: RawAvailability | undefined;
  if (addon) {
    try {
      info = addon.available();
      if (!info.ok) reason = info.reason;
    } catch (e) {
      reason = `the CUDA addon loaded but could not query devices: ${(e as Error).message}`;
    }
  }
  state = { addon, reason, ok: !!info && info.ok, file, info };
  return state;
}

/** True when the addon is built, a driver is present and at least one CUDA device is usable. */
export function available(): boolean {
  return load().ok;
}

/** Why CUDA cannot be used ("" when it can). */
export function unavailableReason(): string {
  return load().reason;
}

export interface CudaStatus {
  available: boolean;
  /** Why not, or a summary of what was found. */
  reason: string;
  addonPath: string;
  addonLoaded: boolean;
  deviceCount: number;
  runtimeVersion: string;
  driverVersion: string;
  /** GPU architectures the addon was compiled for. */
  targets: string;
}

/** Everything `batchlab doctor` prints about CUDA. Never throws. */
export function status(): CudaStatus {
  const s = load();
  return {
    available: s.ok,
    reason: s.ok ? (s.info?.reason ?? "") : s.reason,
    addonPath: s.file,
    addonLoaded: !!s.addon,
    deviceCount: s.info?.deviceCount ?? 0,
    runtimeVersion: s.info?.runtimeVersion ?? "",
    driverVersion: s.info?.driverVersion ?? "",
    targets: s.addon?.build?.targets ?? "",
  };
}

/** The addon with a usable device, or a CudaUnavailableError. */
export function device(): CudaAddon {
  const s = load();
  if (!s.ok || !s.addon) throw new CudaUnavailableError(s.reason);
  return s.addon;
}

/** The addon whether or not a device is present (emulatePlan and launchShape need no device). */
export function addonOnly(): CudaAddon {
  const s = load();
  if (!s.addon) throw new CudaUnavailableError(s.reason);
  return s.addon;
}

/** Calls the addon, turning its errors into the library's classes. */
export function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromNative(e, "ERR_CUDA");
  }
}

export async function callAsync<T>(f: () => Promise<T> | undefined): Promise<T> {
  try {
    return (await f()) as T;
  } catch (e) {
    throw fromNative(e, "ERR_CUDA");
  }
}
