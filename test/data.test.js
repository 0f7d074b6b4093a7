"use strict";
// Every data-set format on fixtures the tests write, the real Fashion-MNIST files, and the
// errors a broken file or a bad option gives.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const datasets = require("../dist/data");
const fx = require("./helpers/fixtures");

test("fromArrays gives views into the buffer, labels and class names", () => {
  const px = Uint8Array.from({ length: 2 * 2 * 3 * 3 }, (_, i) => i);
  const ds = datasets.fromArrays(px, [2, 2, 3, 3], [1, 0], { classNames: ["a", "b"] });
  const s = ds.get(1);
  assert.equal(s.label, 0);
  assert.equal(s.image.data.buffer, px.buffer, "a view, not a copy");
  assert.equal(s.image.data[0], 18);
  assert.deepEqual([s.image.height, s.image.width, s.image.channels], [2, 3, 3]);
  assert.deepEqual(ds.shape, [2, 3, 3]);
  assert.throws(() => ds.get(2), /get\(index\): expected an integer in \[0, 1\], received 2/);
  assert.throws(() => datasets.fromArrays(px, [2, 2, 3, 2], [0, 0]), /fromArrays\(pixels\): expected 24 values for shape \[2, 2, 3, 2\]/);
  assert.throws(() => datasets.fromArrays(px, [2, 2, 3, 3], [0]), /fromArrays\(labels\): expected 2 labels/);
  assert.throws(() => datasets.fromArrays(px, [2, 2, 3, 3], [0, 5], { classNames: ["a", "b"] }), /labels\[1\]: expected a class index in \[0, 1\]/);
  const bundle = ds[Symbol.for("Jupyter.display")]();
  assert.match(bundle["text/plain"], /2 samples, shape 2 x 3 x 3/);
  assert.match(bundle["text/html"], /<table>/);
});

test("subset, concat and map keep labels, indices and paths", async () => {
  const a = datasets.fromArrays(new Uint8Array(3 * 4).fill(1), [3, 2, 2, 1], [0, 1, 2]);
  const b = datasets.fromArrays(new Uint8Array(2 * 4).fill(2), [2, 2, 2, 1], [3, 4]);
  const sub = datasets.subset(a, [2, 0]);
  assert.deepEqual(Array.from(sub.labels()), [2, 0]);
  assert.equal(sub.get(0).label, 2);
  assert.equal(sub.get(0).index, 0);
  const cat = datasets.concat(a, b);
  assert.equal(cat.length, 5);
  assert.equal(cat.get(4).label, 4);
  assert.equal(cat.get(4).image.data[0], 2);
  assert.deepEqual(Array.from(cat.labels()), [0, 1, 2, 3, 4]);
  const mapped = datasets.map(a, (s) => ({ ...s, label: s.label + 10 }));
  assert.equal(mapped.get(1).label, 11);
  assert.throws(() => datasets.subset(a, [0, 3]), /subset\(indices\)\[1\]: expected an integer in \[0, 2\], received 3/);
  assert.throws(() => datasets.concat(), /concat\(datasets\): expected at least one dataset/);
});

test("IDX files, plain and gzipped", async () => {
  const dir = fx.tempDir("idx");
  for (const gzip of [false, true]) {
    const f = fx.writeIdx(dir, 5, 3, 4, { gzip });
    const ds = await datasets.idx(f.images, f.labels);
    assert.equal(ds.length, 5);
    assert.deepEqual(ds.shape, [3, 4, 1]);
    assert.deepEqual(Array.from(ds.get(2).image.data), Array.from(f.pixels.slice(24, 36)));
    assert.deepEqual(Array.from(ds.labels()), Array.from(f.labelValues));
  }
});

test("broken IDX files name the file and the byte offset", async () => {
  const dir = fx.tempDir("idxbad");
  const f = fx.writeIdx(dir, 5, 3, 4);
  const full = fs.readFileSync(f.images);
  const cut = path.join(dir, "cut");
  fs.writeFileSync(cut, full.subarray(0, full.length - 7));
  await assert.rejects(datasets.idx(cut, f.labels), (e) => e.path === cut && e.offset === full.length - 7 && /truncated: header declares 5 x 3 x 4 uint8 = 60 data bytes, the file has 53/.test(e.message));
  const magic = path.join(dir, "magic");
  fs.writeFileSync(magic, Buffer.concat([Buffer.from([1, 2]), full.subarray(2)]));
  await assert.rejects(datasets.idx(magic, f.labels), /magic \(byte offset 0\): not an IDX file/);
  const gz = path.join(dir, "bad.gz");
  const z = zlib.gzipSync(full);
  fs.writeFileSync(gz, z.subarray(0, z.length - 10));
  await assert.rejects(datasets.idx(gz, f.labels), /bad\.gz \(byte offset \d+\): corrupt or truncated gzip data/);
  const fewer = fx.writeIdx(fx.tempDir("idx4"), 4, 3, 4);
  await assert.rejects(datasets.idx(f.images, fewer.labels), /4 labels for 5 images/);
  await assert.rejects(datasets.idx(path.join(dir, "missing"), f.labels), /missing: no such file/);
});

test("the real Fashion-MNIST from Debian's dataset-fashion-mnist", async () => {
  const train = await datasets.fashionMnist({ split: "train" });
  const testSet = await datasets.fashionMnist({ split: "test" });
  assert.equal(train.length, 60000);
  assert.equal(testSet.length, 10000);
  assert.deepEqual(train.shape, [28, 28, 1]);
  assert.equal(train.classNames.length, 10);
  assert.equal(train.classNames[9], "Ankle boot");
  const counts = new Array(10).fill(0);
  for (const l of train.labels()) counts[l]++;
  assert.deepEqual(counts, new Array(10).fill(6000), "6000 images per class");
  const img = train.get(0).image.data;
  assert.ok(img.some((x) => x > 0) && img.some((x) => x === 0), "a real picture: dark background, bright garment");
  await assert.rejects(datasets.fashionMnist({ split: "val" }), /fashionMnist\.split: expected one of "train", "test", received "val"/);
  await assert.rejects(datasets.fashionMnist({ root: "/nonexistent" }), /fashionMnist\.root: expected an existing folder, received "\/nonexistent"/);
});

