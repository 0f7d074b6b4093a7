/**
 * The buffer pool: the one place where memory for batches is reused. Each engine owns one.
 *
 * - Batch outputs: `output(count)` hands out a Float32Array; `give(buffer)` takes a disposed
 *   batch's buffer back at once. Behind it is the engine's own memory when it has some (the CPU
 *   addon's recycling allocator: external buffers whose memory also comes back when the garbage
 *   collector frees a batch nobody disposed, so no page faults per batch), else a spare list of
 *   detached buffers by size, else a fresh buffer.
 * - Job arrays (parameter blocks, taps, source sizes): `float32(slot, n)` / `int32(slot, n)`
 *   reuse the arrays of a finished job of the same size; `giveJob(job)` returns them.
 *
 * Whatever is given back is detached or no longer referenced by its batch, so no view a caller
 * kept can ever show a later batch's pixels.
 */

/** Memory an engine manages itself (the CPU addon's allocOutput / releaseOutput). */
export interface EngineMemory {
  /** A buffer of `bytes`, or undefined to fall back to the pool's own. */
  alloc(bytes: number): ArrayBuffer | undefined;
  /** Takes back a buffer that alloc() gave out (detached at once); false for any other buffer. */
  release(buffer: ArrayBuffer): boolean;
}

/** Most bytes of disposed batches' buffers the pool keeps, and most buffers of one size. */
const SPARE_LIMIT = 512 * 2 ** 20;
const SPARE_PER_SIZE = 6;
/** Most finished jobs' arrays kept per slot and length. */
const JOB_SPARES = 4;

type JobSlot = "params" | "srcDims" | "tapIndex" | "tapWeight";
/** The per-batch arrays of a plan job (job.ts), the ones the pool reuses. */
type JobArrays = { params: Float32Array; srcDims: Int32Array; tapIndex: Int32Array; tapWeight: Float32Array };

export class BufferPool {
  private readonly spare = new Map<number, ArrayBuffer[]>();
  private spareBytes = 0;
  private readonly jobSpare = new Map<string, (Float32Array | Int32Array)[]>();

  /** `recycle` false: given-back buffers are left to the garbage collector (pinned memory). */
  constructor(
    private readonly memory?: EngineMemory,
    private readonly recycle = true,
  ) {}

  /** A Float32Array of `count` elements for a batch (its contents are about to be overwritten). */
  output(count: number): Float32Array {
    const bytes = count * 4;
    const list = this.spare.get(bytes);
    const kept = list?.pop();
    if (kept) {
      this.spareBytes -= bytes;
      return new Float32Array(kept, 0, count);
    }
    const own = this.memory?.alloc(bytes);
    if (own) return new Float32Array(own, 0, count);
    // Every element is written by the engine, so skip the zero-fill of a fresh ArrayBuffer.
    const b = Buffer.allocUnsafeSlow(bytes);
    return new Float32Array(b.buffer, b.byteOffset, count);
  }

  /**
   * Takes back a disposed batch's buffer. It is detached first (its memory moves to a buffer
   * only the pool holds, or back to the engine's memory), so views the caller kept read as
   * empty. Beyond SPARE_PER_SIZE buffers of a size, or SPARE_LIMIT bytes in all, the garbage
   * collector gets it.
   */
  give(buffer: ArrayBuffer): void {
    const bytes = buffer.byteLength;
    if (bytes === 0 || !this.recycle) return; // already detached, or not ours to reuse
    if (this.memory?.release(buffer)) return;
    let moved: ArrayBuffer;
    try {
      moved = structuredClone(buffer, { transfer: [buffer] });
    } catch {
      return; // not transferable: the garbage collector frees it
    }
    // A buffer the runtime will not detach is cloned instead: the caller's views still see it,
    // so the copy is not worth keeping.
    if (buffer.byteLength !== 0) return;
    const list = this.spare.get(bytes) ?? [];
    if (list.length >= SPARE_PER_SIZE || this.spareBytes + bytes > SPARE_LIMIT) return;
    list.push(moved);
    this.spare.set(bytes, list);
    this.spareBytes += bytes;
  }

  float32(slot: JobSlot, length: number): Float32Array {
    const a = this.jobSpare.get(`${slot}:${length}`)?.pop();
    return a instanceof Float32Array ? a : new Float32Array(length);
  }

  int32(slot: JobSlot, length: number): Int32Array {
    const a = this.jobSpare.get(`${slot}:${length}`)?.pop();
    return a instanceof Int32Array ? a : new Int32Array(length);
  }

  /**
   * Gives a finished job's arrays back (only after the engine succeeded: a failed job may still
   * be read by pool threads). Every element is rewritten by the next encodeJob.
   */
  giveJob(job: JobArrays): void {
    this.keep("params", job.params);
    this.keep("srcDims", job.srcDims);
    this.keep("tapIndex", job.tapIndex);
    this.keep("tapWeight", job.tapWeight);
  }

  private keep(slot: JobSlot, a: Float32Array | Int32Array): void {
    const key = `${slot}:${a.length}`;
    const list = this.jobSpare.get(key) ?? [];
    if (list.length >= JOB_SPARES) return;
    list.push(a);
    this.jobSpare.set(key, list);
  }
}
