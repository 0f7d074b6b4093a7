"use strict";
// WebDataset shards: written by writeShards / `batchlab shards`, read back as streams from files
// and from a local HTTP server, brace patterns, the shuffle buffer and shard order per (seed,
// epoch), ranks reading disjoint shards that cover the set, exact resume, and broken shards
// (truncated, corrupt header, corrupt member, missing label, HTTP failures) under onError.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const http = require("node:http");
const { spawnSync } = require("node:child_process");
const bl = require("../dist");
const { datasets, transforms: T, samplers, DataLoader } = bl;

process.env.BATCHLAB_QUIET = "1";

const ROOT = path.join(__dirname, "..");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-wds-"));
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

const N = 23;
const H = 6;
const W = 5;
const C = 3;

/** Sample i: pixels that only it has, label i (so a label identifies the sample). */
function pixelsOf(i) {
  const p = new Uint8Array(H * W * C);
  for (let k = 0; k < p.length; k++) p[k] = (i * 31 + k * 7) % 256;
  return p;
}
function memorySet(n = N) {
  const pixels = new Uint8Array(n * H * W * C);
  for (let i = 0; i < n; i++) pixels.set(pixelsOf(i), i * H * W * C);
  return datasets.fromArrays(pixels, [n, H, W, C], Int32Array.from({ length: n }, (_, i) => i));
}

test.before(async () => {
  // A small image folder (PNG and JPEG, two classes, several sizes) for the CLI round trip.
  const sharp = require("sharp");
  for (const [cls, k, ext] of [["cat", 0, "png"], ["cat", 1, "jpg"], ["cat", 2, "png"], ["dog", 0, "png"], ["dog", 1, "jpg"]]) {
    const dir = path.join(TMP, "folder", cls);
    fs.mkdirSync(dir, { recursive: true });
    const img = sharp({ create: { width: 8 + k, height: 6 + k, channels: 3, background: { r: 40 * k, g: cls === "cat" ? 200 : 20, b: 90 } } });
    await (ext === "png" ? img.png() : img.jpeg()).toFile(path.join(dir, `${k}.${ext}`));
  }
});

let shardsOnce;
/** 23 samples in shards of 5: train-000000.tar ... train-000004.tar (the last has 3). */
function written() {
  shardsOnce ??= datasets.writeShards(memorySet(), { out: path.join(TMP, "mem", "train"), perShard: 5 });
  return shardsOnce;
}

async function labelsOf(loader, options) {
  const out = [];
  for await (const b of options ? loader.iterate(options) : loader) out.push(Array.from(b.labels));
  return out;
}

/** Serves the files of `dir` at /NAME; `hooks.handle(req, res)` may answer first (returns true). */
async function serve(dir, hooks = {}) {
  const server = http.createServer((req, res) => {
    if (hooks.handle && hooks.handle(req, res)) return;
    const file = path.join(dir, decodeURIComponent(req.url.slice(1)));
    if (!file.startsWith(dir) || !fs.existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    const body = fs.readFileSync(file);
    res.writeHead(200, { "content-type": "application/x-tar" });
    // In small pieces, so that the reader sees the stream arrive in parts.
    let at = 0;
    const step = () => {
      if (at >= body.length) return res.end();
      res.write(body.subarray(at, at + 700));
      at += 700;
      setImmediate(step);
    };
    step();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { base, server, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))) };
}

test("writeShards writes PREFIX-000000.tar ... with perShard samples each, and returns the brace pattern that reads them back", async () => {
  const r = await written();
  assert.equal(r.samples, N);
  assert.deepEqual(r.files.map((f) => path.basename(f)), ["train-000000.tar", "train-000001.tar", "train-000002.tar", "train-000003.tar", "train-000004.tar"]);
  assert.equal(r.pattern, path.join(TMP, "mem", "train") + "-{000000..000004}.tar");
  assert.deepEqual(datasets.webdataset(r.pattern).urls, r.files);
  const members = [];
  for await (const item of datasets.readShard(r.files[4])) members.push(item.record.members.map((m) => m.name));
  assert.deepEqual(members, [["000020.png", "000020.cls"], ["000021.png", "000021.cls"], ["000022.png", "000022.cls"]]);
  assert.ok(!fs.readdirSync(path.join(TMP, "mem")).some((f) => f.endsWith(".tmp")));
});

