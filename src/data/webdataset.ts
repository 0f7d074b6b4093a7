/**
 * WebDataset tar shards, read as streams: `webdataset(urls, options)`.
 *
 * Format (as the `webdataset` Python package writes it): a shard is a plain tar file; a sample is
 * the run of consecutive members that share a key, the member's path up to the first dot of its
 * file name (`train/000017.jpg` and `train/000017.cls` are sample `train/000017`, members `jpg`
 * and `cls`). The image is the `jpg`, `jpeg` or `png` member; the label is the `cls` member
 * (a decimal integer as text) or else the `json` member (a number, or an object with an integer
 * `label` or `cls` field). Other members are read past and ignored.
 *
 * Shards (`.tar`, or `.tar.gz` / `.tgz`, gunzipped on the way) are named by local paths, `file://`
 * URLs or `http://` / `https://` URLs, and expanded
 * from brace patterns (`train-{000000..000099}.tar` keeps the zero padding; `{a,b}` lists).
 * Each shard is read front to back as one stream (tar-stream parses it as the bytes arrive: no
 * range requests, nothing held but the current sample's members), so a shard may be larger than
 * memory and an HTTP shard starts yielding samples after its first few kilobytes.
 *
 * This module only reads and writes shards; which shards a rank reads and in what order is the
 * sampling stage's ShardSampler, and the loader (src/loader/stream.ts) runs the epoch: shard
 * order, shuffle buffer, decode, batches. A stream data set has no random access (`get(i)`
 * throws, as PyTorch's IterableDataset has no __getitem__).
 *
 * What a broken shard does: a member that is larger than the cap, a sample without an image or a
 * label, an image that does not decode, is an error of that one sample (FileFormatError naming
 * the shard URL and member); a corrupt tar header, a stream that ends inside a member or without
 * the tar end-of-archive blocks, an HTTP status other than 200 or a connection that closes early
 * ends the shard with a FileFormatError (URL, member, byte offset). The loader's `onError` says
 * whether either raises or is skipped and reported. A server that stops sending fails after
 * `timeout` ms of silence: nothing waits forever.
 */
import { constants as fsConstants, createWriteStream, promises as fsp } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import * as tar from "tar-stream";
import { BatchlabError, FileFormatError, OptionError } from "../errors";
import * as v from "../options";
import { declareOptions, optional, withDefault, type OptionsOf } from "../options";
import { DISPLAY, summaryBundle } from "../display/index";
import { readRegularFile } from "./files";
import { DEFAULT_MAX_PIXELS, decodeImageBytes, maxPixelsOption, type Channels } from "./folder";
import type { Dataset, Image, Sample } from "./types";

// ------------------------------------------------------------------------------ brace patterns

/** The most URLs one pattern may expand to. */
const MAX_EXPANSION = 1_000_000;

/**
 * Expands WebDataset's brace patterns: `{000..099}` is a decimal range (zero padding kept: the
 * width of the wider end when either end has a leading zero; descending ranges count down),
 * `{a,b,c}` a list; several braces give every combination, braces nest. `option` names the
 * argument in errors.
 */
export function expandBraces(pattern: string, option = "expandBraces(pattern)"): string[] {
  if (typeof pattern !== "string" || pattern.length === 0) throw new OptionError(option, pattern, "a non-empty string (a shard path or URL, brace patterns allowed)");
  const out = expandAt(pattern, option, pattern);
  if (out.length > MAX_EXPANSION) throw new OptionError(option, pattern, `a pattern of at most ${MAX_EXPANSION} names (it expands to ${out.length})`);
  return out;
}

