/**
 * The persona library on the Settings page, like SillyTavern's Persona Management: who you play in chats. Each
 * persona has a name (it stands for {{user}}), a description the prompt carries, an optional picture, and one is
 * the default for new chats. Editing a persona updates every chat playing it. /api/personas.
 */

import { avatar } from './avatar.js';
import { api, del, get, patch, post } from './api.js';
import { el, replace } from './dom.js';
import { personaImporter } from './personaimport.js';
import { toast } from './toast.js';
import { card } from './ui.js';

let counter = 0;

/** The persona's picture (versioned so a new one is not hidden by the cache). */
function picture(p) {
  return avatar({ name: p.name, url: p.avatar_url, hasAvatar: Boolean(p.has_avatar), className: 'persona-avatar' });
}

/** The add / edit form; onSaved() after the persona (and its picture) were stored. */
function personaForm(persona, { onSaved, onCancel }) {
  const n = (counter += 1);
  const name = el('input', { id: `persona-name-${n}`, class: 'input', type: 'text', value: persona?.name ?? '',
    autocomplete: 'off', maxlength: 100 });
  const description = el('textarea', { id: `persona-desc-${n}`, class: 'input', rows: 4,
    placeholder: 'Who {{user}} is: looks, manner, history. Sent with every prompt.' });
  description.value = persona?.description ?? '';
  const file = el('input', { id: `persona-pic-${n}`, class: 'input-file', type: 'file', accept: 'image/*' });
  const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
  const save = el('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Save persona');
  const label = (id, text) => el('label', { for: id, class: 'field-label' }, text);
  const form = el('form', { class: 'persona-form', novalidate: true, on: { submit: async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const body = { name: name.value.trim(), description: description.value };
      const saved = persona ? await patch(`/api/personas/${persona.id}`, body, { quiet: true })
        : await post('/api/personas', body, { quiet: true });
      if (file.files?.[0]) {
        const data = new FormData();
        data.append('file', file.files[0]);
        await api(`/api/personas/${saved.id}/avatar`, { method: 'POST', body: data, quiet: true });
      }
      onSaved(saved);
    } catch (err) {
      error.hidden = false;
      error.textContent = err?.detail ?? String(err);
    } finally {
      save.disabled = false;
    }
  } } },
  el('div', { class: 'field' }, label(name.id, 'Persona name'), name),
  el('div', { class: 'field' }, label(description.id, 'Persona description'), description),
  el('div', { class: 'field' }, label(file.id, 'Picture'), file),
  error,
  el('div', { class: 'persona-form-actions' }, save,
    el('button', { type: 'button', class: 'btn btn-ghost btn-small', on: { click: onCancel } }, 'Cancel')));
  queueMicrotask(() => name.focus());
  return form;
}

/** One persona row with its actions. */
function personaRow(p, { edit, reload }) {
  const act = (text, fn) => el('button', { type: 'button', class: 'btn btn-ghost btn-small',
    'aria-label': `${text}: ${p.name}`, on: { click: fn } }, text);
  return el('li', { class: 'persona', dataset: { personaId: p.id } }, picture(p),
    el('div', { class: 'persona-text' },
      el('p', { class: 'persona-name' }, p.name, p.is_default && el('span', { class: 'badge badge-accent' },
        'Default')),
      p.description && el('p', { class: 'persona-desc' }, p.description)),
    el('div', { class: 'persona-actions' },
      act('Edit', () => edit(p)),
      !p.is_default && act('Make default', async () => {
        await patch(`/api/personas/${p.id}`, { is_default: true });
        reload();
      }),
      act('Delete', async () => {
        await del(`/api/personas/${p.id}`);
        toast(`Deleted the persona ${p.name}; chats that played it keep its name.`, { kind: 'success' });
        reload();
      })));
}

/** The Personas card for the Settings page (it loads itself). */
export function personaPanel({ signal } = {}) {
  const list = el('ul', { class: 'persona-list', 'aria-label': 'Personas' });
  const formSlot = el('div', { class: 'persona-form-slot' });
  const add = el('button', { type: 'button', class: 'btn btn-secondary btn-small', on: { click: () => edit(null) } },
    'Add persona');

  /** Open the form for a persona (null: a new one). */
  function edit(persona) {
    replace(formSlot, personaForm(persona, {
      onSaved: (saved) => {
        replace(formSlot);
        toast(`Saved the persona ${saved.name}.`, { kind: 'success' });
        load();
      },
      onCancel: () => { replace(formSlot); add.focus(); },
    }));
  }

  /** Fetch and draw the personas. */
  async function load() {
    try {
      const personas = (await get('/api/personas', { signal, quiet: true })) ?? [];
      replace(list, personas.length ? personas.map((p) => personaRow(p, { edit, reload: load }))
        : el('li', { class: 'field-hint' }, 'No personas yet: chats call you "User" unless you type a name.'));
    } catch (err) {
      if (err?.name !== 'AbortError') replace(list, el('li', { class: 'form-error' }, err?.detail ?? String(err)));
    }
  }

  const importer = personaImporter({ onImported: () => load() });
  load();
  return card({ title: 'Personas', icon: 'chat', className: 'settings-card persona-card' },
    el('p', { class: 'field-hint' }, 'Who you play. The name stands for {{user}}; the description goes into the '
      + 'prompt. The default persona is used by new chats; a chat can change its persona later.'),
    list, formSlot, importer.panel, el('div', { class: 'persona-card-actions' }, add, importer.button),
    importer.input);
}
