/**
 * In-memory datasets: one uint8 buffer of N x H x W x C pixels and a label array. Samples are
 * views into the buffer (no copy), which is what lets the native engine read them in place.
 * Also the dataset combinators: subset, concat, map.
 */
import { OptionError } from "../errors";
import * as v from "../validate";
import type { Dataset, Image, MaybePromise, Sample } from "./types";

const DISPLAY = Symbol.for("Jupyter.display");

function checkIndex(i: unknown, length: number): number {
  if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= length) {
    throw new OptionError("get(index)", i, length === 0 ? "no index (the dataset is empty)" : `an integer in [0, ${length - 1}]`);
  }
  return i;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** A text and HTML summary of any dataset, for notebooks. */
export function describeDataset(ds: Dataset, kind: string, source?: string): Record<string, string> {
  const shape = ds.shape ? ds.shape.join(" x ") : "varies";
  const names = ds.classNames ? ds.classNames.join(", ") : "unknown";
  const lines = [`${kind}: ${ds.length} samples, shape ${shape} (H x W x C, uint8)`, `classes (${ds.classNames?.length ?? "?"}): ${names}`];
  if (source) lines.push(`source: ${source}`);
  const rows = [["samples", String(ds.length)], ["shape (H x W x C)", shape], ["classes", names], ...(source ? [["source", source]] : [])];
  const html =
    `<table><caption style="text-align:left"><b>${escapeHtml(kind)}</b></caption>` +
    rows.map(([k, x]) => `<tr><th style="text-align:left">${escapeHtml(k!)}</th><td style="text-align:left">${escapeHtml(x!)}</td></tr>`).join("") +
    "</table>";
  return { "text/plain": lines.join("\n"), "text/html": html };
}

/** N images of one shape in one buffer. */
export class ArrayDataset implements Dataset {
  readonly length: number;
  readonly shape: readonly [number, number, number];
  readonly classNames?: readonly string[];
  readonly pixels: Uint8Array;
  private readonly labelArray: Int32Array;
  /** Where the data came from (a file), for display and errors. */
  readonly source?: string;
  readonly kind: string;

  constructor(pixels: Uint8Array, shape: readonly [number, number, number, number], labels: Int32Array, options: { classNames?: readonly string[]; source?: string; kind?: string } = {}) {
    const [n, h, w, c] = shape;
    this.pixels = pixels;
    this.length = n;
    this.shape = [h, w, c];
    this.labelArray = labels;
    this.classNames = options.classNames;
    this.source = options.source;
    this.kind = options.kind ?? "ArrayDataset";
  }

  get(i: number): Sample {
    checkIndex(i, this.length);
    const [h, w, c] = this.shape;
    const size = h * w * c;
    const image: Image = { data: this.pixels.subarray(i * size, (i + 1) * size), height: h, width: w, channels: c };
    return { image, label: this.labelArray[i]!, index: i, path: this.source };
  }

  labels(): Int32Array {
    return this.labelArray;
  }

  pathOf(): string | undefined {
    return this.source;
  }

  [DISPLAY](): Record<string, string> {
    return describeDataset(this, this.kind, this.source);
  }
}

function labelArray(option: string, labels: unknown, n: number): Int32Array {
  if (!(ArrayBuffer.isView(labels) || Array.isArray(labels))) throw new OptionError(option, labels, "an array or typed array of integer labels");
  const arr = labels as ArrayLike<number>;
  if (arr.length !== n) throw new OptionError(option, labels, `${n} labels (one per image)`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = arr[i]!;
    if (!Number.isInteger(l)) throw new OptionError(`${option}[${i}]`, l, "an integer label");
    out[i] = l;
  }
  return out;
}

/**
 * A dataset over pixels already in memory: `pixels` holds n x h x w x c uint8 values (HWC per
 * image); `labels` one integer per image. Samples are views into `pixels`.
 */
export function fromArrays(pixels: Uint8Array, shape: readonly [number, number, number, number] | readonly number[], labels: ArrayLike<number>, options: { classNames?: readonly string[] } = {}): ArrayDataset {
  if (!(pixels instanceof Uint8Array)) throw new OptionError("fromArrays(pixels)", pixels, "a Uint8Array of n*h*w*c pixel values");
  if (!Array.isArray(shape) || (shape.length !== 4 && shape.length !== 3) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new OptionError("fromArrays(shape)", shape, "[n, h, w, c] (or [n, h, w] for one channel) of positive integers");
  }
  const s = (shape.length === 3 ? [...shape, 1] : shape) as [number, number, number, number];
  const need = s[0] * s[1] * s[2] * s[3];
  if (pixels.length !== need) throw new OptionError("fromArrays(pixels)", pixels, `${need} values for shape [${s.join(", ")}]`);
  v.knownKeys("fromArrays options", options, ["classNames"]);
  const ls = labelArray("fromArrays(labels)", labels, s[0]);
  if (options.classNames !== undefined) checkClassNames("fromArrays.classNames", options.classNames, ls);
  return new ArrayDataset(pixels, s, ls, { classNames: options.classNames, kind: "fromArrays" });
}

