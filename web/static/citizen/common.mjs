// Helpers shared by the citizen pages: the JSON API without cookies, messages.

/** GET /api/v1/config: {code_salt, kdf:{ops, mem}, teams:[{id, name, kid, pk}], limits}. */
export async function getConfig() {
  const response = await fetch('/api/v1/config', { credentials: 'omit', cache: 'no-store' });
  if (!response.ok) throw new Error(`config ${response.status}`);
  return response.json();
}

/** POST JSON; secrets only ever travel in the body (INTERFACES.md). */
export function postJson(url, body) {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
}

/** The `error.code` of an API error answer. */
export async function errorCode(response) {
  try {
    return (await response.json()).error.code;
  } catch {
    return `http_${response.status}`;
  }
}

export { say } from '../ui.mjs';

/** The message-length problem for a text, as the server checks it (code points), or ''. */
export function textProblem(text, maxChars) {
  if (!text.trim()) return 'empty';
  if ([...text].length > maxChars) return 'too_long';
  return '';
}

/** Overwrite every Uint8Array field of a key object. */
export function wipe(keys) {
  if (!keys) return;
  for (const value of Object.values(keys)) if (value instanceof Uint8Array) value.fill(0);
}

/** "YYYY-MM-DD HH:MM" of an API time (UTC) in the deployment's time zone (issue 12). */
export function localTime(iso, timeZone) {
  try {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
      timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
  } catch {
    return iso.replace('T', ' ').replace('Z', ' UTC');
  }
}

/**
 * A character counter under a text field, shown from 80 % of the limit, in the page's language
 * (`counter` and `over` hold "{count}"), so the limit is never a surprise at Send.
 */
export function attachCounter(field, counter, maxChars, texts) {
  if (!field || !counter) return;
  const update = () => {
    const used = [...field.value].length;
    const shown = used >= maxChars * 0.8;
    counter.hidden = !shown;
    if (!shown) return;
    const over = used > maxChars;
    counter.classList.toggle('over', over);
    counter.textContent = (over ? texts.over : texts.counter).replace('{count}', String(Math.abs(maxChars - used)));
  };
  field.addEventListener('input', update);
  update();
}
