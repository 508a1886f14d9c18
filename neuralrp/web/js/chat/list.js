/**
 * The chat list pane: "New chat", a search box, the sort order (recent activity, newest, name) and a character
 * filter ("Seraphina's chats"), then every matching chat with its first character's picture, name, message count
 * and last activity. "Deleted chats" at the bottom lists the deleted ones instead, each with Restore. The filter
 * lives in the page (kept while you move between chats) and can be set by the route
 * '#/chat?character=ID'.
 */

import { get, post } from '../api.js';
import { memberAvatar } from '../avatar.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { actionButton } from './icons.js';
import { timeAgo } from './time.js';

const SEARCH_DELAY_MS = 250;
const SORTS = [['recent', 'Recent'], ['created', 'Newest'], ['name', 'Name']];
/** What the list shows, kept while the user moves between chats (deleted: the deleted chats instead). */
const filter = { q: '', sort: 'recent', character: null, deleted: false };

/** The name shown for a chat: its title, else its cast, else "Chat N" (the server names forks the same way). */
export function chatName(chat) {
  const castNames = Array.isArray(chat.cast) ? chat.cast.map((c) => c.name).join(', ') : chat.cast_names;
  return (chat.title ?? '').trim() || castNames || `Chat ${chat.id}`;
}

/** "1 message", "12 messages". */
export function messageCount(n) {
  const count = Number(n) || 0;
  return `${count} message${count === 1 ? '' : 's'}`;
}

/** One row of the list, a link to the chat. */
function chatRow(chat, currentId) {
  const current = chat.id === currentId;
  const name = chatName(chat);
  const picture = { name: chat.title ? name : (chat.cast_names ?? name).split(', ')[0], ...chat.avatar };
  return el('li', {},
    el('a', { class: ['chat-item', current && 'is-current'], href: href('chat', chat.id),
      'aria-current': current ? 'page' : null, dataset: { chatId: chat.id } },
    memberAvatar(picture, 'chat-item-avatar'),
    el('span', { class: 'chat-item-text' },
      el('span', { class: 'chat-item-name' }, name),
      el('span', { class: 'chat-item-meta' },
        chat.title && chat.cast_names ? `${chat.cast_names} · ` : '', messageCount(chat.message_count))),
    el('time', { class: 'chat-item-time', datetime: chat.last_activity_at ?? '' }, timeAgo(chat.last_activity_at))));
}

/** A deleted chat: its name and when it was deleted, with Restore (onRestored(chat) after it worked). */
function deletedRow(chat, onRestored) {
  const restore = el('button', { type: 'button', class: 'btn btn-secondary btn-small chat-restore',
    'aria-label': `Restore ${chatName(chat)}`, on: { click: async () => {
      restore.disabled = true;
      try {
        onRestored(await post(`/api/chats/${chat.id}/restore`, {}));
      } catch {
        restore.disabled = false; // the toast told why
      }
    } } }, 'Restore');
  return el('li', { class: 'chat-item chat-item-deleted', dataset: { chatId: chat.id } },
    el('span', { class: 'chat-item-text' },
      el('span', { class: 'chat-item-name' }, chatName(chat)),
      el('span', { class: 'chat-item-meta' },
        `Deleted ${timeAgo(chat.deleted_at)} · ${messageCount(chat.message_count)}`)),
    restore);
}

/** The search box, sort select and character select above the list; onChange() after any of them changes. */
function listTools(onChange, signal) {
  const search = el('input', { type: 'search', class: 'input chat-list-search', value: filter.q,
    placeholder: 'Search chats…', 'aria-label': 'Search chats', autocomplete: 'off', enterkeyhint: 'search' });
  const sort = el('select', { class: 'input chat-list-sort', 'aria-label': 'Sort chats' },
    SORTS.map(([value, label]) => el('option', { value, selected: value === filter.sort }, label)));
  const who = el('select', { class: 'input chat-list-character', 'aria-label': 'Chats with' },
    el('option', { value: '' }, 'All characters'));
  let timer = 0;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => { filter.q = search.value.trim(); onChange(); }, SEARCH_DELAY_MS);
  });
  sort.addEventListener('change', () => { filter.sort = sort.value; onChange(); });
  who.addEventListener('change', () => { filter.character = who.value ? Number(who.value) : null; onChange(); });
  signal?.addEventListener('abort', () => clearTimeout(timer));
  get('/api/characters', { signal, quiet: true }).then((characters) => {
    who.append(...(characters ?? []).map((c) => el('option', { value: String(c.id) }, c.name)));
    who.value = filter.character === null ? '' : String(filter.character);
  }).catch(() => {}); // the list still works unfiltered; the failure shows where the list loads
  return el('div', { class: 'chat-list-tools' }, search, el('div', { class: 'chat-list-selects' }, sort, who));
}

/**
 * Build the pane. `heading` is the tag of its title ('h1' when no chat is open); `character` (an id) filters the
 * list to that character's chats. onNew() runs on "New chat". Returns {node, load()}; load() fetches and redraws.
 */
export function createChatList({ currentId = null, heading = 'h2', onNew, signal, character = null }) {
  if (character !== null) filter.character = character;
  const list = el('ul', { class: 'chat-items', 'aria-label': 'Chats' });
  let seq = 0;
  const trash = el('button', { type: 'button', class: 'btn btn-ghost btn-small chat-list-deleted',
    'aria-pressed': String(filter.deleted), on: { click: () => {
      filter.deleted = !filter.deleted;
      trash.setAttribute('aria-pressed', String(filter.deleted));
      load();
    } } }, 'Deleted chats');
  const node = el('aside', { class: 'chat-list-pane', 'aria-label': 'Chat list' },
    el('div', { class: 'chat-list-head' },
      el(heading, { class: 'chat-list-title' }, 'Chat'),
      actionButton('New chat', { variant: 'primary', icon: 'plus', small: true, onClick: () => onNew() })),
    listTools(() => load(), signal),
    list,
    el('div', { class: 'chat-list-foot' }, trash));

  /** What to say when nothing is listed. */
  function empty() {
    if (filter.deleted) {
      return el('li', { class: 'chat-list-empty' }, el('p', { class: 'chat-list-empty-title' }, 'No deleted chats'),
        el('p', { class: 'chat-list-note' }, 'A deleted chat waits here until retention purges it.'));
    }
    const filtered = filter.q || filter.character !== null;
    return el('li', { class: 'chat-list-empty' },
      el('p', { class: 'chat-list-empty-title' }, filtered ? 'No chats match' : 'No chats yet'),
      el('p', { class: 'chat-list-note' }, filtered ? 'Try other words, or All characters.'
        : 'Start one with New chat: pick a character or paste a card.'));
  }

  /** Fetch the chats for the current filter and redraw the list. */
  async function load() {
    const mine = (seq += 1);
    let chats;
    try {
      chats = await get('/api/chats', { signal, quiet: true,
        query: { q: filter.q || null, sort: filter.sort, character_id: filter.character,
          deleted: filter.deleted || null } });
    } catch (err) {
      if (err?.name !== 'AbortError' && !signal?.aborted && mine === seq) {
        if (err?.status === 404 && filter.character !== null) { filter.character = null; return load(); }
        replace(list, el('li', { class: 'chat-list-note', role: 'alert' }, err?.detail ?? String(err)));
      }
      return [];
    }
    if (signal?.aborted || mine !== seq) return chats;
    const row = filter.deleted ? (c) => deletedRow(c, () => load()) : (c) => chatRow(c, currentId);
    replace(list, chats.length ? chats.map(row) : empty());
    return chats;
  }

  return { node, load };
}
