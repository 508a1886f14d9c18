/** Form building blocks for the library editors: labelled fields, checkboxes, selects, an inline error line. */

import { el, replace } from '../dom.js';
import { icon } from './icons.js';

let counter = 0;

/** A unique DOM id with a readable prefix. */
export function uid(prefix = 'lib') {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled control with an optional hint: field('Name', input, {hint, wide}). */
export function field(label, control, { hint, wide, className } = {}) {
  const id = control.id || uid('field');
  control.id = id;
  const hintNode = hint && el('p', { class: 'lib-hint', id: `${id}-hint` }, hint);
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return el('div', { class: ['lib-field', wide && 'lib-field-wide', className],
    dataset: { field: control.name || '' } },
  el('label', { class: 'lib-label', for: id }, label), control, hintNode);
}

/** A one-line text input: textInput('name', value, {placeholder, onInput}). */
export function textInput(name, value = '', { placeholder, onInput, type = 'text', attrs = {} } = {}) {
  return el('input', {
    class: 'lib-input', type, name, value: value ?? '', placeholder, autocomplete: 'off', spellcheck: 'false',
    on: onInput ? { input: onInput } : undefined, ...attrs,
  });
}

/** A multi-line text area that grows with its text: textArea('description', value, {rows, onInput}). */
export function textArea(name, value = '', { rows = 4, placeholder, onInput, attrs = {} } = {}) {
  return el('textarea', {
    class: 'lib-input lib-textarea', name, rows, placeholder, value: value ?? '',
    on: onInput ? { input: onInput } : undefined, ...attrs,
  });
}

/** A number input (empty text reads back as the fallback): numberInput('order', 100, {min, max, step}). */
export function numberInput(name, value, { min, max, step = 'any', onInput } = {}) {
  return el('input', {
    class: 'lib-input lib-number', type: 'number', name, min, max, step, inputmode: 'decimal',
    value: value === null || value === undefined ? '' : String(value), on: onInput ? { input: onInput } : undefined,
  });
}

/** A <select> from [value, label] pairs with `value` chosen. */
export function select(name, value, options, { onChange } = {}) {
  return el('select', { class: 'lib-input lib-select', name, on: onChange ? { change: onChange } : undefined },
    options.map(([v, text]) => el('option', { value: String(v), selected: String(v) === String(value) }, text)));
}

/** A checkbox with its label to the right: checkbox('constant', 'Constant', true, {hint, onChange}). */
export function checkbox(name, label, checked, { hint, onChange } = {}) {
  const id = uid('check');
  const box = el('input', { type: 'checkbox', id, name, checked: Boolean(checked),
    on: onChange ? { change: onChange } : undefined });
  return el('label', { class: 'lib-check', for: id, title: hint }, box, el('span', {}, label));
}

/** A number read from an input, or `fallback` when it is empty or not a number. */
export function readNumber(input, fallback) {
  const n = input.valueAsNumber;
  return Number.isFinite(n) ? n : fallback;
}

/** Comma-separated text -> trimmed non-empty strings. */
export function splitList(text) {
  return String(text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** An inline error line (role=alert) with show(text) / hide(). */
export function errorLine() {
  const node = el('p', { class: 'lib-error', role: 'alert', hidden: true });
  return {
    node,
    show(text) {
      node.hidden = false;
      replace(node, icon('alert', { size: 16 }), el('span', {}, text));
    },
    hide() {
      node.hidden = true;
      replace(node);
    },
  };
}

/**
 * An editor page's keyboard and leave guards: Ctrl/Cmd+S saves, leaving with unsaved changes asks first.
 * Returns the cleanup that removes both listeners.
 */
export function guardEditor({ save, isDirty }) {
  const onKey = (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's') { e.preventDefault(); save(); }
  };
  const onUnload = (e) => { if (isDirty()) e.preventDefault(); };
  window.addEventListener('keydown', onKey);
  window.addEventListener('beforeunload', onUnload);
  return () => {
    window.removeEventListener('keydown', onKey);
    window.removeEventListener('beforeunload', onUnload);
  };
}
