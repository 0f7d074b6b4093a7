#!/usr/bin/env node
"use strict";
// Prints 1 when the CUDA addon should be built, else 0 (binding.gyp's `with_cuda` default).
// 1 needs BATCHLAB_NO_CUDA unset (or "0") and an nvcc found on PATH, in $CUDA_HOME/bin or in
// /usr/local/cuda/bin. Never fails: gyp evaluates this on every configure.
const fs = require("node:fs");
const path = require("node:path");

function executable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function findNvcc() {
  const exe = process.platform === "win32" ? "nvcc.exe" : "nvcc";
  const dirs = (process.env.PATH || "").split(path.delimiter).filter(Boolean);
  if (process.env.CUDA_HOME) dirs.push(path.join(process.env.CUDA_HOME, "bin"));
  dirs.push("/usr/local/cuda/bin");
  for (const d of dirs) {
    const p = path.join(d, exe);
    if (executable(p)) return p;
  }
  return "";
}

const off = process.env.BATCHLAB_NO_CUDA && process.env.BATCHLAB_NO_CUDA !== "0";
process.stdout.write(!off && findNvcc() ? "1" : "0");
