/**
 * NPCs of a chat: the "Add NPC" / "Edit NPC" dialog (name, gender, description, personality, visual tags) and
 * the per-row actions of an NPC in the Cast panel: Edit, Delete and "Promote to library".
 */

import { del, get, patch, post } from '../api.js';
import { el } from '../dom.js';
import { modalShell } from './summaries.js';

const GENDERS = [['female', 'Female'], ['male', 'Male'], ['other', 'Other']];
let counter = 0;

/** A labelled form field around `control`. */
function field(label, control, hint = null) {
  return el('div', { class: 'field' }, el('label', { for: control.id, class: 'field-label' }, label), control,
    hint && el('p', { class: 'field-hint' }, hint));
}

/** The current fields of NPC `npcId` (from its card). */
async function npcFields(npcId, signal) {
  const character = await get(`/api/characters/${npcId}`, { signal, quiet: true });
  const data = character?.card?.data ?? {};
  return { name: character?.name ?? data.name ?? '', gender: character?.gender || 'other',
    description: data.description ?? '', personality: data.personality ?? '',
    visual_tags: character?.visual_tags ?? '' };
}

/**
 * Open the NPC dialog: a new NPC in chat `chatId`, or (with npcId) an edit of that NPC. Resolves to the saved
 * character, or null when cancelled.
 */
export function openNpcDialog({ chatId, npcId = null }) {
  return new Promise((resolve) => {
    const life = new AbortController();
    const base = `npc-${(counter += 1)}`;
    let saved = null;
    const name = el('input', { id: `${base}-name`, class: 'input', type: 'text', required: true, maxlength: 200,
      autocomplete: 'off' });
    const gender = el('select', { id: `${base}-gender`, class: 'input' },
      GENDERS.map(([value, label]) => el('option', { value }, label)));
    gender.value = 'other';
    const description = el('textarea', { id: `${base}-desc`, class: 'input', rows: 4 });
    const personality = el('textarea', { id: `${base}-pers`, class: 'input', rows: 2 });
    const tags = el('input', { id: `${base}-tags`, class: 'input', type: 'text', autocomplete: 'off',
      placeholder: 'red hair, leather apron, freckles' });
    const submit = el('button', { type: 'submit', class: 'btn btn-primary', form: `${base}-form` },
      npcId ? 'Save NPC' : 'Create NPC');
    const form = el('form', { id: `${base}-form`, class: 'npc-form', novalidate: true,
      on: { submit: (event) => { event.preventDefault(); save(); } } },
    el('div', { class: 'field-row' }, field('Name', name), field('Gender', gender)),
    field('Description', description, 'Who they are and how they look; sent like a character card.'),
    field('Personality', personality),
    field('Visual tags', tags, 'Optional, comma separated; used for their images.'));
    const shell = modalShell({
      title: npcId ? 'Edit NPC' : 'Add NPC', className: 'npc-dialog', body: form,
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Cancel'), submit],
      onClose: () => { life.abort(); resolve(saved); },
    });

    /** POST (new) or PATCH (edit) the NPC. */
    async function save() {
      shell.showError(null);
      if (!name.value.trim()) { shell.showError('Give the NPC a name.'); name.focus(); return; }
      const body = { name: name.value.trim(), gender: gender.value, description: description.value,
        personality: personality.value, visual_tags: tags.value };
      submit.disabled = true;
      try {
        saved = npcId
          ? await patch(`/api/npcs/${npcId}`, body, { signal: life.signal, quiet: true })
          : await post(`/api/chats/${chatId}/npcs`, body, { signal: life.signal, quiet: true });
        shell.dialog.close();
      } catch (err) {
        if (err?.name === 'AbortError') return;
        submit.disabled = false;
        shell.showError(err?.detail ?? String(err));
      }
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    name.focus();
    if (npcId) {
      submit.disabled = true;
      npcFields(npcId, life.signal).then((f) => {
        name.value = f.name;
        gender.value = GENDERS.some(([g]) => g === f.gender) ? f.gender : 'other';
        description.value = f.description;
        personality.value = f.personality;
        tags.value = f.visual_tags;
        submit.disabled = false;
      }).catch((err) => { if (err?.name !== 'AbortError') shell.showError(err?.detail ?? String(err)); });
    }
  });
}

/**
 * The action buttons of an NPC row: Edit, Delete, "Promote to library". Each calls run(kind, npcId) where kind
 * is 'edit' | 'delete' | 'promote'.
 */
export function npcActions(member, run) {
  const action = (label, kind, variant = 'btn-ghost') => el('button', {
    type: 'button', class: ['btn', variant, 'btn-small', 'npc-action'], dataset: { kind },
    'aria-label': `${label} ${member.name}`, on: { click: () => run(kind, member.character_id) },
  }, label);
  return el('div', { class: 'npc-actions', role: 'group', 'aria-label': `NPC ${member.name}` },
    action('Edit', 'edit'), action('Delete', 'delete'), action('Promote to library', 'promote'));
}

/** Delete NPC `npcId` after the user confirms; true when deleted. */
export async function deleteNpc(npcId, name, signal) {
  if (!window.confirm(`Delete the NPC "${name}"? Their messages stay in the chat.`)) return false;
  await del(`/api/npcs/${npcId}`, { signal, quiet: true });
  return true;
}

/** Promote NPC `npcId` to a library character; resolves to the character. */
export function promoteNpc(npcId, signal) {
  return post(`/api/npcs/${npcId}/promote`, {}, { signal, quiet: true });
}
