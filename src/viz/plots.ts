/** Plotly views: sampler distributions, loader stage timelines, transfer bandwidth. */
import { OptionError } from "../errors";
import type { Dataset } from "../data/types";
import type { LoaderStats, BatchTiming } from "../loader/types";
import type { BatchSamplerLike, Sampler } from "../sampling/types";
import * as v from "../options";
import type { PlotlyFigure, PlotlyTrace, Bundle } from "../display/index";
import { className, fmt, fmtBytes } from "./format";
import { figureBundle } from "./plotly";

// ------------------------------------------------------------------------------- subplot layout

interface Panel {
  title: string;
  traces: PlotlyTrace[];
  xaxis?: Record<string, unknown>;
  yaxis?: Record<string, unknown>;
}

/** The narrowest figure width the layouts are made for (JupyterLab's output area is about 820 px; a narrow classic Notebook, 700). */
const MIN_WIDTH = 680;
/** About how wide one character of a 13 px bold title is. */
const TITLE_CHAR_PX = 7.6;

/** Breaks `text` at spaces into lines of at most `max` characters (a longer word stays whole). */
function wrapWords(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * One figure from rows of panels: panel k gets axes x{k}/y{k}, with domains laid out by
 * hand (rows top to bottom, relative heights `weights`) and its title as an annotation.
 * Titles wrap to fit their panel at MIN_WIDTH, and the space above each row grows with its
 * title's lines; the legend sits below the bottom row's axis title, in pixels, not in a
 * fraction of the figure that depends on its height.
 */
function panelsFigure(rows: Panel[][], layout: Record<string, unknown>, weights?: number[]): PlotlyFigure {
  const data: PlotlyTrace[] = [];
  const height = typeof layout.height === "number" ? layout.height : 450;
  const legendRows = typeof layout.legendRows === "number" ? layout.legendRows : 1;
  delete layout.legendRows;
  const margin = { l: 70, r: 30, t: 60, b: 70 + 22 * legendRows };
  // Title lines per row (the most of any panel in the row).
  const plotWidth = MIN_WIDTH - margin.l - margin.r;
  // The gap between panels of a row holds the right panel's y tick labels and title: wider
  // for category labels ("Ankle boot") than for numbers.
  const hgaps = rows.map((row) => {
    if (row.length < 2) return 0;
    let px = 0;
    for (const p of row.slice(1)) {
      if (p.yaxis?.type !== "category") continue;
      for (const t of p.traces) for (const y of Array.isArray(t.y) ? t.y : []) if (typeof y === "string") px = Math.max(px, y.length * 7);
    }
    return Math.min(0.3, Math.max(95, px + 55) / plotWidth);
  });
  const titles = rows.map((row, r) => {
    const hgap = hgaps[r]!;
    const cw = (1 - hgap * (row.length - 1)) / row.length;
    const max = Math.max(12, Math.floor((cw * plotWidth) / TITLE_CHAR_PX));
    return row.map((p) => wrapWords(p.title, max));
  });
  const extra = titles.map((row) => Math.max(1, ...row.map((l) => l.length)) - 1);
  margin.t += 18 * extra[0]!;
  // Slanted category labels hang below their axis: room under each row for its longest one.
  const below = rows.map((row) =>
    Math.max(
      0,
      ...row.map((p) => {
        if (p.xaxis?.tickangle === undefined) return 0;
        let chars = 0;
        for (const t of p.traces) for (const x of Array.isArray(t.x) ? t.x : []) if (typeof x === "string") chars = Math.max(chars, x.length);
        return Math.round(chars * 6.6 * Math.SQRT1_2);
      }),
    ),
  );
  margin.b += below[rows.length - 1]!;
  const plotHeight = height - margin.t - margin.b;
  const lay: Record<string, unknown> = {
    template: undefined,
    paper_bgcolor: "white",
    plot_bgcolor: "white",
    font: { size: 12 },
    margin,
    // 60 px under the plot area: below the bottom axis's tick labels and title
    legend: { orientation: "h", x: 0, xanchor: "left", y: -60 / plotHeight, yanchor: "top" },
    ...layout,
  };
  const annotations: unknown[] = [];
  const w = weights ?? rows.map(() => 1);
  const total = w.reduce((s, x) => s + x, 0);
  // About 110 px between rows (the upper row's axis title, then the lower row's panel title), more
  // for a lower row whose title wraps.
  const gaps = rows.map((_, r) => (r === 0 ? 0 : Math.min(0.35, (110 + 18 * extra[r]! + below[r - 1]!) / plotHeight)));
  const usable = 1 - gaps.reduce((s, g) => s + g, 0);
  let top = 1;
  let k = 0;
  rows.forEach((row, r) => {
    top -= gaps[r]!;
    const h = (usable * w[r]!) / total;
    const bottom = Math.max(0, top - h);
    const hgap = hgaps[r]!;
    const cw = (1 - hgap * (row.length - 1)) / row.length;
    row.forEach((p, c) => {
      k++;
      const sfx = k === 1 ? "" : String(k);
      const left = c * (cw + hgap);
      for (const t of p.traces) data.push({ ...t, xaxis: `x${sfx}`, yaxis: `y${sfx}` });
      lay[`xaxis${sfx}`] = { domain: [left, left + cw], anchor: `y${sfx}`, automargin: true, gridcolor: "#eee", ...p.xaxis };
      lay[`yaxis${sfx}`] = { domain: [bottom, top], anchor: `x${sfx}`, automargin: true, gridcolor: "#eee", ...p.yaxis };
      const text = titles[r]![c]!.map((l) => `<b>${l}</b>`).join("<br>");
      annotations.push({ text, showarrow: false, xref: "paper", yref: "paper", x: left + cw / 2, y: top, xanchor: "center", yanchor: "bottom", font: { size: 13 } });
    });
    top = bottom;
  });
  lay.annotations = annotations;
  delete lay.template;
  return { data, layout: lay };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object";
}

function isSampler(x: unknown): x is Sampler {
  return isObject(x) && typeof x.indices === "function" && typeof x.length === "number";
}

function isBatchSampler(x: unknown): x is BatchSamplerLike {
  return isObject(x) && typeof x.batches === "function" && isSampler(x.sampler);
}

function labelsArray(option: string, x: unknown): Int32Array {
  if (!((ArrayBuffer.isView(x) && !(x instanceof DataView)) || Array.isArray(x))) throw new OptionError(option, x, "labels: an Int32Array or array of class numbers, or a dataset with labels()");
  const a = x as ArrayLike<number>;
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const l = a[i]!;
    if (!Number.isInteger(l) || l < 0 || l > 1e6) throw new OptionError(`${option}[${i}]`, l, "a class number, an integer >= 0");
    out[i] = l;
  }
  return out;
}

