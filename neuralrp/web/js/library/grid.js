/** The character grid: one portrait card per character (lazy avatar, name, creator, up to 3 tags). */

import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { uid } from './form.js';

const MAX_TAGS = 3;

/** The avatar URL with a version suffix, so an edited card does not show a cached picture. */
export function avatarSrc(character) {
  const base = character.avatar_url || `/api/characters/${character.id}/avatar`;
  const version = character.updated_at ? encodeURIComponent(character.updated_at) : '';
  return version ? `${base}${base.includes('?') ? '&' : '?'}v=${version}` : base;
}

/** Up to two initials for the fallback tile: "Chiharu Yamada" -> "CY". */
export function initials(name) {
  const words = String(name ?? '').trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[1][0] : [...(words[0] ?? '?')].slice(0, 2).join('')).toUpperCase();
}

/** A lazy <img> for a character's avatar that falls back to an initials tile if it cannot load. */
export function avatar(character, { className = 'lib-avatar', eager = false } = {}) {
  const img = el('img', {
    class: className, src: avatarSrc(character), alt: `Avatar of ${character.name}`,
    loading: eager ? 'eager' : 'lazy', decoding: 'async', width: 400, height: 600, draggable: 'false',
  });
  img.addEventListener('error', () => {
    img.replaceWith(el('div', { class: [className, 'lib-avatar-fallback'], role: 'img',
      'aria-label': `Avatar of ${character.name}` }, initials(character.name)));
  }, { once: true });
  return img;
}

/** One card in the grid: a link to the character's editor. */
function characterCard(c) {
  const nameId = uid('char-name');
  const metaId = uid('char-meta');
  const tags = (c.tags ?? []).slice(0, MAX_TAGS);
  const more = (c.tags ?? []).length - tags.length;
  return el('li', { class: 'lib-grid-item' },
    el('a', {
      class: 'lib-card', href: href('library', 'character', c.id), dataset: { characterId: c.id, name: c.name },
      'aria-labelledby': nameId, 'aria-describedby': metaId,
    },
    el('div', { class: 'lib-card-art' }, avatar(c)),
    el('div', { class: 'lib-card-body' },
      el('h3', { class: 'lib-card-name', id: nameId }, c.name),
      el('div', { id: metaId, class: 'lib-card-meta' },
        el('p', { class: 'lib-card-creator' }, c.creator ? `by ${c.creator}` : 'Unknown creator'),
        tags.length > 0 && el('ul', { class: 'lib-card-tags', 'aria-label': 'Tags' },
          tags.map((t) => el('li', { class: 'lib-tag' }, t)),
          more > 0 && el('li', { class: 'lib-tag lib-tag-more' }, `+${more}`))))));
}

/** Fill `root` with the grid for these characters. */
export function renderGrid(root, characters) {
  replace(root, el('ul', { class: 'lib-grid', 'aria-label': 'Characters' }, characters.map(characterCard)));
}
