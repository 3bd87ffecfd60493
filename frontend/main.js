// The page: authentication, broadcast messages, credits, the media upload/download/delete
// sagas and the live notification feed (Supabase Realtime on public.user_notifications).

import { createClient } from '@supabase/supabase-js';
import {
  InsufficientCreditsError,
  WaiterClosedError,
  createNotificationWaiter,
  fetchUserFiles,
  formatFileSize,
  getMediaCategory,
  isAllowedMediaType,
  parsePayload,
  requestDeleteIntent,
  requestDownloadIntent,
  requestUploadIntent,
  uploadFileToStorage,
} from './media.js';
import { resolveConfig } from './config.js';
import { sendMessage } from './events.js';
import {
  emailLocalPart,
  isDeleteConfirmation,
  renderLinkMessage,
  renderMediaCard,
  renderMediaEmpty,
  renderNotification,
  safeHttpUrl,
} from './render.js';

/**
 * How long a saga step may take before the page tells the user it is still being processed.
 * The page never gives up on a saga: with exactly-once sinks a reply can take longer than
 * this, and the intent has already been accepted (an upload's credit is taken). So the wait
 * goes on without a hard timeout (until the reply arrives or the user signs out) and the flow
 * finishes as if the reply had come in time. The page never re-sends an intent by itself.
 * A reload forgets the wait; the outcome still shows in the file list and the notification
 * feed (both are read again on load and follow Realtime).
 */
const SAGA_PATIENCE_MS = 30000;
/** Most notifications kept in the feed (oldest dropped first). */
const MAX_NOTIFICATIONS = 50;
/** Notifications loaded when a session starts (Realtime only delivers new rows). */
const HISTORY_LIMIT = 20;
const NO_CREDITS_TEXT = 'No credits remaining…';
const UPLOAD_LABEL_TEXT = 'Choose a file or drag it here';
/** Saga outcomes after which the file list and the balance may have changed. */
const MEDIA_REFRESH_EVENTS = new Set([
  'media.upload_completed',
  'media.upload_expired',
  'media.upload_failed',
  'media.file_deleted',
]);

const config = resolveConfig(import.meta.env);

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`index.html lacks #${id}`);
  return /** @type {T} */ (node);
}

const ui = {
  authView: byId('auth-view'),
  homeView: byId('home-view'),
  formTitle: byId('form-title'),
  formSubtitle: byId('form-subtitle'),
  alertBox: byId('alert-box'),
  authForm: /** @type {HTMLFormElement} */ (byId('auth-form')),
  email: /** @type {HTMLInputElement} */ (byId('email')),
  password: /** @type {HTMLInputElement} */ (byId('password')),
  submitBtn: /** @type {HTMLButtonElement} */ (byId('submit-btn')),
  togglePrompt: byId('toggle-prompt'),
  toggleMode: byId('toggle-mode'),
  welcome: byId('welcome-message'),
  messageForm: /** @type {HTMLFormElement} */ (byId('message-form')),
  messageInput: /** @type {HTMLInputElement} */ (byId('message-input')),
  sendMessageBtn: /** @type {HTMLButtonElement} */ (byId('send-message-btn')),
  messageStatus: byId('message-status'),
  creditBadge: byId('credit-badge'),
  creditCount: byId('credit-count'),
  uploadForm: /** @type {HTMLFormElement} */ (byId('upload-form')),
  uploadDropzone: byId('upload-dropzone'),
  uploadLabel: byId('upload-label'),
  fileInput: /** @type {HTMLInputElement} */ (byId('file-input')),
  uploadBtn: /** @type {HTMLButtonElement} */ (byId('upload-btn')),
  uploadStatus: byId('upload-status'),
  mediaList: byId('media-list'),
  notificationsList: byId('notifications-list'),
  notificationEmpty: byId('notification-empty'),
  logoutBtn: /** @type {HTMLButtonElement} */ (byId('logout-btn')),
  deleteModal: byId('delete-modal'),
  deleteModalFilename: byId('delete-modal-filename'),
  deleteConfirmInput: /** @type {HTMLInputElement} */ (byId('delete-confirm-input')),
  deleteCancelBtn: /** @type {HTMLButtonElement} */ (byId('delete-cancel-btn')),
  deleteConfirmBtn: /** @type {HTMLButtonElement} */ (byId('delete-confirm-btn')),
};

