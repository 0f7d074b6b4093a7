/**
 * `batchlab install`: write the kernelspec (kernel.json, and the two logos shipped in
 * kernel/logos/) where Jupyter looks.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { optionTokens, type Flags } from "./args";
import { packageRoot } from "./resolve";

export const KERNEL_NAME = "batchlab";
export const DISPLAY_NAME = "TypeScript (batchlab)";

export interface InstallOptions {
  /** user: the per-user data dir (default); sys-prefix: {sys.prefix}/share/jupyter; prefix: {prefix}/share/jupyter. */
  scope: "user" | "sys-prefix" | "prefix";
  prefix?: string;
  /** Python whose sys.prefix --sys-prefix means; default: the one running `jupyter` on PATH, else python3. */
  python?: string;
  name: string;
  displayName: string;
}

export const INSTALL_USAGE = `usage: batchlab install [--user | --sys-prefix | --prefix PREFIX] [--python PYTHON] [--name NAME] [--display-name TEXT]
  --user          per-user kernelspec (the default): $JUPYTER_DATA_DIR or ~/.local/share/jupyter
  --sys-prefix    into {sys.prefix}/share/jupyter of the Python that runs Jupyter (e.g. a virtualenv)
  --prefix P      into P/share/jupyter
  --python PY     the Python for --sys-prefix (default: the one running \`jupyter\` on PATH, else python3)
  --name NAME     kernelspec name (default ${KERNEL_NAME}); --display-name TEXT (default "${DISPLAY_NAME}")`;

const INSTALL_FLAGS: Flags = {
  user: { type: "boolean" },
  "sys-prefix": { type: "boolean" },
  prefix: { type: "string" },
  python: { type: "string" },
  name: { type: "string" },
  "display-name": { type: "string" },
  help: { type: "boolean", short: "h" },
};

export function parseInstallArgs(args: string[]): InstallOptions {
  const o: InstallOptions = { scope: "user", name: KERNEL_NAME, displayName: DISPLAY_NAME };
  let scopes = 0;
  for (const t of optionTokens("install", args, INSTALL_FLAGS, INSTALL_USAGE, "argument")) {
    switch (t.name) {
      case "user":
        o.scope = "user";
        scopes++;
        break;
      case "sys-prefix":
        o.scope = "sys-prefix";
        scopes++;
        break;
      case "prefix":
        o.scope = "prefix";
        o.prefix = path.resolve(t.value!);
        scopes++;
        break;
      case "python":
        o.python = t.value;
        break;
      case "name":
        o.name = t.value!;
        if (!/^[a-z0-9._-]+$/i.test(o.name)) throw new Error(`batchlab install: --name ${JSON.stringify(o.name)} must use only letters, digits, '.', '_' and '-'`);
        break;
      case "display-name":
        o.displayName = t.value!;
        break;
      case "help":
        throw new Error(INSTALL_USAGE);
    }
  }
  if (scopes > 1) throw new Error(`batchlab install: give at most one of --user, --sys-prefix, --prefix\n${INSTALL_USAGE}`);
  return o;
}

/** Jupyter's per-user data directory, as jupyter_core computes it. */
export function userDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.JUPYTER_DATA_DIR) return path.resolve(env.JUPYTER_DATA_DIR);
  const home = env.HOME || os.homedir();
  if (process.platform === "darwin") return path.join(home, "Library", "Jupyter");
  if (process.platform === "win32") return path.join(env.APPDATA || path.join(home, "AppData", "Roaming"), "jupyter");
  return path.join(env.XDG_DATA_HOME || path.join(home, ".local", "share"), "jupyter");
}

/** The Python interpreter that `jupyter` on PATH runs (from its #! line), if any. */
function jupyterPython(env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const exe = path.join(dir, "jupyter");
    try {
      const head = fs.readFileSync(exe, "utf8").slice(0, 300).split("\n")[0] ?? "";
      const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(head);
      if (!m) continue;
      if (/python[\d.]*$/.test(m[1]!)) return m[1]!;
      if (m[1]!.endsWith("/env") && m[2] && /python/.test(m[2])) return m[2];
    } catch {
      /* not here */
    }
  }
  return null;
}

