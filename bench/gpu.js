#!/usr/bin/env node
"use strict";
/**
 * npm run bench:gpu: batchlab's CUDA path side by side with PyTorch, in one run.
 *
 *   1. Host-to-device bandwidth by size, 1 KiB .. 256 MiB: pageable vs pinned (batchlab) vs
 *      PyTorch `tensor.to("cuda", non_blocking=True)` from pinned memory.
 *   2. Fused augmentation throughput: batchlab's one-kernel plan vs torchvision.transforms.v2 on
 *      CUDA tensors, for CIFAR (32x32, crop+pad, flip, normalize) and ImageNet-style 224-from-256
 *      (random resized crop, flip, normalize; and with colour jitter).
 *   3. Achieved fraction of the GPU's peak memory bandwidth by each kernel.
 *
 * Prints ratios (batchlab / PyTorch, pinned / pageable, fraction of peak), never bare times alone.
 * Without a CUDA device it prints one line saying why it skipped and exits 0.
 *
 * Options: --quick (fewer sizes and repetitions)
 *          BATCHLAB_PYTHON=/path/to/python3 (a Python with CUDA-enabled torch and torchvision)
 */
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const quick = process.argv.includes("--quick");

function loadLibrary() {
  const dist = path.join(root, "dist");
  if (!fs.existsSync(path.join(dist, "device", "index.js"))) {
    console.error(`bench:gpu: ${dist} is not built; run \`npm run build\` first`);
    process.exit(1);
  }
  return { cuda: require(path.join(dist, "device", "index.js")), T: require(path.join(dist, "transforms", "index.js")) };
}

// ------------------------------------------------------------------------------ PyTorch peer

function findTorch() {
  const probe = "import sys, torch, torchvision\nfrom torchvision.transforms import v2\nsys.exit(0 if torch.cuda.is_available() else 3)";
  const tried = [];
  for (const py of [process.env.BATCHLAB_PYTHON, "python3", "/usr/bin/python3"].filter(Boolean)) {
    const r = spawnSync(py, ["-c", probe], { encoding: "utf8" });
    if (r.status === 0) return { python: py };
    tried.push(`${py}: ${r.error ? r.error.code : r.status === 3 ? "torch has no CUDA device" : (r.stderr || "").trim().split("\n").pop()}`);
  }
  return { skipped: `no Python with CUDA-enabled torch and torchvision.transforms.v2 (${tried.join("; ")}); set BATCHLAB_PYTHON` };
}

function torchRun(peer, args) {
  if (!peer.python) return { skipped: peer.skipped };
  const r = spawnSync(peer.python, [path.join(__dirname, "gpu_torch.py"), ...args], {
    encoding: "utf8",
    env: { ...process.env, PYTHONWARNINGS: "ignore" },
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) return { skipped: `gpu_torch.py ${args[0]} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ")}` };
  try {
    return JSON.parse(r.stdout.trim().split("\n").pop());
  } catch (e) {
    return { skipped: `gpu_torch.py printed no JSON: ${e.message}` };
  }
}

// ------------------------------------------------------------------------------ formatting

const fmtBytes = (n) => (n >= 1 << 20 ? `${n / (1 << 20)} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`);
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : "-");
function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padStart(w[i])).join("  ");
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

// ------------------------------------------------------------------------------ 1. transfers

async function transfers(cuda, peer) {
  const sizes = quick ? [1024, 65536, 1 << 22, 1 << 26] : Array.from({ length: 10 }, (_, i) => 1024 * 4 ** i);
  const ours = await require(path.join(__dirname, "..", "dist", "viz", "index.js")).transferBenchmark(sizes);
  const torch = torchRun(peer, ["transfer", sizes.join(",")]);
  const torchBy = new Map((torch.transfer || []).map((t) => [t.bytes, t]));
  console.log("\n1. Host-to-device bandwidth (GB/s = 1e9 B/s; CUDA events around back-to-back copies)");
  if (torch.skipped) console.log(`   PyTorch column skipped: ${torch.skipped}`);
  table(
    ["size", "pageable", "pinned", "torch pinned", "pinned/pageable", "pinned/torch"],
    ours.map((r) => {
      const t = torchBy.get(r.bytes);
      return [fmtBytes(r.bytes), fmt(r.pageableGBps), fmt(r.pinnedGBps), t ? fmt(t.GBps) : "-", ratio(r.pinnedGBps, r.pageableGBps), t ? ratio(r.pinnedGBps, t.GBps) : "-"];
    }),
  );
}

