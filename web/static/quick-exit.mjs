// Quick exit without a trail (issue 12), on every citizen page:
// - the #quick-exit button, Shift pressed three times (as GOV.UK's "Exit this
//   page") or Esc pressed twice leave for the neutral site with
//   location.replace, so this page is not left in the history behind it;
// - links between Fristed pages also use location.replace, and the
//   conversation views are built in place, so the history holds at most one
//   Fristed entry at any moment, and the quick exit's replace leaves none.
// Without scripts the button still works as a plain link.
const link = document.getElementById('quick-exit');
const SHIFT_PRESSES = 3;
const SHIFT_WINDOW_MS = 5000; // GOV.UK's window for the three presses
const ESCAPE_WINDOW_MS = 1500;

function leave() {
  // Blank the screen at once; the neutral site may take a moment to load.
  document.documentElement.hidden = true;
  document.title = '';
  location.replace(link.href);
}

/** Same-origin page links (not the quick exit, not in-page anchors, not new tabs). */
function fristedLink(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return null;
  const a = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!a || a === link || a.target || a.hasAttribute('download')) return null;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || (url.pathname === location.pathname && url.search === location.search && url.hash)) return null;
  return url;
}

if (link) {
  link.addEventListener('click', (event) => {
    event.preventDefault();
    leave();
  });
  // role="button": Space activates it too, as it would a button.
  link.addEventListener('keydown', (event) => {
    if (event.key !== ' ') return;
    event.preventDefault();
    leave();
  });

  document.addEventListener('click', (event) => {
    const url = fristedLink(event);
    if (!url) return;
    event.preventDefault();
    location.replace(url.href);
  });

  // Shift three times in a row (nothing else pressed between, held-down repeats ignored):
  // typing capitals never counts, since a letter resets the count.
  let shifts = [];
  let lastEscape = -Infinity;
  document.addEventListener('keydown', (event) => {
    if (event.isComposing) return; // an input method is composing: its keys are typing
    if (event.key === 'Shift') {
      if (event.repeat) return;
      shifts = shifts.filter((t) => event.timeStamp - t < SHIFT_WINDOW_MS);
      shifts.push(event.timeStamp);
      if (shifts.length >= SHIFT_PRESSES) leave();
      return;
    }
    shifts = [];
    // Esc types nothing and closes nothing on these pages, so twice in a row is safe to keep.
    if (event.key !== 'Escape') {
      lastEscape = -Infinity;
      return;
    }
    if (event.timeStamp - lastEscape < ESCAPE_WINDOW_MS) leave();
    lastEscape = event.timeStamp;
  });

  // The keyboard hint and the history note are true only where this script runs.
  for (const id of ['quick-exit-hint', 'history-scripts']) {
    const element = document.getElementById(id);
    if (element) element.hidden = false;
  }
}
