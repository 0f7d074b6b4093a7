/**
 * Entry points for the `batchlab` CLI (src/cli.ts loads this file from dist-kernel/cli.js):
 *   install(args)            `batchlab install [--user | --sys-prefix | --prefix P] ...`
 *   runKernel(connectionFile) `batchlab kernel <connection_file>`
 */
import { installKernelSpec, parseInstallArgs } from "./install";
import { startKernel } from "./server";

/** Register the kernelspec; prints where it went. */
export async function install(args: string[]): Promise<void> {
  const opts = parseInstallArgs(args);
  const dir = installKernelSpec(opts);
  console.log(`installed kernelspec ${opts.name} ("${opts.displayName}") in ${dir}`);
}

/**
 * Run the kernel until Jupyter shuts it down. The returned promise resolves after shutdown;
 * the process then exits on its own, even if cells left timers or sockets open.
 */
export async function runKernel(connectionFile: string): Promise<void> {
  const kernel = await startKernel(connectionFile);
  await kernel.closed;
  setTimeout(() => process.exit(0), 200);
}