function expandAt(s: string, option: string, whole: string): string[] {
  const open = s.indexOf("{");
  const close0 = s.indexOf("}");
  if (open < 0) {
    if (close0 >= 0) throw new OptionError(option, whole, `a pattern with balanced braces ("}" at character ${whole.indexOf(s) + close0} closes nothing)`);
    return [s];
  }
  if (close0 >= 0 && close0 < open) throw new OptionError(option, whole, `a pattern with balanced braces ("}" before the first "{")`);
  // The matching close brace, and the top-level commas inside.
  let depth = 0;
  let close = -1;
  const commas: number[] = [];
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === "{") depth++;
    else if (c === "}") {
      depth--;
      if (depth === 0) {
        close = i;
        break;
      }
    } else if (c === "," && depth === 1) commas.push(i);
  }
  if (close < 0) throw new OptionError(option, whole, `a pattern with balanced braces (the "{" at character ${whole.length - s.length + open} is never closed)`);
  const head = s.slice(0, open);
  const body = s.slice(open + 1, close);
  const tails = expandAt(s.slice(close + 1), option, whole);
  let alternatives: string[];
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(body);
  if (commas.length === 0 && range) {
    const [a, b] = [range[1]!, range[2]!];
    const lo = Number(a);
    const hi = Number(b);
    const count = Math.abs(hi - lo) + 1;
    if (count * tails.length > MAX_EXPANSION) throw new OptionError(option, whole, `a pattern of at most ${MAX_EXPANSION} names ({${body}} alone gives ${count})`);
    const padded = /^-?0\d/.test(a) || /^-?0\d/.test(b);
    const width = padded ? Math.max(a.replace("-", "").length, b.replace("-", "").length) : 0;
    const step = hi >= lo ? 1 : -1;
    alternatives = [];
    for (let k = lo; step > 0 ? k <= hi : k >= hi; k += step) alternatives.push((k < 0 ? "-" : "") + String(Math.abs(k)).padStart(width, "0"));
  } else if (commas.length > 0) {
    const parts: string[] = [];
    let from = open + 1;
    for (const c of [...commas, close]) {
      parts.push(s.slice(from, c));
      from = c + 1;
    }
    alternatives = parts.flatMap((p) => expandAt(p, option, whole));
  } else if (body.includes("..")) {
    throw new OptionError(option, whole, `a range of decimal integers such as {000000..000099} (not {${body}})`);
  } else {
    // A brace with one item and no range stays literal, as shells and braceexpand leave it.
    alternatives = expandAt(body, option, whole).map((x) => `{${x}}`);
  }
  const out: string[] = [];
  for (const alt of alternatives) {
    for (const t of tails) {
      out.push(head + alt + t);
      if (out.length > MAX_EXPANSION) throw new OptionError(option, whole, `a pattern of at most ${MAX_EXPANSION} names`);
    }
  }
  return out;
}

/** Where a shard is: a local file or an HTTP(S) URL. */
function classify(option: string, url: string): "file" | "http" {
  if (/^https?:\/\//i.test(url)) return "http";
  if (/^file:\/\//i.test(url)) return "file";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^pipe:/i.test(url)) {
    throw new OptionError(option, url, "a local path, a file:// URL, or an http:// or https:// URL (other schemes are not read)");
  }
  return "file";
}

/** Shard names from a pattern, a list of patterns, or both (each expanded, in order). */
export function shardUrls(urls: unknown, option = "webdataset(urls)"): string[] {
  const list = typeof urls === "string" ? [urls] : Array.isArray(urls) ? urls : undefined;
  if (!list || list.length === 0) throw new OptionError(option, urls, 'a shard URL or path, a brace pattern such as "train-{000000..000099}.tar", or a non-empty array of them');
  const out: string[] = [];
  list.forEach((u, k) => {
    const name = Array.isArray(urls) ? `${option}[${k}]` : option;
    for (const x of expandBraces(u as string, name)) {
      classify(name, x);
      out.push(x);
    }
  });
  if (out.length > MAX_EXPANSION) throw new OptionError(option, urls, `at most ${MAX_EXPANSION} shards (received ${out.length})`);
  return out;
}

// ------------------------------------------------------------------------------ opening shards

/** The largest member read into memory: an image of maxPixels pixels, 16-bit RGBA, stored, plus 16 MiB. */
function maxMemberBytes(maxPixels: number): number {
  return Math.min(2 ** 31 - 1, maxPixels * 8 + 2 ** 24);
}

const MAX_REDIRECTS = 5;

/** A readable stream of the shard's bytes: a regular local file, or the body of an HTTP 200 response. */
async function openShard(url: string, timeout: number): Promise<Readable> {
  if (classify("shard", url) === "http") return openHttp(url, timeout, 0);
  const file = /^file:\/\//i.test(url) ? fileURLToPath(url) : url;
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(url, code === "ENOENT" || code === "ENOTDIR" ? "no such shard file" : `cannot open the shard: ${(e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FileFormatError(url, `not a regular file (${st.isDirectory() ? "a folder" : st.isFIFO() ? "a FIFO" : "a device, socket or other special file"}): only regular files are read as shards`);
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
  return fh.createReadStream({ highWaterMark: 1 << 20 });
}

function openHttp(url: string, timeout: number, redirects: number): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const get = /^https:/i.test(url) ? https.get : http.get;
    let req: http.ClientRequest;
    try {
      req = get(url, { headers: { "user-agent": "batchlab" } });
    } catch (e) {
      reject(new FileFormatError(url, `cannot request the shard: ${(e as Error).message}`));
      return;
    }
    let stalled: FileFormatError | undefined;
    let response: http.IncomingMessage | undefined;
    req.setTimeout(timeout, () => {
      stalled = new FileFormatError(url, `no bytes from the server for ${timeout} ms (webdataset's timeout option)`);
      response?.destroy(stalled);
      req.destroy(stalled);
    });
    req.on("error", (e) => reject(e instanceof BatchlabError ? e : new FileFormatError(url, `HTTP request failed: ${e.message}`)));
    req.on("response", (res) => {
      response = res;
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        req.setTimeout(0);
        if (redirects >= MAX_REDIRECTS) return reject(new FileFormatError(url, `more than ${MAX_REDIRECTS} HTTP redirects`));
        const next = new URL(res.headers.location, url).toString();
        if (!/^https?:/i.test(next)) return reject(new FileFormatError(url, `an HTTP redirect to ${next}, which is not http(s)`));
        openHttp(next, timeout, redirects + 1).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        return reject(new FileFormatError(url, `HTTP status ${status} ${res.statusMessage ?? ""}`.trim() + " (expected 200 with the shard's bytes)"));
      }
      const declared = res.headers["content-length"];
      const closed = (): FileFormatError => stalled ?? new FileFormatError(url, `the connection closed before the end of the shard${declared !== undefined ? ` (Content-Length ${declared})` : ""}`);
      // A body that stops before its Content-Length (or a chunked body cut off) is an error, never a
      // quiet end. (No 'data' listener here: the stream must stay paused until it is piped.)
      res.on("aborted", () => res.destroy(closed()));
      res.on("close", () => {
        if (!res.complete && !res.destroyed) res.destroy(closed());
      });
      res.on("end", () => req.setTimeout(0));
      resolve(res);
    });
  });
}

