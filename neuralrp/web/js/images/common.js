/**
 * Shared pieces of the image features: the image server's status and options (cached briefly), the icons,
 * an image's detail list, its chat jump link, a change event other views listen to, and small form helpers.
 */

import { get, patch } from '../api.js';
import { el } from '../dom.js';
import { iconSet } from '../icons.js';

const CACHE_MS = 20_000;
const cache = new Map(); // path -> {at, promise}
let counter = 0;

/** Extra line icons of the image features (same 24x24 style as ../icons.js). */
export const imgIcon = iconSet({
  star: ['M12 3.5l2.6 5.4 5.9.8-4.3 4.1 1 5.8L12 16.9l-5.2 2.7 1-5.8-4.3-4.1 5.9-.8z'],
  camera: ['M4 8h3l1.5-2.5h7L17 8h3a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1z',
    'M12 16.5a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z'],
  brush: ['M14.5 4.5l5 5-8 8-5-5z', 'M6.5 12.5l-2 6.5 6.5-2'],
  eraser: ['M8 20h12', 'M4.5 15.5l9-9a2 2 0 0 1 2.8 0l2.2 2.2a2 2 0 0 1 0 2.8L11 19H8z', 'M9 11l5 5'],
  trash: ['M4.5 7h15', 'M9.5 7V4.5h5V7', 'M6.5 7l1 13h9l1-13'],
  wand: ['M4 20l11-11', 'M14 4v3M12.5 5.5h3M19 9v3M17.5 10.5h3M18 3.5v1.5'],
  redo: ['M20 11a8 8 0 1 0-2.3 5.7', 'M20 4v7h-7'],
  undo: ['M9 7L4.5 11.5 9 16', 'M4.5 11.5H15a4.5 4.5 0 0 1 0 9h-2'],
  link: ['M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1', 'M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1'],
  panel: ['M4 4.5h16v15H4z', 'M14 4.5v15', 'M16.5 8.5h1.5M16.5 11.5h1.5'],
  stop: ['M7 7h10v10H7z'],
  close: ['M6 6l12 12M18 6L6 18'],
});

