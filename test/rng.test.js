"use strict";
// The counter-based generator (src/sampling/rng.ts): Philox4x32-10 known answers, addressing,
// uniformity of draws and permutations. Statistical checks compute a chi-square p-value with
// test/helpers/stats.js (whose own tests, against scipy, are the first ones here) and fail
// below ALPHA = 1e-6 per check: with the few dozen checks here, a correct generator fails the
// suite with probability < 1e-4, while the defects they target (modulo bias, off-by-one
// shuffles, a broken round function) give p-values far below 1e-20.
const test = require("node:test");
const assert = require("node:assert/strict");
const { philox4x32, RandomStream, permutation, Shuffle, Purpose } = require("../dist/sampling/rng");
const { gammaQ, chiSquare, assertFits, uniform } = require("./helpers/stats");

const SEEDS = [0, 1, 7, 123456789, 2 ** 40 + 3];
const hex = (a) => Array.from(a, (x) => x.toString(16).padStart(8, "0")).join(" ");

test("the chi-square helper matches scipy's chi2.isf(1e-6, dof) and chi2.sf(dof, dof)", () => {
  // scipy.stats.chi2.isf(1e-6, d) and chi2.sf(d, d)
  const ref = [[1, 23.928126976934827, 0.31731050786291115], [2, 27.631021115928547, 0.36787944117144245],
    [9, 44.81093787068782, 0.43727418891386693], [49, 111.13590530067539, 0.4731282956547652],
    [255, 377.07811549898673, 0.48822252177040637]];
  for (const [dof, q, sfAtDof] of ref) {
    assert.ok(Math.abs(gammaQ(dof / 2, q / 2) - 1e-6) < 1e-9, `dof ${dof}: p at the 1e-6 quantile is ${gammaQ(dof / 2, q / 2)}`);
    assert.ok(Math.abs(gammaQ(dof / 2, dof / 2) - sfAtDof) < 1e-9, `dof ${dof}: sf(dof) is ${gammaQ(dof / 2, dof / 2)}`);
  }
});

test("the chi-square helper: Pearson's statistic, and assertFits passes a fit and fails a misfit", () => {
  // counts [10, 20, 30] against [1/6, 1/3, 1/2]: an exact fit, statistic 0, p = 1
  assert.deepEqual(chiSquare([10, 20, 30], [1 / 6, 1 / 3, 1 / 2]), { stat: 0, dof: 2, p: 1 });
  // [60, 40] against [1/2, 1/2]: (10^2 + 10^2) / 50 = 4 on 1 dof; scipy.stats.chi2.sf(4, 1)
  const r = chiSquare([60, 40], uniform(2));
  assert.equal(r.dof, 1);
  assert.ok(Math.abs(r.stat - 4) < 1e-12, `stat ${r.stat}`);
  assert.ok(Math.abs(r.p - 0.04550026389635842) < 1e-9, `p ${r.p}`);
  assertFits([1000, 1010, 990], uniform(3), "a near-uniform tally");
  // 2:1 where 1:1 is expected over 3000 draws: chi-square 333 on 1 dof, p ~ 1e-74
  assert.throws(() => assertFits([2000, 1000], uniform(2), "biased"), (e) => e instanceof assert.AssertionError && /^biased: chi-square 333\.33 on 1 dof, p = 1\.81e-74 < 0\.000001; counts 2000,1000$/.test(e.message));
  // The level is ALPHA = 1e-6 unless given: [74, 26] (chi-square 23.04, p = 1.6e-6) passes and
  // [75, 25] (chi-square 25, p = 5.7e-7) fails; p = 0.0455 passes at 1e-6 and fails at 0.05.
  assertFits([74, 26], uniform(2), "p = 1.6e-6");
  assert.throws(() => assertFits([75, 25], uniform(2), "p = 5.7e-7"), assert.AssertionError);
  assertFits([60, 40], uniform(2), "p = 0.0455");
  assert.throws(() => assertFits([60, 40], uniform(2), "at 0.05", 0.05), assert.AssertionError);
});

test("Philox4x32-10 matches the Random123 known-answer vectors", () => {
  const out = new Uint32Array(4);
  philox4x32(0, 0, 0, 0, 0, 0, out);
  assert.equal(hex(out), "6627e8d5 e169c58d bc57ac4c 9b00dbd8");
  const f = 0xffffffff;
  philox4x32(f, f, f, f, f, f, out);
  assert.equal(hex(out), "408f276d 41c83b0e a20bc7c6 6d5451fd");
  philox4x32(0xa4093822, 0x299f31d0, 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, out);
  assert.equal(hex(out), "d16cfe09 94fdcceb 5001e420 24126ea1");
});

