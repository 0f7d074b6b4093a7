"use strict";
/**
 * Test helpers for the kernel: a sandboxed Jupyter environment (temporary data, config and
 * runtime directories and HOME, so nothing touches the user's Jupyter setup), a Jupyter server on
 * 127.0.0.1, @jupyterlab/services clients, headless notebook execution with nbconvert/nbclient,
 * and a small ZeroMQ client speaking the wire protocol directly (used by bench/kernel.js).
 *
 * Jupyter is Debian's (/usr/bin/python3): the `python3` on PATH may be another interpreter.
 */
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const net = require("node:net");
const crypto = require("node:crypto");
const { spawn, execFileSync } = require("node:child_process");

const ROOT = path.resolve(__dirname, "..", "..");
const PYTHON = process.env.BATCHLAB_JUPYTER_PYTHON || "/usr/bin/python3";
const KERNEL_DIST = path.join(ROOT, "dist-kernel");

function newestMtime(dir, ext) {
  let newest = 0;
  let count = 0;
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!f.endsWith(ext)) continue;
    count++;
    newest = Math.max(newest, fs.statSync(path.join(dir, f)).mtimeMs);
  }
  return count ? newest : -1;
}

/** Compile kernel/ into dist-kernel/ when the sources are newer, so tests run the current code. */
let built = false;
function buildKernel() {
  if (built) return;
  const src = newestMtime(path.join(ROOT, "kernel"), ".ts");
  const out = newestMtime(KERNEL_DIST, ".js");
  if (out >= 0 && out >= src && fs.existsSync(path.join(KERNEL_DIST, "main.js"))) {
    built = true;
    return;
  }
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(ROOT, "kernel", "tsconfig.json")], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  built = true;
}

function kernelModule(name) {
  buildKernel();
  return require(path.join(KERNEL_DIST, name));
}

/**
 * A temporary Jupyter world: { dir, env, notebookDir, kernelsDir, cleanup() }.
 * The batchlab kernelspec is installed into its data dir (as `batchlab install --user` would).
 */
