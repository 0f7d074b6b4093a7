"use strict";
// Every tutorial notebook in notebooks/, executed top to bottom by nbconvert/nbclient (Debian's
// Jupyter) against the batchlab kernel installed into a sandbox, with its saved outputs checked:
// no error output, every PNG decodes to the size its metadata states, every plotly output is a
// well-formed figure, progress bars end at 100%. Then a few facts per notebook.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { decode } = require("fast-png");
const { makeSandbox, runNotebook, ROOT } = require("./helpers/jupyter");

const DIR = path.join(ROOT, "notebooks");
const PLOTLY = "application/vnd.plotly.v1+json";
const TRACE_TYPES = new Set(["bar", "scatter", "scattergl", "heatmap", "histogram", "box", "pie", "table"]);

const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".ipynb")).sort();
const join = (v) => (Array.isArray(v) ? v.join("") : v);
const outputsOf = (nb) => nb.cells.filter((c) => c.cell_type === "code").map((c) => c.outputs);

let sandbox;
const executed = new Map();

test.before(() => {
  sandbox = makeSandbox();
});
test.after(() => {
  if (sandbox) sandbox.cleanup();
});

function run(file) {
  if (!executed.has(file)) {
    const nb = JSON.parse(fs.readFileSync(path.join(DIR, file), "utf8"));
    executed.set(file, runNotebook(sandbox, nb, { name: path.basename(file, ".ipynb"), timeout: 300 }));
  }
  return executed.get(file);
}

/** Checks a plotly figure's shape: traces of a known type, axes that exist, x/y of equal length. */
function checkFigure(fig, where) {
  assert.ok(Array.isArray(fig.data) && fig.data.length > 0, `${where}: the figure has traces`);
  assert.equal(typeof fig.layout, "object", `${where}: the figure has a layout`);
  for (const t of fig.data) {
    assert.ok(TRACE_TYPES.has(t.type), `${where}: trace type ${t.type}`);
    for (const axis of ["xaxis", "yaxis"]) {
      if (t[axis]) assert.ok(fig.layout[t[axis].replace(/^([xy])/, "$1axis")], `${where}: layout has ${t[axis]}`);
    }
    if (t.type !== "heatmap" && Array.isArray(t.x) && Array.isArray(t.y)) assert.equal(t.x.length, t.y.length, `${where}: x and y of a ${t.type} trace`);
    if (t.type === "heatmap") assert.ok(Array.isArray(t.z) && t.z.every(Array.isArray), `${where}: heatmap z is a matrix`);
  }
}

test("the notebooks folder has the five tutorials", () => {
  assert.deepEqual(
    files.map((f) => f.slice(0, 2)),
    ["01", "02", "03", "04", "05"],
  );
  for (const f of files) {
    const nb = JSON.parse(fs.readFileSync(path.join(DIR, f), "utf8"));
    assert.equal(nb.metadata.kernelspec.name, "batchlab", `${f} names the batchlab kernel`);
    for (const c of nb.cells) if (c.cell_type === "code") assert.deepEqual(c.outputs, [], `${f} is stored without outputs`);
  }
});

for (const file of files) {
  test(`${file} runs top to bottom with well-formed outputs, and stays small (no plotly.js, photos shrunk)`, { timeout: 360000 }, (t) => {
    const nb = run(file);
    const bytes = fs.statSync(path.join(sandbox.notebookDir, `${path.basename(file, ".ipynb")}.out.ipynb`)).size;
    t.diagnostic(`${file} executed: ${bytes} bytes`);
    assert.ok(bytes < 2_500_000, `${file} executed is ${bytes} bytes (plotly.js inlined, or a photo at full size?)`);
    const outs = outputsOf(nb);
    outs.forEach((cellOuts, i) => {
      assert.ok(cellOuts.length > 0, `${file} cell ${i} has an output`);
      for (const o of cellOuts) {
        assert.notEqual(o.output_type, "error", `${file} cell ${i}: ${o.ename}: ${o.evalue}`);
        if (o.output_type === "stream") assert.notEqual(o.name, "stderr", `${file} cell ${i} wrote to stderr: ${join(o.text)}`);
        const data = o.data || {};
        if (data["image/png"]) {
          const img = decode(Buffer.from(join(data["image/png"]), "base64"));
          const meta = (o.metadata || {})["image/png"];
          assert.ok(meta, `${file} cell ${i}: the PNG carries width/height metadata`);
          assert.equal(img.width, meta.width, `${file} cell ${i}: PNG width`);
          assert.equal(img.height, meta.height, `${file} cell ${i}: PNG height`);
        }
        if (data[PLOTLY]) checkFigure(data[PLOTLY], `${file} cell ${i}`);
        const progress = (o.metadata || {})["batchlab/progress"];
        if (progress) {
          assert.equal(progress.fraction, 1, `${file} cell ${i}: the progress bar ends full`);
          assert.match(join(data["text/plain"]), /100%/);
        }
      }
    });
  });
}

const results = (file) => outputsOf(run(file)).map((cell) => cell.filter((o) => o.output_type === "execute_result").map((o) => o.data)[0]);

