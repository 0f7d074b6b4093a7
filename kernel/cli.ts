/**
 * Entry points for the `batchlab` CLI (src/cli.ts loads this file from dist-kernel/cli.js):
 *   install(args)            `batchlab install [--user | --sys-prefix | --prefix P] ...`
 *   runKernel(connectionFile) `batchlab kernel <connection_file>`
 *   notebook(args)           `batchlab notebook [--port N] [--dir DIR]` (what `npm start` runs)
 */
import { installKernelSpec, parseInstallArgs } from "./install";
import { startKernel } from "./server";
import { serveNotebooks } from "./notebook";

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

/** Register the kernelspec and serve the notebooks with Jupyter Notebook on 127.0.0.1. */
export async function notebook(args: string[]): Promise<void> {
  await serveNotebooks(args);
}
