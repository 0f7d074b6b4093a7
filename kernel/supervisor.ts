/**
 * The kernel's launcher: the process Jupyter starts (`node dist-kernel/main.js <connection_file>`,
 * or `batchlab kernel`) runs the kernel itself in a child process (dist-kernel/child.js) and
 * stays small, so that it can say why the kernel died.
 *
 * A cell that fills the JavaScript heap makes V8 abort the process that runs it ("FATAL ERROR:
 * ... JavaScript heap out of memory", SIGABRT); nothing inside that process can report it. The
 * launcher sees the child's stderr and exit, and then writes
 *   batchlab kernel: out of JavaScript heap (limit N MiB) while running cell N
 * to its stderr (Jupyter's log) and exits with code 1, so the front end sees the kernel die with
 * a reason. The child tells the launcher its heap limit and the running cell over the IPC channel.
 *
 * The launcher forwards SIGINT (Jupyter's interrupt; the child is in its own process group, so a
 * signal to the launcher's group reaches it once), SIGTERM and SIGHUP, relays the child's
 * stdout/stderr (writes to a closed terminal are swallowed, see stdio.ts) and exits with the
 * child's status. Node options given to the launcher (`node --max-old-space-size=N main.js`) go
 * to the child too. The child exits when the launcher is gone (its IPC channel closes).
 */
import { fork } from "node:child_process";
import * as path from "node:path";
import { guardStdio, writeReal } from "./stdio";

/** Messages the child sends over IPC. */
export type ChildReport = { type: "heap"; limitMiB: number } | { type: "cell"; count: number | null } | { type: "idle" };

const OOM = /JavaScript heap out of memory|Reached heap limit|Allocation failed - process out of memory|invalid table size Allocation failed/;

export function superviseKernel(connectionFile: string): Promise<number> {
  guardStdio();
  const child = fork(path.join(__dirname, "child.js"), [connectionFile], {
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    detached: true, // its own process group: a group signal to us is forwarded once, not twice
    env: { ...process.env, BATCHLAB_KERNEL_LAUNCHER_PID: String(process.pid) },
  });
  let limitMiB: number | null = null;
  let cell: number | null | undefined; // undefined: no cell running; null: a silent cell
  let tail = "";
  child.stdout!.on("data", (d: Buffer) => writeReal("stdout", d.toString()));
  child.stderr!.on("data", (d: Buffer) => {
    const text = d.toString();
    tail = (tail + text).slice(-4096);
    writeReal("stderr", text);
  });
  child.on("message", (m: ChildReport) => {
    if (m.type === "heap") limitMiB = m.limitMiB;
    else if (m.type === "cell") cell = m.count;
    else if (m.type === "idle") cell = undefined;
  });
  const forward = (sig: NodeJS.Signals) => () => {
    try {
      child.kill(sig);
    } catch {
      /* already gone */
    }
  };
  const handlers: Array<[NodeJS.Signals, () => void]> = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, forward(s)]);
  for (const [s, h] of handlers) process.on(s, h);
  const poll = watchJupyterParent(() => {
    writeReal("stderr", `[batchlab kernel] parent process ${process.env.JPY_PARENT_PID} is gone; exiting\n`);
    forward("SIGTERM")();
    setTimeout(() => process.exit(0), 1000).unref();
  });
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      if (poll) clearInterval(poll);
      for (const [s, h] of handlers) process.off(s, h);
      // let the last of the child's stderr arrive before judging it
      setTimeout(() => {
        if (OOM.test(tail)) {
          const where = cell === undefined ? "between cells" : cell === null ? "while running a silent cell" : `while running cell ${cell}`;
          const limit = limitMiB !== null ? `limit ${limitMiB} MiB` : "limit unknown";
          writeReal("stderr", `batchlab kernel: out of JavaScript heap (${limit}) ${where}; the kernel process died (restart the kernel; a larger heap: node --max-old-space-size=MiB in the kernelspec's argv)\n`);
          resolve(1);
        } else if (signal) {
          writeReal("stderr", `batchlab kernel: the kernel process was killed by ${signal}${cell !== undefined ? ` while running cell ${cell ?? "(silent)"}` : ""}\n`);
          resolve(signal === "SIGTERM" || signal === "SIGHUP" ? 0 : 1);
        } else resolve(code ?? 1);
      }, 50);
    };
    child.once("exit", finish);
    child.once("error", (e) => {
      writeReal("stderr", `batchlab kernel: could not start the kernel process: ${e.message}\n`);
      finish(1, null);
    });
  });
}

/**
 * Call `onGone` once the process that started us (JPY_PARENT_PID) is gone, polled every second
 * as ipykernel's ParentPollerUnix does: its pid no longer exists, or our parent changed (we were
 * re-parented: the launcher died, even if its pid lingers as a zombie). An unref'd timer.
 */
export function watchJupyterParent(onGone: () => void): NodeJS.Timeout | null {
  const pid = Number(process.env.JPY_PARENT_PID);
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const startPpid = process.ppid;
  const parentWasLauncher = startPpid === pid;
  const t = setInterval(() => {
    let gone = false;
    try {
      process.kill(pid, 0);
    } catch (e) {
      gone = (e as NodeJS.ErrnoException).code !== "EPERM";
    }
    if (!gone && parentWasLauncher && process.ppid !== startPpid) gone = true;
    if (!gone) return;
    clearInterval(t);
    onGone();
  }, 1000);
  t.unref();
  return t;
}
