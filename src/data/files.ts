/**
 * Reading a data file whole, gunzipping it when it starts with the gzip magic bytes. A broken
 * gzip stream is reported with the compressed byte offset where it stops decoding.
 */
import { promises as fsp } from "node:fs";
import * as zlib from "node:zlib";
import { promisify } from "node:util";
import { FileFormatError, OptionError } from "../errors";

const gunzip = promisify(zlib.gunzip) as (buf: Uint8Array, options?: zlib.ZlibOptions) => Promise<Buffer>;

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

/** Reads `file`; `option` names the argument that gave the path, for the errors. */
export async function readBytes(option: string, file: unknown): Promise<FileBytes> {
  if (typeof file !== "string" || file.length === 0) throw new OptionError(option, file, "a file path (string)");
  let raw: Buffer;
  try {
    raw = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new OptionError(option, file, "an existing file; nothing exists at that path");
    if (code === "EISDIR") throw new OptionError(option, file, "a file; that path is a folder");
    throw new FileFormatError(file, `cannot read: ${(e as Error).message}`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) return { path: file, bytes: await gunzipOrExplain(file, raw), gzipped: true };
  return { path: file, bytes: raw, gzipped: false };
}

const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };

/** Gunzips `raw`; when that fails, finds where the stream breaks and throws FileFormatError. */
export async function gunzipOrExplain(file: string, raw: Buffer): Promise<Buffer> {
  try {
    return await gunzip(raw);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const reason = err.message;
    if (err.code === "Z_BUF_ERROR") {
      // The stream is fine as far as it goes: the file ends too early.
      const partial = await gunzip(raw, SYNC).then((b) => b.length, () => 0);
      throw new FileFormatError(file, `truncated gzip stream (${reason}): the file ends after ${raw.length} compressed bytes, which decode to ${partial} bytes`, raw.length);
    }
    // Corrupt data: prefixes that end before the bad byte decode without error (with a sync
    // flush, a short input is not an error); the first prefix that fails ends at the bad byte.
    let ok = 0;
    let bad = raw.length;
    while (bad - ok > 1) {
      const mid = ok + Math.floor((bad - ok) / 2);
      const fails = await gunzip(raw.subarray(0, mid), SYNC).then(() => false, () => true);
      if (fails) bad = mid;
      else ok = mid;
    }
    throw new FileFormatError(file, `corrupt gzip stream (${reason}): decoding fails at compressed byte ${bad - 1} of ${raw.length}`, bad - 1);
  }
}