// --------------------------------------------------------------------------------- plotSampler

/**
 * A class axis: numbered classes get the title "class"; named ones ("Ankle boot") are slanted
 * at 45 degrees and need no title (panelsFigure leaves room under them).
 */
function classAxis(classes: readonly string[]): Record<string, unknown> {
  const named = classes.some((c) => !/^\d+$/.test(c));
  return named && classes.length * Math.max(...classes.map((c) => c.length)) > 40 ? { type: "category", tickangle: -45 } : { type: "category", title: { text: "class" } };
}

export interface PlotSamplerOptions {
  /**
   * The class number of every dataset index (an Int32Array), or a dataset with labels(); optional
   * for a loader (its dataset's). Also accepted as plotSampler's second argument (the older form).
   */
  labels?: ArrayLike<number> | Dataset;
  /** Epochs to draw (default 3); epochs 0 .. epochs-1. */
  epochs?: number;
  /** Batch size for the per-batch mix when given a plain sampler (default 32). */
  batchSize?: number;
  /** Names by label (default: the dataset's). */
  classNames?: readonly string[];
  /**
   * For a DistributedSampler: the samplers of every rank (index = rank), or a factory
   * rank -> sampler. Default: rebuilt from the sampler's own n/worldSize/shuffle/seed/dropLast.
   */
  ranks?: readonly Sampler[] | ((rank: number) => Sampler);
  /** Batches shown in the per-batch heatmap (default 200, from the start of epoch 0). */
  maxBatches?: number;
}

/** What plotSampler accepts: a sampler, a batch sampler, or a loader (anything with batchSampler). */
export type SamplerSource = Sampler | BatchSamplerLike | { readonly batchSampler: BatchSamplerLike; readonly dataset?: Dataset };