// ------------------------------------------------------------------------------ 2. augmentation

const CASES = {
  cifar: {
    size: 32,
    n: 512,
    label: "CIFAR 32x32: RandomCrop(32, pad 4), HFlip, ToTensor, Normalize",
    chain: (T) => T.compose([T.randomCrop(32, { padding: 4 }), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616])]),
  },
  imagenet: {
    size: 256,
    n: 256,
    label: "224 from 256: RandomResizedCrop(224), HFlip, ToTensor, Normalize",
    chain: (T) => T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]),
  },
  imagenet_jitter: {
    size: 256,
    n: 256,
    label: "224 from 256 + ColorJitter(0.4, 0.4, 0.4)",
    chain: (T) =>
      T.compose([
        T.randomResizedCrop(224),
        T.randomHorizontalFlip(),
        T.colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4 }),
        T.toTensor(),
        T.normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
      ]),
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Jobs over sources that lie in one pinned buffer per job (runPlan copies straight from it). */
function makeJobs(cuda, T, c, count) {
  const { size, n } = c;
  const chain = c.chain(T);
  const plan = new T.Plan(chain);
  const per = size * size * 3;
  const jobs = [];
  const pins = [];
  const encodeMs = [];
  let x = 2463534242;
  for (let j = 0; j < count; j++) {
    const pin = cuda.pinned(n * per);
    const u = pin.uint8();
    for (let i = 0; i < u.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      u[i] = x & 255;
    }
    const images = Array.from({ length: n }, (_, i) => ({ data: u.subarray(i * per, (i + 1) * per), height: size, width: size, channels: 3 }));
    const t0 = performance.now();
    const params = images.map((im, i) => plan.draw(im, { seed: 1, epoch: 0, position: j * n + i }));
    jobs.push(require(path.join(__dirname, "..", "dist", "engines", "index.js")).encodeJob(plan, images, params));
    encodeMs.push(performance.now() - t0);
    pins.push(pin);
  }
  return { jobs, pins, encodeMs: median(encodeMs) };
}

