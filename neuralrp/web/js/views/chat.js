/** Chat view. For now only the empty state; the chat list, streaming and cast panel come later. */

import { button, comingSoon, emptyState, linkButton, pageHeader } from '../ui.js';

export default {
  name: 'chat',
  title: 'Chat',
  /** Render the chat view into root. */
  render(root) {
    root.append(
      pageHeader({ title: 'Chat', subtitle: 'Roleplay with your characters.' }),
      emptyState({
        icon: 'chat',
        title: 'No chats yet',
        text: 'Pick a character from your library and start a roleplay. Every message is saved as you go.',
        actions: [
          button('New chat', { variant: 'primary', icon: 'plus', onClick: comingSoon('Starting a chat') }),
          linkButton('Open library', '#/library', { icon: 'library' }),
        ],
      }),
    );
  },
};
