/** The protocol layer's public surface: wire format, codec, handshakes, limits. No sockets. */
export * from './errors.js';
export * from './frame-codec.js';
export * from './handshake-machines.js';
export * from './limits.js';
export * from './messages.js';
