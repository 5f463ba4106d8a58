// /staff/login and /staff: log in (prelogin → Argon2id in a worker → login
// with TOTP) or, after a reload with a live session, unlock with the
// passphrase alone; then open the key_blob and the grants in page memory and
// show the inbox in place. Nothing key-like is ever put in web storage.
import ready from '/static/crypto/sodium-browser.mjs';
import { b64, unb64, withSodium } from '/static/crypto/fristed.mjs';
import { deriveStaffInWorker, stopWorker, warmUp } from '/static/crypto/kdf.mjs';
import { say } from '/static/ui.mjs';
import { ApiError, api, setCsrf, whenUnauthorized } from './api.mjs';
import { Keyring } from './keyring.mjs';
import { Inbox } from './threads.mjs';

const root = document.getElementById('staff');
const mode = root.dataset.mode; // "login" or "unlock"
const form = document.getElementById('login-form');
const username = document.getElementById('username');
const passphrase = document.getElementById('passphrase');
const totp = document.getElementById('totp');
const button = document.getElementById('login');
const statusLine = document.getElementById('login-status');
const errorBox = document.getElementById('login-error');
const msg = (name) => root.dataset[name] || '';

let keyring = null;
let inbox = null;

/** The session ended (logout, expiry, another tab): forget every key and start over. */
function lockOut(reason = 'expired') {
  if (inbox) inbox.stop();
  if (keyring) keyring.wipe();
  setCsrf('');
  location.replace(reason === 'logout' ? '/staff/login' : '/staff/login?ended=1');
}

async function derive(secret, params) {
  return deriveStaffInWorker(secret, unb64(params.salt, 16), params.kdf.ops, params.kdf.mem);
}

async function logIn(sodium, crypto) {
  const code = totp.value.replace(/\s+/g, '');
  if (!username.value || !passphrase.value || !/^[0-9]{6}$/.test(code)) throw new ApiError(0, 'need_all', msg('msgNeedAll'));
  const name = username.value.trim();
  const params = await api('POST', '/api/v1/staff/prelogin', { username: name }, { session: false });
  const keys = await derive(passphrase.value, params);
  try {
    const answer = await api('POST', '/api/v1/staff/login', { username: name, auth_key: b64(keys.authKey), totp: code }, { session: false });
    setCsrf(answer.csrf);
    keyring = new Keyring(crypto, sodium);
    keyring.unlock(keys.kek, answer);
    // A reload of this address asks for the passphrase again (unlock); the chosen view stays in it.
    const view = new URLSearchParams(location.search).get('view');
    history.replaceState(null, '', view ? `/staff?view=${encodeURIComponent(view)}` : '/staff');
  } finally {
    for (const value of Object.values(keys)) sodium.memzero(value);
  }
}

async function unlock(sodium, crypto) {
  if (!passphrase.value) throw new ApiError(0, 'need_all', msg('msgNeedAll'));
  const answer = await api('GET', '/api/v1/staff/keys');
  const keys = await derive(passphrase.value, answer);
  try {
    keyring = new Keyring(crypto, sodium);
    keyring.unlock(keys.kek, answer);
  } catch {
    keyring = null;
    throw new ApiError(0, 'bad_passphrase', msg('msgBadPassphrase'));
  } finally {
    for (const value of Object.values(keys)) sodium.memzero(value);
  }
  // The session's CSRF token comes again with the keys (a same-origin read only).
  setCsrf(answer.csrf);
}

async function submit(event) {
  event.preventDefault();
  say(errorBox, '');
  button.disabled = true;
  statusLine.textContent = msg('msgWorking');
  try {
    const sodium = await ready;
    const crypto = withSodium(sodium);
    if (mode === 'unlock') await unlock(sodium, crypto);
    else await logIn(sodium, crypto);
    passphrase.value = '';
    if (totp) totp.value = '';
    stopWorker();
    document.getElementById('login-view').hidden = true;
    inbox = new Inbox({ root, keyring, crypto, msg, onLogout: () => lockOut('logout') });
    await inbox.start();
  } catch (err) {
    if (!(err instanceof ApiError)) say(errorBox, msg('msgFailed'));
    else if (err.status === 429) say(errorBox, msg('msgRateLimited').replace('{seconds}', String(err.retryAfter || 30)));
    else if (err.status === 401 && mode === 'login') say(errorBox, msg('msgBadLogin'));
    else if (err.status === 0) say(errorBox, err.message);
    else say(errorBox, msg('msgFailed'));
    passphrase.focus();
  } finally {
    statusLine.textContent = '';
    button.disabled = false;
  }
}

whenUnauthorized(() => lockOut());
form.addEventListener('submit', submit);
document.getElementById('login-fields').disabled = false;
if (new URLSearchParams(location.search).has('ended')) {
  say(errorBox, msg('msgExpired'));
  history.replaceState(null, '', '/staff/login');
}
warmUp().catch(() => {});
(mode === 'unlock' ? passphrase : username).focus();
