/**
 * OpenSSH `ssh -R` as the baseline: a private sshd on a high loopback port with its own config, host key
 * and authorized_keys in a temp folder, and an `ssh -N -R` client. Nothing of the system's SSH setup
 * or ~/.ssh is read or changed (`-F /dev/null`, own known_hosts, no agent).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keyFolder } from '../lib/keys.js';
import { freePort, LOOPBACK, sshBannerProbe, waitReady } from '../lib/net.js';
import { descendants, isAlive, type Proc, readComm, sleep } from '../lib/procs.js';
import { isRoot, which } from '../lib/tools.js';
import { targetOn } from '../lib/topology.js';
import { type BenchPath, onFreshPorts, PathUnavailable } from './types.js';

/** The cipher both sides are pinned to. */
export const SSH_CIPHER = 'chacha20-poly1305@openssh.com';

let keyMaker: (() => Promise<string>) | undefined;

/** Host and client keys plus authorized_keys, made once per bench. */
function sshKeys(keygen: string): Promise<string> {
  keyMaker ??= keyFolder('ssh', async (dir, scope) => {
    await Promise.all(
      ['host_ed25519', 'client_ed25519'].map(async (key) => {
        const args = ['-q', '-t', 'ed25519', '-N', '', '-C', `mtt-bench-${key}`, '-f', `${dir}/${key}`];
        const r = await scope.run('ssh-keygen', keygen, args, { timeoutMs: 15_000 });
        if (r.code !== 0) throw new PathUnavailable(`ssh-keygen failed: ${r.stderr.trim()}`);
      }),
    );
    writeFileSync(`${dir}/authorized_keys`, readFileSync(`${dir}/client_ed25519.pub`), { mode: 0o600 });
  });
  return keyMaker();
}

function sshdConfig(dir: string, keys: string, host: string, port: number, user: string): string {
  return [
    `Port ${port}`,
    `ListenAddress ${host}`,
    `HostKey ${keys}/host_ed25519`,
    `AuthorizedKeysFile ${keys}/authorized_keys`,
    `PidFile ${dir}/sshd.pid`,
    'UsePAM no',
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `AllowUsers ${user}`,
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    // -R names 127.0.0.1: with 'no', sshd binds 'localhost' (127.0.0.1 and ::1) and reports success
    // when only ::1 could be bound, so a taken port would not fail the forward.
    'GatewayPorts clientspecified',
    `Ciphers ${SSH_CIPHER}`,
    // The server allows compression; the client's -o Compression decides.
    'Compression yes',
    'UseDNS no',
    'PrintMotd no',
    'ClientAliveInterval 0',
    'MaxStartups 100:30:200',
    'LogLevel INFO',
    '',
  ].join('\n');
}

/** A started sshd and `ssh -R` client, and how to find and end sshd's per-connection processes. */
interface SshStarted {
  daemon: Proc;
  client: Proc;
  remotePort: number;
  connectionPids: () => number[];
  killSeen: () => void;
  stillSshd: (pid: number) => boolean;
}

/**
 * `ssh -R` with chacha20-poly1305, with or without Compression: sshd on the visitor side (listening
 * on the topology's server address; the forwarded port on 127.0.0.1), `ssh -N -R` on the service side.
 */