test("without shuffling, a loader reads every sample of the shards in order, with its own pixels and label", async () => {
  const r = await written();
  const loader = new DataLoader(datasets.webdataset(r.pattern), { batchSize: 4 });
  const batches = [];
  for await (const b of loader) batches.push(b);
  assert.deepEqual(batches.map((b) => b.labels.length), [4, 4, 4, 4, 4, 3]);
  const labels = batches.flatMap((b) => Array.from(b.labels));
  assert.deepEqual(labels, Array.from({ length: N }, (_, i) => i));
  // No transform: the batch is the uint8 pixels as float32, N x C x H x W.
  const b = batches[1];
  assert.deepEqual(b.shape, [4, C, H, W]);
  for (let j = 0; j < 4; j++) {
    const want = pixelsOf(b.labels[j]);
    for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) assert.equal(b.images[((j * C + c) * H + y) * W + x], want[(y * W + x) * C + c]);
  }
  assert.deepEqual(Array.from(b.indices), [4, 5, 6, 7], "indices are positions in the rank's epoch");
  assert.ok(Number.isNaN(loader.length), "batches per epoch are unknown for a stream without its length option");
  assert.deepEqual(Array.from((await loader.first({ batch: 2 })).labels), [8, 9, 10, 11]);
  assert.deepEqual((await loader.take(2)).map((x) => Array.from(x.labels)), [[0, 1, 2, 3], [4, 5, 6, 7]]);
  assert.match(String(loader), /5 shards \(stream, 5 on rank 0 of 1\)/);
  assert.equal(new DataLoader(datasets.webdataset(r.pattern, { length: N }), { batchSize: 4 }).length, 6);
  const view = await bl.showBatch(datasets.webdataset(r.pattern), { limit: 3 });
  assert.match(view.data["text/plain"], /3 images/);
  const look = await datasets.webdataset(r.pattern).take(2);
  assert.deepEqual(look.map((s) => s.label), [0, 1]);
  assert.match(look[1].path, /train-000000\.tar#000001\.png$/);
});

test(".tar.gz / .tgz shards are gunzipped as they stream; a cut-off gzip shard is an error naming it", async () => {
  const zlib = require("node:zlib");
  const r = await written();
  const dir = path.join(TMP, "gz");
  fs.mkdirSync(dir, { recursive: true });
  const files = r.files.map((f, k) => {
    const out = path.join(dir, `train-${String(k).padStart(6, "0")}.${k % 2 ? "tgz" : "tar.gz"}`);
    fs.writeFileSync(out, zlib.gzipSync(fs.readFileSync(f)));
    return out;
  });
  assert.deepEqual((await labelsOf(new DataLoader(datasets.webdataset(files), { batchSize: 7 }))).flat(), Array.from({ length: N }, (_, i) => i));
  const gz = fs.readFileSync(files[0]);
  const cut = path.join(dir, "cut.tar.gz");
  fs.writeFileSync(cut, gz.subarray(0, gz.length >> 1));
  await assert.rejects(labelsOf(new DataLoader(datasets.webdataset(cut), { batchSize: 7 })), (e) => e instanceof bl.FileFormatError && e.path === cut && /ends early/.test(e.message) && /gunzipped stream/.test(e.message));
});

test("a webdataset's notebook view says what it is without reading it", () => {
  const wds = datasets.webdataset("/data/train-{000000..000009}.tar", { shuffle: 100, classNames: ["a", "b"] });
  const text = wds[Symbol.for("Jupyter.display")]()["text/plain"];
  assert.match(text, /webdataset \(10 shards, read as a stream\)/);
  assert.match(text, /samples: unknown until read/);
  assert.match(text, /buffer of 100 samples, shard order shuffled, seed 0/);
  assert.match(text, /0: a, 1: b/);
});

