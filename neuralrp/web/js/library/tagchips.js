/** The card editor's tag field: chips with a remove button each, plus a tag box with autocomplete. */

import { el, replace } from '../dom.js';
import { icon } from './icons.js';
import { tagPicker } from './tagpicker.js';

/** tagChips(tags, {onChange, signal}) -> {node, value()}. Tags are unique, compared case-insensitively. */
export function tagChips(initial, { onChange, signal } = {}) {
  let tags = [...(initial ?? [])];
  const list = el('ul', { class: 'lib-chips lib-chips-edit', 'aria-label': 'Tags' });
  const picker = tagPicker({
    label: 'Add a tag', placeholder: 'Add a tag…', signal,
    exclude: () => new Set(tags.map((t) => t.toLowerCase())),
    onPick: (tag) => {
      if (tags.some((t) => t.toLowerCase() === tag.toLowerCase())) return;
      tags = [...tags, tag];
      render();
      onChange?.();
    },
  });

  /** Draw the chips. */
  function render() {
    replace(list, tags.map((t, i) => el('li', { class: 'lib-chip is-static', dataset: { tag: t } },
      el('span', {}, t),
      el('button', { type: 'button', class: 'lib-chip-x', 'aria-label': `Remove tag ${t}`, title: `Remove ${t}`,
        on: { click: () => {
          tags = tags.filter((_, k) => k !== i);
          render();
          onChange?.();
          picker.input.focus();
        } } }, icon('close', { size: 12 })))));
  }

  render();
  return { node: el('div', { class: 'lib-tags-edit' }, list, picker.node), value: () => [...tags],
    input: picker.input };
}
