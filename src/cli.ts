/**
 * The library's commands of `batchlab` (bench, preview, shards, doctor, help). bin/batchlab.js sends the
 * Jupyter commands (notebook, install, kernel) to the kernel's CLI in dist-kernel/ instead, so
 * this file loads no Jupyter code; its usage text lists them all.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { cifar10, fashionMnist, imageFolder, jpegDecoder, subset, writeShards } from "./data/index";
import type { Dataset } from "./data/index";
import { DataLoader } from "./loader/index";
import { engineReport } from "./engines/index";
import * as T from "./transforms/index";
import { showAugmentations, showBatch, standaloneHtml } from "./viz/index";
import type { Batch } from "./loader/index";

const USAGE = `usage: batchlab <command> [options]
  notebook [--port N] [--dir DIR]      serve the tutorial notebooks with Jupyter Notebook on 127.0.0.1 (npm start)
  bench [--backend B] [--batch-size N] [--epochs N] [--threads N]
                                       augmented epochs of Fashion-MNIST: throughput and time per stage
  preview [--cifar10 ROOT | --folder DIR] [--split S] [--index I] [--n N] [--seed S] [--out FILE]
                                       one sample under N augmentations and an augmented batch, as HTML or PNG
  shards DIR --out PREFIX [--per-shard N] | shards --fashion-mnist SPLIT --out PREFIX [--per-shard N]
                                       write an image folder (or Fashion-MNIST) as WebDataset tar shards
                                       PREFIX-000000.tar, ... (N samples each, default 1000) and print
                                       the brace pattern that reads them back
  doctor                               which engines are active (native, CUDA) and why
  install [--user | --sys-prefix | --prefix P]   register the Jupyter kernelspec "batchlab"
  kernel <connection_file>             run the kernel (Jupyter calls this)
  help                                 this text`;

export async function main(argv: string[]): Promise<void> {
  const [cmd = "help", ...rest] = argv;
  switch (cmd) {
    case "bench":
      return bench(rest);
    case "preview":
      return preview(rest);
    case "shards":
      return shards(rest);
    case "doctor":
      return doctor();
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return;
    default:
      throw new Error(`batchlab: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
  }
}

/**
 * Reads `--flag value` / `--flag=value` pairs (node:util's parseArgs) against the flags a command
 * knows, all of which take a value; keyed by the flag as written (`--batch-size`), last one wins.
 */
function parseFlags(cmd: string, args: string[], known: readonly string[]): Map<string, string> {
  const options = Object.fromEntries(known.map((f) => [f.slice(2), { type: "string" as const }]));
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const out = new Map<string, string>();
  for (const t of tokens) {
    if (t.kind === "option-terminator") continue;
    const flag = t.kind === "option" ? `--${t.name}` : "";
    if (t.kind === "positional" || t.rawName !== flag || !known.includes(flag)) {
      throw new Error(`batchlab ${cmd}: unknown option ${JSON.stringify(args[t.index])} (expected one of ${known.join(", ")})\n${USAGE}`);
    }
    if (!t.value) throw new Error(`batchlab ${cmd}: ${flag} needs a value`);
    out.set(flag, t.value);
  }
  return out;
}

