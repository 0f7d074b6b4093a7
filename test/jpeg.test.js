"use strict";
// JPEG decoding with libjpeg-turbo in batchlab's native pool (native/decode.cc, src/data/jpeg.ts):
// pixels against sharp's decode of the same files, gray / CMYK / progressive / EXIF-oriented
// files, windows and DCT scales, broken files, and the JavaScript thread while it decodes.
// Skips, saying why, where the addon was built without libjpeg.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const sharp = require("sharp");
const datasets = require("../dist/data");
const jpeg = require("../dist/data/jpeg");
const { FileFormatError } = require("../dist/errors");
const { DataLoader } = require("../dist/loader");
const T = require("../dist/transforms");
const fx = require("./helpers/fixtures");
const { fails } = require("./helpers/fails");

const decoder = jpeg.jpegDecoder();
const skip = decoder.native ? false : `native JPEG decode unavailable: ${decoder.reason}`;
if (skip) console.log(`# jpeg.test.js skipped: ${skip}`);
const addon = decoder.native ? require(jpeg.nativeAddonPath()) : undefined;

/** Real photos: the 640 x 480 versions of Debian's plasma wallpapers (up to 4). */
const PHOTOS = (() => {
  const root = "/usr/share/wallpapers";
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root).map((d) => path.join(root, d, "contents", "images", "640x480.jpg")).filter((f) => fs.existsSync(f)).slice(0, 4);
})();

/** Largest absolute difference of two byte arrays of one length. */
function maxDiff(a, b) {
  assert.equal(a.length, b.length, "same number of bytes");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** PIL's RGB -> L (Convert.c): what channels 1 is for a colour JPEG. */
function luma(rgb) {
  const out = new Uint8Array(rgb.length / 3);
  for (let p = 0; p < out.length; p++) out[p] = (rgb[3 * p] * 19595 + rgb[3 * p + 1] * 38470 + rgb[3 * p + 2] * 7471 + 0x8000) >> 16;
  return out;
}

/** A smooth colour test card w x h x 3 with some detail. */
function card(w, h) {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      raw[i] = (x * 255) / (w - 1);
      raw[i + 1] = (y * 255) / (h - 1);
      raw[i + 2] = ((x ^ y) & 8) ? 220 : 40;
    }
  }
  return raw;
}

/** PIL's exif_transpose of HWC pixels (orientation 1..8). */
function orient(data, w, h, c, o) {
  const t = o >= 5;
  const ow = t ? h : w, oh = t ? w : h;
  const out = new Uint8Array(data.length);
  for (let r = 0; r < oh; r++) {
    for (let q = 0; q < ow; q++) {
      let i, j; // stored row, column
      if (o === 1) [i, j] = [r, q];
      else if (o === 2) [i, j] = [r, w - 1 - q];
      else if (o === 3) [i, j] = [h - 1 - r, w - 1 - q];
      else if (o === 4) [i, j] = [h - 1 - r, q];
      else if (o === 5) [i, j] = [q, r];
      else if (o === 6) [i, j] = [h - 1 - q, r];
      else if (o === 7) [i, j] = [h - 1 - q, w - 1 - r];
      else [i, j] = [q, w - 1 - r];
      for (let k = 0; k < c; k++) out[(r * ow + q) * c + k] = data[(i * w + j) * c + k];
    }
  }
  return { data: out, width: ow, height: oh };
}

/** The rectangle [left, left+w) x [top, top+h) of an HWC image. */
function crop(img, left, top, w, h) {
  const c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let r = 0; r < h; r++) out.set(img.data.subarray(((top + r) * img.width + left) * c, ((top + r) * img.width + left + w) * c), r * w * c);
  return out;
}

async function decodeOne(req) {
  const [r] = await addon.decodeJpeg([{ orientation: 1, maxPixels: 2 ** 26, ...req }]);
  return r;
}

