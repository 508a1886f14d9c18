/** Backups section of the Status page: list, create, delete and restore (with confirmation) via /api/backups. */

import { del, get, post } from '../api.js';
import { el, replace } from '../dom.js';
import { formatBytes } from '../format.js';
import { confirmDialog } from '../library/confirm.js';
import { toast } from '../toast.js';
import { badge, button, card, emptyState, errorState, facts, loading } from '../ui.js';

/** '2025-03-01T12:00:00+00:00' -> a local date and time. */
function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** One row: name, label, size, time and the Restore / Delete buttons. */
function backupRow(b, actions) {
  return el('li', { class: 'backup-row', dataset: { name: b.name } },
    el('div', { class: 'backup-main' },
      el('code', { class: 'backup-name' }, b.name),
      el('span', { class: 'backup-meta' }, `${when(b.created_at)} · ${formatBytes(b.size_bytes)}`),
      b.label && badge(b.label, b.label === 'pre-restore' ? 'warn' : 'muted')),
    el('div', { class: 'backup-actions' },
      button('Restore', { small: true, icon: 'refresh', label: `Restore ${b.name}`, onClick: () => actions.restore(b) }),
      button('Delete', { small: true, variant: 'ghost', label: `Delete ${b.name}`, onClick: () => actions.remove(b) })));
}

/** The list (or an empty state) with the folder and total size. */
function renderList(data, actions) {
  const items = data.backups ?? [];
  return el('div', { class: 'backups-body' },
    facts([['Folder', el('code', {}, data.dir ?? '—')], ['Backups', String(items.length)],
      ['Total size', formatBytes(data.total_bytes)]]),
    items.length === 0
      ? emptyState({ icon: 'database', title: 'No backups yet',
        text: 'The scheduled backups start at the time shown under Maintenance; Back up now makes one at once.' })
      : el('ul', { class: 'backup-list', 'aria-label': 'Backups' }, items.map((b) => backupRow(b, actions))));
}

/** The Backups card; loads itself and reloads after every action. */
export function backupsSection(ctx) {
  const body = el('div', {}, loading('Loading backups…'));
  const create = button('Back up now', { variant: 'primary', icon: 'plus', onClick: () => run(makeBackup) });
  const section = card({ title: 'Backups', icon: 'database', className: 'backups span-2' },
    el('p', { class: 'muted small' }, 'Compressed, verified copies of the database. Restoring keeps a '
      + '"pre-restore" backup of the current data first.'),
    el('div', { class: 'backups-toolbar' }, create), body);

  async function load() {
    try {
      const data = await get('/api/backups', { signal: ctx.signal, quiet: true });
      if (!ctx.signal.aborted) replace(body, renderList(data, actions));
    } catch (err) {
      if (!ctx.signal.aborted && err?.name !== 'AbortError') {
        replace(body, errorState(err?.detail ?? String(err), { retry: load }));
      }
    }
  }

  async function run(action) {
    section.setAttribute('aria-busy', 'true');
    try { await action(); } catch { /* the API layer already showed the error as a toast */ }
    section.removeAttribute('aria-busy');
    await load();
  }

  async function makeBackup() {
    const made = await post('/api/backups', { label: 'manual' });
    toast(`Backup ${made.name} made and verified.`, { kind: 'success' });
  }

  const actions = {
    async restore(b) {
      const ok = await confirmDialog({ title: `Restore ${b.name}?`, confirm: 'Restore', danger: true,
        text: 'Running replies stop and the database is replaced by this backup. The current data is kept '
          + 'as a pre-restore backup.' });
      if (!ok) return;
      await run(async () => {
        const report = await post(`/api/backups/${encodeURIComponent(b.name)}/restore`);
        toast(`Restored ${report.restored}. Previous data kept as ${report.pre_restore}.`, { kind: 'success' });
      });
    },
    async remove(b) {
      const ok = await confirmDialog({ title: `Delete ${b.name}?`, confirm: 'Delete',
        text: 'This backup file is removed from disk.' });
      if (!ok) return;
      await run(async () => { await del(`/api/backups/${encodeURIComponent(b.name)}`); });
    },
  };

  load();
  return section;
}
