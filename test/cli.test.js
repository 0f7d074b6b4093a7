"use strict";
// The `batchlab` command as a user runs it: `notebook` (what `npm start` runs) serves the
// tutorials with the real Jupyter Notebook on 127.0.0.1 and registers the kernelspec; `preview`
// writes a grid PNG and an HTML page; `bench` prints throughput; bad options fail with a message
// naming the option and value, and exit code 1.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn, spawnSync } = require("node:child_process");
const { decode } = require("fast-png");
const { makeSandbox, freePort, ROOT } = require("./helpers/jupyter");

const BIN = path.join(ROOT, "bin", "batchlab.js");

function cli(args, opts = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 120000, ...opts });
}

/** pids of the processes whose parent is `ppid` (Linux /proc). */
function childrenOf(ppid) {
  const out = [];
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === ppid) out.push(Number(p));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

test("notebook: serves the notebook folder on 127.0.0.1 with a token kept off the command line, with the kernelspec registered; SIGTERM stops it", { timeout: 90000 }, async () => {
  const sb = makeSandbox();
  // makeSandbox installs the spec itself; remove it so the command's own registration is tested.
  fs.rmSync(sb.kernelDir, { recursive: true, force: true });
  fs.writeFileSync(path.join(sb.notebookDir, "hello.ipynb"), JSON.stringify({ cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 }));
  const port = await freePort();
  const proc = spawn(process.execPath, [BIN, "notebook", "--port", String(port), "--dir", sb.notebookDir], { env: sb.env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  let server = null;
  try {
    const deadline = Date.now() + 60000;
    let m;
    while (!(m = /(http:\/\/127\.0\.0\.1:(\d+)\/)tree\?token=([\w-]+)/.exec(out))) {
      if (proc.exitCode !== null) assert.fail(`batchlab notebook exited early:\n${out}\n${err}`);
      if (Date.now() > deadline) assert.fail(`no URL printed within 60 s:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const [, base, p, token] = m;
    assert.equal(Number(p), port);
    // The Jupyter server's command line (world-readable in /proc) does not hold the token, nor does
    // its environment (kernels inherit it): it read it from a private file, gone once it was read.
    const servers = childrenOf(proc.pid).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("notebook"));
    assert.equal(servers.length, 1, `one Jupyter server child of ${proc.pid}: ${servers}`);
    server = servers[0];
    const cmdline = fs.readFileSync(`/proc/${server}/cmdline`, "utf8").split("\0");
    assert.ok(cmdline.some((a) => a === "notebook"), cmdline.join(" "));
    assert.ok(!cmdline.join(" ").includes(token), `the token is on the command line: ${cmdline.join(" ")}`);
    const environ = fs.readFileSync(`/proc/${server}/environ`, "utf8").split("\0");
    assert.ok(!environ.some((e) => e.includes(token)), "the token is not in the server's environment");
    const tokenFile = environ.find((e) => e.startsWith("JUPYTER_TOKEN_FILE="));
    assert.ok(tokenFile, "the server was given JUPYTER_TOKEN_FILE");
    assert.equal(fs.existsSync(tokenFile.slice("JUPYTER_TOKEN_FILE=".length)), false, "the token file is removed once the server read it");
    assert.match(out, /kernelspec "batchlab" registered in /);
    const auth = { headers: { Authorization: `token ${token}` } };
    const specs = await (await fetch(`${base}api/kernelspecs`, auth)).json();
    assert.equal(specs.kernelspecs.batchlab.spec.display_name, "TypeScript (batchlab)");
    const contents = await (await fetch(`${base}api/contents`, auth)).json();
    assert.deepEqual(
      contents.content.map((c) => c.name),
      ["hello.ipynb"],
    );
    assert.equal((await fetch(`${base}api/contents`)).status, 403, "the token is required");
    assert.equal((await fetch(`${base}api/contents`, { headers: { Authorization: "token wrong-token-123" } })).status, 403, "a wrong token is refused");
    assert.equal((await fetch(`${base}api/contents?token=${token}`)).status, 200, "the token in the URL is accepted");
    // Bound to loopback only: the machine's other addresses refuse the connection.
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === "IPv4" && !a.internal);
    if (external) {
      await assert.rejects(fetch(`http://${external.address}:${port}/api/status`), "not reachable on " + external.address);
    }
  } finally {
    proc.kill("SIGTERM");
    const { code, signal } = await exited;
    sb.cleanup();
    // batchlab handles SIGTERM: it stops the Jupyter server, waits for it and exits 0
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, err.slice(-2000));
    if (server) assert.ok(!fs.existsSync(`/proc/${server}`) || /\) [ZX] /.test(fs.readFileSync(`/proc/${server}/stat`, "utf8")), `the Jupyter server ${server} was stopped too`);
  }
});

test("notebook: bad options are named", () => {
  let r = cli(["notebook", "--port", "http"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--port must be an integer from 1 to 65535, got "http"/);
  r = cli(["notebook", "--dir", "/nonexistent/notebooks"]);
  assert.match(r.stderr, /--dir "\/nonexistent\/notebooks" is not a directory/);
  r = cli(["notebook", "--python", "/nonexistent/python3"]);
  assert.match(r.stderr, /\/nonexistent\/python3 cannot import Jupyter Notebook/);
  r = cli(["notebook", "--dir"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^batchlab notebook: --dir needs a value\nusage: batchlab notebook/);
  r = cli(["notebook", "--frobnicate=1"]);
  assert.match(r.stderr, /^batchlab notebook: unknown option "--frobnicate=1"\nusage: batchlab notebook/);
});

test("preview: a PNG grid of an augmented batch and an HTML page with the augmentation strip", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-preview-"));
  try {
    const png = path.join(dir, "grid.png");
    let r = cli(["preview", "--out", png, "--index", "3", "--seed", "5"]);
    assert.equal(r.status, 0, r.stderr);
    const img = decode(fs.readFileSync(png));
    assert.ok(img.width >= 8 * 28 && img.height >= 8 * 28, `${img.width}x${img.height}`);
    const html = path.join(dir, "page.html");
    r = cli(["preview", "--out", html, "--n", "4"]);
    assert.equal(r.status, 0, r.stderr);
    const page = fs.readFileSync(html, "utf8");
    assert.equal((page.match(/<img [^>]*src="data:image\/png;base64,/g) || []).length, 2, "the strip and the grid");
    assert.match(page, /label 9 \(Ankle boot\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("preview and bench: bad options are named with the value and what was expected", () => {
  let r = cli(["preview", "--n", "0"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--n must be an integer from 1 to 64, got "0"/);
  r = cli(["preview", "--out", "x.jpg"]);
  assert.match(r.stderr, /--out must end in .html or .png, got ".*x.jpg"/);
  r = cli(["preview", "--cifar10", "/nonexistent"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\/nonexistent/);
  r = cli(["bench", "--backend", "gpu"]);
  assert.match(r.stderr, /--backend must be native, reference or both, got "gpu"/);
  r = cli(["bench", "--frobnicate"]);
  assert.match(r.stderr, /unknown option "--frobnicate"/);
  r = cli(["bench", "--epochs"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^batchlab bench: --epochs needs a value$/m);
  r = cli(["preview", "--n=0"]);
  assert.match(r.stderr, /--n must be an integer from 1 to 64, got "0"/);
  r = cli(["frobnicate"]);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test("bench: an epoch of Fashion-MNIST on the reference engine, every class counted", { timeout: 120000 }, () => {
  const r = cli(["bench", "--backend", "reference", "--batch-size", "1000"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /reference: 1 epoch\(s\), 60 batches of 1000, \d+ threads: [\d,]+ images\/s/);
  assert.match(r.stdout, /class counts: T-shirt\/top 6000, Trouser 6000/);
});

test("doctor: names the CPU engine, CUDA and the kernel build, as the library sees them", () => {
  const r = cli(["doctor"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /CPU engine: (native|reference) \(.+\)/);
  // what the library itself says about CUDA on this machine
  const { cuda } = require("../dist");
  if (cuda.available()) assert.match(r.stdout, /^CUDA: available: \S/m);
  else assert.ok(r.stdout.includes(`CUDA: unavailable (${cuda.unavailableReason()})`), r.stdout);
  assert.match(r.stdout, /Jupyter kernel: built/);
  // which decoder JPEGs get
  const jpeg = require("../dist/data").jpegDecoder();
  assert.match(r.stdout, jpeg.native ? /^JPEG decoder: libjpeg-turbo [\d.]+ in batchlab's native pool; PNG decoder: sharp/m : /^JPEG decoder: sharp \(libvips\) \(native decode unavailable: .+\)/m);
  const viaSharp = cli(["doctor"], { env: { ...process.env, BATCHLAB_DECODER: "sharp" } });
  assert.match(viaSharp.stdout, /^JPEG decoder: sharp \(libvips\) \(native decode unavailable: forced: BATCHLAB_DECODER=sharp\)/m);
  // where the steps of common chains run, and why not fused
  assert.match(r.stdout, /^CIFAR training: RandomCrop fused, RandomHorizontalFlip fused, ToTensor fused, Normalize fused$/m);
  assert.match(r.stdout, /^SimCLR-style: .*ColorJitter fused.*RandomSolarize fused/m);
  assert.match(r.stdout, /^RandAugment: RandomResizedCrop fused, RandomHorizontalFlip fused, RandAugment fused, ToTensor fused, Normalize fused$/m);
  assert.match(r.stdout, /^AugMix: RandomResizedCrop fused, RandomHorizontalFlip fused, AugMix fused, ToTensor fused, Normalize fused$/m);
  assert.match(r.stdout, /^Random order: RandomResizedCrop fused, RandomOrder step by step, ToTensor step by step/m);
  assert.match(r.stdout, /^  RandomOrder: its steps are chosen per sample/m);
  // a forced engine is the one named, with the reason
  const forced = cli(["doctor"], { env: { ...process.env, BATCHLAB_BACKEND: "reference" } });
  assert.match(forced.stdout, /^CPU engine: reference \(.*BATCHLAB_BACKEND=reference\)$/m);
});

test("one-way: require('batchlab') and the library's CLI load no Jupyter code, and the kernel's CLI does not load the library's CLI", () => {
  const probe = (files) => {
    const code =
      `for (const f of ${JSON.stringify(files)}) require(f);\n` +
      `const loaded = Object.keys(require.cache).map((f) => require("node:path").relative(${JSON.stringify(ROOT)}, f));\n` +
      `process.stdout.write(JSON.stringify(loaded));`;
    const r = spawnSync(process.execPath, ["-e", code], { encoding: "utf8", cwd: ROOT });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const jupyter = (f) => /^dist-kernel\/|node_modules\/(tslab|@tslab|zeromq|plotly\.js-dist-min|@jupyterlab)\//.test(f);
  const lib = probe([path.join(ROOT, "dist", "index.js"), path.join(ROOT, "dist", "cli.js")]);
  assert.ok(lib.includes(path.join("dist", "index.js")) && lib.includes(path.join("dist", "cli.js")));
  assert.deepEqual(lib.filter(jupyter), []);
  const kernel = probe([path.join(ROOT, "dist-kernel", "cli.js")]);
  assert.ok(kernel.includes(path.join("dist-kernel", "server.js")));
  assert.ok(!kernel.includes(path.join("dist", "cli.js")), "the kernel does not load the library's CLI");
});

test("the Jupyter commands are dispatched to the kernel's CLI; help lists every command", () => {
  let r = cli(["kernel"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^batchlab kernel: missing <connection_file>/);
  r = cli(["install", "--frobnicate"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^batchlab install: unknown argument "--frobnicate"/);
  r = cli(["help"]);
  assert.equal(r.status, 0);
  for (const cmd of ["notebook", "install", "kernel", "bench", "preview", "doctor"]) assert.match(r.stdout, new RegExp(`^  ${cmd}\\b`, "m"));
});
