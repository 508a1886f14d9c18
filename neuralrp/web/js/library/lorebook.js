/** The card editor's "Lorebook" section: the linked world's entries at a glance, with a link to its editor. */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { libLink } from './icons.js';

const SHOWN = 40;

/** The title of an entry: its comment, else its keys, else "Untitled entry". */
export function entryTitle(entry) {
  return (entry.comment ?? '').trim() || (entry.keys ?? []).join(', ') || 'Untitled entry';
}

/** One entry row: title, keys, flags, and the start of its content. */
function entryRow(e) {
  return el('li', { class: ['lib-lore-item', e.enabled === false && 'is-off'] },
    el('div', { class: 'lib-lore-head' },
      el('span', { class: 'lib-lore-title' }, entryTitle(e)),
      e.constant && el('span', { class: 'lib-flag' }, 'Constant'),
      e.canon_law && el('span', { class: 'lib-flag lib-flag-accent' }, 'Canon law'),
      e.enabled === false && el('span', { class: 'lib-flag lib-flag-muted' }, 'Disabled')),
    (e.comment ?? '').trim() && (e.keys ?? []).length > 0 // a title made of the keys is not repeated
      && el('p', { class: 'lib-lore-keys' }, e.keys.join(' · ')),
    e.content && el('p', { class: 'lib-lore-content' }, e.content));
}

/** Fill `node` with the lorebook of a character whose world id is `worldId` (null: none linked). */
export async function renderLorebook(node, worldId, { signal }) {
  const title = el('h2', { class: 'lib-section-title', id: 'lib-sec-lorebook' }, 'Lorebook');
  node.setAttribute('aria-labelledby', 'lib-sec-lorebook');
  if (worldId === null || worldId === undefined) {
    replace(node, title, el('p', { class: 'lib-hint' }, 'No lorebook is linked to this character. A card with an '
      + 'embedded character book gets one on import.'));
    return;
  }
  replace(node, title, el('p', { class: 'lib-hint' }, 'Loading the lorebook…'));
  let world;
  try {
    world = await get(`/api/worlds/${worldId}`, { signal, quiet: true });
  } catch (err) {
    if (err?.name === 'AbortError' || signal.aborted) return;
    replace(node, title, el('p', { class: 'lib-error' }, err?.detail ?? String(err)));
    return;
  }
  if (signal.aborted) return;
  const entries = world.entries ?? [];
  const rest = entries.length - SHOWN;
  replace(node,
    el('div', { class: 'lib-section-head' }, title,
      libLink('Open in world editor', href('library', 'world', world.id), { icon: 'book', small: true })),
    el('p', { class: 'lib-hint' }, `${world.name} · ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}`),
    entries.length
      ? el('ul', { class: 'lib-lore', 'aria-label': 'Lorebook entries' }, entries.slice(0, SHOWN).map(entryRow))
      : el('p', { class: 'lib-hint' }, 'This lorebook has no entries yet.'),
    rest > 0 && el('p', { class: 'lib-hint' }, `and ${rest} more in the world editor.`));
}
