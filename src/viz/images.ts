/** Image views: a batch as a labelled grid, one sample under N augmentations. One PNG each. */
import { OptionError } from "../errors";
import type { Dataset, Image, Sample } from "../data/types";
import * as v from "../options";
import { DISPLAY, type Bundle, type MimeData, type MimeMetadata } from "../display/index";
import { blitScaled, chwToRgb, displayChannels, hwcToRgb, pngBundle, whiteCanvas } from "./canvas";
import { ADVANCE, GLYPH_HEIGHT, drawText, fitText, textWidth } from "./font";
import { className, fmt, fmtList } from "./format";
import { Plan, Transform } from "../transforms/index";
import { encodeJob, executePlan } from "../engines/index";

/** What showBatch reads from a batch (a loader's Batch fits). */
export interface BatchLike {
  /** Pixels, N x C x H x W. */
  readonly images: ArrayLike<number>;
  readonly shape: readonly number[];
  readonly labels?: ArrayLike<number>;
  /** Soft targets (N x classes) after mixup/cutmix. */
  readonly targets?: ArrayLike<number>;
  readonly classNames?: readonly string[];
  readonly epoch?: number;
  readonly batchIndex?: number;
}

/** Per-channel mean and std that a Normalize applied, to undo it for display. */
export interface Denormalize {
  mean: number | readonly number[];
  std: number | readonly number[];
}

export interface ShowBatchOptions {
  /** Images per row (default: min(8, N)). */
  nrow?: number;
  /** Names by label (default: the batch's classNames). */
  classNames?: readonly string[];
  /**
   * Undo a Normalize: pixel = (x * std + mean) * 255, for pixels that were in [0, 1] before
   * Normalize. false or absent: map the batch's min..max to 0..255.
   */
  denormalize?: Denormalize | false;
  /** Display pixels per image pixel, nearest neighbour (default: tiles of about 64-96 px). */
  scale?: number;
  /** Draw at most this many images (default 64); the summary covers the whole batch. */
  limit?: number;
}

const PAD = 2;
const TEXT: readonly [number, number, number] = [0, 0, 0];
const MUTED: readonly [number, number, number] = [96, 96, 96];
const LINE = GLYPH_HEIGHT + 2;
/** Space between the columns of showAugmentations, so captions do not run together. */
const GAP = 10;

/**
 * Display pixels per image pixel: small images are enlarged (whole multiples) to about `target`
 * px; images over 4x the target are shrunk to about 2.5x it (a photo strip stays a few MB
 * smaller than its photos, and fits the notebook).
 */
function defaultScale(maxDim: number, target: number): number {
  if (maxDim > 4 * target) return (2.5 * target) / maxDim;
  return maxDim >= target ? 1 : Math.ceil(target / maxDim);
}

function classNamesOption(option: string, x: unknown): readonly string[] | undefined {
  if (x === undefined) return undefined;
  if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) throw new OptionError(option, x, "an array of class names (strings), indexed by label");
  return x;
}

function perChannel(option: string, x: unknown, channels: number, positive: boolean): number[] {
  const list = typeof x === "number" ? [x] : Array.isArray(x) ? x : undefined;
  const ok =
    list !== undefined &&
    (list.length === 1 || list.length === channels || (channels === 4 && list.length === 3)) &&
    list.every((y) => typeof y === "number" && Number.isFinite(y) && (!positive || y !== 0));
  if (!ok) {
    throw new OptionError(option, x, `a number or an array of 1 or ${channels === 4 ? "3" : channels} finite numbers${positive ? ", none zero" : ""}`);
  }
  return Array.from({ length: 3 }, (_, c) => (list!.length === 1 ? list![0]! : list![Math.min(c, list!.length - 1)]!));
}

function denormalizeOption(option: string, x: unknown, channels: number): { mean: number[]; std: number[] } | undefined {
  if (x === undefined || x === false) return undefined;
  if (x === null || typeof x !== "object" || Array.isArray(x)) throw new OptionError(option, x, "{ mean, std } (the Normalize to undo) or false");
  v.knownKeys(option, x, ["mean", "std"]);
  const o = x as Denormalize;
  return { mean: perChannel(`${option}.mean`, o.mean, channels, false), std: perChannel(`${option}.std`, o.std, channels, true) };
}

function scaleOption(option: string, x: unknown): number | undefined {
  if (x === undefined) return undefined;
  return v.num(option, x, 1 / 64, 64);
}