test("brace patterns: zero-padded ranges keep their width, lists, several braces, nesting, descending ranges; bad patterns are refused by name", () => {
  const { expandBraces } = datasets;
  assert.deepEqual(expandBraces("train-{000000..000003}.tar"), ["train-000000.tar", "train-000001.tar", "train-000002.tar", "train-000003.tar"]);
  assert.deepEqual(expandBraces("s-{8..11}.tar"), ["s-8.tar", "s-9.tar", "s-10.tar", "s-11.tar"]);
  assert.deepEqual(expandBraces("s-{098..101}.tar"), ["s-098.tar", "s-099.tar", "s-100.tar", "s-101.tar"]);
  assert.deepEqual(expandBraces("{a,b}/x-{0..1}.tar"), ["a/x-0.tar", "a/x-1.tar", "b/x-0.tar", "b/x-1.tar"]);
  assert.deepEqual(expandBraces("{a,b{1..2}}.tar"), ["a.tar", "b1.tar", "b2.tar"]);
  assert.deepEqual(expandBraces("{3..1}"), ["3", "2", "1"]);
  assert.deepEqual(expandBraces("plain.tar"), ["plain.tar"]);
  assert.deepEqual(datasets.shardUrls(["a-{0..1}.tar", "http://h/b.tar"]), ["a-0.tar", "a-1.tar", "http://h/b.tar"]);
  assert.throws(() => expandBraces("train-{000..003.tar"), (e) => e instanceof bl.OptionError && /never closed/.test(e.message));
  assert.throws(() => expandBraces("train-}0{.tar"), /balanced braces/);
  assert.throws(() => expandBraces("train-{a..z}.tar"), /decimal integers/);
  assert.throws(() => expandBraces("x-{0..9999999}.tar"), /at most 1000000/);
  assert.throws(() => datasets.webdataset("s3://bucket/a.tar"), (e) => e.option === "webdataset(urls)" && /http:\/\/ or https:\/\//.test(e.message));
  assert.throws(() => datasets.webdataset([]), (e) => e.option === "webdataset(urls)");
  assert.throws(() => datasets.webdataset("a.tar", { shuffle: -1 }), (e) => e.option === "webdataset.shuffle");
  assert.throws(() => datasets.webdataset("a.tar", { shufle: 10 }), (e) => e.option === "webdataset.shufle");
});

test("read over HTTP from a local server, as a stream, the batches are the same as from the files", async () => {
  const r = await written();
  const srv = await serve(path.join(TMP, "mem"));
  try {
    const opts = { shuffle: 7, seed: 5 };
    const aug = () => T.compose([T.randomCrop(4, { padding: 1 }), T.randomHorizontalFlip(), T.toTensor()]);
    const fromFiles = [];
    for await (const b of new DataLoader(datasets.webdataset(r.pattern, opts), { batchSize: 6, seed: 2, transform: aug() })) fromFiles.push(b);
    const fromHttp = [];
    for await (const b of new DataLoader(datasets.webdataset(`${srv.base}/train-{000000..000004}.tar`, opts), { batchSize: 6, seed: 2, transform: aug() })) fromHttp.push(b);
    assert.equal(fromHttp.length, fromFiles.length);
    for (let k = 0; k < fromFiles.length; k++) {
      assert.deepEqual(Array.from(fromHttp[k].labels), Array.from(fromFiles[k].labels));
      assert.deepEqual(Array.from(fromHttp[k].images), Array.from(fromFiles[k].images));
    }
  } finally {
    await srv.close();
  }
});

test("HTTP failures end the shard with a clear error, never a hang: status 404, a body cut short, a server that stops sending", async () => {
  const r = await written();
  const body = fs.readFileSync(r.files[0]);
  const srv = await serve(path.join(TMP, "mem"), {
    handle(req, res) {
      if (req.url === "/short.tar") {
        res.writeHead(200, { "content-length": String(body.length) });
        res.write(body.subarray(0, 3000));
        setImmediate(() => res.socket.destroy());
        return true;
      }
      if (req.url === "/stall.tar") {
        res.writeHead(200, { "content-length": String(body.length) });
        res.write(body.subarray(0, 2048)); // then nothing, the connection left open
        return true;
      }
      return false;
    },
  });
  try {
    const read = (name, onError, options = {}) => labelsOf(new DataLoader(datasets.webdataset(`${srv.base}/${name}`, options), { batchSize: 100, onError }));
    await assert.rejects(read("missing.tar", "raise"), (e) => e instanceof bl.FileFormatError && e.path === `${srv.base}/missing.tar` && /HTTP status 404/.test(e.message));
    await assert.rejects(read("short.tar", "raise"), (e) => e instanceof bl.FileFormatError && e.path === `${srv.base}/short.tar` && /connection closed before the end of the shard/.test(e.message));
    await assert.rejects(read("stall.tar", "raise", { timeout: 200 }), (e) => e instanceof bl.FileFormatError && /no bytes from the server for 200 ms/.test(e.message));
    // Under skip: what arrived before the cut is kept (sample 0 is whole within 3000 bytes), the failure is listed.
    const loader = new DataLoader(datasets.webdataset([`${srv.base}/short.tar`, `${srv.base}/missing.tar`, `${srv.base}/train-000001.tar`]), { batchSize: 100, onError: "skip" });
    const got = (await labelsOf(loader)).flat();
    assert.deepEqual(got, [0, 5, 6, 7, 8, 9], "sample 0 arrived whole before the cut in sample 1");
    const s = loader.stats();
    assert.equal(s.skippedCount, 2);
    assert.ok(s.skipped.some((x) => x.path === `${srv.base}/missing.tar` && /404/.test(x.reason)));
    assert.ok(s.skipped.some((x) => x.path === `${srv.base}/short.tar` && x.index === -1));
  } finally {
    await srv.close();
  }
});

test("stopping early closes the shard's HTTP connection at once, even with a batch in flight on a server that sends nothing more", { timeout: 60000 }, async () => {
  const r = await written();
  let closed;
  const seen = new Promise((resolve) => (closed = resolve));
  const srv = await serve(path.join(TMP, "mem"), {
    handle(req, res) {
      // A shard that never ends: the first shard's samples, then the connection held open.
      res.writeHead(200);
      const b = fs.readFileSync(r.files[0]);
      res.write(b.subarray(0, b.length - 1024));
      res.on("close", () => closed());
      return true;
    },
  });
  try {
    // The prefetched batches wait for bytes that never come; only the loader's close ends them
    // (the webdataset timeout is far beyond the test's).
    const loader = new DataLoader(datasets.webdataset(`${srv.base}/endless.tar`, { timeout: 600000 }), { batchSize: 2, prefetch: 4, onError: "skip" });
    for await (const b of loader) {
      assert.deepEqual(Array.from(b.labels), [0, 1]);
      break;
    }
    await seen; // resolves only if the reader closed the connection
    assert.equal(loader.stats().skippedCount, 0, "stopping is not reported as a broken shard");
  } finally {
    await srv.close();
  }
});

test("the shuffle buffer and shard order are a function of (seed, epoch): the same batches twice, other ones in another epoch or seed, every sample once", async () => {
  const r = await written();
  const make = (seed) => new DataLoader(datasets.webdataset(r.pattern, { shuffle: 8, seed }), { batchSize: 5 });
  const a0 = await labelsOf(make(11), { epoch: 0 });
  const b0 = await labelsOf(make(11), { epoch: 0 });
  const a1 = await labelsOf(make(11), { epoch: 1 });
  const c0 = await labelsOf(make(12), { epoch: 0 });
  assert.deepEqual(a0, b0);
  assert.notDeepEqual(a0.flat(), a1.flat());
  assert.notDeepEqual(a0.flat(), c0.flat());
  const sorted = (x) => x.flat().sort((p, q) => p - q);
  for (const run of [a0, a1, c0]) assert.deepEqual(sorted(run), Array.from({ length: N }, (_, i) => i));
  assert.notDeepEqual(a0.flat(), Array.from({ length: N }, (_, i) => i), "shuffled");
  // The loader's own epochs: for await runs epoch 0, then 1.
  const loader = make(11);
  assert.deepEqual(await labelsOf(loader), a0);
  assert.deepEqual(await labelsOf(loader), a1);
  // shardShuffle alone (no buffer): whole shards move, samples inside stay in order.
  const s = (await labelsOf(new DataLoader(datasets.webdataset(r.pattern, { shardShuffle: true, seed: 3 }), { batchSize: 100 }))).flat();
  const firsts = [];
  for (let k = 0; k < s.length; ) {
    const len = s[k] === 20 ? 3 : 5;
    assert.deepEqual(s.slice(k, k + len), Array.from({ length: len }, (_, j) => s[k] + j));
    firsts.push(s[k]);
    k += len;
  }
  assert.deepEqual([...firsts].sort((p, q) => p - q), [0, 5, 10, 15, 20]);
  // The buffer itself: deterministic, a permutation, holding at most `size`.
  const drawn = (seed, epoch) => {
    const sb = new samplers.ShuffleBuffer(4, seed, epoch);
    const out = [];
    for (let i = 0; i < 20; i++) {
      const x = sb.push(i);
      if (x) out.push(x.value);
      assert.ok(sb.held <= 4);
    }
    for (let x = sb.drain(); x; x = sb.drain()) out.push(x.value);
    return out;
  };
  assert.deepEqual(drawn(1, 0), drawn(1, 0));
  assert.notDeepEqual(drawn(1, 0), drawn(1, 1));
  assert.deepEqual([...drawn(1, 0)].sort((p, q) => p - q), Array.from({ length: 20 }, (_, i) => i));
});

test("ranks read disjoint shards that together cover every sample, each epoch; rank and worldSize from options or the launcher's environment", async () => {
  const r = await written();
  for (const worldSize of [2, 3, 5]) {
    for (const epoch of [0, 1]) {
      const per = [];
      for (let rank = 0; rank < worldSize; rank++) {
        const loader = new DataLoader(datasets.webdataset(r.pattern, { shuffle: 4, seed: 9, rank, worldSize }), { batchSize: 3 });
        per.push((await labelsOf(loader, { epoch })).flat());
      }
      const all = per.flat().sort((p, q) => p - q);
      assert.deepEqual(all, Array.from({ length: N }, (_, i) => i), `worldSize ${worldSize}, epoch ${epoch}: disjoint and covering`);
      // Whole shards per rank.
      for (const labels of per) for (const l of labels) assert.ok(labels.includes(Math.floor(l / 5) * 5));
    }
  }
  // The same split from torchrun's or Slurm's variables as from the options.
  const viaOptions = await labelsOf(new DataLoader(datasets.webdataset(r.pattern, { rank: 1, worldSize: 2, seed: 4, shardShuffle: true }), { batchSize: 50 }));
  const viaTorchrun = await labelsOf(new DataLoader(datasets.webdataset(r.pattern, { env: { RANK: "1", WORLD_SIZE: "2", LOCAL_RANK: "1" }, seed: 4, shardShuffle: true }), { batchSize: 50 }));
  const viaSlurm = await labelsOf(new DataLoader(datasets.webdataset(r.pattern, { env: { SLURM_PROCID: "1", SLURM_NTASKS: "2" }, seed: 4, shardShuffle: true }), { batchSize: 50 }));
  assert.deepEqual(viaTorchrun, viaOptions);
  assert.deepEqual(viaSlurm, viaOptions);
  // evenShards: every rank the same number of shards.
  const sizes = [0, 1].map((rank) => new DataLoader(datasets.webdataset(r.pattern, { rank, worldSize: 2, evenShards: true }), {}).stream.shards.length);
  assert.deepEqual(sizes, [2, 2]);
  // The sampler alone.
  const sh = new samplers.ShardSampler(7, { rank: 2, worldSize: 3, seed: 1 });
  assert.equal(sh.length, 2);
  assert.deepEqual(Array.from(sh.indices(0)), [0, 1].map((j) => sh.globalOrder(0).fill(2 + 3 * j, new Int32Array(1))[0]));
});

test("too few shards for the ranks, a rank outside the world, and loader options a stream cannot take are refused, naming option, value and what was expected", async () => {
  const r = await written();
  assert.throws(
    () => new DataLoader(datasets.webdataset(r.pattern, { rank: 0, worldSize: 6 })),
    (e) => e instanceof bl.OptionError && e.option === "webdataset.worldSize" && e.received === 6 && /at most 5, the number of shards/.test(e.message),
  );
  assert.throws(() => new DataLoader(datasets.webdataset(r.pattern, { env: { RANK: "0", WORLD_SIZE: "8" } })), (e) => /worldSize from environment variable WORLD_SIZE \(torchrun\)/.test(e.option) && e.received === 8);
  assert.throws(() => new DataLoader(datasets.webdataset(r.pattern, { rank: 2, worldSize: 2 })), (e) => e.option === "webdataset.rank" && /\[0, 1\]/.test(e.message));
  const wds = datasets.webdataset(r.pattern);
  assert.throws(() => new DataLoader(wds, { shuffle: true }), (e) => e.option === "DataLoader.shuffle" && /shuffle: bufferSize/.test(e.message));
  assert.throws(() => new DataLoader(wds, { sampler: new samplers.SequentialSampler(3) }), (e) => e.option === "DataLoader.sampler");
  assert.throws(() => wds.get(0), (e) => e instanceof bl.OptionError && /no random access/.test(e.message));
  assert.throws(() => new DataLoader(wds).batchSampler.batches(0), /known only by reading/);
});

test("iterate({ epoch, startBatch }) resumes exactly: the same batches, pixels and drawn parameters as the uninterrupted epoch's tail", async () => {
  const r = await written();
  const make = () => new DataLoader(datasets.webdataset(r.pattern, { shuffle: 6, seed: 21 }), { batchSize: 4, seed: 8, transform: T.compose([T.randomResizedCrop(4), T.colorJitter({ brightness: 0.5 }), T.toTensor()]) });
  const full = [];
  for await (const b of make().iterate({ epoch: 2 })) full.push(b);
  for (const start of [1, 3, 5]) {
    const tail = [];
    for await (const b of make().iterate({ epoch: 2, startBatch: start })) tail.push(b);
    assert.equal(tail.length, full.length - start);
    tail.forEach((b, k) => {
      const f = full[start + k];
      assert.deepEqual(Array.from(b.labels), Array.from(f.labels));
      assert.deepEqual(Array.from(b.indices), Array.from(f.indices));
      assert.deepEqual(Array.from(b.images), Array.from(f.images));
      assert.equal(b.batchIndex, f.batchIndex);
    });
  }
  assert.deepEqual(await labelsOf(make(), { epoch: 2, startBatch: 99 }), []);
});

/** A copy of shard `k` with `edit(bytes)` applied, at a new path. */
async function brokenCopy(name, k, edit) {
  const r = await written();
  const b = Buffer.from(fs.readFileSync(r.files[k]));
  const file = path.join(TMP, "broken", name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, edit(b));
  return { file, shards: r.files.map((f, j) => (j === k ? file : f)) };
}

/** Offset of member `name`'s data in a tar. */
function memberOffset(tarBytes, name) {
  for (let at = 0; at + 512 <= tarBytes.length; ) {
    const n = tarBytes.subarray(at, at + 100).toString("latin1").replace(/\0.*$/s, "");
    const size = parseInt(tarBytes.subarray(at + 124, at + 136).toString("latin1").replace(/\0.*$/s, "").trim(), 8);
    if (n === name) return at + 512;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no member ${name}`);
}

test("a corrupt image member: onError raise names the shard URL and member; skip drops only that sample and lists it in stats", async () => {
  const { file, shards } = await brokenCopy("corrupt-member.tar", 1, (b) => {
    const at = memberOffset(b, "000007.png");
    for (let k = 20; k < 60; k++) b[at + k] ^= 0xa5; // inside IHDR/IDAT
    return b;
  });
  await assert.rejects(labelsOf(new DataLoader(datasets.webdataset(shards), { batchSize: 4 })), (e) => e instanceof bl.SampleError && e.path === `${file}#000007.png` && e.message.includes(file) && e.index === 7);
  const loader = new DataLoader(datasets.webdataset(shards), { batchSize: 4, onError: "skip" });
  const got = await labelsOf(loader);
  assert.deepEqual(got.flat(), Array.from({ length: N }, (_, i) => i).filter((i) => i !== 7));
  assert.deepEqual(got.map((b) => b.length), [4, 4, 4, 4, 4, 2], "a skipped sample is replaced from the stream");
  const s = loader.stats();
  assert.equal(s.skippedCount, 1);
  assert.equal(s.skipped[0].path, `${file}#000007.png`);
});

test("a truncated shard: raise names the shard, the member it stopped in and the byte offset; skip keeps what came before and goes on with the next shard", async () => {
  const r = await written();
  const cutAt = memberOffset(fs.readFileSync(r.files[2]), "000012.png") + 40;
  const { file, shards } = await brokenCopy("truncated.tar", 2, (b) => b.subarray(0, cutAt));
  await assert.rejects(
    labelsOf(new DataLoader(datasets.webdataset(shards), { batchSize: 4 })),
    (e) => e instanceof bl.FileFormatError && e.path === file && e.offset === cutAt && /ends early/.test(e.message) && /inside member "000012.png"/.test(e.message),
  );
  const loader = new DataLoader(datasets.webdataset(shards), { batchSize: 4, onError: "skip" });
  const got = (await labelsOf(loader)).flat();
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => i).filter((i) => i < 12 || i >= 15));
  const s = loader.stats();
  assert.equal(s.skippedCount, 1);
  assert.equal(s.skipped[0].index, -1);
  assert.equal(s.skipped[0].path, file);
  // Cut at a member boundary (no end-of-archive blocks): also an error, not a quiet end.
  const boundary = memberOffset(fs.readFileSync(r.files[2]), "000013.png") - 512;
  const cut2 = await brokenCopy("truncated-boundary.tar", 2, (b) => b.subarray(0, boundary));
  await assert.rejects(labelsOf(new DataLoader(datasets.webdataset(cut2.file), { batchSize: 4 })), (e) => e instanceof bl.FileFormatError && /without the tar end-of-archive blocks/.test(e.message));
});

