"use strict";
// Image folders (PNG/JPEG decoded by sharp), and the structural scan that says where a broken
// PNG or JPEG file stops being well formed.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const sharp = require("sharp");
const datasets = require("../dist/data");
const { OptionError, FileFormatError } = require("../dist/errors");
const fx = require("./helpers/fixtures");

const DISPLAY = Symbol.for("Jupyter.display");

const { fails } = require("./helpers/fails");

/** sharp's own first error line for these bytes, to check that our message carries it. */
async function sharpMessage(buf) {
  try {
    await sharp(buf).raw().toBuffer();
  } catch (e) {
    return e.message.split("\n")[0].trim();
  }
  return undefined;
}

test("imageFolder: sorted class folders, labels without decoding, PNG and JPEG decoded to HWC", async () => {
  const dir = fx.tempDir("folder");
  const classes = { dogs: 3, cats: 2, birds: 1 };
  const files = await fx.writeImageFolder(dir, classes);
  // things that are not samples: a hidden folder (as Jupyter makes), a text file, a hidden file
  fs.mkdirSync(path.join(dir, ".ipynb_checkpoints"));
  fs.copyFileSync(files[0], path.join(dir, ".ipynb_checkpoints", "x.png"));
  fs.writeFileSync(path.join(dir, "cats", "notes.txt"), "not an image");
  fs.copyFileSync(files[0], path.join(dir, "cats", ".hidden.png"));

  const ds = await datasets.imageFolder(dir);
  const sortedClasses = Object.keys(classes).sort();
  assert.deepEqual(ds.classNames, sortedClasses);
  assert.equal(ds.length, files.length);
  // expected order: classes sorted, files sorted within each
  const expected = sortedClasses.flatMap((c, label) =>
    files.filter((f) => path.basename(path.dirname(f)) === c).sort().map((f) => ({ f, label, j: files.indexOf(f) })),
  );
  assert.deepEqual(Array.from(ds.labels()), expected.map((e) => e.label));
  assert.equal(ds.shape, undefined, "shape unknown before decoding");
  for (let i = 0; i < ds.length; i++) {
    assert.equal(ds.pathOf(i), expected[i].f);
    const pending = ds.get(i);
    assert.ok(pending instanceof Promise, "file-backed samples come as promises");
    const s = await pending;
    assert.equal(s.index, i);
    assert.equal(s.label, expected[i].label);
    assert.equal(s.path, expected[i].f);
    assert.deepEqual([s.image.height, s.image.width, s.image.channels], [6, 5, 3]);
    assert.ok(s.image.data instanceof Uint8Array);
    assert.equal(s.image.data.length, 6 * 5 * 3);
    const rgb = fx.colourOf(expected[i].j);
    const tol = expected[i].f.endsWith(".png") ? 0 : 4; // JPEG is lossy
    for (let p = 0; p < 30; p += 7) for (let c = 0; c < 3; c++) assert.ok(Math.abs(s.image.data[p * 3 + c] - rgb[c]) <= tol, `${expected[i].f} pixel ${p} channel ${c}`);
  }
  const b = ds[DISPLAY]();
  assert.match(b["text/plain"], /^imageFolder \(RGB, decoded per sample\): 6 samples/);
  assert.ok(b["text/plain"].includes(`source: ${dir}`));
  assert.match(b["text/plain"], /0: birds, 1: cats, 2: dogs/);
});

test("imageFolder: extensions option, nested folders, upper-case extensions", async () => {
  const dir = fx.tempDir("ext");
  const files = await fx.writeImageFolder(dir, { a: 2, b: 2 });
  fs.mkdirSync(path.join(dir, "a", "deeper"));
  fs.copyFileSync(files[0], path.join(dir, "a", "deeper", "z.PNG"));
  const all = await datasets.imageFolder(dir);
  assert.equal(all.length, 5);
  assert.ok(all.pathOf(2).endsWith(path.join("a", "deeper", "z.PNG")), "nested files sort by their path under the class folder");
  const pngOnly = await datasets.imageFolder(dir, { extensions: [".png"] });
  assert.equal(pngOnly.length, 3);
  assert.ok(pngOnly.files.every((f) => f.toLowerCase().endsWith(".png")));
  assert.equal((await datasets.imageFolder(dir, { extensions: ["jpg"] })).length, 2, "the dot is optional");
});

