#!/usr/bin/env node
"use strict";
// The `batchlab` command. The Jupyter commands (notebook, install, kernel) go to the kernel's CLI
// (dist-kernel/cli.js, which loads the library through the package's entry point); every other
// command goes to the library's CLI (dist/cli.js, which loads no Jupyter code).
const fs = require("node:fs");
const path = require("node:path");

const JUPYTER_COMMANDS = ["notebook", "install", "kernel"];

function cliFor(cmd) {
  if (!JUPYTER_COMMANDS.includes(cmd)) return require("../dist/cli.js");
  const file = path.join(__dirname, "..", "dist-kernel", "cli.js");
  if (!fs.existsSync(file)) throw new Error(`batchlab: the kernel is not built (${file} is missing): run npm run build:ts`);
  return require(file);
}

const argv = process.argv.slice(2);
Promise.resolve()
  .then(() => cliFor(argv[0]).main(argv))
  .catch((err) => {
    console.error(err && err.message ? err.message : err);
    process.exitCode = 1;
  });
