/**
 * Entry point: registers the views, fills the nav icons, starts the router and the connection watch.
 * To add a top-level view: write js/views/<name>.js exporting {name, title, render}, add it to VIEWS,
 * and add a nav link `<a href="#/<name>" data-route="<name>">` in index.html.
 */

import { ApiError } from './api.js';
import { checkConnection } from './connection.js';
import { fillIcons } from './icons.js';
import { register, startRouter } from './router.js';
import chat from './views/chat.js';
import images from './views/images.js';
import library from './views/library.js';
import search from './views/search.js';
import settings from './views/settings.js';
import status from './views/status.js';

const VIEWS = [chat, library, search, images, settings, status];

/** The skip link moves focus to <main> without touching the route hash. */
function wireSkipLink() {
  const link = document.querySelector('.skip-link');
  const main = document.getElementById('main');
  link?.addEventListener('click', (event) => {
    event.preventDefault();
    main?.focus();
  });
}

/** An ApiError nobody caught was already shown to the user as a toast or the banner: don't log it twice. */
function quietHandledRejections() {
  window.addEventListener('unhandledrejection', (event) => {
    if (event.reason instanceof ApiError) event.preventDefault();
  });
}

function main() {
  VIEWS.forEach(register);
  fillIcons(document);
  wireSkipLink();
  quietHandledRejections();
  startRouter({ outlet: document.getElementById('view'), defaultRoute: 'chat' });
  checkConnection();
}

main();
