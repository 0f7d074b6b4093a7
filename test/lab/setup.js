"use strict";
// Makes the test front end ready: `npm ci` in test/lab when its node_modules is missing or older
// than its lockfile, then the esbuild bundle when the sources are newer than it. Run by npm's
// pretest, .ci/run and test/lab-browser.test.js (so a fresh clone gets it; library users never do).
const fs = require("node:fs");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

const here = __dirname;
const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : -1);

function installed() {
  return mtime(path.join(here, "node_modules", ".package-lock.json")) >= mtime(path.join(here, "package-lock.json"));
}

async function ensureLabFrontend({ quiet = false } = {}) {
  if (!installed()) {
    if (!quiet) console.error("test/lab: npm ci (JupyterLab's packages for the browser tests)");
    execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: here, stdio: quiet ? "pipe" : "inherit" });
  }
  const { build, sourcesMtime, out } = require("./build");
  let stamp = 0;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(out, "build.json"), "utf8")).builtFrom;
  } catch {
    /* not built yet */
  }
  if (stamp < sourcesMtime() || !fs.existsSync(path.join(out, "lab.js")) || !fs.existsSync(path.join(out, "lab-plotly.js"))) await build();
  return out;
}

module.exports = { ensureLabFrontend };
if (require.main === module) {
  ensureLabFrontend().then(
    (out) => console.error(`test/lab: front end ready in ${path.relative(process.cwd(), out) || out}`),
    (e) => {
      console.error(`test/lab: ${e.message}`);
      process.exit(1);
    },
  );
}
