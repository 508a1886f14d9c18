/**
 * The History dialog of one message: every recorded change (time, operation, old → new text), newest first,
 * each with "Restore" (POST /api/history/{change_id}/restore), which puts the earlier text back or undoes a delete.
 */

import { get, post } from '../api.js';
import { el, replace } from '../dom.js';
import { loading } from '../ui.js';
import { modalShell } from './summaries.js';

const OPERATIONS = { update: 'Edited', delete: 'Deleted', restore: 'Restored', create: 'Created' };

/** "12 Mar 2025, 14:03:27" for a change's time. */
function when(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return '';
  return date.toLocaleString([], { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit',
    minute: '2-digit', second: '2-digit' });
}

/** What a change's old/new side says: its text, or the archive state for a delete/undelete. */
function sideText(side) {
  if (!side) return '—';
  if (typeof side.content === 'string') return side.content;
  if ('archived' in side) return side.archived ? `archived (${side.archived_reason ?? 'deleted'})` : 'in the chat';
  return JSON.stringify(side);
}

/** One version row: time, operation, old → new, Restore. */
function changeRow(change, onRestore) {
  const restorable = change.operation === 'delete' || typeof change.old?.content === 'string';
  return el('li', { class: 'hist-item', dataset: { changeId: change.id, operation: change.operation } },
    el('div', { class: 'hist-head' },
      el('span', { class: 'hist-op' }, OPERATIONS[change.operation] ?? change.operation),
      el('time', { class: 'hist-time', datetime: change.created_at ?? '' }, when(change.created_at)),
      restorable && el('button', { type: 'button', class: 'btn btn-secondary btn-small hist-restore',
        on: { click: (event) => onRestore(change, event.currentTarget) } }, 'Restore')),
    el('div', { class: 'hist-diff' },
      el('p', { class: 'hist-old' }, el('span', { class: 'hist-label' }, 'Before'), sideText(change.old)),
      el('p', { class: 'hist-new' }, el('span', { class: 'hist-label' }, 'After'), sideText(change.new))),
    change.note && el('p', { class: 'hist-note' }, change.note));
}

/**
 * Open the History dialog of message `messageId`. `intro` is an optional sentence above the list (e.g. why the
 * message is not in the log). onRestored(message) runs after a restore. Resolves when the dialog closes.
 */
export function openHistory({ messageId, intro = null, onRestored = () => {} }) {
  return new Promise((resolve) => {
    const life = new AbortController();
    const list = el('ol', { class: 'hist-list', 'aria-label': 'Versions' });
    const body = el('div', { class: 'hist-body' }, loading('Loading history…'));
    const shell = modalShell({
      title: 'Message history', className: 'history-dialog',
      body: [intro && el('p', { class: 'hist-intro' }, intro), body],
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Close')],
      onClose: () => { life.abort(); resolve(); },
    });

    /** Fetch and draw the changes. */
    async function load() {
      try {
        const data = await get(`/api/messages/${messageId}/history`, { signal: life.signal, quiet: true });
        const changes = data?.changes ?? [];
        replace(list, changes.map((c) => changeRow(c, restore)));
        replace(body, changes.length ? list
          : el('p', { class: 'hist-empty' }, 'This message has not been edited or deleted.'));
      } catch (err) {
        if (err?.name === 'AbortError') return;
        replace(body);
        shell.showError(err?.detail ?? String(err));
      }
    }

    /** Restore one change, then reload the list. */
    async function restore(change, button) {
      shell.showError(null);
      button.disabled = true;
      try {
        const message = await post(`/api/history/${change.id}/restore`, {}, { signal: life.signal, quiet: true });
        onRestored(message);
        await load();
        list.querySelector('.hist-restore')?.focus();
      } catch (err) {
        if (err?.name === 'AbortError') return;
        button.disabled = false;
        shell.showError(err?.detail ?? String(err));
      }
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    load();
  });
}
