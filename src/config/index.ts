/**
 * The config layer's public surface, pure (no Node APIs, so the dashboard's web app bundles it too):
 * the one client config and tunnel schema (zod -> types, defaults, field labels), host/port, CIDR and
 * rate parsing, and ConfigError. The files on disk are files.ts.
 */
export * from './client-config.js';
export * from './config-error.js';
export * from './host-port.js';
export * from './rate.js';
