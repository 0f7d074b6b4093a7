#!/usr/bin/env node
"use strict";
/**
 * Builds the native addons (binding.gyp) with node-gyp. Run by `npm install` and
 * `npm run build:native`; it never fails them: when the build fails it prints one line saying
 * that the native engine is not built and why, and exits 0 (the loader then runs the
 * TypeScript reference engine).
 *
 *   BATCHLAB_NO_NATIVE=1     skip the build
 *   BATCHLAB_NO_CUDA=1       leave the CUDA addon out (gyp variable with_cuda=0)
 *   BATCHLAB_NO_JPEG=1       build the CPU addon without libjpeg decoding (with_jpeg=0)
 *   BATCHLAB_BUILD_VERBOSE=1 show node-gyp's output
 *
 * `node scripts/build-native.js --sanitize` instead builds a development variant of the CPU
 * addon with AddressSanitizer and UndefinedBehaviorSanitizer into build/sanitize/ (see
 * native/README.md); unlike the normal build it exits 1 when that build fails.
 *
 * A build with CUDA that fails is retried once without it. The full output of the last
 * attempt is kept in build/native-build.log.
 */
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const verbose = isSet("BATCHLAB_BUILD_VERBOSE");

function isSet(name) {
  const v = process.env[name];
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/** node-gyp's entry script: npm's own setting, this package's node_modules, npm's bundled copy. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  candidates.push(path.join(root, "node_modules", "node-gyp", "bin", "node-gyp.js"));
  if (process.env.npm_execpath) {
    candidates.push(path.join(path.dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  }
  const prefix = path.dirname(path.dirname(process.execPath));
  candidates.push(path.join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(path.join(path.dirname(process.execPath), "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  return candidates.find((p) => p && fs.existsSync(p));
}

/** Headers of the running Node (so node-gyp needs no download), unless npm already says where. */
function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, "include", "node", "common.gypi")) ? [`--nodedir=${prefix}`] : [];
}

/** The most telling line of a failed build. */
function reasonOf(output, status) {
  const lines = output.split("\n").map((l) => l.trim()).filter(Boolean);
  const compiler = lines.find((l) => /(^|\s|:)(fatal )?error:/.test(l) && !l.startsWith("gyp"));
  if (compiler) return compiler;
  const noise = /^gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok|\s*at )/;
  const gyp = lines.find((l) => l.startsWith("gyp ERR!") && !noise.test(l));
  if (gyp) return gyp.replace(/^gyp ERR!\s*/, "node-gyp: ");
  const other = lines.find((l) => /error/i.test(l));
  return other || `node-gyp exited with status ${status}`;
}

function build(gyp, withCuda) {
  const args = [gyp, "rebuild", `--with_cuda=${withCuda ? 1 : 0}`, "--jobs", "max", ...nodeDirArgs()];
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    env: process.env,
    stdio: verbose ? "inherit" : ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = verbose ? "" : `${r.stdout || ""}\n${r.stderr || ""}`;
  try {
    fs.mkdirSync(path.join(root, "build"), { recursive: true });
    fs.writeFileSync(path.join(root, "build", "native-build.log"), `$ node ${args.join(" ")}\n${output}`);
  } catch {
    /* the log is a convenience */
  }
  if (r.error) return { ok: false, why: `could not run node-gyp: ${r.error.message}` };
  if (r.status === 0) return { ok: true };
  return { ok: false, why: verbose ? `node-gyp exited with status ${r.status}` : reasonOf(output, r.status) };
}

/** What scripts/<script> (detect-cuda.js, detect-jpeg.js) says: true for "1". */
function detect(script) {
  try {
    return require("node:child_process").execFileSync(process.execPath, [path.join(__dirname, script)], { encoding: "utf8" }).trim() === "1";
  } catch {
    return false;
  }
}

