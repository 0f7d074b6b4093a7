/**
 * The Batch a loader yields: typed-array views, labels, indices, timings, and dispose(), which
 * gives the pixel buffer back to the engine's pool at once.
 */
import { DISPLAY, viewOf } from "../display/index";
import { BatchlabError, OptionError } from "../errors";
import * as v from "../options";
import type { DeviceTensor } from "../engines/index";
import type { Batch, StageTimings } from "./types";

export function makeBatch(
  images: Float32Array | undefined,
  shape: [number, number, number, number],
  labels: Int32Array,
  indices: Int32Array,
  epoch: number,
  batchIndex: number,
  timings: StageTimings,
  params: readonly unknown[],
  classNames: readonly string[] | undefined,
  targets: Float32Array | undefined,
  device: DeviceTensor | undefined,
  recycle: ((buffer: ArrayBuffer) => void) | undefined,
): Batch {
  let disposed = false;
  const batch = {
    get images(): Float32Array {
      if (disposed) throw new BatchlabError(`batch ${batchIndex} of epoch ${epoch} was disposed: read its images before batch.dispose()`, "ERR_BATCHLAB_DISPOSED");
      if (!images) throw new BatchlabError("this batch is in GPU memory (device: \"cuda\"): use await batch.device.toHost()", "ERR_BATCHLAB_ON_DEVICE");
      return images;
    },
    get disposed(): boolean {
      return disposed;
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      if (images && recycle) recycle(images.buffer as ArrayBuffer);
      images = undefined;
      device?.free(); // a CUDA batch: its device memory, now rather than at a collection
    },
    device,
    targets,
    shape,
    labels,
    indices,
    epoch,
    batchIndex,
    timings,
    params,
    classNames,
    toTensor(tf: unknown, options: { layout?: "NCHW" | "NHWC" } = {}) {
      const t = tf as {
        tensor4d?: (v: Float32Array, s: number[]) => { transpose(p: number[]): unknown; dispose(): void };
        tensor1d?: (v: Int32Array, d: string) => unknown;
      };
      if (!t || typeof t.tensor4d !== "function" || typeof t.tensor1d !== "function") {
        throw new OptionError("toTensor(tf)", tf, "the TensorFlow.js module (require(\"@tensorflow/tfjs\") or @tensorflow/tfjs-node-gpu)");
      }
      const layout = v.oneOf("toTensor.layout", options.layout ?? "NCHW", ["NCHW", "NHWC"] as const);
      const nchw = t.tensor4d(this.images, [...shape]);
      // A backend may keep the array itself (tfjs's CPU backend does): never reuse it then.
      recycle = undefined;
      let xs: unknown = nchw;
      if (layout === "NHWC") {
        xs = nchw.transpose([0, 2, 3, 1]);
        nchw.dispose();
      }
      return { xs, ys: t.tensor1d(labels, "int32") };
    },
    [DISPLAY]() {
      const text = () => summarizeBatch(this as Batch);
      if (disposed) return { "text/plain": text() };
      // The viz stage registers showBatch's grid; without it (or for a batch it cannot draw), text.
      return viewOf("batch", this, text);
    },
  };
  const dispose = (Symbol as { dispose?: symbol }).dispose;
  if (dispose) Object.defineProperty(batch, dispose, { value: batch.dispose });
  return batch as Batch;
}

export function summarizeBatch(b: Batch): string {
  const [n, c, h, w] = b.shape;
  const lines = [`Batch ${b.batchIndex} of epoch ${b.epoch}: ${n} x ${c} x ${h} x ${w} float32`];
  if (b.disposed) return `${lines[0]} (disposed: its pixels were given back)`;
  const plane = h * w;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const base = (i * c + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const x = b.images[base + p]!;
        s += x;
        s2 += x * x;
      }
    }
    const m = s / (n * plane);
    lines.push(`  channel ${ch}: mean ${m.toFixed(4)}, std ${Math.sqrt(Math.max(0, s2 / (n * plane) - m * m)).toFixed(4)}`);
  }
  const counts = new Map<number, number>();
  for (const l of b.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const name = (l: number) => b.classNames?.[l] ?? String(l);
  lines.push("  labels: " + [...counts.entries()].sort((a, z) => a[0] - z[0]).map(([l, k]) => `${name(l)}=${k}`).join(", "));
  const t = b.timings;
  lines.push(`  ms: sample ${t.sample.toFixed(2)}, fetch ${t.fetch.toFixed(2)}, transform ${t.transform.toFixed(2)}, collate ${t.collate.toFixed(2)}`);
  return lines.join("\n");
}
