/** resetSocket and the small socket helpers, on real loopback sockets. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { resetSocket } from '../../src/transport/sockets.js';
import { closedHow, socketPair } from './helpers.js';

const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

describe('resetSocket', () => {
  test('resets an open socket: the peer sees ECONNRESET', async (t) => {
    const { accepted, dialled } = await socketPair(t);
    const peer = closedHow(accepted);
    resetSocket(dialled);
    assert.equal((await peer).reset, true);
  });

  test('a socket whose FIN is still in flight is closed, not leaked (libuv refuses that reset)', async (t) => {
    const { accepted, dialled } = await socketPair(t);
    accepted.resume();
    const errors: Error[] = [];
    dialled.on('error', (e) => errors.push(e));
    const before = tcpHandles();
    dialled.end();
    await new Promise((r) => process.nextTick(r));
    const closed = once(dialled, 'close');
    resetSocket(dialled);
    await closed;
    // Node's resetAndDestroy() would emit EINVAL here and keep the handle (and its fd) open for good.
    assert.deepEqual(errors, []);
    await new Promise((r) => setImmediate(r));
    assert.equal(tcpHandles(), before - 1, 'the handle is gone');
  });
});
