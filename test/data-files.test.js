"use strict";
// NumPy .npy and CIFAR-10 binary batches, on fixtures written here, and every error a broken
// file or a bad option gives.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const datasets = require("../dist/data");
const { OptionError, FileFormatError } = require("../dist/errors");
const fx = require("./helpers/fixtures");

const { fails } = require("./helpers/fails");

// ---------------------------------------------------------------------------------- npy

test("npy: format versions 1, 2 and 3, (n,h,w) and (n,h,w,c) uint8 images, views of the file", async () => {
  for (const version of [1, 2, 3]) {
    for (const c of [1, 3]) {
      const dir = fx.tempDir(`npy${version}${c}`);
      const f = fx.writeNpy(dir, 5, 4, 3, c, { version });
      const ds = await datasets.npy(f.images, f.labels);
      assert.equal(ds.length, 5);
      assert.deepEqual(ds.shape, [4, 3, c]);
      assert.deepEqual(Array.from(ds.labels()), f.labelValues);
      const size = 4 * 3 * c;
      for (let i = 0; i < 5; i++) {
        const s = ds.get(i);
        assert.deepEqual(Array.from(s.image.data), Array.from(f.pixels.subarray(i * size, (i + 1) * size)));
        assert.equal(s.image.data.buffer, ds.get(0).image.data.buffer);
        assert.equal(s.path, f.images);
      }
    }
  }
});

test("npy: labels in any integer dtype and byte order", async () => {
  const dir = fx.tempDir("npylabels");
  const n = 6;
  const images = path.join(dir, "x.npy");
  fs.writeFileSync(images, fx.npyBuffer("|u1", [n, 2, 2], fx.bytes(9, n * 4)));
  const values = [0, 7, 3, 200, 1, 42];
  for (const descr of ["|u1", "|i1", "<u2", ">u2", "<i2", ">i2", "<i4", ">i4", "<u4", "<i8", ">i8", "<u8", "u1", "=i4"]) {
    const vals = descr.endsWith("i1") ? values.map((v) => v % 128) : values;
    const labels = path.join(dir, `y${descr.replace(/[<>|=]/, "_")}.npy`);
    fs.writeFileSync(labels, fx.npyBuffer(descr, [n], fx.encodeInts(descr.replace("=", "<"), vals)));
    const ds = await datasets.npy(images, labels);
    assert.deepEqual(Array.from(ds.labels()), vals, descr);
  }
  // shape (n, 1) labels are accepted too
  const col = path.join(dir, "col.npy");
  fs.writeFileSync(col, fx.npyBuffer("<i4", [n, 1], fx.encodeInts("<i4", values)));
  assert.deepEqual(Array.from((await datasets.npy(images, col)).labels()), values);
});