// ------------------------------------------------------------------------------ reading shards

/** One tar member of a sample. */
export interface ShardMember {
  /** The member's path in the tar. */
  readonly name: string;
  /** What follows the key: "jpg", "cls", "seg.png", ... (lower case). */
  readonly ext: string;
  readonly data: Buffer;
  /** Byte offset of the member's data in the shard. */
  readonly offset: number;
}

/** The consecutive members that share a key. */
export interface RawRecord {
  readonly url: string;
  readonly key: string;
  /** The sample's ordinal in its shard, from 0. */
  readonly ordinal: number;
  readonly members: readonly ShardMember[];
}

/** What reading a shard gives: a sample's members, or an error (`fatal`: the rest of the shard is lost). */
export type ShardItem = { readonly record: RawRecord; readonly error?: undefined } | { readonly record?: undefined; readonly error: FileFormatError; readonly fatal: boolean };

/** A member's key and extension: the key runs to the first dot of the file name (WebDataset's rule). */
export function splitMemberName(name: string): { key: string; ext: string } | undefined {
  const slash = name.lastIndexOf("/");
  const dot = name.indexOf(".", slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return undefined;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

/** Bytes of the tar end-of-archive marker: two 512-byte zero blocks (at least one must be there). */
const BLOCK = 512;

/**
 * The samples of one shard, in order, as the stream arrives. Errors are yielded, never thrown:
 * a sample's error (`fatal: false`) and reading goes on; a fatal one ends the shard (the sample
 * being read when it happened is not yielded). Breaking out of the loop closes the stream.
 */
export async function* readShard(url: string, options: { maxMemberBytes?: number; timeout?: number; signal?: AbortSignal } = {}): AsyncGenerator<ShardItem, void, undefined> {
  const maxBytes = options.maxMemberBytes ?? maxMemberBytes(DEFAULT_MAX_PIXELS);
  const timeout = options.timeout ?? 60_000;
  let source: Readable;
  try {
    source = await openShard(url, timeout);
  } catch (e) {
    yield { error: e instanceof FileFormatError ? e : new FileFormatError(url, (e as Error).message), fatal: true };
    return;
  }
  // An abort (the loader stopped) closes the file or connection at once, even mid-read.
  const signal = options.signal;
  const abort = (): void => void source.destroy(new FileFormatError(url, "reading stopped (the loader's iteration ended)"));
  if (signal?.aborted) abort();
  signal?.addEventListener("abort", abort, { once: true });
  const extract = tar.extract();
  // .tar.gz / .tgz shards (as WebDataset names them) are gunzipped on the way; offsets then count
  // bytes of the gunzipped stream.
  const gzipped = /\.(tar\.gz|tgz)$/i.test(url.replace(/[?#].*$/, ""));
  const input: Readable = gzipped ? source.pipe(zlib.createGunzip()) : source;
  let bytesIn = 0;
  let sourceError: unknown;
  let sourceEnded = false;
  input.on("data", (c: Buffer) => (bytesIn += c.length));
  input.on("end", () => (sourceEnded = true));
  const failed = (e: unknown): void => {
    sourceError ??= e;
    extract.destroy(e as Error);
  };
  source.on("error", failed);
  if (input !== source) input.on("error", failed);
  input.pipe(extract);
  let pending: { key: string; members: ShardMember[]; bad?: FileFormatError } | undefined;
  let ordinal = 0;
  let lastName: string | undefined;
  /** End of the last member's data, padded to the block: where the end-of-archive blocks start. */
  let dataEnd = 0;
  const finishPending = (): ShardItem | undefined => {
    const p = pending;
    pending = undefined;
    if (!p) return undefined;
    const n = ordinal++;
    if (p.bad) return { error: p.bad, fatal: false };
    return { record: { url, key: p.key, ordinal: n, members: p.members } };
  };
  const lost = (): string => (pending ? `; sample ${JSON.stringify(pending.key)} (members read: ${pending.members.map((m) => m.ext).join(", ") || "none"}) is not used` : "");
  /** The error that ends the shard: where it broke (inside member `inside`, or between members) and what is lost. */
  const fatal = (e: unknown, inside: { name: string; size: number; got: number } | undefined): ShardItem => {
    const err = sourceError ?? e;
    const where = inside
      ? `, inside member ${JSON.stringify(inside.name)} (${inside.got} of its ${inside.size} bytes read)`
      : lastName
        ? `, after member ${JSON.stringify(lastName)}`
        : ", before its first member";
    if (err instanceof FileFormatError) {
      const problem = err.message.startsWith(`${err.path} `) || err.message.startsWith(`${err.path}:`) ? err.message.slice(err.message.indexOf(": ") + 2) : err.message;
      return { error: new FileFormatError(url, `${problem}${where}${lost()}`, err.offset ?? bytesIn), fatal: true };
    }
    const msg = err instanceof Error ? err.message : String(err);
    const header = /Invalid tar header|Invalid header|unknown format|exceeds max size/.test(msg);
    const reset = msg === "aborted" || (err as NodeJS.ErrnoException)?.code === "ECONNRESET";
    const what = reset
      ? `the connection closed before the end of the shard (${bytesIn} bytes received)`
      : /Unexpected end of data|unexpected end of file/i.test(msg) || (sourceEnded && !header)
      ? `the shard ends early (a truncated stream: ${bytesIn} bytes in all)`
      : header
        ? `a corrupt tar header (${msg})`
        : `cannot read the tar stream (${msg})`;
    // A bad header starts where the last member's data ends.
    const note = gzipped ? " [offsets count bytes of the gunzipped stream]" : "";
    return { error: new FileFormatError(url, `${what}${where}${lost()}${note}`, header && !inside ? dataEnd : bytesIn), fatal: true };
  };
  const iterator = extract[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: Awaited<ReturnType<typeof iterator.next>>;
      try {
        next = await iterator.next();
      } catch (e) {
        yield fatal(e, undefined);
        return;
      }
      if (next.done) break;
      const entry = next.value;
      const h = entry.header;
      const name = h.name;
      const offset = (h as { byteOffset?: number }).byteOffset ?? 0;
      dataEnd = offset + Math.ceil((h.size ?? 0) / BLOCK) * BLOCK;
      const size = h.size ?? 0;
      if (h.type !== "file" && h.type !== "contiguous-file") {
        const e = await drain(entry);
        if (e) {
          yield fatal(e, { name, size, got: 0 });
          return;
        }
        continue;
      }
      lastName = name;
      const parts = splitMemberName(name);
      if (!parts) {
        // No key.ext: not part of a sample (WebDataset ignores such members too), but the sample before it is complete.
        const item = finishPending();
        if (item) yield item;
        const e = await drain(entry);
        if (e) {
          yield fatal(e, { name, size, got: 0 });
          return;
        }
        continue;
      }
      if (pending && pending.key !== parts.key) {
        const item = finishPending();
        if (item) yield item;
      }
      pending ??= { key: parts.key, members: [] };
      if (size > maxBytes) {
        const e = await drain(entry);
        if (e) {
          yield fatal(e, { name, size, got: 0 });
          return;
        }
        pending.bad ??= new FileFormatError(`${url}#${name}`, `the member has ${size} bytes, above the limit of ${maxBytes} (maxPixels allows 8 bytes per pixel + 16 MiB)`, offset);
        continue;
      }
      const chunks: Buffer[] = [];
      let got = 0;
      try {
        for await (const c of entry) {
          chunks.push(c as Buffer);
          got += (c as Buffer).length;
        }
      } catch (e) {
        yield fatal(e, { name, size, got });
        return;
      }
      pending.members.push({ name, ext: parts.ext, data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got), offset });
    }
    if (sourceError) {
      yield fatal(sourceError, undefined);
      return;
    }
    // tar-stream ends quietly when the bytes stop at a member boundary: a shard must end with
    // the end-of-archive blocks, or it was cut off.
    if (bytesIn < dataEnd + BLOCK) {
      yield { error: new FileFormatError(url, `the shard ends after ${bytesIn} bytes without the tar end-of-archive blocks (truncated at a member boundary${lastName ? `, after member ${JSON.stringify(lastName)}` : ""})${lost()}`, bytesIn), fatal: true };
      return;
    }
    const item = finishPending();
    if (item) yield item;
  } finally {
    signal?.removeEventListener("abort", abort);
    input.unpipe(extract);
    source.destroy();
    if (input !== source) input.destroy();
    extract.destroy();
  }
}

/** Reads a member's data past, unused; the error that stopped it, if one did. */
async function drain(entry: AsyncIterable<unknown>): Promise<unknown> {
  try {
    for await (const _ of entry) void _;
    return undefined;
  } catch (e) {
    return e ?? new Error("the member's stream failed");
  }
}

// ------------------------------------------------------------------------------ the data set

/** A sample of a stream data set, not yet decoded. */
export interface StreamRecord {
  readonly url: string;
  readonly key: string;
  /** Its ordinal in its shard. */
  readonly ordinal: number;
  readonly label: number;
  /** `url#member` of the image member, for errors and views. */
  readonly path: string;
  /** Decodes the image (off the JavaScript thread). */
  decode(): Promise<Image>;
}

/**
 * A data set read as a stream of samples, shard by shard (PyTorch's IterableDataset). The loader
 * runs its epochs (src/loader/stream.ts); `get(i)` throws.
 */
export interface StreamDataset extends Dataset {
  readonly stream: true;
  /** The shards, patterns expanded. */
  readonly urls: readonly string[];
  /** Shuffle buffer size in samples (0: samples in shard order). */
  readonly shuffle: number;
  /** Shuffle the shard order every epoch. */
  readonly shardShuffle: boolean;
  /** Seed of the shard order and shuffle buffer (the same on every rank). */
  readonly seed: number;
  readonly rank?: number;
  readonly worldSize?: number;
  /** Every rank reads the same number of shards (the epoch's last shards % worldSize are left out). */
  readonly evenShards: boolean;
  /** Where rank and worldSize default from (default process.env). */
  readonly env?: Record<string, string | undefined>;
  /** Samples per epoch on this rank when the caller said so (option `length`), else NaN: unknown until read. */
  readonly length: number;
  /** The samples of shard `shard` (an index into urls), in order, errors included; `signal` stops the read at once. */
  readShard(shard: number, signal?: AbortSignal): AsyncGenerator<ShardItem, void, undefined>;
  /** A raw record's label and decoder; throws a FileFormatError naming the shard and member. */
  prepare(record: RawRecord): StreamRecord;
}

export function isStreamDataset(x: unknown): x is StreamDataset {
  return typeof x === "object" && x !== null && (x as StreamDataset).stream === true && typeof (x as StreamDataset).readShard === "function";
}

function channelsOf(option: string, x: unknown): Channels {
  if (x !== 1 && x !== 3 && x !== 4) throw new OptionError(option, x, "1, 3 or 4");
  return x;
}

function envOption(option: string, x: unknown): Record<string, string | undefined> {
  if (x === null || typeof x !== "object" || Array.isArray(x)) throw new OptionError(option, x, "an object of environment variables");
  return x as Record<string, string | undefined>;
}

function classNamesOption(option: string, x: unknown): readonly string[] {
  if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) throw new OptionError(option, x, "an array of class names (strings), by label");
  return Object.freeze(x.slice());
}

/** Options of webdataset, declared once. */
export const webdatasetOptions = declareOptions("webdataset", {
  /** Shuffle buffer size in samples (default 0: shard order); `true` means 1000. */
  shuffle: withDefault<number | boolean, number>((o, x) => (x === true ? 1000 : x === false ? 0 : v.int(o, x, 0, 1 << 24)), 0),
  /** Shuffle the shard list every epoch from (seed, epoch) (default: true when shuffle > 0). */
  shardShuffle: optional<boolean>(v.bool),
  /** Seed of the shard order and the shuffle buffer (default 0; every rank must use the same). */
  seed: withDefault<number>((o, x) => v.int(o, x, 0, Number.MAX_SAFE_INTEGER), 0),
  /** This process's rank (default: from torchrun / Slurm / MPI variables, else 0). */
  rank: optional<number>((o, x) => v.int(o, x, 0)),
  /** Number of ranks (default: from torchrun / Slurm / MPI variables, else 1). */
  worldSize: optional<number>((o, x) => v.int(o, x, 1)),
  /** Every rank reads the same number of shards per epoch (default false: all shards are read). */
  evenShards: withDefault<boolean>(v.bool, false),
  /** Environment to read rank and worldSize from (default process.env). */
  env: optional<Record<string, string | undefined>>(envOption),
  /** Channels to decode to: 1, 3 (default) or 4. */
  channels: withDefault<Channels, Channels>(channelsOf, 3),
  /** The most pixels one image may declare (default 2^26). */
  maxPixels: withDefault(maxPixelsOption, DEFAULT_MAX_PIXELS),
  /** Milliseconds an HTTP shard may stay silent before it fails (default 60000). */
  timeout: withDefault<number>((o, x) => v.int(o, x, 1, 2 ** 31 - 1), 60_000),
  /** Samples per epoch on this rank, when known (gives the loader a length); default unknown. */
  length: optional<number>((o, x) => v.int(o, x, 0)),
  /** Class names by label. */
  classNames: optional<readonly string[]>(classNamesOption),
});

export type WebDatasetOptions = OptionsOf<(typeof webdatasetOptions)["spec"]>;

export interface WebDataset extends StreamDataset {
  readonly channels: Channels;
  readonly maxPixels: number;
  /** The first `n` samples of the shards in their listed order (no shuffle), decoded: a quick look. */
  take(n: number): Promise<Sample[]>;
}

const IMAGE_EXTS = ["jpg", "jpeg", "png"];

/** The label in a `cls` member (decimal text) or a `json` member (a number, or { label } / { cls }). */
function labelOf(url: string, rec: RawRecord): number {
  const cls = rec.members.find((m) => m.ext === "cls");
  const where = (m: ShardMember): string => `${url}#${m.name}`;
  const check = (m: ShardMember, x: unknown, what: string): number => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > 2 ** 31 - 1) throw new FileFormatError(where(m), `${what}: expected an integer class label from 0 to 2^31-1, found ${JSON.stringify(x)}`, m.offset);
    return x;
  };
  if (cls) {
    const text = cls.data.toString("utf8").trim();
    if (!/^\d{1,10}$/.test(text)) throw new FileFormatError(where(cls), `the cls member: expected a class label as decimal text, found ${JSON.stringify(text.slice(0, 40))}`, cls.offset);
    return check(cls, Number(text), "the cls member");
  }
  const json = rec.members.find((m) => m.ext === "json");
  if (json) {
    let x: unknown;
    try {
      x = JSON.parse(json.data.toString("utf8"));
    } catch (e) {
      throw new FileFormatError(where(json), `the json member is not JSON (${(e as Error).message})`, json.offset);
    }
    if (typeof x === "object" && x !== null && !Array.isArray(x)) {
      const o = x as Record<string, unknown>;
      x = o.label !== undefined ? o.label : o.cls;
    }
    return check(json, x, "the json member's label");
  }
  throw new FileFormatError(`${url}#${rec.key}`, `sample ${JSON.stringify(rec.key)} has no label member (members: ${rec.members.map((m) => m.ext).join(", ")}; expected a .cls or .json member)`, rec.members[0]?.offset);
}