/** @type {import('@supabase/supabase-js').SupabaseClient | null} */
let supabase = null;
/** @type {import('@supabase/supabase-js').RealtimeChannel | null} */
let channel = null;
const waiter = createNotificationWaiter();

let isLoginMode = true;
/** The user whose feed and channel are set up, or null when signed out. */
let activeUserId = /** @type {string | null} */ (null);
/** Ids of the notification rows in the feed (history and Realtime may deliver the same row). */
const shownNotificationIds = new Set();
/** @type {File | null} */
let selectedFile = null;
let uploading = false;
/** Last known balance; null until read. */
let creditBalance = /** @type {number | null} */ (null);
let mediaGeneration = 0;
let historyGeneration = 0;
/** @type {((confirmed: boolean) => void) | null} */
let resolveDeleteModal = null;
let sessionQueue = Promise.resolve();

/** An error whose message is shown as it is (no "Upload failed:" prefix). */
class ShownError extends Error {}

// ---------------------------------------------------------------------------------------------
// Small UI helpers

/** @param {'auth' | 'home'} view */
function showView(view) {
  ui.authView.classList.toggle('active-view', view === 'auth');
  ui.homeView.classList.toggle('active-view', view === 'home');
}

/**
 * @param {string} message
 * @param {'error' | 'success'} kind
 */
function showAlert(message, kind) {
  ui.alertBox.textContent = message;
  ui.alertBox.className = `alert ${kind}`;
  ui.alertBox.hidden = false;
}

function hideAlert() {
  if (!config.supabaseAnonKey) return; // the configuration error stays visible
  ui.alertBox.hidden = true;
  ui.alertBox.textContent = '';
  ui.alertBox.className = 'alert';
}

/**
 * @param {string | Node} content
 * @param {'' | 'error' | 'success'} [kind]
 * @param {string} [reason] tags the message (only the no-credits message is cleared by a balance refresh)
 */
function setUploadStatus(content, kind = '', reason = '') {
  ui.uploadStatus.replaceChildren(content);
  ui.uploadStatus.className = kind ? `upload-status ${kind}` : 'upload-status';
  if (reason) ui.uploadStatus.dataset.reason = reason;
  else delete ui.uploadStatus.dataset.reason;
}

