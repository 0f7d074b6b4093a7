/**
 * In-memory datasets: one uint8 buffer of N x H x W x C pixels and one label per image. Samples
 * are views into that buffer (never copies), so the native engine reads pixels in place, and
 * get(i) answers synchronously.
 */
import { OptionError } from "../errors";
import { checkIndex, classNamesOption } from "./check";
import * as v from "../options";
import { knownKeys as checkOptions } from "../options";
import { DISPLAY, type MimeData } from "../display/index";
import { describeDataset } from "./display";
import type { Dataset, Image, PixelStore, Sample } from "./types";

export interface ArrayDatasetOptions {
  classNames?: readonly string[];
  /** Where the data came from (a file), for display and error messages. */
  source?: string;
  /** What to call the dataset in its notebook view. */
  kind?: string;
}

/** N images of one shape in one buffer, with labels. Built by fromArrays, idx, npy, cifar10... */
export class ArrayDataset implements Dataset {
  readonly length: number;
  readonly shape: readonly [number, number, number];
  readonly classNames?: readonly string[];
  /** All pixels, N x H x W x C, row-major. Samples are subarrays of it. */
  readonly pixels: Uint8Array;
  readonly source?: string;
  readonly kind: string;
  private readonly labelArray: Int32Array;
  private readonly imageSize: number;

  constructor(pixels: Uint8Array, shape: readonly [number, number, number, number], labels: Int32Array, options: ArrayDatasetOptions = {}) {
    const [n, h, w, c] = shape;
    if (pixels.length !== n * h * w * c) throw new OptionError("ArrayDataset(pixels)", pixels, `${n * h * w * c} values for shape [${shape.join(", ")}]`);
    if (labels.length !== n) throw new OptionError("ArrayDataset(labels)", labels, `${n} labels (one per image)`);
    this.pixels = pixels;
    this.length = n;
    this.shape = Object.freeze([h, w, c] as [number, number, number]);
    this.imageSize = h * w * c;
    this.labelArray = labels;
    if (options.classNames) this.classNames = options.classNames;
    if (options.source !== undefined) this.source = options.source;
    this.kind = options.kind ?? "ArrayDataset";
  }

  get(i: number): Sample {
    checkIndex(i, this.length);
    const [h, w, c] = this.shape;
    const start = i * this.imageSize;
    const image: Image = { data: this.pixels.subarray(start, start + this.imageSize), height: h, width: w, channels: c };
    return this.source === undefined ? { image, label: this.labelArray[i]!, index: i } : { image, label: this.labelArray[i]!, index: i, path: this.source };
  }

  /**
   * The first `n` samples from `start` (default 0), fewer at the end of the dataset: a quick
   * look (`showBatch(ds.take(8))`). The images are views of the dataset's pixels.
   */
  take(n: number, start = 0): Sample[] {
    const count = v.int("take(n)", n, 0);
    const from = v.int("take(start)", start, 0, this.length);
    const out: Sample[] = [];
    for (let i = from; i < Math.min(this.length, from + count); i++) out.push(this.get(i));
    return out;
  }

  /** The labels, one per sample (the dataset's own array: do not modify it). */
  labels(): Int32Array {
    return this.labelArray;
  }

  pathOf(_i: number): string | undefined {
    return this.source;
  }

  /**
   * The pixel buffer itself: the loader's fast path reads samples from it by offset. Undefined
   * for a subclass with its own get(), which the loader must then call sample by sample.
   */
  pixelStore(): PixelStore | undefined {
    if (this.get !== ArrayDataset.prototype.get) return undefined;
    const [height, width, channels] = this.shape;
    return { pixels: this.pixels, height, width, channels, labels: this.labelArray };
  }

  [DISPLAY](): MimeData {
    return describeDataset(this, this.kind, this.source).data;
  }
}

/** Integer labels from an array or typed array (bigint arrays too) into an Int32Array. */
function toLabels(option: string, labels: unknown, n: number): Int32Array {
  if (!(Array.isArray(labels) || (ArrayBuffer.isView(labels) && !(labels instanceof DataView)))) {
    throw new OptionError(option, labels, "an array or typed array of integer class labels");
  }
  const arr = labels as ArrayLike<number | bigint>;
  if (arr.length !== n) throw new OptionError(option, labels, `${n} labels (one per image), got ${arr.length}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const raw = arr[i];
    const l = typeof raw === "bigint" ? Number(raw) : raw;
    if (typeof l !== "number" || !Number.isInteger(l) || l < 0 || l > 0x7fffffff) {
      throw new OptionError(`${option}[${i}]`, raw, "an integer class index >= 0");
    }
    out[i] = l;
  }
  return out;
}

/** Checks that every label indexes a class name. */
export function checkLabelRange(option: string, labels: Int32Array, classes: number): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) throw new OptionError(`${option}[${i}]`, labels[i], `a class index in [0, ${classes - 1}] (${classes} class names)`);
  }
}

/**
 * A dataset over pixels already in memory: `pixels` holds n x h x w x c uint8 values (HWC per
 * image, images one after another); `shape` is [n, h, w, c] or [n, h, w] for one channel;
 * `labels` one integer class index per image. Samples are views into `pixels`.
 */
export function fromArrays(
  pixels: Uint8Array,
  shape: readonly [number, number, number, number] | readonly [number, number, number] | readonly number[],
  labels: ArrayLike<number> | ArrayLike<bigint>,
  options?: { classNames?: readonly string[] },
): ArrayDataset {
  if (!(pixels instanceof Uint8Array)) throw new OptionError("fromArrays(pixels)", pixels, "a Uint8Array of n*h*w*c pixel values");
  if (!Array.isArray(shape) || (shape.length !== 4 && shape.length !== 3) || !shape.every((d, k) => Number.isInteger(d) && (k === 0 ? d >= 0 : d > 0))) {
    throw new OptionError("fromArrays(shape)", shape, "[n, h, w, c] (or [n, h, w] for one channel): n an integer >= 0, h, w, c positive integers");
  }
  const s = (shape.length === 3 ? [...shape, 1] : [...shape]) as [number, number, number, number];
  const need = s[0] * s[1] * s[2] * s[3];
  if (pixels.length !== need) throw new OptionError("fromArrays(pixels)", pixels, `${need} values for shape [${s.join(", ")}] (n*h*w*c)`);
  const o = checkOptions<{ classNames: readonly string[] }>("fromArrays", options, ["classNames"]);
  const ls = toLabels("fromArrays(labels)", labels, s[0]);
  const classNames = classNamesOption("fromArrays.classNames", o.classNames);
  if (classNames) checkLabelRange("fromArrays(labels)", ls, classNames.length);
  return new ArrayDataset(pixels, s, ls, { classNames, kind: "fromArrays" });
}