/**
 * A WebDataset stream data set over tar shards (see the module comment). `urls`: a path or URL,
 * a brace pattern, or an array of them. Shuffling, ranks and the epoch are run by the loader:
 * `new DataLoader(webdataset("train-{000000..000099}.tar", { shuffle: 1000 }), { batchSize: 64 })`.
 */
export function webdataset(urls: string | readonly string[], options?: WebDatasetOptions): WebDataset {
  const o = webdatasetOptions.parse(options);
  const list = Object.freeze(shardUrls(urls));
  const memberCap = maxMemberBytes(o.maxPixels);
  const { channels, maxPixels } = o;
  const prepare = (rec: RawRecord): StreamRecord => {
    const url = rec.url;
    const img = rec.members.find((m) => IMAGE_EXTS.includes(m.ext));
    if (!img) throw new FileFormatError(`${url}#${rec.key}`, `sample ${JSON.stringify(rec.key)} has no image member (members: ${rec.members.map((m) => m.ext).join(", ")}; expected .jpg, .jpeg or .png)`, rec.members[0]?.offset);
    const label = labelOf(url, rec);
    const p = `${url}#${img.name}`;
    return {
      url,
      key: rec.key,
      ordinal: rec.ordinal,
      label,
      path: p,
      decode: () =>
        decodeImageBytes(p, img.data, channels, maxPixels).catch((e: unknown) => {
          // Offsets inside the member become offsets in the shard.
          if (e instanceof FileFormatError && e.offset !== undefined) throw new FileFormatError(p, `${e.message.slice(e.message.indexOf(": ") + 2)} (byte ${e.offset} of the member)`, img.offset + e.offset);
          throw e;
        }),
    };
  };
  const ds: WebDataset = {
    stream: true,
    urls: list,
    shuffle: o.shuffle,
    shardShuffle: o.shardShuffle ?? o.shuffle > 0,
    seed: o.seed,
    rank: o.rank,
    worldSize: o.worldSize,
    evenShards: o.evenShards,
    env: o.env,
    length: o.length ?? NaN,
    classNames: o.classNames,
    channels,
    maxPixels,
    get(i: number): never {
      throw new OptionError(`webdataset.get(${String(i)})`, i, "no call: a WebDataset is a stream with no random access (iterate a DataLoader over it, or take(n) for a look)");
    },
    readShard(shard: number, signal?: AbortSignal) {
      const k = v.int("webdataset.readShard(shard)", shard, 0, list.length - 1);
      return readShard(list[k]!, { maxMemberBytes: memberCap, timeout: o.timeout, signal });
    },
    prepare,
    async take(n: number): Promise<Sample[]> {
      const count = v.int("take(n)", n, 0);
      const out: Sample[] = [];
      for (let k = 0; k < list.length && out.length < count; k++) {
        for await (const item of readShard(list[k]!, { maxMemberBytes: memberCap, timeout: o.timeout })) {
          if (item.error) throw item.error;
          const r = prepare(item.record);
          out.push({ image: await r.decode(), label: r.label, index: out.length, path: r.path });
          if (out.length === count) break;
        }
      }
      return out;
    },
  };
  const kind = `webdataset (${list.length} shard${list.length === 1 ? "" : "s"}, read as a stream)`;
  const rows: [string, string][] = [
    ["shards", list.length === 1 ? list[0]! : `${list.length}: ${list[0]} ... ${list[list.length - 1]}`],
    ["samples", o.length === undefined ? "unknown until read (a stream)" : `${o.length} per epoch on this rank`],
    ["shuffle", `buffer of ${o.shuffle} samples, shard order ${ds.shardShuffle ? "shuffled" : "kept"}, seed ${o.seed}`],
    ["ranks", o.rank !== undefined && o.worldSize !== undefined ? `rank ${o.rank} of ${o.worldSize}` : "from the options or the launcher's environment (the loader's ShardSampler)"],
    ["classes", o.classNames ? o.classNames.map((c, k) => `${k}: ${c}`).slice(0, 20).join(", ") + (o.classNames.length > 20 ? ", ..." : "") : "labels from .cls / .json members"],
    ["decoded to", `${channels} channel${channels === 1 ? "" : "s"} uint8, at most ${maxPixels} pixels`],
  ];
  const text = [kind, ...rows.map(([k, x]) => `  ${k}: ${x}`)].join("\n");
  Object.defineProperty(ds, DISPLAY, { value: () => summaryBundle("batchlab-dataset", kind, text, rows).data, enumerable: false });
  return ds;
}

