/**
 * IDX files (the MNIST format, gzipped or not) and the datasets stored in them: Fashion-MNIST
 * (Debian's dataset-fashion-mnist by default) and MNIST.
 *
 * An IDX file is a 4-byte magic number (0, 0, element type, number of dimensions), one
 * big-endian uint32 per dimension, then the elements in row-major order.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { FileFormatError, OptionError } from "../errors";
import * as v from "../options";
import { checkedByteCount, checkFileLabels, classNamesOption, existingFolder } from "./check";
import { knownKeys as checkOptions } from "../options";
import { type FileBytes, offsetNote, readBytes } from "./files";
import { ArrayDataset } from "./memory";

const IDX_TYPES: Record<number, { name: string; bytes: number; integer: boolean }> = {
  0x08: { name: "uint8", bytes: 1, integer: true },
  0x09: { name: "int8", bytes: 1, integer: true },
  0x0b: { name: "int16", bytes: 2, integer: true },
  0x0c: { name: "int32", bytes: 4, integer: true },
  0x0d: { name: "float32", bytes: 4, integer: false },
  0x0e: { name: "float64", bytes: 8, integer: false },
};

export interface IdxArray {
  /** Element type: uint8, int8, int16, int32, float32 or float64. */
  type: string;
  /** Bytes per element. */
  bytes: number;
  dims: number[];
  /** Where the elements start in the (gunzipped) file. */
  dataOffset: number;
  /** The element bytes: a view into the file's buffer. */
  data: Uint8Array;
}

interface IdxHeader {
  type: { name: string; bytes: number; integer: boolean };
  dims: number[];
  headerEnd: number;
  /** Data bytes the header declares (a safe integer). */
  need: number;
}

/**
 * The IDX header at the start of `buf`; `undefined` when `partial` and more bytes are needed.
 * Problems are FileFormatErrors with their offsets.
 */
function parseIdxHeader(file: string, buf: Uint8Array, note: string, partial: boolean): IdxHeader | undefined {
  const fail = (problem: string, offset: number): never => {
    throw new FileFormatError(file, problem + note, offset);
  };
  if (buf.length === 0) return partial ? undefined : fail("empty file, expected an IDX header", 0);
  if (buf[0] !== 0 || (buf.length > 1 && buf[1] !== 0)) {
    fail(`not an IDX file: the magic number starts with bytes ${buf[0]}, ${buf[1] ?? "(end of file)"}, expected 0, 0`, 0);
  }
  if (buf.length < 4) return partial ? undefined : fail(`the file ends inside the 4-byte IDX magic number (it has ${buf.length} bytes)`, buf.length);
  const t = IDX_TYPES[buf[2]!];
  if (!t) fail(`unknown IDX element type 0x${buf[2]!.toString(16).padStart(2, "0")} (known: 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64)`, 2);
  const type = t!;
  const ndim = buf[3]!;
  if (ndim === 0) fail("the IDX magic number declares 0 dimensions", 3);
  const headerEnd = 4 + 4 * ndim;
  if (buf.length < headerEnd) return partial ? undefined : fail(`the header declares ${ndim} dimensions (${headerEnd} header bytes), the file ends after ${buf.length}`, buf.length);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let k = 0; k < ndim; k++) dims.push(view.getUint32(4 + 4 * k, false));
  const count = checkedByteCount(dims, type.bytes);
  if ("overflowAt" in count) {
    return fail(`the header declares ${dims.join(" x ")} ${type.name}: more data bytes than 2^53 - 1 (the product overflows at dimension ${count.overflowAt})`, 4 + 4 * count.overflowAt);
  }
  return { type, dims, headerEnd, need: count.bytes };
}

/**
 * For readBytes: the length of the (gunzipped) IDX data that the header at the start of `head`
 * declares, or undefined until the header is complete. A bad header throws at once, so a
 * compressed file is never inflated further than its header allows.
 */
export function idxDeclaredLength(file: string, note = " [offset counts bytes of the gunzipped data]"): (head: Uint8Array) => number | undefined {
  return (head) => {
    const h = parseIdxHeader(file, head, note, true);
    return h && h.headerEnd + h.need;
  };
}

/** Parses one IDX file's bytes; every structural problem is a FileFormatError with its offset. */
export function parseIdx(file: string, buf: Uint8Array, note = ""): IdxArray {
  const { type, dims, headerEnd, need } = parseIdxHeader(file, buf, note, false)!;
  const fail = (problem: string, offset: number): never => {
    throw new FileFormatError(file, problem + note, offset);
  };
  const have = buf.length - headerEnd;
  if (have < need) {
    fail(`truncated: the header declares ${dims.join(" x ")} ${type.name} = ${need} data bytes (the file should be ${headerEnd + need} bytes), the data ends after ${have}`, buf.length);
  }
  if (have > need) fail(`${have - need} unexpected bytes after the ${dims.join(" x ")} ${type.name} data that the header declares`, headerEnd + need);
  return { type: type.name, bytes: type.bytes, dims, dataOffset: headerEnd, data: buf.subarray(headerEnd, headerEnd + need) };
}

/** Integer elements of a 1-dimensional IDX array as Int32Array. */
function idxInts(a: IdxArray): Int32Array {
  const n = a.dims[0]!;
  if (a.type === "uint8") return Int32Array.from(a.data);
  const dv = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = a.type === "int8" ? dv.getInt8(i) : a.type === "int16" ? dv.getInt16(2 * i, false) : dv.getInt32(4 * i, false);
  return out;
}

interface IdxInternal {
  classNames?: readonly string[];
  kind?: string;
  fn?: string;
}

