/**
 * The card editor's form: every V2 field in sections, tag chips and alternate greetings.
 * cardToSave() starts from a deep copy of the stored card, so fields the form does not show
 * (extensions, character_book, V3 fields, unknown keys) go back unchanged.
 */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { field, textArea, textInput, uid } from './form.js';
import { greetingsEditor } from './greetings.js';
import { tagChips } from './tagchips.js';

const TEXT = 'text';
const AREA = 'area';
const TAGS = 'tags';
const GREETINGS = 'greetings';
/** [data key, label, kind, rows, hint] per section. */
const SECTIONS = [
  ['Identity', [
    ['name', 'Name', TEXT],
    ['creator', 'Creator', TEXT],
    ['character_version', 'Version', TEXT],
    ['tags', 'Tags', TAGS],
    ['creator_notes', 'Creator notes', AREA, 3, 'For people reading the card; never sent to the model.'],
  ]],
  ['Character', [
    ['description', 'Description', AREA, 8, 'Who the character is. Sent with the card at reset points.'],
    ['personality', 'Personality', AREA, 3, 'A short personality summary.'],
    ['scenario', 'Scenario', AREA, 3, 'The circumstances the chat starts in.'],
    ['mes_example', 'Example dialogue', AREA, 6,
      'Blocks start with <START>; lines look like {{user}}: … and {{char}}: …'],
  ]],
  ['Greetings', [
    ['first_mes', 'First message', AREA, 6, 'The character speaks first with this message.'],
    ['alternate_greetings', 'Alternate greetings', GREETINGS],
  ]],
  ['Prompt overrides', [
    ['system_prompt', 'System prompt', AREA, 3,
      'Replaces the global system prompt when this character chats alone; {{original}} inserts it.'],
    ['post_history_instructions', 'Post-history instructions', AREA, 3,
      'Placed after the chat history; {{original}} inserts the reply instruction it would replace.'],
  ]],
];
export const TEXT_KEYS = SECTIONS.flatMap(([, fields]) => fields)
  .filter(([, , kind]) => kind === TEXT || kind === AREA).map(([key]) => key);
/** Top-level copies that SillyTavern keeps next to `data` (V1 mirror): kept in step when present. */
const MIRRORS = { name: 'name', description: 'description', personality: 'personality', scenario: 'scenario',
  first_mes: 'first_mes', mes_example: 'mes_example', creatorcomment: 'creator_notes' };

/** The card's data object (V2/V3 `data`, or the flat V1 object itself). */
export function cardData(card) {
  return card && typeof card.data === 'object' && card.data !== null ? card.data : (card ?? {});
}

/** A string value of the card, '' when absent or not a string. */
function text(data, key) {
  return typeof data[key] === 'string' ? data[key] : '';
}

/** The world the card links by name (extensions.world, SillyTavern's linked lorebook), '' for none. */
function linkedWorld(data) {
  const name = data?.extensions?.world;
  return typeof name === 'string' ? name.trim() : '';
}

/**
 * The "Linked world" select: every library world by name, '' for none; a linked name the library lacks stays
 * chosen (marked). The card's extensions.world is written from it. Returns {node, input, set(name)}.
 */
function worldPicker(current, { signal }) {
  const input = el('select', { class: 'lib-input lib-select', name: 'world' });
  let names = [];
  const set = (chosen) => {
    const known = names.find((n) => n.toLowerCase() === chosen.toLowerCase());
    replace(input, el('option', { value: '' }, 'None'),
      chosen && !known && el('option', { value: chosen }, `${chosen} (not in the library)`),
      names.map((n) => el('option', { value: n }, n)));
    input.value = known ?? chosen;
  };
  set(current);
  get('/api/worlds', { signal, quiet: true })
    .then((worlds) => {
      if (signal?.aborted) return;
      names = (worlds ?? []).map((w) => w.name);
      set(input.value);
    })
    .catch(() => {}); // the current link stays shown; saving keeps it
  const hint = 'Its lore joins every chat this character is in. The card keeps the world\'s name, as SillyTavern '
    + 'does.';
  return { node: field('Linked world', input, { hint, wide: true }), input, set };
}

