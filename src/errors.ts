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

/**
 * An argument, option or field had the wrong type or value: `option` names it, `received` is the
 * value, `expected` says what would have been accepted (all three are in the message too).
 */
export class OptionError extends BatchlabError {
  readonly option: string;
  readonly received: unknown;
  readonly expected: string;
  constructor(option: string, received: unknown, expected: string, code = "ERR_BATCHLAB_OPTION") {
    super(`${option}: expected ${expected}, received ${describeValue(received)}`, code);
    this.option = option;
    this.received = received;
    this.expected = expected;
  }
}

/**
 * A plan job that an engine refused (native/PLAN_ABI.md, "Errors"): `option` is the job's field
 * (e.g. "tapIndex[17]"), `received` the engine's description of the value. Both native addons
 * and the reference check give this one shape.
 */
export class PlanError extends OptionError {
  declare readonly received: string;
  constructor(field: string, received: string, expected: string) {
    super(field, received, expected, "ERR_BATCHLAB_PLAN");
    this.message = `plan job: ${field}: expected ${expected}, received ${received}`;
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

/** Thrown by every CUDA call when there is no addon, no driver or no device. */
export class CudaUnavailableError extends BatchlabError {
  readonly reason: string;
  constructor(reason: string) {
    super(`CUDA is unavailable: ${reason}`, "ERR_CUDA_UNAVAILABLE");
    this.reason = reason;
  }
}

/** What the native addons put on the errors they throw (native/PLAN_ABI.md, "Errors"). */
interface NativeErrorFields {
  code?: unknown;
  message?: unknown;
  field?: unknown;
  expected?: unknown;
  received?: unknown;
  requestedBytes?: unknown;
  freeBytes?: unknown;
  what?: unknown;
}

/**
 * An error thrown by either native addon as the library's class: a refused plan job becomes a
 * PlanError (field, received, expected), a failed allocation a CudaOutOfMemoryError, anything
 * else a NativeError with the addon's code (or `fallbackCode`) and `context` before its text.
 */
export function fromNative(e: unknown, fallbackCode: string, context = ""): BatchlabError {
  if (e instanceof BatchlabError) return e;
  const x = (e ?? {}) as NativeErrorFields;
  const message = typeof x.message === "string" ? x.message : String(e);
  let out: BatchlabError;
  if (x.code === "ERR_BATCHLAB_PLAN" && typeof x.field === "string" && typeof x.expected === "string") {
    out = new PlanError(x.field, String(x.received), x.expected);
  } else if (x.code === "ERR_CUDA_OOM") {
    out = new CudaOutOfMemoryError(typeof x.what === "string" ? x.what : "allocation", Number(x.requestedBytes ?? 0), Number(x.freeBytes ?? 0));
  } else if (x.code === "ERR_CUDA_UNAVAILABLE") {
    out = new CudaUnavailableError(message.replace(/^CUDA is unavailable: /, ""));
  } else {
    out = new NativeError(context + message, typeof x.code === "string" && x.code.startsWith("ERR_") ? x.code : fallbackCode);
  }
  out.cause = e;
  return out;
}
