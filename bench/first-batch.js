#!/usr/bin/env node
"use strict";
/**
 * npm run bench:first: how long until the first shuffled batch of a very large data set?
 *
 * A virtual data set (every get(i) makes a 32 x 32 x 3 image on the spot) of N samples, batch
 * 256, shuffle on, ToTensor: the time from building the loader to holding batch 0, and the
 * resident set size then, for batchlab and for PyTorch's DataLoader (RandomSampler, which draws
 * torch.randperm(N) first), each in its own process. Prints the ratio PyTorch / batchlab.
 *
 * Options: --n N (default 300000000; at most 2^31)
 */
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const { parseArgs } = require("node:util");

const root = path.join(__dirname, "..");
const MiB = 1024 * 1024;

async function child(n) {
  const bl = require(path.join(root, "dist"));
  const ds = { length: n, get: (i) => ({ image: { data: new Uint8Array(32 * 32 * 3), height: 32, width: 32, channels: 3 }, label: i % 10 }) };
  const t0 = performance.now();
  const loader = new bl.DataLoader(ds, { batchSize: 256, shuffle: true, seed: 1, transform: bl.transforms.compose([bl.transforms.toTensor()]) });
  const it = loader[Symbol.asyncIterator]();
  const b = (await it.next()).value;
  const ms = performance.now() - t0;
  await it.return();
  process.stdout.write(JSON.stringify({ ms, rss: process.memoryUsage().rss, size: b.shape[0] }) + "\n");
}

const TORCH = `
import sys, time, resource, torch
from torch.utils.data import Dataset, DataLoader
n = int(sys.argv[1])
class Virtual(Dataset):
    def __len__(self): return n
    def __getitem__(self, i): return torch.zeros(3, 32, 32), i % 10
t0 = time.perf_counter()
x, y = next(iter(DataLoader(Virtual(), batch_size=256, shuffle=True, num_workers=0)))
ms = (time.perf_counter() - t0) * 1000
print('{"ms": %f, "rss": %d, "size": %d}' % (ms, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, x.shape[0]))
`;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, BATCHLAB_QUIET: "1", PYTHONWARNINGS: "ignore" } });
  if (r.status !== 0) return { error: (r.stderr || r.stdout || `exit ${r.status}`).trim().split("\n").pop() };
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

function main() {
  const { values } = parseArgs({ options: { n: { type: "string", default: "300000000" }, child: { type: "string" } } });
  if (values.child) return child(Number(values.child));
  const n = Number(values.n);
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 31) throw new Error(`--n: expected an integer from 1 to 2^31, received ${values.n}`);
  const ours = run(process.execPath, [__filename, "--child", String(n)]);
  const py = "/usr/bin/python3";
  const torch = spawnSync(py, ["-c", "import torch"]).status === 0 ? run(py, ["-c", TORCH, String(n)]) : { error: "PyTorch not installed (Debian's python3-torch: npm run bench installs it)" };
  const line = (name, r) => (r.error ? `${name}: ${r.error}` : `${name}: first batch of ${r.size} after ${r.ms.toFixed(1)} ms, peak RSS ${(r.rss / MiB).toFixed(0)} MiB`);
  console.log(`virtual data set of ${n} samples, batch 256, shuffle`);
  console.log(line("batchlab", ours));
  console.log(line("PyTorch ", torch));
  if (!ours.error && !torch.error) console.log(`time to first batch: PyTorch / batchlab = ${(torch.ms / ours.ms).toFixed(0)}x; peak RSS ratio ${(torch.rss / ours.rss).toFixed(1)}x`);
}

main();
