/**
 * The `cuda` namespace: availability and device info, pinned host buffers, streams, events,
 * async copies, the fused augmentation kernel, and a pinned-vs-pageable transfer benchmark.
 *
 * The addon (build/Release/batchlab_cuda.node) is loaded on first use. Without it, or without
 * a device or driver, `available()` is false, `unavailableReason()` says why, and every other
 * call throws a `CudaUnavailableError` carrying that reason. `emulatePlan()` needs the addon
 * only: it runs the kernel's own per-pixel code on the CPU.
 *
 * Errors: arguments are checked here (OptionError naming the argument); CUDA failures arrive as
 * NativeError (code ERR_CUDA, or ERR_BATCHLAB_PLAN for a malformed plan job), and allocation
 * failures as CudaOutOfMemoryError with the bytes asked for and the bytes free.
 */
import * as path from "path";
import { BatchlabError, CudaOutOfMemoryError, NativeError, OptionError } from "../errors";
import type { EncodedBatch } from "../transforms/index";

// ---------------------------------------------------------------------------------------------
// The raw addon

interface RawAvailability {
  ok: boolean;
  reason: string;
  deviceCount: number;
  runtimeVersion: string;
  driverVersion: string;
  error: string;
}
interface RawStream {
  synchronize(): void;
  query(): boolean;
  done(): Promise<void>;
  destroy(): void;
  readonly destroyed: boolean;
}
interface RawEvent {
  record(stream: RawStream): void;
  query(): boolean;
  synchronize(): void;
  elapsedSince(start: RawEvent): number;
  destroy(): void;
}
interface RawBuffer {
  readonly bytes: number;
  readonly freed: boolean;
  free(): void;
}
type HostData = ArrayBufferView | ArrayBuffer;
interface Addon {
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

/** The plan job of native/PLAN_ABI.md (what `Plan.encode` returns); `out`/`numThreads` are not used here. */
export type PlanJob = EncodedBatch;

/** How runPlan launches a job: grid (x: pixel blocks, y: samples) and threads per block. */
export interface LaunchShape {
  gridX: number;
  gridY: number;
  block: number;
}

/** Thrown by every CUDA call when there is no addon, no driver or no device. */
export class CudaUnavailableError extends BatchlabError {
  readonly reason: string;
  constructor(reason: string) {
    super(`CUDA is unavailable: ${reason}`, "ERR_CUDA_UNAVAILABLE");
    this.reason = reason;
  }
}

/** Where the addon is looked for; BATCHLAB_CUDA_ADDON overrides it (read at first use). */
export function addonPath(): string {
  return process.env.BATCHLAB_CUDA_ADDON || path.join(__dirname, "..", "..", "build", "Release", "batchlab_cuda.node");
}

interface LoadState {
  addon: Addon | undefined;
  /** Why the addon is absent, or why it has no usable device; "" when CUDA is usable. */
  reason: string;
  ok: boolean;
  file: string;
  info: RawAvailability | undefined;
}
let state: LoadState | undefined;

function load(): LoadState {
  if (state) return state;
  const file = addonPath();
  let addon: Addon | undefined;
  let reason = "";
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as Addon;
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

/** The addon, or a CudaUnavailableError. */
function device(): Addon {
  const s = load();
  if (!s.ok || !s.addon) throw new CudaUnavailableError(s.reason);
  return s.addon;
}

interface NativeErrorShape {
  code?: string;
  message?: string;
  requestedBytes?: number;
  freeBytes?: number;
  what?: string;
}

/** Turns an error from the addon into the library's error classes. */
function translate(e: unknown): Error {
  if (e instanceof BatchlabError) return e;
  const x = (e ?? {}) as NativeErrorShape;
  const message = typeof x.message === "string" ? x.message : String(e);
  if (x.code === "ERR_CUDA_OOM") return new CudaOutOfMemoryError(x.what ?? "allocation", Number(x.requestedBytes ?? 0), Number(x.freeBytes ?? 0));
  if (x.code === "ERR_CUDA_UNAVAILABLE") return new CudaUnavailableError(message.replace(/^CUDA is unavailable: /, ""));
  return new NativeError(message, typeof x.code === "string" && x.code.startsWith("ERR_") ? x.code : "ERR_CUDA");
}

function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw translate(e);
  }
}

