/**
 * File formats: IDX (MNIST, Fashion-MNIST; gzipped or not), NumPy .npy, CIFAR-10 binary
 * batches. Each reads the whole file, checks its structure against its header and reports the
 * byte offset where a file stops making sense.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { promisify } from "node:util";
import { FileFormatError, OptionError } from "../errors";
import * as v from "../validate";
import { ArrayDataset, checkClassNames } from "./memory";

const gunzip = promisify(zlib.gunzip);

/** Reads a file, gunzipping it when it starts with the gzip magic bytes. */
export async function readMaybeGzip(file: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await fsp.readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new FileFormatError(file, err.code === "ENOENT" ? "no such file" : `cannot read: ${err.message}`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return await gunzip(raw);
    } catch (e) {
      // Find how far the stream decodes, to report where it breaks.
      let good = 0;
      try {
        const partial = zlib.gunzipSync(raw, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
        good = partial.length;
      } catch {
        /* keep 0 */
      }
      throw new FileFormatError(file, `corrupt or truncated gzip data (${(e as Error).message}; ${good} bytes decoded from ${raw.length} compressed bytes)`, raw.length);
    }
  }
  return raw;
}

const IDX_TYPES: Record<number, { name: string; bytes: number }> = {
  0x08: { name: "uint8", bytes: 1 },
  0x09: { name: "int8", bytes: 1 },
  0x0b: { name: "int16", bytes: 2 },
  0x0c: { name: "int32", bytes: 4 },
  0x0d: { name: "float32", bytes: 4 },
  0x0e: { name: "float64", bytes: 8 },
};

/** One IDX file: its element type, dimensions and the data bytes. */
export function parseIdx(file: string, buf: Buffer): { type: string; dims: number[]; data: Uint8Array } {
  if (buf.length < 4) throw new FileFormatError(file, `IDX header needs 4 bytes, the file has ${buf.length}`, buf.length);
  if (buf[0] !== 0 || buf[1] !== 0) throw new FileFormatError(file, `not an IDX file: magic number starts ${buf[0]}, ${buf[1]} (expected 0, 0)`, 0);
  const t = IDX_TYPES[buf[2]!];
  if (!t) throw new FileFormatError(file, `unknown IDX element type 0x${buf[2]!.toString(16)}`, 2);
  const ndim = buf[3]!;
  if (ndim === 0) throw new FileFormatError(file, "IDX file declares 0 dimensions", 3);
  const headerEnd = 4 + 4 * ndim;
  if (buf.length < headerEnd) throw new FileFormatError(file, `IDX header declares ${ndim} dimensions but ends early`, buf.length);
  const dims: number[] = [];
  for (let k = 0; k < ndim; k++) dims.push(buf.readUInt32BE(4 + 4 * k));
  const need = dims.reduce((a, b) => a * b, 1) * t.bytes;
  if (buf.length - headerEnd < need) {
    throw new FileFormatError(file, `truncated: header declares ${dims.join(" x ")} ${t.name} = ${need} data bytes, the file has ${buf.length - headerEnd} after the header`, buf.length);
  }
  return { type: t.name, dims, data: new Uint8Array(buf.buffer, buf.byteOffset + headerEnd, need) };
}

/** An IDX image file (n x h x w uint8, or n x h x w x c) and its label file. */
export async function idx(imagesPath: string, labelsPath: string, options: { classNames?: readonly string[]; kind?: string } = {}): Promise<ArrayDataset> {
  v.knownKeys("idx options", options, ["classNames", "kind"]);
  const [ib, lb] = await Promise.all([readMaybeGzip(imagesPath), readMaybeGzip(labelsPath)]);
  const images = parseIdx(imagesPath, ib);
  const labels = parseIdx(labelsPath, lb);
  if (images.type !== "uint8" || (images.dims.length !== 3 && images.dims.length !== 4)) {
    throw new FileFormatError(imagesPath, `expected uint8 images of 3 or 4 dimensions (n x h x w [x c]), found ${images.type} ${images.dims.join(" x ")}`, 2);
  }
  if (labels.type !== "uint8" || labels.dims.length !== 1) {
    throw new FileFormatError(labelsPath, `expected uint8 labels of 1 dimension, found ${labels.type} ${labels.dims.join(" x ")}`, 2);
  }
  const [n, h, w, c = 1] = images.dims as [number, number, number, number?];
  if (labels.dims[0] !== n) throw new FileFormatError(labelsPath, `${labels.dims[0]} labels for ${n} images in ${imagesPath}`, 4);
  const ls = Int32Array.from(labels.data);
  if (options.classNames) checkClassNames("idx classNames", options.classNames, ls);
  return new ArrayDataset(images.data, [n, h, w, c], ls, { classNames: options.classNames, source: imagesPath, kind: options.kind ?? "IDX" });
}

