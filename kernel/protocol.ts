/**
 * The Jupyter messaging protocol's wire format (version 5.3): signing, parsing and building
 * messages. Socket handling lives in server.ts; this file has no I/O.
 * Spec: https://jupyter-client.readthedocs.io/en/latest/messaging.html
 */
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";

export const PROTOCOL_VERSION = "5.3";
const DELIMITER = "<IDS|MSG>";

export interface ConnectionInfo {
  transport: string;
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  signature_scheme: string;
  kernel_name?: string;
}

export interface Header {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

export interface Message<C = Record<string, unknown>> {
  /** ZeroMQ routing identities that came before the delimiter; replies go back to them. */
  identities: Buffer[];
  header: Header;
  parent_header: Header | Record<string, never>;
  metadata: Record<string, unknown>;
  content: C;
  buffers: Buffer[];
  /** The HMAC signature the message arrived with (set by decode; "" when signing is off). */
  signature?: string;
}

export class Signer {
  private readonly algorithm: string | null;
  constructor(private readonly key: string, scheme: string) {
    if (!key) {
      this.algorithm = null;
      return;
    }
    const m = /^hmac-(.+)$/.exec(scheme || "hmac-sha256");
    if (!m) throw new Error(`unsupported signature_scheme ${JSON.stringify(scheme)}: expected "hmac-<digest>"`);
    this.algorithm = m[1]!;
  }

  sign(parts: Array<string | Buffer>): string {
    if (this.algorithm === null) return "";
    const h = createHmac(this.algorithm, this.key);
    for (const p of parts) h.update(p);
    return h.digest("hex");
  }

  verify(signature: string, parts: Buffer[]): boolean {
    if (this.algorithm === null) return true;
    const expected = Buffer.from(this.sign(parts), "utf8");
    const got = Buffer.from(signature, "utf8");
    return expected.length === got.length && timingSafeEqual(expected, got);
  }
}

/** Split raw frames into a message. Throws on a malformed message or a bad signature. */
export function decode(frames: Buffer[], signer: Signer): Message {
  const at = frames.findIndex((f) => f.length === DELIMITER.length && f.toString("latin1") === DELIMITER);
  if (at < 0) throw new Error("message without the <IDS|MSG> delimiter");
  if (frames.length < at + 6) throw new Error(`message with ${frames.length - at - 1} frames after the delimiter, expected at least 5`);
  const signature = frames[at + 1]!.toString("utf8");
  const body = frames.slice(at + 2, at + 6);
  if (!signer.verify(signature, body)) throw new Error("message with an invalid signature");
  const [header, parent, metadata, content] = body.map((b) => JSON.parse(b.toString("utf8")));
  return {
    identities: frames.slice(0, at),
    header,
    parent_header: parent ?? {},
    metadata: metadata ?? {},
    content: content ?? {},
    buffers: frames.slice(at + 6),
    signature,
  };
}

/**
 * Signatures already seen in this session, as jupyter_client's Session keeps its digest
 * history: a signed message sent again (a replay) is recognised and refused. Memory is bounded:
 * past `capacity` signatures the oldest are forgotten first (FIFO).
 */
export class ReplayGuard {
  private readonly seen = new Set<string>();
  constructor(readonly capacity = 1 << 16) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ReplayGuard: capacity must be a positive integer, got ${capacity}`);
  }
  /** True the first time a signature is offered, false for a replay. Unsigned ("") messages always pass. */
  accept(signature: string): boolean {
    if (!signature) return true;
    if (this.seen.has(signature)) return false;
    this.seen.add(signature);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value!);
    return true;
  }
  get size(): number {
    return this.seen.size;
  }
}

/** Frames for a message, signed. */
export function encode(msg: Message<unknown>, signer: Signer): Array<Buffer | string> {
  const body = [
    JSON.stringify(msg.header),
    JSON.stringify(msg.parent_header),
    JSON.stringify(msg.metadata),
    JSON.stringify(msg.content),
  ];
  return [...msg.identities, DELIMITER, signer.sign(body), ...body, ...msg.buffers];
}

export function makeHeader(msgType: string, session: string): Header {
  return {
    msg_id: randomUUID(),
    msg_type: msgType,
    session,
    username: "batchlab",
    date: new Date().toISOString(),
    version: PROTOCOL_VERSION,
  };
}
