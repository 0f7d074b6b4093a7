"use strict";
// The kernel process spoken to directly over ZeroMQ (no Jupyter server): protocol details a
// front end does not exercise through @jupyterlab/services.
const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const { spawnKernel, within } = require("./helpers/jupyter");

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
  await k.client.execute("40 + 2");
  const hist = await k.client.request("shell", "history_request", { output: false, raw: true, hist_access_type: "tail", n: 1 });
  assert.equal(hist.reply.content.status, "ok");
  assert.deepEqual(hist.reply.content.history.map((h) => h[2]), ["40 + 2"]);
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

test("is_complete: unterminated at the end is incomplete, a syntax error before the end is invalid", T, async () => {
  const status = async (code) => (await k.client.request("shell", "is_complete_request", { code })).reply.content.status;
  for (const code of ["const = ;", "let x = ) 1;", "1 +* 2;", "const a = 1 1;", "}"]) assert.equal(await status(code), "invalid", code);
  for (const code of ["function f() {", "const a = [1,", "1 +", "const s = `abc", "/* open comment"]) assert.equal(await status(code), "incomplete", code);
  for (const code of ["const b = 1;", "f(1)", "class A {}", ""]) assert.equal(await status(code), "complete", code);
});

test("history: tail, range and glob search (with unique and n) over this session's cells, with outputs", T, async () => {
  const marker = `hist_${Date.now()}`;
  const codes = [`"${marker}_a"`, `"${marker}_b"`, `"${marker}_a"`];
  const counts = [];
  for (const c of codes) counts.push((await k.client.execute(c)).reply.content.execution_count);
  await k.client.request("shell", "execute_request", { code: `"${marker}_silent"`, silent: true, store_history: false });
  const hist = async (content) => {
    const r = await k.client.request("shell", "history_request", { output: false, raw: true, ...content });
    assert.equal(r.reply.header.msg_type, "history_reply");
    assert.equal(r.reply.content.status, "ok", JSON.stringify(r.reply.content));
    return r.reply.content.history;
  };
  const tail = await hist({ hist_access_type: "tail", n: 3 });
  assert.deepEqual(tail.map((h) => h[2]), codes);
  assert.deepEqual(tail.map((h) => h[1]), counts);
  const session = tail[0][0];
  assert.ok(Number.isInteger(session));
  const withOut = await hist({ hist_access_type: "tail", n: 1, output: true });
  assert.deepEqual(withOut[0][2], [codes[2], `'${marker}_a'`]);
  const range = await hist({ hist_access_type: "range", session, start: counts[1], stop: counts[2] });
  assert.deepEqual(range, [[session, counts[1], codes[1]]]);
  assert.deepEqual(await hist({ hist_access_type: "range", session: session + 7, start: 1, stop: 1000 }), []);
  assert.equal((await hist({ hist_access_type: "search", pattern: `"${marker}_*` })).length, 3);
  assert.deepEqual((await hist({ hist_access_type: "search", pattern: `"${marker}_?"`, unique: true })).map((h) => h[2]), [codes[1], codes[2]]);
  assert.deepEqual((await hist({ hist_access_type: "search", pattern: `*${marker}_[a]*`, n: 1 })).map((h) => h[1]), [counts[2]]);
  assert.deepEqual(await hist({ hist_access_type: "search", pattern: `*${marker}_silent*` }), [], "silent cells are not stored");
});

test("a replayed message (the same signed frames sent again) is refused and logged, and runs once", T, async () => {
  const header = k.client.protocol.makeHeader("execute_request", k.client.session);
  const content = { code: "(globalThis as any).replayed = ((globalThis as any).replayed ?? 0) + 1", silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true };
  const frames = k.client.protocol.encode({ identities: [], header, parent_header: {}, metadata: {}, content, buffers: [] }, k.client.signer);
  const replies = [];
  k.client.replies.set(header.msg_id, (m) => replies.push(m));
  for (let i = 0; i < 3; i++) await k.client.shell.send(frames);
  // the shell queue is in order: by this reply, all three copies were received
  const r = await k.client.execute(`(globalThis as any).replayed`);
  k.client.replies.delete(header.msg_id);
  assert.equal(r.iopub.find((m) => m.header.msg_type === "execute_result").content.data["text/plain"], "1");
  assert.equal(replies.length, 1, "one execute_reply, for the first copy only");
  assert.equal((k.stderr().match(new RegExp(`dropped a replayed message.*${header.msg_id}`, "g")) || []).length, 2, k.stderr());
});

