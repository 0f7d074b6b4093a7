"use strict";
// Datasets in memory, the combinators, IDX files (plain and gzipped) with their errors, and the
// real Fashion-MNIST from Debian's dataset-fashion-mnist. npy/CIFAR are in data-files.test.js,
// image folders in data-images.test.js.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const datasets = require("../dist/data");
const { OptionError, FileFormatError } = require("../dist/errors");
const fx = require("./helpers/fixtures");

const DISPLAY = Symbol.for("Jupyter.display");

/** assert.rejects/throws predicate: an error of `cls` whose fields match and whose message matches. */
const { fails } = require("./helpers/fails");

test("fromArrays: samples are views into the buffer, with labels and class names", () => {
  const [n, h, w, c] = [3, 2, 3, 3];
  const px = fx.bytes(1, n * h * w * c);
  const ds = datasets.fromArrays(px, [n, h, w, c], [2, 0, 1], { classNames: ["a", "b", "c"] });
  assert.equal(ds.length, n);
  assert.deepEqual(ds.shape, [h, w, c]);
  assert.deepEqual(ds.classNames, ["a", "b", "c"]);
  for (let i = 0; i < n; i++) {
    const s = ds.get(i);
    assert.ok(!(s instanceof Promise), "in-memory samples are synchronous");
    assert.equal(s.index, i);
    assert.equal(s.image.data.buffer, px.buffer, "a view, not a copy");
    assert.equal(s.image.data.byteOffset, px.byteOffset + i * h * w * c);
    assert.deepEqual(Array.from(s.image.data), Array.from(px.subarray(i * h * w * c, (i + 1) * h * w * c)));
    assert.deepEqual([s.image.height, s.image.width, s.image.channels], [h, w, c]);
  }
  px[h * w * c] ^= 1;
  assert.equal(ds.get(1).image.data[0], px[h * w * c], "writes to the buffer show through");
  assert.deepEqual(Array.from(ds.labels()), [2, 0, 1]);
  // labels as typed arrays and bigint arrays; [n, h, w] means one channel
  assert.deepEqual(Array.from(datasets.fromArrays(px, [n, h * w, c], Uint8Array.from([1, 1, 0])).labels()), [1, 1, 0]);
  assert.deepEqual(Array.from(datasets.fromArrays(px, [n, h * w, c], Int32Array.from([4, 5, 6])).labels()), [4, 5, 6]);
  assert.deepEqual(Array.from(datasets.fromArrays(px, [n, h * w, c], BigInt64Array.from([7n, 8n, 9n])).labels()), [7, 8, 9]);
  assert.deepEqual(datasets.fromArrays(px, [n, h * w * c, 1], [0, 0, 0]).shape, [h * w * c, 1, 1]);
  assert.deepEqual(datasets.fromArrays(px, [n, h, w * c], [0, 0, 0]).shape, [h, w * c, 1]);
});

