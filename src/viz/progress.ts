/**
 * progress(): wraps an iterable, async iterable or count, yields its items and reports
 * progress through a sink. In the batchlab kernel the sink is the kernel's display function
 * (globalThis[Symbol.for("batchlab.display")]) and the bar updates in place by display id;
 * in a plain Node script it is one line on stderr rewritten with \r when stderr is a TTY,
 * and otherwise a single line once the loop ends.
 */
import { OptionError } from "../errors";
import * as v from "../options";
import { escapeHtml, makeBundle, type Bundle } from "../display/index";
import { fmt, fmtDuration } from "./format";

/** Receives every update: the first with update false, later ones with update true, all with the same displayId. */
export type ProgressSink = (bundle: Bundle, options: { displayId: string; update: boolean }) => void;

export interface ProgressOptions {
  /** Number of items (default: a count, an array's length, or the source's length/size). */
  total?: number;
  /** Text before the bar. */
  label?: string;
  /** Where updates go (default: the kernel's display when running in batchlab, else stderr). */
  sink?: ProgressSink;
  /** Minimum milliseconds between intermediate updates (default 100); the first and last always go. */
  minInterval?: number;
  /** Name of one item in the rate, e.g. "batch" (default "it"). */
  unit?: string;
}

/** Numbers behind one update (also in the bundle's metadata, key "batchlab/progress"). */
export interface ProgressState {
  n: number;
  total: number | undefined;
  /** n / total, or undefined without a total. */
  fraction: number | undefined;
  elapsedSeconds: number;
  /** Items per second so far. */
  rate: number;
  /** Estimated seconds left, when known. */
  remainingSeconds: number | undefined;
  /** "running", "done" (the loop finished) or "stopped" (break or error). */
  status: "running" | "done" | "stopped";
  label: string;
}

const DISPLAY_SINK = Symbol.for("batchlab.display");
const BAR_WIDTH = 30;
let barCount = 0;

function rateText(rate: number, unit: string): string {
  if (!(rate > 0) || !Number.isFinite(rate)) return `? ${unit}/s`;
  if (rate < 1) return `${fmt(1 / rate, 2)} s/${unit}`;
  return `${rate >= 100 ? Math.round(rate) : fmt(rate, 2)} ${unit}/s`;
}

/** The plain-text line of a state, tqdm style. */
export function progressText(s: ProgressState, unit = "it"): string {
  const head = s.label ? `${s.label}: ` : "";
  const time = `${fmtDuration(s.elapsedSeconds)}${s.remainingSeconds !== undefined && s.status === "running" ? `<${fmtDuration(s.remainingSeconds)}` : ""}`;
  const tail = `[${time}, ${rateText(s.rate, unit)}]${s.status === "stopped" ? " stopped" : ""}`;
  if (s.total === undefined || s.fraction === undefined) return `${head}${s.n} ${unit} ${tail}`;
  const filled = Math.max(0, Math.min(BAR_WIDTH, Math.floor(s.fraction * BAR_WIDTH)));
  const pct = `${Math.floor(s.fraction * 100)}%`.padStart(4);
  return `${head}${pct}|${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}| ${s.n}/${s.total} ${tail}`;
}

