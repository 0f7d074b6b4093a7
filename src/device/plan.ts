/**
 * The fused plan kernel from JavaScript: runPlan (to device memory), emulatePlan and launchShape
 * (the kernel's code on the CPU, no device needed). The addon checks every job in C++ and
 * refuses a bad one (code ERR_BATCHLAB_PLAN) naming the field.
 */
import { OptionError } from "../errors";
import { addonOnly, callAsync, call, device, type LaunchShape } from "../engines/addon-cuda";
import type { PlanJob } from "../engines/job";
import { DeviceBuffer } from "./memory";
import { Stream, defaultStream } from "./streams";
import * as v from "../options";

export type { LaunchShape, PlanJob };

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
  const j = job;
  const o = v.knownKeys<RunPlanOptions>("runPlan", options, ["stream", "output"]);
  if (o.stream !== undefined && !(o.stream instanceof Stream)) throw new OptionError("runPlan.stream", o.stream, "a cuda.Stream");
  if (o.output !== undefined && !(o.output instanceof DeviceBatch)) throw new OptionError("runPlan.output", o.output, "a cuda.DeviceBatch");
  const a = device();
  const stream = o.stream ?? defaultStream();
  const shape: [number, number, number, number] = [j.n, j.outC, j.outH, j.outW];
  const bytes = Math.max(4, j.n * j.outC * j.outH * j.outW * 4);
  let batch: DeviceBatch;
  const given = o.output;
  if (given) {
    if (given.freed || given.buffer.bytes < bytes) {
      throw new OptionError("runPlan.output", given, `a live DeviceBatch of at least ${bytes} bytes (shape ${shape.join("x")})`);
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
 * job check are tested on machines without a GPU.
 */
export function emulatePlan(job: PlanJob): Float32Array {
  const a = addonOnly();
  return call(() => a.emulatePlan(job));
}

/** The grid and block runPlan would use for a job (needs the addon, not a device). */
export function launchShape(job: PlanJob): LaunchShape {
  const a = addonOnly();
  return call(() => a.launchShape(job));
}