export function checkClassNames(option: string, names: unknown, labels: Int32Array): void {
  if (!Array.isArray(names) || !names.every((x) => typeof x === "string")) throw new OptionError(option, names, "an array of strings");
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! < 0 || labels[i]! >= names.length) {
      throw new OptionError(`labels[${i}]`, labels[i], `a class index in [0, ${names.length - 1}] (${names.length} class names)`);
    }
  }
}

/** The samples at `indices` of `ds`, in that order. */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  checkDataset("subset(dataset)", ds);
  if (!(ArrayBuffer.isView(indices) || Array.isArray(indices))) throw new OptionError("subset(indices)", indices, "an array of indices");
  const idx = Int32Array.from(indices as ArrayLike<number>);
  idx.forEach((i, k) => {
    if (!Number.isInteger((indices as ArrayLike<number>)[k]) || i < 0 || i >= ds.length) throw new OptionError(`subset(indices)[${k}]`, (indices as ArrayLike<number>)[k], `an integer in [0, ${ds.length - 1}]`);
  });
  const view: Dataset = {
    length: idx.length,
    classNames: ds.classNames,
    shape: ds.shape,
    get(i: number): MaybePromise<Sample> {
      const j = idx[checkIndex(i, idx.length)]!;
      const s = ds.get(j);
      const relabel = (x: Sample): Sample => ({ ...x, index: i });
      return s instanceof Promise ? s.then(relabel) : relabel(s);
    },
    pathOf: (i: number) => ds.pathOf?.(idx[checkIndex(i, idx.length)]!),
  };
  let cached: Int32Array | undefined;
  if (ds.labels) view.labels = () => (cached ??= (() => { const all = ds.labels!(); return Int32Array.from(idx, (j) => all[j]!); })());
  return withDisplay(view, `subset of ${idx.length}`);
}

/** The samples of each dataset in turn. */
export function concat(...parts: Dataset[]): Dataset {
  if (parts.length === 0) throw new OptionError("concat(datasets)", parts, "at least one dataset");
  parts.forEach((d, k) => checkDataset(`concat(datasets)[${k}]`, d));
  const starts: number[] = [];
  let total = 0;
  for (const d of parts) {
    starts.push(total);
    total += d.length;
  }
  const locate = (i: number): [Dataset, number] => {
    checkIndex(i, total);
    let k = parts.length - 1;
    while (starts[k]! > i) k--;
    return [parts[k]!, i - starts[k]!];
  };
  const s0 = parts[0]!.shape;
  const sameShape = s0 && parts.every((d) => d.shape && d.shape.every((x, j) => x === s0[j]));
  const view: Dataset = {
    length: total,
    classNames: parts[0]!.classNames,
    shape: sameShape ? s0 : undefined,
    get(i: number): MaybePromise<Sample> {
      const [d, j] = locate(i);
      const s = d.get(j);
      const relabel = (x: Sample): Sample => ({ ...x, index: i });
      return s instanceof Promise ? s.then(relabel) : relabel(s);
    },
    labels: parts.every((d) => d.labels)
      ? () => {
          const out = new Int32Array(total);
          parts.forEach((d, k) => out.set(d.labels!(), starts[k]!));
          return out;
        }
      : undefined,
    pathOf: (i: number) => {
      const [d, j] = locate(i);
      return d.pathOf?.(j);
    },
  };
  return withDisplay(view, `concat of ${parts.length} datasets`);
}

/** Applies `fn` to every sample (custom per-sample work: relabelling, filtering pixels...). */
export function map(ds: Dataset, fn: (sample: Sample) => MaybePromise<Sample>): Dataset {
  checkDataset("map(dataset)", ds);
  if (typeof fn !== "function") throw new OptionError("map(fn)", fn, "a function (sample) => sample");
  const view: Dataset = {
    length: ds.length,
    classNames: ds.classNames,
    get(i: number): MaybePromise<Sample> {
      const s = ds.get(i);
      return s instanceof Promise ? s.then(fn) : fn(s);
    },
    pathOf: ds.pathOf ? (i: number) => ds.pathOf!(i) : undefined,
  };
  return withDisplay(view, "mapped dataset");
}

function checkDataset(option: string, ds: unknown): void {
  if (!ds || typeof (ds as Dataset).get !== "function" || typeof (ds as Dataset).length !== "number") {
    throw new OptionError(option, ds, "a dataset (length and get(i))");
  }
}

function withDisplay(ds: Dataset, kind: string): Dataset {
  Object.defineProperty(ds, DISPLAY, { value: () => describeDataset(ds, kind), enumerable: false });
  return ds;
}