test("fromArrays: every bad argument is named with its value and what was expected", () => {
  const px = new Uint8Array(12);
  assert.throws(() => datasets.fromArrays(Array.from(px), [1, 2, 2, 3], [0]), fails(OptionError, { option: "fromArrays(pixels)" }, /expected a Uint8Array/));
  assert.throws(() => datasets.fromArrays(new Float32Array(12), [1, 2, 2, 3], [0]), fails(OptionError, { option: "fromArrays(pixels)" }, /received Float32Array of length 12/));
  assert.throws(() => datasets.fromArrays(px, [1, 2, 2, 2], [0]), fails(OptionError, { option: "fromArrays(pixels)" }, /expected 8 values for shape \[1, 2, 2, 2\]/));
  assert.throws(() => datasets.fromArrays(px, [1, 2, 0, 3], [0]), fails(OptionError, { option: "fromArrays(shape)" }, /received \[1,2,0,3\]/));
  assert.throws(() => datasets.fromArrays(px, "1x2x2x3", [0]), fails(OptionError, { option: "fromArrays(shape)" }));
  assert.throws(() => datasets.fromArrays(px, [2, 2, 1, 3], [0]), fails(OptionError, { option: "fromArrays(labels)" }, /expected 2 labels \(one per image\), got 1/));
  assert.throws(() => datasets.fromArrays(px, [2, 2, 1, 3], [0, -1]), fails(OptionError, { option: "fromArrays(labels)[1]", received: -1 }, /an integer class index >= 0, received -1/));
  assert.throws(() => datasets.fromArrays(px, [2, 2, 1, 3], [0, 1.5]), fails(OptionError, { option: "fromArrays(labels)[1]", received: 1.5 }));
  assert.throws(() => datasets.fromArrays(px, [2, 2, 1, 3], [0, 2], { classNames: ["a", "b"] }), fails(OptionError, { option: "fromArrays(labels)[1]", received: 2 }, /a class index in \[0, 1\] \(2 class names\)/));
  assert.throws(() => datasets.fromArrays(px, [2, 2, 1, 3], [0, 1], { classNames: "ab" }), fails(OptionError, { option: "fromArrays.classNames" }, /an array of class names/));
  assert.throws(() => datasets.fromArrays(px, [2, 2, 1, 3], [0, 1], { classnames: ["a"] }), fails(OptionError, { option: "fromArrays.classnames" }, /no such option \(known: classNames\)/));
});

test("get(i) with a bad index throws OptionError naming the index, the value and the valid range", () => {
  const ds = datasets.fromArrays(new Uint8Array(8), [2, 2, 2, 1], [0, 1]);
  for (const bad of [2, -1, 0.5, "1", NaN, undefined]) {
    assert.throws(() => ds.get(bad), fails(OptionError, { option: "get(index)" }, /expected an integer index in \[0, 1\], received /));
  }
  assert.throws(() => ds.get(7), /get\(index\): expected an integer index in \[0, 1\], received 7/);
  const empty = datasets.fromArrays(new Uint8Array(0), [0, 2, 2, 1], []);
  assert.equal(empty.length, 0);
  assert.throws(() => empty.get(0), /get\(index\): expected no index at all \(the dataset is empty\), received 0/);
});

