#!/usr/bin/env node
"use strict";
// Prints 1 when the CPU addon should be built with libjpeg(-turbo) JPEG decoding, else 0
// (binding.gyp's `with_jpeg` default). 1 needs BATCHLAB_NO_JPEG unset (or "0") and jpeglib.h in
// a folder the compiler searches by default (Debian: libjpeg62-turbo-dev or libturbojpeg0-dev's
// sibling libjpeg-dev; Homebrew: jpeg-turbo). Without it the addon builds without decode and
// imageFolder decodes JPEGs with sharp. Never fails: gyp evaluates this on every configure.
const fs = require("node:fs");
const path = require("node:path");

const dirs = ["/usr/include", "/usr/local/include", "/opt/homebrew/include", "/opt/local/include"];
const off = process.env.BATCHLAB_NO_JPEG && process.env.BATCHLAB_NO_JPEG !== "0";
const found = dirs.some((d) => fs.existsSync(path.join(d, "jpeglib.h")));
process.stdout.write(!off && found ? "1" : "0");
