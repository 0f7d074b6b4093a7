#!/usr/bin/env node
"use strict";
/**
 * The photo section of `npm run bench` (also `node bench/photos.js` alone): an ImageNet-like
 * folder, ten class folders of about 500 x 375 JPEGs at quality 90 (2,000 by default) cut
 * from Debian's plasma wallpapers (/usr/share/wallpapers), built once and kept under
 * .bench-data/. The ImageNet training chain, RandomResizedCrop(224), RandomHorizontalFlip,
 * ToTensor, Normalize, batch 64, shuffled, one epoch each, in its own process (peak RSS its own):
 *
 *   batchlab, decode "exact": JPEGs decoded whole by libjpeg-turbo in the native pool
 *   batchlab, decode "fast": only each sample's RandomResizedCrop box decoded
 *   batchlab, JPEGs decoded by sharp (BATCHLAB_DECODER=sharp: the decoder before issue 15)
 *   batchlab from WebDataset shards of the same JPEGs (datasets.writeShards once, then
 *   datasets.webdataset with a 1,000-sample shuffle buffer; full decode)
 *   torchvision ImageFolder + PyTorch DataLoader, num_workers 0 and 2 (bench/torch_folder.py)
 *   full decode per core: PIL (Image.open().convert("RGB")) and libjpeg-turbo (batchlab's
 *   decodeJpeg, one image per call, so one pool thread at a time)
 *
 * Printed as ratios against torchvision's best measured in the same run.
 * Options: --n N (images, default 2000, at least 100).
 */
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const args = process.argv.slice(2);
const nArg = args.indexOf("--n");
const N = Math.max(100, nArg >= 0 ? Number(args[nArg + 1]) : 2000);
const CLASSES = 10;
const py = "/usr/bin/python3";

/** The source photos: the largest JPEG or PNG of each wallpaper (one class per wallpaper, cycled). */
function sources() {
  const base = "/usr/share/wallpapers";
  if (!fs.existsSync(base)) return [];
  const out = [];
  for (const d of fs.readdirSync(base).sort()) {
    const dir = path.join(base, d, "contents", "images");
    if (!fs.existsSync(dir)) continue;
    const files = fs.readdirSync(dir).filter((f) => /^\d+x\d+\.(jpg|png)$/.test(f));
    const area = (f) => f.split(/[x.]/).slice(0, 2).reduce((a, b) => a * Number(b), 1);
    // Big enough to cut from, not the 5K ones (slow to decode once per build).
    const pick = files.filter((f) => area(f) >= 1280 * 800 && area(f) <= 2560 * 1600).sort((a, b) => area(b) - area(a))[0];
    if (pick) out.push(path.join(dir, pick));
  }
  return out;
}

