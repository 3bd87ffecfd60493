// Vite: dev server on 127.0.0.1:5173, build, and the Content-Security-Policy <meta> built from
// the same VITE_* settings the page reads (config.js). Vitest reads its settings from here too.

import { fileURLToPath } from 'node:url';
import { defineConfig, loadEnv } from 'vite';
import { buildContentSecurityPolicy, resolveConfig } from './config.js';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * Inserts `<meta http-equiv="Content-Security-Policy">` right after `<meta charset>`, ahead of
 * every script and stylesheet (also the dev client Vite adds). Fails the build when the
 * anchor is missing rather than serving a page without a policy.
 * @param {string} policy
 * @returns {import('vite').Plugin}
 */
export function contentSecurityPolicy(policy) {
  const escaped = policy.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const meta = `<meta http-equiv="Content-Security-Policy" content="${escaped}" />`;
  return {
    name: 'substrate-content-security-policy',
    transformIndexHtml: {
      order: 'post',
      handler(html) {
        const charset = /<meta\s+charset=["']?[\w-]+["']?\s*\/?>/i.exec(html);
        if (!charset) throw new Error('index.html needs a <meta charset> to anchor the CSP <meta>');
        const at = charset.index + charset[0].length;
        const before = html.slice(0, charset.index);
        // Move a dev client script Vite prepended before the charset below the policy.
        const scripts = before.match(/<script\b[^>]*><\/script>\s*/gi) ?? [];
        const head = scripts.reduce((text, script) => text.replace(script, ''), before);
        const moved = scripts.map((script) => `\n    ${script.trim()}`).join('');
        return `${head}${charset[0]}\n    ${meta}${moved}${html.slice(at)}`;
      },
    },
  };
}

export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, root, 'VITE_');
  const settings = resolveConfig(env);
  if (!settings.supabaseAnonKey && mode !== 'test') {
    console.warn('[frontend] VITE_SUPABASE_ANON_KEY is not set: the page will show a configuration error.');
  }
  return {
    root,
    envDir: root,
    plugins: [contentSecurityPolicy(buildContentSecurityPolicy(settings))],
    server: {
      host: '127.0.0.1',
      port: 5173,
      strictPort: true,
    },
    preview: {
      host: '127.0.0.1',
      port: 4173,
      strictPort: true,
    },
    build: {
      outDir: 'dist',
      emptyOutDir: true,
    },
    test: {
      include: ['tests/**/*.test.js'],
      environment: 'node',
      restoreMocks: true,
      unstubEnvs: true,
      unstubGlobals: true,
    },
  };
});