async function callAsync<T>(f: () => Promise<T> | undefined): Promise<T> {
  try {
    return (await f()) as T;
  } catch (e) {
    throw translate(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Argument checks

const MAX_BYTES = Number.MAX_SAFE_INTEGER;

function byteCount(option: string, v: unknown, min = 1): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > MAX_BYTES) {
    throw new OptionError(option, v, `an integer number of bytes >= ${min}`);
  }
  return v;
}

function hostData(option: string, v: unknown): HostData {
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
  throw new OptionError(option, v, "a typed array, DataView or ArrayBuffer");
}

function byteLengthOf(v: HostData): number {
  return v.byteLength;
}

function optionsObject(option: string, v: unknown, keys: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new OptionError(option, v, "an options object");
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new OptionError(`${option}.${k}`, (v as Record<string, unknown>)[k], `no such option (known: ${keys.join(", ")})`);
  }
  return v as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Devices

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

export function devices(): DeviceInfo[] {
  const a = device();
  return call(() => a.devices());
}

/** Free and total memory of the current device, in bytes. */
export function memInfo(): MemInfo {
  const a = device();
  return call(() => a.memInfo());
}

/** Peak memory bandwidth of a device in bytes/s (double data rate x bus width), or 0 if unknown. */
export function peakBandwidth(info: DeviceInfo): number {
  return 2 * info.memoryClockKHz * 1e3 * (info.memoryBusWidth / 8);
}

/** Makes `index` the current device of this thread: later streams, buffers and kernels use it. */
export function setDevice(index: number): void {
  const a = device();
  const count = load().info?.deviceCount ?? 0;
  if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new OptionError("setDevice(index)", index, `an integer in [0, ${count - 1}] (${count} device(s))`);
  }
  call(() => a.setDevice(index));
}

export function currentDevice(): number {
  const a = device();
  return call(() => a.getDevice());
}

// ---------------------------------------------------------------------------------------------
// Pinned host memory

/** Page-locked host memory (cudaHostAlloc) seen from JavaScript as an ArrayBuffer. */
export class PinnedBuffer {
  readonly bytes: number;
  private buf: ArrayBuffer | undefined;
  /** @internal */
  constructor(buffer: ArrayBuffer) {
    this.buf = buffer;
    this.bytes = buffer.byteLength;
  }
  /** The memory; throws after free(). */
  get buffer(): ArrayBuffer {
    if (!this.buf) throw new BatchlabError(`this pinned buffer of ${this.bytes} bytes was freed`, "ERR_CUDA_FREED");
    return this.buf;
  }
  get freed(): boolean {
    return this.buf === undefined;
  }
  uint8(): Uint8Array {
    return new Uint8Array(this.buffer);
  }
  float32(): Float32Array {
    if (this.bytes % 4 !== 0) throw new OptionError("float32()", this.bytes, "a pinned buffer whose size is a multiple of 4 bytes");
    return new Float32Array(this.buffer);
  }
  /**
   * Frees the memory now (otherwise garbage collection frees it). Views of it become empty.
   * Call it only after copies that use it have completed.
   */
  free(): void {
    const b = this.buf;
    if (!b) return;
    this.buf = undefined;
    const a = load().addon;
    if (a) call(() => a.pinnedFree(b));
  }
}

/** Allocates `bytes` of pinned host memory: copies from it are asynchronous and run at full bus speed. */
export function pinned(bytes: number): PinnedBuffer {
  byteCount("pinned(bytes)", bytes);
  const a = device();
  return new PinnedBuffer(call(() => a.pinnedAlloc(bytes)));
}

/** Whether a view lies inside pinned memory allocated by pinned(). */
export function isPinned(view: ArrayBufferView | ArrayBuffer | PinnedBuffer): boolean {
  if (view instanceof PinnedBuffer) return !view.freed;
  const v = hostData("isPinned(view)", view);
  const a = load().addon;
  return a ? call(() => a.isPinned(v)) : false;
}

// ---------------------------------------------------------------------------------------------
// Streams, events, device buffers

/** Device memory (cudaMalloc). Free it with free(); garbage collection frees it otherwise. */
export class DeviceBuffer {
  /** @internal */
  readonly raw: RawBuffer;
  constructor(bytes: number) {
    byteCount("DeviceBuffer(bytes)", bytes);
    const a = device();
    this.raw = call(() => new a.DeviceBuffer(bytes));
  }
  get bytes(): number {
    return this.raw.bytes;
  }
  get freed(): boolean {
    return this.raw.freed;
  }
  free(): void {
    call(() => this.raw.free());
  }
}

