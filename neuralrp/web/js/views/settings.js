/** Settings view. Editing settings in the browser is not built yet; this says where they live. */

import { emptyState, linkButton, pageHeader } from '../ui.js';

export default {
  name: 'settings',
  title: 'Settings',
  /** Render the settings view into root. */
  render(root) {
    root.append(
      pageHeader({ title: 'Settings', subtitle: 'Backends, persona and presets.' }),
      emptyState({
        icon: 'settings',
        title: 'Not editable here yet',
        text: 'For now, settings live in config.yaml (every key is described in config.example.yaml) and in '
          + 'NEURALRP_* environment variables; restart NeuralRP after a change.',
        actions: [linkButton('Check backend status', '#/status', { icon: 'status' })],
      }),
    );
  },
};