/** Loads the CPU addon in a child process (a built binary that cannot load is not a build). */
function loads() {
  const file = path.join(root, "build", "Release", "batchlab_cpu.node");
  const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(file)}).info()`], { encoding: "utf8" });
  if (r.status === 0) return { ok: true };
  const line = `${r.stderr || ""}`.split("\n").find((l) => /Error/.test(l)) || `exit status ${r.status}`;
  return { ok: false, why: `built, but it does not load: ${line.trim()}` };
}

function main() {
  const fallback = "the loader will use the TypeScript reference engine";
  if (isSet("BATCHLAB_NO_NATIVE")) {
    console.log(`batchlab: native engine not built (BATCHLAB_NO_NATIVE is set); ${fallback}`);
    return;
  }
  const gyp = findNodeGyp();
  if (!gyp) {
    console.log(`batchlab: native engine not built (node-gyp not found: it ships with npm); ${fallback}`);
    return;
  }
  let cuda = detect("detect-cuda.js");
  let r = build(gyp, cuda);
  if (!r.ok && cuda) {
    console.log(`batchlab: the native build with CUDA failed (${r.why}); retrying once without CUDA`);
    cuda = false;
    r = build(gyp, false);
  }
  if (r.ok) r = loads();
  if (!r.ok) {
    console.log(`batchlab: native engine not built (${r.why}); ${fallback}; details in build/native-build.log`);
    return;
  }
  const built = ["batchlab_cpu", "batchlab_cuda"].filter((t) => fs.existsSync(path.join(root, "build", "Release", `${t}.node`)));
  const jpeg = detect("detect-jpeg.js") ? "JPEG decode with libjpeg" : "JPEG decode left out: no jpeglib.h (libjpeg-turbo's headers), sharp decodes";
  console.log(`batchlab: native build ok (${built.join(", ")}${cuda ? "" : "; CUDA left out"}; ${jpeg})`);
}

/** The AddressSanitizer + UBSan variant of batchlab_cpu, compiled directly (no node-gyp). */
function sanitizeBuild() {
  const prefix = path.dirname(path.dirname(process.execPath));
  const nodeInclude = process.env.npm_config_nodedir ? path.join(process.env.npm_config_nodedir, "include", "node") : path.join(prefix, "include", "node");
  const addonApi = require("node-addon-api").include_dir;
  const version = require(path.join(root, "package.json")).version;
  const outDir = path.join(root, "build", "sanitize");
  fs.mkdirSync(outDir, { recursive: true });
  const cxx = process.env.CXX || "g++";
  const jpeg = detect("detect-jpeg.js");
  const common = ["-std=c++17", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-ffp-contract=off", "-fno-math-errno", "-fPIC"];
  // The AVX2 warp (native/warp_avx2.cc) is the one file built for more than the baseline, as in
  // binding.gyp: an object of its own, linked in; BATCHLAB_SIMD=sse4 checks the SSE lanes instead.
  const avx2 = [];
  if (process.arch === "x64") {
    const obj = path.join(outDir, "warp_avx2.o");
    const c = spawnSync(cxx, [...common, "-march=x86-64-v2", "-mavx2", "-fvisibility=hidden", "-c", path.join(root, "native", "warp_avx2.cc"), "-o", obj], { stdio: "inherit" });
    if (c.status !== 0) {
      console.log(`batchlab: the sanitizer build failed (${cxx} exited with ${c.status ?? c.error} on native/warp_avx2.cc)`);
      process.exit(1);
    }
    avx2.push("-DBATCHLAB_WITH_AVX2", obj);
  }
  const args = [
    ...common, "-shared", "-pthread",
    // The release build's baseline, so that the SSE paths (the separable pass, the warp) are the
    // code the sanitizers check (and the AVX2 warp where the processor has it).
    ...(process.arch === "x64" ? ["-march=x86-64-v2"] : []),
    // Hidden, self-bound symbols: otherwise the unannotated std::vector code that node exports
    // would be used for some calls and AddressSanitizer would report container-overflows.
    "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wl,-Bsymbolic",
    `-I${nodeInclude}`, `-I${path.resolve(root, addonApi)}`,
    "-D_GLIBCXX_SANITIZE_VECTOR", "-D_GLIBCXX_ASSERTIONS",
    "-DNAPI_VERSION=8", "-DNAPI_CPP_EXCEPTIONS", "-DNODE_ADDON_API_DISABLE_DEPRECATED", `-DBATCHLAB_VERSION=${JSON.stringify(version)}`,
    ...["addon.cc", "decode.cc", "job_read.cc", "plan.cc", "plan_check.cc", "pool.cc"].map((f) => path.join(root, "native", f)),
    ...avx2,
    ...(jpeg ? ["-DBATCHLAB_WITH_JPEG", "-ljpeg"] : []),
    "-o", path.join(outDir, "batchlab_cpu.node"),
  ];
  const r = spawnSync(cxx, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.log(`batchlab: the sanitizer build failed (${cxx} exited with ${r.status ?? r.error})`);
    process.exit(1);
  }
  const lib = spawnSync(cxx, ["-print-file-name=libasan.so"], { encoding: "utf8" }).stdout.trim();
  console.log(`batchlab: built ${path.relative(root, path.join(outDir, "batchlab_cpu.node"))}; run the ABI tests under it with:`);
  console.log(`  LD_PRELOAD=${lib} ASAN_OPTIONS=detect_leaks=0 BATCHLAB_NATIVE_ADDON=${path.join(outDir, "batchlab_cpu.node")} node test/native-abi.test.js`);
}

if (process.argv.includes("--sanitize")) {
  sanitizeBuild();
} else {
  try {
    main();
  } catch (e) {
    console.log(`batchlab: native engine not built (${e && e.message ? e.message : e}); the loader will use the TypeScript reference engine`);
  }
  process.exitCode = 0;
}
