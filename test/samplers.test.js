"use strict";
// Samplers (src/sampling/samplers.ts), property-tested over several seeds. Frequency checks
// compute a chi-square p-value (test/helpers/stats.js) and fail below ALPHA = 1e-6 per check:
// with the few dozen checks here a correct sampler fails the suite with probability < 1e-4,
// while wrong weights or a biased shuffle give p-values far below that at these sample sizes.
const test = require("node:test");
const assert = require("node:assert/strict");
const S = require("../dist/sampling");
const { permutation } = require("../dist/sampling/rng");
const { OptionError } = require("../dist/errors");
const { assertFits, uniform, normalize } = require("./helpers/stats");

const SEEDS = [0, 1, 7, 123456789, 2 ** 40 + 3];
const DISPLAY = Symbol.for("Jupyter.display");

const sorted = (a) => Array.from(a).sort((x, y) => x - y);
const range = (n) => Array.from({ length: n }, (_, i) => i);
const tally = (xs, k) => {
  const c = new Array(k).fill(0);
  for (const x of xs) c[x]++;
  return c;
};

test("SequentialSampler yields 0..n-1 in every epoch", () => {
  for (const n of [0, 1, 17]) {
    const s = new S.SequentialSampler(n);
    assert.equal(s.length, n);
    for (const e of [0, 1, 9]) assert.deepEqual(Array.from(s.indices(e)), range(n));
    s.setEpoch(4);
    assert.equal(s.epoch, 4);
    assert.deepEqual([...s], range(n));
  }
});

test("RandomSampler: each index exactly once per epoch, and it is permutation(n, seed, epoch)", () => {
  for (const seed of SEEDS) {
    for (const n of [1, 2, 10, 257]) {
      const s = new S.RandomSampler(n, { seed });
      assert.equal(s.length, n);
      for (const e of [0, 1, 5]) {
        const idx = s.indices(e);
        assert.deepEqual(sorted(idx), range(n), `seed ${seed}, n ${n}, epoch ${e}`);
        assert.deepEqual(idx, permutation(n, seed, e));
      }
    }
  }
});

test("RandomSampler is a pure function of (seed, epoch): same inputs, same order; new epoch or seed, new order", () => {
  for (const seed of SEEDS) {
    const a = new S.RandomSampler(257, { seed });
    const b = new S.RandomSampler(257, { seed });
    const e3 = a.indices(3);
    a.indices(1);
    e3[0] = -1; // the caller's copy; must not leak back
    assert.deepEqual(a.indices(3), b.indices(3), "same seed and epoch, same order, whatever was called before");
    // Two independent uniform orders of 257 agree with probability 1/257!.
    assert.notDeepEqual(a.indices(0), a.indices(1), "a new epoch, a new order");
    assert.notDeepEqual(a.indices(0), new S.RandomSampler(257, { seed: seed + 1 }).indices(0), "a new seed, a new order");
    a.setEpoch(2);
    assert.equal(a.epoch, 2);
    assert.deepEqual([...a], Array.from(a.indices(2)), "the iterator uses setEpoch's epoch");
  }
});

test("RandomSampler without a seed records a random one that reproduces the order", () => {
  const s = new S.RandomSampler(50);
  assert.ok(Number.isSafeInteger(s.seed) && s.seed >= 0);
  assert.deepEqual(new S.RandomSampler(50, { seed: s.seed }).indices(2), s.indices(2));
  const seeds = new Set(range(8).map(() => new S.RandomSampler(5).seed));
  assert.ok(seeds.size > 1, "fresh seeds differ (8 draws of 53 bits)");
});

test("RandomSampler: numSamples above n concatenates permutations; below n takes a prefix", () => {
  for (const seed of SEEDS) {
    const n = 10;
    const more = new S.RandomSampler(n, { seed, numSamples: 25 }).indices(1);
    assert.equal(more.length, 25);
    assert.deepEqual(sorted(more.slice(0, 10)), range(n));
    assert.deepEqual(sorted(more.slice(10, 20)), range(n));
    assert.equal(new Set(more.slice(20)).size, 5, "the last partial round has no repeats");
    assert.deepEqual(more.slice(0, 10), permutation(n, seed, 1), "round 0 is the epoch's permutation");
    const fewer = new S.RandomSampler(n, { seed, numSamples: 4 }).indices(1);
    assert.deepEqual(fewer, permutation(n, seed, 1).slice(0, 4));
  }
});

