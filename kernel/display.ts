/**
 * The display bridge: turns values and MIME bundles into the `data`/`metadata` pair of a
 * display_data / execute_result message. The HTML of plotly figures comes from the library's viz
 * module (loaded at run time from the package); each figure's HTML loads plotly.js for itself.
 * The contract for library views is written out in kernel/README.md.
 */
import { inspect } from "node:util";
import { PACKAGE_NAME, packageRoot } from "./resolve";

/** A MIME type -> payload map, e.g. `{ "image/png": bytes, "text/plain": "..." }`. */
export type MimeBundle = Record<string, unknown>;

/** What Jupyter messages carry: the payloads (JSON-ready) and per-MIME metadata. */
export interface DisplayPayload {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

export interface DisplayOptions {
  /** Give the output an id so that later updates can replace it in place. */
  displayId?: string;
  /** Replace the output(s) that carry `displayId` (update_display_data) instead of adding one. */
  update?: boolean;
  /** Per-MIME metadata merged over the bundle's own, e.g. `{ "image/png": { width: 280 } }`. */
  metadata?: Record<string, unknown>;
}

/** Deno's convention: an object whose method under this symbol returns a MIME bundle renders richly. */
export const JUPYTER_DISPLAY = Symbol.for("Jupyter.display");
/** The kernel installs its display function on globalThis under this symbol (for library code). */
export const DISPLAY_SINK = Symbol.for("batchlab.display");

export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

const MIME_KEY = /^[a-z0-9][\w.+-]*\/[\w.+-]+$/i;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** True for a plain object whose keys are all MIME types (at least one). */
export function isMimeBundle(v: unknown): v is MimeBundle {
  if (!isPlainObject(v)) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => MIME_KEY.test(k));
}

/** True for `{ data: MimeBundle, metadata? }` (the shape of a Jupyter output). */
export function isDisplayPayloadLike(v: unknown): v is { data: MimeBundle; metadata?: Record<string, unknown> } {
  if (!isPlainObject(v) || !isMimeBundle(v.data)) return false;
  if (v.metadata !== undefined && !isPlainObject(v.metadata)) return false;
  return Object.keys(v).every((k) => k === "data" || k === "metadata");
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as { then?: unknown }).then === "function";
}

/** A value's own rich representation, if it declares one (sync or async). */
export function richRepresentation(value: unknown): unknown | PromiseLike<unknown> | undefined {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return undefined;
  const method = (value as Record<symbol, unknown>)[JUPYTER_DISPLAY];
  if (typeof method !== "function") return undefined;
  return (method as () => unknown).call(value);
}

/** text/plain for an arbitrary value, as Node's REPL would print it. */
export function plainText(value: unknown): string {
  return inspect(value, { depth: 3, colors: false, maxArrayLength: 50, maxStringLength: 10_000, breakLength: 100 });
}

const BINARY_MIME = /^(image\/(?!svg\+xml)|application\/pdf$|application\/octet-stream$|audio\/|video\/)/i;
const JSON_MIME = /(^application\/json$|\+json$)/i;

