/**
 * The session campaign: behind a real login. A second server (its own child process) allows the
 * campaign's key; each case logs in with the real handshake, then sends what a hostile but
 * authenticated client can: control messages varied through the real encoder (tunnels on odd
 * ports, long permitFrom lists, limits) or changed before or after encryption, messages that do not
 * belong on a control channel, data channels for the session with good, bad, replayed or missing
 * proofs, and visitors on the tunnels it opened, answered on the assigned channel with data, an
 * error, garbage or silence. Then it leaves. Findings: the server exits, a channel it should close
 * stays open, a clean login after it all is refused.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { ClientHandshake, DataClientHandshake } from '../../src/protocol/handshake-machines.js';
import { CHANNEL_WAIT_TIMEOUT_MS } from '../../src/protocol/limits.js';
import {
  type ClientMessage,
  encodeMessage,
  type Message,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { havoc } from '../lib/mutate.js';
import { identityOf } from '../lib/peer.js';
import { Rng } from '../lib/rng.js';
import { bodyOf, LZ4, STORED, sealBody } from '../lib/seal.js';
import { seedMessage } from '../lib/seeds.js';
import { Conn, frame, mutated } from './cases.js';

/** The key the session server allows. */
export const SESSION_KEY_SEED = Buffer.alloc(32, 0x5e);

/** Where the session server is. */
export interface SessionContext {
  port: number;
  /** The public ports the key may open. */
  ports: { low: number; high: number };
}

/** How a session case went. */
export interface SessionResult {
  /** 'session' when the login worked, else why not. */
  login: 'session' | 'in_use' | 'refused' | 'no-answer';
  messages: number;
  tunnelsOpened: number;
  channelsProven: number;
  visitorsAssigned: number;
  /** Channels the server did not close within the bound after the session ended (settles later). */
  leftOpen: Promise<number>;
  /** For a finding: what the case did, in order. */
  log: string[];
}

/** A keyed sender on a Conn: frames from the real encoding, sealed at our own counter. */
class Keyed {
  counter = 0n;
  constructor(
    readonly c: Conn,
    readonly key: { key: Buffer; nonceBase: Buffer },
  ) {}
  async send(rng: Rng, msg: Message, how: 'valid' | 'before' | 'after'): Promise<void> {
    const plain = how === 'before' ? mutated(msg, rng) : encodeMessage(msg);
    let f = sealBody(this.key, this.counter++, bodyOf(plain, rng.chance(0.3) ? LZ4 : STORED));
    if (how === 'after') f = havoc(f, rng, 2);
    await this.c.write(f, rng);
  }
}

function how(rng: Rng): 'valid' | 'before' | 'after' {
  return rng.weighted([
    [7, 'valid'],
    [2, 'before'],
    [1, 'after'],
  ] as const);
}

/** A client message after login, varied: mostly tunnels, with ports near the allowed ones. */
function controlMessage(rng: Rng, ctx: SessionContext): ClientMessage {
  const m = seedMessage(
    rng,
    rng.chance(0.6)
      ? ['OpenTunnel']
      : ['CloseTunnel', 'Heartbeat', 'Error', 'Data', 'ClientHello', 'DataHello', 'ClientAuth'],
  ) as ClientMessage;
  if (m.type === 'OpenTunnel' && rng.chance(0.8)) {
    return {
      ...m,
      tunnelId: rng.int(8),
      remotePort: ctx.ports.low + rng.int(ctx.ports.high - ctx.ports.low + 2),
    };
  }
  if (m.type === 'CloseTunnel') return { ...m, tunnelId: rng.int(8) };
  return m;
}