function otherRanks(sampler: Sampler, worldSize: number, ranks: PlotSamplerOptions["ranks"]): { samplers: Sampler[]; how: string } | undefined {
  if (ranks !== undefined) {
    if (typeof ranks === "function") {
      const samplers = Array.from({ length: worldSize }, (_, r) => {
        const s = ranks(r);
        if (!isSampler(s)) throw new OptionError(`plotSampler(options).ranks(${r})`, s, "a sampler");
        return s;
      });
      return { samplers, how: "from options.ranks (factory)" };
    }
    if (!Array.isArray(ranks) || ranks.length !== worldSize || !ranks.every(isSampler)) {
      throw new OptionError("plotSampler(options).ranks", ranks, `an array of ${worldSize} samplers (one per rank) or a function rank -> sampler`);
    }
    return { samplers: [...ranks], how: "from options.ranks" };
  }
  const s = sampler as unknown as { n?: unknown; shuffle?: unknown; seed?: unknown; dropLast?: unknown; constructor: new (n: number, o: object) => Sampler };
  if (typeof s.n === "number" && typeof s.shuffle === "boolean" && typeof s.seed === "number" && typeof s.dropLast === "boolean") {
    try {
      const samplers = Array.from({ length: worldSize }, (_, r) => new s.constructor(s.n as number, { rank: r, worldSize, shuffle: s.shuffle, seed: s.seed, dropLast: s.dropLast }));
      if (samplers.every(isSampler)) return { samplers, how: `rebuilt as ${s.constructor.name}(n, { rank, worldSize: ${worldSize}, ... })` };
    } catch {
      // fall through: only this rank is known
    }
  }
  return undefined;
}

/**
 * Sampler distributions over `epochs` epochs: class frequency per epoch, class mix of each
 * batch (heatmap, epoch 0), index coverage (times each index was drawn) and, for a
 * DistributedSampler (has rank and worldSize), the split per rank in epoch 0.
 * `labels`: one class number per dataset index, or a dataset with labels(); optional for a loader.
 */