function isTypedOrArray(x: unknown): x is ArrayLike<number> {
  return (ArrayBuffer.isView(x) && !(x instanceof DataView)) || Array.isArray(x);
}

// ------------------------------------------------------------------------------------ showBatch

/**
 * A batch as one PNG: a grid of its images (N x C x H x W; 1 or 3 channels, a fourth alpha
 * channel is dropped), each label's class name under its image, on white, upscaled nearest
 * neighbour. text/plain: shape, per-channel mean and std, label counts by class.
 */
export function showBatch(batch: BatchLike | readonly Sample[], options?: ShowBatchOptions): Bundle;
/**
 * A loader's first batch (`loader.first()`), or a dataset's first samples (`limit`, default 16):
 * a view that a notebook shows as the last expression of a cell, and that `await` turns into the
 * bundle (for a script or `standaloneHtml`).
 */
export function showBatch(source: BatchSource | Dataset, options?: ShowBatchOptions): PendingView;
export function showBatch(batch: BatchLike | readonly Sample[] | BatchSource | Dataset, options: ShowBatchOptions = {}): Bundle | PendingView {
  v.knownKeys("showBatch", options, ["nrow", "classNames", "denormalize", "scale", "limit"]);
  if (Array.isArray(batch)) return gridOf(samplesToBatch("showBatch(samples)", batch as readonly Sample[]), options);
  if (batch !== null && typeof batch === "object" && !("images" in batch)) {
    if (typeof (batch as BatchSource).first === "function") {
      const loader = batch as BatchSource;
      return pendingView(async () => gridOf(await loader.first(), options));
    }
    if (typeof (batch as Dataset).get === "function" && typeof (batch as Dataset).length === "number") {
      const ds = batch as Dataset;
      const limit = options.limit === undefined ? 16 : v.int("showBatch(options).limit", options.limit, 1);
      // A stream data set (datasets.webdataset) has no get(i): its first samples come from take(n).
      const stream = (ds as { stream?: unknown }).stream === true && typeof (ds as { take?: unknown }).take === "function";
      const n = stream ? limit : Math.min(ds.length, limit);
      return pendingView(async () => {
        const samples: Sample[] = stream ? await (ds as unknown as { take(n: number): Promise<Sample[]> }).take(n) : [];
        for (let i = 0; !stream && i < n; i++) samples.push(await ds.get(i));
        return gridOf({ ...samplesToBatch("showBatch(dataset)", samples), classNames: ds.classNames }, options);
      });
    }
  }
  return gridOf(batch as BatchLike, options);
}

/** What showBatch takes as a loader: anything with `first()` resolving to a batch (a DataLoader). */
export interface BatchSource {
  first(): Promise<BatchLike>;
}

/**
 * A view still being made (it needs a batch first). A notebook shows it as a cell's value
 * (its display method returns a promise, which the batchlab kernel awaits); `await view` gives
 * the bundle.
 */
export interface PendingView extends PromiseLike<Bundle> {
  [DISPLAY](): Promise<{ data: MimeData; metadata: MimeMetadata }>;
}

export function pendingView(make: () => Promise<Bundle>): PendingView {
  let made: Promise<Bundle> | undefined;
  const get = (): Promise<Bundle> => (made ??= make());
  const view = {
    then<A = Bundle, B = never>(ok?: ((b: Bundle) => A | PromiseLike<A>) | null, bad?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
      return get().then(ok, bad);
    },
    toString: () => "<batchlab view: await it for the bundle>",
  };
  Object.defineProperty(view, DISPLAY, { value: () => get().then((b) => ({ data: b.data, metadata: b.metadata })), enumerable: false });
  return view as unknown as PendingView;
}

/** Samples (HWC uint8, one shape) as a batch of float pixels in [0, 1], as ToTensor makes them. */
function samplesToBatch(option: string, samples: readonly Sample[]): BatchLike {
  if (samples.length === 0) throw new OptionError(option, samples, "at least one sample");
  const first = samples[0]!;
  if (first === null || typeof first !== "object" || !first.image) throw new OptionError(`${option}[0]`, first, "a sample { image: { data, height, width, channels }, label } (dataset.get(i), dataset.take(n))");
  const { height: h, width: w, channels: c } = first.image;
  const plane = h * w;
  const images = new Float32Array(samples.length * c * plane);
  const labels = new Int32Array(samples.length);
  samples.forEach((s, k) => {
    const im = s?.image;
    if (!im || im.height !== h || im.width !== w || im.channels !== c) {
      throw new OptionError(`${option}[${k}].image`, im ? `${im.height}x${im.width}x${im.channels}` : s, `${h}x${w}x${c} like sample 0 (one batch has one shape; resize them, or use a DataLoader with a Resize)`);
    }
    const base = k * c * plane;
    for (let i = 0; i < plane; i++) for (let ch = 0; ch < c; ch++) images[base + ch * plane + i] = im.data[i * c + ch]! / 255;
    labels[k] = s.label;
  });
  return { images, shape: [samples.length, c, h, w], labels };
}

