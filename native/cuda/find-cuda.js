#!/usr/bin/env node
"use strict";
// Prints where the CUDA toolkit is, for native/cuda/cuda.gypi.
//   node find-cuda.js root   -> the toolkit root (has include/ and lib64/), or "" if none
//   node find-cuda.js nvcc   -> the nvcc to run, or "" if none
// Order: $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, then the directory of an nvcc on PATH
// (following symlinks and the one-line `exec .../nvcc` wrapper scripts some images install).
// Never fails: gyp evaluates this even when the CUDA target is left out.
const fs = require("fs");
const path = require("path");

function isRoot(dir) {
  return !!dir && fs.existsSync(path.join(dir, "include", "cuda_runtime_api.h")) && fs.existsSync(path.join(dir, "bin", "nvcc"));
}

function nvccOnPath() {
  for (const d of (process.env.PATH || "").split(path.delimiter)) {
    if (!d) continue;
    const p = path.join(d, "nvcc");
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return "";
}

function rootFromNvcc(nvcc) {
  if (!nvcc) return "";
  let real = nvcc;
  try {
    real = fs.realpathSync(nvcc);
  } catch {
    return "";
  }
  const guess = path.dirname(path.dirname(real));
  if (isRoot(guess)) return guess;
  // A wrapper script such as `exec /usr/local/cuda-13.0/bin/nvcc "$@"`.
  try {
    const text = fs.readFileSync(real, "utf8").slice(0, 4096);
    const m = /([^\s"']*\/bin\/nvcc)\b/.exec(text);
    if (m && m[1] !== real) {
      const g2 = path.dirname(path.dirname(m[1]));
      if (isRoot(g2)) return g2;
    }
  } catch {
    /* binary or unreadable */
  }
  return "";
}

function findRoot() {
  for (const c of [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"]) {
    if (isRoot(c)) return path.resolve(c);
  }
  return rootFromNvcc(nvccOnPath());
}

const what = process.argv[2] || "root";
const root = findRoot();
if (what === "nvcc") process.stdout.write(root ? path.join(root, "bin", "nvcc") : nvccOnPath());
else process.stdout.write(root);
