/**
 * Dataset combinators: subset (some samples, in a given order), concat (datasets one after
 * another) and map (custom per-sample work). They keep synchronous datasets synchronous and
 * renumber `index` to their own positions; `path` and labels pass through.
 */
import { OptionError, describeValue } from "../errors";
import { checkIndex, classNamesOption } from "./check";
import { knownKeys as checkOptions } from "../options";
import { withDisplay } from "./display";
import type { Dataset, EncodedSample, MaybePromise, PixelStore, Sample } from "./types";

function isPromise<T>(x: MaybePromise<T>): x is Promise<T> {
  return !!x && typeof (x as Promise<T>).then === "function";
}

function checkDataset(option: string, ds: unknown): Dataset {
  if (!ds || typeof ds !== "object" || typeof (ds as Dataset).get !== "function" || !Number.isInteger((ds as Dataset).length) || (ds as Dataset).length < 0) {
    throw new OptionError(option, ds, "a dataset (an object with an integer length and get(i))");
  }
  return ds as Dataset;
}

function renumber(s: MaybePromise<Sample>, index: number): MaybePromise<Sample> {
  const fix = (x: Sample): Sample => (x.index === index ? x : { ...x, index });
  return isPromise(s) ? s.then(fix) : fix(s);
}

function sourceOf(ds: Dataset): string | undefined {
  const s = (ds as { source?: unknown }).source;
  return typeof s === "string" ? s : undefined;
}

/** The samples of `ds` at `indices`, in that order (repeats allowed). */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  checkDataset("subset(dataset)", ds);
  if (!(Array.isArray(indices) || (ArrayBuffer.isView(indices) && !(indices instanceof DataView)))) {
    throw new OptionError("subset(indices)", indices, "an array or typed array of sample indices");
  }
  const src = indices as ArrayLike<number>;
  const idx = new Int32Array(src.length);
  for (let k = 0; k < src.length; k++) {
    const i = src[k];
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= ds.length) {
      throw new OptionError(`subset(indices)[${k}]`, i, ds.length === 0 ? "no index at all (the dataset is empty)" : `an integer index in [0, ${ds.length - 1}]`);
    }
    idx[k] = i;
  }
  let cached: Int32Array | undefined;
  const view: Dataset = {
    length: idx.length,
    ...(ds.classNames ? { classNames: ds.classNames } : {}),
    ...(ds.freshImages ? { freshImages: true } : {}),
    ...(ds.shape ? { shape: ds.shape } : {}),
    get(i: number): MaybePromise<Sample> {
      checkIndex(i, idx.length);
      return renumber(ds.get(idx[i]!), i);
    },
    ...(ds.labels
      ? {
          labels: (): Int32Array => {
            if (!cached) {
              const all = ds.labels!();
              cached = new Int32Array(idx.length);
              for (let k = 0; k < idx.length; k++) cached[k] = all[idx[k]!]!;
            }
            return cached;
          },
        }
      : {}),
    pathOf(i: number): string | undefined {
      return Number.isInteger(i) && i >= 0 && i < idx.length ? ds.pathOf?.(idx[i]!) : undefined;
    },
    // A subset of a folder keeps its plan-steered decoding (a train/val split, say).
    ...(typeof ds.encoded === "function"
      ? {
          encoded: (i: number): Promise<EncodedSample> => {
            checkIndex(i, idx.length);
            return ds.encoded!(idx[i]!).then((e) => (e.index === i ? e : { ...e, index: i }));
          },
        }
      : {}),
    ...(typeof ds.pixelStore === "function"
      ? {
          pixelStore: (): PixelStore | undefined => {
            const inner = ds.pixelStore!();
            if (!inner) return undefined;
            const index = inner.index ? Int32Array.from(idx, (i) => inner.index![i]!) : idx.slice(); // a copy: idx is the subset's own
            const labels = Int32Array.from(idx, (i) => inner.labels[i]!);
            return { pixels: inner.pixels, height: inner.height, width: inner.width, channels: inner.channels, labels, index };
          },
        }
      : {}),
  };
  return withDisplay(view, `subset (${idx.length} of ${ds.length} samples)`, () => sourceOf(ds));
}