test("npy: broken files and unsupported arrays name the file and the byte offset", async () => {
  const dir = fx.tempDir("npybad");
  const f = fx.writeNpy(dir, 4, 2, 3, 3);
  const img = fs.readFileSync(f.images);
  const dataOffset = img.length - f.pixels.length;
  const write = (name, buf) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, buf);
    return p;
  };

  const cut = write("cut.npy", img.subarray(0, img.length - 10));
  await assert.rejects(datasets.npy(cut, f.labels), fails(FileFormatError, { path: cut, offset: img.length - 10 }, new RegExp(`truncated: shape \\(4, 2, 3, 3\\) of \\|u1 needs 72 data bytes \\(the file should be ${img.length} bytes\\), the data ends after 62`)));
  const longer = write("long.npy", Buffer.concat([img, Buffer.alloc(5)]));
  await assert.rejects(datasets.npy(longer, f.labels), fails(FileFormatError, { path: longer, offset: img.length }, /5 unexpected bytes after the \(4, 2, 3, 3\) \|u1 data/));
  const magic = Buffer.from(img);
  magic[2] = 0x58;
  const mg = write("magic.npy", magic);
  await assert.rejects(datasets.npy(mg, f.labels), fails(FileFormatError, { path: mg, offset: 2 }, /not a \.npy file: byte 2 is 0x58/));
  const ver = Buffer.from(img);
  ver[6] = 4;
  const vp = write("ver.npy", ver);
  await assert.rejects(datasets.npy(vp, f.labels), fails(FileFormatError, { path: vp, offset: 6 }, /unsupported \.npy format version 4\.0/));
  const hl = write("headerlen.npy", img.subarray(0, 40));
  await assert.rejects(datasets.npy(hl, f.labels), fails(FileFormatError, { path: hl, offset: 40 }, new RegExp(`header length field declares ${dataOffset - 10} header bytes \\(ending at byte ${dataOffset}\\), the file ends at byte 40`)));

  // malformed header dicts: the offset is the byte where the header stops parsing
  const bad = async (name, header, offsetInHeader, pattern) => {
    const p = write(name, fx.npyBuffer("|u1", [4, 2, 3, 3], f.pixels, { header }));
    await assert.rejects(datasets.npy(p, f.labels), fails(FileFormatError, { path: p, offset: 10 + offsetInHeader }, pattern));
  };
  const good = fx.npyHeader("|u1", [4, 2, 3, 3]);
  const colon = good.indexOf(":");
  const noColon = good.slice(0, colon) + good.slice(colon + 1);
  // the parser skips the blank where the colon was and stops at the next character
  await bad("nocolon.npy", noColon, colon + noColon.slice(colon).search(/\S/), /malformed \.npy header: expected ":"/);
  const shapeAt = good.indexOf("(");
  await bad("badshape.npy", good.replace("(4, 2", "(4, x2"), shapeAt + 4, /expected a dimension/);
  await bad("nobrace.npy", good.slice(1), 0, /expected "\{"/);
  await bad("nokey.npy", "{'descr': '|u1', 'shape': (4, 2, 3, 3), }", 0, /no 'fortran_order' key/);
  await bad("extrakey.npy", good.replace("}", "'extra': True, }"), good.length - 1, /unknown key 'extra'/);
  const order = good.indexOf("False");
  await bad("fortran.npy", good.replace("False", "True"), order, /Fortran-order arrays are not supported, only C order/);
  await bad("struct.npy", good.replace("'|u1'", "[('a', '|u1')]"), good.indexOf("'|u1'"), /structured dtypes/);

  const floats = write("f.npy", fx.npyBuffer("<f4", [2, 2, 2], new Float32Array(8)));
  await assert.rejects(datasets.npy(floats, f.labels), fails(FileFormatError, { path: floats, offset: 10 + fx.npyHeader("<f4", [2, 2, 2]).indexOf("'<f4'") }, /images must be uint8 \('\|u1'\), found '<f4'/));
  const flat = write("flat.npy", fx.npyBuffer("|u1", [4, 18], f.pixels));
  await assert.rejects(datasets.npy(flat, f.labels), fails(FileFormatError, { path: flat }, /images must have shape \(n, h, w\) or \(n, h, w, c\), found \(4, 18\)/));

  // labels: count, dtype, range
  const three = write("three.npy", fx.npyBuffer("<i8", [3], fx.encodeInts("<i8", [0, 1, 2])));
  await assert.rejects(datasets.npy(f.images, three), fails(FileFormatError, { path: three, offset: 10 + fx.npyHeader("<i8", [3]).indexOf("(3,)") }, /expected 4 labels, shape \(4,\), to match the 4 images of .*x\.npy; found shape \(3\)/));
  const fl = write("flabels.npy", fx.npyBuffer("<f8", [4], new Float64Array(4)));
  await assert.rejects(datasets.npy(f.images, fl), fails(FileFormatError, { path: fl }, /labels must have an integer dtype .* found '<f8'/));
  const lab = fs.readFileSync(f.labels);
  const labelsAt = lab.length - 4 * 8;
  const neg = write("neg.npy", fx.npyBuffer("<i8", [4], fx.encodeInts("<i8", [0, 1, -3, 1])));
  await assert.rejects(datasets.npy(f.images, neg), fails(FileFormatError, { path: neg, offset: labelsAt + 2 * 8 }, /label 2 is -3, expected a class index >= 0/));
  const huge = write("huge.npy", fx.npyBuffer("<i8", [4], fx.encodeInts("<i8", [0, 2 ** 40, 1, 1])));
  await assert.rejects(datasets.npy(f.images, huge), fails(FileFormatError, { path: huge, offset: labelsAt + 8 }, /label 1 is 1099511627776, expected a class index >= 0 \(that fits in int32\)/));
  await assert.rejects(datasets.npy(f.images, f.labels, { classNames: ["a", "b"] }), fails(FileFormatError, { path: f.labels, offset: labelsAt + 8 * f.labelValues.indexOf(2) }, /label \d is 2, expected a class index in \[0, 1\] \(2 classes\)/));
  assert.deepEqual((await datasets.npy(f.images, f.labels, { classNames: ["a", "b", "c"] })).classNames, ["a", "b", "c"]);

  // arguments
  await assert.rejects(datasets.npy(path.join(dir, "none.npy"), f.labels), fails(OptionError, { option: "npy(imagesPath)" }, /an existing file/));
  await assert.rejects(datasets.npy(f.images, undefined), fails(OptionError, { option: "npy(labelsPath)", received: undefined }));
  await assert.rejects(datasets.npy(f.images, f.labels, { names: [] }), fails(OptionError, { option: "npy.names" }));
});

// ---------------------------------------------------------------------------------- CIFAR-10

/** HWC pixel (y, x, c) of a CHW record, computed the plain way. */
function hwcOf(record) {
  const out = new Uint8Array(3072);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) out[(y * 32 + x) * 3 + c] = record[1 + c * 1024 + y * 32 + x];
  return out;
}

