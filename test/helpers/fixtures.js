"use strict";
// Writes small data-set files for the data tests, into temporary folders removed at exit:
// IDX (plain and gzipped), .npy (v1/v2/v3, any integer label dtype), CIFAR-10 batches, PNG
// (fast-png, for 8/16-bit gray/RGB/RGBA) and JPEG (sharp) image folders, and the helpers that
// break them (truncate, flip a byte).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const zlib = require("node:zlib");
const { encode: encodePng } = require("fast-png");

const made = [];
process.on("exit", () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** Where many small files are made fastest: tmpfs (/dev/shm) when it is there and writable. */
function fastTmp() {
  try {
    fs.accessSync("/dev/shm", fs.constants.W_OK);
    if (fs.statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    /* no tmpfs */
  }
  return os.tmpdir();
}

/** A fresh temporary folder, removed when the process exits; `fast` puts it on tmpfs if there is one. */
function tempDir(name, { fast = false } = {}) {
  const d = fs.mkdtempSync(path.join(fast ? fastTmp() : os.tmpdir(), `batchlab-${name}-`));
  made.push(d);
  return d;
}

/** Deterministic, varied bytes: value k of stream `seed`. */
function byteAt(seed, k) {
  let x = (Math.imul(k + 1, 0x9e3779b1) ^ Math.imul(seed + 7, 0x85ebca6b)) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x2c1b3c6d) >>> 0;
  x ^= x >>> 12;
  return x & 0xff;
}

function bytes(seed, n) {
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[k] = byteAt(seed, k);
  return out;
}

// ------------------------------------------------------------------------------------ IDX

const IDX_CODES = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e };

/** An IDX file: magic (0, 0, type, ndim), big-endian dims, then `data` bytes as given. */
function idxBuffer(typeCode, dims, data) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = typeCode;
  head[3] = dims.length;
  dims.forEach((d, k) => head.writeUInt32BE(d, 4 + 4 * k));
  return Buffer.concat([head, Buffer.from(data.buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data)]);
}

/** Big-endian int32 label bytes. */
function int32BE(values) {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeInt32BE(v, 4 * i));
  return b;
}

/**
 * n images of h x w (x c when c is given) and n labels, as IDX files in `dir`. Labels are
 * (i * 3) % classes; pixels come from bytes(). Options: gzip, c, prefix (file name prefix),
 * labelType ("uint8" or "int32"), classes (default 10).
 */
function writeIdx(dir, n, h, w, { gzip = false, c, prefix = "", labelType = "uint8", classes = 10 } = {}) {
  const per = h * w * (c ?? 1);
  const px = bytes(n * 1000 + per, n * per);
  const labelValues = Int32Array.from({ length: n }, (_, i) => (i * 3) % classes);
  const wrap = (b) => (gzip ? zlib.gzipSync(b) : b);
  const ext = gzip ? ".gz" : "";
  const images = path.join(dir, `${prefix}images-idx3-ubyte${ext}`);
  const labels = path.join(dir, `${prefix}labels-idx1-ubyte${ext}`);
  fs.writeFileSync(images, wrap(idxBuffer(IDX_CODES.uint8, c === undefined ? [n, h, w] : [n, h, w, c], px)));
  const labelBytes = labelType === "int32" ? int32BE(Array.from(labelValues)) : Uint8Array.from(labelValues);
  fs.writeFileSync(labels, wrap(idxBuffer(IDX_CODES[labelType], [n], labelBytes)));
  return { images, labels, pixels: px, labelValues, imageSize: per };
}

/** The four MNIST-named files (train-/t10k-, gzipped) in `dir`, as fashionMnist/mnist expect. */
function writeMnistRoot(dir, { train = 6, test = 4, h = 5, w = 4, gzip = true } = {}) {
  const ext = gzip ? ".gz" : "";
  const out = {};
  for (const [split, prefix, n] of [["train", "train", train], ["test", "t10k", test]]) {
    const f = writeIdx(dir, n, h, w, { gzip, prefix: `${prefix}-` });
    const images = path.join(dir, `${prefix}-images-idx3-ubyte${ext}`);
    const labels = path.join(dir, `${prefix}-labels-idx1-ubyte${ext}`);
    out[split] = { ...f, images, labels };
  }
  return out;
}

// ------------------------------------------------------------------------------------ npy

/** Encodes integer `values` in a numpy dtype such as "|u1", "<i4", ">i2", "<u8". */
function encodeInts(descr, values) {
  const m = /^([<>|=]?)([iu])(\d)$/.exec(descr);
  if (!m) throw new Error(`encodeInts: unsupported ${descr}`);
  const le = m[1] !== ">";
  const size = Number(m[3]);
  const b = Buffer.alloc(size * values.length);
  values.forEach((v, i) => {
    const o = i * size;
    if (size === 1) m[2] === "u" ? b.writeUInt8(v, o) : b.writeInt8(v, o);
    else if (size === 2) m[2] === "u" ? (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o)) : le ? b.writeInt16LE(v, o) : b.writeInt16BE(v, o);
    else if (size === 4) m[2] === "u" ? (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o)) : le ? b.writeInt32LE(v, o) : b.writeInt32BE(v, o);
    else m[2] === "u" ? (le ? b.writeBigUInt64LE(BigInt(v), o) : b.writeBigUInt64BE(BigInt(v), o)) : le ? b.writeBigInt64LE(BigInt(v), o) : b.writeBigInt64BE(BigInt(v), o);
  });
  return b;
}

