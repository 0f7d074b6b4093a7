/**
 * Image folders: root/<class>/<image>.png|jpg (nested folders inside a class folder count too),
 * classes in sorted order. Labels come from the folder names, so labels() needs no decoding.
 * get(i) decodes JPEGs with libjpeg-turbo in batchlab's native pool (./jpeg.ts; sharp where the
 * addon has no decoder) and PNGs with sharp (libvips, on libuv's thread pool): decoding never
 * blocks the JavaScript thread. JPEGs are shown as their EXIF orientation says (PIL's
 * ImageOps.exif_transpose), by either decoder. When sharp rejects a file, a structural scan of its PNG chunks or JPEG
 * segments finds the byte where it breaks, for the error message.
 *
 * Reliability (what a hostile or broken folder cannot do):
 * - The walk is iterative (no recursion, no spread of long arrays: millions of files are fine)
 *   and follows symlinked folders once: every folder is identified by (dev, ino), and a folder
 *   reached a second time (a `loop -> .` symlink, a second link to a class folder, a bind-mount
 *   loop) is skipped, so no file is ever listed twice. Skipped entries are in `skipped` and
 *   reported by one process warning (code BATCHLAB_FOLDER_SKIPPED).
 * - Only regular files are listed and read: a FIFO, socket or device named x.png is skipped
 *   when listing, and refused (FileFormatError) if one appears later; files are opened with
 *   O_NONBLOCK and fstat'ed, and files larger than maxPixels * 8 bytes + 16 MiB are refused.
 * - Formats: decoded only when the extension and the magic bytes agree: PNG (.png, bytes
 *   89 50 4E 47 0D 0A 1A 0A) and JPEG (.jpg or .jpeg, bytes FF D8 FF). Anything else (an SVG,
 *   GIF, TIFF, WebP... whatever it is named) is a FileFormatError at byte 0, before any decoder
 *   sees it.
 * - Pixels: width x height is read from the PNG IHDR or the JPEG SOF header and checked against
 *   `maxPixels` (default 2^26 = 67,108,864, e.g. 8192 x 8192) before decoding; sharp gets the same
 *   cap as limitInputPixels. sharp's own default (16383 x 16383 = 268,402,689 pixels) lets a
 *   503-byte progressive JPEG allocate ~1 GB before it fails; at 2^26 the worst decode of one
 *   sample stays near 0.5 GB (RGBA output plus libjpeg's coefficient buffers), which several
 *   decodes in flight on the thread pool can afford, and it is still far above any camera photo.
 */
import { promises as fsp, type Dirent } from "node:fs";
import * as path from "node:path";
import { FileFormatError, OptionError } from "../errors";
import { checkIndex, existingFolder } from "./check";
import { declareOptions, int, withDefault, type OptionsOf } from "../options";
import { withDisplay } from "./display";
import { MAX_FILE_BYTES, readRegularFile } from "./files";
import { decodeJpegNative, hasNativeJpeg, orientedSize, readJpegHeader } from "./jpeg";
import { findCorruption } from "./scan";
import type { Dataset, DecodedRegion, EncodedSample, Image, Sample, SourceWindow } from "./types";

