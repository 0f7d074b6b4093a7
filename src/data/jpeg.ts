/**
 * JPEG decoding in batchlab's native thread pool (libjpeg-turbo, native/decode.cc), and the
 * JPEG header facts the loader needs before decoding: size, components, EXIF orientation.
 *
 * The decoder lives in the CPU addon, build/Release/batchlab_cpu.node, which this module finds
 * itself (src/engines/addon-cpu.ts asks it where the addon is): the data stage must not import
 * the engines. Requests made in the same turn of the event loop (the loader asks for a batch's
 * samples together) go to the addon as one call, one pool task for the batch; the JavaScript
 * thread never waits for a decode.
 *
 * Environment: BATCHLAB_DECODER=sharp decodes JPEGs with sharp as before (the addon built
 * without libjpeg does the same); BATCHLAB_NATIVE_ADDON=/path loads another build.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { SourceWindow } from "./types";

const packageRoot = path.join(__dirname, "..", "..");

/** Where the CPU addon is loaded from (BATCHLAB_NATIVE_ADDON, else build/Release/batchlab_cpu.node). */
export function nativeAddonPath(): string {
  return process.env.BATCHLAB_NATIVE_ADDON || path.join(packageRoot, "build", "Release", "batchlab_cpu.node");
}

/** One decoded image, as native/decode.cc returns it. */
export interface NativeDecoded {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** Where the pixels sit in the full (oriented) image: see SourceFrame. */
  readonly left: number;
  readonly top: number;
  readonly scale: number;
  readonly fullWidth: number;
  readonly fullHeight: number;
}
export interface NativeFailure {
  readonly error: string;
  /** The byte libjpeg had reached, -1 when unknown. */
  readonly offset: number;
}
export type NativeDecodeResult = NativeDecoded | NativeFailure;

export interface JpegRequest {
  readonly data: Uint8Array;
  readonly channels: 1 | 3 | 4;
  readonly orientation: number;
  readonly maxPixels: number;
  readonly window?: SourceWindow;
}

interface DecodeAddon {
  decodeJpeg(requests: readonly JpegRequest[]): Promise<NativeDecodeResult[]>;
  /** Detaches a buffer decodeJpeg made and frees its memory now; false for any other buffer. */
  releaseDecoded?(data: Uint8Array): boolean;
  jpegVersion: string;
}

type Loaded = { ok: true; addon: DecodeAddon } | { ok: false; reason: string };
let loaded: Loaded | undefined;

function load(): Loaded {
  if (loaded) return loaded;
  const forced = process.env.BATCHLAB_DECODER;
  if (forced === "sharp") return (loaded = { ok: false, reason: "forced: BATCHLAB_DECODER=sharp" });
  const file = nativeAddonPath();
  if (!fs.existsSync(file)) return (loaded = { ok: false, reason: `the native addon is not built (${path.relative(packageRoot, file)} missing)` });
  try {
    const raw = require(file) as Partial<DecodeAddon>;
    if (typeof raw.decodeJpeg !== "function") return (loaded = { ok: false, reason: "the native addon was built without libjpeg (no jpeglib.h when it was built: install libjpeg62-turbo-dev or libjpeg-turbo's headers and run npm run build:native)" });
    loaded = { ok: true, addon: raw as DecodeAddon };
  } catch (e) {
    loaded = { ok: false, reason: `cannot load ${file}: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}` };
  }
  return loaded;
}

/** Which decoder JPEGs get, and why (`batchlab doctor` prints it). */
export function jpegDecoder(): { native: boolean; name: string; reason: string } {
  const l = load();
  if (l.ok) return { native: true, name: `${l.addon.jpegVersion} in batchlab's native pool`, reason: "the CPU addon has decodeJpeg" };
  return { native: false, name: "sharp (libvips)", reason: l.reason };
}

/**
 * Gives the memory of decoded pixels back now instead of when the collector finds them: only
 * for a buffer the native decoder made (false for any other, which is left as it is); every
 * view of it then reads as empty. The loader calls it for the images it decoded itself once the
 * batch's engine call has read them.
 */
export function releaseDecoded(data: Uint8Array): boolean {
  const l = load();
  return l.ok && typeof l.addon.releaseDecoded === "function" ? l.addon.releaseDecoded(data) : false;
}

/** True when JPEGs decode natively. */
export function hasNativeJpeg(): boolean {
  return load().ok;
}

