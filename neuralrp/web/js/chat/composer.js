/**
 * The composer under the messages: a growing textarea (Enter sends, Shift+Enter makes a new line), the Send /
 * Stop button, Regenerate and Continue, an inline notice line for errors and a "Demo model" label.
 */

import { el, replace } from '../dom.js';
import { actionButton, icon } from './icons.js';
import { SHORTCUT_HINT } from './shortcuts.js';

const MAX_HEIGHT_PX = 220;
let counter = 0;

/** Grow the textarea with its text, up to MAX_HEIGHT_PX. */
function autosize(area) {
  area.style.height = 'auto';
  area.style.height = `${Math.min(area.scrollHeight + 2, MAX_HEIGHT_PX)}px`;
}

/**
 * Build the composer. Callbacks: onSend(text), onStop(), onRegenerate(), onContinue().
 * Returns {node, input, text(), clear(), restore(text), focus(), setGenerating(flag), setNotice(text, kind),
 * setDemo(label)}.
 */
export function createComposer({ onSend, onStop, onRegenerate, onContinue }) {
  const id = `composer-input-${(counter += 1)}`;
  const area = el('textarea', {
    id, class: 'composer-input', rows: 1, placeholder: 'Write your message…', autocomplete: 'off',
    enterkeyhint: 'send',
  });
  const send = actionButton('Send', { variant: 'primary', icon: 'send', type: 'submit' });
  const stop = actionButton('Stop', { variant: 'danger', icon: 'stop', onClick: () => onStop() });
  const regenerate = actionButton('Regenerate', { variant: 'ghost', icon: 'refresh', small: true,
    onClick: () => onRegenerate() });
  const cont = actionButton('Continue', { variant: 'ghost', icon: 'forward', small: true,
    onClick: () => onContinue() });
  const demo = el('span', { class: 'demo-label', hidden: true }, icon('sparkle', { size: 14 }),
    el('span', {}, 'Demo model'));
  const notice = el('div', { class: 'composer-notice', hidden: true });
  stop.hidden = true;
  stop.disabled = true;

  const form = el('form', { class: 'composer', 'aria-label': 'Write a message', novalidate: true,
    on: { submit: (event) => { event.preventDefault(); submit(); } } },
  notice,
  el('div', { class: 'composer-tools' }, regenerate, cont, el('span', { class: 'composer-spacer' }), demo,
    el('span', { class: 'composer-keys', title: 'Keyboard shortcuts' }, SHORTCUT_HINT)),
  el('div', { class: 'composer-row' },
    el('label', { for: id, class: 'sr-only' }, 'Message'),
    area, send, stop));

  /** Hand the text to onSend (blank text is ignored). */
  function submit() {
    if (send.disabled || send.hidden) return;
    const text = area.value;
    if (!text.trim()) { area.focus(); return; }
    onSend(text);
  }

  area.addEventListener('input', () => autosize(area));
  area.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submit();
  });

  return {
    node: form,
    /** The message box (the chat's keyboard shortcuts watch it). */
    input: area,
    /** The text typed so far. */
    text: () => area.value,
    /** Empty the textarea. */
    clear() { area.value = ''; autosize(area); },
    /** Put text back (a send that never reached the server). */
    restore(text) { if (!area.value) { area.value = text; autosize(area); } },
    /** Focus the textarea. */
    focus() { area.focus({ preventScroll: true }); },
    /** Swap Send for Stop and lock Regenerate/Continue while a reply is written. */
    setGenerating(flag) {
      const stopHadFocus = document.activeElement === stop;
      send.hidden = flag;
      send.disabled = flag;
      stop.hidden = !flag;
      stop.disabled = !flag;
      regenerate.disabled = flag;
      cont.disabled = flag;
      form.classList.toggle('is-generating', flag);
      if (!flag && stopHadFocus) area.focus({ preventScroll: true });
    },
    /** Show a sentence above the textarea (kind 'error' | 'info'); null hides it. */
    setNotice(text, kind = 'error') {
      notice.hidden = !text;
      notice.className = ['composer-notice', `notice-${kind}`].join(' ');
      notice.setAttribute('role', kind === 'error' ? 'alert' : 'status');
      if (text) replace(notice, icon(kind === 'error' ? 'alert' : 'sparkle', { size: 16 }), el('span', {}, text));
      else replace(notice);
    },
    /** Show the "Demo model" label (label = the runtime's description, as a tooltip); null hides it. */
    setDemo(label) {
      demo.hidden = !label;
      demo.title = label || '';
    },
  };
}
