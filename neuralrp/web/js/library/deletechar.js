/**
 * Deleting a character: a modal that says what happens, and for a character in chats asks what to do with
 * them (keep them without the character, or delete them too: they stay restorable from the chat list's
 * "Deleted chats" until retention purges them). DELETE /api/characters/{id}?chats=keep|delete.
 */

import { del, get } from '../api.js';
import { el } from '../dom.js';
import { libButton } from './icons.js';

let counter = 0;

/** The dialog; resolves to 'keep' | 'delete' (for a character in chats), 'none' (in none) or null (cancelled). */
function ask(character, chatCount) {
  return new Promise((resolve) => {
    let answer = null;
    const n = (counter += 1);
    const titleId = `delchar-${n}`;
    const chats = `${chatCount} ${chatCount === 1 ? 'chat' : 'chats'}`;
    const option = (value, label, hint, checked) => el('label', { class: 'lib-check lib-choice' },
      el('input', { type: 'radio', name: `delchar-chats-${n}`, value, checked }),
      el('span', {}, el('strong', {}, label), el('span', { class: 'lib-hint' }, hint)));
    const choices = chatCount > 0 && el('fieldset', { class: 'lib-choices' },
      el('legend', { class: 'lib-label' }, `${character.name} is in ${chats}`),
      option('keep', `Keep the ${chats}`, `${character.name} leaves their cast; the messages stay.`, true),
      option('delete', `Delete the ${chats} too`, 'You can restore them from Deleted chats in the chat list.',
        false));
    const yes = libButton('Delete', { variant: 'danger', icon: 'trash', onClick: () => {
      answer = chatCount > 0 ? dialog.querySelector('input[type=radio]:checked')?.value ?? 'keep' : 'none';
      dialog.close();
    } });
    const no = libButton('Cancel', { variant: 'ghost', onClick: () => dialog.close() });
    const dialog = el('dialog', { class: 'lib-dialog', 'aria-labelledby': titleId },
      el('h2', { class: 'lib-dialog-title', id: titleId }, `Delete ${character.name}?`),
      el('p', { class: 'lib-dialog-text' }, 'The character and its card leave the library (change history keeps the '
        + 'card). Worlds and other characters stay.'),
      choices,
      el('div', { class: 'lib-dialog-actions' }, no, yes));
    dialog.addEventListener('close', () => { dialog.remove(); resolve(answer); });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/**
 * Ask, then delete `character`; resolves to what was done ('keep' | 'delete' | 'none') or null when cancelled.
 * A refusal throws the API error (its sentence says why).
 */
export async function deleteCharacter(character, { signal } = {}) {
  let chats = [];
  try {
    chats = (await get('/api/chats', { signal, quiet: true, query: { character_id: character.id } })) ?? [];
  } catch (err) {
    if (err?.name === 'AbortError') return null;
  }
  const choice = await ask(character, chats.length);
  if (!choice || signal?.aborted) return null;
  await del(`/api/characters/${character.id}`, { quiet: true,
    query: choice === 'none' ? undefined : { chats: choice } });
  return choice;
}
