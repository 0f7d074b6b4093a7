/**
 * Memory helpers: the largest batch that fits (a search over real out-of-memory failures) and
 * gradient accumulation (a large effective batch from small ones that fit).
 */
import { OptionError } from "../errors";
import * as v from "../options";

/** True for the out-of-memory errors of batchlab's CUDA engine and of TensorFlow.js. */
export function isOutOfMemory(e: unknown): boolean {
  if (!e || typeof e !== "object") return false;
  const err = e as { code?: unknown; name?: unknown; message?: unknown };
  if (err.code === "ERR_CUDA_OOM" || err.name === "CudaOutOfMemoryError") return true;
  return typeof err.message === "string" && /out of memory|\bOOM\b|failed to allocate/i.test(err.message);
}

export interface BatchSizeTrial {
  batchSize: number;
  ok: boolean;
  error?: string;
}

export interface BatchSizeSearch {
  /** Largest size that ran (0 if even `start` failed). */
  batchSize: number;
  trials: BatchSizeTrial[];
}

/**
 * Finds the largest batch size for which `attempt(size)` runs without running out of memory:
 * doubles from `start` until a failure (or `max`), then bisects between the last success and
 * the first failure. Errors that are not out-of-memory errors are rethrown at once.
 */
export async function findMaxBatchSize(
  attempt: (batchSize: number) => unknown | Promise<unknown>,
  options: { start?: number; max?: number; isOom?: (e: unknown) => boolean } = {},
): Promise<BatchSizeSearch> {
  if (typeof attempt !== "function") throw new OptionError("findMaxBatchSize(attempt)", attempt, "a function (batchSize) => void | Promise");
  v.knownKeys("findMaxBatchSize", options, ["start", "max", "isOom"]);
  const start = v.int("findMaxBatchSize.start", options.start ?? 1, 1);
  const max = v.int("findMaxBatchSize.max", options.max ?? 65536, start);
  const isOom = options.isOom ?? isOutOfMemory;
  const trials: BatchSizeTrial[] = [];
  const fits = async (size: number): Promise<boolean> => {
    try {
      await attempt(size);
      trials.push({ batchSize: size, ok: true });
      return true;
    } catch (e) {
      if (!isOom(e)) throw e;
      trials.push({ batchSize: size, ok: false, error: e instanceof Error ? e.message : String(e) });
      return false;
    }
  };
  let good = 0;
  let bad = 0;
  for (let size = start; ; size = Math.min(size * 2, max)) {
    if (await fits(size)) {
      good = size;
      if (size === max) return { batchSize: good, trials };
    } else {
      bad = size;
      break;
    }
  }
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (await fits(mid)) good = mid;
    else bad = mid;
  }
  return { batchSize: good, trials };
}

/** A gradient: a typed array, or a tensor with add/div (TensorFlow.js). */
type Grad = Float32Array | Float64Array | { add(o: unknown): unknown; div(s: number): unknown; dispose?(): void };

/**
 * Sums gradients over `steps` micro-batches and hands back their mean, so a training loop can
 * step the optimizer with an effective batch of steps x micro-batch size.
 */
export class GradientAccumulator {
  readonly steps: number;
  private sums: Map<string, Grad> = new Map();
  private count = 0;

  constructor(steps: number) {
    this.steps = v.int("GradientAccumulator(steps)", steps, 1);
  }

  /** Micro-batches added since the last take(). */
  get pending(): number {
    return this.count;
  }

  /** True when `steps` micro-batches have been added. */
  get ready(): boolean {
    return this.count >= this.steps;
  }

  /** Adds one micro-batch's gradients (same names and sizes every time). */
  add(grads: Record<string, Grad>): void {
    if (!grads || typeof grads !== "object") throw new OptionError("add(grads)", grads, "an object of named gradients");
    if (this.count > 0 && Object.keys(grads).length !== this.sums.size) {
      throw new OptionError("add(grads)", Object.keys(grads), `the same ${this.sums.size} names as the first micro-batch (${[...this.sums.keys()].join(", ")})`);
    }
    for (const [name, g] of Object.entries(grads)) {
      const prev = this.sums.get(name);
      if (ArrayBuffer.isView(g)) {
        const arr = g as Float32Array | Float64Array;
        if (!prev) this.sums.set(name, Float64Array.from(arr));
        else {
          const sum = prev as Float64Array;
          if (sum.length !== arr.length) throw new OptionError(`add(grads).${name}`, arr, `${sum.length} values like the first micro-batch`);
          for (let i = 0; i < arr.length; i++) sum[i] += arr[i]!;
        }
      } else if (g && typeof (g as { add?: unknown }).add === "function") {
        if (!prev) this.sums.set(name, g);
        else {
          const sum = (prev as { add(o: unknown): Grad }).add(g);
          (prev as { dispose?(): void }).dispose?.();
          this.sums.set(name, sum);
        }
      } else {
        throw new OptionError(`add(grads).${name}`, g, "a Float32Array/Float64Array or a tensor");
      }
    }
    this.count++;
  }

  /** The mean gradient over the micro-batches added, and a fresh start. */
  take(): Record<string, Float32Array | unknown> {
    if (this.count === 0) throw new OptionError("take()", 0, "at least one add() before take()");
    const out: Record<string, Float32Array | unknown> = {};
    for (const [name, sum] of this.sums) {
      if (sum instanceof Float64Array) out[name] = Float32Array.from(sum, (x) => x / this.count);
      else {
        out[name] = (sum as { div(s: number): unknown }).div(this.count);
        (sum as { dispose?(): void }).dispose?.();
      }
    }
    this.sums = new Map();
    this.count = 0;
    return out;
  }
}
