/**
 * The world editor page (#/library/world/{id}): name, entries (add, edit, delete, search), Save (PUT name and
 * the full entry list; entries without an id are new), Export (SillyTavern World Info JSON) and Delete.
 */

import { ApiError, del, get, put } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { toast } from '../toast.js';
import { errorState, loading } from '../ui.js';
import { confirmDialog } from './confirm.js';
import { NEW_ENTRY, entryEditor } from './entry.js';
import { errorLine, field, guardEditor, textInput } from './form.js';
import { icon, libButton, libLink } from './icons.js';
import { entryCount } from './worlds.js';

/** The subtitle line: entry count and the linked character (a link), if any. */
function subtitle(world, characterName) {
  return el('p', { class: 'page-subtitle lib-world-sub' },
    el('span', { class: 'lib-world-total' }, entryCount(world.entries?.length ?? 0)),
    world.character_id !== null && world.character_id !== undefined && [' · Linked to ',
      el('a', { href: href('library', 'character', world.character_id) }, characterName || 'its character')]);
}

/** Render the world editor for world `id` into `root`. */
export async function renderWorldEditor(root, { signal, navigate }, id) {
  const crumbs = el('nav', { class: 'lib-crumbs', 'aria-label': 'Breadcrumb' },
    el('a', { href: href('library', 'worlds') }, icon('back', { size: 16 }), el('span', {}, 'Worlds')));
  root.append(crumbs, loading('Loading the world…'));
  let world;
  try {
    world = await get(`/api/worlds/${encodeURIComponent(id)}`, { signal, quiet: true });
  } catch (err) {
    if (err?.name === 'AbortError' || signal.aborted) return undefined;
    replace(root, crumbs, errorState(err?.detail ?? String(err)));
    return undefined;
  }
  let characterName = '';
  if (world.character_id !== null && world.character_id !== undefined) {
    characterName = (await get(`/api/characters/${world.character_id}`, { signal, quiet: true })
      .catch(() => null))?.name ?? '';
  }
  if (signal.aborted) return undefined;

  let editors = [];
  let dirty = false;
  let saving = false;
  let filterText = '';
  const heading = el('h1', { class: 'page-title' }, world.name);
  const sub = el('div', {}, subtitle(world, characterName));
  const name = textInput('name', world.name, { attrs: { required: true } });
  const list = el('div', { class: 'lib-entries', role: 'list', 'aria-label': 'Entries' });
  const shown = el('p', { class: 'lib-count', role: 'status' });
  const status = el('p', { class: 'lib-save-status', role: 'status' }, 'All changes saved');
  const problem = errorLine();
  const saveButton = libButton('Save', { variant: 'primary', icon: 'save', type: 'submit' });

  /** Mark the page as changed (or saved). */
  function setDirty(on) {
    dirty = on;
    status.textContent = on ? 'Unsaved changes' : 'All changes saved';
    status.classList.toggle('is-dirty', on);
  }

  /** Show only the entries matching the search text; update the count line. */
  function applyFilter() {
    let visible = 0;
    for (const ed of editors) {
      const hit = ed.matches(filterText);
      ed.node.hidden = !hit;
      if (hit) visible += 1;
    }
    shown.textContent = filterText ? `${visible} of ${entryCount(editors.length)}` : entryCount(editors.length);
  }

  /** Build an editor for one entry. */
  function makeEditor(entry, open = false) {
    const ed = entryEditor(entry, {
      open,
      onChange: () => setDirty(true),
      onDelete: (node) => {
        editors = editors.filter((x) => x !== ed);
        node.remove();
        setDirty(true);
        applyFilter();
        toast('Entry removed. Save to keep the change.', { kind: 'info' });
      },
    });
    ed.node.setAttribute('role', 'listitem');
    return ed;
  }

  /** Draw all entries; `openIndexes` stay expanded. */
  function renderEntries(entries, openIndexes = new Set()) {
    editors = entries.map((e, i) => makeEditor(e, openIndexes.has(i)));
    replace(list, editors.map((ed) => ed.node));
    applyFilter();
  }

  /** Append a new, expanded entry and focus its keys. */
  function addEntry() {
    const ed = makeEditor(structuredClone(NEW_ENTRY), true);
    editors.push(ed);
    list.append(ed.node);
    setDirty(true);
    filterText = '';
    search.value = '';
    applyFilter();
    ed.node.scrollIntoView({ block: 'center' });
    ed.node.querySelector('input[name=keys]')?.focus();
  }

  /** PUT the name and every entry; redraw with the stored entries (new ones get their ids). */
  async function save() {
    if (saving) return;
    saving = true;
    saveButton.setAttribute('aria-disabled', 'true');
    problem.hide();
    const open = new Set(editors.map((ed, i) => (ed.isOpen() ? i : -1)).filter((i) => i >= 0));
    try {
      const body = { name: name.value.trim() || world.name, entries: editors.map((ed) => ed.value()) };
      world = await put(`/api/worlds/${world.id}`, body, { quiet: true, signal });
      heading.textContent = world.name;
      name.value = world.name;
      replace(sub, subtitle(world, characterName));
      document.title = `${world.name} · NeuralRP`;
      renderEntries(world.entries ?? [], open);
      setDirty(false);
      toast(`Saved ${world.name}.`, { kind: 'success' });
    } catch (err) {
      if (err?.name === 'AbortError' || signal.aborted) return;
      problem.show(err instanceof ApiError ? err.detail : String(err?.message ?? err));
    } finally {
      saving = false;
      saveButton.removeAttribute('aria-disabled');
    }
  }

  /** Ask, then delete the world and go back to the list. */
  async function remove() {
    const ok = await confirmDialog({ title: `Delete ${world.name}?`, confirm: 'Delete',
      text: `All ${entryCount(editors.length)} are deleted. Characters stay, without this lorebook.` });
    if (!ok || signal.aborted) return;
    try {
      await del(`/api/worlds/${world.id}`, { quiet: true });
      toast(`Deleted ${world.name}.`, { kind: 'success' });
      navigate('library', 'worlds');
    } catch (err) {
      problem.show(err?.detail ?? String(err));
    }
  }

  const search = el('input', { class: 'lib-input lib-search-input', type: 'search', 'aria-label': 'Search entries',
    placeholder: 'Search keys, titles and content…', autocomplete: 'off',
    on: {
      input: (e) => { filterText = e.target.value.trim().toLowerCase(); applyFilter(); },
      keydown: (e) => { if (e.key === 'Enter') e.preventDefault(); }, // searching never submits the form
    } });
  const form = el('form', { class: 'lib-world-form', novalidate: true, 'aria-label': 'World',
    on: { submit: (e) => { e.preventDefault(); save(); } } },
  el('section', { class: 'lib-section' },
    el('div', { class: 'lib-fields' },
      field('World name', name, { wide: true }),
      world.description && el('p', { class: 'lib-hint lib-field-wide' }, world.description))),
  el('div', { class: 'lib-toolbar' },
    el('div', { class: 'lib-search' }, icon('search', { size: 18 }), search),
    shown,
    libButton('Add entry', { icon: 'plus', onClick: addEntry })),
  list,
  el('div', { class: 'lib-savebar' }, el('div', { class: 'lib-savebar-text' }, status, problem.node), saveButton));
  name.addEventListener('input', () => setDirty(true));

  replace(root, crumbs,
    el('header', { class: 'page-header' },
      el('div', { class: 'page-heading' }, heading, sub),
      el('div', { class: 'page-actions' },
        libLink('Export', `/api/worlds/${world.id}/export`, { icon: 'download', download: true }),
        libButton('Delete', { variant: 'danger', icon: 'trash', onClick: remove }))),
    form);
  document.title = `${world.name} · NeuralRP`;
  renderEntries(world.entries ?? []);

  return guardEditor({ save, isDirty: () => dirty });
}
