/** Streams, events and host/device copies. */
import { OptionError } from "../errors";
import * as v from "../options";
import { call, callAsync, device, type RawEvent, type RawStream } from "../engines/addon-cuda";
import { DeviceBuffer, PinnedBuffer, hostData } from "./memory";

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
    const o = v.knownKeys<{ offset?: number }>(name, options, ["offset"]);
    const offset = o.offset === undefined ? 0 : v.bytes(`${name}.offset`, o.offset, 0);
    const n = h.byteLength;
    if (offset + n > buf.bytes) {
      throw new OptionError(`${name}.offset`, offset, `an offset with offset + ${n} bytes <= the device buffer's ${buf.bytes} bytes`);
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
    const o = v.knownKeys<{ timing?: boolean }>("Event", options, ["timing"]);
    if (o.timing !== undefined) v.bool("Event.timing", o.timing);
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
  const { stream, rest } = splitStream("copyToDevice", options);
  return copy(stream, true, dst, src, rest, "copyToDevice");
}

/** Copies a device buffer to host memory on `options.stream` (default stream otherwise). */
export function copyToHost(dst: ArrayBufferView | ArrayBuffer | PinnedBuffer, src: DeviceBuffer, options?: { offset?: number; stream?: Stream }): Promise<void> {
  const { stream, rest } = splitStream("copyToHost", options);
  return copy(stream, false, src, dst, rest, "copyToHost");
}

function splitStream(option: string, options: { offset?: number; stream?: Stream } | undefined): { stream: Stream | undefined; rest: { offset?: number } } {
  const o = v.knownKeys<{ offset?: number; stream?: Stream }>(option, options, ["offset", "stream"]);
  if (o.stream !== undefined && !(o.stream instanceof Stream)) throw new OptionError(`${option}.stream`, o.stream, "a cuda.Stream");
  const rest: { offset?: number } = {};
  if (o.offset !== undefined) rest.offset = o.offset as number;
  return { stream: o.stream as Stream | undefined, rest };
}

