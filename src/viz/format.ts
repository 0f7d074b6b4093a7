/** Small text helpers shared by the views' summaries. */

/** A number for people: integers as is, others with up to `digits` decimals (trailing zeros cut). */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  const s = x.toFixed(digits);
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

export function fmtList(xs: ArrayLike<number>, digits = 3): string {
  return `[${Array.from(xs, (x) => fmt(x, digits)).join(", ")}]`;
}

/** Bytes with binary units: 1 KiB, 4 MiB. */
export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  let x = n;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${fmt(x, u === 0 ? 0 : 1)} ${units[u]}`;
}

/** Seconds as m:ss or h:mm:ss. */
export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${String(m).padStart(2, "0")}:${ss}`;
}

/** A class's display name: its name when known, else its number. */
export function className(label: number, names: readonly string[] | undefined): string {
  const n = names?.[label];
  return n !== undefined ? n : String(label);
}