test("imageFolder: channels 1, 3 and 4 from gray, RGB, RGBA and 16-bit PNGs", async () => {
  const dir = fx.tempDir("channels");
  fs.mkdirSync(path.join(dir, "k"));
  const [w, h] = [3, 2];
  const n = w * h;
  const gray = Array.from({ length: n }, (_, p) => 30 * p + 10);
  const rgba = Array.from({ length: n * 4 }, (_, k) => (k * 53 + 7) % 256);
  const g16 = Array.from({ length: n }, (_, p) => 9000 * p + 257 * 3);
  const neutral = Array.from({ length: n * 3 }, (_, k) => 40 * Math.floor(k / 3)); // r = g = b
  fs.writeFileSync(path.join(dir, "k", "1gray.png"), fx.pngBuffer({ width: w, height: h, channels: 1, samples: gray }));
  fs.writeFileSync(path.join(dir, "k", "2rgba.png"), fx.pngBuffer({ width: w, height: h, channels: 4, samples: rgba }));
  fs.writeFileSync(path.join(dir, "k", "3g16.png"), fx.pngBuffer({ width: w, height: h, channels: 1, depth: 16, samples: g16 }));
  fs.writeFileSync(path.join(dir, "k", "4neutral.png"), fx.pngBuffer({ width: w, height: h, channels: 3, samples: neutral }));
  const get = async (channels, i) => {
    const ds = await datasets.imageFolder(dir, { channels });
    const s = await ds.get(i);
    assert.deepEqual([s.image.height, s.image.width, s.image.channels], [h, w, channels]);
    return Array.from(s.image.data);
  };
  const near = (a, b, tol, what) => a.forEach((x, k) => assert.ok(Math.abs(x - b[k]) <= tol, `${what}[${k}]: ${x} vs ${b[k]}`));

  assert.deepEqual(await get(1, 0), gray);
  assert.deepEqual(await get(3, 0), gray.flatMap((v) => [v, v, v]));
  assert.deepEqual(await get(4, 0), gray.flatMap((v) => [v, v, v, 255]));
  assert.deepEqual(await get(4, 1), rgba);
  assert.deepEqual(await get(3, 1), rgba.filter((_, k) => k % 4 !== 3), "alpha dropped");
  near(await get(1, 2), g16.map((v) => Math.round(v / 257)), 1, "16-bit scaled to 8");
  near(await get(3, 2), g16.flatMap((v) => Array(3).fill(Math.round(v / 257))), 1, "16-bit scaled to 8");
  near(await get(1, 3), neutral.filter((_, k) => k % 3 === 0), 1, "neutral RGB to luminance");
});

test("imageFolder: bad options and bad indices", async () => {
  const dir = fx.tempDir("folderopts");
  await fx.writeImageFolder(dir, { a: 1 });
  const ds = await datasets.imageFolder(dir);
  assert.throws(() => ds.get(1), fails(OptionError, { option: "get(index)", received: 1 }, /expected an integer index in \[0, 0\], received 1/));
  assert.throws(() => ds.get(-1), fails(OptionError, { option: "get(index)", received: -1 }));
  assert.equal(ds.pathOf(5), undefined);
  await assert.rejects(datasets.imageFolder(path.join(dir, "nope")), fails(OptionError, { option: "imageFolder(root)" }, /expected an existing folder with one subfolder per class; nothing exists at that path/));
  await assert.rejects(datasets.imageFolder(path.join(dir, "a", "0.png")), fails(OptionError, { option: "imageFolder(root)" }, /that path is a file, not a folder/));
  await assert.rejects(datasets.imageFolder(path.join(dir, "a")), fails(OptionError, { option: "imageFolder(root)" }, /one subfolder per class \(it has no subfolders\)/));
  const empty = fx.tempDir("folderempty");
  fs.mkdirSync(path.join(empty, "x"));
  fs.writeFileSync(path.join(empty, "x", "a.txt"), "");
  await assert.rejects(datasets.imageFolder(empty), fails(OptionError, { option: "imageFolder(root)", received: empty }, /image files \(\.png, \.jpg, \.jpeg\) inside its class folders \(found none in x\)/));
  await assert.rejects(datasets.imageFolder(dir, { channels: 2 }), fails(OptionError, { option: "imageFolder.channels", received: 2 }, /expected 1, 3 or 4, received 2/));
  await assert.rejects(datasets.imageFolder(dir, { extensions: ".png" }), fails(OptionError, { option: "imageFolder.extensions", received: ".png" }));
  await assert.rejects(datasets.imageFolder(dir, { extensions: [] }), fails(OptionError, { option: "imageFolder.extensions" }));
  await assert.rejects(datasets.imageFolder(dir, { size: 3 }), fails(OptionError, { option: "imageFolder.size" }, /no such option \(known: channels, extensions, maxPixels, decode\)/));
  await assert.rejects(datasets.imageFolder(undefined), fails(OptionError, { option: "imageFolder(root)", received: undefined }));
});