test("a stream is reproducible from its address, and every part of the address matters", () => {
  const draw = (s, e, i, p = Purpose.user) => {
    const r = new RandomStream(s, e, i, p);
    return Array.from({ length: 9 }, () => r.nextUint32());
  };
  for (const s of SEEDS) {
    const base = draw(s, 2, 3);
    assert.deepEqual(draw(s, 2, 3), base, "same address, same numbers");
    assert.notDeepEqual(draw(s + 1, 2, 3), base, "seed");
    assert.notDeepEqual(draw(s, 3, 3), base, "epoch");
    assert.notDeepEqual(draw(s, 2, 4), base, "index");
    assert.notDeepEqual(draw(s, 2, 3 + 2 ** 32), base, "index bits above 2^32");
    assert.notDeepEqual(draw(s, 2, 3, Purpose.sampler), base, "purpose");
    assert.ok(base.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32));
  }
  assert.notDeepEqual(draw(1, 0, 0), draw(2 ** 40 + 1, 0, 0), "the seed's high bits count");
  // Draws 1..4 come from block 0 and 5..8 from block 1 of the same counter.
  const out = new Uint32Array(4);
  philox4x32(5, 0, 9, 4, Purpose.transform, 1, out);
  assert.deepEqual(draw(5, 4, 9, Purpose.transform).slice(4, 8), Array.from(out));
  // reset() moves a used stream to another address: it then draws exactly what a new one would,
  // whatever it drew before (midway through a block or not).
  const reused = new RandomStream(8, 8, 8);
  for (const [k, s] of SEEDS.entries()) {
    for (let j = 0; j < k + 2; j++) reused.random();
    assert.equal(reused.reset(s, 2, 3 + 2 ** 33, Purpose.transform), reused);
    assert.deepEqual(Array.from({ length: 9 }, () => reused.nextUint32()), draw(s, 2, 3 + 2 ** 33, Purpose.transform), `reset to seed ${s}`);
  }
});

test("nextUint32 bytes and random() are uniform (chi-square over several seeds)", () => {
  for (const s of SEEDS) {
    const r = new RandomStream(s, 1, 0);
    const bytes = new Array(256).fill(0);
    const top = new Array(256).fill(0);
    for (let i = 0; i < 51200; i++) {
      const x = r.nextUint32();
      bytes[x & 0xff]++;
      top[x >>> 24]++;
    }
    assertFits(bytes, uniform(256), `seed ${s}: low byte of nextUint32`);
    assertFits(top, uniform(256), `seed ${s}: high byte of nextUint32`);
    const cells = new Array(20).fill(0);
    const fine = new Array(16).fill(0); // bits 24..27 of the fraction: tests the low draw too
    for (let i = 0; i < 40000; i++) {
      const u = r.random();
      assert.ok(u >= 0 && u < 1, `random() = ${u}`);
      cells[Math.floor(u * 20)]++;
      fine[Math.floor(u * 2 ** 28) & 15]++;
    }
    assertFits(cells, uniform(20), `seed ${s}: random()`);
    assertFits(fine, uniform(16), `seed ${s}: bits 24-27 of random()`);
  }
});

test("int(n) is uniform on [0, n) without modulo bias, below and above 2^32", () => {
  for (const s of SEEDS) {
    const r = new RandomStream(s, 0, 5);
    for (const n of [2, 3, 7, 10, 100]) {
      const c = new Array(n).fill(0);
      const draws = 300 * n;
      for (let i = 0; i < draws; i++) {
        const x = r.int(n);
        assert.ok(Number.isInteger(x) && x >= 0 && x < n, `int(${n}) = ${x}`);
        c[x]++;
      }
      assertFits(c, uniform(n), `seed ${s}: int(${n})`);
    }
    assert.equal(r.int(1), 0);
    // n = 3 * 2^30: plain x % n would make [0, 2^30) twice as likely as the other thirds.
    const big = 3 * 2 ** 30;
    const thirds = [0, 0, 0];
    for (let i = 0; i < 30000; i++) thirds[Math.floor(r.int(big) / 2 ** 30)]++;
    assertFits(thirds, uniform(3), `seed ${s}: int(3 * 2^30) by thirds`);
    // Above 2^32 the draw comes from random(): fifths of [0, 5 * 2^32).
    const huge = 5 * 2 ** 32;
    const fifths = [0, 0, 0, 0, 0];
    for (let i = 0; i < 25000; i++) {
      const x = r.int(huge);
      assert.ok(Number.isInteger(x) && x >= 0 && x < huge);
      fifths[Math.floor(x / 2 ** 32)]++;
    }
    assertFits(fifths, uniform(5), `seed ${s}: int(5 * 2^32) by fifths`);
  }
});

