/**
 * Checks on the content of shell requests, and this session's input history.
 *
 * A signed request whose content has the wrong shape (an execute_request whose `code` is a
 * number, a complete_request with no content...) must still get its `*_reply`, or the front end
 * waits forever: `checkRequest` names the field, the value received and what was expected, and
 * the server answers `status: "error"` with ename `InvalidRequest` and that text as evalue.
 */
import { inspect } from "node:util";

export interface RequestProblem {
  ename: "InvalidRequest";
  evalue: string;
  traceback: string[];
}

type Check = (v: unknown) => boolean;
interface Field {
  check: Check;
  expected: string;
  optional?: boolean;
}

const str: Check = (v) => typeof v === "string";
const bool: Check = (v) => typeof v === "boolean";
const int: Check = (v) => typeof v === "number" && Number.isInteger(v);
const plainObject: Check = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

const FIELDS: Record<string, Record<string, Field>> = {
  execute_request: {
    code: { check: str, expected: "a string (the cell's source)" },
    silent: { check: bool, expected: "a boolean", optional: true },
    store_history: { check: bool, expected: "a boolean", optional: true },
    stop_on_error: { check: bool, expected: "a boolean", optional: true },
    allow_stdin: { check: bool, expected: "a boolean", optional: true },
    user_expressions: { check: plainObject, expected: "an object of name: expression", optional: true },
  },
  complete_request: {
    code: { check: str, expected: "a string (the code to complete)" },
    cursor_pos: { check: int, expected: "an integer offset into code", optional: true },
  },
  inspect_request: {
    code: { check: str, expected: "a string (the code to inspect)" },
    cursor_pos: { check: int, expected: "an integer offset into code", optional: true },
    detail_level: { check: (v) => v === 0 || v === 1, expected: "0 or 1", optional: true },
  },
  is_complete_request: {
    code: { check: str, expected: "a string (the code to check)" },
  },
  history_request: {
    hist_access_type: { check: (v) => v === "tail" || v === "range" || v === "search", expected: '"tail", "range" or "search"' },
    output: { check: bool, expected: "a boolean", optional: true },
    raw: { check: bool, expected: "a boolean", optional: true },
    n: { check: (v) => int(v) && (v as number) >= 0, expected: "a non-negative integer", optional: true },
    session: { check: int, expected: "an integer (0 or this session's number)", optional: true },
    start: { check: int, expected: "an integer execution count", optional: true },
    stop: { check: int, expected: "an integer execution count", optional: true },
    pattern: { check: str, expected: "a glob pattern string", optional: true },
    unique: { check: bool, expected: "a boolean", optional: true },
  },
};

function describe(v: unknown): string {
  const shown = inspect(v, { depth: 2, breakLength: Infinity, maxStringLength: 80, maxArrayLength: 10 });
  const kind = v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  return `${shown} (${kind})`;
}

function problem(evalue: string): RequestProblem {
  return { ename: "InvalidRequest", evalue, traceback: [`InvalidRequest: ${evalue}`] };
}

/** null when `content` is acceptable for `msgType` (or the type has no checks), else what is wrong. */
export function checkRequest(msgType: string, content: unknown): RequestProblem | null {
  const fields = FIELDS[msgType];
  if (!fields) return null;
  if (!plainObject(content)) return problem(`${msgType}: content must be an object, got ${describe(content)}`);
  const c = content as Record<string, unknown>;
  for (const [name, f] of Object.entries(fields)) {
    const v = c[name];
    if (v === undefined || (v === null && f.optional)) {
      if (f.optional) continue;
      return problem(`${msgType}: content.${name} is missing; expected ${f.expected}`);
    }
    if (!f.check(v)) return problem(`${msgType}: content.${name} must be ${f.expected}, got ${describe(v)}`);
  }
  const code = c.code;
  const cursor = c.cursor_pos;
  if (typeof code === "string" && typeof cursor === "number" && (cursor < 0 || cursor > code.length)) {
    return problem(`${msgType}: content.cursor_pos must be from 0 to ${code.length} (the length of code), got ${cursor}`);
  }
  return null;
}

// ------------------------------------------------------------------------------------------ history

export interface HistoryEntry {
  line: number;
  input: string;
  /** text/plain of the cell's execute_result, or null. */
  output: string | null;
}

export interface HistoryRequest {
  hist_access_type: "tail" | "range" | "search";
  output?: boolean;
  n?: number | null;
  session?: number | null;
  start?: number | null;
  stop?: number | null;
  pattern?: string | null;
  unique?: boolean;
}

export type HistoryItem = [number, number, string | [string, string | null]];

/** IPython's (SQLite GLOB) pattern: `*`, `?`, `[...]`, `[!...]`; matches the whole input, case-sensitive. */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "*") re += "[\\s\\S]*";
    else if (ch === "?") re += "[\\s\\S]";
    else if (ch === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = pattern.slice(i + 1, end);
        const negate = body.startsWith("!") || body.startsWith("^");
        if (negate) body = body.slice(1);
        re += `[${negate ? "^" : ""}${body.replace(/[\\\]]/g, "\\$&")}]`;
        i = end;
      }
    } else re += ch.replace(/[.+^${}()|\\/\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * This kernel session's executed cells (those stored in history: not silent, store_history),
 * queried as IPython's history manager does. There is one session, numbered `session`; a
 * request's `session` of 0 (or absent) or that number means it, any other session has no cells.
 */
export class History {
  private readonly entries: HistoryEntry[] = [];
  constructor(readonly session = 1, private readonly capacity = 10000) {}

  add(entry: HistoryEntry): void {
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.shift();
  }

  /** Set the output of the cell with execution count `line` (its execute_result's text). */
  setOutput(line: number, output: string): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i]!.line === line) {
        this.entries[i]!.output = output;
        return;
      }
    }
  }

  query(r: HistoryRequest): HistoryItem[] {
    let picked: HistoryEntry[];
    const n = r.n ?? null;
    switch (r.hist_access_type) {
      case "tail":
        picked = n === null ? this.entries.slice(-10) : n === 0 ? [] : this.entries.slice(-n);
        break;
      case "range": {
        const s = r.session ?? 0;
        if (s !== 0 && s !== this.session) {
          picked = [];
          break;
        }
        const start = r.start ?? 1;
        const stop = r.stop ?? null;
        picked = this.entries.filter((e) => e.line >= start && (stop === null || e.line < stop));
        break;
      }
      case "search": {
        const re = globToRegExp(r.pattern ?? "*");
        picked = this.entries.filter((e) => re.test(e.input));
        if (r.unique) {
          // keep the latest occurrence of each input, in order
          const last = new Map<string, HistoryEntry>();
          for (const e of picked) {
            last.delete(e.input);
            last.set(e.input, e);
          }
          picked = [...last.values()];
        }
        if (n !== null) picked = n === 0 ? [] : picked.slice(-n);
        break;
      }
    }
    return picked.map((e) => [this.session, e.line, r.output ? [e.input, e.output] : e.input]);
  }
}
