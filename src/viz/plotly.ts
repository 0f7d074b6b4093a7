/**
 * Plotly figures as MIME bundles, and the offline embed of plotly.js (no CDN: the source of
 * plotly.js-dist-min is inlined). A figure's text/html is a div plus a script that draws with
 * `window.Plotly`, or the RequireJS module "plotly", or waits briefly for either to appear.
 */
import * as fs from "node:fs";
import { escapeHtml, isBundle, makeBundle, PLOTLY_MIME, type MimeData, type PlotlyFigure, type Bundle } from "../display/index";

let plotlySource: { version: string; js: string } | undefined;

function plotly(): { version: string; js: string } {
  if (!plotlySource) {
    const file = require.resolve("plotly.js-dist-min");
    let version = "unknown";
    try {
      version = (JSON.parse(fs.readFileSync(require.resolve("plotly.js-dist-min/package.json"), "utf8")) as { version: string }).version;
    } catch {
      // the version is only informative
    }
    // Inside a <script> element, "</script" would end it.
    const js = fs.readFileSync(file, "utf8").replace(/<\/script/gi, "<\\/script");
    plotlySource = { version, js };
  }
  return plotlySource;
}

/** The plotly.js version that plotlyScriptHtml() inlines. */
export function plotlyVersion(): string {
  return plotly().version;
}

/**
 * A `<script>` tag with the whole plotly.js source inline (several MB; send it once per page or
 * kernel session). It sets `window.Plotly` even under RequireJS (the classic Notebook): the
 * source runs with `define`, `module` and `exports` hidden, and afterwards "plotly" is
 * registered as an AMD module when RequireJS is on the page. Running it twice is harmless.
 */
export function plotlyScriptHtml(): string {
  const { version, js } = plotly();
  return (
    `<script type="text/javascript" data-batchlab-plotly="${escapeHtml(version)}">\n` +
    `if (!window.Plotly) {\n` +
    `(function (define, module, exports, require) {\n${js}\n}).call(window);\n` +
    `}\n` +
    `(function (rq) {\n` +
    `  if (typeof window.define !== "function" || !window.define.amd || typeof rq !== "function") return;\n` +
    `  if ((rq.defined && rq.defined("plotly")) || (rq.specified && rq.specified("plotly"))) return;\n` +
    `  var P = window.Plotly;\n` +
    `  window.define("plotly", [], function () { return P; });\n` +
    `  rq(["plotly"], function () {});\n` +
    `})(window.requirejs);\n` +
    `</script>`
  );
}