test("CIFAR-10: train batches 1..5 and the test batch become one HWC buffer", async () => {
  const dir = fx.tempDir("cifar");
  const batches = [];
  for (let k = 1; k <= 5; k++) batches.push(fx.writeCifar(dir, `data_batch_${k}.bin`, k, k).buf);
  const testBuf = fx.writeCifar(dir, "test_batch.bin", 3, 9).buf;
  const train = await datasets.cifar10({ root: dir, split: "train" });
  assert.equal(train.length, 1 + 2 + 3 + 4 + 5);
  assert.deepEqual(train.shape, [32, 32, 3]);
  assert.deepEqual(train.classNames, datasets.CIFAR10_CLASSES);
  let i = 0;
  for (const buf of batches) {
    for (let r = 0; r < buf.length / 3073; r++, i++) {
      const rec = buf.subarray(r * 3073, (r + 1) * 3073);
      const s = train.get(i);
      assert.equal(s.label, rec[0]);
      assert.deepEqual(Array.from(s.image.data), Array.from(hwcOf(rec)), `sample ${i}`);
      assert.equal(s.image.data.buffer, train.pixels.buffer);
    }
  }
  assert.deepEqual(Array.from(train.labels()), batches.flatMap((b) => Array.from({ length: b.length / 3073 }, (_, r) => b[r * 3073])));
  const t = await datasets.cifar10({ root: dir, split: "test" });
  assert.equal(t.length, 3);
  assert.deepEqual(Array.from(t.get(2).image.data), Array.from(hwcOf(testBuf.subarray(2 * 3073))));
  assert.equal(t.pathOf(0), path.join(dir, "test_batch.bin"));
  assert.equal((await datasets.cifar10({ root: dir })).length, 15, "split defaults to train");

  // batches.meta.txt gives the class names; the parent of cifar-10-batches-bin works as root
  const parent = fx.tempDir("cifarparent");
  const inner = path.join(parent, "cifar-10-batches-bin");
  fs.mkdirSync(inner);
  fx.writeCifar(inner, "test_batch.bin", 2);
  const names = Array.from({ length: 10 }, (_, k) => `class ${k}`);
  fs.writeFileSync(path.join(inner, "batches.meta.txt"), names.join("\n") + "\n\n");
  const fromParent = await datasets.cifar10({ root: parent, split: "test" });
  assert.deepEqual(fromParent.classNames, names);
  assert.equal(fromParent.length, 2);
});

test("CIFAR-10: broken batches and bad options", async () => {
  const dir = fx.tempDir("cifarbad");
  const file = path.join(dir, "test_batch.bin");
  fs.writeFileSync(file, Buffer.concat([fx.cifarBuffer(2), Buffer.alloc(100)]));
  await assert.rejects(datasets.cifar10({ root: dir, split: "test" }), fails(FileFormatError, { path: file, offset: 2 * 3073 }, /size 6246 is not a multiple of the 3073-byte record \(1 label byte \+ 3072 pixel bytes\): 2 whole records end at byte 6146, then 100 bytes of a partial one/));
  fs.writeFileSync(file, Buffer.alloc(0));
  await assert.rejects(datasets.cifar10({ root: dir, split: "test" }), fails(FileFormatError, { path: file, offset: 0 }, /empty file/));
  const withBadLabel = fx.cifarBuffer(3);
  withBadLabel[2 * 3073] = 11;
  fs.writeFileSync(file, withBadLabel);
  await assert.rejects(datasets.cifar10({ root: dir, split: "test" }), fails(FileFormatError, { path: file, offset: 2 * 3073 }, /record 2 has label 11, expected a class index in \[0, 9\]/));
  fs.writeFileSync(file, fx.cifarBuffer(3));
  const meta = path.join(dir, "batches.meta.txt");
  fs.writeFileSync(meta, "a\nb\nc\n");
  await assert.rejects(datasets.cifar10({ root: dir, split: "test" }), fails(FileFormatError, { path: meta, offset: 6 }, /3 class names, expected one per line for the 10 CIFAR-10 classes/));
  fs.writeFileSync(meta, Array.from({ length: 11 }, (_, k) => `n${k}`).join("\n"));
  await assert.rejects(datasets.cifar10({ root: dir, split: "test" }), fails(FileFormatError, { path: meta, offset: 30 }, /more than the 10 CIFAR-10 class names \(line "n10"\)/));
  fs.rmSync(meta);
  assert.equal((await datasets.cifar10({ root: dir, split: "test" })).length, 3);

  await assert.rejects(datasets.cifar10({ root: dir, split: "train" }), fails(OptionError, { option: "cifar10.root", received: dir }, /missing: data_batch_1\.bin, data_batch_2\.bin, data_batch_3\.bin, data_batch_4\.bin, data_batch_5\.bin/));
  await assert.rejects(datasets.cifar10({ root: dir, split: "validation" }), fails(OptionError, { option: "cifar10.split", received: "validation" }, /one of "train", "test"/));
  await assert.rejects(datasets.cifar10({ root: path.join(dir, "nope") }), fails(OptionError, { option: "cifar10.root" }, /nothing exists at that path/));
  await assert.rejects(datasets.cifar10({ split: "test" }), fails(OptionError, { option: "cifar10.root", received: undefined }));
  await assert.rejects(datasets.cifar10(), fails(OptionError, { option: "cifar10(options)" }));
  await assert.rejects(datasets.cifar10({ root: dir, batch: 1 }), fails(OptionError, { option: "cifar10.batch" }, /no such option \(known: root, split\)/));
});