/** Most requests per native call (a long queue is cut into calls of this size). */
const MAX_BATCH = 256;
let queue: { req: JpegRequest; resolve: (r: NativeDecodeResult) => void; reject: (e: unknown) => void }[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  const l = load();
  while (queue.length > 0) {
    const part = queue.splice(0, MAX_BATCH);
    if (!l.ok) {
      for (const q of part) q.reject(new Error(`native JPEG decode unavailable: ${l.reason}`));
      continue;
    }
    let pending: Promise<NativeDecodeResult[]>;
    try {
      pending = l.addon.decodeJpeg(part.map((q) => q.req));
    } catch (e) {
      pending = Promise.reject(e);
    }
    pending.then(
      (results) => part.forEach((q, k) => q.resolve(results[k]!)),
      (e: unknown) => part.forEach((q) => q.reject(e)),
    );
  }
}

/**
 * Decodes one JPEG on the native pool (with the other requests of this turn of the event loop
 * in one call). Resolves with the pixels or with libjpeg's failure; rejects only for a request
 * the addon refuses (a bug here) or when the decoder is unavailable (check hasNativeJpeg()).
 */
export function decodeJpegNative(req: JpegRequest): Promise<NativeDecodeResult> {
  return new Promise((resolve, reject) => {
    queue.push({ req, resolve, reject });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
}

const u16 = (b: Uint8Array, p: number, little = false): number => (little ? b[p]! | (b[p + 1]! << 8) : (b[p]! << 8) | b[p + 1]!);
const u32 = (b: Uint8Array, p: number, little = false): number =>
  (little ? (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!)) >>> 0;

/**
 * The EXIF orientation (1 to 8) of a TIFF structure (an APP1 "Exif\0\0" payload without those
 * six bytes): tag 0x0112 of IFD0. 1 when absent or malformed (never throws: a broken EXIF
 * block leaves the pixels as stored, as PIL does).
 */
export function exifOrientation(tiff: Uint8Array): number {
  if (tiff.length < 8) return 1;
  const order = String.fromCharCode(tiff[0]!, tiff[1]!);
  if (order !== "II" && order !== "MM") return 1;
  const le = order === "II";
  if (u16(tiff, 2, le) !== 42) return 1;
  const ifd = u32(tiff, 4, le);
  if (ifd + 2 > tiff.length) return 1;
  const count = u16(tiff, ifd, le);
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > tiff.length) return 1;
    if (u16(tiff, e, le) !== 0x0112) continue;
    const type = u16(tiff, e + 2, le);
    // SHORT (3) as it should be; LONG (4) is accepted too, as some writers store it so.
    const v = type === 3 ? u16(tiff, e + 8, le) : type === 4 ? u32(tiff, e + 8, le) : 0;
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}

const isSof = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/** What the JPEG's markers before the first scan say. Missing facts are undefined. */
export interface JpegHeader {
  /** As stored (before orientation). */
  readonly width?: number;
  readonly height?: number;
  /** Offset of the SOF's height field. */
  readonly sofOffset?: number;
  /** 1 (gray), 3 (YCbCr/RGB) or 4 (CMYK/YCCK). */
  readonly components?: number;
  readonly progressive?: boolean;
  /** EXIF orientation of the first APP1 Exif segment, 1 when none. */
  readonly orientation: number;
}

/** Walks the segments before the first scan: SOF size and components, APP1 orientation. */
export function readJpegHeader(buf: Uint8Array): JpegHeader {
  let p = 2;
  let orientation: number | undefined;
  let sof: { width: number; height: number; sofOffset: number; components: number; progressive: boolean } | undefined;
  while (p + 4 <= buf.length) {
    if (buf[p] !== 0xff) break;
    let q = p + 1;
    while (q < buf.length && buf[q] === 0xff) q++;
    if (q + 2 >= buf.length) break;
    const m = buf[q]!;
    if (m === 0xd8 || m === 0xd9 || m === 0xda || m === 0x00) break;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p = q + 1;
      continue;
    }
    const len = u16(buf, q + 1);
    if (len < 2) break;
    const body = q + 3;
    const end = Math.min(buf.length, q + 1 + len);
    if (isSof(m) && !sof && len >= 8 && body + 6 <= buf.length) {
      sof = { height: u16(buf, body + 1), width: u16(buf, body + 3), sofOffset: body + 1, components: buf[body + 5]!, progressive: m === 0xc2 || m === 0xc6 || m === 0xca || m === 0xce };
    } else if (m === 0xe1 && orientation === undefined && end - body >= 6 && String.fromCharCode(...buf.subarray(body, body + 4)) === "Exif" && buf[body + 4] === 0 && buf[body + 5] === 0) {
      orientation = exifOrientation(buf.subarray(body + 6, end));
    }
    p = q + 1 + len;
  }
  return { ...sof, orientation: orientation ?? 1 };
}

/** The shown size of a stored w x h image under an EXIF orientation (5 to 8 transpose it). */
export function orientedSize(width: number, height: number, orientation: number): { width: number; height: number } {
  return orientation >= 5 ? { width: height, height: width } : { width, height };
}
