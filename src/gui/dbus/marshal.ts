/**
 * D-Bus wire marshalling (https://dbus.freedesktop.org/doc/dbus-specification.html#message-protocol),
 * the subset a tray icon needs: the type system in signature.ts, the writer in wire-writer.ts and the
 * reader in wire-reader.ts. Import them from here.
 */
export * from './signature.js';
export { WireReader } from './wire-reader.js';
export { WireWriter } from './wire-writer.js';
