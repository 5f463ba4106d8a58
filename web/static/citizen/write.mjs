// /write with scripts on (issue 3 §2): the pickup code is made here when the
// page loads and its Argon2id runs in the worker while the person types, so
// Send only seals (in the worker) and posts. The code never leaves the page.
import { b64, formatCode, generateCodeFrom } from '/static/crypto/fristed.mjs';
import { deriveCitizenInWorker, sealV2InWorker, stopWorker } from '/static/crypto/kdf.mjs';
import { attachCounter, errorCode, getConfig, say, textProblem, wipe } from './common.mjs';
import { proofOfWork } from './pow.mjs';

const form = document.getElementById('write-form');
const MAX_ATTEMPTS = 4;

function start() {
  const message = document.getElementById('message');
  const send = document.getElementById('send');
  const error = document.getElementById('error');
  const status = document.getElementById('status');
  const done = document.getElementById('done');
  const msg = form.dataset;

  let code = generateCodeFrom((n) => crypto.getRandomValues(new Uint8Array(n)));
  let config = getConfig();
  let keys = config.then((c) => deriveCitizenInWorker(code, c.code_salt, c.kdf.ops, c.kdf.mem));
  keys.catch(() => {}); // reported when Send is pressed
  const work = proofOfWork(config); // solved in the worker while the person types (pow.mjs)
  let busy = false;
  attachCounter(message, document.getElementById('message-counter'), Number(msg.maxChars), { counter: msg.msgCounter, over: msg.msgOver });

  async function deliver(text) {
    const k = await keys;
    const team = form.elements.team.value;
    let c = await config;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const offered = c.teams.find((t) => t.id === team);
      if (!offered) break;
      // Envelope v2 (issue 11): made with Z, seq 1, pinning the team's current key.
      const envelope = await sealV2InWorker(JSON.stringify({ text }), 'citizen', 1, k.pk, offered.pk, k.sk);
      const response = await work.post('/api/v1/threads', {
        team, citizen_pk: b64(k.pk), access_token: b64(k.accessToken), envelope,
      });
      if (response.status === 201) return;
      // The team key was rotated while the person typed: re-read, re-seal, resend.
      if (response.status !== 409 || (await errorCode(response)) !== 'stale_team_key') break;
      c = await getConfig();
      config = Promise.resolve(c);
    }
    throw new Error('not sent');
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy) return;
    const text = message.value.replace(/\r\n/g, '\n');
    const problem = textProblem(text, Number(msg.maxChars));
    if (problem) {
      say(error, problem === 'empty' ? msg.msgEmpty : msg.msgTooLong);
      message.focus();
      return;
    }
    busy = true;
    send.disabled = true;
    say(error, '');
    status.textContent = msg.msgSending;
    try {
      await deliver(text);
    } catch {
      say(error, msg.msgFailed);
      return;
    } finally {
      busy = false;
      send.disabled = false;
      status.textContent = '';
    }
    document.getElementById('pickup-code').textContent = formatCode(code);
    message.value = '';
    form.hidden = true;
    done.hidden = false;
    document.getElementById('code-title').focus();
    // Forget everything but what is on the screen.
    code = null;
    keys.then(wipe, () => {});
    keys = null;
    stopWorker();
  });

  // Leaving the page (or the back/forward cache) takes nothing along.
  window.addEventListener('pagehide', () => {
    message.value = '';
    document.getElementById('pickup-code').textContent = '';
  });
}

if (form) start();
