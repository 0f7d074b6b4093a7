#!/usr/bin/env node
"use strict";
/**
 * Kernel start-up: time from spawning the kernel process to the execute_reply of its first
 * cell (after a kernel_info round trip, as a front end does), for the batchlab kernel and, in the
 * same run, for plain tslab (the base it is built on). Prints the medians, the ratio between the
 * two and the ratio to the 3 s target.
 *
 *   node bench/kernel.js [--runs N]
 */
const path = require("node:path");
const fs = require("node:fs");
const os = require("node:os");
const { spawnKernel, ROOT, buildKernel } = require("../test/helpers/jupyter");

const TARGET_MS = 3000;

function within(ms, p, what, k) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (kernel pid ${k.proc.pid}, exit ${k.proc.exitCode}/${k.proc.signalCode}); kernel output:\n${k.stderr()}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

async function once(argv, cwd, code) {
  const t0 = performance.now();
  const k = await spawnKernel({ argv, cwd });
  try {
    const tInfo = (await within(30000, k.client.ready(30000), "kernel_info_request", k)) - t0;
    const r = await within(30000, k.client.execute(code), "first execute_request", k);
    const tFirst = performance.now() - t0;
    if (r.reply.content.status !== "ok") throw new Error(`first cell failed: ${JSON.stringify(r.reply.content)}\n${k.stderr()}`);
    return { info: tInfo, first: tFirst };
  } finally {
    await k.stop();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const runsArg = process.argv.indexOf("--runs");
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
  buildKernel();
  // A notebook directory without node_modules, as a user's would be.
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-bench-"));
  const variants = [
    { name: "batchlab", argv: undefined, code: "const xs: number[] = [1, 2, 3];\nxs.map((x) => x * 2)" },
    {
      name: "tslab",
      argv: [process.execPath, path.join(ROOT, "node_modules", "tslab", "bin", "tslab"), "kernel", "--config-path", "{connection_file}"],
      code: "const xs: number[] = [1, 2, 3];\nxs.map((x) => x * 2)",
    },
  ];
  const results = {};
  for (const v of variants) results[v.name] = { info: [], first: [] };
  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      const r = await once(v.argv, cwd, v.code);
      results[v.name].info.push(r.info);
      results[v.name].first.push(r.first);
    }
  }
  fs.rmSync(cwd, { recursive: true, force: true });
  console.log(`kernel start-up, ${runs} runs each, median (${os.cpus().length} cores, node ${process.version})`);
  for (const v of variants) {
    const r = results[v.name];
    console.log(`  ${v.name.padEnd(9)} kernel_info_reply ${median(r.info).toFixed(0).padStart(5)} ms   first execute_reply ${median(r.first).toFixed(0).padStart(5)} ms`);
  }
  const b = median(results.batchlab.first);
  const t = median(results.tslab.first);
  console.log(`  batchlab / tslab (first cell): ${(b / t).toFixed(2)}x`);
  console.log(`  batchlab / target ${TARGET_MS} ms: ${(b / TARGET_MS).toFixed(2)}x ${b <= TARGET_MS ? "(within target)" : "(OVER target)"}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