test("real photos: the native decode equals sharp's (max difference bound 2 levels; 0 measured) for 3 and 4 channels, and PIL's luma for 1", { skip }, async (t) => {
  if (PHOTOS.length === 0) return t.skip("no /usr/share/wallpapers/*/contents/images/640x480.jpg (plasma-workspace-wallpapers)");
  const dir = fx.tempDir("jpeg-photos");
  for (const [k, f] of PHOTOS.entries()) {
    fs.mkdirSync(path.join(dir, `c${k}`));
    fs.copyFileSync(f, path.join(dir, `c${k}`, "photo.jpg"));
  }
  for (const channels of [1, 3, 4]) {
    const ds = await datasets.imageFolder(dir, { channels });
    for (let i = 0; i < ds.length; i++) {
      const s = await ds.get(i);
      const ref = await sharp(fs.readFileSync(ds.files[i])).removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([s.image.width, s.image.height, s.image.channels], [ref.info.width, ref.info.height, channels]);
      let want = ref.data;
      if (channels === 1) want = luma(ref.data);
      if (channels === 4) {
        const rgb = new Uint8Array(s.image.data.length / 4 * 3);
        for (let p = 0; p < rgb.length / 3; p++) {
          for (let k = 0; k < 3; k++) rgb[3 * p + k] = s.image.data[4 * p + k];
          assert.equal(s.image.data[4 * p + 3], 255, "alpha is opaque");
        }
        assert.ok(maxDiff(rgb, want) <= 2, `${ds.files[i]} RGBA`);
        continue;
      }
      const d = maxDiff(s.image.data, want);
      assert.ok(d <= 2, `${ds.files[i]}, ${channels} channels: max difference ${d} levels, bound 2`);
    }
  }
});

test("gray, progressive and CMYK JPEGs decode to 1, 3 or 4 channels", { skip }, async () => {
  const w = 61, h = 37; // not multiples of the 8- or 16-pixel block
  const raw = card(w, h);
  const src = () => sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  const baseline = await src().jpeg({ quality: 90 }).toBuffer();
  const progressive = await src().jpeg({ quality: 90, progressive: true }).toBuffer();
  const gray = await src().toColourspace("b-w").jpeg({ quality: 90 }).toBuffer();
  const cmyk = await src().toColourspace("cmyk").jpeg({ quality: 95 }).toBuffer();
  assert.equal(jpeg.readJpegHeader(progressive).progressive, true);
  assert.equal(jpeg.readJpegHeader(gray).components, 1);
  assert.equal(jpeg.readJpegHeader(cmyk).components, 4);

  // Progressive: what sharp decodes, to the bit (both are libjpeg-turbo with the same settings).
  for (const buf of [baseline, progressive]) {
    const ref = await sharp(buf).raw().toBuffer();
    const r = await decodeOne({ data: buf, channels: 3 });
    assert.deepEqual([r.width, r.height, r.channels], [w, h, 3]);
    assert.ok(maxDiff(r.data, ref) <= 2);
  }
  // Gray: 1 channel is the stored plane; 3 and 4 replicate it (alpha 255).
  const g = await sharp(gray).toColourspace("b-w").raw().toBuffer();
  const g1 = await decodeOne({ data: gray, channels: 1 });
  assert.ok(maxDiff(g1.data, g) <= 2);
  for (const c of [3, 4]) {
    const r = await decodeOne({ data: gray, channels: c });
    for (let p = 0; p < w * h; p++) {
      for (let k = 0; k < 3; k++) assert.equal(r.data[p * c + k], g1.data[p]);
      if (c === 4) assert.equal(r.data[p * c + 3], 255);
    }
  }
  // CMYK (Adobe, inverted, as libvips writes it): PIL's conversion of the ink values sharp reads
  // out unconverted, R = (255 - C)(255 - K)/255 rounded (PIL's MULDIV255), exactly. (sharp's own
  // RGB goes through an ICC profile and differs by up to ~130 levels here.)
  const ink = await sharp(cmyk).pipelineColourspace("cmyk").toColourspace("cmyk").raw().toBuffer();
  const mul = (a, b) => { const t = a * b + 128; return (t + (t >> 8)) >> 8; };
  const want = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) for (let k = 0; k < 3; k++) want[3 * p + k] = mul(255 - ink[4 * p + k], 255 - ink[4 * p + 3]);
  const c3 = await decodeOne({ data: cmyk, channels: 3 });
  assert.equal(maxDiff(c3.data, want), 0);
  const c1 = await decodeOne({ data: cmyk, channels: 1 });
  assert.equal(maxDiff(c1.data, luma(want)), 0);
  const c4 = await decodeOne({ data: cmyk, channels: 4 });
  for (let p = 0; p < w * h; p++) assert.equal(c4.data[4 * p + 3], 255);
});

