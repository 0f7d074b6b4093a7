"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { philox4x32, RandomStream, permutation } = require("../dist/sampling/rng");

const hex = (a) => Array.from(a, (x) => x.toString(16).padStart(8, "0")).join(" ");

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

test("streams are reproducible by address and differ between addresses", () => {
  const draw = (s, e, i) => { const r = new RandomStream(s, e, i); return [r.nextUint32(), r.nextUint32(), r.random()]; };
  assert.deepEqual(draw(1, 2, 3), draw(1, 2, 3));
  assert.notDeepEqual(draw(1, 2, 3), draw(1, 2, 4));
  assert.notDeepEqual(draw(1, 2, 3), draw(1, 3, 3));
  assert.notDeepEqual(draw(1, 2, 3), draw(2 ** 40 + 1, 2, 3), "the seed's high bits count");
});

test("random() and int(n) are uniform within chi-square bounds", () => {
  const r = new RandomStream(7, 0, 0);
  const k = 10;
  const n = 50000;
  const counts = new Array(k).fill(0);
  for (let i = 0; i < n; i++) counts[Math.floor(r.random() * k)]++;
  const chi = counts.reduce((s, c) => s + (c - n / k) ** 2 / (n / k), 0);
  assert.ok(chi < 33.7, `chi-square ${chi} (9 dof, p = 1e-4 bound 33.7)`);
  const c7 = new Array(7).fill(0);
  for (let i = 0; i < n; i++) c7[r.int(7)]++;
  const chi7 = c7.reduce((s, c) => s + (c - n / 7) ** 2 / (n / 7), 0);
  assert.ok(chi7 < 27.9, `chi-square ${chi7} (6 dof, p = 1e-4 bound 27.9)`);
});

test("permutation is a permutation and depends on seed and epoch", () => {
  const p = permutation(1000, 1, 0);
  assert.deepEqual(Array.from(p).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(permutation(1000, 1, 0), p);
  assert.notDeepEqual(permutation(1000, 1, 1), p);
  assert.notDeepEqual(permutation(1000, 2, 0), p);
});
