/**
 * Runs cells: tslab's converter type-checks and compiles each cell against the declarations of
 * the cells before it (so types carry from cell to cell); this executor runs the result, keeps
 * the values, reports the last expression's value and turns failures into structured errors
 * instead of text on stderr. It also loads TypeScript files the cells import from the notebook
 * directory (tslab's "side outputs") and makes asynchronous cells interruptible (interrupt.ts).
 */
import * as path from "node:path";
import { sourcePosition } from "./positions";
import * as vm from "node:vm";
import Module = require("node:module");
import { createConverter, isCompleteCode, type Converter, type Diagnostic } from "tslab/dist/converter";
import { getCodeMetadata } from "tslab/dist/metadata";
import { printQuickInfo } from "tslab/dist/inspect";
import * as ts from "@tslab/typescript-for-tslab";
import { CELL_PARAM, CellContext, Interrupted, analyzeAsync } from "./interrupt";
import type { Prelude } from "./prelude";
import { plainText } from "./display";

export interface ErrorInfo {
  ename: string;
  evalue: string;
  traceback: string[];
}

export type ExecResult =
  | { status: "ok"; hasValue: boolean; value?: unknown }
  | { status: "error"; error: ErrorInfo };

export interface CompletionResult {
  start: number;
  end: number;
  matches: string[];
}

const GLOBAL_KEY = "__batchlab_kernel__";
const KERNEL_DIR = __dirname;

export class Executor {
  private readonly conv: Converter;
  private prevDecl: string;
  /** The cells' shared scope: tslab compiles top-level declarations to properties of this object. */
  readonly scope: Record<string, unknown>;
  private readonly sideOutputs = new Map<string, string>();
  private readonly sideModules = new Map<string, Module>();
  private current: CellContext | null = null;
  private readonly cellRequire: NodeJS.Require;

  constructor(readonly cwd: string, prelude: Prelude) {
    this.conv = createConverter({ isJS: false, isBrowser: false });
    this.scope = createScope();
    this.prevDecl = prelude.decl;
    for (const [k, v] of Object.entries(prelude.values)) this.scope[k] = v;
    this.cellRequire = this.wrapRequire(Module.createRequire(path.join(cwd, "__cell__.js")), cwd);
    Object.defineProperty(globalThis, GLOBAL_KEY, {
      value: { scope: this.scope, require: this.cellRequire },
      configurable: true,
      enumerable: false,
      writable: true,
    });
  }

  /** Type-check an empty cell so the compiler's program (lib, @types/node, the prelude) is built. */
  warmUp(): void {
    this.conv.convert(this.prevDecl, "");
  }

  get running(): boolean {
    return this.current !== null;
  }

  /** Interrupt the running cell; false when none is running. */
  interrupt(): boolean {
    if (!this.current) return false;
    this.current.interrupt();
    return true;
  }

