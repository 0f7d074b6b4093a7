/** The notebook view of a dataset: a MIME bundle with a text and an HTML summary. */
import { DISPLAY, summaryBundle, type Bundle } from "../display/index";
import type { Dataset } from "./types";

const MAX_NAMES = 20;

function namesText(names: readonly string[] | undefined): string {
  if (!names) return "unknown";
  const shown = names.slice(0, MAX_NAMES).map((n, k) => `${k}: ${n}`).join(", ");
  return names.length > MAX_NAMES ? `${shown}, ... (${names.length - MAX_NAMES} more)` : shown;
}

/** A text and HTML summary of any dataset: its kind, length, shape, class names and source. */
export function describeDataset(ds: Dataset, kind: string, source?: string): Bundle {
  const shape = ds.shape ? `${ds.shape.join(" x ")} (H x W x C, uint8)` : "varies (decoded per sample)";
  const classes = ds.classNames ? `${ds.classNames.length}: ${namesText(ds.classNames)}` : "unknown";
  const rows: [string, string][] = [
    ["samples", String(ds.length)],
    ["shape", shape],
    ["classes", classes],
  ];
  if (source) rows.push(["source", source]);
  const text = [`${kind}: ${ds.length} samples`, ...rows.slice(1).map(([k, x]) => `  ${k}: ${x}`)].join("\n");
  return summaryBundle("batchlab-dataset", kind, text, rows);
}

/** Gives a plain dataset object a notebook view (non-enumerable, so spreads and JSON skip it). */
export function withDisplay<T extends Dataset>(ds: T, kind: string, source?: () => string | undefined): T {
  Object.defineProperty(ds, DISPLAY, { value: () => describeDataset(ds, kind, source?.()).data, enumerable: false });
  return ds;
}
