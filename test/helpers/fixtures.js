"use strict";
// Writes small data-set files for the tests: IDX (plain and gzipped), npy, CIFAR-10 batches,
// PNG/JPEG image folders, and broken variants of each.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const zlib = require("node:zlib");

function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `batchlab-${name}-`));
}

function idxBuffer(typeCode, dims, data) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = typeCode;
  head[3] = dims.length;
  dims.forEach((d, k) => head.writeUInt32BE(d, 4 + 4 * k));
  return Buffer.concat([head, Buffer.from(data)]);
}

/** n images of h x w whose pixel (i, y, x) is (i + y * w + x) % 256; labels i % 10. */
function writeIdx(dir, n, h, w, { gzip = false } = {}) {
  const px = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) px[i * h * w + p] = (i + p) % 256;
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  const wrap = (b) => (gzip ? zlib.gzipSync(b) : b);
  const ext = gzip ? ".gz" : "";
  const images = path.join(dir, `images-idx3-ubyte${ext}`);
  const labelsPath = path.join(dir, `labels-idx1-ubyte${ext}`);
  fs.writeFileSync(images, wrap(idxBuffer(0x08, [n, h, w], px)));
  fs.writeFileSync(labelsPath, wrap(idxBuffer(0x08, [n], labels)));
  return { images, labels: labelsPath, pixels: px, labelValues: labels };
}

function npyBuffer(descr, shape, data) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const pre = Buffer.alloc(10);
  Buffer.from("\x93NUMPY", "latin1").copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

function writeNpy(dir, n, h, w, c) {
  const px = Uint8Array.from({ length: n * h * w * c }, (_, i) => (i * 3) % 256);
  const labels = BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 3));
  const images = path.join(dir, "x.npy");
  const labelsPath = path.join(dir, "y.npy");
  fs.writeFileSync(images, npyBuffer("|u1", c === 1 ? [n, h, w] : [n, h, w, c], px));
  fs.writeFileSync(labelsPath, npyBuffer("<i8", [n], labels));
  return { images, labels: labelsPath, pixels: px };
}

/** One CIFAR batch file of n records: label i % 10; channel c of pixel p is (c * 50 + p) % 256. */
function writeCifar(dir, name, n) {
  const buf = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    buf[i * 3073] = i % 10;
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) buf[i * 3073 + 1 + c * 1024 + p] = (c * 50 + p + i) % 256;
  }
  fs.writeFileSync(path.join(dir, name), buf);
}

/** root/<class>/<k>.png|jpg solid-colour images; returns the folder and the files written. */
async function writeImageFolder(dir, classes = { cats: 2, dogs: 3 }, { size = [6, 5] } = {}) {
  const sharp = require("sharp");
  const files = [];
  let k = 0;
  for (const [cls, count] of Object.entries(classes)) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (let i = 0; i < count; i++, k++) {
      const [h, w] = size;
      const raw = Buffer.alloc(h * w * 3);
      for (let p = 0; p < h * w; p++) raw.set([10 * k, 100, 200 - k], p * 3);
      const png = i % 2 === 0;
      const file = path.join(dir, cls, `${i}.${png ? "png" : "jpg"}`);
      const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
      await (png ? img.png() : img.jpeg({ quality: 95 })).toFile(file);
      files.push(file);
    }
  }
  return files;
}

module.exports = { tempDir, idxBuffer, writeIdx, npyBuffer, writeNpy, writeCifar, writeImageFolder };
