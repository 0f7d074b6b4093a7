#!/usr/bin/env node
"use strict";
// Prints 1 when the CUDA addon should be built (nvcc found, BATCHLAB_NO_CUDA unset), else 0.
const { execFileSync } = require("node:child_process");
const path = require("node:path");
let nvcc = "";
if (!process.env.BATCHLAB_NO_CUDA) {
  try {
    nvcc = execFileSync(process.execPath, [path.join(__dirname, "..", "native", "cuda", "find-cuda.js"), "nvcc"], { encoding: "utf8" }).trim();
  } catch {
    nvcc = "";
  }
}
process.stdout.write(nvcc ? "1" : "0");
