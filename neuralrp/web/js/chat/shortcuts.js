/**
 * Keyboard shortcuts of an open chat, as SillyTavern users know them:
 *   ← / →  previous / next version of the newest reply (→ on its newest version writes a new one)
 *   ↑      edit your last message
 *   Esc    stop the reply being written
 * The arrows act in the message box while it is empty, or when nothing in particular has focus; nothing fires
 * while a dialog or menu is open or with Ctrl/Alt/Meta/Shift held, so editing and browser shortcuts are untouched.
 */

export const SHORTCUT_HINT = '← → versions · ↑ edit last · Esc stop';

/**
 * True when the arrow keys are free for the chat: focus in the empty message box, or on nothing in particular
 * (the page itself). On a button, link, radio, the scrolling log or a filled field they keep their usual meaning.
 */
function arrowsFree(target, composerInput) {
  if (target === composerInput) return composerInput.value === '';
  return target === document.body || target === document.documentElement || target?.id === 'main'
    || Boolean(target?.classList?.contains('view'));
}

/** True when a dialog, menu or side panel that handles its own keys is open. */
function somethingOnTop() {
  return Boolean(document.querySelector('dialog[open], [role="menu"]:not([hidden])'));
}

/**
 * Listen on the document until `signal` aborts. Handlers: swipe(-1 | +1), editLast(), stop(); isGenerating()
 * says whether a reply is being written; composerInput is the message box.
 */
export function bindChatShortcuts({ signal, composerInput, isGenerating, swipe, editLast, stop }) {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.altKey || event.metaKey) return;
    if (event.key === 'Escape') {
      if (!isGenerating() || somethingOnTop()) return;
      event.preventDefault();
      stop();
      return;
    }
    if (event.shiftKey || !['ArrowLeft', 'ArrowRight', 'ArrowUp'].includes(event.key)) return;
    if (somethingOnTop() || !arrowsFree(event.target, composerInput) || isGenerating()) return;
    event.preventDefault();
    if (event.key === 'ArrowUp') editLast();
    else swipe(event.key === 'ArrowLeft' ? -1 : 1);
  }, { signal });
}