// ------------------------------------------------------------------------------ writing shards

export const writeShardsOptions = declareOptions("writeShards", {
  /** Output prefix: shards are PREFIX-000000.tar, PREFIX-000001.tar, ... (folders created). */
  out: withDefault<string, string>((o, x) => {
    if (typeof x !== "string" || x.length === 0) throw new OptionError(o, x, "an output prefix such as out/train (shards become out/train-000000.tar, ...)");
    return x;
  }, () => {
    throw new OptionError("writeShards.out", undefined, "an output prefix such as out/train (shards become out/train-000000.tar, ...)");
  }),
  /** Samples per shard (default 1000). */
  perShard: withDefault<number>((o, x) => v.int(o, x, 1, 1 << 30), 1000),
});

export type WriteShardsOptions = OptionsOf<(typeof writeShardsOptions)["spec"]>;

export interface WrittenShards {
  /** The files written, in order. */
  readonly files: readonly string[];
  /** The brace pattern that reads them back: PREFIX-{000000..000NNN}.tar. */
  readonly pattern: string;
  readonly samples: number;
  readonly classNames?: readonly string[];
}

interface SharpRaw {
  png(): { toBuffer(): Promise<Buffer> };
}
type SharpFromRaw = (input: Buffer, options: { raw: { width: number; height: number; channels: 1 | 2 | 3 | 4 } }) => SharpRaw;

