/**
 * One open chat: header, message log and composer, wired to the chat API. Sends stream their reply live;
 * stop, regenerate, continue and swipes; a reply already in progress (another tab, a reload) is followed live
 * through GET /api/chats/{id}/stream (replayed from its start).
 * Keyboard: ← / → browse the newest reply's versions (→ past the newest writes one), ↑ edits your last message,
 * Esc stops a reply (shortcuts.js).
 * Chat craft: each message can be copied, edited in place, deleted (with undo), browsed in History, or forked from;
 * the header can rename and export the chat. '#/chat/{id}?seq=N' scrolls to message N and flashes it; with
 * '&message=ID' and no live message N (it was deleted or folded into a summary) its History dialog opens instead.
 */

import { get, post } from '../api.js';
import { el, replace } from '../dom.js';
import { currentRoute, href, navigate } from '../router.js';
import { badge } from '../ui.js';
import { createCastControls, MODES } from './castpanel.js';
import { deleteChatWithUndo, headerTool, openChatPersona, openChatWorlds } from './chatworlds.js';
import { createComposer } from './composer.js';
import { createEditor, createRenamer, deleteWithUndo, withIcon } from './edit.js';
import { createExportMenu } from './export.js';
import { openForkDialog } from './fork.js';
import { openHistory } from './history.js';
import { icon } from './icons.js';
import { createChatImages } from './images.js';
import { createInspector, toolButton } from './inspector.js';
import { chatName } from './list.js';
import { createMessageList } from './messages.js';
import { bindChatShortcuts } from './shortcuts.js';
import { followEvents, postEvents } from './stream.js';
import { summariesButton } from './summaries.js';

const PAGE = 200;

/** What the chat's reply mode means, in words ("Focus: only Seraphina replies, in the first person"). */
export function modeSentence(chat) {
  const mode = MODES.find((m) => m.value === chat.mode);
  if (!mode) return chat.mode ?? '';
  const focus = (chat.cast ?? []).find((c) => c.character_id === chat.focus_character_id);
  return `${mode.label}: ${mode.value === 'focus' && focus ? mode.sentence.replace('the focus character', focus.name)
    : mode.sentence}`;
}

/** A picture lookup for the message log: the speaker's cast entry gives its avatar. */
function castPictures(chat) {
  const byId = new Map((chat?.cast ?? []).map((c) => [c.character_id, c]));
  return (msg) => {
    const member = msg.role === 'assistant' ? byId.get(msg.character_id) : null;
    return member ? { url: member.avatar_url, hasAvatar: Boolean(member.has_avatar) } : null;
  };
}

/** True for an abort (leaving the view) rather than a failure. */
function aborted(err, signal) {
  return err?.name === 'AbortError' || signal?.aborted;
}

/** The chat header: back link (phones), title, cast and mode; `tools` (buttons) and `mode` (the switch). */
function chatHeader({ tools = [], mode = null } = {}) {
  const title = el('h1', { class: 'chat-title' }, 'Chat');
  const meta = el('p', { class: 'chat-meta' });
  const node = el('header', { class: 'chat-head' },
    el('a', { class: 'chat-back', href: href('chat'), 'aria-label': 'All chats' }, icon('back', { size: 20 })),
    el('div', { class: 'chat-head-text' }, title, meta),
    el('div', { class: 'chat-tools' }, tools), mode);
  return {
    node,
    title,
    /** Add more tool controls after the given ones. */
    addTools(...more) { node.querySelector('.chat-tools').append(...more); },
    /** Fill in the chat's name, cast and what its mode means. */
    show(chat) {
      title.textContent = chatName(chat);
      const cast = (chat.cast ?? []).map((c) => c.name).join(', ');
      const label = MODES.find((m) => m.value === chat.mode)?.label ?? chat.mode;
      replace(meta, chat.title && cast ? el('span', { class: 'chat-meta-cast' }, cast) : null,
        el('span', { class: 'chat-meta-mode' }, modeSentence(chat)), badge(label, 'accent'),
        chat.persona?.name ? el('span', { class: 'chat-meta-persona' }, `as ${chat.persona.name}`) : null);
    },
  };
}

/**
 * Render chat `chatId` into `container`. onActivity() runs after a reply ends (to refresh the chat list).
 * Returns {close()}.
 */