/** The formats decoded: extension and magic bytes must agree. */
type FormatName = "PNG" | "JPEG";
interface Format {
  readonly name: FormatName;
  readonly extensions: readonly string[];
  readonly magic: readonly number[];
}
const FORMATS: readonly Format[] = [
  { name: "PNG", extensions: [".png"], magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { name: "JPEG", extensions: [".jpg", ".jpeg"], magic: [0xff, 0xd8, 0xff] },
];
const hexBytes = (bs: readonly number[]): string => bs.map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(" ");
/** "PNG (.png, magic 89 50 ...), JPEG (.jpg, .jpeg, magic FF D8 FF)" for messages. */
export const ACCEPTED_FORMATS: string = FORMATS.map((f) => `${f.name} (${f.extensions.join(", ")}; first bytes ${hexBytes(f.magic)})`).join(", ");
const KNOWN_EXTENSIONS: readonly string[] = FORMATS.flatMap((f) => f.extensions);

const DEFAULT_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg"];

/**
 * Default cap on width x height of one decoded image: 2^26 (8192 x 8192). See the module
 * comment for why not sharp's 268,402,689.
 */
export const DEFAULT_MAX_PIXELS = 2 ** 26;
/** The largest maxPixels accepted: 4 channels of it must fit one Buffer. */
const MAX_MAX_PIXELS = Math.floor(MAX_FILE_BYTES / 4);

/** maxPixels: a whole number of pixels in [1, 2^30]. */
export function maxPixelsOption(option: string, v: unknown): number {
  return int(option, v, 1, MAX_MAX_PIXELS);
}

/** The largest file read for an image of at most `maxPixels` pixels (16-bit RGBA, stored, plus metadata). */
function maxImageFileBytes(maxPixels: number): number {
  return Math.min(MAX_FILE_BYTES, maxPixels * 8 + 2 ** 24);
}

interface SharpPipeline {
  rotate(): SharpPipeline;
  removeAlpha(): SharpPipeline;
  ensureAlpha(): SharpPipeline;
  toColourspace(space: string): SharpPipeline;
  raw(options?: { depth?: string }): SharpPipeline;
  toBuffer(options: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}
type SharpFactory = (input: Buffer, options?: { failOn?: string; limitInputPixels?: number; sequentialRead?: boolean }) => SharpPipeline;

let sharpModule: SharpFactory | undefined;
/** sharp, loaded on first use (importing batchlab does not load libvips). */
function sharp(): SharpFactory {
  return (sharpModule ??= require("sharp") as SharpFactory);
}

export type Channels = 1 | 3 | 4;

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim();
}

function channelsOption(option: string, v: unknown): Channels {
  if (v !== 1 && v !== 3 && v !== 4) throw new OptionError(option, v, "1, 3 or 4");
  return v;
}

function extensionsOption(option: string, v: unknown): readonly string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((e) => typeof e === "string" && /^\.?[A-Za-z0-9]+$/.test(e))) {
    throw new OptionError(option, v, 'a non-empty array of file extensions such as [".png", ".jpg"]');
  }
  const exts = v.map((e: string) => (e.startsWith(".") ? e : "." + e).toLowerCase());
  const unknown = exts.filter((e) => !KNOWN_EXTENSIONS.includes(e));
  if (unknown.length) throw new OptionError(option, v, `extensions of the formats decoded: ${ACCEPTED_FORMATS} (not ${unknown.join(", ")})`);
  return Object.freeze(exts);
}

/** The format an extension names (undefined for an extension of no accepted format). */
function formatOfExtension(file: string): Format | undefined {
  const ext = path.extname(file).toLowerCase();
  return FORMATS.find((f) => f.extensions.includes(ext));
}

/**
 * Checks that `buf` is the format its extension names and, when its header (PNG IHDR, JPEG SOF)
 * can be read, that the width x height it declares is within `maxPixels`, before any decoder
 * runs. A header that cannot be read is left to the decoder (which gets the same pixel cap as
 * limitInputPixels) and then to the structural scan, for the offset.
 */
function checkHeader(file: string, buf: Uint8Array, maxPixels: number): { format: FormatName; width?: number; height?: number } {
  const f = formatOfExtension(file);
  if (!f) throw new FileFormatError(file, `the extension ${JSON.stringify(path.extname(file))} names no format decoded here; decoded: ${ACCEPTED_FORMATS}`, 0);
  const hint = f.name === "PNG" ? "png" : "jpeg";
  const bad = f.magic.findIndex((b, k) => buf[k] !== b); // -1 when every magic byte agrees
  if (bad >= 0) {
    const other = FORMATS.find((g) => g !== f && g.magic.every((b, j) => buf[j] === b));
    const where = findCorruption(buf, hint);
    const problem = where && where.offset <= f.magic.length ? where.problem : `the file does not start with the ${f.name} signature ${hexBytes(f.magic)}`;
    const offset = where && where.offset <= f.magic.length ? where.offset : Math.min(bad, buf.length);
    const what = other ? ` (it is a ${other.name} file)` : buf.length ? ` (its first bytes: ${hexBytes(Array.from(buf.subarray(0, 8)))})` : "";
    throw new FileFormatError(file, `${problem}; not decoded${what}: only files whose extension and first bytes agree are decoded: ${ACCEPTED_FORMATS}`, offset);
  }
  const dims = f.name === "PNG" ? pngSize(buf) : jpegSize(buf);
  if (!dims) return { format: f.name };
  const { width, height, offset } = dims;
  if (width === 0 || height === 0) throw new FileFormatError(file, `the ${f.name} header declares ${width} x ${height} pixels: an empty image`, offset);
  if (width * height > maxPixels) {
    throw new FileFormatError(file, `the ${f.name} header declares ${width} x ${height} = ${width * height} pixels, above maxPixels = ${maxPixels} (not decoded; imageFolder's maxPixels option raises the cap)`, offset);
  }
  return { format: f.name, width, height };
}

