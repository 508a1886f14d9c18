/**
 * Card generation in the library: "Generate character" (a description -> a draft in the card editor),
 * per-field "Regenerate", "Make card from chat" (cast panel), and "Generate world" (draft entries to edit).
 * Drafts are never stored until the user saves them; the draft itself waits in sessionStorage. While the model
 * writes, a strip (llmtasks.js) shows the tokens so far and a Cancel button.
 */

import { ApiError, post, put } from '../api.js';
import { el, replace } from '../dom.js';
import { createLLMProgress } from '../llmtasks.js';
import { href, navigate as go } from '../router.js';
import { toast } from '../toast.js';
import { cardData, cardForm } from './cardform.js';
import { checkbox, errorLine, field, numberInput, readNumber, splitList, textArea, textInput, uid } from './form.js';
import { icon, libButton } from './icons.js';

const DRAFT_KEY = 'neuralrp.cardgen.draft';
/** Card fields that have a "Regenerate" button. */
export const REGENERATE_FIELDS = ['description', 'personality', 'scenario', 'first_mes', 'mes_example'];

/** The server's sentence for a failed call. */
const detailOf = (err) => (err instanceof ApiError ? err.detail : String(err?.message ?? err));

/** Keep a draft ({card, chat_id?, character_id?, npc?}) for the draft editor page. */
export function keepDraft(draft) {
  sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
}

/** The waiting draft, or null. */
function readDraft() {
  try { return JSON.parse(sessionStorage.getItem(DRAFT_KEY) ?? 'null'); } catch { return null; }
}

/** A modal dialog with a title, body and actions; returns {dialog, close()}. */
function modal(title, body, actions, className = '') {
  const titleId = uid('gen-title');
  const dialog = el('dialog', { class: ['lib-dialog', 'gen-dialog', className], 'aria-labelledby': titleId },
    el('h2', { class: 'lib-dialog-title', id: titleId }, title), body,
    el('div', { class: 'lib-dialog-actions' }, actions));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close: () => dialog.close() };
}

/** Run `call` with the button busy and the error line cleared; shows the server's sentence on failure. */
async function busy(button, problem, call) {
  if (button.getAttribute('aria-disabled') === 'true') return undefined;
  button.setAttribute('aria-disabled', 'true');
  button.classList.add('is-busy');
  problem.hide();
  try {
    return await call();
  } catch (err) {
    if (err?.name !== 'AbortError') problem.show(detailOf(err));
    return undefined;
  } finally {
    button.removeAttribute('aria-disabled');
    button.classList.remove('is-busy');
  }
}

/** The "Generate character" dialog: a description (and optional name) -> the draft editor. */
export function openGenerateCharacter({ navigate = go } = {}) {
  const description = textArea('gen_description', '', { rows: 6,
    placeholder: 'A few sentences: who they are, how they look, what they are like.' });
  const name = textInput('gen_name', '', { placeholder: 'Optional' });
  const problem = errorLine();
  const progress = createLLMProgress({ kinds: ['cardgen'] });
  const run = libButton('Generate', { variant: 'primary', onClick: () => busy(run, problem, async () => {
    if (!description.value.trim()) { problem.show('Describe the character first.'); return; }
    const body = { description: description.value, name: name.value.trim() || null };
    const { card } = await progress.track(post('/api/cardgen/character', body, { quiet: true }));
    keepDraft({ card });
    shell.close();
    navigate('library', 'draft');
  }) });
  const shell = modal('Generate character', el('div', { class: 'gen-body' },
    field('Description', description, { wide: true }), field('Name', name), problem.node, progress.node),
  [libButton('Cancel', { variant: 'ghost', onClick: () => shell.close() }), run]);
  description.focus();
}

/** The library header button that opens the dialog. */
export function generateCharacterButton(ctx) {
  return libButton('Generate character', { icon: 'plus', onClick: () => openGenerateCharacter(ctx) });
}

/**
 * Add a "Regenerate" button to each generated field of a card form (`getCard` gives the card to send), on the
 * field's label row, right-aligned; it reads "Generate" while the field is empty.
 */
export function regenerateButtons(form, { getCard = () => form.cardToSave(), signal } = {}) {
  for (const key of REGENERATE_FIELDS) {
    const input = form.controls.get(key);
    const box = input?.closest('.lib-field');
    const label = box?.querySelector('.lib-label');
    if (!box || !label) continue;
    const problem = errorLine();
    const button = libButton('Regenerate', { small: true, variant: 'ghost', icon: 'sparkle',
      onClick: () => busy(button, problem, async () => {
        const progress = createLLMProgress({ kinds: ['cardgen'], floating: true });
        const out = await progress.track(post('/api/cardgen/field', { card: getCard(), field: key },
          { quiet: true, signal }));
        input.value = out.value;
        input.dispatchEvent(new Event('input', { bubbles: true }));
      }) });
    button.classList.add('gen-regenerate');
    const name = label.textContent;
    const relabel = () => {
      const verb = input.value.trim() ? 'Regenerate' : 'Generate';
      button.querySelector('span').textContent = verb;
      button.setAttribute('aria-label', `${verb} ${name}`);
    };
    relabel();
    input.addEventListener('input', relabel);
    const row = el('div', { class: 'lib-label-row' });
    label.replaceWith(row);
    row.append(label, button);
    box.append(problem.node);
  }
}

/** Ask for a card built from what a cast member said in the chat, then open it as a draft. */
export async function makeCardFromChat(chatId, member, { before, navigate = go } = {}) {
  toast(`Building a card for ${member.name} from the chat…`);
  try {
    const progress = createLLMProgress({ kinds: ['cardgen'], floating: true });
    const draft = await progress.track(post('/api/cardgen/from-chat',
      { chat_id: chatId, character_id: member.character_id }, { quiet: true }));
    keepDraft(draft);
    before?.();
    navigate('library', 'draft');
  } catch (err) {
    toast(detailOf(err), { kind: 'error' });
  }
}

