/**
 * The Worlds tab: every world (lorebook) with its entry count and who uses it (its card, cards linking it, chats,
 * global), "New world", and import.
 */

import { get, post } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { emptyState, errorState, loading } from '../ui.js';
import { errorLine, textInput } from './form.js';
import { icon, libButton } from './icons.js';

/** "3 entries" / "1 entry". */
export function entryCount(n) {
  const count = Number(n) || 0;
  return `${count} ${count === 1 ? 'entry' : 'entries'}`;
}

/** A date like "25 Nov 2026" from an ISO time, or ''. */
function day(iso) {
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime())
    ? date.toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' }) : '';
}

/** One world row; the name link covers the row, the character link sits above it. */
function worldRow(w) {
  const updated = day(w.updated_at);
  return el('li', { class: 'lib-world', dataset: { worldId: w.id, name: w.name } },
    el('span', { class: 'lib-world-icon' }, icon('globe', { size: 20 })),
    el('div', { class: 'lib-world-text' },
      el('a', { class: 'lib-world-name', href: href('library', 'world', w.id) }, w.name),
      el('p', { class: 'lib-world-meta' },
        el('span', { class: 'lib-world-count' }, entryCount(w.entry_count)),
        updated && el('span', {}, `Updated ${updated}`))),
    w.character_id !== null && w.character_id !== undefined
      ? el('a', { class: 'lib-world-char', href: href('library', 'character', w.character_id) },
        icon('user', { size: 16 }), el('span', {}, w.character_name || `Character ${w.character_id}`))
      : worldUse(w));
}

/** Where a world without an owning card is used: global, linked by cards (extensions.world), chosen by chats. */
function worldUse(w) {
  const uses = [];
  if (w.global) uses.push('Global');
  if (w.linked_characters?.length) uses.push(`Linked: ${w.linked_characters.join(', ')}`);
  if (w.chat_ids?.length) uses.push(`${w.chat_ids.length} ${w.chat_ids.length === 1 ? 'chat' : 'chats'}`);
  return el('span', { class: ['lib-world-char', !uses.length && 'is-none'] }, uses.join(' · ') || 'Not linked');
}

/** The inline "New world" form; creates the world and opens it. */
function newWorldForm({ signal, navigate, onCancel }) {
  const name = textInput('world_name', '', { placeholder: 'World name', attrs: { 'aria-label': 'World name',
    required: true } });
  const problem = errorLine();
  const form = el('form', { class: 'lib-newworld', novalidate: true,
    on: { submit: async (e) => {
      e.preventDefault();
      if (!name.value.trim()) { problem.show('Give the world a name.'); name.focus(); return; }
      try {
        const world = await post('/api/worlds', { name: name.value.trim() }, { quiet: true, signal });
        navigate('library', 'world', world.id);
      } catch (err) {
        if (err?.name !== 'AbortError') problem.show(err?.detail ?? String(err));
      }
    } } },
  name, libButton('Create', { variant: 'primary', type: 'submit', small: true }),
  libButton('Cancel', { variant: 'ghost', small: true, onClick: onCancel }), problem.node);
  queueMicrotask(() => name.focus());
  return form;
}

/** Render the Worlds tab into `body`; returns {reload()}. */
export function worldsTab(body, { signal, navigate, importer }) {
  const list = el('div', { class: 'lib-results-area' }, loading('Loading worlds…'));
  const count = el('p', { class: 'lib-count', role: 'status' });
  const formSlot = el('div', { class: 'lib-newworld-slot' });
  const newButton = libButton('New world', { icon: 'plus', onClick: () => {
    replace(formSlot, newWorldForm({ signal, navigate, onCancel: () => { replace(formSlot); newButton.focus(); } }));
  } });

  /** Fetch and draw the worlds. */
  async function load() {
    try {
      const worlds = (await get('/api/worlds', { signal, quiet: true })) ?? [];
      if (signal.aborted) return;
      count.textContent = `${worlds.length} ${worlds.length === 1 ? 'world' : 'worlds'}`;
      replace(list, worlds.length
        ? el('ul', { class: 'lib-worlds', 'aria-label': 'Worlds' }, worlds.map(worldRow))
        : emptyState({ icon: 'library', title: 'No worlds yet',
          text: 'Worlds (lorebooks) hold lore the model is reminded of when it matters. Import a SillyTavern '
            + 'World Info file, a card with an embedded lorebook, or start a new world.',
          actions: [libButton('New world', { variant: 'primary', icon: 'plus', onClick: () => newButton.click() })] }));
    } catch (err) {
      if (err?.name === 'AbortError' || signal.aborted) return;
      replace(list, errorState(err?.detail ?? String(err), { retry: load }));
    }
  }

  const zone = el('div', { class: 'lib-grid-zone' }, list);
  importer.attachDropZone(zone);
  replace(body, el('div', { class: 'lib-toolbar' }, newButton, count), formSlot, importer.panel, zone);
  load();
  return { reload: load };
}