test("uniform, bernoulli and normal have the right ranges and frequencies", () => {
  // Binomial z-bound: |count - np| < 5.3 sd has two-sided probability ~1.2e-7 under the null.
  const z = 5.3;
  for (const s of SEEDS) {
    const r = new RandomStream(s, 3, 1);
    const n = 20000;
    let hits = 0;
    let inside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform(-2, 3);
      assert.ok(u >= -2 && u < 3);
      if (r.bernoulli(0.3)) hits++;
      if (Math.abs(r.normal()) < 1) inside++;
    }
    const within = (count, p, what) => {
      const sd = Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs(count - n * p) < z * sd, `seed ${s}: ${what} ${count}, expected ${n * p} +- ${(z * sd).toFixed(1)}`);
    };
    within(hits, 0.3, "bernoulli(0.3) successes");
    within(inside, 0.6826894921370859, "normal() draws within one sd");
    assert.equal(r.bernoulli(0), false);
    assert.equal(r.bernoulli(1), true);
  }
});

test("permutation is a permutation, reproducible, and depends on seed, epoch and salt", () => {
  for (const s of SEEDS) {
    for (const n of [0, 1, 2, 3, 50, 1000]) {
      const p = permutation(n, s, 0);
      assert.ok(p instanceof Int32Array);
      assert.deepEqual(Array.from(p).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), `n=${n}`);
      assert.deepEqual(permutation(n, s, 0), p);
    }
    const p = permutation(1000, s, 0);
    assert.notDeepEqual(permutation(1000, s, 1), p, "epoch");
    assert.notDeepEqual(permutation(1000, s + 1, 0), p, "seed");
    assert.notDeepEqual(permutation(1000, s, 0, 1), p, "salt");
  }
});

test("permutation is uniform: all 4! orders equally often, every element at every position", () => {
  for (const s of SEEDS.slice(0, 3)) {
    const orders = new Map();
    const draws = 24 * 500;
    for (let e = 0; e < draws; e++) {
      const key = Array.from(permutation(4, s, e)).join("");
      orders.set(key, (orders.get(key) ?? 0) + 1);
    }
    assert.equal(orders.size, 24, `seed ${s}: every order of 4 appears`);
    assertFits([...orders.values()], uniform(24), `seed ${s}: orders of 4`);
    // Element 0's position in a permutation of 10 (a Sattolo-style off-by-one never leaves it at 0).
    const pos = new Array(10).fill(0);
    for (let e = 0; e < 10000; e++) pos[permutation(10, s, e, 3).indexOf(0)]++;
    assertFits(pos, uniform(10), `seed ${s}: position of element 0 in 10`);
  }
});

test("Shuffle is a bijection of [0, n) at every size, including either side of each Feistel domain", () => {
  const sizes = [...Array.from({ length: 300 }, (_, i) => i + 1), 4095, 4096, 4097, 65535, 65536, 65537, 1000003];
  for (const n of sizes) {
    const s = new Shuffle(n, 99, 3);
    const seen = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      const x = s.at(k);
      assert.ok(Number.isInteger(x) && x >= 0 && x < n, `n=${n}: at(${k}) = ${x}`);
      assert.equal(seen[x], 0, `n=${n}: ${x} appears twice`);
      seen[x] = 1;
    }
  }
});

test("Shuffle answers any position of a 2^31 order on demand: the same as fill, in range, distinct", () => {
  const n = 2 ** 31;
  const s = new Shuffle(n, 5, 1);
  const tail = s.fill(n - 1000, new Int32Array(1000));
  assert.equal(new Set(tail).size, 1000);
  for (let j = 0; j < 1000; j += 97) assert.equal(tail[j], s.at(n - 1000 + j));
  for (const x of tail) assert.ok(x >= 0 && x < n);
  // The same address gives the same order; another epoch another.
  assert.deepEqual(new Shuffle(n, 5, 1).fill(12345, new Int32Array(8)), s.fill(12345, new Int32Array(8)));
  assert.notDeepEqual(new Shuffle(n, 5, 2).fill(12345, new Int32Array(8)), s.fill(12345, new Int32Array(8)));
});

test("Shuffle mixes: element positions uniform at an odd size, neighbours uncorrelated, a prefix of a large order uniform", () => {
  for (const s of SEEDS.slice(0, 3)) {
    // Position of element 5 in an order of 37 (cycle walking over a domain of 64).
    const pos = new Array(37).fill(0);
    for (let e = 0; e < 37 * 200; e++) pos[permutation(37, s, e).indexOf(5)]++;
    assertFits(pos, uniform(37), `seed ${s}: position of element 5 in 37`);
    // Whether position 0 holds more than position 1: a fair coin across epochs.
    let greater = 0;
    const trials = 4000;
    for (let e = 0; e < trials; e++) {
      const p = new Shuffle(1000, s, e).fill(0, new Int32Array(2));
      if (p[0] > p[1]) greater++;
    }
    assertFits([greater, trials - greater], uniform(2), `seed ${s}: order of positions 0 and 1`);
    // The first 20,000 of a 2^24 order, in 16 bins of the value range.
    const bins = new Array(16).fill(0);
    const big = new Shuffle(2 ** 24, s, 0).fill(0, new Int32Array(20000));
    for (const x of big) bins[x >>> 20]++;
    assertFits(bins, uniform(16), `seed ${s}: prefix of a 2^24 order`);
  }
});
