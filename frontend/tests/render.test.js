// @vitest-environment jsdom
import { describe, expect, it, vi } from 'vitest';
import {
  emailLocalPart,
  formatNotification,
  formatUploadTime,
  isDeleteConfirmation,
  renderLinkMessage,
  renderMediaCard,
  renderMediaEmpty,
  renderNotification,
  safeHttpUrl,
} from '../render.js';

const ROW = {
  id: 7,
  file_name: 'holiday.png',
  file_path: 'files/user-1/abc/holiday.png',
  file_size: 1536,
  media_type: 'image/png',
  upload_time: '2026-03-01T10:00:00Z',
};

describe('renderMediaCard', () => {
  it('builds the card structure with text, title and data-file-path', () => {
    const card = renderMediaCard(ROW);
    expect(card.tagName).toBe('DIV');
    expect(card.classList.contains('media-file-card')).toBe(true);
    expect(card.querySelector('.file-icon')?.textContent).toBe('🖼️');
    const name = card.querySelector('.file-info .file-name');
    expect(name?.textContent).toBe('holiday.png');
    expect(name?.getAttribute('title')).toBe('holiday.png');
    const meta = card.querySelector('.file-info .file-meta')?.textContent ?? '';
    expect(meta.startsWith('1.5 KB · image · ')).toBe(true);
    expect(meta).toContain(new Date(ROW.upload_time).toLocaleString());
    const download = card.querySelector('.file-actions .btn-icon.btn-download');
    const remove = card.querySelector('.file-actions .btn-icon.btn-delete');
    expect(download?.getAttribute('data-file-path')).toBe(ROW.file_path);
    expect(remove?.getAttribute('data-file-path')).toBe(ROW.file_path);
    expect(download?.getAttribute('type')).toBe('button');
  });

  it.each([
    ['video/mp4', '🎬', 'video'],
    ['audio/mpeg', '🎵', 'audio'],
    ['application/pdf', '📄', 'unknown'],
    [undefined, '📄', 'unknown'],
  ])('shows the icon of %s', (mediaType, icon, category) => {
    const card = renderMediaCard({ ...ROW, media_type: mediaType });
    expect(card.querySelector('.file-icon')?.textContent).toBe(icon);
    expect(card.querySelector('.file-meta')?.textContent).toContain(` · ${category} · `);
  });

  it('renders a markup-like file name as text (no element is created)', () => {
    const evil = '<img src=x onerror=alert(1)>.png';
    const evilPath = 'files/u/1/"><script>alert(2)</script>.png';
    const card = renderMediaCard({ ...ROW, file_name: evil, file_path: evilPath });
    document.body.replaceChildren(card);
    expect(card.querySelector('img')).toBeNull();
    expect(card.querySelector('script')).toBeNull();
    expect(document.querySelectorAll('img, script')).toHaveLength(0);
    const name = card.querySelector('.file-name');
    expect(name?.textContent).toBe(evil);
    expect(name?.getAttribute('title')).toBe(evil);
    expect(name?.childNodes).toHaveLength(1);
    expect(name?.firstChild?.nodeType).toBe(Node.TEXT_NODE);
    expect(card.querySelector('.btn-delete')?.getAttribute('data-file-path')).toBe(evilPath);
    // icon, info, name, meta, actions and the two buttons: nothing else was parsed into nodes
    expect(card.querySelectorAll('*')).toHaveLength(7);
  });

  it('calls the handlers with the row and the button', () => {
    const onDownload = vi.fn();
    const onDelete = vi.fn();
    const card = renderMediaCard(ROW, { onDownload, onDelete });
    const download = /** @type {HTMLButtonElement} */ (card.querySelector('.btn-download'));
    const remove = /** @type {HTMLButtonElement} */ (card.querySelector('.btn-delete'));
    download.click();
    remove.click();
    expect(onDownload).toHaveBeenCalledWith(ROW, download);
    expect(onDelete).toHaveBeenCalledWith(ROW, remove);
  });

  it('tolerates missing size and time', () => {
    const card = renderMediaCard({ file_name: 'a.png', file_path: 'files/a.png', media_type: 'image/png' });
    expect(card.querySelector('.file-meta')?.textContent).toBe('0 B · image');
  });
});

describe('renderMediaEmpty', () => {
  it('is a text paragraph', () => {
    const node = renderMediaEmpty('No files uploaded yet.');
    expect(node.tagName).toBe('P');
    expect(node.textContent).toBe('No files uploaded yet.');
  });
});

