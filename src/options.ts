/**
 * Options, declared once. A checker validates one value and names it in its OptionError; an
 * options declaration (`declareOptions`) lists a function's options with their checkers and
 * defaults, and yields both the TypeScript type of the options argument (`OptionsOf`) and the
 * runtime check (`parse`), which rejects unknown keys so that typos do not pass silently.
 * Every stage checks its arguments with these; nothing else in the library validates options.
 */
import { OptionError } from "./errors";

// ------------------------------------------------------------------------------------ checkers

export function int(option: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new OptionError(option, v, `an integer${range(min, max)}`);
  }
  return v;
}

export function num(option: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw new OptionError(option, v, `a finite number${range(min, max)}`);
  }
  return v;
}

export function bool(option: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new OptionError(option, v, "true or false");
  return v;
}

export function oneOf<T extends string>(option: string, v: unknown, choices: readonly T[]): T {
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    throw new OptionError(option, v, `one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`);
  }
  return v as T;
}

/** A probability in [0, 1]. */
export function prob(option: string, v: unknown): number {
  return num(option, v, 0, 1);
}

/** A [lo, hi] pair with lo <= hi, both within [min, max]. */
export function pair(option: string, v: unknown, min = -Infinity, max = Infinity): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === "number" && Number.isFinite(x)) || v[0] > v[1] || v[0] < min || v[1] > max) {
    throw new OptionError(option, v, `a pair [lo, hi] of finite numbers with lo <= hi${range(min, max)}`);
  }
  return [v[0], v[1]];
}

/** An image size: one positive integer (square) or [height, width]. */
export function size2(option: string, v: unknown): [number, number] {
  if (typeof v === "number" && Number.isInteger(v) && v > 0) return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number" && Number.isInteger(x) && x > 0)) return [v[0], v[1]];
  throw new OptionError(option, v, "a positive integer or [height, width] of positive integers");
}

/** A whole number of bytes, at least `min`. */
export function bytes(option: string, v: unknown, min = 1): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > Number.MAX_SAFE_INTEGER) {
    throw new OptionError(option, v, `an integer number of bytes >= ${min}`);
  }
  return v;
}

/** A non-empty path string. */
export function pathString(option: string, v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0) throw new OptionError(option, v, what);
  return v;
}

/**
 * The options argument of `fn`: undefined (every default) or a plain object with known keys
 * only. Errors name `fn(options)` for the argument and `fn.key` for an unknown key.
 */
export function knownKeys<T extends object>(fn: string, v: unknown, keys: readonly string[]): Partial<T> {
  if (v === undefined) return {};
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new OptionError(`${fn}(options)`, v, `an options object with keys ${keys.join(", ")}`);
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new OptionError(`${fn}.${k}`, (v as Record<string, unknown>)[k], `no such option (known: ${keys.join(", ")})`);
  }
  return v as Partial<T>;
}

function range(min: number, max: number): string {
  if (min === -Infinity && max === Infinity) return "";
  if (max === Infinity) return ` >= ${min}`;
  if (min === -Infinity) return ` <= ${max}`;
  return ` in [${min}, ${max}]`;
}

// ------------------------------------------------------------------------------------ declarations

/**
 * One option: the type a caller may pass (`In`), the type after checking and defaults (`Out`),
 * and the check. `undefined` is never handed to `check`: it means "use the default".
 */
export interface Option<In, Out> {
  readonly check: (option: string, v: unknown) => Out;
  readonly fallback: (() => Out) | undefined;
  /** Phantom: the type accepted from callers. */
  readonly __in?: In;
}

/** An option with no default: absent stays undefined. */
export function optional<T>(check: (option: string, v: unknown) => T): Option<T, T | undefined>;
export function optional<In, Out>(check: (option: string, v: unknown) => Out): Option<In, Out | undefined>;
export function optional<In, Out>(check: (option: string, v: unknown) => Out): Option<In, Out | undefined> {
  return { check, fallback: undefined };
}

/** An option whose absence means `fallback()` (a function, so a default may depend on the machine). */
export function withDefault<T>(check: (option: string, v: unknown) => T, fallback: T | (() => T)): Option<T, T>;
export function withDefault<In, Out>(check: (option: string, v: unknown) => Out, fallback: Out | (() => Out)): Option<In, Out>;
export function withDefault<In, Out>(check: (option: string, v: unknown) => Out, fallback: Out | (() => Out)): Option<In, Out> {
  return { check, fallback: typeof fallback === "function" ? (fallback as () => Out) : () => fallback };
}

export type OptionSpec = Record<string, Option<unknown, unknown>>;

/** The options argument a caller writes: every key optional, of the type it accepts. */
export type OptionsOf<S extends OptionSpec> = { [K in keyof S]?: S[K] extends Option<infer In, unknown> ? In : never };

/** The checked options, defaults applied. */
export type Checked<S extends OptionSpec> = { [K in keyof S]: S[K] extends Option<unknown, infer Out> ? Out : never };

export interface OptionsDeclaration<S extends OptionSpec> {
  readonly name: string;
  /** The declaration itself (for `OptionsOf<(typeof X)["spec"]>`). */
  readonly spec: S;
  readonly keys: readonly (keyof S & string)[];
  /** Checks an options argument (unknown keys, then each option in declaration order). */
  parse(v: unknown): Checked<S>;
}

/** Declares the options of `name` (errors say `name.key`). */
export function declareOptions<S extends OptionSpec>(name: string, spec: S): OptionsDeclaration<S> {
  const keys = Object.keys(spec) as (keyof S & string)[];
  return {
    name,
    spec,
    keys,
    parse(v: unknown): Checked<S> {
      const given = knownKeys<Record<string, unknown>>(name, v, keys);
      const out = {} as Record<string, unknown>;
      for (const k of keys) {
        const o = spec[k]!;
        const x = given[k];
        out[k] = x === undefined ? o.fallback?.() : o.check(`${name}.${k}`, x);
      }
      return out as Checked<S>;
    },
  };
}