test("imageFolder through subset, concat and map stays asynchronous and keeps paths", async () => {
  const dir = fx.tempDir("foldercombo");
  const files = await fx.writeImageFolder(dir, { a: 2, b: 1 });
  const ds = await datasets.imageFolder(dir);
  const sub = datasets.subset(ds, [2, 0]);
  const s = await sub.get(0);
  assert.equal(s.index, 0);
  assert.equal(s.path, files[2]);
  assert.equal(sub.pathOf(1), files[0]);
  assert.deepEqual(Array.from(sub.labels()), [1, 0]);
  const cat = datasets.concat(ds, datasets.fromArrays(new Uint8Array(6 * 5 * 3), [1, 6, 5, 3], [0]));
  assert.ok(cat.get(1) instanceof Promise);
  assert.ok(!(cat.get(3) instanceof Promise));
  const m = datasets.map(ds, (x) => ({ ...x, label: 7 }));
  assert.equal((await m.get(2)).label, 7);
});

test("broken PNGs: the error names the file, the byte offset and sharp's message (no decoder for a file without the signature)", async () => {
  const dir = fx.tempDir("badpng");
  fs.mkdirSync(path.join(dir, "c"));
  const raw = Buffer.from(fx.bytes(5, 16 * 16 * 3));
  const png = await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer();
  assert.equal(datasets.findCorruption(png), undefined, "a whole PNG scans clean");
  assert.deepEqual(datasets.findCorruption(Buffer.from("GIF89a")), { offset: 0, problem: "neither a PNG nor a JPEG: the file starts with 0x47" });
  const chunks = fx.pngChunks(png);
  const idat = chunks.find((c) => c.type === "IDAT");
  const flip = (at, mask) => {
    const b = Buffer.from(png);
    b[at] ^= mask;
    return b;
  };
  const cases = [
    ["sig.png", flip(3, 0x01), 3, /bad PNG signature: byte 3 is/],
    ["short-sig.png", png.subarray(0, 5), 5, /the file ends inside the 8-byte PNG signature/],
    ["cut-ihdr.png", png.subarray(0, 20), 20, /PNG chunk IHDR at byte 8 declares 13 data bytes \(ending at byte 33\), past the end of the file at byte 20/],
    ["cut-idat.png", png.subarray(0, idat.offset + 30), idat.offset + 30, new RegExp(`PNG chunk IDAT at byte ${idat.offset} declares ${idat.length} data bytes`)],
    ["crc-ihdr.png", flip(8 + 8 + 1, 0x01), 8, /PNG chunk IHDR at byte 8 \(13 data bytes\) fails its CRC/],
    ["crc-idat.png", flip(idat.offset + 8 + 5, 0x10), idat.offset, new RegExp(`PNG chunk IDAT at byte ${idat.offset} \\(${idat.length} data bytes\\) fails its CRC`)],
    ["text.png", Buffer.from("not a picture"), 0, /bad PNG signature: byte 0 is 0x6e, expected 0x89/],
    ["empty.png", Buffer.alloc(0), 0, /empty file/],
  ];
  for (const [name, buf] of cases) fs.writeFileSync(path.join(dir, "c", name), buf);
  fs.writeFileSync(path.join(dir, "c", "zz-good.png"), png);
  const ds = await datasets.imageFolder(dir);
  assert.equal(ds.length, cases.length + 1, "broken files are listed: labels need no decoding");
  for (const [name, buf, offset, pattern] of cases) {
    const i = ds.files.indexOf(path.join(dir, "c", name));
    const fromSharp = await sharpMessage(buf);
    assert.ok(fromSharp, `sharp rejects ${name}`);
    await assert.rejects(ds.get(i), (e) => {
      fails(FileFormatError, { path: path.join(dir, "c", name), offset }, pattern)(e);
      if (offset < 8) {
        // A file without the PNG signature never reaches a decoder (it might be an SVG bomb).
        assert.match(e.message, /; not decoded.*: only files whose extension and first bytes agree are decoded: PNG \(\.png/, name);
        assert.ok(!e.message.includes("decoder:"), `${name}: no decoder ran: ${e.message}`);
      } else assert.ok(e.message.includes(`(decoder: ${fromSharp})`), `${name}: sharp's message in ${e.message}`);
      return true;
    });
  }
  const good = await ds.get(ds.files.indexOf(path.join(dir, "c", "zz-good.png")));
  assert.deepEqual(Buffer.from(good.image.data), raw, "the good file beside them decodes");

  // Corrupt image data under a valid CRC: the structure is whole, so no offset, but sharp's reason.
  const body = png.subarray(idat.offset + 8, idat.offset + 8 + idat.length);
  const junk = Buffer.from(body);
  junk.fill(0xab, 2); // keep the 2-byte zlib header, ruin the deflate data
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([Buffer.from("IDAT"), junk])));
  const resealed = Buffer.concat([png.subarray(0, idat.offset + 8), junk, crc, png.subarray(idat.offset + 12 + idat.length)]);
  const rf = path.join(dir, "c", "resealed.png");
  fs.writeFileSync(rf, resealed);
  const fromSharp = await sharpMessage(resealed);
  await assert.rejects(datasets.decodeImage(rf), (e) => {
    fails(FileFormatError, { path: rf, offset: undefined }, /cannot decode, though its chunk\/segment structure is whole/)(e);
    assert.ok(e.message.includes(fromSharp));
    return true;
  });

  // A file removed after the folder was listed
  fs.rmSync(path.join(dir, "c", "zz-good.png"));
  await assert.rejects(ds.get(ds.length - 1), fails(FileFormatError, { path: path.join(dir, "c", "zz-good.png") }, /no such file/));
});

