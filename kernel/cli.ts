/**
 * The Jupyter commands of the `batchlab` CLI; bin/batchlab.js sends `notebook`, `install` and
 * `kernel` here and every other command to the library's CLI (dist/cli.js). The kernel reaches
 * the library only through the package's entry point, and the library never loads this folder.
 *   install(args)             `batchlab install [--user | --sys-prefix | --prefix P] ...`
 *   runKernel(connectionFile) `batchlab kernel <connection_file>` (the launcher; the kernel runs in its child)
 *   notebook(args)            `batchlab notebook [--port N] [--dir DIR]` (what `npm start` runs)
 */
import { installKernelSpec, parseInstallArgs } from "./install";
import { startKernel } from "./server";
import { serveNotebooks } from "./notebook";
import { superviseKernel } from "./supervisor";

/** The commands main() runs. */
export const COMMANDS = ["notebook", "install", "kernel"] as const;

/** `batchlab <command> ...` for one of COMMANDS; `argv` starts with the command. */
export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "notebook":
      return notebook(rest);
    case "install":
      return install(rest);
    case "kernel":
      if (!rest[0]) throw new Error("batchlab kernel: missing <connection_file> (Jupyter passes it as {connection_file})");
      return runKernel(rest[0]);
    default:
      throw new Error(`batchlab: ${JSON.stringify(cmd)} is not a Jupyter command (${COMMANDS.join(", ")})`);
  }
}

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
  const code = await superviseKernel(connectionFile);
  process.exit(code);
}

/** The kernel itself, in this process (what the launcher's child runs). */
export async function runKernelInProcess(connectionFile: string): Promise<void> {
  const kernel = await startKernel(connectionFile);
  await kernel.closed;
  setTimeout(() => process.exit(0), 200);
}

/** Register the kernelspec and serve the notebooks with Jupyter Notebook on 127.0.0.1. */
export async function notebook(args: string[]): Promise<void> {
  await serveNotebooks(args);
}
