#!/usr/bin/env node
"use strict";
/**
 * node bench/viz.js: how long the notebook views take to build their bundles.
 *
 *   showBatch on 64 x 3 x 32 x 32 float32 (CIFAR-shaped: smooth synthetic images, then noise,
 *   the worst case for PNG), and on 64 real Fashion-MNIST images (1 x 28 x 28) when Debian's
 *   dataset-fashion-mnist is installed. Budget: well under 100 ms per call.
 *
 * Ratios printed: against the 100 ms budget; against the floor of the PNG step alone (node's
 * deflate of the same pixels); and against torchvision's make_grid + save_image (PIL PNG) on
 * the same tensor, in the same run, when python3 has torch, torchvision and PIL.
 * Options: --runs N (default 30)
 */
const fs = require("node:fs");
const path = require("node:path");
const os = require("node:os");
const zlib = require("node:zlib");
const { spawnSync } = require("node:child_process");
const viz = require(path.join(__dirname, "..", "dist", "viz"));

const args = process.argv.slice(2);
const runsArg = args.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(args[runsArg + 1]) : 30;
const BUDGET_MS = 100;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(fn) {
  for (let i = 0; i < 3; i++) fn();
  const ts = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function smoothBatch(n, c, h, w) {
  const r = rng(7);
  const images = new Float32Array(n * c * h * w);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const fx = 1 + r() * 3;
      const fy = 1 + r() * 3;
      const ph = r() * 6.28;
      const base = (i * c + ch) * h * w;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) images[base + y * w + x] = 0.5 + 0.4 * Math.sin((fx * x) / w * 6.28 + ph) * Math.cos((fy * y) / h * 6.28);
    }
  }
  return images;
}

function noiseBatch(n, c, h, w) {
  const r = rng(11);
  return Float32Array.from({ length: n * c * h * w }, () => r());
}

function fashion(n) {
  const file = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs.existsSync(file)) return null;
  const raw = zlib.gunzipSync(fs.readFileSync(file));
  const images = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) images[i] = raw[16 + i] / 255;
  return images;
}

/** torchvision make_grid + save_image (PNG through PIL) on the same tensor; ms per call, or a reason. */
function torchPeer(file, shape) {
  const code = `
import sys, time, io, numpy as np
try:
    import torch, torchvision
    from torchvision.utils import make_grid, save_image
    import PIL
except Exception as e:
    print("SKIP", type(e).__name__, e); sys.exit(0)
x = torch.from_numpy(np.fromfile(sys.argv[1], dtype=np.float32).reshape(${shape.join(",")}))
def run():
    g = make_grid(x, nrow=8, padding=2, normalize=True, pad_value=1.0)
    g = torch.nn.functional.interpolate(g[None], scale_factor=${shape[2] >= 32 ? 2 : 3}, mode="nearest")[0]
    buf = io.BytesIO(); save_image(g, buf, format="png")
for _ in range(3): run()
ts = []
for _ in range(${RUNS}):
    t = time.perf_counter(); run(); ts.append((time.perf_counter() - t) * 1000)
ts.sort(); print("MS", ts[len(ts) // 2])
`;
  // Debian's python3-torch lives in /usr/bin/python3; the python3 on PATH may be another one.
  const py = require("node:fs").existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const r = spawnSync(py, ["-c", code, file], { encoding: "utf8" });
  if (r.error) return { skipped: `python3 not runnable (${r.error.code})` };
  const out = r.stdout.trim();
  if (out.startsWith("MS ")) return { ms: Number(out.slice(3)) };
  if (out.startsWith("SKIP")) return { skipped: `PyTorch/torchvision/PIL not installed (${out.slice(5)})` };
  return { skipped: `python3 failed: ${(r.stderr || out).trim().split("\n").pop()}` };
}

async function row(label, images, shape, labels, names) {
  const bundle = viz.showBatch({ images, shape, labels }, { classNames: names });
  const { width, height } = bundle.metadata["image/png"];
  const ms = time(() => viz.showBatch({ images, shape, labels }, { classNames: names }));
  // The floor of the PNG step alone: deflate of this very canvas (decoded back from the PNG).
  const { decode } = await import("fast-png");
  const pix = decode(Buffer.from(bundle.data["image/png"], "base64")).data;
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) raw.set(pix.subarray(y * width * 3, (y + 1) * width * 3), y * (width * 3 + 1) + 1);
  const deflateMs = time(() => zlib.deflateSync(raw, { level: 6 }));
  const f = path.join(os.tmpdir(), `batchlab-viz-bench-${process.pid}.f32`);
  fs.writeFileSync(f, Buffer.from(images.buffer, images.byteOffset, images.byteLength));
  const peer = torchPeer(f, shape);
  fs.rmSync(f, { force: true });
  console.log(label);
  console.log(`  PNG ${width}x${height}, ${((bundle.data["image/png"].length * 0.75) / 1024).toFixed(0)} KiB`);
  console.log(`  showBatch / ${BUDGET_MS} ms budget                   = ${(ms / BUDGET_MS).toFixed(3)}   (${ms.toFixed(1)} ms, median of ${RUNS})`);
  console.log(`  showBatch / deflate of the same canvas alone   = ${(ms / deflateMs).toFixed(2)}`);
  if (peer.ms) console.log(`  showBatch / torchvision make_grid + PNG        = ${(ms / peer.ms).toFixed(2)}   (torchvision ${peer.ms.toFixed(1)} ms)`);
  else console.log(`  showBatch / torchvision make_grid + PNG        = n/a (${peer.skipped})`);
}

async function main() {
  console.log(`batchlab viz bench: node ${process.version}, ${os.cpus()[0].model}, ${os.cpus().length} cores\n`);
  const names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
  const labels = Int32Array.from({ length: 64 }, (_, i) => (i * 7) % 10);
  await row("64 x 3 x 32 x 32, smooth synthetic images (CIFAR-shaped), labels drawn", smoothBatch(64, 3, 32, 32), [64, 3, 32, 32], labels, names);
  await row("64 x 3 x 32 x 32, uniform noise (worst case for PNG)", noiseBatch(64, 3, 32, 32), [64, 3, 32, 32], labels, names);
  const fm = fashion(64);
  if (fm) await row("64 x 1 x 28 x 28, Fashion-MNIST test images", fm, [64, 1, 28, 28], labels, ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]);
  else console.log("Fashion-MNIST: n/a (Debian's dataset-fashion-mnist not installed)");

  // The other views, against the same budget.
  const S = require(path.join(__dirname, "..", "dist", "sampling"));
  const lab = Int32Array.from({ length: 60000 }, (_, i) => i % 10);
  const sampler = new S.BatchSampler(new S.RandomSampler(60000, { seed: 1 }), 256);
  const ps = time(() => viz.plotSampler(sampler, lab, { epochs: 3 }));
  console.log(`\nplotSampler, 60,000 labels x 3 epochs / ${BUDGET_MS} ms budget = ${(ps / BUDGET_MS).toFixed(3)}   (${ps.toFixed(1)} ms)`);
  const image = { data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 13) & 255), height: 32, width: 32, channels: 3 };
  const T = require(path.join(__dirname, "..", "dist", "transforms"));
  const tf = T.compose([T.randomCrop(32, { padding: 4 }), T.randomHorizontalFlip(), T.colorJitter({ brightness: 0.3 }), T.toTensor()]);
  const sa = time(() => viz.showAugmentations(image, tf, { n: 8 }));
  console.log(`showAugmentations, 8 draws of 32x32x3 / ${BUDGET_MS} ms budget = ${(sa / BUDGET_MS).toFixed(3)}   (${sa.toFixed(1)} ms)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
