/** Library view: characters, worlds and tags. For now the empty state and the Import control. */

import { button, comingSoon, emptyState, pageHeader } from '../ui.js';

export default {
  name: 'library',
  title: 'Library',
  /** Render the library view into root. */
  render(root) {
    root.append(
      pageHeader({
        title: 'Library',
        subtitle: 'Characters, worlds and tags.',
        actions: [button('Import', { variant: 'primary', icon: 'upload', onClick: comingSoon('Importing cards') })],
      }),
      emptyState({
        icon: 'library',
        title: 'Your library is empty',
        text: 'Import SillyTavern character cards (PNG or JSON) and world files, or drop them into the '
          + 'characters/ and worlds/ folders of your data directory.',
      }),
    );
  },
};
