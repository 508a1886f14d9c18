/**
 * Library view. Routes: #/library (Characters tab), #/library/worlds (Worlds tab),
 * #/library/character/{id} (card editor), #/library/world/{id} (world editor).
 */

import { el } from '../dom.js';
import { href } from '../router.js';
import { pageHeader } from '../ui.js';
import { charactersTab } from '../library/characters.js';
import { renderCharacterEditor } from '../library/editor.js';
import { generateCharacterButton, generateWorldButton, renderDraftEditor } from '../library/generate.js';
import { createImporter, guardWindowDrops } from '../library/importer.js';
import { renderWorldEditor } from '../library/worldeditor.js';
import { worldsTab } from '../library/worlds.js';

const TABS = [['characters', 'Characters', href('library')], ['worlds', 'Worlds', href('library', 'worlds')]];

/** The tab links under the header; the current one carries aria-current=page. */
function tabBar(current) {
  return el('nav', { class: 'lib-tabs', 'aria-label': 'Library sections' },
    TABS.map(([key, label, link]) => el('a', { class: 'lib-tab', href: link,
      'aria-current': key === current ? 'page' : null, dataset: { tab: key } }, label)));
}

/** The two-tab page (Characters or Worlds) with the Import button in its header. */
function renderTabs(root, ctx, tab) {
  const body = el('div', { class: 'lib-tab-body' });
  let current = null;
  const importer = createImporter({
    mode: tab === 'worlds' ? 'worlds' : 'library', signal: ctx.signal, onImported: () => current?.reload(),
  });
  root.append(
    pageHeader({
      title: 'Library',
      subtitle: tab === 'worlds' ? 'Worlds (lorebooks) and their entries.' : 'Characters, worlds and tags.',
      actions: [tab === 'worlds' ? generateWorldButton(ctx) : generateCharacterButton(ctx), importer.button],
    }),
    importer.input,
    tabBar(tab),
    body);
  current = tab === 'worlds' ? worldsTab(body, { ...ctx, importer }) : charactersTab(body, { ...ctx, importer });
  return guardWindowDrops();
}

export default {
  name: 'library',
  title: 'Library',
  /** Render the tab or editor the route names. */
  render(root, ctx) {
    const [page, id] = ctx.params;
    if (page === 'character' && id) return renderCharacterEditor(root, ctx, id);
    if (page === 'draft') return renderDraftEditor(root, ctx);
    if (page === 'world' && id) return renderWorldEditor(root, ctx, id);
    return renderTabs(root, ctx, page === 'worlds' ? 'worlds' : 'characters');
  },
};
