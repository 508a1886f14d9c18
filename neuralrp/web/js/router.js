/**
 * Hash router. A URL hash '#/name/param1/param2?key=value' shows the view registered under 'name' with
 * params ['param1', 'param2'] and query URLSearchParams('key=value'). An empty or unknown-shaped hash
 * goes to the default route; a well-formed hash naming no view shows "Page not found".
 *
 * A view is a plain object: { name, title, render(root, ctx) }. render() fills `root` (an empty <section>)
 * and may return (or resolve to) a cleanup function, called when the user leaves the view.
 * ctx = { route, params, query, signal, navigate, refresh }; `signal` aborts when the view is left,
 * so pass it to api() calls and check it before touching the DOM after an await.
 */

import { el, replace } from './dom.js';

const views = new Map();
let outlet = null;
let defaultName = null;
let current = null; // { name, controller, cleanup }
let rendered = 0;

/** Register a view object ({name, title, render}); names are unique. */
export function register(view) {
  if (!view?.name || typeof view.render !== 'function') throw new TypeError('router: a view needs name and render()');
  if (views.has(view.name)) throw new Error(`router: view "${view.name}" registered twice`);
  views.set(view.name, view);
}

/** Parse a hash into {name, params, query}; name is null when the hash is not a route ('', '#', '#main'). */
export function parseHash(hash) {
  const match = /^#\/([^?]*)(?:\?(.*))?$/.exec(hash ?? '');
  if (!match) return { name: null, params: [], query: new URLSearchParams() };
  const [name = '', ...params] = match[1].split('/').filter(Boolean).map(safeDecode);
  return { name: name || null, params, query: new URLSearchParams(match[2] ?? '') };
}

/** decodeURIComponent that keeps malformed input as it is. */
function safeDecode(part) {
  try { return decodeURIComponent(part); } catch { return part; }
}

/** The hash for a route: href('chat', 42, {tab: 'cast'}) -> '#/chat/42?tab=cast'. */
export function href(name, ...rest) {
  const query = rest.length && typeof rest.at(-1) === 'object' && rest.at(-1) !== null ? rest.pop() : null;
  const path = [name, ...rest].map((p) => encodeURIComponent(String(p))).join('/');
  const qs = query ? new URLSearchParams(query).toString() : '';
  return `#/${path}${qs ? `?${qs}` : ''}`;
}

/** Go to a route: navigate('chat', 42) or navigate('#/chat/42'). Re-renders if already there. */
export function navigate(nameOrHash, ...rest) {
  const target = String(nameOrHash).startsWith('#') ? String(nameOrHash) : href(nameOrHash, ...rest);
  if (target === location.hash) refresh();
  else location.hash = target;
}

/** The route being shown now: {name, params, query}. */
export function currentRoute() {
  return parseHash(location.hash);
}

/** Render the current route again (e.g. after its data changed). */
export function refresh() {
  return show();
}

/** Start routing into `outlet`; defaultRoute is used for an empty or malformed hash. */
export function startRouter({ outlet: target, defaultRoute }) {
  outlet = target;
  defaultName = defaultRoute;
  window.addEventListener('hashchange', show);
  return show();
}

/** Abort and clean up the view being shown. */
function leave() {
  if (!current) return;
  current.controller.abort();
  try { current.cleanup?.(); } catch (err) { console.warn('router: cleanup failed', err); }
  current = null;
}

/** Set aria-current=page on the nav link of the shown route. */
function markNav(name) {
  for (const link of document.querySelectorAll('[data-route]')) {
    if (link.dataset.route === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** Render the view for the current hash into the outlet. */
async function show() {
  let route = parseHash(location.hash);
  if (!route.name) {
    history.replaceState(null, '', `#/${defaultName}`);
    route = parseHash(location.hash);
  }
  leave();
  const view = views.get(route.name) ?? notFound;
  const controller = new AbortController();
  const entry = { name: route.name, controller, cleanup: null };
  current = entry;
  const root = el('section', { class: ['view', `view-${view.name}`], dataset: { view: view.name } });
  replace(outlet, root);
  document.title = `${view.title} · NeuralRP`;
  markNav(views.has(route.name) ? route.name : null);
  const ctx = { route, params: route.params, query: route.query, signal: controller.signal, navigate, refresh };
  try {
    const cleanup = await view.render(root, ctx);
    if (current === entry) entry.cleanup = cleanup;
    else cleanup?.();
  } catch (err) {
    if (current === entry && !controller.signal.aborted) showFailure(root, err);
  }
  if (current === entry) focusView(root);
}

/** After a navigation (not the first paint), move focus to the new view's heading. */
function focusView(root) {
  rendered += 1;
  if (rendered === 1) return; // first paint: leave focus where the browser put it
  const heading = root.querySelector('h1');
  const target = heading ?? root;
  target.setAttribute('tabindex', '-1');
  target.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

/** Replace a view that threw while rendering with an error message. */
function showFailure(root, err) {
  console.error('router: view failed to render', err);
  replace(root, el('div', { class: 'state state-error', role: 'alert' },
    el('h1', { class: 'state-title' }, 'This page failed to load'),
    el('p', { class: 'state-text' }, err?.detail ?? err?.message ?? String(err))));
}

const notFound = {
  name: 'not-found',
  title: 'Not found',
  render(root) {
    root.append(el('div', { class: 'state' },
      el('h1', { class: 'state-title' }, 'Page not found'),
      el('p', { class: 'state-text' }, 'There is nothing at this address.'),
      el('a', { class: 'btn btn-secondary', href: `#/${defaultName}` }, 'Go back')));
  },
};
