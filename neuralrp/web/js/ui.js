/** Small shared UI pieces built with dom.el: page header, buttons, empty/loading/error states, badges. */

import { el } from './dom.js';
import { icon } from './icons.js';
import { toast } from './toast.js';

/**
 * A button: button('Send', {variant: 'primary'|'secondary'|'ghost'|'danger', icon, onClick, type, label, small}).
 * `label` sets aria-label (for icon-only buttons); the visible text is the accessible name otherwise.
 */
export function button(text, { variant = 'secondary', icon: iconName, onClick, type = 'button', label, small,
  attrs = {} } = {}) {
  return el('button', {
    type, class: ['btn', `btn-${variant}`, small && 'btn-small'], 'aria-label': label,
    on: onClick ? { click: onClick } : undefined, ...attrs,
  }, iconName && icon(iconName, { size: 18 }), text && el('span', {}, text));
}

/** A link styled as a button: linkButton('Open library', '#/library', {variant, icon}). */
export function linkButton(text, href, { variant = 'secondary', icon: iconName } = {}) {
  return el('a', { class: ['btn', `btn-${variant}`], href }, iconName && icon(iconName, { size: 18 }),
    el('span', {}, text));
}

/** The top of a view: <h1> title, optional subtitle, and action controls on the right. */
export function pageHeader({ title, subtitle, actions = [] }) {
  return el('header', { class: 'page-header' },
    el('div', { class: 'page-heading' },
      el('h1', { class: 'page-title' }, title),
      subtitle && el('p', { class: 'page-subtitle' }, subtitle)),
    actions.length > 0 && el('div', { class: 'page-actions' }, actions));
}

/** A centered empty state: icon, title (h2), explanatory text and optional actions. */
export function emptyState({ icon: iconName, title, text, actions = [] }) {
  return el('div', { class: 'state' },
    iconName && el('div', { class: 'state-icon' }, icon(iconName, { size: 32 })),
    el('h2', { class: 'state-title' }, title),
    text && el('p', { class: 'state-text' }, text),
    actions.length > 0 && el('div', { class: 'state-actions' }, actions));
}

/** A loading placeholder with a spinner; announced politely. */
export function loading(text = 'Loading…') {
  return el('div', { class: 'state state-loading', role: 'status' },
    el('span', { class: 'spinner', 'aria-hidden': 'true' }), el('p', { class: 'state-text' }, text));
}

/** An inline error block with the human sentence and an optional Retry button. */
export function errorState(message, { retry } = {}) {
  return el('div', { class: 'state state-error', role: 'alert' },
    el('h2', { class: 'state-title' }, 'Something went wrong'),
    el('p', { class: 'state-text' }, message),
    retry && el('div', { class: 'state-actions' }, button('Try again', { icon: 'refresh', onClick: retry })));
}

/** A small pill: badge('Reachable', 'ok'); tone is 'ok' | 'warn' | 'bad' | 'muted' | 'accent'. */
export function badge(text, tone = 'muted') {
  return el('span', { class: ['badge', `badge-${tone}`] }, el('span', { class: 'badge-dot', 'aria-hidden': 'true' }),
    text);
}

/** A card panel with an optional icon + h2 title. */
export function card({ title, icon: iconName, className }, ...children) {
  return el('section', { class: ['card', className] },
    title && el('h2', { class: 'card-title' }, iconName && icon(iconName, { size: 18 }), el('span', {}, title)),
    children);
}

/** A definition list from [term, value] pairs; values may be strings or nodes. */
export function facts(pairs) {
  return el('dl', { class: 'facts' },
    pairs.map(([term, value]) => el('div', { class: 'fact' }, el('dt', {}, term), el('dd', {}, value))));
}

/** A click handler that honestly says a feature is not built yet. */
export function comingSoon(feature) {
  return () => toast(`${feature} is coming soon.`, { kind: 'info' });
}
