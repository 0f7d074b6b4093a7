"use strict";
// The size of each tutorial notebook once executed (nbconvert --execute against the batchlab
// kernel in a sandbox, as test/notebooks.test.js runs them), with its figure count and the bytes
// its figures take. `node bench/notebook-sizes.js` (after npm run build:ts); no GPU needed.
const fs = require("node:fs");
const path = require("node:path");
const { makeSandbox, runNotebook, ROOT } = require("../test/helpers/jupyter");

const DIR = path.join(ROOT, "notebooks");
const PLOTLY = "application/vnd.plotly.v1+json";
const sandbox = makeSandbox();
try {
  const rows = [];
  for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith(".ipynb")).sort()) {
    const name = path.basename(file, ".ipynb");
    runNotebook(sandbox, JSON.parse(fs.readFileSync(path.join(DIR, file), "utf8")), { name, timeout: 300 });
    const out = path.join(sandbox.notebookDir, `${name}.out.ipynb`);
    const nb = JSON.parse(fs.readFileSync(out, "utf8"));
    let figures = 0;
    let figureBytes = 0;
    for (const c of nb.cells) {
      for (const o of c.outputs ?? []) {
        if (!o.data) continue;
        const bytes = JSON.stringify(o.data).length;
        if (o.data[PLOTLY]) (figures += 1), (figureBytes += bytes);
        else if (/plotly\.js \S+ embedded/.test([].concat(o.data["text/plain"] ?? "").join(""))) figureBytes += bytes;
      }
    }
    rows.push({ notebook: file, bytes: fs.statSync(out).size, figures, figureBytes });
  }
  console.log(`${"notebook".padEnd(36)} ${"executed .ipynb".padStart(16)} ${"figures".padStart(8)} ${"figure bytes".padStart(13)}`);
  for (const r of rows) console.log(`${r.notebook.padEnd(36)} ${r.bytes.toLocaleString("en").padStart(16)} ${String(r.figures).padStart(8)} ${r.figureBytes.toLocaleString("en").padStart(13)}`);
} finally {
  sandbox.cleanup();
}
