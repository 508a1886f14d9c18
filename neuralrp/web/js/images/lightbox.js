/**
 * The lightbox: one image large, its details, and Favourite, Recreate (POST /api/images/{id}/recreate; the new
 * image replaces the shown one), Inpaint and "Open chat". Used by the gallery and by the chat's thumbnails.
 */

import { post } from '../api.js';
import { el, replace } from '../dom.js';
import { modalShell } from '../chat/summaries.js';
import { altText, announce, detailList, favoriteButton, imgIcon, jumpHref, sourceLabel } from './common.js';
import { openInpaint } from './inpaint.js';
import { createProgress } from './progress.js';

/** POST recreate for `image` (progress shown on `progress`); announces and resolves to the new image. */
export async function recreateImage(image, progress) {
  const request = post(`/api/images/${image.id}/recreate`, {}, { quiet: true });
  const made = await (progress ? progress.track(request) : request);
  announce('created', made);
  return made;
}

/** Open the lightbox on `image`. Resolves when it closes. */
export function openLightbox(image) {
  return new Promise((resolve) => {
    let shown = image;
    let busy = false;
    const progress = createProgress({ label: 'Recreating' });
    const figure = el('figure', { class: 'lightbox-figure' });
    const actions = el('div', { class: 'lightbox-actions' });
    const details = el('div', { class: 'lightbox-details' });
    const leave = () => shell.dialog.close();
    const shell = modalShell({ title: 'Image', className: 'lightbox-dialog',
      body: [figure, progress.node, actions, details],
      onClose: () => { window.removeEventListener('hashchange', leave); resolve(); } });
    window.addEventListener('hashchange', leave);

    /** Show `next` and its actions. */
    function render(next) {
      shown = next;
      replace(figure, el('img', { class: 'lightbox-img', src: next.url, alt: altText(next) }),
        el('figcaption', { class: 'lightbox-caption' }, sourceLabel(next), next.seed !== null && next.seed !== undefined
          ? ` · seed ${next.seed}` : ''));
      const jump = jumpHref(next);
      replace(actions,
        favoriteButton(next, { small: false, text: 'Favourite' }),
        el('button', { type: 'button', class: 'btn btn-secondary', on: { click: () => recreate() } },
          imgIcon('redo', { size: 17 }), el('span', {}, 'Recreate')),
        el('button', { type: 'button', class: 'btn btn-secondary', on: { click: () => inpaint() } },
          imgIcon('brush', { size: 17 }), el('span', {}, 'Inpaint')),
        jump && el('a', { class: 'btn btn-ghost', href: jump, on: { click: () => shell.dialog.close() } },
          imgIcon('link', { size: 17 }), el('span', {}, 'Open chat')));
      replace(details, detailList(next));
    }

    /** Make the image again from its stored request; the new one is shown. */
    async function recreate() {
      if (busy) return;
      busy = true;
      shell.showError(null);
      try {
        render(await recreateImage(shown, progress));
      } catch (err) {
        shell.showError(err?.detail ?? String(err));
      } finally {
        busy = false;
      }
    }

    /** Close and open the inpaint dialog on the shown image. */
    function inpaint() {
      shell.dialog.close();
      openInpaint(shown);
    }

    render(image);
    document.body.append(shell.dialog);
    shell.dialog.showModal();
  });
}
