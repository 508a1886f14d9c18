/** Alternate greetings editor: a list of text areas with move up / move down / remove, and an add button. */

import { el, replace } from '../dom.js';
import { icon, libButton } from './icons.js';

/** greetingsEditor(list, {onChange}) -> {node, value()}; value() gives the current list of strings. */
export function greetingsEditor(initial, { onChange } = {}) {
  let items = [...(initial ?? [])];
  const list = el('ol', { class: 'lib-greetings', 'aria-label': 'Alternate greetings' });
  const empty = el('p', { class: 'lib-hint' }, 'No alternate greetings. They are offered as extra swipes of the '
    + 'first message.');

  /** Redraw the list; focus the text area at `focusIndex` if given. */
  function render(focusIndex) {
    empty.hidden = items.length > 0;
    replace(list, items.map((text, i) => row(text, i)));
    if (focusIndex !== undefined) list.querySelectorAll('textarea')[focusIndex]?.focus();
  }

  /** Change the list, redraw, and tell the owner. */
  function update(next, focusIndex) {
    items = next;
    render(focusIndex);
    onChange?.();
  }

  /** Swap item i with item j. */
  function move(i, j) {
    if (j < 0 || j >= items.length) return;
    const next = [...items];
    [next[i], next[j]] = [next[j], next[i]];
    update(next);
    list.querySelectorAll('.lib-greeting')[j]?.querySelector(j < i ? '[data-move=up]' : '[data-move=down]')?.focus();
  }

  /** One greeting with its controls. */
  function row(text, i) {
    const n = i + 1;
    const area = el('textarea', { class: 'lib-input lib-textarea', name: 'alternate_greeting', rows: 3, value: text,
      'aria-label': `Alternate greeting ${n}`, on: { input: (e) => { items[i] = e.target.value; onChange?.(); } } });
    const small = (label, iconName, onClick, attrs = {}) => el('button', {
      type: 'button', class: 'lib-icon-btn', 'aria-label': label, title: label, on: { click: onClick }, ...attrs,
    }, icon(iconName, { size: 16 }));
    return el('li', { class: 'lib-greeting' },
      el('div', { class: 'lib-greeting-head' },
        el('span', { class: 'lib-greeting-n' }, `#${n}`),
        el('div', { class: 'lib-greeting-tools' },
          small(`Move greeting ${n} up`, 'up', () => move(i, i - 1), { disabled: i === 0, dataset: { move: 'up' } }),
          small(`Move greeting ${n} down`, 'down', () => move(i, i + 1),
            { disabled: i === items.length - 1, dataset: { move: 'down' } }),
          small(`Remove greeting ${n}`, 'trash', () => update(items.filter((_, k) => k !== i))))),
      area);
  }

  render();
  const add = libButton('Add greeting', { icon: 'plus', small: true,
    onClick: () => update([...items, ''], items.length) });
  return { node: el('div', { class: 'lib-greetings-editor' }, empty, list, add), value: () => [...items] };
}