test("subset, concat and map: order, renumbered indices, labels, paths, and synchronous when the source is", () => {
  const a = datasets.fromArrays(fx.bytes(2, 3 * 4), [3, 2, 2, 1], [0, 1, 2], { classNames: ["x", "y", "z"] });
  const b = datasets.fromArrays(fx.bytes(3, 2 * 4), [2, 2, 2, 1], [2, 0], { classNames: ["x", "y", "z"] });

  const sub = datasets.subset(a, [2, 0, 2]);
  assert.equal(sub.length, 3);
  assert.deepEqual(Array.from(sub.labels()), [2, 0, 2]);
  const s0 = sub.get(0);
  assert.equal(s0.index, 0, "index renumbered to the subset's position");
  assert.equal(s0.image.data.buffer, a.pixels.buffer, "still a view");
  assert.deepEqual(Array.from(s0.image.data), Array.from(a.get(2).image.data));
  assert.deepEqual(sub.shape, [2, 2, 1]);
  assert.deepEqual(sub.classNames, ["x", "y", "z"]);
  assert.equal(datasets.subset(a, Uint32Array.from([1])).get(0).label, 1);
  assert.throws(() => datasets.subset(a, [0, 3]), fails(OptionError, { option: "subset(indices)[1]", received: 3 }, /an integer index in \[0, 2\]/));
  assert.throws(() => datasets.subset(a, 1), fails(OptionError, { option: "subset(indices)" }));
  assert.throws(() => datasets.subset({ length: 1 }, [0]), fails(OptionError, { option: "subset(dataset)" }));
  assert.throws(() => sub.get(3), /get\(index\): expected an integer index in \[0, 2\], received 3/);

  const cat = datasets.concat(a, b, sub);
  assert.equal(cat.length, 8);
  const expected = [...a.labels(), ...b.labels(), ...sub.labels()];
  assert.deepEqual(Array.from(cat.labels()), expected);
  for (let i = 0; i < cat.length; i++) {
    const s = cat.get(i);
    assert.equal(s.index, i);
    assert.equal(s.label, expected[i]);
  }
  assert.deepEqual(Array.from(cat.get(4).image.data), Array.from(b.get(1).image.data));
  assert.deepEqual(cat.classNames, ["x", "y", "z"]);
  assert.deepEqual(cat.shape, [2, 2, 1]);
  const mixed = datasets.concat(a, datasets.fromArrays(new Uint8Array(6), [1, 2, 3, 1], [0], { classNames: ["p"] }));
  assert.equal(mixed.shape, undefined, "shapes differ");
  assert.equal(mixed.classNames, undefined, "class names differ");
  assert.throws(() => datasets.concat(), fails(OptionError, { option: "concat(datasets)" }, /at least one dataset/));
  assert.throws(() => datasets.concat(a, null), fails(OptionError, { option: "concat(datasets)[1]" }));
  assert.throws(() => cat.get(8), /get\(index\): expected an integer index in \[0, 7\], received 8/);

  const mapped = datasets.map(a, (s) => ({ ...s, label: s.label + 10 }));
  const m1 = mapped.get(1);
  assert.ok(!(m1 instanceof Promise));
  assert.equal(m1.label, 11);
  assert.equal(mapped.labels, undefined, "labels are not assumed to survive fn");
  assert.equal(mapped.shape, undefined);
  const kept = datasets.map(a, (s) => s, { keepLabels: true, shape: [2, 2, 1] });
  assert.deepEqual(Array.from(kept.labels()), [0, 1, 2]);
  assert.deepEqual(kept.classNames, ["x", "y", "z"]);
  assert.deepEqual(kept.shape, [2, 2, 1]);
  const asyncMapped = datasets.map(a, async (s) => ({ ...s, label: 0 }));
  return asyncMapped.get(2).then((s) => {
    assert.equal(s.label, 0);
    assert.equal(s.index, 2);
    assert.throws(() => datasets.map(a, "f"), fails(OptionError, { option: "map(fn)" }));
    assert.throws(() => datasets.map(a, (s) => s, { keep: true }), fails(OptionError, { option: "map.keep" }, /no such option/));
    assert.throws(() => datasets.map(a, (s) => s, { shape: [2, 2] }), fails(OptionError, { option: "map.shape" }));
    assert.throws(() => datasets.map(a, () => undefined).get(0), fails(OptionError, { option: "map(fn) result for sample 0" }, /received undefined/));
    assert.throws(() => mapped.get(3), /get\(index\): expected an integer index in \[0, 2\], received 3/);
  });
});

test("datasets render as MIME bundles: kind, length, shape, class names, source", async () => {
  const ds = datasets.fromArrays(new Uint8Array(2 * 6), [2, 2, 3, 1], [0, 1], { classNames: ["cat", "<dog>"] });
  const b = ds[DISPLAY]();
  assert.deepEqual(Object.keys(b).sort(), ["text/html", "text/plain"]);
  assert.match(b["text/plain"], /^fromArrays: 2 samples/);
  assert.match(b["text/plain"], /shape: 2 x 3 x 1/);
  assert.match(b["text/plain"], /0: cat, 1: <dog>/);
  assert.match(b["text/html"], /&lt;dog&gt;/, "HTML is escaped");
  assert.ok(!b["text/html"].includes("<dog>"));
  const many = datasets.fromArrays(new Uint8Array(1), [1, 1, 1, 1], [0], { classNames: Array.from({ length: 30 }, (_, k) => `c${k}`) });
  assert.match(many[DISPLAY]()["text/plain"], /c19, \.\.\. \(10 more\)/);
  assert.match(datasets.subset(ds, [1])[DISPLAY]()["text/plain"], /subset \(1 of 2 samples\)/);
  assert.match(datasets.concat(ds, ds)[DISPLAY]()["text/plain"], /concat of 2 datasets \(2 \+ 2 samples\): 4 samples/);
  const dir = fx.tempDir("disp");
  const f = fx.writeIdx(dir, 2, 3, 3);
  const file = await datasets.idx(f.images, f.labels);
  assert.ok(file[DISPLAY]()["text/plain"].includes(`source: ${f.images}`));
  // Object.keys never lists symbols; what matters is that the method is not an own enumerable
  // property, so spreading or copying a dataset does not carry a stale display along.
  assert.equal(typeof file[DISPLAY], "function");
  assert.equal(Object.prototype.propertyIsEnumerable.call(file, DISPLAY), false, "the display method is not enumerable");
  assert.equal({ ...file }[DISPLAY], undefined, "a spread copy has no display method");
});

