/** Fork (Save As): a small dialog asking for the new chat's title, then POST /api/chats/{id}/fork. */

import { post } from '../api.js';
import { el } from '../dom.js';
import { chatName } from './list.js';
import { modalShell } from './summaries.js';

let counter = 0;

/** A one-line preview of the message the fork ends at. */
function preview(msg) {
  const text = String(msg.content ?? '').replace(/\s+/g, ' ').trim();
  return text.length > 140 ? `${text.slice(0, 140)}…` : text;
}

/**
 * Ask for a title and fork chat `chat` up to and including `msg`. Resolves to the new chat, or null when the
 * user cancelled.
 */
export function openForkDialog({ chat, msg }) {
  return new Promise((resolve) => {
    let created = null;
    const id = `fork-title-${(counter += 1)}`;
    const input = el('input', { id, type: 'text', class: 'input', maxlength: 200,
      placeholder: `${chatName(chat)} (fork)` });
    const submit = el('button', { type: 'submit', class: 'btn btn-primary', form: `${id}-form` }, 'Fork');
    const form = el('form', { id: `${id}-form`, class: 'fork-form', on: { submit: (event) => {
      event.preventDefault();
      fork();
    } } },
    el('p', { class: 'fork-intro' }, 'A new chat gets every message up to and including this one; '
      + 'this chat stays as it is.'),
    el('blockquote', { class: 'fork-preview' }, preview(msg)),
    el('div', { class: 'field' }, el('label', { for: id, class: 'field-label' }, 'Title of the new chat'), input,
      el('p', { class: 'field-hint' }, 'Leave empty for the default title.')));
    const shell = modalShell({
      title: 'Fork from here', className: 'fork-dialog', body: form,
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Cancel'), submit],
      onClose: () => resolve(created),
    });

    /** POST the fork and close with the new chat. */
    async function fork() {
      shell.showError(null);
      submit.disabled = true;
      try {
        const title = input.value.trim();
        created = await post(`/api/chats/${chat.id}/fork`, { message_id: msg.id, ...(title ? { title } : {}) },
          { quiet: true });
        shell.dialog.close();
      } catch (err) {
        submit.disabled = false;
        shell.showError(err?.detail ?? String(err));
      }
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    input.focus();
  });
}
