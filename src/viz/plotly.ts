/**
 * Plotly figures as MIME bundles, and the offline embed of plotly.js (no CDN: the source of
 * plotly.js-dist-min is inlined). A figure's text/html is a div plus a script that draws with
 * `window.Plotly`, or the RequireJS module "plotly", or waits briefly for either to appear.
 */
import * as fs from "node:fs";
import { figureImg } from "./static";
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

/** The kernelspec whose resource folder serves plotly.min.js (the kernel sets BATCHLAB_KERNELSPEC). */
export function plotlyKernelspec(): string {
  const name = process.env.BATCHLAB_KERNELSPEC;
  return name && /^[a-z0-9._-]+$/i.test(name) ? name : "batchlab";
}

/**
 * The page-side loader, shared by every figure on a page (window.__batchlabPlotly1). It calls
 * back with plotly.js: `window.Plotly`, else RequireJS's "plotly" when defined, else the
 * kernelspec's copy, `<base>kernelspecs/<name>/plotly.min.js`, from the Jupyter server that
 * serves the page (the base URL is read from the page: JupyterLab's and Notebook 7's
 * #jupyter-config-data, the classic Notebook's body[data-base-url]). Under RequireJS that file is
 * loaded as an AMD module, else by a <script> tag. Without a server (a file, nbconvert's HTML
 * without the batchlab template) it waits 2 s for window.Plotly, then fails with a reason.
 */
const LOADER = `function () {
  var queue = [], busy = false;
  function base() {
    if (location.protocol === "file:") return null;
    var c = document.getElementById("jupyter-config-data");
    if (c) { try { var b = JSON.parse(c.textContent).baseUrl; if (typeof b === "string") return b.replace(/\\/?$/, "/"); } catch (e) {} }
    var d = document.body && document.body.getAttribute("data-base-url");
    return d ? d.replace(/\\/?$/, "/") : null;
  }
  function settle(P, why) {
    var q = queue; queue = []; busy = false;
    for (var i = 0; i < q.length; i++) { try { if (P) q[i][0](P); else q[i][1](why); } catch (e) { if (window.console) console.error(e); } }
  }
  return function (name, ok, bad) {
    if (window.Plotly && window.Plotly.newPlot) return ok(window.Plotly);
    var rq = window.requirejs;
    queue.push([ok, bad]);
    if (busy) return;
    busy = true;
    if (typeof rq === "function" && ((rq.defined && rq.defined("plotly")) || (rq.specified && rq.specified("plotly")))) return rq(["plotly"], function (P) { settle(P || window.Plotly, "RequireJS's 'plotly' module is empty"); }, function () { settle(null, "RequireJS could not load 'plotly'"); });
    var root = base();
    if (root === null) {
      var tries = 0;
      return (function wait() {
        if (window.Plotly && window.Plotly.newPlot) return settle(window.Plotly);
        if (++tries < 40) return setTimeout(wait, 50);
        settle(null, "no Jupyter server on this page to load plotly.js from");
      })();
    }
    var url = root + "kernelspecs/" + encodeURIComponent(name) + "/plotly.min.js";
    var why = "could not load " + url + " (run batchlab install again to copy plotly.js into the kernelspec)";
    if (typeof window.define === "function" && window.define.amd && typeof rq === "function") {
      var paths = {}; paths["batchlab-plotly-" + name] = url.replace(/\\.js$/, "");
      rq.config({ paths: paths });
      return rq(["batchlab-plotly-" + name], function (P) { P = P || window.Plotly; if (P && !window.Plotly) window.Plotly = P; settle(P, why); }, function () { settle(null, why); });
    }
    var s = document.createElement("script");
    s.src = url;
    s.onload = function () { settle(window.Plotly, why); };
    s.onerror = function () { settle(null, why); };
    document.head.appendChild(s);
  };
}`;

/**
 * The text/html of a figure. It stands on its own: a `div.batchlab-plot` holding a static
 * preview (an SVG image drawn from the same data, and a line saying how to get the interactive
 * figure), then a script that loads plotly.js for itself when the page has none (see LOADER)
 * and draws into every undrawn element of this figure: no element ids, so a second view of the
 * same output draws too. Where scripts do not run (untrusted notebooks, static viewers) the
 * preview is what shows. `key` names the figure's elements (default: a fresh one).
 */