export function plotSampler(source: SamplerSource, options?: PlotSamplerOptions): Bundle;
export function plotSampler(source: SamplerSource, labels?: ArrayLike<number> | Dataset, options?: Omit<PlotSamplerOptions, "labels">): Bundle;
export function plotSampler(source: SamplerSource, second?: ArrayLike<number> | Dataset | PlotSamplerOptions, third?: PlotSamplerOptions): Bundle {
  let labels: ArrayLike<number> | Dataset | undefined;
  let options: PlotSamplerOptions;
  const isOptions = (x: unknown): x is PlotSamplerOptions =>
    isObject(x) && !Array.isArray(x) && !ArrayBuffer.isView(x) && typeof (x as { get?: unknown }).get !== "function" && typeof (x as { length?: unknown }).length !== "number";
  if (isOptions(second)) {
    if (third !== undefined) throw new OptionError("plotSampler(sampler, options, ...)", third, "nothing after the options object (labels go in options.labels)");
    options = second;
    labels = second.labels;
  } else {
    options = third ?? {};
    if (typeof options === "object" && options !== null && options.labels !== undefined) throw new OptionError("plotSampler(options).labels", options.labels, "undefined when the labels are the second argument (give them once)");
    labels = second;
  }
  v.knownKeys("plotSampler", options, ["labels", "epochs", "batchSize", "classNames", "ranks", "maxBatches"]);
  let batchSampler: BatchSamplerLike | undefined;
  let sampler: Sampler;
  let dataset: Dataset | undefined;
  if (isBatchSampler(source)) {
    batchSampler = source;
    sampler = source.sampler;
  } else if (isObject(source) && isBatchSampler(source.batchSampler)) {
    batchSampler = source.batchSampler;
    sampler = batchSampler.sampler;
    dataset = isObject(source.dataset) ? (source.dataset as Dataset) : undefined;
  } else if (isSampler(source)) {
    sampler = source;
  } else {
    throw new OptionError("plotSampler(sampler)", source, "a sampler, a BatchSampler or a DataLoader");
  }
  let labelArr: Int32Array;
  let names: readonly string[] | undefined;
  if (isObject(labels) && typeof (labels as Dataset).get === "function") {
    const ds = labels as Dataset;
    if (typeof ds.labels !== "function") throw new OptionError("plotSampler(labels)", labels, "a dataset with labels() (or pass the labels array)");
    labelArr = labelsArray("plotSampler(labels).labels()", ds.labels());
    names = ds.classNames;
  } else if (labels !== undefined) {
    labelArr = labelsArray("plotSampler(labels)", labels);
  } else if (dataset && typeof dataset.labels === "function") {
    labelArr = labelsArray("plotSampler: loader.dataset.labels()", dataset.labels());
  } else {
    throw new OptionError("plotSampler(labels)", labels, "the class number of every dataset index (an Int32Array), or a dataset with labels()");
  }
  names = options.classNames ?? names ?? dataset?.classNames;
  if (names !== undefined && (!Array.isArray(names) || !names.every((s) => typeof s === "string"))) {
    throw new OptionError("plotSampler(options).classNames", names, "an array of class names (strings)");
  }
  const epochs = options.epochs === undefined ? 3 : v.int("plotSampler(options).epochs", options.epochs, 1, 1000);
  const batchSize = options.batchSize === undefined ? (batchSampler?.batchSize ?? 32) : v.int("plotSampler(options).batchSize", options.batchSize, 1);
  if (batchSampler && options.batchSize !== undefined && options.batchSize !== batchSampler.batchSize) {
    throw new OptionError("plotSampler(options).batchSize", options.batchSize, `undefined or ${batchSampler.batchSize} (the batch sampler decides the batches)`);
  }
  const maxBatches = options.maxBatches === undefined ? 200 : v.int("plotSampler(options).maxBatches", options.maxBatches, 1);

  const n = labelArr.length;
  let K = 0;
  for (let i = 0; i < n; i++) if (labelArr[i]! + 1 > K) K = labelArr[i]! + 1;
  if (n === 0 || K === 0) throw new OptionError("plotSampler(labels)", labels, "at least one label");
  const classes = Array.from({ length: K }, (_, k) => className(k, names));

  const check = (idx: Int32Array, what: string): void => {
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i]!;
      if (!(j >= 0 && j < n)) throw new OptionError(`plotSampler: ${what}[${i}]`, j, `a dataset index in [0, ${n - 1}] (labels has ${n} entries)`);
    }
  };

  // Class frequency per epoch and coverage.
  const perEpoch: Float64Array[] = [];
  const coverage = new Int32Array(n);
  let drawn = 0;
  for (let e = 0; e < epochs; e++) {
    const idx = sampler.indices(e);
    check(idx, `indices(${e})`);
    const counts = new Float64Array(K);
    for (let i = 0; i < idx.length; i++) {
      counts[labelArr[idx[i]!]!]!++;
      coverage[idx[i]!]!++;
    }
    drawn += idx.length;
    perEpoch.push(counts);
  }

  // Class mix per batch, epoch 0.
  let batches: Int32Array[];
  if (batchSampler) batches = batchSampler.batches(0);
  else {
    const idx = sampler.indices(0);
    batches = [];
    for (let k = 0; k < idx.length; k += batchSize) batches.push(idx.subarray(k, Math.min(idx.length, k + batchSize)));
  }
  const nb = Math.min(batches.length, maxBatches);
  const z: number[][] = Array.from({ length: K }, () => new Array<number>(nb).fill(0));
  let minShare = Infinity;
  let maxShare = 0;
  for (let b = 0; b < nb; b++) {
    const batch = batches[b]!;
    check(batch, `batch ${b}`);
    for (let i = 0; i < batch.length; i++) z[labelArr[batch[i]!]!]![b]!++;
  }
  for (let k = 0; k < K; k++) {
    for (let b = 0; b < nb; b++) {
      const share = batches[b]!.length ? z[k]![b]! / batches[b]!.length : 0;
      if (share < minShare) minShare = share;
      if (share > maxShare) maxShare = share;
    }
  }

  const rowsOfPanels: Panel[][] = [];
  const freq: Panel = {
    title: `Class frequency per epoch (${sampler.length} indices/epoch)`,
    traces: perEpoch.map((c, e) => ({ type: "bar", name: `epoch ${e}`, x: classes, y: Array.from(c), hovertemplate: `epoch ${e}<br>%{x}: %{y}<extra></extra>` })),
    xaxis: classAxis(classes),
    yaxis: { title: { text: "samples" } },
  };
  const mix: Panel = {
    title: `Class mix per batch, epoch 0 (batches of ${batchSampler ? batchSampler.batchSize : batchSize}${nb < batches.length ? `, first ${nb} of ${batches.length}` : ""})`,
    traces: [
      {
        type: "heatmap",
        x: Array.from({ length: nb }, (_, b) => b),
        y: classes,
        z,
        colorscale: [
          [0, "#f7fbff"],
          [1, "#08306b"],
        ],
        showscale: true,
        colorbar: { title: { text: "count" }, len: 0.3, y: 1, yanchor: "top" },
        hovertemplate: "batch %{x}<br>%{y}: %{z}<extra></extra>",
        showlegend: false,
      },
    ],
    xaxis: { title: { text: "batch" } },
    yaxis: { title: { text: "class" }, type: "category" },
  };
  rowsOfPanels.push([freq, mix]);

  // Coverage.
  let maxCount = 0;
  let never = 0;
  for (let i = 0; i < n; i++) {
    if (coverage[i]! > maxCount) maxCount = coverage[i]!;
    if (coverage[i] === 0) never++;
  }
  let cov: Panel;
  if (n <= 2000) {
    cov = {
      title: `Index coverage: times each index was drawn in ${epochs} epoch${epochs === 1 ? "" : "s"}`,
      traces: [{ type: "bar", name: "draws", x: Array.from({ length: n }, (_, i) => i), y: Array.from(coverage), marker: { color: "#555" }, showlegend: false, hovertemplate: "index %{x}: %{y}<extra></extra>" }],
      xaxis: { title: { text: "dataset index" } },
      yaxis: { title: { text: "times drawn" } },
    };
  } else {
    const hist = new Array<number>(maxCount + 1).fill(0);
    for (let i = 0; i < n; i++) hist[coverage[i]!]!++;
    cov = {
      title: `Index coverage in ${epochs} epoch${epochs === 1 ? "" : "s"}: how many indices were drawn k times`,
      traces: [{ type: "bar", name: "indices", x: hist.map((_, k) => k), y: hist, marker: { color: "#555" }, showlegend: false, hovertemplate: "drawn %{x} times: %{y} indices<extra></extra>" }],
      xaxis: { title: { text: "times drawn (k)" }, dtick: maxCount > 20 ? undefined : 1 },
      yaxis: { title: { text: "indices" } },
    };
  }
  const covRow: Panel[] = [cov];

  // Split per rank.
  const textRanks: string[] = [];
  const rank = (sampler as { rank?: unknown }).rank;
  const worldSize = (sampler as { worldSize?: unknown }).worldSize;
  if (typeof rank === "number" && typeof worldSize === "number" && Number.isInteger(worldSize) && worldSize >= 1 && worldSize <= 1024) {
    const others = otherRanks(sampler, worldSize, options.ranks);
    const samplers = others ? others.samplers : [];
    if (samplers.length === 0) {
      textRanks.push(`rank ${rank} of ${worldSize}; other ranks unknown (pass options.ranks: a sampler per rank or a factory)`);
    } else {
      const owners = new Int32Array(n);
      const traces: PlotlyTrace[] = [];
      samplers.forEach((s, r) => {
        const idx = s.indices(0);
        check(idx, `rank ${r} indices(0)`);
        const counts = new Array<number>(K).fill(0);
        for (let i = 0; i < idx.length; i++) {
          counts[labelArr[idx[i]!]!]!++;
          owners[idx[i]!]!++;
        }
        traces.push({ type: "bar", name: `rank ${r}${r === rank ? " (this)" : ""}`, x: classes, y: counts, hovertemplate: `rank ${r}<br>%{x}: %{y}<extra></extra>` });
        textRanks.push(`  rank ${r}${r === rank ? " (this)" : ""}: ${idx.length} indices; ${counts.map((c, k) => `${classes[k]} ${c}`).join(", ")}`);
      });
      let dup = 0;
      let missing = 0;
      for (let i = 0; i < n; i++) {
        if (owners[i]! > 1) dup++;
        if (owners[i] === 0) missing++;
      }
      textRanks.unshift(`split per rank, epoch 0 (${others!.how}): ${dup} indices on more than one rank (padding), ${missing} on none`);
      covRow.push({ title: `Split per rank, epoch 0 (world size ${worldSize})`, traces, xaxis: classAxis(classes), yaxis: { title: { text: "samples" } } });
    }
  }
  rowsOfPanels.push(covRow);

  const fig = panelsFigure(rowsOfPanels, { title: { text: `${samplerName(sampler)}: ${n} labelled indices, ${K} classes`, x: 0, xref: "paper", xanchor: "left" }, barmode: "group", height: 820 });

  const lines: string[] = [];
  lines.push(`${String(sampler).split("\n")[0]}`);
  lines.push(`${epochs} epoch${epochs === 1 ? "" : "s"} of ${sampler.length} indices over ${n} labelled dataset indices, ${K} classes`);
  lines.push("class counts per epoch:");
  perEpoch.forEach((c, e) => lines.push(`  epoch ${e}: ${Array.from(c, (x, k) => `${classes[k]} ${x}`).join(", ")}`));
  lines.push(
    `per-batch mix (epoch 0, ${nb} of ${batches.length} batches of ${batchSampler ? batchSampler.batchSize : batchSize}): class share per batch from ${fmt(minShare * 100, 1)}% to ${fmt(maxShare * 100, 1)}%`,
  );
  lines.push(`coverage: ${drawn} draws; ${n - never} of ${n} indices drawn at least once, ${never} never, most drawn ${maxCount} times`);
  lines.push(...textRanks);
  return figureBundle(fig, lines.join("\n"));
}

