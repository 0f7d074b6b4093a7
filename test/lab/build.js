"use strict";
// Bundles the test front end with esbuild into dist/: lab.js (Lab's standard renderers) and
// lab-plotly.js (plus jupyterlab-plotly's renderer), each with its CSS, and an index.html per
// build that a test fills in with the server's config (#jupyter-config-data, as Lab's page has).
const path = require("node:path");
const fs = require("node:fs");
const esbuild = require("esbuild");

const here = __dirname;
const out = path.join(here, "dist");

async function build() {
  fs.mkdirSync(out, { recursive: true });
  const lumino = (p) => path.dirname(require.resolve(`@lumino/${p}/package.json`, { paths: [here] }));
  for (const [name, renderers] of [["lab", "renderers-none"], ["lab-plotly", "renderers-plotly"]]) {
    await esbuild.build({
      entryPoints: { [name]: path.join(here, "src", "index.ts") },
      bundle: true,
      format: "iife",
      platform: "browser",
      target: "es2020",
      minify: process.env.LAB_DEBUG ? false : true,
      outdir: out,
      logLevel: "warning",
      define: { "process.env.NODE_ENV": '"production"', global: "window" },
      loader: { ".svg": "dataurl", ".png": "dataurl", ".woff": "dataurl", ".woff2": "dataurl", ".ttf": "dataurl", ".eot": "dataurl", ".gif": "dataurl" },
      alias: {
        // one copy of Lumino, as Lab shares it with its extensions (jupyterlab-plotly asks for Lumino 1)
        "@lumino/widgets": lumino("widgets"),
        "@lumino/messaging": lumino("messaging"),
        "plotly.js/dist/plotly": require.resolve("plotly.js/dist/plotly.min.js", { paths: [here] }),
      },
      plugins: [
        {
          name: "renderers",
          setup(b) {
            b.onResolve({ filter: /^batchlab-lab-renderers$/ }, () => ({ path: path.join(here, "src", `${renderers}.ts`) }));
            // webpack's "~package/file" in Lab's CSS imports
            b.onResolve({ filter: /^~/ }, (args) => ({ path: require.resolve(args.path.slice(1), { paths: [args.resolveDir, here] }) }));
          },
        },
      ],
    });
  }
  const stamp = { builtFrom: sourcesMtime() };
  fs.writeFileSync(path.join(out, "build.json"), JSON.stringify(stamp) + "\n");
}

/** Newest modification time of the front end's sources and lockfile. */
function sourcesMtime() {
  const files = [path.join(here, "build.js"), path.join(here, "package-lock.json"), ...fs.readdirSync(path.join(here, "src")).map((f) => path.join(here, "src", f))];
  return Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
}

module.exports = { build, sourcesMtime, out };
if (require.main === module) {
  const t0 = Date.now();
  build().then(
    () => console.log(`test/lab: bundled in ${Date.now() - t0} ms`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
