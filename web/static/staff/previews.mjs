// One-line previews (issue 13): the newest message of each thread row that is
// on screen is fetched (at most 50 ids per request) and decrypted with the keys
// this page already holds (Keyring.open, the one place that decrypts). Lazy:
// only rows that scroll into view; bounded: a small in-memory map, forgotten
// with the page; nothing is stored anywhere else.
import { api } from './api.mjs';

const BATCH = 50;
const KEEP = 300;
const PREVIEW_CHARS = 90;

export class Previews {
  constructor(inbox) {
    this.inbox = inbox;
    this.texts = new Map(); // `${id}:${seq}` -> one line (page memory only)
    this.wanted = new Set();
    this.timer = null;
    this.observer = 'IntersectionObserver' in window
      ? new IntersectionObserver((entries) => this.seen(entries), { rootMargin: '200px' })
      : null;
  }

  key(thread) {
    return `${thread.id}:${thread.last_seq}`;
  }

  /** Fill a row's preview now if known, else when it comes into view. */
  attach(row, thread) {
    const known = this.texts.get(this.key(thread));
    if (known !== undefined) {
      this.show(row, known);
      return;
    }
    row.dataset.previewKey = this.key(thread);
    if (this.observer) this.observer.observe(row);
    else this.want(thread.id);
  }

  /**
   * After the list is drawn: rows already on screen are asked for now. Intersection
   * observers report only with rendering frames, which a background tab may not get.
   */
  sweep(list) {
    const bottom = window.innerHeight + 200;
    for (const row of list.querySelectorAll('.thread[data-preview-key]')) {
      const preview = row.querySelector('.preview');
      if (!preview || preview.dataset.filled) continue;
      const rect = row.getBoundingClientRect();
      if (rect.bottom >= -200 && rect.top <= bottom && rect.height > 0) {
        if (this.observer) this.observer.unobserve(row);
        this.want(row.dataset.id);
      }
    }
  }

  seen(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      this.observer.unobserve(entry.target);
      this.want(entry.target.dataset.id);
    }
  }

  want(id) {
    this.wanted.add(id);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fetch(), 30);
  }

  forget() {
    this.texts.clear();
  }

  async fetch() {
    const ids = [...this.wanted].slice(0, BATCH);
    for (const id of ids) this.wanted.delete(id);
    if (!ids.length) return;
    if (this.wanted.size) this.timer = setTimeout(() => this.fetch(), 30);
    let previews = [];
    try {
      ({ previews } = await api('GET', `/api/v1/staff/previews?ids=${ids.map(encodeURIComponent).join(',')}`, undefined, { background: true }));
    } catch {
      return;
    }
    for (const item of previews) {
      let text;
      const held = (item.envelope.keys || []).some((entry) => this.inbox.keyring.teamKeys.has(entry.kid));
      try {
        // The thread context (what a version-2 envelope is bound to) goes with the envelope.
        text = oneLine(this.inbox.keyring.open(item.envelope, { thread: item.id, citizenPk: item.citizen_pk, seq: item.seq, role: item.from }).text);
      } catch {
        // No key yet: shown as such, and tried again when keys arrive. A key but no text
        // (unreadable, or not verifiable on its own): no preview rather than a wrong one.
        text = held ? '' : null;
      }
      const key = `${item.id}:${item.seq}`;
      if (text !== null) {
        this.texts.set(key, text);
        if (this.texts.size > KEEP) this.texts.delete(this.texts.keys().next().value);
      }
      const row = document.querySelector(`#threads .thread[data-preview-key="${CSS.escape(key)}"]`);
      if (row) this.show(row, text);
    }
  }

  show(row, text) {
    const node = row.querySelector('.preview');
    if (!node) return;
    node.dataset.filled = '1';
    node.classList.toggle('locked', text === null);
    node.textContent = text === null ? this.inbox.label('PreviewLocked') : text;
  }
}

function oneLine(text) {
  const line = String(text || '').replace(/\s+/g, ' ').trim();
  return line.length > PREVIEW_CHARS ? `${line.slice(0, PREVIEW_CHARS - 1)}…` : line;
}
