/**
 * Images in a chat: the "Snapshot" header tool (POST /api/chats/{id}/snapshot), the "Image panel" tool
 * (images/panel.js), a progress strip while a snapshot runs, and the chat's images (GET /api/images?chat_id=)
 * as small thumbnails under their source message; a thumbnail opens the lightbox.
 */

import { get, post } from '../api.js';
import { el } from '../dom.js';
import { toast } from '../toast.js';
import { altText, announce, imageStatus, imgIcon, onImageChange } from '../images/common.js';
import { openLightbox } from '../images/lightbox.js';
import { createImagePanel } from '../images/panel.js';
import { createProgress } from '../images/progress.js';
import { createLLMProgress } from '../llmtasks.js';
import { toolButton } from './inspector.js';

const PAGE = 100;
const MAX_PAGES = 10;

/** The Snapshot tool button (its icon swapped for the camera). */
function snapshotButton(onClick) {
  const button = toolButton('Snapshot', 'images', onClick, { title: 'Picture the current scene' });
  button.querySelector('svg')?.replaceWith(imgIcon('camera', { size: 17 }));
  return button;
}

/**
 * createChatImages({chatId, signal}) -> {tools, strip, extras(msg), attach(list), load(), setChat(chat)}.
 * `extras` is given to the message list (thumbnails under a message); attach() hands it the list to redraw.
 */
export function createChatImages({ chatId, signal }) {
  const byMessage = new Map(); // message id -> images, oldest first
  let list = null;
  let configured = true;
  const progress = createProgress({ label: 'Taking a snapshot' });
  const panel = createImagePanel({ chatId, signal, lastMessage: () => list?.last() });
  const snap = snapshotButton(() => snapshot());

  /** Add or replace one image in the map and redraw its message. */
  function put(image) {
    if (image.chat_id !== chatId || image.message_id === null || image.message_id === undefined) return;
    const images = (byMessage.get(image.message_id) ?? []).filter((i) => i.id !== image.id);
    images.push(image);
    images.sort((a, b) => a.id - b.id);
    byMessage.set(image.message_id, images);
    list?.redraw(image.message_id);
  }

  /** Drop one image. */
  function drop(image) {
    for (const [messageId, images] of byMessage) {
      if (!images.some((i) => i.id === image.id)) continue;
      byMessage.set(messageId, images.filter((i) => i.id !== image.id));
      list?.redraw(messageId);
    }
  }

  const stop = onImageChange((kind, image) => (kind === 'deleted' ? drop(image) : put(image)));
  signal?.addEventListener('abort', stop, { once: true });

  /** POST the snapshot; the new image shows under the last message. */
  async function snapshot() {
    if (!configured) {
      toast(snap.title, { kind: 'info' });
      return;
    }
    if (progress.busy()) return;
    snap.classList.add('is-busy');
    try {
      const keywords = createLLMProgress({ kinds: ['snapshot'], floating: true }); // the LLM reads the scene first
      const made = await progress.track(keywords.track(post(`/api/chats/${chatId}/snapshot`, {}, { signal })));
      announce('created', made);
      toast('Snapshot saved.', { kind: 'success' });
    } catch {
      /* the toast told why */
    } finally {
      snap.classList.remove('is-busy');
    }
  }

  /** Disable Snapshot (with the reason as its tooltip) when no image server is set up. */
  async function checkStatus() {
    const status = await imageStatus();
    if (signal?.aborted) return;
    configured = Boolean(status.configured);
    if (configured) return;
    snap.setAttribute('aria-disabled', 'true');
    snap.title = `Images are not set up. ${status.how_to_enable || status.detail || ''}`.trim();
  }

  checkStatus();
  return {
    tools: [snap, panel.button],
    strip: progress.node,
    /** Thumbnails under message `msg`, or null. */
    extras(msg) {
      const images = byMessage.get(msg.id);
      if (!images?.length) return null;
      return el('div', { class: 'msg-images', role: 'group', 'aria-label': 'Images' }, images.map((image) => el(
        'button', { type: 'button', class: 'msg-thumb', dataset: { imageId: image.id },
          'aria-label': `Open image ${image.id}`, on: { click: () => openLightbox(image) } },
        el('img', { src: image.url, alt: altText(image), loading: 'lazy' }))));
    },
    /** The message list to redraw when images change. */
    attach(messageList) { list = messageList; },
    /** Fetch the chat's images (newest pages first) and show them. */
    async load() {
      let before = null;
      for (let page = 0; page < MAX_PAGES; page += 1) {
        let data;
        try {
          data = await get('/api/images', { signal, quiet: true, query: { chat_id: chatId, limit: PAGE,
            before_id: before } });
        } catch {
          return;
        }
        for (const image of data.images ?? []) put(image);
        before = data.next_before_id ?? null;
        if (before === null) return;
      }
    },
    /** The chat changed: the panel's cast chips follow. */
    setChat(chat) { panel.setChat(chat); },
  };
}
