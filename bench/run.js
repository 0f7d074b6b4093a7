#!/usr/bin/env node
"use strict";
/**
 * npm run bench: batchlab's engines side by side with PyTorch's DataLoader, in one run.
 *
 *   (a) batchlab native (each batch disposed when the loop is done with it, and once more
 *       with batches left to the garbage collector)
 *   (b) batchlab reference   (c) PyTorch DataLoader + torchvision
 *   (d) the one-pass limit: a plain C loop converting uint8 HWC to normalized float32 CHW
 *
 * on a CIFAR-shaped set (50,000 x 32 x 32 x 3 uint8, batch 256, shuffled; RandomCrop(32,
 * padding 4), RandomHorizontalFlip, ToTensor, Normalize); then a geometry chain (RandomRotation,
 * RandomAffine, flip, ToTensor, Normalize; bench/synthetic.js) at 32 x 32 and at 224 x 224
 * against the same chain in torchvision; an antialiased Resize(224) of 1024 x 768 images on one
 * thread against PIL's resize on one core; then Fashion-MNIST end to end; then real photos, an
 * ImageNet-like JPEG folder against torchvision's ImageFolder (bench/photos.js).
 * Each engine runs in its own process so its peak RSS is its own. Prints ratios, not just times.
 *
 * Options: --n N (default 50000)  --quick (n = 10000, one PyTorch config)
 *          --only SECTION[,SECTION...]: run only these sections, one of cifar, geometry,
 *          policies, resize, fashion (e.g. `node bench/run.js --only geometry`)
 */
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const root = path.join(__dirname, "..");
const { synthetic, cifarShaped, cifarChain, cifarGeometry, policyChain } = require("./synthetic");
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const nArg = args.indexOf("--n");
const N = nArg >= 0 ? Number(args[nArg + 1]) : quick ? 10000 : 50000;
const BATCH = 256;
const SECTIONS = ["cifar", "geometry", "policies", "resize", "fashion"];
const onlyArg = args.indexOf("--only");
const only = onlyArg >= 0 ? String(args[onlyArg + 1] ?? "").split(",").filter((x) => x) : SECTIONS;
if (args[0] !== "--child" && (only.length === 0 || only.some((x) => !SECTIONS.includes(x)))) {
  console.error(`bench/run.js: --only: expected one or more of ${SECTIONS.join(", ")} (comma separated), received ${JSON.stringify(onlyArg >= 0 ? args[onlyArg + 1] ?? "" : "")}`);
  process.exit(2);
}
const runs = (section) => only.includes(section);

// ------------------------------------------------------------------ child: one engine, one epoch
async function child(kind, n) {
  const bl = require(path.join(root, "dist"));
  const T = bl.transforms;
  let ds;
  let transform;
  let numThreads;
  if (kind.startsWith("fashion")) {
    ds = await bl.datasets.fashionMnist({ split: "train" });
    transform = T.compose([T.randomCrop(28, { padding: 4 }), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.286], [0.353])]);
  } else if (kind.startsWith("geometry")) {
    const side = kind.startsWith("geometry224") ? 224 : 32;
    ds = synthetic(bl, n, side, side);
    transform = cifarGeometry(T);
  } else if (kind.startsWith("randaugment") || kind.startsWith("trivialaugment") || kind.startsWith("augmix")) {
    const side = kind.includes("224") ? 224 : 32;
    ds = synthetic(bl, n, side, side);
    transform = policyChain(T, kind.replace(/\d+-.*$/, ""), side);
  } else if (kind.startsWith("resize")) {
    // One thread: the comparison is per core with PIL, which resizes on one.
    ds = synthetic(bl, n, 768, 1024);
    transform = T.compose([T.resize(224), T.toTensor()]);
    numThreads = 1;
  } else {
    ds = cifarShaped(bl, n);
    transform = cifarChain(T);
  }
  const backend = kind.endsWith("reference") ? "reference" : "native";
  const dispose = !kind.endsWith("-kept");
  const loader = new bl.DataLoader(ds, { batchSize: kind.startsWith("resize") ? 16 : BATCH, shuffle: true, seed: 1, transform, backend, prefetch: 2, numThreads });
  let best = 0;
  const epochs = backend === "reference" ? 1 : 3;
  for (let e = 0; e < epochs; e++) {
    loader.resetStats();
    const t0 = performance.now();
    let seen = 0;
    for await (const b of loader) {
      seen += b.shape[0];
      // Done with it: its buffer serves a later batch at once, as PyTorch's reference counting
      // frees a batch the loop let go of. ("-kept" leaves every batch to the garbage collector.)
      if (dispose) b.dispose();
    }
    const rate = (seen / (performance.now() - t0)) * 1000;
    best = Math.max(best, rate);
  }
  const s = loader.stats();
  const datasetBytes = ds.length * (ds.shape ? ds.shape[0] * ds.shape[1] * ds.shape[2] : 0);
  const batchBytes = BATCH * 4 * (kind.startsWith("fashion") ? 28 * 28 : 32 * 32 * 3);
  process.stdout.write(
    JSON.stringify({ kind, imagesPerSec: best, maxRssBytes: process.resourceUsage().maxRSS * 1024, datasetBytes, batchBytes, engine: s.backend, stages: s.stages }) + "\n",
  );
}