export function sshPath(compression: boolean): BenchPath {
  const name = compression ? 'ssh-comp' : 'ssh';
  return {
    name,
    label: compression ? 'ssh -R, Compression=yes' : 'ssh -R, Compression=no',
    needs: ['sshd', 'ssh', 'ssh-keygen'],
    async start(localPort, opts) {
      const { scope, topo } = opts;
      const sshd = which('sshd');
      const ssh = which('ssh');
      const keygen = which('ssh-keygen');
      if (!sshd || !ssh || !keygen) throw new PathUnavailable('OpenSSH is not installed');
      const started = Date.now();
      const left = () => Math.max(1000, opts.timeoutMs - (Date.now() - started));

      // Debian's sshd refuses to start without its privilege-separation folder.
      if (!existsSync('/run/sshd') && isRoot()) mkdirSync('/run/sshd', { mode: 0o755, recursive: true });

      const keys = await sshKeys(keygen);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'mtt-bench-ssh-'));
      scope.deferRemove(dir);
      const user = os.userInfo().username;
      // A port picked free may be taken before sshd listens there: then again on fresh ones.
      const { daemon, client, remotePort, connectionPids, killSeen, stillSshd } =
        await onFreshPorts<SshStarted>(3, async () => {
          const sshdPort = await freePort();
          writeFileSync(`${dir}/sshd_config`, sshdConfig(dir, keys, topo.serverAddr, sshdPort, user));

          const daemon = scope.spawn(`${name}-sshd`, sshd, ['-D', '-e', '-f', `${dir}/sshd_config`], {
            nofile: opts.nofile,
            netns: topo.netns.visitor,
          });
          // sshd's per-connection processes start their own sessions, so killing its group misses them:
          // remember them and kill them by pid.
          const seen = new Set<number>();
          // Checking the name too (sshd, or sshd-session since OpenSSH 9.8) keeps a recycled pid out.
          const stillSshd = (pid: number) => isAlive(pid) && readComm(pid).startsWith('sshd');
          const connectionPids = () => {
            if (!daemon.exit) for (const pid of descendants(daemon.pid)) seen.add(pid);
            return [...seen].filter(stillSshd);
          };
          const killSeen = () => {
            for (const pid of connectionPids()) {
              try {
                process.kill(pid, 'SIGKILL');
              } catch {
                // gone
              }
            }
          };
          scope.defer(killSeen, killSeen);

          let client: Proc | undefined;
          let remotePort = 0;
          const stopAll = async () => {
            await client?.stop(2000);
            killSeen();
            await daemon.stop(2000);
          };
          try {
            // The daemon is ready when its port answers with the SSH banner.
            await waitReady(targetOn(topo, 'visitor', topo.serverAddr, sshdPort), sshBannerProbe, {
              timeoutMs: Math.min(10_000, left()),
              what: 'sshd',
              failFast: () => (daemon.exit ? daemon.describeExit() : undefined),
            });

            remotePort = await freePort();
            client = scope.spawn(
              `${name}-client`,
              ssh,
              [
                '-N',
                '-F',
                '/dev/null',
                '-R',
                `${LOOPBACK}:${remotePort}:${LOOPBACK}:${localPort}`,
                '-i',
                `${keys}/client_ed25519`,
                '-o',
                `UserKnownHostsFile=${dir}/known_hosts`,
                '-o',
                'StrictHostKeyChecking=no',
                '-o',
                'ExitOnForwardFailure=yes',
                '-o',
                `Compression=${compression ? 'yes' : 'no'}`,
                '-o',
                'BatchMode=yes',
                '-o',
                'IdentitiesOnly=yes',
                '-o',
                'IdentityAgent=none',
                '-o',
                'ConnectTimeout=10',
                '-o',
                'LogLevel=ERROR',
                '-c',
                SSH_CIPHER,
                '-p',
                String(sshdPort),
                `${user}@${topo.serverAddr}`,
              ],
              { nofile: opts.nofile, env: { ...process.env, SSH_AUTH_SOCK: '' }, netns: topo.netns.service },
            );
            await waitReady(targetOn(topo, 'visitor', LOOPBACK, remotePort), opts.ready, {
              timeoutMs: left(),
              what: `${name} tunnel`,
              failFast: () => {
                if (client?.exit) return client.describeExit();
                if (daemon.exit) return daemon.describeExit();
                return undefined;
              },
            });
          } catch (err) {
            await stopAll();
            throw err;
          }
          connectionPids();
          return { daemon, client: client as Proc, remotePort, connectionPids, killSeen, stillSshd };
        });
      return {
        publicHost: LOOPBACK,
        publicPort: remotePort,
        pids: () => [...connectionPids(), ...(client.exit ? [] : [client.pid])],
        async stop() {
          // Ending the client ends its connection, and with it sshd's per-connection processes.
          const pids = connectionPids();
          await client.stop(2000);
          const deadline = Date.now() + 3000;
          while (Date.now() < deadline && pids.some(stillSshd)) await sleep(50);
          killSeen();
          await daemon.stop(2000);
        },
      };
    },
  };
}
