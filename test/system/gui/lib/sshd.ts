/**
 * A private OpenSSH server on loopback for one test (its own config, host key and authorized_keys in a
 * temp folder), and `ssh` clients that read nothing of the system's or the user's SSH setup.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../../../e2e/harness.js';
import { until } from './desktop.js';

const run = promisify(execFile);

export interface Sshd {
  port: number;
  /** Starts `ssh -N ARGS` to this server (killed after the test). */
  ssh(args: string[]): ChildProcess;
}

function need(path: string, pkg: string): void {
  if (!existsSync(path))
    throw new Error(`${path} is missing: apt-get install -y --no-install-recommends ${pkg}`);
}

/** Starts sshd on a free loopback port; stopped and removed after the test. */
export async function startSshd(t: TestContext): Promise<Sshd> {
  need('/usr/sbin/sshd', 'openssh-server');
  need('/usr/bin/ssh', 'openssh-client');
  const dir = await mkdtemp(join(tmpdir(), 'mtt-sshd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const key of ['host', 'client']) {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `mtt-test-${key}`, '-f', join(dir, key)]);
  }
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client.pub')), { mode: 0o600 });
  // Debian's sshd refuses to start without its privilege-separation folder.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const user = userInfo().username;
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      `AllowUsers ${user}`,
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      'UseDNS no',
      '',
    ].join('\n'),
  );
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
  t.after(() => {
    sshd.kill('SIGTERM');
  });
  await until('sshd to listen', () => canConnect(port), 10_000);
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const c of children) c.kill('SIGTERM');
  });
  return {
    port,
    ssh: (args) => {
      const child = spawn(
        '/usr/bin/ssh',
        [
          '-F',
          '/dev/null',
          '-N',
          '-p',
          String(port),
          '-i',
          join(dir, 'client'),
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
          '-o',
          'ExitOnForwardFailure=yes',
          '-o',
          'BatchMode=yes',
          ...args,
          `${user}@127.0.0.1`,
        ],
        { stdio: 'ignore' },
      );
      children.push(child);
      return child;
    },
  };
}

/** True when something accepts a TCP connection on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