/** One section card with its title and fields. */
function section(title, ...children) {
  const id = `lib-sec-${title.toLowerCase().replace(/\W+/g, '-')}`;
  return el('section', { class: 'lib-section', 'aria-labelledby': id },
    el('h2', { class: 'lib-section-title', id }, title), children);
}

/**
 * cardForm(card, {onDirty, signal}) -> {node, controls, cardToSave(), fill(card), rebase(card)}.
 * controls maps data keys to their inputs (for marking a field the server refused).
 */
export function cardForm(initialCard, { onDirty, signal }) {
  let stored = initialCard;
  const data = cardData(stored);
  const controls = new Map();
  const tags = tagChips(Array.isArray(data.tags) ? data.tags : [], { onChange: onDirty, signal });
  const greetings = greetingsEditor(Array.isArray(data.alternate_greetings) ? data.alternate_greetings : [],
    { onChange: onDirty });

  /** The input for one text field. */
  function control(key, kind, rows) {
    const input = kind === AREA
      ? textArea(key, text(data, key), { rows })
      : textInput(key, text(data, key), { attrs: key === 'name' ? { required: true } : {} });
    controls.set(key, input);
    return input;
  }

  /** A labelled block for a composite control (tags, greetings): a group named by its visible label. */
  function group(label, node) {
    const id = uid('group');
    return el('div', { class: 'lib-field lib-field-wide', role: 'group', 'aria-labelledby': id },
      el('span', { class: 'lib-label', id }, label), node);
  }

  /** The form row for one field spec. */
  function row([key, label, kind, rows, hint]) {
    if (kind === TAGS) return group(label, tags.node);
    if (kind === GREETINGS) return group(label, greetings.node);
    return field(label, control(key, kind, rows), { hint, wide: kind === AREA });
  }

  const world = worldPicker(linkedWorld(data), { signal });
  const sections = SECTIONS.map(([title, fields]) => section(title,
    el('div', { class: ['lib-fields', title === 'Identity' && 'lib-fields-3'] }, fields.map(row))));
  sections.push(section('World', el('div', { class: 'lib-fields' }, world.node)));

  // A text area reports "\r\n" as "\n": a field the user did not touch is sent exactly as stored.
  let shown = new Map([...controls].map(([key, input]) => [key, input.value]));

  /** The full card to PUT: the stored card with the edited fields written over it. */
  function cardToSave() {
    const card = structuredClone(stored);
    const target = cardData(card);
    for (const key of TEXT_KEYS) {
      const value = controls.get(key).value;
      if (value !== shown.get(key) || typeof target[key] !== 'string') target[key] = value;
    }
    target.tags = tags.value();
    target.alternate_greetings = greetings.value();
    if (world.input.value !== linkedWorld(target)) {
      target.extensions = { ...(target.extensions ?? {}), world: world.input.value };
    }
    if (target !== card) {
      for (const [top, key] of Object.entries(MIRRORS)) {
        if (typeof card[top] === 'string') card[top] = target[key];
      }
      if (Array.isArray(card.tags)) card.tags = [...target.tags];
    }
    return card;
  }

  /** Remember the card the server stored (after a save) and show its text values. */
  function fill(card) {
    stored = card;
    const next = cardData(card);
    for (const key of TEXT_KEYS) {
      const input = controls.get(key);
      if (input.value !== text(next, key)) input.value = text(next, key);
    }
    shown = new Map([...controls].map(([key, input]) => [key, input.value]));
    world.set(linkedWorld(next));
  }

  /** Adopt a card stored by another route (the visual tags), keeping unsaved edits in the form. */
  function rebase(card) {
    if (card) stored = card;
  }

  return { node: el('div', { class: 'lib-form-sections' }, sections), controls, cardToSave, fill, rebase };
}
