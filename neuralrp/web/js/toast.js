/** Toasts: short messages in a corner; errors stay longer and are announced assertively. */

import { el } from './dom.js';
import { icon } from './icons.js';

const MAX_TOASTS = 4;
const TIMEOUTS = { info: 4000, success: 3500, error: 8000 };
const UNDO_MS = 10000;

/** The #toasts region, created on first use. */
function container() {
  let box = document.getElementById('toasts');
  if (!box) {
    box = el('div', { id: 'toasts', class: 'toasts' });
    document.body.appendChild(box);
  }
  return box;
}

/** Remove a toast and its timer. */
function dismiss(node) {
  clearTimeout(node._timer);
  node.remove();
}

/** Show a toast; kind is 'info' | 'success' | 'error'. A message already shown is refreshed, not repeated. */
export function toast(message, { kind = 'info', timeout = TIMEOUTS[kind] ?? 4000 } = {}) {
  const box = container();
  const text = String(message);
  let node = [...box.children].find((t) => t.dataset.message === text && t.dataset.kind === kind);
  if (!node) {
    node = el('div', {
      class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status',
      dataset: { message: text, kind },
    },
    el('span', { class: 'toast-text' }, text),
    el('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', on: { click: () => dismiss(node) } },
      icon('close', { size: 16 })));
    box.appendChild(node);
    while (box.children.length > MAX_TOASTS) dismiss(box.firstElementChild);
  }
  clearTimeout(node._timer);
  if (timeout > 0) node._timer = setTimeout(() => dismiss(node), timeout);
  return node;
}

/**
 * A toast with an Undo button for a few seconds. undo() is async: the toast goes when it succeeds; when it fails
 * (its request error has a toast of its own) the button can be pressed again.
 */
export function undoToast(message, undo) {
  const note = toast(message, { kind: 'info', timeout: UNDO_MS });
  const button = el('button', { type: 'button', class: 'btn btn-secondary btn-small toast-undo', on: {
    click: async () => {
      button.disabled = true;
      try {
        await undo();
        dismiss(note);
      } catch {
        button.disabled = false;
      }
    },
  } }, 'Undo');
  note.querySelector('.toast-undo')?.remove();
  note.insertBefore(button, note.querySelector('.toast-close'));
  return note;
}