export const FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"] as const;
export const FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist";

async function findFile(root: string, base: string): Promise<string> {
  for (const name of [base + ".gz", base, base.replace(/-idx(\d)-/, ".idx$1-") + ".gz", base.replace(/-idx(\d)-/, ".idx$1-")]) {
    const p = path.join(root, name);
    try {
      await fsp.access(p);
      return p;
    } catch {
      /* next */
    }
  }
  throw new OptionError("root", root, `a folder holding ${base}.gz (or ${base}); install Debian's dataset-fashion-mnist or pass { root }`);
}

async function mnistLike(kind: string, defaultRoot: string | undefined, classNames: readonly string[], options: { split?: "train" | "test"; root?: string }): Promise<ArrayDataset> {
  v.knownKeys(`${kind} options`, options, ["split", "root"]);
  const split = v.oneOf(`${kind}.split`, options.split ?? "train", ["train", "test"] as const);
  const root = options.root ?? defaultRoot;
  if (typeof root !== "string") throw new OptionError(`${kind}.root`, root, "the folder holding the IDX files");
  try {
    await fsp.access(root);
  } catch {
    throw new OptionError(`${kind}.root`, root, `an existing folder${root === FASHION_MNIST_ROOT ? " (install Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist)" : ""}`);
  }
  const prefix = split === "train" ? "train" : "t10k";
  const images = await findFile(root, `${prefix}-images-idx3-ubyte`);
  const labels = await findFile(root, `${prefix}-labels-idx1-ubyte`);
  return idx(images, labels, { classNames, kind: `${kind} (${split})` });
}

/** Fashion-MNIST (Xiao et al. 2017): 28 x 28 grayscale, 10 classes; Debian's dataset-fashion-mnist by default. */
export function fashionMnist(options: { split?: "train" | "test"; root?: string } = {}): Promise<ArrayDataset> {
  return mnistLike("fashionMnist", FASHION_MNIST_ROOT, FASHION_MNIST_CLASSES, options);
}

/** MNIST digits from IDX files under `root`. */
export function mnist(options: { split?: "train" | "test"; root: string }): Promise<ArrayDataset> {
  return mnistLike("mnist", undefined, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], options);
}

// ------------------------------------------------------------------------------------- npy

interface NpyArray {
  dtype: string;
  shape: number[];
  data: Uint8Array;
  dataOffset: number;
}

/** Parses a .npy file (format versions 1, 2 and 3; C order). */
export function parseNpy(file: string, buf: Buffer): NpyArray {
  const magic = "\x93NUMPY";
  if (buf.length < 10 || buf.toString("latin1", 0, 6) !== magic) throw new FileFormatError(file, "not a .npy file (magic \\x93NUMPY missing)", 0);
  const major = buf[6]!;
  if (major < 1 || major > 3) throw new FileFormatError(file, `unsupported .npy format version ${major}.${buf[7]}`, 6);
  const lenBytes = major === 1 ? 2 : 4;
  if (buf.length < 8 + lenBytes) throw new FileFormatError(file, "header length field truncated", buf.length);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (buf.length < start + headerLen) throw new FileFormatError(file, `header declares ${headerLen} bytes, the file ends first`, buf.length);
  const header = buf.toString(major === 3 ? "utf8" : "latin1", start, start + headerLen);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape) throw new FileFormatError(file, `malformed header ${JSON.stringify(header.trim())}`, start);
  if (order[1] === "True") throw new FileFormatError(file, "Fortran-order arrays are not supported (save with np.ascontiguousarray)", start);
  const dims = shape[1]!.split(",").map((x) => x.trim()).filter((x) => x !== "").map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new FileFormatError(file, `bad shape (${shape[1]})`, start);
  const dataOffset = start + headerLen;
  const itemsize = Number(/\d+$/.exec(descr[1]!)?.[0] ?? NaN);
  const count = dims.reduce((a, b) => a * b, 1);
  if (!Number.isFinite(itemsize)) throw new FileFormatError(file, `unsupported dtype ${descr[1]}`, start);
  if (buf.length - dataOffset < count * itemsize) {
    throw new FileFormatError(file, `truncated: shape (${dims.join(", ")}) of ${descr[1]} needs ${count * itemsize} data bytes, the file has ${buf.length - dataOffset}`, buf.length);
  }
  return { dtype: descr[1]!, shape: dims, data: new Uint8Array(buf.buffer, buf.byteOffset + dataOffset, count * itemsize), dataOffset };
}