  async execute(src: string, cellName: string): Promise<ExecResult> {
    const meta = getCodeMetadata(src);
    if (meta.module) {
      const diags = this.conv.addModule(meta.module, src, meta);
      if (diags.length) return { status: "error", error: compileError(diags, `module ${meta.module}`) };
      return { status: "ok", hasValue: false };
    }
    if (meta.mode === "browser") {
      return {
        status: "error",
        error: { ename: "UnsupportedCell", evalue: "browser cells (@browser) are not supported by the batchlab kernel", traceback: [] },
      };
    }
    const converted = this.conv.convert(this.prevDecl, src);
    if (converted.sideOutputs) {
      for (const out of converted.sideOutputs) {
        this.sideModules.delete(out.path);
        this.sideOutputs.set(out.path, out.data);
      }
    }
    if (converted.diagnostics.length > 0) return { status: "error", error: compileError(converted.diagnostics, cellName) };
    if (!converted.output) {
      this.prevDecl = converted.declOutput ?? "";
      return { status: "ok", hasValue: false };
    }
    const ctx = new CellContext();
    this.current = ctx;
    try {
      const analyzed = analyzeAsync(converted.output);
      const isAsync = analyzed.isAsync || !!converted.hasToplevelAwait;
      const body = analyzed.js;
      const wrapped =
        (isAsync ? "(async function (exports, require, " : "(function (exports, require, ") +
        `${CELL_PARAM}) { ${body}\n})(${GLOBAL_KEY}.scope, ${GLOBAL_KEY}.require, ${GLOBAL_KEY}.cell)`;
      (globalThis as Record<string, any>)[GLOBAL_KEY].cell = ctx;
      compiledCells.set(cellName, { compiled: wrapped.split("\n"), source: src.split("\n") });
      if (compiledCells.size > 200) compiledCells.delete(compiledCells.keys().next().value!);
      let ret: unknown;
      try {
        ret = vm.runInThisContext(wrapped, { filename: cellName, breakOnSigint: true });
      } catch (e) {
        this.prevDecl = keepAssignedDecls(converted.declOutput ?? this.prevDecl, this.scope);
        return { status: "error", error: errorInfo(e, ctx) };
      }
      if (isAsync) {
        const p = ret as Promise<unknown>;
        p.catch(() => {}); // it may reject after an interrupt, when nobody waits for it any more
        try {
          await Promise.race([p, ctx.interruptedPromise]);
        } catch (e) {
          this.prevDecl = keepAssignedDecls(converted.declOutput ?? this.prevDecl, this.scope);
          return { status: "error", error: errorInfo(e, ctx) };
        }
      }
    } finally {
      this.current = null;
    }
    this.prevDecl = converted.declOutput ?? "";
    const name = converted.lastExpressionVar;
    if (name && Object.prototype.hasOwnProperty.call(this.scope, name)) {
      const value = this.scope[name];
      delete this.scope[name];
      return { status: "ok", hasValue: value !== undefined, value };
    }
    return { status: "ok", hasValue: false };
  }

  complete(src: string, cursor: number): CompletionResult {
    const info = this.conv.complete(this.prevDecl, src, cursor);
    return { start: info.start, end: info.end, matches: info.candidates };
  }

  /**
   * Shift-Tab: the name at the cursor, or, where the cursor follows no name (`T.randomCrop(`,
   * `new DataLoader(ds, {`), the callee of the innermost call still open before it, as
   * IPython's token_at_cursor does. An unresolved name (tslab answers a bare `any`) is not found.
   */
  inspect(src: string, cursor: number): string | null {
    const info = this.conv.inspect(this.prevDecl, src, inspectPosition(src, cursor));
    if (!info) return null;
    const text = printQuickInfo(info);
    return text.trim() === "any" ? null : text;
  }

  /**
   * tslab's check says "incomplete" when the parser stopped at the end of the input expecting
   * more (an open brace, `1 +`). Otherwise any other syntax error makes the code "invalid"
   * (`const = ;`): running it more lines later would not fix it.
   */
  isComplete(src: string): { status: "complete" } | { status: "invalid" } | { status: "incomplete"; indent: string } {
    const r = isCompleteCode(src);
    if (!r.completed) return { status: "incomplete", indent: r.indent ?? "" };
    const sf = ts.createSourceFile("cell.tsx", src, ts.ScriptTarget.Latest, false, ts.ScriptKind.TSX);
    const diags = (sf as unknown as { parseDiagnostics?: Array<{ start?: number; messageText: unknown }> }).parseDiagnostics ?? [];
    if (diags.length === 0) return { status: "complete" };
    const end = src.trimEnd().length;
    // an unterminated template literal or block comment runs to the end of the input: more lines can close it
    const open = diags.every((d) => (d.start ?? 0) >= end || /^(Unterminated template literal|'\*\/' expected)/.test(String(d.messageText)));
    if (open && !/\n\s*\n\s*$/.test(src)) return { status: "incomplete", indent: "" };
    return { status: "invalid" };
  }

  close(): void {
    this.conv.close();
  }

  /** `require` for cells and the notebook-directory modules they import. */
  private wrapRequire(base: NodeJS.Require, dir: string): NodeJS.Require {
    const self = this;
    const req = function (id: string): unknown {
      if (id === "tslab") return tslabPublic();
      if (id.startsWith("./") || id.startsWith("../")) {
        let file = path.normalize(path.join(dir, id));
        if (path.extname(file) === "") file += ".js";
        const mod = self.loadSideModule(file);
        if (mod) return mod.exports;
      }
      return base(id);
    } as NodeJS.Require;
    Object.assign(req, { resolve: base.resolve, cache: base.cache, main: base.main, extensions: base.extensions });
    return req;
  }

