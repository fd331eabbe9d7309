/**
 * A small D-Bus client over a unix socket: SASL EXTERNAL login, method calls with timeouts, signals,
 * and exported objects. Enough for a StatusNotifierItem and the tests' tray host; no unix-fd passing,
 * no TCP transports.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import {
  type DBusMessage,
  encodeMessage,
  FLAG_NO_REPLY_EXPECTED,
  MessageSplitter,
  MessageType,
} from './message.js';

/** Default time a method call waits for its reply. */
export const CALL_TIMEOUT_MS = 5000;
/** Time allowed for connecting plus the SASL exchange. */
export const CONNECT_TIMEOUT_MS = 5000;
/** Most replies we wait for at once; past that a call fails instead of queueing without bound. */
const MAX_PENDING_CALLS = 256;

/** An error reply from a peer (or one we send back). */
export class DBusError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

/** What an object handler returns for a method call: a body, or nothing for an empty reply. */
export type MethodResult = { signature: string; body: unknown[] } | undefined;

/** Handles method calls to one object path; throw a DBusError to answer with an error. */
export type ObjectHandler = (msg: DBusMessage) => MethodResult | Promise<MethodResult>;

/** Options of one method call. */
export interface CallOptions {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
  timeoutMs?: number;
}

/** The session bus address: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus when it exists. */
export function sessionBusAddress(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DBUS_SESSION_BUS_ADDRESS) return env.DBUS_SESSION_BUS_ADDRESS;
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && existsSync(`${runtime}/bus`)) return `unix:path=${runtime}/bus`;
  return undefined;
}

/** The socket path of the first unix address in a D-Bus address list. */
export function socketPathOf(address: string): string {
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (entry.slice(0, colon) !== 'unix') continue;
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(',')) {
      const eq = kv.indexOf('=');
      if (eq > 0) params.set(kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1)));
    }
    const path = params.get('path');
    if (path) return path;
    const abstract = params.get('abstract');
    if (abstract) return `\0${abstract}`;
  }
  throw new Error(`no unix socket in D-Bus address "${address}" (only unix:path= and unix:abstract= work)`);
}

