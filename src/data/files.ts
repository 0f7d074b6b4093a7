/**
 * Reading data files. Only regular files are read: the file is opened without blocking (so a
 * FIFO cannot hang the open), checked with fstat (a FIFO, socket, device such as /dev/zero, or
 * folder is refused before a byte is read), its size checked against a cap, and exactly that
 * many bytes read into one buffer.
 *
 * A file that starts with the gzip magic bytes is gunzipped by a streaming inflate: the format's
 * header is parsed from the first decompressed bytes, and inflating stops with an error as soon
 * as the output passes the length that header declares (a decompression bomb costs no more than
 * a well-formed file of its declared size, and never more than ~1032 bytes per compressed byte,
 * deflate's largest ratio). A broken gzip stream is reported with the compressed byte offset
 * where it stops decoding, found by replaying the one input chunk that failed byte by byte.
 */
import { constants as fsConstants, promises as fsp, type Stats } from "node:fs";
import { constants as bufferConstants } from "node:buffer";
import * as zlib from "node:zlib";
import { FileFormatError, OptionError } from "../errors";

/** The largest file (or gunzipped stream) read into memory: Node's largest Buffer. */
export const MAX_FILE_BYTES: number = bufferConstants.MAX_LENGTH;

export interface FileBytes {
  readonly path: string;
  /** The file's bytes, gunzipped when the file is gzip. */
  readonly bytes: Buffer;
  readonly gzipped: boolean;
}

