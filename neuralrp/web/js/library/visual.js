/**
 * The "Appearance for images" section of the character editor: Gender and Visual tags (Danbooru tags used when
 * the character is pictured) and "Make Danbooru tags" (POST /api/characters/{id}/visual-canon fills the field for
 * editing; nothing is stored). The editor's one Save button stores them (PUT /api/characters/{id}/visual).
 */

import { post, put } from '../api.js';
import { el } from '../dom.js';
import { errorLine, field, select, textArea } from './form.js';
import { libButton } from './icons.js';

const GENDERS = [['', 'Not set'], ['female', 'Female'], ['male', 'Male'], ['other', 'Other']];

/** "12 tags (8 exact, 3 alias, 1 semantic)". */
function matchSummary(result) {
  const counts = new Map();
  for (const m of result.matches ?? []) counts.set(m.how, (counts.get(m.how) ?? 0) + 1);
  const parts = [...counts].map(([how, n]) => `${n} ${how}`).join(', ');
  const total = (result.tags ?? []).length;
  return `${total} tag${total === 1 ? '' : 's'} suggested${parts ? ` (${parts})` : ''}. Edit them, then Save.`;
}

/**
 * visualSection(character, {signal, description, onDirty}) -> {node, isDirty(), save(), rebase(character)}.
 * description() gives the description text shown in the card form (sent to visual-canon); onDirty() runs when
 * the appearance changes, so the editor's one Save button stores it with the card. save() PUTs gender and visual
 * tags when they changed and resolves to the server's character (null when there was nothing to store).
 */
export function visualSection(character, { signal, description = () => undefined, onDirty = () => {} }) {
  let dirty = false;
  const gender = select('gender', character.gender ?? '', GENDERS, { onChange: () => setDirty(true) });
  const tags = textArea('visual_tags', character.visual_tags ?? '', { rows: 3,
    placeholder: '1girl, red_hair, long_hair, green_eyes, leather_apron', onInput: () => setDirty(true) });
  const status = el('p', { class: 'lib-hint visual-status', role: 'status' });
  const problem = errorLine();
  const make = libButton('Make Danbooru tags', { icon: 'tag', onClick: () => suggest() });
  const id = 'lib-sec-appearance';
  const node = el('section', { class: 'lib-section lib-visual', 'aria-labelledby': id },
    el('h2', { class: 'lib-section-title', id }, 'Appearance for images'),
    el('div', { class: 'lib-fields' },
      field('Gender', gender),
      field('Visual tags', tags, { wide: true,
        hint: 'Danbooru tags, comma separated. Used when this character is pictured and for [Name] in image '
          + 'prompts. Saved with the card.' })),
    el('div', { class: 'lib-visual-actions' }, make, status), problem.node);

  /** Mark the appearance as changed (the editor's Save stores it) or stored. */
  function setDirty(on) {
    dirty = on;
    if (on) onDirty();
  }

  /** Ask the server for Danbooru tags from the description; they go into the field for editing. */
  async function suggest() {
    problem.hide();
    make.setAttribute('aria-disabled', 'true');
    make.classList.add('is-busy');
    try {
      const body = { description: description(), gender: gender.value || undefined };
      const result = await post(`/api/characters/${character.id}/visual-canon`, body, { signal, quiet: true });
      tags.value = result.visual_tags ?? (result.tags ?? []).join(', ');
      setDirty(true);
      status.textContent = matchSummary(result);
      tags.focus();
    } catch (err) {
      if (err?.name !== 'AbortError') problem.show(err?.detail ?? String(err));
    } finally {
      make.removeAttribute('aria-disabled');
      make.classList.remove('is-busy');
    }
  }

  /** PUT gender and visual tags if they changed; the server's character, or null. Errors are shown and rethrown. */
  async function save() {
    if (!dirty) return null;
    problem.hide();
    try {
      const updated = await put(`/api/characters/${character.id}/visual`,
        { gender: gender.value, visual_tags: tags.value }, { signal, quiet: true });
      gender.value = updated.gender ?? gender.value;
      tags.value = updated.visual_tags ?? tags.value;
      dirty = false;
      status.textContent = '';
      return updated;
    } catch (err) {
      if (err?.name !== 'AbortError') problem.show(err?.detail ?? String(err));
      throw err;
    }
  }

  return { node, save, isDirty: () => dirty };
}
