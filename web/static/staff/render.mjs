// The inbox's drawing: view counts, the thread list and its rows, the open
// thread, duty, key-wait and team panels, as functions of the Inbox (threads.mjs)
// they draw. Text from messages is only ever inserted as textContent.
import { $, cap, element, fill, since, timeElement } from './dom.mjs';

const HIGHLIGHT_MS = 4000;

/** A key id in groups of four, for comparing out of band. */
export function fingerprint(kid) {
  return (kid || '').replace(/(.{4})(?=.)/g, '$1 ');
}

export function renderCounts(inbox) {
  for (const link of document.querySelectorAll('#views a.view')) {
    const view = link.dataset.view;
    if (view === inbox.view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
    const count = link.querySelector('.count');
    if (count && inbox.counts) count.textContent = String(inbox.counts[view]);
  }
  inbox.live.showUnread(inbox.counts ? inbox.counts.unread : 0);
}

function renderRow(inbox, thread, openId) {
  const item = element('li', 'thread');
  item.dataset.id = thread.id;
  item.dataset.status = thread.status;
  item.dataset.risk = thread.risk;
  item.dataset.unread = String(Boolean(thread.unread));
  item.dataset.needsReply = String(Boolean(thread.needs_reply));
  if (thread.unread) item.classList.add('unread');
  if (inbox.highlighted.has(thread.id)) item.classList.add('moved');
  const button = element('button', 'thread-open');
  button.type = 'button';
  if (thread.id === openId) button.setAttribute('aria-current', 'true');
  const line = element('span', 'row-badges');
  if (thread.unread) line.append(element('span', 'badge unread-marker', inbox.label('Unread')));
  line.append(
    element('span', `badge risk-${thread.risk}`, inbox.label(`Risk${cap(thread.risk)}`) || thread.risk),
    element('span', `badge status-${thread.status}`, inbox.label(`Status${cap(thread.status)}`) || thread.status),
  );
  if (thread.needs_reply) {
    line.append(element('span', 'badge needs-reply', `${inbox.label('NeedsReply')} · ${fill(inbox.label('WaitingFor'), { time: since(thread.waiting_since) })}`));
  }
  if (thread.sealed_by === 'server') line.append(element('span', 'badge sealed-server', inbox.label('Server')));
  const preview = element('span', 'preview', '…');
  const assignee = element('span', 'assignee', thread.assigned_to === inbox.keyring.username
    ? `${thread.assigned_to} (${inbox.label('You')})` : thread.assigned_to || inbox.label('Unassigned'));
  const when = element('span', 'when');
  when.append(timeElement(thread.last_activity), ` · ${inbox.label('Expires')} `, timeElement(thread.expires));
  button.append(line, preview, assignee, when);
  button.addEventListener('click', () => inbox.openThread(thread.id).catch(() => inbox.problem(inbox.msg('msgFailed'))));
  item.append(button);
  inbox.previews.attach(item, thread);
  return item;
}

export function renderList(inbox) {
  const openId = inbox.current && inbox.current.thread.id;
  const items = inbox.threads.map((thread) => renderRow(inbox, thread, openId));
  if (!items.length) items.push(element('li', 'hint empty', inbox.msg('msgNone')));
  $('threads').replaceChildren(...items);
  inbox.previews.sweep($('threads'));
  $('more').hidden = !inbox.next;
}

/** A row that moved or changed is marked for a few seconds (and stays marked across refreshes meanwhile). */
export function highlight(inbox, id) {
  clearTimeout(inbox.highlighted.get(id));
  inbox.highlighted.set(id, setTimeout(() => {
    inbox.highlighted.delete(id);
    document.querySelector(`#threads .thread[data-id="${CSS.escape(id)}"]`)?.classList.remove('moved');
  }, HIGHLIGHT_MS));
  document.querySelector(`#threads .thread[data-id="${CSS.escape(id)}"]`)?.classList.add('moved');
}

export function renderThread(inbox) {
  const view = $('thread');
  if (!inbox.current) {
    view.hidden = true;
    return;
  }
  const { thread, messages, notes } = inbox.current;
  view.hidden = false;
  view.dataset.id = thread.id;
  $('thread-id').textContent = thread.id;
  const meta = $('thread-meta');
  meta.replaceChildren(`${thread.team} · `, timeElement(thread.created), ` · ${inbox.label('Expires')} `, timeElement(thread.expires));
  if (thread.sealed_by === 'server') meta.append(' · ', element('span', 'badge sealed-server', inbox.label('Server')));
  $('status').value = thread.status;
  $('risk').value = thread.risk;
  const team = inbox.teams.find((t) => t.id === thread.team);
  const members = team ? team.members : [];
  const option = (value, text) => {
    const node = element('option', '', text);
    node.value = value;
    return node;
  };
  $('assign').replaceChildren(option('', inbox.label('Unassigned')), ...members.map((m) => option(m.username, m.username)));
  $('assign').value = thread.assigned_to || '';
  $('handover-to').replaceChildren(
    ...members.filter((m) => m.username !== inbox.keyring.username).map((m) => option(m.username, m.username)),
    option('', inbox.label('BackToTeam')),
  );
  // The team reader's rule (crypto/README.md "Envelope v2"): only what verifies is its sender's.
  const sks = new Map([...inbox.keyring.teamKeys].map(([kid, key]) => [kid, key.sk]));
  const read = inbox.crypto.readAsTeam(messages, notes, thread.citizen_pk, sks, inbox.crypto.openEnvelope);
  const verdicts = new Map(read.messages.map((r) => [r.seq, r]));
  // What Inbox.sealFor seals a reply or note in this thread with.
  inbox.current.place = {
    v2: messages.length > 0 && messages[0].envelope.v === 2,
    pin: read.pin,
    lastSeq: messages.reduce((last, m) => Math.max(last, m.seq), 0),
  };
  const entries = [];
  for (const message of messages) {
    if (inbox.dividerSeq !== null && message.seq > inbox.dividerSeq && !entries.some((e) => e.id === 'new-divider')) {
      const divider = element('li', 'divider', inbox.label('NewMessages'));
      divider.id = 'new-divider'; // a list item of its own: a separator role is not allowed inside a list
      entries.push(divider);
    }
    entries.push(renderEntry(inbox, 'message', message.from, message, '', verdicts.get(message.seq)));
  }
  $('messages').replaceChildren(...entries);
  $('notes').replaceChildren(...notes.map((note, i) => renderEntry(inbox, 'note', 'consultant', note, note.author, read.notes[i])));
}

function renderEntry(inbox, className, from, entry, author = '', verdict = null) {
  const shown = verdict || { verified: false, text: null };
  const item = element('li', className);
  item.dataset.from = from;
  if (!shown.verified) item.dataset.verified = 'false';
  if (entry.seq !== undefined) item.dataset.seq = String(entry.seq);
  // An unverified message is never presented as its named sender's words.
  const who = element('p', 'who', !shown.verified ? inbox.label('Unverified')
    : author || inbox.label(from === 'citizen' ? 'Citizen' : 'Consultant'));
  who.append(' ', timeElement(entry.at));
  const text = element('p', 'text');
  if (shown.text !== null) text.textContent = shown.text;
  else {
    text.classList.add('unreadable');
    const held = (entry.envelope.keys || []).some((k) => inbox.keyring.teamKeys.has(k.kid));
    text.textContent = held ? inbox.msg('msgUnverified') : inbox.msg('msgNoKey');
  }
  item.append(who, text);
  return item;
}

export function renderDuty(inbox) {
  const button = $('duty-toggle');
  const on = inbox.onDuty();
  button.setAttribute('aria-pressed', String(on));
  button.textContent = on ? inbox.label('OnDuty') : inbox.label('OffDuty');
  button.classList.toggle('on', on);
}

/** A member without a team's key is told who can share it (and that it happens when their inbox is open). */
function renderKeyWait(inbox) {
  const lines = [];
  for (const team of inbox.teams) {
    if (!team.current_kid || inbox.keyring.teamKeys.has(team.current_kid)) continue;
    const holders = team.members.filter((m) => m.holds_key && m.username !== inbox.keyring.username);
    holders.sort((a, b) => Number(b.on_duty) - Number(a.on_duty));
    const names = holders.map((m) => (m.on_duty ? `${m.username} (${inbox.label('OnDuty')})` : m.username)).join(', ');
    lines.push(holders.length
      ? fill(inbox.msg('msgKeyWait'), { team: team.name, holders: names })
      : fill(inbox.msg('msgKeyWaitNobody'), { team: team.name }));
  }
  const box = $('key-wait');
  box.textContent = lines.join(' ');
  box.hidden = lines.length === 0;
}

export function renderTeams(inbox) {
  const box = $('teams');
  const mine = inbox.keyring.pk ? inbox.crypto.kid(inbox.keyring.pk) : '';
  box.replaceChildren(...inbox.teams.map((team) => {
    const section = element('section', 'team');
    section.dataset.team = team.id;
    section.append(element('h3', '', `${team.name} (${team.id})`));
    const current = element('p', 'hint', `${inbox.label('TeamKey')}: `);
    current.append(element('code', 'mono', fingerprint(team.current_kid || '—')));
    const list = element('ul', 'members');
    for (const member of team.members) {
      const row = element('li', 'member');
      row.dataset.username = member.username;
      row.append(`${member.username}${member.on_duty ? ` · ${inbox.label('OnDuty')}` : ''}: `);
      const code = element('code', 'mono fingerprint', fingerprint(member.kid));
      if (member.username === inbox.keyring.username && member.kid !== mine) code.classList.add('mismatch');
      row.append(code);
      list.append(row);
    }
    section.append(current, list);
    return section;
  }));
  renderKeyWait(inbox);
  inbox.templates.render();
}