function progressHtml(s: ProgressState, unit: string): string {
  const pct = s.fraction === undefined ? undefined : Math.max(0, Math.min(1, s.fraction)) * 100;
  const color = s.status === "stopped" ? "#d62728" : s.status === "done" ? "#2ca02c" : "#1f77b4";
  const fill =
    pct === undefined
      ? `<div style="width:100%;height:100%;background:repeating-linear-gradient(45deg,${color},${color} 6px,#9ecae1 6px,#9ecae1 12px);opacity:${s.status === "running" ? 0.7 : 1};"></div>`
      : `<div style="width:${pct.toFixed(1)}%;height:100%;background:${color};"></div>`;
  const count = s.total === undefined ? `${s.n} ${escapeHtml(unit)}` : `${pct === undefined ? "" : Math.floor(pct)}% ${s.n}/${s.total}`;
  const time = `${fmtDuration(s.elapsedSeconds)}${s.remainingSeconds !== undefined && s.status === "running" ? ` elapsed, ${fmtDuration(s.remainingSeconds)} left` : ""}`;
  return (
    `<div class="batchlab-progress" style="display:flex;align-items:center;gap:8px;font-family:monospace;font-size:12px;line-height:18px;">` +
    (s.label ? `<span>${escapeHtml(s.label)}</span>` : "") +
    `<div role="progressbar" aria-valuemin="0" aria-valuemax="100"${pct === undefined ? "" : ` aria-valuenow="${Math.floor(pct)}"`} ` +
    `style="width:240px;height:12px;background:#e5e5e5;border-radius:3px;overflow:hidden;">${fill}</div>` +
    `<span>${count} [${time}, ${escapeHtml(rateText(s.rate, unit))}]${s.status === "stopped" ? " stopped" : ""}</span>` +
    `</div>`
  );
}

/** The bundle of one update: text/html bar, text/plain line, the numbers in metadata. */
export function progressBundle(s: ProgressState, unit = "it"): Bundle {
  return makeBundle({ "text/html": progressHtml(s, unit), "text/plain": progressText(s, unit) }, { "batchlab/progress": { ...s } });
}

/** The sink used when none is given: the kernel's display, else stderr. */
export function defaultProgressSink(): ProgressSink {
  const kernel = (globalThis as Record<symbol, unknown>)[DISPLAY_SINK];
  if (typeof kernel === "function") return (bundle, o) => (kernel as ProgressSink)(bundle, o);
  const err = process.stderr;
  if (err.isTTY) {
    let width = 0;
    return (bundle) => {
      const state = bundle.metadata["batchlab/progress"] as ProgressState;
      const cols = typeof err.columns === "number" && err.columns > 10 ? err.columns - 1 : 120;
      let line = bundle.data["text/plain"];
      if (line.length > cols) line = line.slice(0, cols);
      const pad = width > line.length ? " ".repeat(width - line.length) : "";
      width = line.length;
      err.write(`\r${line}${pad}${state.status === "running" ? "" : "\n"}`);
    };
  }
  return (bundle) => {
    const state = bundle.metadata["batchlab/progress"] as ProgressState;
    if (state.status !== "running") err.write(`${bundle.data["text/plain"]}\n`);
  };
}

class Tracker {
  n = 0;
  private readonly t0 = performance.now();
  private lastEmit = -Infinity;
  private sent = false;
  readonly displayId = `batchlab-progress-${process.pid.toString(36)}-${(++barCount).toString(36)}-${Date.now().toString(36)}`;
  constructor(
    private total: number | undefined,
    private readonly label: string,
    private readonly unit: string,
    private readonly sink: ProgressSink,
    private readonly minInterval: number,
  ) {}

  state(status: ProgressState["status"]): ProgressState {
    const elapsed = (performance.now() - this.t0) / 1000;
    const rate = elapsed > 0 ? this.n / elapsed : 0;
    const total = this.total;
    return {
      n: this.n,
      total,
      fraction: total === undefined ? undefined : total === 0 ? 1 : this.n / total,
      elapsedSeconds: elapsed,
      rate,
      remainingSeconds: total !== undefined && rate > 0 ? Math.max(0, (total - this.n) / rate) : undefined,
      status,
      label: this.label,
    };
  }

  emit(status: ProgressState["status"]): void {
    const t = performance.now();
    if (status === "running" && this.sent && t - this.lastEmit < this.minInterval) return;
    // At n == total the final update follows as soon as the source says it is done.
    if (status === "running" && this.sent && this.total !== undefined && this.n >= this.total) return;
    this.lastEmit = t;
    const update = this.sent;
    this.sent = true;
    this.sink(progressBundle(this.state(status), this.unit), { displayId: this.displayId, update });
  }