test("npy images and integer labels", async () => {
  const dir = fx.tempDir("npy");
  const f = fx.writeNpy(dir, 4, 2, 3, 3);
  const ds = await datasets.npy(f.images, f.labels);
  assert.equal(ds.length, 4);
  assert.deepEqual(ds.shape, [2, 3, 3]);
  assert.deepEqual(Array.from(ds.labels()), [0, 1, 2, 0]);
  assert.deepEqual(Array.from(ds.get(1).image.data), Array.from(f.pixels.slice(18, 36)));
  const gray = fx.writeNpy(fx.tempDir("npy1"), 2, 2, 2, 1);
  assert.deepEqual((await datasets.npy(gray.images, gray.labels)).shape, [2, 2, 1]);
  const cut = path.join(dir, "cut.npy");
  fs.writeFileSync(cut, fs.readFileSync(f.images).subarray(0, 150));
  await assert.rejects(datasets.npy(cut, f.labels), /cut\.npy \(byte offset 150\): truncated: shape \(4, 2, 3, 3\) of \|u1 needs 72 data bytes, the file has 22/);
  const floats = path.join(dir, "f.npy");
  fs.writeFileSync(floats, fx.npyBuffer("<f4", [2, 2, 2], new Float32Array(8)));
  await assert.rejects(datasets.npy(floats, f.labels), /images must be uint8 \(\|u1\), found <f4/);
});

test("CIFAR-10 binary batches become HWC images", async () => {
  const dir = fx.tempDir("cifar");
  for (let k = 1; k <= 5; k++) fx.writeCifar(dir, `data_batch_${k}.bin`, 2);
  fx.writeCifar(dir, "test_batch.bin", 3);
  const train = await datasets.cifar10({ root: dir });
  assert.equal(train.length, 10);
  assert.deepEqual(train.shape, [32, 32, 3]);
  const s = train.get(1).image.data;
  // pixel 5 of record 1: channels (c*50 + 5 + 1) % 256
  assert.deepEqual(Array.from(s.slice(15, 18)), [6, 56, 106]);
  assert.equal(train.classNames[0], "airplane");
  assert.equal((await datasets.cifar10({ root: dir, split: "test" })).length, 3);
  fs.writeFileSync(path.join(dir, "test_batch.bin"), Buffer.alloc(3073 + 100));
  await assert.rejects(datasets.cifar10({ root: dir, split: "test" }), /test_batch\.bin \(byte offset 3073\): size 3173 is not a multiple of the 3073-byte record/);
});

test("image folders decode PNG and JPEG off the main thread, classes in sorted order", async () => {
  const dir = fx.tempDir("folder");
  const files = await fx.writeImageFolder(dir, { dogs: 3, cats: 2 });
  const ds = await datasets.imageFolder(dir);
  assert.deepEqual(ds.classNames, ["cats", "dogs"]);
  assert.equal(ds.length, 5);
  assert.deepEqual(Array.from(ds.labels()), [0, 0, 1, 1, 1]);
  const s = await ds.get(0);
  assert.deepEqual([s.image.height, s.image.width, s.image.channels], [6, 5, 3]);
  assert.ok(s.path.endsWith(path.join("cats", "0.png")));
  const jpg = await ds.get(1);
  assert.ok(Math.abs(jpg.image.data[1] - 100) <= 3, "JPEG decodes close to the colour written");
  const gray = await datasets.imageFolder(dir, { channels: 1 });
  assert.equal((await gray.get(0)).image.channels, 1);
  assert.ok(files.length === 5);
  await assert.rejects(datasets.imageFolder(path.join(dir, "nope")), /imageFolder\(root\): expected an existing folder/);
  await assert.rejects(datasets.imageFolder(dir, { channels: 2 }), /imageFolder\.channels: expected 1, 3 or 4, received 2/);
});

test("a truncated PNG and a truncated JPEG name the file and where they break", async () => {
  const dir = fx.tempDir("broken");
  const files = await fx.writeImageFolder(dir, { a: 2 }, { size: [20, 20] });
  const png = fs.readFileSync(files[0]);
  fs.writeFileSync(files[0], png.subarray(0, png.length - 20));
  const jpg = fs.readFileSync(files[1]);
  fs.writeFileSync(files[1], jpg.subarray(0, Math.floor(jpg.length / 2)));
  const ds = await datasets.imageFolder(dir);
  await assert.rejects(ds.get(0), (e) => e.path === files[0] && Number.isInteger(e.offset) && /PNG chunk \w+ of \d+ bytes runs past the end of the file|PNG chunk header truncated|PNG ends without an IEND/.test(e.message));
  const cut = Math.floor(jpg.length / 2);
  await assert.rejects(ds.get(1), (e) => e.path === files[1] && e.offset > 0 && e.offset <= cut && /JPEG .*(runs past the end|truncated|EOI)/.test(e.message) && /premature end|decoder/.test(e.message));
  const crc = Buffer.from(png);
  crc[20] ^= 0xff; // inside the IHDR data
  assert.match(datasets.findCorruption(crc).problem, /fails its CRC/);
  assert.equal(datasets.findCorruption(png), undefined, "a whole PNG scans clean");
});