function intFlag(cmd: string, flags: Map<string, string>, flag: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = flags.get(flag);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new Error(`batchlab ${cmd}: ${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

const FASHION = { mean: [0.286], std: [0.353] };
const CIFAR = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };

async function bench(args: string[]): Promise<void> {
  const f = parseFlags("bench", args, ["--backend", "--batch-size", "--epochs", "--threads"]);
  const backend = f.get("--backend") ?? "both";
  if (!["native", "reference", "both"].includes(backend)) throw new Error(`batchlab bench: --backend must be native, reference or both, got ${JSON.stringify(backend)}`);
  const batchSize = intFlag("bench", f, "--batch-size", 256, 1, 1 << 16);
  const epochs = intFlag("bench", f, "--epochs", 1, 1, 1000);
  const numThreads = intFlag("bench", f, "--threads", os.cpus().length, 1, 1024);
  const t0 = performance.now();
  const train = await fashionMnist({ split: "train" });
  console.log(`Fashion-MNIST train: ${train.length} images ${train.shape?.join("x")} loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  const augment = T.compose([T.randomCrop(28, { padding: 4 }), T.randomHorizontalFlip(0.5), T.toTensor(), T.normalize(FASHION.mean, FASHION.std)]);
  console.log(`transform: ${augment.toString().replace(/\s+/g, " ")}`);
  const rates: Record<string, number> = {};
  for (const b of backend === "both" ? (["native", "reference"] as const) : [backend as "native" | "reference"]) {
    const loader = new DataLoader(train, { batchSize, shuffle: true, seed: 7, transform: augment, prefetch: 2, numThreads, backend: b });
    if (b === "native" && loader.engine.name !== "native") {
      console.log(`native: not available (${loader.engine.reason})`);
      continue;
    }
    const counts = new Array<number>(10).fill(0);
    for (let e = 0; e < epochs; e++) {
      for await (const batch of loader) {
        for (const l of batch.labels) counts[l]!++;
        batch.dispose(); // its memory serves the next batch at once
      }
    }
    const s = loader.stats();
    rates[b] = s.samplesPerSecond;
    console.log(
      `${b}: ${epochs} epoch(s), ${s.batches} batches of ${batchSize}, ${loader.numThreads} threads: ` +
        `${Math.round(s.samplesPerSecond).toLocaleString("en-US")} images/s ` +
        `(stage totals ms: sample ${s.stages.sample.toFixed(0)}, fetch ${s.stages.fetch.toFixed(0)}, transform ${s.stages.transform.toFixed(0)}, collate ${s.stages.collate.toFixed(0)})`,
    );
    console.log(`  class counts: ${counts.map((c, i) => `${train.classNames?.[i] ?? i} ${c}`).join(", ")}`);
  }
  if (rates.native && rates.reference) console.log(`native / reference: ${(rates.native / rates.reference).toFixed(1)}x`);
}

async function preview(args: string[]): Promise<void> {
  const f = parseFlags("preview", args, ["--cifar10", "--folder", "--split", "--index", "--n", "--seed", "--out", "--size"]);
  if (f.has("--cifar10") && f.has("--folder")) throw new Error("batchlab preview: give --cifar10 or --folder, not both");
  const split = f.get("--split") ?? "train";
  if (split !== "train" && split !== "test") throw new Error(`batchlab preview: --split must be train or test, got ${JSON.stringify(split)}`);
  const n = intFlag("preview", f, "--n", 8, 1, 64);
  const seed = intFlag("preview", f, "--seed", 0, 0);
  const out = path.resolve(f.get("--out") ?? "batchlab-preview.html");
  if (!/\.(html?|png)$/i.test(out)) throw new Error(`batchlab preview: --out must end in .html or .png, got ${JSON.stringify(out)}`);

  let ds: Dataset;
  let stats = FASHION;
  let size: number;
  let prefix: T.Transform[] = [];
  if (f.has("--cifar10")) {
    ds = await cifar10({ root: f.get("--cifar10")!, split });
    stats = CIFAR;
    size = 32;
  } else if (f.has("--folder")) {
    ds = await imageFolder(f.get("--folder")!);
    stats = CIFAR;
    size = intFlag("preview", f, "--size", 96, 8, 1024);
    prefix = [T.resize(size + (size >> 3))];
  } else {
    ds = await fashionMnist({ split });
    size = 28;
  }
  const index = intFlag("preview", f, "--index", 0, 0, ds.length - 1);
  const augment = T.compose([
    ...prefix,
    T.randomResizedCrop(size, { scale: [0.6, 1] }),
    T.randomHorizontalFlip(0.5),
    T.colorJitter({ brightness: 0.4, contrast: 0.4 }),
    T.toTensor(),
    T.normalize(stats.mean, stats.std),
    T.randomErasing({ p: 0.3 }),
  ]);
  const denormalize = { mean: stats.mean, std: stats.std };
  const batchOf = Math.min(64, ds.length);
  const picked = subset(ds, Array.from({ length: batchOf }, (_, i) => (index + i) % ds.length));
  const loader = new DataLoader(picked, { batchSize: batchOf, seed, transform: augment });
  let batch: Batch | undefined;
  for await (const b of loader) batch = b;
  const grid = showBatch(batch!, { classNames: ds.classNames, denormalize });
  if (/\.png$/i.test(out)) {
    fs.writeFileSync(out, Buffer.from(grid.data["image/png"]!, "base64"));
  } else {
    const strip = showAugmentations(ds, augment, { index, n, seed, denormalize });
    fs.writeFileSync(out, standaloneHtml([strip, grid], { title: `batchlab preview: sample ${index}` }));
  }
  console.log(`wrote ${out}`);
}

async function shards(args: string[]): Promise<void> {
  const dir = args[0] !== undefined && !args[0].startsWith("--") ? args[0] : undefined;
  const f = parseFlags("shards", dir === undefined ? args : args.slice(1), ["--out", "--per-shard", "--fashion-mnist"]);
  if ((dir === undefined) === !f.has("--fashion-mnist")) throw new Error(`batchlab shards: give an image folder DIR (one subfolder per class) or --fashion-mnist train|test, one of them\n${USAGE}`);
  const out = f.get("--out");
  if (!out) throw new Error("batchlab shards: --out PREFIX is needed (shards become PREFIX-000000.tar, ...)");
  const perShard = intFlag("shards", f, "--per-shard", 1000, 1, 1 << 30);
  let ds: Dataset;
  if (dir !== undefined) ds = await imageFolder(dir);
  else {
    const split = f.get("--fashion-mnist")!;
    if (split !== "train" && split !== "test") throw new Error(`batchlab shards: --fashion-mnist must be train or test, got ${JSON.stringify(split)}`);
    ds = await fashionMnist({ split });
  }
  const r = await writeShards(ds, { out, perShard });
  console.log(`wrote ${r.samples} samples in ${r.files.length} shard${r.files.length === 1 ? "" : "s"} of up to ${perShard}`);
  if (r.classNames) console.log(`classes: ${r.classNames.map((c, k) => `${k} ${c}`).join(", ")}`);
  console.log(`read them back with: datasets.webdataset(${JSON.stringify(r.pattern)}${r.classNames ? ", { classNames }" : ""})`);
  console.log(r.pattern);
}

async function doctor(): Promise<void> {
  const cpu = engineReport();
  console.log(`node ${process.version} on ${os.platform()} ${os.arch()}, ${os.cpus().length} cores`);
  console.log(`CPU engine: ${cpu.backend} (${cpu.reason})`);
  const jpeg = jpegDecoder();
  console.log(`JPEG decoder: ${jpeg.name}${jpeg.native ? "" : ` (native decode unavailable: ${jpeg.reason})`}; PNG decoder: sharp (libvips)`);
  try {
    const cuda = require("./device/index") as { available(): boolean; unavailableReason(): string; devices(): { name: string }[] };
    if (cuda.available()) console.log(`CUDA: available: ${cuda.devices().map((d) => d.name).join(", ")}`);
    else console.log(`CUDA: unavailable (${cuda.unavailableReason()})`);
  } catch (e) {
    console.log(`CUDA: unavailable (${(e as Error).message})`);
  }
  const kernel = path.join(__dirname, "..", "dist-kernel", "main.js");
  console.log(`Jupyter kernel: ${fs.existsSync(kernel) ? `built (${kernel})` : "not built (run npm run build:ts)"}`);
  // Where the steps of common chains run (Plan.placement): fused in one engine call, or step by step.
  const chains: [string, T.Transform][] = [
    ["CIFAR training", T.compose([T.randomCrop(32, { padding: 4 }), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])])],
    ["SimCLR-style", T.compose([T.randomResizedCrop(96), T.randomHorizontalFlip(), T.colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 }), T.randomGrayscale(0.2), T.randomSolarize(128, { p: 0.2 }), T.toTensor()])],
    ["RandAugment", T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.randAugment(), T.toTensor(), T.normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])],
    ["AugMix", T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.augMix(), T.toTensor(), T.normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])],
    ["Random order", T.compose([T.randomResizedCrop(224), T.randomOrder([T.colorJitter({ brightness: 0.4 }), T.randomEqualize()]), T.toTensor()])],
  ];
  for (const [name, chain] of chains) {
    const steps = new T.Plan(chain).placement();
    console.log(`${name}: ${steps.map((st) => `${st.step} ${st.fused ? "fused" : "step by step"}`).join(", ")}`);
    for (const st of steps) if (st.why && !/^after /.test(st.why)) console.log(`  ${st.step}: ${st.why}`);
  }
}
