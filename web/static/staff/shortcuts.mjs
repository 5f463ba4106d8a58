// Keyboard shortcuts (issue 13), listed in the #shortcuts dialog ("?"):
// j / k next and previous thread, r reply, Alt+1…9 insert reply template 1…9.
// Letters act only outside text fields, so typing a reply never triggers them.
import { $ } from './dom.mjs';

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

export function installShortcuts(inbox) {
  const dialog = $('shortcuts');
  const openHelp = () => {
    if (!dialog.open) dialog.showModal();
    $('close-shortcuts').focus();
  };
  $('help-button').addEventListener('click', openHelp);
  document.addEventListener('keydown', (event) => {
    if (inbox.stopped || dialog.open || event.ctrlKey || event.metaKey) return;
    if (event.altKey && /^Digit[1-9]$/.test(event.code)) {
      if (inbox.current && inbox.templates.insertNumber(Number(event.code.slice(5)))) event.preventDefault();
      return;
    }
    if (event.altKey || typing(event.target)) return;
    if (event.key === 'j' || event.key === 'k') {
      event.preventDefault();
      inbox.step(event.key === 'j' ? 1 : -1);
    } else if (event.key === 'r' && inbox.current) {
      event.preventDefault();
      $('reply').focus();
    } else if (event.key === '?') {
      event.preventDefault();
      openHelp();
    }
  });
}