test("RandomSampler orders are uniform: all 4! orders equally often across epochs", () => {
  for (const seed of SEEDS.slice(0, 3)) {
    const s = new S.RandomSampler(4, { seed });
    const counts = new Map();
    for (let e = 0; e < 24 * 400; e++) {
      const k = s.indices(e).join("");
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    assert.equal(counts.size, 24);
    assertFits([...counts.values()], uniform(24), `seed ${seed}: orders of 4`);
  }
});

test("RandomSampler with replacement: uniform draws that repeat", () => {
  for (const seed of SEEDS) {
    const s = new S.RandomSampler(7, { seed, replacement: true, numSamples: 14000 });
    const idx = s.indices(0);
    assert.equal(idx.length, 14000);
    assert.ok(idx.every((i) => i >= 0 && i < 7));
    assertFits(tally(idx, 7), uniform(7), `seed ${seed}: RandomSampler(7, replacement)`);
    // Defaults to n draws; 20 draws from 20 without a repeat has probability 20!/20^20 < 1e-7.
    const small = new S.RandomSampler(20, { seed, replacement: true }).indices(0);
    assert.equal(small.length, 20);
    assert.ok(new Set(small).size < 20, "with replacement, some index repeats");
    assert.deepEqual(s.indices(0), idx);
    assert.notDeepEqual(s.indices(1).slice(0, 100), idx.slice(0, 100));
  }
});

test("SubsetRandomSampler shuffles exactly its indices, uniformly", () => {
  for (const seed of SEEDS) {
    const subset = [5, 9, 2, 7, 2, 40];
    const s = new S.SubsetRandomSampler(subset, { seed });
    assert.equal(s.length, 6);
    for (const e of [0, 1, 2]) assert.deepEqual(sorted(s.indices(e)), sorted(subset), "the same multiset every epoch");
    assert.deepEqual(new S.SubsetRandomSampler(Int32Array.from(subset), { seed }).indices(4), s.indices(4));
    const firsts = new Map();
    const t = new S.SubsetRandomSampler([11, 12, 13, 14, 15], { seed });
    for (let e = 0; e < 5000; e++) {
      const f = t.indices(e)[0];
      firsts.set(f, (firsts.get(f) ?? 0) + 1);
    }
    assert.deepEqual(sorted(firsts.keys()), [11, 12, 13, 14, 15]);
    assertFits([...firsts.values()], uniform(5), `seed ${seed}: first index of the subset`);
  }
  assert.equal(new S.SubsetRandomSampler([]).length, 0);
});

test("WeightedRandomSampler with replacement draws in proportion to the weights", () => {
  const w = [1, 2, 0, 3, 4, 0, 10];
  const positive = [0, 1, 3, 4, 6];
  // A longer, uneven weight vector too: w_i = 1 + (i * 37) % 11.
  const long = range(40).map((i) => 1 + ((i * 37) % 11));
  for (const seed of SEEDS) {
    const idx = new S.WeightedRandomSampler(w, 40000, { seed }).indices(2);
    const c = tally(idx, w.length);
    assert.equal(c[2] + c[5], 0, "zero weights are never drawn");
    assertFits(positive.map((i) => c[i]), normalize(positive.map((i) => w[i])), `seed ${seed}: weights ${w}`);
    const l = new S.WeightedRandomSampler(Float32Array.from(long), 40000, { seed }).indices(0);
    assertFits(tally(l, 40), normalize(long), `seed ${seed}: 40 uneven weights`);
  }
  // A trailing zero weight is never drawn, even at the top of the range.
  const trailing = new S.WeightedRandomSampler([1, 1, 0], 5000, { seed: 3 }).indices(0);
  assert.ok(!trailing.includes(2));
});

test("WeightedRandomSampler without replacement: distinct indices, in sequential weighted order", () => {
  for (const seed of SEEDS) {
    const s = new S.WeightedRandomSampler([0, 1, 5, 1, 0, 2], 4, { replacement: false, seed });
    for (const e of [0, 1, 2, 3]) {
      const idx = s.indices(e);
      assert.deepEqual(sorted(idx), [1, 2, 3, 5], "all four positive weights, each once, zeros never");
    }
    // First two picks: P(i then j) = w_i / W * w_j / (W - w_i), the law of drawing one at a time.
    const w = [1, 2, 3, 4];
    const t = new S.WeightedRandomSampler(w, 2, { replacement: false, seed });
    const pairs = [];
    const probs = [];
    for (const i of range(4)) for (const j of range(4)) if (i !== j) {
      pairs.push(`${i},${j}`);
      probs.push((w[i] / 10) * (w[j] / (10 - w[i])));
    }
    const counts = new Map(pairs.map((p) => [p, 0]));
    for (let e = 0; e < 20000; e++) {
      const [i, j] = t.indices(e);
      assert.notEqual(i, j);
      counts.set(`${i},${j}`, counts.get(`${i},${j}`) + 1);
    }
    assertFits(pairs.map((p) => counts.get(p)), probs, `seed ${seed}: ordered first two picks`);
  }
});

test("ClassBalancedSampler gives ~uniform class frequencies on a skewed label set", () => {
  const labels = [...new Array(900).fill(0), ...new Array(90).fill(1), ...new Array(10).fill(2)];
  for (const seed of SEEDS) {
    const s = new S.ClassBalancedSampler(labels, { seed });
    assert.equal(s.length, labels.length, "numSamples defaults to labels.length");
    assert.equal(s.seed, seed);
    const big = new S.ClassBalancedSampler(labels, { seed, numSamples: 30000 });
    const idx = big.indices(1);
    assertFits(tally(Array.from(idx, (i) => labels[i]), 3), uniform(3), `seed ${seed}: class frequencies`);
    // Within a class, samples are equally likely: the 10 members of class 2.
    const rare = Array.from(idx).filter((i) => labels[i] === 2).map((i) => i - 990);
    assertFits(tally(rare, 10), uniform(10), `seed ${seed}: members of the rare class`);
  }
  const odd = new S.ClassBalancedSampler([-1, 7, 7, 100, 100, 100], { seed: 2, numSamples: 9000 });
  assert.deepEqual([...odd.classCounts].sort((a, b) => a[0] - b[0]), [[-1, 1], [7, 2], [100, 3]]);
  const byLabel = { "-1": 0, 7: 1, 100: 2 };
  const ls = [-1, 7, 7, 100, 100, 100];
  assertFits(tally(Array.from(odd.indices(0), (i) => byLabel[ls[i]]), 3), uniform(3), "any integer labels");
});

// PyTorch's DistributedSampler.__iter__, transcribed: the reference the sampler must match.
function torchDistributed(base, n, rank, worldSize, dropLast) {
  const numSamples = dropLast && n % worldSize !== 0 ? Math.ceil((n - worldSize) / worldSize) : Math.ceil(n / worldSize);
  const totalSize = numSamples * worldSize;
  let indices = Array.from(base);
  if (!dropLast) {
    const padding = totalSize - indices.length;
    if (padding <= indices.length) indices = indices.concat(indices.slice(0, padding));
    else {
      let rep = [];
      for (let k = 0; k < Math.ceil(padding / indices.length); k++) rep = rep.concat(indices);
      indices = indices.concat(rep.slice(0, padding));
    }
  } else indices = indices.slice(0, totalSize);
  const mine = [];
  for (let k = rank; k < totalSize; k += worldSize) mine.push(indices[k]);
  return mine;
}

test("DistributedSampler matches PyTorch's split, padding and dropLast for every rank", () => {
  for (const n of [1, 2, 5, 7, 10, 16, 33]) {
    for (const worldSize of [1, 2, 3, 4, 5, 8]) {
      for (const dropLast of [false, true]) {
        for (const shuffle of [false, true]) {
          const seed = SEEDS[(n + worldSize) % SEEDS.length];
          const epoch = n % 3;
          const base = shuffle ? permutation(n, seed, epoch) : range(n);
          for (let rank = 0; rank < worldSize; rank++) {
            const s = new S.DistributedSampler(n, { rank, worldSize, dropLast, shuffle, seed });
            const what = `n ${n}, rank ${rank} of ${worldSize}, dropLast ${dropLast}, shuffle ${shuffle}`;
            assert.equal(s.length, dropLast ? Math.floor(n / worldSize) : Math.ceil(n / worldSize), what);
            assert.deepEqual(Array.from(s.indices(epoch)), torchDistributed(base, n, rank, worldSize, dropLast), what);
          }
        }
      }
    }
  }
});

test("DistributedSampler ranks agree on the permutation, are disjoint, and cover the epoch", () => {
  for (const seed of SEEDS) {
    for (const [n, worldSize] of [[100, 4], [10, 4], [3, 8], [97, 7]]) {
      for (const dropLast of [false, true]) {
        const ranks = range(worldSize).map((rank) => new S.DistributedSampler(n, { rank, worldSize, seed, dropLast }));
        for (const epoch of [0, 1]) {
          const global = ranks[0].globalIndices(epoch);
          ranks.forEach((r) => assert.deepEqual(r.globalIndices(epoch), global, "every rank computes the same list"));
          assert.deepEqual(global.slice(0, Math.min(n, global.length)), permutation(n, seed, epoch).slice(0, Math.min(n, global.length)));
          const all = ranks.flatMap((r) => Array.from(r.indices(epoch)));
          assert.equal(all.length, ranks[0].totalSize);
          const counts = tally(all, n);
          if (dropLast) {
            assert.ok(counts.every((c) => c <= 1), "dropLast: no index twice");
            assert.equal(all.length, worldSize * Math.floor(n / worldSize));
          } else {
            assert.ok(counts.every((c) => c >= 1), "the union covers the epoch");
            // padding repeats the list from its start: index global[k] appears once per k' = k mod n
            const pad = all.length - n;
            const expected = new Array(n).fill(0);
            for (let k = 0; k < all.length; k++) expected[global[k % n]]++;
            assert.deepEqual(counts, expected, `padding of ${pad} repeats the start of the list`);
          }
          if (n % worldSize === 0 || dropLast) {
            for (let a = 0; a < worldSize; a++) for (let b = a + 1; b < worldSize; b++) {
              const sb = new Set(ranks[b].indices(epoch));
              assert.ok(!ranks[a].indices(epoch).some((i) => sb.has(i)), `ranks ${a} and ${b} are disjoint`);
            }
          }
        }
        if (n >= 10) assert.notDeepEqual(ranks[0].globalIndices(0), ranks[0].globalIndices(1), "a new epoch, a new shuffle");
      }
    }
  }
});

test("DistributedSampler defaults: seed 0, shuffle, no dropLast; setEpoch drives the iterator", () => {
  const s = new S.DistributedSampler(20, { rank: 1, worldSize: 3, env: {} });
  assert.equal(s.seed, 0);
  assert.equal(s.shuffle, true);
  assert.equal(s.dropLast, false);
  assert.equal(s.length, 7);
  assert.equal(s.source, "options");
  assert.deepEqual(s.indices(0), new S.DistributedSampler(20, { rank: 1, worldSize: 3, seed: 0 }).indices(0));
  s.setEpoch(5);
  assert.deepEqual([...s], Array.from(s.indices(5)));
  const alone = new S.DistributedSampler(6, { env: {} });
  assert.equal(alone.rank, 0);
  assert.equal(alone.worldSize, 1);
  assert.deepEqual(sorted(alone.indices(0)), range(6));
  assert.equal(new S.DistributedSampler(2, { rank: 4, worldSize: 5, dropLast: true }).length, 0);
  assert.ok(Object.is(new S.DistributedSampler(2, { rank: 0, worldSize: 5, dropLast: true }).length, 0), "0, not -0");
});

test("distributedEnv reads torchrun, Slurm, Open MPI and MPICH/Intel MPI variables", () => {
  const cases = [
    [{ RANK: "3", WORLD_SIZE: "8", LOCAL_RANK: "1" }, { rank: 3, worldSize: 8, localRank: 1, source: "torchrun" }],
    [{ SLURM_PROCID: "5", SLURM_NTASKS: "6", SLURM_LOCALID: "2" }, { rank: 5, worldSize: 6, localRank: 2, source: "slurm" }],
    [{ SLURM_PROCID: "1", SLURM_NPROCS: "2" }, { rank: 1, worldSize: 2, localRank: 0, source: "slurm" }],
    [{ OMPI_COMM_WORLD_RANK: "1", OMPI_COMM_WORLD_SIZE: "2", OMPI_COMM_WORLD_LOCAL_RANK: "1" }, { rank: 1, worldSize: 2, localRank: 1, source: "openmpi" }],
    [{ PMI_RANK: "2", PMI_SIZE: "4", MPI_LOCALRANKID: "0" }, { rank: 2, worldSize: 4, localRank: 0, source: "mpich/intel" }],
    [{}, { rank: 0, worldSize: 1, localRank: 0, source: "none" }],
    [{ RANK: "1" }, { rank: 0, worldSize: 1, localRank: 0, source: "none" }], // a lone RANK is not a launcher
    // torchrun inside a Slurm allocation: torchrun's per-process rank wins
    [{ RANK: "7", WORLD_SIZE: "16", LOCAL_RANK: "3", SLURM_PROCID: "1", SLURM_NTASKS: "2" }, { rank: 7, worldSize: 16, localRank: 3, source: "torchrun" }],
    // mpirun inside sbatch: every process inherits the batch step's SLURM_PROCID=0
    [{ OMPI_COMM_WORLD_RANK: "3", OMPI_COMM_WORLD_SIZE: "4", SLURM_PROCID: "0", SLURM_NTASKS: "4" }, { rank: 3, worldSize: 4, localRank: 0, source: "openmpi" }],
  ];
  for (const [env, want] of cases) assert.deepEqual(S.distributedEnv(env), want, JSON.stringify(env));
  for (const [env, want] of cases.slice(0, 5)) {
    const s = new S.DistributedSampler(100, { env });
    assert.equal(s.rank, want.rank);
    assert.equal(s.worldSize, want.worldSize);
    assert.equal(s.localRank, want.localRank);
    assert.equal(s.source, `${want.source} environment`);
  }
  const mixed = new S.DistributedSampler(100, { rank: 1, env: { RANK: "3", WORLD_SIZE: "4" } });
  assert.equal(mixed.rank, 1, "an option wins over the environment");
  assert.equal(mixed.worldSize, 4);
  assert.equal(mixed.source, "options and torchrun environment");
  // The default argument is process.env.
  const keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK"];
  const saved = keys.map((k) => process.env[k]);
  try {
    Object.assign(process.env, { RANK: "2", WORLD_SIZE: "3", LOCAL_RANK: "0" });
    assert.deepEqual(S.distributedEnv(), { rank: 2, worldSize: 3, localRank: 0, source: "torchrun" });
    assert.equal(new S.DistributedSampler(9).rank, 2);
  } finally {
    keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  }
});

/** assert.throws on an OptionError whose message (not String(error)) matches re. */
const throwsMessage = (fn, re, what) => assert.throws(fn, (e) => e instanceof OptionError && re.test(e.message), what);

test("bad launcher variables are rejected, naming the variable and the launcher", () => {
  const bad = [
    [{ RANK: "x", WORLD_SIZE: "4" }, /^environment variable RANK: expected an integer >= 0 \(set by torchrun\), received "x"$/],
    [{ RANK: "1", WORLD_SIZE: "0" }, /^environment variable WORLD_SIZE: expected an integer >= 1 \(set by torchrun\), received "0"$/],
    [{ RANK: "", WORLD_SIZE: "2" }, /^environment variable RANK: .*received ""$/],
    [{ RANK: "0", WORLD_SIZE: "2", LOCAL_RANK: "-1" }, /^environment variable LOCAL_RANK: expected an integer >= 0 \(set by torchrun\)/],
    [{ SLURM_PROCID: "6", SLURM_NTASKS: "6" }, /^environment variable SLURM_PROCID: expected an integer less than SLURM_NTASKS=6 \(set by slurm\), received "6"$/],
    [{ OMPI_COMM_WORLD_RANK: "1.5", OMPI_COMM_WORLD_SIZE: "2" }, /^environment variable OMPI_COMM_WORLD_RANK: .*\(set by openmpi\)/],
    [{ PMI_RANK: "0", PMI_SIZE: "two" }, /^environment variable PMI_SIZE: .*\(set by mpich\/intel\)/],
  ];
  for (const [env, re] of bad) {
    throwsMessage(() => S.distributedEnv(env), re, JSON.stringify(env));
    throwsMessage(() => new S.DistributedSampler(10, { env }), re, JSON.stringify(env));
  }
  // A rank from one place that does not fit a world size from another says where each came from.
  throwsMessage(() => new S.DistributedSampler(10, { worldSize: 2, env: { RANK: "3", WORLD_SIZE: "4" } }),
    /^DistributedSampler rank from environment variable RANK \(torchrun\): expected an integer in \[0, 1\] \(worldSize 2 from DistributedSampler\.worldSize\), received 3$/);
  throwsMessage(() => new S.DistributedSampler(10, { rank: 5, env: { SLURM_PROCID: "0", SLURM_NTASKS: "4" } }),
    /^DistributedSampler\.rank: expected an integer in \[0, 3\] \(worldSize 4 from environment variable SLURM_NTASKS \(slurm\)\), received 5$/);
  throwsMessage(() => new S.DistributedSampler(10, { rank: 1, env: {} }),
    /^DistributedSampler\.rank: expected an integer in \[0, 0\] \(worldSize 1 from the default \(no launcher environment found\)\), received 1$/);
  // With both options given, the environment is not read at all.
  assert.equal(new S.DistributedSampler(10, { rank: 0, worldSize: 2, env: { RANK: "x", WORLD_SIZE: "y" } }).worldSize, 2);
});

test("BatchSampler: sizes, count and dropLast for every n and batch size", () => {
  for (const n of range(14)) {
    for (const batchSize of [1, 2, 3, 5, 20]) {
      for (const dropLast of [false, true]) {
        const sampler = new S.RandomSampler(n, { seed: n + batchSize });
        const b = new S.BatchSampler(sampler, batchSize, dropLast);
        const what = `n ${n}, batchSize ${batchSize}, dropLast ${dropLast}`;
        const batches = b.batches(3);
        assert.equal(b.length, dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize), what);
        assert.equal(batches.length, b.length, what);
        // every batch is full except, without dropLast, the last, which holds the remainder
        const lastSize = dropLast || n % batchSize === 0 ? batchSize : n % batchSize;
        batches.forEach((x, k) => {
          assert.ok(x instanceof Int32Array);
          assert.equal(x.length, k < batches.length - 1 ? batchSize : lastSize, `${what}: batch ${k}`);
        });
        const flat = batches.flatMap((x) => Array.from(x));
        const all = Array.from(sampler.indices(3));
        assert.deepEqual(flat, dropLast ? all.slice(0, b.length * batchSize) : all, `${what}: the sampler's order, unchanged`);
      }
    }
  }
  const b = new S.BatchSampler(new S.RandomSampler(10, { seed: 1 }), 4);
  assert.equal(b.dropLast, false, "dropLast defaults to false");
  b.setEpoch(2);
  assert.equal(b.sampler.epoch, 2);
  assert.deepEqual([...b].map((x) => Array.from(x)), b.batches(2).map((x) => Array.from(x)), "the iterator uses the sampler's epoch");
  const first = b.batches(2)[0];
  first[0] = -1;
  assert.notEqual(b.batches(2)[0][0], -1, "batches are fresh arrays");
});

