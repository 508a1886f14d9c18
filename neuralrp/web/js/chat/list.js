/** The chat list pane: a "New chat" button and every chat (title or cast, last activity), newest first. */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { actionButton } from './icons.js';
import { hue } from './messages.js';
import { timeAgo } from './time.js';

/** The name shown for a chat: its title, else its cast, else "Chat #id". */
export function chatName(chat) {
  const castNames = Array.isArray(chat.cast) ? chat.cast.map((c) => c.name).join(', ') : chat.cast_names;
  return chat.title || castNames || `Chat #${chat.id}`;
}

/** One row of the list, a link to the chat. */
function chatRow(chat, currentId) {
  const current = chat.id === currentId;
  const name = chatName(chat);
  return el('li', {},
    el('a', { class: ['chat-item', current && 'is-current'], href: href('chat', chat.id),
      'aria-current': current ? 'page' : null, dataset: { chatId: chat.id } },
    el('span', { class: 'chat-item-avatar', style: { '--hue': hue(name) }, 'aria-hidden': 'true' },
      (Array.from(name)[0] ?? '#').toUpperCase()),
    el('span', { class: 'chat-item-text' },
      el('span', { class: 'chat-item-name' }, name),
      el('span', { class: 'chat-item-meta' },
        chat.title && chat.cast_names ? `${chat.cast_names} · ` : '',
        `${chat.message_count ?? 0} message${chat.message_count === 1 ? '' : 's'}`)),
    el('time', { class: 'chat-item-time', datetime: chat.last_activity_at ?? '' }, timeAgo(chat.last_activity_at))));
}

/**
 * Build the pane. `heading` is the tag of its title ('h1' when no chat is open). onNew() runs on "New chat".
 * Returns {node, load()}; load() fetches GET /api/chats and redraws.
 */
export function createChatList({ currentId = null, heading = 'h2', onNew, signal }) {
  const list = el('ul', { class: 'chat-items', 'aria-label': 'Chats' });
  const node = el('aside', { class: 'chat-list-pane', 'aria-label': 'Chat list' },
    el('div', { class: 'chat-list-head' },
      el(heading, { class: 'chat-list-title' }, 'Chat'),
      actionButton('New chat', { variant: 'primary', icon: 'plus', small: true, onClick: () => onNew() })),
    list);

  /** Fetch the chats and redraw the list. */
  async function load() {
    let chats;
    try {
      chats = await get('/api/chats', { signal, quiet: true });
    } catch (err) {
      if (err?.name !== 'AbortError' && !signal?.aborted) {
        replace(list, el('li', { class: 'chat-list-note', role: 'alert' }, err?.detail ?? String(err)));
      }
      return [];
    }
    if (signal?.aborted) return chats;
    if (!chats.length) {
      replace(list, el('li', { class: 'chat-list-empty' },
        el('p', { class: 'chat-list-empty-title' }, 'No chats yet'),
        el('p', { class: 'chat-list-note' }, 'Start one with New chat: pick a character or paste a card.')));
    } else replace(list, chats.map((c) => chatRow(c, currentId)));
    return chats;
  }

  return { node, load };
}
