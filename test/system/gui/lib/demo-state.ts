/** A believable dashboard state for screenshots and the accessibility scan: a fake client and GUI. */
import type { ClientSnapshot } from '../../../../src/client/api.js';
import type { GuiState } from '../../../../src/gui/dashboard-types.js';
import { FakeClient } from '../../../gui/fake-client.js';

export const DEMO_FINGERPRINT = 'SHA256:q1Xv0dXU4mYzL3oM9bJ2cC8pWk7nRtE5sAfGhJkLmNo';

/** Four tunnels: one busy with recent visitors, one with its local service down, one refused, one off. */
export function demoClient(now = Date.now()): FakeClient {
  const c = new FakeClient();
  c.connection = { kind: 'connected', serverFingerprint: DEMO_FINGERPRINT, since: now - 3 * 3600_000 };
  c.allowedPorts = [
    { low: 8000, high: 9000 },
    { low: 15000, high: 16000 },
  ];
  c.add({ name: 'web', remotePort: 8080, localPort: 3000, maxConnections: 100, rateLimit: '10MB/s' });
  c.add({
    name: 'postgres',
    remotePort: 15432,
    localHost: 'db.lan',
    localPort: 5432,
    permitFrom: ['203.0.113.0/24'],
  });
  c.add({ name: 'ssh-nas', remotePort: 2222, localHost: '192.168.1.20', localPort: 22 });
  c.add({ name: 'grafana', remotePort: 8081, localHost: '::1', localPort: 3001, enabled: false });
  c.patch('web', {
    effective: { maxConnections: 100, rateLimit: 10_000_000 },
    activeConnections: 3,
    totalConnections: 1842,
    bytesIn: 48_213_004,
    bytesOut: 912_443_110,
    local: { state: 'ok', since: now - 3600_000 },
    recent: [
      {
        id: 1838,
        at: now - 95_000,
        peer: '198.51.100.23:51544',
        open: false,
        durationMs: 1830,
        bytesIn: 912,
        bytesOut: 48_122,
      },
      {
        id: 1839,
        at: now - 61_000,
        peer: '198.51.100.23:51560',
        open: false,
        durationMs: 240,
        bytesIn: 640,
        bytesOut: 1022,
      },
      {
        id: 1840,
        at: now - 12_000,
        peer: '[2001:db8::7]:40112',
        open: true,
        bytesIn: 1200,
        bytesOut: 310_004,
      },
      { id: 1841, at: now - 4000, peer: '203.0.113.9:60002', open: true, bytesIn: 422, bytesOut: 8810 },
      { id: 1842, at: now - 1000, peer: '203.0.113.9:60003', open: true, bytesIn: 380, bytesOut: 0 },
    ],
  });
  c.patch('postgres', {
    activeConnections: 0,
    totalConnections: 57,
    bytesIn: 3_114_224,
    bytesOut: 71_004_932,
    failedDials: 3,
    local: { state: 'failing', lastError: 'ECONNREFUSED', since: now - 300_000 },
  });
  c.patch('ssh-nas', {
    status: 'error',
    error: 'port 2222 is not allowed for this key (allowed: 8000-9000, 15000-16000)',
    errorReason: 'port_not_allowed',
    nextRetryAt: now + 24_000,
  });
  c.events = [
    { at: now - 3 * 3600_000, level: 'info', message: 'connected to tunnel.example.net:7835 (SHA256:q1Xv…)' },
    {
      at: now - 3 * 3600_000 + 40,
      level: 'info',
      message: 'tunnel open: tunnel.example.net:8080 -> 127.0.0.1:3000',
      tunnel: 'web',
    },
    {
      at: now - 3 * 3600_000 + 55,
      level: 'error',
      message: 'tunnel refused: port 2222 is not allowed for this key',
      tunnel: 'ssh-nas',
    },
    { at: now - 900_000, level: 'info', message: 'changed: public port 8081 → 8080', tunnel: 'web' },
    ...[5, 4, 3, 2, 1].map((m) => ({
      at: now - m * 60_000,
      level: 'warn' as const,
      message: `db.lan:5432 refused a connection (ECONNREFUSED)`,
      tunnel: 'postgres',
    })),
    { at: now - 30_000, level: 'info', message: 'disabled', tunnel: 'grafana' },
  ];
  return c;
}

/** What the desktop GUI adds, for views that need it (Settings). */
export function demoGui(): GuiState {
  return {
    window: 'open',
    configPath: '/home/ana/.config/mtt/client.json',
    identityPath: '/home/ana/.config/mtt/id_ed25519',
    knownServersPath: '/home/ana/.config/mtt/known_servers',
    settings: {
      server: 'tunnel.example.net:7835',
      serverKey:
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK8s3b1yJxXk0mT2nW9qLrV4cZ5pE7hG6fD3aS1uQ0oB tunnel-server',
      heartbeatSeconds: 30,
      heartbeatTimeoutSeconds: 10,
      reconnectMaxSeconds: 30,
    },
    preferences: { notifications: true, startAtLogin: false, launcher: true },
  };
}

export type { ClientSnapshot };
