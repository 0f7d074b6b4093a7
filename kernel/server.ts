/**
 * The kernel process: ZeroMQ sockets, message dispatch, the execution queue, output capture
 * (stdout/stderr as stream messages, display_data, execute_result, error), interrupts and
 * shutdown. Cells run in the Executor; values become MIME bundles in display.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { format } from "node:util";
import { randomUUID } from "node:crypto";
import * as zmq from "zeromq";
import { decode, encode, makeHeader, PROTOCOL_VERSION, ReplayGuard, Signer, type ConnectionInfo, type Header, type Message } from "./protocol";
import { guardStdio, isBrokenStdioError, markDead, writeReal } from "./stdio";
import { watchJupyterParent, type ChildReport } from "./supervisor";
import { checkRequest, History, type HistoryRequest } from "./requests";
import { Executor, errorInfo } from "./executor";
import { buildPrelude } from "./prelude";
import { DISPLAY_SINK, payloadFor, type DisplayOptions, type DisplayPayload } from "./display";
import { hookNodeResolution, hookTypeScriptResolution, packageRoot } from "./resolve";

type Sock = zmq.Router | zmq.Publisher | zmq.Reply;

/**
 * Serializes sends on one socket (zeromq.js allows one pending send at a time). With nothing
 * pending, a message is handed to ZeroMQ at once, synchronously: its I/O thread then delivers it
 * even while a cell keeps the JavaScript thread busy.
 */
class Sender {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  constructor(private readonly sock: Sock, private readonly log: (s: string) => void) {}
  send(frames: Array<Buffer | string>): Promise<void> {
    const run = (): Promise<void> => {
      this.pending++;
      return this.sock.send(frames).then(
        () => void this.pending--,
        (e: unknown) => {
          this.pending--;
          this.log(`send failed: ${(e as Error).message}`);
        },
      );
    };
    this.chain = this.pending === 0 ? run() : this.chain.then(run);
    return this.chain;
  }
}

interface QueuedRequest {
  msg: Message;
  sock: Sender;
  seq: number;
  /** Date.now() when the request arrived. */
  received: number;
}


export interface KernelOptions {
  /** Directory the cells run in and resolve modules from (Jupyter starts kernels in the notebook's directory). */
  cwd?: string;
  /** Where the kernel's own diagnostics go (not the cells' output). */
  log?: (line: string) => void;
}

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
}

export class Kernel {
  private readonly conn: ConnectionInfo;
  private readonly signer: Signer;
  /** Signatures of the messages received in this session: a replayed message is refused. */
  private readonly replay = new ReplayGuard();
  /** This session's executed cells, for history_request. */
  private readonly history = new History();
  /** Payloads (the pager) for the running cell's execute_reply. */
  private replyPayloads: Array<Record<string, unknown>> = [];
  private readonly session = randomUUID();
  private readonly log: (line: string) => void;
  private readonly cwd: string;
  private executor!: Executor;
  private iopub!: zmq.Publisher;
  private shell!: zmq.Router;
  private control!: zmq.Router;
  private stdin!: zmq.Router;
  private hb!: zmq.Reply;
  private iopubSend!: Sender;
  private shellSend!: Sender;
  private controlSend!: Sender;
  private executionCount = 0;
  private queue: Promise<void> = Promise.resolve();
  private enqueued = 0;
  private abortThrough = 0;
  private abortAfterSeq = 0;
  private currentSeq = 0;
  /** The request whose cell outputs belong to (the running one, or the last one). */
  private outputParent: Header | null = null;
  private streamBuf: { name: "stdout" | "stderr"; text: string; parent: Header } | null = null;
  private streamTimer: NodeJS.Immediate | null = null;
  private lastStreamFlush = 0;
  /** The request whose output was flushed last: a cell's first output is always sent at once. */
  private lastStreamParent: Header | null = null;
  private closing = false;
  private resolveClosed!: () => void;
  /** Resolves once the kernel has shut down and its sockets are closed. */
  readonly closed: Promise<void> = new Promise((r) => (this.resolveClosed = r));

  constructor(conn: ConnectionInfo, opts: KernelOptions = {}) {
    this.conn = conn;
    this.signer = new Signer(conn.key, conn.signature_scheme);
    this.cwd = opts.cwd ?? process.cwd();
    guardStdio();
    this.log = opts.log ?? ((line: string) => writeReal("stderr", `[batchlab kernel] ${line}\n`));
  }

