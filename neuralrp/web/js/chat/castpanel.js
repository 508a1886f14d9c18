/**
 * Cast and mode controls of a chat header: the Narrator / Focus / Auto switch (PATCH /api/chats/{id}) with a
 * focus character select, and the "Cast" button opening a panel to make members active or inactive and to add
 * library characters (PUT /api/chats/{id}/cast). NPCs: "Add NPC", and Edit / Delete / "Promote to library" on an NPC
 * row (see npcdialog.js). "Speak now" on an active member makes them answer at once (POST /api/chats/{id}/speak).
 */

import { get, patch, put } from '../api.js';
import { memberAvatar } from '../avatar.js';
import { toast } from '../toast.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { toolButton } from './inspector.js';
import { modalShell } from './summaries.js';
import { deleteNpc, npcActions, openNpcDialog, promoteNpc } from './npcdialog.js';
import { makeCardFromChat } from '../library/generate.js';

/** The reply modes: label, tooltip, and the sentence the chat header shows for the mode in use. */
export const MODES = [
  { value: 'narrator', label: 'Narrator', hint: 'Third person: any cast member may speak',
    sentence: 'a narrator tells the scene; any cast member may speak' },
  { value: 'focus', label: 'Focus', hint: 'Only the focus character speaks',
    sentence: 'only the focus character replies' },
  { value: 'auto', label: 'Auto', hint: 'NeuralRP picks who speaks next: whoever is addressed (several answer in '
    + 'turn), else recent activity',
  sentence: 'NeuralRP picks who replies: whoever you address, in turn, else who spoke last' },
];
let counter = 0;

/**
 * The mode switch: a radio group (accessible names "Narrator", "Focus", "Auto") plus a "Focus character" select
 * shown in Focus mode. onChange(chat) gets the chat the server returns. Returns {node, show(chat)}.
 */
function createModeSwitch({ chatId, signal, onChange }) {
  const name = `chat-mode-${(counter += 1)}`;
  let chat = null;
  let busy = false;
  const radios = MODES.map((m) => el('input', { type: 'radio', name, value: m.value, class: 'mode-radio',
    id: `${name}-${m.value}`, disabled: true, on: { change: () => choose(m.value) } }));
  const select = el('select', { class: 'input mode-focus', 'aria-label': 'Focus character',
    on: { change: () => choose('focus', Number(select.value)) } });
  const node = el('div', { class: 'chat-mode' },
    el('fieldset', { class: 'mode-switch' },
      el('legend', { class: 'sr-only' }, 'Reply mode'),
      MODES.map((m, i) => el('span', { class: 'mode-option' }, radios[i],
        el('label', { for: radios[i].id, title: m.hint }, m.label)))),
    select);

  /** Reflect a chat's mode and active cast. */
  function show(next) {
    chat = next;
    for (const r of radios) { r.checked = r.value === chat.mode; r.disabled = busy; }
    const active = (chat.cast ?? []).filter((c) => c.is_active);
    replace(select, active.map((c) => el('option', { value: String(c.character_id) }, c.name)));
    if (active.some((c) => c.character_id === chat.focus_character_id)) select.value = String(chat.focus_character_id);
    select.hidden = chat.mode !== 'focus';
    select.disabled = busy || active.length === 0;
  }

  /** PATCH the mode (and focus character); on failure the control goes back to the server's state. */
  async function choose(mode, focusId = null) {
    if (!chat) return;
    const body = { mode };
    if (mode === 'focus') {
      const active = (chat.cast ?? []).filter((c) => c.is_active).map((c) => c.character_id);
      const wanted = focusId ?? chat.focus_character_id;
      const target = active.includes(wanted) ? wanted : active[0];
      if (target !== undefined) body.focus_character_id = target;
    }
    busy = true;
    for (const r of radios) r.disabled = true;
    select.disabled = true;
    try {
      const updated = await patch(`/api/chats/${chatId}`, body, { signal });
      if (!signal?.aborted) onChange(updated);
    } catch (err) {
      if (err?.name !== 'AbortError' && chat) show(chat); // the toast told why
    } finally {
      busy = false;
      for (const r of radios) r.disabled = false;
      if (chat) show(chat);
    }
  }

  return { node, show };
}

