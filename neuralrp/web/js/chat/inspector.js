/**
 * Prompt inspector: a side panel showing the exact prompt the next reply will get (GET /api/chats/{id}/prompt),
 * section by section in order — kind, source, token count and full text — under a budget bar, with a kind
 * filter, Copy JSON and Refresh. The chat session refreshes it after each reply and each cast or mode change.
 */

import { get } from '../api.js';
import { el, replace, svg } from '../dom.js';
import { formatCount } from '../format.js';
import { toast } from '../toast.js';
import { icon } from './icons.js';

/** Display labels of the section kinds, in the order the filter lists them. */
export const KIND_LABELS = {
  system: 'system', persona: 'persona', canon_law: 'canon law', summary: 'summary', card_full: 'card',
  capsule: 'capsule', lore: 'lore', reminder: 'reminder', history: 'history', instruction: 'instruction',
};
/** Where a section goes, as the detail line says it. */
const PLACEMENTS = { head: 'head (system prompt)', turn: 'in the conversation',
  tail: 'after the history (changes every reply)' };
const TOOL_PATHS = {
  layers: ['M12 3.5l8.5 4.5-8.5 4.5L3.5 8z', 'M3.5 12l8.5 4.5 8.5-4.5', 'M3.5 16l8.5 4.5 8.5-4.5'],
  scroll: ['M7 4.5h10.5a2 2 0 0 1 2 2V17', 'M7 4.5a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h10.5', 'M9 9h7M9 12.5h7M9 16h4'],
  users: ['M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z', 'M2.5 20a6.5 6.5 0 0 1 13 0',
    'M15.5 4.3a3.5 3.5 0 0 1 0 6.4', 'M18 14.2a6.5 6.5 0 0 1 3.5 5.8'],
  copy: ['M9 9h10.5v10.5H9z', 'M15 9V4.5H4.5V15H9'],
  expand: ['M8 9.5l4-4 4 4', 'M8 14.5l4 4 4-4'],
};
let counter = 0;

/** An icon by name: the tool icons above, else the chat set (which falls back to the shared set). */
export function toolIcon(name, size = 18) {
  if (!TOOL_PATHS[name]) return icon(name, { size });
  return svg('svg', {
    class: 'icon', width: size, height: size, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor',
    'stroke-width': 1.75, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true',
    focusable: 'false',
  }, TOOL_PATHS[name].map((d) => svg('path', { d })));
}

/** A small header tool button: icon + visible text (the text is its accessible name, kept on phones too). */
export function toolButton(text, iconName, onClick, attrs = {}) {
  return el('button', { type: 'button', class: 'btn btn-ghost btn-small chat-tool', title: text, on: { click: onClick },
    ...attrs },
    toolIcon(iconName, 17), el('span', { class: 'chat-tool-text' }, text));
}

/** "41" or "41–44" for a list of ids. */
function idRange(ids) {
  const list = (ids ?? []).filter((i) => i !== null && i !== undefined);
  if (!list.length) return '';
  const first = list[0];
  const last = list.at(-1);
  return first === last ? String(first) : `${first}–${last}`;
}

/** The reason of a lore hit as words, with the score when it is a similarity. */
function loreReason(src) {
  const reason = String(src.reason ?? 'matched').replace(/_/g, ' ');
  const score = typeof src.score === 'number' && src.reason === 'semantic' ? ` ${src.score.toFixed(2)}` : '';
  return `${reason}${score}`;
}

/** Where the head's system prompt came from (source.origin). */
const SYSTEM_ORIGINS = {
  card: (src) => `system prompt of ${src.name ?? 'the card'}'s card`,
  setting: () => 'system prompt from Settings',
  default: () => 'built-in system prompt',
};

/** "Eldoria via chat" for a lore or canon-law source that names its world and link. */
function worldVia(src) {
  if (!src.world) return src.world_id === undefined ? null : `world ${src.world_id}`;
  return src.via ? `${src.world} via ${src.via}` : src.world;
}

/** A cast member's name from the chat's cast, else "character N". */
function nameOf(id, names) {
  return names.get(id) ?? (id === undefined || id === null ? 'someone' : `character ${id}`);
}