  /** Build the executor and prelude, bind the sockets and start serving. */
  async start(): Promise<void> {
    hookNodeResolution();
    hookTypeScriptResolution(this.cwd);
    const display = (value: unknown, options?: DisplayOptions): void => this.display(value, options);
    const clearOutput = (wait?: boolean): void => this.clearOutput(wait);
    const page = (value: unknown): void => this.page(value);
    const prelude = buildPrelude({ display, clearOutput, page });
    for (const p of prelude.problems) this.log(p);
    this.executor = new Executor(this.cwd, prelude);
    (globalThis as Record<symbol, unknown>)[DISPLAY_SINK] = display;
    this.hookTslabDisplay();
    this.captureOutput();
    this.installProcessHandlers();

    this.iopub = new zmq.Publisher({ linger: 1000 });
    this.shell = new zmq.Router({ linger: 1000 });
    this.control = new zmq.Router({ linger: 1000 });
    this.stdin = new zmq.Router({ linger: 0 });
    this.hb = new zmq.Reply({ linger: 0 });
    this.iopubSend = new Sender(this.iopub, this.log);
    this.shellSend = new Sender(this.shell, this.log);
    this.controlSend = new Sender(this.control, this.log);
    const addr = (port: number) => `${this.conn.transport}://${this.conn.ip}:${port}`;
    await Promise.all([
      this.iopub.bind(addr(this.conn.iopub_port)),
      this.shell.bind(addr(this.conn.shell_port)),
      this.control.bind(addr(this.conn.control_port)),
      this.stdin.bind(addr(this.conn.stdin_port)),
      this.hb.bind(addr(this.conn.hb_port)),
    ]);
    void this.serve(this.shell, this.shellSend, (m, s) => this.onShell(m, s));
    void this.serve(this.control, this.controlSend, (m, s) => this.onControl(m, s));
    void this.heartbeat();
    this.publish("status", { execution_state: "starting" }, null);
    // Build the compiler's program now, so the first cell does not pay for it.
    this.executor.warmUp();
    this.watchParent();
  }

  // ----------------------------------------------------------------------------- sockets

  private async serve(sock: zmq.Router, sender: Sender, handle: (m: Message, s: Sender) => void): Promise<void> {
    try {
      for await (const frames of sock) {
        let msg: Message;
        try {
          msg = decode(frames, this.signer);
        } catch (e) {
          this.log(`dropped a message: ${(e as Error).message}`);
          continue;
        }
        if (!this.replay.accept(msg.signature ?? "")) {
          this.log(`dropped a replayed message (a signature already seen in this session): ${msg.header?.msg_type} ${msg.header?.msg_id}`);
          continue;
        }
        handle(msg, sender);
      }
    } catch (e) {
      if (!this.closing) this.log(`socket loop ended: ${(e as Error).message}`);
    }
  }

  private async heartbeat(): Promise<void> {
    try {
      for await (const frames of this.hb) await this.hb.send(frames);
    } catch (e) {
      if (!this.closing) this.log(`heartbeat ended: ${(e as Error).message}`);
    }
  }

  private reply(sender: Sender, req: Message, msgType: string, content: unknown, metadata: Record<string, unknown> = {}): Promise<void> {
    const msg: Message<unknown> = {
      identities: req.identities,
      header: makeHeader(msgType, this.session),
      parent_header: req.header,
      metadata,
      content,
      buffers: [],
    };
    return sender.send(encode(msg, this.signer));
  }

  private publish(msgType: string, content: unknown, parent: Header | null): Promise<void> {
    if (msgType !== "stream") this.flushStream();
    const msg: Message<unknown> = {
      identities: [Buffer.from(`kernel.${this.session}.${msgType}`)],
      header: makeHeader(msgType, this.session),
      parent_header: parent ?? {},
      metadata: {},
      content,
      buffers: [],
    };
    return this.iopubSend.send(encode(msg, this.signer));
  }

  // ----------------------------------------------------------------------------- dispatch

  private onShell(msg: Message, sender: Sender): void {
    const seq = ++this.enqueued;
    const item: QueuedRequest = { msg, sock: sender, seq, received: Date.now() };
    this.queue = this.queue.then(() => this.handleShell(item)).catch((e: unknown) => this.log(`shell handler failed: ${(e as Error).stack}`));
  }

