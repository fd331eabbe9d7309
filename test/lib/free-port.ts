/** A loopback port for tests, the fuzzer and the soak: the one `freePort` they all import. */
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';

/** A port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0, then closed). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen({ host: '127.0.0.1', port: 0 });
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