test("IDX: plain and gzipped, 3 and 4 dimensions, uint8 and int32 labels; images are views of the file", async () => {
  const dir = fx.tempDir("idx");
  for (const [gzip, c, labelType] of [[false, undefined, "uint8"], [true, undefined, "uint8"], [false, 3, "int32"], [true, 2, "int32"]]) {
    const sub = fs.mkdtempSync(path.join(dir, "v"));
    const f = fx.writeIdx(sub, 7, 3, 4, { gzip, c, labelType });
    const ds = await datasets.idx(f.images, f.labels);
    assert.equal(ds.length, 7);
    assert.deepEqual(ds.shape, [3, 4, c ?? 1]);
    assert.deepEqual(Array.from(ds.labels()), Array.from(f.labelValues));
    for (const i of [0, 3, 6]) {
      const s = ds.get(i);
      assert.deepEqual(Array.from(s.image.data), Array.from(f.pixels.subarray(i * f.imageSize, (i + 1) * f.imageSize)));
      assert.equal(s.path, f.images);
      assert.equal(s.image.data.buffer, ds.get(0).image.data.buffer, "one buffer for the whole file");
    }
    assert.equal(ds.pathOf(2), f.images);
  }
  const f = fx.writeIdx(fx.tempDir("idxnames"), 4, 2, 2, { classes: 4 });
  const named = await datasets.idx(f.images, f.labels, { classNames: ["a", "b", "c", "d"] });
  assert.deepEqual(named.classNames, ["a", "b", "c", "d"]);
});