/** A CUDA stream (non-blocking): work on one stream runs in order, streams overlap each other. */
export class Stream {
  /** @internal */
  readonly raw: RawStream;
  constructor() {
    const a = device();
    this.raw = call(() => new a.Stream());
  }
  /** Resolves when everything enqueued so far has completed (rejects if it failed). */
  done(): Promise<void> {
    return callAsync(() => this.raw.done());
  }
  /** Blocks the thread until the stream is idle. Prefer `await done()`. */
  synchronize(): void {
    call(() => this.raw.synchronize());
  }
  /** True when the stream is idle. */
  query(): boolean {
    return call(() => this.raw.query());
  }
  get destroyed(): boolean {
    return this.raw.destroyed;
  }
  /** Waits for the stream's work, then releases it and its staging memory. */
  destroy(): void {
    call(() => this.raw.destroy());
  }
  /**
   * Copies `src` into `dst` at `offset` bytes. Pinned sources copy asynchronously; pageable
   * ones are staged by CUDA and hold the thread for about the copy's duration.
   */
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView | ArrayBuffer | PinnedBuffer, options?: { offset?: number }): Promise<void> {
    return copy(this, true, dst, src, options, "copyToDevice");
  }
  /** Copies device bytes at `offset` into all of `dst`. */
  copyToHost(dst: ArrayBufferView | ArrayBuffer | PinnedBuffer, src: DeviceBuffer, options?: { offset?: number }): Promise<void> {
    return copy(this, false, src, dst, options, "copyToHost");
  }
}

function copy(
  stream: Stream | undefined,
  toDevice: boolean,
  buf: DeviceBuffer,
  host: ArrayBufferView | ArrayBuffer | PinnedBuffer,
  options: { offset?: number } | undefined,
  name: string,
): Promise<void> {
  return (async () => {
    if (!(buf instanceof DeviceBuffer)) throw new OptionError(`${name}(${toDevice ? "dst" : "src"})`, buf, "a cuda.DeviceBuffer");
    const h = host instanceof PinnedBuffer ? host.buffer : hostData(`${name}(${toDevice ? "src" : "dst"})`, host);
    const o = optionsObject(`${name}(options)`, options, ["offset"]);
    const offset = o.offset === undefined ? 0 : byteCount(`${name}(options).offset`, o.offset, 0);
    const n = byteLengthOf(h);
    if (offset + n > buf.bytes) {
      throw new OptionError(`${name}(options).offset`, offset, `an offset with offset + ${n} bytes <= the device buffer's ${buf.bytes} bytes`);
    }
    const a = device();
    const s = stream ?? defaultStream();
    await callAsync(() => a.copy(s.raw, toDevice, buf.raw, offset, h, true));
  })();
}

/** A CUDA event: record it on a stream, then time the work between two events. */
export class Event {
  /** @internal */
  readonly raw: RawEvent;
  constructor(options?: { timing?: boolean }) {
    const o = optionsObject("Event(options)", options, ["timing"]);
    if (o.timing !== undefined && typeof o.timing !== "boolean") throw new OptionError("Event(options).timing", o.timing, "true or false");
    const a = device();
    this.raw = call(() => new a.Event(o.timing !== false));
  }
  record(stream: Stream): this {
    if (!(stream instanceof Stream)) throw new OptionError("record(stream)", stream, "a cuda.Stream");
    call(() => this.raw.record(stream.raw));
    return this;
  }
  /** True once the work recorded before this event has completed. */
  query(): boolean {
    return call(() => this.raw.query());
  }
  synchronize(): void {
    call(() => this.raw.synchronize());
  }
  /** Milliseconds from `start` to this event (both recorded and completed). */
  elapsedSince(start: Event): number {
    if (!(start instanceof Event)) throw new OptionError("elapsedSince(start)", start, "a cuda.Event");
    return call(() => this.raw.elapsedSince(start.raw));
  }
  destroy(): void {
    call(() => this.raw.destroy());
  }
}

let defaultStreamValue: Stream | undefined;
/** The stream used when none is given (created on first use). */
export function defaultStream(): Stream {
  if (!defaultStreamValue || defaultStreamValue.destroyed) defaultStreamValue = new Stream();
  return defaultStreamValue;
}

