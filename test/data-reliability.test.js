"use strict";
// Hostile and unusual inputs (issue #11): symlink loops and huge folders in imageFolder, FIFOs
// and devices given as data files, decompression bombs (SVG named .png, JPEG/PNG headers that
// claim huge sizes, gzip streams longer than their IDX header), element counts that overflow.
// Each ends in a typed batchlab error or the correct dataset.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const { spawnSync } = require("node:child_process");
const sharp = require("sharp");
const datasets = require("../dist/data");
const { OptionError, FileFormatError } = require("../dist/errors");
const fx = require("./helpers/fixtures");

const { fails } = require("./helpers/fails");

/** Runs `fn` while collecting the process warnings it emits. */
async function withWarnings(fn) {
  const seen = [];
  const on = (w) => seen.push(w);
  process.on("warning", on);
  try {
    const value = await fn();
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    return { value, warnings: seen };
  } finally {
    process.off("warning", on);
  }
}

async function onePng(file, w = 3, h = 2) {
  await sharp(Buffer.alloc(w * h * 3, 90), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

// ------------------------------------------------------------------------------------ folder walk

test("imageFolder: a symlink loop next to one PNG gives one sample and a warning, not 33 (or a stack overflow with two loops)", async () => {
  const dir = fx.tempDir("loop");
  fs.mkdirSync(path.join(dir, "c0"));
  await onePng(path.join(dir, "c0", "a.png"));
  fs.symlinkSync(".", path.join(dir, "c0", "loop"));
  const { value: ds, warnings } = await withWarnings(() => datasets.imageFolder(dir));
  assert.deepEqual(ds.files, [path.join(dir, "c0", "a.png")]);
  assert.equal(ds.skipped.length, 1);
  assert.equal(ds.skipped[0].path, path.join(dir, "c0", "loop"));
  assert.match(ds.skipped[0].reason, /a folder already walked as .*c0 \(a symlink loop/);
  const w = warnings.filter((x) => x.code === "BATCHLAB_FOLDER_SKIPPED");
  assert.equal(w.length, 1, "one warning for the walk");
  assert.equal(w[0].name, "BatchlabWarning");
  assert.match(w[0].message, /skipped 1 entry/);

  // Two loops (each doubles the walk without a check), a loop up to the root, a link from one
  // class into another: every file once, under its own class.
  fs.symlinkSync(".", path.join(dir, "c0", "loop2"));
  fs.symlinkSync("..", path.join(dir, "c0", "up"));
  fs.mkdirSync(path.join(dir, "c1", "deep", "er"), { recursive: true });
  await onePng(path.join(dir, "c1", "deep", "er", "b.png"));
  fs.symlinkSync(path.join(dir, "c0"), path.join(dir, "c1", "deep", "er", "to-c0"));
  fs.symlinkSync(path.join(dir, "c1"), path.join(dir, "c0", "to-c1"));
  fs.symlinkSync("../..", path.join(dir, "c1", "deep", "er", "back"));
  const { value: ds2 } = await withWarnings(() => datasets.imageFolder(dir));
  assert.deepEqual(ds2.files, [path.join(dir, "c0", "a.png"), path.join(dir, "c1", "deep", "er", "b.png")]);
  assert.deepEqual(Array.from(ds2.labels()), [0, 1]);
  assert.deepEqual(ds2.skipped.map((s) => path.basename(s.path)).sort(), ["back", "loop", "loop2", "to-c0", "to-c1", "up"]);

  // A class folder that is a symlink to another class folder: its class stays, empty.
  const dup = fx.tempDir("dupclass");
  fs.mkdirSync(path.join(dup, "a"));
  await onePng(path.join(dup, "a", "x.png"));
  fs.symlinkSync(path.join(dup, "a"), path.join(dup, "b"));
  const { value: ds3 } = await withWarnings(() => datasets.imageFolder(dup));
  assert.deepEqual(ds3.classNames, ["a", "b"]);
  assert.equal(ds3.length, 1);
  assert.match(ds3.skipped[0].reason, /a class folder that is the same folder as/);
  // A symlinked folder that is not a loop is still followed.
  const linked = fx.tempDir("linked");
  const elsewhere = fx.tempDir("elsewhere");
  await onePng(path.join(elsewhere, "z.png"));
  fs.mkdirSync(path.join(linked, "k"));
  fs.symlinkSync(elsewhere, path.join(linked, "k", "more"));
  const ds4 = await datasets.imageFolder(linked);
  assert.deepEqual(ds4.files, [path.join(linked, "k", "more", "z.png")]);
  assert.deepEqual(ds4.skipped, []);
});

test("imageFolder: 200,000 files in one nested subfolder list in order (no spread into push, no recursion)", { timeout: 120000 }, async () => {
  const dir = fx.tempDir("huge", { fast: true });
  const sub = path.join(dir, "c0", "sub");
  fs.mkdirSync(sub, { recursive: true });
  const n = 200000;
  // Hard links of one empty file: one syscall per entry, so the fixture takes a second or two.
  // (A new original every 50,000 links: ext4 allows 65,000 links to one file.)
  const width = String(n).length;
  let proto;
  for (let i = 0; i < n; i++) {
    if (i % 50000 === 0) fs.writeFileSync((proto = path.join(dir, `proto${i}`)), "");
    fs.linkSync(proto, path.join(sub, `${String(i).padStart(width, "0")}.png`));
  }
  await onePng(path.join(dir, "c0", "a.png"));
  const ds = await datasets.imageFolder(dir);
  assert.equal(ds.length, n + 1);
  assert.equal(ds.files[0], path.join(dir, "c0", "a.png"));
  assert.equal(ds.files[1], path.join(sub, `${"0".repeat(width)}.png`));
  assert.equal(ds.files[n], path.join(sub, `${String(n - 1).padStart(width, "0")}.png`));
  assert.equal(ds.labels().length, n + 1);
  // The empty files are listed (labels need no decoding) and fail as files when decoded.
  await assert.rejects(ds.get(1), fails(FileFormatError, { path: ds.files[1], offset: 0 }, /empty file; not decoded/));
});

// ------------------------------------------------------------------------------------ non-regular files

test("FIFOs and devices given as data files are refused at once, never read (the process exits)", { skip: process.platform === "win32" ? "no FIFOs" : false }, (t) => {
  const dir = fx.tempDir("fifo");
  const f = fx.writeIdx(dir, 2, 3, 3);
  const cls = path.join(dir, "root", "cls");
  fs.mkdirSync(cls, { recursive: true });
  const mk = spawnSync("mkfifo", [path.join(dir, "fifo.idx"), path.join(cls, "x.png")]);
  if (mk.status !== 0) return t.skip(`mkfifo failed: ${mk.stderr}`);
  fs.symlinkSync("/dev/zero", path.join(dir, "zero.idx"));
  fs.symlinkSync("/dev/zero", path.join(cls, "zero.png"));
  fs.writeFileSync(path.join(cls, "ok.png"), "");
  // CIFAR: a FIFO as batches.meta.txt
  const cifar = path.join(dir, "cifar");
  fs.mkdirSync(cifar);
  fx.writeCifar(cifar, "test_batch.bin", 2);
  spawnSync("mkfifo", [path.join(cifar, "batches.meta.txt")]);
  // In a child process: before the fix, opening a FIFO blocks a libuv thread forever and
  // /dev/zero is read until memory runs out, so the child is the hang guard.
  const script = `
    const d = require(${JSON.stringify(path.join(__dirname, "..", "dist", "data"))});
    const dir = ${JSON.stringify(dir)};
    const show = (e) => ({ cls: e.constructor.name, code: e.code, path: e.path, option: e.option, message: e.message });
    (async () => {
      const out = {};
      const tryIt = async (k, p) => { try { await p; out[k] = "ok"; } catch (e) { out[k] = show(e); } };
      await tryIt("idxFifo", d.idx(dir + "/fifo.idx", ${JSON.stringify(f.labels)}));
      await tryIt("idxZero", d.idx(dir + "/zero.idx", ${JSON.stringify(f.labels)}));
      await tryIt("decodeFifo", d.decodeImage(dir + "/root/cls/x.png"));
      await tryIt("decodeZero", d.decodeImage(dir + "/root/cls/zero.png"));
      await tryIt("npyFifo", d.npy(dir + "/fifo.idx", dir + "/fifo.idx"));
      await tryIt("cifarMeta", d.cifar10({ root: dir + "/cifar", split: "test" }));
      const ds = await d.imageFolder(dir + "/root").catch(show);
      out.folder = ds.files ? { files: ds.files, skipped: ds.skipped } : ds;
      process.stdout.write(JSON.stringify(out));
    })();`;
  const r = spawnSync(process.execPath, ["--no-warnings", "-e", script], { timeout: 30000, encoding: "utf8", killSignal: "SIGKILL" });
  assert.equal(r.signal, null, `the child hung or was killed (${r.signal}); stderr: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual([out.idxFifo.cls, out.idxFifo.option], ["OptionError", "idx(imagesPath)"]);
  assert.match(out.idxFifo.message, /expected a regular file; that path is a FIFO \(named pipe\)/);
  assert.deepEqual([out.idxZero.cls, out.idxZero.option], ["OptionError", "idx(imagesPath)"]);
  assert.match(out.idxZero.message, /a regular file; that path is a character device/);
  assert.deepEqual([out.decodeFifo.cls, out.decodeFifo.path], ["FileFormatError", path.join(cls, "x.png")]);
  assert.match(out.decodeFifo.message, /not a regular file \(a FIFO \(named pipe\)\)/);
  assert.deepEqual([out.decodeZero.cls, out.decodeZero.code], ["FileFormatError", "ERR_BATCHLAB_FILE"]);
  assert.match(out.decodeZero.message, /not a regular file \(a character device\)/);
  assert.equal(out.npyFifo.cls, "OptionError");
  assert.deepEqual([out.cifarMeta.cls, out.cifarMeta.path], ["FileFormatError", path.join(cifar, "batches.meta.txt")]);
  // The folder lists the regular file only; the FIFO and the link to /dev/zero are skipped.
  assert.deepEqual(out.folder.files, [path.join(cls, "ok.png")]);
  assert.deepEqual(out.folder.skipped.map((s) => [path.basename(s.path), s.reason]), [
    ["x.png", "not a regular file (a FIFO)"],
    ["zero.png", "not a regular file (a symlink to a character device)"],
  ]);
});

// ------------------------------------------------------------------------------------ bombs

test("image bombs: an SVG named .png is never decoded; PNG and JPEG headers above maxPixels are refused before decoding", async () => {
  const dir = fx.tempDir("bombs");
  fs.mkdirSync(path.join(dir, "c"));
  // 70 bytes of SVG that libvips would render at 16383 x 16383 x 3 (1 GB).
  const svg = path.join(dir, "c", "svg.png");
  fs.writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="16383" height="16383"/>');
  await assert.rejects(datasets.decodeImage(svg), fails(FileFormatError, { path: svg, offset: 0 }, /bad PNG signature: byte 0 is 0x3c, expected 0x89; not decoded \(its first bytes: 3C 73 76 67.*only files whose extension and first bytes agree are decoded: PNG \(\.png; first bytes 89 50 4E 47 0D 0A 1A 0A\), JPEG \(\.jpg, \.jpeg; first bytes FF D8 FF\)/));
  // A JPEG named .png, a PNG named .jpg: refused, and said what they are.
  const jpgBuf = await sharp(Buffer.alloc(8 * 8 * 3, 50), { raw: { width: 8, height: 8, channels: 3 } }).jpeg({ progressive: true }).toBuffer();
  const pngBuf = await sharp(Buffer.alloc(8 * 8 * 3, 50), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
  fs.writeFileSync(path.join(dir, "c", "jpeg.png"), jpgBuf);
  fs.writeFileSync(path.join(dir, "c", "png.jpg"), pngBuf);
  await assert.rejects(datasets.decodeImage(path.join(dir, "c", "jpeg.png")), fails(FileFormatError, { offset: 0 }, /not decoded \(it is a JPEG file\)/));
  await assert.rejects(datasets.decodeImage(path.join(dir, "c", "png.jpg")), fails(FileFormatError, { offset: 0 }, /not decoded \(it is a PNG file\)/));

  // A progressive JPEG whose SOF claims 16383 x 16383: refused at the SOF's height field.
  const big = Buffer.from(jpgBuf);
  let sof = -1;
  for (let p = 2; p < big.length; ) {
    const m = big[p + 1];
    if (m === 0xc2 || m === 0xc0) {
      sof = p;
      break;
    }
    p += 2 + big.readUInt16BE(p + 2);
  }
  assert.ok(sof > 0, "fixture JPEG has an SOF");
  big.writeUInt16BE(16383, sof + 5);
  big.writeUInt16BE(16383, sof + 7);
  const bigJpg = path.join(dir, "c", "big.jpg");
  fs.writeFileSync(bigJpg, big);
  await assert.rejects(datasets.decodeImage(bigJpg), fails(FileFormatError, { path: bigJpg, offset: sof + 5 }, /the JPEG header declares 16383 x 16383 = 268402689 pixels, above maxPixels = 67108864 \(not decoded/));

  // A PNG whose IHDR claims 100000 x 100000 (CRC fixed): refused at the width field.
  const bp = Buffer.from(pngBuf);
  bp.writeUInt32BE(100000, 16);
  bp.writeUInt32BE(100000, 20);
  bp.writeUInt32BE(zlib.crc32(bp.subarray(12, 29)), 29);
  const bigPng = path.join(dir, "c", "big.png");
  fs.writeFileSync(bigPng, bp);
  await assert.rejects(datasets.decodeImage(bigPng), fails(FileFormatError, { path: bigPng, offset: 16 }, /the PNG header declares 100000 x 100000 = 10000000000 pixels, above maxPixels/));

  // maxPixels: an option of imageFolder (and decodeImage), checked by the options helpers.
  const only = fx.tempDir("maxpx");
  fs.mkdirSync(path.join(only, "c"));
  fs.writeFileSync(path.join(only, "c", "a.png"), pngBuf);
  const ds = await datasets.imageFolder(only);
  assert.equal(ds.maxPixels, 2 ** 26);
  assert.equal((await ds.get(0)).image.width, 8);
  const tight = await datasets.imageFolder(only, { maxPixels: 63 });
  await assert.rejects(tight.get(0), fails(FileFormatError, { offset: 16 }, /8 x 8 = 64 pixels, above maxPixels = 63/));
  assert.equal((await (await datasets.imageFolder(only, { maxPixels: 64 })).get(0)).image.height, 8);
  await assert.rejects(datasets.imageFolder(only, { maxPixels: 0 }), fails(OptionError, { option: "imageFolder.maxPixels", received: 0 }, /an integer in \[1, 1073741824\]/));
  await assert.rejects(datasets.imageFolder(only, { maxPixels: 1.5 }), fails(OptionError, { option: "imageFolder.maxPixels" }));
  await assert.rejects(datasets.decodeImage(path.join(only, "c", "a.png"), 3, { maxPixels: "big" }), fails(OptionError, { option: "decodeImage.maxPixels" }));
  await assert.rejects(datasets.imageFolder(only, { extensions: [".svg"] }), fails(OptionError, { option: "imageFolder.extensions" }, /extensions of the formats decoded: PNG .* \(not \.svg\)/));
});

test("gzip bombs: inflating stops at the length the IDX header declares, and a header that overflows is refused", async () => {
  const dir = fx.tempDir("gzbomb");
  const f = fx.writeIdx(dir, 1, 28, 28);
  // The header declares 1 x 28 x 28 (800 bytes with the header); the stream holds 64 MiB more.
  const header = fx.idxBuffer(fx.IDX_CODES.uint8, [1, 28, 28], new Uint8Array(784));
  const bomb = path.join(dir, "bomb.gz");
  fs.writeFileSync(bomb, zlib.gzipSync(Buffer.concat([header, Buffer.alloc(64 << 20)]), { level: 9 }));
  assert.ok(fs.statSync(bomb).size < 100000);
  await assert.rejects(datasets.idx(bomb, f.labels), fails(FileFormatError, { path: bomb, offset: 800 }, /the gunzipped data is longer than the 800 bytes that its header declares \(inflating stopped there/));
  // A header that declares 2^32-1 x 2^32-1 x 2^32-1 bytes is refused from its first 16 bytes.
  const huge = path.join(dir, "huge.gz");
  fs.writeFileSync(huge, zlib.gzipSync(Buffer.concat([fx.idxBuffer(fx.IDX_CODES.uint8, [0xffffffff, 0xffffffff, 0xffffffff], new Uint8Array(0)), Buffer.alloc(1 << 20)])));
  await assert.rejects(datasets.idx(huge, f.labels), fails(FileFormatError, { path: huge, offset: 8 }, /more data bytes than 2\^53 - 1 \(the product overflows at dimension 1\).*\[offset counts bytes of the gunzipped data\]/));
  // A garbage header is refused as soon as its first bytes arrive.
  const junk = path.join(dir, "junk.gz");
  fs.writeFileSync(junk, zlib.gzipSync(Buffer.alloc(8 << 20, 7)));
  await assert.rejects(datasets.idx(junk, f.labels), fails(FileFormatError, { path: junk, offset: 0 }, /not an IDX file/));
  // The well-formed gzipped file still loads, and npy headers cap their streams too.
  const g = fx.writeIdx(dir, 3, 4, 4, { gzip: true, prefix: "ok-" });
  assert.equal((await datasets.idx(g.images, g.labels)).length, 3);
  const n = fx.writeNpy(fx.tempDir("npygz"), 2, 3, 3, 1);
  const npyBomb = n.images + ".gz";
  fs.writeFileSync(npyBomb, zlib.gzipSync(Buffer.concat([fs.readFileSync(n.images), Buffer.alloc(16 << 20)])));
  const expected = fs.statSync(n.images).size;
  await assert.rejects(datasets.npy(npyBomb, n.labels), fails(FileFormatError, { path: npyBomb, offset: expected }, new RegExp(`longer than the ${expected} bytes that its header declares`)));
});

// ------------------------------------------------------------------------------------ counts

test("parseIdx and parseNpy refuse element counts that overflow (Infinity times 0 is NaN, not an empty array)", () => {
  // 33 dimensions of 2^32-1 overflow a double to Infinity; a last dimension of 0 made it NaN,
  // which every length comparison let through.
  const dims = [...Array(33).fill(0xffffffff), 0];
  const idxBuf = fx.idxBuffer(fx.IDX_CODES.uint8, dims, new Uint8Array(0));
  assert.throws(() => datasets.parseIdx("nan.idx", idxBuf), fails(FileFormatError, { path: "nan.idx", offset: 8 }, /more data bytes than 2\^53 - 1 \(the product overflows at dimension 1\)/));
  // The order of the dimensions does not matter: a leading 0 does not excuse the rest.
  assert.throws(() => datasets.parseIdx("zero-first.idx", fx.idxBuffer(fx.IDX_CODES.uint8, [0, 0xffffffff, 0xffffffff, 0xffffffff], new Uint8Array(0))), fails(FileFormatError, { offset: 12 }));
  // A genuinely empty array is fine.
  assert.deepEqual(datasets.parseIdx("empty.idx", fx.idxBuffer(fx.IDX_CODES.int32, [0, 5], new Uint8Array(0))).dims, [0, 5]);
  // Two int32 dims whose product is safe but whose byte count (x4) is not.
  assert.throws(() => datasets.parseIdx("bytes.idx", fx.idxBuffer(fx.IDX_CODES.int32, [0xffffffff, 0x200000], new Uint8Array(0))), fails(FileFormatError, { offset: 8 }));

  const shape = [...Array(14).fill("100000000000000000000000"), "0"];
  const header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(", ")}), }`;
  const npyBuf = fx.npyBuffer("|u1", [], new Uint8Array(0), { header });
  const firstDim = 10 + header.indexOf("(") + 1;
  assert.throws(() => datasets.parseNpy("nan.npy", npyBuf), fails(FileFormatError, { path: "nan.npy", offset: firstDim }, /declares more data bytes than 2\^53 - 1 \(the product overflows at dimension 0\)/));
  const h2 = "{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }";
  assert.throws(() => datasets.parseNpy("big.npy", fx.npyBuffer("<i8", [], new Uint8Array(0), { header: h2 })), fails(FileFormatError, { offset: 10 + h2.indexOf("4294967296, ") + 12 }, /overflows at dimension 1/));
  // numpy has no 3-byte floats; a header length far above numpy's is refused.
  const h3 = "{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }";
  assert.throws(() => datasets.parseNpy("f3.npy", fx.npyBuffer("<f3", [], new Uint8Array(6), { header: h3 })), fails(FileFormatError, { offset: 10 + h3.indexOf("'<f3'") }, /no 3-byte 'f' type/));
  const long = Buffer.from(fx.npyBuffer("|u1", [1], new Uint8Array(1), { version: 2 }));
  long.writeUInt32LE(200000, 8);
  assert.throws(() => datasets.parseNpy("long.npy", long), fails(FileFormatError, { offset: 8 }, /declares 200000 header bytes, above the limit of 100000/));
});
