"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const S = require("../dist/sampling");

const sorted = (a) => Array.from(a).sort((x, y) => x - y);
const range = (n) => Array.from({ length: n }, (_, i) => i);

test("SequentialSampler and RandomSampler cover every index once per epoch", () => {
  assert.deepEqual(Array.from(new S.SequentialSampler(5).indices(3)), range(5));
  const r = new S.RandomSampler(100, { seed: 3 });
  assert.deepEqual(sorted(r.indices(0)), range(100));
  assert.deepEqual(r.indices(0), new S.RandomSampler(100, { seed: 3 }).indices(0), "same seed, same order");
  assert.notDeepEqual(r.indices(0), r.indices(1), "a new epoch, a new order");
  r.setEpoch(1);
  assert.deepEqual([...r], Array.from(r.indices(1)));
  const more = new S.RandomSampler(10, { seed: 1, numSamples: 25 }).indices(0);
  assert.equal(more.length, 25);
  assert.deepEqual(sorted(more.slice(0, 10)), range(10), "numSamples > n concatenates permutations");
  const rep = new S.RandomSampler(10, { seed: 1, replacement: true, numSamples: 1000 }).indices(0);
  assert.ok(rep.every((i) => i >= 0 && i < 10));
  assert.ok(typeof new S.RandomSampler(3).seed === "number", "a random seed is recorded");
});

test("SubsetRandomSampler shuffles exactly its indices", () => {
  const s = new S.SubsetRandomSampler([5, 9, 2, 7], { seed: 1 });
  assert.deepEqual(sorted(s.indices(0)), [2, 5, 7, 9]);
  assert.throws(() => new S.SubsetRandomSampler([1, -2]), /SubsetRandomSampler\(indices\)\[1\]: expected a non-negative integer index, received -2/);
});

test("WeightedRandomSampler draws in proportion to the weights (binomial bounds)", () => {
  const w = [1, 2, 3, 4];
  const n = 40000;
  const idx = new S.WeightedRandomSampler(w, n, { seed: 5 }).indices(0);
  const counts = [0, 0, 0, 0];
  for (const i of idx) counts[i]++;
  w.forEach((wi, i) => {
    const p = wi / 10;
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(counts[i] - n * p) < 5 * sd, `index ${i}: ${counts[i]} vs ${n * p} +- ${5 * sd}`);
  });
  const nr = new S.WeightedRandomSampler([0, 1, 5, 1, 0, 2], 4, { replacement: false, seed: 2 }).indices(0);
  assert.equal(new Set(nr).size, 4, "without replacement: distinct");
  assert.ok(!nr.includes(0) && !nr.includes(4), "zero weights never drawn");
  assert.throws(() => new S.WeightedRandomSampler([0, 1], 2, { replacement: false }), /WeightedRandomSampler\(numSamples\): expected at most 1 \(the number of positive weights\)/);
  assert.throws(() => new S.WeightedRandomSampler([1, NaN], 2), /WeightedRandomSampler\(weights\)\[1\]: expected a finite, non-negative weight, received NaN/);
  assert.throws(() => new S.WeightedRandomSampler([0, 0], 2), /at least one positive weight/);
});

test("ClassBalancedSampler evens out a skewed label set", () => {
  const labels = [...new Array(900).fill(0), ...new Array(90).fill(1), ...new Array(10).fill(2)];
  const s = new S.ClassBalancedSampler(labels, { seed: 1, numSamples: 30000 });
  const counts = [0, 0, 0];
  for (const i of s.indices(0)) counts[labels[i]]++;
  const sd = Math.sqrt(30000 * (1 / 3) * (2 / 3));
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 5 * sd, `class count ${c}`);
  assert.throws(() => new S.ClassBalancedSampler([0, 1.5]), /ClassBalancedSampler\(labels\)\[1\]: expected an integer label, received 1\.5/);
});