test("every bad option is an OptionError that names the option and the value", () => {
  const seq = new S.SequentialSampler(3);
  const cases = [
    [() => new S.SequentialSampler(-1), "SequentialSampler(n)", "-1"],
    [() => new S.SequentialSampler(2.5), "SequentialSampler(n)", "2.5"],
    [() => seq.setEpoch(-1), "SequentialSampler.setEpoch(epoch)", "-1"],
    [() => seq.indices(1.5), "SequentialSampler.indices(epoch)", "1.5"],
    [() => seq.setEpoch(2 ** 32), "SequentialSampler.setEpoch(epoch)", String(2 ** 32)],
    [() => new S.RandomSampler(-3), "RandomSampler(n)", "-3"],
    [() => new S.RandomSampler(0, { numSamples: 2 }), "RandomSampler(n)", "0"],
    [() => new S.RandomSampler(5, { seed: -1 }), "RandomSampler.seed", "-1"],
    [() => new S.RandomSampler(5, { seed: 1.5 }), "RandomSampler.seed", "1.5"],
    [() => new S.RandomSampler(5, { replacement: "yes" }), "RandomSampler.replacement", '"yes"'],
    [() => new S.RandomSampler(5, { numSamples: 0 }), "RandomSampler.numSamples", "0"],
    [() => new S.RandomSampler(5, { shuffle: true }), "RandomSampler.shuffle", "true"],
    [() => new S.RandomSampler(5, { seed: 1 }).indices(-2), "RandomSampler.indices(epoch)", "-2"],
    [() => new S.SubsetRandomSampler("abc"), "SubsetRandomSampler(indices)", '"abc"'],
    [() => new S.SubsetRandomSampler([1, -2]), "SubsetRandomSampler(indices)[1]", "-2"],
    [() => new S.SubsetRandomSampler([1, 0.5]), "SubsetRandomSampler(indices)[1]", "0.5"],
    [() => new S.SubsetRandomSampler([2 ** 31]), "SubsetRandomSampler(indices)[0]", String(2 ** 31)],
    [() => new S.SubsetRandomSampler([1], { seed: "1" }), "SubsetRandomSampler.seed", '"1"'],
    [() => new S.WeightedRandomSampler([], 2), "WeightedRandomSampler(weights)", "[]"],
    [() => new S.WeightedRandomSampler([1, -1], 2), "WeightedRandomSampler(weights)[1]", "-1"],
    [() => new S.WeightedRandomSampler([1, NaN], 2), "WeightedRandomSampler(weights)[1]", "NaN"],
    [() => new S.WeightedRandomSampler([1, Infinity], 2), "WeightedRandomSampler(weights)[1]", "Infinity"],
    [() => new S.WeightedRandomSampler([1, "2"], 2), "WeightedRandomSampler(weights)[1]", '"2"'],
    [() => new S.WeightedRandomSampler([0, 0], 2), "WeightedRandomSampler(weights)", "[0,0]"],
    [() => new S.WeightedRandomSampler([1e308, 1e308], 2), "WeightedRandomSampler(weights)", "[1e+308,1e+308]"],
    [() => new S.WeightedRandomSampler([1, 2], 0), "WeightedRandomSampler(numSamples)", "0"],
    [() => new S.WeightedRandomSampler([0, 1, 2], 3, { replacement: false }), "WeightedRandomSampler(numSamples)", "3"],
    [() => new S.WeightedRandomSampler([1, 2], 2, { replacement: 0 }), "WeightedRandomSampler.replacement", "0"],
    [() => new S.WeightedRandomSampler([1, 2], 2, { seed: -5 }), "WeightedRandomSampler.seed", "-5"],
    [() => new S.ClassBalancedSampler([]), "ClassBalancedSampler(labels)", "[]"],
    [() => new S.ClassBalancedSampler([0, 1.5]), "ClassBalancedSampler(labels)[1]", "1.5"],
    [() => new S.ClassBalancedSampler([0, "cat"]), "ClassBalancedSampler(labels)[1]", '"cat"'],
    [() => new S.ClassBalancedSampler([0, 1], { seed: -1 }), "ClassBalancedSampler.seed", "-1"],
    [() => new S.ClassBalancedSampler([0, 1], { numSamples: 0 }), "ClassBalancedSampler.numSamples", "0"],
    [() => new S.ClassBalancedSampler([0, 1], { replacement: false }), "ClassBalancedSampler.replacement", "false"],
    [() => new S.DistributedSampler(-1, { rank: 0, worldSize: 1 }), "DistributedSampler(n)", "-1"],
    [() => new S.DistributedSampler(10, { rank: -1, worldSize: 2 }), "DistributedSampler.rank", "-1"],
    [() => new S.DistributedSampler(10, { rank: 0.5, worldSize: 2 }), "DistributedSampler.rank", "0.5"],
    [() => new S.DistributedSampler(10, { rank: 4, worldSize: 4 }), "DistributedSampler.rank", "4"],
    [() => new S.DistributedSampler(10, { rank: 0, worldSize: 0 }), "DistributedSampler.worldSize", "0"],
    [() => new S.DistributedSampler(10, { rank: 0, worldSize: 2, shuffle: 1 }), "DistributedSampler.shuffle", "1"],
    [() => new S.DistributedSampler(10, { rank: 0, worldSize: 2, seed: -1 }), "DistributedSampler.seed", "-1"],
    [() => new S.DistributedSampler(10, { rank: 0, worldSize: 2, dropLast: "no" }), "DistributedSampler.dropLast", '"no"'],
    [() => new S.DistributedSampler(10, { env: "RANK=1" }), "DistributedSampler.env", '"RANK=1"'],
    [() => new S.DistributedSampler(10, { world_size: 2 }), "DistributedSampler.world_size", "2"],
    [() => S.distributedEnv(null), "distributedEnv(env)", "null"],
    [() => new S.BatchSampler([1, 2, 3], 2), "BatchSampler(sampler)", "[1,2,3]"],
    [() => new S.BatchSampler(seq, 0), "BatchSampler(batchSize)", "0"],
    [() => new S.BatchSampler(seq, 1.5), "BatchSampler(batchSize)", "1.5"],
    [() => new S.BatchSampler(seq, 2, "true"), "BatchSampler(dropLast)", '"true"'],
  ];
  for (const [fn, option, received] of cases) {
    assert.throws(fn, (e) => {
      assert.ok(e instanceof OptionError, `${option}: got ${e}`);
      assert.equal(e.code, "ERR_BATCHLAB_OPTION");
      assert.equal(e.option, option);
      assert.ok(e.message.startsWith(`${option}: expected `), e.message);
      assert.ok(e.message.endsWith(`received ${received}`), e.message);
      return true;
    });
  }
});