  private loadSideModule(file: string): Module | null {
    const cached = this.sideModules.get(file);
    if (cached) return cached;
    const code = this.sideOutputs.get(file);
    if (code === undefined) return null;
    const mod = new Module(file, module);
    mod.filename = file;
    mod.paths = (Module as unknown as { _nodeModulePaths(d: string): string[] })._nodeModulePaths(path.dirname(file));
    mod.require = this.wrapRequire(Module.createRequire(file), path.dirname(file));
    this.sideModules.set(file, mod);
    (mod as unknown as { _compile(code: string, file: string): void })._compile(code, file);
    mod.loaded = true;
    return mod;
  }
}

/**
 * The declarations to keep after a cell failed at run time (an error or an interrupt): all of
 * them, except variables and classes the cell declared but never got to assign (TypeScript's
 * CommonJS output sets every exported name to undefined first). So after interrupting
 * `const loader = new DataLoader(...); for await (const b of loader) ...`, `loader` is usable.
 */
export function keepAssignedDecls(declText: string, scope: Record<string, unknown>): string {
  const sf = ts.createSourceFile("__prev__.d.ts", declText, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const assigned = (name: string): boolean => Object.prototype.hasOwnProperty.call(scope, name) && scope[name] !== undefined;
  const kept: string[] = [];
  for (const st of sf.statements) {
    if (ts.isVariableStatement(st)) {
      const decls = st.declarationList.declarations.filter((d) => !ts.isIdentifier(d.name) || assigned(d.name.text));
      if (decls.length === 0) continue;
      if (decls.length === st.declarationList.declarations.length) {
        kept.push(st.getText(sf));
        continue;
      }
      const head = declText.slice(st.getStart(sf), st.declarationList.declarations[0]!.getStart(sf));
      kept.push(head + decls.map((d) => d.getText(sf)).join(", ") + ";");
      continue;
    }
    if (ts.isClassDeclaration(st) && st.name && !assigned(st.name.text)) continue;
    kept.push(st.getText(sf));
  }
  return kept.join("\n") + "\n";
}

/** The scope object: TypeScript's CommonJS output defines imports with getters; keep them as plain, rewritable values. */
function createScope(): Record<string, unknown> {
  const target: Record<string, unknown> = {};
  return new Proxy(target, {
    defineProperty(t, prop, attrs) {
      if (prop === "__esModule") return true;
      t[prop as string] = attrs.get ? attrs.get() : attrs.value;
      return true;
    },
  });
}

let tslabModule: unknown = null;
function tslabPublic(): unknown {
  if (!tslabModule) tslabModule = require("tslab");
  return tslabModule;
}

function compileError(diags: Diagnostic[], where: string): ErrorInfo {
  const lines = diags.map((d) => {
    const file = d.fileName ?? where;
    return `${file}:${d.start.line + 1}:${d.start.character + 1} - error TS${d.code}: ${d.messageText}`;
  });
  const first = diags[0]!;
  const evalue = diags.length === 1 ? first.messageText : `${first.messageText} (and ${diags.length - 1} more)`;
  return { ename: "CompileError", evalue, traceback: lines };
}

function isSigintError(e: unknown): boolean {
  return e instanceof Error && /interrupted by `SIGINT`/.test(e.message);
}

/** ename/evalue/traceback for a thrown value. Frames inside the kernel and Node's internals are dropped. */
export function errorInfo(e: unknown, ctx?: CellContext): ErrorInfo {
  if (e instanceof Interrupted || isSigintError(e) || (ctx?.interrupted && e instanceof Error && e.name === "Interrupted")) {
    return { ename: "Interrupted", evalue: "execution interrupted (SIGINT); the kernel's state is kept", traceback: ["Interrupted: execution interrupted (SIGINT)"] };
  }
  if (!(e instanceof Error)) {
    const evalue = typeof e === "string" ? e : plainText(e);
    return { ename: "Uncaught", evalue, traceback: [`Uncaught ${plainText(e)}`] };
  }
  const ename = e.name || e.constructor?.name || "Error";
  const traceback = [`${ename}: ${e.message}`, ...frames(e)];
  let cause: unknown = (e as { cause?: unknown }).cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    if (cause instanceof Error) {
      traceback.push(`Caused by ${cause.name}: ${cause.message}`, ...frames(cause));
      cause = (cause as { cause?: unknown }).cause;
    } else {
      traceback.push(`Caused by ${plainText(cause)}`);
      break;
    }
  }
  return { ename, evalue: e.message, traceback };
}

