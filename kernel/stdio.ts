/**
 * The kernel's own writes to its real stdout/stderr (its log; cell output goes to iopub).
 *
 * When the terminal that started the kernel closes (`jupyter console` in a window that is
 * closed), writes to these streams fail with EIO (a tty gone) or EPIPE (a pipe gone). Node
 * reports that as an 'error' event, which without a listener becomes an uncaught exception; an
 * uncaught-exception handler that prints it to the same dead stream starts the next failure,
 * and the kernel spins a core forever. Here a failed stream is marked dead, its errors are
 * swallowed, and nothing is written to it again.
 */

type Name = "stdout" | "stderr";

const dead: Record<Name, boolean> = { stdout: false, stderr: false };
const streams: Record<Name, NodeJS.WriteStream> = { stdout: process.stdout, stderr: process.stderr };
// bound before anything replaces process.stdout.write / process.stderr.write
const writers: Record<Name, (s: string) => boolean> = {
  stdout: process.stdout.write.bind(process.stdout) as (s: string) => boolean,
  stderr: process.stderr.write.bind(process.stderr) as (s: string) => boolean,
};
let guarded = false;

/** Listen for errors on process.stdout/stderr: each marks its stream dead instead of throwing. */
export function guardStdio(): void {
  if (guarded) return;
  guarded = true;
  for (const name of ["stdout", "stderr"] as const) {
    streams[name].on("error", () => {
      dead[name] = true;
    });
  }
}

/** Write to the real stream unless it is known dead; never throws. */
export function writeReal(name: Name, text: string): void {
  if (dead[name]) return;
  try {
    writers[name](text);
  } catch {
    dead[name] = true;
  }
}

export function isDead(name: Name): boolean {
  return dead[name];
}

/** An error from writing to a closed terminal or pipe (EIO, EPIPE...): these must never be printed. */
export function isBrokenStdioError(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException | null;
  if (!err || typeof err !== "object") return false;
  return (err.code === "EIO" || err.code === "EPIPE" || err.code === "EBADF" || err.code === "ECONNRESET") && (err.syscall === "write" || err.syscall === undefined);
}

/** For tests: the stream marked dead (as after a failed write). */
export function markDead(name: Name): void {
  dead[name] = true;
}