test("every sampler shows a text summary and an HTML table in Jupyter", () => {
  const all = [
    [new S.SequentialSampler(5), /^SequentialSampler\(n=5\): 5 indices per epoch/],
    [new S.RandomSampler(5, { seed: 3 }), /^RandomSampler\(n=5, seed=3, without replacement\): 5 indices/],
    [new S.SubsetRandomSampler([1, 2], { seed: 4 }), /^SubsetRandomSampler\(2 indices, seed=4\)/],
    [new S.WeightedRandomSampler([1, 2], 6, { seed: 5 }), /^WeightedRandomSampler\(2 weights, with replacement, seed=5\): 6 indices/],
    [new S.ClassBalancedSampler([0, 0, 1], { seed: 6 }), /^ClassBalancedSampler\(3 labels in 2 classes, seed=6\)/],
    [new S.DistributedSampler(10, { rank: 1, worldSize: 4 }), /^DistributedSampler\(n=10, rank 1 of 4 \(options\).*2 padded\): 3 indices/],
    [new S.BatchSampler(new S.SequentialSampler(10), 4, true), /^BatchSampler\(batchSize=4, dropLast=true\): 2 batches per epoch over SequentialSampler/],
  ];
  for (const [s, re] of all) {
    const bundle = s[DISPLAY]();
    assert.deepEqual(Object.keys(bundle), ["text/plain", "text/html"]);
    assert.match(bundle["text/plain"], re);
    assert.match(bundle["text/html"], new RegExp(`^<table class="batchlab-sampler"><caption[^>]*><b>${s.constructor.name}</b>`));
  }
  // The HTML lists the first indices of the current epoch, escaped.
  const r = new S.RandomSampler(40, { seed: 3 });
  r.setEpoch(2);
  const first = Array.from(r.indices(2).subarray(0, 16)).join(", ") + ", ...";
  assert.ok(r[DISPLAY]()["text/html"].includes(`<td style="text-align:left;font-family:monospace">${first}</td>`));
  assert.match(new S.BatchSampler(new S.SequentialSampler(10), 4, false)[DISPLAY]()["text/html"], /last batch<\/th><td[^>]*>2 indices/);
});