/** One sample's image member: the file's own bytes when the data set has image files, else a PNG of the pixels. */
async function imageMember(ds: Dataset, i: number): Promise<{ ext: string; data: Buffer; label: number }> {
  const files = (ds as { files?: unknown }).files;
  const labels = typeof ds.labels === "function" ? ds.labels() : undefined;
  if (Array.isArray(files) && typeof files[i] === "string" && labels && labels.length === ds.length) {
    const file = files[i] as string;
    const ext = path.extname(file).slice(1).toLowerCase();
    if (IMAGE_EXTS.includes(ext)) return { ext, data: await readRegularFile(file, { maxBytes: maxMemberBytes(DEFAULT_MAX_PIXELS) }), label: labels[i]! };
  }
  const s = await ds.get(i);
  const img = s?.image;
  if (!img || !(img.data instanceof Uint8Array) || ![1, 3, 4].includes(img.channels) || !(img.width >= 1) || !(img.height >= 1)) {
    throw new OptionError(`writeShards: dataset.get(${i}).image`, img, "uint8 pixels with 1, 3 or 4 channels");
  }
  if (!Number.isInteger(s.label) || s.label < 0) throw new OptionError(`writeShards: dataset.get(${i}).label`, s.label, "an integer class label >= 0");
  const sharp = require("sharp") as SharpFromRaw;
  const bytes = img.height * img.width * img.channels;
  const raw = Buffer.from(img.data.buffer, img.data.byteOffset, bytes);
  const data = await sharp(raw, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 | 4 } }).png().toBuffer();
  return { ext: "png", data, label: s.label };
}