test("a corrupt tar header, a sample without a label, a bad label text: each reported with shard and member under raise, skipped under skip", async () => {
  const r = await written();
  const hdr = await brokenCopy("bad-header.tar", 3, (b) => {
    const at = memberOffset(b, "000017.png") - 512;
    b[at + 148] ^= 0x11; // the header checksum
    return b;
  });
  await assert.rejects(labelsOf(new DataLoader(datasets.webdataset(hdr.file), { batchSize: 4 })), (e) => e instanceof bl.FileFormatError && e.path === hdr.file && /corrupt tar header/.test(e.message) && /after member "000016.cls"/.test(e.message));
  const skipHdr = (await labelsOf(new DataLoader(datasets.webdataset(hdr.file), { batchSize: 10, onError: "skip" }))).flat();
  assert.deepEqual(skipHdr, [15], "sample 16 was still open when the header after it broke: not used");

  const noLabel = await brokenCopy("no-label.tar", 0, (b) => {
    const at = memberOffset(b, "000002.cls") - 512;
    b.write("000002.txt", at, "latin1"); // same length: the checksum stays right only if recomputed
    let sum = 0;
    b.fill(0x20, at + 148, at + 156);
    for (let k = 0; k < 512; k++) sum += b[at + k];
    b.write(sum.toString(8).padStart(6, "0") + "\0 ", at + 148, "latin1");
    return b;
  });
  await assert.rejects(labelsOf(new DataLoader(datasets.webdataset(noLabel.file), { batchSize: 4 })), (e) => e instanceof bl.FileFormatError && e.path === `${noLabel.file}#000002` && /no label member/.test(e.message));
  const l = new DataLoader(datasets.webdataset(noLabel.file), { batchSize: 4, onError: "skip" });
  assert.deepEqual((await labelsOf(l)).flat(), [0, 1, 3, 4]);
  assert.match(l.stats().skipped[0].reason, /no label member \(members: png, txt/);

  const badCls = await brokenCopy("bad-cls.tar", 0, (b) => {
    b[memberOffset(b, "000003.cls")] = "x".charCodeAt(0);
    return b;
  });
  await assert.rejects(labelsOf(new DataLoader(datasets.webdataset(badCls.file), { batchSize: 4 })), (e) => e instanceof bl.FileFormatError && e.path === `${badCls.file}#000003.cls` && /decimal text/.test(e.message));
  // Not a tar at all, an empty file and a missing file do not hang either.
  const junk = path.join(TMP, "broken", "junk.tar");
  fs.writeFileSync(junk, Buffer.alloc(3000, 0x41));
  const empty = path.join(TMP, "broken", "empty.tar");
  fs.writeFileSync(empty, "");
  for (const f of [junk, empty, path.join(TMP, "broken", "absent.tar")]) {
    await assert.rejects(labelsOf(new DataLoader(datasets.webdataset(f), { batchSize: 4 })), (e) => e instanceof bl.FileFormatError && e.path === f);
  }
});

test("json labels: a number or { label } in a .json member", async () => {
  const tar = require("tar-stream");
  const png = fs.readFileSync(memberSource());
  const pack = tar.pack();
  const chunks = [];
  pack.on("data", (c) => chunks.push(c));
  const done = new Promise((r) => pack.on("end", r));
  pack.entry({ name: "a/000000.png" }, png);
  pack.entry({ name: "a/000000.json" }, '{"label": 4, "caption": "x"}');
  pack.entry({ name: "a/000001.jpeg.txt" }, "ignored");
  pack.entry({ name: "a/000001.png" }, png);
  pack.entry({ name: "a/000001.json" }, "7");
  pack.finalize();
  await done;
  const file = path.join(TMP, "json.tar");
  fs.writeFileSync(file, Buffer.concat(chunks));
  assert.deepEqual((await labelsOf(new DataLoader(datasets.webdataset(file), { batchSize: 4 }))).flat(), [4, 7]);
  // A member that is no part of a sample (no key.ext), cut off: an error, not a crash or a hang.
  const p2 = tar.pack();
  const c2 = [];
  p2.on("data", (c) => c2.push(c));
  const d2 = new Promise((r) => p2.on("end", r));
  p2.entry({ name: "a/000000.png" }, png);
  p2.entry({ name: "a/000000.cls" }, "1");
  p2.entry({ name: "NOTES" }, Buffer.alloc(5000, 0x61));
  p2.finalize();
  await d2;
  const whole = Buffer.concat(c2);
  const cutFile = path.join(TMP, "cut-notes.tar");
  fs.writeFileSync(cutFile, whole.subarray(0, whole.length - 3000));
  const l = new DataLoader(datasets.webdataset(cutFile), { batchSize: 4, onError: "skip" });
  assert.deepEqual((await labelsOf(l)).flat(), [1]);
  assert.match(l.stats().skipped[0].reason, /inside member "NOTES"/);
});

/** A PNG file of the image folder test set. */
function memberSource() {
  const dir = path.join(TMP, "folder", "cat");
  return path.join(dir, fs.readdirSync(dir).sort()[0]);
}

test("CLI round trip: batchlab shards DIR --out PREFIX --per-shard N writes the folder's own files; the printed pattern reads back the same samples", async () => {
  const out = path.join(TMP, "cli", "pets");
  const r = spawnSync(process.execPath, [path.join(ROOT, "bin", "batchlab.js"), "shards", path.join(TMP, "folder"), "--out", out, "--per-shard", "2"], { encoding: "utf8", timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(r.stdout, /wrote 5 samples in 3 shards of up to 2/);
  assert.match(r.stdout, /classes: 0 cat, 1 dog/);
  const pattern = lines[lines.length - 1];
  assert.equal(pattern, `${out}-{000000..000002}.tar`);
  const folder = await datasets.imageFolder(path.join(TMP, "folder"));
  const wds = datasets.webdataset(pattern, { classNames: folder.classNames });
  const back = await wds.take(10);
  assert.equal(back.length, 5);
  for (let i = 0; i < 5; i++) {
    const s = await folder.get(i);
    assert.equal(back[i].label, s.label);
    assert.equal(back[i].path.split("#")[1], `${String(i).padStart(6, "0")}${path.extname(folder.files[i])}`);
    assert.deepEqual([back[i].image.height, back[i].image.width], [s.image.height, s.image.width]);
    assert.ok(Buffer.from(back[i].image.data).equals(Buffer.from(s.image.data)), `sample ${i}: the same decoded pixels`);
  }
  // With a resize, the images of several sizes load as batches.
  const batches = await labelsOf(new DataLoader(wds, { batchSize: 2, transform: T.compose([T.resize([4, 4]), T.toTensor()]) }));
  assert.deepEqual(batches.flat(), [0, 0, 0, 1, 1]);
  const bad = spawnSync(process.execPath, [path.join(ROOT, "bin", "batchlab.js"), "shards", path.join(TMP, "folder"), "--per-shard", "0", "--out", out], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--per-shard must be an integer from 1/);
  const noOut = spawnSync(process.execPath, [path.join(ROOT, "bin", "batchlab.js"), "shards", path.join(TMP, "folder")], { encoding: "utf8" });
  assert.match(noOut.stderr, /--out PREFIX is needed/);
});

test("writeShards refuses what it cannot write, naming the argument", async () => {
  await assert.rejects(datasets.writeShards({}, { out: path.join(TMP, "x") }), (e) => e.option === "writeShards(dataset)");
  await assert.rejects(datasets.writeShards(memorySet(2), {}), (e) => e.option === "writeShards.out");
  await assert.rejects(datasets.writeShards(memorySet(2), { out: path.join(TMP, "x"), perShard: 0 }), (e) => e.option === "writeShards.perShard");
  await assert.rejects(datasets.writeShards(datasets.webdataset("a.tar"), { out: path.join(TMP, "x") }), (e) => e.option === "writeShards(dataset)");
});