test("IDX: broken files give FileFormatError with the file and the byte offset", async () => {
  const dir = fx.tempDir("idxbad");
  const f = fx.writeIdx(dir, 5, 3, 4);
  const full = fs.readFileSync(f.images);
  const write = (name, buf) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, buf);
    return p;
  };

  const cut = write("cut", full.subarray(0, full.length - 7));
  await assert.rejects(datasets.idx(cut, f.labels), fails(FileFormatError, { path: cut, offset: full.length - 7 }, /truncated: the header declares 5 x 3 x 4 uint8 = 60 data bytes \(the file should be 76 bytes\), the data ends after 53/));
  const longer = write("long", Buffer.concat([full, Buffer.alloc(3)]));
  await assert.rejects(datasets.idx(longer, f.labels), fails(FileFormatError, { path: longer, offset: full.length }, /3 unexpected bytes after the 5 x 3 x 4 uint8 data/));
  const magic = write("magic", Buffer.concat([Buffer.from([8, 3]), full.subarray(2)]));
  await assert.rejects(datasets.idx(magic, f.labels), fails(FileFormatError, { path: magic, offset: 0 }, /magic \(byte offset 0\): not an IDX file: the magic number starts with bytes 8, 3, expected 0, 0/));
  const type = write("type", Buffer.concat([full.subarray(0, 2), Buffer.from([0x42]), full.subarray(3)]));
  await assert.rejects(datasets.idx(type, f.labels), fails(FileFormatError, { path: type, offset: 2 }, /unknown IDX element type 0x42/));
  const head = write("head", full.subarray(0, 9));
  await assert.rejects(datasets.idx(head, f.labels), fails(FileFormatError, { path: head, offset: 9 }, /declares 3 dimensions \(16 header bytes\), the file ends after 9/));
  const empty = write("empty", Buffer.alloc(0));
  await assert.rejects(datasets.idx(empty, f.labels), fails(FileFormatError, { path: empty, offset: 0 }, /empty file/));
  const floats = write("floats", fx.idxBuffer(fx.IDX_CODES.float32, [5, 3, 4], new Float32Array(60)));
  await assert.rejects(datasets.idx(floats, f.labels), fails(FileFormatError, { path: floats, offset: 2 }, /images must be uint8 \(element type 0x08\), found float32/));
  const flat = write("flat", fx.idxBuffer(fx.IDX_CODES.uint8, [5, 12], new Uint8Array(60)));
  await assert.rejects(datasets.idx(flat, f.labels), fails(FileFormatError, { path: flat, offset: 3 }, /3 dimensions \(n x h x w\) or 4 \(n x h x w x c\), found 2 \(5 x 12\)/));

  // label files: count mismatch, labels out of range for the class names, float labels
  const four = fx.writeIdx(fx.tempDir("idx4"), 4, 3, 4);
  await assert.rejects(datasets.idx(f.images, four.labels), fails(FileFormatError, { path: four.labels, offset: 4 }, new RegExp(`declares 4 labels, the image file ${f.images.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} declares 5 images`)));
  const big = write("biglabels", fx.idxBuffer(fx.IDX_CODES.uint8, [5], Uint8Array.from([0, 1, 2, 12, 3])));
  await assert.rejects(datasets.idx(f.images, big, { classNames: ["a", "b", "c", "d"] }), fails(FileFormatError, { path: big, offset: 8 + 3 }, /label 3 is 12, expected a class index in \[0, 3\] \(4 classes\)/));
  const neg = write("neglabels", fx.idxBuffer(fx.IDX_CODES.int32, [5], fx.int32BE([0, 1, -2, 0, 0])));
  await assert.rejects(datasets.idx(f.images, neg), fails(FileFormatError, { path: neg, offset: 8 + 2 * 4 }, /label 2 is -2, expected a class index >= 0/));
  const fl = write("floatlabels", fx.idxBuffer(fx.IDX_CODES.float64, [5], new Float64Array(5)));
  await assert.rejects(datasets.idx(f.images, fl), fails(FileFormatError, { path: fl, offset: 2 }, /labels must have an integer element type, found float64/));

  // arguments
  const missing = path.join(dir, "missing");
  await assert.rejects(datasets.idx(missing, f.labels), fails(OptionError, { option: "idx(imagesPath)", received: missing }, /expected an existing file; nothing exists at that path/));
  await assert.rejects(datasets.idx(f.images, dir), fails(OptionError, { option: "idx(labelsPath)", received: dir }, /a file; that path is a folder/));
  await assert.rejects(datasets.idx(42, f.labels), fails(OptionError, { option: "idx(imagesPath)", received: 42 }));
  await assert.rejects(datasets.idx(f.images, f.labels, { classes: 3 }), fails(OptionError, { option: "idx.classes" }));
});

