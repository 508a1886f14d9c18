/**
 * Round (or rounded-square) character pictures for messages, the chat list, the Cast panel and the New chat
 * dialog: the character's avatar image when the card has one, else a coloured tile with the initial.
 * A picture that fails to load falls back to the tile too. Names are only ever text (alt / tile letter).
 */

import { el } from './dom.js';

/** A stable hue (0-359) for a name's tile. */
export function hue(name) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** The first letter of a name, upper-cased ('?' for an empty name). */
export function initial(name) {
  return (Array.from(String(name ?? '').trim())[0] ?? '?').toUpperCase();
}

/** The coloured tile with the initial. */
function tile(name, className) {
  return el('span', { class: ['avatar', 'avatar-tile', className], style: { '--hue': hue(name) },
    'aria-hidden': 'true' }, initial(name));
}

/**
 * A decorative avatar: avatar({name, url, hasAvatar, className}). With hasAvatar and url it is an <img> in a
 * frame (lazy, no alt text: the name is always shown next to it), else the initial tile.
 */
export function avatar({ name, url = null, hasAvatar = false, className = '' }) {
  if (!hasAvatar || !url) return tile(name, className);
  const img = el('img', { class: 'avatar-img', src: url, alt: '', loading: 'lazy', decoding: 'async',
    draggable: 'false' });
  const frame = el('span', { class: ['avatar', 'avatar-pic', className], 'aria-hidden': 'true',
    dataset: { name } }, img);
  img.addEventListener('error', () => frame.replaceWith(tile(name, className)), { once: true });
  return frame;
}

/** The avatar of a chat cast member ({name, avatar_url, has_avatar}) or a listed chat's first member. */
export function memberAvatar(member, className = '') {
  return avatar({ name: member?.name ?? '?', url: member?.avatar_url, hasAvatar: Boolean(member?.has_avatar),
    className });
}
