/** The notebook view of a dataset: a MIME bundle with a text and an HTML summary. */
import type { Dataset } from "./types";

/** The key the kernel's display bridge looks for (the Jupyter.display convention). */
export const DISPLAY = Symbol.for("Jupyter.display");

const MAX_NAMES = 20;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function namesText(names: readonly string[] | undefined): string {
  if (!names) return "unknown";
  const shown = names.slice(0, MAX_NAMES).map((n, k) => `${k}: ${n}`).join(", ");
  return names.length > MAX_NAMES ? `${shown}, ... (${names.length - MAX_NAMES} more)` : shown;
}

/** A text and HTML summary of any dataset: its kind, length, shape, class names and source. */
export function describeDataset(ds: Dataset, kind: string, source?: string): { "text/plain": string; "text/html": string } {
  const shape = ds.shape ? `${ds.shape.join(" x ")} (H x W x C, uint8)` : "varies (decoded per sample)";
  const classes = ds.classNames ? `${ds.classNames.length}: ${namesText(ds.classNames)}` : "unknown";
  const rows: [string, string][] = [
    ["samples", String(ds.length)],
    ["shape", shape],
    ["classes", classes],
  ];
  if (source) rows.push(["source", source]);
  const text = [`${kind}: ${ds.length} samples`, ...rows.slice(1).map(([k, x]) => `  ${k}: ${x}`)].join("\n");
  return { "text/plain": text, "text/html": summaryTable("batchlab-dataset", kind, rows) };
}

/** A two-column HTML table (name, value) under a bold caption: the rich view of a summary. */
export function summaryTable(cssClass: string, caption: string, rows: readonly (readonly [string, string])[]): string {
  return (
    `<table class="${cssClass}"><caption style="text-align:left"><b>${escapeHtml(caption)}</b></caption>` +
    rows.map(([k, x]) => `<tr><th style="text-align:left">${escapeHtml(k)}</th><td style="text-align:left;font-family:monospace">${escapeHtml(x)}</td></tr>`).join("") +
    "</table>"
  );
}

/** Gives a plain dataset object a notebook view (non-enumerable, so spreads and JSON skip it). */
export function withDisplay<T extends Dataset>(ds: T, kind: string, source?: () => string | undefined): T {
  Object.defineProperty(ds, DISPLAY, { value: () => describeDataset(ds, kind, source?.()), enumerable: false });
  return ds;
}

/**
 * Rich views that a later stage registers for an earlier stage's objects. A batch or a sampler
 * is defined before the viz stage exists (imports point one way), so the viz stage registers
 * its showBatch/plotSampler here when it loads, and the object's `[DISPLAY]()` asks for it.
 */
export type ViewKind = "batch" | "sampler";
/** A view returns a Jupyter output `{ data, metadata? }`, or undefined to fall back to text. */
export type RichView = (value: unknown) => { data: Record<string, unknown>; metadata?: Record<string, unknown> } | undefined;
const views = new Map<ViewKind, RichView>();

export function registerView(kind: ViewKind, view: RichView): void {
  views.set(kind, view);
}

/**
 * The registered view's output for `value`, else `{ "text/plain": fallback() }`. A view that
 * throws (say, a batch of 2 channels that showBatch cannot draw) also falls back to text.
 */
export function richDisplay(kind: ViewKind, value: unknown, fallback: () => string): { data: Record<string, unknown>; metadata?: Record<string, unknown> } {
  const view = views.get(kind);
  if (view) {
    try {
      const out = view(value);
      if (out) return out;
    } catch {
      /* fall back to the text summary */
    }
  }
  return { data: { "text/plain": fallback() } };
}