async function augmentCase(cuda, T, peer, name, peak) {
  const c = CASES[name];
  const reps = quick ? 8 : 30;
  const streams = [new cuda.Stream(), new cuda.Stream(), new cuda.Stream()];
  const { jobs, pins, encodeMs } = makeJobs(cuda, T, c, streams.length);
  const outs = [];
  // Serial: copy and kernel timed by events.
  const copies = [];
  const kernels = [];
  for (let i = 0; i < reps + 3; i++) {
    const b = await cuda.runPlan(jobs[0], { stream: streams[0], output: outs[0] });
    outs[0] = b;
    if (i >= 3) (copies.push(b.timings.copy), kernels.push(b.timings.kernel));
  }
  for (let s = 1; s < streams.length; s++) outs[s] = await cuda.runPlan(jobs[s], { stream: streams[s] });
  // Pipelined: batch k+1's copy overlaps batch k's kernel, over three streams.
  const batches = reps * 2;
  const t0 = performance.now();
  const pending = [];
  for (let b = 0; b < batches; b++) pending.push(cuda.runPlan(jobs[b % 3], { stream: streams[b % 3], output: outs[b % 3] }));
  await Promise.all(pending);
  const pipeMs = (performance.now() - t0) / batches;
  const job = jobs[0];
  const kernelMs = median(kernels);
  const copyMs = median(copies);
  const outBytes = job.n * job.outC * job.outH * job.outW * 4;
  const srcBytes = job.n * c.size * c.size * 3;
  const moved = outBytes + srcBytes;
  outs.forEach((o) => o.free());
  pins.forEach((p) => p.free());
  streams.forEach((s) => s.destroy());

  const torch = torchRun(peer, ["augment", name, String(c.n), String(quick ? 4 : 10)]);
  const t = torch.augment;
  const ips = (ms) => (c.n / ms) * 1e3;
  console.log(`\n   ${c.label}; batch ${c.n} -> ${[job.n, job.outC, job.outH, job.outW].join("x")} float32`);
  console.log(`   batchlab: kernel ${fmt(kernelMs, 3)} ms, copy of uint8 sources + job ${fmt(copyMs, 3)} ms, pipelined ${fmt(pipeMs, 3)} ms per batch; plan encode in TypeScript ${fmt(encodeMs, 1)} ms per batch (CPU, overlaps in the loader)`);
  if (torch.skipped) console.log(`   PyTorch comparison skipped: ${torch.skipped}`);
  const rows = [
    ["batchlab fused kernel (uint8 on device)", fmt(ips(kernelMs), 0), "1.00x", fmt(moved / (kernelMs * 1e-3) / peak, 3)],
    ["batchlab pinned host -> device, pipelined", fmt(ips(pipeMs), 0), ratio(ips(pipeMs), ips(kernelMs)), "-"],
  ];
  if (t) {
    rows.push(["torchvision v2 per sample (own params)", fmt(ips(t.perSampleMs), 0), ratio(ips(t.perSampleMs), ips(kernelMs)), fmt(moved / (t.perSampleMs * 1e-3) / peak, 3)]);
    rows.push(["torchvision v2 batched (one param draw)", fmt(ips(t.batchedMs), 0), ratio(ips(t.batchedMs), ips(kernelMs)), fmt(moved / (t.batchedMs * 1e-3) / peak, 3)]);
    rows.push(["torch .to(cuda) + v2 batched", fmt(ips(t.endToEndMs), 0), ratio(ips(t.endToEndMs), ips(kernelMs)), "-"]);
  }
  table(["", "images/s", "vs fused kernel", "of peak bandwidth"], rows);
  if (t) {
    console.log(
      `   ratios: fused kernel / torchvision per sample ${ratio(ips(kernelMs), ips(t.perSampleMs))}, ` +
        `/ torchvision batched ${ratio(ips(kernelMs), ips(t.batchedMs))}; ` +
        `pipelined from host / torch .to(cuda)+v2 ${ratio(ips(pipeMs), ips(t.endToEndMs))}`,
    );
  }
}

// ------------------------------------------------------------------------------ main

async function main() {
  const { cuda, T } = loadLibrary();
  if (!cuda.available()) {
    console.log(`bench:gpu skipped: no usable CUDA device (${cuda.unavailableReason()})`);
    return;
  }
  const dev = cuda.devices()[cuda.currentDevice()];
  const peak = cuda.peakBandwidth(dev);
  console.log(
    `bench:gpu on ${dev.name} (compute ${dev.computeCapability.join(".")}, ${dev.multiprocessors} SMs, ` +
      `${(dev.totalMemory / 2 ** 30).toFixed(1)} GiB, peak memory bandwidth ${peak > 0 ? (peak / 1e9).toFixed(0) + " GB/s" : "unknown"})`,
  );
  const peer = findTorch();
  if (peer.skipped) console.log(`PyTorch comparisons skipped: ${peer.skipped}`);
  await transfers(cuda, peer);
  console.log(`\n2-3. Fused augmentation throughput; "of peak bandwidth" = (uint8 source + float32 output bytes) / time / peak`);
  for (const name of Object.keys(CASES)) await augmentCase(cuda, T, peer, name, peak > 0 ? peak : NaN);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exitCode = 1;
});