  private async handleShell({ msg, sock, seq }: QueuedRequest): Promise<void> {
    const type = msg.header.msg_type;
    await this.publish("status", { execution_state: "busy" }, msg.header);
    try {
      const bad = checkRequest(type, msg.content);
      if (bad) {
        this.log(`refused ${type}: ${bad.evalue}`);
        const replyType = type.replace(/_request$/, "_reply");
        if (type === "execute_request") {
          await this.publish("error", bad, msg.header);
          await this.reply(sock, msg, replyType, { status: "error", execution_count: this.executionCount, ...bad });
        } else {
          await this.reply(sock, msg, replyType, { status: "error", ...bad });
        }
        return;
      }
      switch (type) {
        case "execute_request":
          if (seq > this.abortAfterSeq && seq <= this.abortThrough) await this.reply(sock, msg, "execute_reply", { status: "aborted", execution_count: this.executionCount });
          else {
            this.currentSeq = seq;
            await this.execute(msg, sock);
          }
          break;
        case "kernel_info_request":
          await this.reply(sock, msg, "kernel_info_reply", this.kernelInfo());
          break;
        case "complete_request": {
          const c = msg.content as { code: string; cursor_pos?: number | null };
          const r = this.executor.complete(c.code, c.cursor_pos ?? c.code.length);
          await this.reply(sock, msg, "complete_reply", { status: "ok", matches: r.matches, cursor_start: r.start, cursor_end: r.end, metadata: {} });
          break;
        }
        case "inspect_request": {
          const c = msg.content as { code: string; cursor_pos?: number | null };
          const text = this.executor.inspect(c.code, c.cursor_pos ?? c.code.length);
          await this.reply(sock, msg, "inspect_reply", { status: "ok", found: text !== null, data: text !== null ? { "text/plain": text } : {}, metadata: {} });
          break;
        }
        case "is_complete_request":
          await this.reply(sock, msg, "is_complete_reply", this.executor.isComplete((msg.content as { code: string }).code));
          break;
        case "comm_info_request":
          await this.reply(sock, msg, "comm_info_reply", { status: "ok", comms: {} });
          break;
        case "comm_open": {
          // No comm targets are registered: close the comm, as ipykernel does for an unknown target.
          const c = msg.content as { comm_id: string; target_name?: string };
          this.log(`comm_open for unknown target ${JSON.stringify(c.target_name)}: closing it`);
          await this.publish("comm_close", { comm_id: c.comm_id, data: {} }, msg.header);
          break;
        }
        case "comm_msg":
        case "comm_close":
          break;
        case "history_request":
          await this.reply(sock, msg, "history_reply", { status: "ok", history: this.history.query(msg.content as unknown as HistoryRequest) });
          break;
        case "shutdown_request":
          await this.shutdown(msg, sock);
          return;
        default:
          this.log(`unsupported shell message ${type}`);
      }
    } catch (e) {
      this.log(`failed to handle ${type}: ${(e as Error).stack}`);
    } finally {
      if (!this.closing) await this.publish("status", { execution_state: "idle" }, msg.header);
    }
  }

  private onControl(msg: Message, sender: Sender): void {
    void (async () => {
      const type = msg.header.msg_type;
      await this.publish("status", { execution_state: "busy" }, msg.header);
      try {
        switch (type) {
          case "interrupt_request":
            this.executor.interrupt();
            await this.reply(sender, msg, "interrupt_reply", { status: "ok" });
            break;
          case "shutdown_request":
            await this.shutdown(msg, sender);
            return;
          case "kernel_info_request":
            await this.reply(sender, msg, "kernel_info_reply", this.kernelInfo());
            break;
          default:
            this.log(`unsupported control message ${type}`);
        }
      } finally {
        if (!this.closing) await this.publish("status", { execution_state: "idle" }, msg.header);
      }
    })().catch((e: unknown) => this.log(`control handler failed: ${(e as Error).stack}`));
  }

  private kernelInfo(): Record<string, unknown> {
    const tsVersion = (require("@tslab/typescript-for-tslab") as { version: string }).version;
    let tslabVersion = "?";
    try {
      tslabVersion = (require("tslab/package.json") as { version: string }).version;
    } catch {
      /* not fatal */
    }
    const version = packageVersion();
    return {
      status: "ok",
      protocol_version: PROTOCOL_VERSION,
      implementation: "batchlab",
      implementation_version: version,
      language_info: {
        name: "typescript",
        version: tsVersion,
        mimetype: "text/typescript",
        file_extension: ".ts",
        pygments_lexer: "typescript",
        codemirror_mode: { name: "javascript", typescript: true },
      },
      banner: `batchlab ${version}: TypeScript ${tsVersion} on Node.js ${process.version} (tslab ${tslabVersion})`,
      help_links: [],
    };
  }

  // ----------------------------------------------------------------------------- execution

