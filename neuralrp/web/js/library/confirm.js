/** A modal yes/no question: await confirmDialog({title, text, confirm: 'Delete'}) -> true when confirmed. */

import { el } from '../dom.js';
import { libButton } from './icons.js';

/** Show a modal <dialog>; resolves true for the confirm button, false for Cancel / Escape. */
export function confirmDialog({ title, text, confirm = 'OK', danger = true }) {
  return new Promise((resolve) => {
    let answer = false;
    const titleId = `confirm-${Date.now()}`;
    const yes = libButton(confirm, { variant: danger ? 'danger' : 'primary', icon: danger ? 'trash' : undefined,
      onClick: () => { answer = true; dialog.close(); } });
    const no = libButton('Cancel', { variant: 'ghost', onClick: () => dialog.close() });
    const dialog = el('dialog', { class: 'lib-dialog', 'aria-labelledby': titleId },
      el('h2', { class: 'lib-dialog-title', id: titleId }, title),
      text && el('p', { class: 'lib-dialog-text' }, text),
      el('div', { class: 'lib-dialog-actions' }, no, yes));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus(); // the safe answer is the default
  });
}
