/**
 * Structural scans of PNG and JPEG files, run when the decoder has rejected a file, to say at
 * which byte it breaks. PNG: the signature, then each chunk's length, type and CRC. JPEG: the
 * SOI marker, then each marker segment's length, skipping entropy-coded scan data.
 */
import { crc32 as zlibCrc32 } from "node:zlib";

export interface Corruption {
  /** Byte offset where the file stops being well formed. */
  offset: number;
  problem: string;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** CRC-32 (ISO 3309, as PNG uses) of buf[start, end), by node:zlib. */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  return zlibCrc32(buf.subarray(start, end));
}

function u32(buf: Uint8Array, p: number): number {
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

/** Walks a PNG's chunks; undefined when the structure is whole. */
export function scanPng(buf: Uint8Array): Corruption | undefined {
  for (let k = 0; k < PNG_SIGNATURE.length; k++) {
    if (k >= buf.length) return { offset: buf.length, problem: `the file ends inside the 8-byte PNG signature (it has ${buf.length} bytes)` };
    if (buf[k] !== PNG_SIGNATURE[k]) return { offset: k, problem: `bad PNG signature: byte ${k} is 0x${buf[k]!.toString(16).padStart(2, "0")}, expected 0x${PNG_SIGNATURE[k]!.toString(16).padStart(2, "0")}` };
  }
  let p = 8;
  let seenIdat = false;
  for (let index = 0; ; index++) {
    if (p === buf.length) return { offset: p, problem: "the PNG ends without an IEND chunk (truncated)" };
    if (p + 8 > buf.length) return { offset: buf.length, problem: `the file ends inside the header of the PNG chunk at byte ${p} (truncated)` };
    const len = u32(buf, p);
    const type = String.fromCharCode(buf[p + 4]!, buf[p + 5]!, buf[p + 6]!, buf[p + 7]!);
    if (len > 0x7fffffff) return { offset: p, problem: `PNG chunk at byte ${p} declares length ${len}, above the 2^31-1 limit` };
    if (!/^[A-Za-z]{4}$/.test(type)) return { offset: p + 4, problem: `PNG chunk type at byte ${p + 4} is not 4 ASCII letters (${JSON.stringify(type)})` };
    if (index === 0 && (type !== "IHDR" || len !== 13)) return { offset: p, problem: `the first PNG chunk must be a 13-byte IHDR, found ${type} of ${len} bytes` };
    const end = p + 12 + len;
    if (end > buf.length) {
      return { offset: buf.length, problem: `PNG chunk ${type} at byte ${p} declares ${len} data bytes (ending at byte ${end}), past the end of the file at byte ${buf.length} (truncated, or a corrupt length)` };
    }
    const stored = u32(buf, p + 8 + len);
    const actual = crc32(buf, p + 4, p + 8 + len);
    if (stored !== actual) {
      return { offset: p, problem: `PNG chunk ${type} at byte ${p} (${len} data bytes) fails its CRC: stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)}` };
    }
    if (type === "IDAT") seenIdat = true;
    if (type === "IEND") return seenIdat ? undefined : { offset: p, problem: "the PNG reaches IEND without any IDAT (image data) chunk" };
    p = end;
  }
}

const isSof = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
const hex = (m: number): string => `0xFF${m.toString(16).toUpperCase().padStart(2, "0")}`;

/** Walks a JPEG's marker segments; undefined when the structure is whole. */
export function scanJpeg(buf: Uint8Array): Corruption | undefined {
  if (buf.length < 2) return { offset: buf.length, problem: `the file ends inside the JPEG SOI marker (it has ${buf.length} bytes)` };
  if (buf[0] !== 0xff || buf[1] !== 0xd8) return { offset: buf[0] !== 0xff ? 0 : 1, problem: "no JPEG SOI marker (0xFFD8) at the start" };
  let p = 2;
  let seenSof = false;
  for (;;) {
    if (p >= buf.length) return { offset: buf.length, problem: "the JPEG ends without an EOI marker (truncated)" };
    if (buf[p] !== 0xff) return { offset: p, problem: `expected a JPEG marker (0xFF) at byte ${p}, found 0x${buf[p]!.toString(16).padStart(2, "0")}` };
    let q = p + 1;
    while (q < buf.length && buf[q] === 0xff) q++; // fill bytes
    if (q >= buf.length) return { offset: buf.length, problem: "the file ends inside a JPEG marker (truncated)" };
    const m = buf[q]!;
    const at = q - 1;
    if (m === 0x00) return { offset: at, problem: `0xFF00 at byte ${at} outside scan data, expected a JPEG marker` };
    if (m === 0xd9) return seenSof ? undefined : { offset: at, problem: "the JPEG reaches EOI without a frame (SOF) header" };
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p = q + 1; // markers without a length
      continue;
    }
    if (m === 0xd8) return { offset: at, problem: `a second SOI marker at byte ${at}` };
    if (q + 3 > buf.length) return { offset: buf.length, problem: `the file ends inside the length of JPEG segment ${hex(m)} at byte ${at} (truncated)` };
    const len = (buf[q + 1]! << 8) | buf[q + 2]!;
    if (len < 2) return { offset: q + 1, problem: `JPEG segment ${hex(m)} at byte ${at} declares length ${len}, below the minimum of 2` };
    const end = q + 1 + len;
    if (end > buf.length) return { offset: buf.length, problem: `JPEG segment ${hex(m)} at byte ${at} declares ${len} bytes (ending at byte ${end}), past the end of the file at byte ${buf.length} (truncated, or a corrupt length)` };
    if (isSof(m)) seenSof = true;
    p = end;
    if (m === 0xda) {
      if (!seenSof) return { offset: at, problem: `JPEG scan (SOS) at byte ${at} before any frame (SOF) header` };
      // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart.
      while (p < buf.length) {
        if (buf[p] === 0xff && p + 1 < buf.length) {
          const n = buf[p + 1]!;
          if (n !== 0x00 && !(n >= 0xd0 && n <= 0xd7) && n !== 0xff) break;
          p += n === 0xff ? 1 : 2;
        } else p++;
      }
      if (p >= buf.length) return { offset: buf.length, problem: `the JPEG scan data that starts at byte ${end} ends with the file, without an EOI marker (truncated)` };
    }
  }
}

/** Where a PNG or JPEG stops being well formed (undefined if its structure is whole). */
export function findCorruption(buf: Uint8Array, hint?: "png" | "jpeg"): Corruption | undefined {
  if (buf.length === 0) return { offset: 0, problem: "empty file" };
  if (buf[0] === 0x89 || (hint === "png" && buf[0] !== 0xff)) return scanPng(buf);
  if (buf[0] === 0xff || hint === "jpeg") return scanJpeg(buf);
  return { offset: 0, problem: `neither a PNG nor a JPEG: the file starts with 0x${buf[0]!.toString(16).padStart(2, "0")}` };
}
