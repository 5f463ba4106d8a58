// /pickup with scripts on (issue 3 §3): the code is checked (Damm digit)
// before any work, derived in the worker, and only access_token leaves the
// page; messages are opened in the worker and shown as text, never as HTML.
import { b64, normaliseCode } from '/static/crypto/fristed.mjs';
import {
  deriveCitizenInWorker, readAsCitizenInWorker, sealInWorker, sealV2InWorker, stopWorker, warmUp,
} from '/static/crypto/kdf.mjs';
import { attachCounter, errorCode, getConfig, postJson, localTime, say, textProblem, wipe } from './common.mjs';
import { proofOfWork } from './pow.mjs';

const main = document.getElementById('pickup');
const codeForm = document.getElementById('code-form');
const MAX_ATTEMPTS = 4;

function start() {
  const msg = main.dataset;
  const $ = (id) => document.getElementById(id);
  const error = $('error');
  const status = $('status');
  const codeInput = $('code');
  const conversation = $('conversation');
  const thread = $('thread');
  const reply = $('reply');
  const deleteForm = $('delete-form');
  const confirmForm = $('confirm-delete-form');

  let config = getConfig();
  config.catch(() => {});
  warmUp().catch(() => {});
  const work = proofOfWork(config); // replies: solved in the worker while the person reads and types (pow.mjs)
  let session = null; // {keys, team} while a conversation is open
  let busy = false;
  attachCounter(reply, $('reply-counter'), Number(msg.maxChars), { counter: msg.msgCounter, over: msg.msgOver });

  function guard(button, work) {
    return async (event) => {
      event.preventDefault();
      if (busy) return;
      busy = true;
      if (button) button.disabled = true;
      try {
        await work(event);
      } catch {
        say(error, msg.msgFailed);
      } finally {
        busy = false;
        if (button) button.disabled = false;
        status.textContent = '';
      }
    };
  }

  async function show(answer) {
    // Envelope v2 (issue 11): only what verifies at its place is shown as its sender's words.
    const read = await readAsCitizenInWorker(answer.messages, session.keys.sk);
    const bySeq = new Map(read.shown.map((r) => [r.seq, r]));
    session.pin = read.pin;
    session.v2 = answer.messages.length > 0 && answer.messages[0].envelope.v === 2;
    session.lastSeq = answer.messages.reduce((last, m) => Math.max(last, m.seq), 0);
    const template = $('message-template');
    const items = answer.messages.map((m) => {
      const li = template.content.firstElementChild.cloneNode(true);
      const r = bySeq.get(m.seq) || { verified: false, text: null };
      li.dataset.from = m.from;
      if (!r.verified) li.dataset.verified = 'false';
      li.querySelector('.sender').textContent = !r.verified ? msg.labelUnverified
        : m.from === 'citizen' ? msg.labelCitizen : msg.labelConsultant;
      const time = li.querySelector('time');
      time.dateTime = m.at;
      time.textContent = localTime(m.at, msg.timezone); // the API stays UTC
      const text = li.querySelector('.text');
      if (r.text !== null) text.textContent = r.text;
      else {
        text.textContent = r.verified ? msg.msgUnreadable : msg.msgUnverified;
        text.classList.add('unreadable');
      }
      return li;
    });
    thread.replaceChildren(...items);
  }

  async function reload() {
    const response = await postJson('/api/v1/threads/open', { access_token: b64(session.keys.accessToken) });
    if (response.status === 404) {
      close();
      say(error, msg.msgUnknownCode);
      return;
    }
    if (!response.ok) throw new Error(await errorCode(response));
    await show(await response.json());
  }

  function close() {
    if (session) wipe(session.keys);
    session = null;
    thread.replaceChildren();
    reply.value = '';
    conversation.hidden = true;
    codeForm.hidden = false;
  }

  codeForm.addEventListener('submit', guard($('open'), async () => {
    let digits;
    try {
      // A typing error is caught here, before any Argon2id work.
      digits = normaliseCode(codeInput.value);
    } catch (err) {
      say(error, err.code === 'bad_check_digit' ? msg.msgBadCheckDigit : msg.msgBadLength);
      codeInput.focus();
      return;
    }
    say(error, '');
    status.textContent = msg.msgOpening;
    const c = await config;
    // The code was made under the current Argon2id cost or, if the operator has
    // changed it since, under an earlier one: try each in turn (newest first).
    let keys = null;
    let response = null;
    for (const kdf of [c.kdf, ...(c.kdf_previous || [])]) {
      if (keys) wipe(keys);
      keys = await deriveCitizenInWorker(digits, c.code_salt, kdf.ops, kdf.mem);
      response = await postJson('/api/v1/threads/open', { access_token: b64(keys.accessToken) });
      if (response.status !== 404) break;
    }
    if (response.status === 404) {
      wipe(keys);
      say(error, msg.msgUnknownCode);
      return;
    }
    if (!response.ok) throw new Error(await errorCode(response));
    const answer = await response.json();
    codeInput.value = '';
    session = { keys, team: answer.team };
    await show(answer);
    codeForm.hidden = true;
    conversation.hidden = false;
    thread.focus();
  }));

  $('reply-form').addEventListener('submit', guard($('send-reply'), async () => {
    const text = reply.value.replace(/\r\n/g, '\n');
    const problem = textProblem(text, Number(msg.maxChars));
    if (problem) {
      say(error, problem === 'empty' ? msg.msgEmpty : msg.msgTooLong);
      reply.focus();
      return;
    }
    say(error, '');
    let c = await config;
    for (let attempt = 1; ; attempt++) {
      const team = c.teams.find((t) => t.id === session.team);
      if (!team) throw new Error('team');
      const { keys } = session;
      const envelope = session.v2
        ? await sealV2InWorker(JSON.stringify({ text }), 'citizen', session.lastSeq + 1, keys.pk, session.pin || team.pk, keys.sk)
        : await sealInWorker(JSON.stringify({ text }), [team.pk, keys.pk]);
      const response = await work.post('/api/v1/threads/reply', { access_token: b64(keys.accessToken), envelope }, { more: true });
      if (response.status === 201) break;
      const failed = response.status === 409 && attempt < MAX_ATTEMPTS ? await errorCode(response) : '';
      // Someone wrote meanwhile: read the conversation again (its last seq) and re-seal.
      if (failed === 'stale_seq') {
        await reload();
        continue;
      }
      // The team key was rotated since /config was read: re-read, re-seal, resend.
      if (failed !== 'stale_team_key') throw new Error('not sent');
      c = await getConfig();
      config = Promise.resolve(c);
    }
    reply.value = '';
    await reload();
  }));

  $('refresh-form').addEventListener('submit', guard($('refresh'), reload));

  deleteForm.addEventListener('submit', (event) => {
    event.preventDefault();
    deleteForm.hidden = true;
    confirmForm.hidden = false;
    $('cancel-delete').focus();
  });

  $('cancel-delete').addEventListener('click', (event) => {
    event.preventDefault();
    confirmForm.hidden = true;
    deleteForm.hidden = false;
  });

  confirmForm.addEventListener('submit', guard($('confirm-delete'), async () => {
    const response = await postJson('/api/v1/threads/delete', { access_token: b64(session.keys.accessToken) });
    if (response.status !== 204 && response.status !== 404) throw new Error(await errorCode(response));
    close();
    stopWorker();
    confirmForm.hidden = true;
    deleteForm.hidden = false;
    codeForm.hidden = true;
    $('deleted').hidden = false;
    $('deleted').focus();
  }));

  // Leaving the page (or the back/forward cache) takes nothing along.
  window.addEventListener('pagehide', () => {
    close();
    codeInput.value = '';
  });
}

if (main && codeForm) start();