test("EXIF orientation 1-8 is applied as PIL's exif_transpose (the same pixels as sharp's rotate())", { skip }, async () => {
  const w = 40, h = 24;
  const raw = card(w, h);
  const dir = fx.tempDir("jpeg-exif");
  fs.mkdirSync(path.join(dir, "c"));
  const plain = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
  const stored = await decodeOne({ data: plain, channels: 3 });
  for (let o = 1; o <= 8; o++) {
    const buf = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 92 }).withMetadata({ orientation: o }).toBuffer();
    assert.equal(jpeg.readJpegHeader(buf).orientation, o, "readJpegHeader finds the tag");
    fs.writeFileSync(path.join(dir, "c", `o${o}.jpg`), buf);
  }
  const ds = await datasets.imageFolder(dir);
  for (let o = 1; o <= 8; o++) {
    const file = path.join(dir, "c", `o${o}.jpg`);
    const s = await ds.get(ds.files.indexOf(file));
    const want = orient(stored.data, w, h, 3, o);
    assert.deepEqual([s.image.width, s.image.height], [want.width, want.height], `orientation ${o}: size`);
    assert.equal(maxDiff(s.image.data, want.data), 0, `orientation ${o}: pixels`);
    const viaSharp = await sharp(fs.readFileSync(file)).rotate().raw().toBuffer();
    assert.equal(maxDiff(s.image.data, viaSharp), 0, `orientation ${o}: sharp's rotate()`);
  }
  // A malformed EXIF block leaves the image as stored.
  assert.equal(jpeg.exifOrientation(Uint8Array.from([0x49, 0x49, 42, 0, 200, 0, 0, 0])), 1);
  assert.equal(jpeg.exifOrientation(Uint8Array.from([1, 2, 3])), 1);
});

test("windows and DCT scales: the region decoded is the full decode's (scale 1) or the scaled decode's pixels, where its frame says", { skip }, async () => {
  const w = 203, h = 117;
  const raw = card(w, h);
  for (const progressive of [false, true]) {
    for (const o of [1, 2, 3, 6, 8]) {
      const buf = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90, progressive }).withMetadata({ orientation: o }).toBuffer();
      const fullW = o >= 5 ? h : w, fullH = o >= 5 ? w : h;
      for (const scale of [1, 2, 4, 8]) {
        const whole = await decodeOne({ data: buf, channels: 3, orientation: o, window: { left: 0, top: 0, width: fullW, height: fullH, scale } });
        assert.deepEqual([whole.fullWidth, whole.fullHeight], [fullW, fullH]);
        assert.deepEqual([whole.width, whole.height], [Math.ceil(fullW / scale), Math.ceil(fullH / scale)], `o${o} 1/${scale}: whole size`);
        for (const win of [{ left: 37, top: 21, width: 50, height: 30 }, { left: 0, top: fullH - 9, width: fullW, height: 9 }, { left: fullW - 1, top: 0, width: 1, height: 1 }]) {
          const r = await decodeOne({ data: buf, channels: 3, orientation: o, window: { ...win, scale } });
          const what = `progressive ${progressive}, orientation ${o}, 1/${scale}, window ${JSON.stringify(win)}`;
          assert.equal(r.scale, scale);
          // The frame covers the window asked for.
          assert.ok(r.left <= win.left && r.top <= win.top, `${what}: frame origin ${r.left}, ${r.top}`);
          assert.ok(r.left + r.width * scale >= win.left + win.width && r.top + r.height * scale >= win.top + win.height, `${what}: frame covers the window`);
          // And its pixels are the whole decode's at the same place (origin offsets are multiples of scale).
          const c0 = (r.left - whole.left) / scale, r0 = (r.top - whole.top) / scale;
          assert.ok(Number.isInteger(c0) && Number.isInteger(r0), `${what}: on the grid`);
          assert.equal(maxDiff(r.data, crop(whole, c0, r0, r.width, r.height)), 0, what);
        }
      }
    }
  }
});

