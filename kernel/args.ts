/**
 * Command-line options of the kernel's commands (install, notebook), read with node:util's
 * parseArgs: `--flag value`, `--flag=value`, `-h`. A bad flag fails with the command's name and
 * its usage text.
 */
import { parseArgs } from "node:util";

/** The flags a command takes, by long name (without the dashes). */
export type Flags = Record<string, { type: "string" | "boolean"; short?: string }>;

/** One option given on the command line, in order; `value` is set for string flags. */
export interface OptionToken {
  name: string;
  value: string | undefined;
}

/**
 * The options in `args`, in the order given (repeats kept: the caller decides). Throws for an
 * unknown flag or a positional argument (`unknown <what> "<the argument as given>"`) and for a
 * string flag without a value (`<flag> needs a value`), each followed by `usage`.
 */
export function optionTokens(cmd: string, args: string[], flags: Flags, usage: string, what = "option"): OptionToken[] {
  const { tokens } = parseArgs({ args, options: flags, strict: false, allowPositionals: true, tokens: true });
  const out: OptionToken[] = [];
  for (const t of tokens) {
    if (t.kind === "option-terminator") continue;
    if (t.kind === "positional" || !Object.hasOwn(flags, t.name)) {
      throw new Error(`batchlab ${cmd}: unknown ${what} ${JSON.stringify(args[t.index])}\n${usage}`);
    }
    if (flags[t.name]!.type === "string" && !t.value) throw new Error(`batchlab ${cmd}: ${t.rawName} needs a value\n${usage}`);
    out.push({ name: t.name, value: t.value });
  }
  return out;
}
