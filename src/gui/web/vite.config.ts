/**
 * Builds the dashboard web app into dist/src/gui/web/, beside the compiled dashboard server, so it ships
 * inside the npm package (package.json "files" covers dist/src). Everything is bundled: no CDN, no
 * network at run time.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  publicDir: 'public',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../../dist/src/gui/web/', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // Keep the page free of inline scripts: the dashboard's CSP allows only 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