test("random windows (narrow ones too, every orientation, 4:2:0 and 4:4:4, scales 1 and 2): the region is the whole decode's pixels", { skip }, async () => {
  // Narrow windows decode their rows through a scanline buffer, wider ones in place (the
  // margins libjpeg writes around a row land on its neighbours, which are put back): both kept exact.
  const w = 331, h = 197;
  const raw = card(w, h);
  const rng = new (require("../dist/sampling/rng").RandomStream)(23, 0, 0);
  for (const [o, subsampling] of [[1, "4:2:0"], [6, "4:2:0"], [1, "4:4:4"], [3, "4:4:4"]]) {
    const buf = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90, chromaSubsampling: subsampling }).withMetadata({ orientation: o }).toBuffer();
    const fullW = o >= 5 ? h : w, fullH = o >= 5 ? w : h;
    for (const scale of [1, 2]) {
      const whole = await decodeOne({ data: buf, channels: 3, orientation: o, window: { left: 0, top: 0, width: fullW, height: fullH, scale } });
      for (let k = 0; k < 25; k++) {
        const width = 1 + rng.int(k % 3 === 0 ? 24 : fullW);
        const height = 1 + rng.int(k % 4 === 0 ? 4 : fullH);
        const win = { left: rng.int(fullW - width + 1), top: rng.int(fullH - height + 1), width, height, scale };
        const r = await decodeOne({ data: buf, channels: 3, orientation: o, window: win });
        const c0 = (r.left - whole.left) / scale, r0 = (r.top - whole.top) / scale;
        assert.equal(maxDiff(r.data, crop(whole, c0, r0, r.width, r.height)), 0, `orientation ${o}, ${subsampling}, window ${JSON.stringify(win)}`);
      }
    }
  }
});

