/**
 * The web UI build: `npm run build:ui` (vite build --config webui/vite.config.ts) writes webui/dist, which rampartd
 * serves (services/api/static.ts). Everything is bundled: no CDN, no fonts from elsewhere, no eval (the API's CSP).
 */
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  plugins: [svelte({ configFile: false })],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    // The CSP forbids inline scripts and styles: keep every asset a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    // The plugin-timing note is noise in bootstrap's output on a busy machine.
    rolldownOptions: { checks: { pluginTimings: false } },
  },
  server: {
    // `npx vite --config webui/vite.config.ts` during development: the API of a running rampartd.
    proxy: { '/api': process.env.RAMPART_API ?? 'http://127.0.0.1:8080' },
  },
});