function npyInts(file: string, a: NpyArray): Int32Array {
  const n = a.shape.reduce((x, y) => x * y, 1);
  const dv = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const kind = a.dtype.replace(/^[<>|=]/, "");
  const big = a.dtype.startsWith(">");
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let x: number;
    switch (kind) {
      case "u1": x = dv.getUint8(i); break;
      case "i1": x = dv.getInt8(i); break;
      case "u2": x = dv.getUint16(2 * i, !big); break;
      case "i2": x = dv.getInt16(2 * i, !big); break;
      case "u4": x = dv.getUint32(4 * i, !big); break;
      case "i4": x = dv.getInt32(4 * i, !big); break;
      case "i8": case "u8": x = Number(kind === "i8" ? dv.getBigInt64(8 * i, !big) : dv.getBigUint64(8 * i, !big)); break;
      default: throw new FileFormatError(file, `labels must have an integer dtype (u1, i1, u2, i2, u4, i4, u8, i8), found ${a.dtype}`, 0);
    }
    out[i] = x;
  }
  return out;
}

/** Images from a uint8 .npy of shape (n, h, w) or (n, h, w, c), labels from an integer .npy. */
export async function npy(imagesPath: string, labelsPath: string, options: { classNames?: readonly string[] } = {}): Promise<ArrayDataset> {
  v.knownKeys("npy options", options, ["classNames"]);
  const [ib, lb] = await Promise.all([readMaybeGzip(imagesPath), readMaybeGzip(labelsPath)]);
  const im = parseNpy(imagesPath, ib);
  if (im.dtype.replace(/^[<>|=]/, "") !== "u1") throw new FileFormatError(imagesPath, `images must be uint8 (|u1), found ${im.dtype}`, 0);
  if (im.shape.length !== 3 && im.shape.length !== 4) throw new FileFormatError(imagesPath, `images must have shape (n, h, w) or (n, h, w, c), found (${im.shape.join(", ")})`, 0);
  const lab = parseNpy(labelsPath, lb);
  const ls = npyInts(labelsPath, lab);
  const [n, h, w, c = 1] = im.shape as [number, number, number, number?];
  if (lab.shape.length !== 1 || ls.length !== n) throw new FileFormatError(labelsPath, `expected ${n} labels of shape (${n},), found shape (${lab.shape.join(", ")})`, 0);
  if (options.classNames) checkClassNames("npy classNames", options.classNames, ls);
  return new ArrayDataset(im.data, [n, h, w, c], ls, { classNames: options.classNames, source: imagesPath, kind: "npy" });
}

// ------------------------------------------------------------------------------------- CIFAR

export const CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"] as const;

/** CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin); CHW records become HWC once, at load. */
export async function cifar10(options: { root: string; split?: "train" | "test" }): Promise<ArrayDataset> {
  v.knownKeys("cifar10 options", options, ["root", "split"]);
  const split = v.oneOf("cifar10.split", options.split ?? "train", ["train", "test"] as const);
  if (typeof options.root !== "string") throw new OptionError("cifar10.root", options.root, "the folder holding data_batch_1.bin ... test_batch.bin");
  const names = split === "train" ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ["test_batch.bin"];
  const files = names.map((f) => path.join(options.root, f));
  const bufs = await Promise.all(files.map((f) => readMaybeGzip(f)));
  const REC = 3073;
  bufs.forEach((b, k) => {
    if (b.length === 0 || b.length % REC !== 0) {
      throw new FileFormatError(files[k]!, `size ${b.length} is not a multiple of the 3073-byte record (1 label + 3072 pixels); the last whole record ends at ${b.length - (b.length % REC)}`, b.length - (b.length % REC));
    }
  });
  const n = bufs.reduce((s, b) => s + b.length / REC, 0);
  const pixels = new Uint8Array(n * 3072);
  const labels = new Int32Array(n);
  let i = 0;
  bufs.forEach((b, k) => {
    for (let r = 0; r < b.length; r += REC, i++) {
      const label = b[r]!;
      if (label > 9) throw new FileFormatError(files[k]!, `label ${label} is not a CIFAR-10 class (0..9)`, r);
      labels[i] = label;
      const out = i * 3072;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) pixels[out + p * 3 + c] = b[r + 1 + c * 1024 + p]!;
    }
  });
  let classNames: readonly string[] = CIFAR10_CLASSES;
  try {
    const meta = (await fsp.readFile(path.join(options.root, "batches.meta.txt"), "utf8")).split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
    if (meta.length === 10) classNames = meta;
  } catch {
    /* the standard names */
  }
  return new ArrayDataset(pixels, [n, 32, 32, 3], labels, { classNames, source: files.length === 1 ? files[0] : path.join(options.root, "data_batch_{1..5}.bin"), kind: `CIFAR-10 (${split})` });
}
