/**
 * The `batchlab` command: main (what `npm start` runs), doctor, bench, and the kernel's install
 * and kernel commands.
 */
import * as path from "node:path";
import * as os from "node:os";
import { fashionMnist } from "./data/index";
import { DataLoader } from "./loader/index";
import { engineReport } from "./loader/engine";
import * as T from "./transforms/index";

const USAGE = `usage: batchlab <command>
  main                 load Fashion-MNIST, run one augmented epoch, print throughput and class counts
  doctor               which engines are active (native, CUDA) and why
  install [--user | --sys-prefix | --prefix P]   register the Jupyter kernelspec "batchlab"
  kernel <connection_file>                       run the kernel (Jupyter calls this)
  help                 this text`;

export async function main(argv: string[]): Promise<void> {
  const [cmd = "help", ...rest] = argv;
  switch (cmd) {
    case "main":
      return epochDemo();
    case "doctor":
      return doctor();
    case "install":
    case "kernel": {
      const kernelCli = loadKernelCli();
      if (cmd === "install") return kernelCli.install(rest);
      if (!rest[0]) throw new Error("batchlab kernel: missing <connection_file> (Jupyter passes it as {connection_file})");
      return kernelCli.runKernel(rest[0]);
    }
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return;
    default:
      throw new Error(`batchlab: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
  }
}

function loadKernelCli(): { install(args: string[]): Promise<void>; runKernel(connectionFile: string): Promise<void> } {
  // The kernel is compiled separately (kernel/), so the library never loads Jupyter code.
  return require(path.join(__dirname, "..", "dist-kernel", "cli.js"));
}

async function epochDemo(): Promise<void> {
  const t0 = performance.now();
  const train = await fashionMnist({ split: "train" });
  const loadMs = performance.now() - t0;
  const augment = T.compose([T.randomCrop(28, { padding: 4 }), T.randomHorizontalFlip(0.5), T.toTensor(), T.normalize([0.286], [0.353])]);
  const loader = new DataLoader(train, { batchSize: 256, shuffle: true, seed: 7, transform: augment, prefetch: 2 });
  console.log(`Fashion-MNIST train: ${train.length} images ${train.shape?.join("x")} loaded in ${loadMs.toFixed(0)} ms`);
  console.log(`engine: ${loader.engine.name} (${loader.engine.reason}), ${loader.numThreads} threads`);
  const counts = new Array<number>(10).fill(0);
  for await (const batch of loader) for (const l of batch.labels) counts[l]!++;
  const s = loader.stats();
  console.log(`one epoch: ${s.batches} batches, ${s.samples} images in ${s.wallMs.toFixed(0)} ms = ${Math.round(s.samplesPerSecond).toLocaleString("en-US")} images/s`);
  console.log(`stage totals (ms): sample ${s.stages.sample.toFixed(0)}, fetch ${s.stages.fetch.toFixed(0)}, transform ${s.stages.transform.toFixed(0)}, collate ${s.stages.collate.toFixed(0)}`);
  console.log("class counts:");
  counts.forEach((c, i) => console.log(`  ${String(i).padStart(2)} ${(train.classNames?.[i] ?? "").padEnd(12)} ${c}`));
}

async function doctor(): Promise<void> {
  const cpu = engineReport();
  console.log(`node ${process.version} on ${os.platform()} ${os.arch()}, ${os.cpus().length} cores`);
  console.log(`CPU engine: ${cpu.backend} (${cpu.reason})`);
  try {
    const cuda = require("./device/index") as { available(): boolean; unavailableReason(): string; devices(): { name: string }[] };
    if (cuda.available()) console.log(`CUDA: available: ${cuda.devices().map((d) => d.name).join(", ")}`);
    else console.log(`CUDA: unavailable (${cuda.unavailableReason()})`);
  } catch (e) {
    console.log(`CUDA: unavailable (${(e as Error).message})`);
  }
}
