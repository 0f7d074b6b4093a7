/**
 * The kernelspec's command: `node dist-kernel/main.js <connection_file>`. This process is the
 * launcher (supervisor.ts): the kernel runs in its child (child.js), so that a fatal error there
 * (out of JavaScript heap) is reported with a reason. The kernel loads only its own code (and, for
 * the prelude, the package's public exports), so a library that fails to load still leaves a
 * working TypeScript kernel that says why in its log.
 */
import { superviseKernel } from "./supervisor";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node dist-kernel/main.js <connection_file>\n");
  process.exit(2);
}
superviseKernel(file).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`[batchlab kernel] failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
