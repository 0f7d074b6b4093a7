/** Devices, device memory and pinned (page-locked) host memory. */
import { BatchlabError, OptionError } from "../errors";
import * as v from "../options";
import { call, device, load, type DeviceInfo, type HostData, type MemInfo, type RawBuffer } from "../engines/addon-cuda";

export type { DeviceInfo, MemInfo };

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
  v.bytes("pinned(bytes)", bytes);
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


/** Device memory (cudaMalloc). Free it with free(); garbage collection frees it otherwise. */
export class DeviceBuffer {
  /** @internal */
  readonly raw: RawBuffer;
  constructor(bytes: number) {
    v.bytes("DeviceBuffer(bytes)", bytes);
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


export function hostData(option: string, x: unknown): HostData {
  if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer) return x;
  throw new OptionError(option, x, "a typed array, DataView or ArrayBuffer");
}
