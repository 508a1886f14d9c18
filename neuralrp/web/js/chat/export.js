/**
 * The "Export" header menu of a chat: download links for SillyTavern .jsonl and the training formats
 * (Alpaca, ShareGPT, ChatML) served by GET /api/chats/{id}/export?format=….
 */

import { withQuery } from '../api.js';
import { el } from '../dom.js';

export const EXPORT_FORMATS = [
  { format: 'jsonl', label: 'SillyTavern (.jsonl)', hint: 'Re-import into SillyTavern or NeuralRP' },
  { format: 'alpaca', label: 'Alpaca', hint: 'instruction / input / output' },
  { format: 'sharegpt', label: 'ShareGPT', hint: 'conversations of from / value' },
  { format: 'chatml', label: 'ChatML', hint: 'messages of role / content' },
];
let counter = 0;

/** The download address of chat `chatId` in `format`. */
export function exportUrl(chatId, format) {
  return withQuery(`/api/chats/${chatId}/export`, { format });
}

/**
 * The Export tool: a button (made by makeButton(text, onClick, attrs)) that opens a menu of download links.
 * Returns {node}. Escape or a click elsewhere closes the menu.
 */
export function createExportMenu({ chatId, makeButton, signal }) {
  const menuId = `export-menu-${(counter += 1)}`;
  const menu = el('div', { id: menuId, class: 'export-menu', role: 'menu', 'aria-label': 'Export formats',
    hidden: true },
  EXPORT_FORMATS.map((f) => el('a', { class: 'export-item', role: 'menuitem', href: exportUrl(chatId, f.format),
    download: '', dataset: { format: f.format }, on: { click: () => setOpen(false) } },
  el('span', { class: 'export-label' }, f.label), el('span', { class: 'export-hint' }, f.hint))));
  const button = makeButton('Export', () => setOpen(menu.hidden),
    { 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId });
  const node = el('div', { class: 'export-wrap' }, button, menu);

  /** Show or hide the menu. */
  function setOpen(open) {
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) menu.querySelector('a')?.focus();
  }

  document.addEventListener('click', (event) => {
    if (!menu.hidden && !node.contains(event.target)) setOpen(false);
  }, { signal });
  node.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !menu.hidden) { event.preventDefault(); setOpen(false); button.focus(); }
  });
  return { node };
}
