/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0, C order). The header is a Python dict
 * literal such as {'descr': '|u1', 'fortran_order': False, 'shape': (60000, 28, 28), }; it is
 * parsed by a small reader of exactly that grammar, so a malformed header is reported at the
 * byte where it stops making sense.
 */
import { FileFormatError } from "../errors";
import { checkedByteCount, checkFileLabels, classNamesOption } from "./check";
import { knownKeys as checkOptions } from "../options";
import { type FileBytes, offsetNote, readBytes } from "./files";
import { ArrayDataset } from "./memory";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface NpyArray {
  /** The dtype string as written, e.g. "|u1" or "<i8". */
  dtype: string;
  kind: "b" | "i" | "u" | "f" | "c";
  itemsize: number;
  littleEndian: boolean;
  shape: number[];
  /** Where the data starts in the file. */
  dataOffset: number;
  /** Byte offset of each header value (descr, fortran_order, shape), for error messages. */
  valueOffsets: Record<string, number>;
  /** The array's bytes: a view into the file's buffer. */
  data: Uint8Array;
}

type PyValue = string | boolean | number[];

/** Reads the header dict; `base` is the header's byte offset in the file. */
function parseHeaderDict(text: string, base: number, fail: (problem: string, offset: number) => never): { values: Record<string, PyValue>; offsets: Record<string, number>; dimOffsets: number[] } {
  let p = 0;
  const dimOffsets: number[] = [];
  const ws = (): void => {
    while (p < text.length && /\s/.test(text[p]!)) p++;
  };
  const expect = (ch: string, what: string): void => {
    ws();
    if (text[p] !== ch) fail(`malformed .npy header: expected ${what} at header character ${p}, found ${p < text.length ? JSON.stringify(text[p]) : "the end of the header"}`, base + p);
    p++;
  };
  const str = (): string => {
    ws();
    const q = text[p];
    if (q !== "'" && q !== '"') fail(`malformed .npy header: expected a quoted string at header character ${p}`, base + p);
    const end = text.indexOf(q!, p + 1);
    if (end < 0) fail("malformed .npy header: unterminated string", base + p);
    const s = text.slice(p + 1, end);
    p = end + 1;
    return s;
  };
  const value = (): PyValue => {
    ws();
    const ch = text[p];
    if (ch === "'" || ch === '"') return str();
    if (text.startsWith("True", p)) return (p += 4), true;
    if (text.startsWith("False", p)) return (p += 5), false;
    if (ch === "(") {
      p++;
      const dims: number[] = [];
      dimOffsets.length = 0;
      for (;;) {
        ws();
        if (text[p] === ")") {
          p++;
          return dims;
        }
        const m = /^\d+L?/.exec(text.slice(p, p + 24));
        if (!m) fail(`malformed .npy header: expected a dimension (a non-negative integer) or ")" at header character ${p}`, base + p);
        dimOffsets.push(base + p);
        dims.push(Number.parseInt(m![0], 10));
        p += m![0].length;
        ws();
        if (text[p] === ",") p++;
        else if (text[p] !== ")") fail(`malformed .npy header: expected "," or ")" in the shape at header character ${p}`, base + p);
      }
    }
    if (ch === "[") fail("structured dtypes (a list descr) are not supported: expected a plain dtype such as '|u1'", base + p);
    return fail(`malformed .npy header: expected a value (string, True, False or a tuple) at header character ${p}`, base + p);
  };
  const values: Record<string, PyValue> = {};
  const offsets: Record<string, number> = {};
  const keyOffsets: Record<string, number> = {};
  expect("{", '"{"');
  for (;;) {
    ws();
    if (text[p] === "}") {
      p++;
      break;
    }
    const keyAt = p;
    const key = str();
    if (key in values) fail(`malformed .npy header: key '${key}' appears twice`, base + keyAt);
    keyOffsets[key] = base + keyAt;
    expect(":", '":"');
    ws();
    offsets[key] = base + p;
    values[key] = value();
    ws();
    if (text[p] === ",") p++;
    else if (text[p] !== "}") fail(`malformed .npy header: expected "," or "}" at header character ${p}`, base + p);
  }
  ws();
  if (p !== text.length) fail(`malformed .npy header: unexpected ${JSON.stringify(text.slice(p, p + 10))} after the dict`, base + p);
  for (const k of ["descr", "fortran_order", "shape"]) if (!(k in values)) fail(`malformed .npy header: no '${k}' key`, base);
  for (const k of Object.keys(values)) if (!["descr", "fortran_order", "shape"].includes(k)) fail(`malformed .npy header: unknown key '${k}'`, keyOffsets[k]!);
  return { values, offsets, dimOffsets };
}

