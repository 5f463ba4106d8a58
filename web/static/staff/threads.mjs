// The unlocked inbox: thread list (one order for the team, views with counts,
// previews, unread markers), one thread decrypted in the page, replies (sealed
// to the citizen and the team's current key), internal notes (team key only),
// triage, handover, duty and end of shift, grants for new teammates, live
// events (live.mjs), reply templates (templates.mjs), shortcuts (shortcuts.mjs);
// drawn by render.mjs. Text from messages is only ever inserted as textContent;
// every decryption goes through Keyring.open.
import { FristedCryptoError, b64, unb64 } from '/static/crypto/fristed.mjs';
import { ApiError, api, setCsrf } from './api.mjs';
import { $, fill } from './dom.mjs';
import { Live } from './live.mjs';
import { Previews } from './previews.mjs';
import { highlight, renderCounts, renderDuty, renderList, renderTeams, renderThread } from './render.mjs';
import { installShortcuts } from './shortcuts.mjs';
import { Templates } from './templates.mjs';

export { fingerprint } from './render.mjs';

const VIEWS = ['all', 'mine', 'unassigned', 'needs_reply', 'urgent', 'closed'];
const PAGE = 100;

function viewFromUrl() {
  const view = new URLSearchParams(location.search).get('view');
  return VIEWS.includes(view) ? view : 'all';
}

export class Inbox {
  constructor({ root, keyring, crypto, msg, onLogout }) {
    this.root = root;
    this.keyring = keyring;
    this.crypto = crypto;
    this.msg = msg;
    this.onLogout = onLogout;
    this.teams = [];
    this.threads = [];
    this.next = null;
    this.counts = null;
    this.view = viewFromUrl();
    this.current = null; // the open thread's detail answer
    this.dividerSeq = null; // messages after this seq were new when the thread was opened
    this.refreshTimer = null;
    this.pendingKinds = new Map(); // thread id -> event kind, until the next refresh
    this.highlighted = new Map(); // thread id -> timer
    this.stopped = false;
    this.live = new Live(this);
    this.previews = new Previews(this);
    this.templates = new Templates(this);
  }

  label(name) {
    return this.msg(`label${name}`);
  }

  async start() {
    $('inbox-view').hidden = false;
    $('session-controls').hidden = false;
    $('whoami').textContent = this.keyring.username;
    $('logout').addEventListener('click', () => this.logout());
    $('duty-toggle').addEventListener('click', () => this.toggleDuty());
    $('end-shift').addEventListener('click', () => this.endShift());
    $('reply-form').addEventListener('submit', (event) => this.send(event, 'reply'));
    $('note-form').addEventListener('submit', (event) => this.send(event, 'notes'));
    $('handover-form').addEventListener('submit', (event) => this.handOver(event));
    for (const field of ['status', 'risk']) $(field).addEventListener('change', () => this.patch({ [field]: $(field).value }));
    $('assign').addEventListener('change', () => this.patch({ assigned_to: $('assign').value || null }));
    for (const link of document.querySelectorAll('#views a.view')) {
      link.addEventListener('click', (event) => {
        event.preventDefault();
        this.setView(link.dataset.view, true);
      });
    }
    window.addEventListener('popstate', () => this.setView(viewFromUrl(), false));
    $('more').addEventListener('click', () => this.loadMore().catch(() => this.problem(this.msg('msgFailed'))));
    this.templates.start();
    installShortcuts(this);
    await Promise.all([this.loadTeams(), this.loadThreads()]);
    await this.live.start();
    await this.shareGrants();
    this.templates.load().catch(() => {});
  }

  stop() {
    this.stopped = true;
    this.live.stop();
    clearTimeout(this.refreshTimer);
  }

  // ---- data ----

  async loadTeams(background = false) {
    this.teams = (await api('GET', '/api/v1/staff/teams', undefined, { background })).teams;
    renderTeams(this);
    renderDuty(this);
  }

  /** The first page of the view (as many rows as are shown now, so "show more" survives a refresh). */
  async loadThreads(background = false) {
    const limit = Math.min(500, Math.max(PAGE, this.threads.length));
    const answer = await api('GET', `/api/v1/staff/threads?view=${this.view}&limit=${limit}`, undefined, { background });
    this.threads = answer.threads;
    this.next = answer.next;
    this.counts = answer.counts;
    renderList(this);
    renderCounts(this);
    return answer;
  }

  async loadMore() {
    if (!this.next) return;
    const answer = await api('GET', `/api/v1/staff/threads?view=${this.view}&limit=${PAGE}&after=${encodeURIComponent(this.next)}`);
    this.threads = [...this.threads, ...answer.threads];
    this.next = answer.next;
    this.counts = answer.counts;
    renderList(this);
    renderCounts(this);
  }

  setView(view, push) {
    if (!VIEWS.includes(view)) return;
    this.view = view;
    if (push) history.pushState(null, '', `/staff?view=${view}`);
    this.threads = [];
    this.loadThreads().catch(() => this.problem(this.msg('msgFailed')));
  }

