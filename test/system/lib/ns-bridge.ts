/**
 * `node ns-bridge.js SOCKET`, run inside a network namespace by netns.ts: each connection to the
 * Unix socket SOCKET starts with a line `HOST PORT\n`; the bridge dials HOST:PORT from inside the
 * namespace, answers '+' once connected (or `-reason\n` and closes), then relays both ways with
 * half-close. Exits when its stdin closes, so it never outlives the process that started it.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';

const MAX_HEAD = 300;
const sockPath = process.argv[2];
if (!sockPath) {
  process.stderr.write('usage: ns-bridge.js SOCKET\n');
  process.exit(2);
}

const server = net.createServer({ allowHalfOpen: true }, (unix) => {
  unix.on('error', () => {});
  let head = Buffer.alloc(0);
  const onHead = (d: Buffer) => {
    head = Buffer.concat([head, d]);
    const nl = head.indexOf(0x0a);
    if (nl < 0) {
      if (head.length > MAX_HEAD) unix.destroy();
      return;
    }
    unix.off('data', onHead);
    unix.pause();
    const [host, port] = head.subarray(0, nl).toString('utf8').split(' ');
    const rest = head.subarray(nl + 1);
    const tcp = net.connect({ host, port: Number(port), allowHalfOpen: true, noDelay: true });
    let connected = false;
    tcp.on('error', (err) => {
      if (connected) unix.destroy();
      else unix.end(`-${err.message}\n`);
    });
    // A reset on one side ends the other at once; a clean end travels through the pipes.
    tcp.on('close', () => {
      if (connected && !unix.writableEnded) unix.destroy();
    });
    unix.on('close', () => {
      if (!tcp.writableEnded) tcp.destroy();
    });
    tcp.once('connect', () => {
      connected = true;
      unix.write('+');
      if (rest.length > 0) tcp.write(rest);
      unix.pipe(tcp);
      tcp.pipe(unix);
    });
  };
  unix.on('data', onHead);
});

rmSync(sockPath, { force: true });
server.listen(sockPath, () => process.stdout.write('{"ready":true}\n'));
server.on('error', (err) => {
  process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
  process.exit(1);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
