"use strict";
// Jupyter's own kernel conformance suite (jupyter_kernel_test, Debian's
// python3-jupyter-kernel-test) against the batchlab kernel: test/conformance/test_batchlab_kernel.py
// gives a sample for every test the suite offers; here it runs under /usr/bin/python3 -m unittest
// in a sandbox holding the batchlab kernelspec, and every one of the suite's tests must run and
// pass (none skipped: a skip would hide a missing feature).
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { spawn, spawnSync } = require("node:child_process");
const { makeSandbox, PYTHON } = require("./helpers/jupyter");

const probe = spawnSync(PYTHON, ["-c", "import json, jupyter_kernel_test as j; print(json.dumps(sorted(n for n in dir(j.KernelTests) if n.startswith('test_'))))"], { encoding: "utf8" });
const missing = probe.status !== 0 ? `${PYTHON} cannot import jupyter_kernel_test (install Debian's python3-jupyter-kernel-test): ${(probe.stderr || String(probe.error)).trim().split("\n").pop()}` : null;

test("jupyter_kernel_test: every test of Jupyter's kernel conformance suite runs and passes", { skip: missing ?? false, timeout: 300000 }, async () => {
  const names = JSON.parse(probe.stdout);
  assert.ok(names.length >= 10, `the suite offers ${names.length} tests: ${names}`);
  const sb = makeSandbox();
  try {
    const proc = spawn(PYTHON, ["-m", "unittest", "-v", "test_batchlab_kernel"], { cwd: path.join(__dirname, "conformance"), env: sb.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (out += d));
    const killer = setTimeout(() => proc.kill("SIGKILL"), 240000);
    const code = await new Promise((r) => proc.once("exit", (c, sig) => r(c ?? sig)));
    clearTimeout(killer);
    assert.doesNotMatch(out, /skipped/i, `no test may skip:\n${out}`);
    for (const name of names) assert.match(out, new RegExp(`^${name} \\(.*\\) \\.\\.\\. ok$`, "m"), `${name} did not pass:\n${out}`);
    const ran = /^Ran (\d+) tests? in/m.exec(out);
    assert.ok(ran, out);
    assert.equal(Number(ran[1]), names.length, out);
    assert.match(out, /^OK$/m, out);
    assert.equal(code, 0, out);
  } finally {
    sb.cleanup();
  }
});