// ------------------------------------------------------------------ parent
function runChild(kind, n) {
  const r = spawnSync(process.execPath, [__filename, "--child", kind, String(n)], { encoding: "utf8", env: { ...process.env, BATCHLAB_QUIET: "1" } });
  if (r.status !== 0) return { kind, error: (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ") };
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

function torchPeer(n, chain = "crop", side = 32) {
  const py = "/usr/bin/python3";
  const check = () => spawnSync(py, ["-c", "import torch, torchvision, PIL"], { encoding: "utf8" }).status === 0;
  if (!fs.existsSync(py) || !check()) {
    const s = spawnSync("bash", [path.join(root, "scripts", "setup-system.sh"), "bench"], { stdio: "inherit" });
    if (s.status !== 0 || !check()) return { skipped: "PyTorch/torchvision not installed (Debian's python3-torch, python3-torchvision) and could not be installed here" };
  }
  const workers = quick && chain === "crop" ? "0" : "0,2";
  const r = spawnSync(py, [path.join(__dirname, "torch_loader.py"), String(n), String(side), String(side), "3", workers, chain], { encoding: "utf8", env: { ...process.env, PYTHONWARNINGS: "ignore" } });
  if (r.status !== 0) return { skipped: `PyTorch run failed: ${r.stderr.trim().split("\n").pop()}` };
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const best = rows.reduce((a, b) => (b.images_per_s > a.images_per_s ? b : a));
  return { rows, best };
}

/** PIL's antialiased bilinear resize of 1024 x 768 RGB images to 298 x 224 (Resize(224)), one core. */
function pilResize(n) {
  const code = `
import sys, time, numpy as np
from PIL import Image
n = int(sys.argv[1])
rng = np.random.default_rng(0)
imgs = [Image.fromarray(rng.integers(0, 256, size=(768, 1024, 3), dtype=np.uint8)) for _ in range(n)]
best = 0
for _ in range(3):
    t0 = time.perf_counter()
    for im in imgs:
        im.resize((298, 224), Image.BILINEAR)
    best = max(best, n / (time.perf_counter() - t0))
print(best)
`;
  const r = spawnSync("/usr/bin/python3", ["-c", code, String(n)], { encoding: "utf8" });
  if (r.status !== 0) return { skipped: `PIL run failed: ${(r.stderr || "").trim().split("\n").pop()}` };
  return { imagesPerSec: Number(r.stdout.trim()) };
}

function onePass(n, threads) {
  const exe = path.join(os.tmpdir(), `batchlab-onepass-${process.pid}`);
  try {
    execFileSync("cc", ["-O3", "-march=x86-64-v2", "-ffp-contract=off", "-pthread", "-o", exe, path.join(__dirname, "onepass.c")], { stdio: "pipe" });
    const out = execFileSync(exe, [String(n), "32", "32", "3", String(BATCH), String(threads)], { encoding: "utf8" });
    return { imagesPerSec: Number(out.trim()) };
  } catch (e) {
    return { skipped: `could not build or run bench/onepass.c: ${e.message.split("\n")[0]}` };
  } finally {
    fs.rmSync(exe, { force: true });
  }
}

const fmt = (x) => Math.round(x).toLocaleString("en-US").padStart(11);
const mb = (b) => (b / 2 ** 20).toFixed(0);

async function parent() {
  const threads = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  console.log(`batchlab bench: CIFAR-shaped ${N} x 32 x 32 x 3 uint8, batch ${BATCH}, shuffled; RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize`);
  console.log(`machine: ${os.cpus()[0].model}, ${threads} cores, node ${process.version}\n`);
  const line = (label, r) => console.log(`${label.padEnd(44)} ${r.error || r.skipped ? "n/a".padStart(11) + "  (" + (r.error || r.skipped) + ")" : fmt(r.imagesPerSec) + " images/s" + (r.maxRssBytes ? `   peak RSS ${mb(r.maxRssBytes)} MiB` : "")}`);
  const ratio = (x, y, name, target) => {
    if (!x || !y) return console.log(`${name}: n/a`);
    const r = x / y;
    console.log(`${name} = ${r.toFixed(2)}${target ? `  (target >= ${target}: ${r >= target ? "met" : "NOT met"})` : ""}`);
  };
  if (runs("cifar")) cifar(threads, line, ratio);
  if (runs("geometry")) geometry(line, ratio);
  if (runs("policies")) policies(line, ratio);
  if (runs("resize")) resize(line, ratio);
  if (runs("fashion")) fashion(line);
}

function cifar(threads, line, ratio) {
  const a = runChild("cifar-native", N);
  const b = runChild("cifar-reference", N);
  const c = torchPeer(N);
  const d = onePass(N, threads);
  const kept = runChild("cifar-native-kept", N);
  line("(a) batchlab native (each batch disposed)", a);
  line("    native, batches left to the GC instead", kept);
  line("(b) batchlab reference (TypeScript)", b);
  if (c.best) for (const row of c.rows) console.log(`${("(c) PyTorch DataLoader, num_workers=" + row.num_workers).padEnd(44)} ${fmt(row.images_per_s)} images/s`);
  else line("(c) PyTorch DataLoader + torchvision", c);
  line("(d) one-pass C loop (convert only)", d);
  console.log("");
  ratio(a.imagesPerSec, c.best && c.best.images_per_s, "a/c native vs PyTorch (best of workers)", 30);
  ratio(a.imagesPerSec, d.imagesPerSec, "a/d native vs one-pass limit", 0.5);
  ratio(a.imagesPerSec, b.imagesPerSec, "a/b native vs reference");
  if (a.maxRssBytes) {
    const budget = a.datasetBytes + 4 * a.batchBytes + 150 * 2 ** 20;
    console.log(`memory: peak RSS ${mb(a.maxRssBytes)} MiB vs budget dataset + 4 x batch + 150 MiB = ${mb(budget)} MiB (${a.maxRssBytes <= budget ? "within" : "OVER"})`);
  }
  console.log("");
}

function geometry(line, ratio) {
  console.log("Geometry: RandomRotation(15), RandomAffine(translate 0.1, scale 0.9-1.1, shear 5), flip, ToTensor, Normalize (bilinear)");
  for (const [side, n, target] of [[32, N, 10], [224, quick ? 500 : 2000, 5]]) {
    const g = runChild(`geometry${side}-native`, n);
    const gr = runChild(`geometry${side}-reference`, Math.min(n, side === 224 ? 300 : n));
    const gt = torchPeer(n, "geometry", side);
    line(`(g) ${side} x ${side}, batchlab (engine: ${g.engine ?? "?"})`, g);
    line("    batchlab reference (TypeScript)", gr);
    if (gt.best) for (const row of gt.rows) console.log(`${("    PyTorch + torchvision, num_workers=" + row.num_workers).padEnd(44)} ${fmt(row.images_per_s)} images/s`);
    else line("    PyTorch + torchvision", gt);
    ratio(g.imagesPerSec, gt.best && gt.best.images_per_s, `geometry ${side} x ${side}: batchlab vs PyTorch (best of workers)`, target);
  }
  console.log("");
}

function policies(line, ratio) {
  console.log("Policies: RandomCrop(32, padding 4) or RandomResizedCrop(224), flip, RandAugment(), TrivialAugmentWide() or AugMix(), ToTensor, Normalize");
  // The issue's targets are RandAugment's and TrivialAugmentWide's; AugMix's ratio is printed without one.
  for (const policy of ["randaugment", "trivialaugment", "augmix"]) {
    for (const [side, n, goal] of [[32, quick ? 2000 : 20000, 10], [224, quick ? 200 : 1000, 5]]) {
      const target = policy === "augmix" ? undefined : goal;
      const g = runChild(`${policy}${side}-native`, n);
      const gt = torchPeer(n, policy, side);
      line(`(p) ${policy} ${side} x ${side}, batchlab`, g);
      if (gt.best) for (const row of gt.rows) console.log(`${("    PyTorch + torchvision, num_workers=" + row.num_workers).padEnd(44)} ${fmt(row.images_per_s)} images/s`);
      else line("    PyTorch + torchvision", gt);
      ratio(g.imagesPerSec, gt.best && gt.best.images_per_s, `${policy} ${side} x ${side}: batchlab vs PyTorch (best of workers)`, target);
    }
  }
  console.log("");
}

function resize(line, ratio) {
  const rz = runChild("resize-native", 64);
  const pil = pilResize(64);
  line("(r) Resize(224) of 1024 x 768, batchlab, 1 thread", rz);
  line("    PIL Image.resize (bilinear, antialiased), 1 core", pil);
  ratio(rz.imagesPerSec, pil.imagesPerSec, "resize: batchlab vs PIL per core", 3);
  console.log("");
}

function fashion(line) {
  const f = runChild("fashion-native", 0);
  line("Fashion-MNIST end to end, native (60,000 x 28 x 28)", f);
  const fr = runChild("fashion-reference", 0);
  line("Fashion-MNIST end to end, reference", fr);
  console.log("");
  // Real photos: decode-bound loading of an ImageNet-like JPEG folder (bench/photos.js).
  spawnSync(process.execPath, [path.join(__dirname, "photos.js"), ...(quick ? ["--n", "500"] : [])], { stdio: "inherit" });
}

if (args[0] === "--child") child(args[1], Number(args[2])).catch((e) => {
  console.error(e.stack || e.message);
  process.exit(1);
});
else parent();
