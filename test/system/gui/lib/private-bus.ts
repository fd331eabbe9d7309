/** A private D-Bus session bus for a test: its own dbus-daemon on a socket in a temp folder. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const runFile = promisify(execFile);

export interface PrivateBus {
  /** DBUS_SESSION_BUS_ADDRESS for it. */
  address: string;
  close(): Promise<void>;
}

/** Starts `dbus-daemon --session --nofork` and resolves once it prints its address (bounded). */
export async function startPrivateBus(timeoutMs = 10_000): Promise<PrivateBus> {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-bus-'));
  const child: ChildProcess = spawn(
    'dbus-daemon',
    [
      '--session',
      '--nofork',
      '--nopidfile',
      '--print-address=1',
      `--address=unix:path=${join(dir, 'bus.sock')}`,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('dbus-daemon did not start in time')), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run dbus-daemon (apt-get install -y dbus): ${err.message}`));
    });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl).trim());
      }
    });
  });
  return {
    address,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Calls `method` on `dest` at `objectPath` with GLib's gdbus (a second, independent D-Bus
 * implementation) and resolves with what it prints; a missing gdbus fails with its install line.
 */
export async function gdbusCall(
  address: string,
  dest: string,
  objectPath: string,
  method: string,
  args: readonly string[],
): Promise<string> {
  const argv = [
    'call',
    '--address',
    address,
    '--dest',
    dest,
    '--object-path',
    objectPath,
    '--method',
    method,
  ];
  try {
    const { stdout } = await runFile('gdbus', [...argv, '--', ...args], { timeout: 10_000 });
    return stdout;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error('gdbus is missing: apt-get install -y libglib2.0-bin');
    throw err;
  }
}