function makeSandbox(opts = {}) {
  buildKernel();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-jupyter-"));
  const env = {
    ...process.env,
    HOME: path.join(dir, "home"),
    JUPYTER_DATA_DIR: path.join(dir, "data"),
    JUPYTER_CONFIG_DIR: path.join(dir, "config"),
    JUPYTER_RUNTIME_DIR: path.join(dir, "runtime"),
    JUPYTER_PATH: path.join(dir, "data"),
    JUPYTER_PLATFORM_DIRS: "1",
    IPYTHONDIR: path.join(dir, "ipython"),
    PYTHONNOUSERSITE: "1",
    XDG_DATA_HOME: path.join(dir, "home", ".local", "share"),
    XDG_CONFIG_HOME: path.join(dir, "home", ".config"),
    XDG_RUNTIME_DIR: path.join(dir, "runtime"),
  };
  delete env.JUPYTER_CONFIG_PATH;
  for (const k of ["home", "data", "config", "runtime", "ipython", "notebooks"]) fs.mkdirSync(path.join(dir, k), { recursive: true });
  const notebookDir = path.join(dir, "notebooks");
  const install = kernelModule("install.js");
  const kernelDir = install.installKernelSpec(install.parseInstallArgs(["--user", ...(opts.installArgs || [])]), env);
  return {
    dir,
    env,
    notebookDir,
    kernelDir,
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function tryListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

const usedPorts = new Set();
/**
 * A free TCP port on 127.0.0.1, drawn below Linux's ephemeral range (32768+). A port from that
 * range can be taken meanwhile by the local end of an outgoing connection, including ZeroMQ's
 * own reconnect attempts to a kernel that has not bound yet (a TCP self-connect).
 */
async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + crypto.randomInt(12000);
    if (usedPorts.has(port)) continue;
    if (await tryListen(port)) {
      usedPorts.add(port);
      return port;
    }
  }
  throw new Error("no free port found in 20000-31999");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `promise`, or `fallback` once `ms` passed, whichever comes first. The timer is cleared as soon
 * as the promise settles, so a long timeout keeps nothing pending (the test process can exit).
 */
function within(promise, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Start `jupyter server` bound to 127.0.0.1 in the sandbox (`extraArgs`: more --ServerApp
 * options). Returns
 * { baseUrl, token, proc, log(), stop() }.
 */
async function startServer(sandbox, { timeoutMs = 60000, extraArgs = [] } = {}) {
  const port = await freePort();
  const token = crypto.randomBytes(16).toString("hex");
  const args = [
    "-m",
    "jupyter_server",
    "--ServerApp.ip=127.0.0.1",
    `--ServerApp.port=${port}`,
    "--ServerApp.port_retries=0",
    `--ServerApp.token=${token}`,
    "--ServerApp.open_browser=False",
    `--ServerApp.root_dir=${sandbox.notebookDir}`,
    "--ServerApp.allow_remote_access=False",
    ...extraArgs,
  ];
  // CI and containers often run as root, which jupyter refuses without this flag.
  if (typeof process.getuid === "function" && process.getuid() === 0) args.push("--ServerApp.allow_root=True");
  const proc = spawn(PYTHON, args, { cwd: sandbox.notebookDir, env: sandbox.env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout.on("data", (d) => (output += d));
  proc.stderr.on("data", (d) => (output += d));
  const baseUrl = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + timeoutMs;
  let exited = null;
  proc.on("exit", (code, sig) => (exited = { code, sig }));
  for (;;) {
    if (exited) throw new Error(`jupyter server exited (${JSON.stringify(exited)}):\n${output}`);
    try {
      const r = await fetch(`${baseUrl}api/status`, { headers: { Authorization: `token ${token}` } });
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`jupyter server did not answer on ${baseUrl} within ${timeoutMs} ms:\n${output}`);
    }
    await sleep(150);
  }
  return {
    baseUrl,
    token,
    proc,
    log: () => output,
    async stop() {
      if (exited) return;
      const done = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 10000);
      await done;
      clearTimeout(t);
    },
  };
}

/** @jupyterlab/services bound to a server started by startServer: { services, settings, kernels }. */
function servicesFor(server) {
  const services = require("@jupyterlab/services");
  const WebSocket = require("ws");
  const settings = services.ServerConnection.makeSettings({
    baseUrl: server.baseUrl,
    wsUrl: server.baseUrl.replace(/^http/, "ws"),
    token: server.token,
    appendToken: true,
    WebSocket,
    fetch,
    Request,
    Headers,
  });
  const kernels = new services.KernelManager({ serverSettings: settings });
  return { services, settings, kernels };
}

/**
 * Execute `code` on a services kernel connection. Resolves with
 * { reply, iopub: [messages other than status/execute_input], byType(type) }.
 */
async function execute(kernel, code, opts = {}) {
  const future = kernel.requestExecute({ code, stop_on_error: opts.stopOnError ?? true, ...(opts.content || {}) });
  const iopub = [];
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t !== "status" && t !== "execute_input") iopub.push(msg);
    if (opts.onIOPub) opts.onIOPub(msg);
  };
  if (opts.onStart) opts.onStart(future);
  const reply = await future.done;
  future.dispose();
  return { reply, iopub, byType: (t) => iopub.filter((m) => m.header.msg_type === t) };
}

/** Text of all stream messages of one name in an execute() result. */
function streamText(result, name = "stdout") {
  return result.iopub
    .filter((m) => m.header.msg_type === "stream" && m.content.name === name)
    .map((m) => m.content.text)
    .join("");
}

/** A notebook (nbformat 4) with these code cells. */
function notebook(cells, kernelName = "batchlab") {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: kernelName, display_name: "TypeScript (batchlab)", language: "typescript" },
      language_info: { name: "typescript" },
    },
    cells: cells.map((source, i) => ({
      cell_type: "code",
      id: `cell-${i}`,
      metadata: {},
      execution_count: null,
      outputs: [],
      source,
    })),
  };
}

/**
 * Execute a notebook headless with nbconvert (nbclient underneath) in the sandbox and return
 * the executed notebook. `to: "html"` also returns the HTML export's path.
 */
