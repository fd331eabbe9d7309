/**
 * The config on disk (Node only): where mtt keeps its files by default, and reading and writing a
 * client config file. The schema and parsers are index.ts.
 */
export * from './client-config-file.js';
export * from './paths.js';