test("order(epoch) answers any range on demand, equal to indices(epoch), for every sampler", () => {
  const labels = Int32Array.from({ length: 57 }, (_, i) => (i * 7) % 5);
  const make = [
    () => new S.SequentialSampler(57),
    () => new S.RandomSampler(57, { seed: 4 }),
    () => new S.RandomSampler(57, { seed: 4, numSamples: 200 }),
    () => new S.RandomSampler(57, { seed: 4, replacement: true, numSamples: 90 }),
    () => new S.SubsetRandomSampler([3, 9, 27, 40, 41, 56], { seed: 2 }),
    () => new S.WeightedRandomSampler(Float64Array.from(labels, (l) => l + 0.5), 70, { seed: 8 }),
    () => new S.WeightedRandomSampler(Float64Array.from(labels, (l) => l + 0.5), 30, { seed: 8, replacement: false }),
    () => new S.ClassBalancedSampler(labels, { seed: 1 }),
    () => new S.DistributedSampler(57, { rank: 2, worldSize: 4, seed: 6 }),
    () => new S.DistributedSampler(57, { rank: 3, worldSize: 4, seed: 6, dropLast: true, shuffle: false }),
  ];
  for (const mk of make) {
    const s = mk();
    for (const epoch of [0, 5]) {
      const all = s.indices(epoch);
      assert.equal(all.length, s.length, String(s));
      const o = s.order(epoch);
      assert.equal(o.length, s.length);
      for (const [start, len] of [[0, all.length], [1, Math.min(7, all.length - 1)], [all.length - 3, 3], [Math.min(13, all.length), 0]]) {
        assert.deepEqual(o.fill(start, new Int32Array(len)), all.subarray(start, start + len), `${s} epoch ${epoch} [${start}, +${len})`);
      }
      // A fresh order object for the same epoch agrees (resume from anywhere is exact).
      assert.deepEqual(mk().order(epoch).fill(all.length - 5, new Int32Array(5)), all.subarray(all.length - 5));
      assert.deepEqual([...s].slice(0, 5), Array.from(s.indices(s.epoch).subarray(0, 5)));
    }
    assert.throws(() => s.order(0).fill(s.length - 2, new Int32Array(5)), (e) => e instanceof OptionError && /order\.fill\(start\)/.test(e.message));
  }
});

