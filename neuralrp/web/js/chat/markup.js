/**
 * A tiny roleplay markup renderer that builds nodes, never HTML: **bold** -> <strong>, *action* -> <em>,
 * "speech" -> <span class="speech">. Everything else stays literal text; line breaks are kept by CSS
 * (white-space: pre-wrap). An unclosed marker (e.g. mid-stream) is shown as the plain character.
 */

import { el } from '../dom.js';

const PATTERN = /\*\*([^*]+?)\*\*|\*([^*\n]+?)\*|("[^"\n]+"|\u201c[^\u201d\n]+\u201d)/g;

/** Nodes for `text`: strings plus <strong>/<em>/<span class="speech"> elements. */
export function markup(text, depth = 0) {
  const out = [];
  let last = 0;
  const source = String(text ?? '');
  if (depth > 2) return [source];
  for (const match of source.matchAll(PATTERN)) {
    if (match.index > last) out.push(source.slice(last, match.index));
    const [whole, bold, italic, speech] = match;
    if (bold !== undefined) out.push(el('strong', {}, markup(bold, depth + 1)));
    else if (italic !== undefined) out.push(el('em', { class: 'action' }, markup(italic, depth + 1)));
    else out.push(el('span', { class: 'speech' }, speech[0], markup(speech.slice(1, -1), depth + 1), speech.at(-1)));
    last = match.index + whole.length;
  }
  if (last < source.length) out.push(source.slice(last));
  return out;
}
