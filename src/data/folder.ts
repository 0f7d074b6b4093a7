/**
 * Image folders: root/<class>/<image>.png|jpg, classes in sorted order. Images are decoded by
 * sharp (libvips) on libuv's thread pool, so decoding never blocks the JavaScript thread. When a
 * file fails to decode, a structural scan of its PNG chunks or JPEG segments finds the byte
 * offset where it breaks, for the error message.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { FileFormatError, OptionError } from "../errors";
import * as v from "../validate";
import type { Dataset, Sample } from "./types";
import { describeDataset } from "./memory";

const DISPLAY = Symbol.for("Jupyter.display");
const DEFAULT_EXTENSIONS = [".png", ".jpg", ".jpeg"];

type Sharp = (input: Buffer) => {
  removeAlpha(): ReturnType<Sharp>;
  toColourspace(s: string): ReturnType<Sharp>;
  ensureAlpha(): ReturnType<Sharp>;
  raw(): ReturnType<Sharp>;
  toBuffer(o: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
};

let sharpModule: Sharp | undefined;
function sharp(): Sharp {
  return (sharpModule ??= require("sharp") as Sharp);
}

/** Where a PNG or JPEG stops being well formed, or undefined if its structure looks whole. */
export function findCorruption(buf: Uint8Array): { offset: number; problem: string } | undefined {
  const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (buf.length >= 8 && PNG.every((b, i) => buf[i] === b)) {
    let p = 8;
    while (p < buf.length) {
      if (p + 8 > buf.length) return { offset: p, problem: "PNG chunk header truncated" };
      const len = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
      const type = String.fromCharCode(buf[p + 4]!, buf[p + 5]!, buf[p + 6]!, buf[p + 7]!);
      if (!/^[A-Za-z]{4}$/.test(type)) return { offset: p + 4, problem: `PNG chunk type ${JSON.stringify(type)} is not 4 letters` };
      if (p + 12 + len > buf.length) return { offset: p, problem: `PNG chunk ${type} of ${len} bytes runs past the end of the file (${buf.length} bytes)` };
      const crc = ((buf[p + 8 + len]! << 24) | (buf[p + 9 + len]! << 16) | (buf[p + 10 + len]! << 8) | buf[p + 11 + len]!) >>> 0;
      if (crc !== crc32(buf, p + 4, p + 8 + len)) return { offset: p, problem: `PNG chunk ${type} fails its CRC` };
      if (type === "IEND") return undefined;
      p += 12 + len;
    }
    return { offset: buf.length, problem: "PNG ends without an IEND chunk" };
  }
  if (buf.length >= 2 && buf[0] === 0xff && buf[1] === 0xd8) {
    let p = 2;
    while (p < buf.length) {
      if (buf[p] !== 0xff) return { offset: p, problem: "JPEG marker expected" };
      const m = buf[p + 1];
      if (m === undefined) return { offset: p, problem: "JPEG marker truncated" };
      if (m === 0xd9) return undefined;
      if (m === 0xff) { p++; continue; }
      if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { p += 2; continue; }
      if (p + 4 > buf.length) return { offset: p, problem: "JPEG segment length truncated" };
      const len = (buf[p + 2]! << 8) | buf[p + 3]!;
      if (p + 2 + len > buf.length) return { offset: p, problem: `JPEG segment 0xFF${m.toString(16).toUpperCase()} of ${len} bytes runs past the end of the file (${buf.length} bytes)` };
      p += 2 + len;
      if (m === 0xda) {
        // entropy-coded data: skip to the next marker that is not a stuffed byte or restart
        while (p + 1 < buf.length && !(buf[p] === 0xff && buf[p + 1] !== 0 && !(buf[p + 1]! >= 0xd0 && buf[p + 1]! <= 0xd7))) p++;
        if (p + 1 >= buf.length) return { offset: buf.length, problem: "JPEG scan data ends without an EOI marker (truncated)" };
      }
    }
    return { offset: buf.length, problem: "JPEG ends without an EOI marker (truncated)" };
  }
  return { offset: 0, problem: "neither a PNG nor a JPEG signature" };
}

