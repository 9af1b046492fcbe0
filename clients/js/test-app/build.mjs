// Bundles the test app with its real React: node build.mjs OUTFILE [development|production]
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const [outfile, mode = 'development'] = process.argv.slice(2);
await build({
  entryPoints: [fileURLToPath(new URL('./app.jsx', import.meta.url))],
  bundle: true,
  format: 'iife',
  jsx: 'automatic',
  target: 'es2022',
  define: { 'process.env.NODE_ENV': JSON.stringify(mode) },
  minify: mode === 'production',
  outfile,
  logLevel: 'warning',
});