function samplerName(s: Sampler): string {
  const name = (s as { constructor?: { name?: string } }).constructor?.name;
  return name && name !== "Object" ? name : "sampler";
}

// --------------------------------------------------------------------------------- plotTimings

const STAGES = ["sample", "fetch", "transform", "collate", "copy", "kernel"] as const;
const STAGE_LABEL: Record<(typeof STAGES)[number], string> = {
  sample: "sample (indices, params)",
  fetch: "fetch / decode",
  transform: "transform",
  collate: "collate",
  copy: "copy to device",
  kernel: "device kernel",
};
const STAGE_COLOR: Record<(typeof STAGES)[number], string> = {
  sample: "#9467bd",
  fetch: "#1f77b4",
  transform: "#ff7f0e",
  collate: "#2ca02c",
  copy: "#d62728",
  kernel: "#8c564b",
};

export interface PlotTimingsOptions {
  /** Batches drawn in the timeline (default 300: the last ones). */
  maxBatches?: number;
}

/**
 * The loader's stage timeline and throughput. Timeline: one row per batch, its stages as
 * horizontal bars laid end to end from the batch's start (ms since iteration began; with
 * prefetch, batches overlap). Below: samples/s per delivered batch and cumulative.
 * `stats`: LoaderStats, or a loader (its stats() is read).
 */
