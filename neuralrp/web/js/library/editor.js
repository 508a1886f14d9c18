/**
 * The character editor page (#/library/character/{id}): the card form and the appearance section under one Save
 * (PUT the full card, then the appearance when it changed), Export PNG / Export JSON downloads, Delete with
 * confirmation, Start chat, Change picture, the character's chats, and the linked lorebook.
 */

import { ApiError, get, post, put } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { toast } from '../toast.js';
import { errorState, loading } from '../ui.js';
import { cardData, cardForm, TEXT_KEYS } from './cardform.js';
import { deleteCharacter } from './deletechar.js';
import { errorLine, guardEditor } from './form.js';
import { regenerateButtons } from './generate.js';
import { avatar } from './grid.js';
import { icon, libButton, libLink } from './icons.js';
import { renderLorebook } from './lorebook.js';
import { characterChats, pictureChanger, showPicture } from './sidepanel.js';
import { visualSection } from './visual.js';

/**
 * The card field a server error sentence names, or null: "field 'data.tags' must…" -> 'tags',
 * "the card has no name" -> 'name'. `keys` are the field keys the form shows.
 */
export function namedField(detail, keys = TEXT_KEYS) {
  const text = String(detail ?? '');
  const quoted = /data\.([a-z_]+)/i.exec(text) ?? /'([a-z_]+)'/i.exec(text);
  if (quoted) return quoted[1];
  const byLength = [...keys].sort((a, b) => b.length - a.length);
  return byLength.find((key) => new RegExp(`\\b${key}\\b`, 'i').test(text)) ?? null;
}

/** Side panel: avatar (with Change picture), name, creator line, the page's actions and the character's chats. */
function sidePanel(character, actions, { signal }) {
  const data = cardData(character.card);
  const byline = [data.creator && `by ${data.creator}`, data.character_version && `v${data.character_version}`]
    .filter(Boolean).join(' · ');
  const frame = el('div', { class: 'lib-editor-avatar' }, avatar(character, { eager: true }));
  return el('aside', { class: 'lib-editor-side' },
    el('div', { class: 'lib-editor-picture' }, frame,
      pictureChanger(character, { signal, onChanged: (updated) => showPicture(frame, updated) })),
    el('div', { class: 'lib-editor-id' },
      el('h1', { class: 'page-title lib-editor-name' }, character.name),
      byline && el('p', { class: 'page-subtitle' }, byline)),
    el('div', { class: 'lib-editor-actions' }, actions),
    characterChats(character, { signal }));
}