/** Copies host memory to a device buffer on `options.stream` (default stream otherwise). */
export function copyToDevice(dst: DeviceBuffer, src: ArrayBufferView | ArrayBuffer | PinnedBuffer, options?: { offset?: number; stream?: Stream }): Promise<void> {
  const { stream, rest } = splitStream("copyToDevice(options)", options);
  return copy(stream, true, dst, src, rest, "copyToDevice");
}

/** Copies a device buffer to host memory on `options.stream` (default stream otherwise). */
export function copyToHost(dst: ArrayBufferView | ArrayBuffer | PinnedBuffer, src: DeviceBuffer, options?: { offset?: number; stream?: Stream }): Promise<void> {
  const { stream, rest } = splitStream("copyToHost(options)", options);
  return copy(stream, false, src, dst, rest, "copyToHost");
}

function splitStream(option: string, options: { offset?: number; stream?: Stream } | undefined): { stream: Stream | undefined; rest: { offset?: number } } {
  const o = optionsObject(option, options, ["offset", "stream"]);
  if (o.stream !== undefined && !(o.stream instanceof Stream)) throw new OptionError(`${option}.stream`, o.stream, "a cuda.Stream");
  const rest: { offset?: number } = {};
  if (o.offset !== undefined) rest.offset = o.offset as number;
  return { stream: o.stream as Stream | undefined, rest };
}

// ---------------------------------------------------------------------------------------------
// The fused plan kernel

/** A float32 N x C x H x W batch in device memory. */
export class DeviceBatch {
  readonly shape: readonly [number, number, number, number];
  readonly bytes: number;
  readonly buffer: DeviceBuffer;
  private streamValue: Stream;
  /** Device milliseconds of the last runPlan into this batch: host-to-device copy, kernel. */
  timings: { copy: number; kernel: number };
  /** @internal */
  constructor(shape: [number, number, number, number], buffer: DeviceBuffer, stream: Stream) {
    this.shape = shape;
    this.bytes = shape[0] * shape[1] * shape[2] * shape[3] * 4;
    this.buffer = buffer;
    this.streamValue = stream;
    this.timings = { copy: 0, kernel: 0 };
  }
  /** The stream its last kernel ran on; toHost() copies on it, so the copy follows the kernel. */
  get stream(): Stream {
    return this.streamValue;
  }
  /** @internal */
  setStream(stream: Stream): void {
    this.streamValue = stream;
  }
  get freed(): boolean {
    return this.buffer.freed;
  }
  /** Copies the batch to host memory: `into` (pinned views copy asynchronously) or a new Float32Array. */
  async toHost(into?: Float32Array): Promise<Float32Array> {
    const count = this.bytes / 4;
    if (into !== undefined && (!(into instanceof Float32Array) || into.length < count)) {
      throw new OptionError("toHost(into)", into, `a Float32Array of at least ${count} elements`);
    }
    const out = into ? (into.length === count ? into : into.subarray(0, count)) : new Float32Array(count);
    await this.stream.copyToHost(out, this.buffer);
    return out;
  }
  free(): void {
    this.buffer.free();
  }
}

const JOB_INTS = ["n", "inC", "outC", "outH", "outW", "K"] as const;