const u16 = (b: Uint8Array, p: number): number => (b[p]! << 8) | b[p + 1]!;
const u32 = (b: Uint8Array, p: number): number => ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;

/** A PNG's size from its IHDR chunk (the first chunk), and the offset of the width field. */
function pngSize(buf: Uint8Array): { width: number; height: number; offset: number } | undefined {
  if (buf.length < 24 || u32(buf, 8) !== 13 || String.fromCharCode(buf[12]!, buf[13]!, buf[14]!, buf[15]!) !== "IHDR") return undefined;
  return { width: u32(buf, 16), height: u32(buf, 20), offset: 16 };
}

const isSof = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/** A JPEG's size from its first frame (SOF) header, and the offset of the height field. */
function jpegSize(buf: Uint8Array): { width: number; height: number; offset: number } | undefined {
  let p = 2;
  while (p + 4 <= buf.length) {
    if (buf[p] !== 0xff) return undefined;
    let q = p + 1;
    while (q < buf.length && buf[q] === 0xff) q++;
    if (q + 2 >= buf.length) return undefined;
    const m = buf[q]!;
    if (m === 0xd8 || m === 0xd9 || m === 0xda || m === 0x00) return undefined; // no frame before the scan
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p = q + 1;
      continue;
    }
    const len = u16(buf, q + 1);
    if (isSof(m)) {
      if (len < 8 || q + 8 >= buf.length) return undefined;
      return { height: u16(buf, q + 4), width: u16(buf, q + 6), offset: q + 4 };
    }
    if (len < 2) return undefined;
    p = q + 1 + len;
  }
  return undefined;
}

const decodeOptions = declareOptions("decodeImage", {
  maxPixels: withDefault(maxPixelsOption, DEFAULT_MAX_PIXELS),
});

/**
 * Decodes one PNG or JPEG file to uint8 HWC pixels with `channels` channels: 1 (luminance), 3
 * (sRGB) or 4 (sRGB + alpha, opaque when the file has none). 16-bit files are scaled to 8 bits.
 * The file must be a regular file whose extension and first bytes name the same format, and
 * whose header declares at most `maxPixels` pixels (default 2^26); see the module comment.
 */
export async function decodeImage(file: string, channels: Channels = 3, options?: OptionsOf<(typeof decodeOptions)["spec"]>): Promise<Image> {
  if (typeof file !== "string" || file.length === 0) throw new OptionError("decodeImage(file)", file, "a file path (string)");
  channelsOption("decodeImage(channels)", channels);
  const { maxPixels } = decodeOptions.parse(options);
  const buf = await readRegularFile(file, { maxBytes: maxImageFileBytes(maxPixels), maxWhy: `maxPixels = ${maxPixels} allows files up to 8 bytes per pixel + 16 MiB` });
  return decodeImageBytes(file, buf, channels, maxPixels);
}

/**
 * decodeImage on bytes already in memory (a tar shard's member, ...): `name` gives the format by
 * its extension and names the source in errors. The same checks: extension and first bytes
 * agree, header within `maxPixels`, a FileFormatError with the byte offset where it breaks.
 */
