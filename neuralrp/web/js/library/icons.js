/** Extra line icons for the library views (same 24x24 style as ../icons.js) and a button that can use them. */

import { el } from '../dom.js';
import { iconSet } from '../icons.js';

const PATHS = {
  search: ['M10.5 17.5a7 7 0 1 0 0-14 7 7 0 0 0 0 14z', 'M15.5 15.5L20.5 20.5'],
  tag: ['M3.5 12.2V4.5a1 1 0 0 1 1-1h7.7a1 1 0 0 1 .7.3l7.6 7.6a1 1 0 0 1 0 1.4l-7.7 7.7'
    + 'a1 1 0 0 1-1.4 0l-7.6-7.6a1 1 0 0 1-.3-.7z',
    'M8 8h.01'],
  trash: ['M4.5 7h15', 'M9.5 7V4.5h5V7', 'M6.5 7l1 12.5a1.5 1.5 0 0 0 1.5 1.5h6a1.5 1.5 0 0 0 1.5-1.5l1-12.5',
    'M10 11v6M14 11v6'],
  download: ['M12 4v11M7.5 10.5L12 15l4.5-4.5', 'M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3'],
  up: ['M12 19V5', 'M6.5 10.5L12 5l5.5 5.5'],
  down: ['M12 5v14', 'M6.5 13.5L12 19l5.5-5.5'],
  back: ['M15 6l-6 6 6 6'],
  chevron: ['M6 9.5l6 6 6-6'],
  book: ['M4 5.5A2.5 2.5 0 0 1 6.5 3H20v15H6.5A2.5 2.5 0 0 0 4 20.5z', 'M4 20.5A2.5 2.5 0 0 0 6.5 23H20v-5'],
  globe: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z', 'M3 12h18',
    'M12 3c2.5 2.5 3.8 5.5 3.8 9s-1.3 6.5-3.8 9c-2.5-2.5-3.8-5.5-3.8-9S9.5 5.5 12 3z'],
  user: ['M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4.5 20.5a7.5 7.5 0 0 1 15 0'],
  save: ['M5 3.5h11.5L20.5 7.5V19a1.5 1.5 0 0 1-1.5 1.5H5A1.5 1.5 0 0 1 3.5 19V5A1.5 1.5 0 0 1 5 3.5z',
    'M7.5 3.5v5h8v-5', 'M7.5 20.5v-6h9v6'],
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  alert: ['M12 8.5v4.5', 'M12 16.5h.01',
    'M10.3 4.2L2.9 17.5A2 2 0 0 0 4.6 20.5h14.8a2 2 0 0 0 1.7-3L13.7 4.2a2 2 0 0 0-3.4 0z'],
  skip: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z', 'M8 12h8'],
  file: ['M14 3.5H7a2 2 0 0 0-2 2v13a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8.5z', 'M14 3.5v5h5'],
  link: ['M10 14a4 4 0 0 0 5.7 0l3.3-3.3a4 4 0 0 0-5.7-5.7L12 6.3',
    'M14 10a4 4 0 0 0-5.7 0L5 13.3a4 4 0 0 0 5.7 5.7L12 17.7'],
  drop: ['M12 3v12M7.5 10.5L12 15l4.5-4.5', 'M3.5 14.5v3.5a2.5 2.5 0 0 0 2.5 2.5h12a2.5 2.5 0 0 0 2.5-2.5v-3.5'],
};

/** An icon by name: the library extras above, else the shared set. */
export const icon = iconSet(PATHS);

/** A button like ui.button() that can use the icons above: libButton('Save', {variant, icon, onClick, label}). */
export function libButton(text, { variant = 'secondary', icon: iconName, onClick, type = 'button', label, small,
  attrs = {} } = {}) {
  return el('button', {
    type, class: ['btn', `btn-${variant}`, small && 'btn-small'], 'aria-label': label,
    on: onClick ? { click: onClick } : undefined, ...attrs,
  }, iconName && icon(iconName, { size: small ? 16 : 18 }), text && el('span', {}, text));
}

/** A link styled as a button (downloads when `download` is given): libLink('Export PNG', url, {icon}). */
export function libLink(text, href, { variant = 'secondary', icon: iconName, download, small, label } = {}) {
  return el('a', { class: ['btn', `btn-${variant}`, small && 'btn-small'], href, download, 'aria-label': label },
    iconName && icon(iconName, { size: small ? 16 : 18 }), el('span', {}, text));
}
