/** Images view: the gallery. For now the empty state. */

import { emptyState, pageHeader } from '../ui.js';

export default {
  name: 'images',
  title: 'Images',
  /** Render the images view into root. */
  render(root) {
    root.append(
      pageHeader({ title: 'Images', subtitle: 'Every generated image, with the prompt and settings that made it.' }),
      emptyState({
        icon: 'images',
        title: 'No images yet',
        text: 'Images you generate from a chat, as snapshots or from the image panel, are kept here.',
      }),
    );
  },
};
