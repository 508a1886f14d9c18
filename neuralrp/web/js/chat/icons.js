/** Extra line icons for the chat and settings views (same 24x24 style as ../icons.js). */

import { el } from '../dom.js';
import { iconSet } from '../icons.js';

const PATHS = {
  send: ['M4.5 12h9', 'M4 4.5l16 7.5-16 7.5 2.5-7.5z'],
  stop: ['M7 7h10v10H7z'],
  forward: ['M5 12h12', 'M13 7l5 5-5 5'],
  left: ['M14.5 6l-6 6 6 6'],
  right: ['M9.5 6l6 6-6 6'],
  back: ['M15 6l-6 6 6 6'],
  alert: ['M12 8.5v4.5', 'M12 16.5h.01',
    'M10.3 4.2L2.9 17.5A2 2 0 0 0 4.6 20.5h14.8a2 2 0 0 0 1.7-3L13.7 4.2a2 2 0 0 0-3.4 0z'],
  file: ['M14 3.5H7a2 2 0 0 0-2 2v13a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8.5z', 'M14 3.5v5h5'],
  plug: ['M9 3.5v4M15 3.5v4', 'M6.5 7.5h11v3a5.5 5.5 0 0 1-11 0z', 'M12 16v4.5'],
  undo: ['M9 7L4.5 11.5 9 16', 'M4.5 11.5H15a4.5 4.5 0 0 1 0 9h-2'],
  check: ['M5 12.5l4.5 4.5L19 7.5'],
};

/** An icon by name: the chat extras above, else the shared set. */
export const icon = iconSet(PATHS);

/** Like ui.button() but able to use the icons above: actionButton('Send', {variant, icon, onClick, label, small}). */
export function actionButton(text, { variant = 'secondary', icon: iconName, onClick, type = 'button', label, small,
  attrs = {} } = {}) {
  return el('button', {
    type, class: ['btn', `btn-${variant}`, small && 'btn-small'], 'aria-label': label,
    on: onClick ? { click: onClick } : undefined, ...attrs,
  }, iconName && icon(iconName, { size: small ? 16 : 18 }), text && el('span', { class: 'btn-text' }, text));
}
