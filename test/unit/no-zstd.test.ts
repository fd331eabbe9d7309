/**
 * A Node without zstd (before 22.15): the built modules run in a child process with `MTT_ZSTD=off`,
 * which makes zstdAvailable() answer as such a Node does. There, a tunnel configured with
 * `compress: "zstd"` is refused with an error naming its field and the Node version it needs, a
 * server refuses `zstd: true`, and a codec-2 body is an unknown codec.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const dist = (path: string) => new URL(`../../src/${path}`, import.meta.url).href;

const script = `
const { TunnelManager } = await import(${JSON.stringify(dist('client/tunnel-manager.js'))});
const { startServer } = await import(${JSON.stringify(dist('server/server.js'))});
const { FrameDecoder } = await import(${JSON.stringify(dist('protocol/frame-codec.js'))});
const { decodeMessage } = await import(${JSON.stringify(dist('protocol/messages.js'))});
const crypto = await import('node:crypto');
const out = {};
try {
  new TunnelManager([{ name: 'a', remotePort: 9000, localPort: 80 }, { name: 'b', remotePort: 9001, localPort: 80, compress: 'zstd' }]);
} catch (e) {
  out.config = { name: e.name, field: e.field, message: e.message };
}
try {
  await startServer({ port: 0, host: '127.0.0.1', zstd: true });
} catch (e) {
  out.server = e.message;
}
const key = crypto.randomBytes(32), nonceBase = crypto.randomBytes(4);
const body = Buffer.from('02660000002800', 'hex');
const header = Buffer.alloc(4);
header.writeUInt32BE(body.length + 16);
const nonce = Buffer.alloc(12);
nonceBase.copy(nonce);
const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
c.setAAD(header, { plaintextLength: body.length });
const d = new FrameDecoder(decodeMessage);
d.setKeys({ key, nonceBase });
d.push(Buffer.concat([header, c.update(body), c.final(), c.getAuthTag()]));
try { d.next(); } catch (e) { out.codec = e.code; }
console.log(JSON.stringify(out));
`;

test('on a Node without zstd: "zstd" in the config is refused by field, the server cannot grant it, codec 2 is unknown', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, MTT_ZSTD: 'off' },
  });
  const out = JSON.parse(stdout) as {
    config?: { name: string; field: string; message: string };
    server?: string;
    codec?: string;
  };
  assert.equal(out.config?.name, 'ConfigError');
  assert.equal(out.config?.field, 'tunnels[1].compress');
  assert.match(out.config?.message ?? '', /compression "zstd" needs Node\.js 22\.15 or later \(this is v\d+/);
  assert.match(out.server ?? '', /zstd needs Node\.js 22\.15 or later/);
  assert.equal(out.codec, 'ERR_UNKNOWN_CODEC');
});
