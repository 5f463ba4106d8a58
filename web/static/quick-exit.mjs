// Quick exit: the #quick-exit link, or Esc pressed twice within 1.5 s, leaves
// for the neutral site with location.replace, so this page is not left in the
// history behind it. Without scripts the link still works as a plain link.
const link = document.getElementById('quick-exit');

function leave() {
  // Blank the screen at once; the neutral site may take a moment to load.
  document.documentElement.hidden = true;
  document.title = '';
  location.replace(link.href);
}

if (link) {
  link.addEventListener('click', (event) => {
    event.preventDefault();
    leave();
  });
  let lastEscape = -Infinity;
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    if (event.timeStamp - lastEscape < 1500) leave();
    lastEscape = event.timeStamp;
  });
}
