#!/usr/bin/env node
"use strict";
/**
 * Builds the native addons with node-gyp (npm's bundled copy). Never fails the install: when
 * the build fails it says so in one line and the loader uses the TypeScript reference engine.
 * BATCHLAB_NO_NATIVE=1 skips the build; BATCHLAB_NO_CUDA=1 leaves the CUDA addon out. A build
 * with CUDA that fails is retried once without it.
 */
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");

function nodeGyp() {
  const candidates = [
    path.join(root, "node_modules", "node-gyp", "bin", "node-gyp.js"),
    path.join(path.dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  ];
  if (process.env.npm_execpath) candidates.push(path.join(path.dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  return candidates.find((p) => fs.existsSync(p));
}

function build(env) {
  const gyp = nodeGyp();
  if (!gyp) return { ok: false, why: "node-gyp not found (it ships with npm)" };
  const args = [gyp, "rebuild", "--jobs", "max"];
  if (fs.existsSync("/usr/include/node/node_api.h")) args.push("--nodedir=/usr");
  const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (r.status === 0) return { ok: true };
  const lines = `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => /error|Error/.test(l));
  return { ok: false, why: lines.slice(0, 3).join(" | ") || `node-gyp exited with ${r.status}` };
}

if (process.env.BATCHLAB_NO_NATIVE) {
  console.log("batchlab: native engine not built (BATCHLAB_NO_NATIVE is set); the TypeScript reference engine will run");
  process.exit(0);
}
let r = build(process.env);
if (!r.ok && !process.env.BATCHLAB_NO_CUDA) {
  console.log(`batchlab: the build with CUDA failed (${r.why}); retrying without CUDA`);
  r = build({ ...process.env, BATCHLAB_NO_CUDA: "1" });
}
if (r.ok) {
  const built = ["batchlab_cpu", "batchlab_cuda"].filter((t) => fs.existsSync(path.join(root, "build", "Release", `${t}.node`)));
  console.log(`batchlab: native build ok (${built.join(", ")})`);
} else {
  console.log(`batchlab: native engine not built (${r.why}); the TypeScript reference engine will run`);
}
