"use strict";
// The kernel process spoken to directly over ZeroMQ (no Jupyter server): protocol details a
// front end does not exercise through @jupyterlab/services.
const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const { spawnKernel } = require("./helpers/jupyter");

let k;

test.before(async () => {
  k = await spawnKernel();
  await k.client.ready(60000);
});

test.after(async () => {
  if (k) await k.stop();
});

const T = { timeout: 60000 };

test("interrupt_request on the control channel interrupts like SIGINT", T, async () => {
  let started;
  const startedP = new Promise((r) => (started = r));
  const run = k.client.execute(`let n = 0;\nwhile (true) { await new Promise((r) => setTimeout(r, 1)); if (++n === 3) console.log("running"); }`, (m) => {
    if (m.header.msg_type === "stream" && m.content.text.includes("running")) started();
  });
  await startedP;
  const irq = await k.client.request("control", "interrupt_request", {});
  assert.equal(irq.reply.header.msg_type, "interrupt_reply");
  assert.equal(irq.reply.content.status, "ok");
  const r = await run;
  assert.equal(r.reply.content.ename, "Interrupted");
  // n was declared in the interrupted cell: it stays declared, with its value
  const after = await k.client.execute(`n > 0`);
  assert.equal(after.iopub.find((m) => m.header.msg_type === "execute_result").content.data["text/plain"], "true", JSON.stringify(after.iopub));
});

test("silent execution publishes no execute_input or result and keeps the execution count", T, async () => {
  const before = (await k.client.execute(`1`)).reply.content.execution_count;
  const silent = await k.client.request("shell", "execute_request", { code: "console.log('quiet'); 42", silent: true, store_history: false, user_expressions: {}, allow_stdin: false });
  assert.equal(silent.reply.content.status, "ok");
  const types = silent.iopub.map((m) => m.header.msg_type);
  assert.ok(!types.includes("execute_input") && !types.includes("execute_result"), types.join(","));
  const next = (await k.client.execute(`2`)).reply.content.execution_count;
  assert.equal(next, before + 1);
});

test("is_complete, history and comm_open are answered", T, async () => {
  const open = await k.client.request("shell", "is_complete_request", { code: "function f() {" });
  assert.equal(open.reply.content.status, "incomplete");
  const done = await k.client.request("shell", "is_complete_request", { code: "const a = 1;" });
  assert.equal(done.reply.content.status, "complete");
  const hist = await k.client.request("shell", "history_request", { output: false, raw: true, hist_access_type: "tail", n: 10 });
  assert.deepEqual(hist.reply.content, { status: "ok", history: [] });
  // comm_open has no reply, only iopub messages: wait for its idle status
  const commId = crypto.randomUUID();
  const header = k.client.protocol.makeHeader("comm_open", k.client.session);
  const iopub = [];
  const idle = new Promise((resolve) => k.client.waiters.set(header.msg_id, { iopub, idle: resolve }));
  k.client.shell.send(k.client.protocol.encode({ identities: [], header, parent_header: {}, metadata: {}, content: { comm_id: commId, target_name: "jupyter.widget", data: {} }, buffers: [] }, k.client.signer));
  await idle;
  const close = iopub.find((m) => m.header.msg_type === "comm_close");
  assert.ok(close, JSON.stringify(iopub.map((m) => m.header.msg_type)));
  assert.equal(close.content.comm_id, commId);
});

test("a message with a bad signature is dropped and the kernel keeps serving", T, async () => {
  const header = k.client.protocol.makeHeader("execute_request", k.client.session);
  const frames = k.client.protocol.encode({ identities: [], header, parent_header: {}, metadata: {}, content: { code: "globalThis.tampered = true" }, buffers: [] }, k.client.signer);
  frames[frames.indexOf("<IDS|MSG>") + 1] = "0".repeat(64);
  k.client.shell.send(frames);
  const r = await k.client.execute(`(globalThis as any).tampered === true`);
  assert.equal(r.iopub.find((m) => m.header.msg_type === "execute_result").content.data["text/plain"], "false");
});

test("shutdown_request on the shell channel replies and the process exits", T, async () => {
  const other = await spawnKernel();
  try {
    await other.client.ready(60000);
    const exited = new Promise((r) => other.proc.once("exit", (code) => r(code)));
    const r = await other.client.request("shell", "shutdown_request", { restart: false });
    assert.equal(r.reply.header.msg_type, "shutdown_reply");
    assert.deepEqual(r.reply.content, { status: "ok", restart: false });
    assert.equal(await exited, 0);
  } finally {
    await other.stop();
  }
});

test("the kernel exits when the process named by JPY_PARENT_PID is gone", T, async () => {
  const parent = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  const orphan = await spawnKernel({ env: { ...process.env, JPY_PARENT_PID: String(parent.pid) } });
  try {
    await orphan.client.ready(60000);
    const exited = new Promise((r) => orphan.proc.once("exit", (code) => r(code)));
    parent.kill("SIGKILL");
    assert.equal(await exited, 0);
    assert.match(orphan.stderr(), new RegExp(`parent process ${parent.pid} is gone`));
  } finally {
    parent.kill("SIGKILL");
    await orphan.stop();
  }
});

test("`batchlab kernel <connection_file>` (the CLI command) runs the same kernel", T, async () => {
  const path = require("node:path");
  const { ROOT } = require("./helpers/jupyter");
  const cli = await spawnKernel({ argv: [process.execPath, path.join(ROOT, "bin", "batchlab.js"), "kernel", "{connection_file}"] });
  try {
    await cli.client.ready(60000);
    const info = await cli.client.request("shell", "kernel_info_request", {});
    assert.equal(info.reply.content.implementation, "batchlab");
    const r = await cli.client.execute(`const s: string = "cli"; s.length`);
    assert.equal(r.iopub.find((m) => m.header.msg_type === "execute_result").content.data["text/plain"], "3");
  } finally {
    await cli.stop();
  }
  assert.equal(cli.proc.exitCode, 0, cli.stderr());
});
