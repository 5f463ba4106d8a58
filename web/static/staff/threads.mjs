// The unlocked inbox: thread list, one thread decrypted in the page, replies
// (sealed to the citizen and the team's current key), internal notes (team
// key only), triage, duty, grants for new teammates, live events (SSE).
// Text from messages is only ever inserted as textContent.
import { FristedCryptoError, b64, unb64 } from '/static/crypto/fristed.mjs';
import { ApiError, api, setCsrf } from './api.mjs';

const KINDS = ['thread_new', 'message_new', 'thread_changed'];
const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeElement(value) {
  const node = element('time');
  node.dateTime = value;
  // A date alone (expiry) is a calendar day, not a moment: shown as written.
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const date = new Date(value);
  node.textContent = dateOnly || Number.isNaN(date.getTime())
    ? value
    : date.toLocaleString(document.documentElement.lang || undefined, { dateStyle: 'short', timeStyle: 'short' });
  return node;
}

/** A key id in groups of four, for comparing out of band. */
export function fingerprint(kid) {
  return (kid || '').replace(/(.{4})(?=.)/g, '$1 ');
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
    this.current = null; // the open thread's detail answer
    this.events = null;
    this.refreshTimer = null;
    this.stopped = false;
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
    $('reply-form').addEventListener('submit', (event) => this.send(event, 'reply'));
    $('note-form').addEventListener('submit', (event) => this.send(event, 'notes'));
    for (const field of ['status', 'risk']) $(field).addEventListener('change', () => this.patch({ [field]: $(field).value }));
    $('assign').addEventListener('change', () => this.patch({ assigned_to: $('assign').value || null }));
    await Promise.all([this.loadTeams(), this.loadThreads()]);
    this.listen();
    await this.shareGrants();
  }

  stop() {
    this.stopped = true;
    if (this.events) this.events.close();
    clearTimeout(this.refreshTimer);
  }

  // ---- data ----

  async loadTeams(background = false) {
    this.teams = (await api('GET', '/api/v1/staff/teams', undefined, { background })).teams;
    this.renderTeams();
    this.renderDuty();
  }

  async loadThreads(background = false) {
    this.threads = (await api('GET', '/api/v1/staff/threads', undefined, { background })).threads;
    this.renderList();
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
    this.current = detail;
    this.renderThread();
    this.renderList();
  }

  // ---- actions ----

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
        let key = this.keyring.currentKey(thread.team);
        if (!key) {
          await this.refreshKeys();
          key = this.keyring.currentKey(thread.team);
          if (!key) throw new FristedCryptoError('wrong_key', this.msg('msgNoKey'));
        }
        const recipients = kind === 'reply' ? [unb64(thread.citizen_pk, 32), key.pk] : [key.pk];
        const envelope = this.crypto.sealEnvelope({ text }, recipients);
        try {
          await api('POST', `/api/v1/staff/threads/${encodeURIComponent(thread.id)}/${kind}`, { envelope });
          break;
        } catch (err) {
          // The team key was rotated since this page read it: learn the new one and seal again.
          if (!(err instanceof ApiError && err.code === 'stale_team_key' && attempt === 0)) throw err;
          await this.refreshKeys();
        }
      }
      box.value = '';
      this.say(this.msg('msgSent'));
      await Promise.all([this.openThread(thread.id), this.loadThreads()]);
    } catch (err) {
      this.problem(err instanceof FristedCryptoError ? this.msg('msgNoKey') : this.msg('msgFailed'));
    } finally {
      button.disabled = false;
    }
  }

  async patch(changes) {
    if (!this.current) return;
    try {
      const updated = await api('PATCH', `/api/v1/staff/threads/${encodeURIComponent(this.current.thread.id)}`, changes);
      this.current.thread = { ...this.current.thread, ...updated };
      this.threads = this.threads.map((t) => (t.id === updated.id ? updated : t));
      this.renderThread();
      this.renderList();
      this.say(this.msg('msgSaved'));
    } catch {
      this.problem(this.msg('msgFailed'));
      this.renderThread();
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
      // Not fatal: the next unlock tries again.
    }
  }

  // ---- live events ----

  listen() {
    if (this.stopped) return;
    const source = new EventSource('/api/v1/staff/events');
    this.events = source;
    for (const kind of KINDS) {
      source.addEventListener(kind, (event) => {
        let thread = '';
        try {
          thread = JSON.parse(event.data).thread;
        } catch {
          return;
        }
        if (kind !== 'thread_changed') this.say(this.msg('msgNewActivity'));
        this.scheduleRefresh(thread);
      });
    }
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED || this.stopped) return;
      // Refused (the session ended) or gone: find out which; a 401 locks the page.
      api('GET', '/api/v1/staff/teams', undefined, { background: true })
        .then(() => setTimeout(() => this.listen(), 3000))
        .catch(() => {});
    });
  }

  scheduleRefresh(threadId) {
    clearTimeout(this.refreshTimer);
    const openId = this.current && this.current.thread.id;
    this.refreshTimer = setTimeout(() => {
      const work = [this.loadThreads(true)];
      if (openId && openId === threadId) work.push(this.openThread(openId, true));
      Promise.all(work).catch(() => {});
    }, 50);
  }

  // ---- rendering ----

  say(text) {
    $('thread-status').textContent = text;
    $('thread-error').hidden = true;
  }

  problem(text) {
    $('thread-error').textContent = text;
    $('thread-error').hidden = false;
  }

  renderList() {
    const list = $('threads');
    const openId = this.current && this.current.thread.id;
    const items = this.threads.map((thread) => {
      const item = element('li', 'thread');
      item.dataset.id = thread.id;
      item.dataset.status = thread.status;
      item.dataset.risk = thread.risk;
      const button = element('button', 'thread-open');
      button.type = 'button';
      if (thread.id === openId) button.setAttribute('aria-current', 'true');
      button.append(
        element('span', `badge status-${thread.status}`, this.label(`Status${cap(thread.status)}`) || thread.status),
        element('span', `badge risk-${thread.risk}`, this.label(`Risk${cap(thread.risk)}`) || thread.risk),
        element('span', 'assignee', thread.assigned_to === this.keyring.username
          ? `${thread.assigned_to} (${this.label('You')})` : thread.assigned_to || this.label('Unassigned')),
      );
      if (thread.sealed_by === 'server') button.append(element('span', 'badge sealed-server', this.label('Server')));
      const when = element('span', 'when');
      when.append(timeElement(thread.last_activity), ` · ${this.label('Expires')} `, timeElement(thread.expires));
      button.append(when);
      button.addEventListener('click', () => this.openThread(thread.id).catch(() => this.problem(this.msg('msgFailed'))));
      item.append(button);
      return item;
    });
    if (!items.length) items.push(element('li', 'hint empty', this.msg('msgNone')));
    list.replaceChildren(...items);
  }

  renderThread() {
    const view = $('thread');
    if (!this.current) {
      view.hidden = true;
      return;
    }
    const { thread, messages, notes } = this.current;
    view.hidden = false;
    view.dataset.id = thread.id;
    $('thread-id').textContent = thread.id;
    const meta = $('thread-meta');
    meta.replaceChildren(`${thread.team} · `, timeElement(thread.created), ` · ${this.label('Expires')} `, timeElement(thread.expires));
    if (thread.sealed_by === 'server') meta.append(' · ', element('span', 'badge sealed-server', this.label('Server')));
    $('status').value = thread.status;
    $('risk').value = thread.risk;
    const team = this.teams.find((t) => t.id === thread.team);
    const assign = $('assign');
    const options = [element('option', '', this.label('Unassigned'))];
    options[0].value = '';
    for (const member of team ? team.members : []) {
      const option = element('option', '', member.username);
      option.value = member.username;
      options.push(option);
    }
    assign.replaceChildren(...options);
    assign.value = thread.assigned_to || '';
    $('messages').replaceChildren(...messages.map((message) => this.renderEntry('message', message.from, message)));
    $('notes').replaceChildren(...notes.map((note) => this.renderEntry('note', 'consultant', note, note.author)));
  }

  renderEntry(className, from, entry, author = '') {
    const item = element('li', className);
    item.dataset.from = from;
    const who = element('p', 'who', author || this.label(from === 'citizen' ? 'Citizen' : 'Consultant'));
    who.append(' ', timeElement(entry.at));
    const text = element('p', 'text');
    try {
      text.textContent = this.keyring.open(entry.envelope).text;
    } catch (err) {
      text.classList.add('unreadable');
      text.textContent = err instanceof FristedCryptoError && err.code === 'wrong_key' ? this.msg('msgNoKey') : this.msg('msgUnreadable');
    }
    item.append(who, text);
    return item;
  }

  renderDuty() {
    const button = $('duty-toggle');
    const on = this.onDuty();
    button.setAttribute('aria-pressed', String(on));
    button.textContent = on ? this.label('OnDuty') : this.label('OffDuty');
    button.classList.toggle('on', on);
  }

  renderTeams() {
    const box = $('teams');
    const mine = this.keyring.pk ? this.crypto.kid(this.keyring.pk) : '';
    box.replaceChildren(...this.teams.map((team) => {
      const section = element('section', 'team');
      section.dataset.team = team.id;
      section.append(element('h3', '', `${team.name} (${team.id})`));
      const current = element('p', 'hint', `${this.label('TeamKey')}: `);
      current.append(element('code', 'mono', fingerprint(team.current_kid || '—')));
      const list = element('ul', 'members');
      for (const member of team.members) {
        const row = element('li', 'member');
        row.dataset.username = member.username;
        row.append(`${member.username}${member.on_duty ? ` · ${this.label('OnDuty')}` : ''}: `);
        const code = element('code', 'mono fingerprint', fingerprint(member.kid));
        if (member.username === this.keyring.username && member.kid !== mine) code.classList.add('mismatch');
        row.append(code);
        list.append(row);
      }
      section.append(current, list);
      return section;
    }));
  }
}

function cap(word) {
  return word ? word[0].toUpperCase() + word.slice(1) : '';
}

