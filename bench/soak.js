#!/usr/bin/env node
"use strict";
/**
 * npm run bench:soak: does memory stay flat over a long run?
 *
 * Runs the CIFAR-shaped pipeline of bench/run.js (50,000 x 32 x 32 x 3 uint8, batch 256,
 * shuffled; RandomCrop(32, padding 4), RandomHorizontalFlip, ToTensor, Normalize) on the
 * native engine for 30 epochs, once with every batch disposed and once with batches left to
 * the garbage collector, each in its own process, and prints the resident set size after each
 * epoch, then the JavaScript heap and the memory outside it (buffers) at the end. The figure to read is the growth from epoch 2 (pools warm) to the last epoch: a leak
 * grows with the epoch count, a pool does not.
 *
 * Options: --epochs E (default 30)  --n N (default 50000)
 */
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const { parseArgs } = require("node:util");
const { cifarShaped, cifarChain } = require("./synthetic");

const root = path.join(__dirname, "..");
const MiB = 1024 * 1024;

async function child(mode, epochs, n) {
  const bl = require(path.join(root, "dist"));
  const T = bl.transforms;
  const ds = cifarShaped(bl, n);
  const transform = cifarChain(T);
  const loader = new bl.DataLoader(ds, { batchSize: 256, shuffle: true, seed: 1, transform, prefetch: 2 });
  const rss = [];
  let checksum = 0;
  for (let e = 0; e < epochs; e++) {
    for await (const b of loader.iterate({ epoch: e })) {
      checksum += b.images[0];
      if (mode === "dispose") b.dispose();
    }
    rss.push(process.memoryUsage().rss);
  }
  const m = process.memoryUsage();
  process.stdout.write(JSON.stringify({ rss, heap: m.heapUsed, external: m.external, checksum }) + "\n");
}

function main() {
  const { values } = parseArgs({ options: { epochs: { type: "string", default: "30" }, n: { type: "string", default: "50000" }, child: { type: "string" } } });
  const epochs = Number(values.epochs);
  const n = Number(values.n);
  if (!(Number.isInteger(epochs) && epochs >= 3)) throw new Error(`bench:soak --epochs: expected an integer >= 3, received ${values.epochs}`);
  if (!(Number.isInteger(n) && n >= 256)) throw new Error(`bench:soak --n: expected an integer >= 256, received ${values.n}`);
  if (values.child) return child(values.child, epochs, n);
  console.log(`soak: ${epochs} epochs of ${n} CIFAR-shaped images, native engine, batch 256\n`);
  const rows = [];
  for (const mode of ["dispose", "kept"]) {
    const r = spawnSync(process.execPath, [__filename, "--child", mode, "--epochs", String(epochs), "--n", String(n)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`soak child ${mode} failed (${r.status}):\n${r.stderr}`);
    rows.push({ mode, ...JSON.parse(r.stdout.trim().split("\n").pop()) });
  }
  const pick = [1, 2, 5, 10, 20, epochs].filter((e, i, a) => e <= epochs && a.indexOf(e) === i);
  console.log(["epoch", ...pick.map(String)].map((s) => s.padStart(8)).join(""));
  for (const { mode, rss } of rows) {
    console.log([mode === "dispose" ? "dispose" : "GC only", ...pick.map((e) => (rss[e - 1] / MiB).toFixed(0))].map((s) => s.padStart(8)).join("") + "  MiB RSS");
  }
  console.log("");
  for (const { mode, rss, heap, external } of rows) {
    const growth = (rss[epochs - 1] - rss[1]) / MiB;
    console.log(`${mode === "dispose" ? "dispose()" : "GC only  "}: RSS epoch 2 -> ${epochs}: ${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MiB (${((rss[epochs - 1] / rss[1]) * 100 - 100).toFixed(1)}%), peak ${(Math.max(...rss) / MiB).toFixed(0)} MiB; at the end the JS heap holds ${(heap / MiB).toFixed(0)} MiB and buffers outside it ${(external / MiB).toFixed(0)} MiB`);
  }
}

Promise.resolve(main()).catch((e) => { console.error(e.message); process.exit(1); });
