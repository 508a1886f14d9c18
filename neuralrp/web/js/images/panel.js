/**
 * The image panel of a chat: a non-modal side panel for manual generation. Prompt (with `[Name]` chips for the
 * cast: the server swaps in that character's visual tags), negative prompt, size presets, steps / CFG / sampler /
 * seed, the remembered prompt (GET /api/images/manual-prompt) and Generate (POST /api/images/generate).
 */

import { get, post } from '../api.js';
import { el, replace } from '../dom.js';
import { icon } from '../chat/icons.js';
import { toolButton } from '../chat/inspector.js';
import { altText, announce, field, imageOptions, imageStatus, imgIcon, nameSelect, numberInput, readNumber,
  uid } from './common.js';
import { openLightbox } from './lightbox.js';
import { createProgress } from './progress.js';

/** Insert `text` at the caret of a textarea (replacing a selection) and keep typing after it. */
function insertAt(area, text) {
  const start = area.selectionStart ?? area.value.length;
  const end = area.selectionEnd ?? start;
  const before = area.value.slice(0, start);
  const pad = before && !/\s$/.test(before) ? ' ' : '';
  area.setRangeText(`${pad}${text}`, start, end, 'end');
  area.dispatchEvent(new Event('input', { bubbles: true }));
  area.focus();
}

/** The generation form; returns {node, fill(options, remembered), body(), chips(names)}. */
function generationForm() {
  const prompt = el('textarea', { class: 'input', rows: 5, name: 'prompt', id: uid('imgprompt'),
    placeholder: '[Mira] sitting in a tavern, warm light' });
  const chips = el('div', { class: 'imgpanel-chips', role: 'group', 'aria-label': 'Insert a cast member' });
  const negative = el('textarea', { class: 'input', rows: 2, name: 'negative_prompt' });
  const preset = el('select', { class: 'input', name: 'size_preset',
    on: { change: () => applyPreset() } });
  const width = numberInput(512, { min: 64, max: 2048, step: 8, name: 'width' });
  const height = numberInput(512, { min: 64, max: 2048, step: 8, name: 'height' });
  const steps = numberInput('', { min: 1, max: 150, step: 1, name: 'steps' });
  const cfg = numberInput('', { min: 1, max: 30, step: 0.5, name: 'cfg_scale' });
  let sampler = nameSelect([], '', { name: 'sampler_name', defaultLabel: 'Server default' });
  const samplerSlot = el('div', { class: 'imgpanel-slot' }, field('Sampler', sampler));
  const seed = numberInput(-1, { step: 1, name: 'seed' });
  let presets = [];

  /** Copy the chosen preset's size into the width and height fields. */
  function applyPreset() {
    const chosen = presets[Number(preset.value)];
    if (!chosen) return;
    width.value = String(chosen.width);
    height.value = String(chosen.height);
  }

  const node = el('div', { class: 'imgpanel-form' },
    field('Prompt', prompt, { hint: 'Write [Name] to put in a character\'s visual tags; pick one below.' }), chips,
    field('Negative prompt', negative),
    field('Size', preset),
    el('div', { class: 'field-row' }, field('Width', width), field('Height', height)),
    el('div', { class: 'field-row' }, field('Steps', steps), field('CFG scale', cfg)),
    el('div', { class: 'field-row' }, samplerSlot, field('Seed', seed, { hint: '-1 picks a random seed.' })));

  return {
    node,
    prompt,
    /** Fill the options (presets, samplers, defaults) and the remembered prompt. */
    fill(options, memory) {
      const defaults = options.defaults ?? {};
      presets = options.size_presets ?? [];
      replace(preset, el('option', { value: '' }, 'Custom'), presets.map((p, i) => el('option', { value: String(i) },
        `${p.label} (${p.width}×${p.height})`)));
      sampler = nameSelect(options.samplers, defaults.sampler_name ?? '', { name: 'sampler_name',
        defaultLabel: 'Server default' });
      replace(samplerSlot, field('Sampler', sampler));
      steps.value = defaults.steps ?? '';
      cfg.value = defaults.cfg_scale ?? '';
      width.value = String(memory?.width ?? defaults.width ?? 512);
      height.value = String(memory?.height ?? defaults.height ?? 512);
      const match = presets.findIndex((p) => String(p.width) === width.value && String(p.height) === height.value);
      preset.value = match >= 0 ? String(match) : '';
      if (memory?.prompt && !prompt.value) prompt.value = memory.prompt;
      negative.value = memory?.negative_prompt ?? defaults.negative_prompt ?? negative.value;
    },
    /** The request body (chat fields are added by the caller). */
    body() {
      return { prompt: prompt.value, negative_prompt: negative.value, width: readNumber(width),
        height: readNumber(height), steps: readNumber(steps), cfg_scale: readNumber(cfg),
        sampler_name: sampler.value || undefined, seed: readNumber(seed) ?? -1 };
    },
    /** One `[Name]` chip per cast member. */
    chips(names) {
      replace(chips, names.map((name) => el('button', { type: 'button', class: 'lib-chip imgpanel-chip',
        'aria-label': `Insert [${name}]`, on: { click: () => insertAt(prompt, `[${name}]`) } }, `[${name}]`)));
    },
  };
}