export function plotTimings(stats: LoaderStats | { stats(): LoaderStats }, options: PlotTimingsOptions = {}): Bundle {
  v.knownKeys("plotTimings", options, ["maxBatches"]);
  const st: unknown = isObject(stats) && typeof (stats as { stats?: unknown }).stats === "function" ? (stats as { stats(): LoaderStats }).stats() : stats;
  if (!isObject(st) || !Array.isArray(st.perBatch) || !isObject(st.stages)) {
    throw new OptionError("plotTimings(stats)", stats, "LoaderStats (loader.stats()) with perBatch and stages");
  }
  const s = st as unknown as LoaderStats;
  const maxBatches = options.maxBatches === undefined ? 300 : v.int("plotTimings(options).maxBatches", options.maxBatches, 1);
  s.perBatch.forEach((b, i) => {
    if (!isObject(b) || !Number.isFinite(b.start) || !Number.isFinite(b.end)) throw new OptionError(`plotTimings(stats).perBatch[${i}]`, b, "{ batch, epoch, start, end, size, sample, fetch, transform, collate }");
  });
  const all = [...s.perBatch].sort((p, q) => p.start - q.start);
  const shown = all.slice(Math.max(0, all.length - maxBatches));
  const stages = STAGES.filter((k) => k === "sample" || k === "fetch" || k === "transform" || k === "collate" || all.some((b) => (b[k] ?? 0) > 0));
  const yLabel = (b: BatchTiming): string => `e${b.epoch} b${b.batch}`;
  const y = shown.map(yLabel);
  const offset = new Float64Array(shown.length);
  shown.forEach((b, i) => (offset[i] = b.start));
  const timeline: PlotlyTrace[] = stages.map((k) => {
    const x = shown.map((b) => b[k] ?? 0);
    const base = Array.from(offset);
    x.forEach((d, i) => (offset[i]! += d));
    return {
      type: "bar",
      orientation: "h",
      name: STAGE_LABEL[k],
      y,
      x,
      base,
      marker: { color: STAGE_COLOR[k] },
      hovertemplate: `%{y} ${k}: %{x:.2f} ms (from %{base:.1f} ms)<extra></extra>`,
    };
  });
  timeline.push({
    type: "scatter",
    mode: "markers",
    name: "delivered",
    y,
    x: shown.map((b) => b.end),
    marker: { symbol: "line-ns-open", size: 10, color: "black" },
    hovertemplate: "%{y} delivered at %{x:.1f} ms<extra></extra>",
  });

  const byEnd = [...all].sort((p, q) => p.end - q.end);
  const t0 = all.reduce((m, b) => Math.min(m, b.start), all.length ? Infinity : 0);
  let cum = 0;
  let prevEnd = t0;
  const tx: number[] = [];
  const per: number[] = [];
  const cumRate: number[] = [];
  for (const b of byEnd) {
    cum += b.size;
    const dt = b.end - prevEnd;
    tx.push(b.end / 1000);
    per.push(dt > 0 ? (b.size * 1000) / dt : NaN);
    cumRate.push(b.end > t0 ? (cum * 1000) / (b.end - t0) : NaN);
    prevEnd = b.end;
  }
  const rate: PlotlyTrace[] = [
    { type: "scatter", mode: "markers", name: "per batch", x: tx, y: per.map((r) => (Number.isFinite(r) ? r : null)), marker: { size: 5, color: "#999" }, hovertemplate: "%{x:.3f} s: %{y:.0f} samples/s<extra></extra>" },
    { type: "scatter", mode: "lines", name: "cumulative", x: tx, y: cumRate.map((r) => (Number.isFinite(r) ? r : null)), line: { color: "#1f77b4", width: 2 }, hovertemplate: "%{x:.3f} s: %{y:.0f} samples/s<extra></extra>" },
  ];
  const rowH = Math.min(1100, Math.max(260, shown.length * 14));
  const fig = panelsFigure(
    [
      [{ title: `Stage timeline${shown.length < all.length ? ` (last ${shown.length} of ${all.length} batches)` : ""}`, traces: timeline, xaxis: { title: { text: "ms since iteration began" } }, yaxis: { autorange: "reversed", type: "category", title: { text: "batch" } } }],
      [{ title: `Throughput (overall ${fmt(s.samplesPerSecond, 0)} samples/s)`, traces: rate, xaxis: { title: { text: "s since iteration began" } }, yaxis: { title: { text: "samples/s" }, rangemode: "tozero" } }],
    ],
    { title: { text: `Loader timings: ${s.backend} backend, ${s.batches} batches, ${s.samples} samples`, x: 0, xref: "paper", xanchor: "left" }, barmode: "overlay", bargap: 0.25, height: rowH + 440, legendRows: 2 },
    [rowH, 260],
  );

  const total = stages.reduce((t, k) => t + (s.stages[k] ?? 0), 0);
  const lines = [
    `Loader timings: backend ${s.backend}${s.backendReason ? ` (${s.backendReason})` : ""}, seed ${s.seed}`,
    `${s.batches} batches, ${s.samples} samples in ${fmt(s.wallMs, 1)} ms: ${fmt(s.samplesPerSecond, 1)} samples/s`,
    `stage totals (ms, share of stage time): ${stages.map((k) => `${k} ${fmt(s.stages[k] ?? 0, 1)} (${total > 0 ? fmt(((s.stages[k] ?? 0) * 100) / total, 1) : 0}%)`).join(", ")}`,
  ];
  if (all.length) {
    const sums = stages.map((k) => all.reduce((t, b) => t + (b[k] ?? 0), 0) / all.length);
    lines.push(`mean per batch (ms): ${stages.map((k, i) => `${k} ${fmt(sums[i]!, 2)}`).join(", ")}`);
  }
  if (s.skipped?.length) lines.push(`skipped samples: ${s.skipped.length} (first: ${s.skipped[0]!.index}${s.skipped[0]!.path ? ` ${s.skipped[0]!.path}` : ""}: ${s.skipped[0]!.reason})`);
  if (shown.length < all.length) lines.push(`timeline shows the last ${shown.length} of ${all.length} batches (maxBatches option)`);
  return figureBundle(fig, lines.join("\n"));
}