function runNotebook(sandbox, nb, { name = "nb", allowErrors = false, timeout = 120, to = "notebook", kernelName = "batchlab", dir = sandbox.notebookDir } = {}) {
  const input = path.join(dir, `${name}.ipynb`);
  fs.writeFileSync(input, JSON.stringify(nb, null, 1));
  const args = [
    "-m",
    "nbconvert",
    "--to",
    to,
    "--execute",
    `--ExecutePreprocessor.kernel_name=${kernelName}`,
    `--ExecutePreprocessor.timeout=${timeout}`,
    "--output",
    `${name}.out`,
    input,
  ];
  if (allowErrors) args.splice(4, 0, "--allow-errors");
  try {
    execFileSync(PYTHON, args, { cwd: dir, env: sandbox.env, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    throw new Error(`nbconvert --execute failed:\n${e.stderr ? e.stderr.toString() : e.message}`);
  }
  if (to === "html") return { htmlPath: path.join(dir, `${name}.out.html`) };
  return JSON.parse(fs.readFileSync(path.join(dir, `${name}.out.ipynb`), "utf8"));
}

// ------------------------------------------------------------------------------------------
// A direct ZeroMQ client (no Jupyter server): for the start-up benchmark and protocol tests.

/** Write a connection file with free ports; returns { file, info }. */
async function makeConnectionFile(dir) {
  const ports = [];
  for (let i = 0; i < 5; i++) ports.push(await freePort());
  const info = {
    transport: "tcp",
    ip: "127.0.0.1",
    shell_port: ports[0],
    iopub_port: ports[1],
    stdin_port: ports[2],
    control_port: ports[3],
    hb_port: ports[4],
    key: crypto.randomBytes(16).toString("hex"),
    signature_scheme: "hmac-sha256",
    kernel_name: "batchlab",
  };
  const file = path.join(dir, `kernel-${process.pid}-${Date.now()}.json`);
  fs.writeFileSync(file, JSON.stringify(info));
  return { file, info };
}

class WireClient {
  constructor(info) {
    const zmq = require("zeromq");
    const protocol = kernelModule("protocol.js");
    this.protocol = protocol;
    this.info = info;
    this.signer = new protocol.Signer(info.key, info.signature_scheme);
    this.session = crypto.randomUUID();
    this.shell = new zmq.Dealer({ linger: 0 });
    this.control = new zmq.Dealer({ linger: 0 });
    this.iopub = new zmq.Subscriber({ linger: 0 });
    const addr = (p) => `${info.transport}://${info.ip}:${p}`;
    this.shell.connect(addr(info.shell_port));
    this.control.connect(addr(info.control_port));
    this.iopub.connect(addr(info.iopub_port));
    this.iopub.subscribe();
    this.waiters = new Map(); // parent msg_id -> { iopub: [], idle: resolve }
    this.replies = new Map();
    this.closed = false;
    this._pump(this.iopub, (m) => {
      const id = m.parent_header && m.parent_header.msg_id;
      const w = id && this.waiters.get(id);
      if (!w) return;
      w.iopub.push(m);
      if (w.onIOPub) w.onIOPub(m);
      if (m.header.msg_type === "status" && m.content.execution_state === "idle") w.idle();
    });
    for (const sock of [this.shell, this.control]) {
      this._pump(sock, (m) => {
        const id = m.parent_header && m.parent_header.msg_id;
        const r = id && this.replies.get(id);
        if (r) r(m);
      });
    }
  }

  async _pump(sock, onMessage) {
    try {
      for await (const frames of sock) onMessage(this.protocol.decode(frames, this.signer));
    } catch (e) {
      if (!this.closed) throw e;
    }
  }

  /**
   * Wait until the kernel answers on shell and its iopub messages reach us: a SUB socket only
   * receives what is published after its subscription arrived, so (like jupyter_client) send
   * kernel_info requests until one's idle status comes through. Resolves with the time of the
   * first kernel_info_reply (performance.now()).
   */
  async ready(timeoutMs = 30000) {
    const deadline = performance.now() + timeoutMs;
    let firstReply = null;
    for (;;) {
      const header = this.protocol.makeHeader("kernel_info_request", this.session);
      const seen = new Promise((resolve) => this.waiters.set(header.msg_id, { iopub: [], idle: () => resolve(true) }));
      const reply = new Promise((resolve) => this.replies.set(header.msg_id, resolve));
      this.shell.send(this.protocol.encode({ identities: [], header, parent_header: {}, metadata: {}, content: {}, buffers: [] }, this.signer));
      const left = () => Math.max(0, deadline - performance.now());
      const r = await within(reply, left(), null);
      if (!r) throw new Error(`no kernel_info_reply within ${timeoutMs} ms`);
      if (firstReply === null) firstReply = performance.now();
      const idle = await within(seen, Math.min(200, left()), false);
      this.waiters.delete(header.msg_id);
      this.replies.delete(header.msg_id);
      if (idle) return firstReply;
      if (left() === 0) throw new Error(`iopub messages did not arrive within ${timeoutMs} ms`);
    }
  }

  /**
   * Send a request; resolves with { reply, iopub } once both the reply and the idle status came.
   * `onIOPub` sees each iopub message of the request as it arrives.
   */
  request(channel, msgType, content, onIOPub) {
    const header = this.protocol.makeHeader(msgType, this.session);
    const msg = { identities: [], header, parent_header: {}, metadata: {}, content, buffers: [] };
    const iopub = [];
    const idle = new Promise((resolve) => this.waiters.set(header.msg_id, { iopub, idle: resolve, onIOPub }));
    const reply = new Promise((resolve) => this.replies.set(header.msg_id, resolve));
    const sock = channel === "control" ? this.control : this.shell;
    sock.send(this.protocol.encode(msg, this.signer));
    return Promise.all([reply, idle]).then(([r]) => {
      this.waiters.delete(header.msg_id);
      this.replies.delete(header.msg_id);
      return { reply: r, iopub };
    });
  }

  execute(code, onIOPub) {
    return this.request("shell", "execute_request", { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true }, onIOPub);
  }

  close() {
    this.closed = true;
    for (const s of [this.shell, this.control, this.iopub]) s.close();
  }
}

/**
 * Spawn a kernel process (argv from the installed kernelspec style) on a fresh connection file.
 * Returns { proc, info, client: WireClient, stderr(), stop() }.
 */
async function spawnKernel({ argv, cwd, env } = {}) {
  buildKernel();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-conn-"));
  const { file, info } = await makeConnectionFile(dir);
  const cmd = (argv || [process.execPath, path.join(KERNEL_DIST, "main.js"), "{connection_file}"]).map((a) => (a === "{connection_file}" ? file : a));
  const proc = spawn(cmd[0], cmd.slice(1), { cwd: cwd || dir, env: env || process.env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  proc.stdout.on("data", (d) => (stderr += d));
  const client = new WireClient(info);
  return {
    proc,
    info,
    client,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        try {
          await within(client.request("control", "shutdown_request", { restart: false }), 3000);
        } catch {
          /* fall through to kill */
        }
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      client.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Register plain tslab (the kernel batchlab builds on) in the sandbox as kernelspec "tslab". */
function installPlainTslab(sandbox) {
  const dir = path.join(sandbox.env.JUPYTER_DATA_DIR, "kernels", "tslab");
  fs.mkdirSync(dir, { recursive: true });
  const argv = [process.execPath, path.join(ROOT, "node_modules", "tslab", "bin", "tslab"), "kernel", "--config-path", "{connection_file}"];
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify({ argv, display_name: "TypeScript (tslab)", language: "typescript" }));
  return dir;
}

module.exports = {
  installPlainTslab,
  ROOT,
  PYTHON,
  KERNEL_DIST,
  buildKernel,
  kernelModule,
  makeSandbox,
  startServer,
  servicesFor,
  execute,
  streamText,
  notebook,
  runNotebook,
  makeConnectionFile,
  WireClient,
  spawnKernel,
  freePort,
  sleep,
  within,
};