/** Render the editor for character `id` into `root`. */
export async function renderCharacterEditor(root, { signal, navigate }, id) {
  const crumbs = el('nav', { class: 'lib-crumbs', 'aria-label': 'Breadcrumb' },
    el('a', { href: href('library') }, icon('back', { size: 16 }), el('span', {}, 'Library')));
  root.append(crumbs, loading('Loading the character…'));
  let character;
  try {
    character = await get(`/api/characters/${encodeURIComponent(id)}`, { signal, quiet: true });
  } catch (err) {
    if (err?.name === 'AbortError' || signal.aborted) return undefined;
    replace(root, crumbs, errorState(err?.detail ?? String(err)));
    return undefined;
  }
  if (signal.aborted) return undefined;

  let dirty = false;
  let cardDirty = false; // the card form changed (the appearance section keeps its own flag)
  let saving = false;
  const status = el('p', { class: 'lib-save-status', role: 'status' }, 'All changes saved');
  const problem = errorLine();
  const setDirty = (on, card = on) => {
    dirty = on;
    if (card || !on) cardDirty = on;
    status.textContent = on ? 'Unsaved changes' : 'All changes saved';
    status.classList.toggle('is-dirty', on);
  };
  const form = cardForm(character.card, { onDirty: () => setDirty(true), signal });
  regenerateButtons(form, { signal });
  const saveButton = libButton('Save', { variant: 'primary', icon: 'save', type: 'submit' });
  const lore = el('section', { class: 'lib-section lib-lorebook' });
  const visual = visualSection(character, { signal, description: () => form.controls.get('description')?.value,
    onDirty: () => setDirty(true, cardDirty) });

  /** Clear the marks of a refused field. */
  function unmark() {
    for (const input of form.controls.values()) input.removeAttribute('aria-invalid');
  }

  /** PUT the card (when the form changed) and then the appearance (when it changed); true when stored. */
  async function storeBoth() {
    if (cardDirty || !visual.isDirty()) {
      const body = { card: form.cardToSave() };
      const updated = await put(`/api/characters/${character.id}`, body, { quiet: true, signal });
      character = updated;
      form.fill(updated.card);
      cardDirty = false;
    }
    const looks = await visual.save(); // after the card: the appearance is written into the stored card too
    if (looks) {
      character = looks;
      form.rebase(looks.card);
    }
  }

  /** Save everything; a refused field is named inline next to the Save button. */
  async function save() {
    if (saving) return false;
    saving = true;
    saveButton.setAttribute('aria-disabled', 'true');
    problem.hide();
    unmark();
    try {
      await storeBoth();
      root.querySelector('.lib-editor-name').textContent = character.name;
      document.title = `${character.name} · NeuralRP`;
      setDirty(false);
      toast(`Saved ${character.name}.`, { kind: 'success' });
      return true;
    } catch (err) {
      if (err?.name === 'AbortError' || signal.aborted) return false;
      const detail = err instanceof ApiError ? err.detail : String(err?.message ?? err);
      problem.show(detail);
      const key = namedField(detail);
      const input = key && TEXT_KEYS.includes(key) ? form.controls.get(key) : null;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
      return false;
    } finally {
      saving = false;
      saveButton.removeAttribute('aria-disabled');
    }
  }

  /** Save pending edits, create a chat with this character, and open it. */
  async function startChat() {
    if (dirty && !(await save())) return;
    try {
      const chat = await post('/api/chats', { character_ids: [character.id] }, { signal });
      navigate('chat', chat.id);
    } catch (err) {
      if (err?.name !== 'AbortError') problem.show(err?.detail ?? String(err));
    }
  }

  /** Ask (and what to do with its chats), then delete the character and go back to the library. */
  async function remove() {
    try {
      const done = await deleteCharacter(character, { signal });
      if (!done || signal.aborted) return;
      const chats = { keep: ' Its chats stay.', delete: ' Its chats were deleted too.' }[done] ?? '';
      toast(`Deleted ${character.name}.${chats}`, { kind: 'success' });
      navigate('library');
    } catch (err) {
      if (err?.name !== 'AbortError') problem.show(err?.detail ?? String(err));
    }
  }

  const exportUrl = (format) => `/api/characters/${character.id}/export?format=${format}`;
  const actions = [
    libButton('Start chat', { variant: 'primary', icon: 'chat', onClick: startChat }),
    libLink('Export PNG', exportUrl('png'), { icon: 'download', download: true }),
    libLink('Export JSON', exportUrl('json'), { icon: 'download', download: true }),
    libButton('Delete', { variant: 'danger', icon: 'trash', onClick: remove }),
  ];
  const formNode = el('form', { class: 'lib-editor-form', novalidate: true, 'aria-label': 'Character card',
    on: {
      submit: (e) => { e.preventDefault(); save(); },
      // typing a tag is not an edit yet; the appearance section reports its own changes
      input: (e) => { if (!e.target.closest('.lib-tag-picker, .lib-visual')) setDirty(true); },
    } },
  form.node, visual.node, lore,
  el('div', { class: 'lib-savebar' }, el('div', { class: 'lib-savebar-text' }, status, problem.node), saveButton));

  replace(root, crumbs, el('div', { class: 'lib-editor' }, sidePanel(character, actions, { signal }), formNode));
  document.title = `${character.name} · NeuralRP`;
  renderLorebook(lore, character.world_id ?? null, { signal });

  return guardEditor({ save, isDirty: () => dirty });
}
