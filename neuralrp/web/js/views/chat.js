/**
 * Chat view. '#/chat' shows the chat list and a welcome panel; '#/chat/{id}' shows one chat (messages,
 * streaming replies, composer) beside the list; '#/chat?character=ID' lists that character's chats.
 * On phone widths only one of the two columns is shown.
 */

import { el } from '../dom.js';
import { createChatList } from '../chat/list.js';
import { openNewChatDialog } from '../chat/newchat.js';
import { openChat } from '../chat/session.js';
import { emptyState, linkButton } from '../ui.js';

/** The panel beside the list when no chat is open. */
function welcome() {
  return el('div', { class: 'chat-welcome' }, emptyState({
    icon: 'chat',
    title: 'Start a roleplay',
    text: 'Pick a chat on the left, or start a new one with a character from your library or a pasted card. '
      + 'Every message is saved as you go.',
    actions: [linkButton('Open library', '#/library', { icon: 'library' })],
  }));
}

export default {
  name: 'chat',
  title: 'Chat',
  /** Render the list (and the chat named in the route) into root. */
  render(root, ctx) {
    const chatId = /^\d+$/.test(ctx.params[0] ?? '') ? Number(ctx.params[0]) : null;
    const character = /^\d+$/.test(ctx.query.get('character') ?? '') ? Number(ctx.query.get('character')) : null;
    const list = createChatList({
      currentId: chatId,
      character,
      heading: chatId === null ? 'h1' : 'h2',
      signal: ctx.signal,
      onNew: async () => {
        const chat = await openNewChatDialog();
        if (chat && !ctx.signal.aborted) ctx.navigate('chat', chat.id);
      },
    });
    const main = el('div', { class: 'chat-main' });
    root.classList.add(chatId === null ? 'chat-none' : 'chat-open');
    root.append(el('div', { class: 'chat-layout' }, list.node, main));
    list.load();
    if (chatId === null) {
      main.append(welcome());
      return undefined;
    }
    const session = openChat(main, chatId, { signal: ctx.signal, onActivity: () => list.load() });
    return () => session.close();
  },
};
