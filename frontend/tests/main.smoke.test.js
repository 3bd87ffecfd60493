import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const indexHtml = readFileSync(new URL('../index.html', import.meta.url), 'utf8');
const mainJs = readFileSync(new URL('../main.js', import.meta.url), 'utf8');

const PAGE_IDS = [
  'auth-view',
  'auth-form',
  'email',
  'password',
  'submit-btn',
  'toggle-mode',
  'home-view',
  'welcome-message',
  'message-form',
  'message-input',
  'send-message-btn',
  'notifications-list',
  'logout-btn',
  'media-section',
  'credit-badge',
  'credit-count',
  'upload-form',
  'file-input',
  'upload-btn',
  'upload-label',
  'upload-dropzone',
  'upload-status',
  'media-browser',
  'media-list',
];

const MEDIA_IMPORTS = [
  'InsufficientCreditsError',
  'requestUploadIntent',
  'requestDownloadIntent',
  'requestDeleteIntent',
  'uploadFileToStorage',
  'fetchUserFiles',
  'formatFileSize',
  'isAllowedMediaType',
  'getMediaCategory',
  'createNotificationWaiter',
];

describe('index.html', () => {
  it.each(PAGE_IDS)('has #%s', (id) => {
    expect(indexHtml).toContain(`id="${id}"`);
  });

  it.each([
    'form-title',
    'form-subtitle',
    'alert-box',
    'toggle-prompt',
    'notification-empty',
    'delete-modal',
    'delete-modal-filename',
    'delete-confirm-input',
    'delete-cancel-btn',
    'delete-confirm-btn',
  ])('has #%s', (id) => {
    expect(indexHtml).toContain(`id="${id}"`);
  });

  it('has the title, the login texts and the initial credit placeholder', () => {
    expect(indexHtml).toContain('<title>Stream Platform Base</title>');
    expect(indexHtml).toMatch(/id="submit-btn"[^>]*>Log In</);
    expect(indexHtml).toMatch(/id="form-title"[^>]*>Welcome back</);
    expect(indexHtml).toMatch(/id="credit-count"[^>]*>—</);
    expect(indexHtml).toMatch(/id="auth-view"[^>]*class="[^"]*active-view/);
  });

  it('accepts exactly the nine media types', () => {
    const accept = /id="file-input"[\s\S]*?accept="([^"]+)"/.exec(indexHtml)?.[1];
    expect(accept?.split(',').sort()).toEqual(
      ['audio/mpeg', 'audio/ogg', 'audio/wav', 'image/gif', 'image/jpeg', 'image/png', 'image/webp', 'video/mp4', 'video/webm'],
    );
  });

  it('starts with the upload button and the delete confirmation disabled, the modal hidden', () => {
    expect(indexHtml).toMatch(/<button id="upload-btn"[^>]*\bdisabled\b/);
    expect(indexHtml).toMatch(/<button id="delete-confirm-btn"[^>]*\bdisabled\b/);
    expect(indexHtml).toMatch(/<div id="delete-modal" class="modal-overlay" hidden>/);
  });

  it('has no inline script, inline style or external resource (CSP: self only)', () => {
    expect(indexHtml).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(indexHtml).not.toMatch(/<style\b/i);
    expect(indexHtml).not.toMatch(/\sstyle=/i);
    expect(indexHtml).not.toMatch(/\son[a-z]+=/i);
    expect(indexHtml).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(indexHtml).toContain('<script type="module" src="/main.js"></script>');
    expect(indexHtml).toContain('<link rel="stylesheet" href="/style.css" />');
  });
});

describe('main.js', () => {
  it("imports from './media.js'", () => {
    expect(mainJs).toMatch(/from '\.\/media\.js'/);
  });

  it.each(MEDIA_IMPORTS)('imports and uses %s', (name) => {
    const importBlock = /import \{([^}]*)\} from '\.\/media\.js'/.exec(mainJs)?.[1] ?? '';
    expect(importBlock).toMatch(new RegExp(`\\b${name}\\b`));
    const uses = mainJs.split(new RegExp(`\\b${name}\\b`)).length - 1;
    expect(uses).toBeGreaterThan(1);
  });

  it.each(['upload-form', 'media-list', 'credit-badge', 'user_credit_balances'])('mentions %s', (text) => {
    expect(mainJs).toContain(text);
  });

  it.each(['Processing', 'upload_completed', 'waitFor', 'user-events', 'user_notifications'])(
    'contains %s',
    (text) => {
      expect(mainJs).toContain(text);
    },
  );

  it('never builds HTML from strings', () => {
    expect(mainJs).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });
});
