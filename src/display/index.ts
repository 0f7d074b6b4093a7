/**
 * The display protocol, at the bottom of the stages: every object that shows itself in a
 * notebook (data sets, samplers, loaders, batches, the viz stage's figures) uses this module.
 *
 * A view is plain data: a MIME bundle `{ data, metadata }`, which also answers
 * `[Symbol.for("Jupyter.display")]()` (Deno's convention) with its MIME map; a kernel calls that
 * method and sends the result. The method is non-enumerable, so a bundle stays plain JSON.
 *
 * A view of an earlier stage's object may be drawn by a later stage (a batch's grid is drawn by
 * viz, which the loader must not import): such a kind has a registry entry, which the later
 * stage fills once when it loads and the object's display method asks for, falling back to
 * text where no view is registered or the view cannot draw the value.
 */

/** The method a kernel calls for a value's rich representation (Deno's convention). */
export const DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/** A plotly figure as plotly.js takes it. */
export interface PlotlyFigure {
  data: PlotlyTrace[];
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** One plotly trace: `type` and whatever that trace type takes. */
export interface PlotlyTrace {
  type: string;
  [key: string]: unknown;
}

export interface MimeData {
  /** base64 PNG. */
  "image/png"?: string;
  "application/vnd.plotly.v1+json"?: PlotlyFigure;
  "text/html"?: string;
  "text/plain": string;
}

export interface MimeMetadata {
  "image/png"?: { width: number; height: number };
  [mime: string]: unknown;
}

export interface Bundle {
  data: MimeData;
  metadata: MimeMetadata;
  [DISPLAY](): MimeData;
}

/** Wraps a MIME map and its metadata into a displayable bundle. */
export function makeBundle(data: MimeData, metadata: MimeMetadata = {}): Bundle {
  const bundle = { data, metadata } as Bundle;
  Object.defineProperty(bundle, DISPLAY, {
    value: function (this: Bundle): MimeData {
      return this.data;
    },
    enumerable: false,
    writable: true,
    configurable: true,
  });
  return bundle;
}

/** True for a value shaped like a view's bundle (`data` with at least `text/plain`). */
export function isBundle(v: unknown): v is Bundle {
  if (v === null || typeof v !== "object") return false;
  const d = (v as { data?: unknown }).data;
  return d !== null && typeof d === "object" && typeof (d as MimeData)["text/plain"] === "string";
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&#39;"));
}

/** A two-column HTML table (name, value) under a bold caption: the rich view of a summary. */
export function summaryTable(cssClass: string, caption: string, rows: readonly (readonly [string, string])[]): string {
  return (
    `<table class="${escapeHtml(cssClass)}"><caption style="text-align:left"><b>${escapeHtml(caption)}</b></caption>` +
    rows.map(([k, x]) => `<tr><th style="text-align:left">${escapeHtml(k)}</th><td style="text-align:left;font-family:monospace">${escapeHtml(x)}</td></tr>`).join("") +
    "</table>"
  );
}

/** A summary as a bundle: its text, and the same rows as an HTML table. */
export function summaryBundle(cssClass: string, caption: string, text: string, rows: readonly (readonly [string, string])[]): Bundle {
  return makeBundle({ "text/plain": text, "text/html": summaryTable(cssClass, caption, rows) });
}

// ------------------------------------------------------------------------------------ views

/**
 * The kinds of objects whose view a later stage draws, and the stage that registers it. (Data
 * sets, samplers and loaders draw their own summary tables with summaryBundle.)
 */
export type ViewKind = "batch"; // viz: a loader's batch as its showBatch grid

/** A view draws one value as a bundle, or returns undefined to leave it to the fallback. */
export type View = (value: unknown) => Bundle | undefined;

const views = new Map<ViewKind, View>();

/** Registers the view of `kind` (a later registration of the same kind replaces it). */
export function registerView(kind: ViewKind, view: View): void {
  views.set(kind, view);
}

/**
 * The bundle of `value` as a `kind`: the registered view's, else `{ "text/plain": fallback() }`.
 * A view that throws (say, a batch of 2 channels that showBatch cannot draw) also falls back.
 */
export function viewOf(kind: ViewKind, value: unknown, fallback: () => string): Bundle {
  const view = views.get(kind);
  if (view) {
    try {
      const out = view(value);
      if (out) return out;
    } catch {
      /* fall back to the text summary */
    }
  }
  return makeBundle({ "text/plain": fallback() });
}