/** JSON that is safe inside a <script> element. */
function scriptJson(x: unknown): string {
  return JSON.stringify(x).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

let figureCount = 0;

/**
 * The text/html of a figure: a div and a script that draws it (and adds the figure's animation
 * `frames`, if it has any). It uses `window.Plotly` when present, else the RequireJS module
 * "plotly" when one is defined or requested, and otherwise checks again every 50 ms for 10 s
 * (e.g. while the embed is still arriving) before writing a short notice into the div.
 */
export function figureHtml(fig: PlotlyFigure & { frames?: unknown[] }, id?: string): string {
  const divId = id ?? `batchlab-fig-${Date.now().toString(36)}-${(++figureCount).toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  const layout = fig.layout ?? {};
  const height = typeof layout.height === "number" ? `${layout.height}px` : "450px";
  const width = typeof layout.width === "number" ? `${layout.width}px` : "100%";
  const payload = {
    data: fig.data ?? [],
    layout,
    config: { responsive: true, displaylogo: false, ...(fig.config ?? {}) },
    ...(Array.isArray(fig.frames) ? { frames: fig.frames } : {}),
  };
  return (
    `<div id="${escapeHtml(divId)}" class="batchlab-plot" style="height:${height}; width:${width};"></div>\n` +
    `<script type="text/javascript">\n` +
    `(function () {\n` +
    `  var id = ${scriptJson(divId)};\n` +
    `  var fig = ${scriptJson(payload)};\n` +
    `  function draw(Plotly) {\n` +
    `    var el = document.getElementById(id);\n` +
    `    if (el) Plotly.newPlot(el, fig.data, fig.layout, fig.config).then(function () { if (fig.frames) return Plotly.addFrames(el, fig.frames); });\n` +
    `  }\n` +
    `  var tries = 0, asked = false;\n` +
    `  (function wait() {\n` +
    `    if (window.Plotly) return draw(window.Plotly);\n` +
    `    var rq = window.requirejs;\n` +
    `    if (!asked && typeof rq === "function" && ((rq.defined && rq.defined("plotly")) || (rq.specified && rq.specified("plotly")))) {\n` +
    `      asked = true;\n` +
    `      return rq(["plotly"], function (P) { if (P) draw(P); else setTimeout(wait, 50); }, function () { setTimeout(wait, 50); });\n` +
    `    }\n` +
    `    if (++tries < 200) return setTimeout(wait, 50);\n` +
    `    var el = document.getElementById(id);\n` +
    `    if (el) el.textContent = "plotly.js is not loaded on this page (the batchlab kernel sends it once per session; for a file, use viz.standaloneHtml).";\n` +
    `  })();\n` +
    `})();\n` +
    `</script>`
  );
}

/** A figure bundle: plotly JSON, its HTML and a text summary. */
export function figureBundle(fig: PlotlyFigure, text: string): Bundle {
  for (const [i, t] of fig.data.entries()) {
    if (t === null || typeof t !== "object" || typeof t.type !== "string") throw new Error(`figureBundle: trace ${i} has no type`);
  }
  return makeBundle({ [PLOTLY_MIME]: fig, "text/html": figureHtml(fig), "text/plain": text } as MimeData, {});
}

/** The HTML body of one bundle, as a static page would show it. */
function bodyOf(b: Bundle | { data: MimeData }): string {
  const d = b.data;
  if (typeof d["text/html"] === "string") return d["text/html"];
  const fig = d[PLOTLY_MIME];
  if (fig) return figureHtml(fig);
  if (typeof d["image/png"] === "string") {
    const md = (b as Bundle).metadata?.["image/png"];
    const size = md ? ` width="${md.width}" height="${md.height}"` : "";
    return `<img alt="${escapeHtml(d["text/plain"].split("\n")[0] ?? "")}"${size} src="data:image/png;base64,${d["image/png"]}">`;
  }
  return `<pre>${escapeHtml(d["text/plain"])}</pre>`;
}

/**
 * A complete HTML page showing one bundle (or several, in order), for saving to a file or an
 * nbconvert-like static export. plotly.js is inlined once when any bundle needs it; nothing is
 * loaded from the network.
 */
export function standaloneHtml(bundle: Bundle | readonly Bundle[], options: { title?: string } = {}): string {
  const list = Array.isArray(bundle) ? (bundle as readonly Bundle[]) : [bundle as Bundle];
  list.forEach((b, i) => {
    if (!isBundle(b)) throw new TypeError(`standaloneHtml: item ${i} is not a view's bundle ({ data: { "text/plain", ... } })`);
  });
  const needsPlotly = list.some((b) => b.data[PLOTLY_MIME] !== undefined || /Plotly/.test(b.data["text/html"] ?? ""));
  const title = options.title ?? list[0]?.data["text/plain"].split("\n")[0] ?? "batchlab";
  return (
    `<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>${escapeHtml(title)}</title>\n` +
    `<style>body { font-family: system-ui, sans-serif; margin: 16px; } .batchlab-item { margin-bottom: 24px; }</style>\n` +
    (needsPlotly ? plotlyScriptHtml() + "\n" : "") +
    `</head>\n<body>\n` +
    list.map((b) => `<div class="batchlab-item">\n${bodyOf(b)}\n</div>`).join("\n") +
    `\n</body>\n</html>\n`
  );
}