export async function decodeImageBytes(name: string, buf: Uint8Array, channels: Channels = 3, maxPixels: number = DEFAULT_MAX_PIXELS): Promise<Image> {
  if (typeof name !== "string" || name.length === 0) throw new OptionError("decodeImageBytes(name)", name, "a file name whose extension names the format (string)");
  if (!(buf instanceof Uint8Array)) throw new OptionError("decodeImageBytes(bytes)", buf, "a Uint8Array or Buffer of PNG or JPEG bytes");
  channelsOption("decodeImageBytes(channels)", channels);
  maxPixelsOption("decodeImageBytes(maxPixels)", maxPixels);
  const file = name;
  const header = checkHeader(file, buf, maxPixels);
  if (header.format === "JPEG") return decodeJpegBytes(file, buf, channels, maxPixels, header);
  return decodeWithSharp(file, buf, channels, maxPixels, header);
}

/** A JPEG whose header passed checkHeader: natively when the addon has a decoder, else sharp. */
async function decodeJpegBytes(file: string, buf: Uint8Array, channels: Channels, maxPixels: number, header: { format: FormatName; width?: number; height?: number }): Promise<Image> {
  const { orientation } = readJpegHeader(buf);
  if (!hasNativeJpeg()) return decodeWithSharp(file, buf, channels, maxPixels, header, orientation);
  const r = await decodeJpegNative({ data: buf, channels, orientation, maxPixels });
  if ("error" in r) throw jpegFailure(file, buf, r.error, r.offset);
  const want = header.width !== undefined && header.height !== undefined ? orientedSize(header.width, header.height, orientation) : undefined;
  if (r.channels !== channels || (want && (r.width !== want.width || r.height !== want.height)) || r.data.length !== r.width * r.height * channels) {
    throw new FileFormatError(file, `decoded to ${r.width} x ${r.height} x ${r.channels} (${r.data.length} bytes), expected ${want?.width ?? r.width} x ${want?.height ?? r.height} (from the header) x ${channels} uint8 channels`);
  }
  return { data: r.data, height: r.height, width: r.width, channels };
}

/**
 * The FileFormatError of a JPEG that libjpeg refused: where the segment structure breaks, when
 * it does (findCorruption's message, libjpeg's in brackets), else libjpeg's message and the byte
 * it had reached.
 */
export function jpegFailure(file: string, buf: Uint8Array, error: string, offset: number): FileFormatError {
  const where = findCorruption(buf, "jpeg");
  const reason = `libjpeg-turbo: ${error}`;
  if (where) return new FileFormatError(file, `${where.problem} (decoder: ${reason})`, where.offset);
  const at = offset >= 0 ? offset : undefined;
  return new FileFormatError(file, `cannot decode, though its chunk/segment structure is whole (decoder: ${reason}${at !== undefined ? `, having read ${at} bytes` : ""})`, at);
}

async function decodeWithSharp(file: string, buf: Uint8Array, channels: Channels, maxPixels: number, header: { format: FormatName; width?: number; height?: number }, orientation = 1): Promise<Image> {
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    let img = sharp()(Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length), { limitInputPixels: maxPixels, sequentialRead: true });
    if (orientation !== 1) img = img.rotate(); // EXIF orientation, as the native decoder applies it
    img = channels === 4 ? img.ensureAlpha().toColourspace("srgb") : img.removeAlpha().toColourspace(channels === 1 ? "b-w" : "srgb");
    out = await img.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    const where = findCorruption(buf, header.format === "PNG" ? "png" : "jpeg");
    const reason = firstLine(e);
    if (where) throw new FileFormatError(file, `${where.problem} (decoder: ${reason})`, where.offset);
    throw new FileFormatError(file, `cannot decode, though its chunk/segment structure is whole (decoder: ${reason})`);
  }
  const { data, info } = out;
  const want = header.width !== undefined && header.height !== undefined ? orientedSize(header.width, header.height, orientation) : undefined;
  if (info.channels !== channels || (want && (info.width !== want.width || info.height !== want.height)) || data.length !== info.width * info.height * channels) {
    throw new FileFormatError(file, `decoded to ${info.width} x ${info.height} x ${info.channels} (${data.length} bytes), expected ${want?.width ?? info.width} x ${want?.height ?? info.height} (from the header) x ${channels} uint8 channels`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width, channels };
}

