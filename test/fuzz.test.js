"use strict";
// The seeded mutation fuzzer (scripts/fuzz.js) over every file format of src/data (tar shards too): at least
// 10,000 mutated files, each ending in a correct dataset or a typed batchlab error that names
// the file, with no hang, crash or allocation beyond a fixed multiple of the file size or the
// pixel cap. BATCHLAB_FUZZ_SEED / BATCHLAB_FUZZ_CASES override the seed and the case count;
// `node scripts/fuzz.js --cases N --seed S` runs longer and prints the table.
const test = require("node:test");
const assert = require("node:assert/strict");
const { runFuzz, table, mutate, rng } = require("../scripts/fuzz.js");

const SEED = Number(process.env.BATCHLAB_FUZZ_SEED ?? 20240611);
const CASES = Number(process.env.BATCHLAB_FUZZ_CASES ?? 10500);

test("fuzz: mutations are a function of (seed, format, case)", () => {
  const base = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz");
  const a = mutate(base, rng(5, "idx", 17), [{ at: 4, width: 4 }]);
  const b = mutate(base, rng(5, "idx", 17), [{ at: 4, width: 4 }]);
  const c = mutate(base, rng(5, "idx", 18), [{ at: 4, width: 4 }]);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.buf, c.buf);
  assert.equal(base.toString(), "0123456789abcdefghijklmnopqrstuvwxyz", "the seed file is not modified");
});

test(`fuzz: ${CASES} mutated IDX, npy, CIFAR-10, PNG and JPEG files, WebDataset shards and custom-dataset samples end in a dataset or a typed error naming the file or sample`, { timeout: 15 * 60 * 1000 }, async () => {
  const summary = await runFuzz({ cases: CASES, seed: SEED });
  const report = table(summary);
  process.stdout.write(report + "\n");
  assert.ok(summary.cases >= CASES, `ran ${summary.cases} cases`);
  assert.deepEqual(summary.failures, [], report);
  assert.ok(summary.rows.length >= 8, "every format ran");
  for (const r of summary.rows) {
    assert.ok(r.outcomes.ok > 0, `${r.format}: some mutations still load`);
    const refusal = r.format.startsWith("custom") ? "SampleError" : "FileFormatError";
    assert.ok(r.outcomes[refusal] > 0, `${r.format}: some are refused (${refusal})`);
    assert.ok(r.maxRSS > 0, `${r.format}: the children reported their peak RSS`);
  }
  assert.deepEqual(summary.skipped, [], "every format is enabled");
});
