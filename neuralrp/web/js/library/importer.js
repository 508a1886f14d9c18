/**
 * Importing files into the library: a file picker behind the "Import" button, drag and drop onto a zone
 * (with a visible drop target while dragging), the upload, and a per-file results panel.
 * mode 'library' sends everything to POST /api/library/import (cards, World Info, chats in one request);
 * mode 'worlds' sends each file to POST /api/worlds/import.
 */

import { ApiError, post } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { toast } from '../toast.js';
import { icon, libButton } from './icons.js';

const MODES = {
  library: { accept: '.png,.json,.jsonl', hint: 'Drop character cards (PNG, JSON), World Info or chat files (JSONL)' },
  worlds: { accept: '.json', hint: 'Drop SillyTavern World Info files (JSON)' },
};
const STATUS_TEXT = { imported: 'Imported', skipped: 'Skipped', error: 'Error' };
const STATUS_ICON = { imported: 'check', skipped: 'skip', error: 'alert' };

/** Where an imported item lives in the UI, or null. */
function itemHref(result) {
  if (result.id === null || result.id === undefined) return null;
  if (result.kind === 'character') return href('library', 'character', result.id);
  if (result.kind === 'world') return href('library', 'world', result.id);
  if (result.kind === 'chat') return href('chat', result.id);
  return null;
}

/** One line of the results panel. */
function resultRow(r) {
  const status = STATUS_TEXT[r.status] ? r.status : 'error';
  const link = r.status === 'imported' ? itemHref(r) : null;
  return el('li', { class: ['lib-result', `lib-result-${status}`], dataset: { file: r.file ?? '', status } },
    el('span', { class: 'lib-result-icon' }, icon(STATUS_ICON[status], { size: 16 })),
    el('div', { class: 'lib-result-text' },
      el('p', { class: 'lib-result-head' },
        el('span', { class: 'lib-result-file' }, r.file || 'File'),
        el('span', { class: 'lib-result-status' }, STATUS_TEXT[status]),
        r.kind && el('span', { class: 'lib-result-kind' }, r.kind)),
      r.detail && el('p', { class: 'lib-result-detail' }, r.detail)),
    link && el('a', { class: 'lib-result-open', href: link }, 'Open'));
}

/** The sentence above the results: "Imported 4 of 5 files." */
function summary(results) {
  const ok = results.filter((r) => r.status === 'imported').length;
  const failed = results.filter((r) => r.status === 'error').length;
  const noun = results.length === 1 ? 'file' : 'files';
  const tail = failed ? ` ${failed} failed.` : '';
  return `Imported ${ok} of ${results.length} ${noun}.${tail}`;
}

/** Upload files one by one to /api/worlds/import and describe each outcome like the library import does. */
async function importWorlds(files, signal) {
  const results = [];
  for (const file of files) {
    const form = new FormData();
    form.append('file', file, file.name);
    try {
      const world = await post('/api/worlds/import', form, { quiet: true, signal });
      const count = world.entries?.length ?? world.entry_count ?? 0;
      results.push({ file: file.name, status: 'imported', kind: 'world', id: world.id,
        detail: `World "${world.name}" with ${count} ${count === 1 ? 'entry' : 'entries'}.` });
    } catch (err) {
      if (err?.name === 'AbortError') throw err;
      results.push({ file: file.name, status: 'error', kind: 'world', id: null, detail: err?.detail ?? String(err) });
    }
  }
  return results;
}

/** Upload files in one request to /api/library/import. */
async function importLibrary(files, signal) {
  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  const answer = await post('/api/library/import', form, { quiet: true, signal });
  return answer?.results ?? [];
}

/** True when a drag carries files (not text or a link dragged from the page). */
function hasFiles(event) {
  return [...(event.dataTransfer?.types ?? [])].includes('Files');
}

/**
 * createImporter({mode, onImported(results), signal}) -> {button, input, panel, attachDropZone(node), upload(files)}.
 * The button's accessible name is exactly "Import".
 */