let crcTable: Uint32Array | undefined;
function crc32(buf: Uint8Array, start: number, end: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Decodes one PNG/JPEG file to uint8 HWC with `channels` channels (1, 3 or 4). */
export async function decodeImage(file: string, channels: 1 | 3 | 4): Promise<{ data: Uint8Array; height: number; width: number; channels: number }> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    throw new FileFormatError(file, `cannot read: ${(e as Error).message}`);
  }
  try {
    let img = sharp()(buf);
    if (channels === 1) img = img.toColourspace("b-w");
    else if (channels === 3) img = img.removeAlpha().toColourspace("srgb");
    else img = img.ensureAlpha().toColourspace("srgb");
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== channels) throw new Error(`decoded ${info.channels} channels, expected ${channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width, channels };
  } catch (e) {
    const where = findCorruption(buf);
    const reason = (e as Error).message.split("\n")[0];
    throw new FileFormatError(file, where ? `${where.problem} (decoder: ${reason})` : `cannot decode: ${reason}`, where?.offset);
  }
}

export interface ImageFolderOptions {
  /** Channels to decode to: 1 (gray), 3 (RGB, default) or 4 (RGBA). */
  channels?: 1 | 3 | 4;
  /** File extensions to include (default .png, .jpg, .jpeg; case-insensitive). */
  extensions?: readonly string[];
}

/** A dataset over root/<class>/<file>; get(i) decodes asynchronously. */
export async function imageFolder(root: string, options: ImageFolderOptions = {}): Promise<Dataset> {
  v.knownKeys("imageFolder options", options, ["channels", "extensions"]);
  if (typeof root !== "string") throw new OptionError("imageFolder(root)", root, "a folder path");
  const channels = (options.channels ?? 3) as 1 | 3 | 4;
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new OptionError("imageFolder.channels", options.channels, "1, 3 or 4");
  const exts = options.extensions ?? DEFAULT_EXTENSIONS;
  if (!Array.isArray(exts) || !exts.every((e) => typeof e === "string" && e.startsWith("."))) {
    throw new OptionError("imageFolder.extensions", exts, 'an array of extensions such as [".png", ".jpg"]');
  }
  const lower = exts.map((e) => e.toLowerCase());
  let entries;
  try {
    entries = await fsp.readdir(root, { withFileTypes: true });
  } catch {
    throw new OptionError("imageFolder(root)", root, "an existing folder with one subfolder per class");
  }
  const classNames = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (classNames.length === 0) throw new OptionError("imageFolder(root)", root, "a folder with one subfolder per class (found none)");
  const files: string[] = [];
  const labelList: number[] = [];
  for (let k = 0; k < classNames.length; k++) {
    const dir = path.join(root, classNames[k]!);
    const names = (await fsp.readdir(dir)).filter((f) => lower.includes(path.extname(f).toLowerCase())).sort();
    for (const f of names) {
      files.push(path.join(dir, f));
      labelList.push(k);
    }
  }
  if (files.length === 0) throw new OptionError("imageFolder(root)", root, `image files (${lower.join(", ")}) inside its class folders (found none)`);
  const labels = Int32Array.from(labelList);
  const ds: Dataset = {
    length: files.length,
    classNames,
    async get(i: number): Promise<Sample> {
      if (!Number.isInteger(i) || i < 0 || i >= files.length) throw new OptionError("get(index)", i, `an integer in [0, ${files.length - 1}]`);
      const image = await decodeImage(files[i]!, channels);
      return { image, label: labels[i]!, index: i, path: files[i] };
    },
    labels: () => labels,
    pathOf: (i: number) => files[i],
  };
  Object.defineProperty(ds, DISPLAY, { value: () => describeDataset(ds, "imageFolder", root), enumerable: false });
  return ds;
}