/**
 * Sample i read and its header checked, not decoded: its shape (orientation applied) and a
 * decoder of any window at 1/1, 1/2, 1/4 or 1/8 (libjpeg-turbo's crop and DCT scaling). A PNG
 * decodes whole at scale 1 whatever window is asked for.
 */
async function encodedSample(file: string, label: number, index: number, channels: Channels, maxPixels: number): Promise<EncodedSample> {
  const buf = await readRegularFile(file, { maxBytes: maxImageFileBytes(maxPixels), maxWhy: `maxPixels = ${maxPixels} allows files up to 8 bytes per pixel + 16 MiB` });
  const header = checkHeader(file, buf, maxPixels);
  const whole = async (): Promise<DecodedRegion> => ({ image: header.format === "JPEG" ? await decodeJpegBytes(file, buf, channels, maxPixels, header) : await decodeWithSharp(file, buf, channels, maxPixels, header), frame: { scale: 1, left: 0, top: 0 } });
  const jh = header.format === "JPEG" ? readJpegHeader(buf) : undefined;
  if (!jh || header.width === undefined || header.height === undefined) {
    // No readable size before decoding (or a PNG): decode now, whole.
    const region = await whole();
    const { height, width } = region.image;
    return { label, index, path: file, shape: { height, width, channels }, decode: () => Promise.resolve(region) };
  }
  const shape = { ...orientedSize(header.width, header.height, jh.orientation), channels };
  const decode = async (window?: SourceWindow): Promise<DecodedRegion> => {
    if (!window) return whole();
    const r = await decodeJpegNative({ data: buf, channels, orientation: jh.orientation, maxPixels, window: checkWindow(file, window, shape) });
    if ("error" in r) throw jpegFailure(file, buf, r.error, r.offset);
    return { image: { data: r.data, height: r.height, width: r.width, channels }, frame: { scale: r.scale, left: r.left, top: r.top } };
  };
  return { label, index, path: file, shape, decode };
}

/** A SourceWindow inside the image (whole numbers, scale 1, 2, 4 or 8), else an OptionError naming it. */
function checkWindow(file: string, w: SourceWindow, shape: { height: number; width: number }): SourceWindow {
  const ok = (v: unknown, lo: number, hi: number): boolean => typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
  if (!w || !ok(w.left, 0, shape.width - 1) || !ok(w.top, 0, shape.height - 1) || !ok(w.width, 1, shape.width - w.left) || !ok(w.height, 1, shape.height - w.top) || ![1, 2, 4, 8].includes(w.scale)) {
    throw new OptionError(`decode(window) of ${file}`, w, `{ left, top, width, height } of whole pixels inside the ${shape.width} x ${shape.height} image, and scale 1, 2, 4 or 8`);
  }
  return w;
}

/** Options of imageFolder, declared once: each option's type, check and default. */
export const imageFolderOptions = declareOptions("imageFolder", {
  /** Channels to decode to: 1 (gray), 3 (RGB, the default) or 4 (RGBA). */
  channels: withDefault<Channels, Channels>(channelsOption, 3),
  /** File extensions to include, case-insensitive (default ".png", ".jpg", ".jpeg"; only these are accepted). */
  extensions: withDefault<readonly string[], readonly string[]>(extensionsOption, DEFAULT_EXTENSIONS),
  /**
   * The most pixels (width x height) one image may declare, checked from its header before
   * decoding (default 2^26 = 67,108,864, i.e. 8192 x 8192; at most 2^30).
   */
  maxPixels: withDefault(maxPixelsOption, DEFAULT_MAX_PIXELS),
  /**
   * "fast" (default): where JPEGs decode natively, the data set also offers encoded(i), so that
   * a consumer may decode only the window and DCT scale it reads (src/data/types.ts,
   * EncodedSample). "exact": get(i) only, every image decoded whole. get(i) is the whole image
   * at full resolution either way.
   */
  decode: withDefault<"fast" | "exact", "fast" | "exact">((o, x) => {
    if (x !== "fast" && x !== "exact") throw new OptionError(o, x, '"fast" or "exact"');
    return x;
  }, "fast"),
});

