/** Small option checkers shared by every stage. Each throws OptionError naming the option. */
import { OptionError } from "./errors";

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

/** Rejects keys that an options object does not know, so typos do not pass silently. */
export function knownKeys(option: string, v: object | undefined, keys: readonly string[]): void {
  if (v === undefined) return;
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new OptionError(option, v, "an options object");
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) {
      throw new OptionError(`${option}.${k}`, (v as Record<string, unknown>)[k], `no such option (known: ${keys.join(", ")})`);
    }
  }
}

function range(min: number, max: number): string {
  if (min === -Infinity && max === Infinity) return "";
  if (max === Infinity) return ` >= ${min}`;
  if (min === -Infinity) return ` <= ${max}`;
  return ` in [${min}, ${max}]`;
}