test("IDX: a truncated or corrupt gzip stream names the compressed byte where it breaks", async () => {
  const dir = fx.tempDir("gz");
  const f = fx.writeIdx(dir, 40, 28, 28, { gzip: true });
  const z = fs.readFileSync(f.images);

  const cutAt = Math.floor(z.length * 0.6);
  const cut = path.join(dir, "cut.gz");
  fs.writeFileSync(cut, z.subarray(0, cutAt));
  await assert.rejects(datasets.idx(cut, f.labels), fails(FileFormatError, { path: cut, offset: cutAt }, /truncated gzip stream \(unexpected end of file\): the file ends after \d+ compressed bytes, which decode to \d+ bytes/));

  // A bad block type in the first deflate block header: gzip header (10 bytes) + the 3 header
  // bits of the first block, whose bits 1-2 are BTYPE; 3 is reserved and always invalid.
  const badType = Buffer.from(z);
  assert.equal(badType[3] & 0x08, 0, "fixture gzip has no FNAME field");
  badType[10] |= 0x06;
  const bt = path.join(dir, "btype.gz");
  fs.writeFileSync(bt, badType);
  await assert.rejects(datasets.idx(bt, f.labels), fails(FileFormatError, { path: bt, offset: 10 }, /corrupt gzip stream \(invalid block type\): decoding fails at compressed byte 10 of \d+/));

  // A flipped bit in the CRC-32 of the trailer: the data decodes, the check fails at the end.
  const badCrc = Buffer.from(z);
  badCrc[z.length - 8] ^= 0x01;
  const crc = path.join(dir, "crc.gz");
  fs.writeFileSync(crc, badCrc);
  await assert.rejects(datasets.idx(crc, f.labels), (e) => {
    assert.ok(e instanceof FileFormatError);
    assert.equal(e.path, crc);
    assert.match(e.message, /corrupt gzip stream \(incorrect data check\)/);
    assert.ok(e.offset >= z.length - 8 && e.offset < z.length, `offset ${e.offset} inside the 8-byte trailer`);
    return true;
  });

  // Offsets past the gzip layer are offsets in the gunzipped data, and say so.
  const raw = zlib.gunzipSync(z);
  const short = path.join(dir, "short.gz");
  fs.writeFileSync(short, zlib.gzipSync(raw.subarray(0, raw.length - 5)));
  await assert.rejects(datasets.idx(short, f.labels), fails(FileFormatError, { path: short, offset: raw.length - 5 }, /truncated: .*\[offset counts bytes of the gunzipped data\]/));
});

test("fashionMnist and mnist read the standard file names from { root }", async () => {
  const dir = fx.tempDir("mnistroot");
  const files = fx.writeMnistRoot(dir, { train: 6, test: 4, h: 5, w: 4 });
  for (const [fn, names] of [["fashionMnist", datasets.FASHION_MNIST_CLASSES], ["mnist", datasets.MNIST_CLASSES]]) {
    const train = await datasets[fn]({ root: dir, split: "train" });
    const t = await datasets[fn]({ root: dir, split: "test" });
    assert.equal(train.length, 6);
    assert.equal(t.length, 4);
    assert.deepEqual(train.shape, [5, 4, 1]);
    assert.deepEqual(train.classNames, names);
    assert.deepEqual(Array.from(t.labels()), Array.from(files.test.labelValues));
    assert.deepEqual(Array.from(t.get(3).image.data), Array.from(files.test.pixels.subarray(3 * 20, 4 * 20)));
    assert.equal((await datasets[fn]({ root: dir })).length, 6, "split defaults to train");
  }
  // uncompressed files with the dotted spelling some mirrors use
  const plain = fx.tempDir("mnistplain");
  const f = fx.writeIdx(plain, 3, 2, 2, { prefix: "t10k-" });
  fs.renameSync(f.images, path.join(plain, "t10k-images.idx3-ubyte"));
  fs.renameSync(f.labels, path.join(plain, "t10k-labels.idx1-ubyte"));
  assert.equal((await datasets.mnist({ root: plain, split: "test" })).length, 3);
  await assert.rejects(datasets.mnist({ root: plain, split: "train" }), fails(OptionError, { option: "mnist.root", received: plain }, /a folder holding train-images-idx3-ubyte\.gz or train-images-idx3-ubyte \(no such file there\)/));
  await assert.rejects(datasets.mnist(), fails(OptionError, { option: "mnist.root", received: undefined }));
  // labels outside the 10 classes are a file error at the label's byte
  const bad = fx.tempDir("mnistbad");
  const g = fx.writeMnistRoot(bad, { train: 3, test: 3, gzip: false });
  const lb = fs.readFileSync(g.test.labels);
  lb[8 + 1] = 10;
  fs.writeFileSync(g.test.labels, lb);
  await assert.rejects(datasets.fashionMnist({ root: bad, split: "test" }), fails(FileFormatError, { path: g.test.labels, offset: 9 }, /label 1 is 10, expected a class index in \[0, 9\] \(10 classes\)/));
});

