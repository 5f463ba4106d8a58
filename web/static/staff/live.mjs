// Nothing missed on a shift (issue 13): the live event stream with a visible
// "reconnecting" state, a polite announcement in #live-status, the unread
// count in the tab title, and the consultant's opt-in content-free desktop
// notification and short sound. The choice is kept on the server with the
// consultant (/api/v1/staff/preferences), never in web storage.
import { api } from './api.mjs';
import { $, fill } from './dom.mjs';

const THREAD_KINDS = ['thread_new', 'message_new', 'thread_changed'];
const TEAM_KINDS = ['grants_pending', 'keys_shared'];

export class Live {
  constructor(inbox) {
    this.inbox = inbox;
    this.source = null;
    this.prefs = { desktop: false, sound: false };
    // The unlocked inbox is titled "Inbox" ("(2) Inbox" with two unread); the login page keeps its own title.
    this.loginTitle = document.title;
    this.baseTitle = inbox.label('Title') || document.title;
    this.audio = null;
    this.announced = 0;
  }

  async start() {
    try {
      this.prefs = await api('GET', '/api/v1/staff/preferences', undefined, { background: true });
    } catch {
      // Both stay off.
    }
    const desktop = $('notify-desktop');
    const sound = $('notify-sound');
    desktop.checked = this.prefs.desktop;
    sound.checked = this.prefs.sound;
    desktop.addEventListener('change', () => this.choose('desktop', desktop));
    sound.addEventListener('change', () => this.choose('sound', sound));
    this.listen();
  }

  stop() {
    if (this.source) this.source.close();
    document.title = this.loginTitle;
  }

  async choose(name, box) {
    let on = box.checked;
    if (name === 'desktop' && on) {
      const permission = 'Notification' in window ? await Notification.requestPermission() : 'denied';
      if (permission !== 'granted') {
        on = false;
        box.checked = false;
        this.inbox.problem(this.inbox.msg('msgNotifyBlocked'));
      }
    }
    if (name === 'sound' && on) this.beep(); // a sample, and browsers allow audio after this click
    try {
      this.prefs = await api('PATCH', '/api/v1/staff/preferences', { [name]: on });
      this.inbox.say(this.inbox.msg('msgSaved'));
    } catch {
      box.checked = this.prefs[name];
      this.inbox.problem(this.inbox.msg('msgFailed'));
    }
  }

  listen() {
    if (this.inbox.stopped) return;
    const source = new EventSource('/api/v1/staff/events');
    this.source = source;
    source.addEventListener('open', () => {
      $('connection').hidden = true;
    });
    for (const kind of THREAD_KINDS) {
      source.addEventListener(kind, (event) => {
        let thread = '';
        try {
          thread = JSON.parse(event.data).thread;
        } catch {
          return;
        }
        this.inbox.onEvent(kind, thread);
      });
    }
    for (const kind of TEAM_KINDS) source.addEventListener(kind, () => this.inbox.onTeamEvent(kind));
    source.addEventListener('error', () => {
      if (this.inbox.stopped) return;
      // The browser retries by itself while CONNECTING; CLOSED means it gave up (refused).
      $('connection').hidden = false;
      if (source.readyState !== EventSource.CLOSED) return;
      // Refused (the session ended) or gone: find out which; a 401 locks the page.
      api('GET', '/api/v1/staff/teams', undefined, { background: true })
        .then(() => setTimeout(() => this.listen(), 3000))
        .catch(() => setTimeout(() => this.listen(), 5000));
    });
  }

  /** The tab title carries the unread count: "(2) Inbox". */
  showUnread(count) {
    document.title = count > 0 ? `(${count}) ${this.baseTitle}` : this.baseTitle;
  }

  /** Something arrived: announce it politely, and notify where the consultant allowed it. */
  arrived(kind, unread) {
    const text = fill(this.inbox.msg(kind === 'thread_new' ? 'msgNewThread' : 'msgArrived'), { count: unread });
    const status = $('live-status');
    // A changed text is announced again even when it repeats; the counter makes it differ.
    this.announced += 1;
    status.textContent = this.announced % 2 ? text : `${text}\u200b`;
    if (this.prefs.desktop && 'Notification' in window && Notification.permission === 'granted') {
      try {
        // Content-free, the same words every time: nothing a shoulder-surfer learns from.
        const note = new Notification(this.inbox.msg('msgNotify'), { tag: 'fristed-inbox', silent: true });
        note.addEventListener('click', () => window.focus());
      } catch {
        // Some browsers allow notifications only from a service worker: the page still announces.
      }
    }
    if (this.prefs.sound) this.beep();
  }

  beep() {
    try {
      this.audio = this.audio || new AudioContext();
      const oscillator = this.audio.createOscillator();
      const gain = this.audio.createGain();
      oscillator.frequency.value = 660;
      gain.gain.value = 0.08;
      oscillator.connect(gain).connect(this.audio.destination);
      oscillator.start();
      oscillator.stop(this.audio.currentTime + 0.18);
    } catch {
      // No audio device: nothing to play.
    }
  }
}
