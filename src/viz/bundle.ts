/**
 * MIME bundles: what every view returns. Plain data (`data` + `metadata`), plus a
 * `[Symbol.for("Jupyter.display")]()` method (Deno's convention) that a kernel calls to get
 * the MIME map. The method is non-enumerable, so the bundle stays a plain JSON-able object.
 */

/** Deno's rich-display convention: an object with this method renders as the MIME map it returns. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

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

export interface VizBundle {
  data: MimeData;
  metadata: MimeMetadata;
  [JUPYTER_DISPLAY](): MimeData;
}

/** Wraps a MIME map and its metadata into a displayable bundle. */
export function makeBundle(data: MimeData, metadata: MimeMetadata = {}): VizBundle {
  const bundle = { data, metadata } as VizBundle;
  Object.defineProperty(bundle, JUPYTER_DISPLAY, {
    value: function (this: VizBundle): MimeData {
      return this.data;
    },
    enumerable: false,
    writable: true,
    configurable: true,
  });
  return bundle;
}

/** True for a value shaped like a view's bundle (`data` with at least `text/plain`). */
export function isBundle(v: unknown): v is VizBundle {
  if (v === null || typeof v !== "object") return false;
  const d = (v as { data?: unknown }).data;
  return d !== null && typeof d === "object" && typeof (d as MimeData)["text/plain"] === "string";
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&#39;"));
}
