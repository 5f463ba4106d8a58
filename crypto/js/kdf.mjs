// Argon2id in a module Web Worker (crypto/js/kdf-worker.mjs), so typing and
// scrolling never freeze. One worker per page, started on first use (or by
// warmUp()); where module workers are unavailable the same work runs on the
// page itself (slower to the eye, same result).
import { FristedCryptoError, withSodium } from './fristed.mjs';
import { perform } from './worker-ops.mjs';

let worker = null;
let nextId = 1;
const pending = new Map();

function failAll(message, code = 'worker') {
  for (const { reject } of pending.values()) reject(new FristedCryptoError(code, message));
  pending.clear();
  worker = null;
}

function getWorker() {
  if (worker === null) {
    worker = new Worker(new URL('./kdf-worker.mjs', import.meta.url), { type: 'module', name: 'kdf' });
    worker.onmessage = ({ data }) => {
      const entry = pending.get(data.id);
      if (!entry) return;
      pending.delete(data.id);
      if (data.error) entry.reject(new FristedCryptoError(data.error.code, data.error.message));
      else entry.resolve(data.result);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      failAll('the key derivation worker failed');
    };
  }
  return worker;
}

async function onPage(kind, args) {
  const { default: ready } = await import('./sodium-browser.mjs');
  return perform(withSodium(await ready), kind, args);
}

function request(kind, args) {
  let w;
  try {
    w = getWorker();
  } catch {
    return onPage(kind, args);
  }
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    w.postMessage({ id, kind, args });
  }).catch((err) => (err.code === 'worker' ? onPage(kind, args) : Promise.reject(err)));
}

/** Start the worker and load libsodium into it before it is needed. */
export function warmUp() {
  return request('warm', []);
}

/** crypto.deriveCitizen(digits, codeSalt, ops, mem) in the worker: {master, sk, pk, accessToken, lookup}. */
export function deriveCitizenInWorker(digits, codeSalt, ops, mem) {
  return request('citizen', [digits, codeSalt, ops, mem]);
}

/** crypto.deriveStaff(passphrase, salt, ops, mem) in the worker: {master, authKey, authHash, kek}. */
export function deriveStaffInWorker(passphrase, salt, ops, mem) {
  return request('staff', [passphrase, salt, ops, mem]);
}

/** crypto.sealEnvelopeJson(plaintextJson, recipientPks) in the worker: the envelope object. */
export function sealInWorker(plaintextJson, recipientPks) {
  return request('seal', [plaintextJson, recipientPks]);
}

/** Envelope version 2 (issue 11) in the worker: sealed at (role, seq, Z.pk, pinned T.pk) with the role's key. */
export function sealV2InWorker(plaintextJson, role, seq, citizenPk, teamPk, senderSk) {
  return request('sealV2', [plaintextJson, role, seq, citizenPk, teamPk, senderSk]);
}

/** The citizen reader's rule in the worker: {pin: b64|null, shown: [{seq, from, verified, text}]}. */
export function readAsCitizenInWorker(rows, zSk) {
  return request('readCitizen', [rows, zSk]);
}

/** Open several envelopes with one secret key: [{plaintext} | {error: code}] in the same order. */
export function openManyInWorker(envelopes, sk) {
  return request('openMany', [envelopes, sk]);
}

/** Proof of work (pow.mjs) for about budgetMs in the worker: {nonce: Uint8Array | null, tries}. */
export function powSolveSomeInWorker(challenge, bits, ops, mem, budgetMs) {
  return request('pow', [challenge, bits, ops, mem, budgetMs]);
}

/** End the worker (its memory held the Argon2id state); the next call starts a new one. */
export function stopWorker() {
  if (worker !== null) worker.terminate();
  failAll('stopped', 'stopped');
}
