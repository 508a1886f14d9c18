/**
 * One lorebook entry in the world editor: a collapsible row whose summary shows title, keys and flags, and
 * whose body edits every field. value() gives the entry to PUT: the original object with only the fields the
 * user changed written over it (so values the form cannot show exactly, like keys containing commas, survive).
 */

import { el, replace } from '../dom.js';
import { checkbox, field, numberInput, readNumber, select, splitList, textArea, textInput, uid } from './form.js';
import { icon } from './icons.js';
import { entryTitle } from './lorebook.js';

export const NEW_ENTRY = Object.freeze({
  keys: [], secondary_keys: [], comment: '', content: '', constant: false, selective: true, selective_logic: 0,
  order: 100, position: 0, enabled: true, probability: 100, use_probability: true, depth: 4, canon_law: false,
});
const LOGIC = [[0, 'AND ANY'], [1, 'NOT ALL'], [2, 'NOT ANY'], [3, 'AND ALL']];
const POSITIONS = [[0, 'Before character'], [1, 'After character'], [2, 'Top of author’s note'],
  [3, 'Bottom of author’s note'], [4, 'At depth'], [5, 'Before examples'], [6, 'After examples']];
const CHECKS = [
  ['enabled', 'Enabled', 'Disabled entries never activate.'],
  ['constant', 'Constant', 'Always inserted, no key needed.'],
  ['selective', 'Selective', 'Also needs a secondary key (see the logic).'],
  ['canon_law', 'Canon law', 'Always known and re-inserted every few turns as a reminder.'],
  ['use_probability', 'Use probability', 'Apply the trigger chance below.'],
];

/** Position options, with the entry's own value added when it is not one of the known ones. */
function positionOptions(value) {
  return POSITIONS.some(([v]) => v === value) ? POSITIONS : [...POSITIONS, [value, `Position ${value}`]];
}

/** entryEditor(entry, {index, onChange, onDelete, open}) -> {node, value(), matches(text), isOpen()}. */
export function entryEditor(entry, { onChange, onDelete, open = false }) {
  const original = { ...NEW_ENTRY, ...entry };
  const inputs = {
    comment: textInput('comment', original.comment ?? '', { placeholder: 'What this entry is about' }),
    keys: textInput('keys', (original.keys ?? []).join(', '), { placeholder: 'dragon, wyrm, "Great Crash"' }),
    secondary_keys: textInput('secondary_keys', (original.secondary_keys ?? []).join(', ')),
    content: textArea('content', original.content ?? '', { rows: 5 }),
    selective_logic: select('selective_logic', original.selective_logic ?? 0, LOGIC),
    order: numberInput('order', original.order, { step: 1 }),
    position: select('position', original.position ?? 0, positionOptions(original.position ?? 0)),
    depth: numberInput('depth', original.depth, { min: 0, step: 1 }),
    probability: numberInput('probability', original.probability, { min: 0, max: 100, step: 1 }),
  };
  const initial = Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value]));
  const checks = Object.fromEntries(CHECKS.map(([key, label, hint]) => [key,
    checkbox(key, label, original[key], { hint })]));
  const box = (key) => checks[key].querySelector('input');
  const titleNode = el('span', { class: 'lib-entry-title' });
  const keysNode = el('span', { class: 'lib-entry-keys' });
  const flagsNode = el('span', { class: 'lib-entry-flags' });
  const dot = el('span', { class: 'lib-entry-dot', 'aria-hidden': 'true' });

  /** The entry as it would be saved. */
  function value() {
    const out = structuredClone(entry);
    const changed = (k) => inputs[k].value !== initial[k];
    if (changed('comment') || !('comment' in out)) out.comment = inputs.comment.value;
    if (changed('content') || !('content' in out)) out.content = inputs.content.value;
    if (changed('keys') || !('keys' in out)) out.keys = splitList(inputs.keys.value);
    if (changed('secondary_keys') || !('secondary_keys' in out)) {
      out.secondary_keys = splitList(inputs.secondary_keys.value);
    }
    if (changed('selective_logic') || !('selective_logic' in out)) {
      out.selective_logic = Number(inputs.selective_logic.value);
    }
    if (changed('position') || !('position' in out)) out.position = Number(inputs.position.value);
    for (const k of ['order', 'depth', 'probability']) {
      if (changed(k) || !(k in out)) out[k] = readNumber(inputs[k], NEW_ENTRY[k]);
    }
    for (const [k] of CHECKS) out[k] = box(k).checked;
    return out;
  }

  /** Redraw the summary line from the current values. */
  function summarize() {
    const v = value();
    titleNode.textContent = entryTitle(v);
    keysNode.textContent = v.comment?.trim() && v.keys.length ? v.keys.join(' · ') : '';
    replace(flagsNode,
      v.constant && el('span', { class: 'lib-flag' }, 'Constant'),
      v.canon_law && el('span', { class: 'lib-flag lib-flag-accent' }, 'Canon law'),
      !v.enabled && el('span', { class: 'lib-flag lib-flag-muted' }, 'Disabled'));
    node.classList.toggle('is-off', !v.enabled);
  }

  const logicField = field('Secondary logic', inputs.selective_logic);
  const node = el('details', { class: 'lib-entry', open,
    on: { input: () => { summarize(); onChange(); }, change: () => { summarize(); onChange(); } } },
  el('summary', { class: 'lib-entry-summary' }, dot,
    el('span', { class: 'lib-entry-text' }, titleNode, keysNode), flagsNode,
    icon('chevron', { size: 18, className: 'icon lib-entry-caret' })),
  el('div', { class: 'lib-entry-body' },
    el('div', { class: 'lib-fields' },
      field('Title / comment', inputs.comment, { wide: true, hint: 'A note for you; not sent to the model.' }),
      field('Keys', inputs.keys, { hint: 'Comma-separated. Quote a phrase to match it exactly.' }),
      field('Secondary keys', inputs.secondary_keys, { hint: 'Comma-separated; used when Selective is on.' }),
      field('Content', inputs.content, { wide: true })),
    el('div', { class: 'lib-checks', role: 'group', 'aria-label': 'Entry options' }, Object.values(checks)),
    el('div', { class: 'lib-fields lib-fields-4' },
      logicField,
      field('Order', inputs.order, { hint: 'Higher goes later in the prompt.' }),
      field('Probability %', inputs.probability),
      field('Position', inputs.position),
      field('Depth', inputs.depth, { hint: 'For “At depth”.' })),
    el('div', { class: 'lib-entry-foot' },
      el('button', { type: 'button', class: 'btn btn-danger btn-small', on: { click: () => onDelete(node) } },
        icon('trash', { size: 16 }), el('span', {}, 'Delete entry')))));
  node.id = uid('entry');
  summarize();

  /** True when the entry's title, keys or content contains `text` (lower-case). */
  const matches = (text) => {
    const v = value();
    return !text || [v.comment, v.content, ...v.keys, ...v.secondary_keys].some((s) => String(s ?? '')
      .toLowerCase().includes(text));
  };
  return { node, value, matches, isOpen: () => node.open };
}