function gridOf(batch: BatchLike, options: ShowBatchOptions): Bundle {
  if (batch === null || typeof batch !== "object") {
    throw new OptionError("showBatch(batch)", batch, "a batch { images, shape: [N, C, H, W], labels? } (for example from a DataLoader)");
  }
  const shape = batch.shape;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new OptionError("showBatch(batch).shape", shape, "[N, C, H, W], four positive integers");
  }
  const [N, C, H, W] = shape as [number, number, number, number];
  if (C !== 1 && C !== 3 && C !== 4) {
    throw new OptionError("showBatch(batch).shape", shape, "[N, C, H, W] with C = 1 (grey), 3 (RGB) or 4 (RGBA, alpha is dropped)");
  }
  let images: unknown;
  try {
    images = batch.images;
  } catch (e) {
    throw new OptionError(
      "showBatch(batch).images",
      batch,
      `pixels on the host (${(e as Error).message}); for a device batch show { images: await batch.device.toHost(), shape: batch.shape, labels: batch.labels }`,
    );
  }
  if (!isTypedOrArray(images) || images.length !== N * C * H * W) {
    throw new OptionError("showBatch(batch).images", images, `${N * C * H * W} numbers (N*C*H*W for shape [${shape.join(", ")}])`);
  }
  const labels = batch.labels;
  if (labels !== undefined && (!isTypedOrArray(labels) || labels.length !== N)) {
    throw new OptionError("showBatch(batch).labels", labels, `${N} labels, one per image`);
  }
  const names = classNamesOption("showBatch(options).classNames", options.classNames) ?? classNamesOption("showBatch(batch).classNames", batch.classNames);
  const targets = batch.targets !== undefined && isTypedOrArray(batch.targets) && batch.targets.length % N === 0 && batch.targets.length > 0 ? batch.targets : undefined;
  const nrow = options.nrow === undefined ? Math.min(8, N) : v.int("showBatch(options).nrow", options.nrow, 1);
  const limit = options.limit === undefined ? 64 : v.int("showBatch(options).limit", options.limit, 1);
  const denorm = denormalizeOption("showBatch(options).denormalize", options.denormalize, C);
  const scale = scaleOption("showBatch(options).scale", options.scale) ?? defaultScale(Math.max(H, W), 64);

  // Statistics over the whole batch; min/max over the displayed channels.
  const plane = H * W;
  const sum = new Float64Array(C);
  const sumSq = new Float64Array(C);
  let lo = Infinity;
  let hi = -Infinity;
  const px = images;
  for (let i = 0; i < N; i++) {
    for (let c = 0; c < C; c++) {
      const base = (i * C + c) * plane;
      let s = 0;
      let q = 0;
      let l = lo;
      let h = hi;
      for (let k = 0; k < plane; k++) {
        const x = px[base + k]!;
        s += x;
        q += x * x;
        if (x < l) l = x;
        if (x > h) h = x;
      }
      sum[c]! += s;
      sumSq[c]! += q;
      if (c < 3) {
        lo = l;
        hi = h;
      }
    }
  }
  const count = N * plane;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sumSq, (q, c) => Math.sqrt(Math.max(0, q / count - mean[c]! * mean[c]!)));

  // Display mapping: byte = x * a[c] + b[c].
  let a: number[];
  let b: number[];
  let mapping: string;
  if (denorm) {
    a = denorm.std.map((s) => s * 255);
    b = denorm.mean.map((m) => m * 255);
    const dcN = displayChannels(C);
    mapping = `denormalized: (x * std ${fmtList(denorm.std.slice(0, dcN))} + mean ${fmtList(denorm.mean.slice(0, dcN))}) * 255`;
  } else if (hi > lo) {
    const k = 255 / (hi - lo);
    a = [k, k, k];
    b = [-lo * k, -lo * k, -lo * k];
    mapping = `min-max over the batch: [${fmt(lo)}, ${fmt(hi)}] -> 0..255`;
  } else {
    // One value everywhere: show it as a [0, 1] or [0, 255] intensity when it is one.
    const k = lo >= 0 && lo <= 1 ? 255 : lo >= 0 && lo <= 255 ? 1 : 0;
    a = [k, k, k];
    b = k === 0 ? [128, 128, 128] : [0, 0, 0];
    mapping = `constant ${fmt(lo)} everywhere`;
  }

  // Labels as drawn under each image.
  const shown = Math.min(N, limit);
  const K = targets ? targets.length / N : 0;
  const caption = (i: number): string | undefined => {
    if (targets) {
      let best = 0;
      for (let k = 1; k < K; k++) if (targets[i * K + k]! > targets[i * K + best]!) best = k;
      const w = targets[i * K + best]!;
      const name = className(best, names);
      return w >= 0.995 ? name : `${name} ${w.toFixed(2).replace(/^0/, "")}`;
    }
    return labels ? className(labels[i]!, names) : undefined;
  };

  const tileW = Math.max(1, Math.round(W * scale));
  const tileH = Math.max(1, Math.round(H * scale));
  const hasText = labels !== undefined || targets !== undefined;
  const textH = hasText ? LINE + 2 : 0;
  const cols = Math.min(nrow, shown);
  const rows = Math.ceil(shown / cols);
  const cellW = tileW + PAD;
  const cellH = tileH + textH + PAD;
  const canvas = whiteCanvas(cols * cellW + PAD, rows * cellH + PAD);
  const maxChars = Math.floor((cellW + 1) / ADVANCE);
  const tile = new Uint8Array(plane * 3);
  const dc = displayChannels(C);
  for (let i = 0; i < shown; i++) {
    const x0 = PAD + (i % cols) * cellW;
    const y0 = PAD + Math.floor(i / cols) * cellH;
    chwToRgb(px, i * C * plane, dc, H, W, a, b, tile);
    blitScaled(canvas, tile, W, H, x0, y0, tileW, tileH);
    const text = hasText ? caption(i) : undefined;
    if (text !== undefined) {
      const t = fitText(text, maxChars);
      drawText(canvas, x0 + Math.floor((tileW - textWidth(t)) / 2), y0 + tileH + 2, t, TEXT);
    }
  }

  // Summary.
  const lines: string[] = [];
  const where = [batch.epoch !== undefined ? `epoch ${batch.epoch}` : "", batch.batchIndex !== undefined ? `batch ${batch.batchIndex}` : ""].filter(Boolean).join(", ");
  lines.push(`Batch of ${N} images, ${C}x${H}x${W} (N x C x H x W = ${N} x ${C} x ${H} x ${W})${where ? `, ${where}` : ""}`);
  lines.push(`per-channel mean ${fmtList(mean)}, std ${fmtList(std)}`);
  if (labels) {
    const counts = new Map<number, number>();
    for (let i = 0; i < N; i++) counts.set(labels[i]!, (counts.get(labels[i]!) ?? 0) + 1);
    const sorted = [...counts.entries()].sort((p, q) => p[0] - q[0]);
    lines.push(`labels: ${sorted.map(([l, n]) => `${className(l, names)} ${n}`).join(", ")}`);
  }
  if (targets) lines.push(`soft targets over ${K} classes (mixed samples show their largest class and its weight)`);
  lines.push(`display: ${mapping}`);
  lines.push(
    `grid: ${rows} x ${cols} of ${tileW}x${tileH} px (scale ${fmt(scale)})${shown < N ? `, showing the first ${shown} of ${N} (limit option)` : ""}; PNG ${canvas.width}x${canvas.height}`,
  );
  return pngBundle(canvas, lines.join("\n"));
}