/** A connection to a message bus. Emits 'signal' (DBusMessage) and 'close' (Error | undefined). */
export class DBusConnection extends EventEmitter {
  #socket: Socket;
  #serial = 0;
  #pending = new Map<
    number,
    { resolve: (m: DBusMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  #objects = new Map<string, ObjectHandler>();
  #closed = false;
  /** Our unique name on the bus, e.g. ":1.42". */
  uniqueName = '';

  private constructor(socket: Socket) {
    super();
    this.#socket = socket;
  }

  /** Connects, authenticates with SASL EXTERNAL (our uid) and says Hello. */
  static async connect(address: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<DBusConnection> {
    const path = socketPathOf(address);
    const socket = connect({ path });
    const timer = setTimeout(
      () => socket.destroy(new Error(`D-Bus: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      const leftover = await authenticate(socket);
      const conn = new DBusConnection(socket);
      conn.#start(leftover);
      const [name] = (
        await conn.call({
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'Hello',
          timeoutMs,
        })
      ).body as [string];
      conn.uniqueName = name;
      return conn;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  #start(leftover: Buffer): void {
    const splitter = new MessageSplitter();
    const onData = (chunk: Buffer) => {
      let msgs: DBusMessage[];
      try {
        msgs = splitter.push(chunk);
      } catch (err) {
        this.#socket.destroy(err as Error);
        return;
      }
      for (const m of msgs) this.#dispatch(m);
    };
    this.#socket.on('data', onData);
    this.#socket.on('error', () => {}); // 'close' below reports it
    this.#socket.on('close', () => this.#shutdown(new Error('D-Bus connection closed')));
    if (leftover.length > 0) onData(leftover);
  }

  #shutdown(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err ?? new Error('D-Bus connection closed'));
    }
    this.#pending.clear();
    this.emit('close', err);
  }

  #dispatch(m: DBusMessage): void {
    if (m.type === MessageType.MethodReturn || m.type === MessageType.Error) {
      const p = m.replySerial === undefined ? undefined : this.#pending.get(m.replySerial);
      if (!p) return;
      this.#pending.delete(m.replySerial!);
      clearTimeout(p.timer);
      if (m.type === MessageType.Error) {
        const text = typeof m.body[0] === 'string' ? m.body[0] : (m.errorName ?? 'error');
        p.reject(new DBusError(m.errorName ?? 'org.freedesktop.DBus.Error.Failed', text));
      } else {
        p.resolve(m);
      }
      return;
    }
    if (m.type === MessageType.Signal) {
      this.emit('signal', m);
      return;
    }
    if (m.type === MessageType.MethodCall) void this.#answer(m);
  }

  async #answer(m: DBusMessage): Promise<void> {
    const wantsReply = (m.flags & FLAG_NO_REPLY_EXPECTED) === 0;
    const handler = m.path === undefined ? undefined : this.#objects.get(m.path);
    let result: MethodResult;
    try {
      if (m.interface === 'org.freedesktop.DBus.Peer' && m.member === 'Ping') {
        result = undefined;
      } else if (!handler) {
        throw new DBusError('org.freedesktop.DBus.Error.UnknownObject', `no object at ${m.path}`);
      } else {
        result = await handler(m);
      }
    } catch (err) {
      if (!wantsReply || this.#closed) return;
      const e =
        err instanceof DBusError
          ? err
          : new DBusError(
              'org.freedesktop.DBus.Error.Failed',
              err instanceof Error ? err.message : String(err),
            );
      this.#send({
        type: MessageType.Error,
        flags: FLAG_NO_REPLY_EXPECTED,
        errorName: e.errorName,
        replySerial: m.serial,
        ...(m.sender === undefined ? {} : { destination: m.sender }),
        signature: 's',
        body: [e.message],
      });
      return;
    }
    if (!wantsReply || this.#closed) return;
    this.#send({
      type: MessageType.MethodReturn,
      flags: FLAG_NO_REPLY_EXPECTED,
      replySerial: m.serial,
      ...(m.sender === undefined ? {} : { destination: m.sender }),
      signature: result?.signature ?? '',
      body: result?.body ?? [],
    });
  }

  #send(msg: Omit<DBusMessage, 'serial'>): number {
    if (this.#closed) throw new Error('D-Bus connection is closed');
    this.#serial = (this.#serial % 0xffffffff) + 1;
    this.#socket.write(encodeMessage(msg, this.#serial));
    return this.#serial;
  }

  /** Calls a method and resolves with the reply (rejects with DBusError, or on timeout). */
  call(opts: CallOptions): Promise<DBusMessage> {
    if (this.#pending.size >= MAX_PENDING_CALLS)
      return Promise.reject(new Error('too many D-Bus calls waiting'));
    return new Promise((resolve, reject) => {
      let serial: number;
      try {
        serial = this.#send({
          type: MessageType.MethodCall,
          flags: 0,
          destination: opts.destination,
          path: opts.path,
          interface: opts.interface,
          member: opts.member,
          signature: opts.signature ?? '',
          body: opts.body ?? [],
        });
      } catch (err) {
        reject(err);
        return;
      }
      const ms = opts.timeoutMs ?? CALL_TIMEOUT_MS;
      const timer = setTimeout(() => {
        this.#pending.delete(serial);
        reject(
          new DBusError('org.freedesktop.DBus.Error.NoReply', `${opts.member}: no reply within ${ms} ms`),
        );
      }, ms);
      this.#pending.set(serial, { resolve, reject, timer });
    });
  }

  /** Shorthand for a method on the bus daemon itself. */
  async busCall(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    const reply = await this.call({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member,
      signature,
      body,
    });
    return reply.body;
  }

  /** Asks for a well-known name; resolves with the bus's answer code (1 = primary owner). */
  async requestName(name: string, flags = 0x4 /* DO_NOT_QUEUE */): Promise<number> {
    const [code] = (await this.busCall('RequestName', 'su', [name, flags])) as [number];
    return code;
  }

  /** Current owner's unique name of a well-known name, or undefined. */
  async nameOwner(name: string): Promise<string | undefined> {
    try {
      const [owner] = (await this.busCall('GetNameOwner', 's', [name])) as [string];
      return owner;
    } catch (err) {
      if (err instanceof DBusError && err.errorName === 'org.freedesktop.DBus.Error.NameHasNoOwner')
        return undefined;
      throw err;
    }
  }

  /** Subscribes to signals matching a rule (see the spec's match rules). */
  async addMatch(rule: string): Promise<void> {
    await this.busCall('AddMatch', 's', [rule]);
  }

  /** Broadcasts a signal from one of our objects. */
  emitSignal(path: string, iface: string, member: string, signature = '', body: unknown[] = []): void {
    if (this.#closed) return;
    this.#send({
      type: MessageType.Signal,
      flags: FLAG_NO_REPLY_EXPECTED,
      path,
      interface: iface,
      member,
      signature,
      body,
    });
  }

  /** Serves method calls to `path`. */
  exportObject(path: string, handler: ObjectHandler): void {
    this.#objects.set(path, handler);
  }

  /** Closes the socket; pending calls fail. */
  close(): void {
    this.#socket.end();
    this.#socket.destroy();
    this.#shutdown(undefined);
  }
}

/** SASL EXTERNAL with our uid, as the reference implementation does; returns bytes read past BEGIN. */
async function authenticate(socket: Socket): Promise<Buffer> {
  const uid = process.getuid?.() ?? 0;
  const hexUid = Buffer.from(String(uid), 'ascii').toString('hex');
  socket.write(Buffer.from([0]));
  socket.write(`AUTH EXTERNAL ${hexUid}\r\n`);
  const line = await readLine(socket);
  if (!line.text.startsWith('OK ')) throw new Error(`D-Bus refused authentication: ${line.text}`);
  socket.write('BEGIN\r\n');
  return line.rest;
}

function readLine(socket: Socket): Promise<{ text: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf('\r\n');
      if (nl < 0) {
        if (buf.length > 4096) finish(new Error('D-Bus authentication line too long'));
        return;
      }
      finish(undefined, { text: buf.subarray(0, nl).toString('ascii'), rest: buf.subarray(nl + 2) });
    };
    const onClose = () => finish(new Error('D-Bus closed the connection during authentication'));
    const onError = (err: Error) => finish(err);
    const finish = (err: Error | undefined, value?: { text: string; rest: Buffer }) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      if (err) reject(err);
      else resolve(value!);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}
