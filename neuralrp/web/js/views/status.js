/** Status view: GET /api/system/status rendered as health, backends, database and disk cards. */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { formatBytes, formatCount, formatTime, show } from '../format.js';
import { icon } from '../icons.js';
import { badge, button, card, errorState, facts, loading, pageHeader } from '../ui.js';
import { backupsSection } from './backups.js';

const BACKEND_TITLES = { llm: 'Text generation (LLM)', images: 'Images (AUTOMATIC1111)' };
const OPTIONAL_BACKENDS = new Set(['images']);

/** Label for a DB table name: 'world_entries' -> 'World entries'. */
function countLabel(table) {
  const words = table.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The coloured health summary at the top. */
function healthBanner(data) {
  const ok = data.health === 'ok';
  return el('div', { class: ['health', ok ? 'health-ok' : 'health-bad'], dataset: { health: show(data.health) } },
    el('span', { class: 'health-icon' }, icon(ok ? 'pulse' : 'wifiOff', { size: 22 })),
    el('div', { class: 'health-text' },
      el('p', { class: 'health-title' }, ok ? 'NeuralRP is healthy' : 'NeuralRP is running degraded'),
      el('p', { class: 'health-sub' }, ok
        ? 'The server and the text-generation backend answer.'
        : 'The text-generation backend is not reachable, so chats cannot get replies. See the hints below.')),
    badge(`Health: ${show(data.health)}`, ok ? 'ok' : 'warn'));
}

/** Version, schema version, Python and check time. */
function overviewCard(data, checkedAt) {
  return card({ title: 'NeuralRP', icon: 'sparkle' }, facts([
    ['Version', show(data.version)],
    ['Schema version', show(data.schema_version)],
    ['Python', show(data.python)],
    ['Checked at', formatTime(checkedAt)],
  ]));
}

/** Configured / reachable pills for one backend. */
function backendBadges(key, b) {
  const configured = b.configured
    ? badge('Configured', 'accent')
    : badge('Not configured', OPTIONAL_BACKENDS.has(key) ? 'muted' : 'warn');
  let reachable = badge('Not checked', 'muted');
  if (b.reachable === true) reachable = badge('Reachable', 'ok');
  else if (b.reachable === false) reachable = badge('Unreachable', 'bad');
  return el('div', { class: 'badges' }, configured, reachable);
}

/** One backend: badges, URL, detail and hint. */
function backendCard(key, b) {
  return card({ title: BACKEND_TITLES[key] ?? countLabel(key), icon: 'server', className: 'backend-card' },
    backendBadges(key, b),
    facts([['URL', b.url ? el('code', {}, b.url) : 'Not set'], ['Detail', show(b.detail)]]),
    b.hint && el('p', { class: 'hint' }, icon('sparkle', { size: 16 }), el('span', {}, b.hint)));
}

/** DB file, sizes, versions and row counts. */
function databaseCard(db) {
  const counts = Object.entries(db.counts ?? {});
  return card({ title: 'Database', icon: 'database', className: 'span-2' },
    facts([
      ['File', db.path ? el('code', {}, db.path) : '—'],
      ['Size', formatBytes(db.size_bytes)],
      ['Write-ahead log', formatBytes(db.wal_bytes)],
      ['SQLite', show(db.sqlite_version)],
      ['sqlite-vec', show(db.vec_version)],
    ]),
    counts.length > 0 && el('ul', { class: 'counts', 'aria-label': 'Row counts' },
      counts.map(([table, n]) => el('li', { class: 'count', dataset: { table } },
        el('span', { class: 'count-value' }, formatCount(n)),
        el('span', { class: 'count-label' }, countLabel(table))))));
}

/** Free/total space of the data dir's disk with a usage bar. */
function diskCard(disk) {
  const total = Number(disk.total_bytes) || 0;
  const free = Number(disk.free_bytes) || 0;
  const usedPct = total > 0 ? Math.round(((total - free) / total) * 100) : 0;
  return card({ title: 'Disk', icon: 'disk' },
    facts([
      ['Free', formatBytes(disk.free_bytes)],
      ['Total', formatBytes(disk.total_bytes)],
      ['Data folder', disk.path ? el('code', {}, disk.path) : '—'],
    ]),
    total > 0 && el('div', {
      class: ['bar', usedPct >= 90 && 'bar-bad'], role: 'meter', 'aria-label': 'Disk used',
      'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': usedPct, 'aria-valuetext': `${usedPct}% used`,
    }, el('span', { class: 'bar-fill', style: { width: `${usedPct}%` } })),
    total > 0 && el('p', { class: 'muted small' }, `${usedPct}% used`));
}

const JOB_TITLES = { backup: 'Backup', retention: 'Retention', vacuum: 'VACUUM', history: 'Change history' };

/** ISO time -> local date and time, or a dash. */
function at(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** True when a job has not run yet (its row is only the "scheduled" mark made at the first start). */
function neverRan(job) {
  return !job.last_status || job.last_status === 'scheduled';
}

/** The badge and the when-line of one job. */
function jobState(job) {
  if (!job.enabled) return [badge('Off', 'muted'), 'disabled in settings'];
  if (neverRan(job)) return [badge('Not run yet', 'muted'), `first run ${at(job.next_run_at)}`];
  if (job.last_status === 'running') return [badge('Running', 'accent'), `started · next ${at(job.next_run_at)}`];
  return [badge(job.last_status === 'ok' ? 'OK' : show(job.last_status), job.last_status === 'error' ? 'bad' : 'ok'),
    `last ${at(job.last_finished_at)} · next ${at(job.next_run_at)}`];
}

/** Backups at a glance: the newest backup (or none yet) and when the next one is due (or that they are off). */
function backupFacts(backups, job) {
  const off = backups.enabled === false || job?.enabled === false;
  return facts([
    ['Last backup', backups.last ? at(backups.last.created_at) : 'None yet'],
    ['Next backup', off ? 'Off (disabled in settings)' : at(backups.next)],
  ]);
}

/** Scheduled jobs: last run, its result and the next run. */
function jobsCard(jobs, backups) {
  const rows = Object.entries(jobs ?? {});
  return card({ title: 'Maintenance', icon: 'refresh', className: 'jobs-card' },
    backups && backupFacts(backups, jobs?.backup),
    el('ul', { class: 'job-list', 'aria-label': 'Scheduled jobs' }, rows.map(([name, job]) => {
      const [state, when] = jobState(job);
      return el('li', { class: 'job', dataset: { job: name } },
        el('span', { class: 'job-name' }, JOB_TITLES[name] ?? name), state,
        el('span', { class: 'job-when muted small' }, when));
    })));
}

/** The whole report as a grid of cards. */
export function renderStatus(data, checkedAt = new Date()) {
  const backends = Object.entries(data.backends ?? {});
  return el('div', { class: 'status' },
    healthBanner(data),
    el('div', { class: 'card-grid' },
      backends.map(([key, b]) => backendCard(key, b ?? {})),
      overviewCard(data, checkedAt),
      diskCard(data.disk ?? {}),
      data.jobs && jobsCard(data.jobs, data.backups),
      databaseCard(data.database ?? {})));
}

export default {
  name: 'status',
  title: 'Status',
  /** Render the status view, load the report, and reload on Refresh or reconnect. */
  render(root, ctx) {
    const body = el('div', { class: 'status-body' }, loading('Checking the server and its backends…'));
    const refresh = button('Refresh', { icon: 'refresh', onClick: () => load() });
    root.append(pageHeader({
      title: 'System status', subtitle: 'Server health, backends, database, disk and backups.', actions: [refresh],
    }), body, el('div', { class: 'card-grid backups-grid' }, backupsSection(ctx)));

    let busy = false;
    async function load() {
      if (busy) return;
      busy = true; // not `disabled`: that would drop keyboard focus from the button
      refresh.setAttribute('aria-disabled', 'true');
      refresh.classList.add('is-busy');
      body.setAttribute('aria-busy', 'true');
      try {
        const data = await get('/api/system/status', { signal: ctx.signal, quiet: true });
        if (!ctx.signal.aborted) replace(body, renderStatus(data));
      } catch (err) {
        if (!ctx.signal.aborted && err?.name !== 'AbortError') {
          replace(body, errorState(err?.detail ?? String(err), { retry: load }));
        }
      } finally {
        busy = false;
        refresh.removeAttribute('aria-disabled');
        refresh.classList.remove('is-busy');
        body.removeAttribute('aria-busy');
      }
    }

    window.addEventListener('neuralrp:reconnected', load);
    load();
    return () => window.removeEventListener('neuralrp:reconnected', load);
  },
};
