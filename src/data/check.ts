/** Checks of the data stage: sample indices, folders, class names and labels read from files. */
import { promises as fsp } from "node:fs";
import { FileFormatError, OptionError } from "../errors";
import { pathString } from "../options";

/** `i` as a valid sample index of a dataset of `length` samples, or an OptionError naming it. */
export function checkIndex(i: unknown, length: number, option = "get(index)"): number {
  if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= length) {
    throw new OptionError(option, i, length === 0 ? "no index at all (the dataset is empty)" : `an integer index in [0, ${length - 1}]`);
  }
  return i;
}

/** A folder that exists. */
export async function existingFolder(option: string, v: unknown, what = "an existing folder"): Promise<string> {
  const p = pathString(option, v, `${what} (a path string)`);
  let isDir = false;
  try {
    isDir = (await fsp.stat(p)).isDirectory();
  } catch {
    throw new OptionError(option, v, `${what}; nothing exists at that path`);
  }
  if (!isDir) throw new OptionError(option, v, `${what}; that path is a file, not a folder`);
  return p;
}

/** Class names: an array of strings (checked against the labels by checkLabels). */
export function classNamesOption(option: string, v: unknown): readonly string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new OptionError(option, v, "an array of class names (strings)");
  return Object.freeze(v.slice()) as readonly string[];
}

/**
 * Labels read from a file must be class indices: >= 0, and < classes when the class count is
 * known. `offsetOf(i)` gives the byte offset of label i in the file.
 */
export function checkFileLabels(file: string, labels: Int32Array, classes: number | undefined, offsetOf: (i: number) => number, note = ""): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || (classes !== undefined && l >= classes)) {
      const expected = classes === undefined ? "a class index >= 0" : `a class index in [0, ${classes - 1}] (${classes} classes)`;
      throw new FileFormatError(file, `label ${i} is ${l}, expected ${expected}${note}`, offsetOf(i));
    }
  }
}

/**
 * The element count of `dims` times `bytes` when every dimension is a safe integer and that
 * product is one; otherwise the index of the dimension where the product of the nonzero
 * dimensions (times `bytes`) first passes 2^53 - 1. Zero dimensions make the count 0, but never
 * excuse an overflowing product of the others (so the order of the dimensions does not matter).
 */
export function checkedByteCount(dims: readonly number[], bytes: number): { bytes: number } | { overflowAt: number } {
  let product = bytes;
  let zero = false;
  for (let k = 0; k < dims.length; k++) {
    const d = dims[k]!;
    if (!Number.isSafeInteger(d) || d < 0) return { overflowAt: k };
    if (d === 0) {
      zero = true;
      continue;
    }
    product *= d;
    if (!Number.isSafeInteger(product)) return { overflowAt: k };
  }
  return { bytes: zero ? 0 : product };
}
