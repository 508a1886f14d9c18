/**
 * Images view: the gallery of every generated image, newest first with "Load more", a Favourites filter and a tag
 * filter (GET /api/images/tags). Each card can be favourited, tagged, recreated, inpainted, deleted, opened large
 * or followed back to its chat message. When no image server is set up, how to enable one is shown on top.
 */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { icon } from '../icons.js';
import { galleryCard } from '../images/card.js';
import { imageStatus, imgIcon, onImageChange } from '../images/common.js';
import { createProgress } from '../images/progress.js';
import { button, emptyState, errorState, loading, pageHeader } from '../ui.js';

const PAGE = 48;

/** The notice above the gallery when images are not configured or the server is unreachable. */
function statusNotice(status) {
  if (status.configured && status.reachable !== false) return null;
  const title = status.configured ? 'The image server is not reachable' : 'Image generation is not set up';
  return el('section', { class: ['img-setup', status.configured ? 'is-warn' : 'is-off'], role: 'status',
    'aria-label': 'Image server' },
  el('h2', { class: 'img-setup-title' }, icon('images', { size: 18 }), el('span', {}, title)),
  status.detail && el('p', { class: 'img-setup-detail' }, status.detail),
  status.how_to_enable && el('p', { class: 'img-setup-how' }, status.how_to_enable));
}

export default {
  name: 'images',
  title: 'Images',
  /** Render the gallery into root. */
  render(root, { signal }) {
    const state = { favorite: false, tag: null, before: null, images: [] };
    const progress = createProgress({ label: 'Recreating' });
    const notice = el('div', { class: 'img-notice-slot' });
    const favToggle = el('button', { type: 'button', class: 'btn btn-secondary btn-small img-filter-fav',
      'aria-pressed': 'false', on: { click: () => setFilter({ favorite: !state.favorite }) } },
    imgIcon('star', { size: 16 }), el('span', {}, 'Favourites'));
    const tagChips = el('div', { class: 'lib-chips img-tag-filter', role: 'group', 'aria-label': 'Filter by tag' });
    const grid = el('ul', { class: 'img-grid', 'aria-label': 'Images' });
    const more = el('button', { type: 'button', class: 'btn btn-secondary img-more', hidden: true,
      on: { click: () => loadPage() } }, 'Load more');
    const body = el('div', { class: 'img-gallery' }, loading('Loading images…'));
    root.append(
      pageHeader({ title: 'Images', subtitle: 'Every generated image, with the prompt and settings that made it.',
        actions: [button('Refresh', { icon: 'refresh', onClick: () => reload() })] }),
      notice,
      el('div', { class: 'img-toolbar' }, favToggle, tagChips),
      progress.node, body);

    /** A card for `image` wired to this view. */
    const card = (image) => galleryCard(image, { progress, onDeleted: () => {}, onTagsChanged: () => loadTags() });

    /** True when `image` passes the current filters. */
    const matches = (image) => (!state.favorite || image.favorite) && (!state.tag || image.tags.includes(state.tag));

    /** Change a filter and load again. */
    function setFilter(change) {
      Object.assign(state, change);
      favToggle.setAttribute('aria-pressed', String(state.favorite));
      loadTags();
      reload();
    }

    /** Draw the grid or the empty state. */
    function draw() {
      if (state.images.length) {
        if (grid.parentNode !== body) replace(body, grid, more);
      } else {
        const filtered = state.favorite || state.tag;
        replace(body, emptyState({ icon: 'images', title: filtered ? 'No images match' : 'No images yet',
          text: filtered ? 'Try another filter.' : 'Images you generate from a chat, as snapshots or from the image '
            + 'panel, are kept here.' }));
      }
    }

    /** Fetch the next page (or the first, after reload()). */
    async function loadPage() {
      more.disabled = true;
      try {
        const data = await get('/api/images', { signal, quiet: true, query: { limit: PAGE,
          before_id: state.before, favorite: state.favorite ? 'true' : null, tag: state.tag } });
        if (signal.aborted) return;
        const fresh = (data.images ?? []).filter((i) => !state.images.some((x) => x.id === i.id));
        state.images.push(...fresh);
        grid.append(...fresh.map(card));
        state.before = data.next_before_id ?? null;
        more.hidden = state.before === null;
        draw();
      } catch (err) {
        if (err?.name === 'AbortError' || signal.aborted) return;
        replace(body, errorState(err?.detail ?? String(err), { retry: () => reload() }));
      } finally {
        more.disabled = false;
      }
    }

    /** Start over from the newest image. */
    function reload() {
      state.before = null;
      state.images = [];
      replace(grid);
      return loadPage();
    }

    /** The tag chips (single choice). */
    async function loadTags() {
      let tags = [];
      try {
        tags = (await get('/api/images/tags', { signal, quiet: true })) ?? [];
      } catch {
        if (signal.aborted) return;
      }
      if (state.tag && !tags.some((t) => t.name === state.tag)) tags.push({ name: state.tag, count: 0 });
      replace(tagChips, tags.map((t) => el('button', { type: 'button', class: ['lib-chip', state.tag === t.name && 'is-on'],
        'aria-pressed': String(state.tag === t.name), dataset: { tag: t.name },
        on: { click: () => setFilter({ tag: state.tag === t.name ? null : t.name }) } },
      el('span', {}, t.name), el('span', { class: 'lib-chip-count' }, String(t.count)))));
    }

    /** Keep the grid in step with changes made anywhere (recreate, inpaint, favourite, delete). */
    function onChange(kind, image) {
      const index = state.images.findIndex((i) => i.id === image.id);
      const node = grid.querySelector(`[data-image-id="${image.id}"]`);
      if (kind === 'deleted' || (kind === 'updated' && !matches(image))) {
        if (index >= 0) state.images.splice(index, 1);
        node?.remove();
      } else if (kind === 'created' && index < 0 && matches(image)) {
        state.images.unshift(image);
        grid.prepend(card(image));
      } else if (kind === 'updated' && index >= 0) {
        state.images[index] = image;
      }
      draw();
    }

    const stop = onImageChange(onChange);
    imageStatus({ fresh: true }).then((status) => { if (!signal.aborted) replace(notice, statusNotice(status)); });
    loadTags();
    reload();
    return () => stop();
  },
};
