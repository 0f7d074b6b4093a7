/**
 * `batchlab notebook`: what `npm start` runs. Registers the kernelspec, then starts a Jupyter
 * Notebook server (Debian's jupyter-notebook) on the tutorial notebooks, bound to 127.0.0.1
 * with a fresh token, and prints the URL to open. Ctrl-C (or SIGTERM) stops the server.
 *
 * The token never appears on the server's command line (/proc/<pid>/cmdline is readable by every
 * user of the machine): it is written to a file only this user can read (mode 0600 in a 0700
 * directory), named by JUPYTER_TOKEN_FILE in the server's environment, and the file is removed
 * once the server has read it (when it prints its URL) or exits. The kernels the server starts
 * inherit only the (by then deleted) file's path, never the token.
 */
import * as os from "node:os";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { optionTokens, type Flags } from "./args";
import { installKernelSpec, parseInstallArgs } from "./install";
import { packageRoot } from "./resolve";

export const NOTEBOOK_USAGE = `usage: batchlab notebook [--port N] [--dir DIR] [--python PY] [--token T]
  --port N      first port to try on 127.0.0.1 (default 8888; Jupyter moves up when it is taken)
  --dir DIR     the notebook directory (default: this package's notebooks/)
  --python PY   the Python that has Jupyter Notebook (default /usr/bin/python3, else python3)
  --token T     the login token (default: a random one, printed in the URL)`;

export interface NotebookOptions {
  port: number;
  dir: string;
  python: string;
  token: string;
}

const NOTEBOOK_FLAGS: Flags = {
  port: { type: "string" },
  dir: { type: "string" },
  python: { type: "string" },
  token: { type: "string" },
  help: { type: "boolean", short: "h" },
};

export function parseNotebookArgs(args: string[]): NotebookOptions {
  const o: NotebookOptions = {
    port: 8888,
    dir: path.join(packageRoot(), "notebooks"),
    python: fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3",
    token: crypto.randomBytes(24).toString("hex"),
  };
  for (const t of optionTokens("notebook", args, NOTEBOOK_FLAGS, NOTEBOOK_USAGE)) {
    const v = t.value!;
    switch (t.name) {
      case "port": {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new Error(`batchlab notebook: --port must be an integer from 1 to 65535, got ${JSON.stringify(v)}`);
        o.port = n;
        break;
      }
      case "dir": {
        const d = path.resolve(v);
        if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) throw new Error(`batchlab notebook: --dir ${JSON.stringify(d)} is not a directory`);
        o.dir = d;
        break;
      }
      case "python":
        o.python = v;
        break;
      case "token":
        if (!/^[\w-]{8,}$/.test(v)) throw new Error(`batchlab notebook: --token must be at least 8 letters, digits, _ or -, got ${JSON.stringify(v)}`);
        o.token = v;
        break;
      case "help":
        throw new Error(NOTEBOOK_USAGE);
    }
  }
  return o;
}

/** Fails with what to install when the Python has no Jupyter Notebook. */
function checkNotebookInstalled(python: string): void {
  const r = spawnSync(python, ["-c", "import notebook, sys; sys.stdout.write(notebook.__version__)"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || "").trim().split("\n").pop();
    throw new Error(
      `batchlab notebook: ${python} cannot import Jupyter Notebook (${why}). ` +
        `Install Debian's jupyter-notebook (sudo apt-get install jupyter-notebook, which \`npm start\` does) or pass --python`,
    );
  }
}

/**
 * Start the server and resolve once it exits. `onUrl` receives the URL when the server is up
 * (default: print it).
 */
export async function serveNotebooks(args: string[], onUrl: (url: string) => void = printUrl): Promise<void> {
  const o = parseNotebookArgs(args);
  checkNotebookInstalled(o.python);
  const specDir = installKernelSpec(parseInstallArgs(["--user"]));
  console.log(`batchlab: kernelspec "batchlab" registered in ${specDir}`);
  const tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), "batchlab-token-"));
  fs.chmodSync(tokenDir, 0o700);
  const tokenFile = path.join(tokenDir, "token");
  fs.writeFileSync(tokenFile, o.token, { mode: 0o600, flag: "wx" });
  const removeToken = (): void => fs.rmSync(tokenDir, { recursive: true, force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, JUPYTER_TOKEN_FILE: tokenFile };
  delete env.JUPYTER_TOKEN; // it would take precedence over the file
  const child = spawn(
    o.python,
    [
      "-m",
      "notebook",
      "--no-browser",
      "--ip=127.0.0.1",
      `--port=${o.port}`,
      `--notebook-dir=${o.dir}`,
      "--NotebookApp.open_browser=False",
      // Containers and CI machines often run as root, which Jupyter refuses without this flag.
      ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env },
  );
  let announced = false;
  let log = "";
  const watch = (chunk: Buffer): void => {
    const text = chunk.toString();
    process.stderr.write(text);
    if (announced) return;
    log += text;
    const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
    if (m) {
      announced = true;
      removeToken(); // read at start-up: the server is serving with it
      onUrl(`http://127.0.0.1:${m[1]}/tree?token=${o.token}`);
    }
  };
  child.stdout!.on("data", watch);
  child.stderr!.on("data", watch);
  // The classic Notebook asks for confirmation on SIGINT; SIGTERM stops it at once.
  const stop = (): void => {
    child.kill("SIGTERM");
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    await new Promise<void>((resolve, reject) => {
      child.once("error", (e) => reject(new Error(`batchlab notebook: could not start ${o.python} -m notebook: ${e.message}`)));
      child.once("exit", (code, signal) => {
        if (code === 0 || signal === "SIGTERM" || signal === "SIGINT") resolve();
        else reject(new Error(`batchlab notebook: the Jupyter server exited with ${signal ?? `code ${code}`}${announced ? "" : " before it started"}`));
      });
    });
  } finally {
    removeToken();
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

function printUrl(url: string): void {
  console.log(`\nbatchlab: Jupyter Notebook is serving the tutorials. Open this URL (Ctrl-C stops the server):\n\n    ${url}\n`);
}