export function kernelsDir(o: InstallOptions, env: NodeJS.ProcessEnv = process.env): string {
  switch (o.scope) {
    case "user":
      return path.join(userDataDir(env), "kernels");
    case "prefix":
      return path.join(o.prefix!, "share", "jupyter", "kernels");
    case "sys-prefix": {
      const py = o.python ?? jupyterPython(env) ?? "python3";
      let prefix: string;
      try {
        prefix = execFileSync(py, ["-c", "import sys; print(sys.prefix)"], { encoding: "utf8", env }).trim();
      } catch (e) {
        throw new Error(`batchlab install --sys-prefix: could not run ${py} to find sys.prefix (${(e as Error).message.split("\n")[0]}); pass --python or --prefix`);
      }
      return path.join(prefix, "share", "jupyter", "kernels");
    }
  }
}

/** The kernel.json contents: this Node binary running this package's kernel entry. */
export function kernelSpec(displayName = DISPLAY_NAME, name = KERNEL_NAME): Record<string, unknown> {
  const root = packageRoot();
  let version = "0.0.0";
  try {
    version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    /* leave the default */
  }
  return {
    argv: [process.execPath, path.join(root, "dist-kernel", "main.js"), "{connection_file}"],
    display_name: displayName,
    language: "typescript",
    interrupt_mode: "signal",
    // figures load plotly.js from this kernelspec's folder (<base>kernelspecs/<name>/plotly.min.js)
    env: { BATCHLAB_KERNELSPEC: name },
    metadata: { batchlab: { version, package: root } },
  };
}

/** The kernelspec's logos, as Jupyter names them; static files in kernel/logos/. */
export const LOGOS = ["logo-32x32.png", "logo-64x64.png"] as const;

/**
 * plotly.js in the kernelspec's folder: the Jupyter server serves it next to the logos, at
 * `<base>kernelspecs/<name>/plotly.min.js`, and every figure's HTML loads it from there.
 */
export const PLOTLY_FILE = "plotly.min.js";

/** The nbconvert template `batchlab install` writes: nbconvert's lab template with plotly.js inlined once in <head>. */
export const NBCONVERT_TEMPLATE = "batchlab";

function plotlySource(): string {
  return require.resolve("plotly.js-dist-min", { paths: [packageRoot()] });
}

/**
 * `{data}/nbconvert/templates/batchlab`: `jupyter nbconvert --to html --template batchlab` exports
 * a notebook whose figures draw with no server (plotly.js inlined once, in the page's head).
 */
function installNbconvertTemplate(dataDir: string): string {
  const dir = path.join(dataDir, "nbconvert", "templates", NBCONVERT_TEMPLATE);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "conf.json"), JSON.stringify({ base_template: "lab", mimetypes: { "text/html": true } }, null, 2) + "\n");
  fs.writeFileSync(
    path.join(dir, "index.html.j2"),
    `{%- extends 'lab/index.html.j2' -%}\n{%- block html_head_js -%}\n{{ super() }}\n{% include 'plotly_embed.html.j2' %}\n{%- endblock html_head_js -%}\n`,
  );
  const viz = require(packageRoot()).viz as { plotlyScriptHtml(): string };
  fs.writeFileSync(path.join(dir, "plotly_embed.html.j2"), `{% raw %}${viz.plotlyScriptHtml()}{% endraw %}\n`);
  return dir;
}

/** Write the kernelspec (kernel.json, logos, plotly.js) and the nbconvert template; returns the kernelspec's directory. */
export function installKernelSpec(o: InstallOptions, env: NodeJS.ProcessEnv = process.env): string {
  const kernels = kernelsDir(o, env);
  const dir = path.join(kernels, o.name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(kernelSpec(o.displayName, o.name), null, 2) + "\n");
  for (const logo of LOGOS) fs.copyFileSync(path.join(packageRoot(), "kernel", "logos", logo), path.join(dir, logo));
  fs.copyFileSync(plotlySource(), path.join(dir, PLOTLY_FILE));
  try {
    installNbconvertTemplate(path.dirname(kernels));
  } catch (e) {
    // the kernelspec works without it; only offline HTML export of figures needs the template
    process.stderr.write(`batchlab install: nbconvert template not written: ${(e as Error).message.split("\n")[0]}\n`);
  }
  return dir;
}