test("01: the data set summary, a seeded order and three sampler figures", () => {
  const r = results("01-datasets-and-samplers.ipynb");
  assert.match(join(r[0]["text/plain"]), /60000 samples/);
  assert.match(join(r[1]["text/plain"]), /28x28x1, label 9 = Ankle boot/);
  const figs = r.filter((d) => d && d[PLOTLY]);
  assert.equal(figs.length, 3);
  // The class-balanced sampler evens out a subset with few examples of classes 5 to 9.
  const balanced = join(figs[1]["text/plain"]).match(/epoch 0: (.*)/)[1];
  const counts = balanced.split(", ").map((kv) => Number(kv.split(" ")[1]));
  assert.equal(counts.length, 10);
  assert.ok(Math.min(...counts) > 0.7 * Math.max(...counts), `balanced counts ${counts}`);
});

test("02: the augmentation strip and the batch grid have the grid's pixel sizes", () => {
  const r = results("02-augmentation-preview.ipynb");
  const pngs = r.filter((d) => d && d["image/png"]).map((d) => decode(Buffer.from(join(d["image/png"]), "base64")));
  assert.equal(pngs.length, 4);
  assert.ok(pngs[0].width > 4 * pngs[0].height, "one original and eight variants side by side");
  assert.match(join(r[2]["text/plain"]), /64 x 1 x 28 x 28/);
  assert.match(join(r[3]["text/html"]), /<table class="batchlab-loader">/);
  // Real photos: the wallpaper folder, a strip of warps with torchvision's parameter names, a batch.
  assert.match(join(r[4]["text/plain"]), /wallpapers/);
  const strip = join(r[5]["text/plain"]);
  assert.match(strip, /-> 3x224x224 float32/);
  assert.match(strip, /rotate angle=-?[\d.]+; affine angle=0 translate=\[-?\d+,-?\d+\] scale=[\d.]+ shear=/);
  assert.ok(pngs[2].width > 3 * pngs[2].height, "the photo and six warps side by side");
  assert.match(join(r[6]["text/plain"]), /8 x 3 x 224 x 224/);
});

test("03: a full epoch counted through the progress bar, and the timings figure", () => {
  const r = results("03-loader-performance.ipynb");
  assert.equal(join(r[1]["text/plain"]), "60000");
  assert.ok(r[3][PLOTLY]);
  // the reference engine's rate on a slice, and the ratio of the two rates the notebook printed
  const full = join(r[2]["text/plain"]).match(/^'(\w+): ([\d,.\s]+) images\/s over 235 batches'$/);
  assert.ok(full, join(r[2]["text/plain"]));
  const ref = join(r[4]["text/plain"]).match(/^'reference: ([\d,.\s]+) images\/s; native is ([\d.]+)x faster'$/);
  assert.ok(ref, join(r[4]["text/plain"]));
  const rate = (text) => Number(text.replace(/\D/g, ""));
  assert.ok(Math.abs(Number(ref[2]) - rate(full[2]) / rate(ref[1])) <= 0.051 + 0.01 * Number(ref[2]), `${full[0]} / ${ref[0]}`);
  // Real photos: the wallpapers as an image folder, their timings, fast against exact, a batch.
  const photos = join(r[5]["text/plain"]).match(/^["'](\d+) photos in (\d+) classes; JPEG decoder: (.+)["']$/);
  assert.ok(photos && Number(photos[1]) >= 10, join(r[5]["text/plain"]));
  assert.ok(r[6][PLOTLY], "the photo loader's timings figure");
  const modes = join(r[7]["text/plain"]).match(/^["']decode fast: (\d+) images\/s, exact: (\d+) images\/s \(fetch and decode (\d+) ms against (\d+) ms\)["']$/);
  assert.ok(modes && Number(modes[1]) > 0 && Number(modes[2]) > 0, join(r[7]["text/plain"]));
  assert.ok(r[8]["image/png"], "the augmented photo batch");
});

test("04: says plainly whether a GPU was used", () => {
  const r = results("04-gpu-transfer.ipynb");
  const first = join(r[0]["text/plain"]);
  const { cuda } = require("../dist");
  if (cuda.available()) assert.doesNotMatch(first, /No GPU here/);
  else assert.match(first, /No GPU here: .+\. The loader runs on the CPU\./);
});

test("05: each policy's strip with its recipes, a RandAugment batch with each image's recipe, where each step ran, a magnitude sweep", () => {
  const r = results("05-augmentation-policies.ipynb");
  assert.match(join(r[0]["text/plain"]), /\d+ photos; the first is \d+ x \d+/);
  const strips = r.slice(1, 5).map((d) => join(d["text/plain"]));
  for (const [k, name] of ["AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix"].entries()) {
    assert.match(strips[k], new RegExp(`draw 0: .*${name}`), `${name} strip lists its draws`);
    assert.match(strips[k], /name=\w+ magnitude=-?[\d.]+/, `${name} strip names ops and magnitudes`);
  }
  assert.match(join(r[5]["text/plain"]), /8 x 3 x 96 x 96/);
  const recipes = join(r[6]["text/plain"]).match(/image \d: \w+\(-?[\d.]+\), \w+\(-?[\d.]+\)/g);
  assert.equal(recipes?.length, 8, "a recipe of two ops for each of the 8 images");
  const steps = join(r[7]["text/plain"]);
  for (const re of [/RandomResizedCrop: fused/, /RandomHorizontalFlip: fused/, /RandAugment: fused/, /ToTensor: fused/]) assert.match(steps, re);
  const sweep = decode(Buffer.from(join(r[8]["image/png"]), "base64"));
  assert.ok(sweep.width > 6 * sweep.height, "seven magnitudes side by side");
});