function clearUploadStatus() {
  setUploadStatus('');
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Waits for a saga reply (a promise of the notification waiter, registered without a
 * timeout). If it takes longer than SAGA_PATIENCE_MS, `onSlow` runs once (it tells the user
 * the step is still being processed) and the wait goes on.
 * @template T
 * @param {Promise<T>} reply
 * @param {() => void} onSlow
 * @returns {Promise<{row: T, late: boolean}>} `late`: the reply came after `onSlow` ran
 */
async function awaitSagaReply(reply, onSlow) {
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    onSlow();
  }, SAGA_PATIENCE_MS);
  try {
    return { row: await reply, late };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * @param {string} what e.g. "cat.png"
 * @returns {string}
 */
function uploadStillProcessingText(what) {
  return `Your upload of ${what} is still being processed. The result will appear here when it is ready; there is no need to upload it again.`;
}

function updateUploadButton() {
  ui.uploadBtn.disabled = uploading || !selectedFile || (creditBalance !== null && creditBalance <= 0);
}

/** @returns {Promise<string>} */
async function accessToken() {
  const { data, error } = await requireClient().auth.getSession();
  if (error) throw error;
  if (!data.session) throw new Error('Not signed in');
  return data.session.access_token;
}

/** @returns {import('@supabase/supabase-js').SupabaseClient} */
function requireClient() {
  if (!supabase) throw new Error('Supabase is not configured');
  return supabase;
}

// ---------------------------------------------------------------------------------------------
// Authentication

/** @param {boolean} login */
function setAuthMode(login) {
  isLoginMode = login;
  ui.formTitle.textContent = login ? 'Welcome back' : 'Create an account';
  ui.formSubtitle.textContent = login
    ? 'Log in to follow your event stream.'
    : 'Sign up to start streaming events.';
  ui.submitBtn.textContent = login ? 'Log In' : 'Sign Up';
  ui.togglePrompt.textContent = login ? "Don't have an account?" : 'Already have an account?';
  ui.toggleMode.textContent = login ? 'Sign up' : 'Log in';
  ui.password.setAttribute('autocomplete', login ? 'current-password' : 'new-password');
  hideAlert();
}

/** @param {SubmitEvent} event */
async function onAuthSubmit(event) {
  event.preventDefault();
  const client = requireClient();
  const email = ui.email.value.trim();
  const password = ui.password.value;
  if (!email || !password) {
    showAlert('Enter your email and password.', 'error');
    return;
  }
  ui.submitBtn.disabled = true;
  hideAlert();
  try {
    if (isLoginMode) {
      const { error } = await client.auth.signInWithPassword({ email, password });
      if (error) throw error;
      await checkSession();
    } else {
      const { error } = await client.auth.signUp({ email, password });
      if (error) throw error;
      showAlert('Account created! You can now log in.', 'success');
      setTimeout(() => {
        setAuthMode(true);
        ui.password.value = '';
      }, 2000);
    }
  } catch (error) {
    showAlert(messageOf(error), 'error');
  } finally {
    ui.submitBtn.disabled = false;
  }
}

async function onLogout() {
  ui.logoutBtn.disabled = true;
  try {
    const { error } = await requireClient().auth.signOut();
    if (error) console.warn('Sign-out failed:', error.message);
  } finally {
    ui.logoutBtn.disabled = false;
    await checkSession();
  }
}

/**
 * Shows the page for the current session. Runs serialised: the explicit call after a
 * password login and the SIGNED_IN event may overlap.
 * @returns {Promise<void>}
 */
function checkSession() {
  sessionQueue = sessionQueue.then(runCheckSession).catch((error) => {
    console.error('Session check failed:', error);
  });
  return sessionQueue;
}

async function runCheckSession() {
  const client = requireClient();
  const { data } = await client.auth.getSession();
  const session = data.session;
  if (!session) {
    await showSignedOut();
    return;
  }
  // A stored session may belong to a user that no longer exists (database reset): the server
  // refuses it, so drop it locally instead of showing a home page where every call fails.
  const { data: userData, error } = await client.auth.getUser();
  if (error || !userData.user) {
    console.warn('Discarding a session the server refuses:', error?.message ?? 'no user');
    await client.auth.signOut({ scope: 'local' });
    await showSignedOut();
    return;
  }
  const user = userData.user;
  ui.welcome.textContent = `Hello ${emailLocalPart(user.email)}!`;
  showView('home');
  if (activeUserId !== user.id) {
    activeUserId = user.id;
    resetNotifications();
    // History over REST and the Realtime join run concurrently: a notification written before
    // the socket joined (e.g. the login event) is still recovered by the history fetch.
    void fetchHistory();
    await subscribe();
  }
  await Promise.all([refreshCredits(), refreshMediaBrowser()]);
}

async function showSignedOut() {
  activeUserId = null;
  showView('auth');
  await removeChannel();
  waiter.cleanup();
  resetNotifications();
  closeDeleteModal(false);
  resetSelection();
  clearUploadStatus();
  creditBalance = null;
  ui.creditCount.textContent = '—';
  ui.creditBadge.classList.remove('empty');
  mediaGeneration += 1;
  ui.mediaList.replaceChildren(renderMediaEmpty('No files uploaded yet.'));
  ui.welcome.textContent = 'Welcome!';
  ui.authForm.reset();
  setAuthMode(true);
}

// ---------------------------------------------------------------------------------------------
// Messages

/** @param {SubmitEvent} event */
async function onMessageSubmit(event) {
  event.preventDefault();
  const message = ui.messageInput.value.trim();
  if (!message) return;
  ui.sendMessageBtn.disabled = true;
  ui.sendMessageBtn.textContent = 'Sending...';
  ui.messageStatus.hidden = true;
  try {
    await sendMessage(config.apiGatewayUrl, await accessToken(), message);
    ui.messageInput.value = '';
  } catch (error) {
    const text = messageOf(error);
    ui.messageStatus.textContent = text.startsWith('API Error:') ? text : `API Error: ${text}`;
    ui.messageStatus.hidden = false;
  } finally {
    ui.sendMessageBtn.disabled = false;
    ui.sendMessageBtn.textContent = 'Send';
  }
}

// ---------------------------------------------------------------------------------------------
// Credits

async function refreshCredits() {
  const userId = activeUserId;
  if (!userId) return;
  const { data, error } = await requireClient()
    .from('user_credit_balances')
    .select('balance')
    .eq('user_id', userId)
    .maybeSingle();
  if (userId !== activeUserId) return;
  if (error) {
    console.warn('Reading the credit balance failed:', error.message);
    ui.creditCount.textContent = '?';
    return;
  }
  const balance = Number(data?.balance ?? 0);
  creditBalance = balance;
  ui.creditCount.textContent = String(balance);
  ui.creditBadge.classList.toggle('empty', balance <= 0);
  if (balance <= 0) {
    if (!uploading) setUploadStatus(NO_CREDITS_TEXT, 'error', 'no-credits');
  } else if (ui.uploadStatus.dataset.reason === 'no-credits') {
    clearUploadStatus();
  }
  updateUploadButton();
}

// ---------------------------------------------------------------------------------------------
// File selection and upload

function resetSelection() {
  selectedFile = null;
  ui.fileInput.value = '';
  ui.uploadLabel.textContent = UPLOAD_LABEL_TEXT;
  ui.uploadDropzone.classList.remove('has-file', 'dragover');
  delete ui.uploadDropzone.dataset.category;
  updateUploadButton();
}

function onFileChange() {
  const file = ui.fileInput.files?.[0] ?? null;
  if (!file) {
    resetSelection();
    return;
  }
  if (!isAllowedMediaType(file.type)) {
    resetSelection();
    setUploadStatus(`Unsupported file type: ${file.type || 'unknown'}. Choose an image, video or audio file.`, 'error');
    ui.uploadBtn.disabled = true;
    return;
  }
  selectedFile = file;
  ui.uploadLabel.textContent = `${file.name} (${formatFileSize(file.size)})`;
  ui.uploadDropzone.classList.add('has-file');
  ui.uploadDropzone.dataset.category = getMediaCategory(file.type);
  if (ui.uploadStatus.dataset.reason !== 'no-credits') clearUploadStatus();
  updateUploadButton();
}

/** @param {DragEvent} event */
function onDragOver(event) {
  event.preventDefault();
  ui.uploadDropzone.classList.add('dragover');
}

function onDragLeave() {
  ui.uploadDropzone.classList.remove('dragover');
}

/** @param {DragEvent} event */
function onDrop(event) {
  event.preventDefault();
  ui.uploadDropzone.classList.remove('dragover');
  const files = event.dataTransfer?.files;
  if (!files || files.length === 0) return;
  ui.fileInput.files = files;
  ui.fileInput.dispatchEvent(new Event('change', { bubbles: true }));
}

/**
 * The upload saga: intent -> media.upload_ready | media.upload_rejected -> PUT to the signed
 * URL -> media.upload_completed | media.upload_expired | media.upload_failed. A slow reply is
 * awaited as long as it takes (see SAGA_PATIENCE_MS); the upload form stays busy meanwhile,
 * so the user cannot pay for the same file twice by retrying.
 * @param {SubmitEvent} event
 */
async function onUploadSubmit(event) {
  event.preventDefault();
  const file = selectedFile;
  if (!file || uploading) return;
  uploading = true;
  updateUploadButton();
  ui.uploadBtn.textContent = 'Uploading…';
  setUploadStatus('Checking credits…');
  try {
    const mediaType = file.type;
    const { request_id: requestId } = await requestUploadIntent(config.apiGatewayUrl, await accessToken(), {
      file_name: file.name,
      media_type: mediaType,
      file_size: file.size,
    });
    const stillProcessing = () => setUploadStatus(uploadStillProcessingText(file.name));
    const { row: ready } = await awaitSagaReply(
      waiter.waitFor(requestId, ['media.upload_ready', 'media.upload_rejected'], Infinity),
      stillProcessing,
    );
    const readyPayload = parsePayload(ready.payload);
    if (ready.event_type === 'media.upload_rejected') {
      throw new ShownError(`Upload rejected: ${readyPayload.reason ?? 'unknown reason'}`);
    }
    const uploadUrl = readyPayload.upload_url;
    const stagingPath = readyPayload.file_path;
    if (typeof uploadUrl !== 'string' || typeof stagingPath !== 'string') {
      throw new Error('upload_ready carries no upload_url or file_path');
    }

    setUploadStatus('Uploading file…');
    // The move saga publishes the completion under the permanent path. Wait before the PUT so
    // a fast completion cannot slip past; the path is unique to this upload.
    const permanentPath = stagingPath.replace(/^uploads\//, 'files/');
    const outcome = waiter.waitFor(
      [permanentPath, stagingPath],
      ['media.upload_completed', 'media.upload_expired', 'media.upload_failed'],
      Infinity,
    );
    outcome.catch(() => {}); // observed below; only unobserved when the PUT fails
    await uploadFileToStorage(uploadUrl, file, mediaType);

    setUploadStatus('Processing…');
    // The patience starts after the PUT: a large file's PUT is not the saga being slow.
    const { row: done } = await awaitSagaReply(outcome, stillProcessing);
    const donePayload = parsePayload(done.payload);
    if (done.event_type === 'media.upload_expired') {
      throw new Error('the upload expired before it was processed');
    }
    if (done.event_type === 'media.upload_failed') {
      throw new Error(donePayload.failure_reason || 'unknown');
    }
    setUploadStatus('✓ Upload complete', 'success');
    resetSelection();
    await Promise.all([refreshCredits(), refreshMediaBrowser()]);
  } catch (error) {
    if (error instanceof WaiterClosedError) {
      // Signed out meanwhile: the page has been reset, nothing to show.
    } else if (error instanceof InsufficientCreditsError) {
      setUploadStatus('Insufficient credits to upload.', 'error');
    } else if (error instanceof ShownError) {
      setUploadStatus(error.message, 'error');
    } else {
      setUploadStatus(`Upload failed: ${messageOf(error)}`, 'error');
    }
  } finally {
    uploading = false;
    ui.uploadBtn.textContent = 'Upload';
    updateUploadButton();
  }
}

// ---------------------------------------------------------------------------------------------
// Media browser

async function refreshMediaBrowser() {
  if (!activeUserId) return;
  const generation = ++mediaGeneration;
  let rows;
  try {
    rows = await fetchUserFiles(requireClient());
  } catch (error) {
    if (generation !== mediaGeneration) return;
    console.warn('Loading the media files failed:', messageOf(error));
    ui.mediaList.replaceChildren(renderMediaEmpty('Failed to load files.'));
    return;
  }
  if (generation !== mediaGeneration) return; // a newer refresh owns the list
  if (rows.length === 0) {
    ui.mediaList.replaceChildren(renderMediaEmpty('No files uploaded yet.'));
    return;
  }
  ui.mediaList.replaceChildren(
    ...rows.map((row) =>
      renderMediaCard(/** @type {import('./render.js').MediaRow} */ (row), {
        onDownload: (file, button) => void onDownload(file, button),
        onDelete: (file, button) => void onDelete(file, button),
      }),
    ),
  );
}

/**
 * Download saga: intent -> media.download_ready (signed URL, opened in a new tab) or
 * media.download_rejected. A slow reply is awaited as long as it takes (see SAGA_PATIENCE_MS).
 * @param {import('./render.js').MediaRow} file
 * @param {HTMLButtonElement} button
 */
async function onDownload(file, button) {
  button.disabled = true;
  setUploadStatus('Preparing download…');
  try {
    const { request_id: requestId } = await requestDownloadIntent(
      config.apiGatewayUrl,
      await accessToken(),
      file.file_path,
    );
    const { row: reply, late } = await awaitSagaReply(
      waiter.waitFor(requestId, ['media.download_ready', 'media.download_rejected'], Infinity),
      () =>
        setUploadStatus(
          `Your download of ${file.file_name} is still being prepared. A link to open it will appear here when it is ready.`,
        ),
    );
    const payload = parsePayload(reply.payload);
    if (reply.event_type === 'media.download_rejected') {
      throw new Error(payload.reason ?? 'unknown reason');
    }
    const url = safeHttpUrl(payload.download_url);
    if (!url) throw new Error('the reply carries no usable download_url');
    // A late reply (after the "still being prepared" notice) only gets the link: the click's
    // user activation has long expired, so popup blockers would block window.open (and show
    // their own warning), and a tab that opens by itself half a minute or more after the
    // click, maybe while the user does something else, would be a surprise. The link is one
    // click away and that click is a fresh user activation. In time, the tab is opened; it
    // may still be blocked, hence the link there too.
    if (!late) window.open(url, '_blank', 'noopener');
    setUploadStatus(renderLinkMessage(`Download ready: ${file.file_name}`, url), 'success');
  } catch (error) {
    if (error instanceof WaiterClosedError) return; // signed out meanwhile
    setUploadStatus(`Download failed: ${messageOf(error)}`, 'error');
  } finally {
    button.disabled = false;
  }
}

/**
 * Delete saga: confirmation modal -> intent -> media.file_deleted or media.delete_rejected.
 * @param {import('./render.js').MediaRow} file
 * @param {HTMLButtonElement} button
 */
async function onDelete(file, button) {
  const confirmed = await confirmDelete(file.file_name);
  if (!confirmed) return;
  button.disabled = true;
  setUploadStatus(`Deleting ${file.file_name}…`);
  try {
    const { request_id: requestId } = await requestDeleteIntent(
      config.apiGatewayUrl,
      await accessToken(),
      file.file_path,
    );
    const { row: reply } = await awaitSagaReply(
      waiter.waitFor([file.file_path, requestId], ['media.file_deleted', 'media.delete_rejected'], Infinity),
      () =>
        setUploadStatus(
          `Deleting ${file.file_name} is still being processed. The result will appear here when it is ready.`,
        ),
    );
    if (reply.event_type === 'media.delete_rejected') {
      throw new Error(parsePayload(reply.payload).reason ?? 'unknown reason');
    }
    setUploadStatus(`✓ Deleted ${file.file_name}`, 'success');
    await Promise.all([refreshCredits(), refreshMediaBrowser()]);
  } catch (error) {
    if (error instanceof WaiterClosedError) return; // signed out meanwhile
    setUploadStatus(`Delete failed: ${messageOf(error)}`, 'error');
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Delete confirmation modal

/**
 * Opens the modal for a file; resolves true only when the user typed "delete" and confirmed.
 * @param {string} fileName
 * @returns {Promise<boolean>}
 */
function confirmDelete(fileName) {
  closeDeleteModal(false);
  ui.deleteModalFilename.textContent = fileName;
  ui.deleteConfirmInput.value = '';
  ui.deleteConfirmBtn.disabled = true;
  ui.deleteModal.hidden = false;
  ui.deleteConfirmInput.focus();
  return new Promise((resolve) => {
    resolveDeleteModal = resolve;
  });
}

/** @param {boolean} confirmed */
function closeDeleteModal(confirmed) {
  ui.deleteModal.hidden = true;
  ui.deleteConfirmInput.value = '';
  ui.deleteConfirmBtn.disabled = true;
  const resolve = resolveDeleteModal;
  resolveDeleteModal = null;
  resolve?.(confirmed);
}

function onConfirmDelete() {
  if (isDeleteConfirmation(ui.deleteConfirmInput.value)) closeDeleteModal(true);
}

// ---------------------------------------------------------------------------------------------
// Notifications

function resetNotifications() {
  historyGeneration += 1;
  shownNotificationIds.clear();
  ui.notificationEmpty.hidden = false;
  ui.notificationsList.replaceChildren(ui.notificationEmpty);
}

/**
 * Adds a row to the feed unless it is already shown; newest rows go on top.
 * @param {import('./media.js').NotificationRow} row
 * @param {'top' | 'bottom'} where
 * @returns {boolean} whether it was added
 */
function addNotification(row, where) {
  if (row.id !== undefined && row.id !== null) {
    if (shownNotificationIds.has(String(row.id))) return false;
    shownNotificationIds.add(String(row.id));
  }
  const item = renderNotification(row);
  if (where === 'top') ui.notificationsList.prepend(item);
  else ui.notificationsList.append(item);
  ui.notificationEmpty.hidden = true;
  const items = ui.notificationsList.querySelectorAll('.notification-item');
  for (let index = MAX_NOTIFICATIONS; index < items.length; index += 1) {
    const stale = /** @type {HTMLElement} */ (items[index]);
    if (stale.dataset.id) shownNotificationIds.delete(stale.dataset.id);
    stale.remove();
  }
  return true;
}

/**
 * Loads the latest notifications (RLS limits them to the user's own rows and broadcast
 * messages). Rows that arrived over Realtime meanwhile are newer and stay on top.
 */
async function fetchHistory() {
  const generation = historyGeneration;
  const { data, error } = await requireClient()
    .from('user_notifications')
    .select('id, event_type, payload, event_time')
    .order('created_at', { ascending: false })
    .limit(HISTORY_LIMIT);
  if (generation !== historyGeneration) return;
  if (error) {
    console.warn('Loading the notification history failed:', error.message);
    return;
  }
  // Newest first: appending keeps that order below any Realtime rows already shown.
  for (const row of data ?? []) addNotification(row, 'bottom');
  ui.notificationEmpty.hidden = ui.notificationsList.querySelector('.notification-item') !== null;
}

/** @param {import('./media.js').NotificationRow} row */
function onNotificationRow(row) {
  if (!row || typeof row !== 'object') return;
  addNotification(row, 'top');
  try {
    waiter.handleNotification(row);
  } catch (error) {
    console.warn('Notification with an unreadable payload:', messageOf(error));
  }
  if (row.event_type === 'credit.balance_changed') {
    void refreshCredits();
  } else if (MEDIA_REFRESH_EVENTS.has(row.event_type)) {
    void refreshCredits();
    void refreshMediaBrowser();
  }
}

async function subscribe() {
  await removeChannel();
  channel = requireClient()
    .channel('user-events')
    .on(
      'postgres_changes',
      { event: 'INSERT', schema: 'public', table: 'user_notifications' },
      (change) => onNotificationRow(/** @type {any} */ (change.new)),
    )
    .subscribe((status, error) => {
      if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        console.warn(`Realtime channel ${status}`, error?.message ?? '');
      }
    });
}

async function removeChannel() {
  const current = channel;
  channel = null;
  if (current && supabase) await supabase.removeChannel(current);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function start() {
  ui.toggleMode.addEventListener('click', () => setAuthMode(!isLoginMode));
  ui.authForm.addEventListener('submit', (event) => void onAuthSubmit(event));
  ui.logoutBtn.addEventListener('click', () => void onLogout());
  ui.messageForm.addEventListener('submit', (event) => void onMessageSubmit(event));

  ui.fileInput.addEventListener('change', onFileChange);
  ui.uploadDropzone.addEventListener('dragover', onDragOver);
  ui.uploadDropzone.addEventListener('dragleave', onDragLeave);
  ui.uploadDropzone.addEventListener('drop', onDrop);
  ui.uploadForm.addEventListener('submit', (event) => void onUploadSubmit(event));

  ui.deleteConfirmInput.addEventListener('input', () => {
    ui.deleteConfirmBtn.disabled = !isDeleteConfirmation(ui.deleteConfirmInput.value);
  });
  ui.deleteConfirmInput.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') onConfirmDelete();
  });
  ui.deleteConfirmBtn.addEventListener('click', onConfirmDelete);
  ui.deleteCancelBtn.addEventListener('click', () => closeDeleteModal(false));
  ui.deleteModal.addEventListener('click', (event) => {
    if (event.target === ui.deleteModal) closeDeleteModal(false);
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !ui.deleteModal.hidden) closeDeleteModal(false);
  });

  if (!config.supabaseAnonKey) {
    console.error(
      'VITE_SUPABASE_ANON_KEY is not set: copy frontend/.env.example to frontend/.env.local and fill it in.',
    );
    showView('auth');
    showAlert('Configuration error: VITE_SUPABASE_ANON_KEY is not set, so sign-in is unavailable.', 'error');
    ui.submitBtn.disabled = true;
    return;
  }
  supabase = createClient(config.supabaseUrl, config.supabaseAnonKey);
  supabase.auth.onAuthStateChange((event) => {
    // Deferred: supabase-js holds its auth lock while it runs this callback.
    if (event === 'SIGNED_IN' || event === 'SIGNED_OUT') setTimeout(() => void checkSession(), 0);
  });
  void checkSession();
}

start();