// ---------------------------------------------------------------------------- showAugmentations

/** One augmented draw: float32 C x H x W and the parameters drawn for it. */
export interface AugmentResult {
  output: ArrayLike<number>;
  shape: readonly number[];
  params: unknown;
}

/** Where a draw's randomness comes from (a Transform's `sample` takes it). */
export interface DrawAt {
  seed: number;
  epoch: number;
  index: number;
}

/** A bare augmentation function, for transforms that are not batchlab Transforms. */
export type AugmentFn = (image: Image, at: DrawAt) => AugmentResult;

/** What showAugmentations needs from a transform: batchlab's Transform fits. */
export interface Augmenter {
  sample(image: Image, at: DrawAt): AugmentResult;
}

export interface ShowAugmentationsOptions {
  /** Which sample of the dataset (default 0). */
  index?: number;
  /** Number of augmented variants (default 8). */
  n?: number;
  /** Seed of the draws (default 0); variant k draws at { seed, epoch: k, index }. */
  seed?: number;
  /** Tiles per row, original included (default: all in one row, at most 9). */
  ncol?: number;
  /** Display pixels per image pixel (default: tiles of about 96 px). */
  scale?: number;
  /** Undo a Normalize for display; default: the Normalize found in the transform, if any. */
  denormalize?: Denormalize | false;
}

