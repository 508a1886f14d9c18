/**
 * Extras of the character editor's side panel: "Change picture" (POST /api/characters/{id}/avatar; the server
 * writes the picture into the card's PNG file too) and the character's chats (GET /api/chats?character_id=…),
 * newest activity first, each a link, with a link to the full filtered chat list.
 */

import { get, post } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { toast } from '../toast.js';
import { messageCount } from '../chat/list.js';
import { timeAgo } from '../chat/time.js';
import { avatar } from './grid.js';
import { libButton } from './icons.js';

const SHOWN_CHATS = 6;
const PICTURE_TYPES = 'image/png,image/jpeg,image/webp,image/gif';

/**
 * The "Change picture" button and its hidden file input. onChanged(character) gets the server's character after
 * an upload; the editor swaps its picture for the new one.
 */
export function pictureChanger(character, { signal, onChanged }) {
  const input = el('input', { type: 'file', accept: PICTURE_TYPES, class: 'lib-file-input', tabindex: '-1',
    'aria-hidden': 'true' });
  const button = libButton('Change picture', { icon: 'upload', small: true, onClick: () => input.click(),
    attrs: { title: 'Change picture (PNG, JPEG, WebP or GIF)' } });
  button.classList.add('lib-change-picture');
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    const body = new FormData();
    body.append('file', file, file.name);
    button.setAttribute('aria-disabled', 'true');
    button.classList.add('is-busy');
    try {
      const updated = await post(`/api/characters/${character.id}/avatar`, body, { signal });
      toast(`New picture for ${updated.name}.`, { kind: 'success' });
      onChanged(updated);
    } catch {
      // the API layer showed the server's sentence ("photo.bmp: not a picture NeuralRP can read …") as a toast
    } finally {
      button.removeAttribute('aria-disabled');
      button.classList.remove('is-busy');
    }
  });
  return el('div', { class: 'lib-picture-tools' }, button, input);
}

/** Show the character's current picture in the side panel's frame. */
export function showPicture(frame, character) {
  replace(frame, avatar(character, { eager: true }));
}

/** One chat of the character: name, message count and last activity, as a link. */
function chatLink(chat) {
  const name = (chat.title ?? '').trim() || chat.cast_names || `Chat ${chat.id}`;
  return el('li', {}, el('a', { class: 'lib-chat-link', href: href('chat', chat.id), dataset: { chatId: chat.id } },
    el('span', { class: 'lib-chat-name' }, name),
    el('span', { class: 'lib-chat-meta' },
      `${messageCount(chat.message_count)} · ${timeAgo(chat.last_activity_at)}`)));
}

/** The "Chats" block of the side panel for character `character`; fills itself. */
export function characterChats(character, { signal }) {
  const titleId = `lib-chats-${character.id}`;
  const list = el('ul', { class: 'lib-chat-list', 'aria-labelledby': titleId },
    el('li', { class: 'lib-hint' }, 'Loading chats…'));
  const node = el('section', { class: 'lib-editor-chats', 'aria-labelledby': titleId },
    el('h2', { class: 'lib-side-title', id: titleId }, 'Chats'), list);
  get('/api/chats', { signal, quiet: true, query: { character_id: character.id } }).then((chats) => {
    if (signal?.aborted) return;
    if (!chats.length) {
      replace(list, el('li', { class: 'lib-hint' }, `No chats with ${character.name} yet.`));
      return;
    }
    replace(list, chats.slice(0, SHOWN_CHATS).map(chatLink));
    if (chats.length > SHOWN_CHATS || chats.length > 1) {
      list.append(el('li', {}, el('a', { class: 'lib-chat-all', href: href('chat', { character: character.id }) },
        `All ${chats.length} chats with ${character.name}`)));
    }
  }).catch((err) => {
    if (err?.name !== 'AbortError') replace(list, el('li', { class: 'lib-error' }, err?.detail ?? String(err)));
  });
  return node;
}