// -------------------------------------------------------------------------------- plotTransfer

export interface TransferPoint {
  bytes: number;
  pageableGBps: number;
  pinnedGBps: number;
  /** PyTorch's pinned host-to-device copy at this size, when measured. */
  torchGBps?: number;
}

/** Host-to-device bandwidth against copy size (log x): pageable vs pinned (and PyTorch if given). */
export function plotTransfer(results: readonly TransferPoint[], options: { title?: string } = {}): Bundle {
  v.knownKeys("plotTransfer", options, ["title"]);
  if (!Array.isArray(results) || results.length === 0) {
    throw new OptionError("plotTransfer(results)", results, "a non-empty array of { bytes, pageableGBps, pinnedGBps, torchGBps? } (transferBenchmark())");
  }
  results.forEach((r, i) => {
    if (!isObject(r)) throw new OptionError(`plotTransfer(results)[${i}]`, r, "{ bytes, pageableGBps, pinnedGBps, torchGBps? }");
    v.num(`plotTransfer(results)[${i}].bytes`, r.bytes, 1);
    v.num(`plotTransfer(results)[${i}].pageableGBps`, r.pageableGBps, 0);
    v.num(`plotTransfer(results)[${i}].pinnedGBps`, r.pinnedGBps, 0);
    if (r.torchGBps !== undefined) v.num(`plotTransfer(results)[${i}].torchGBps`, r.torchGBps, 0);
  });
  const rs = [...results].sort((p, q) => p.bytes - q.bytes);
  const x = rs.map((r) => r.bytes);
  const sizes = rs.map((r) => fmtBytes(r.bytes));
  const traces: PlotlyTrace[] = [
    { type: "scatter", mode: "lines+markers", name: "pageable", x, y: rs.map((r) => r.pageableGBps), customdata: sizes, line: { color: "#ff7f0e" }, hovertemplate: "pageable %{customdata}: %{y:.2f} GB/s<extra></extra>" },
    { type: "scatter", mode: "lines+markers", name: "pinned", x, y: rs.map((r) => r.pinnedGBps), customdata: sizes, line: { color: "#1f77b4" }, hovertemplate: "pinned %{customdata}: %{y:.2f} GB/s<extra></extra>" },
  ];
  const torch = rs.filter((r) => r.torchGBps !== undefined);
  if (torch.length) {
    traces.push({
      type: "scatter",
      mode: "lines+markers",
      name: "PyTorch (pinned)",
      x: torch.map((r) => r.bytes),
      y: torch.map((r) => r.torchGBps),
      customdata: torch.map((r) => fmtBytes(r.bytes)),
      line: { color: "#7f7f7f", dash: "dash" },
      hovertemplate: "PyTorch %{customdata}: %{y:.2f} GB/s<extra></extra>",
    });
  }
  const fig: PlotlyFigure = {
    data: traces,
    layout: {
      title: { text: options.title ?? "Host-to-device bandwidth by copy size", x: 0, xref: "paper", xanchor: "left" },
      paper_bgcolor: "white",
      plot_bgcolor: "white",
      height: 450,
      xaxis: { type: "log", title: { text: "copy size" }, tickvals: x, ticktext: sizes, gridcolor: "#eee" },
      yaxis: { title: { text: "GB/s (1e9 B/s)" }, rangemode: "tozero", gridcolor: "#eee" },
      legend: { orientation: "h", y: -0.2, yanchor: "top" },
      margin: { l: 70, r: 30, t: 60, b: 80 },
    },
  };
  const col = (s: string, w: number): string => s.padStart(w);
  const lines = [
    "Host-to-device bandwidth (GB/s)",
    `${col("size", 10)} ${col("pageable", 9)} ${col("pinned", 9)} ${col("pinned/pageable", 16)}${torch.length ? ` ${col("PyTorch", 9)}` : ""}`,
    ...rs.map(
      (r) =>
        `${col(fmtBytes(r.bytes), 10)} ${col(r.pageableGBps.toFixed(2), 9)} ${col(r.pinnedGBps.toFixed(2), 9)} ${col(r.pageableGBps > 0 ? `${(r.pinnedGBps / r.pageableGBps).toFixed(2)}x` : "-", 16)}${
          torch.length ? ` ${col(r.torchGBps !== undefined ? r.torchGBps.toFixed(2) : "-", 9)}` : ""
        }`,
    ),
  ];
  const peak = rs.reduce((m, r) => (r.pinnedGBps > m.pinnedGBps ? r : m), rs[0]!);
  lines.push(`peak pinned ${peak.pinnedGBps.toFixed(2)} GB/s at ${fmtBytes(peak.bytes)}`);
  return figureBundle(fig, lines.join("\n"));
}
