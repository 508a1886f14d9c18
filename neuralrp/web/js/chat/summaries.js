/**
 * The Summaries window of a chat: the live scene summaries (turn range, level, messages folded) with Edit and
 * Un-fold, the archived ones collapsed below, the word count against `context.summary_word_limit`, and
 * "Summarize now", which starts a background fold and polls until it ends. An excerpt (origin "extract": lines
 * taken from the messages because the model's summary was rejected while they were leaving the prompt) is
 * marked as such.
 */

import { del, get, post, put } from '../api.js';
import { createLLMProgress } from '../llmtasks.js';
import { el, replace } from '../dom.js';
import { formatCount } from '../format.js';
import { icon } from './icons.js';
import { toolButton } from './inspector.js';

const POLL_MS = 700;
let counter = 0;

/** Wait ms, or less when the signal aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * A modal dialog shell: modalShell({title, className, body, foot}) -> {dialog, showError(text)}.
 * Opened with showModal(); Escape and the close button close it; it removes itself when closed.
 */
export function modalShell({ title, className, body, foot = [], onClose = () => {} }) {
  const titleId = `modal-title-${(counter += 1)}`;
  const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
  const dialog = el('dialog', { class: ['dialog', className], 'aria-labelledby': titleId },
    el('div', { class: 'dialog-form' },
      el('header', { class: 'dialog-head' },
        el('h2', { id: titleId, class: 'dialog-title' }, title),
        el('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', on: { click: () => dialog.close() } },
          icon('close', { size: 18 }))),
      el('div', { class: 'dialog-body' }, error, body),
      foot.length > 0 && el('footer', { class: 'dialog-foot' }, foot)));
  dialog.addEventListener('close', () => { dialog.remove(); onClose(); });
  return {
    dialog,
    /** Show a sentence at the top of the body (null hides it). */
    showError(text) {
      error.hidden = !text;
      replace(error, text ? [icon('alert', { size: 16 }), el('span', {}, text)] : []);
    },
  };
}

/** "Turns 3–9" (or "Turn 3"). */
function turnRange(s) {
  return s.start_turn === s.end_turn ? `Turn ${s.start_turn}` : `Turns ${s.start_turn}–${s.end_turn}`;
}

/** Small tags under a summary's title. */
function summaryTags(s) {
  return el('span', { class: 'sum-tags' },
    el('span', { class: 'sum-tag' }, `level ${s.level}`),
    el('span', { class: 'sum-tag' }, `${s.message_count} message${s.message_count === 1 ? '' : 's'}`),
    el('span', { class: 'sum-tag' }, `${formatCount(s.text.trim().split(/\s+/).filter(Boolean).length)} words`),
    s.origin === 'extract' && el('span', { class: 'sum-tag sum-tag-warn' }, 'excerpt'),
    s.edited && el('span', { class: 'sum-tag sum-tag-accent' }, 'edited'));
}

/** The line under an excerpt's title saying where its text came from, or null for the model's summaries. */
function originNote(s) {
  if (s.origin !== 'extract') return null;
  return el('p', { class: 'sum-origin' }, icon('alert', { size: 14 }),
    el('span', {}, 'Excerpt: the model\'s summary was rejected, so these lines were taken from the messages '
      + 'as they were leaving the prompt. Edit it, or un-fold it and Summarize now to ask the model again.'));
}

/**
 * Open the Summaries window of chat `chatId`. onChanged() runs after anything that changes the chat's
 * messages or prompt (a fold, an edit, an un-fold). Resolves when the window closes.
 */
