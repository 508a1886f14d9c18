/**
 * Search view ('#/search?q=…'): full-text search over every chat's messages, archived and summarized ones
 * included. Results are grouped by chat; each shows speaker, turn, an "archived" badge and the snippet with the
 * matches wrapped in <mark> (built from the server's highlight offsets, never parsed as HTML). A result links to
 * '#/chat/{id}?seq={seq}&message={id}': the chat scrolls to it, or opens its History when it is archived.
 */

import { get } from '../api.js';
import { el, replace } from '../dom.js';
import { href } from '../router.js';
import { badge, emptyState, errorState, loading, pageHeader } from '../ui.js';
import { chatName } from '../chat/list.js';

const DEBOUNCE_MS = 300;
const LIMIT = 100;

/** The snippet as text nodes with each [start, end) highlight range wrapped in <mark>. */
export function highlighted(snippet, ranges = []) {
  const text = String(snippet ?? '');
  const parts = [];
  let at = 0;
  const sorted = [...(ranges ?? [])].filter((r) => Array.isArray(r) && r[1] > r[0]).sort((a, b) => a[0] - b[0]);
  for (const [start, end] of sorted) {
    const from = Math.max(start, at);
    const to = Math.min(end, text.length);
    if (to <= from) continue;
    if (from > at) parts.push(text.slice(at, from));
    parts.push(el('mark', {}, text.slice(from, to)));
    at = to;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

/** Who said a result. */
function speaker(r) {
  if (r.speaker_name) return r.speaker_name;
  return r.role === 'user' ? 'You' : r.role === 'system' ? 'System' : 'Narrator';
}

/** One result: a link to the message in its chat. */
function resultItem(r) {
  const target = href('chat', r.chat_id, { seq: r.seq, message: r.message_id });
  return el('li', { class: 'search-hit', dataset: { messageId: r.message_id, archived: String(Boolean(r.archived)) } },
    el('a', { class: 'search-link', href: target },
      el('span', { class: 'search-hit-head' },
        el('span', { class: 'search-speaker' }, speaker(r)),
        el('span', { class: 'search-turn' }, `turn ${r.turn ?? '?'} · #${r.seq}`),
        r.archived && badge(r.archived_reason === 'summarized' ? 'archived · summarized' : 'archived', 'warn')),
      el('span', { class: 'search-snippet' }, highlighted(r.snippet, r.highlights))));
}

/** Results grouped by chat, in rank order of each chat's best hit. */
function grouped(results) {
  const groups = new Map();
  for (const r of results) {
    if (!groups.has(r.chat_id)) groups.set(r.chat_id, []);
    groups.get(r.chat_id).push(r);
  }
  return [...groups.entries()].map(([chatId, hits]) => {
    const headingId = `search-chat-${chatId}`;
    return el('section', { class: 'search-group', 'aria-labelledby': headingId },
      el('h2', { id: headingId, class: 'search-chat' },
        el('a', { href: href('chat', chatId) }, hits[0].chat_name
          ?? chatName({ id: chatId, title: hits[0].chat_title, cast: null })),
        el('span', { class: 'search-count' }, `${hits.length} hit${hits.length === 1 ? '' : 's'}`)),
      el('ol', { class: 'search-hits' }, hits.map(resultItem)));
  });
}

export default {
  name: 'search',
  title: 'Search',
  /** Render the search box and, for a query in the route, its results. */
  render(root, ctx) {
    const input = el('input', { type: 'search', class: 'input search-input', 'aria-label': 'Search messages',
      placeholder: 'Words or "a phrase" from any chat…', value: ctx.query.get('q') ?? '', autocomplete: 'off',
      enterkeyhint: 'search' });
    const summary = el('p', { class: 'search-summary', role: 'status' });
    const results = el('div', { class: 'search-results' });
    const form = el('form', { class: 'search-form', role: 'search', on: { submit: (event) => {
      event.preventDefault();
      run();
    } } }, input, el('button', { type: 'submit', class: 'btn btn-primary' }, 'Search'));
    root.append(pageHeader({ title: 'Search',
      subtitle: 'Every message of every chat, deleted and summarized ones too.' }), form, summary, results);
    let timer = null;
    let runs = 0;

    /** Search for the box's text and show the results. */
    async function run() {
      clearTimeout(timer);
      const q = input.value.trim();
      history.replaceState(null, '', q ? href('search', { q }) : href('search'));
      const mine = (runs += 1);
      if (!q) {
        summary.textContent = '';
        replace(results, emptyState({ icon: 'chat', title: 'Search your chats',
          text: 'Type a word or a "quoted phrase". Deleted messages and messages folded into summaries are found '
            + 'too.' }));
        return;
      }
      const { signal } = ctx;
      replace(results, loading('Searching…'));
      try {
        const data = await get('/api/search', { query: { q, limit: LIMIT }, signal, quiet: true });
        if (mine !== runs) return; // a newer search is on its way
        const hits = data?.results ?? [];
        summary.textContent = `${hits.length}${hits.length >= LIMIT ? '+' : ''} result${hits.length === 1 ? '' : 's'}`
          + ` for “${q}”`;
        replace(results, hits.length ? grouped(hits)
          : emptyState({ icon: 'chat', title: 'No matches', text: 'Try fewer or shorter words.' }));
      } catch (err) {
        if (err?.name === 'AbortError' || signal.aborted || mine !== runs) return;
        summary.textContent = '';
        replace(results, errorState(err?.detail ?? String(err), { retry: run }));
      }
    }

    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(run, DEBOUNCE_MS);
    });
    run();
    if (!ctx.query.get('q')) input.focus({ preventScroll: true });
    return () => clearTimeout(timer);
  },
};
