/**
 * The prelude: names every cell sees without an import, with their types.
 *
 * It is generated at kernel start from the package's actual runtime exports: each top-level
 * export (datasets, samplers, transforms, T, DataLoader, cuda, memory, viz, the viz functions
 * re-exported at the top, the error classes...) is bound in the cells' scope and typed by an
 * `import { ... } from "batchlab"` placed in tslab's declarations of previous cells. Exports of
 * the viz module that are not re-exported at the top level are typed through the viz namespace.
 * The kernel's own `display` comes last and wins a name clash.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PACKAGE_NAME, packageRoot } from "./resolve";

export interface Prelude {
  /** Declarations text (a module body) that tslab treats as earlier cells' declarations. */
  decl: string;
  /** Runtime values, by name. */
  values: Record<string, unknown>;
  /** The names bound from the package, in prelude order. */
  names: string[];
  /** Why some or all of the package is missing from the prelude (empty when all is well). */
  problems: string[];
}

/** The kernel's own cell functions and their declarations. */
export const KERNEL_DECL = `/** Show a value or MIME bundle as rich output; with displayId/update, replace an earlier output in place. */
declare function display(value: unknown, options?: { displayId?: string; update?: boolean; metadata?: Record<string, unknown> }): void;
/** Clear this cell's output; with wait, only when the next output arrives (no flicker). */
declare function clearOutput(wait?: boolean): void;
/** Show text (or a value, inspected) in the front end's pager, as IPython's \`?\` does. */
declare function page(value: unknown): void;
`;

const IDENT = /^[A-Za-z_$][\w$]*$/;
const FIRST = ["datasets", "transforms", "T", "samplers", "DataLoader", "cuda", "memory", "viz"];

export function buildPrelude(kernelValues: Record<string, unknown>, root = packageRoot()): Prelude {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const names: string[] = [];
  let declLines: string[] = [];
  let pkg: Record<string, unknown> | null = null;
  try {
    pkg = require(root) as Record<string, unknown>;
  } catch (e) {
    problems.push(`the ${PACKAGE_NAME} package could not be loaded from ${root}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (pkg) {
    const typesFile = typesEntry(root);
    if (!typesFile) problems.push(`no type declarations for ${PACKAGE_NAME} in ${root} (run the TypeScript build): prelude names are typed any`);
    const reserved = new Set(Object.keys(kernelValues));
    const top = Object.keys(pkg).filter((k) => IDENT.test(k) && k !== "default" && k !== "__esModule" && !reserved.has(k));
    top.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    for (const k of top) {
      values[k] = pkg[k];
      names.push(k);
    }
    const viz = pkg.viz;
    const vizOnly =
      viz && typeof viz === "object"
        ? Object.keys(viz).filter((k) => IDENT.test(k) && k !== "default" && !reserved.has(k) && !(k in values))
        : [];
    if (top.length) declLines.push(`import { ${top.join(", ")} } from ${JSON.stringify(PACKAGE_NAME)};`);
    for (const k of vizOnly) {
      values[k] = (viz as Record<string, unknown>)[k];
      names.push(k);
      declLines.push(`declare const ${k}: typeof import(${JSON.stringify(PACKAGE_NAME)}).viz.${k};`);
    }
  }
  Object.assign(values, kernelValues);
  declLines = [...declLines, KERNEL_DECL];
  return { decl: declLines.join("\n"), values, names, problems };
}

function rank(name: string): number {
  const i = FIRST.indexOf(name);
  return i < 0 ? FIRST.length : i;
}

function typesEntry(root: string): string | null {
  try {
    const pj = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { types?: string; typings?: string; main?: string };
    const rel = pj.types ?? pj.typings ?? (pj.main ? pj.main.replace(/\.js$/, ".d.ts") : "index.d.ts");
    const file = path.join(root, rel);
    return fs.existsSync(file) ? file : null;
  } catch {
    return null;
  }
}