export function openSummaries({ chatId, onChanged = () => {} }) {
  return new Promise((resolve) => {
    const life = new AbortController();
    const signal = life.signal;
    let data = null;
    let limit = null;
    let polling = false;

    const meter = el('div', { class: 'sum-meter' });
    const running = el('p', { class: 'sum-running', role: 'status' });
    const tasks = createLLMProgress({ kinds: ['summary'] }); // tokens so far and Cancel while the model writes
    const live = el('ol', { class: 'sum-list', 'aria-label': 'Live summaries' });
    const archived = el('div', { class: 'sum-archived-box' });
    const rerun = el('button', { type: 'button', class: 'btn btn-primary', on: { click: () => summarizeNow() } },
      icon('sparkle', { size: 18 }), el('span', {}, 'Summarize now'));
    const shell = modalShell({
      title: 'Summaries',
      className: 'sum-dialog',
      body: [meter, running, tasks.node, live, archived],
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Close'), rerun],
      onClose: () => { life.abort(); resolve(); },
    });

    /** Fetch the summaries (and whether a fold runs) and redraw; returns the data or null. */
    async function load() {
      try {
        data = await get(`/api/chats/${chatId}/summaries`, { signal, quiet: true });
      } catch (err) {
        if (err?.name !== 'AbortError') shell.showError(err?.detail ?? String(err));
        return null;
      }
      render();
      if (data.running) poll();
      return data;
    }

    /** Redraw from `data`. */
    function render() {
      const liveItems = data.summaries.filter((s) => !s.archived);
      const old = data.summaries.filter((s) => s.archived);
      replace(meter, meterParts(data.word_count));
      setRunning(data.running);
      if (!liveItems.length) {
        replace(live, el('li', { class: 'sum-empty' },
          el('p', { class: 'sum-empty-title' }, 'No summaries yet'),
          el('p', {}, 'When the prompt nears its budget, older turns are folded into scene summaries here, '
            + 'in the background. Summarize now folds what is eligible right away.')));
      } else replace(live, liveItems.map((s) => summaryRow(s)));
      replace(archived, old.length > 0 && el('details', { class: 'sum-archived' },
        el('summary', {}, `Archived summaries (${old.length})`),
        el('ol', { class: 'sum-list' }, old.map((s) => summaryRow(s, { readOnly: true })))));
    }

    /** The word count and its bar. */
    function meterParts(words) {
      const over = limit !== null && words > limit;
      const pct = limit ? Math.min(100, Math.round((words / limit) * 100)) : 0;
      return [
        el('p', { class: 'sum-words' }, el('strong', {}, formatCount(words)),
          limit !== null ? ` of ${formatCount(limit)} words` : ' words',
          el('span', { class: 'sum-dim' }, limit !== null
            ? ' · past the limit, older summaries are condensed into one' : '')),
        limit !== null && el('div', { class: ['bar', 'sum-bar', over && 'bar-bad'], role: 'img',
          'aria-label': `${formatCount(words)} of ${formatCount(limit)} words` },
        el('span', { class: 'bar-fill', style: { width: `${pct}%` } })),
      ];
    }

    /** Show or hide the "summarizing" line and lock the button. */
    function setRunning(flag) {
      rerun.disabled = Boolean(flag);
      rerun.classList.toggle('is-busy', Boolean(flag));
      replace(running, flag ? [el('span', { class: 'spinner', 'aria-hidden': 'true' }),
        el('span', {}, 'Summarizing older turns in the background…')] : []);
      running.hidden = !flag;
    }

    /** One summary: range, tags, text, and (when live) Edit / Un-fold. */
    function summaryRow(s, { readOnly = false } = {}) {
      const text = el('p', { class: 'sum-text' }, s.text);
      const actions = el('div', { class: 'sum-actions' });
      const slot = el('div', { class: 'sum-slot' });
      const item = el('li', { class: ['sum-item', s.archived && 'is-archived'], dataset: { summaryId: s.id } },
        el('div', { class: 'sum-head' }, el('h3', { class: 'sum-range' }, turnRange(s)), summaryTags(s)),
        originNote(s), text, slot, !readOnly && actions);
      if (readOnly) return item;
      const edit = el('button', { type: 'button', class: 'btn btn-secondary btn-small', on: { click: () => startEdit() } },
        'Edit');
      const unfold = el('button', { type: 'button', class: 'btn btn-ghost btn-small',
        on: { click: () => askUnfold() } }, 'Un-fold');
      replace(actions, edit, unfold);

      /** Swap the text for a textarea with Save / Cancel. */
      function startEdit() {
        const id = `sum-edit-${s.id}`;
        const area = el('textarea', { id, class: 'input sum-input', rows: 5 });
        area.value = s.text;
        const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
        const save = el('button', { type: 'button', class: 'btn btn-primary btn-small', on: { click: () => doSave() } },
          'Save');
        const cancel = el('button', { type: 'button', class: 'btn btn-ghost btn-small', on: { click: () => stop() } },
          'Cancel');
        text.hidden = true;
        actions.hidden = true;
        replace(slot, el('div', { class: 'sum-edit' },
          el('label', { for: id, class: 'field-label' }, `Summary of ${turnRange(s).toLowerCase()}`),
          area, error, el('div', { class: 'sum-edit-actions' }, cancel, save)));
        area.focus();

        /** Leave edit mode without saving. */
        function stop() {
          replace(slot);
          text.hidden = false;
          actions.hidden = false;
          edit.focus();
        }

        /** PUT the new text; errors stay inline. */
        async function doSave() {
          save.disabled = true;
          try {
            await put(`/api/summaries/${s.id}`, { text: area.value }, { signal, quiet: true });
          } catch (err) {
            if (err?.name === 'AbortError') return;
            error.hidden = false;
            replace(error, icon('alert', { size: 16 }), el('span', {}, err?.detail ?? String(err)));
            save.disabled = false;
            return;
          }
          await load();
          onChanged();
        }
      }

      /** Ask inline before un-folding. */
      function askUnfold() {
        actions.hidden = true;
        const yes = el('button', { type: 'button', class: 'btn btn-danger btn-small', on: { click: () => doUnfold() } },
          'Yes, un-fold');
        const no = el('button', { type: 'button', class: 'btn btn-ghost btn-small', on: { click: () => {
          replace(slot);
          actions.hidden = false;
          unfold.focus();
        } } }, 'Cancel');
        replace(slot, el('div', { class: 'sum-confirm', role: 'group', 'aria-label': 'Confirm un-fold' },
          el('p', {}, `Bring the ${s.message_count} folded message${s.message_count === 1 ? '' : 's'} back into `
            + 'the chat? This summary is archived, not deleted.'),
          el('div', { class: 'sum-edit-actions' }, no, yes)));
        no.focus();

        /** DELETE the summary (its messages come back). */
        async function doUnfold() {
          yes.disabled = true;
          try {
            await del(`/api/summaries/${s.id}`, { signal, quiet: true });
          } catch (err) {
            if (err?.name === 'AbortError') return;
            shell.showError(err?.detail ?? String(err));
          }
          await load();
          onChanged();
        }
      }
      return item;
    }

    /** POST summarize (202 starts a fold; 409 / 503 come back as sentences), then poll. */
    async function summarizeNow() {
      shell.showError(null);
      setRunning(true);
      try {
        await post(`/api/chats/${chatId}/summarize`, {}, { signal, quiet: true });
      } catch (err) {
        if (err?.name === 'AbortError') return;
        shell.showError(err?.detail ?? String(err));
        if (err?.status !== 409) { setRunning(false); return; }
      }
      poll();
    }

    /** Poll `running` until the fold ends, then redraw and tell the chat. */
    async function poll() {
      if (polling) return;
      polling = true;
      setRunning(true);
      let finished = () => {};
      tasks.track(new Promise((resolve) => { finished = resolve; }));
      try {
        for (;;) {
          await sleep(POLL_MS, signal);
          if (signal.aborted) return;
          let body;
          try {
            body = await get(`/api/chats/${chatId}/summaries`, { signal, quiet: true });
          } catch (err) {
            if (err?.name === 'AbortError' || signal.aborted) return;
            continue;
          }
          if (!body.running) break;
        }
      } finally {
        polling = false;
        finished();
      }
      await load();
      onChanged();
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    replace(live, el('li', { class: 'sum-empty' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }),
      ' Loading summaries…'));
    get('/api/settings', { signal, quiet: true })
      .then((settings) => { limit = settings?.values?.context?.summary_word_limit ?? null; })
      .catch(() => { limit = null; })
      .finally(() => { if (data && !signal.aborted) replace(meter, meterParts(data.word_count)); });
    load();
  });
}

/** The header's "Summaries" button for chat `chatId`. */
export function summariesButton({ chatId, onChanged }) {
  const button = toolButton('Summaries', 'scroll', async () => {
    button.setAttribute('aria-expanded', 'true');
    await openSummaries({ chatId, onChanged });
    button.setAttribute('aria-expanded', 'false');
    if (button.isConnected) button.focus({ preventScroll: true });
  }, { 'aria-haspopup': 'dialog', 'aria-expanded': 'false' });
  return button;
}
