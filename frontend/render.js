// DOM builders. Every node is made with createElement and filled with textContent or
// setAttribute, never with HTML strings, so names, paths and event payloads stay text.

import { formatFileSize, getMediaCategory, parsePayload } from './media.js';

/** @type {Record<string, string>} */
export const CATEGORY_ICONS = Object.freeze({
  image: '🖼️',
  video: '🎬',
  audio: '🎵',
  unknown: '📄',
});

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function text(value) {
  return value === null || value === undefined ? '' : String(value);
}

/**
 * The part of an email address before the '@'.
 * @param {unknown} email
 * @returns {string}
 */
export function emailLocalPart(email) {
  return typeof email === 'string' && email !== '' ? email.split('@')[0] : 'unknown';
}

/**
 * A stored time shown in the browser's locale; the raw value when it does not parse.
 * @param {unknown} value
 * @returns {string}
 */
export function formatUploadTime(value) {
  if (value === null || value === undefined || value === '') return '';
  const date = new Date(/** @type {string} */ (value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/**
 * Whether the text typed into the delete modal confirms the deletion.
 * @param {unknown} value
 * @returns {boolean}
 */
export function isDeleteConfirmation(value) {
  return typeof value === 'string' && value.trim().toLowerCase() === 'delete';
}

/**
 * Only http(s) URLs may be opened or linked (a payload cannot smuggle a javascript: URL).
 * @param {unknown} value
 * @returns {string | null}
 */
export function safeHttpUrl(value) {
  if (typeof value !== 'string') return null;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * @typedef {object} MediaRow
 * @property {string | number} [id]
 * @property {string} file_name
 * @property {string} file_path
 * @property {number} [file_size]
 * @property {string} [media_type]
 * @property {string} [upload_time]
 */

/**
 * @typedef {object} MediaCardHandlers
 * @property {(row: MediaRow, button: HTMLButtonElement) => void} [onDownload]
 * @property {(row: MediaRow, button: HTMLButtonElement) => void} [onDelete]
 */

/**
 * One file of the media browser:
 * div.media-file-card > span.file-icon, div.file-info (span.file-name[title], span.file-meta),
 * div.file-actions (button.btn-icon.btn-download, button.btn-icon.btn-delete, both with
 * data-file-path).
 * @param {MediaRow} row
 * @param {MediaCardHandlers} [handlers]
 * @returns {HTMLDivElement}
 */
export function renderMediaCard(row, handlers = {}) {
  const name = text(row.file_name);
  const path = text(row.file_path);
  const category = getMediaCategory(row.media_type);

  const card = /** @type {HTMLDivElement} */ (element('div', 'media-file-card'));
  card.dataset.filePath = path;

  const icon = element('span', 'file-icon', CATEGORY_ICONS[category]);
  icon.setAttribute('aria-hidden', 'true');

  const info = element('div', 'file-info');
  const nameNode = element('span', 'file-name', name);
  nameNode.setAttribute('title', name);
  const meta = [formatFileSize(Number(row.file_size)), category, formatUploadTime(row.upload_time)]
    .filter((part) => part !== '')
    .join(' · ');
  info.append(nameNode, element('span', 'file-meta', meta));

  const actions = element('div', 'file-actions');
  const download = actionButton('btn-download', '⬇️', `Download ${name}`, path);
  const remove = actionButton('btn-delete', '🗑️', `Delete ${name}`, path);
  if (handlers.onDownload) {
    const onDownload = handlers.onDownload;
    download.addEventListener('click', () => onDownload(row, download));
  }
  if (handlers.onDelete) {
    const onDelete = handlers.onDelete;
    remove.addEventListener('click', () => onDelete(row, remove));
  }
  actions.append(download, remove);

  card.append(icon, info, actions);
  return card;
}

/**
 * @param {string} kind
 * @param {string} symbol
 * @param {string} label
 * @param {string} filePath
 * @returns {HTMLButtonElement}
 */
function actionButton(kind, symbol, label, filePath) {
  const button = /** @type {HTMLButtonElement} */ (element('button', `btn-icon ${kind}`, symbol));
  button.type = 'button';
  button.dataset.filePath = filePath;
  button.setAttribute('title', label);
  button.setAttribute('aria-label', label);
  return button;
}

/**
 * The placeholder line of the media browser ("No files uploaded yet.", "Failed to load files.").
 * @param {string} message
 * @returns {HTMLParagraphElement}
 */
export function renderMediaEmpty(message) {
  return /** @type {HTMLParagraphElement} */ (element('p', 'media-empty', message));
}

/**
 * The payload of a notification for display: malformed JSON shows as `{}`.
 * @param {unknown} payload
 * @returns {Record<string, any>}
 */
function displayPayload(payload) {
  try {
    return parsePayload(payload);
  } catch {
    return {};
  }
}

/**
 * The text of a notification row, per event_type.
 * @param {{event_type?: string, payload?: unknown, event_time?: string}} row
 * @returns {string}
 */
export function formatNotification(row) {
  const payload = displayPayload(row.payload);
  const time = text(row.event_time);
  switch (row.event_type) {
    case 'identity.login':
      return `🚀 Flink mapped Login: ${time}`;
    case 'identity.signup':
      return `🎉 Flink mapped Signup: ${time}`;
    case 'identity.signout':
      return `👋 Flink mapped Signout: ${time}`;
    case 'user.message':
      return `💬 ${emailLocalPart(payload.email)}: ${text(payload.message)}`;
    case 'media.upload_ready':
      return `📤 Upload ready: ${text(payload.file_path)}`;
    case 'media.upload_rejected':
      return `❌ Upload rejected: ${text(payload.reason)}`;
    case 'media.upload_completed':
      return `✅ Upload complete: ${text(payload.file_name)}`;
    case 'media.upload_expired':
      return `⏰ Upload expired: ${text(payload.file_path)}`;
    case 'media.upload_failed':
      return `❌ Upload failed: ${text(payload.failure_reason) || 'unknown'}`;
    case 'media.download_ready':
      return `📥 Download ready: ${text(payload.file_path)}`;
    case 'media.download_rejected':
      return `❌ Download rejected: ${text(payload.reason)}`;
    case 'media.file_deleted':
      return `🗑️ File deleted: ${text(payload.file_name)}`;
    case 'media.delete_rejected':
      return `❌ Delete rejected: ${text(payload.reason)}`;
    default:
      return `📌 ${text(row.event_type)}: ${time}`;
  }
}

/**
 * li.notification-item holding the row's text (and its id in data-id when it has one).
 * @param {{id?: number | string, event_type?: string, payload?: unknown, event_time?: string}} row
 * @returns {HTMLLIElement}
 */
export function renderNotification(row) {
  const item = /** @type {HTMLLIElement} */ (element('li', 'notification-item', formatNotification(row)));
  if (row.id !== undefined && row.id !== null) item.dataset.id = String(row.id);
  return item;
}

/**
 * "Download ready — open file" with an http(s) link opening in a new tab.
 * @param {string} label
 * @param {string} url already checked with safeHttpUrl
 * @returns {DocumentFragment}
 */
export function renderLinkMessage(label, url) {
  const fragment = document.createDocumentFragment();
  const link = /** @type {HTMLAnchorElement} */ (element('a', 'status-link', 'open file'));
  link.href = url;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  fragment.append(`${label} — `, link);
  return fragment;
}
