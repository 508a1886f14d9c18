/**
 * Editing in place: the per-message actions menu (Copy, Edit, Delete, History, Fork from here), the inline message
 * editor (Ctrl+Enter saves, Escape cancels), delete with an "Undo" toast, and the inline chat title rename.
 */

import { del, patch, post, put } from '../api.js';
import { el, svg } from '../dom.js';
import { toast, undoToast } from '../toast.js';

const ACTION_PATHS = {
  edit: ['M4 20h4L19 9l-4-4L4 16z', 'M13.5 6.5l4 4'],
  trash: ['M4.5 7h15', 'M9.5 7V4.5h5V7', 'M6.5 7l1 12.5h9l1-12.5', 'M10 11v5M14 11v5'],
  history: ['M12 7.5V12l3 2', 'M3.5 12a8.5 8.5 0 1 0 2.5-6', 'M3.5 4.5V8H7'],
  download: ['M12 4v11', 'M7.5 10.5L12 15l4.5-4.5', 'M4.5 19.5h15'],
  fork: ['M7 4.5v6a4 4 0 0 0 4 4h2', 'M7 4.5a1.8 1.8 0 1 0 0 .1', 'M17 14.5a2 2 0 1 0 0 .1', 'M7 10.5v9'],
  copy: ['M9 9h10.5v10.5H9z', 'M15 9V4.5H4.5V15H9'],
};

/** A small line icon for the message actions. */
export function actionIcon(name, size = 16) {
  return svg('svg', {
    class: 'icon', width: size, height: size, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor',
    'stroke-width': 1.75, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true',
    focusable: 'false',
  }, (ACTION_PATHS[name] ?? []).map((d) => svg('path', { d })));
}

/** A header tool button (from makeTool(text, _, onClick, attrs)) showing one of the icons above. */
export function withIcon(button, name) {
  button.querySelector('svg')?.replaceWith(actionIcon(name, 17));
  return button;
}

/**
 * The actions menu of one message: handlers = {onEdit, onDelete, onHistory, onFork}(msg); `busy` disables them
 * (Copy stays available: it changes nothing).
 */
export function messageActions(msg, handlers, { busy = false } = {}) {
  const item = (label, iconName, fn, disabled = busy) => el('button', {
    type: 'button', class: 'msg-action', 'aria-label': label, title: label, disabled,
    dataset: { action: iconName }, on: { click: () => fn(msg) },
  }, actionIcon(iconName));
  return el('div', { class: 'msg-actions', role: 'group', 'aria-label': 'Message actions' },
    item('Copy', 'copy', (m) => copyText(m.content ?? ''), false),
    item('Edit', 'edit', handlers.onEdit),
    item('Delete', 'trash', handlers.onDelete),
    item('History', 'history', handlers.onHistory),
    item('Fork from here', 'fork', handlers.onFork));
}

/** Put text on the clipboard (with a fallback for pages the Clipboard API is not allowed on) and say so. */
export async function copyText(text) {
  try {
    if (!navigator.clipboard?.writeText) throw new Error('no Clipboard API here');
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el('textarea', { class: 'sr-only', readonly: true, 'aria-hidden': 'true', value: text });
    document.body.append(area);
    area.select();
    const done = document.execCommand('copy');
    area.remove();
    if (!done) {
      toast('The browser did not allow copying here: select the text and copy it.', { kind: 'error' });
      return;
    }
  }
  toast('Message copied.', { kind: 'success', timeout: 2500 });
}

/**
 * The inline editor of a message: a textarea with Save / Cancel. onSave(updated message) after PUT succeeds;
 * onCancel() on Cancel or Escape. Returns the editor element (focus it after it is attached).
 */
export function createEditor(msg, { signal, onSave, onCancel }) {
  const area = el('textarea', { class: 'input msg-edit-input', 'aria-label': 'Edit message', rows: 4,
    value: msg.content ?? '' });
  const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
  const save = el('button', { type: 'button', class: 'btn btn-primary btn-small', on: { click: () => submit() } },
    'Save');
  const cancel = el('button', { type: 'button', class: 'btn btn-ghost btn-small', on: { click: () => onCancel() } },
    'Cancel');
  const node = el('div', { class: 'msg-editor' }, area, error,
    el('div', { class: 'msg-edit-row' },
      el('span', { class: 'msg-edit-hint' }, 'Ctrl+Enter saves · Esc cancels'), cancel, save));

  /** PUT the new text. */
  async function submit() {
    if (!area.value.trim()) { showError('A message cannot be empty.'); return; }
    save.disabled = cancel.disabled = true;
    try {
      const updated = await put(`/api/messages/${msg.id}`, { content: area.value }, { signal, quiet: true });
      onSave(updated);
    } catch (err) {
      if (err?.name === 'AbortError') return;
      showError(err?.detail ?? String(err));
      save.disabled = cancel.disabled = false;
    }
  }

  /** Show (or hide) the editor's error line. */
  function showError(text) {
    error.hidden = !text;
    error.textContent = text ?? '';
  }

  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
    if (event.key === 'Escape') { event.preventDefault(); event.stopPropagation(); onCancel(); }
  });
  node.focusInput = () => {
    area.focus({ preventScroll: true });
    area.setSelectionRange(area.value.length, area.value.length);
    area.style.height = `${Math.min(area.scrollHeight + 4, 360)}px`;
  };
  return node;
}

/**
 * Delete (archive) a message, then offer "Undo" in a toast for a few seconds. onDeleted(msg) after the delete,
 * onRestored(msg) after an undo.
 */
export async function deleteWithUndo(msg, { signal, onDeleted, onRestored }) {
  try {
    await del(`/api/messages/${msg.id}`, { signal });
  } catch {
    return; // the toast told why
  }
  onDeleted(msg);
  undoToast('Message deleted.', async () => onRestored(await post(`/api/messages/${msg.id}/restore`, {})));
}

/**
 * The "Rename" header tool: turns the chat title into a text field (Enter saves, Escape cancels; empty = unnamed).
 * getTitle() gives the current title, titleNode is the <h1>; onRenamed(chat) gets the server's chat.
 */
export function createRenamer({ chatId, titleNode, getTitle, signal, onRenamed, makeButton }) {
  const button = makeButton('Rename', () => start());
  let form = null;

  /** Swap the title for a field. */
  function start() {
    if (form) return;
    const input = el('input', { type: 'text', class: 'input chat-rename-input', 'aria-label': 'Chat title',
      value: getTitle() ?? '', placeholder: 'Unnamed chat', maxlength: 200 });
    const finish = () => { form?.remove(); form = null; titleNode.hidden = false; button.disabled = false; };
    form = el('form', { class: 'chat-rename', on: { submit: async (event) => {
      event.preventDefault();
      input.disabled = true;
      try {
        const chat = await patch(`/api/chats/${chatId}`, { title: input.value.trim() }, { signal });
        finish();
        onRenamed(chat);
        button.focus({ preventScroll: true });
      } catch (err) {
        if (err?.name !== 'AbortError') input.disabled = false;
      }
    } } }, input,
    el('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Save'),
    el('button', { type: 'button', class: 'btn btn-ghost btn-small', on: { click: finish } }, 'Cancel'));
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') { event.preventDefault(); finish(); button.focus({ preventScroll: true }); }
    });
    titleNode.hidden = true;
    button.disabled = true;
    titleNode.after(form);
    input.focus();
    input.select();
  }

  return button;
}
