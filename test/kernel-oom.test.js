"use strict";
// A cell that fills the JavaScript heap. V8 aborts the process that runs it; the kernel runs in a
// child of the launcher (the kernelspec's main.js), which reports why it died: a stderr line
// naming the heap limit and the cell, and a non-zero exit code. Allocations that V8 refuses up
// front (an array or buffer too large to exist) are ordinary RangeErrors: the kernel keeps going.
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { spawnKernel, within, KERNEL_DIST } = require("./helpers/jupyter");

const T = { timeout: 120000 };
const HEAP_MIB = 384; // small, so the heap fills quickly; room for the TypeScript compiler

test("a cell that fills the heap: the kernel dies saying 'out of JavaScript heap (limit N MiB) while running cell N', exit code 1", T, async () => {
  const k = await spawnKernel({ argv: [process.execPath, `--max-old-space-size=${HEAP_MIB}`, path.join(KERNEL_DIST, "main.js"), "{connection_file}"] });
  try {
    await k.client.ready(60000);
    assert.equal((await k.client.execute("1 + 1")).reply.content.execution_count, 1);
    const exited = new Promise((r) => k.proc.once("exit", (code, signal) => r({ code, signal })));
    void k.client.execute("const hog: number[][] = [];\nwhile (true) hog.push(new Array(1 << 16).fill(1.5));").catch(() => {});
    const end = await within(exited, 90000, null);
    assert.ok(end, `the kernel did not die within 90 s:\n${k.stderr().slice(-2000)}`);
    assert.deepEqual(end, { code: 1, signal: null }, k.stderr().slice(-2000));
    const m = /^batchlab kernel: out of JavaScript heap \(limit (\d+) MiB\) while running cell 2\b/m.exec(k.stderr());
    assert.ok(m, k.stderr().slice(-2000));
    const limit = Number(m[1]);
    assert.ok(limit >= HEAP_MIB && limit < HEAP_MIB + 256, `the limit reported (${limit} MiB) is the one given (${HEAP_MIB} MiB, plus young generation)`);
  } finally {
    await k.stop();
  }
});

test("allocations too large to exist are RangeErrors the cell reports; the kernel keeps its state", T, async () => {
  const k = await spawnKernel({ argv: [process.execPath, `--max-old-space-size=${HEAP_MIB}`, path.join(KERNEL_DIST, "main.js"), "{connection_file}"] });
  try {
    await k.client.ready(60000);
    await k.client.execute("const kept = 7;");
    for (const code of ["new Array(2 ** 32)", "new Float64Array(2 ** 40)", "Buffer.alloc(2 ** 42)", `"x".repeat(2 ** 30)`]) {
      const r = await k.client.execute(code);
      assert.equal(r.reply.content.status, "error", code);
      assert.equal(r.reply.content.ename, "RangeError", `${code}: ${r.reply.content.evalue}`);
    }
    const r = await k.client.execute("kept");
    assert.equal(r.iopub.find((m) => m.header.msg_type === "execute_result").content.data["text/plain"], "7");
  } finally {
    await k.stop();
  }
});
