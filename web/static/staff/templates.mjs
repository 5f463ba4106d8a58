// Reply templates per team (issue 13): {title, text} sealed in this page to the
// team's current key (like an internal note), listed and managed in the
// inbox, inserted into a reply with Alt+1…9 or the picker. A template sealed
// to a retired key is sealed again to the current one when this page can.
import { ApiError, api } from './api.mjs';
import { $, element } from './dom.mjs';

export class Templates {
  constructor(inbox) {
    this.inbox = inbox;
    this.items = []; // {id, team, title, text}
  }

  start() {
    $('template-form').addEventListener('submit', (event) => this.add(event));
    $('template-pick').addEventListener('change', () => {
      const picked = this.items.find((t) => String(t.id) === $('template-pick').value);
      $('template-pick').value = '';
      if (picked) this.insert(picked);
    });
  }

  /** Templates the open thread's team can use, in their list order. */
  forTeam(team) {
    return this.items.filter((t) => t.team === team);
  }

  async load() {
    const { templates } = await api('GET', '/api/v1/staff/templates', undefined, { background: true });
    this.items = [];
    for (const template of templates) {
      let opened;
      try {
        opened = this.inbox.keyring.open(template.envelope);
      } catch {
        continue; // no key for it (yet)
      }
      this.items.push({ id: template.id, team: template.team, title: String(opened.title || ''), text: String(opened.text || '') });
      const current = this.inbox.keyring.currentKey(template.team);
      if (current && !template.envelope.keys.some((entry) => entry.kid === current.kid)) {
        this.reseal(template.id, opened, current).catch(() => {});
      }
    }
    this.render();
  }

  async reseal(id, opened, key) {
    const envelope = this.inbox.crypto.sealEnvelope({ title: opened.title, text: opened.text }, [key.pk]);
    await api('PUT', `/api/v1/staff/templates/${id}`, { envelope });
  }

  async add(event) {
    event.preventDefault();
    const team = $('template-team').value;
    const title = $('template-title').value.trim();
    const text = $('template-text').value;
    if (!title || !text.trim()) {
      this.inbox.problem(this.inbox.msg('msgTemplateEmpty'));
      return;
    }
    const button = $('save-template');
    button.disabled = true;
    try {
      const key = this.inbox.keyring.currentKey(team);
      if (!key) throw new ApiError(0, 'no_key', this.inbox.msg('msgNoKey'));
      const envelope = this.inbox.crypto.sealEnvelope({ title, text }, [key.pk]);
      await api('POST', '/api/v1/staff/templates', { team, envelope });
      $('template-title').value = '';
      $('template-text').value = '';
      await this.load();
      this.inbox.say(this.inbox.msg('msgTemplateSaved'));
    } catch (err) {
      this.inbox.problem(err instanceof ApiError && err.status === 0 ? err.message : this.inbox.msg('msgFailed'));
    } finally {
      button.disabled = false;
    }
  }

  async remove(id) {
    try {
      await api('DELETE', `/api/v1/staff/templates/${id}`);
      await this.load();
      this.inbox.say(this.inbox.msg('msgTemplateDeleted'));
    } catch {
      this.inbox.problem(this.inbox.msg('msgFailed'));
    }
  }

  /** Insert a template's text at the cursor of #reply (or number n, 1-based, for the open thread's team). */
  insert(template) {
    const box = $('reply');
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? box.value.length;
    box.value = box.value.slice(0, start) + template.text + box.value.slice(end);
    const caret = start + template.text.length;
    box.focus();
    box.setSelectionRange(caret, caret);
  }

  insertNumber(n) {
    const team = this.inbox.current && this.inbox.current.thread.team;
    const template = this.forTeam(team)[n - 1];
    if (template) this.insert(template);
    return Boolean(template);
  }

  render() {
    const list = $('templates');
    const rows = this.items.map((template) => {
      const item = element('li', 'template');
      item.dataset.id = String(template.id);
      item.dataset.team = template.team;
      const body = element('div', 'template-body');
      body.append(element('strong', 'template-title', template.title), element('p', 'template-text', template.text));
      const remove = element('button', 'secondary small', this.inbox.label('Delete'));
      remove.type = 'button';
      remove.setAttribute('aria-label', `${this.inbox.label('Delete')}: ${template.title}`);
      remove.addEventListener('click', () => this.remove(template.id));
      item.append(body, remove);
      return item;
    });
    if (!rows.length) rows.push(element('li', 'hint empty', this.inbox.msg('msgNoTemplates')));
    list.replaceChildren(...rows);
    const teams = $('template-team');
    const chosen = teams.value;
    teams.replaceChildren(...this.inbox.teams.map((team) => {
      const option = element('option', '', team.name);
      option.value = team.id;
      return option;
    }));
    if (chosen) teams.value = chosen;
    this.renderPicker();
  }

  renderPicker() {
    const team = this.inbox.current && this.inbox.current.thread.team;
    const first = element('option', '', this.inbox.label('ChooseTemplate'));
    first.value = '';
    const options = this.forTeam(team).map((template, index) => {
      const option = element('option', '', index < 9 ? `${index + 1}. ${template.title}` : template.title);
      option.value = String(template.id);
      return option;
    });
    $('template-pick').replaceChildren(first, ...options);
  }
}