test("signed but malformed requests each get their *_reply with status error naming the field, value and expectation", T, async () => {
  const cases = [
    ["execute_request", { code: 42 }, "execute_reply", /content\.code must be a string \(the cell's source\), got 42 \(number\)/],
    ["execute_request", { code: { a: 1 } }, "execute_reply", /content\.code must be a string.*, got \{ a: 1 \} \(object\)/],
    ["execute_request", { code: "1", silent: "no" }, "execute_reply", /content\.silent must be a boolean, got 'no' \(string\)/],
    ["complete_request", {}, "complete_reply", /complete_request: content\.code is missing; expected a string/],
    ["complete_request", { code: "ab", cursor_pos: 9 }, "complete_reply", /cursor_pos must be from 0 to 2 .*got 9/],
    ["is_complete_request", { code: null }, "is_complete_reply", /is_complete_request: content\.code must be a string .*got null \(null\)/],
    ["inspect_request", { code: "x", cursor_pos: "1" }, "inspect_reply", /inspect_request: content\.cursor_pos must be an integer offset into code, got '1' \(string\)/],
    ["inspect_request", { code: ["x"], cursor_pos: 0 }, "inspect_reply", /content\.code must be a string .*got \[ 'x' \] \(array\)/],
    ["history_request", { hist_access_type: "everything" }, "history_reply", /content\.hist_access_type must be "tail", "range" or "search", got 'everything'/],
    ["history_request", { hist_access_type: "tail", n: "10" }, "history_reply", /content\.n must be a non-negative integer, got '10' \(string\)/],
    ["history_request", { hist_access_type: "search", pattern: 5 }, "history_reply", /content\.pattern must be a glob pattern string, got 5 \(number\)/],
  ];
  const before = (await k.client.execute("1")).reply.content.execution_count;
  for (const [type, content, replyType, re] of cases) {
    const r = await within(k.client.request("shell", type, content), 20000, null);
    assert.ok(r, `no reply to ${type} ${JSON.stringify(content)}`);
    assert.equal(r.reply.header.msg_type, replyType);
    assert.equal(r.reply.content.status, "error", JSON.stringify(r.reply.content));
    assert.equal(r.reply.content.ename, "InvalidRequest");
    assert.match(r.reply.content.evalue, re);
    if (type === "execute_request") {
      assert.equal(r.reply.content.execution_count, before, "nothing ran");
      assert.ok(r.iopub.some((m) => m.header.msg_type === "error"), "the error is shown too");
    }
  }
  // the kernel still serves, and nothing was counted
  assert.equal((await k.client.execute("2")).reply.content.execution_count, before + 1);
});

test("writes to a closed stderr/stdout (EPIPE) are swallowed: the kernel neither loops nor stops serving", T, async () => {
  const fs = require("node:fs");
  const other = await spawnKernel();
  try {
    await other.client.ready(60000);
    // close our ends of the kernel's stdout and stderr pipes: its next log line fails with EPIPE
    other.proc.stderr.destroy();
    other.proc.stdout.destroy();
    const cpu = () => {
      const f = fs.readFileSync(`/proc/${other.proc.pid}/stat`, "utf8");
      const v = f.slice(f.lastIndexOf(")") + 2).split(" ");
      return Number(v[11]) + Number(v[12]); // utime + stime, clock ticks
    };
    for (let i = 0; i < 3; i++) {
      // each bad message makes the kernel log "dropped a message" to its (dead) stderr
      const header = other.client.protocol.makeHeader("execute_request", other.client.session);
      const frames = other.client.protocol.encode({ identities: [], header, parent_header: {}, metadata: {}, content: { code: "1" }, buffers: [] }, other.client.signer);
      frames[frames.indexOf("<IDS|MSG>") + 1] = "0".repeat(64);
      await other.client.shell.send(frames);
      const r = await within(other.client.execute(`console.error("to iopub"); ${i}`), 20000, null);
      assert.ok(r, "the kernel still answers");
      assert.equal(r.reply.content.status, "ok");
    }
    // an uncaught error (reported to the cell's stderr), then idle: a write loop would keep a core busy
    await other.client.execute(`setTimeout(() => { throw new Error("late"); }, 0); 0`);
    await new Promise((r) => setTimeout(r, 300));
    const before = cpu();
    await new Promise((r) => setTimeout(r, 2000));
    const ticks = cpu() - before;
    assert.ok(ticks < 100, `the idle kernel used ${ticks} clock ticks of CPU in 2 s (a write loop?)`);
    assert.equal(other.proc.exitCode, null, "still running");
  } finally {
    await other.stop();
  }
});

test("a synchronous loop after a cell's first await: the interrupt cannot stop it, and the reply comes only when the loop ends (as kernel/README.md says)", T, async () => {
  const fs = require("node:fs");
  const os = require("node:os");
  const path = require("node:path");
  const flag = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-loop-")), "stop");
  let looping;
  const loopingP = new Promise((r) => (looping = r));
  let replied = false;
  const run = k.client
    .execute(`await null;\nconsole.log("looping");\nconst fs_ = require("node:fs");\nwhile (!fs_.existsSync(${JSON.stringify(flag)})) {}\n"loop ended"`, (m) => {
      if (m.header.msg_type === "stream" && m.content.text.includes("looping")) looping();
    })
    .then((r) => {
      replied = true;
      return r;
    });
  await loopingP;
  k.proc.kill("SIGINT"); // Jupyter's interrupt
  const irq = within(k.client.request("control", "interrupt_request", {}), 60000, null);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(replied, false, "no reply while the loop runs: the JavaScript thread is busy");
  fs.writeFileSync(flag, "");
  const r = await within(run, 30000, null);
  assert.ok(r, "the reply comes once the loop ends");
  // the interrupt reached a kernel whose cell had already finished: the cell's own result stands
  assert.equal(r.reply.content.status, "ok", JSON.stringify(r.reply.content));
  assert.equal(r.iopub.find((m) => m.header.msg_type === "execute_result").content.data["text/plain"], "'loop ended'");
  assert.ok(await irq, "the interrupt_request is answered after the loop, too");
  const after = await k.client.execute("1 + 1");
  assert.equal(after.reply.content.status, "ok");
  fs.rmSync(path.dirname(flag), { recursive: true, force: true });
});

test("interrupt stops a for-await loop whose iterator never leaves the microtask queue", T, async () => {
  let started;
  const startedP = new Promise((r) => (started = r));
  const run = k.client.execute(`async function* spin() { let i = 0; while (true) yield i++; }\nlet spun = 0;\nfor await (const i of spin()) { if (++spun === 1000) console.log("spinning"); }`, (m) => {
    if (m.header.msg_type === "stream" && m.content.text.includes("spinning")) started();
  });
  await startedP;
  k.proc.kill("SIGINT");
  const r = await within(run, 30000, null);
  assert.ok(r, "the interrupt was handled");
  assert.equal(r.reply.content.ename, "Interrupted");
});