/**
 * One line saying where a section came from, without its kind (the badge shows that):
 * lore -> "entry 12 · semantic 0.56 · matched: ancient dragon", history -> "message 41 · turn 7 · user".
 */
export function describeSource(section, names = new Map()) {
  const src = section.source ?? {};
  const parts = [];
  switch (section.kind) {
    case 'lore':
      parts.push(`entry ${src.entry_id}`, worldVia(src), loreReason(src));
      if (src.matched?.length) parts.push(`matched: ${src.matched.join(', ')}`);
      break;
    case 'canon_law':
      parts.push(`entry ${src.entry_id}`, worldVia(src), 'always known');
      break;
    case 'card_full':
      parts.push(src.name ?? nameOf(src.character_id, names), 'full card');
      break;
    case 'capsule':
      parts.push(src.name ?? nameOf(src.character_id, names),
        src.origin === 'llm' ? 'written by the LLM' : src.origin === 'rules' ? 'rule-based' : src.origin);
      break;
    case 'history': {
      const ids = src.message_ids ?? [];
      parts.push(`${ids.length > 1 ? 'messages' : 'message'} ${idRange(ids)}`, `turn ${src.turn}`, section.role);
      break;
    }
    case 'summary':
      parts.push(`summary ${src.summary_id}`);
      if (src.turns) parts.push(`turns ${idRange(src.turns)}`);
      break;
    case 'system':
      parts.push(SYSTEM_ORIGINS[src.origin]?.(src) ?? null);
      if (src.mode) parts.push(`${src.mode} mode`);
      break;
    case 'persona':
      parts.push(src.name ?? 'persona');
      break;
    case 'instruction':
      parts.push(src.character_id ? `${nameOf(src.character_id, names)} speaks next` : 'the narrator', `${src.mode} mode`);
      break;
    case 'reminder':
      if (src.scene) parts.push(`${nameOf(src.character_id, names)} ${src.scene}`);
      else if (src.canon_law) parts.push(`canon law · ${src.canon_law.length > 1 ? 'entries' : 'entry'} ${src.canon_law.join(', ')}`);
      else if (src.field) parts.push(`${nameOf(src.character_id, names)} · ${src.field.replace(/_/g, ' ')}`);
      break;
    default:
      break;
  }
  if (!parts.filter(Boolean).length) {
    parts.push(...Object.entries(src).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`));
  }
  return parts.filter((p) => p !== undefined && p !== null && p !== '').join(' · ');
}

/** "in about 3 min" / "after the next reply" for a rejection's retry time. */
function retryText(seconds) {
  if (!seconds) return 'after the next reply';
  return seconds < 90 ? `in about ${seconds} s` : `in about ${Math.round(seconds / 60)} min`;
}

/**
 * Background answers the server rejected for this prompt (a capsule, a scene summary): what, why, the
 * rejected text, and when it is tried again; the previous capsule or summary stays in use meanwhile.
 */
export function backgroundNotes(notes = [], names = new Map()) {
  if (!notes.length) return null;
  return el('ul', { class: 'insp-background', 'aria-label': 'Rejected background answers' },
    notes.map((n) => el('li', { class: 'insp-bg-note', dataset: { kind: n.kind } },
      icon('alert', { size: 15 }),
      el('span', {}, n.kind === 'capsule' ? `Capsule for ${nameOf(n.character_id, names)}` : 'Scene summary',
        `: the model's answer was rejected (${n.reason}). The previous one stays in use; tried again `
        + `${retryText(n.retry_in_s)}.`),
      n.answer ? el('code', { class: 'insp-bg-answer' }, n.answer) : null)));
}

/** A stable key for a section (to keep rows open across refreshes). */
function sectionKey(section) {
  return `${section.kind}:${JSON.stringify(section.source ?? {})}`;
}

/** A kind badge: colour comes from data-kind in CSS. */
function kindBadge(kind) {
  return el('span', { class: 'insp-kind', dataset: { kind } }, KIND_LABELS[kind] ?? kind);
}

