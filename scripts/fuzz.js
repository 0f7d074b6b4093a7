#!/usr/bin/env node
"use strict";
/**
 * A seeded mutation fuzzer for the file formats of src/data (issue #11).
 *
 *   node scripts/fuzz.js --cases N --seed S [--formats idx,npy,...] [--per-child K] [--jobs J] [--json]
 *
 * Seed files come from test/helpers/fixtures.js (IDX raw and gzipped, .npy v1-v3, CIFAR-10
 * batches, PNG and JPEG image folders) and a WebDataset tar shard. Each case applies 1-3 seeded mutations to one seed file:
 * bit flips, bytes set to 0 / 0xff / 0x7f / 0x80, truncation, insertion, deletion, a header
 * field overwritten with a huge value (and, for PNG, chunk CRCs recomputed half of the time so
 * the mutation reaches the decoder). Cases run in child processes, many per child, each child
 * under --max-old-space-size, a wall-clock limit, and a per-case allocation check (growth of
 * process.resourceUsage().maxRSS, bounded by a fixed multiple of the file size or the pixel cap).
 *
 * A case passes when it ends in a correct dataset or a typed batchlab error (an instance of
 * BatchlabError, code ERR_BATCHLAB*) that names the file, with a byte offset within bounds when
 * it gives one. Anything else (an untyped error, a hang, a crash, an allocation beyond the
 * bound) is a failure, printed with the seed and case number that reproduce it.
 *
 * Requires dist/ (npm run build:ts). Exit status 1 when any case fails.
 */
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const zlib = require("node:zlib");
const { spawn } = require("node:child_process");

const ROOT = path.join(__dirname, "..");

/** Pixel cap for the fuzzed image folders (the seeds are tiny; a mutated header claims more). */
const FUZZ_MAX_PIXELS = 1 << 16;
/** A case may grow the child's peak RSS by at most this, plus the per-format multiple of its input. */
const RSS_SLACK = 48 << 20;
/** Deflate's largest expansion is ~1032:1. */
const GZIP_RATIO = 1100;

// ------------------------------------------------------------------------------------ seeded rng