function toBase64(v: unknown, mime: string): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString("base64");
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  throw new TypeError(`display: ${mime} must be a Uint8Array, ArrayBuffer or base64 string, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

function normalizePayloadValue(mime: string, v: unknown): unknown {
  if (BINARY_MIME.test(mime)) return toBase64(v, mime);
  if (JSON_MIME.test(mime)) {
    if (typeof v === "string") {
      try {
        return JSON.parse(v);
      } catch {
        throw new TypeError(`display: ${mime} was given a string that is not JSON`);
      }
    }
    return JSON.parse(JSON.stringify(v ?? null));
  }
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.join("");
  if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8");
  return String(v);
}

function summary(data: Record<string, unknown>): string {
  const fig = data[PLOTLY_MIME] as { data?: unknown[]; layout?: { title?: unknown } } | undefined;
  if (fig) {
    const n = Array.isArray(fig.data) ? fig.data.length : 0;
    const t = fig.layout?.title;
    const title = typeof t === "string" ? t : isPlainObject(t) && typeof t.text === "string" ? t.text : "";
    return `<Plotly figure${title ? ` "${title}"` : ""}: ${n} trace${n === 1 ? "" : "s"}>`;
  }
  return `<${Object.keys(data).join(", ")}>`;
}

/**
 * Turn a bundle-like value into a payload ready to send: binary data base64-encoded, JSON types
 * as objects, text/plain always present, and text/html built for plotly figures that lack it.
 */
export function normalizeBundle(bundle: MimeBundle, metadata: Record<string, unknown> = {}): DisplayPayload {
  const data: Record<string, unknown> = {};
  for (const [mime, v] of Object.entries(bundle)) {
    if (v === undefined) continue;
    data[mime] = normalizePayloadValue(mime, v);
  }
  if (data[PLOTLY_MIME] !== undefined && data["text/html"] === undefined) {
    const html = plotlyFigureHtml(data[PLOTLY_MIME] as PlotlyFigure);
    if (html !== null) data["text/html"] = html;
  }
  if (typeof data["text/plain"] !== "string") data["text/plain"] = summary(data);
  const md: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) if (v !== undefined) md[k] = v;
  return { data, metadata: JSON.parse(JSON.stringify(md)) };
}

/**
 * The payload for a value: its own representation (Symbol.for("Jupyter.display")), a
 * `{ data, metadata }` pair, a MIME bundle, or (if `fallback`) its inspected text.
 * Returns null when there is nothing to show.
 */
export function payloadFor(value: unknown, fallback: boolean): DisplayPayload | null | PromiseLike<DisplayPayload | null> {
  const rich = richRepresentation(value);
  if (rich !== undefined) {
    if (isThenable(rich)) return Promise.resolve(rich).then((r) => payloadForRich(r, value));
    return payloadForRich(rich, value);
  }
  if (isDisplayPayloadLike(value)) return normalizeBundle(value.data, value.metadata);
  if (isMimeBundle(value)) return normalizeBundle(value);
  if (!fallback || value === undefined) return null;
  return { data: { "text/plain": plainText(value) }, metadata: {} };
}

function payloadForRich(rich: unknown, owner: unknown): DisplayPayload | null {
  if (rich === null || rich === undefined) return null;
  if (isDisplayPayloadLike(rich)) return normalizeBundle(rich.data, rich.metadata);
  if (isMimeBundle(rich)) {
    // A `{ data, metadata }` object whose method returns just the MIME map (batchlab's views)
    // keeps its metadata, e.g. an image's display width and height.
    const md = (owner as { metadata?: unknown }).metadata;
    return normalizeBundle(rich, isPlainObject(md) ? md : {});
  }
  throw new TypeError(
    `${describe(owner)}[Symbol.for("Jupyter.display")]() returned ${describe(rich)}; expected a MIME bundle such as { "text/html": "..." }`,
  );
}

// ---------------------------------------------------------------------------------------------
// plotly: the HTML is the library's (viz.figureHtml)

export interface PlotlyFigure {
  data?: unknown[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
  frames?: unknown[];
}

/** What the display bridge uses of the package's viz module. */
interface LibraryViz {
  figureHtml(fig: { data: unknown[]; layout: Record<string, unknown>; config?: Record<string, unknown>; frames?: unknown[] }): string;
}

let libraryViz: { viz: LibraryViz | null; problem: string } | undefined;

/**
 * The package's viz module, loaded (once) through its public entry point, as the prelude loads
 * it; `viz` is null, and `problem` says why, when the library cannot be loaded.
 */
export function vizLibrary(): { viz: LibraryViz | null; problem: string } {
  if (!libraryViz) {
    try {
      const viz = (require(packageRoot()) as { viz?: LibraryViz }).viz;
      libraryViz = viz && typeof viz.figureHtml === "function" ? { viz, problem: "" } : { viz: null, problem: `the ${PACKAGE_NAME} package has no viz.figureHtml` };
    } catch (e) {
      libraryViz = { viz: null, problem: `the ${PACKAGE_NAME} package could not be loaded: ${(e as Error).message.split("\n")[0]}` };
    }
  }
  return libraryViz;
}

/** The text/html the kernel gives a plotly figure that came without one (null without the library). */
export function plotlyFigureHtml(fig: PlotlyFigure): string | null {
  const { viz } = vizLibrary();
  if (!viz) return null;
  return viz.figureHtml({ data: fig.data ?? [], layout: fig.layout ?? {}, config: fig.config, frames: fig.frames });
}
