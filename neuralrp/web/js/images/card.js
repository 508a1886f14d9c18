/**
 * One gallery card: thumbnail (opens the lightbox), favourite star, prompt, tags (editable), "Open chat",
 * Recreate, Inpaint, Delete (with confirmation) and the generation details.
 */

import { del, patch } from '../api.js';
import { el, replace } from '../dom.js';
import { confirmDialog } from '../library/confirm.js';
import { toast } from '../toast.js';
import { altText, announce, detailList, favoriteButton, imgIcon, jumpHref, sourceLabel, uid } from './common.js';
import { openInpaint } from './inpaint.js';
import { openLightbox, recreateImage } from './lightbox.js';

/** Split "a, b ,c" into trimmed, unique, non-empty tags. */
function splitTags(text) {
  return [...new Set(String(text).split(',').map((t) => t.trim()).filter(Boolean))];
}

/** A card action button. */
function action(text, iconName, onClick, variant = 'ghost') {
  return el('button', { type: 'button', class: ['btn', `btn-${variant}`, 'btn-small', 'img-card-action'],
    on: { click: onClick } }, imgIcon(iconName, { size: 16 }), el('span', {}, text));
}

/** The tags row: chips plus "Edit tags", which turns into a comma-separated input with Save / Cancel. */
function tagsEditor(image, { onSaved }) {
  const node = el('div', { class: 'img-card-tags' });

  /** The read-only chips. */
  function show() {
    replace(node, el('ul', { class: 'img-tags', 'aria-label': 'Tags' },
      image.tags.map((t) => el('li', { class: 'img-tag' }, t))),
    el('button', { type: 'button', class: 'btn btn-ghost btn-small img-tags-edit',
      'aria-label': `Edit tags of image ${image.id}`, on: { click: edit } }, image.tags.length ? 'Edit tags' : 'Add tags'));
  }

  /** The input form. */
  function edit() {
    const input = el('input', { class: 'input img-tags-input', id: uid('tags'), value: image.tags.join(', '),
      placeholder: 'cozy, tavern, night', autocomplete: 'off' });
    const form = el('form', { class: 'img-tags-form', on: { submit: (e) => { e.preventDefault(); save(input.value); },
      keydown: (e) => { if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); show(); } } } },
    el('label', { class: 'sr-only', for: input.id }, `Tags of image ${image.id}, comma separated`), input,
    el('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Save tags'),
    el('button', { type: 'button', class: 'btn btn-ghost btn-small', on: { click: show } }, 'Cancel'));
    replace(node, form);
    input.focus();
  }

  /** PATCH the tags. */
  async function save(text) {
    try {
      const updated = await patch(`/api/images/${image.id}`, { tags: splitTags(text) });
      Object.assign(image, updated);
      announce('updated', updated);
      onSaved(updated);
      show();
      node.querySelector('button')?.focus();
    } catch {
      /* the toast told why */
    }
  }

  show();
  return node;
}

/**
 * galleryCard(image, {progress, onDeleted, onTagsChanged}) -> <li>. `progress` shows a recreate running.
 */
export function galleryCard(image, { progress, onDeleted = () => {}, onTagsChanged = () => {} }) {
  const jump = jumpHref(image);
  const date = image.created_at ? new Date(image.created_at) : null;
  const node = el('li', { class: ['img-card', image.favorite && 'is-fav'], dataset: { imageId: image.id } },
    el('button', { type: 'button', class: 'img-card-thumb', 'aria-label': `Open image ${image.id}`,
      on: { click: () => openLightbox(image) } },
    el('img', { src: image.thumb_url || image.url, alt: altText(image), loading: 'lazy' })),
    el('div', { class: 'img-card-body' },
      el('div', { class: 'img-card-top' },
        el('span', { class: 'img-card-source' }, sourceLabel(image)),
        date && el('time', { class: 'img-card-date', datetime: image.created_at }, date.toLocaleString()),
        favoriteButton(image, { onToggle: (u) => node.classList.toggle('is-fav', Boolean(u.favorite)) })),
      el('p', { class: 'img-card-prompt', title: image.prompt }, image.prompt || '(no prompt)'),
      tagsEditor(image, { onSaved: onTagsChanged }),
      el('div', { class: 'img-card-actions' },
        jump && el('a', { class: 'btn btn-ghost btn-small img-card-action', href: jump },
          imgIcon('link', { size: 16 }), el('span', {}, 'Open chat')),
        action('Recreate', 'redo', () => recreate()),
        action('Inpaint', 'brush', () => openInpaint(image)),
        action('Delete', 'trash', () => remove())),
      el('details', { class: 'img-card-details' }, el('summary', {}, 'Details'), detailList(image))));

  /** Make the image again; the gallery adds the new card when it is announced. */
  async function recreate() {
    try {
      await recreateImage(image, progress);
      toast('Recreated the image.', { kind: 'success' });
    } catch (err) {
      toast(err?.detail ?? String(err), { kind: 'error' });
    }
  }

  /** Ask, then delete the image and its file. */
  async function remove() {
    const ok = await confirmDialog({ title: 'Delete this image?', confirm: 'Delete',
      text: 'The image file and its settings are removed. This cannot be undone.' });
    if (!ok) return;
    try {
      await del(`/api/images/${image.id}`);
      announce('deleted', image);
      onDeleted(image);
    } catch {
      /* the toast told why */
    }
  }

  return node;
}
