/**
 * "Import from SillyTavern…" on the Personas card: the user picks SillyTavern's settings.json and, optionally, the
 * pictures of its User Avatars folder (a picture goes to the persona whose avatar file it is). The answer of
 * POST /api/personas/import is shown as lists of imported and skipped names (text nodes only: the names are
 * whatever the file held).
 */

import { api } from './api.js';
import { el, replace } from './dom.js';

const ACCEPT = '.json,application/json,image/png,image/jpeg,image/webp,image/gif';

/** The settings file and the pictures among the chosen files, or an error sentence. */
function sortFiles(files) {
  const json = files.filter((f) => f.name.toLowerCase().endsWith('.json') || f.type === 'application/json');
  if (json.length !== 1) {
    return { error: json.length ? `Choose one settings file, not ${json.length}.`
      : 'Choose SillyTavern\'s settings.json (and, if you like, the pictures from its User Avatars folder).' };
  }
  return { settings: json[0], avatars: files.filter((f) => f !== json[0]) };
}

/** One labelled list of persona names. */
function nameList(title, rows, className) {
  if (!rows.length) return null;
  return el('div', { class: `persona-import-group ${className}` },
    el('p', { class: 'persona-import-label' }, title),
    el('ul', { class: 'persona-import-names', 'aria-label': title },
      rows.map((r) => el('li', {}, r.name, r.is_default && ' (default)', r.avatar && ' (with picture)'))));
}

/** The result panel for one import answer. */
function resultView(report) {
  const imported = report.personas.filter((r) => r.status === 'imported');
  const skipped = report.personas.filter((r) => r.status === 'skipped');
  return [
    el('p', { class: 'persona-import-title' },
      `Imported ${report.imported} ${report.imported === 1 ? 'persona' : 'personas'}, skipped ${report.skipped}.`),
    nameList('Imported', imported, 'is-imported'),
    nameList('Skipped (already here)', skipped, 'is-skipped'),
    report.unmatched_avatars.length ? el('p', { class: 'field-hint' },
      `Pictures that match no persona: ${report.unmatched_avatars.join(', ')}`) : null,
  ];
}

/** The import button, its hidden file input and its result panel; onImported() after a successful import. */
export function personaImporter({ onImported }) {
  const input = el('input', { type: 'file', multiple: true, accept: ACCEPT, hidden: true });
  const button = el('button', { type: 'button', class: 'btn btn-secondary btn-small',
    on: { click: () => input.click() } }, 'Import from SillyTavern…');
  const panel = el('section', { class: 'persona-import', 'aria-label': 'Persona import results',
    'aria-live': 'polite', hidden: true });

  /** Send the chosen files and show what happened. */
  async function upload(files) {
    panel.hidden = false;
    const { settings, avatars, error } = sortFiles(files);
    if (error) {
      replace(panel, el('p', { class: 'form-error', role: 'alert' }, error));
      return;
    }
    const data = new FormData();
    data.append('settings', settings);
    for (const file of avatars) data.append('avatars', file);
    button.disabled = true;
    replace(panel, el('p', { class: 'field-hint' }, `Importing ${settings.name}…`));
    try {
      const report = await api('/api/personas/import', { method: 'POST', body: data, quiet: true });
      replace(panel, ...resultView(report));
      onImported();
    } catch (err) {
      replace(panel, el('p', { class: 'form-error', role: 'alert' }, err?.detail ?? String(err)));
    } finally {
      button.disabled = false;
    }
  }

  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    input.value = '';
    if (files.length) upload(files);
  });
  return { button, input, panel };
}
