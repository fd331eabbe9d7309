/** Placeholder until the live campaign is written. */
import type { Finding } from '../lib/runner.js';

export async function runLive(_o: {
  seed: number;
  handshakes: number | undefined;
  deadline: number | undefined;
  concurrency: number;
  record: (f: Finding) => void;
}): Promise<{ text: string; handshakes: number; serverPeakRss: number; summary: unknown }> {
  return { text: '', handshakes: 0, serverPeakRss: 0, summary: {} };
}

export async function replayLive(_f: Finding): Promise<number> {
  return 0;
}