async function dataChannel(
  rng: Rng,
  port: number,
  sessionId: Buffer,
  secret: Buffer,
  log: string[],
  honest = false,
): Promise<{ conn: Conn; keyed: Keyed | undefined; proven: boolean }> {
  const c = new Conn(port, '127.0.0.1');
  await c.ready;
  const hs = new DataClientHandshake({
    sessionId: rng.chance(0.9) ? sessionId : randomBytes(16),
    sessionSecret: secret,
  });
  const hello = encodeMessage(hs.hello());
  await c.write(frame(rng.chance(0.9) ? hello : mutated(hs.hello(), rng)), rng);
  const ack = await c.read(3000);
  if (ack?.type !== 'DataHelloAck') {
    log.push(`data channel: no ack (${ack?.type ?? 'nothing'})`);
    return { conn: c, keyed: undefined, proven: false };
  }
  const keys = hs.onAck(ack);
  c.decoder.setKeys(keys.receive);
  const k = new Keyed(c, keys.send);
  const r = honest ? 0 : rng.int(10);
  if (r < 6) await k.send(rng, { type: 'Heartbeat', reply: false, seq: rng.u32() }, 'valid');
  else if (r < 8)
    await k.send(rng, { type: 'Heartbeat', reply: false, seq: 0 }, rng.chance(0.5) ? 'before' : 'after');
  else if (r < 9) await k.send(rng, controlMessage(rng, { ports: { low: 1, high: 2 }, port }), 'valid');
  // r = 9: no proof at all; the proof deadline must close it.
  log.push(`data channel: proof ${r < 6 ? 'valid' : r < 8 ? 'changed' : r < 9 ? 'wrong type' : 'none'}`);
  if (rng.chance(0.1)) {
    // The same DataHello again, on a new connection: a replay.
    const again = new Conn(port, '127.0.0.1');
    await again.ready;
    await again.write(frame(hello), rng);
    log.push('data channel: DataHello replayed');
    void again.waitClose(3000).then((closed) => closed || again.destroy(true));
  }
  return { conn: c, keyed: k, proven: r < 6 };
}

