/**
 * The "New chat" dialog: pick characters from the library and/or paste (or load from a .json file) a
 * character card, optionally a title, the persona (a library persona, else a name; the default persona is
 * preselected), the chat's own worlds and which greetings open a group chat; POST /api/chats and resolve to the
 * new chat.
 */

import { get, post } from '../api.js';
import { avatar } from '../avatar.js';
import { el, replace } from '../dom.js';
import { checkedWorlds, worldChecklist } from './chatworlds.js';
import { actionButton, icon } from './icons.js';

/** Read a File as text. */
function readText(file) {
  return typeof file.text === 'function' ? file.text() : new Response(file).text();
}

/** A labelled text field. */
function field(id, label, control, hint) {
  return el('div', { class: 'field' },
    el('label', { for: id, class: 'field-label' }, label),
    control,
    hint && el('p', { class: 'field-hint', id: `${id}-hint` }, hint));
}

/** The picture URL of a library summary, versioned so a new avatar is not hidden by the cache. */
function pictureUrl(c) {
  const base = c.avatar_url || `/api/characters/${c.id}/avatar`;
  return c.updated_at ? `${base}?v=${encodeURIComponent(c.updated_at)}` : base;
}

/** The checkbox list of library characters with their pictures (or a note when the library is empty). */
function characterPicker(characters) {
  if (!characters.length) {
    return el('p', { class: 'field-hint' }, 'Your library has no characters yet: paste a card below.');
  }
  return el('div', { class: 'pick-list' }, characters.map((c) => {
    const id = `newchat-char-${c.id}`;
    const blurb = c.description ?? c.card?.data?.description ?? '';
    return el('div', { class: 'pick' },
      el('input', { type: 'checkbox', id, name: 'character', value: String(c.id) }),
      el('label', { for: id },
        avatar({ name: c.name, url: pictureUrl(c), hasAvatar: Boolean(c.has_avatar), className: 'pick-avatar' }),
        el('span', { class: 'pick-text' },
          el('span', { class: 'pick-name' }, c.name),
          blurb && el('span', { class: 'pick-blurb' }, blurb.length > 90 ? `${blurb.slice(0, 90)}…` : blurb))));
  }));
}

/** Parse the pasted card; throws Error with a human sentence. */
function parseCard(text) {
  try {
    const card = JSON.parse(text);
    if (!card || typeof card !== 'object' || Array.isArray(card)) throw new Error('not an object');
    return card;
  } catch (err) {
    throw new Error(`The card is not valid JSON (${err.message}). Paste a character card's JSON object.`);
  }
}