async function loadIdx(imagesPath: unknown, labelsPath: unknown, o: IdxInternal): Promise<ArrayDataset> {
  const fn = o.fn ?? "idx";
  const [fi, fl] = await Promise.all([
    readBytes(`${fn}(imagesPath)`, imagesPath, typeof imagesPath === "string" ? idxDeclaredLength(imagesPath) : undefined),
    readBytes(`${fn}(labelsPath)`, labelsPath, typeof labelsPath === "string" ? idxDeclaredLength(labelsPath) : undefined),
  ]);
  return idxFromBytes(fi, fl, o);
}

function idxFromBytes(fi: FileBytes, fl: FileBytes, o: IdxInternal): ArrayDataset {
  const images = parseIdx(fi.path, fi.bytes, offsetNote(fi));
  const labels = parseIdx(fl.path, fl.bytes, offsetNote(fl));
  if (images.type !== "uint8") throw new FileFormatError(fi.path, `images must be uint8 (element type 0x08), found ${images.type}${offsetNote(fi)}`, 2);
  if (images.dims.length !== 3 && images.dims.length !== 4) {
    throw new FileFormatError(fi.path, `images must have 3 dimensions (n x h x w) or 4 (n x h x w x c), found ${images.dims.length} (${images.dims.join(" x ")})${offsetNote(fi)}`, 3);
  }
  const [n, h, w, c = 1] = images.dims as [number, number, number, number?];
  if (h === 0 || w === 0 || c === 0) throw new FileFormatError(fi.path, `images of size ${images.dims.slice(1).join(" x ")} hold no pixels${offsetNote(fi)}`, 8);
  if (!IDX_TYPES[fl.bytes[2]!]!.integer) throw new FileFormatError(fl.path, `labels must have an integer element type, found ${labels.type}${offsetNote(fl)}`, 2);
  if (labels.dims.length !== 1) throw new FileFormatError(fl.path, `labels must have 1 dimension, found ${labels.dims.length} (${labels.dims.join(" x ")})${offsetNote(fl)}`, 3);
  if (labels.dims[0] !== n) {
    throw new FileFormatError(fl.path, `the label file declares ${labels.dims[0]} labels, the image file ${fi.path} declares ${n} images${offsetNote(fl)}`, 4);
  }
  const ls = idxInts(labels);
  checkFileLabels(fl.path, ls, o.classNames?.length, (i) => labels.dataOffset + i * labels.bytes, offsetNote(fl));
  return new ArrayDataset(images.data, [n, h, w, c], ls, { classNames: o.classNames, source: fi.path, kind: o.kind ?? "IDX dataset" });
}

/**
 * A dataset from an IDX image file (uint8, n x h x w or n x h x w x c) and an IDX label file
 * (one integer per image), each gzipped or not. Images are views into the loaded file.
 */
export async function idx(imagesPath: string, labelsPath: string, options?: { classNames?: readonly string[] }): Promise<ArrayDataset> {
  const o = checkOptions<{ classNames: readonly string[] }>("idx", options, ["classNames"]);
  return loadIdx(imagesPath, labelsPath, { classNames: classNamesOption("idx.classNames", o.classNames) });
}

export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]);
export const MNIST_CLASSES: readonly string[] = Object.freeze(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
/** Where Debian's dataset-fashion-mnist package puts the files. */
export const FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist";

export interface MnistOptions {
  split?: "train" | "test";
  /** The folder holding train-images-idx3-ubyte(.gz) and the other three files. */
  root?: string;
}

/** The file for `base` under root: gzipped or not, with "-idx3-" or ".idx3-" spellings. */
async function findIdxFile(fn: string, root: string, base: string): Promise<string> {
  const dotted = base.replace(/-idx(\d)-/, ".idx$1-");
  const candidates = [base + ".gz", base, dotted + ".gz", dotted];
  for (const name of candidates) {
    const p = path.join(root, name);
    try {
      if ((await fsp.stat(p)).isFile()) return p;
    } catch {
      /* try the next spelling */
    }
  }
  throw new OptionError(`${fn}.root`, root, `a folder holding ${base}.gz or ${base} (no such file there)`);
}

async function mnistLike(fn: string, defaultRoot: string | undefined, classNames: readonly string[], options: unknown): Promise<ArrayDataset> {
  const o = checkOptions<MnistOptions>(fn, options, ["split", "root"]);
  const split = v.oneOf(`${fn}.split`, o.split ?? "train", ["train", "test"] as const);
  const rootValue = o.root ?? defaultRoot;
  const hint = rootValue === FASHION_MNIST_ROOT ? " (install Debian's dataset-fashion-mnist, or pass { root })" : "";
  const root = await existingFolder(`${fn}.root`, rootValue, `an existing folder with the IDX files${hint}`);
  const prefix = split === "train" ? "train" : "t10k";
  // Both looked up at once; when both are missing, the images file is the one named, every time.
  const [images, labels] = await Promise.allSettled([findIdxFile(fn, root, `${prefix}-images-idx3-ubyte`), findIdxFile(fn, root, `${prefix}-labels-idx1-ubyte`)]);
  if (images.status === "rejected") throw images.reason;
  if (labels.status === "rejected") throw labels.reason;
  return loadIdx(images.value, labels.value, { classNames, kind: `${fn} (${split})`, fn });
}

/**
 * Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28 x 28 grayscale clothing images, 10 classes,
 * 60000 train / 10000 test. Reads Debian's dataset-fashion-mnist files unless `root` is given.
 */
export function fashionMnist(options?: MnistOptions): Promise<ArrayDataset> {
  return mnistLike("fashionMnist", FASHION_MNIST_ROOT, FASHION_MNIST_CLASSES, options);
}

/** MNIST digits from the four IDX files (gzipped or not) under `root`. */
export function mnist(options: MnistOptions & { root: string }): Promise<ArrayDataset> {
  return mnistLike("mnist", undefined, MNIST_CLASSES, options);
}
