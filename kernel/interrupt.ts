/**
 * Making asynchronous cells interruptible.
 *
 * A synchronous loop is stopped by vm's breakOnSigint. Once a cell awaits, the rest of it runs
 * from the microtask queue, where no signal can reach it; racing the cell's promise against an
 * interrupt (what tslab does) answers the front end but leaves the loop running in the
 * background. So the compiled JavaScript of a cell is rewritten: every top-level `await x`
 * becomes `cell.pass(await x)` and every `for await (... of it)` iterates `cell.guard(it)`. Both
 * throw an Interrupted error once the cell is interrupted, which ends the loop, and an iterator
 * left this way is closed (its `return()` runs), so a data loader can release its workers.
 * Functions declared inside the cell are left alone: they may be called by later cells.
 */
import * as ts from "@tslab/typescript-for-tslab";

export const CELL_PARAM = "__batchlab_cell__";

export class Interrupted extends Error {
  constructor() {
    super("execution interrupted (SIGINT)");
    this.name = "Interrupted";
  }
}

export interface CellControl {
  readonly interrupted: boolean;
  /** Returns `v` unless the cell was interrupted, in which case it throws Interrupted. */
  pass<T>(v: T): T;
  /** An async iterable over `it` that throws Interrupted at the next step after an interrupt. */
  guard<T>(it: AsyncIterable<T> | Iterable<T>): AsyncIterable<T>;
}

export class CellContext implements CellControl {
  interrupted = false;
  private rejectInterrupt!: (e: Error) => void;
  /** Rejects with Interrupted when interrupt() is called; never resolves. */
  readonly interruptedPromise: Promise<never>;

  constructor() {
    this.interruptedPromise = new Promise<never>((_, reject) => {
      this.rejectInterrupt = reject;
    });
    this.interruptedPromise.catch(() => {});
  }

  interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.rejectInterrupt(new Interrupted());
  }

  /** When a guarded loop last let the event loop run (Date.now()). */
  lastYield = Date.now();

  pass = <T>(v: T): T => {
    if (this.interrupted) throw new Interrupted();
    return v;
  };

  guard = <T>(it: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> => {
    const ctx = this;
    const source = it as Partial<AsyncIterable<T> & Iterable<T>>;
    return {
      [Symbol.asyncIterator](): AsyncIterator<T> {
        let inner: AsyncIterator<T> | Iterator<T>;
        if (typeof source[Symbol.asyncIterator] === "function") inner = source[Symbol.asyncIterator]!();
        else if (typeof source[Symbol.iterator] === "function") inner = source[Symbol.iterator]!();
        else throw new TypeError("for await: the value is not async iterable");
        let closed = false;
        const close = async (): Promise<void> => {
          if (closed) return;
          closed = true;
          if (typeof inner.return === "function") await inner.return();
        };
        return {
          async next(): Promise<IteratorResult<T>> {
            // An iterator whose steps resolve through microtasks only (a DataLoader with its batches
            // ready) never lets the event loop run, so SIGINT's handler and the control channel's
            // interrupt_request would wait for the loop's end: let a macrotask through every 50 ms.
            if (Date.now() - ctx.lastYield >= 50) {
              await new Promise<void>((r) => setImmediate(r));
              ctx.lastYield = Date.now();
            }
            if (ctx.interrupted) {
              await close();
              throw new Interrupted();
            }
            const r = await inner.next();
            const value = r.done ? r.value : await r.value;
            if (ctx.interrupted) {
              if (!r.done) await close();
              throw new Interrupted();
            }
            if (r.done) closed = true;
            return { done: r.done, value } as IteratorResult<T>;
          },
          async return(value?: unknown): Promise<IteratorResult<T>> {
            await close();
            return { done: true, value: value as T };
          },
        };
      },
    };
  };
}

/**
 * Insert interrupt checks into compiled cell JavaScript (see the file comment). Insertion only,
 * so line numbers and columns before each insertion stay as they were.
 */
export function instrumentAsync(js: string): string {
  return analyzeAsync(js).js;
}

/**
 * Find top-level `await` and `for await` in compiled cell JavaScript and insert the interrupt
 * checks. `isAsync` tells whether the cell must run in an async function: tslab only notices
 * `await` expressions, not a `for await` loop on its own.
 */
export function analyzeAsync(js: string): { js: string; isAsync: boolean } {
  const sf = ts.createSourceFile("cell.js", js, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  interface Wrap {
    start: number;
    end: number;
    open: string;
    close: string;
  }
  const wraps: Wrap[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isFunctionLike(node) ||
      ts.isClassDeclaration(node) ||
      ts.isClassExpression(node)
    ) {
      return; // their bodies run later, possibly from another cell
    }
    if (ts.isAwaitExpression(node)) {
      wraps.push({ start: node.getStart(sf), end: node.getEnd(), open: `${CELL_PARAM}.pass(`, close: ")" });
    } else if (ts.isForOfStatement(node) && node.awaitModifier) {
      const e = node.expression;
      wraps.push({ start: e.getStart(sf), end: e.getEnd(), open: `${CELL_PARAM}.guard(`, close: ")" });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (wraps.length === 0) return { js, isAsync: false };
  // Outer ranges open first and close last; for equal ranges the one found first is outer.
  const order = wraps.map((w, i) => ({ ...w, i }));
  order.sort((a, b) => a.start - b.start || b.end - a.end || a.i - b.i);
  const events: Array<{ pos: number; text: string; close: boolean; k: number }> = [];
  order.forEach((w, k) => {
    events.push({ pos: w.start, text: w.open, close: false, k });
    events.push({ pos: w.end, text: w.close, close: true, k });
  });
  // At one position: closings before openings, inner closings first, outer openings first.
  events.sort((a, b) => {
    if (a.pos !== b.pos) return a.pos - b.pos;
    if (a.close !== b.close) return a.close ? -1 : 1;
    return a.close ? b.k - a.k : a.k - b.k;
  });
  let out = "";
  let at = 0;
  for (const ev of events) {
    out += js.slice(at, ev.pos) + ev.text;
    at = ev.pos;
  }
  return { js: out + js.slice(at), isAsync: true };
}