/** Builds (once) the folder of N JPEGs; returns its path. */
async function buildFolder() {
  const dir = path.join(root, ".bench-data", `photos-${N}`);
  const done = path.join(dir, ".complete");
  if (fs.existsSync(done)) return dir;
  const sharp = require("sharp");
  const src = sources();
  if (src.length === 0) throw new Error("no photos in /usr/share/wallpapers (Debian's plasma-workspace-wallpapers)");
  fs.rmSync(dir, { recursive: true, force: true });
  for (let c = 0; c < CLASSES; c++) fs.mkdirSync(path.join(dir, `class${c}`), { recursive: true });
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const perSource = Math.ceil(N / src.length);
  let made = 0;
  for (let s = 0; s < src.length && made < N; s++) {
    const { data, info } = await sharp(src[s]).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    for (let k = 0; k < perSource && made < N; k++, made++) {
      // A random 4:3 crop of 30-100% of the width, scaled to 500 x 375 (ImageNet's typical size).
      const cw = Math.max(500, Math.floor(info.width * (0.3 + 0.7 * rand())));
      const ch = Math.min(info.height, Math.floor((cw * 3) / 4));
      const left = Math.floor(rand() * (info.width - cw + 1));
      const top = Math.floor(rand() * (info.height - ch + 1));
      const buf = await sharp(data, { raw: info }).extract({ left, top, width: cw, height: ch }).resize(500, 375, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer();
      fs.writeFileSync(path.join(dir, `class${made % CLASSES}`, `img${String(made).padStart(5, "0")}.jpg`), buf);
    }
  }
  fs.writeFileSync(done, `${made} images from ${src.length} wallpapers\n`);
  return dir;
}

// ------------------------------------------------------------------ child: one loader, one epoch
async function child(kind, dir) {
  const bl = require(path.join(root, "dist"));
  const T = bl.transforms;
  if (kind === "libjpeg") {
    const jpeg = require(path.join(root, "dist", "data", "jpeg"));
    const addon = require(jpeg.nativeAddonPath());
    const files = [];
    for (const d of fs.readdirSync(dir).filter((x) => x.startsWith("class")).sort()) for (const f of fs.readdirSync(path.join(dir, d)).sort()) files.push(path.join(dir, d, f));
    const blobs = files.slice(0, 500).map((f) => fs.readFileSync(f));
    let best = 0;
    for (let rep = 0; rep < 2; rep++) {
      const t0 = performance.now();
      for (const b of blobs) await addon.decodeJpeg([{ data: b, channels: 3 }]);
      best = Math.max(best, (blobs.length / (performance.now() - t0)) * 1000);
    }
    process.stdout.write(JSON.stringify({ imagesPerSec: best, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + "\n");
    return;
  }
  let ds;
  if (kind === "shards") {
    // The same images as WebDataset shards (written once, kept beside the folder), read as streams.
    const out = `${dir}-shards/photos`;
    const pattern = fs.existsSync(`${dir}-shards/.complete`)
      ? fs.readFileSync(`${dir}-shards/.complete`, "utf8").trim()
      : await (async () => {
          fs.rmSync(`${dir}-shards`, { recursive: true, force: true });
          fs.mkdirSync(`${dir}-shards`, { recursive: true });
          const w = await bl.datasets.writeShards(await bl.datasets.imageFolder(dir), { out, perShard: 200 });
          fs.writeFileSync(`${dir}-shards/.complete`, w.pattern + "\n");
          return w.pattern;
        })();
    ds = bl.datasets.webdataset(pattern, { shuffle: 1000, seed: 1 });
  } else {
    ds = await bl.datasets.imageFolder(dir, { decode: kind === "fast" ? "fast" : "exact" });
  }
  const transform = T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]);
  const loader = new bl.DataLoader(ds, { batchSize: 64, ...(kind === "shards" ? {} : { shuffle: true }), seed: 1, transform, prefetch: 2 });
  // Two epochs, the better one counts (the first also warms the page cache and the pool).
  let rate = 0;
  for (let e = 0; e < 2; e++) {
    loader.resetStats();
    const t0 = performance.now();
    let seen = 0;
    for await (const b of loader) {
      seen += b.shape[0];
      b.dispose();
    }
    rate = Math.max(rate, (seen / (performance.now() - t0)) * 1000);
  }
  process.stdout.write(JSON.stringify({ imagesPerSec: rate, stages: loader.stats().stages, maxRssBytes: process.resourceUsage().maxRSS * 1024, engine: loader.stats().backend, decoder: bl.datasets.jpegDecoder().name }) + "\n");
}

// ------------------------------------------------------------------ parent
function runChild(kind, dir, env = {}) {
  const r = spawnSync(process.execPath, [__filename, "--child", kind, dir], { encoding: "utf8", env: { ...process.env, BATCHLAB_QUIET: "1", ...env } });
  if (r.status !== 0) return { error: (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ") };
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

function python(argv) {
  if (!fs.existsSync(py) || spawnSync(py, ["-c", "import torch, torchvision, PIL"]).status !== 0) return { error: "PyTorch/torchvision/PIL not installed for /usr/bin/python3" };
  const r = spawnSync(py, [path.join(__dirname, "torch_folder.py"), ...argv], { encoding: "utf8", env: { ...process.env, PYTHONWARNINGS: "ignore" } });
  if (r.status !== 0) return { error: `python failed: ${(r.stderr || "").trim().split("\n").pop()}` };
  return { rows: r.stdout.trim().split("\n").map((l) => JSON.parse(l)) };
}

const MiB = 2 ** 20;
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
function row(name, rate, rss, vs) {
  const r = rate === undefined ? "n/a" : `${fmt(rate)} images/s`;
  const m = rss ? `, peak RSS ${(rss / MiB).toFixed(0)} MiB` : "";
  const x = vs && rate ? `  (${(rate / vs).toFixed(2)}x torchvision's best)` : "";
  console.log(`  ${name.padEnd(58)} ${r}${m}${x}`);
}

async function parent() {
  let dir;
  try {
    dir = await buildFolder();
  } catch (e) {
    console.log(`photos: skipped (${e.message})`);
    return;
  }
  console.log(`photos: ${N} JPEGs (about 500 x 375, q90, ${CLASSES} classes) in ${path.relative(root, dir)}; RandomResizedCrop(224), flip, ToTensor, Normalize; batch 64, one epoch`);
  const tv = python([dir, "0,2"]);
  const pil = python(["pil", dir, "500"]);
  const exact = runChild("exact", dir);
  const fast = runChild("fast", dir);
  const viaSharp = runChild("exact", dir, { BATCHLAB_DECODER: "sharp" });
  const shards = runChild("shards", dir);
  const lj = runChild("libjpeg", dir);
  const best = tv.rows ? Math.max(...tv.rows.map((r) => r.images_per_s)) : undefined;
  if (tv.error) console.log(`  torchvision: ${tv.error}`);
  for (const r of tv.rows ?? []) row(`torchvision ImageFolder + DataLoader, num_workers=${r.num_workers}`, r.images_per_s, r.peak_rss, best);
  for (const [name, r] of [
    ["batchlab decode \"exact\" (libjpeg-turbo, native pool)", exact],
    ["batchlab decode \"fast\" (only the crop box decoded)", fast],
    ["batchlab with sharp decoding (BATCHLAB_DECODER=sharp)", viaSharp],
    ["batchlab from WebDataset shards of the same JPEGs (full decode)", shards],
  ]) {
    if (r.error) console.log(`  ${name}: failed: ${r.error}`);
    else row(name, r.imagesPerSec, r.maxRssBytes, best);
  }
  console.log("  full decode to RGB, one core:");
  if (pil.rows) row("  PIL Image.open().convert(\"RGB\")", pil.rows[0].images_per_s);
  else console.log(`    PIL: ${pil.error}`);
  if (lj.error) console.log(`    libjpeg-turbo: failed: ${lj.error}`);
  else row("  libjpeg-turbo (batchlab decodeJpeg, one image per call)", lj.imagesPerSec);
  if (pil.rows && !lj.error) console.log(`  libjpeg-turbo / PIL per core: ${(lj.imagesPerSec / pil.rows[0].images_per_s).toFixed(2)}x`);
  if (best && !exact.error) console.log(`  targets: exact >= 1.5x torchvision's best: ${(exact.imagesPerSec / best).toFixed(2)}x; fast >= 3x: ${fast.error ? "n/a" : (fast.imagesPerSec / best).toFixed(2) + "x"}`);
  const cores = require("node:os").availableParallelism();
  if (!lj.error && !fast.error) {
    const limit = lj.imagesPerSec * cores;
    console.log(`  the machine's full-decode limit (libjpeg-turbo per core x ${cores} cores) ${fmt(limit)} images/s: fast ${(fast.imagesPerSec / limit).toFixed(2)}x (target >= 1.0x)`);
  }
  // Peak RSS bound: prefetch x batch bytes + 150 MB (batch 64 x 3 x 224 x 224 float32, prefetch 2).
  const bound = 2 * 64 * 3 * 224 * 224 * 4 + 150e6;
  for (const [name, r] of [["exact", exact], ["fast", fast], ["shards", shards]]) {
    if (!r.error) console.log(`  peak RSS ${name}: ${(r.maxRssBytes / MiB).toFixed(0)} MiB (bound prefetch x batch bytes + 150 MB = ${(bound / MiB).toFixed(0)} MiB: ${r.maxRssBytes <= bound ? "within" : "over"})`);
  }
}

if (args[0] === "--child") child(args[1], args[2]).catch((e) => {
  console.error(e.stack || e.message);
  process.exit(1);
});
else parent();