export type ImageFolderOptions = OptionsOf<(typeof imageFolderOptions)["spec"]>;

/** One entry the folder walk left out, and why. */
export interface SkippedEntry {
  readonly path: string;
  readonly reason: string;
}

/** An image-folder dataset: its files, labels and the decode options. */
export interface ImageFolderDataset extends Dataset {
  readonly classNames: readonly string[];
  readonly root: string;
  readonly files: readonly string[];
  readonly channels: Channels;
  readonly maxPixels: number;
  /** Entries left out of the walk: folders reached twice (symlink loops), non-regular files. */
  readonly skipped: readonly SkippedEntry[];
  get(i: number): Promise<Sample>;
  /** The first `n` samples from `start` (default 0), decoded; fewer at the end of the folder. */
  take(n: number, start?: number): Promise<Sample[]>;
  labels(): Int32Array;
  pathOf(i: number): string | undefined;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** What a path (after symlinks) is: its (dev, ino) identity and type, or undefined if it cannot be stat'ed. */
async function identify(full: string): Promise<{ id: string; dir: boolean; file: boolean; kind: string } | undefined> {
  try {
    const st = await fsp.stat(full, { bigint: true });
    const kind = st.isDirectory() ? "a folder" : st.isFile() ? "a file" : st.isFIFO() ? "a FIFO (named pipe)" : st.isSocket() ? "a socket" : st.isCharacterDevice() ? "a character device" : st.isBlockDevice() ? "a block device" : "not a regular file";
    return { id: `${st.dev}:${st.ino}`, dir: st.isDirectory(), file: st.isFile(), kind };
  } catch {
    return undefined;
  }
}

async function listFolder(dir: string): Promise<Dirent[]> {
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new FileFormatError(dir, `cannot list the folder: ${firstLine(e)}`);
  }
  return entries.filter((e) => !e.name.startsWith(".")).sort((a, b) => byName(a.name, b.name));
}

/**
 * Image files under the class folder `top` (recursively, depth first, names sorted), appended
 * to `out`. Iterative: a stack of open folders, so neither depth nor breadth uses the call
 * stack. `seen` holds the (dev, ino) of every folder already walked (all class folders are in
 * it from the start); a folder met again is skipped, so a loop ends and no file comes twice.
 */
async function walkClass(top: string, exts: readonly string[], seen: Map<string, string>, out: string[], skipped: SkippedEntry[]): Promise<void> {
  const stack: { dir: string; entries: Dirent[]; i: number }[] = [{ dir: top, entries: await listFolder(top), i: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.i >= frame.entries.length) {
      stack.pop();
      continue;
    }
    const e = frame.entries[frame.i++]!;
    const full = path.join(frame.dir, e.name);
    const wanted = exts.includes(path.extname(e.name).toLowerCase());
    if (e.isFile()) {
      if (wanted) out.push(full);
      continue;
    }
    if (!e.isDirectory() && !e.isSymbolicLink()) {
      if (wanted) skipped.push({ path: full, reason: `not a regular file (${e.isFIFO() ? "a FIFO" : e.isSocket() ? "a socket" : "a device or other special file"})` });
      continue;
    }
    const what = await identify(full);
    if (!what) {
      if (e.isSymbolicLink()) skipped.push({ path: full, reason: "a broken symlink" });
      continue;
    }
    if (what.dir) {
      const first = seen.get(what.id);
      if (first !== undefined) {
        skipped.push({ path: full, reason: `a folder already walked as ${first} (a symlink loop or a second link to it)` });
        continue;
      }
      seen.set(what.id, full);
      stack.push({ dir: full, entries: await listFolder(full), i: 0 });
    } else if (wanted) {
      if (what.file) out.push(full);
      else skipped.push({ path: full, reason: `not a regular file (a symlink to ${what.kind})` });
    }
  }
}

/**
 * A dataset over root/<class>/<file>: one subfolder per class (sorted names are the class
 * names, hidden folders skipped), PNG/JPEG files inside. get(i) returns a promise of the decoded
 * sample; labels() is known from the folders without decoding anything.
 */
