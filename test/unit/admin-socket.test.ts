/**
 * The admin socket (src/server/admin-socket.ts) on real Unix sockets: how it is created (never through
 * a symlink, never over another file, a stale socket removed only when nothing answers, an unsafe
 * folder refused, mode 0600) and what it accepts (one bounded request line, in time, a few clients).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import {
  ADMIN_REQUEST_TIMEOUT_MS,
  type AdminSocket,
  MAX_ADMIN_CLIENTS,
  MAX_ADMIN_REQUEST,
  openAdminSocket,
} from '../../src/server/admin-socket.js';
import { silentLogger } from '../../src/util/logger.js';
import { captureLog } from '../e2e/harness.js';

async function folder(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-admin-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function open(t: TestContext, path: string, status: () => unknown = () => ({ hello: 1 })) {
  const admin = await openAdminSocket({ path, status, log: silentLogger });
  t.after(() => admin.close());
  return admin;
}

/** Sends `data` (ending the write side when `end`), reads everything back until the server closes. */
async function exchange(path: string, data: string | Buffer, end = false): Promise<string> {
  const s = connect(path);
  await once(s, 'connect');
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  if (end) s.end(data);
  else s.write(data);
  await once(s, 'close');
  return Buffer.concat(chunks).toString();
}

test('answers {"cmd":"status"} with one JSON line, from a socket of mode 0600; close removes it', async (t) => {
  const dir = await folder(t);
  const path = join(dir, 'admin.sock');
  const admin: AdminSocket = await open(t, path, () => ({ tunnels: ['web'] }));
  const st = await lstat(path);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(await exchange(path, '{"cmd":"status"}\n'), '{"ok":true,"status":{"tunnels":["web"]}}\n');
  await admin.close();
  await assert.rejects(lstat(path), { code: 'ENOENT' });
});

test('a symlink at the path is refused and left alone; so is a regular file', async (t) => {
  const dir = await folder(t);
  const target = join(dir, 'precious');
  await writeFile(target, 'keep me');
  const mode = (await lstat(target)).mode;
  const link = join(dir, 'admin.sock');
  await symlink(target, link);
  await assert.rejects(openAdminSocket({ path: link, status: () => ({}), log: silentLogger }), {
    code: 'ERR_ADMIN_SOCKET_UNSAFE',
    message: `${link} is a symbolic link; mtt does not follow it: remove it or pass another --admin-socket`,
  });
  assert.ok((await lstat(link)).isSymbolicLink(), 'the link is still there');
  assert.equal(await readFile(target, 'utf8'), 'keep me');
  assert.equal((await lstat(target)).mode, mode, 'its target was not chmod-ed');
  await assert.rejects(openAdminSocket({ path: target, status: () => ({}), log: silentLogger }), {
    code: 'ERR_ADMIN_SOCKET_UNSAFE',
    message: `${target} exists and is not a socket; remove it or pass another --admin-socket`,
  });
  assert.equal(await readFile(target, 'utf8'), 'keep me');
});

test('a folder others can write to is refused', async (t) => {
  const dir = await folder(t);
  const open = join(dir, 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  await assert.rejects(
    openAdminSocket({ path: join(open, 'admin.sock'), status: () => ({}), log: silentLogger }),
    { code: 'ERR_ADMIN_SOCKET_UNSAFE', message: /can be written by other users.*chmod go-w/ },
  );
});

test('a live socket is not taken; a stale one (nobody listens) is replaced', async (t) => {
  const dir = await folder(t);
  const path = join(dir, 'admin.sock');
  const other = createServer(() => {});
  other.listen(path);
  await once(other, 'listening');
  await assert.rejects(openAdminSocket({ path, status: () => ({}), log: silentLogger }), {
    code: 'ERR_ADMIN_SOCKET_IN_USE',
    message: `another mtt server answers on its admin socket ${path}; stop it, or pass another --admin-socket`,
  });
  assert.ok((await lstat(path)).isSocket(), 'the live one is left alone');
  await new Promise<void>((r) => other.close(() => r()));
  await staleSocket(path);
  const cap = captureLog();
  const admin = await openAdminSocket({ path, status: () => ({ hello: 1 }), log: cap.log });
  t.after(() => admin.close());
  assert.ok(cap.lines.some((l) => l.msg === 'removed a stale admin socket' && l.path === path));
  assert.match(await exchange(path, '{"cmd":"status"}\n'), /^\{"ok":true/);
});

/** A socket file nobody listens on (what kill -9 leaves): bound by a child process that is then killed. */
async function staleSocket(path: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    process.execPath,
    ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(child.stdout!, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok((await lstat(path)).isSocket(), 'kill -9 left the socket');
}

test('bounds: a long request, a request that is not JSON, an unknown command', async (t) => {
  const dir = await folder(t);
  const path = join(dir, 'admin.sock');
  await open(t, path);
  assert.equal(
    await exchange(path, 'x'.repeat(MAX_ADMIN_REQUEST + 1)),
    `{"ok":false,"error":"the request is longer than ${MAX_ADMIN_REQUEST} bytes"}\n`,
  );
  assert.equal(await exchange(path, '{status\n'), '{"ok":false,"error":"the request is not a JSON line"}\n');
  assert.match(await exchange(path, '{"cmd":"stop"}\n'), /^\{"ok":false,"error":"unknown command/);
  // A half request and then the end of the stream: closed without an answer.
  assert.equal(await exchange(path, '{"cmd"', true), '');
});

test('a silent client is closed after the request timeout; the fifth client at once is told busy', async (t) => {
  const dir = await folder(t);
  const path = join(dir, 'admin.sock');
  await open(t, path);
  const held: Socket[] = [];
  for (let i = 0; i < MAX_ADMIN_CLIENTS; i++) {
    const s = connect(path);
    s.on('error', () => {});
    await once(s, 'connect');
    held.push(s);
  }
  const started = Date.now();
  const closed = once(held[0]!, 'close');
  assert.match(
    await exchange(path, '{"cmd":"status"}\n'),
    /^\{"ok":false,"error":"busy: 4 admin connections/,
  );
  await closed;
  const took = Date.now() - started;
  assert.ok(
    took >= ADMIN_REQUEST_TIMEOUT_MS - 100 && took < ADMIN_REQUEST_TIMEOUT_MS + 3000,
    `closed after ${took} ms`,
  );
  for (const s of held) s.destroy();
  // Slots free again once they close.
  for (let i = 0; ; i++) {
    const answer = await exchange(path, '{"cmd":"status"}\n');
    if (answer.startsWith('{"ok":true')) break;
    assert.ok(i < 50, 'slots are freed');
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('a path longer than a Unix socket allows is refused with the limit named', async (t) => {
  const dir = await folder(t);
  const path = join(dir, 'x'.repeat(120), 'admin.sock');
  await assert.rejects(openAdminSocket({ path, status: () => ({}), log: silentLogger }), {
    code: 'ERR_ADMIN_SOCKET_UNSAFE',
    message: /is longer than 107 bytes \(a Unix socket limit\)/,
  });
});