/** Open the dialog; resolves to the created chat, or null when cancelled. */
export function openNewChatDialog() {
  return new Promise((resolve) => {
    let result = null;
    const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
    const picker = el('div', { class: 'picker' }, el('p', { class: 'field-hint' }, 'Loading characters…'));
    const cardText = el('textarea', { id: 'newchat-card', class: 'input mono', rows: 5, spellcheck: 'false',
      placeholder: '{"spec": "chara_card_v2", "data": {"name": "…", "first_mes": "…"}}' });
    const cardFile = el('input', { id: 'newchat-file', class: 'input-file', type: 'file',
      accept: '.json,application/json' });
    const title = el('input', { id: 'newchat-title', class: 'input', type: 'text', autocomplete: 'off' });
    const persona = el('input', { id: 'newchat-persona', class: 'input', type: 'text', autocomplete: 'off',
      placeholder: 'User' });
    const personaPick = el('select', { id: 'newchat-persona-pick', class: 'input' },
      el('option', { value: '' }, '— type a name —'));
    const personaRow = field('newchat-persona-pick', 'Persona', personaPick);
    personaRow.hidden = true; // shown once the library has personas
    const worlds = el('div', { class: 'picker' }, el('p', { class: 'field-hint' }, 'Loading worlds…'));
    const greetings = el('select', { id: 'newchat-greetings', class: 'input' },
      el('option', { value: '' }, 'As in Settings'),
      el('option', { value: 'all' }, 'Every member\'s greeting, in cast order'),
      el('option', { value: 'first' }, 'Only the first member\'s greeting'));
    const start = actionButton('Start chat', { variant: 'primary', icon: 'chat', type: 'submit' });

    const form = el('form', { class: 'dialog-form', method: 'dialog', novalidate: true,
      on: { submit: (event) => { event.preventDefault(); submit(); } } },
    el('header', { class: 'dialog-head' },
      el('h2', { id: 'newchat-title-h', class: 'dialog-title' }, 'New chat'),
      el('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close',
        on: { click: () => dialog.close() } }, icon('close', { size: 18 }))),
    el('div', { class: 'dialog-body' },
      el('fieldset', { class: 'fieldset' }, el('legend', { class: 'field-label' }, 'Characters'), picker),
      el('div', { class: 'or-sep' }, el('span', {}, 'or start from a card')),
      field('newchat-card', 'Card JSON', cardText, 'A SillyTavern character card (V1 or V2 JSON).'),
      field('newchat-file', 'Card file', cardFile),
      el('div', { class: 'field-row' },
        field('newchat-title', 'Title (optional)', title),
        personaRow,
        field('newchat-persona', 'Persona name', persona)),
      el('fieldset', { class: 'fieldset' }, el('legend', { class: 'field-label' }, 'Worlds (optional)'), worlds),
      field('newchat-greetings', 'Greetings', greetings, 'For a group chat: how the chat opens.')),
    el('footer', { class: 'dialog-foot' }, error,
      actionButton('Cancel', { variant: 'ghost', onClick: () => dialog.close() }), start));

    const dialog = el('dialog', { class: 'dialog', 'aria-labelledby': 'newchat-title-h' }, form);

    /** Show or hide the dialog's error sentence. */
    function showError(text) {
      error.hidden = !text;
      replace(error, text ? [icon('alert', { size: 16 }), el('span', {}, text)] : []);
    }

    /** The request body from the form; throws Error with a sentence when it cannot be sent. */
    function requestBody() {
      const ids = [...form.querySelectorAll('input[name=character]:checked')].map((box) => Number(box.value));
      const body = { character_ids: ids };
      if (cardText.value.trim()) body.card = parseCard(cardText.value);
      if (!ids.length && !body.card) throw new Error('Pick a character or paste a character card.');
      if (title.value.trim()) body.title = title.value.trim();
      if (personaPick.value) body.persona_id = Number(personaPick.value);
      else if (persona.value.trim()) body.persona = { name: persona.value.trim() };
      const worldIds = checkedWorlds(worlds);
      if (worldIds.length) body.world_ids = worldIds;
      if (greetings.value) body.greetings = greetings.value;
      return body;
    }

    /** Create the chat; on success close with it. */
    async function submit() {
      if (start.disabled) return;
      let body;
      try { body = requestBody(); } catch (err) { showError(err.message); return; }
      showError(null);
      start.disabled = true;
      try {
        result = await post('/api/chats', body, { quiet: true });
        dialog.close();
      } catch (err) {
        showError(err?.detail ?? String(err));
      } finally {
        start.disabled = false;
      }
    }

    cardFile.addEventListener('change', async () => {
      const file = cardFile.files?.[0];
      if (!file) return;
      try {
        cardText.value = await readText(file);
        showError(null);
      } catch {
        showError(`Could not read ${file.name}.`);
      }
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });

    personaPick.addEventListener('change', () => {
      persona.closest('.field').hidden = Boolean(personaPick.value);
    });
    document.body.append(dialog);
    dialog.showModal();
    get('/api/personas', { quiet: true }).then((personas) => {
      if (!personas?.length) return;
      personaPick.append(...personas.map((p) => el('option', { value: String(p.id), selected: p.is_default },
        p.is_default ? `${p.name} (default)` : p.name)));
      personaRow.hidden = false;
      personaPick.dispatchEvent(new Event('change'));
    }).catch(() => {}); // a name can still be typed
    get('/api/worlds', { quiet: true })
      .then((list) => replace(worlds, worldChecklist(list ?? [], [], 'newchat-world')))
      .catch((err) => replace(worlds, el('p', { class: 'form-error' }, err?.detail ?? String(err))));
    get('/api/characters', { quiet: true })
      .then((characters) => {
        replace(picker, characterPicker(characters ?? []));
        if (!dialog.open || !dialog.querySelector('.icon-btn')?.matches(':focus')) return;
        (picker.querySelector('input') ?? cardText).focus();
      })
      .catch((err) => replace(picker, el('p', { class: 'form-error' }, err?.detail ?? String(err))));
  });
}