interface TransformInfo {
  name?: unknown;
  options?: unknown;
  transforms?: unknown;
  inner?: unknown;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object";
}

/** Every transform in a (possibly nested) chain, in order. */
function flatten(t: unknown, out: TransformInfo[] = []): TransformInfo[] {
  if (!isObject(t)) return out;
  const info = t as TransformInfo;
  if (Array.isArray(info.transforms)) for (const s of info.transforms) flatten(s, out);
  else if (isObject(info.inner)) flatten(info.inner, out);
  else out.push(info);
  return out;
}

const SHORT: Record<string, string> = {
  RandomHorizontalFlip: "hflip",
  RandomVerticalFlip: "vflip",
  RandomCrop: "crop",
  RandomResizedCrop: "rrcrop",
  RandomRotation: "rotate",
  RandomAffine: "affine",
  RandomPerspective: "persp",
  ColorJitter: "jitter",
  RandomErasing: "erase",
  RandomGrayscale: "gray",
};

function shortName(t: unknown): string {
  const name = isObject(t) && typeof t.name === "string" ? t.name : "";
  return SHORT[name] ?? name;
}

function paramValue(x: unknown): string {
  if (typeof x === "number") return fmt(x, 2);
  if (typeof x === "boolean") return x ? "yes" : "no";
  // A long list of numbers (an elastic displacement grid) is summarised, not listed.
  if (Array.isArray(x) && x.length > 8 && x.every((e) => typeof e === "number")) return `[${x.length} numbers, |max| ${fmt(Math.max(...x.map((e: number) => Math.abs(e))), 2)}]`;
  if (Array.isArray(x)) return `[${x.map(paramValue).join(",")}]`;
  if (isObject(x)) return `{${Object.entries(x).map(([k, y]) => `${k}=${paramValue(y)}`).join(" ")}}`;
  return String(x);
}

/** One line per transform that drew something: "crop top=2 left=1", "hflip yes". */
export function describeParams(transform: unknown, params: unknown): string[] {
  if (params === null || params === undefined) return [];
  const t = isObject(transform) ? (transform as TransformInfo) : undefined;
  if (Array.isArray(params)) {
    const subs = t && Array.isArray(t.transforms) ? t.transforms : [];
    return params.flatMap((p, i) => describeParams(subs[i], p));
  }
  if (isObject(params) && Array.isArray(params.steps)) {
    const subs = t && Array.isArray(t.transforms) ? t.transforms : [];
    return params.steps.flatMap((p: unknown, i: number) => describeParams(subs[i], p));
  }
  if (isObject(params) && "apply" in params && "inner" in params) {
    if (!params.apply) return [`${shortName(t?.inner) || shortName(t) || "apply"} off`];
    return describeParams(t?.inner, params.inner);
  }
  const name = shortName(t);
  if (isObject(params)) {
    // A coin that came up "no" makes the other numbers meaningless; NaN marks unused ones.
    if (params.apply === false) return [`${name || "step"} off`];
    const entries = Object.entries(params).filter(([k, x]) => !(k === "apply" && x === true) && !(typeof x === "number" && Number.isNaN(x)));
    if (entries.length === 0) return [`${name || "step"} on`];
    if (entries.length === 1 && typeof entries[0]![1] === "boolean") return [`${name || entries[0]![0]} ${paramValue(entries[0]![1])}`];
    return [[name, ...entries.map(([k, x]) => `${k}=${paramValue(x)}`)].filter(Boolean).join(" ")];
  }
  return [[name, paramValue(params)].filter(Boolean).join(" ")];
}