  finish(completed: boolean): void {
    if (completed && (this.total === undefined || this.n > this.total)) this.total = this.n;
    this.emit(completed ? "done" : "stopped");
  }
}

function totalOf(source: unknown, given: unknown): number | undefined {
  if (given !== undefined) return v.int("progress(options).total", given, 0);
  if (typeof source === "number") return source;
  if (Array.isArray(source) || (ArrayBuffer.isView(source) && !(source instanceof DataView))) return (source as ArrayLike<unknown>).length;
  const o = source as { length?: unknown; size?: unknown };
  if (typeof o.length === "number" && Number.isInteger(o.length) && o.length >= 0) return o.length;
  if (typeof o.size === "number" && Number.isInteger(o.size) && o.size >= 0) return o.size;
  return undefined;
}

/**
 * Iterates `source` (a count n yields 0 .. n-1) and shows a progress bar that updates in
 * place, ending with a final update (100% when the loop ran to the end). Async sources give
 * an async iterator (`for await`), others a sync one.
 */
export function progress(source: number, options?: ProgressOptions): IterableIterator<number>;
export function progress<T>(source: Iterable<T>, options?: ProgressOptions): IterableIterator<T>;
export function progress<T>(source: AsyncIterable<T>, options?: ProgressOptions): AsyncIterableIterator<T>;
export function progress<T>(source: number | Iterable<T> | AsyncIterable<T>, options: ProgressOptions = {}): IterableIterator<T | number> | AsyncIterableIterator<T> {
  v.knownKeys("progress", options, ["total", "label", "sink", "minInterval", "unit"]);
  if (typeof source === "number") v.int("progress(count)", source, 0);
  else if (
    source === null ||
    typeof source !== "object" ||
    (typeof (source as Iterable<T>)[Symbol.iterator] !== "function" && typeof (source as AsyncIterable<T>)[Symbol.asyncIterator] !== "function")
  ) {
    throw new OptionError("progress(source)", source, "a count, an iterable or an async iterable (e.g. a DataLoader)");
  }
  const label = options.label === undefined ? "" : String(options.label);
  if (options.sink !== undefined && typeof options.sink !== "function") throw new OptionError("progress(options).sink", options.sink, "a function (bundle, { displayId, update }) => void");
  const minInterval = options.minInterval === undefined ? 100 : v.num("progress(options).minInterval", options.minInterval, 0);
  const unit = options.unit === undefined ? "it" : String(options.unit);
  const tracker = new Tracker(totalOf(source, options.total), label, unit, options.sink ?? defaultProgressSink(), minInterval);

  if (typeof source === "number") return countGen(source, tracker);
  if (typeof (source as Iterable<T>)[Symbol.iterator] === "function") return syncGen(source as Iterable<T>, tracker);
  return asyncGen(source as AsyncIterable<T>, tracker);
}

function* countGen(n: number, t: Tracker): IterableIterator<number> {
  let completed = false;
  t.emit("running");
  try {
    for (let i = 0; i < n; i++) {
      yield i;
      t.n++;
      t.emit("running");
    }
    completed = true;
  } finally {
    t.finish(completed);
  }
}

function* syncGen<T>(source: Iterable<T>, t: Tracker): IterableIterator<T> {
  let completed = false;
  t.emit("running");
  try {
    for (const x of source) {
      yield x;
      t.n++;
      t.emit("running");
    }
    completed = true;
  } finally {
    t.finish(completed);
  }
}

async function* asyncGen<T>(source: AsyncIterable<T>, t: Tracker): AsyncIterableIterator<T> {
  let completed = false;
  t.emit("running");
  try {
    for await (const x of source) {
      yield x;
      t.n++;
      t.emit("running");
    }
    completed = true;
  } finally {
    t.finish(completed);
  }
}