/** A unique DOM id. */
export function uid(prefix = 'img') {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** GET a path once per CACHE_MS (quiet); `fresh` skips the cache. A failure is not cached. */
function cached(path, { fresh = false } = {}) {
  const hit = cache.get(path);
  if (!fresh && hit && Date.now() - hit.at < CACHE_MS) return hit.promise;
  const promise = get(path, { quiet: true });
  cache.set(path, { at: Date.now(), promise });
  promise.catch(() => cache.delete(path));
  return promise;
}

/** The image server status ({configured, reachable, backend, model, detail, how_to_enable}); never throws. */
export async function imageStatus(options = {}) {
  try {
    return await cached('/api/images/status', options);
  } catch (err) {
    return { configured: false, reachable: false, backend: null, model: null, detail: err?.detail ?? String(err),
      how_to_enable: '' };
  }
}

/** The generation options (samplers, size presets, defaults), or null with `error` set when unavailable. */
export async function imageOptions(options = {}) {
  try {
    return await cached('/api/images/options', options);
  } catch (err) {
    return { error: err?.detail ?? String(err), samplers: [], schedulers: [], models: [], size_presets: [],
      defaults: {} };
  }
}

/** Tell every open view that an image was created, changed or deleted: kind 'created'|'updated'|'deleted'. */
export function announce(kind, image) {
  document.dispatchEvent(new CustomEvent('neuralrp:image', { detail: { kind, image } }));
}

/** Listen for announce(); returns a function that stops listening. */
export function onImageChange(fn) {
  const handler = (event) => fn(event.detail.kind, event.detail.image);
  document.addEventListener('neuralrp:image', handler);
  return () => document.removeEventListener('neuralrp:image', handler);
}

/** The chat jump link of an image (its source message), or null when it belongs to no chat. */
export function jumpHref(image) {
  if (image.chat_id === null || image.chat_id === undefined) return null;
  const query = new URLSearchParams();
  if (image.message_seq !== null && image.message_seq !== undefined) query.set('seq', String(image.message_seq));
  if (image.message_id !== null && image.message_id !== undefined) query.set('message', String(image.message_id));
  const qs = query.toString();
  return `#/chat/${encodeURIComponent(image.chat_id)}${qs ? `?${qs}` : ''}`;
}

/** A short human label of where an image came from. */
export function sourceLabel(image) {
  return { snapshot: 'Snapshot', manual: 'Image panel', inpaint: 'Inpainted', recreate: 'Recreated' }[image.source]
    ?? String(image.source ?? 'Image');
}

/** The alt text of an image: its source and the start of its prompt. */
export function altText(image) {
  const prompt = String(image.prompt ?? '').trim();
  return `${sourceLabel(image)} image${prompt ? `: ${prompt.slice(0, 120)}` : ''}`;
}

/** [term, value] pairs describing how an image was made. */
export function detailPairs(image) {
  const sampler = [image.sampler, image.scheduler].filter(Boolean).join(' · ');
  const size = image.width && image.height ? `${image.width} × ${image.height}` : null;
  return [
    ['Prompt', image.prompt || '—'],
    ['Negative', image.negative_prompt || '—'],
    ['Seed', image.seed ?? '—'],
    ['Sampler', sampler || '—'],
    ['Steps', image.steps ?? '—'],
    ['CFG', image.cfg_scale ?? '—'],
    ['Size', size ?? '—'],
    ['Model', image.model || '—'],
    ['Preset', image.preset || 'none'],
    ['Made', [sourceLabel(image), image.created_at ? new Date(image.created_at).toLocaleString() : null]
      .filter(Boolean).join(' · ')],
  ];
}

/** The details as a definition list. */
export function detailList(image) {
  return el('dl', { class: 'img-facts' }, detailPairs(image).map(([term, value]) => el('div', {
    class: ['img-fact', (term === 'Prompt' || term === 'Negative') && 'img-fact-wide'] },
  el('dt', {}, term), el('dd', {}, String(value)))));
}

/** PATCH the favourite flag; resolves to the updated image and announces it. */
export async function setFavorite(image, favorite, { signal } = {}) {
  const updated = await patch(`/api/images/${image.id}`, { favorite }, { signal });
  announce('updated', updated);
  return updated;
}

/** A star toggle button (aria-pressed, named "Favourite") for an image; onToggle(image) gets the updated image. */
export function favoriteButton(image, { onToggle = () => {}, small = true, signal, text = null } = {}) {
  const button = el('button', { type: 'button', class: ['btn', 'btn-ghost', small && 'btn-small', 'img-fav'],
    'aria-pressed': String(Boolean(image.favorite)), 'aria-label': 'Favourite',
    title: image.favorite ? 'Remove from favourites' : 'Add to favourites',
    on: { click: async () => {
      button.disabled = true;
      try {
        const updated = await setFavorite(image, !image.favorite, { signal });
        Object.assign(image, updated);
        button.setAttribute('aria-pressed', String(Boolean(updated.favorite)));
        button.title = updated.favorite ? 'Remove from favourites' : 'Add to favourites';
        onToggle(updated);
      } catch {
        /* the toast told why */
      } finally {
        button.disabled = false;
      }
    } } }, imgIcon('star', { size: 17 }), text && el('span', {}, text));
  return button;
}

/** A labelled form field: field('Steps', input, {hint, className}). */
export function field(label, control, { hint, className } = {}) {
  if (!control.id) control.id = uid('imgf');
  const hintNode = hint && el('p', { class: 'field-hint', id: `${control.id}-hint` }, hint);
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return el('div', { class: ['field', className] }, el('label', { class: 'field-label', for: control.id }, label),
    control, hintNode);
}

/** A number input: numberInput(value, {min, max, step, name}). */
export function numberInput(value, { min, max, step = 'any', name } = {}) {
  return el('input', { class: 'input', type: 'number', name, min, max, step, inputmode: 'decimal',
    value: value === null || value === undefined ? '' : String(value) });
}

/** A number read from an input, or undefined when empty/invalid. */
export function readNumber(input) {
  const n = input.valueAsNumber;
  return Number.isFinite(n) ? n : undefined;
}

/** A <select> of names with an optional leading "default" option. */
export function nameSelect(names, value, { name, defaultLabel } = {}) {
  const options = [...new Set([...(names ?? []), ...(value ? [value] : [])])];
  return el('select', { class: 'input', name },
    defaultLabel && el('option', { value: '' }, defaultLabel),
    options.map((n) => el('option', { value: n, selected: n === value }, n)));
}
