/**
 * CIFAR-10 binary batches (the "binary version" of the data set): data_batch_1.bin ...
 * data_batch_5.bin and test_batch.bin, each a run of 3073-byte records: 1 label byte, then
 * 1024 red, 1024 green and 1024 blue bytes (CHW, planar). Converted once, at load, into one
 * HWC buffer that every sample views.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { FileFormatError, OptionError } from "../errors";
import * as v from "../options";
import { existingFolder } from "./check";
import { knownKeys as checkOptions } from "../options";
import { ArrayDataset } from "./memory";
import { readRegularFile } from "./files";

export const CIFAR10_CLASSES: readonly string[] = Object.freeze(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]);

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;
const RECORD = 1 + PIXELS;
const TRAIN_FILES = [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`);
const TEST_FILES = ["test_batch.bin"];

export interface Cifar10Options {
  /** The folder holding the .bin batches (or its parent, holding cifar-10-batches-bin/). */
  root: string;
  split?: "train" | "test";
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Copies one record's CHW planes into HWC at `out[dst..]`. */
function recordToHwc(src: Uint8Array, at: number, out: Uint8Array, dst: number): void {
  const r = at + 1;
  const g = r + PLANE;
  const b = g + PLANE;
  for (let p = 0, o = dst; p < PLANE; p++, o += 3) {
    out[o] = src[r + p]!;
    out[o + 1] = src[g + p]!;
    out[o + 2] = src[b + p]!;
  }
}

/** Class names from batches.meta.txt (one per line), when the file is there. */
async function readMeta(file: string): Promise<readonly string[] | undefined> {
  try {
    await fsp.lstat(file);
  } catch {
    return undefined; // no meta file: the standard class names
  }
  // A regular file of at most 64 KiB (ten short names); anything else is an error, not a hang.
  const text = (await readRegularFile(file, { maxBytes: 1 << 16, maxWhy: "batches.meta.txt holds 10 class names" })).toString("latin1");
  const names: string[] = [];
  let offset = 0;
  for (const line of text.split("\n")) {
    const name = line.trim();
    if (name) {
      if (names.length === 10) throw new FileFormatError(file, `more than the 10 CIFAR-10 class names (line "${name}")`, offset);
      names.push(name);
    }
    offset += line.length + 1;
  }
  if (names.length !== 10) throw new FileFormatError(file, `${names.length} class names, expected one per line for the 10 CIFAR-10 classes`, text.length);
  return Object.freeze(names);
}

function sizeError(file: string, size: number): FileFormatError {
  const whole = size - (size % RECORD);
  return new FileFormatError(
    file,
    size === 0
      ? "empty file, expected 3073-byte records (1 label byte + 3072 pixel bytes)"
      : `size ${size} is not a multiple of the 3073-byte record (1 label byte + 3072 pixel bytes): ${whole / RECORD} whole records end at byte ${whole}, then ${size - whole} bytes of a partial one`,
    whole,
  );
}

/** CIFAR-10 from its binary batches; `split` "train" (50000 images) or "test" (10000). */
export async function cifar10(options: Cifar10Options): Promise<ArrayDataset> {
  if (options === undefined) throw new OptionError("cifar10(options)", options, "{ root, split? } with root the folder holding data_batch_1.bin ... test_batch.bin");
  const o = checkOptions<Cifar10Options>("cifar10", options, ["root", "split"]);
  const split = v.oneOf("cifar10.split", o.split ?? "train", ["train", "test"] as const);
  let root = await existingFolder("cifar10.root", o.root, "an existing folder holding data_batch_1.bin ... data_batch_5.bin and test_batch.bin");
  const names = split === "train" ? TRAIN_FILES : TEST_FILES;
  if (!(await isFile(path.join(root, names[0]!))) && (await isFile(path.join(root, "cifar-10-batches-bin", names[0]!)))) {
    root = path.join(root, "cifar-10-batches-bin");
  }
  const files = names.map((f) => path.join(root, f));
  const missing: string[] = [];
  for (let k = 0; k < files.length; k++) if (!(await isFile(files[k]!))) missing.push(names[k]!);
  if (missing.length) throw new OptionError("cifar10.root", o.root, `a folder holding ${names.join(", ")} (missing: ${missing.join(", ")})`);
  const classNames = (await readMeta(path.join(root, "batches.meta.txt"))) ?? CIFAR10_CLASSES;

  // Sizes first, so that the HWC buffer is allocated once and each raw batch is dropped as
  // soon as it has been converted.
  const sizes: number[] = [];
  for (const file of files) {
    const size = (await fsp.stat(file)).size;
    if (size === 0 || size % RECORD !== 0) throw sizeError(file, size);
    sizes.push(size / RECORD);
  }
  const total = sizes.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(total * PIXELS);
  const labels = new Int32Array(total);
  let i = 0;
  for (let k = 0; k < files.length; k++) {
    const file = files[k]!;
    const bytes = await readRegularFile(file, { maxBytes: sizes[k]! * RECORD });
    if (bytes.length !== sizes[k]! * RECORD) throw bytes.length % RECORD !== 0 || bytes.length === 0 ? sizeError(file, bytes.length) : new FileFormatError(file, "the file changed while it was being read", 0);
    for (let r = 0, at = 0; r < sizes[k]!; r++, at += RECORD, i++) {
      const label = bytes[at]!;
      if (label >= classNames.length) throw new FileFormatError(file, `record ${r} has label ${label}, expected a class index in [0, ${classNames.length - 1}]`, at);
      labels[i] = label;
      recordToHwc(bytes, at, pixels, i * PIXELS);
    }
  }
  const source = files.length === 1 ? files[0]! : path.join(root, "data_batch_{1..5}.bin");
  return new ArrayDataset(pixels, [total, SIDE, SIDE, 3], labels, { classNames, source, kind: `cifar10 (${split})` });
}