/** Copy text to the clipboard (async API, else a hidden textarea); resolves true when it worked. */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el('textarea', { class: 'sr-only', readonly: true, 'aria-hidden': 'true' });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

/**
 * Build the inspector for chat `chatId`. Returns {button, refresh(), setChat(chat), open(), close(), isOpen()}.
 * The panel lives in <body> while open and is removed when `signal` aborts (leaving the chat).
 */
export function createInspector({ chatId, signal }) {
  const n = (counter += 1);
  const titleId = `insp-title-${n}`;
  const panelId = `insp-panel-${n}`;
  let doc = null;
  let names = new Map();
  let filter = null; // a kind, or null for all
  let seq = 0;
  let loader = null;
  const openKeys = new Set();

  const status = el('div', { class: 'insp-status', role: 'status' });
  const overview = el('div', { class: 'insp-overview' });
  const chips = el('div', { class: 'insp-filter', role: 'group', 'aria-label': 'Filter by kind' });
  const list = el('ol', { class: 'insp-sections', 'aria-label': 'Prompt sections' });
  const refreshBtn = toolButton('Refresh', 'refresh', () => refresh());
  const copyBtn = toolButton('Copy JSON', 'copy', () => copy());
  const expandBtn = toolButton('Expand all', 'expand', () => toggleAll());
  const heading = el('h2', { id: titleId, class: 'insp-title', tabindex: '-1' }, 'Prompt inspector');
  const panel = el('dialog', { id: panelId, class: 'insp', 'aria-labelledby': titleId,
    on: { keydown: (event) => { if (event.key === 'Escape') { event.preventDefault(); close(); } } } },
  el('header', { class: 'insp-head' },
    el('div', { class: 'insp-head-row' }, heading,
      el('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close',
        on: { click: () => close() } }, icon('close', { size: 18 }))),
    el('p', { class: 'insp-sub' }, 'What the next reply will be sent, section by section.'),
    el('div', { class: 'insp-actions' }, refreshBtn, copyBtn, expandBtn)),
  el('div', { class: 'insp-body' }, status, overview, chips, list));
  const button = toolButton('Prompt', 'layers', () => (isOpen() ? close() : open()),
    { 'aria-expanded': 'false', 'aria-controls': panelId, title: 'Prompt inspector' });

  signal?.addEventListener('abort', () => { loader?.abort(); panel.remove(); }, { once: true });

  /** True while the panel is shown. */
  function isOpen() { return panel.open; }

  /** Show the panel and load the prompt. */
  function open() {
    if (!panel.isConnected) document.body.append(panel);
    panel.show();
    button.setAttribute('aria-expanded', 'true');
    heading.focus({ preventScroll: true });
    refresh();
  }

  /** Hide the panel (focus goes back to the Prompt button when it was inside). */
  function close() {
    const hadFocus = panel.contains(document.activeElement);
    loader?.abort();
    panel.close();
    panel.remove();
    button.setAttribute('aria-expanded', 'false');
    if (hadFocus) button.focus({ preventScroll: true });
  }

  /** The chat changed (mode, cast, turn): remember the names and reload when open. */
  function setChat(chat) {
    names = new Map((chat?.cast ?? []).map((c) => [c.character_id, c.name]));
    if (isOpen()) refresh();
  }

  /** Fetch the prompt again (no-op while closed); stale answers are dropped. */
  async function refresh() {
    if (!isOpen()) return;
    const mine = (seq += 1);
    loader?.abort();
    loader = new AbortController();
    refreshBtn.disabled = true;
    refreshBtn.classList.add('is-busy');
    if (!doc) replace(status, el('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Building the prompt…');
    try {
      const fresh = await get(`/api/chats/${chatId}/prompt`, { signal: loader.signal, quiet: true });
      if (mine !== seq) return;
      doc = fresh;
      replace(status);
      render();
    } catch (err) {
      if (err?.name === 'AbortError' || mine !== seq) return;
      replace(status, el('p', { class: 'form-error', role: 'alert' }, icon('alert', { size: 16 }),
        el('span', {}, err?.detail ?? String(err))));
    } finally {
      if (mine === seq) {
        refreshBtn.disabled = false;
        refreshBtn.classList.remove('is-busy');
      }
    }
  }

  /** Draw everything from `doc`. */
  function render() {
    copyBtn.disabled = !doc;
    if (!doc) return;
    if (filter && !doc.sections.some((s) => s.kind === filter)) filter = null;
    replace(overview, overviewParts(doc));
    replace(chips, filterChips(doc));
    const rows = doc.sections.map((section, index) => sectionRow(section, index));
    const at = doc.prefix?.index;
    if (Number.isInteger(at) && at >= 0 && at < rows.length) rows.splice(at, 0, prefixMarker(doc.prefix));
    replace(list, rows);
    applyFilter();
    replace(expandBtn.querySelector('.chat-tool-text'), 'Expand all');
  }

  /** Speaker line, token numbers and the budget bar. */
  function overviewParts(data) {
    const total = data.total_tokens ?? 0;
    const budget = data.budget ?? 0;
    const reserve = data.reply_reserve ?? 0;
    const context = Math.max(budget + reserve, total + reserve, 1);
    const pct = budget ? Math.round((total / budget) * 100) : 0;
    const speaker = data.speaker?.name ?? 'the narrator';
    const segments = data.sections.map((s) => el('span', {
      class: 'insp-seg', dataset: { kind: s.kind },
      style: { width: `${((s.tokens / context) * 100).toFixed(3)}%` },
      title: `${KIND_LABELS[s.kind] ?? s.kind} · ${formatCount(s.tokens)} tokens`,
    }));
    return [
      el('p', { class: 'insp-speaker' }, 'Next reply: ', el('strong', {}, speaker),
        el('span', { class: 'insp-dim' }, ` · turn ${data.turn ?? '—'} · ${data.sections.length} sections`)),
      el('div', { class: 'insp-numbers' },
        el('span', { class: 'insp-total' },
          el('strong', { class: 'insp-total-tokens' }, formatCount(total)), ` of ${formatCount(budget)} tokens`,
          el('span', { class: 'insp-dim' }, ` (${pct}%)`)),
        el('span', { class: 'insp-reserve' }, `+ ${formatCount(reserve)} reserved for the reply`)),
      el('div', { class: 'insp-bar', role: 'img',
        'aria-label': `${formatCount(total)} of ${formatCount(budget)} prompt tokens used; `
          + `${formatCount(reserve)} more reserved for the reply` },
      segments,
      el('span', { class: 'insp-seg-free', style: { flex: '1' } }),
      el('span', { class: 'insp-seg-reserve', style: { width: `${((reserve / context) * 100).toFixed(3)}%` },
        title: `reply reserve · ${formatCount(reserve)} tokens` })),
      cacheLine(data.prefix),
      loreLine(data.lore),
      data.worlds?.length ? el('p', { class: 'insp-worlds' }, 'Worlds: ',
        data.worlds.map((w, i) => [i ? ', ' : '', el('strong', {}, w.name), ` (${w.label})`])) : null,
      backgroundNotes(data.background, names),
    ];
  }

  /** How much of the last reply's prompt the server keeps cached for this one, and why it breaks. */
  function cacheLine(prefix) {
    if (!prefix?.reason) return null;
    const kept = prefix.kept_tokens ?? 0;
    const before = prefix.previous_tokens ?? 0;
    const pct = before ? Math.round((kept / before) * 100) : 0;
    return el('p', { class: 'insp-cache', dataset: { planned: String(Boolean(prefix.planned)) } },
      before ? el('span', {}, 'Cached prefix: ', el('strong', {}, formatCount(kept)),
        ` of the last reply's ${formatCount(before)} tokens (${pct}%) stay. `) : null,
      el('span', { class: 'insp-dim' }, `Breaks: ${prefix.reason}.`));
  }

  /** All lore in the prompt (old notes and this turn's) against world.lore_token_budget. */
  function loreLine(lore) {
    if (!lore || lore.budget === null || lore.budget === undefined) return null;
    return el('p', { class: 'insp-lore', dataset: { over: String(lore.tokens > lore.budget) } }, 'Lore: ',
      el('strong', { class: 'insp-lore-tokens' }, formatCount(lore.tokens)),
      ` of ${formatCount(lore.budget)} tokens (lore budget)`);
  }

  /** The line drawn before the first section the server must read again. */
  function prefixMarker(prefix) {
    return el('li', { class: 'insp-break', role: 'note', dataset: { planned: String(Boolean(prefix.planned)) } },
      el('span', { class: 'insp-break-label' }, 'Prefix breaks here'),
      el('span', { class: 'insp-break-reason' }, prefix.reason));
  }

  /** "All" plus one chip per kind present (count and tokens); a chip doubles as the bar's legend. */
  function filterChips(data) {
    const stats = new Map();
    for (const s of data.sections) {
      const entry = stats.get(s.kind) ?? { count: 0, tokens: 0 };
      entry.count += 1;
      entry.tokens += s.tokens;
      stats.set(s.kind, entry);
    }
    const order = [...Object.keys(KIND_LABELS), ...[...stats.keys()].filter((k) => !(k in KIND_LABELS))];
    const chip = (kind, label, count, tokens) => el('button', {
      type: 'button', class: 'insp-chip', dataset: { kind: kind ?? 'all' }, 'aria-pressed': String(filter === kind),
      title: tokens === null ? null : `${formatCount(tokens)} tokens`,
      on: { click: () => { filter = filter === kind || kind === null ? null : kind; render(); } },
    }, kind && el('span', { class: 'insp-chip-dot', 'aria-hidden': 'true' }), label,
    el('span', { class: 'insp-chip-count' }, String(count)));
    return [chip(null, 'All', data.sections.length, null),
      ...order.filter((k) => stats.has(k)).map((k) => chip(k, KIND_LABELS[k] ?? k, stats.get(k).count,
        stats.get(k).tokens))];
  }

  /** One collapsible section row: badge, source line, tokens; the full text when opened. */
  function sectionRow(section, index) {
    const key = sectionKey(section);
    const share = doc.total_tokens ? ((section.tokens / doc.total_tokens) * 100).toFixed(1) : '0';
    const details = el('details', { class: 'insp-section', dataset: { kind: section.kind, index },
      open: openKeys.has(key),
      on: { toggle: () => { if (details.open) openKeys.add(key); else openKeys.delete(key); } } },
    el('summary', { class: 'insp-row' },
      kindBadge(section.kind),
      el('span', { class: 'sr-only' }, ' · '),
      el('span', { class: 'insp-source' }, describeSource(section, names)),
      el('span', { class: 'insp-tokens', title: `${share}% of the prompt` }, formatCount(section.tokens),
        el('span', { class: 'insp-unit' }, ' tok'))),
    el('div', { class: 'insp-detail' },
      el('p', { class: 'insp-meta' },
        `${section.role} message · ${PLACEMENTS[section.placement] ?? section.placement}`
        + ` · ${share}% of the prompt`),
      el('pre', { class: 'insp-text' }, section.text || '(empty)'),
      el('p', { class: 'insp-meta insp-src-json' }, JSON.stringify(section.source ?? {}))));
    return el('li', { class: 'insp-item', dataset: { kind: section.kind } }, details);
  }

  /** Hide the rows of other kinds. */
  function applyFilter() {
    for (const item of list.children) item.hidden = filter !== null && item.dataset.kind !== filter;
  }

  /** Open every visible row, or close them all when every one is open already. */
  function toggleAll() {
    const rows = [...list.querySelectorAll('.insp-item:not([hidden]) > details')];
    const openAll = rows.some((d) => !d.open);
    for (const d of rows) d.open = openAll;
    replace(expandBtn.querySelector('.chat-tool-text'), openAll ? 'Collapse all' : 'Expand all');
  }

  /** Put the prompt JSON on the clipboard. */
  async function copy() {
    if (!doc) return;
    const ok = await copyText(JSON.stringify(doc, null, 2));
    if (ok) toast('Copied the prompt as JSON.', { kind: 'success' });
    else toast(`The browser refused to copy. The CLI prints the same JSON: neuralrp prompt ${chatId} --json`,
      { kind: 'error' });
  }

  return { button, refresh, setChat, open, close, isOpen };
}