/**
 * Writes a data set as WebDataset shards: PREFIX-000000.tar, ... with `perShard` samples each;
 * sample i is members NNNNNN.jpg|.png (an image folder's own file bytes; other data sets' pixels
 * as PNG) and NNNNNN.cls (its label as text). Each shard is written to PREFIX-NNNNNN.tar.tmp and
 * renamed when complete. Returns the files and the brace pattern that reads them back.
 */
export async function writeShards(dataset: Dataset, options: WriteShardsOptions): Promise<WrittenShards> {
  if (typeof dataset !== "object" || dataset === null || typeof dataset.get !== "function" || !Number.isInteger(dataset.length)) {
    throw new OptionError("writeShards(dataset)", dataset, "a data set with length and get(i) (datasets.imageFolder, fromArrays, ...)");
  }
  if (isStreamDataset(dataset)) throw new OptionError("writeShards(dataset)", dataset, "a random-access data set (a stream data set is already sharded)");
  const { out, perShard } = writeShardsOptions.parse(options);
  const n = dataset.length;
  if (n === 0) throw new OptionError("writeShards(dataset)", dataset, "a data set with at least one sample");
  await fsp.mkdir(path.dirname(path.resolve(out)), { recursive: true });
  const shards = Math.ceil(n / perShard);
  const digits = Math.max(6, String(shards - 1).length);
  const keyDigits = Math.max(6, String(n - 1).length);
  const name = (k: number): string => `${out}-${String(k).padStart(digits, "0")}.tar`;
  const files: string[] = [];
  for (let k = 0; k < shards; k++) {
    const file = name(k);
    const tmp = `${file}.tmp`;
    const pack = tar.pack();
    const sink = createWriteStream(tmp);
    const done = new Promise<void>((resolve, reject) => {
      sink.on("finish", () => resolve());
      sink.on("error", reject);
      pack.on("error", reject);
    });
    pack.pipe(sink);
    const add = (entryName: string, data: Buffer): Promise<void> =>
      new Promise((resolve, reject) => pack.entry({ name: entryName, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? reject(e) : resolve())));
    try {
      for (let i = k * perShard; i < Math.min(n, (k + 1) * perShard); i++) {
        const m = await imageMember(dataset, i);
        const key = String(i).padStart(keyDigits, "0");
        await add(`${key}.${m.ext}`, m.data);
        await add(`${key}.cls`, Buffer.from(String(m.label)));
      }
      pack.finalize();
      await done;
      await fsp.rename(tmp, file);
    } catch (e) {
      pack.destroy();
      sink.destroy();
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    files.push(file);
  }
  const last = String(shards - 1).padStart(digits, "0");
  const pattern = shards === 1 ? name(0) : `${out}-{${"0".repeat(digits)}..${last}}.tar`;
  return { files, pattern, samples: n, classNames: dataset.classNames };
}
