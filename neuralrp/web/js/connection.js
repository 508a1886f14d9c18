/**
 * Whether the NeuralRP server answers. api.js reports every request's outcome here; while the server is
 * unreachable a global banner is shown and /api/system/health is polled until it answers again.
 * Listen for `neuralrp:offline` / `neuralrp:reconnected` on window to react (e.g. reload a view's data).
 */

import { el, replace } from './dom.js';
import { icon } from './icons.js';
import { toast } from './toast.js';

const HEALTH_URL = '/api/system/health';
const RETRY_MS = [2000, 4000, 8000, 15000];

let state = 'unknown';
let attempt = 0;
let timer = null;

/** Current state: 'unknown' (not checked yet), 'online' or 'offline'. */
export function connectionState() {
  return state;
}

/** Record that the server answered (any HTTP status counts). */
export function reportOnline() {
  if (state === 'online') return;
  const wasOffline = state === 'offline';
  setState('online');
  clearTimeout(timer);
  attempt = 0;
  if (!wasOffline) return;
  toast('Reconnected to the NeuralRP server.', { kind: 'success' });
  window.dispatchEvent(new CustomEvent('neuralrp:reconnected'));
}

/** Record that the server could not be reached; shows the banner and starts polling. */
export function reportOffline() {
  if (state !== 'offline') setState('offline');
  scheduleRetry();
}

/** Ask the server once whether it is up; resolves to true when it answered. */
export async function checkConnection() {
  try {
    await fetch(HEALTH_URL, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch {
    reportOffline();
    return false;
  }
  reportOnline();
  return true;
}

/** Show the banner and poll again after a growing delay. */
function scheduleRetry() {
  clearTimeout(timer);
  const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
  attempt += 1;
  renderBanner();
  timer = setTimeout(checkConnection, delay);
}

/** Update the state, the sidebar indicator and the banner. */
function setState(next) {
  state = next;
  const indicator = document.getElementById('conn-indicator');
  if (indicator) {
    indicator.dataset.state = next;
    const label = indicator.querySelector('.conn-text');
    if (label) label.textContent = next === 'online' ? 'Server connected' : 'Server offline';
  }
  if (next !== 'offline') hideBanner();
  else window.dispatchEvent(new CustomEvent('neuralrp:offline'));
}

/** Fill and show the global connection banner. */
function renderBanner() {
  const banner = document.getElementById('conn-banner');
  if (!banner) return;
  replace(banner,
    icon('wifiOff', { size: 20 }),
    el('div', { class: 'banner-text' },
      el('strong', {}, 'Cannot reach the NeuralRP server.'),
      ' ',
      el('span', {}, 'Is it still running? Retrying automatically.')),
    el('button', { type: 'button', class: 'btn btn-small btn-secondary', on: { click: checkConnection } }, 'Retry now'));
  banner.hidden = false;
}

/** Hide the global connection banner. */
function hideBanner() {
  const banner = document.getElementById('conn-banner');
  if (banner) banner.hidden = true;
}