/**
 * createImagePanel({chatId, signal, lastMessage}) -> {button, setChat(chat), open(), close()}. lastMessage()
 * gives the message a manual image is attached to.
 */
export function createImagePanel({ chatId, signal, lastMessage = () => null }) {
  const titleId = uid('imgpanel-title');
  const panelId = uid('imgpanel');
  const form = generationForm();
  const progress = createProgress();
  const notice = el('div', { class: 'imgpanel-notice' });
  const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
  const result = el('div', { class: 'imgpanel-result', 'aria-live': 'polite' });
  const generate = el('button', { type: 'button', class: 'btn btn-primary', on: { click: () => run() } },
    imgIcon('wand', { size: 17 }), el('span', {}, 'Generate'));
  const heading = el('h2', { id: titleId, class: 'insp-title', tabindex: '-1' }, 'Image panel');
  const panel = el('dialog', { id: panelId, class: 'insp imgpanel', 'aria-labelledby': titleId,
    on: { keydown: (event) => { if (event.key === 'Escape') { event.preventDefault(); close(); } } } },
  el('header', { class: 'insp-head' },
    el('div', { class: 'insp-head-row' }, heading,
      el('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', on: { click: () => close() } },
        icon('close', { size: 18 }))),
    el('p', { class: 'insp-sub' }, 'Make an image for this chat by hand.')),
  el('div', { class: 'insp-body' }, notice, form.node, error,
    el('div', { class: 'imgpanel-actions' }, generate), progress.node, result));
  const button = toolButton('Image panel', 'images', () => (panel.open ? close() : open()),
    { 'aria-expanded': 'false', 'aria-controls': panelId, 'aria-haspopup': 'dialog' });
  let loaded = false;

  signal?.addEventListener('abort', () => panel.remove(), { once: true });

  /** Status, options and remembered prompt, once per opening until they load. */
  async function load() {
    const status = await imageStatus({ fresh: true });
    if (!status.configured || status.reachable === false) {
      replace(notice, el('p', { class: 'img-notice', role: 'status' }, icon('alert', { size: 16 }),
        el('span', {}, status.configured ? status.detail : (status.how_to_enable || status.detail))));
      generate.disabled = !status.configured;
    } else replace(notice);
    if (loaded || !status.configured) return;
    const [options, memory] = await Promise.all([imageOptions(), get('/api/images/manual-prompt', { quiet: true })
      .catch(() => null)]);
    form.fill(options, memory);
    loaded = !options.error;
  }

  /** Show the panel. */
  function open() {
    if (!panel.isConnected) document.body.append(panel);
    panel.show();
    button.setAttribute('aria-expanded', 'true');
    form.prompt.focus({ preventScroll: true });
    load();
  }

  /** Hide the panel. */
  function close() {
    const hadFocus = panel.contains(document.activeElement);
    panel.close();
    panel.remove();
    button.setAttribute('aria-expanded', 'false');
    if (hadFocus) button.focus({ preventScroll: true });
  }

  /** POST the generation and show the result. */
  async function run() {
    if (progress.busy()) return;
    error.hidden = true;
    const body = { ...form.body(), chat_id: chatId, message_id: lastMessage()?.id ?? undefined };
    if (!body.prompt.trim()) {
      replace(error, 'Write a prompt first.');
      error.hidden = false;
      form.prompt.focus();
      return;
    }
    generate.disabled = true;
    try {
      const made = await progress.track(post('/api/images/generate', body, { quiet: true }));
      announce('created', made);
      replace(result, el('button', { type: 'button', class: 'imgpanel-thumb', 'aria-label': 'Open the new image',
        on: { click: () => openLightbox(made) } }, el('img', { src: made.url, alt: altText(made) })));
    } catch (err) {
      replace(error, err?.detail ?? String(err));
      error.hidden = false;
    } finally {
      generate.disabled = false;
    }
  }

  return {
    button,
    open,
    close,
    /** The chat changed: refresh the cast chips. */
    setChat(chat) {
      form.chips((chat?.cast ?? []).filter((c) => c.is_active !== false).map((c) => c.name));
    },
  };
}
