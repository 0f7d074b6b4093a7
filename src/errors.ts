/**
 * Every error batchlab throws is a BatchlabError. Messages name the option or file, the
 * value received and what was expected, so a notebook user can fix the call without
 * reading our source.
 */
export class BatchlabError extends Error {
  /** A stable machine-readable code, e.g. ERR_BATCHLAB_OPTION. */
  readonly code: string;
  constructor(message: string, code = "ERR_BATCHLAB") {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An argument or option had the wrong type or value. */
export class OptionError extends BatchlabError {
  readonly option: string;
  readonly received: unknown;
  constructor(option: string, received: unknown, expected: string) {
    super(`${option}: expected ${expected}, received ${describeValue(received)}`, "ERR_BATCHLAB_OPTION");
    this.option = option;
    this.received = received;
  }
}

/** A file could not be read or parsed. `offset` is the byte offset of the problem when known. */
export class FileFormatError extends BatchlabError {
  readonly path: string;
  readonly offset: number | undefined;
  constructor(path: string, problem: string, offset?: number) {
    super(`${path}${offset === undefined ? "" : ` (byte offset ${offset})`}: ${problem}`, "ERR_BATCHLAB_FILE");
    this.path = path;
    this.offset = offset;
  }
}

/** Loading or transforming one sample failed; carries the dataset index and, if any, its file. */
export class SampleError extends BatchlabError {
  readonly index: number;
  readonly path: string | undefined;
  override readonly cause: unknown;
  constructor(index: number, path: string | undefined, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`sample ${index}${path ? ` (${path})` : ""} failed: ${reason}`, "ERR_BATCHLAB_SAMPLE");
    this.index = index;
    this.path = path;
    this.cause = cause;
  }
}

/** A loader or native call exceeded its `timeout`. */
export class TimeoutError extends BatchlabError {
  constructor(what: string, ms: number) {
    super(`${what} did not finish within timeout=${ms} ms`, "ERR_BATCHLAB_TIMEOUT");
  }
}

/** The native addon (or its CUDA part) failed; the message comes from C++. */
export class NativeError extends BatchlabError {
  constructor(message: string, code = "ERR_BATCHLAB_NATIVE") {
    super(message, code);
  }
}

/** A device or pinned allocation failed: carries the bytes asked for and the bytes free. */
export class CudaOutOfMemoryError extends BatchlabError {
  readonly requestedBytes: number;
  readonly freeBytes: number;
  constructor(what: string, requestedBytes: number, freeBytes: number) {
    super(
      `CUDA out of memory: ${what} of ${formatBytes(requestedBytes)} (${requestedBytes} bytes) failed; ` +
        `${formatBytes(freeBytes)} (${freeBytes} bytes) free`,
      "ERR_CUDA_OOM",
    );
    this.requestedBytes = requestedBytes;
    this.freeBytes = freeBytes;
  }
}

export function describeValue(v: unknown): string {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? v.slice(0, 77) + "..." : v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (typeof v === "function") return `function ${v.name || "(anonymous)"}`;
  if (Array.isArray(v)) {
    const s = JSON.stringify(v);
    return s !== undefined && s.length <= 80 ? s : `an array of length ${v.length}`;
  }
  if (ArrayBuffer.isView(v)) return `${v.constructor.name} of length ${(v as unknown as ArrayLike<number>).length ?? v.byteLength}`;
  const name = (v as object).constructor?.name;
  return name && name !== "Object" ? `a ${name}` : `an object ${safeJson(v)}`;
}

function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? s.slice(0, 77) + "..." : s;
  } catch {
    return "{...}";
  }
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  let x = n;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${u === 0 ? x : x.toFixed(1)} ${units[u]}`;
}
