/**
 * Error positions in the user's TypeScript. tslab compiles a cell without source maps, and the
 * kernel's interrupt rewrite and wrapper change it again, so a stack frame's `cell[N]:line:col`
 * names the compiled JavaScript. The compiled code keeps the cell's statements in order, with
 * types erased and a few names added (`exports.`, the interrupt hooks), so each compiled line is
 * matched to the source line whose tokens (names and literals) it shares most, in order, and the
 * column follows the token at the compiled column. A best effort: where no source line shares
 * at least half of the compiled line's tokens, the position is not mapped.
 */

interface Token {
  text: string;
  col: number; // 0-based
}

const TOKEN = /[A-Za-z_$][\w$]*|\d[\w.]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g;
/** Names the compiler and the kernel add to compiled lines. */
const ADDED = new Set(["exports", "tsLastExpr", "__esModule", "__batchlab_cell__"]);

function tokens(line: string, compiled: boolean): Token[] {
  const out: Token[] = [];
  let skipNext = false;
  for (const m of line.matchAll(TOKEN)) {
    const text = m[0];
    if (compiled) {
      if (skipNext) {
        skipNext = false;
        if (text === "pass" || text === "guard") continue;
      }
      if (ADDED.has(text)) {
        skipNext = text === "__batchlab_cell__";
        continue;
      }
    }
    out.push({ text, col: m.index! });
  }
  return out;
}

/** The longest common subsequence of two token lists: its length and the pairs (i in a, j in b). */
function lcs(a: Token[], b: Token[]): { length: number; pairs: [number, number][] } {
  const n = a.length;
  const m = b.length;
  const dp: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i]![j] = a[i]!.text === b[j]!.text ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const pairs: [number, number][] = [];
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (a[i]!.text === b[j]!.text) pairs.push([i++, j++]);
    else if (dp[i + 1]![j]! >= dp[i]![j + 1]!) i++;
    else j++;
  }
  return { length: dp[0]![0]!, pairs };
}

/**
 * The source position (1-based line and column) of compiled position (`line`, `col`, 1-based as
 * V8 reports them) or null. `compiled` is the code as it ran (its first line without the
 * kernel's wrapper), `source` the cell as the user wrote it.
 */
export function sourcePosition(source: readonly string[], compiled: readonly string[], line: number, col: number): { line: number; col: number } | null {
  const text = compiled[line - 1];
  if (text === undefined) return null;
  const ct = tokens(text, true);
  if (ct.length === 0) return null;
  const expected = compiled.length > 1 ? ((line - 1) * (source.length - 1)) / (compiled.length - 1) : 0;
  let best: { i: number; score: number; pairs: [number, number][]; st: Token[] } | undefined;
  source.forEach((s, i) => {
    const st = tokens(s, false);
    if (st.length === 0) return;
    const r = lcs(ct, st);
    const score = r.length / ct.length - Math.abs(i - expected) * 1e-6;
    if (!best || score > best.score) best = { i, score, pairs: r.pairs, st };
  });
  if (!best || best.score < 0.5) return null;
  // the compiled token at (or else the first one after) the column
  const c0 = col - 1;
  let k = ct.findIndex((t) => c0 >= t.col && c0 < t.col + t.text.length);
  if (k < 0) k = ct.findIndex((t) => t.col >= c0);
  const pair = best.pairs.find(([i]) => i >= (k < 0 ? 0 : k)) ?? best.pairs[best.pairs.length - 1];
  if (!pair) return { line: best.i + 1, col: (/\S/.exec(source[best.i]!)?.index ?? 0) + 1 };
  const [ci, si] = pair;
  // keep the offset into the token (e.g. a call's "(" after the name) when it was matched exactly
  const offset = ci === k ? Math.max(0, c0 - ct[ci]!.col) : 0;
  return { line: best.i + 1, col: best.st[si]!.col + 1 + (ci === k && offset < ct[ci]!.text.length ? offset : 0) };
}