/** What to append to a problem found in `f`: offsets in a gzipped file count decompressed bytes. */
export function offsetNote(f: FileBytes): string {
  return f.gzipped ? " [offset counts bytes of the gunzipped data]" : "";
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

export interface ReadRegularOptions {
  /** Refuse files larger than this many bytes (before reading any). */
  maxBytes?: number;
  /** What the size cap stands for, for the message (e.g. "imageFolder.maxPixels = 67108864"). */
  maxWhy?: string;
  /**
   * When set, a path that is missing, a folder or not a regular file is an OptionError naming
   * this argument (the caller gave the path); otherwise a FileFormatError.
   */
  option?: string;
}

/**
 * The bytes of the regular file `file`, at most `maxBytes` of them. Opens with O_NONBLOCK,
 * fstats the open descriptor (no race with a rename), refuses anything but a regular file.
 */
export async function readRegularFile(file: string, options: ReadRegularOptions = {}): Promise<Buffer> {
  const maxBytes = Math.min(options.maxBytes ?? MAX_FILE_BYTES, MAX_FILE_BYTES);
  const refuse = (expected: string, problem: string): never => {
    if (options.option !== undefined) throw new OptionError(options.option, file, expected);
    throw new FileFormatError(file, problem);
  };
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return refuse("an existing file; nothing exists at that path", "no such file (it was listed when the dataset was built)");
    if (code === "EISDIR") return refuse("a file; that path is a folder", "cannot read: it is a folder");
    throw new FileFormatError(file, `cannot open: ${(e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) return refuse("a file; that path is a folder", "cannot read: it is a folder");
    if (!st.isFile()) return refuse(`a regular file; that path is ${kindOf(st)}`, `not a regular file (${kindOf(st)}): only regular files are read`);
    if (st.size > maxBytes) {
      throw new FileFormatError(file, `the file has ${st.size} bytes, above the limit of ${maxBytes} bytes${options.maxWhy ? ` (${options.maxWhy})` : ""}`, maxBytes);
    }
    const out = Buffer.allocUnsafe(st.size);
    let at = 0;
    while (at < out.length) {
      const { bytesRead } = await fh.read(out, at, out.length - at, at);
      if (bytesRead === 0) throw new FileFormatError(file, `the file shrank while it was read: fstat said ${st.size} bytes, reading ended after ${at}`, at);
      at += bytesRead;
    }
    return out;
  } catch (e) {
    if (e instanceof FileFormatError || e instanceof OptionError) throw e;
    throw new FileFormatError(file, `cannot read: ${(e as Error).message}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Given the first bytes of a format's (decompressed) data, the total length its header
 * declares; `undefined` while more bytes are needed to know.
 * Throws a FileFormatError for a header that is already wrong.
 */
export type DeclaredLength = (head: Uint8Array) => number | undefined;

/**
 * Reads `file` (a regular file); gunzips it when it starts with the gzip magic bytes, with the
 * output capped at what `declared` says the header allows. `option` names the argument that
 * gave the path, for the errors.
 */
export async function readBytes(option: string, file: unknown, declared?: DeclaredLength): Promise<FileBytes> {
  if (typeof file !== "string" || file.length === 0) throw new OptionError(option, file, "a file path (string)");
  const raw = await readRegularFile(file, { option });
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) return { path: file, bytes: await gunzipOrExplain(file, raw, declared), gzipped: true };
  return { path: file, bytes: raw, gzipped: false };
}

/** A format header read from the gunzipped stream must declare its length within this many bytes. */
const MAX_HEADER_BYTES = 1 << 20;

/** Compressed bytes handed to the inflater at a time. */
const CHUNK = 16 * 1024;

interface InflateResult {
  /** Set when the stream failed: the zlib error, and [start, end) of the input chunk that failed. */
  error?: NodeJS.ErrnoException;
  failedAt?: [number, number];
  /** Output bytes produced. */
  produced: number;
}

/**
 * Inflates `raw[0, limit)` through one gunzip stream, `step` bytes per write, waiting for each
 * write to be processed; `onData` sees the output (and may throw to stop).
 */
function inflate(raw: Buffer, step: number, onData: (chunk: Buffer) => void, from = 0, limit = raw.length): Promise<InflateResult> {
  return new Promise((resolve, reject) => {
    const gz = zlib.createGunzip({ chunkSize: 64 * 1024 });
    let produced = 0;
    let chunkStart = 0;
    let chunkEnd = 0;
    let settled = false;
    const finish = (r: InflateResult | Error, isError = false): void => {
      if (settled) return;
      settled = true;
      gz.removeAllListeners("data");
      gz.on("error", () => undefined);
      gz.destroy();
      if (isError) reject(r);
      else resolve(r as InflateResult);
    };
    gz.on("data", (chunk: Buffer) => {
      if (settled) return;
      produced += chunk.length;
      try {
        onData(chunk);
      } catch (e) {
        finish(e as Error, true);
      }
    });
    gz.on("error", (e: NodeJS.ErrnoException) => finish({ error: e, failedAt: [chunkStart, chunkEnd], produced }));
    gz.on("end", () => finish({ produced }));
    let at = 0;
    const next = (): void => {
      if (settled) return;
      if (at >= limit) {
        chunkStart = limit;
        chunkEnd = limit;
        gz.end();
        return;
      }
      // The first write covers [0, from) at once (a replay of input known to decode).
      const end = at < from ? from : Math.min(limit, at + step);
      chunkStart = at;
      chunkEnd = end;
      at = end;
      gz.write(raw.subarray(chunkStart, end), (err) => {
        if (!err) next();
      });
    };
    next();
  });
}

/**
 * Gunzips `raw`. With `declared`, the first gunzipped bytes are the format's header: once it
 * says how long the data is, more output than that stops the inflate with a FileFormatError.
 * A broken stream throws a FileFormatError at the compressed byte where decoding fails.
 */
export async function gunzipOrExplain(file: string, raw: Buffer, declared?: DeclaredLength): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  let cap: number | undefined;
  let head: Buffer | undefined;
  let looking = declared !== undefined; // still reading the header from the first bytes
  const note = " [offset counts bytes of the gunzipped data]";
  const onData = (chunk: Buffer): void => {
    parts.push(chunk);
    total += chunk.length;
    if (looking) {
      head = head === undefined ? chunk : Buffer.concat([head, chunk]);
      cap = declared!(head);
      if (cap !== undefined && !(Number.isSafeInteger(cap) && cap <= MAX_FILE_BYTES)) {
        throw new FileFormatError(file, `the header declares ${cap} bytes of data, above the limit of ${MAX_FILE_BYTES} bytes${note}`, 0);
      }
      if (cap !== undefined || head.length > MAX_HEADER_BYTES) {
        looking = false;
        head = undefined;
      }
    }
    if (total > (cap ?? MAX_FILE_BYTES)) {
      throw new FileFormatError(
        file,
        cap === undefined
          ? `the gunzipped data passes ${MAX_FILE_BYTES} bytes, the largest buffer that can be read`
          : `the gunzipped data is longer than the ${cap} bytes that its header declares (inflating stopped there; a decompression bomb or a corrupt header)${note}`,
        cap ?? MAX_FILE_BYTES,
      );
    }
  };
  const r = await inflate(raw, CHUNK, onData);
  if (!r.error) {
    // (A header that never completed is reported by the format's parser, from these bytes.)
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  }
  const err = r.error;
  const reason = err.message;
  if (err.code === "Z_BUF_ERROR" || r.failedAt![0] >= raw.length) {
    // The stream is fine as far as it goes: the file ends too early.
    throw new FileFormatError(file, `truncated gzip stream (${reason}): the file ends after ${raw.length} compressed bytes, which decode to ${r.produced} bytes`, raw.length);
  }
  // Corrupt data inside the chunk [start, end): replay the input before it in one write (it
  // decoded before, to at most the output already seen), then the chunk byte by byte; the byte
  // whose write fails is where the stream breaks.
  const [start, end] = r.failedAt!;
  const again = await inflate(raw, 1, () => undefined, start, end);
  const bad = again.error && again.failedAt![1] > start ? again.failedAt![1] - 1 : end - 1;
  throw new FileFormatError(file, `corrupt gzip stream (${reason}): decoding fails at compressed byte ${bad} of ${raw.length}`, bad);
}