test("fashionMnist: option errors name the option, the value and the expectation", async () => {
  await assert.rejects(datasets.fashionMnist({ split: "val" }), fails(OptionError, { option: "fashionMnist.split", received: "val" }, /expected one of "train", "test", received "val"/));
  await assert.rejects(datasets.fashionMnist({ root: "/nonexistent/fm" }), fails(OptionError, { option: "fashionMnist.root", received: "/nonexistent/fm" }, /expected an existing folder with the IDX files; nothing exists at that path/));
  const file = path.join(fx.tempDir("fmfile"), "f");
  fs.writeFileSync(file, "x");
  await assert.rejects(datasets.fashionMnist({ root: file }), fails(OptionError, { option: "fashionMnist.root" }, /that path is a file, not a folder/));
  await assert.rejects(datasets.fashionMnist({ root: 5 }), fails(OptionError, { option: "fashionMnist.root", received: 5 }));
  await assert.rejects(datasets.fashionMnist({ splt: "train" }), fails(OptionError, { option: "fashionMnist.splt" }, /no such option \(known: split, root\)/));
  await assert.rejects(datasets.fashionMnist("train"), fails(OptionError, { option: "fashionMnist(options)", received: "train" }));
});

// ---------------------------------------------------------------------------------- real data

const FM = datasets.FASHION_MNIST_ROOT;
const haveFashion = fs.existsSync(path.join(FM, "train-images-idx3-ubyte.gz"));

test("the real Fashion-MNIST (Debian's dataset-fashion-mnist): sizes, shape, labels, pixels", { skip: haveFashion ? false : `no ${FM} (apt-get install dataset-fashion-mnist)` }, async () => {
  const [train, testSet] = await Promise.all([datasets.fashionMnist({ split: "train" }), datasets.fashionMnist({ split: "test" })]);
  assert.equal(train.length, 60000);
  assert.equal(testSet.length, 10000);
  assert.deepEqual(train.shape, [28, 28, 1]);
  assert.deepEqual(testSet.shape, [28, 28, 1]);
  assert.equal(train.classNames.length, 10);
  assert.equal(train.classNames[0], "T-shirt/top");
  assert.equal(train.classNames[9], "Ankle boot");
  assert.equal(train.source, path.join(FM, "train-images-idx3-ubyte.gz"));

  for (const [ds, perClass] of [[train, 6000], [testSet, 1000]]) {
    const labels = ds.labels();
    assert.ok(labels instanceof Int32Array);
    assert.equal(labels.length, ds.length);
    const counts = new Array(10).fill(0);
    for (const l of labels) {
      assert.ok(l >= 0 && l <= 9);
      counts[l]++;
    }
    assert.deepEqual(counts, new Array(10).fill(perClass), `${perClass} images per class`);
  }

  // Compare with the bytes read here, independently: header 16 bytes for images, 8 for labels.
  const rawImages = zlib.gunzipSync(fs.readFileSync(path.join(FM, "t10k-images-idx3-ubyte.gz")));
  const rawLabels = zlib.gunzipSync(fs.readFileSync(path.join(FM, "t10k-labels-idx1-ubyte.gz")));
  assert.equal(rawImages.readUInt32BE(0), 0x803);
  for (const i of [0, 1, 4999, 9999]) {
    const s = testSet.get(i);
    assert.equal(s.label, rawLabels[8 + i]);
    assert.ok(Buffer.from(s.image.data).equals(rawImages.subarray(16 + i * 784, 16 + (i + 1) * 784)), `test image ${i}`);
  }

  // Real pictures: a dark background (the corners) and a bright garment; every image has ink.
  let blankImages = 0;
  let cornerSum = 0;
  let centreSum = 0;
  const px = train.pixels;
  for (let i = 0; i < train.length; i++) {
    const o = i * 784;
    let max = 0;
    for (let k = 0; k < 784; k++) if (px[o + k] > max) max = px[o + k];
    if (max === 0) blankImages++;
    cornerSum += px[o] + px[o + 27] + px[o + 27 * 28] + px[o + 783];
    centreSum += px[o + 14 * 28 + 14];
  }
  assert.equal(blankImages, 0, "no all-black image");
  assert.ok(cornerSum / (4 * train.length) < 10, "corners are background");
  assert.ok(centreSum / train.length > 60, "the centre is garment");
});