/** Compiled JavaScript and TypeScript source of recent cells, by cell name, for tracebacks. */
const compiledCells = new Map<string, { compiled: string[]; source: string[] }>();

/** The kernel's wrapper in front of a cell's first compiled line. */
const WRAPPER = /^\((?:async )?function \(exports, require, \w+\) \{ /;

/**
 * Where `cell[N]:line:col` (compiled JavaScript, as V8 reports it) is in the cell's TypeScript,
 * or null where it cannot be told (see positions.ts).
 */
export function cellPosition(cellName: string, line: number, col: number): { line: number; col: number } | null {
  const cell = compiledCells.get(cellName);
  if (!cell) return null;
  const first = cell.compiled[0] ?? "";
  const prefix = WRAPPER.exec(first)?.[0].length ?? 0;
  const compiled = [first.slice(prefix), ...cell.compiled.slice(1)];
  return sourcePosition(cell.source, compiled, line, line === 1 ? Math.max(1, col - prefix) : col);
}

/**
 * Stack frames worth showing. A frame in a cell names the position in the cell's TypeScript
 * (tslab compiles without source maps: positions are mapped back, see positions.ts), and the
 * first such frame is followed by that source line (`> ...`). A position that cannot be mapped
 * keeps the compiled one, marked "(compiled JavaScript)", followed by the compiled line.
 */
function frames(e: Error): string[] {
  const stack = typeof e.stack === "string" ? e.stack.split("\n") : [];
  const out: string[] = [];
  let quoted = false;
  for (const l of stack) {
    if (!/^\s+at /.test(l) || l.includes(KERNEL_DIR + path.sep) || /\(node:|at node:/.test(l)) continue;
    const m = /(cell\[\d+\]):(\d+):(\d+)/.exec(l);
    if (!m) {
      out.push(l);
      continue;
    }
    const cell = compiledCells.get(m[1]!);
    // the kernel's call of the wrapped cell (its last line) is not the user's code
    if (cell && Number(m[2]) === cell.compiled.length && /^\}\)\(/.test(cell.compiled[cell.compiled.length - 1]!)) continue;
    const at = cellPosition(m[1]!, Number(m[2]), Number(m[3]));
    out.push(at ? l.replace(m[0], `${m[1]}:${at.line}:${at.col}`) : `${l} (compiled JavaScript)`);
    if (!quoted && cell) {
      let text = at ? (cell.source[at.line - 1] ?? "") : (cell.compiled[Number(m[2]) - 1] ?? "").replace(WRAPPER, "");
      text = text.trim();
      if (text.length > 160) text = text.slice(0, 157) + "...";
      if (text) out.push(`        > ${text}`);
      quoted = true;
    }
  }
  return out;
}

const NAME_CHAR = /[\w$]/;

/**
 * Where to inspect for a cursor at `cursor`: the cursor itself when it is on or just after a
 * name, else just before the `(` of the innermost call that is still open at the cursor
 * (strings and comments are not parsed: a best effort, as IPython's).
 */
export function inspectPosition(src: string, cursor: number): number {
  const at = Math.max(0, Math.min(cursor, src.length));
  if ((at > 0 && NAME_CHAR.test(src[at - 1]!)) || (at < src.length && NAME_CHAR.test(src[at]!))) return at;
  let depth = 0;
  for (let i = at - 1; i >= 0; i--) {
    const ch = src[i]!;
    if (ch === ")" || ch === "]" || ch === "}") depth++;
    else if (ch === "(" || ch === "[" || ch === "{") {
      if (depth > 0) {
        depth--;
        continue;
      }
      if (ch !== "(") continue; // an open object or array literal inside the call: keep looking
      let j = i;
      while (j > 0 && /\s/.test(src[j - 1]!)) j--;
      if (j > 0 && NAME_CHAR.test(src[j - 1]!)) return j;
    }
  }
  return at;
}