/** Type and length checks of a plan job; indices are checked again by the addon. */
function checkJob(option: string, job: unknown): PlanJob {
  if (job === null || typeof job !== "object") throw new OptionError(option, job, "a plan job object (Plan.encode's result)");
  const j = job as Record<string, unknown>;
  for (const k of JOB_INTS) {
    const v = j[k];
    const min = k === "n" ? 0 : 1;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new OptionError(`${option}.${k}`, v, `an integer >= ${min}`);
  }
  const n = j.n as number;
  if ((j.inC as number) > 4 || (j.outC as number) > 4) {
    throw new OptionError(`${option}.${(j.inC as number) > 4 ? "inC" : "outC"}`, (j.inC as number) > 4 ? j.inC : j.outC, "at most 4 channels (the CUDA engine's limit)");
  }
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  const typed = (k: string, ctor: Function, length?: number): void => {
    const v = j[k];
    if (!(v instanceof ctor)) throw new OptionError(`${option}.${k}`, v, `a ${ctor.name}`);
    if (length !== undefined && (v as ArrayLike<number>).length !== length) {
      throw new OptionError(`${option}.${k}`, v, `a ${ctor.name} of length ${length}`);
    }
  };
  if (!Array.isArray(j.sources) || j.sources.length !== n) throw new OptionError(`${option}.sources`, j.sources, `an array of n = ${n} Uint8Array`);
  j.sources.forEach((s: unknown, i: number) => {
    if (!(s instanceof Uint8Array)) throw new OptionError(`${option}.sources[${i}]`, s, "a Uint8Array (HWC pixels)");
  });
  const taps = n * ((j.outH as number) + (j.outW as number)) * (j.K as number);
  typed("srcDims", Int32Array, 2 * n);
  typed("tapIndex", Int32Array, taps);
  typed("tapWeight", Float32Array, taps);
  typed("fill", Float32Array);
  typed("program", Int32Array);
  typed("opOffsets", Int32Array, (j.program as Int32Array).length);
  typed("params", Float32Array);
  if ((j.fill as Float32Array).length < (j.inC as number)) throw new OptionError(`${option}.fill`, j.fill, `a Float32Array of length inC = ${j.inC}`);
  if (n > 0 && (j.params as Float32Array).length % n !== 0) throw new OptionError(`${option}.params`, j.params, `a Float32Array whose length is a multiple of n = ${n}`);
  return job as PlanJob;
}

export interface RunPlanOptions {
  /** Stream to run on (default: defaultStream()). Batches on different streams overlap. */
  stream?: Stream;
  /** Reuse this batch's device memory (it must be large enough); otherwise a new one is allocated. */
  output?: DeviceBatch;
}

/**
 * Runs a plan job on the GPU: copies the uint8 sources and the job's arrays to the device (one
 * copy, or straight from pinned memory when every source lies in one pinned() buffer) and runs
 * the fused kernel. Resolves when the batch is in device memory; `timings` holds the device
 * times of the copy and of the kernel.
 */
export async function runPlan(job: PlanJob, options?: RunPlanOptions): Promise<DeviceBatch> {
  const j = checkJob("runPlan(job)", job);
  const o = optionsObject("runPlan(options)", options, ["stream", "output"]);
  if (o.stream !== undefined && !(o.stream instanceof Stream)) throw new OptionError("runPlan(options).stream", o.stream, "a cuda.Stream");
  if (o.output !== undefined && !(o.output instanceof DeviceBatch)) throw new OptionError("runPlan(options).output", o.output, "a cuda.DeviceBatch");
  const a = device();
  const stream = (o.stream as Stream | undefined) ?? defaultStream();
  const shape: [number, number, number, number] = [j.n, j.outC, j.outH, j.outW];
  const bytes = Math.max(4, j.n * j.outC * j.outH * j.outW * 4);
  let batch: DeviceBatch;
  const given = o.output as DeviceBatch | undefined;
  if (given) {
    if (given.freed || given.buffer.bytes < bytes) {
      throw new OptionError("runPlan(options).output", given, `a live DeviceBatch of at least ${bytes} bytes (shape ${shape.join("x")})`);
    }
    batch = given.shape.every((d, i) => d === shape[i]) ? given : new DeviceBatch(shape, given.buffer, stream);
    batch.setStream(stream);
  } else {
    batch = new DeviceBatch(shape, new DeviceBuffer(bytes), stream);
  }
  try {
    const t = await callAsync(() => a.runPlan(j, batch.buffer.raw, stream.raw));
    batch.timings = { copy: t.copyMs, kernel: t.kernelMs };
  } catch (e) {
    if (!given) batch.free();
    throw e;
  }
  return batch;
}

/**
 * Runs the CUDA kernel's per-pixel code on the CPU (one thread, row-major order) and returns
 * the NCHW output. Needs the addon, not a device: it is how the kernel's arithmetic and the
 * job checks are tested on machines without a GPU.
 */
export function emulatePlan(job: PlanJob): Float32Array {
  const j = checkJob("emulatePlan(job)", job);
  const s = load();
  if (!s.addon) throw new CudaUnavailableError(s.reason);
  const a = s.addon;
  return call(() => a.emulatePlan(j));
}