/** Item sizes numpy writes for each dtype kind. */
const ITEMSIZES: Record<string, readonly number[]> = { b: [1], i: [1, 2, 4, 8], u: [1, 2, 4, 8], f: [2, 4, 8, 16], c: [8, 16, 32] };

/**
 * The largest header accepted: numpy (1.24 and later) refuses headers above 10000 bytes unless
 * told otherwise; this allows ten times that.
 */
const MAX_HEADER = 100000;

/**
 * The .npy header at the start of `buf` (everything but the data-length checks); undefined when
 * `partial` and more bytes are needed.
 */
function parseNpyHeader(file: string, buf: Uint8Array, note: string, partial: boolean): Omit<NpyArray, "data"> & { need: number } | undefined {
  const fail = (problem: string, offset: number): never => {
    throw new FileFormatError(file, problem + note, offset);
  };
  for (let k = 0; k < MAGIC.length; k++) {
    if (k >= buf.length) return partial ? undefined : fail(`the file ends inside the .npy magic string (it has ${buf.length} bytes)`, buf.length);
    if (buf[k] !== MAGIC[k]) fail(`not a .npy file: byte ${k} is 0x${buf[k]!.toString(16).padStart(2, "0")}, the magic string \\x93NUMPY expects 0x${MAGIC[k]!.toString(16)}`, k);
  }
  if (buf.length < 8) return partial ? undefined : fail("the file ends before the .npy version bytes", buf.length);
  const major = buf[6]!;
  if (major < 1 || major > 3) fail(`unsupported .npy format version ${major}.${buf[7]} (known: 1.0, 2.0, 3.0)`, 6);
  const lenBytes = major === 1 ? 2 : 4;
  const start = 8 + lenBytes;
  if (buf.length < start) return partial ? undefined : fail("the file ends inside the .npy header length field", buf.length);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (headerLen > MAX_HEADER) fail(`the header length field declares ${headerLen} header bytes, above the limit of ${MAX_HEADER} (numpy itself writes short headers)`, 8);
  if (buf.length < start + headerLen) return partial ? undefined : fail(`the header length field declares ${headerLen} header bytes (ending at byte ${start + headerLen}), the file ends at byte ${buf.length}`, buf.length);
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, headerLen).toString("latin1");
  const { values, offsets, dimOffsets } = parseHeaderDict(text, start, fail);
  const descr = values["descr"];
  if (typeof descr !== "string") return fail("malformed .npy header: 'descr' must be a string", offsets["descr"]!);
  const dm = /^([<>|=]?)([biufc])(\d+)$/.exec(descr);
  if (!dm) return fail(`unsupported dtype '${descr}' (expected a plain numeric dtype such as '|u1' or '<i8')`, offsets["descr"]!);
  const order = values["fortran_order"];
  if (typeof order !== "boolean") return fail("malformed .npy header: 'fortran_order' must be True or False", offsets["fortran_order"]!);
  if (order) return fail("Fortran-order arrays are not supported, only C order (save np.ascontiguousarray(a))", offsets["fortran_order"]!);
  const shape = values["shape"];
  if (!Array.isArray(shape)) return fail("malformed .npy header: 'shape' must be a tuple of integers", offsets["shape"]!);
  const itemsize = Number(dm[3]);
  const kind = dm[2] as NpyArray["kind"];
  if (!ITEMSIZES[kind]!.includes(itemsize)) return fail(`unsupported dtype '${descr}': no ${itemsize}-byte '${kind}' type (sizes: ${ITEMSIZES[kind]!.join(", ")})`, offsets["descr"]!);
  const littleEndian = dm[1] !== ">";
  const count = checkedByteCount(shape, itemsize);
  if ("overflowAt" in count) {
    return fail(`shape (${shape.join(", ")}) of ${descr} declares more data bytes than 2^53 - 1 (the product overflows at dimension ${count.overflowAt})`, dimOffsets[count.overflowAt] ?? offsets["shape"]!);
  }
  return { dtype: descr, kind, itemsize, littleEndian, shape, dataOffset: start + headerLen, valueOffsets: offsets, need: count.bytes };
}

/**
 * For readBytes: the length of the (gunzipped) .npy data that the header at the start of
 * `head` declares, or undefined until the header is complete; a bad header throws at once.
 */
export function npyDeclaredLength(file: string, note = " [offset counts bytes of the gunzipped data]"): (head: Uint8Array) => number | undefined {
  return (head) => {
    const h = parseNpyHeader(file, head, note, true);
    return h && h.dataOffset + h.need;
  };
}

