/**
 * A static rendering of a plotly figure as SVG, drawn in TypeScript from the same figure data:
 * what a figure shows where scripts cannot run (an untrusted notebook, a static viewer). It
 * covers what batchlab's views use: vertical and horizontal bars (grouped, overlaid, with
 * `base`), scatter lines and markers, heatmaps (as a small embedded PNG), linear, log and
 * category axes, axis domains (subplots), paper annotations, the title and a legend. It is a
 * preview, not plotly: no hover, no zoom, approximate ticks.
 */
import { escapeHtml, type PlotlyFigure, type PlotlyTrace } from "../display/index";
import { encodePng } from "./png";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const FONT = `font-family="Helvetica, Arial, sans-serif"`;

type Num = number | null;

interface Axis {
  id: string; // "x", "x2", "y", ...
  spec: Record<string, unknown>;
  kind: "linear" | "log" | "category";
  categories: string[];
  lo: number;
  hi: number;
  reversed: boolean;
  /** Pixel span [start, end] (start at left/bottom). */
  p0: number;
  p1: number;
}

function obj(x: unknown): Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
}

function arr(x: unknown): unknown[] {
  if (Array.isArray(x)) return x;
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>);
  return [];
}

function titleText(t: unknown): string {
  if (typeof t === "string") return t;
  const s = obj(t).text;
  return typeof s === "string" ? s : "";
}

/** Plain text of plotly's small HTML subset (<b>, <br>, <i>): bold flag and lines. */
function richText(s: string): { lines: string[]; bold: boolean } {
  const bold = /<b>/i.test(s);
  const lines = s
    .split(/<br\s*\/?>/i)
    .map((l) => l.replace(/<[^>]*>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"));
  return { lines, bold };
}

const r1 = (x: number): string => (Math.round(x * 10) / 10).toString();

function text(x: number, y: number, s: string, o: { size?: number; anchor?: "start" | "middle" | "end"; bold?: boolean; rotate?: boolean; color?: string } = {}): string {
  const size = o.size ?? 12;
  const attrs = [`x="${r1(x)}"`, `y="${r1(y)}"`, `font-size="${size}"`];
  if (o.anchor && o.anchor !== "start") attrs.push(`text-anchor="${o.anchor}"`);
  if (o.bold) attrs.push(`font-weight="bold"`);
  if (o.color) attrs.push(`fill="${o.color}"`);
  if (o.rotate) attrs.push(`transform="rotate(-90 ${r1(x)} ${r1(y)})"`);
  return `<text ${attrs.join(" ")}>${escapeHtml(s)}</text>`;
}

/** About five round tick values covering [lo, hi]. */
function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6 || (a > 0 && a < 1e-3)) return v.toExponential(1).replace("e+", "e");
  if (a >= 1e4) return `${Math.round(v / 100) / 10}k`;
  return String(Math.round(v * 1000) / 1000);
}

function colorOf(t: PlotlyTrace, i: number): string {
  const m = obj(t.marker).color;
  if (typeof m === "string") return m;
  const l = obj(t.line).color;
  if (typeof l === "string") return l;
  return PALETTE[i % PALETTE.length]!;
}

function hexRgb(c: string): [number, number, number] {
  const m = /^#([0-9a-f]{6})$/i.exec(c);
  if (!m) return [128, 128, 128];
  const n = parseInt(m[1]!, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** A heatmap's z as a tiny PNG (one pixel per cell), coloured by its two-stop (or more) scale. */
function heatmapPng(z: Num[][], scale: unknown): string {
  const rows = z.length;
  const cols = Math.max(1, ...z.map((r) => r.length));
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of z) for (const v of row) if (typeof v === "number" && Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  if (!Number.isFinite(lo)) (lo = 0), (hi = 1);
  const stops = (Array.isArray(scale) ? scale : [])
    .map((s) => (Array.isArray(s) && typeof s[0] === "number" && typeof s[1] === "string" ? ([s[0], hexRgb(s[1])] as const) : null))
    .filter((s): s is readonly [number, [number, number, number]] => s !== null);
  const cs = stops.length >= 2 ? stops : ([[0, [247, 251, 255]], [1, [8, 48, 107]]] as const);
  const px = new Uint8Array(rows * cols * 3).fill(255);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = z[r]?.[c];
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      const f = hi > lo ? (v - lo) / (hi - lo) : 0;
      let k = 0;
      while (k < cs.length - 2 && f > cs[k + 1]![0]) k++;
      const [f0, c0] = cs[k]!;
      const [f1, c1] = cs[k + 1]!;
      const u = f1 > f0 ? Math.min(1, Math.max(0, (f - f0) / (f1 - f0))) : 0;
      // plotly draws row 0 at the bottom of the y axis: the PNG's first row is the top
      const o = ((rows - 1 - r) * cols + c) * 3;
      for (let ch = 0; ch < 3; ch++) px[o + ch] = Math.round(c0[ch]! + (c1[ch]! - c0[ch]!) * u);
    }
  }
  return encodePng(px, cols, rows, 3).toString("base64");
}

