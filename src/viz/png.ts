/** A small PNG encoder: 8-bit greyscale or RGB, no interlace, deflate from node:zlib. */
import { crc32, deflateSync } from "node:zlib";

function writeChunk(out: Buffer, at: number, type: string, body: Uint8Array): number {
  out.writeUInt32BE(body.length, at);
  out.write(type, at + 4, "latin1");
  out.set(body, at + 8);
  out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + body.length)), at + 8 + body.length);
  return at + 12 + body.length;
}

/**
 * Encodes row-major pixels (`channels` bytes per pixel: 1 grey, 3 RGB) as a PNG file.
 * Rows use filter type 0: the views' images are flat colour and nearest-neighbour upscales,
 * which deflate already compresses well, and it keeps encoding cheap.
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, level = 6): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  }
  const stride = width * channels;
  if (pixels.length !== stride * height) {
    throw new RangeError(`encodePng: expected ${stride * height} bytes for ${width}x${height}x${channels}, got ${pixels.length}`);
  }
  const raw = Buffer.allocUnsafe((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = 0;
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), o + 1);
  }
  const idat = deflateSync(raw, { level });
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 3 ? 2 : 0; // colour type: truecolour or greyscale
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const out = Buffer.allocUnsafe(8 + 25 + 12 + idat.length + 12);
  out.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0);
  let at = writeChunk(out, 8, "IHDR", ihdr);
  at = writeChunk(out, at, "IDAT", idat);
  writeChunk(out, at, "IEND", new Uint8Array(0));
  return out;
}
