// Small DOM helpers shared by the citizen and staff pages.

/** Show (or with '' hide) a message in an element. */
export function say(element, text) {
  if (!element) return;
  element.textContent = text || '';
  element.hidden = !text;
}
