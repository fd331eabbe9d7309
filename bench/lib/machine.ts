/** Facts about the machine a bench ran on, for the docs and the JSON. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { effectiveNofile } from './procs.js';
import { type ToolPaths, tryExec, versionLine } from './tools.js';

/** What a reader needs to compare figures across machines. */
export interface MachineFacts {
  nproc: number;
  cpuModel: string;
  memory: string;
  kernel: string;
  os: string;
  node: string;
  openssh: string | undefined;
  iperf3: string | undefined;
  wrk: string | undefined;
  nginx: string | undefined;
  /** The highest open-file limit a child can get (the many-connections test needs a lot). */
  nofileLimit: number;
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m?.[1]) return m[1];
  } catch {
    // not Linux-like
  }
  return `${os.type()} ${os.release()}`;
}

/** Collects the facts (each command bounded by a short timeout). */
export function machineFacts(tools: ToolPaths): MachineFacts {
  const nproc = Number(tryExec('nproc', [])) || os.availableParallelism();
  return {
    nproc,
    cpuModel: os.cpus()[0]?.model?.trim() || 'unknown',
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    os: osName(),
    node: process.version,
    openssh: tools.ssh ? versionLine(tools.ssh, ['-V']) : undefined,
    iperf3: tools.iperf3 ? versionLine(tools.iperf3, ['--version']) : undefined,
    wrk: tools.wrk ? versionLine(tools.wrk, ['-v'])?.replace(/\s*Copyright.*$/, '') : undefined,
    nginx: tools.nginx ? versionLine(tools.nginx, ['-v'])?.replace(/^nginx version:\s*/, '') : undefined,
    nofileLimit: effectiveNofile(1_048_576),
  };
}
