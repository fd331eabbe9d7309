/**
 * Identity keys: Ed25519 identities, OpenSSH key files, the server's allow-list and the client's known servers.
 */
export type {
  AddressBlockOption,
  AllowListEntry,
  AllowListOptions,
  LoadedAllowList,
  RemovedFromAllowList,
} from './allow-list.js';
export { appendToAllowList, loadAllowList, parseAllowList, removeFromAllowList } from './allow-list.js';
export type { Identity } from './identity.js';
export { ED25519_SEED_LENGTH, generateIdentity, identityFromSeed, publicKeyFromRaw } from './identity.js';
export type { IdentityErrorCode } from './identity-error.js';
export { IdentityError } from './identity-error.js';
export type { HostKeyResult, WriteIdentityOptions } from './key-files.js';
export {
  loadIdentity,
  loadOrCreateHostKey,
  PRIVATE_DIR_MODE,
  PRIVATE_KEY_MODE,
  PUBLIC_KEY_MODE,
  publicKeyPath,
  writeIdentityFiles,
} from './key-files.js';
export type { RecordKnownServerOptions } from './known-servers.js';
export { lookupKnownServer, recordKnownServer } from './known-servers.js';
export type { PortRange } from './port-range.js';
export { ANY_PORT, formatPortRanges, parsePortRanges, portAllowed } from './port-range.js';
export { formatPrivateKeyFile, parsePrivateKeyFile } from './private-key-file.js';
export type { ParsedPublicKey } from './public-key.js';
export {
  ED25519_KEY_TYPE,
  ED25519_PUBLIC_LENGTH,
  fingerprint,
  formatPublicKeyLine,
  parsePublicKeyLine,
  publicKeyBlob,
} from './public-key.js';