test("samplers over 2^31 indices cost nothing before the first index: the tail of an epoch is read directly", () => {
  const n = 2 ** 31;
  const before = process.memoryUsage().arrayBuffers;
  const shuffled = new S.RandomSampler(n, { seed: 3 }).order(7);
  const tail = shuffled.fill(n - 4096, new Int32Array(4096));
  assert.equal(new Set(tail).size, 4096);
  for (const i of tail) assert.ok(i >= 0 && i < n);
  const drawn = new S.RandomSampler(n, { seed: 3, replacement: true }).order(7).fill(n - 10, new Int32Array(10));
  for (const i of drawn) assert.ok(i >= 0 && i < n);
  // Two ranks of a 2^31 epoch: disjoint, both from the one shuffle.
  const [r0, r1] = [0, 1].map((rank) => new S.DistributedSampler(n, { rank, worldSize: 2, seed: 9 }));
  const a = r0.order(1).fill(2 ** 30 - 100, new Int32Array(100));
  const b = r1.order(1).fill(2 ** 30 - 100, new Int32Array(100));
  const g = r0.globalOrder(1).fill(n - 200, new Int32Array(200));
  for (let k = 0; k < 100; k++) {
    assert.equal(a[k], g[2 * k]);
    assert.equal(b[k], g[2 * k + 1]);
  }
  const bs = new S.BatchSampler(new S.RandomSampler(n, { seed: 3 }), 1000, true);
  const e = bs.epochBatches(7);
  assert.equal(e.count, Math.floor(n / 1000));
  assert.deepEqual(e.order.fill(e.start(e.count - 1), new Int32Array(1000)), shuffled.fill((e.count - 1) * 1000, new Int32Array(1000)));
  // Nothing of size n was allocated (an index list of 2^31 would be 8 GiB).
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 2 ** 20);
});

