/**
 * Progress and Cancel for long LLM tasks (card and world generation, snapshot keywords, summaries): while a
 * tracked request runs, a strip polls GET /api/system/llm-tasks every 700 ms and lists the background LLM
 * calls of the kinds it follows (it is hidden while there are none), each with its state ("waiting for the reply", "paused for a reply", "writing")
 * and the tokens it has received so far, plus a Cancel button (POST /api/system/llm-tasks/{id}/cancel; the
 * tracked request then fails with "… was cancelled"). Nothing polls when no tracked request runs.
 */

import { get, post } from './api.js';
import { el, replace } from './dom.js';

const POLL_MS = 700;

/** Wait ms. */
function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

/** One sentence about where a task is. */
export function describeTask(task, replies = 0) {
  if (task.state === 'running') {
    return `writing · ${task.tokens} token${task.tokens === 1 ? '' : 's'} so far`;
  }
  if (task.state === 'paused') return 'paused for your reply · runs again when it is done';
  return replies > 0 ? 'waiting for the reply to finish' : 'waiting for the model';
}

/**
 * createLLMProgress({kinds, floating}) -> {node, track(promise), busy()}. `kinds` limits the list (e.g.
 * ['cardgen']); `floating` pins the strip to the bottom of the page (for requests started outside a dialog).
 * Put `node` in a dialog that is open while the request runs (a modal dialog makes the rest inert).
 */
export function createLLMProgress({ kinds = null, floating = false } = {}) {
  let pending = 0;
  let polling = false;
  const list = el('ul', { class: 'llm-tasks-list' });
  const node = el('div', { class: `llm-tasks${floating ? ' is-floating' : ''}`, hidden: true, role: 'status',
    'aria-live': 'polite' }, list);

  /** One row: label, state and tokens, the end of the text so far, Cancel. */
  function row(task, replies) {
    const cancel = el('button', { type: 'button', class: 'btn btn-secondary btn-small llm-task-cancel',
      'aria-label': `Cancel ${task.label}`, on: { click: () => stop(task, cancel) } }, 'Cancel');
    return el('li', { class: 'llm-task', dataset: { kind: task.kind, state: task.state } },
      el('div', { class: 'llm-task-row' },
        el('span', { class: 'spinner', 'aria-hidden': 'true' }),
        el('strong', { class: 'llm-task-label' }, task.label),
        el('span', { class: 'llm-task-state' }, describeTask(task, replies)),
        cancel),
      task.preview ? el('p', { class: 'llm-task-preview' }, `…${task.preview}`) : null);
  }

  /** Show one answer of the task list (the strip is hidden while none of its kinds is listed). */
  function show(body) {
    const tasks = (body?.tasks ?? []).filter((t) => !kinds || kinds.includes(t.kind));
    node.hidden = !tasks.length;
    replace(list, ...tasks.map((t) => row(t, body.replies ?? 0)));
  }

  /** Ask the server to cancel a task; the tracked request then ends with the reason. */
  async function stop(task, button) {
    button.disabled = true;
    try {
      await post(`/api/system/llm-tasks/${task.id}/cancel`, {}, { quiet: true });
    } catch {
      /* it had already ended */
    }
  }

  /** Poll while something is tracked. */
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      while (pending > 0) {
        try {
          const body = await get('/api/system/llm-tasks', { quiet: true });
          if (pending > 0) show(body);
        } catch {
          /* the tracked request reports failures */
        }
        await sleep(POLL_MS);
      }
    } finally {
      polling = false;
    }
  }

  return {
    node,
    /** True while a tracked request runs. */
    busy: () => pending > 0,
    /** Show the strip until `promise` settles; returns the same result. */
    async track(promise) {
      pending += 1;
      if (floating && !node.isConnected) document.body.append(node);
      poll();
      try {
        return await promise;
      } finally {
        pending -= 1;
        if (pending === 0) {
          node.hidden = true;
          if (floating) node.remove();
        }
      }
    },
  };
}
