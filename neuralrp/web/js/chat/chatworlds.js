/**
 * Chat header extras for issue 14: the "Worlds" window (the chat's own worlds to attach or detach, and the ones
 * its cast's cards or the global setting bring in, each with its link), the persona played in the chat (changed
 * with "Persona"), and "Delete chat" with an Undo toast (the chat list's "Deleted chats" can restore it later).
 */

import { del, get, patch, post, put } from '../api.js';
import { el, replace } from '../dom.js';
import { icon as libraryIcon } from '../library/icons.js';
import { undoToast } from '../toast.js';
import { toolButton } from './inspector.js';
import { modalShell } from './summaries.js';


/** A chat header tool button with an icon of the library set ('globe', 'user', 'trash'). */
export function headerTool(text, iconName, onClick) {
  const button = toolButton(text, 'layers', onClick);
  button.querySelector('svg')?.replaceWith(libraryIcon(iconName, { size: 17 }));
  return button;
}

/** "Eldoria — chat, Seraphina's card". */
export function worldLine(link) {
  return `${link.name} — ${link.label}`;
}

/** A checkbox row for one library world. */
function worldBox(world, checked, prefix) {
  const id = `${prefix}-${world.id}`;
  return el('li', { class: 'pick-world' },
    el('input', { type: 'checkbox', id, name: 'world', value: String(world.id), checked }),
    el('label', { for: id }, el('span', { class: 'pick-text' }, el('span', { class: 'pick-name' }, world.name),
      el('span', { class: 'pick-blurb' }, `${world.entry_count} ${world.entry_count === 1 ? 'entry' : 'entries'}`))));
}

/** The world checkboxes (checked: `chosen` ids) for the New chat dialog and the Worlds window. */
export function worldChecklist(worlds, chosen = [], prefix = 'world-pick') {
  if (!worlds.length) return el('p', { class: 'field-hint' }, 'Your library has no worlds yet.');
  return el('ul', { class: 'pick-list world-pick-list' },
    worlds.map((w) => worldBox(w, chosen.includes(w.id), prefix)));
}

/** The ids checked in a world checklist. */
export function checkedWorlds(node) {
  return [...node.querySelectorAll('input[name=world]:checked')].map((box) => Number(box.value));
}

/** Open the Worlds window of a chat; onChanged() after a save. Resolves when it closes. */
export function openChatWorlds({ chatId, onChanged = () => {} }) {
  return new Promise((resolve) => {
    const life = new AbortController();
    const picks = el('div', { class: 'chat-worlds-own' }, el('p', { class: 'field-hint' }, 'Loading worlds…'));
    const others = el('ul', { class: 'chat-worlds-others', 'aria-label': 'Worlds in use through other links' });
    const save = el('button', { type: 'button', class: 'btn btn-primary', on: { click: () => submit() } }, 'Save');
    const shell = modalShell({
      title: 'Worlds', className: 'chat-worlds-dialog',
      body: [el('h3', { class: 'field-label' }, 'This chat\'s worlds'), picks,
        el('h3', { class: 'field-label' }, 'Also in use'), others,
        el('p', { class: 'field-hint' }, 'Entries of every world in use share the lore budget (Settings → World).')],
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Cancel'), save],
      onClose: () => { life.abort(); resolve(); },
    });

    /** Show the library's worlds (the chat's checked) and the other links. */
    function render(library, doc) {
      replace(picks, worldChecklist(library, doc.world_ids, `chat-${chatId}-world`));
      const rest = doc.in_use.filter((link) => link.via.some((v) => v.via !== 'chat'));
      replace(others, rest.length
        ? rest.map((link) => el('li', { class: 'chat-world-link', dataset: { worldId: link.world_id } },
          worldLine(link)))
        : el('li', { class: 'field-hint' }, 'None: no card in the cast links a world, and no world is global.'));
    }

    /** PUT the checked worlds. */
    async function submit() {
      save.disabled = true;
      try {
        const doc = await put(`/api/chats/${chatId}/worlds`, { world_ids: checkedWorlds(picks) },
          { signal: life.signal, quiet: true });
        onChanged(doc);
        shell.dialog.close();
      } catch (err) {
        if (err?.name !== 'AbortError') shell.showError(err?.detail ?? String(err));
      } finally {
        save.disabled = false;
      }
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    Promise.all([get('/api/worlds', { signal: life.signal, quiet: true }),
      get(`/api/chats/${chatId}/worlds`, { signal: life.signal, quiet: true })])
      .then(([library, doc]) => render(library ?? [], doc))
      .catch((err) => { if (err?.name !== 'AbortError') shell.showError(err?.detail ?? String(err)); });
  });
}

/** Open the Persona window: pick a library persona (or type a name) for the chat. onChanged(chat) after. */
export function openChatPersona({ chat, onChanged = () => {} }) {
  return new Promise((resolve) => {
    const life = new AbortController();
    const choice = el('select', { id: `chat-persona-${chat.id}`, class: 'input' });
    const name = el('input', { id: `chat-persona-name-${chat.id}`, class: 'input', type: 'text',
      value: chat.persona?.persona_id ? '' : (chat.persona?.name ?? ''), placeholder: 'User' });
    const save = el('button', { type: 'button', class: 'btn btn-primary', on: { click: () => submit() } }, 'Use');
    const shell = modalShell({
      title: 'Persona', className: 'chat-persona-dialog',
      body: [el('div', { class: 'field' }, el('label', { for: choice.id, class: 'field-label' }, 'Play as'), choice),
        el('div', { class: 'field' }, el('label', { for: name.id, class: 'field-label' }, 'Or just a name'), name),
        el('p', { class: 'field-hint' }, 'Your next messages are written as this persona; its description goes '
          + 'into the prompt. Manage personas in Settings.')],
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Cancel'), save],
      onClose: () => { life.abort(); resolve(); },
    });

    /** PATCH the chat's persona. */
    async function submit() {
      const body = choice.value ? { persona_id: Number(choice.value) } : { persona: { name: name.value.trim() } };
      try {
        onChanged(await patch(`/api/chats/${chat.id}`, body, { signal: life.signal, quiet: true }));
        shell.dialog.close();
      } catch (err) {
        if (err?.name !== 'AbortError') shell.showError(err?.detail ?? String(err));
      }
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    get('/api/personas', { signal: life.signal, quiet: true }).then((personas) => {
      replace(choice, el('option', { value: '' }, '— the name below —'),
        (personas ?? []).map((p) => el('option', { value: String(p.id) }, p.name)));
      choice.value = chat.persona?.persona_id ? String(chat.persona.persona_id) : '';
    }).catch((err) => { if (err?.name !== 'AbortError') shell.showError(err?.detail ?? String(err)); });
  });
}

/**
 * Delete a chat, then offer "Undo" in a toast. onDeleted() after the delete (leave the chat), onRestored(chat)
 * after an undo.
 */
export async function deleteChatWithUndo(chat, { onDeleted, onRestored }) {
  try {
    await del(`/api/chats/${chat.id}`);
  } catch {
    return; // the toast told why
  }
  onDeleted();
  undoToast('Chat deleted.', async () => onRestored(await post(`/api/chats/${chat.id}/restore`, {})));
}