/** Splits a line into pieces of at most `width` characters, at spaces where possible. */
function wrap(line: string, width: number): string[] {
  const out = wrapWords(line, width);
  // Continuation lines are indented by one space so each transform's line stands out.
  return out.length <= 1 ? out : [out[0]!, ...wrapWords(out.slice(1).join(" "), width - 1).map((l) => " " + l)];
}

function wrapWords(line: string, width: number): string[] {
  const out: string[] = [];
  let cur = "";
  for (const word of line.split(" ")) {
    let w = word;
    while (w.length > width) {
      if (cur) {
        out.push(cur);
        cur = "";
      }
      out.push(w.slice(0, width));
      w = w.slice(width);
    }
    if (!cur) cur = w;
    else if (cur.length + 1 + w.length <= width) cur += " " + w;
    else {
      out.push(cur);
      cur = w;
    }
  }
  if (cur) out.push(cur);
  return out;
}

function resolveImage(source: unknown, index: number): { image: Image; label?: number; names?: readonly string[]; where: string } {
  const isImage = (x: unknown): x is Image =>
    isObject(x) && x.data instanceof Uint8Array && Number.isInteger(x.height) && Number.isInteger(x.width) && Number.isInteger(x.channels);
  if (isObject(source) && typeof source.get === "function" && typeof source.length === "number") {
    const ds = source as unknown as Dataset;
    v.int("showAugmentations(options).index", index, 0, ds.length - 1);
    const s = ds.get(index) as unknown;
    if (isObject(s) && typeof s.then === "function") {
      throw new OptionError(
        "showAugmentations(dataset)",
        s,
        `a dataset whose get(i) answers synchronously (in-memory); for a file-backed one pass the sample: showAugmentations(await dataset.get(${index}), transform)`,
      );
    }
    if (!isObject(s) || !isImage(s.image)) throw new OptionError(`showAugmentations(dataset).get(${index})`, s, "a sample { image, label }");
    const sample = s as unknown as Sample;
    return { image: sample.image, label: sample.label, names: ds.classNames, where: `sample ${index}${sample.path ? ` (${sample.path})` : ""}` };
  }
  if (isObject(source) && isImage(source.image)) {
    const sample = source as unknown as Sample;
    return { image: sample.image, label: sample.label, where: `sample ${sample.index ?? "?"}${sample.path ? ` (${sample.path})` : ""}` };
  }
  if (isImage(source)) return { image: source, where: "image" };
  throw new OptionError("showAugmentations(dataset)", source, "a dataset (get(i), length), a sample { image, label } or an image { data, height, width, channels }");
}

function checkResult(r: unknown, k: number): { output: ArrayLike<number>; shape: [number, number, number]; params: unknown } {
  const where = `showAugmentations(transform) draw ${k}`;
  if (!isObject(r)) throw new OptionError(where, r, "{ output, shape: [C, H, W], params }");
  const shape = r.shape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new OptionError(`${where}: shape`, shape, "[C, H, W], three positive integers");
  }
  const [c, h, w] = shape as [number, number, number];
  if (c !== 1 && c !== 3 && c !== 4) throw new OptionError(`${where}: shape`, shape, "1, 3 or 4 channels");
  if (!isTypedOrArray(r.output) || r.output.length !== c * h * w) throw new OptionError(`${where}: output`, r.output, `${c * h * w} numbers (C*H*W)`);
  return { output: r.output, shape: [c, h, w], params: r.params };
}

/** True when the transform's plan has a warp pass (its pixels are the folded plan's, not sample()'s). */
function foldsWarps(t: Transform): boolean {
  const plan = new Plan(t);
  return plan.fused && plan.warps;
}

/**
 * What the engines compute for one image of a chain with a warp: the plan's executor, with the
 * draw sample() would make (the same seed, epoch and index), so the view shows the loader's pixels.
 */
function planSampler(t: Transform): AugmentFn {
  const plan = new Plan(t);
  return (image, at) => {
    const params = plan.draw(image, { seed: at.seed ?? 0, epoch: at.epoch ?? 0, position: at.index ?? 0 });
    const job = encodeJob(plan, [image], [params]);
    const output = new Float32Array(job.outC * job.outH * job.outW);
    executePlan(job, output);
    return { output, shape: [job.outC, job.outH, job.outW], params };
  };
}

/**
 * One sample, its original and `n` augmented draws side by side, with each draw's parameters
 * printed under it and in text/plain. Draw k uses { seed, epoch: k, index }.
 * `transform`: a batchlab Transform (anything with `sample(image, at)`) or an AugmentFn.
 */
