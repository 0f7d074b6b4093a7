/**
 * The pinned-vs-pageable transfer benchmark behind plotTransfer: host-to-device (or back)
 * bandwidth by size, timed with CUDA events around back-to-back copies on one stream.
 */
import { OptionError } from "../errors";
import * as v from "../options";
import { DeviceBuffer, Event, Stream, pinned } from "../device/index";

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
  const o = v.knownKeys<TransferBenchmarkOptions>("transferBenchmark", options, ["direction", "repeats"]);
  const direction = v.oneOf("transferBenchmark.direction", o.direction ?? "h2d", ["h2d", "d2h"] as const);
  const fixedRepeats = o.repeats === undefined ? undefined : v.int("transferBenchmark.repeats", o.repeats, 1, 100000);
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
      const repeats = fixedRepeats ?? Math.min(200, Math.max(3, Math.ceil(2 ** 29 / size)));
      const time = async (host: Uint8Array): Promise<number> => {
        const view = host.subarray(0, size);
        const once = (): Promise<void> => (toDevice ? stream!.copyToDevice(dev!, view) : stream!.copyToHost(view, dev!));
        await once(); // warm-up
        start!.record(stream!);
        // Each copy is enqueued as it is called: `repeats` back to back, awaited together.
        const copies: Promise<void>[] = [];
        for (let r = 0; r < repeats; r++) copies.push(once());
        end!.record(stream!);
        await Promise.all(copies);
        await stream!.done();
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