export function createImporter({ mode = 'library', onImported, signal }) {
  const { accept, hint } = MODES[mode];
  const input = el('input', { type: 'file', class: 'lib-file-input', multiple: true, accept, tabindex: '-1',
    'aria-hidden': 'true', dataset: { importer: mode } });
  const button = libButton('Import', { variant: 'primary', icon: 'upload', onClick: () => input.click() });
  const panel = el('section', { class: 'lib-import', 'aria-label': 'Import results', 'aria-live': 'polite',
    hidden: true });
  let busy = false;

  /** Show the panel with a spinner line while the upload runs. */
  function showBusy(count) {
    panel.hidden = false;
    replace(panel, el('div', { class: 'lib-import-head' },
      el('span', { class: 'spinner lib-spinner', 'aria-hidden': 'true' }),
      el('p', { class: 'lib-import-title' }, `Importing ${count} ${count === 1 ? 'file' : 'files'}…`)));
  }

  /** Show the per-file results. */
  function showResults(results) {
    panel.hidden = false;
    replace(panel,
      el('div', { class: 'lib-import-head' },
        el('h2', { class: 'lib-import-title' }, summary(results)),
        el('button', { type: 'button', class: 'lib-icon-btn', 'aria-label': 'Dismiss import results',
          on: { click: () => { panel.hidden = true; replace(panel); } } }, icon('close', { size: 16 }))),
      el('ul', { class: 'lib-results' }, results.map(resultRow)));
  }

  /** Import these files and report each one. */
  async function upload(fileList) {
    const files = [...fileList];
    if (!files.length || busy) return;
    busy = true;
    button.setAttribute('aria-disabled', 'true');
    showBusy(files.length);
    try {
      const results = mode === 'worlds' ? await importWorlds(files, signal) : await importLibrary(files, signal);
      if (signal?.aborted) return;
      showResults(results);
      const ok = results.filter((r) => r.status === 'imported').length;
      toast(summary(results), { kind: ok === results.length ? 'success' : 'info' });
      onImported?.(results);
    } catch (err) {
      if (err?.name === 'AbortError' || signal?.aborted) return;
      const detail = err instanceof ApiError ? err.detail : String(err?.message ?? err);
      showResults(files.map((f) => ({ file: f.name, status: 'error', kind: null, id: null, detail })));
    } finally {
      busy = false;
      button.removeAttribute('aria-disabled');
      input.value = '';
    }
  }

  /** Make `zone` accept dropped files, outlined with a drop target while files are dragged over it. */
  function attachDropZone(zone) {
    const overlay = el('div', { class: 'lib-drop', 'aria-hidden': 'true' },
      el('div', { class: 'lib-drop-inner' }, icon('drop', { size: 34 }),
        el('p', { class: 'lib-drop-title' }, 'Drop to import'), el('p', { class: 'lib-drop-hint' }, hint)));
    zone.classList.add('lib-dropzone');
    zone.append(overlay);
    let depth = 0;
    const show = (on) => zone.classList.toggle('is-dragging', on);
    zone.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth += 1; show(true); } });
    zone.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      show(true);
    });
    zone.addEventListener('dragleave', (e) => {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (!depth) show(false);
    });
    zone.addEventListener('drop', (e) => {
      depth = 0;
      show(false);
      const files = e.dataTransfer?.files;
      if (!files?.length) return;
      e.preventDefault();
      upload(files);
    });
  }

  input.addEventListener('change', () => upload(input.files ?? []));
  return { button, input, panel, attachDropZone, upload };
}

/** While a view is shown, a file dropped outside a drop zone must not make the browser open it (losing the app). */
export function guardWindowDrops() {
  const stop = (e) => { if (hasFiles(e) && !e.defaultPrevented) e.preventDefault(); };
  window.addEventListener('dragover', stop);
  window.addEventListener('drop', stop);
  return () => {
    window.removeEventListener('dragover', stop);
    window.removeEventListener('drop', stop);
  };
}
