/**
 * The kernelspec's command: `node dist-kernel/main.js <connection_file>`. It loads only the
 * kernel (and, for the prelude, the package's public exports), so a library that fails to load
 * still leaves a working TypeScript kernel that says why in its log.
 */
import { runKernel } from "./cli";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node dist-kernel/main.js <connection_file>\n");
  process.exit(2);
}
runKernel(file).catch((e: unknown) => {
  process.stderr.write(`[batchlab kernel] failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
