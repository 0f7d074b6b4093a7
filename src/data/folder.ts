/**
 * Image folders: root/<class>/<image>.png|jpg (nested folders inside a class folder count too),
 * classes in sorted order. Labels come from the folder names, so labels() needs no decoding.
 * get(i) decodes with sharp (libvips), which runs on libuv's thread pool: decoding never blocks
 * the JavaScript thread. When sharp rejects a file, a structural scan of its PNG chunks or JPEG
 * segments finds the byte where it breaks, for the error message.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { FileFormatError, OptionError } from "../errors";
import { checkIndex, existingFolder } from "./check";
import { knownKeys as checkOptions } from "../options";
import { withDisplay } from "./display";
import { findCorruption } from "./scan";
import type { Dataset, Image, Sample } from "./types";

const DEFAULT_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg"];

interface SharpPipeline {
  removeAlpha(): SharpPipeline;
  ensureAlpha(): SharpPipeline;
  toColourspace(space: string): SharpPipeline;
  raw(options?: { depth?: string }): SharpPipeline;
  toBuffer(options: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}
type SharpFactory = (input: Buffer, options?: { failOn?: string }) => SharpPipeline;

let sharpModule: SharpFactory | undefined;
/** sharp, loaded on first use (importing batchlab does not load libvips). */
function sharp(): SharpFactory {
  return (sharpModule ??= require("sharp") as SharpFactory);
}

export type Channels = 1 | 3 | 4;

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim();
}

/**
 * Decodes one PNG or JPEG file to uint8 HWC pixels with `channels` channels: 1 (luminance), 3
 * (sRGB) or 4 (sRGB + alpha, opaque when the file has none). 16-bit files are scaled to 8 bits.
 */
export async function decodeImage(file: string, channels: Channels = 3): Promise<Image> {
  if (typeof file !== "string" || file.length === 0) throw new OptionError("decodeImage(file)", file, "a file path (string)");
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new OptionError("decodeImage(channels)", channels, "1, 3 or 4");
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(file, code === "ENOENT" ? "no such file (it was listed when the dataset was built)" : `cannot read: ${firstLine(e)}`);
  }
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    let img = sharp()(buf);
    img = channels === 4 ? img.ensureAlpha().toColourspace("srgb") : img.removeAlpha().toColourspace(channels === 1 ? "b-w" : "srgb");
    out = await img.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    const ext = path.extname(file).toLowerCase();
    const where = findCorruption(buf, ext === ".png" ? "png" : ext === ".jpg" || ext === ".jpeg" ? "jpeg" : undefined);
    const reason = firstLine(e);
    if (where) throw new FileFormatError(file, `${where.problem} (decoder: ${reason})`, where.offset);
    throw new FileFormatError(file, `cannot decode, though its chunk/segment structure is whole (decoder: ${reason})`);
  }
  const { data, info } = out;
  if (info.channels !== channels || data.length !== info.width * info.height * channels) {
    throw new FileFormatError(file, `decoded to ${info.width} x ${info.height} x ${info.channels} (${data.length} bytes), expected ${channels} uint8 channels`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width, channels };
}

export interface ImageFolderOptions {
  /** Channels to decode to: 1 (gray), 3 (RGB, the default) or 4 (RGBA). */
  channels?: Channels;
  /** File extensions to include, case-insensitive (default ".png", ".jpg", ".jpeg"). */
  extensions?: readonly string[];
}

/** An image-folder dataset: its files, labels and the decode options. */
export interface ImageFolderDataset extends Dataset {
  readonly classNames: readonly string[];
  readonly root: string;
  readonly files: readonly string[];
  readonly channels: Channels;
  get(i: number): Promise<Sample>;
  labels(): Int32Array;
  pathOf(i: number): string | undefined;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

async function isDirectory(full: string, entry: { isDirectory(): boolean; isSymbolicLink(): boolean }): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  try {
    return (await fsp.stat(full)).isDirectory();
  } catch {
    return false;
  }
}

/** Image files under `dir` (recursively), sorted, skipping hidden entries such as .ipynb_checkpoints. */
async function listImages(dir: string, exts: readonly string[], depth = 0): Promise<string[]> {
  const entries = (await fsp.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith(".")).sort((a, b) => byName(a.name, b.name));
  const out: string[] = [];
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (await isDirectory(full, e)) {
      if (depth < 32) out.push(...(await listImages(full, exts, depth + 1)));
    } else if (exts.includes(path.extname(e.name).toLowerCase())) {
      out.push(full);
    }
  }
  return out;
}

/**
 * A dataset over root/<class>/<file>: one subfolder per class (sorted names are the class
 * names, hidden folders skipped), PNG/JPEG files inside. get(i) returns a promise of the decoded
 * sample; labels() is known from the folders without decoding anything.
 */
export async function imageFolder(root: string, options?: ImageFolderOptions): Promise<ImageFolderDataset> {
  const o = checkOptions<ImageFolderOptions>("imageFolder", options, ["channels", "extensions"]);
  const channels = o.channels ?? 3;
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new OptionError("imageFolder.channels", o.channels, "1, 3 or 4");
  const rawExts = o.extensions ?? DEFAULT_EXTENSIONS;
  if (!Array.isArray(rawExts) || rawExts.length === 0 || !rawExts.every((e) => typeof e === "string" && /^\.?[A-Za-z0-9]+$/.test(e))) {
    throw new OptionError("imageFolder.extensions", rawExts, 'a non-empty array of file extensions such as [".png", ".jpg"]');
  }
  const exts = rawExts.map((e: string) => (e.startsWith(".") ? e : "." + e).toLowerCase());
  const dir = await existingFolder("imageFolder(root)", root, "an existing folder with one subfolder per class");
  const entries = (await fsp.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  const classNames: string[] = [];
  for (const e of entries) if (await isDirectory(path.join(dir, e.name), e)) classNames.push(e.name);
  classNames.sort(byName);
  if (classNames.length === 0) throw new OptionError("imageFolder(root)", root, "a folder with one subfolder per class (it has no subfolders)");
  const files: string[] = [];
  const labelList: number[] = [];
  for (let k = 0; k < classNames.length; k++) {
    for (const f of await listImages(path.join(dir, classNames[k]!), exts)) {
      files.push(f);
      labelList.push(k);
    }
  }
  if (files.length === 0) throw new OptionError("imageFolder(root)", root, `image files (${exts.join(", ")}) inside its class folders (found none in ${classNames.join(", ")})`);
  const labels = Int32Array.from(labelList);
  Object.freeze(classNames);
  Object.freeze(files);
  const ds: ImageFolderDataset = {
    length: files.length,
    classNames,
    root: dir,
    files,
    channels,
    // Not async: a bad index throws here, synchronously, like every other dataset.
    get(i: number): Promise<Sample> {
      checkIndex(i, files.length);
      const file = files[i]!;
      return decodeImage(file, channels).then((image) => ({ image, label: labels[i]!, index: i, path: file }));
    },
    labels: () => labels,
    pathOf: (i: number) => (Number.isInteger(i) ? files[i] : undefined),
  };
  return withDisplay(ds, `imageFolder (${channels === 1 ? "gray" : channels === 3 ? "RGB" : "RGBA"}, decoded per sample)`, () => dir);
}
