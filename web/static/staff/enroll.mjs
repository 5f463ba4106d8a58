// Enrolment (/staff/enroll#TOKEN): the browser makes the salt, derives
// auth_key and kek with Argon2id (in a worker), makes the consultant key C and
// seals it into key_blob. Only salt, auth_key, C.pk and key_blob are sent
// (CRYPTO.md "Consultant passphrase"); the passphrase and kek never leave.
import ready from '/static/crypto/sodium-browser.mjs';
import { b64, withSodium } from '/static/crypto/fristed.mjs';
import { deriveStaffInWorker, stopWorker, warmUp } from '/static/crypto/kdf.mjs';
import { say } from '/static/ui.mjs';
import { ApiError, api } from './api.mjs';
import { MAX_LENGTH, MIN_LENGTH, assessPassphrase } from './passphrase.mjs';

const main = document.getElementById('enrolment');
const form = document.getElementById('enroll-form');
const errorBox = document.getElementById('enroll-error');
const statusLine = document.getElementById('enroll-status');
const strength = document.getElementById('strength');
const meter = document.getElementById('strength-meter');
const passphrase = document.getElementById('passphrase');
const passphrase2 = document.getElementById('passphrase2');
const totp = document.getElementById('totp');
const button = document.getElementById('enroll');
const msg = (name) => main.dataset[name] || '';

let token = location.hash.slice(1);
let started = null;

function showStrength() {
  const value = passphrase.value;
  if (!value) {
    strength.textContent = '';
    meter.value = 0;
    return;
  }
  const verdict = assessPassphrase(value, started ? started.username : '');
  meter.value = verdict.score;
  const text = verdict.ok
    ? msg(`msgStrength${verdict.score}`)
    : msg(`msg${verdict.problem[0].toUpperCase()}${verdict.problem.slice(1)}`);
  strength.textContent = text.replace('{min}', MIN_LENGTH).replace('{max}', MAX_LENGTH);
}

function showQr(svgMarkup) {
  // Server-made SVG markup (segno): parsed as XML, so nothing in it can run.
  const parsed = new DOMParser().parseFromString(svgMarkup, 'image/svg+xml');
  const svg = parsed.documentElement;
  if (svg.nodeName.toLowerCase() !== 'svg' || svg.querySelector('script, foreignObject')) return;
  svg.setAttribute('aria-hidden', 'true');
  document.getElementById('totp-qr').replaceChildren(document.importNode(svg, true));
}

function groups(text) {
  return text.replace(/(.{4})(?=.)/g, '$1 ');
}

async function start() {
  if (!token) {
    say(errorBox, msg('msgNoToken'));
    return;
  }
  try {
    started = await api('POST', '/api/v1/staff/enroll/start', { token }, { session: false });
  } catch (err) {
    say(errorBox, err instanceof ApiError && err.status === 404 ? msg('msgUnknownInvite') : msg('msgFailed'));
    return;
  }
  document.getElementById('enroll-username').textContent = started.username;
  showQr(started.totp_qr);
  const secret = new URL(started.totp_uri).searchParams.get('secret') || '';
  const secretBox = document.getElementById('totp-secret');
  secretBox.textContent = groups(secret);
  secretBox.dataset.secret = secret;
  form.hidden = false;
  warmUp().catch(() => {});
  passphrase.focus();
}

async function finish(event) {
  event.preventDefault();
  say(errorBox, '');
  const verdict = assessPassphrase(passphrase.value, started.username);
  if (!verdict.ok) {
    showStrength();
    say(errorBox, strength.textContent);
    passphrase.focus();
    return;
  }
  if (passphrase.value !== passphrase2.value) {
    say(errorBox, msg('msgMismatch'));
    passphrase2.focus();
    return;
  }
  const code = totp.value.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(code)) {
    say(errorBox, msg('msgNeedCode'));
    totp.focus();
    return;
  }
  button.disabled = true;
  statusLine.textContent = msg('msgWorking');
  const sodium = await ready;
  const crypto = withSodium(sodium);
  const salt = sodium.randombytes_buf(16);
  let keys = null;
  let pair = null;
  try {
    keys = await deriveStaffInWorker(passphrase.value, salt, started.kdf.ops, started.kdf.mem);
    pair = sodium.crypto_box_keypair();
    const body = {
      token,
      salt: b64(salt),
      auth_key: b64(keys.authKey),
      pk: b64(pair.publicKey),
      key_blob: b64(crypto.sealKeyBlob(keys.kek, pair.privateKey)),
      totp: code,
    };
    await api('POST', '/api/v1/staff/enroll/finish', body, { session: false });
    token = '';
    passphrase.value = '';
    passphrase2.value = '';
    // The link is spent; keep it out of the address bar and the history.
    history.replaceState(null, '', '/staff/enroll');
    form.hidden = true;
    document.getElementById('enroll-done').hidden = false;
    document.getElementById('to-login').focus();
  } catch (err) {
    if (err instanceof ApiError && err.code === 'bad_totp') say(errorBox, msg('msgBadTotp'));
    else if (err instanceof ApiError && err.status === 404) say(errorBox, msg('msgUnknownInvite'));
    else say(errorBox, msg('msgFailed'));
  } finally {
    for (const value of [keys && keys.master, keys && keys.kek, keys && keys.authKey, pair && pair.privateKey]) {
      if (value) sodium.memzero(value);
    }
    stopWorker();
    statusLine.textContent = '';
    button.disabled = false;
  }
}

passphrase.addEventListener('input', showStrength);
form.addEventListener('submit', finish);
start();
