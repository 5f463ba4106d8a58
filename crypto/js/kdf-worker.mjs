// Module Web Worker: Argon2id (and the BLAKE2b steps after it) off the main
// thread, so the page never freezes. Messages in: {id, kind: 'citizen'|'staff',
// args}; out: {id, result} with the same object as fristed.mjs returns, or
// {id, error: {code, message}}. Nothing is kept between messages.
import ready from './sodium-browser.mjs';
import { withSodium } from './fristed.mjs';

const api = ready.then(withSodium);

self.onmessage = async (event) => {
  const { id, kind, args } = event.data;
  try {
    const crypto = await api;
    const result = kind === 'citizen' ? crypto.deriveCitizen(...args)
      : kind === 'staff' ? crypto.deriveStaff(...args)
        : kind === 'warm' ? {} : null;
    if (result === null) throw new Error(`unknown request ${kind}`);
    // Move the buffers to the page: the worker keeps no copy.
    self.postMessage({ id, result }, Object.values(result).map((bytes) => bytes.buffer));
  } catch (err) {
    self.postMessage({ id, error: { code: err.code || 'worker', message: String(err.message || err) } });
  }
};
