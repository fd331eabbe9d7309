/**
 * minitcptunnel as a library: start an mtt server or client inside a Node program.
 *
 * The root entry point gathers what embedding needs: startServer (also `minitcptunnel/server`),
 * startClient and startClientFromConfig (also `minitcptunnel/client`), and the identity helpers that
 * make and load keys and allow-lists. The wire format and codec are in `minitcptunnel/protocol`.
 *
 * @example
 * import { generateIdentity, startServer } from 'minitcptunnel';
 * const server = await startServer({ port: 9000, identity: generateIdentity('my-server'), allowedKeysPath: 'allowed_keys' });
 */
export * from './client/index.js';
export * from './identity/index.js';
export * from './server/index.js';