function axisKey(id: string): string {
  return id.startsWith("x") ? `xaxis${id.slice(1)}` : `yaxis${id.slice(1)}`;
}

/** The SVG markup of a figure, `width` px wide and the layout's height (default 450) tall. */
export function figureSvg(fig: PlotlyFigure, width = 800): string {
  const layout = obj(fig.layout);
  const height = typeof layout.height === "number" ? layout.height : 450;
  const margin = { l: 70, r: 30, t: 60, b: 50, ...(obj(layout.margin) as Record<string, number>) };
  const plotL = margin.l;
  const plotR = width - margin.r;
  const plotT = margin.t;
  const plotB = height - margin.b;
  const traces = (fig.data ?? []).filter((t) => t && typeof t === "object") as PlotlyTrace[];
  const axes = new Map<string, Axis>();
  const axisOf = (id: string): Axis => {
    let a = axes.get(id);
    if (!a) {
      const spec = obj(layout[axisKey(id)]);
      const dom = Array.isArray(spec.domain) ? (spec.domain as number[]) : [0, 1];
      const horizontal = id.startsWith("x");
      const p0 = horizontal ? plotL + dom[0]! * (plotR - plotL) : plotB - dom[0]! * (plotB - plotT);
      const p1 = horizontal ? plotL + dom[1]! * (plotR - plotL) : plotB - dom[1]! * (plotB - plotT);
      a = { id, spec, kind: spec.type === "log" ? "log" : spec.type === "category" ? "category" : "linear", categories: [], lo: Infinity, hi: -Infinity, reversed: spec.autorange === "reversed", p0, p1 };
      axes.set(id, a);
    }
    return a;
  };
  const xid = (t: PlotlyTrace): string => (typeof t.xaxis === "string" ? t.xaxis : "x");
  const yid = (t: PlotlyTrace): string => (typeof t.yaxis === "string" ? t.yaxis : "y");
  const include = (a: Axis, v: unknown): void => {
    if (typeof v === "string") {
      a.kind = "category";
      if (!a.categories.includes(v)) a.categories.push(v);
      return;
    }
    if (typeof v !== "number" || !Number.isFinite(v)) return;
    if (a.kind === "log" && v <= 0) return;
    const x = a.kind === "log" ? Math.log10(v) : v;
    a.lo = Math.min(a.lo, x);
    a.hi = Math.max(a.hi, x);
  };

  // Extents.
  for (const t of traces) {
    const ax = axisOf(xid(t));
    const ay = axisOf(yid(t));
    const xs = arr(t.x);
    const ys = arr(t.y);
    if (t.type === "heatmap") {
      const z = arr(t.z);
      const cols = Math.max(0, ...z.map((r) => arr(r).length));
      (xs.length ? xs : Array.from({ length: cols }, (_, i) => i)).forEach((v) => include(ax, v));
      (ys.length ? ys : z.map((_, i) => i)).forEach((v) => include(ay, v));
      continue;
    }
    if (t.type === "bar") {
      const horizontal = t.orientation === "h";
      const [vals, cats, va] = horizontal ? [xs, ys, ax] : [ys, xs, ay];
      const base = arr(t.base);
      cats.forEach((v) => include(horizontal ? ay : ax, v));
      vals.forEach((v, i) => {
        const b = typeof base[i] === "number" ? (base[i] as number) : 0;
        include(va, b);
        if (typeof v === "number") include(va, b + v);
      });
      if (!base.length) include(va, 0);
      continue;
    }
    xs.forEach((v) => include(ax, v));
    ys.forEach((v) => include(ay, v));
  }
  for (const a of axes.values()) {
    const tv = arr(a.spec.tickvals);
    if (a.kind !== "category" && tv.length) tv.forEach((v) => include(a, v));
    if (a.kind === "category") {
      a.lo = -0.5;
      a.hi = Math.max(0.5, a.categories.length - 0.5);
    } else {
      if (!Number.isFinite(a.lo)) (a.lo = 0), (a.hi = 1);
      if (a.spec.rangemode === "tozero" && a.kind === "linear") (a.lo = Math.min(0, a.lo)), (a.hi = Math.max(0, a.hi));
      const pad = a.hi > a.lo ? (a.hi - a.lo) * 0.05 : 0.5;
      a.hi += pad;
      if (!(a.lo === 0 && a.kind === "linear")) a.lo -= pad;
    }
  }
  const pos = (a: Axis, v: unknown): number | null => {
    let x: number;
    if (a.kind === "category") {
      const k = typeof v === "string" ? a.categories.indexOf(v) : typeof v === "number" ? v : -1;
      if (k < 0) return null;
      x = k;
    } else if (typeof v !== "number" || !Number.isFinite(v)) return null;
    else if (a.kind === "log") {
      if (v <= 0) return null;
      x = Math.log10(v);
    } else x = v;
    let f = (x - a.lo) / (a.hi - a.lo);
    if (a.reversed) f = 1 - f;
    return a.p0 + f * (a.p1 - a.p0);
  };
  const unit = (a: Axis): number => Math.abs(a.p1 - a.p0) / (a.hi - a.lo);

  const out: string[] = [];
  // Axes: frame lines, ticks, grid, titles.
  for (const a of axes.values()) {
    const horizontal = a.id.startsWith("x");
    const other = axes.get(String(a.spec.anchor ?? (horizontal ? "y" : "x")));
    const at = other ? (horizontal ? Math.max(other.p0, other.p1) : Math.min(other.p0, other.p1)) : horizontal ? plotB : plotL;
    const span = other ? [Math.min(other.p0, other.p1), Math.max(other.p0, other.p1)] : horizontal ? [plotT, plotB] : [plotL, plotR];
    let ticks: { v: unknown; label: string }[];
    const tv = arr(a.spec.tickvals);
    const tt = arr(a.spec.ticktext);
    if (tv.length) ticks = tv.map((v, i) => ({ v, label: String(tt[i] ?? v) }));
    else if (a.kind === "category") {
      const every = Math.max(1, Math.ceil((a.categories.length * (horizontal ? 40 : 14)) / Math.abs(a.p1 - a.p0)));
      ticks = a.categories.filter((_, i) => i % every === 0).map((c) => ({ v: c, label: c }));
    } else if (a.kind === "log") {
      ticks = niceTicks(Math.ceil(a.lo), Math.floor(a.hi), 5)
        .filter((e) => Number.isInteger(e))
        .map((e) => ({ v: 10 ** e, label: tickLabel(10 ** e) }));
    } else ticks = niceTicks(a.lo, a.hi, horizontal ? 6 : 5).map((v) => ({ v, label: tickLabel(v) }));
    let longest = 0;
    for (const t of ticks) {
      const p = pos(a, t.v);
      longest = Math.max(longest, Math.min(t.label.length, 12));
      if (p === null) continue;
      if (horizontal) {
        out.push(`<line x1="${r1(p)}" x2="${r1(p)}" y1="${r1(span[0]!)}" y2="${r1(span[1]!)}" stroke="#eee"/>`);
        out.push(text(p, at + 14, t.label.length > 14 ? t.label.slice(0, 13) + "…" : t.label, { size: 10, anchor: "middle" }));
      } else {
        out.push(`<line x1="${r1(span[0]!)}" x2="${r1(span[1]!)}" y1="${r1(p)}" y2="${r1(p)}" stroke="#eee"/>`);
        out.push(text(at - 4, p + 3, t.label.length > 12 ? t.label.slice(0, 11) + "…" : t.label, { size: 10, anchor: "end" }));
      }
    }
    out.push(horizontal ? `<line x1="${r1(a.p0)}" x2="${r1(a.p1)}" y1="${r1(at)}" y2="${r1(at)}" stroke="#444"/>` : `<line x1="${r1(at)}" x2="${r1(at)}" y1="${r1(a.p0)}" y2="${r1(a.p1)}" stroke="#444"/>`);
    const title = titleText(a.spec.title);
    if (title) out.push(horizontal ? text((a.p0 + a.p1) / 2, at + 32, title, { anchor: "middle" }) : text(at - Math.max(30, longest * 5.6 + 16), (a.p0 + a.p1) / 2, title, { anchor: "middle", rotate: true }));
  }

  // Traces.
  const legend: { name: string; color: string }[] = [];
  const groups = new Map<string, PlotlyTrace[]>();
  if (layout.barmode === "group") {
    for (const t of traces) if (t.type === "bar") groups.set(`${xid(t)}/${yid(t)}`, [...(groups.get(`${xid(t)}/${yid(t)}`) ?? []), t]);
  }
  traces.forEach((t, i) => {
    const ax = axisOf(xid(t));
    const ay = axisOf(yid(t));
    const color = colorOf(t, i);
    const xs = arr(t.x);
    const ys = arr(t.y);
    if (t.showlegend !== false && typeof t.name === "string" && t.type !== "heatmap") legend.push({ name: t.name, color });
    if (t.type === "heatmap") {
      const z = arr(t.z).map((r) => arr(r) as Num[]);
      if (!z.length) return;
      const cols = Math.max(1, ...z.map((r) => r.length));
      const x0 = pos(ax, xs.length ? xs[0] : 0)! - unit(ax) / 2;
      const x1 = pos(ax, xs.length ? xs[cols - 1] : cols - 1)! + unit(ax) / 2;
      const ya = pos(ay, ys.length ? ys[0] : 0)!;
      const yb = pos(ay, ys.length ? ys[z.length - 1] : z.length - 1)!;
      const top = Math.min(ya, yb) - unit(ay) / 2;
      const bottom = Math.max(ya, yb) + unit(ay) / 2;
      out.push(
        `<image x="${r1(Math.min(x0, x1))}" y="${r1(top)}" width="${r1(Math.abs(x1 - x0))}" height="${r1(bottom - top)}" preserveAspectRatio="none" style="image-rendering:pixelated" href="data:image/png;base64,${heatmapPng(z, t.colorscale)}"/>`,
      );
      return;
    }
    if (t.type === "bar") {
      const horizontal = t.orientation === "h";
      const base = arr(t.base);
      const group = groups.get(`${xid(t)}/${yid(t)}`) ?? [t];
      const k = Math.max(0, group.indexOf(t));
      const slot = 1 - (typeof layout.bargap === "number" ? layout.bargap : 0.2);
      const cat = horizontal ? ay : ax;
      const val = horizontal ? ax : ay;
      const bw = (unit(cat) * slot) / group.length;
      const cats = horizontal ? ys : xs;
      const vals = horizontal ? xs : ys;
      const rects: string[] = [];
      cats.forEach((c, j) => {
        const v = vals[j];
        if (typeof v !== "number" || !Number.isFinite(v)) return;
        const b = typeof base[j] === "number" ? (base[j] as number) : 0;
        const pc = pos(cat, cat.kind === "category" || typeof c !== "string" ? c : c);
        const p0 = pos(val, b);
        const p1 = pos(val, b + v);
        if (pc === null || p0 === null || p1 === null) return;
        const c0 = pc - (unit(cat) * slot) / 2 + k * bw;
        rects.push(
          horizontal
            ? `<rect x="${r1(Math.min(p0, p1))}" y="${r1(c0)}" width="${r1(Math.max(0.5, Math.abs(p1 - p0)))}" height="${r1(bw)}"/>`
            : `<rect x="${r1(c0)}" y="${r1(Math.min(p0, p1))}" width="${r1(bw)}" height="${r1(Math.max(0.5, Math.abs(p1 - p0)))}"/>`,
        );
      });
      out.push(`<g fill="${color}">${rects.join("")}</g>`);
      return;
    }
    // scatter
    const mode = typeof t.mode === "string" ? t.mode : "lines+markers";
    const pts = xs.map((x, j) => {
      const px = pos(ax, x);
      const py = pos(ay, ys[j]);
      return px === null || py === null ? null : ([px, py] as const);
    });
    if (mode.includes("lines")) {
      const dash = obj(t.line).dash === "dash" ? ` stroke-dasharray="6 4"` : "";
      const w = typeof obj(t.line).width === "number" ? obj(t.line).width : 2;
      let run: string[] = [];
      const flush = (): void => {
        if (run.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="${w}"${dash} points="${run.join(" ")}"/>`);
        run = [];
      };
      for (const p of pts) {
        if (p) run.push(`${r1(p[0])},${r1(p[1])}`);
        else flush();
      }
      flush();
    }
    if (mode.includes("markers")) {
      const size = typeof obj(t.marker).size === "number" ? (obj(t.marker).size as number) : 6;
      const tick = String(obj(t.marker).symbol ?? "").startsWith("line-ns");
      const marks = pts
        .filter((p): p is readonly [number, number] => p !== null)
        .map((p) => (tick ? `M${r1(p[0])} ${r1(p[1] - size / 2)}v${size}` : `M${r1(p[0] - size / 4)} ${r1(p[1])}a${size / 4} ${size / 4} 0 1 0 ${size / 2} 0a${size / 4} ${size / 4} 0 1 0 ${-size / 2} 0`));
      out.push(tick ? `<path fill="none" stroke="${color}" d="${marks.join("")}"/>` : `<path fill="${color}" d="${marks.join("")}"/>`);
    }
  });

  // Annotations (panel titles), the figure title, the legend.
  for (const an of arr(layout.annotations).map(obj)) {
    if (typeof an.text !== "string" || an.xref !== "paper" || an.yref !== "paper") continue;
    const { lines, bold } = richText(an.text);
    const x = plotL + (an.x as number) * (plotR - plotL);
    const y = plotB - (an.y as number) * (plotB - plotT);
    const size = typeof obj(an.font).size === "number" ? (obj(an.font).size as number) : 12;
    const anchor = an.xanchor === "left" ? "start" : an.xanchor === "right" ? "end" : "middle";
    const lh = size * 1.25;
    const y0 = an.yanchor === "bottom" ? y - 4 - lh * (lines.length - 1) : y + size;
    lines.forEach((l, i) => out.push(text(x, y0 + i * lh, l, { size, anchor, bold })));
  }
  const title = titleText(layout.title);
  if (title) {
    const left = obj(layout.title).xanchor === "left";
    out.push(text(left ? plotL : width / 2, 24, richText(title).lines.join(" "), { size: 16, anchor: left ? "start" : "middle" }));
  }
  if (legend.length && layout.showlegend !== false) {
    let lx = plotL;
    let ly = height - 12;
    const rows: string[] = [];
    for (const e of legend) {
      const w = 24 + e.name.length * 6.5;
      if (lx + w > width - 10 && lx > plotL) {
        lx = plotL;
        rows.push("");
      }
      rows.push(`<rect x="${r1(lx)}" y="{Y}" width="14" height="10" fill="${e.color}"/>` + text(lx + 18, 0, e.name, { size: 11 }).replace(/y="0"/, `y="{T}"`));
      lx += w;
    }
    const lineCount = rows.filter((r) => r === "").length + 1;
    ly -= (lineCount - 1) * 16;
    for (const r of rows) {
      if (r === "") {
        ly += 16;
        continue;
      }
      out.push(r.replace("{Y}", r1(ly - 9)).replace("{T}", r1(ly)));
    }
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>` +
    `<rect width="${width}" height="${height}" fill="white"/>` +
    out.join("") +
    `</svg>`
  );
}

/** The static preview as an <img> (an SVG data URI): sanitizers keep it, static viewers show it. */
export function figureImg(fig: PlotlyFigure, width = 800): string {
  const svg = figureSvg(fig, width);
  const layout = obj(fig.layout);
  const height = typeof layout.height === "number" ? layout.height : 450;
  const alt = titleText(layout.title).replace(/<[^>]*>/g, "") || "plotly figure";
  return `<img class="batchlab-plot-img" alt="${escapeHtml(alt)} (static preview)" width="${width}" height="${height}" style="max-width:100%; height:auto;" src="data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}">`;
}