/** The header dict numpy writes for (descr, shape, fortran). */
function npyHeader(descr, shape, fortran = false) {
  return `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
}

/**
 * A .npy file. `version` 1, 2 or 3; `header` replaces the dict text (for malformed headers).
 * The header is padded with spaces and a newline so the data starts on a 64-byte boundary.
 */
function npyBuffer(descr, shape, data, { version = 1, fortran = false, header } = {}) {
  let h = header ?? npyHeader(descr, shape, fortran);
  const pre = version === 1 ? 10 : 12;
  h += " ".repeat((64 - ((pre + h.length + 1) % 64)) % 64) + "\n";
  const head = Buffer.alloc(pre);
  Buffer.from("\x93NUMPY", "latin1").copy(head, 0);
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(h.length, 8);
  else head.writeUInt32LE(h.length, 8);
  const body = data.buffer ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
  return Buffer.concat([head, Buffer.from(h, version === 3 ? "utf8" : "latin1"), body]);
}

/** Images x.npy (uint8, (n,h,w) when c is 1 else (n,h,w,c)) and labels y.npy in `labelDescr`. */
function writeNpy(dir, n, h, w, c, { labelDescr = "<i8", version = 1, classes = 3 } = {}) {
  const px = bytes(n * 31 + c, n * h * w * c);
  const labelValues = Array.from({ length: n }, (_, i) => (i * 2 + 1) % classes);
  const images = path.join(dir, "x.npy");
  const labels = path.join(dir, "y.npy");
  fs.writeFileSync(images, npyBuffer("|u1", c === 1 ? [n, h, w] : [n, h, w, c], px, { version }));
  fs.writeFileSync(labels, npyBuffer(labelDescr, [n], encodeInts(labelDescr, labelValues), { version }));
  return { images, labels, pixels: px, labelValues };
}

// ------------------------------------------------------------------------------------ CIFAR

/** n CIFAR-10 records (label byte + 3072 CHW pixel bytes); label of record i is (i + seed) % 10. */
function cifarBuffer(n, seed = 0) {
  const buf = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    buf[i * 3073] = (i + seed) % 10;
    buf.set(bytes(seed * 100 + i, 3072), i * 3073 + 1);
  }
  return buf;
}

function writeCifar(dir, name, n, seed = 0) {
  const file = path.join(dir, name);
  const buf = cifarBuffer(n, seed);
  fs.writeFileSync(file, buf);
  return { file, buf };
}

// ------------------------------------------------------------------------------------ PNG / JPEG

/**
 * A PNG encoded by fast-png. `samples` holds height*width*channels values (0..255, or 0..65535
 * when depth is 16), channels 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).
 */
function pngBuffer({ width, height, channels, depth = 8, samples }) {
  const data = depth === 16 ? Uint16Array.from(samples) : Uint8Array.from(samples);
  return Buffer.from(encodePng({ width, height, channels, depth, data }));
}

/** The chunks of a PNG as [{ type, offset, length }], walked independently of the library. */
function pngChunks(buf) {
  const out = [];
  for (let p = 8; p + 8 <= buf.length; ) {
    const length = buf.readUInt32BE(p);
    out.push({ type: buf.toString("latin1", p + 4, p + 8), offset: p, length });
    p += 12 + length;
  }
  return out;
}

/**
 * root/<class>/<k>.png|.jpg: within each class, even k are PNG, odd k JPEG. Image number j
 * (counting across classes) is a solid colour colourOf(j). Returns the files, in the order
 * written (classes in the order given, which the tests give sorted).
 */
async function writeImageFolder(dir, classes, { size = [6, 5] } = {}) {
  const sharp = require("sharp");
  const [h, w] = size;
  const files = [];
  let j = 0;
  for (const [cls, count] of Object.entries(classes)) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (let k = 0; k < count; k++, j++) {
      const rgb = colourOf(j);
      const raw = Buffer.alloc(h * w * 3);
      for (let p = 0; p < h * w; p++) raw.set(rgb, p * 3);
      const png = k % 2 === 0;
      const file = path.join(dir, cls, `${k}.${png ? "png" : "jpg"}`);
      const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
      await (png ? img.png() : img.jpeg({ quality: 95 })).toFile(file);
      files.push(file);
    }
  }
  return files;
}

function colourOf(j) {
  return [(40 * j + 20) % 256, 100, (200 + 17 * j) % 256];
}

// ------------------------------------------------------------------------------------ breaking files

/** Keeps the first `length` bytes of `file`. */
function truncate(file, length) {
  fs.writeFileSync(file, fs.readFileSync(file).subarray(0, length));
}

/** XORs the byte at `offset` of `file` with `mask`. */
function flipByte(file, offset, mask = 0xff) {
  const b = fs.readFileSync(file);
  b[offset] ^= mask;
  fs.writeFileSync(file, b);
}

module.exports = {
  tempDir,
  bytes,
  idxBuffer,
  int32BE,
  IDX_CODES,
  writeIdx,
  writeMnistRoot,
  encodeInts,
  npyHeader,
  npyBuffer,
  writeNpy,
  cifarBuffer,
  writeCifar,
  pngBuffer,
  pngChunks,
  writeImageFolder,
  colourOf,
  truncate,
  flipByte,
};