  /** Fetch the grants again (a teammate may have shared a key since the unlock). */
  async refreshKeys() {
    const answer = await api('GET', '/api/v1/staff/keys', undefined, { background: true });
    if (answer.csrf) setCsrf(answer.csrf);
    this.keyring.addGrants(answer.grants);
  }

  async openThread(id, background = false) {
    const detail = await api('GET', `/api/v1/staff/threads/${encodeURIComponent(id)}`, undefined, { background });
    const needsKeys = [...detail.messages, ...detail.notes].some(
      (item) => !item.envelope.keys.some((entry) => this.keyring.teamKeys.has(entry.kid)),
    );
    if (needsKeys) await this.refreshKeys().catch(() => {});
    const row = this.threads.find((t) => t.id === id);
    if (!this.current || this.current.thread.id !== id) this.dividerSeq = row ? row.read_seq : null;
    this.current = detail;
    renderThread(this);
    renderList(this);
    this.templates.renderPicker();
    if (!background) await this.markRead(detail).catch(() => {});
  }

  /** Opening a thread reads it to its newest message; the server keeps the marker (per consultant). */
  async markRead(detail) {
    const last = detail.messages.length ? detail.messages[detail.messages.length - 1].seq : 0;
    const row = this.threads.find((t) => t.id === detail.thread.id);
    if (row && row.read_seq >= last) return;
    await api('POST', `/api/v1/staff/threads/${encodeURIComponent(detail.thread.id)}/read`, { seq: last });
    await this.loadThreads(true);
  }

  /** j / k: the next or previous thread in the list. */
  step(delta) {
    const ids = this.threads.map((t) => t.id);
    if (!ids.length) return;
    const at = this.current ? ids.indexOf(this.current.thread.id) : -1;
    const next = ids[Math.min(ids.length - 1, Math.max(0, at === -1 ? 0 : at + delta))];
    this.openThread(next)
      .then(() => document.querySelector(`#threads .thread[data-id="${CSS.escape(next)}"] button`)?.focus())
      .catch(() => this.problem(this.msg('msgFailed')));
  }

  // ---- actions ----

  sealFor(thread, kind, payload) {
    const place = this.current && this.current.thread.id === thread.id ? this.current.place : null;
    if (place && place.v2) {
      // Envelope v2 (issue 11): made with the key the thread is pinned to, at the next seq (a note: 0).
      const pinned = place.pin && this.keyring.teamKeys.get(place.pin);
      if (!pinned) throw new FristedCryptoError('wrong_key', this.msg('msgNoKey'));
      const role = kind === 'reply' ? 'consultant' : 'note';
      const at = this.crypto.binding(role, role === 'note' ? 0 : place.lastSeq + 1, thread.citizen_pk, pinned.pk);
      return this.crypto.sealV2(payload, at, pinned.sk);
    }
    const key = this.keyring.currentKey(thread.team);
    if (!key) throw new FristedCryptoError('wrong_key', this.msg('msgNoKey'));
    const recipients = kind === 'reply' ? [unb64(thread.citizen_pk, 32), key.pk] : [key.pk];
    return this.crypto.sealEnvelope(payload, recipients);
  }

  async send(event, kind) {
    event.preventDefault();
    const box = $(kind === 'reply' ? 'reply' : 'note');
    const text = box.value;
    if (!this.current) return;
    if (!text.trim()) {
      this.problem(this.msg('msgEmpty'));
      return;
    }
    const thread = this.current.thread;
    const button = $(kind === 'reply' ? 'send-reply' : 'send-note');
    button.disabled = true;
    try {
      for (let attempt = 0; ; attempt += 1) {
        if (!this.keyring.currentKey(thread.team)) await this.refreshKeys();
        const envelope = this.sealFor(thread, kind, { text });
        try {
          await api('POST', `/api/v1/staff/threads/${encodeURIComponent(thread.id)}/${kind}`, { envelope });
          break;
        } catch (err) {
          // Someone wrote meanwhile (envelope v2 binds the seq): read the thread again and re-seal.
          if (err instanceof ApiError && err.code === 'stale_seq' && attempt < 3) {
            await this.openThread(thread.id, true);
            continue;
          }
          // The team key was rotated since this page read it: learn the new one and seal again.
          if (!(err instanceof ApiError && err.code === 'stale_team_key' && attempt === 0)) throw err;
          await this.refreshKeys();
        }
      }
      box.value = '';
      this.say(this.msg('msgSent'));
      await this.openThread(thread.id);
      await this.loadThreads();
    } catch (err) {
      this.problem(err instanceof FristedCryptoError ? this.msg('msgNoKey') : this.msg('msgFailed'));
    } finally {
      button.disabled = false;
    }
  }