export function showAugmentations(dataset: Dataset | Sample | Image, transform: Augmenter | AugmentFn, options: ShowAugmentationsOptions = {}): Bundle {
  v.knownKeys("showAugmentations", options, ["index", "n", "seed", "ncol", "scale", "denormalize"]);
  const index = options.index === undefined ? 0 : v.int("showAugmentations(options).index", options.index, 0);
  const n = options.n === undefined ? 8 : v.int("showAugmentations(options).n", options.n, 1, 256);
  const seed = options.seed === undefined ? 0 : v.int("showAugmentations(options).seed", options.seed, 0, Number.MAX_SAFE_INTEGER);
  const run: AugmentFn =
    typeof transform === "function"
      ? transform
      : transform instanceof Transform && foldsWarps(transform)
        ? planSampler(transform)
        : isObject(transform) && typeof (transform as Augmenter).sample === "function"
        ? (image, at) => (transform as Augmenter).sample(image, at)
        : (() => {
            throw new OptionError("showAugmentations(transform)", transform, "a transform (with sample(image, { seed, epoch, index })) or a function (image, { seed, epoch, index }) => { output, shape, params }");
          })();
  const src = resolveImage(dataset, index);
  const img = src.image;
  if (img.channels !== 1 && img.channels !== 3 && img.channels !== 4) throw new OptionError("showAugmentations: image channels", img.channels, "1, 3 or 4");
  const draws = Array.from({ length: n }, (_, k) => checkResult(run(img, { seed, epoch: k, index }), k));

  // Display mapping of the float outputs.
  const chain = typeof transform === "function" ? undefined : flatten(transform);
  const C = Math.max(...draws.map((d) => d.shape[0]));
  let denorm = denormalizeOption("showAugmentations(options).denormalize", options.denormalize, C);
  let mapping = "";
  if (denorm) mapping = "denormalized with the given mean/std";
  else if (options.denormalize === undefined && chain) {
    const norm = chain.find((t) => t.name === "Normalize");
    const o = norm?.options as { mean?: unknown; std?: unknown } | undefined;
    if (o && Array.isArray(o.mean) && Array.isArray(o.std)) {
      try {
        denorm = denormalizeOption("Normalize", { mean: o.mean, std: o.std }, C);
        mapping = `denormalized with the transform's Normalize (mean ${fmtList(o.mean as number[])}, std ${fmtList(o.std as number[])})`;
      } catch {
        denorm = undefined;
      }
    }
  }
  const aff = (x: number, c: number): number => (denorm ? x * denorm.std[Math.min(c, 2)]! + denorm.mean[Math.min(c, 2)]! : x);
  let lo = Infinity;
  let hi = -Infinity;
  for (const d of draws) {
    const [c, h, w] = d.shape;
    const plane = h * w;
    for (let ch = 0; ch < Math.min(c, 3); ch++) {
      for (let k = 0; k < plane; k++) {
        const x = aff(d.output[ch * plane + k]!, ch);
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
    }
  }
  let bound: number;
  if (chain && chain.length > 0 && chain.every((t) => typeof t.name === "string")) {
    bound = chain.some((t) => t.name === "ToTensor") ? 1 : 255;
    mapping = `${mapping ? mapping + "; " : ""}pixel range [0, ${bound}] (${bound === 1 ? "after ToTensor" : "no ToTensor in the chain"})`;
  } else if (lo >= -1e-3 && hi <= 1 + 1e-3) {
    bound = 1;
    mapping = `${mapping ? mapping + "; " : ""}values within [0, 1], shown as 0..255`;
  } else if (lo >= -0.5 && hi <= 255.5) {
    bound = 255;
    mapping = `${mapping ? mapping + "; " : ""}values within [0, 255]`;
  } else {
    bound = 0;
    mapping = `${mapping ? mapping + "; " : ""}min-max over the draws: [${fmt(lo)}, ${fmt(hi)}] -> 0..255`;
  }
  const a = [0, 1, 2].map((c) => {
    const s = denorm ? denorm.std[c]! : 1;
    return bound > 0 ? (s * 255) / bound : hi > lo ? (s * 255) / (hi - lo) : 0;
  });
  const b = [0, 1, 2].map((c) => {
    const m = denorm ? denorm.mean[c]! : 0;
    return bound > 0 ? (m * 255) / bound : hi > lo ? ((m - lo) * 255) / (hi - lo) : 128;
  });

  // Captions.
  const described = draws.map((d) => describeParams(transform, d.params));
  const maxH = Math.max(img.height, ...draws.map((d) => d.shape[1]));
  const maxW = Math.max(img.width, ...draws.map((d) => d.shape[2]));
  // One scale for all tiles (sizes stay comparable), except that a tile much larger than the
  // target (a photo next to its 224 px crops) is shrunk on its own to about 240 px.
  const given = scaleOption("showAugmentations(options).scale", options.scale);
  const uniform = given ?? defaultScale(Math.max(maxH, maxW), 96);
  const scaleOf = (h: number, w: number): number => (given === undefined && uniform < 1 ? Math.min(1, 240 / Math.max(h, w)) : uniform);
  const sizes = [[img.height, img.width], ...draws.map((d) => [d.shape[1], d.shape[2]])].map(([h, w]) => [Math.max(1, Math.round(h! * scaleOf(h!, w!))), Math.max(1, Math.round(w! * scaleOf(h!, w!)))] as const);
  const contentW = Math.max(Math.max(...sizes.map((z) => z[1])), 16 * ADVANCE);
  const cellW = contentW + GAP;
  const maxChars = Math.floor((contentW + 1) / ADVANCE);
  const captions: string[][] = [["original", `${img.height}x${img.width}x${img.channels}`]];
  for (let k = 0; k < n; k++) {
    const lines = [`draw ${k}`, ...described[k]!.flatMap((l) => wrap(l, maxChars))];
    if (described[k]!.length === 0) lines.push("(no random params)");
    captions.push(lines.length > 12 ? [...lines.slice(0, 11), "..."] : lines);
  }
  const ncol = options.ncol === undefined ? Math.min(n + 1, 9) : v.int("showAugmentations(options).ncol", options.ncol, 1);
  const cols = Math.min(ncol, n + 1);
  const rows = Math.ceil((n + 1) / cols);
  const tileBoxH = Math.max(...sizes.map((z) => z[0]));
  const rowHeights: number[] = [];
  for (let r = 0; r < rows; r++) {
    const lines = Math.max(...captions.slice(r * cols, (r + 1) * cols).map((c) => c.length));
    rowHeights.push(tileBoxH + 4 + lines * LINE + PAD * 2);
  }
  const canvas = whiteCanvas(cols * cellW - GAP + 2 * PAD, rowHeights.reduce((s, h) => s + h, 0) + PAD);
  let y = PAD;
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < cols; col++) {
      const t = r * cols + col;
      if (t > n) break;
      const x0 = PAD + col * cellW;
      if (t === 0) {
        const rgb = new Uint8Array(img.height * img.width * 3);
        hwcToRgb(img.data, img.height, img.width, img.channels, rgb);
        blitScaled(canvas, rgb, img.width, img.height, x0, y, sizes[0]![1], sizes[0]![0]);
      } else {
        const d = draws[t - 1]!;
        const [c, h, w] = d.shape;
        const rgb = new Uint8Array(h * w * 3);
        chwToRgb(d.output, 0, displayChannels(c), h, w, a, b, rgb);
        blitScaled(canvas, rgb, w, h, x0, y, sizes[t]![1], sizes[t]![0]);
      }
      captions[t]!.forEach((line, i) => drawText(canvas, x0, y + tileBoxH + 4 + i * LINE, fitText(line, maxChars), i === 0 ? TEXT : MUTED));
    }
    y += rowHeights[r]!;
  }

  const lines: string[] = [];
  const label = src.label !== undefined ? `, label ${src.label}${src.names?.[src.label] !== undefined ? ` (${src.names[src.label]})` : ""}` : "";
  lines.push(`${src.where}${label}: ${img.height}x${img.width}x${img.channels} uint8 -> ${draws[0]!.shape.join("x")} float32 (C x H x W)`);
  if (typeof transform !== "function") lines.push(`transform: ${String(transform).replace(/\n\s*/g, " ")}`);
  lines.push(`${n} draws, draw k at { seed: ${seed}, epoch: k, index: ${index} }; display: ${mapping}`);
  described.forEach((d, k) => lines.push(`draw ${k}: ${d.length ? d.join("; ") : "(no random params)"}${draws[k]!.shape.join("x") !== draws[0]!.shape.join("x") ? ` [${draws[k]!.shape.join("x")}]` : ""}`));
  return pngBundle(canvas, lines.join("\n"));
}