/** Runs session case `index`. */
export async function runSessionCase(
  seed: number,
  index: number,
  ctx: SessionContext,
): Promise<SessionResult> {
  const rng = Rng.forCase(seed, 'live-session', index);
  const res: SessionResult = {
    login: 'no-answer',
    messages: 0,
    tunnelsOpened: 0,
    channelsProven: 0,
    visitorsAssigned: 0,
    leftOpen: Promise.resolve(0),
    log: [],
  };
  const control = new Conn(ctx.port, '127.0.0.1');
  const channels: Array<{ conn: Conn; keyed: Keyed | undefined; proven: boolean; busy: boolean }> = [];
  const visitors: Socket[] = [];
  try {
    if (!(await control.ready)) return res;
    const hs = new ClientHandshake({ identity: identityOf(SESSION_KEY_SEED), checkServerKey: () => {} });
    await control.write(frame(encodeMessage(hs.hello())), rng);
    const sh = await control.read(5000);
    if (sh?.type !== 'ServerHello') return res;
    const { auth, keys } = hs.onServerHello(sh);
    control.decoder.setKeys(keys.receive);
    const k = new Keyed(control, keys.send);
    await k.send(rng, auth, 'valid');
    const ok = await control.read(5000);
    if (ok?.type !== 'AuthOk') {
      res.login = ok?.type === 'AuthFail' && ok.reason === 'in_use' ? 'in_use' : ok ? 'refused' : 'no-answer';
      return res;
    }
    res.login = 'session';
    const active = new Map<number, number>(); // tunnel id -> port
    const drain = async (ms: number) => {
      for (let m = await control.read(ms); m; m = await control.read(5)) {
        if (m.type === 'TunnelStatus') {
          if (m.state === 'active') {
            active.set(m.tunnelId, m.port);
            res.tunnelsOpened++;
          } else active.delete(m.tunnelId);
        }
      }
    };
    /** A visitor on an open tunnel; the server assigns it an idle channel and sends IncomingConn. */
    const visit = async () => {
      const port = rng.pick([...active.values()]);
      const v = connect({ host: '127.0.0.1', port });
      v.on('error', () => {});
      visitors.push(v);
      v.write(rng.bytes(1 + rng.int(200)));
      res.log.push(`visitor on :${port}`);
      for (const ch of channels.filter((x) => x.proven && !x.busy && !x.conn.closed)) {
        const m: ServerMessage | undefined = await ch.conn.read(300);
        if (m?.type !== 'IncomingConn') continue;
        ch.busy = true;
        res.visitorsAssigned++;
        const a = rng.int(5);
        res.log.push(
          `channel answers IncomingConn with ${['data', 'error', 'changed', 'fin', 'silence'][a]}`,
        );
        if (a === 0) {
          await ch.keyed!.send(
            rng,
            { type: 'Data', fin: rng.chance(0.3), payload: rng.bytes(rng.int(300)) },
            'valid',
          );
        } else if (a === 1) {
          await ch.keyed!.send(
            rng,
            { type: 'Error', streamId: m.connId, code: 'target_unreachable', message: 'refused' },
            'valid',
          );
        } else if (a === 2) await ch.keyed!.send(rng, seedMessage(rng), how(rng));
        else if (a === 3) ch.conn.sock.end();
        break;
      }
    };
    if (rng.chance(0.5)) {
      // Most of the way honestly first: a tunnel on a free port, a proven channel, a visitor.
      const open = seedMessage(rng, ['OpenTunnel']) as Extract<ClientMessage, { type: 'OpenTunnel' }>;
      await k.send(
        rng,
        {
          ...open,
          tunnelId: 1,
          permitFrom: [],
          maxConnections: 0,
          rateLimit: 0,
          remotePort: ctx.ports.low + rng.int(ctx.ports.high - ctx.ports.low + 1),
        },
        'valid',
      );
      res.messages++;
      await drain(300);
      const ch = await dataChannel(rng, ctx.port, keys.sessionId, keys.sessionSecret, res.log, true);
      channels.push({ ...ch, busy: false });
      if (ch.proven) res.channelsProven++;
      if (active.size > 0) await visit();
    }
    const steps = 1 + rng.int(8);
    for (let s = 0; s < steps && !control.closed; s++) {
      const r = rng.int(10);
      if (r < 5) {
        const m = controlMessage(rng, ctx);
        const h = how(rng);
        res.log.push(`control: ${m.type} (${h})`);
        await k.send(rng, m, h);
        res.messages++;
        await drain(30);
      } else if (r < 8) {
        const ch = await dataChannel(rng, ctx.port, keys.sessionId, keys.sessionSecret, res.log);
        channels.push({ ...ch, busy: false });
        if (ch.proven) res.channelsProven++;
      } else if (active.size > 0) {
        await visit();
      }
      if (rng.chance(0.3)) await drain(20);
    }
  } finally {
    // Leave: FIN or reset on the control channel; the server must notice before the next login.
    if (rng.chance(0.7)) control.sock.end();
    else control.destroy(true);
    for (const v of visitors) v.destroy();
    if (!(await control.waitClose(2000))) control.destroy(true);
    // Channels not carrying a visitor must be closed by the server now that the session is gone
    // (idle ones at once, unproven ones by their proof deadline). Checked in the background, so the
    // next session need not wait.
    res.leftOpen = Promise.all(channels.map((ch) => closedByServer(ch))).then(
      (open) => open.filter(Boolean).length,
    );
  }
  return res;
}

/** True when the server left this channel open past the bound (a channel it assigned a visitor to is
 * ours to end, and is not counted). */
async function closedByServer(ch: { conn: Conn; busy: boolean }): Promise<boolean> {
  const until = Date.now() + CHANNEL_WAIT_TIMEOUT_MS;
  while (!ch.busy && !ch.conn.closed && Date.now() < until) {
    const m = await ch.conn.read(until - Date.now());
    if (m?.type === 'IncomingConn') ch.busy = true;
  }
  const open = !ch.busy && !ch.conn.closed;
  ch.conn.destroy(true);
  return open;
}