  /** Assign to a teammate (or back to the team) with an optional internal note, in one request. */
  async handOver(event) {
    event.preventDefault();
    if (!this.current) return;
    const thread = this.current.thread;
    const to = $('handover-to').value || null;
    const text = $('handover-note').value;
    const button = $('handover');
    button.disabled = true;
    try {
      const body = { to };
      if (text.trim()) body.note = this.sealFor(thread, 'note', { text });
      await api('POST', `/api/v1/staff/threads/${encodeURIComponent(thread.id)}/handover`, body);
      $('handover-note').value = '';
      this.say(this.msg('msgHanded'));
      await Promise.all([this.openThread(thread.id, true), this.loadThreads()]);
    } catch (err) {
      this.problem(err instanceof FristedCryptoError ? this.msg('msgNoKey') : this.msg('msgFailed'));
    } finally {
      button.disabled = false;
    }
  }

  async endShift() {
    const button = $('end-shift');
    button.disabled = true;
    try {
      const ended = await api('POST', '/api/v1/staff/shift/end', {});
      const given = Object.values(ended.handed_over).reduce((a, b) => a + b, 0);
      const text = fill(this.msg('msgShiftEnded'), { given, team: ended.to_team });
      this.say(text);
      $('live-status').textContent = text;
      await Promise.all([this.loadTeams(), this.loadThreads()]);
      if (this.current) await this.openThread(this.current.thread.id, true);
    } catch {
      this.problem(this.msg('msgFailed'));
    } finally {
      button.disabled = false;
    }
  }

  async patch(changes) {
    if (!this.current) return;
    try {
      const updated = await api('PATCH', `/api/v1/staff/threads/${encodeURIComponent(this.current.thread.id)}`, changes);
      this.current.thread = { ...this.current.thread, ...updated };
      this.threads = this.threads.map((t) => (t.id === updated.id ? { ...t, ...updated } : t));
      renderThread(this);
      renderList(this);
      this.say(this.msg('msgSaved'));
      this.loadThreads(true).catch(() => {});
    } catch {
      this.problem(this.msg('msgFailed'));
      renderThread(this);
    }
  }

  onDuty() {
    return this.teams.length > 0 && this.teams.every((team) => team.on_duty.includes(this.keyring.username));
  }

  async toggleDuty() {
    const on = !this.onDuty();
    const button = $('duty-toggle');
    button.disabled = true;
    try {
      for (const team of this.teams) await api('POST', '/api/v1/staff/duty', { team: team.id, on });
      await Promise.all([this.loadTeams(), this.loadThreads()]);
    } catch {
      this.problem(this.msg('msgFailed'));
    } finally {
      button.disabled = false;
    }
  }

  async logout() {
    try {
      await api('POST', '/api/v1/staff/logout');
    } catch {
      // The session may already be gone; the keys go either way.
    }
    this.onLogout();
  }

  /** Seal each key this page holds to teammates who lack it (CRYPTO.md "Team membership and grants"). */
  async shareGrants() {
    try {
      const { pending } = await api('GET', '/api/v1/staff/grants/pending', undefined, { background: true });
      const grants = [];
      for (const item of pending) {
        const key = this.keyring.teamKeys.get(item.kid);
        if (!key || key.team !== item.team) continue;
        const box = this.crypto.sealBox(unb64(item.pk, 32), key.sk);
        grants.push({ team: item.team, kid: item.kid, username: item.username, box: b64(box) });
      }
      if (grants.length) await api('POST', '/api/v1/staff/grants', { grants });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      // Not fatal: the next event or unlock tries again.
    }
  }

  // ---- live events (live.mjs delivers them) ----

  onEvent(kind, threadId) {
    const known = this.pendingKinds.get(threadId);
    if (!known || kind !== 'thread_changed') this.pendingKinds.set(threadId, kind);
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), 50);
  }

  async refresh() {
    const kinds = new Map(this.pendingKinds);
    this.pendingKinds.clear();
    const openId = this.current && this.current.thread.id;
    const work = [this.loadThreads(true)];
    if (openId && kinds.has(openId)) work.push(this.openThread(openId, true));
    await Promise.all(work);
    for (const id of kinds.keys()) highlight(this, id);
    const arrivals = [...kinds.values()].filter((kind) => kind !== 'thread_changed');
    if (arrivals.length) this.live.arrived(arrivals.includes('message_new') ? 'message_new' : 'thread_new', this.counts ? this.counts.unread : 0);
  }

  onTeamEvent(kind) {
    if (kind === 'grants_pending') {
      this.shareGrants().catch(() => {});
      this.loadTeams(true).catch(() => {});
      return;
    }
    const waiting = !$('key-wait').hidden;
    this.refreshKeys()
      .then(() => this.loadTeams(true))
      .then(() => {
        this.previews.forget();
        renderList(this);
        if (this.current) renderThread(this);
        if (waiting && $('key-wait').hidden) this.say(this.msg('msgKeysShared'));
        return this.templates.load();
      })
      .catch(() => {});
  }

  // ---- status line (used by live.mjs and templates.mjs too; render.mjs draws the rest) ----

  say(text) {
    $('thread-status').textContent = text;
    $('thread-error').hidden = true;
  }

  problem(text) {
    $('thread-error').textContent = text;
    $('thread-error').hidden = false;
  }
}