test("broken JPEGs: truncated scan, garbage instead of a marker, a segment longer than the file", async () => {
  const dir = fx.tempDir("badjpg");
  fs.mkdirSync(path.join(dir, "c"));
  const raw = Buffer.from(fx.bytes(6, 24 * 24 * 3));
  const jpg = await sharp(raw, { raw: { width: 24, height: 24, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  assert.equal(datasets.findCorruption(jpg), undefined, "a whole JPEG scans clean");
  const half = Math.floor(jpg.length / 2);
  const garbage = Buffer.from(jpg);
  garbage[2] = 0x00; // where the first marker after SOI belongs
  const longSeg = Buffer.from(jpg);
  longSeg[4] = 0xff; // the length of the first segment after SOI
  longSeg[5] = 0xf0;
  const cases = [
    ["half.jpg", jpg.subarray(0, half), half, /the JPEG scan data that starts at byte \d+ ends with the file, without an EOI marker \(truncated\)/],
    ["noeoi.jpg", jpg.subarray(0, jpg.length - 2), jpg.length - 2, /without an EOI marker/],
    ["garbage.jpg", garbage, 2, /expected a JPEG marker \(0xFF\) at byte 2, found 0x00/],
    ["longseg.jpg", longSeg, jpg.length, new RegExp(`JPEG segment 0xFF[0-9A-F]{2} at byte 2 declares ${0xfff0} bytes \\(ending at byte ${2 + 2 + 0xfff0}\\), past the end of the file at byte ${jpg.length}`)],
    ["soi.jpg", jpg.subarray(0, 1), 1, /the file ends inside the JPEG SOI marker/],
  ];
  for (const [name, buf] of cases) fs.writeFileSync(path.join(dir, "c", name), buf);
  const ds = await datasets.imageFolder(dir, { channels: 1 });
  for (const [name, buf, offset, pattern] of cases) {
    const file = path.join(dir, "c", name);
    const fromSharp = await sharpMessage(buf);
    assert.ok(fromSharp, `sharp rejects ${name}`);
    await assert.rejects(ds.get(ds.files.indexOf(file)), (e) => {
      fails(FileFormatError, { path: file, offset }, pattern)(e);
      if (offset < 3) assert.match(e.message, /; not decoded.*: only files whose extension and first bytes agree are decoded/, name);
      else if (datasets.jpegDecoder().native) assert.match(e.message, /\(decoder: libjpeg-turbo: [^)]+\)/, `${name}: libjpeg's message in ${e.message}`);
      else assert.ok(e.message.includes(`(decoder: ${fromSharp})`), `${name}: sharp's message in ${e.message}`);
      return true;
    });
  }
});
