// The console is served by the relay from the files embedded in the binary: relative asset
// paths (it may sit behind a proxy prefix), no source maps in the binary, one small bundle.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    assetsInlineLimit: 0,
  },
});