export async function imageFolder(root: string, options?: ImageFolderOptions): Promise<ImageFolderDataset> {
  const { channels, extensions: exts, maxPixels, decode: decodeMode } = imageFolderOptions.parse(options);
  const dir = await existingFolder("imageFolder(root)", root, "an existing folder with one subfolder per class");
  const seen = new Map<string, string>();
  const rootId = await identify(dir);
  if (rootId) seen.set(rootId.id, dir);
  const skipped: SkippedEntry[] = [];
  const classNames: string[] = [];
  const classIds: (string | undefined)[] = [];
  for (const e of await listFolder(dir)) {
    if (!e.isDirectory() && !e.isSymbolicLink()) continue;
    const what = await identify(path.join(dir, e.name));
    if (!what || !what.dir) continue;
    classNames.push(e.name);
    classIds.push(what.id);
  }
  if (classNames.length === 0) throw new OptionError("imageFolder(root)", root, "a folder with one subfolder per class (it has no subfolders)");
  // Every class folder is claimed before any is walked: a link from one class into another is
  // skipped, so each file keeps the label of its own class folder.
  const duplicate = new Set<number>();
  for (let k = 0; k < classNames.length; k++) {
    const id = classIds[k]!;
    const first = seen.get(id);
    if (first !== undefined) {
      duplicate.add(k);
      skipped.push({ path: path.join(dir, classNames[k]!), reason: `a class folder that is the same folder as ${first}; its class stays, empty` });
    } else seen.set(id, path.join(dir, classNames[k]!));
  }
  const files: string[] = [];
  const labelList: number[] = [];
  for (let k = 0; k < classNames.length; k++) {
    if (duplicate.has(k)) continue;
    const before = files.length;
    await walkClass(path.join(dir, classNames[k]!), exts, seen, files, skipped);
    for (let j = before; j < files.length; j++) labelList.push(k);
  }
  if (skipped.length > 0) {
    const shown = skipped.slice(0, 3).map((s) => `${s.path}: ${s.reason}`).join("; ");
    process.emitWarning(`imageFolder(${dir}): skipped ${skipped.length} entr${skipped.length === 1 ? "y" : "ies"} (${shown}${skipped.length > 3 ? "; ..." : ""}); the list is the dataset's .skipped`, {
      type: "BatchlabWarning",
      code: "BATCHLAB_FOLDER_SKIPPED",
    });
  }
  if (files.length === 0) throw new OptionError("imageFolder(root)", root, `image files (${exts.join(", ")}) inside its class folders (found none in ${classNames.join(", ")})`);
  const labels = Int32Array.from(labelList);
  Object.freeze(classNames);
  Object.freeze(files);
  Object.freeze(skipped);
  const decode = { maxPixels };
  const ds: ImageFolderDataset = {
    length: files.length,
    classNames,
    root: dir,
    files,
    channels,
    maxPixels,
    skipped,
    // Not async: a bad index throws here, synchronously, like every other dataset.
    freshImages: true, // each get(i) decodes anew
    get(i: number): Promise<Sample> {
      checkIndex(i, files.length);
      const file = files[i]!;
      return decodeImage(file, channels, decode).then((image) => ({ image, label: labels[i]!, index: i, path: file }));
    },
    take(n: number, start = 0): Promise<Sample[]> {
      const count = int("take(n)", n, 0);
      const from = int("take(start)", start, 0, files.length);
      const picks: Promise<Sample>[] = [];
      for (let i = from; i < Math.min(files.length, from + count); i++) picks.push(this.get(i));
      return Promise.all(picks);
    },
    labels: () => labels,
    pathOf: (i: number) => (Number.isInteger(i) ? files[i] : undefined),
  };
  if (decodeMode === "fast" && hasNativeJpeg()) {
    (ds as { encoded?: (i: number) => Promise<EncodedSample> }).encoded = (i: number) => {
      checkIndex(i, files.length);
      return encodedSample(files[i]!, labels[i]!, i, channels, maxPixels);
    };
  }
  return withDisplay(ds, `imageFolder (${channels === 1 ? "gray" : channels === 3 ? "RGB" : "RGBA"}, decoded per sample)`, () => dir);
}