  private async execute(msg: Message, sock: Sender): Promise<void> {
    const c = msg.content as { code?: string; silent?: boolean; store_history?: boolean; stop_on_error?: boolean };
    const code = c.code ?? "";
    const silent = !!c.silent;
    const storeHistory = c.store_history ?? !silent;
    if (!silent && storeHistory) {
      this.executionCount++;
      this.history.add({ line: this.executionCount, input: code, output: null });
    }
    const count = this.executionCount;
    this.outputParent = msg.header;
    this.replyPayloads = [];
    if (!silent) await this.publish("execute_input", { code, execution_count: count }, msg.header);

    tellLauncher({ type: "cell", count: silent ? null : count });
    let result: Awaited<ReturnType<Executor["execute"]>>;
    try {
      result = await this.executor.execute(code, `cell[${count}]`);
    } finally {
      tellLauncher({ type: "idle" });
    }
    if (result.status === "ok" && result.hasValue && !silent) {
      try {
        const payload = await payloadFor(result.value, true);
        if (payload) {
          await this.publish("execute_result", { execution_count: count, data: payload.data, metadata: payload.metadata }, msg.header);
          if (storeHistory) this.history.setOutput(count, String(payload.data["text/plain"] ?? ""));
        }
      } catch (e) {
        result = { status: "error", error: errorInfo(e) };
      }
    }
    this.flushStream();
    if (result.status === "error") {
      const { ename, evalue, traceback } = result.error;
      if (!silent) await this.publish("error", { ename, evalue, traceback }, msg.header);
      if (c.stop_on_error !== false) {
        // abort what was already queued behind this cell (ipykernel does the same); a client
        // that waits for this reply before sending the next cell is not affected
        this.abortAfterSeq = this.currentSeq;
        this.abortThrough = this.enqueued;
      }
      await this.reply(sock, msg, "execute_reply", { status: "error", execution_count: count, ename, evalue, traceback });
      return;
    }
    const payload = this.replyPayloads;
    this.replyPayloads = [];
    await this.reply(sock, msg, "execute_reply", { status: "ok", execution_count: count, user_expressions: {}, payload });
  }

  /** The `display` function cells (and library code, through the global sink) call. */
  display(value: unknown, options: DisplayOptions = {}): void {
    if (options.update && !options.displayId) throw new TypeError("display: options.update needs options.displayId (the id of the output to replace)");
    const parent = this.outputParent;
    if (!parent) {
      this.log("display() called before any cell ran; dropped");
      return;
    }
    const send = (payload: DisplayPayload | null): Promise<void> | void => {
      if (!payload) return;
      if (options.metadata) payload = { data: payload.data, metadata: { ...payload.metadata, ...JSON.parse(JSON.stringify(options.metadata)) } };
      const transient = options.displayId ? { display_id: options.displayId } : {};
      const content = { data: payload.data, metadata: payload.metadata, transient };
      return this.publish(options.update ? "update_display_data" : "display_data", content, parent);
    };
    const r = payloadFor(value, true);
    if (r && typeof (r as PromiseLike<unknown>).then === "function") {
      (r as PromiseLike<DisplayPayload | null>).then(send).then(undefined, (e: unknown) => this.writeStream("stderr", `display: ${(e as Error).message}\n`));
    } else {
      void send(r as DisplayPayload | null);
    }
  }

  /** The cells' `clearOutput(wait?)`: clear the running cell's output (with `wait`, when the next output arrives). */
  clearOutput(wait = false): void {
    const parent = this.outputParent;
    if (!parent) return;
    this.flushStream();
    void this.publish("clear_output", { wait: !!wait }, parent);
  }

  /** The cells' `page(value)`: show text in the front end's pager (an execute_reply payload, as IPython's `?`). */
  page(value: unknown): void {
    const text = typeof value === "string" ? value : plainTextOf(value);
    this.replyPayloads.push({ source: "page", data: { "text/plain": text }, start: 0 });
  }

  // ----------------------------------------------------------------------------- output capture

  private writeStream(name: "stdout" | "stderr", text: string): void {
    const parent = this.outputParent;
    if (!parent || this.closing) {
      (name === "stdout" ? this.origStdout : this.origStderr)?.(text);
      return;
    }
    if (this.streamBuf && (this.streamBuf.name !== name || this.streamBuf.parent !== parent)) this.flushStream();
    if (this.streamBuf) this.streamBuf.text += text;
    else this.streamBuf = { name, text, parent };
    // Coalesce bursts, but never hold output back for long: a synchronous loop that prints
    // would otherwise show nothing until it ends.
    if (parent !== this.lastStreamParent || Date.now() - this.lastStreamFlush >= 50) this.flushStream();
    else if (!this.streamTimer) this.streamTimer = setImmediate(() => this.flushStream());
  }