/** The samples of each dataset in turn. Class names survive when every part has the same ones. */
export function concat(...parts: Dataset[]): Dataset {
  if (parts.length === 0) throw new OptionError("concat(datasets)", parts, "at least one dataset");
  parts.forEach((d, k) => checkDataset(`concat(datasets)[${k}]`, d));
  const starts = new Float64Array(parts.length + 1);
  for (let k = 0; k < parts.length; k++) starts[k + 1] = starts[k]! + parts[k]!.length;
  const total = starts[parts.length]!;
  /** The part holding sample i: binary search over the start offsets. */
  const locate = (i: number): [Dataset, number] => {
    let lo = 0;
    let hi = parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return [parts[lo]!, i - starts[lo]!];
  };
  const s0 = parts[0]!.shape;
  const sameShape = s0 !== undefined && parts.every((d) => d.shape !== undefined && d.shape.length === s0.length && d.shape.every((x, j) => x === s0[j]));
  const n0 = parts[0]!.classNames;
  const sameNames = n0 !== undefined && parts.every((d) => d.classNames !== undefined && d.classNames.length === n0.length && d.classNames.every((x, j) => x === n0[j]));
  const view: Dataset = {
    length: total,
    ...(sameNames ? { classNames: n0 } : {}),
    ...(sameShape ? { shape: s0 } : {}),
    ...(parts.every((d) => d.freshImages) ? { freshImages: true } : {}),
    get(i: number): MaybePromise<Sample> {
      checkIndex(i, total);
      const [d, j] = locate(i);
      return renumber(d.get(j), i);
    },
    ...(parts.every((d) => d.labels)
      ? {
          labels: (): Int32Array => {
            const out = new Int32Array(total);
            parts.forEach((d, k) => out.set(d.labels!(), starts[k]!));
            return out;
          },
        }
      : {}),
    pathOf(i: number): string | undefined {
      if (!Number.isInteger(i) || i < 0 || i >= total) return undefined;
      const [d, j] = locate(i);
      return d.pathOf?.(j);
    },
  };
  return withDisplay(view, `concat of ${parts.length} datasets (${parts.map((d) => d.length).join(" + ")} samples)`);
}

export interface MapOptions {
  /** fn keeps every label as it is: the mapped dataset answers labels() from the source's. */
  keepLabels?: boolean;
  /** fn's output shape [h, w, c] when every sample has it (the source's shape is not assumed). */
  shape?: readonly [number, number, number];
  /** Class names of fn's labels (default: the source's names when keepLabels is set). */
  classNames?: readonly string[];
}

function checkSample(s: unknown, i: number): Sample {
  const x = s as Sample | undefined;
  if (!x || typeof x !== "object" || !x.image || !(x.image.data instanceof Uint8Array) || typeof x.label !== "number") {
    throw new OptionError(`map(fn) result for sample ${i}`, s, "a sample { image: { data: Uint8Array, height, width, channels }, label, index }");
  }
  return x;
}

/**
 * Applies `fn` to every sample as it is read (custom per-sample work: relabelling, cropping,
 * masking...). A synchronous fn over an in-memory dataset stays synchronous; fn may also return
 * a promise. Labels are not assumed unchanged unless `keepLabels` is set.
 */
export function map(ds: Dataset, fn: (sample: Sample) => MaybePromise<Sample>, options?: MapOptions): Dataset {
  checkDataset("map(dataset)", ds);
  if (typeof fn !== "function") throw new OptionError("map(fn)", fn, "a function (sample) => sample");
  const o = checkOptions<MapOptions>("map", options, ["keepLabels", "shape", "classNames"]);
  if (o.keepLabels !== undefined && typeof o.keepLabels !== "boolean") throw new OptionError("map.keepLabels", o.keepLabels, "true or false");
  if (o.shape !== undefined && !(Array.isArray(o.shape) && o.shape.length === 3 && o.shape.every((d) => Number.isInteger(d) && d > 0))) {
    throw new OptionError("map.shape", o.shape, "[height, width, channels] of positive integers");
  }
  const names = classNamesOption("map.classNames", o.classNames) ?? (o.keepLabels ? ds.classNames : undefined);
  const apply = (s: Sample): MaybePromise<Sample> => {
    const r = fn(s);
    return isPromise(r) ? r.then((x) => checkSample(x, s.index)) : checkSample(r, s.index);
  };
  const view: Dataset = {
    length: ds.length,
    ...(names ? { classNames: names } : {}),
    ...(o.shape ? { shape: Object.freeze([...o.shape]) as unknown as readonly [number, number, number] } : {}),
    get(i: number): MaybePromise<Sample> {
      checkIndex(i, ds.length);
      const s = ds.get(i);
      return isPromise(s) ? s.then(apply) : apply(s);
    },
    ...(o.keepLabels && ds.labels ? { labels: (): Int32Array => ds.labels!() } : {}),
    pathOf(i: number): string | undefined {
      return ds.pathOf?.(i);
    },
  };
  return withDisplay(view, `map of ${describeValue(fn)}`, () => sourceOf(ds));
}