test("broken JPEGs: FileFormatError naming the path and the byte; the loader's onError skip drops them", { skip }, async () => {
  const dir = fx.tempDir("jpeg-broken");
  fs.mkdirSync(path.join(dir, "c"));
  const good = await sharp(card(48, 32), { raw: { width: 48, height: 32, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  // Scan data overwritten with a run of marker-free garbage: the structure stays whole, the
  // entropy-coded data does not decode.
  const sos = good.indexOf(Buffer.from([0xff, 0xda]));
  const scrambled = Buffer.from(good);
  for (let k = sos + 20; k < good.length - 4; k++) scrambled[k] = (k * 37) & 0x7f;
  fs.writeFileSync(path.join(dir, "c", "a-good.jpg"), good);
  fs.writeFileSync(path.join(dir, "c", "b-truncated.jpg"), good.subarray(0, good.length - 40));
  fs.writeFileSync(path.join(dir, "c", "c-scrambled.jpg"), scrambled);
  fs.writeFileSync(path.join(dir, "c", "d-good.jpg"), good);
  const ds = await datasets.imageFolder(dir);
  const trunc = path.join(dir, "c", "b-truncated.jpg");
  await assert.rejects(ds.get(1), fails(FileFormatError, { path: trunc, offset: good.length - 40 }, /ends with the file, without an EOI marker \(truncated\) \(decoder: libjpeg-turbo: /));
  const scr = path.join(dir, "c", "c-scrambled.jpg");
  await assert.rejects(ds.get(2), (e) => {
    assert.ok(e instanceof FileFormatError, String(e));
    assert.equal(e.path, scr);
    assert.match(e.message, /libjpeg-turbo: /);
    assert.equal(typeof e.offset, "number", "the byte libjpeg had reached");
    return true;
  });

  const loader = new DataLoader(ds, { batchSize: 4, transform: T.compose([T.resize([16, 16]), T.toTensor()]), onError: "skip" });
  let kept = 0;
  for await (const batch of loader) kept += batch.size ?? batch.labels.length;
  assert.equal(kept, 2, "the two good files make the epoch");

  // A request the addon refuses names the field.
  await assert.rejects(addon.decodeJpeg([{ data: good, channels: 2 }]), /decodeJpeg\(requests\[0\]\.channels\): expected 1, 3 or 4, received 2/);
  await assert.rejects(addon.decodeJpeg([{ data: "x", channels: 3 }]), /requests\[0\]\.data\): expected a Uint8Array of JPEG bytes, received "x"/);
  await assert.rejects(addon.decodeJpeg([{ data: good, channels: 3, window: { left: 0, top: 0, width: 4, height: 4, scale: 3 } }]), /window\.scale\): expected 1, 2, 4 or 8, received 3/);
  // maxPixels is enforced by the decoder too (imageFolder checks the header first).
  const capped = await decodeOne({ data: good, channels: 3, maxPixels: 100 });
  assert.match(capped.error, /48 x 32 = 1536 pixels, above maxPixels = 100/);
});

test("the JavaScript thread keeps running while a batch decodes", { skip }, async () => {
  const buf = PHOTOS.length ? fs.readFileSync(PHOTOS[0]) : await sharp(card(640, 480), { raw: { width: 640, height: 480, channels: 3 } }).jpeg().toBuffer();
  const requests = Array.from({ length: 24 }, () => ({ data: buf, channels: 3 }));
  let settled = false;
  const pending = addon.decodeJpeg(requests).then((r) => {
    settled = true;
    return r;
  });
  // Turns of the event loop taken while the pool decodes: the call returned at once, and
  // JavaScript runs (here: counts) until the results arrive.
  let turns = 0;
  while (!settled) {
    await new Promise((r) => setImmediate(r));
    turns++;
  }
  const results = await pending;
  assert.ok(turns >= 1, `turns of the event loop while decoding: ${turns}`);
  assert.equal(results.length, 24);
  for (const r of results) assert.equal(r.data.length, r.width * r.height * 3);
});

test("imageFolder decode \"fast\" offers encoded(i): the shape from the header (orientation applied), windows that match get(i); \"exact\" offers none", { skip }, async () => {
  const dir = fx.tempDir("jpeg-encoded");
  fs.mkdirSync(path.join(dir, "c"));
  const w = 90, h = 50;
  fs.writeFileSync(path.join(dir, "c", "a.jpg"), await sharp(card(w, h), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer());
  fs.writeFileSync(path.join(dir, "c", "b.png"), await sharp(card(w, h), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
  const exact = await datasets.imageFolder(dir, { decode: "exact" });
  assert.equal(exact.encoded, undefined);
  const ds = await datasets.imageFolder(dir);
  for (let i = 0; i < 2; i++) {
    const full = (await ds.get(i)).image;
    const e = await ds.encoded(i);
    assert.deepEqual(e.shape, { height: full.height, width: full.width, channels: 3 });
    assert.deepEqual([e.label, e.index, e.path], [0, i, ds.files[i]]);
    const whole = await e.decode();
    assert.deepEqual(whole.frame, { scale: 1, left: 0, top: 0 });
    assert.equal(maxDiff(whole.image.data, full.data), 0);
    const r = await e.decode({ left: 10, top: 20, width: 25, height: 30, scale: 1 });
    const img = { ...r.image };
    const c0 = r.frame.left, r0 = r.frame.top;
    assert.equal(maxDiff(img.data, crop(full, c0, r0, img.width, img.height)), 0);
  }
  const e = await ds.encoded(0);
  await assert.rejects(e.decode({ left: 0, top: 0, width: 1000, height: 5, scale: 1 }), /decode\(window\) of .*a\.jpg: expected \{ left, top, width, height \} of whole pixels inside the 50 x 90 image/);
  await assert.rejects(datasets.imageFolder(dir, { decode: "quick" }), /decode.*"fast" or "exact"/);
});

test("the loader steers the decode: with decode \"fast\" a randomResizedCrop chain decodes only its crop box; at DCT scale 1 the batches equal \"exact\" bit for bit", { skip }, async (t) => {
  if (PHOTOS.length === 0) return t.skip("no plasma wallpapers");
  const dir = fx.tempDir("jpeg-steer");
  for (const [k, f] of PHOTOS.entries()) {
    fs.mkdirSync(path.join(dir, `c${k}`));
    // 400 x 300: no crop box reaches twice the output (2 x 224 = 448), so every window is at scale 1
    const small = await sharp(f).resize(400, 300, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer();
    fs.writeFileSync(path.join(dir, `c${k}`, "a.jpg"), small);
    // and an EXIF-rotated copy, whose window maps through the orientation
    fs.writeFileSync(path.join(dir, `c${k}`, "b.jpg"), await sharp(small).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer());
  }
  const chains = {
    imagenet: () => T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]),
    // not steered (the whole image is decoded, as "exact" does)
    centerCrop: () => T.compose([T.centerCrop(200), T.randomHorizontalFlip(), T.toTensor()]),
  };
  const fast = await datasets.imageFolder(dir, { decode: "fast" });
  const exact = await datasets.imageFolder(dir, { decode: "exact" });
  // The windows really are windows: record what fast decodes.
  const asked = [];
  const spy = { ...fast, encoded: async (i) => {
    const e = await fast.encoded(i);
    return { ...e, decode: (w) => (asked.push(w), e.decode(w)) };
  } };
  for (const [name, chain] of Object.entries(chains)) {
    for (const seed of [1, 2]) {
      const run = async (ds) => {
        const out = [];
        for await (const b of new DataLoader(ds, { batchSize: 3, shuffle: true, seed, transform: chain() })) out.push({ px: Array.from(b.images), params: JSON.stringify(b.params) });
        return out;
      };
      const a = await run(name === "imagenet" ? spy : fast);
      const b = await run(exact);
      assert.equal(a.length, b.length);
      for (let k = 0; k < a.length; k++) {
        assert.equal(a[k].params, b[k].params, `${name} seed ${seed} batch ${k}: the same parameters`);
        assert.ok(a[k].px.length > 0 && a[k].px.every((v, i) => Object.is(v, b[k].px[i])), `${name} seed ${seed} batch ${k}: the same pixels`);
      }
    }
  }
  assert.ok(asked.length > 0, "decodes were asked");
  assert.ok(asked.every((w) => w && w.scale === 1 && w.width >= 1 && w.height >= 1), `randomResizedCrop asked for windows: ${JSON.stringify(asked.slice(0, 3))}`);
  assert.ok(asked.some((w) => w.left > 0 || w.top > 0), "windows off the image's corner");
});

/** PSNR in dB of two float images in [0, 1] (Infinity when equal). */
function psnr(a, b) {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return 10 * Math.log10(1 / (se / a.length));
}

test("decode \"fast\" at DCT scales 1/2 to 1/8 stays close to \"exact\": PSNR >= 25 dB for every sample, median >= 35 dB (real photos, randomResizedCrop and resize)", { skip }, async (t) => {
  if (PHOTOS.length === 0) return t.skip("no plasma wallpapers");
  const dir = fx.tempDir("jpeg-psnr");
  for (const [k, f] of PHOTOS.entries()) {
    fs.mkdirSync(path.join(dir, `c${k}`));
    fs.copyFileSync(f, path.join(dir, `c${k}`, "a.jpg")); // 2560 x 1600: boxes from 1/2 to 1/8 of it
  }
  const fast = await datasets.imageFolder(dir);
  const exact = await datasets.imageFolder(dir, { decode: "exact" });
  const scales = new Set();
  const spy = { ...fast, encoded: async (i) => {
    const e = await fast.encoded(i);
    return { ...e, decode: (w) => (scales.add(w ? w.scale : 1), e.decode(w)) };
  } };
  const chains = {
    "randomResizedCrop(224)": [224, () => T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.toTensor()])],
    "randomResizedCrop(64)": [64, () => T.compose([T.randomResizedCrop(64), T.randomHorizontalFlip(), T.toTensor()])],
    "resize([224, 224])": [224, () => T.compose([T.resize([224, 224]), T.randomHorizontalFlip(), T.toTensor()])],
    "resize(256), centerCrop(224) (the validation chain)": [224, () => T.compose([T.resize(256), T.centerCrop(224), T.toTensor()])],
  };
  for (const [name, [size, chain]] of Object.entries(chains)) {
    const values = [];
    for (const seed of [1, 2, 3]) {
      const a = [];
      const b = [];
      for await (const x of new DataLoader(spy, { batchSize: 4, seed, transform: chain() })) a.push(x);
      for await (const x of new DataLoader(exact, { batchSize: 4, seed, transform: chain() })) b.push(x);
      for (let k = 0; k < a.length; k++) {
        assert.equal(JSON.stringify(a[k].params), JSON.stringify(b[k].params), "the batch reports the parameters drawn on the full image");
        const per = 3 * size * size;
        for (let j = 0; j < a[k].shape[0]; j++) values.push(psnr(a[k].images.subarray(j * per, (j + 1) * per), b[k].images.subarray(j * per, (j + 1) * per)));
      }
    }
    values.sort((x, y) => x - y);
    const median = values[values.length >> 1];
    console.log(`# ${name}: PSNR fast vs exact over ${values.length} samples: lowest ${values[0].toFixed(1)} dB, median ${median.toFixed(1)} dB`);
    assert.ok(values[0] >= 25, `${name}: lowest PSNR ${values[0].toFixed(1)} dB, bound 25`);
    assert.ok(median >= 35, `${name}: median PSNR ${median.toFixed(1)} dB, bound 35`);
  }
  assert.ok([...scales].some((s) => s > 1), `DCT scaling was used (scales asked: ${[...scales].join(", ")})`);
});

test("subset keeps encoded(i), renumbered", { skip }, async () => {
  const dir = fx.tempDir("jpeg-subset");
  fs.mkdirSync(path.join(dir, "c"));
  for (const k of [0, 1, 2]) fs.writeFileSync(path.join(dir, "c", `${k}.jpg`), await sharp(card(20 + k, 10), { raw: { width: 20 + k, height: 10, channels: 3 } }).jpeg().toBuffer());
  const ds = await datasets.imageFolder(dir);
  const sub = datasets.subset(ds, [2, 0]);
  const e = await sub.encoded(0);
  assert.deepEqual([e.index, e.path, e.shape.width], [0, ds.files[2], 22]);
  assert.throws(() => sub.encoded(2), /index/);
  assert.equal(datasets.subset(await datasets.imageFolder(dir, { decode: "exact" }), [0]).encoded, undefined);
});

test("decoded images the loader owns go back after the engine call (releaseDecoded); images a data set hands out and keeps are left alone", { skip }, async (t) => {
  if (PHOTOS.length === 0) return t.skip("no plasma wallpapers");
  const dir = fx.tempDir("jpeg-release");
  for (const [k, f] of PHOTOS.entries()) {
    fs.mkdirSync(path.join(dir, `c${k}`));
    for (const n of ["a", "b", "c"]) fs.writeFileSync(path.join(dir, `c${k}`, `${n}.jpg`), await sharp(f).resize(160 + 20 * k, 120).jpeg({ quality: 85 }).toBuffer());
  }
  // The native call: a buffer it made is detached and freed once; any other buffer is left.
  const exact = await datasets.imageFolder(dir, { decode: "exact" });
  assert.equal(exact.freshImages, true, "imageFolder decodes anew on every get()");
  const mine = (await exact.get(0)).image;
  assert.equal(jpeg.releaseDecoded(mine.data), true);
  assert.equal(mine.data.length, 0, "detached: every view reads as empty");
  assert.equal(jpeg.releaseDecoded(mine.data), false, "only once");
  assert.equal(jpeg.releaseDecoded(new Uint8Array(16)), false, "not a decoded buffer");
  // Through the loader, fast (encoded) and exact (get) give the same batches as before, and the
  // loader gives back what it decoded: counted through the module's function.
  const released = [];
  const real = jpeg.releaseDecoded;
  const chain = () => T.compose([T.randomResizedCrop(96), T.toTensor()]);
  const run = async (ds, owned) => {
    const out = [];
    for await (const b of new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 3, transform: chain() })) out.push(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
    return Buffer.concat(out);
  };
  const before = await run(exact);
  jpeg.releaseDecoded = (data) => {
    const ok = real(data);
    released.push(ok);
    return ok;
  };
  try {
    assert.ok((await run(exact)).equals(before), "exact: the same batches");
    assert.equal(released.length, exact.length, "every image the loader fetched from imageFolder");
    assert.ok(released.every((x) => x), "and each was the native decoder's");
    released.length = 0;
    const fast = await datasets.imageFolder(dir, { decode: "fast" });
    await run(fast);
    assert.equal(released.length, fast.length, "fast: every decoded window");
    // A data set that keeps the images it hands out (map over kept samples) is not fresh:
    // nothing of it is released, and its images stay readable epoch after epoch.
    released.length = 0;
    const kept = await Promise.all(Array.from({ length: exact.length }, (_, i) => exact.get(i)));
    const keeps = datasets.map(datasets.subset(exact, Array.from(kept.keys())), (s) => kept[s.index]);
    assert.equal(keeps.freshImages, undefined);
    await run(keeps);
    await run(keeps);
    assert.equal(released.length, 0, "nothing released");
    assert.ok(kept.every((s) => s.image.data.length === s.image.height * s.image.width * 3), "the kept images are intact");
  } finally {
    jpeg.releaseDecoded = real;
  }
});