describe('formatNotification', () => {
  const time = '2026-03-01T10:00:00Z';
  /** @param {string} type @param {Record<string, unknown>} [payload] */
  const row = (type, payload = {}) => ({ event_type: type, payload: JSON.stringify(payload), event_time: time });

  it.each([
    ['identity.login', {}, `🚀 Flink mapped Login: ${time}`],
    ['identity.signup', {}, `🎉 Flink mapped Signup: ${time}`],
    ['identity.signout', {}, `👋 Flink mapped Signout: ${time}`],
    ['user.message', { email: 'alice@example.com', message: 'hi all' }, '💬 alice: hi all'],
    ['media.upload_ready', { file_path: 'uploads/u/1/a.png' }, '📤 Upload ready: uploads/u/1/a.png'],
    ['media.upload_rejected', { reason: 'insufficient_credits' }, '❌ Upload rejected: insufficient_credits'],
    ['media.upload_completed', { file_name: 'a.png' }, '✅ Upload complete: a.png'],
    ['media.upload_expired', { file_path: 'uploads/u/1/a.png' }, '⏰ Upload expired: uploads/u/1/a.png'],
    ['media.upload_failed', { failure_reason: 'max retries exceeded' }, '❌ Upload failed: max retries exceeded'],
    ['media.upload_failed', {}, '❌ Upload failed: unknown'],
    ['media.download_ready', { file_path: 'files/u/1/a.png' }, '📥 Download ready: files/u/1/a.png'],
    ['media.download_rejected', { reason: 'not_found' }, '❌ Download rejected: not_found'],
    ['media.file_deleted', { file_name: 'a.png' }, '🗑️ File deleted: a.png'],
    ['media.delete_rejected', { reason: 'not_owner' }, '❌ Delete rejected: not_owner'],
    ['credit.balance_changed', { amount: 2 }, `📌 credit.balance_changed: ${time}`],
    ['something.else', {}, `📌 something.else: ${time}`],
  ])('%s -> %s', (type, payload, expected) => {
    expect(formatNotification(row(type, payload))).toBe(expected);
  });

  it('survives a malformed or missing payload', () => {
    expect(formatNotification({ event_type: 'user.message', payload: '{bad', event_time: time })).toBe('💬 unknown: ');
    expect(formatNotification({ event_type: 'media.upload_completed', payload: null })).toBe('✅ Upload complete: ');
  });
});

describe('renderNotification', () => {
  it('is an li.notification-item whose markup-like payload stays text', () => {
    const item = renderNotification({
      id: 42,
      event_type: 'user.message',
      payload: JSON.stringify({ email: 'mallory@example.com', message: '<img src=x onerror=alert(1)>' }),
      event_time: 't',
    });
    expect(item.tagName).toBe('LI');
    expect(item.className).toBe('notification-item');
    expect(item.dataset.id).toBe('42');
    expect(item.textContent).toBe('💬 mallory: <img src=x onerror=alert(1)>');
    expect(item.querySelector('img')).toBeNull();
  });
});

describe('helpers', () => {
  it('emailLocalPart', () => {
    expect(emailLocalPart('bob@example.com')).toBe('bob');
    expect(emailLocalPart('')).toBe('unknown');
    expect(emailLocalPart(undefined)).toBe('unknown');
  });

  it('formatUploadTime', () => {
    expect(formatUploadTime('2026-03-01T10:00:00Z')).toBe(new Date('2026-03-01T10:00:00Z').toLocaleString());
    expect(formatUploadTime('not a date')).toBe('not a date');
    expect(formatUploadTime(null)).toBe('');
  });

  it.each([
    ['delete', true],
    ['DELETE', true],
    ['  Delete  ', true],
    ['del', false],
    ['', false],
    ['delete!', false],
    [null, false],
  ])('isDeleteConfirmation(%j) -> %s', (value, expected) => {
    expect(isDeleteConfirmation(value)).toBe(expected);
  });

  it('safeHttpUrl keeps only http(s) URLs', () => {
    expect(safeHttpUrl('http://127.0.0.1:9000/media-uploads/files/a.png?X-Amz-Signature=1')).toBe(
      'http://127.0.0.1:9000/media-uploads/files/a.png?X-Amz-Signature=1',
    );
    expect(safeHttpUrl('javascript:alert(1)')).toBeNull();
    expect(safeHttpUrl('data:text/html,<script>')).toBeNull();
    expect(safeHttpUrl('not a url')).toBeNull();
    expect(safeHttpUrl(undefined)).toBeNull();
  });

  it('renderLinkMessage builds a noopener link', () => {
    const holder = document.createElement('p');
    holder.append(renderLinkMessage('Download ready: a.png', 'http://s3.test/a.png'));
    const link = holder.querySelector('a');
    expect(holder.textContent).toBe('Download ready: a.png — open file');
    expect(link?.getAttribute('href')).toBe('http://s3.test/a.png');
    expect(link?.getAttribute('target')).toBe('_blank');
    expect(link?.getAttribute('rel')).toBe('noopener noreferrer');
  });
});
