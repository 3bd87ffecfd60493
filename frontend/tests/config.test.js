import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_API_GATEWAY_URL,
  DEFAULT_STORAGE_URL,
  DEFAULT_SUPABASE_URL,
  buildContentSecurityPolicy,
  resolveConfig,
  websocketOrigin,
} from '../config.js';
import { contentSecurityPolicy } from '../vite.config.js';

describe('resolveConfig', () => {
  it('applies the local-stack defaults', () => {
    expect(resolveConfig({})).toEqual({
      supabaseUrl: 'http://127.0.0.1:54321',
      supabaseAnonKey: '',
      apiGatewayUrl: 'http://127.0.0.1:8080',
      storageUrl: 'http://127.0.0.1:9000',
    });
    expect(DEFAULT_SUPABASE_URL).toBe('http://127.0.0.1:54321');
    expect(DEFAULT_API_GATEWAY_URL).toBe('http://127.0.0.1:8080');
    expect(DEFAULT_STORAGE_URL).toBe('http://127.0.0.1:9000');
  });

  it('reads the VITE_* settings and treats blanks as unset', () => {
    expect(
      resolveConfig({
        VITE_SUPABASE_URL: 'https://db.example.com ',
        VITE_SUPABASE_ANON_KEY: 'anon',
        VITE_API_GATEWAY_URL: '  ',
        VITE_STORAGE_URL: 'https://s3.example.com',
      }),
    ).toEqual({
      supabaseUrl: 'https://db.example.com',
      supabaseAnonKey: 'anon',
      apiGatewayUrl: 'http://127.0.0.1:8080',
      storageUrl: 'https://s3.example.com',
    });
  });
});

describe('buildContentSecurityPolicy', () => {
  it('allows only self plus the configured endpoints', () => {
    expect(buildContentSecurityPolicy(resolveConfig({}))).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; " +
        "connect-src 'self' http://127.0.0.1:54321 ws://127.0.0.1:54321 http://127.0.0.1:8080 http://127.0.0.1:9000; " +
        "object-src 'none'; base-uri 'none'; form-action 'self'",
    );
  });

  it('uses origins only, maps https to wss and drops duplicates', () => {
    const policy = buildContentSecurityPolicy(
      resolveConfig({
        VITE_SUPABASE_URL: 'https://api.example.com/supabase/',
        VITE_API_GATEWAY_URL: 'https://api.example.com/gateway',
        VITE_STORAGE_URL: 'https://s3.example.com:9443/bucket',
      }),
    );
    expect(policy).toContain(
      "connect-src 'self' https://api.example.com wss://api.example.com https://s3.example.com:9443;",
    );
    expect(policy).not.toMatch(/unsafe-inline|unsafe-eval|frame-ancestors/);
  });

  it('rejects a non-http URL or garbage', () => {
    expect(() => buildContentSecurityPolicy(resolveConfig({ VITE_API_GATEWAY_URL: 'javascript:alert(1)' }))).toThrow(
      'VITE_API_GATEWAY_URL must be an http(s) URL',
    );
    expect(() => buildContentSecurityPolicy(resolveConfig({ VITE_SUPABASE_URL: 'not a url' }))).toThrow(
      'VITE_SUPABASE_URL is not a valid URL',
    );
  });

  it('websocketOrigin', () => {
    expect(websocketOrigin('http://127.0.0.1:54321/x')).toBe('ws://127.0.0.1:54321');
    expect(websocketOrigin('https://db.example.com')).toBe('wss://db.example.com');
  });
});

describe('the CSP Vite plugin', () => {
  const policy = buildContentSecurityPolicy(resolveConfig({}));
  const plugin = contentSecurityPolicy(policy);
  const transform = /** @type {{handler: (html: string) => string}} */ (plugin.transformIndexHtml).handler;

  it('puts the policy right after <meta charset> in index.html', () => {
    const html = transform(readFileSync(new URL('../index.html', import.meta.url), 'utf8'));
    const meta = `<meta http-equiv="Content-Security-Policy" content="${policy}" />`;
    expect(html).toContain(`<meta charset="UTF-8" />\n    ${meta}`);
    expect(html.indexOf(meta)).toBeLessThan(html.indexOf('<script'));
    expect(html.indexOf(meta)).toBeLessThan(html.indexOf('<link'));
  });

  it('moves a script Vite prepended before the charset below the policy', () => {
    const html = transform(
      '<html><head><script type="module" src="/@vite/client"></script>\n<meta charset="UTF-8" /><title>x</title></head></html>',
    );
    expect(html.indexOf('Content-Security-Policy')).toBeLessThan(html.indexOf('/@vite/client'));
    expect(html.indexOf('<meta charset')).toBeLessThan(html.indexOf('Content-Security-Policy'));
    expect(html.match(/@vite\/client/g)).toHaveLength(1);
  });

  it('fails without a <meta charset> to anchor on', () => {
    expect(() => transform('<html><head></head></html>')).toThrow('<meta charset>');
  });

  it('escapes the attribute value', () => {
    const html = contentSecurityPolicy('a"b<c&d').transformIndexHtml.handler('<meta charset="utf-8">');
    expect(html).toContain('content="a&quot;b&lt;c&amp;d"');
  });
});
