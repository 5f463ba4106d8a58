// Proof of work for the citizen pages (INTERFACES.md "Version 1.1 additions").
// While /config says `pow.bits` > 0, a challenge is fetched and solved in the
// key worker in short slices (crypto/js/pow.mjs) while the person types, so
// Send rarely waits for it. A solution close to its expiry is replaced in the
// background; a 403 pow_required, 409 stale_challenge or 400 bad_pow (the
// demand rose meanwhile) is answered by solving anew and sending again,
// silently. One solution pays for one write.
import { b64, unb64 } from '/static/crypto/fristed.mjs';
import { powSolveSomeInWorker } from '/static/crypto/kdf.mjs';
import { errorCode, postJson } from './common.mjs';

const SLICE_MS = 150; // worker time per slice: sealing can run between slices
const FRESH_MS = 20_000; // a solution is used only with this much life left
const MAX_SENDS = 4;
const RETRY_CODES = new Set(['pow_required', 'stale_challenge', 'bad_pow']);

async function solveOne() {
  const response = await postJson('/api/v1/challenge', {});
  if (!response.ok) throw new Error(`challenge ${response.status}`);
  const issued = await response.json();
  const challenge = unb64(issued.challenge, 32);
  for (;;) {
    const { nonce } = await powSolveSomeInWorker(challenge, issued.bits, issued.ops, issued.mem, SLICE_MS);
    if (nonce) return { challenge: issued.challenge, nonce: b64(nonce), expiresAt: Date.parse(issued.expires) };
  }
}

/**
 * The proof of work of one page. `config` is the page's /config promise.
 * `post(url, body, {more})` is postJson with a `pow` field whenever the
 * server asks for one; it answers the last response (the caller reads its
 * status). With `more` the next solution is prepared at once (replies).
 */
export function proofOfWork(config) {
  let ready = null; // Promise of {challenge, nonce, expiresAt}
  let refresh = null;

  function prepare() {
    if (ready) return ready;
    const solving = solveOne();
    ready = solving;
    solving.then((solution) => {
      // Fetch and solve a new one shortly before this one expires, unless it was used.
      clearTimeout(refresh);
      refresh = setTimeout(() => {
        if (ready === solving) {
          ready = null;
          prepare();
        }
      }, Math.max(0, solution.expiresAt - Date.now() - FRESH_MS - 10_000));
    }, () => {
      if (ready === solving) ready = null;
    });
    return solving;
  }

  async function take() {
    let solution = await prepare();
    if (solution.expiresAt - Date.now() < FRESH_MS) {
      ready = null;
      solution = await prepare();
    }
    ready = null;
    return { challenge: solution.challenge, nonce: solution.nonce };
  }

  let wanted = false;
  config.then((c) => {
    if (c.pow && c.pow.bits > 0) {
      wanted = true;
      prepare().catch(() => {});
    }
  }, () => {});

  async function post(url, body, { more = false } = {}) {
    let response = null;
    for (let send = 1; send <= MAX_SENDS; send++) {
      const pow = wanted ? await take() : null;
      response = await postJson(url, pow ? { ...body, pow } : body);
      if ([400, 403, 409].includes(response.status) && RETRY_CODES.has(await errorCode(response.clone()))) {
        wanted = true;
        continue;
      }
      break;
    }
    // The next write (a reply) finds its work done too.
    if (wanted && more) prepare().catch(() => {});
    return response;
  }

  return { post, prepare };
}
