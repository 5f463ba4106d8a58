// Small DOM helpers shared by the staff inbox modules. Text is only ever set as textContent.

export const $ = (id) => document.getElementById(id);

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function timeElement(value) {
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

/** "12 min", "3 h", "2 d": how long since `value` (RFC 3339), in the page's language. */
export function since(value, now = Date.now()) {
  const minutes = Math.max(0, Math.round((now - new Date(value).getTime()) / 60000));
  const lang = document.documentElement.lang || undefined;
  const format = (n, unit) => new Intl.NumberFormat(lang, { style: 'unit', unit, unitDisplay: 'short' }).format(n);
  if (minutes < 60) return format(minutes, 'minute');
  if (minutes < 48 * 60) return format(Math.floor(minutes / 60), 'hour');
  return format(Math.floor(minutes / 1440), 'day');
}

export function cap(word) {
  return word ? word[0].toUpperCase() + word.slice(1) : '';
}

/** Replace {name} placeholders in a translated message. */
export function fill(text, values) {
  return Object.entries(values).reduce((out, [key, value]) => out.replaceAll(`{${key}}`, String(value)), text);
}
