// Module Web Worker: Argon2id (and the BLAKE2b steps after it) off the main
// thread, so the page never freezes; citizen pages also seal and open
// envelopes here (worker-ops.mjs). Messages in: {id, kind, args}; out:
// {id, result} or {id, error: {code, message}}. Nothing is kept between messages.
import ready from './sodium-browser.mjs';
import { withSodium } from './fristed.mjs';
import { perform, transferables } from './worker-ops.mjs';

const api = ready.then(withSodium);

self.onmessage = async (event) => {
  const { id, kind, args } = event.data;
  try {
    const result = perform(await api, kind, args);
    // Move the key buffers to the page: the worker keeps no copy.
    self.postMessage({ id, result }, transferables(result));
  } catch (err) {
    self.postMessage({ id, error: { code: err.code || 'failed', message: String(err.message || err) } });
  }
};
