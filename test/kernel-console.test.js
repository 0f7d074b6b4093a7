"use strict";
// `jupyter console --kernel batchlab` in a real terminal (tmux): closing the terminal must not
// leave the kernel behind. The console dies with its terminal; the kernel runs in its own session
// (jupyter_client starts it with start_new_session), so only its parent poll (JPY_PARENT_PID,
// ppid) ends it, and its log writes to the dead terminal (EIO) must not spin it.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { makeSandbox, PYTHON, sleep } = require("./helpers/jupyter");

function why() {
  const t = spawnSync("tmux", ["-V"], { encoding: "utf8" });
  if (t.error || t.status !== 0) return "tmux is not installed (Debian's tmux)";
  const c = spawnSync(PYTHON, ["-c", "import jupyter_console"], { encoding: "utf8" });
  if (c.status !== 0) return `${PYTHON} cannot import jupyter_console (install Debian's jupyter-console)`;
  return null;
}
const missing = why();

/** pids of the batchlab kernel (its launcher, main.js, and the kernel proper, child.js) whose connection file lies in the sandbox. */
function findKernel(sandboxDir) {
  const pids = [];
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    let cmd;
    try {
      cmd = fs.readFileSync(`/proc/${p}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (/dist-kernel\/(main|child)\.js/.test(cmd) && cmd.includes(sandboxDir)) pids.push(Number(p));
  }
  return pids;
}

/** "gone", "zombie" (exited, not yet reaped by init) or the /proc state letter. */
function processState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state === "Z" || state === "X" ? "zombie" : state;
  } catch {
    return "gone";
  }
}

test("closing the terminal of `jupyter console --kernel batchlab` ends the kernel within 5 s", { skip: missing ?? false, timeout: 120000 }, async () => {
  const sb = makeSandbox();
  const sock = path.join(sb.dir, "tmux.sock");
  const tmux = (...args) => spawnSync("tmux", ["-S", sock, ...args], { env: sb.env, encoding: "utf8" });
  const screen = () => tmux("capture-pane", "-p", "-t", "console").stdout || "";
  let pids = [];
  try {
    const started = tmux("new-session", "-d", "-s", "console", "-x", "160", "-y", "50", `${PYTHON} -m jupyter_console --kernel batchlab`);
    assert.equal(started.status, 0, started.stderr);
    const deadline = Date.now() + 60000;
    while ((pids = findKernel(sb.dir)).length < 2) {
      assert.ok(Date.now() < deadline, `no batchlab kernel process appeared:\n${screen()}`);
      await sleep(200);
    }
    // the console is connected and the kernel answers: run a cell through the terminal
    let sent = 0;
    while (!/ready-42/.test(screen())) {
      assert.ok(Date.now() < deadline, `the console never showed the cell's output:\n${screen()}`);
      if (sent++ % 25 === 0 && /In \[\d+\]/.test(screen())) tmux("send-keys", "-t", "console", 'console.log("ready-" + 6 * 7)', "Enter");
      await sleep(200);
    }
    pids = findKernel(sb.dir);
    assert.equal(pids.length, 2, `the launcher and the kernel: ${pids}`);
    tmux("kill-session", "-t", "console"); // the terminal closes: the console dies, the kernel's stdio is a dead tty
    const until = Date.now() + 5000;
    const alive = () => pids.filter((pid) => !["gone", "zombie"].includes(processState(pid)));
    while (alive().length && Date.now() < until) await sleep(100);
    assert.deepEqual(alive().map((pid) => `${pid}: ${processState(pid)}`), [], "kernel processes still running 5 s after their terminal closed");
  } finally {
    tmux("kill-server");
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    sb.cleanup();
  }
});