function mix(a, b) {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
function hashString(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}
/** mulberry32 keyed by (seed, format, case). */
function rng(seed, format, i) {
  let a = mix(mix(seed >>> 0, hashString(format)), i);
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

// ------------------------------------------------------------------------------------ mutations

const INTERESTING = [0x00, 0xff, 0x7f, 0x80];
const HUGE32 = [0xffffffff, 0x7fffffff, 0x80000000, 0x10000000, 0x0000ffff, 0x00010000];

/**
 * Applies 1-3 mutations to `buf`. `fields` lists header fields [{ at, width, le }] whose value
 * may be overwritten with a huge one; `text` fields (npy) get a huge decimal instead.
 */
function mutate(buf, r, fields = [], textFields = []) {
  let b = Buffer.from(buf);
  const ops = [];
  const n = 1 + r.int(3);
  for (let k = 0; k < n; k++) {
    const op = r.pick(["flip", "flip", "interesting", "truncate", "insert", "delete", "field", "field"]);
    if (b.length === 0 && op !== "insert") continue;
    if (op === "flip") {
      const bits = 1 + r.int(8);
      for (let j = 0; j < bits; j++) b[r.int(b.length)] ^= 1 << r.int(8);
      ops.push(`flip${bits}`);
    } else if (op === "interesting") {
      const count = 1 + r.int(4);
      for (let j = 0; j < count; j++) b[r.int(b.length)] = r.pick(INTERESTING);
      ops.push(`set${count}`);
    } else if (op === "truncate") {
      b = b.subarray(0, r.int(b.length));
      ops.push("truncate");
    } else if (op === "insert") {
      const at = r.int(b.length + 1);
      const ins = Buffer.alloc(1 + r.int(16));
      for (let j = 0; j < ins.length; j++) ins[j] = r.next() < 0.5 ? r.pick(INTERESTING) : r.int(256);
      b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
      ops.push(`insert${ins.length}`);
    } else if (op === "delete") {
      const at = r.int(b.length);
      const len = 1 + r.int(Math.min(64, b.length - at));
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
      ops.push(`delete${len}`);
    } else if (op === "field") {
      if (textFields.length && (fields.length === 0 || r.next() < 0.5)) {
        const f = r.pick(textFields)(b);
        if (f) {
          const huge = r.pick(["99999999999999999999", "18446744073709551616", "4294967296", "0", "9007199254740993", "-1", "1e9", ""]);
          b = Buffer.concat([b.subarray(0, f.at), Buffer.from(huge, "latin1"), b.subarray(f.at + f.length)]);
          ops.push("textfield");
        }
      } else if (fields.length) {
        const f = r.pick(fields);
        const fld = typeof f === "function" ? f(b) : f;
        if (fld && fld.at + fld.width <= b.length) {
          const v = r.pick(HUGE32);
          if (fld.width === 4) fld.le ? b.writeUInt32LE(v >>> 0, fld.at) : b.writeUInt32BE(v >>> 0, fld.at);
          else if (fld.width === 2) fld.le ? b.writeUInt16LE(v & 0xffff, fld.at) : b.writeUInt16BE(v & 0xffff || 0xffff, fld.at);
          else b[fld.at] = v & 0xff || 0xff;
          ops.push(`field@${fld.at}`);
        }
      }
    }
  }
  return { buf: b, ops };
}

/** Recomputes the CRC of every whole PNG chunk (so a mutation inside a chunk reaches the decoder). */
function resealPng(b) {
  const out = Buffer.from(b);
  for (let p = 8; p + 12 <= out.length; ) {
    const len = out.readUInt32BE(p);
    if (len > out.length - p - 12) break;
    out.writeUInt32BE(zlib.crc32(out.subarray(p + 4, p + 8 + len)), p + 8 + len);
    p += 12 + len;
  }
  return out;
}

/** JPEG marker segments' [at, marker, length field offset]. */
function jpegSegments(b) {
  const out = [];
  for (let p = 2; p + 4 <= b.length; ) {
    if (b[p] !== 0xff) break;
    const m = b[p + 1];
    if (m === 0xda || m === 0xd9) {
      out.push({ at: p, m });
      break;
    }
    const len = b.readUInt16BE(p + 2);
    out.push({ at: p, m, len });
    p += 2 + len;
  }
  return out;
}

// ------------------------------------------------------------------------------------ formats

/**
 * Each format: `seeds(dir)` builds its seed files once per child (deterministic); `run(c)` loads
 * one mutated case and returns { bytes } (the output's size, for the allocation check).
 */
function formats(fx, datasets) {
  const idxFields = (ndim) => [{ at: 2, width: 1 }, { at: 3, width: 1 }, ...Array.from({ length: ndim }, (_, k) => ({ at: 4 + 4 * k, width: 4 }))];
  const npyText = [
    (b) => {
      const s = b.toString("latin1", 0, Math.min(b.length, 256));
      const m = /\((\d+)/.exec(s);
      return m && { at: m.index + 1, length: m[1].length };
    },
    (b) => {
      const s = b.toString("latin1", 0, Math.min(b.length, 256));
      const m = /, (\d+)[,)]/.exec(s);
      return m && { at: m.index + 2, length: m[1].length };
    },
    (b) => {
      const s = b.toString("latin1", 0, Math.min(b.length, 256));
      const m = /'([<>|][a-z]\d)'/.exec(s);
      return m && { at: m.index + 1, length: m[1].length };
    },
  ];
  const idxRun = async (c, mode) => {
    const pick = c.r.next() < 0.75 ? "images" : "labels";
    const seed = c.seed[pick];
    const ndim = seed[3];
    let bytes;
    let ops;
    if (mode === "raw") ({ buf: bytes, ops } = mutate(seed, c.r, idxFields(ndim)));
    else if (mode === "gz-inner") {
      const m = mutate(seed, c.r, idxFields(ndim));
      bytes = zlib.gzipSync(m.buf);
      ops = m.ops;
    } else {
      const gz = zlib.gzipSync(seed);
      ({ buf: bytes, ops } = mutate(gz, c.r, [{ at: 3, width: 1 }, { at: gz.length - 4, width: 4, le: true }, { at: gz.length - 8, width: 4, le: true }]));
    }
    const other = pick === "images" ? "labels" : "images";
    const files = { [pick]: path.join(c.dir, `${pick}.${mode}`), [other]: c.seed.paths[other] };
    fs.writeFileSync(files[pick], bytes);
    c.note(ops, files[pick], bytes.length);
    const ds = await datasets.idx(files.images, files.labels);
    for (const i of [0, ds.length - 1]) if (ds.length) ds.get(i);
    return { bytes: ds.pixels.length, files: [files.images, files.labels] };
  };
  return [
    {
      name: "idx",
      seeds: (dir) => seedIdx(fx, dir),
      run: (c) => idxRun(c, "raw"),
      bound: (size) => 2 * size,
    },
    {
      name: "idx.gz (mutated, then gzipped)",
      seeds: (dir) => seedIdx(fx, dir),
      run: (c) => idxRun(c, "gz-inner"),
      bound: (size) => GZIP_RATIO * size,
    },
    {
      name: "idx.gz (gzip stream mutated)",
      seeds: (dir) => seedIdx(fx, dir),
      run: (c) => idxRun(c, "gz-stream"),
      bound: (size) => GZIP_RATIO * size,
    },
    {
      name: "npy",
      seeds: (dir) => {
        const out = {};
        for (const version of [1, 2, 3]) {
          const d = path.join(dir, `npy${version}`);
          fs.mkdirSync(d);
          const w = fx.writeNpy(d, 4, 5, 3, version === 2 ? 3 : 1, { version, labelDescr: version === 3 ? "|u1" : "<i8" });
          out[version] = { images: fs.readFileSync(w.images), labels: fs.readFileSync(w.labels), paths: w };
        }
        return out;
      },
      run: async (c) => {
        const s = c.seed[1 + c.r.int(3)];
        const pick = c.r.next() < 0.7 ? "images" : "labels";
        const { buf, ops } = mutate(s[pick], c.r, [{ at: 6, width: 1 }, { at: 8, width: 2, le: true }, { at: 8, width: 4, le: true }], npyText);
        const file = path.join(c.dir, `${pick}.npy`);
        fs.writeFileSync(file, buf);
        c.note(ops, file, buf.length);
        const files = pick === "images" ? [file, s.paths.labels] : [s.paths.images, file];
        const ds = await datasets.npy(files[0], files[1]);
        if (ds.length) ds.get(ds.length - 1);
        return { bytes: ds.pixels.length, files };
      },
      bound: (size) => 2 * size,
    },
    {
      name: "cifar10",
      seeds: () => ({ batch: fx.cifarBuffer(3, 2) }),
      run: async (c) => {
        const root = path.join(c.dir, "cifar");
        fs.mkdirSync(root, { recursive: true });
        const fields = [0, 3073, 6146].map((at) => ({ at, width: 1 }));
        const { buf, ops } = mutate(c.seed.batch, c.r, fields);
        const file = path.join(root, "test_batch.bin");
        fs.writeFileSync(file, buf);
        c.note(ops, file, buf.length);
        const ds = await datasets.cifar10({ root, split: "test" });
        if (ds.length) ds.get(ds.length - 1);
        return { bytes: ds.pixels.length, files: [file, root] };
      },
      bound: (size) => 2 * size,
    },
    {
      name: "png folder",
      seeds: async () => {
        const sharp = require("sharp");
        const raw = Buffer.from(fx.bytes(3, 6 * 5 * 3));
        return [
          await sharp(raw, { raw: { width: 6, height: 5, channels: 3 } }).png().toBuffer(),
          await sharp(raw, { raw: { width: 6, height: 5, channels: 3 } }).png({ progressive: true, palette: true }).toBuffer(),
          fx.pngBuffer({ width: 4, height: 3, channels: 4, samples: Array.from(fx.bytes(4, 48)) }),
          fx.pngBuffer({ width: 4, height: 3, channels: 1, depth: 16, samples: Array.from({ length: 12 }, (_, k) => k * 5000) }),
        ];
      },
      run: (c) => imageCase(c, datasets, c.seed[c.r.int(c.seed.length)], "png", [{ at: 16, width: 4 }, { at: 20, width: 4 }, { at: 24, width: 1 }, { at: 25, width: 1 }, { at: 8, width: 4 }, { at: 33, width: 4 }]),
      bound: () => FUZZ_MAX_PIXELS * 8,
    },
    {
      name: "jpeg folder",
      seeds: async () => {
        const sharp = require("sharp");
        const raw = Buffer.from(fx.bytes(5, 16 * 12 * 3));
        const img = () => sharp(raw, { raw: { width: 16, height: 12, channels: 3 } });
        return [await img().jpeg({ quality: 80 }).toBuffer(), await img().jpeg({ quality: 80, progressive: true }).toBuffer(), await img().greyscale().jpeg({ quality: 60 }).toBuffer()];
      },
      run: (c) => {
        const seed = c.seed[c.r.int(c.seed.length)];
        const segs = jpegSegments(seed);
        const fields = [];
        for (const s of segs) {
          if (s.len !== undefined) fields.push({ at: s.at + 2, width: 2 });
          if (s.m >= 0xc0 && s.m <= 0xc2) fields.push({ at: s.at + 5, width: 2 }, { at: s.at + 7, width: 2 }, { at: s.at + 9, width: 1 });
        }
        return imageCase(c, datasets, seed, "jpg", fields);
      },
      bound: () => FUZZ_MAX_PIXELS * 8,
    },
    {
      // A WebDataset tar shard (PNG, JPEG and JSON-labelled samples), read as a stream by a
      // loader for one epoch under onError raise or skip: batches, or a typed error naming the
      // shard (or shard#member), never a hang.
      name: "webdataset shard (loader)",
      seeds: async () => {
        const sharp = require("sharp");
        const tar = require("tar-stream");
        const raw = Buffer.from(fx.bytes(7, 6 * 5 * 3));
        const png = await sharp(raw, { raw: { width: 6, height: 5, channels: 3 } }).png().toBuffer();
        const jpg = await sharp(raw, { raw: { width: 6, height: 5, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
        const pack = tar.pack();
        const chunks = [];
        pack.on("data", (c) => chunks.push(c));
        const done = new Promise((r) => pack.on("end", r));
        pack.entry({ name: "000000.png" }, png);
        pack.entry({ name: "000000.cls" }, "3");
        pack.entry({ name: "000001.jpg" }, jpg);
        pack.entry({ name: "000001.json" }, '{"label": 1}');
        pack.entry({ name: "000002.png" }, png);
        pack.entry({ name: "000002.cls" }, "0");
        pack.finalize();
        await done;
        return Buffer.concat(chunks);
      },
      run: async (c) => {
        const bl = require(path.join(ROOT, "dist"));
        // Tar header fields: name, size (octal text), checksum, of each member's header.
        const fields = [];
        for (let at = 0; at + 512 <= c.seed.length; ) {
          const size = parseInt(c.seed.toString("latin1", at + 124, at + 136).replace(/\0.*$/s, "").trim(), 8);
          if (!Number.isFinite(size)) break;
          fields.push({ at: at + 124, width: 4 }, { at: at + 148, width: 4 }, { at: at + 100, width: 4 });
          at += 512 + Math.ceil(size / 512) * 512;
        }
        const { buf, ops } = mutate(c.seed, c.r, fields);
        const file = path.join(c.dir, c.r.next() < 0.5 ? "shard.tar" : "shard.tgz");
        fs.writeFileSync(file, file.endsWith(".tgz") && c.r.next() < 0.5 ? zlib.gzipSync(buf) : buf);
        c.note(ops, file, buf.length);
        const loader = new bl.DataLoader(bl.datasets.webdataset(file, { maxPixels: FUZZ_MAX_PIXELS, channels: c.r.pick([1, 3, 4]) }), {
          batchSize: 2,
          backend: "reference",
          onError: c.r.pick(["raise", "skip"]),
          transform: bl.transforms.compose([bl.transforms.resize([4, 4]), bl.transforms.toTensor()]),
        });
        let bytes = 0;
        for await (const b of loader) bytes += b.images.byteLength;
        return { bytes, files: [file] };
      },
      bound: () => FUZZ_MAX_PIXELS * 8,
    },
    {
      // A dataset object whose get() returns mutated samples (shapes, pixel lengths, labels),
      // run for one epoch on a random engine and chain: a batch or a SampleError for the index.
      name: "custom dataset (loader)",
      noFile: true,
      seeds: () => ({}),
      run: async (c) => {
        const bl = require(path.join(ROOT, "dist"));
        const T = bl.transforms;
        const pick = (xs) => xs[c.r.int(xs.length)];
        const odd = [0, -8, 2.5, "8", NaN, Infinity, 2 ** 31, (1 << 20) + 1, undefined, null, 1];
        const sample = () => {
          const h = c.r.next() < 0.7 ? 8 : pick(odd);
          const w = c.r.next() < 0.7 ? 8 : pick(odd);
          const ch = c.r.next() < 0.7 ? 3 : pick([1, 4, 5, 0, 65, 2.5, "3"]);
          const ok = typeof h === "number" && typeof w === "number" && typeof ch === "number" && h * w * ch > 0 && h * w * ch < 1e6;
          const len = ok && c.r.next() < 0.8 ? h * w * ch : pick([0, 12, 191, 193]);
          const label = c.r.next() < 0.7 ? c.r.int(10) : pick([-1, 2 ** 32 + 3, 2 ** 53, 1.5, NaN, "1", null]);
          return { image: { data: c.r.next() < 0.95 ? new Uint8Array(len) : new Float32Array(len), height: h, width: w, channels: ch }, label };
        };
        const samples = Array.from({ length: 6 }, sample);
        const ds = { length: samples.length, get: (i) => samples[i] };
        const transform = pick([undefined, T.compose([T.toTensor()]), T.compose([T.centerCrop(6), T.toTensor()]), T.compose([T.resize([5, 7]), T.toTensor()])]);
        const loader = new bl.DataLoader(ds, { batchSize: 4, transform, backend: pick(["reference", "native"]), onError: pick(["raise", "skip"]) });
        let bytes = 0;
        c.note(["custom"], undefined, 0);
        for await (const b of loader) bytes += b.images.byteLength;
        return { bytes, files: [] };
      },
      bound: () => 1 << 20,
    },
  ];
}

function seedIdx(fx, dir) {
  const d = path.join(dir, "idxseed");
  fs.mkdirSync(d, { recursive: true });
  const w = fx.writeIdx(d, 4, 5, 5, { labelType: "int32" });
  return { images: fs.readFileSync(w.images), labels: fs.readFileSync(w.labels), paths: w };
}

async function imageCase(c, datasets, seed, ext, fields) {
  const root = path.join(c.dir, "folder");
  const cls = path.join(root, "c");
  fs.mkdirSync(cls, { recursive: true });
  let { buf, ops } = mutate(seed, c.r, fields);
  if (ext === "png" && c.r.next() < 0.5) {
    buf = resealPng(buf);
    ops = [...ops, "reseal"];
  }
  const file = path.join(cls, `x.${ext}`);
  fs.writeFileSync(file, buf);
  c.note(ops, file, buf.length);
  const channels = c.r.pick([1, 3, 4]);
  const ds = await datasets.imageFolder(root, { channels, maxPixels: FUZZ_MAX_PIXELS });
  const s = await ds.get(0);
  const { data, width, height } = s.image;
  if (data.length !== width * height * channels || width * height > FUZZ_MAX_PIXELS) throw new Error(`decoded ${width} x ${height} x ${channels} into ${data.length} bytes`);
  return { bytes: data.length, files: [file, root] };
}

// ------------------------------------------------------------------------------------ child

async function child(job) {
  const fx = require(path.join(ROOT, "test", "helpers", "fixtures.js"));
  const datasets = require(path.join(ROOT, "dist", "data"));
  const { BatchlabError, FileFormatError } = require(path.join(ROOT, "dist", "errors"));
  const format = formats(fx, datasets).find((f) => f.name === job.format);
  const dir = fx.tempDir("fuzz");
  const seed = await format.seeds(dir);
  const send = (o) => process.stdout.write(JSON.stringify(o) + "\n");
  const maxRss = () => process.resourceUsage().maxRSS * 1024;
  // Warm up the decoders once with an unmutated case, so the first allocation of libvips or
  // zlib is not counted against a case.
  {
    const r = { next: () => 0.99, int: () => 0, pick: (xs) => xs[0] };
    await format.run({ r, seed, dir: fs.mkdtempSync(path.join(dir, "w")), note: () => undefined }).catch(() => undefined);
  }
  for (let i = job.start; i < job.start + job.count; i++) {
    const r = rng(job.seed, job.format, i);
    const caseDir = path.join(dir, `c${i}`);
    fs.mkdirSync(caseDir);
    let info = { ops: [], file: undefined, size: 0 };
    const note = (ops, file, size) => (info = { ops, file, size });
    send({ start: i });
    const before = maxRss();
    let out;
    try {
      const res = await format.run({ r, seed, dir: caseDir, note });
      out = { outcome: "ok" };
      if (res.bytes > format.bound(info.size) + 4096) out = { outcome: "bad", why: `a dataset of ${res.bytes} bytes from a ${info.size}-byte file` };
    } catch (e) {
      const typed = e instanceof BatchlabError || (e && typeof e.code === "string" && e.code.startsWith("ERR_BATCHLAB"));
      if (!typed) out = { outcome: "bad", why: `untyped ${e && e.constructor ? e.constructor.name : typeof e}: ${e && e.message}`.slice(0, 400) };
      else {
        out = { outcome: e.constructor.name };
        const named = format.noFile
          ? Number.isInteger(e.index) && /^sample \d+ failed: /.test(e.message)
          : info.file && (e.message.includes(info.file) || e.message.includes(path.dirname(info.file)) || e.path === info.file);
        if (!named) out = { outcome: "bad", why: `${e.constructor.name} does not name ${format.noFile ? "the sample's index" : `the file ${info.file}`}: ${e.message}`.slice(0, 400) };
        else if (e instanceof FileFormatError && e.offset !== undefined) {
          const limit = Math.max(info.size, format.bound(info.size)) + 16;
          if (!Number.isSafeInteger(e.offset) || e.offset < 0 || e.offset > limit) out = { outcome: "bad", why: `offset ${e.offset} outside [0, ${limit}]: ${e.message}`.slice(0, 400) };
        }
      }
    }
    const grew = maxRss() - before;
    const allowed = RSS_SLACK + format.bound(info.size);
    if (grew > allowed) out = { outcome: "bad", why: `peak RSS grew by ${(grew / 2 ** 20).toFixed(1)} MiB in one case (allowed ${(allowed / 2 ** 20).toFixed(1)} MiB)` };
    send({ i, ...out, ops: info.ops.join("+"), size: info.size });
    fs.rmSync(caseDir, { recursive: true, force: true });
  }
  send({ done: true, maxRSS: maxRss() });
}

// ------------------------------------------------------------------------------------ parent

/** Runs cases [start, start + count) of `format` in children until all have an outcome. */
async function runFormat(format, seed, start, count, opts, record) {
  let next = start;
  const end = start + count;
  while (next < end) {
    const n = Math.min(opts.perChild, end - next);
    const job = { format, seed, start: next, count: n };
    const limitMs = opts.childTimeoutMs + n * opts.perCaseMs;
    const cp = spawn(process.execPath, [`--max-old-space-size=${opts.maxOldSpaceMB}`, "--no-warnings", __filename, "--child", JSON.stringify(job)], { stdio: ["ignore", "pipe", "pipe"] });
    let current;
    let done = false;
    let killed = false;
    let buf = "";
    let stderr = "";
    cp.stderr.on("data", (d) => (stderr = (stderr + d).slice(-2000)));
    cp.stdout.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = JSON.parse(line);
        if (m.start !== undefined) current = m.start;
        else if (m.done) {
          done = true;
          record.maxRSS(format, m.maxRSS);
        } else {
          record.case(format, m);
          current = undefined;
          next = m.i + 1;
        }
      }
    });
    const timer = setTimeout(() => {
      killed = true;
      cp.kill("SIGKILL");
    }, limitMs);
    const [code, signal] = await new Promise((resolve) => cp.on("close", (c, s) => resolve([c, s])));
    clearTimeout(timer);
    if (!done) {
      const i = current ?? next;
      const why = killed ? `hang: the child passed its ${limitMs} ms limit during this case` : current !== undefined ? `crash or unsettled promise: the child ended (code ${code}, signal ${signal}) during this case; ${stderr.trim().split("\n").slice(-3).join(" | ")}` : `child failed before any case (code ${code}): ${stderr.trim().slice(-500)}`;
      record.case(format, { i, outcome: "bad", why });
      next = i + 1;
      if (current === undefined && !killed) break; // the child cannot start: do not spin
    }
  }
}

async function runFuzz(options = {}) {
  const opts = {
    cases: 2000,
    seed: 1,
    perChild: 400,
    jobs: Math.max(1, Math.min(2, os.availableParallelism ? os.availableParallelism() : os.cpus().length)),
    childTimeoutMs: 20000,
    perCaseMs: 100,
    maxOldSpaceMB: 192,
    maxRssMB: 640,
    formats: undefined,
    ...options,
  };
  const fx = require(path.join(ROOT, "test", "helpers", "fixtures.js"));
  const all = formats(fx, require(path.join(ROOT, "dist", "data")));
  const chosen = all.filter((f) => (opts.formats ? opts.formats.some((n) => f.name.startsWith(n)) : f.enabled !== false) && f.enabled !== false);
  const skipped = all.filter((f) => f.enabled === false).map((f) => ({ name: f.name, todo: f.todo }));
  const per = Math.ceil(opts.cases / chosen.length);
  const stats = new Map(chosen.map((f) => [f.name, { cases: 0, outcomes: {}, maxRSS: 0, failures: [] }]));
  const record = {
    case(format, m) {
      const s = stats.get(format);
      s.cases++;
      s.outcomes[m.outcome] = (s.outcomes[m.outcome] ?? 0) + 1;
      if (m.outcome === "bad") s.failures.push({ case: m.i, seed: opts.seed, ops: m.ops, size: m.size, why: m.why });
    },
    maxRSS(format, rss) {
      const s = stats.get(format);
      s.maxRSS = Math.max(s.maxRSS, rss);
    },
  };
  // Work units: (format, start, count), handed to `jobs` workers.
  const units = [];
  for (const f of chosen) for (let s = 0; s < per; s += opts.perChild) units.push([f.name, s, Math.min(opts.perChild, per - s)]);
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: opts.jobs }, async () => {
      while (units.length) {
        const [name, s, n] = units.shift();
        await runFormat(name, opts.seed, s, n, opts, record);
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  const rows = [...stats].map(([name, s]) => ({ format: name, ...s }));
  for (const r of rows) {
    if (r.maxRSS > opts.maxRssMB * 2 ** 20) r.failures.push({ why: `a child's peak RSS was ${(r.maxRSS / 2 ** 20).toFixed(0)} MiB, above ${opts.maxRssMB} MiB` });
  }
  return { seed: opts.seed, cases: rows.reduce((a, r) => a + r.cases, 0), seconds, rows, skipped, failures: rows.flatMap((r) => r.failures.map((f) => ({ format: r.format, ...f }))) };
}

function table(summary) {
  const classes = [...new Set(summary.rows.flatMap((r) => Object.keys(r.outcomes)))].sort((a, b) => (a === "ok" ? -1 : b === "ok" ? 1 : a === "bad" ? 1 : b === "bad" ? -1 : a < b ? -1 : 1));
  const head = ["format", "cases", ...classes, "max RSS"];
  const body = summary.rows.map((r) => [r.format, String(r.cases), ...classes.map((c) => String(r.outcomes[c] ?? 0)), `${(r.maxRSS / 2 ** 20).toFixed(0)} MiB`]);
  const total = ["total", String(summary.cases), ...classes.map((c) => String(summary.rows.reduce((a, r) => a + (r.outcomes[c] ?? 0), 0))), `${(Math.max(...summary.rows.map((r) => r.maxRSS)) / 2 ** 20).toFixed(0)} MiB`];
  const all = [head, ...body, total];
  const widths = head.map((_, k) => Math.max(...all.map((row) => row[k].length)));
  const fmt = (row) => row.map((x, k) => (k === 0 ? x.padEnd(widths[k]) : x.padStart(widths[k]))).join("  ");
  const lines = [fmt(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(fmt), fmt(total)];
  lines.push("", `seed ${summary.seed}: ${summary.cases} cases in ${summary.seconds.toFixed(1)} s (${(summary.cases / summary.seconds).toFixed(0)} cases/s); "bad" = untyped error, hang, crash, unnamed file, offset out of bounds or allocation beyond the bound`);
  for (const s of summary.skipped) lines.push(`not run: ${s.name} (TODO: ${s.todo})`);
  for (const f of summary.failures.slice(0, 20)) lines.push(`FAIL ${f.format} case ${f.case ?? "-"} (seed ${f.seed ?? summary.seed}, ${f.ops ?? ""}, ${f.size ?? "?"} bytes): ${f.why}`);
  if (summary.failures.length > 20) lines.push(`... ${summary.failures.length - 20} more failures`);
  return lines.join("\n");
}

function parseArgs(argv) {
  const o = {};
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const val = () => {
      if (k + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++k];
    };
    if (a === "--cases") o.cases = Number(val());
    else if (a === "--seed") o.seed = Number(val());
    else if (a === "--per-child") o.perChild = Number(val());
    else if (a === "--jobs") o.jobs = Number(val());
    else if (a === "--formats") o.formats = val().split(",");
    else if (a === "--json") o.json = true;
    else throw new Error(`unknown argument ${a} (known: --cases N --seed S --per-child K --jobs J --formats a,b --json)`);
  }
  for (const k of ["cases", "seed", "perChild", "jobs"]) if (o[k] !== undefined && !(Number.isInteger(o[k]) && o[k] >= (k === "seed" ? 0 : 1))) throw new Error(`--${k} must be an integer`);
  return o;
}

module.exports = { runFuzz, table, mutate, rng };

if (require.main === module) {
  if (process.argv[2] === "--child") {
    child(JSON.parse(process.argv[3])).catch((e) => {
      process.stderr.write(`fuzz child failed: ${e && e.stack}\n`);
      process.exit(3);
    });
  } else {
    let args;
    try {
      args = parseArgs(process.argv.slice(2));
    } catch (e) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    runFuzz(args).then((s) => {
      process.stdout.write((args.json ? JSON.stringify(s, null, 2) : table(s)) + "\n");
      process.exitCode = s.failures.length ? 1 : 0;
    });
  }
}
