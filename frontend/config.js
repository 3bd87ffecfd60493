// Runtime configuration of the page and the Content-Security-Policy derived from it.
//
// Pure functions only: the page calls resolveConfig(import.meta.env) and vite.config.js calls
// the same function on loadEnv()'s result, so the policy always allows exactly the endpoints
// the page talks to.

export const DEFAULT_SUPABASE_URL = 'http://127.0.0.1:54321';
export const DEFAULT_API_GATEWAY_URL = 'http://127.0.0.1:8080';
export const DEFAULT_STORAGE_URL = 'http://127.0.0.1:9000';

/**
 * @typedef {object} AppConfig
 * @property {string} supabaseUrl     Supabase API (REST, auth, Realtime).
 * @property {string} supabaseAnonKey The public anon key; '' when not configured.
 * @property {string} apiGatewayUrl   The api-gateway (events and media intents).
 * @property {string} storageUrl      The object store the signed upload URLs point at.
 */

/**
 * @param {unknown} value
 * @returns {string | undefined} the trimmed value, or undefined when empty or not a string
 */
function setting(value) {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

/**
 * Reads the VITE_* settings, applying the local-stack defaults.
 * @param {Record<string, unknown>} env import.meta.env, or loadEnv()'s result
 * @returns {AppConfig}
 */
export function resolveConfig(env = {}) {
  return {
    supabaseUrl: setting(env.VITE_SUPABASE_URL) ?? DEFAULT_SUPABASE_URL,
    supabaseAnonKey: setting(env.VITE_SUPABASE_ANON_KEY) ?? '',
    apiGatewayUrl: setting(env.VITE_API_GATEWAY_URL) ?? DEFAULT_API_GATEWAY_URL,
    storageUrl: setting(env.VITE_STORAGE_URL) ?? DEFAULT_STORAGE_URL,
  };
}

/**
 * The origin (scheme://host[:port]) of an http(s) URL, for a CSP source list.
 * @param {string} url
 * @param {string} name the setting, for the error message
 * @returns {string}
 */
export function httpOrigin(url, name = 'URL') {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${name} is not a valid URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`${name} must be an http(s) URL: ${JSON.stringify(url)}`);
  }
  return parsed.origin;
}

/**
 * The WebSocket origin matching an http(s) URL (http -> ws, https -> wss).
 * @param {string} url
 * @param {string} name
 * @returns {string}
 */
export function websocketOrigin(url, name = 'URL') {
  return httpOrigin(url, name).replace(/^http/, 'ws');
}

/**
 * The page's Content-Security-Policy. `frame-ancestors` is left out: it is ignored in a
 * <meta> policy (a server header has to send it).
 * @param {AppConfig} config
 * @returns {string}
 */
export function buildContentSecurityPolicy(config) {
  const connect = [
    "'self'",
    httpOrigin(config.supabaseUrl, 'VITE_SUPABASE_URL'),
    websocketOrigin(config.supabaseUrl, 'VITE_SUPABASE_URL'),
    httpOrigin(config.apiGatewayUrl, 'VITE_API_GATEWAY_URL'),
    httpOrigin(config.storageUrl, 'VITE_STORAGE_URL'),
  ];
  const directives = [
    ["default-src", "'self'"],
    ['script-src', "'self'"],
    ['style-src', "'self'"],
    ['img-src', "'self' data: blob:"],
    ['font-src', "'self'"],
    ['connect-src', [...new Set(connect)].join(' ')],
    ['object-src', "'none'"],
    ['base-uri', "'none'"],
    ['form-action', "'self'"],
  ];
  return directives.map(([name, value]) => `${name} ${value}`).join('; ');
}
