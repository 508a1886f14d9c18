/**
 * The tag filter above the character grid: the 5 most used tags as toggle chips, any other chosen tag as a
 * removable chip, and a tag box with autocomplete. Several chosen tags filter with AND.
 */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { icon } from './icons.js';
import { tagPicker } from './tagpicker.js';

/** Case-insensitive membership test for a tag list. */
function hasTag(list, tag) {
  const low = tag.toLowerCase();
  return list.some((t) => t.toLowerCase() === low);
}

/**
 * tagFilter({selected, onChange(tags), signal}) -> {node, reload(), clear()}.
 * `selected` is the starting list; onChange gets the new list after every toggle.
 */
export function tagFilter({ selected = [], onChange, signal }) {
  let chosen = [...selected];
  let top = [];
  const chips = el('div', { class: 'lib-chips', role: 'group', 'aria-label': 'Filter by tag' });
  const picker = tagPicker({
    label: 'Filter by tag', placeholder: 'Filter by tag…', signal,
    exclude: () => new Set(chosen.map((t) => t.toLowerCase())),
    onPick: (tag) => { if (!hasTag(chosen, tag)) set([...chosen, tag]); },
  });
  const clearButton = el('button', { type: 'button', class: 'lib-chip-clear', hidden: true,
    on: { click: () => set([]) } }, 'Clear tags');

  /** Replace the chosen tags, redraw, and tell the owner. */
  function set(next) {
    chosen = next;
    render();
    onChange(chosen);
  }

  /** One toggle chip. */
  function chip(name, count) {
    const pressed = hasTag(chosen, name);
    const others = () => chosen.filter((t) => t.toLowerCase() !== name.toLowerCase());
    const toggle = () => set(pressed ? others() : [...chosen, name]);
    return el('button', {
      type: 'button', class: ['lib-chip', pressed && 'is-on'], 'aria-pressed': String(pressed),
      dataset: { tag: name }, on: { click: toggle },
    }, pressed ? icon('check', { size: 14 }) : icon('tag', { size: 14 }), el('span', {}, name),
    count !== undefined && el('span', { class: 'lib-chip-count' }, String(count)));
  }

  /** Draw top chips, then chosen tags that are not among them. */
  function render() {
    const extra = chosen.filter((t) => !top.some((x) => x.name.toLowerCase() === t.toLowerCase()));
    replace(chips, top.map((t) => chip(t.name, t.count)), extra.map((t) => chip(t)));
    clearButton.hidden = chosen.length === 0;
  }

  /** Fetch the most used tags again (after an import or an edit). */
  async function reload() {
    try {
      top = (await get('/api/tags/top', { query: { limit: 5 }, quiet: true, signal })) ?? [];
    } catch (err) {
      if (err?.name === 'AbortError') return;
      top = [];
    }
    if (!signal?.aborted) render();
  }

  render();
  reload();
  const node = el('div', { class: 'lib-tagfilter' }, chips, picker.node, clearButton);
  return { node, reload, clear: () => set([]) };
}