export function openChat(container, chatId, { signal, onActivity: listChanged = () => {} }) {
  const base = `/api/chats/${chatId}`;
  let generating = false;
  let watching = false;
  let stream = null; // AbortController of the running POST
  let current = null; // the chat as the server last sent it
  let pictures = () => null; // the speakers' avatars, from the chat's cast

  const inspector = createInspector({ chatId, signal });
  const cast = createCastControls({ chatId, signal, onChange: (chat) => showChat(chat),
    onSpeak: (member) => generate('speak', { character_id: member.character_id }) });
  const images = createChatImages({ chatId, signal });
  const header = chatHeader({ mode: cast.mode,
    tools: [cast.button, summariesButton({ chatId, onChanged: () => (generating ? inspector.refresh() : load()) }),
      inspector.button] });
  /** After a reply: refresh the chat list and the open prompt inspector. */
  const onActivity = () => { listChanged(); inspector.refresh(); };
  /** Show the chat's name, cast and mode everywhere. */
  const showChat = (chat) => {
    const castChanged = JSON.stringify(chat.cast) !== JSON.stringify(current?.cast);
    current = chat; header.show(chat); cast.show(chat); inspector.setChat(chat); images.setChat(chat);
    if (castChanged) { pictures = castPictures(chat); messages.redrawAll(); }
  };
  header.addTools(
    createRenamer({ chatId, titleNode: header.title, getTitle: () => current?.title ?? '', signal,
      onRenamed: (chat) => { showChat(chat); listChanged(); },
      makeButton: (text, fn) => withIcon(toolButton(text, 'edit', fn), 'edit') }),
    createExportMenu({ chatId, signal,
      makeButton: (text, fn, attrs) => withIcon(toolButton(text, 'download', fn, attrs), 'download') }).node,
    ...images.tools,
    headerTool('Worlds', 'globe', () => openChatWorlds({ chatId, onChanged: () => inspector.refresh() })),
    headerTool('Persona', 'user', () => current && openChatPersona({ chat: current,
      onChanged: (chat) => { showChat(chat); inspector.refresh(); } })),
    headerTool('Delete chat', 'trash', () => current && !generating && deleteChatWithUndo(current, {
      onDeleted: () => { listChanged(); navigate('chat'); },
      onRestored: (chat) => { listChanged(); navigate('chat', chat.id); } })));
  const earlier = el('button', { type: 'button', class: 'btn btn-ghost btn-small load-earlier', hidden: true,
    on: { click: () => loadEarlier() } }, 'Load earlier messages');
  const messages = createMessageList({ onSwipe: (msg, index) => swipe(msg, index), header: earlier,
    extras: (msg) => images.extras(msg), pictureOf: (msg) => pictures(msg), actions: {
    onEdit: (msg) => editMessage(msg),
    onDelete: (msg) => deleteWithUndo(msg, { signal, onDeleted: () => messages.remove(msg.id),
      onRestored: () => load() }),
    onHistory: (msg) => showHistory(msg.id),
    onFork: (msg) => fork(msg),
  } });
  const composer = createComposer({
    onSend: (text) => generate('messages', { content: text }, text),
    onStop: () => stop(),
    onRegenerate: () => generate('regenerate', {}),
    onContinue: () => generate('continue', {}),
  });
  images.attach(messages);
  replace(container, header.node, images.strip, messages.node, composer.node);
  bindChatShortcuts({ signal, composerInput: composer.input, isGenerating: () => generating,
    swipe: (step) => swipeLast(step), editLast: () => editLastOwn(), stop: () => stop() });

  /** Flip the busy state everywhere. */
  function setGenerating(flag) {
    generating = flag;
    composer.setGenerating(flag);
    messages.setBusy(flag);
  }

  /** Handle one streamed event; `state` carries the ids seen so far. */
  function onEvent(event, state) {
    if (event.type === 'user') {
      state.userId = event.message.id;
      messages.upsert(event.message);
      if (!state.watching) composer.clear(); // a followed reply: the draft in this tab is not that message
    } else if (event.type === 'start') {
      state.replyId = event.message.id;
      messages.upsert(event.message);
    } else if (event.type === 'token') {
      messages.appendText(state.replyId, event.text);
    } else if (event.type === 'done' && event.more) { // Auto: the next addressed character answers now
      settle(event.message, state, null);
      state.replyId = null;
    } else if (event.type === 'done' || event.type === 'error') {
      state.ended = true;
      settle(event.message, state, event.type === 'error' ? event.detail : null);
    }
  }

  /** Show the final reply (or drop its empty row) and any error sentence. */
  function settle(message, state, detail) {
    if (message) messages.upsert(message);
    else if (state.replyId !== null) messages.remove(state.replyId);
    if (!detail) return;
    const target = message?.id ?? state.userId ?? messages.last()?.id;
    if (target !== undefined && target !== null) messages.setError(target, detail);
    else composer.setNotice(detail);
  }

  /** A JSON answer instead of a stream: an error before any text (the user message is saved) or a 409. */
  function onJson(result, state, kind) {
    const data = result.body && typeof result.body === 'object' ? result.body : {};
    if (data.user) {
      state.userId = data.user.id;
      messages.upsert(data.user);
      composer.clear();
    }
    if (data.message) messages.upsert(data.message);
    const detail = result.detail ?? 'The reply failed.';
    if (result.status === 409 && kind === 'messages') {
      composer.setNotice(detail);
      watch();
      return;
    }
    const target = state.userId ?? (kind === 'messages' ? null : messages.lastReply()?.id);
    if (target !== null && target !== undefined && result.status >= 500) messages.setError(target, detail);
    else composer.setNotice(detail);
  }

  /** POST messages|regenerate|continue and follow the reply. `text` is the user's message, if any. */
  async function generate(kind, body, text = null) {
    if (generating) return;
    setGenerating(true);
    composer.setNotice(null);
    messages.clearErrors();
    const state = { userId: null, replyId: null, ended: false };
    stream = new AbortController();
    const stopStream = () => stream?.abort();
    signal.addEventListener('abort', stopStream, { once: true });
    let reload = false;
    try {
      const result = await postEvents(`${base}/${kind}`, body, {
        signal: stream.signal, onEvent: (event) => onEvent(event, state),
      });
      if (!result.streamed) onJson(result, state, kind);
      else reload = !state.ended; // the stream broke off: the server's copy is the truth
    } catch (err) {
      if (aborted(err, signal)) return;
      if (text !== null && state.userId === null) composer.restore(text);
      composer.setNotice(err?.detail ?? 'The connection to NeuralRP broke off while the reply was being written.');
      reload = state.replyId !== null;
    } finally {
      signal.removeEventListener('abort', stopStream);
      stream = null;
      if (!signal.aborted) {
        setGenerating(false);
        onActivity();
      }
    }
    if (reload) await load();
  }

  /** Ask the server to stop the reply; the stream then ends with `done` (stopped). */
  async function stop() {
    try {
      await post(`${base}/stop`, {}, { signal, quiet: true });
    } catch (err) {
      if (!aborted(err, signal)) composer.setNotice(err?.detail ?? String(err));
    }
  }

  /** Show another swipe of a reply; asking for the one after the newest writes a new version. */
  async function swipe(msg, index) {
    if (generating || index < 0) return;
    if (index >= Math.max(msg.swipe_count ?? 0, 1)) {
      await generate('regenerate', {});
      return;
    }
    try {
      messages.upsert(await post(`${base}/messages/${msg.id}/swipe`, { index }, { signal, quiet: true }));
    } catch (err) {
      if (!aborted(err, signal)) composer.setNotice(err?.detail ?? String(err));
    }
  }

  /** ← / →: the newest reply's previous or next version (past the newest: a new one). */
  function swipeLast(step) {
    const last = messages.last();
    if (!last || last.role !== 'assistant' || last.status === 'streaming') return;
    const index = Math.min(last.swipe_index ?? 0, Math.max(last.swipe_count ?? 0, 1) - 1) + step;
    if (index >= 0) swipe(last, index);
  }

  /** ↑: edit your newest message. */
  function editLastOwn() {
    const mine = messages.lastOfRole('user');
    if (mine) editMessage(mine);
  }

  /** Turn a message into its inline editor. */
  function editMessage(msg) {
    if (generating) return;
    const done = (updated) => {
      messages.setEditor(msg.id, null);
      if (updated) messages.upsert(updated);
      messages.node.querySelector(`.msg[data-id="${msg.id}"] .msg-action`)?.focus({ preventScroll: true });
    };
    const editor = createEditor(messages.get(msg.id) ?? msg, { signal,
      onSave: (m) => { done(m); inspector.refresh(); }, onCancel: () => done(null) });
    messages.setEditor(msg.id, editor);
    editor.focusInput();
  }

  /** The History dialog of a message; a restore reloads the log (a delete undone puts the message back). */
  async function showHistory(messageId, intro = null) {
    await openHistory({ messageId, intro, onRestored: () => { if (!signal.aborted) load({ keepScroll: true }); } });
  }

  /** Fork (Save As) from a message, then open the new chat. */
  async function fork(msg) {
    if (!current) return;
    const created = await openForkDialog({ chat: current, msg });
    if (created && !signal.aborted) {
      listChanged();
      navigate('chat', created.id);
    }
  }

  /** Scroll to the message with seq N named in the route (paging back when needed), or open its History. */
  async function jumpToRoute() {
    const query = currentRoute().query;
    const seq = Number(query.get('seq'));
    if (!query.has('seq') || !Number.isInteger(seq)) return;
    while (messages.findSeq(seq) === null && !earlier.hidden && (messages.first()?.seq ?? 0) > seq) {
      if (!(await loadEarlier()) || signal.aborted) break;
    }
    const id = messages.findSeq(seq);
    if (id !== null) { messages.highlight(id); return; }
    const messageId = Number(query.get('message'));
    if (messageId > 0) {
      showHistory(messageId, 'This message is no longer in the chat log (deleted or folded into a summary). '
        + 'Its versions are below; restoring a delete puts it back.');
    }
  }

  /** Load the chat and its newest messages; a reply in progress starts the watch (unless follow is false). */
  async function load({ keepScroll = false, follow = true } = {}) {
    const scrollTop = messages.node.scrollTop;
    try {
      const [chat, page] = await Promise.all([
        get(base, { signal, quiet: true }),
        get(`${base}/messages`, { signal, quiet: true, query: { limit: PAGE } }),
      ]);
      if (signal.aborted) return;
      showChat(chat);
      messages.set(page.messages);
      if (keepScroll) messages.node.scrollTop = scrollTop;
      earlier.hidden = page.messages.length < PAGE;
      if (page.generating && follow) watch();
    } catch (err) {
      if (aborted(err, signal)) return;
      replace(container, el('div', { class: 'chat-missing' }, el('div', { class: 'state state-error', role: 'alert' },
        el('h1', { class: 'state-title' }, err?.status === 404 ? 'Chat not found' : 'Could not open this chat'),
        el('p', { class: 'state-text' }, err?.detail ?? String(err)),
        el('div', { class: 'state-actions' },
          el('a', { class: 'btn btn-secondary', href: href('chat') }, 'All chats')))));
    }
  }

  /** Older messages above the first one shown. */
  async function loadEarlier() {
    const first = messages.first();
    if (!first) return;
    try {
      const query = { limit: PAGE, before_seq: first.seq };
      const page = await get(`${base}/messages`, { signal, quiet: true, query });
      messages.prepend(page.messages);
      earlier.hidden = page.messages.length < PAGE;
      return page.messages.length > 0;
    } catch (err) {
      if (!aborted(err, signal)) composer.setNotice(err?.detail ?? String(err));
      return false;
    }
  }

  /** A reply is being written elsewhere (another tab, before a reload): follow its events until it ends. */
  async function watch() {
    if (watching) return;
    watching = true;
    setGenerating(true);
    composer.setNotice('A reply is in progress…', 'info');
    const state = { userId: null, replyId: null, ended: false, watching: true };
    let ended = null;
    try {
      ({ ended } = await followEvents(`${base}/stream`, { signal, onEvent: (event) => {
        if (event.type === 'done' || event.type === 'error') composer.setNotice(null);
        onEvent(event, state);
      } }));
      if (signal.aborted) return;
      if (!state.ended) composer.setNotice(null);
      setGenerating(false);
    } finally {
      watching = false;
    }
    // it ended before we joined (idle), or the stream could not be read (then no new watch: no retry loop)
    if (!state.ended) await load({ follow: ended === 'idle' });
    onActivity();
  }

  /** Show the demo-model label and say so when the LLM cannot answer. */
  async function checkLlm() {
    let report;
    try {
      report = await get('/api/system/status', { signal, quiet: true });
    } catch {
      return;
    }
    const llm = report?.backends?.llm ?? {};
    composer.setDemo(llm.built_in?.demo ? (llm.built_in.label || 'Built-in demo model') : null);
    if (generating || signal.aborted) return;
    if (!llm.configured || llm.reachable === false) {
      const sentence = [llm.detail, llm.hint].filter(Boolean).join(' — ');
      composer.setNotice(sentence || 'The LLM server cannot be reached.', 'warn');
    }
  }

  load().then(async () => {
    if (!signal.aborted) await images.load();
    if (!signal.aborted) jumpToRoute();
    const keyboardless = window.matchMedia('(pointer: fine)').matches; // no on-screen keyboard popping up
    if (keyboardless && !signal.aborted && container.contains(composer.node)) composer.focus();
  });
  checkLlm();
  return {
    /** Leaving the view: stop reading the stream (the server keeps writing the reply). */
    close() { stream?.abort(); },
  };
}
