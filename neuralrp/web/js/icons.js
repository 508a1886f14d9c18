/** Line icons drawn on a 24x24 grid, built as SVG elements (no icon font, nothing fetched). */

import { svg } from './dom.js';

const PATHS = {
  chat: ['M5 4.5h14a2 2 0 0 1 2 2v8.5a2 2 0 0 1-2 2h-8l-5 4v-4H5a2 2 0 0 1-2-2V6.5a2 2 0 0 1 2-2z',
    'M8 9.5h8M8 12.5h5'],
  library: ['M4 4.5h4v15H4zM10 4.5h4v15h-4z', 'M15.6 5.6l3.7-1 3.3 13.9-3.7 1z'],
  images: ['M5 4h14a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z',
    'M21 15.5l-4.8-4.8L7 20', 'M8.5 10.5a1.75 1.75 0 1 0 0-3.5 1.75 1.75 0 0 0 0 3.5z'],
  settings: ['M4 6.5h9M17 6.5h3M4 12h3M11 12h9M4 17.5h11M19 17.5h1',
    'M15 8.5a2 2 0 1 0 0-4 2 2 0 0 0 0 4zM9 14a2 2 0 1 0 0-4 2 2 0 0 0 0 4zM17 19.5a2 2 0 1 0 0-4 2 2 0 0 0 0 4z'],
  status: ['M3 12h4l2.5-6 5 12 2.5-6h4'],
  plus: ['M12 5v14M5 12h14'],
  upload: ['M12 15V4M7.5 8.5L12 4l4.5 4.5', 'M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3'],
  refresh: ['M20 11a8 8 0 0 0-14.3-4.5L4 8.5', 'M4 4v4.5h4.5', 'M4 13a8 8 0 0 0 14.3 4.5L20 15.5',
    'M20 20v-4.5h-4.5'],
  database: ['M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3z', 'M4 6v12c0 1.7 3.6 3 8 3s8-1.3 8-3V6',
    'M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3'],
  disk: ['M4 14l2.5-8.5A2 2 0 0 1 8.4 4h7.2a2 2 0 0 1 1.9 1.5L20 14',
    'M4 14h16v4a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2z', 'M16.5 17h.01'],
  server: ['M4 4h16v6H4zM4 14h16v6H4z', 'M8 7h.01M8 17h.01'],
  pulse: ['M3 12h4l2.5-6 5 12 2.5-6h4'],
  wifiOff: ['M2 2l20 20', 'M8.5 16.5a5 5 0 0 1 7 0', 'M5 12.9a10 10 0 0 1 4.1-2.5M12 9a10 10 0 0 1 7 3.9',
    'M2 9a15 15 0 0 1 4.3-2.8M10.6 5.1A15 15 0 0 1 22 9', 'M12 20h.01'],
  close: ['M6 6l12 12M18 6L6 18'],
  sparkle: ['M12 3l1.9 5.6L19.5 10.5l-5.6 1.9L12 18l-1.9-5.6L4.5 10.5l5.6-1.9z', 'M19 15v4M17 17h4'],
};

/** A decorative (aria-hidden) 24x24 line icon drawn from path strings. */
export function lineIcon(pathList, { size = 20, className = 'icon' } = {}) {
  return svg('svg', {
    class: className, width: size, height: size, viewBox: '0 0 24 24', fill: 'none',
    stroke: 'currentColor', 'stroke-width': 1.75, 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true', focusable: 'false',
  }, pathList.map((d) => svg('path', { d })));
}

/** An SVG icon element by name, decorative (aria-hidden); unknown names give an empty icon. */
export function icon(name, options = {}) {
  if (name === 'logo') return logo(options.size ?? 20);
  return lineIcon(PATHS[name] ?? [], options);
}

/** An icon(name, options) function that knows `extra` paths besides the shared set. */
export function iconSet(extra) {
  return (name, options = {}) => (extra[name] ? lineIcon(extra[name], options) : icon(name, options));
}

/** The app mark: a speech bubble on a violet-to-pink tile (same drawing as favicon.svg). */
function logo(size) {
  const id = `logo-grad-${Math.random().toString(36).slice(2, 8)}`;
  return svg('svg', { class: 'logo', width: size, height: size, viewBox: '0 0 32 32', 'aria-hidden': 'true',
    focusable: 'false' },
  svg('defs', {}, svg('linearGradient', { id, x1: 0, y1: 0, x2: 1, y2: 1 },
    svg('stop', { offset: 0, 'stop-color': '#9d8cff' }),
    svg('stop', { offset: 1, 'stop-color': '#e879b9' }))),
  svg('rect', { width: 32, height: 32, rx: 8, fill: `url(#${id})` }),
  svg('path', { fill: '#fff', 'fill-opacity': '.92',
    d: 'M8 9.5h16a1.5 1.5 0 0 1 1.5 1.5v8.5A1.5 1.5 0 0 1 24 21h-9l-5 4v-4H8a1.5 1.5 0 0 1-1.5-1.5V11A1.5 1.5 0 0 1 8 9.5z' }),
  svg('circle', { cx: 11.5, cy: 15.25, r: 1.4, fill: '#7c6cf0' }),
  svg('circle', { cx: 16, cy: 15.25, r: 1.4, fill: '#a875d8' }),
  svg('circle', { cx: 20.5, cy: 15.25, r: 1.4, fill: '#d479be' }));
}

/** Fill every `[data-icon]` placeholder under root with its icon (used for the static nav in index.html). */
export function fillIcons(root = document) {
  for (const slot of root.querySelectorAll('[data-icon]')) {
    if (slot.firstElementChild) continue;
    const size = slot.dataset.icon === 'logo' ? 32 : 22;
    slot.appendChild(icon(slot.dataset.icon, { size }));
  }
}