test("DistributedSampler splits as PyTorch: disjoint ranks, padding, dropLast, agreement", () => {
  const n = 10;
  const world = 4;
  const parts = range(world).map((rank) => new S.DistributedSampler(n, { rank, worldSize: world, seed: 3 }));
  assert.ok(parts.every((p) => p.length === 3), "ceil(10 / 4) = 3 per rank");
  const all = parts.flatMap((p) => Array.from(p.indices(2)));
  assert.equal(all.length, 12);
  assert.deepEqual([...new Set(all)].sort((a, b) => a - b), range(n), "the union covers the epoch");
  // the 2 padded positions repeat the start of the shuffled list
  const global = parts[0].globalIndices(2);
  assert.deepEqual(Array.from(global.slice(10)), Array.from(global.slice(0, 2)));
  range(world).forEach((r) => assert.deepEqual(parts[r].indices(2), Int32Array.from({ length: 3 }, (_, k) => global[r + 4 * k])));
  const dropped = range(world).map((rank) => new S.DistributedSampler(n, { rank, worldSize: world, dropLast: true, seed: 3 }));
  assert.ok(dropped.every((p) => p.length === 2));
  const d = dropped.flatMap((p) => Array.from(p.indices(0)));
  assert.equal(new Set(d).size, 8, "dropLast: disjoint, no repeats");
  const noShuffle = new S.DistributedSampler(5, { rank: 1, worldSize: 2, shuffle: false });
  assert.deepEqual(Array.from(noShuffle.indices(0)), [1, 3, 0], "padding wraps to the start");
  const tiny = new S.DistributedSampler(2, { rank: 4, worldSize: 5, shuffle: false });
  assert.equal(tiny.indices(0).length, 1, "padding longer than the data repeats it");
  assert.throws(() => new S.DistributedSampler(10, { rank: 4, worldSize: 4 }), /DistributedSampler\.rank: expected an integer in \[0, 3\] \(worldSize 4\), received 4/);
});

test("rank and world size come from torchrun, Slurm, Open MPI and MPICH environments", () => {
  assert.deepEqual(S.distributedEnv({ RANK: "3", WORLD_SIZE: "8", LOCAL_RANK: "1" }), { rank: 3, worldSize: 8, localRank: 1, source: "torchrun" });
  assert.deepEqual(S.distributedEnv({ SLURM_PROCID: "5", SLURM_NTASKS: "6", SLURM_LOCALID: "1" }), { rank: 5, worldSize: 6, localRank: 1, source: "slurm" });
  assert.deepEqual(S.distributedEnv({ OMPI_COMM_WORLD_RANK: "1", OMPI_COMM_WORLD_SIZE: "2" }), { rank: 1, worldSize: 2, localRank: 0, source: "openmpi" });
  assert.deepEqual(S.distributedEnv({ PMI_RANK: "0", PMI_SIZE: "4" }), { rank: 0, worldSize: 4, localRank: 0, source: "mpich/intel" });
  assert.deepEqual(S.distributedEnv({}), { rank: 0, worldSize: 1, localRank: 0, source: "none" });
  const s = new S.DistributedSampler(100, { env: { RANK: "2", WORLD_SIZE: "4" } });
  assert.equal(s.rank, 2);
  assert.equal(s.worldSize, 4);
  assert.match(s.source, /torchrun/);
  assert.throws(() => S.distributedEnv({ RANK: "x", WORLD_SIZE: "4" }), /environment variable RANK: expected an integer >= 0 \(set by torchrun\), received "x"/);
  assert.throws(() => S.distributedEnv({ SLURM_PROCID: "6", SLURM_NTASKS: "6" }), /environment variable SLURM_PROCID: expected less than SLURM_NTASKS=6/);
});

test("BatchSampler groups indices, keeping or dropping the short last batch", () => {
  const b = new S.BatchSampler(new S.SequentialSampler(10), 4, false);
  assert.equal(b.length, 3);
  assert.deepEqual(b.batches(0).map((x) => Array.from(x)), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const d = new S.BatchSampler(new S.SequentialSampler(10), 4, true);
  assert.equal(d.length, 2);
  assert.equal(d.batches(0).length, 2);
  assert.throws(() => new S.BatchSampler(new S.SequentialSampler(3), 0), /BatchSampler\(batchSize\): expected an integer >= 1, received 0/);
});