  private flushStream(): void {
    if (this.streamTimer) {
      clearImmediate(this.streamTimer);
      this.streamTimer = null;
    }
    const b = this.streamBuf;
    if (!b) return;
    this.streamBuf = null;
    this.lastStreamFlush = Date.now();
    this.lastStreamParent = b.parent;
    void this.publish("stream", { name: b.name, text: b.text }, b.parent);
  }

  private origStdout: ((s: string) => void) | null = null;
  private origStderr: ((s: string) => void) | null = null;

  private captureOutput(): void {
    this.origStdout = (s) => writeReal("stdout", s);
    this.origStderr = (s) => writeReal("stderr", s);
    const make = (name: "stdout" | "stderr") =>
      ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((e?: Error) => void), cb?: (e?: Error) => void): boolean => {
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString(typeof encoding === "string" ? encoding : "utf8");
        this.writeStream(name, text);
        const done = typeof encoding === "function" ? encoding : cb;
        if (done) process.nextTick(done);
        return true;
      }) as typeof process.stdout.write;
    process.stdout.write = make("stdout");
    process.stderr.write = make("stderr");
  }

  private hookTslabDisplay(): void {
    // tslab's own `display` (import * as tslab from "tslab") sends through this hook.
    try {
      const jupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown };
      jupyter.lastWriteDisplayData = (data: { data: Record<string, unknown>; metadata?: Record<string, unknown>; transient?: { display_id?: string } }, update: boolean) => {
        if (!this.outputParent) return;
        void this.publish(update ? "update_display_data" : "display_data", { data: data.data, metadata: data.metadata ?? {}, transient: data.transient ?? {} }, this.outputParent);
      };
    } catch (e) {
      this.log(`tslab's display API is unavailable: ${(e as Error).message}`);
    }
  }

  private installProcessHandlers(): void {
    process.on("SIGINT", () => {
      this.executor.interrupt();
    });
    let inHandler = false;
    process.on("uncaughtException", (e) => {
      // A write to a closed terminal or pipe: never print it (that write would fail the same way).
      if (isBrokenStdioError(e)) {
        markDead("stdout");
        markDead("stderr");
        return;
      }
      if (inHandler) return; // the report itself failed: do not recurse
      inHandler = true;
      try {
        this.writeStream("stderr", `Uncaught ${e instanceof Error ? e.stack ?? e.message : format(e)}\n`);
      } catch {
        /* nowhere left to report it */
      } finally {
        inHandler = false;
      }
    });
    process.on("unhandledRejection", (reason) => {
      this.writeStream("stderr", `Unhandled promise rejection: ${reason instanceof Error ? reason.stack ?? reason.message : format(reason)}\n`);
    });
  }

  /** Exit when the process that started us (JPY_PARENT_PID) is gone (see watchJupyterParent). */
  private watchParent(): void {
    watchJupyterParent(() => {
      this.log(`parent process ${process.env.JPY_PARENT_PID} is gone; exiting`);
      setTimeout(() => process.exit(0), 1000); // even if closing hangs
      this.close().then(
        () => process.exit(0),
        () => process.exit(0),
      );
    });
  }

  // ----------------------------------------------------------------------------- shutdown

  private async shutdown(msg: Message, sender: Sender): Promise<void> {
    const restart = !!(msg.content as { restart?: boolean }).restart;
    this.executor.interrupt();
    await this.reply(sender, msg, "shutdown_reply", { status: "ok", restart });
    await this.publish("status", { execution_state: "idle" }, msg.header);
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.flushStream();
    this.closing = true;
    try {
      this.executor.close();
    } catch {
      /* closing anyway */
    }
    for (const s of [this.shell, this.control, this.stdin, this.hb, this.iopub]) {
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
    this.resolveClosed();
  }
}

/** Report to the launcher (supervisor.ts) over IPC, when there is one; never throws. */
export function tellLauncher(report: ChildReport): void {
  if (typeof process.send !== "function" || !process.connected) return;
  try {
    process.send(report, undefined, {}, () => {});
  } catch {
    /* the launcher is gone */
  }
}

function plainTextOf(value: unknown): string {
  return format("%O", value);
}

export async function startKernel(connectionFile: string, opts: KernelOptions = {}): Promise<Kernel> {
  const conn = JSON.parse(fs.readFileSync(connectionFile, "utf8")) as ConnectionInfo;
  const kernel = new Kernel(conn, opts);
  await kernel.start();
  return kernel;
}