export function figureHtml(fig: PlotlyFigure & { frames?: unknown[] }, key?: string): string {
  const figKey = key ?? `f${Date.now().toString(36)}${(++figureCount).toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const layout = fig.layout ?? {};
  const height = typeof layout.height === "number" ? `${layout.height}px` : "450px";
  const width = typeof layout.width === "number" ? `${layout.width}px` : "100%";
  const payload = {
    data: fig.data ?? [],
    layout,
    config: { responsive: true, displaylogo: false, ...(fig.config ?? {}) },
    ...(Array.isArray(fig.frames) ? { frames: fig.frames } : {}),
  };
  const t = layout.title as unknown;
  const title = typeof t === "string" ? t : t && typeof (t as { text?: unknown }).text === "string" ? ((t as { text: string }).text) : "";
  const name = title.replace(/<[^>]*>/g, "");
  const note =
    `Static preview${name ? ` of “${escapeHtml(name)}”` : ""}. For the interactive figure, trust the notebook ` +
    `(JupyterLab: File › Trust Notebook; Notebook: the “Not Trusted” button), or view it where the plotly renderer is installed.`;
  let img = "";
  try {
    img = figureImg(fig as PlotlyFigure, typeof layout.width === "number" ? layout.width : 800);
  } catch {
    img = ""; // a figure the preview cannot draw still gets its note and the live plot
  }
  return (
    `<div class="batchlab-plot" data-batchlab-fig="${escapeHtml(figKey)}" style="width:${width};">` +
    `<div class="batchlab-plot-static">${img}<div class="batchlab-plot-note" style="font-size:12px; color:#555; margin:2px 0 6px;">${note}</div></div></div>\n` +
    `<script type="text/javascript">\n` +
    `(function () {\n` +
    `  var key = ${scriptJson(figKey)}, name = ${scriptJson(plotlyKernelspec())};\n` +
    `  var fig = ${scriptJson(payload)};\n` +
    `  var load = window.__batchlabPlotly1 || (window.__batchlabPlotly1 = (${LOADER})());\n` +
    `  function targets() {\n` +
    `    var all = document.querySelectorAll("div.batchlab-plot[data-batchlab-fig]"), out = [];\n` +
    `    for (var i = 0; i < all.length; i++) if (all[i].getAttribute("data-batchlab-fig") === key && !all[i].getAttribute("data-batchlab-drawn")) out.push(all[i]);\n` +
    `    return out;\n` +
    `  }\n` +
    `  var tries = 0;\n` +
    `  load(name, function draw(Plotly) {\n` +
    `    var els = targets();\n` +
    // the classic Notebook runs the script before its output is in the page: look again
    `    if (!els.length && ++tries < 100 && !document.querySelector("div.batchlab-plot[data-batchlab-fig=\\"" + key + "\\"]")) return setTimeout(function () { draw(Plotly); }, 50);\n` +
    `    els.forEach(function (el) {\n` +
    `      el.setAttribute("data-batchlab-drawn", "1");\n` +
    `      var live = document.createElement("div");\n` +
    `      live.className = "batchlab-plot-live";\n` +
    `      live.style.height = ${scriptJson(height)};\n` +
    `      el.appendChild(live);\n` +
    `      Plotly.newPlot(live, fig.data, fig.layout, fig.config).then(function () {\n` +
    `        var s = el.querySelector(".batchlab-plot-static");\n` +
    `        if (s) s.style.display = "none";\n` +
    `        if (fig.frames) return Plotly.addFrames(live, fig.frames);\n` +
    `      });\n` +
    `    });\n` +
    `  }, function (why) {\n` +
    `    targets().forEach(function (el) {\n` +
    `      var n = el.querySelector(".batchlab-plot-note");\n` +
    `      if (n) n.textContent = "Static preview: the interactive figure needs plotly.js, which is not available here (" + why + ").";\n` +
    `    });\n` +
    `  });\n` +
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