/** Parses a .npy file's bytes (versions 1, 2, 3); the data must be C order. */
export function parseNpy(file: string, buf: Uint8Array, note = ""): NpyArray {
  const { need, ...h } = parseNpyHeader(file, buf, note, false)!;
  const fail = (problem: string, offset: number): never => {
    throw new FileFormatError(file, problem + note, offset);
  };
  const { dataOffset, shape, dtype: descr } = h;
  const have = buf.length - dataOffset;
  if (have < need) {
    fail(`truncated: shape (${shape.join(", ")}) of ${descr} needs ${need} data bytes (the file should be ${dataOffset + need} bytes), the data ends after ${have}`, buf.length);
  }
  if (have > need) fail(`${have - need} unexpected bytes after the (${shape.join(", ")}) ${descr} data that the header declares`, dataOffset + need);
  return { ...h, data: buf.subarray(dataOffset, dataOffset + need) };
}

/** Integer labels of any integer dtype as Int32Array; values outside int32 are errors. */
function npyLabels(f: FileBytes, a: NpyArray): Int32Array {
  const n = a.shape.reduce((x, y) => x * y, 1);
  const dv = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const le = a.littleEndian;
  const size = a.itemsize;
  const key = `${a.kind}${size}`;
  const read: ((i: number) => number) | undefined = {
    u1: (i: number) => dv.getUint8(i),
    i1: (i: number) => dv.getInt8(i),
    u2: (i: number) => dv.getUint16(2 * i, le),
    i2: (i: number) => dv.getInt16(2 * i, le),
    u4: (i: number) => dv.getUint32(4 * i, le),
    i4: (i: number) => dv.getInt32(4 * i, le),
    u8: (i: number) => Number(dv.getBigUint64(8 * i, le)),
    i8: (i: number) => Number(dv.getBigInt64(8 * i, le)),
  }[key];
  if (!read) throw new FileFormatError(f.path, `labels must have an integer dtype (i1, u1, i2, u2, i4, u4, i8, u8), found '${a.dtype}'${offsetNote(f)}`, a.valueOffsets["descr"]);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = read(i);
    if (x < 0 || x > 0x7fffffff) throw new FileFormatError(f.path, `label ${i} is ${x}, expected a class index >= 0 (that fits in int32)${offsetNote(f)}`, a.dataOffset + i * size);
    out[i] = x;
  }
  return out;
}

/**
 * A dataset from two .npy files: uint8 images of shape (n, h, w) or (n, h, w, c), and integer
 * labels of shape (n,) in any integer dtype. Images are views into the loaded file.
 */
export async function npy(imagesPath: string, labelsPath: string, options?: { classNames?: readonly string[] }): Promise<ArrayDataset> {
  const o = checkOptions<{ classNames: readonly string[] }>("npy", options, ["classNames"]);
  const classNames = classNamesOption("npy.classNames", o.classNames);
  const [fi, fl] = await Promise.all([
    readBytes("npy(imagesPath)", imagesPath, typeof imagesPath === "string" ? npyDeclaredLength(imagesPath) : undefined),
    readBytes("npy(labelsPath)", labelsPath, typeof labelsPath === "string" ? npyDeclaredLength(labelsPath) : undefined),
  ]);
  const im = parseNpy(fi.path, fi.bytes, offsetNote(fi));
  const lab = parseNpy(fl.path, fl.bytes, offsetNote(fl));
  if (im.kind !== "u" || im.itemsize !== 1) throw new FileFormatError(fi.path, `images must be uint8 ('|u1'), found '${im.dtype}'${offsetNote(fi)}`, im.valueOffsets["descr"]);
  if (im.shape.length !== 3 && im.shape.length !== 4) {
    throw new FileFormatError(fi.path, `images must have shape (n, h, w) or (n, h, w, c), found (${im.shape.join(", ")})${offsetNote(fi)}`, im.valueOffsets["shape"]);
  }
  const [n, h, w, c = 1] = im.shape as [number, number, number, number?];
  if (h === 0 || w === 0 || c === 0) throw new FileFormatError(fi.path, `images of shape (${im.shape.join(", ")}) hold no pixels${offsetNote(fi)}`, im.valueOffsets["shape"]);
  const labelsShapeOk = (lab.shape.length === 1 || (lab.shape.length === 2 && lab.shape[1] === 1)) && lab.shape[0] === n;
  if (!labelsShapeOk) {
    throw new FileFormatError(fl.path, `expected ${n} labels, shape (${n},), to match the ${n} images of ${fi.path}; found shape (${lab.shape.join(", ")})${offsetNote(fl)}`, lab.valueOffsets["shape"]);
  }
  const ls = npyLabels(fl, lab);
  checkFileLabels(fl.path, ls, classNames?.length, (i) => lab.dataOffset + i * lab.itemsize, offsetNote(fl));
  return new ArrayDataset(im.data, [n, h, w, c], ls, { classNames, source: fi.path, kind: "npy dataset" });
}