test("a user's sampler with only indices(), and a user's batch sampler with only batches(), still drive a BatchSampler; bad indices are named", () => {
  const user = { length: 5, epoch: 0, indices: (e) => Int32Array.from([4, 3, 2, 1, 0].map((i) => (i + e) % 5)), setEpoch() {} };
  assert.deepEqual(new S.BatchSampler(user, 2).batches(1).map((b) => Array.from(b)), [[0, 4], [3, 2], [1]]);
  assert.deepEqual(Array.from(S.orderOf(user, 1).fill(1, new Int32Array(3))), [4, 3, 2]);
  const bad = { ...user, indices: () => [0, 1, 2 ** 32 + 3] };
  assert.throws(() => new S.BatchSampler(bad, 2).batches(0), (e) => e instanceof OptionError && /indices\(0\)\)?\[2\]/.test(e.message) && /4294967299/.test(e.message));
  const custom = { sampler: user, batchSize: 2, dropLast: false, length: 2, batches: () => [Int32Array.from([1, 2]), Int32Array.from([3])] };
  const eb = S.batchesOf(custom, 0);
  assert.equal(eb.count, 2);
  assert.deepEqual([eb.start(0), eb.start(1), eb.start(2)], [0, 2, 3]);
  assert.deepEqual(Array.from(eb.order.fill(0, new Int32Array(3))), [1, 2, 3]);
  assert.throws(() => S.batchesOf({ ...custom, batches: () => [[0, -1]] }, 0), (e) => e instanceof OptionError && /batches\(0\)\[0\]\[1\]/.test(e.message));
});