/** Store the draft: through from-chat/save for a cast member (promotes an NPC), else as a new character. */
async function saveDraft(draft, card, signal) {
  if (draft.chat_id && draft.character_id) {
    return post('/api/cardgen/from-chat/save', { chat_id: draft.chat_id, character_id: draft.character_id, card },
      { quiet: true, signal });
  }
  return post('/api/characters', card, { quiet: true, signal });
}

/** The draft editor page (#/library/draft): the card form with Regenerate buttons, Save and Discard. */
export function renderDraftEditor(root, { signal, navigate }) {
  const draft = readDraft();
  const crumbs = el('nav', { class: 'lib-crumbs', 'aria-label': 'Breadcrumb' },
    el('a', { href: href('library') }, icon('back', { size: 16 }), el('span', {}, 'Library')));
  if (!draft?.card) {
    root.append(crumbs, el('p', { class: 'lib-count' }, 'There is no draft to edit. Use "Generate character".'));
    return undefined;
  }
  const form = cardForm(draft.card, { onDirty: () => {}, signal });
  regenerateButtons(form, { signal });
  const problem = errorLine();
  const what = draft.npc ? 'Save and promote to the library' : 'Save to library';
  const save = libButton(what, { variant: 'primary', icon: 'save', type: 'submit' });
  const discard = libButton('Discard', { variant: 'ghost', onClick: () => {
    sessionStorage.removeItem(DRAFT_KEY);
    navigate('library');
  } });
  const store = () => busy(save, problem, async () => {
    const character = await saveDraft(draft, form.cardToSave(), signal);
    sessionStorage.removeItem(DRAFT_KEY);
    toast(`Saved ${character.name}.`, { kind: 'success' });
    navigate('library', 'character', character.id);
  });
  const formNode = el('form', { class: 'lib-editor-form gen-draft', novalidate: true, 'aria-label': 'Draft card',
    on: { submit: (e) => { e.preventDefault(); store(); } } },
  form.node,
  el('div', { class: 'lib-savebar' },
    el('div', { class: 'lib-savebar-text' }, el('p', { class: 'lib-save-status is-dirty', role: 'status' },
      'Draft: not saved yet'), problem.node), discard, save));
  const name = cardData(draft.card).name ?? 'Draft';
  root.append(crumbs, el('header', { class: 'gen-draft-head' },
    el('h1', { class: 'page-title' }, `Draft: ${name}`),
    el('p', { class: 'page-subtitle' }, 'Generated card. Edit anything, regenerate a field, then save.')), formNode);
  document.title = `Draft ${name} · NeuralRP`;
  return undefined;
}

/** One editable draft entry row of a generated world. */
function entryRow(entry, index) {
  const keys = textInput(`keys_${index}`, entry.keys.join(', '), { attrs: { 'aria-label': `Keys of entry ${index + 1}` } });
  const content = textArea(`content_${index}`, entry.content, { rows: 3,
    attrs: { 'aria-label': `Content of entry ${index + 1}` } });
  const canon = checkbox(`canon_${index}`, 'Canon law', entry.canon_law);
  const row = el('li', { class: 'gen-entry' }, keys, content, canon);
  row.read = () => ({ keys: splitList(keys.value), content: content.value.trim(),
    canon_law: canon.querySelector('input').checked });
  return row;
}

/** The "Generate world" dialog: description, name, count -> editable draft entries -> a new world. */
export function openGenerateWorld({ navigate = go } = {}) {
  const description = textArea('world_description', '', { rows: 5,
    placeholder: 'A few sentences about the setting: places, history, factions, rules.' });
  const name = textInput('world_name', '', { placeholder: 'World name' });
  const count = numberInput('world_count', 8, { min: 1, max: 30, step: 1 });
  const entries = el('ol', { class: 'gen-entries', 'aria-label': 'Draft entries' });
  const problem = errorLine();
  const progress = createLLMProgress({ kinds: ['cardgen'] });
  let rows = [];
  const run = libButton('Generate', { variant: 'primary', onClick: () => busy(run, problem, async () => {
    if (!description.value.trim()) { problem.show('Describe the setting first.'); return; }
    const draft = await progress.track(post('/api/cardgen/world', { description: description.value,
      name: name.value.trim() || null, count: readNumber(count, 8) }, { quiet: true }));
    if (!name.value.trim()) name.value = draft.name;
    rows = draft.entries.map(entryRow);
    replace(entries, rows);
    saveButton.hidden = false;
  }) });
  const saveButton = libButton('Save world', { variant: 'primary', icon: 'save',
    onClick: () => busy(saveButton, problem, async () => {
      const world = await post('/api/worlds', { name: name.value.trim() || 'Generated world' }, { quiet: true });
      await put(`/api/worlds/${world.id}`, { entries: rows.map((r) => r.read()) }, { quiet: true });
      shell.close();
      navigate('library', 'world', world.id);
    }) });
  saveButton.hidden = true;
  const shell = modal('Generate world', el('div', { class: 'gen-body' },
    field('Setting', description, { wide: true }), el('div', { class: 'gen-row' }, field('Name', name),
      field('Entries', count)), problem.node, progress.node, entries),
  [libButton('Cancel', { variant: 'ghost', onClick: () => shell.close() }), run, saveButton], 'gen-world-dialog');
  description.focus();
}

/** The worlds tab header button that opens the world dialog. */
export function generateWorldButton(ctx) {
  return libButton('Generate world', { icon: 'plus', onClick: () => openGenerateWorld(ctx) });
}
