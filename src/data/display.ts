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
  const html =
    `<table class="batchlab-dataset"><caption style="text-align:left"><b>${escapeHtml(kind)}</b></caption>` +
    rows.map(([k, x]) => `<tr><th style="text-align:left">${escapeHtml(k)}</th><td style="text-align:left">${escapeHtml(x)}</td></tr>`).join("") +
    "</table>";
  return { "text/plain": text, "text/html": html };
}

/** Gives a plain dataset object a notebook view (non-enumerable, so spreads and JSON skip it). */
export function withDisplay<T extends Dataset>(ds: T, kind: string, source?: () => string | undefined): T {
  Object.defineProperty(ds, DISPLAY, { value: () => describeDataset(ds, kind, source?.()), enumerable: false });
  return ds;
}
