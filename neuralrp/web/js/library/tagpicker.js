/**
 * A tag text box with autocomplete from GET /api/tags?q= (an ARIA combobox with a listbox popup).
 * Enter (or a comma) picks the highlighted suggestion, or the typed text when none is highlighted.
 */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { uid } from './form.js';

const SUGGEST_DELAY_MS = 120;

/**
 * tagPicker({label, placeholder, onPick(tag), exclude() -> Set of lowercased tags, signal}) -> {node, input}.
 * `label` is the accessible name of the text box.
 */
export function tagPicker({ label, placeholder = 'Add a tag…', onPick, exclude = () => new Set(), signal }) {
  const listId = uid('tag-options');
  const input = el('input', {
    class: 'lib-input lib-tag-input', type: 'text', role: 'combobox', 'aria-label': label,
    'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': listId, autocomplete: 'off',
    spellcheck: 'false', placeholder, enterkeyhint: 'done',
  });
  const list = el('ul', { class: 'lib-tag-options', id: listId, role: 'listbox', 'aria-label': `${label} suggestions`,
    hidden: true });
  let options = [];
  let active = -1;
  let timer = 0;
  let seq = 0;

  /** Show the suggestions (or hide the popup when there are none). */
  function render() {
    input.setAttribute('aria-expanded', String(options.length > 0));
    list.hidden = options.length === 0;
    replace(list, options.map((tag, i) => el('li', {
      id: `${listId}-${i}`, role: 'option', class: 'lib-tag-option', 'aria-selected': String(i === active),
      dataset: { tag: tag.name },
      on: { mousedown: (event) => { event.preventDefault(); pick(tag.name); } },
    }, el('span', { class: 'lib-tag-option-name' }, tag.name),
    el('span', { class: 'lib-tag-option-count' }, String(tag.count ?? '')))));
    if (active >= 0) input.setAttribute('aria-activedescendant', `${listId}-${active}`);
    else input.removeAttribute('aria-activedescendant');
  }

  /** Close the popup. */
  function close() {
    options = [];
    active = -1;
    render();
  }

  /** Fetch suggestions for the current text. */
  async function suggest() {
    const text = input.value.trim();
    const mine = ++seq;
    let found = [];
    try {
      found = await get('/api/tags', { query: { q: text, limit: 10 }, quiet: true, signal });
    } catch {
      found = [];
    }
    if (mine !== seq || signal?.aborted || document.activeElement !== input) return;
    const skip = exclude();
    options = (found ?? []).filter((t) => !skip.has(String(t.name).toLowerCase())).slice(0, 8);
    active = -1;
    render();
  }

  /** Give a tag to the owner and reset the box. */
  function pick(name) {
    const tag = String(name ?? '').trim().replace(/\s+/g, ' ');
    input.value = '';
    close();
    if (tag) onPick(tag);
  }

  /** Arrow keys move through the suggestions; Enter/comma pick; Escape closes. */
  function onKey(event) {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      if (!options.length) return;
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : -1;
      active = (active + step + options.length) % options.length;
      render();
    } else if (event.key === 'Enter' || (event.key === ',' && input.value.trim())) {
      event.preventDefault(); // never submits the form around it
      if (input.value.trim() || active >= 0) pick(active >= 0 ? options[active].name : input.value);
    } else if (event.key === 'Escape' && options.length) {
      event.preventDefault();
      close();
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, SUGGEST_DELAY_MS);
  });
  input.addEventListener('focus', () => { timer = setTimeout(suggest, SUGGEST_DELAY_MS); });
  input.addEventListener('blur', () => { clearTimeout(timer); seq += 1; close(); });
  input.addEventListener('keydown', onKey);
  signal?.addEventListener('abort', () => clearTimeout(timer));

  return { node: el('div', { class: 'lib-tag-picker' }, input, list), input };
}
