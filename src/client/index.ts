/** The client library: start one with startClient() or startClientFromConfig(). */
export type * from './api.js';
export {
  type ClientFromConfigOptions,
  type ClientOptions,
  loadClientIdentity,
  type MttClient,
  startClient,
  startClientFromConfig,
} from './client.js';
export type { LiveSettingsPatch } from './config-sync.js';
export { ClientFailedError } from './control-client.js';
export { StateStore } from './state-store.js';
export { TunnelManager } from './tunnel-manager.js';
