/**
 * The kernel process proper, started by the launcher (supervisor.ts) with an IPC channel: it
 * reports its heap limit, then serves until shut down. It exits when the launcher is gone.
 */
import * as v8 from "node:v8";
import { startKernel, tellLauncher } from "./server";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node dist-kernel/child.js <connection_file> (started by dist-kernel/main.js)\n");
  process.exit(2);
}
tellLauncher({ type: "heap", limitMiB: Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20) });
// the launcher died (SIGKILL from Jupyter): nobody can reach this kernel any more
process.on("disconnect", () => process.exit(0));
startKernel(file)
  .then((kernel) => kernel.closed)
  .then(() => setTimeout(() => process.exit(0), 200))
  .catch((e: unknown) => {
  process.stderr.write(`[batchlab kernel] failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