/**
 * Open the Cast panel: every member with an "active" switch, and "Add character" from the library.
 * onChange(chat) runs after each change. Resolves when the panel closes.
 */
export function openCastPanel({ chatId, chat: initial, onChange, onSpeak = null }) {
  return new Promise((resolve) => {
    let chat = initial;
    let library = null;
    const life = new AbortController();
    const list = el('ul', { class: 'cast-list', 'aria-label': 'Cast members' });
    const pick = el('select', { id: `cast-add-${(counter += 1)}`, class: 'input' });
    const add = el('button', { type: 'button', class: 'btn btn-secondary', on: { click: () => addPicked() } }, 'Add');
    const adder = el('div', { class: 'cast-add' },
      el('label', { for: pick.id, class: 'field-label' }, 'Add character'),
      el('div', { class: 'cast-add-row' }, pick, add),
      el('p', { class: 'field-hint' }, 'A character added here joins the scene now; their full card is sent for the '
        + 'next few turns.'));
    const addNpc = el('button', { type: 'button', class: 'btn btn-secondary btn-small cast-add-npc',
      on: { click: () => npcAction('create', null) } }, 'Add NPC');
    const npcBox = el('div', { class: 'cast-npc' }, addNpc,
      el('p', { class: 'field-hint' }, 'An NPC belongs to this chat only; promote one to keep them in the library.'));
    const shell = modalShell({
      title: 'Cast', className: 'cast-dialog', body: [list, adder, npcBox],
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Done')],
      onClose: () => { life.abort(); resolve(); },
    });

    /** Redraw the members and the add picker. */
    function render() {
      replace(list, (chat.cast ?? []).map((c) => memberRow(c)));
      fillPicker();
    }

    /**
     * One member: picture, name (with an NPC or Library tag), state and the active switch; under them the
     * member's actions. A library character: open its card, or draft an updated card from this chat. An NPC:
     * Edit, Delete, "Promote to library", or a full card drafted from this chat (saving it promotes them).
     */
    function memberRow(member) {
      const id = `cast-active-${chatId}-${member.character_id}`;
      const box = el('input', { type: 'checkbox', role: 'switch', id, class: 'switch cast-switch',
        checked: member.is_active, on: { change: () => setActive(member.character_id, box.checked, box) } });
      const focus = chat.mode === 'focus' && chat.focus_character_id === member.character_id;
      const fromChat = el('button', { type: 'button', class: 'btn btn-ghost btn-small cast-make-card',
        title: member.is_npc ? 'Drafts a full character card from what they said and did in this chat; saving it '
          + 'adds them to your library.' : 'Drafts an updated card from what they said and did in this chat; you '
          + 'review it before it replaces the library card.',
        'aria-label': `${member.is_npc ? 'Card from chat' : 'Update card from chat'}: ${member.name}`,
        on: { click: () => makeCardFromChat(chatId, member, { before: () => shell.dialog.close() }) } },
      member.is_npc ? 'Card from chat' : 'Update card from chat');
      const speak = onSpeak && member.is_active && el('button', { type: 'button',
        class: 'btn btn-secondary btn-small cast-speak', 'aria-label': `Speak now: ${member.name}`,
        title: `${member.name} answers now, without a new message from you`,
        on: { click: () => { shell.dialog.close(); onSpeak(member); } } }, 'Speak now');
      return el('li', { class: ['cast-member', !member.is_active && 'is-off', member.is_npc && 'is-npc'],
        dataset: { characterId: member.character_id } },
      memberAvatar(member, 'cast-avatar'),
      el('div', { class: 'cast-who' },
        el('label', { for: id, class: 'cast-name' }, el('span', { class: 'cast-name-text' }, member.name),
          el('span', { class: ['cast-kind', member.is_npc ? 'cast-npc-tag' : 'cast-lib-tag'] },
            member.is_npc ? 'NPC' : 'Library')),
        el('span', { class: 'cast-state' }, member.is_active ? (focus ? 'In focus' : 'In the scene') : 'Off stage')),
      box,
      el('div', { class: 'cast-actions' },
        member.is_npc ? npcActions(member, npcAction)
          : el('a', { class: 'btn btn-ghost btn-small cast-open-card', href: href('library', 'character',
            member.character_id), 'aria-label': `Open the card of ${member.name}`,
          on: { click: () => shell.dialog.close() } }, 'Open card'),
        speak, fromChat));
    }

    /** Create, edit, delete or promote an NPC, then reload the chat. */
    async function npcAction(kind, npcId) {
      shell.showError(null);
      const member = (chat.cast ?? []).find((c) => c.character_id === npcId);
      try {
        if (kind === 'create' || kind === 'edit') {
          if (!(await openNpcDialog({ chatId, npcId }))) return;
        } else if (kind === 'delete') {
          if (!(await deleteNpc(npcId, member?.name ?? 'NPC', life.signal))) return;
        } else if (kind === 'promote') {
          const character = await promoteNpc(npcId, life.signal);
          toast(`${character.name} is now in your library.`, { kind: 'success' });
        }
        chat = await get(`/api/chats/${chatId}`, { signal: life.signal, quiet: true });
        onChange(chat);
        render();
        (kind === 'create' ? addNpc : list.querySelector(`[data-character-id="${npcId}"] .cast-switch`) ?? addNpc)
          .focus();
      } catch (err) {
        if (err?.name !== 'AbortError') shell.showError(err?.detail ?? String(err));
      }
    }

    /** The library characters not in the cast yet. */
    function fillPicker() {
      if (library === null) {
        replace(pick, el('option', { value: '' }, 'Loading…'));
        pick.disabled = add.disabled = true;
        return;
      }
      const inCast = new Set((chat.cast ?? []).map((c) => c.character_id));
      const options = library.filter((c) => !inCast.has(c.id));
      replace(pick, options.length
        ? options.map((c) => el('option', { value: String(c.id) }, c.name))
        : el('option', { value: '' }, 'Every library character is in the cast'));
      pick.disabled = add.disabled = options.length === 0;
    }

    /** PUT one member's state. */
    async function setActive(characterId, active, control = null) {
      shell.showError(null);
      if (control) control.disabled = true;
      try {
        chat = await put(`/api/chats/${chatId}/cast`, { character_id: characterId, is_active: active },
          { signal: life.signal, quiet: true });
        onChange(chat);
      } catch (err) {
        if (err?.name === 'AbortError') return;
        shell.showError(err?.detail ?? String(err));
      }
      render();
      list.querySelector(`#cast-active-${chatId}-${characterId}`)?.focus();
    }

    /** Add the character chosen in the picker. */
    async function addPicked() {
      const id = Number(pick.value);
      if (!id) return;
      await setActive(id, true);
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    render();
    get('/api/characters', { signal: life.signal, quiet: true })
      .then((characters) => { library = characters ?? []; fillPicker(); })
      .catch((err) => {
        if (err?.name === 'AbortError') return;
        library = [];
        fillPicker();
        shell.showError(err?.detail ?? String(err));
      });
  });
}

/**
 * The cast controls of a chat header: {mode, button, show(chat)}. `mode` is the mode switch, `button` opens the
 * Cast panel. onChange(chat) runs with the server's chat after every change.
 */
export function createCastControls({ chatId, signal, onChange, onSpeak = null }) {
  let chat = null;
  const modeSwitch = createModeSwitch({ chatId, signal, onChange });
  const count = el('span', { class: 'chat-tool-count', 'aria-hidden': 'true' });
  const button = toolButton('Cast', 'users', async () => {
    if (!chat) return;
    button.setAttribute('aria-expanded', 'true');
    await openCastPanel({ chatId, chat, onChange, onSpeak });
    button.setAttribute('aria-expanded', 'false');
    if (button.isConnected) button.focus({ preventScroll: true });
  }, { 'aria-haspopup': 'dialog', 'aria-expanded': 'false' });
  button.append(count);
  button.disabled = true; // enabled once the chat has loaded, so an early click is never dropped
  return {
    mode: modeSwitch.node,
    button,
    /** Reflect the chat (mode, focus, cast). */
    show(next) {
      chat = next;
      button.disabled = false;
      modeSwitch.show(next);
      const active = (next.cast ?? []).filter((c) => c.is_active).length;
      count.textContent = String(active);
    },
  };
}
