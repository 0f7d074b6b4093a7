/**
 * A minimal PNG encoder (8-bit RGBA, no interlace) and the kernel logo drawn with it.
 */
import { deflateSync } from "node:zlib";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encode `rgba` (width*height*4 bytes, row-major) as a PNG file. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  if (rgba.length !== width * height * 4) throw new RangeError(`encodePng: expected ${width * height * 4} bytes for ${width}x${height} RGBA, got ${rgba.length}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0; // filter: none
    Buffer.from(rgba.buffer, rgba.byteOffset + y * width * 4, width * 4).copy(raw, y * (width * 4 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

/** Width and height from a PNG's IHDR, or null when `png` is not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } | null {
  const b = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (b.length < 24 || b.readUInt32BE(0) !== 0x89504e47 || b.toString("latin1", 12, 16) !== "IHDR") return null;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

/**
 * The kernel logo at `size` pixels: a rounded square in TypeScript blue holding a 3x3 grid of
 * tiles (a batch), the middle row brighter (one sample picked from it). Anti-aliased by 4x4
 * supersampling.
 */
export function drawLogo(size: number): Buffer {
  const rgba = new Uint8Array(size * size * 4);
  const bg = [49, 120, 198];
  const tile = [255, 255, 255];
  const dim = [170, 200, 235];
  const s = 4;
  const radius = size * 0.18;
  const inside = (x: number, y: number, x0: number, y0: number, x1: number, y1: number, r: number): boolean => {
    if (x < x0 || x > x1 || y < y0 || y > y1) return false;
    const cx = Math.min(Math.max(x, x0 + r), x1 - r);
    const cy = Math.min(Math.max(y, y0 + r), y1 - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };
  const margin = size * 0.2;
  const gap = size * 0.06;
  const cell = (size - 2 * margin - 2 * gap) / 3;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const acc = [0, 0, 0, 0];
      for (let sy = 0; sy < s; sy++) {
        for (let sx = 0; sx < s; sx++) {
          const x = px + (sx + 0.5) / s;
          const y = py + (sy + 0.5) / s;
          if (!inside(x, y, 0, 0, size, size, radius)) continue;
          let color = bg;
          for (let r = 0; r < 3 && color === bg; r++) {
            for (let c = 0; c < 3; c++) {
              const x0 = margin + c * (cell + gap);
              const y0 = margin + r * (cell + gap);
              if (inside(x, y, x0, y0, x0 + cell, y0 + cell, cell * 0.15)) {
                color = r === 1 ? tile : dim;
                break;
              }
            }
          }
          acc[0]! += color[0]!;
          acc[1]! += color[1]!;
          acc[2]! += color[2]!;
          acc[3]! += 255;
        }
      }
      const n = s * s;
      const a = acc[3]! / n;
      const i = (py * size + px) * 4;
      const cover = acc[3]! / 255;
      rgba[i] = cover ? Math.round(acc[0]! / cover) : 0;
      rgba[i + 1] = cover ? Math.round(acc[1]! / cover) : 0;
      rgba[i + 2] = cover ? Math.round(acc[2]! / cover) : 0;
      rgba[i + 3] = Math.round(a);
    }
  }
  return encodePng(size, size, rgba);
}
