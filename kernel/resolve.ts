/**
 * Let `import ... from "batchlab"` work in a notebook whose directory has no node_modules.
 *
 * Two resolvers need it: TypeScript's, inside tslab's converter (types), and Node's (values).
 * - TypeScript: the converter resolves from the notebook directory (cwd) through `ts.sys`, which
 *   it inherits from at call time. We wrap ts.sys's file-system reads so that
 *   `<cwd>/node_modules/batchlab/...` reads this package when no such directory really exists.
 * - Node: Module._resolveFilename falls back to this package for "batchlab" and "batchlab/...",
 *   only after the ordinary lookup failed (a locally installed copy wins, in both resolvers).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import Module = require("node:module");
import * as ts from "@tslab/typescript-for-tslab";

export const PACKAGE_NAME = "batchlab";

/** The root of this package (the folder with package.json), seen from dist-kernel/. */
export function packageRoot(): string {
  return path.resolve(__dirname, "..");
}

let tsHooked = false;
let nodeHooked = false;

/** Install the TypeScript-side hook for the converter rooted at `cwd`. Idempotent. */
export function hookTypeScriptResolution(cwd: string, root = packageRoot()): void {
  if (tsHooked) return;
  tsHooked = true;
  const virtualDir = path.join(cwd, "node_modules", PACKAGE_NAME);
  if (fs.existsSync(virtualDir)) return; // a real copy is there; leave resolution alone
  const prefix = virtualDir + path.sep;
  const forward = (p: string): string => {
    const n = path.normalize(p);
    if (n === virtualDir) return root;
    if (n.startsWith(prefix)) return path.join(root, n.slice(prefix.length));
    return p;
  };
  const sys = ts.sys as { -readonly [K in keyof ts.System]: ts.System[K] };
  const { fileExists, readFile, directoryExists, getDirectories, readDirectory } = ts.sys;
  const nodeModules = path.join(cwd, "node_modules");
  sys.fileExists = (p) => fileExists.call(ts.sys, forward(p));
  sys.readFile = (p, enc) => readFile.call(ts.sys, forward(p), enc);
  sys.directoryExists = (p) => path.normalize(p) === nodeModules || directoryExists.call(ts.sys, forward(p));
  sys.getDirectories = (p) => getDirectories.call(ts.sys, forward(p));
  sys.readDirectory = (p, ...rest) => readDirectory.call(ts.sys, forward(p), ...rest);
}

type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string;

/** Install the Node-side fallback for "batchlab" requests. Idempotent. */
export function hookNodeResolution(root = packageRoot()): void {
  if (nodeHooked) return;
  nodeHooked = true;
  const M = Module as unknown as { _resolveFilename: ResolveFilename };
  const original = M._resolveFilename;
  M._resolveFilename = function (request, parent, isMain, options) {
    try {
      return original.call(this, request, parent, isMain, options);
    } catch (err) {
      if (request === PACKAGE_NAME) return original.call(this, root, parent, isMain, options);
      if (request.startsWith(PACKAGE_NAME + "/")) {
        return original.call(this, path.join(root, request.slice(PACKAGE_NAME.length + 1)), parent, isMain, options);
      }
      throw err;
    }
  };
}
