/** The Characters tab: debounced search, sort order, tag chips (AND), the grid, and drag-and-drop import onto it. */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { emptyState, errorState, loading } from '../ui.js';
import { renderGrid } from './grid.js';
import { icon, libButton } from './icons.js';
import { splitList } from './form.js';
import { tagFilter } from './tagfilter.js';

const SEARCH_DELAY_MS = 250;
/** The library's orders, as SillyTavern offers them: A-Z, last chatted with, newest added. */
const SORTS = [['name', 'Name (A–Z)'], ['recent', 'Recently chatted'], ['created', 'Newest added']];

/** Keep the filter in the address (without re-rendering) so Back from the editor restores it. */
function rememberFilter(q, tags, sort) {
  const query = {};
  if (q) query.q = q;
  if (tags.length) query.tags = tags.join(',');
  if (sort !== 'name') query.sort = sort;
  history.replaceState(null, '', href('library', query));
}

/** The sort select; onSort(value) when it changes. */
function sortBox(value, onSort) {
  const box = el('select', { class: 'lib-input lib-select lib-sort', name: 'sort', 'aria-label': 'Sort characters' },
    SORTS.map(([v, label]) => el('option', { value: v, selected: v === value }, label)));
  box.addEventListener('change', () => onSort(box.value));
  return box;
}

/** A search box with a leading icon and a clear button. */
function searchBox(value, onSearch) {
  const input = el('input', {
    class: 'lib-input lib-search-input', type: 'search', name: 'q', value, 'aria-label': 'Search characters',
    placeholder: 'Search characters…', title: 'Searches names, descriptions, creators and tags', autocomplete: 'off', spellcheck: 'false',
    enterkeyhint: 'search',
  });
  let timer = 0;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => onSearch(input.value.trim()), SEARCH_DELAY_MS);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    clearTimeout(timer);
    onSearch(input.value.trim());
  });
  return { node: el('div', { class: 'lib-search' }, icon('search', { size: 18 }), input), input };
}

/**
 * Render the tab into `body`; `importer` is the view's importer (its drop zone is the grid area).
 * Returns {reload()} so an import can refresh the grid and chips.
 */
export function charactersTab(body, { query, signal, importer }) {
  let q = (query.get('q') ?? '').trim();
  let tags = splitList(query.get('tags'));
  let sort = SORTS.some(([v]) => v === query.get('sort')) ? query.get('sort') : 'name';
  let seq = 0;
  const count = el('p', { class: 'lib-count', role: 'status' });
  const results = el('div', { class: 'lib-results-area' }, loading('Loading characters…'));
  const search = searchBox(q, (text) => { q = text; load(); });
  const filter = tagFilter({ selected: tags, signal, onChange: (next) => { tags = next; load(); } });

  /** Clear the search text and the chosen tags. */
  function clearAll() {
    search.input.value = '';
    q = '';
    filter.clear();
  }

  /** What to show when the list is empty: first-run help, or "nothing matches". */
  function empty() {
    if (q || tags.length) {
      return emptyState({ icon: 'library', title: 'No characters match',
        text: 'Try other words or fewer tags. Tags filter together: a character needs every chosen tag.',
        actions: [libButton('Clear filters', { icon: 'close', onClick: clearAll })] });
    }
    return emptyState({ icon: 'library', title: 'Your library is empty',
      text: 'Import SillyTavern character cards (PNG or JSON), World Info files and chats with the Import '
        + 'button, or drop the files here.',
      actions: [libButton('Choose files', { variant: 'primary', icon: 'upload',
        onClick: () => importer.input.click() })] });
  }

  /** Fetch the characters for the current search and tags, and draw them. */
  async function load() {
    const mine = ++seq;
    rememberFilter(q, tags, sort);
    results.setAttribute('aria-busy', 'true');
    try {
      const list = await get('/api/characters', {
        query: { q: q || null, tags: tags.length ? tags.join(',') : null, sort }, signal, quiet: true,
      });
      if (mine !== seq || signal.aborted) return;
      const n = list?.length ?? 0;
      count.textContent = `${n} ${n === 1 ? 'character' : 'characters'}`;
      if (n) renderGrid(results, list);
      else replace(results, empty());
    } catch (err) {
      if (mine !== seq || signal.aborted || err?.name === 'AbortError') return;
      count.textContent = '';
      replace(results, errorState(err?.detail ?? String(err), { retry: load }));
    } finally {
      if (mine === seq) results.removeAttribute('aria-busy');
    }
  }

  const zone = el('div', { class: 'lib-grid-zone' }, results);
  importer.attachDropZone(zone);
  replace(body,
    el('div', { class: 'lib-toolbar' }, search.node, sortBox(sort, (value) => { sort = value; load(); }), count),
    filter.node,
    importer.panel,
    zone);
  load();
  return { reload: () => { filter.reload(); return load(); } };
}