/** The grid and block runPlan would use for a job (needs the addon, not a device). */
export function launchShape(job: PlanJob): LaunchShape {
  const j = checkJob("launchShape(job)", job);
  const s = load();
  if (!s.addon) throw new CudaUnavailableError(s.reason);
  const a = s.addon;
  return call(() => a.launchShape(j));
}

// ---------------------------------------------------------------------------------------------
// Transfer benchmark

export interface TransferResult {
  bytes: number;
  /** Copies timed per measurement. */
  repeats: number;
  /** Mean device milliseconds of one copy. */
  pageableMs: number;
  pinnedMs: number;
  /** Bytes per second / 1e9. */
  pageableGBps: number;
  pinnedGBps: number;
  /** pinnedGBps / pageableGBps. */
  pinnedSpeedup: number;
}

export interface TransferBenchmarkOptions {
  /** "h2d" (default) or "d2h". */
  direction?: "h2d" | "d2h";
  /** Copies per size; default: enough for about 512 MiB, between 3 and 200. */
  repeats?: number;
}

/** Sizes 1 KiB .. 256 MiB, every power of 4. */
export const DEFAULT_TRANSFER_SIZES: readonly number[] = Array.from({ length: 10 }, (_, i) => 1024 * 4 ** i);

/**
 * Host-to-device (or device-to-host) bandwidth by size, pageable memory vs pinned memory,
 * timed with CUDA events around back-to-back copies on one stream.
 */
export async function transferBenchmark(sizes: readonly number[] = DEFAULT_TRANSFER_SIZES, options?: TransferBenchmarkOptions): Promise<TransferResult[]> {
  if (!Array.isArray(sizes) || sizes.length === 0 || !sizes.every((s) => typeof s === "number" && Number.isInteger(s) && s >= 1 && s <= 2 ** 34)) {
    throw new OptionError("transferBenchmark(sizes)", sizes, "a non-empty array of byte counts, integers in [1, 2^34]");
  }
  const o = optionsObject("transferBenchmark(options)", options, ["direction", "repeats"]);
  const direction = o.direction ?? "h2d";
  if (direction !== "h2d" && direction !== "d2h") throw new OptionError("transferBenchmark(options).direction", o.direction, '"h2d" or "d2h"');
  if (o.repeats !== undefined && (typeof o.repeats !== "number" || !Number.isInteger(o.repeats) || o.repeats < 1 || o.repeats > 100000)) {
    throw new OptionError("transferBenchmark(options).repeats", o.repeats, "an integer in [1, 100000]");
  }
  const a = device();
  const toDevice = direction === "h2d";
  const max = Math.max(...sizes);
  const pinnedBuf = pinned(max);
  const pageable = new Uint8Array(max);
  let dev: DeviceBuffer | undefined;
  let stream: Stream | undefined;
  let start: Event | undefined;
  let end: Event | undefined;
  try {
    pageable.fill(7); // touch every page so page faults are not timed
    pinnedBuf.uint8().fill(7);
    dev = new DeviceBuffer(max);
    stream = new Stream();
    start = new Event();
    end = new Event();
    const results: TransferResult[] = [];
    for (const size of sizes) {
      const repeats = (o.repeats as number | undefined) ?? Math.min(200, Math.max(3, Math.ceil(2 ** 29 / size)));
      const time = async (host: Uint8Array): Promise<number> => {
        const view = host.subarray(0, size);
        call(() => a.copy(stream!.raw, toDevice, dev!.raw, 0, view, false)); // warm-up
        await stream!.done();
        start!.record(stream!);
        for (let r = 0; r < repeats; r++) call(() => a.copy(stream!.raw, toDevice, dev!.raw, 0, view, false));
        end!.record(stream!);
        await stream!.done(); // `view` stays referenced until here
        return end!.elapsedSince(start!) / repeats;
      };
      const pageableMs = await time(pageable);
      const pinnedMs = await time(pinnedBuf.uint8());
      const gbps = (ms: number): number => (ms > 0 ? size / (ms * 1e-3) / 1e9 : Infinity);
      results.push({
        bytes: size,
        repeats,
        pageableMs,
        pinnedMs,
        pageableGBps: gbps(pageableMs),
        pinnedGBps: gbps(pinnedMs),
        pinnedSpeedup: pageableMs / pinnedMs,
      });
    }
    return results;
  } finally {
    start?.destroy();
    end?.destroy();
    stream?.destroy();
    dev?.free();
    pinnedBuf.free();
  }
}
import "./engine";
