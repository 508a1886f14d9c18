/**
 * The generation progress strip: shown while one of our image requests runs, it polls GET /api/images/progress
 * every 500 ms (bar, step, time left) and offers Stop (POST /api/images/interrupt).
 */

import { get, post } from '../api.js';
import { el, replace } from '../dom.js';
import { imgIcon } from './common.js';

const POLL_MS = 500;

/** Wait ms. */
function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

/** "Step 5 of 20 · 3 s left" from a progress answer. */
function describe(state) {
  const parts = [];
  if (state.steps) parts.push(`step ${state.step ?? 0} of ${state.steps}`);
  if (typeof state.eta_s === 'number' && state.eta_s > 0) parts.push(`${Math.ceil(state.eta_s)} s left`);
  return parts.join(' · ');
}

/**
 * createProgress({label}) -> {node, track(promise) -> promise, busy()}. The strip is hidden unless a tracked
 * promise is pending; track() passes the promise's result through.
 */
export function createProgress({ label = 'Generating image' } = {}) {
  let pending = 0;
  let polling = false;
  const fill = el('span', { class: 'img-progress-fill' });
  const bar = el('div', { class: 'img-progress-bar', role: 'progressbar', 'aria-label': label,
    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, fill);
  const text = el('span', { class: 'img-progress-text' }, `${label}…`);
  const stop = el('button', { type: 'button', class: 'btn btn-secondary btn-small img-progress-stop',
    on: { click: () => interrupt() } }, imgIcon('stop', { size: 15 }), el('span', {}, 'Stop'));
  const node = el('div', { class: 'img-progress', hidden: true, role: 'status' },
    el('div', { class: 'img-progress-row' }, text, stop), bar);

  /** Show one progress answer. */
  function show(state) {
    const pct = Math.max(0, Math.min(100, Math.round((state.progress ?? 0) * 100)));
    fill.style.width = `${pct}%`;
    bar.setAttribute('aria-valuenow', String(pct));
    node.classList.toggle('is-indeterminate', !state.progress);
    const detail = describe(state);
    replace(text, `${label}… ${pct ? `${pct}%` : ''}`, detail && el('span', { class: 'img-progress-detail' },
      ` ${detail}`));
  }

  /** Poll while something is pending. */
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      while (pending > 0) {
        try {
          const state = await get('/api/images/progress', { quiet: true });
          if (pending > 0) show(state ?? {});
        } catch {
          /* the request itself reports failures */
        }
        await sleep(POLL_MS);
      }
    } finally {
      polling = false;
    }
  }

  /** Ask the image server to stop the running job. */
  async function interrupt() {
    stop.disabled = true;
    try {
      await post('/api/images/interrupt', {});
      replace(text, 'Stopping…');
    } catch {
      /* the toast told why */
    } finally {
      stop.disabled = false;
    }
  }

  return {
    node,
    /** True while a tracked request runs. */
    busy: () => pending > 0,
    /** Show the strip until `promise` settles; returns the same result. */
    async track(promise) {
      pending += 1;
      if (pending === 1) show({ progress: 0 });
      node.hidden = false;
      poll();
      try {
        return await promise;
      } finally {
        pending -= 1;
        if (pending === 0) node.hidden = true;
      }
    },
  };
}
